//! `weaver operator run` (the controller, logging through `tracing`) and `weaver operator crd`
//! (the CRD as YAML, the same bytes the chart ships in `charts/configmapsync-operator/crds/`).

use std::process::ExitCode;

use std::time::Duration;

use crate::cli::{GlobalArgs, LogFormat, OperatorCommand, OperatorRunArgs};
use crate::operator::controller::Role;

/// The leader Lease, named after the controller.
const LEASE_NAME: &str = crate::operator::controller::CONTROLLER_NAME;
/// As client-go's leader election: a leader that stops renewing is replaced after 15 s.
const LEASE_DURATION: Duration = Duration::from_secs(15);

pub fn run(global: &GlobalArgs, command: &OperatorCommand) -> crate::Result<ExitCode> {
    match command {
        OperatorCommand::Crd => {
            super::write_stdout(crate::yaml::to_yaml_string(&crate::operator::crd()).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Run(args) => run_controller(global, args),
    }
}

/// kube's client logs the whole body of an answer it cannot parse (at warn) and of a Status
/// (at trace): a TokenRequest's answer holds a token. Its module logs at most errors, whatever
/// `RUST_LOG` says.
const KUBE_CLIENT_BODIES: &str = "kube_client::client=error";

/// The operator's log filter: `rust_log` (RUST_LOG), when set and valid, says what to log, else
/// info (-v: weaver's debug too); never kube's client's answers.
fn log_filter(rust_log: Option<&str>, verbose: u8) -> tracing_subscriber::EnvFilter {
    let default_level = if verbose > 0 { "info,weaver=debug" } else { "info" };
    let filter = rust_log
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_level));
    filter.add_directive(KUBE_CLIENT_BODIES.parse().expect("a valid directive"))
}

fn run_controller(global: &GlobalArgs, args: &OperatorRunArgs) -> crate::Result<ExitCode> {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), global.verbose);
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(super::Ui::new(global).color_stderr).init(),
    }
    // Checked here, so a typo is an error naming the flag, not a watch the server keeps refusing.
    crate::project::selector::Selector::parse_all(args.selector.as_slice())?;
    let connect = super::connect_options(&args.cluster);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| crate::Error::new(format!("cannot start the operator's runtime: {err}")))?;
    runtime.block_on(async {
        let (config, info) = crate::cluster::kube_config(&connect).await?;
        let config = crate::cluster::for_watching(config);
        // One connection: the controller drives its client, the leader election its Lease.
        let rate = crate::cluster::RequestRate::new(args.kube_api_qps, args.kube_api_burst)
            .ok_or_else(|| crate::Error::new("--kube-api-qps and --kube-api-burst must be positive"))?;
        let cluster = crate::cluster::Cluster::from_config(config.clone(), info, Some(&rate)).await?;
        let client = cluster.client();
        tracing::info!(context = %cluster.info.context, server = %cluster.info.server, "starting the ConfigMapSync controller");
        let telemetry = std::sync::Arc::new(crate::operator::telemetry::Telemetry::default());
        let settings = crate::operator::controller::Settings {
            label_selector: args.selector.clone(),
            concurrency: args.max_concurrent_reconciles,
            rate: Some(rate),
            telemetry: telemetry.clone(),
        };
        let listener = tokio::net::TcpListener::bind(args.metrics_addr).await.map_err(|err| {
            crate::Error::new(format!(
                "--metrics-addr {}: cannot listen there: {}",
                args.metrics_addr,
                crate::error::io_reason(&err)
            ))
        })?;
        tracing::info!(address = %args.metrics_addr, "serving /healthz, /readyz and /metrics");
        tokio::spawn(crate::operator::endpoints::serve(listener, telemetry, std::future::pending()));
        let election = match args.leader_elect {
            false => None,
            true => {
                let namespace = args
                    .leader_election_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|ns| !ns.is_empty()))
                    .ok_or_else(|| {
                        crate::Error::new("--leader-elect needs a namespace for its Lease").with_help(
                            "give --leader-election-namespace NAMESPACE, or set POD_NAMESPACE (the chart does)",
                        )
                    })?;
                let lease = crate::cluster::LockOptions::leadership(&namespace, LEASE_NAME, LEASE_DURATION);
                Some((cluster, lease))
            }
        };
        let on_role = |role: Role| match role {
            Role::Leading => tracing::info!("leading: reconciling ConfigMapSyncs"),
            Role::Following { leader } => tracing::info!(%leader, "following: another replica leads"),
        };
        crate::operator::controller::run_elected(client, config, settings, election, on_role, shutdown_signal())
            .await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM (a pod being stopped) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    use super::log_filter;

    /// Whether an event of `target` at `level` is logged under the filter for `rust_log`.
    fn logs(rust_log: Option<&str>, target_is_kube: bool, level: Level) -> bool {
        let subscriber = tracing_subscriber::registry().with(log_filter(rust_log, 0));
        tracing::subscriber::with_default(subscriber, || match (target_is_kube, level) {
            (true, Level::WARN) => tracing::enabled!(target: "kube_client::client", Level::WARN),
            (true, Level::TRACE) => tracing::enabled!(target: "kube_client::client", Level::TRACE),
            (true, _) => tracing::enabled!(target: "kube_client::client", Level::ERROR),
            (false, Level::WARN) => tracing::enabled!(target: "weaver::operator", Level::WARN),
            (false, Level::TRACE) => tracing::enabled!(target: "weaver::operator", Level::TRACE),
            (false, _) => tracing::enabled!(target: "weaver::operator", Level::INFO),
        })
    }

    #[test]
    fn kube_clients_answer_bodies_are_never_logged_whatever_rust_log_says() {
        for rust_log in [None, Some("trace"), Some("kube_client::client=trace"), Some("warn,kube_client=debug")] {
            assert!(!logs(rust_log, true, Level::WARN), "{rust_log:?}");
            assert!(!logs(rust_log, true, Level::TRACE), "{rust_log:?}");
            assert!(logs(rust_log, true, Level::ERROR), "{rust_log:?}");
        }
        // Everything else follows RUST_LOG, or info without it (and when it does not parse).
        assert!(logs(Some("trace"), false, Level::TRACE));
        assert!(logs(None, false, Level::INFO) && !logs(None, false, Level::TRACE));
        assert!(logs(Some("not a [filter"), false, Level::INFO));
        assert!(!logs(Some("warn"), false, Level::INFO) && logs(Some("warn"), false, Level::WARN));
    }
}
