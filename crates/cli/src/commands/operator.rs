//! `weaver operator run` (the controller, logging through `tracing`) and `weaver operator crd`
//! (the CRD as YAML, the same bytes the chart ships in `charts/weaver/crds/`).

use std::process::ExitCode;

use crate::cli::{ControllerKind, GlobalArgs, LogFormat, OperatorCommand, OperatorRunArgs};
use weaver_controllers::election::Role;

/// The leader Lease, named after the controller.
const LEASE_NAME: &str = weaver_controllers::configmapsync::controller::CONTROLLER_NAME;
/// The label that puts an object in a shard (`--shard`), as Flux's `sharding.fluxcd.io/key`.
const SHARD_LABEL: &str = "weaver.example.com/shard";

pub fn run(global: &GlobalArgs, command: &OperatorCommand) -> weaver_core::error::Result<ExitCode> {
    match command {
        OperatorCommand::Crd(args) => {
            let crds = [
                (ControllerKind::Configmapsync, weaver_controllers::configmapsync::crd()),
                (ControllerKind::Environmentsync, weaver_controllers::gitops::crd()),
            ];
            let documents: Vec<String> = crds
                .iter()
                .filter(|(kind, _)| args.kind.is_none_or(|wanted| wanted == *kind))
                .map(|(_, crd)| weaver_yaml::to_yaml_string(crd))
                .collect();
            super::write_stdout(documents.join("---\n").as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Run(args) => run_controller(global, args),
    }
}

/// kube's client module logs the whole body of an answer it cannot parse (at warn) and of a
/// Status (at trace), and a TokenRequest's answer holds a token: it logs errors only, whatever
/// `RUST_LOG` says. Its submodules (TLS, the HTTP layer) log no bodies and keep their warnings.
const KUBE_CLIENT_BODIES_TARGET: &str = "kube_client::client";
/// kube's watcher warns of a refused watch (403) at every retry, each a whole `Api(Status {…})`
/// dump: errors only. weaver's watches of live state tell a refusal once, in a sentence naming
/// what to grant (`cluster::live`); the controllers' own watches fail their queue (`log_queue`).
const KUBE_WATCHER_TARGET: &str = "kube_runtime::watcher";

/// weaver's crates that log, whose debug events `-v` shows: a log's target is its module's path,
/// which starts with its crate's name. The architecture test checks that the list names each
/// crate whose code logs.
pub const LOGGING_CRATES: &[&str] = &["weaver_cli", "weaver_cluster", "weaver_controllers", "weaver_source"];

/// The operator's logs on `writer`, text (`color` or not) or JSON: what `rust_log` (RUST_LOG)
/// says when it is set and valid, else info (-v: weaver's debug too); never an event of
/// [`KUBE_CLIENT_BODIES_TARGET`] above error, which a filter of its own drops, so no
/// directive (a span's among them) can let it through.
fn log_subscriber<W>(
    rust_log: Option<&str>,
    verbose: u8,
    format: LogFormat,
    color: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let default_level = match verbose {
        0 => "info".to_string(),
        _ => std::iter::once("info".to_string())
            .chain(LOGGING_CRATES.iter().map(|c| format!("{c}=debug")))
            .collect::<Vec<_>>()
            .join(","),
    };
    let filter = rust_log
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_level));
    let no_bodies = tracing_subscriber::filter::filter_fn(|meta| {
        ![KUBE_CLIENT_BODIES_TARGET, KUBE_WATCHER_TARGET].contains(&meta.target())
            || *meta.level() == tracing::Level::ERROR
    });
    let logs = tracing_subscriber::registry().with(filter).with(no_bodies);
    match format {
        LogFormat::Json => Box::new(logs.with(tracing_subscriber::fmt::layer().json().with_writer(writer))),
        LogFormat::Text => Box::new(logs.with(tracing_subscriber::fmt::layer().with_ansi(color).with_writer(writer))),
    }
}

fn run_controller(global: &GlobalArgs, args: &OperatorRunArgs) -> weaver_core::error::Result<ExitCode> {
    let color = super::Ui::new(global).color_stderr;
    let rust_log = std::env::var("RUST_LOG").ok();
    let logs = log_subscriber(rust_log.as_deref(), global.verbose, args.log_format, color, std::io::stderr);
    tracing::subscriber::set_global_default(logs)
        .map_err(|err| weaver_core::error::Error::new(format!("cannot start the operator's logs: {err}")))?;
    // Checked here, so a typo is an error naming the flag, not a watch the server keeps refusing.
    weaver_project::selector::Selector::parse_all(args.selector.as_slice())?;
    // The registries' bounds the reconciles use (RegistryLimits::of_process), checked once.
    weaver_source::images::RegistryLimits::from_variables(&|name| std::env::var(name).ok())?;
    // A shard sees only its objects, and elects its leader on a Lease of its own.
    let shard = args.shard.as_ref().map(|shard| format!("{SHARD_LABEL}={shard}"));
    let selector = match (&args.selector, shard) {
        (Some(selector), Some(shard)) => Some(format!("{selector},{shard}")),
        (selector, shard) => selector.clone().or(shard),
    };
    let lease_name =
        args.shard.as_ref().map_or_else(|| LEASE_NAME.to_string(), |shard| format!("{LEASE_NAME}-{shard}"));
    for (flag, given) in [("--webhook-addr", args.webhook_addr.is_some()), ("--ui-address", args.ui_address.is_some())]
    {
        if given && !args.controllers.contains(&ControllerKind::Environmentsync) {
            return Err(weaver_core::error::Error::new(format!(
                "{flag} serves EnvironmentSyncs, and their controller is not run"
            ))
            .with_help(format!("add environmentsync to --controllers, or leave {flag} out")));
        }
    }
    // Read before anything starts: a wrong flag or an unreadable file stops the operator here.
    let ui_sign_in = UiSignIn::from_args(args)?;
    let connect = super::connect_options(&args.cluster);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| weaver_core::error::Error::new(format!("cannot start the operator's runtime: {err}")))?;
    runtime.block_on(async {
        // Heard from here on: a pod stopped while the API server does not answer exits at once,
        // not when the kubelet kills it at the end of its grace period.
        let shutdown = Shutdown::listen()
            .map_err(|err| weaver_core::error::Error::new(format!("cannot listen for SIGTERM: {}", weaver_core::error::io_reason(&err))))?;
        let stopped_while = |doing: &str| -> weaver_core::error::Result<ExitCode> {
            tracing::info!("stopped (SIGTERM or Ctrl-C) while {doing}, before any controller started");
            Ok(ExitCode::SUCCESS)
        };
        let Some(found) = shutdown.before(weaver_cluster::kube_config(&connect)).await else {
            return stopped_while("reading the cluster's configuration");
        };
        let (config, info) = found?;
        let config = weaver_cluster::for_watching(config);
        let reaching = format!("reaching the API server {}", info.server);
        // One connection: the controller drives its client, the leader election its Lease.
        let budget = weaver_cluster::operator_budget(&config, args.kube_api_qps, args.kube_api_burst);
        let Some((rate, budgeted)) = shutdown.before(budget).await else { return stopped_while(&reaching) };
        match budgeted {
            weaver_cluster::Budgeted::ByTheServer => tracing::info!(
                "the API server runs API Priority and Fairness: no client-side budget of requests (--kube-api-qps sets one)"
            ),
            weaver_cluster::Budgeted::ByDefault { unknown: Some(reason) } => tracing::warn!(
                "cannot tell whether the API server runs API Priority and Fairness ({reason}): 50 requests a second, 300 at once"
            ),
            weaver_cluster::Budgeted::ByDefault { unknown: None } => {
                tracing::info!("the API server does not run API Priority and Fairness: 50 requests a second, 300 at once")
            }
            weaver_cluster::Budgeted::AsGiven => {}
        }
        let connecting = weaver_cluster::Cluster::from_config(config.clone(), info, rate.as_ref());
        let Some(cluster) = shutdown.before(connecting).await else { return stopped_while(&reaching) };
        let cluster = cluster?;
        let client = cluster.client();
        tracing::info!(context = %cluster.info.context, server = %cluster.info.server, controllers = ?args.controllers, "starting");
        let telemetry = std::sync::Arc::new(weaver_controllers::telemetry::Telemetry::default());
        let settings = weaver_controllers::configmapsync::controller::Settings {
            label_selector: selector.clone(),
            concurrency: args.max_concurrent_reconciles,
            rate: rate.clone(),
            telemetry: telemetry.clone(),
        };
        let gitops = match args.controllers.contains(&ControllerKind::Environmentsync) {
            false => None,
            true => Some(std::sync::Arc::new(gitops_shared(
                args,
                &client,
                &config,
                &cluster.info,
                rate.as_ref(),
                &telemetry,
                &shutdown,
            )?)),
        };
        let listener = listen("--metrics-addr", args.metrics_addr).await?;
        let address = listener.local_addr().unwrap_or(args.metrics_addr);
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
        let limits = args.http.limits();
        tokio::spawn(weaver_controllers::endpoints::serve(
            listener,
            limits.clone(),
            telemetry.clone(),
            std::future::pending(),
        ));
        // The probes apart, where asked: whoever may reach the metrics port cannot fill its
        // connections and fail the kubelet's probes (the chart's NetworkPolicy lets only the node
        // reach this one).
        if let Some(address) = args.health_addr {
            let listener = listen("--health-addr", address).await?;
            let bound = listener.local_addr().unwrap_or(address);
            tracing::info!(address = %bound, "serving /healthz and /readyz for the probes");
            let probes = weaver_controllers::endpoints::serve(listener, limits.clone(), telemetry.clone(), std::future::pending());
            tokio::spawn(probes);
        }
        if let Some(address) = args.conversion_addr {
            let listener = listen("--conversion-addr", address).await?;
            let namespace = std::env::var("POD_NAMESPACE").ok().filter(|ns| !ns.is_empty()).ok_or_else(|| {
                weaver_core::error::Error::new("--conversion-addr keeps its certificates in the controller's namespace")
                    .with_help("set POD_NAMESPACE (the chart does)")
            })?;
            let service = args.conversion_service.clone().unwrap_or_default();
            let options = weaver_controllers::conversion::Options {
                hosts: vec![format!("{service}.{namespace}.svc")],
                client_config: weaver_controllers::conversion::service(&namespace, &service),
                namespace,
                secret: args.conversion_secret.clone(),
                crds: args
                    .controllers
                    .contains(&ControllerKind::Environmentsync)
                    .then(|| weaver_controllers::gitops::CRD_NAME.to_string())
                    .into_iter()
                    .collect(),
                limits: limits.clone(),
            };
            let serving = weaver_controllers::conversion::serve(client.clone(), options, listener, std::future::pending())
                .await
                .map_err(|err| weaver_core::error::Error::new(format!("the conversion webhook: {err}")))?;
            tracing::info!(%address, "serving the EnvironmentSync CRD's conversion webhook on POST {}", weaver_controllers::conversion::PATH);
            tokio::spawn(serving);
        }
        if let Some(address) = args.webhook_addr {
            let listener = listen("--webhook-addr", address).await?;
            tracing::info!(%address, "receiving webhooks on POST /hook/NAMESPACE/NAME");
            // Every replica receives: an annotation is all it writes, the leader acts on it.
            let metrics = telemetry.environmentsync.clone();
            let settings = weaver_controllers::gitops::webhook::Settings {
                limits: limits.clone(),
                trusted_proxies: args.webhook_trusted_proxies.clone(),
                ..Default::default()
            };
            let served = weaver_controllers::gitops::webhook::serve(
                listener,
                settings,
                client.clone(),
                metrics,
                std::future::pending(),
            );
            tokio::spawn(served);
        }
        if let Some(address) = args.ui_address {
            let listener = listen("--ui-address", address).await?;
            let bound = listener.local_addr().unwrap_or(address);
            match &ui_sign_in.oidc {
                Some(oidc) => tracing::info!(
                    "serving the web UI on http://{bound}/: users sign in at {} or with a token the API server accepts",
                    oidc.issuer
                ),
                None => tracing::info!(
                    "serving the web UI on http://{bound}/: users sign in with a token the API server accepts"
                ),
            }
            // Every replica serves, from a watch of its own: followers run no controller.
            let (syncs, watching) = weaver_cluster::SyncCache::watch(client.clone(), selector.as_deref());
            tokio::spawn(watching);
            let sign_in = ui_sign_in.clone();
            let ui = UiServing { syncs, gitops: gitops.clone(), sign_in, limits: limits.clone() };
            let serving = serve_ui(connect.clone(), client.clone(), ui, listener, std::future::pending());
            let liveness = telemetry.liveness.clone();
            tokio::spawn(async move {
                if let Err(err) = serving.await {
                    tracing::error!("the web UI stopped: {err}");
                    liveness.stopped("the web UI", err.to_string());
                }
            });
        }
        let election = match args.leader_elect {
            false => None,
            true => {
                let namespace = args
                    .leader_election_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|ns| !ns.is_empty()))
                    .ok_or_else(|| {
                        weaver_core::error::Error::new("--leader-elect needs a namespace for its Lease").with_help(
                            "give --leader-election-namespace NAMESPACE, or set POD_NAMESPACE (the chart does)",
                        )
                    })?;
                let mut lease = weaver_cluster::LockOptions::leadership(&namespace, &lease_name, args.leader_election_lease_duration);
                lease.replica = args.leader_election_deployment.as_deref().map(deployment_replica).transpose()?;
                Some((cluster, lease))
            }
        };
        let on_role = |role: Role| match role {
            Role::Leading => tracing::info!("leading: reconciling"),
            Role::Following { leader } => tracing::info!(%leader, "following: another replica leads"),
        };
        let ready = |standby| telemetry.readiness.set_standby(standby);
        let configmapsync = args.controllers.contains(&ControllerKind::Configmapsync);
        let readiness = telemetry.readiness.clone();
        let concurrent = args.concurrent;
        // The leader moves the objects of the CRDs it serves to their storage version.
        let stored_crds: Vec<&'static str> = [
            (ControllerKind::Environmentsync, weaver_controllers::gitops::CRD_NAME),
            (ControllerKind::Configmapsync, weaver_controllers::configmapsync::CRD_NAME),
        ]
        .into_iter()
        .filter(|(kind, _)| args.controllers.contains(kind))
        .map(|(_, crd)| crd)
        .collect();
        let migrating_client = client.clone();
        weaver_controllers::election::lead(election, ready, on_role, shutdown.requested(), |stopped| async move {
            let mut stopped = stopped.split(3).into_iter();
            let mut signal = || stopped.next().expect("three signals");
            let (first, second, third) = (signal(), signal(), signal());
            let migrating = weaver_controllers::stored::migrate(migrating_client, stored_crds, third);
            let configmapsyncs = async {
                if configmapsync {
                    weaver_controllers::configmapsync::controller::run(client, config, settings, first).await
                }
            };
            let environmentsyncs = async {
                if let Some(shared) = gitops {
                    let settings = weaver_controllers::gitops::controller::Settings {
                        label_selector: selector,
                        concurrency: concurrent,
                        readiness: readiness.clone(),
                    };
                    weaver_controllers::gitops::controller::run(shared, settings, second).await
                }
            };
            tokio::join!(configmapsyncs, environmentsyncs, migrating);
        })
        .await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// This replica of `deployment`, as the Downward API variables the chart sets describe its Pod.
fn deployment_replica(deployment: &str) -> weaver_core::Result<weaver_cluster::DeploymentReplica> {
    let variable = |name: &str, what: &str| {
        std::env::var(name).ok().filter(|value| !value.is_empty()).ok_or_else(|| {
            weaver_core::error::Error::new(format!("--leader-election-deployment needs {name}: {what}"))
                .with_help(format!("set {name} from the Downward API (the chart does)"))
        })
    };
    Ok(weaver_cluster::DeploymentReplica {
        namespace: variable("POD_NAMESPACE", "the namespace of the Deployment and its ReplicaSets")?,
        deployment: deployment.to_string(),
        pod_template_hash: variable(
            "POD_TEMPLATE_HASH",
            "the Pod's pod-template-hash label, which names its ReplicaSet",
        )?,
    })
}

/// What the EnvironmentSync controller's reconciles share: the git and chart caches, tenants' tokens.
fn gitops_shared(
    args: &OperatorRunArgs,
    client: &kube::Client,
    config: &kube::Config,
    info: &weaver_cluster::ClusterInfo,
    rate: Option<&weaver_cluster::RequestRate>,
    telemetry: &weaver_controllers::telemetry::Telemetry,
    shutdown: &Shutdown,
) -> weaver_core::error::Result<weaver_controllers::gitops::reconcile::Shared> {
    let dir = args.cache_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("weaver-cache"));
    let limits = weaver_source::CacheLimits {
        max_disk_bytes: args.cache_max_mib.saturating_mul(1 << 20),
        max_repositories: 1000,
    };
    // One budget: a chart or an artifact pulled may remove a mirror no reconcile reads, and the
    // reverse.
    let budget = weaver_source::Budget::new(limits);
    let cache = weaver_source::GitCache::new(dir.clone(), budget.clone()).map_err(|err| err.context("--cache-dir"))?;
    let charts =
        weaver_source::ChartCache::new(dir.join("charts"), budget.clone()).map_err(|err| err.context("--cache-dir"))?;
    let artifacts =
        weaver_source::ArtifactCache::new(dir.join("artifacts"), budget).map_err(|err| err.context("--cache-dir"))?;
    Ok(weaver_controllers::gitops::reconcile::Shared {
        client: client.clone(),
        info: info.clone(),
        tenants: weaver_controllers::tenant::Tenants::new(client.clone(), config.clone(), rate.cloned()),
        cache: std::sync::Arc::new(cache),
        charts: std::sync::Arc::new(charts),
        artifacts: std::sync::Arc::new(artifacts),
        default_account: args.default_service_account.clone(),
        cross_namespace_refs: args.allow_cross_namespace_refs,
        metrics: telemetry.environmentsync.clone(),
        // On this runtime: the UI's page views read through it from runtimes of their own.
        live: weaver_cluster::LiveCache::on_current_runtime(),
        lock_lease: args.lock_lease_duration,
        // Read once: a key mounted from a Secret is replaced by restarting the pod.
        record_key: weaver_secrets::record_key::RecordKey::from_environment()?,
        stopping: shutdown.heard.clone(),
        clock: weaver_controllers::gitops::reconcile::Clock::system(),
        registries: Default::default(),
        renders: weaver_controllers::gitops::renders::Renders::on_every_core(
            weaver_controllers::gitops::renders::Renders::isolated(
                weaver_controllers::gitops::renders::Renders::limits_of(
                    args.render.max_rendered_bytes,
                    args.render.max_values_bytes,
                    args.render.max_template_steps,
                ),
                super::this_program(),
                args.render.max_render_memory,
            ),
        ),
    })
}

/// Serves the controller's UI on `listener` until `shutdown` completes: the pages of `syncs`
/// (the controller's watch) and of what each applied (read as `gitops`'s reconciles read it),
/// to users who sign in (the proxies trusted to name the client,
/// how often a token is reviewed again: `--ui-trusted-proxies`, `--ui-review-every`);
/// TokenReviews and SubjectAccessReviews asked with `client`, actions taken as `connect` (the
/// controller's identity) once the API server says the user may; each told in the log.
pub async fn serve_ui(
    connect: weaver_cluster::ConnectOptions,
    client: kube::Client,
    ui: UiServing,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> weaver_core::error::Result<()> {
    let UiServing { syncs, gitops, sign_in, limits } = ui;
    let options = weaver_ui::Options {
        // The controller serves no repository's environments (those pages answer 404).
        repo: std::path::PathBuf::new(),
        connect,
        namespace: None,
        // The pages it serves decrypt nothing: no key of the pod is looked for.
        keys: weaver_engine::action::Keys::Given {
            origin: "the controller's UI".into(),
            identities: std::sync::Arc::new(secrecy::SecretString::from("")),
        },
        concurrency: weaver_cluster::DEFAULT_CONCURRENCY,
        rollback: super::default_apply_settings(),
        redactor: weaver_secrets::Redactor::default(),
        on: std::sync::Arc::new(|progress| match progress {
            weaver_engine::action::Progress::Status(line) => tracing::info!("{line}"),
            weaver_engine::action::Progress::Warning(line) => tracing::warn!("{line}"),
            _ => {}
        }),
        sign_in: Some(weaver_ui::SignIn {
            client,
            syncs,
            gitops,
            trusted_proxies: sign_in.trusted_proxies,
            review_every: sign_in.review_every,
            max_age: sign_in.max_age,
            oidc: sign_in.oidc,
        }),
        http_limits: limits,
    };
    weaver_ui::serve(options, listener, shutdown).await
}

/// What the controller's UI serves, and within what.
pub struct UiServing {
    pub syncs: weaver_cluster::SyncCache,
    pub gitops: Option<std::sync::Arc<weaver_controllers::gitops::reconcile::Shared>>,
    pub sign_in: UiSignIn,
    pub limits: weaver_controllers::http::Limits,
}

/// How users sign in to the controller's web UI, from the `--ui-*` flags.
#[derive(Clone)]
pub struct UiSignIn {
    /// `--ui-trusted-proxies`
    pub trusted_proxies: Vec<weaver_ui::proxy::Cidr>,
    /// `--ui-review-every`
    pub review_every: std::time::Duration,
    /// `--ui-session-max-age`
    pub max_age: std::time::Duration,
    /// `--ui-oidc-*`; None: tokens only.
    pub oidc: Option<weaver_ui::OidcConfig>,
}

impl UiSignIn {
    /// Sign-in with tokens only, sessions of 8 hours at most.
    pub fn tokens_only(review_every: std::time::Duration) -> UiSignIn {
        let max_age = std::time::Duration::from_secs(8 * 3600);
        UiSignIn { trusted_proxies: Vec::new(), review_every, max_age, oidc: None }
    }

    fn from_args(args: &OperatorRunArgs) -> weaver_core::error::Result<UiSignIn> {
        Ok(UiSignIn {
            trusted_proxies: args.ui_trusted_proxies.clone(),
            review_every: args.ui_review_every,
            max_age: args.ui_session_max_age,
            oidc: oidc_config(args)?,
        })
    }
}

/// The OIDC provider of the web UI, as `--ui-oidc-*` and `--ui-url` name it; its client secret
/// and CA read from their files.
fn oidc_config(args: &OperatorRunArgs) -> weaver_core::error::Result<Option<weaver_ui::OidcConfig>> {
    use weaver_core::error::Error;
    let (issuer, client_id) = match (&args.ui_oidc_issuer, &args.ui_oidc_client_id) {
        (Some(issuer), Some(client_id)) => (issuer.clone(), client_id.clone()),
        (None, None) => {
            let given = [
                ("--ui-oidc-client-secret-file", args.ui_oidc_client_secret_file.is_some()),
                ("--ui-oidc-ca-file", args.ui_oidc_ca_file.is_some()),
                ("--ui-oidc-groups-claim", args.ui_oidc_groups_claim.is_some()),
                ("--ui-oidc-username-prefix", args.ui_oidc_username_prefix.is_some()),
                ("--ui-oidc-required-claim", !args.ui_oidc_required_claim.is_empty()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(Error::new(format!("{flag} is given without --ui-oidc-issuer"))
                    .with_help("OIDC sign-in needs --ui-oidc-issuer, --ui-oidc-client-id and --ui-url"));
            }
            return Ok(None);
        }
        (Some(_), None) => {
            return Err(Error::new("--ui-oidc-issuer is given without --ui-oidc-client-id")
                .with_help("give the web UI's client id at the provider in --ui-oidc-client-id"));
        }
        (None, Some(_)) => {
            return Err(Error::new("--ui-oidc-client-id is given without --ui-oidc-issuer")
                .with_help("give the provider's issuer URL in --ui-oidc-issuer"));
        }
    };
    let ui_url = match &args.ui_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url.clone(),
        Some(url) => return Err(Error::new(format!("--ui-url {url:?} is not an http(s) URL"))),
        None => {
            return Err(Error::new("--ui-oidc-issuer needs --ui-url").with_help(
                "give the web UI's URL as browsers reach it: the provider redirects back to URL/oidc/callback",
            ));
        }
    };
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|err| Error::new(format!("cannot read {flag} {}: {err}", path.display())))
    };
    let client_secret = match &args.ui_oidc_client_secret_file {
        Some(path) => {
            let bytes = read("--ui-oidc-client-secret-file", path)?;
            let secret = String::from_utf8(bytes).map_err(|_| {
                Error::new(format!("--ui-oidc-client-secret-file {} is not UTF-8 text", path.display()))
            })?;
            // A Secret's file often ends with a newline the secret does not have.
            let secret = secret.trim_end_matches(['\n', '\r']);
            if secret.is_empty() {
                return Err(Error::new(format!("--ui-oidc-client-secret-file {} is empty", path.display())));
            }
            Some(secrecy::SecretString::from(secret.to_string()))
        }
        None => None,
    };
    let ca_pem = args.ui_oidc_ca_file.as_deref().map(|path| read("--ui-oidc-ca-file", path)).transpose()?;
    let mapping = weaver_ui::ClaimMapping {
        username_claim: args.ui_oidc_username_claim.clone(),
        username_prefix: args.ui_oidc_username_prefix.clone(),
        groups_claim: args.ui_oidc_groups_claim.clone(),
        groups_prefix: args.ui_oidc_groups_prefix.clone(),
        required_claims: args.ui_oidc_required_claim.clone(),
    };
    let scopes = args.ui_oidc_scopes.iter().filter(|scope| !scope.is_empty() && *scope != "openid").cloned().collect();
    Ok(Some(weaver_ui::OidcConfig { issuer, client_id, client_secret, ui_url, scopes, mapping, ca_pem }))
}

/// A listener on `address`, which `flag` gave. An unspecified address (`0.0.0.0`, `::`) is
/// every address of the pod, IPv6 and IPv4, as Go's `net.Listen` has it: an IPv6-only
/// cluster's probes reach the chart's `0.0.0.0:PORT`. Where the pod has no IPv6, IPv4 only.
async fn listen(flag: &str, address: std::net::SocketAddr) -> weaver_core::error::Result<tokio::net::TcpListener> {
    let cannot = |err: std::io::Error| {
        weaver_core::error::Error::new(format!(
            "{flag} {address}: cannot listen there: {}",
            weaver_core::error::io_reason(&err)
        ))
    };
    if address.ip().is_unspecified() {
        match every_address(address.port()) {
            Ok(listener) => return tokio::net::TcpListener::from_std(listener).map_err(cannot),
            // No IPv6 in the pod (disabled in the kernel, or no address to bind): IPv4 only.
            Err(err) if matches!(err.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)) => {
                let ipv4 = std::net::SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), address.port());
                return tokio::net::TcpListener::bind(ipv4).await.map_err(cannot);
            }
            Err(err) => return Err(cannot(err)),
        }
    }
    tokio::net::TcpListener::bind(address).await.map_err(cannot)
}

/// A socket on `[::]:port` that takes IPv4 connections too (IPV6_V6ONLY off, whatever the
/// system's default), non-blocking as tokio wants it.
fn every_address(port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's bind: a restarted process listens again at once.
    socket.set_reuse_address(true)?;
    socket.bind(&std::net::SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), port).into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// SIGTERM (a pod being stopped) or Ctrl-C (SIGINT), heard from [`Shutdown::listen`] on.
struct Shutdown {
    /// Set once the signal came: what applies check between objects.
    heard: std::sync::Arc<std::sync::atomic::AtomicBool>,
    told: tokio::sync::watch::Receiver<bool>,
}

impl Shutdown {
    /// Installs the handlers (on the current runtime): from now on the signals stop the
    /// process gracefully instead of being ignored, as a PID 1 without handlers ignores them.
    fn listen() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut interrupt) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
        let heard = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tell, told) = tokio::sync::watch::channel(false);
        let set = heard.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            set.store(true, std::sync::atomic::Ordering::SeqCst);
            tell.send_replace(true);
            // Kept: receivers wait on the value, which a dropped sender would end early.
            std::future::pending::<()>().await;
        });
        Ok(Shutdown { heard, told })
    }

    /// Completes once the signal came.
    fn requested(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut told = self.told.clone();
        async move {
            loop {
                if *told.borrow_and_update() {
                    return;
                }
                // The sender lives as long as the runtime: only a runtime shutting down ends it.
                if told.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }

    /// What `work` gives, or None when the signal comes first (`work` is then dropped).
    async fn before<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.requested() => None,
            done = work => Some(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use secrecy::ExposeSecret;

    /// `weaver operator run --ui-address 127.0.0.1:0` with `flags`, as clap parses it.
    fn run_args(flags: &[&str]) -> Box<crate::cli::OperatorRunArgs> {
        use clap::Parser;
        let args = ["weaver", "operator", "run", "--ui-address", "127.0.0.1:0"].iter().chain(flags);
        match crate::cli::Cli::try_parse_from(args).map(|cli| cli.command) {
            Ok(crate::cli::Command::Operator(crate::cli::OperatorCommand::Run(run))) => run,
            Ok(_) => panic!("not operator run"),
            Err(err) => panic!("{}", err.render()),
        }
    }

    #[test]
    fn the_oidc_flags_name_what_is_missing_and_read_the_client_secret_from_its_file() {
        let refused = |flags: &[&str]| match super::oidc_config(&run_args(flags)) {
            Ok(_) => panic!("{flags:?} accepted"),
            Err(err) => err.to_string(),
        };
        let issuer = ["--ui-oidc-issuer", "https://id.example.com"];
        assert!(refused(&issuer).contains("--ui-oidc-issuer is given without --ui-oidc-client-id"));
        let client = ["--ui-oidc-client-id", "weaver"];
        assert!(refused(&client).contains("--ui-oidc-client-id is given without --ui-oidc-issuer"));
        assert!(refused(&[issuer, client].concat()).contains("--ui-oidc-issuer needs --ui-url"));
        let stray = ["--ui-oidc-groups-claim", "groups"];
        assert!(refused(&stray).contains("--ui-oidc-groups-claim is given without --ui-oidc-issuer"));
        assert!(super::oidc_config(&run_args(&[])).unwrap().is_none(), "tokens only");

        let dir = std::env::temp_dir().join(format!("weaver-oidc-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("client-secret");
        let path = file.to_str().unwrap();
        let given = [
            &issuer[..],
            &client,
            &["--ui-url", "https://weaver.example.org", "--ui-oidc-scopes", "openid,email,groups"],
        ]
        .concat();
        let with_secret = [&given[..], &["--ui-oidc-client-secret-file", path]].concat();
        assert!(refused(&with_secret).contains(&format!("cannot read --ui-oidc-client-secret-file {path}")));
        // A Secret's file with the newline `kubectl create secret --from-file` often keeps.
        std::fs::write(&file, "s3cret-value\n").unwrap();
        let config = super::oidc_config(&run_args(&with_secret)).unwrap().expect("OIDC configured");
        assert_eq!(
            config.client_secret.as_ref().map(|s| s.expose_secret().to_string()).as_deref(),
            Some("s3cret-value")
        );
        assert_eq!(config.scopes, ["email", "groups"], "openid is always asked, once");
        assert_eq!(config.ui_url, "https://weaver.example.org");
        std::fs::write(&file, "\n").unwrap();
        let empty = refused(&with_secret);
        assert!(empty.contains("is empty"), "{empty}");
        assert!(super::oidc_config(&run_args(&given)).unwrap().unwrap().client_secret.is_none(), "a public client");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use super::{KUBE_CLIENT_BODIES_TARGET, KUBE_WATCHER_TARGET, LogFormat, log_subscriber};

    /// What the operator's logs print of events inside a reconcile's span (as kube's
    /// controller opens one) under `rust_log`, in `format`.
    fn logged(rust_log: Option<&str>, format: LogFormat) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let writer = move || Sink(sink.clone());
        let logs = log_subscriber(rust_log, 0, format, false, writer);
        tracing::subscriber::with_default(logs, || {
            let _reconcile = tracing::info_span!(target: "kube_runtime::controller", "reconciling object").entered();
            tracing::warn!(target: KUBE_CLIENT_BODIES_TARGET, "BODY-AT-WARN");
            tracing::trace!(target: KUBE_CLIENT_BODIES_TARGET, "BODY-AT-TRACE");
            tracing::error!(target: KUBE_CLIENT_BODIES_TARGET, "KUBE-ERROR");
            tracing::warn!(target: KUBE_WATCHER_TARGET, "WATCH-403-DUMP");
            tracing::warn!(target: "kube_client::client::tls", "TLS-WARNING");
            tracing::info!(target: "weaver_controllers::gitops", "WEAVER-INFO");
            tracing::debug!(target: "weaver_controllers::gitops", "WEAVER-DEBUG");
        });
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_unspecified_address_listens_on_ipv6_and_ipv4_and_a_given_one_on_itself() {
        let listener = super::listen("--metrics-addr", "0.0.0.0:0".parse().unwrap()).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The test machine may have no IPv6 (then the listener is IPv4's only).
        let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
        let mut reached = vec!["127.0.0.1"];
        if ipv6 {
            reached.push("::1");
        }
        for host in reached {
            let connecting = tokio::net::TcpStream::connect((host, port));
            let (connected, accepted) = tokio::join!(connecting, listener.accept());
            assert!(connected.is_ok() && accepted.is_ok(), "{host}: {connected:?} {accepted:?}");
        }
        let loopback = super::listen("--ui-address", "127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert!(loopback.local_addr().unwrap().is_ipv4());
        if ipv6 {
            let port = loopback.local_addr().unwrap().port();
            assert!(tokio::net::TcpStream::connect(("::1", port)).await.is_err(), "a given address is that one only");
        }
    }

    #[test]
    fn kube_clients_answer_bodies_are_never_logged_whatever_rust_log_says() {
        let rust_logs = [
            None,
            Some("trace"),
            Some("kube_client::client=trace"),
            Some("warn,kube_client=debug"),
            Some("info,[reconciling object]=trace"),
        ];
        for format in [LogFormat::Text, LogFormat::Json] {
            for rust_log in rust_logs {
                let logged = logged(rust_log, format);
                assert!(!logged.contains("BODY-AT"), "{rust_log:?} {format:?}: {logged}");
                assert!(!logged.contains("WATCH-403-DUMP"), "{rust_log:?} {format:?}: {logged}");
                assert!(logged.contains("KUBE-ERROR"), "{rust_log:?} {format:?}: {logged}");
                assert!(logged.contains("TLS-WARNING"), "{rust_log:?} {format:?}: {logged}");
            }
        }
        // Everything else follows RUST_LOG, or info without it (and when it does not parse).
        let text = |rust_log| logged(rust_log, LogFormat::Text);
        assert!(text(Some("trace")).contains("WEAVER-DEBUG"));
        let default = text(None);
        assert!(default.contains("WEAVER-INFO") && !default.contains("WEAVER-DEBUG"), "{default}");
        assert!(text(Some("not a [filter")).contains("WEAVER-INFO"));
        let warn = text(Some("warn"));
        assert!(!warn.contains("WEAVER-INFO") && warn.contains("TLS-WARNING"), "{warn}");
    }

    /// `-v` shows the debug events of weaver's crates that log, not those of kube's.
    #[test]
    fn verbose_logs_are_every_logging_crates_debug_events() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let logs = log_subscriber(None, 1, LogFormat::Text, false, move || Sink(sink.clone()));
        tracing::subscriber::with_default(logs, || {
            tracing::debug!(target: "weaver_controllers::gitops::controller", "CONTROLLER-DEBUG");
            tracing::debug!(target: "kube_runtime::controller", "KUBE-DEBUG");
        });
        let logged = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("CONTROLLER-DEBUG") && !logged.contains("KUBE-DEBUG"), "{logged}");
    }
}
