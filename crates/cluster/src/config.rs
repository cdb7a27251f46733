//! Which cluster to talk to, from a kubeconfig the way kubectl picks one: `--kubeconfig`, else
//! `KUBECONFIG` (a list of files, merged), else `~/.kube/config`; `--context`, else the
//! environment's `cluster.context`, else the kubeconfig's current context.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::ClusterInfo;
use weaver_core::error::{Error, Location, Result};

/// What the command line and the environment file say about the cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// The context and who asked for it (`--context`, or `cluster.context in environments/dev.yaml`).
    pub context: Option<(String, String)>,
    /// Connect, read and write timeout of every request (`--request-timeout`).
    pub request_timeout: Duration,
    /// How long requests may keep failing before weaver gives up (`--retry-budget`).
    pub retry_budget: Duration,
    /// A cluster the caller hands over (the controller's), instead of a kubeconfig of this
    /// machine.
    pub given: Option<GivenCluster>,
}

/// A cluster to connect to that is not read from this machine's kubeconfig.
#[derive(Debug, Clone)]
pub enum GivenCluster {
    /// This connection as it is: the controller's own cluster, as a tenant's ServiceAccount,
    /// within the controller's budget of requests (`--kube-api-qps`), when it has one. An
    /// environment's `cluster.context` is refused: there is no other cluster to choose.
    /// With `live`, LISTs of weaver's objects are answered from its watches.
    Config {
        config: Box<kube::Config>,
        info: ClusterInfo,
        rate: Option<super::RequestRate>,
        live: Option<super::LiveCache>,
    },
    /// This kubeconfig (from a Secret), among whose contexts `cluster.context` chooses. With
    /// `live` (the cache of that cluster), LISTs of weaver's objects are answered from its
    /// watches.
    Kubeconfig { kubeconfig: Kubeconfig, described: String, live: Option<super::LiveCache> },
}

/// Reads a kubeconfig handed over as text (`described`: `Secret team/prod-cluster`), refusing
/// what would make weaver run a program or read a file of its own machine: `exec` and
/// `auth-provider` users, and certificate, key or token files. Only inline data is taken.
/// `live` is the cluster's cache of live state, when it has one.
pub fn given_kubeconfig(text: &str, described: &str, live: Option<super::LiveCache>) -> Result<GivenCluster> {
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|err| kubeconfig_error(&err, described))?;
    let refuse = |what: String| {
        Err(Error::new(format!("{described}: {what}, which a kubeconfig handed to the controller may not use"))
            .with_help(
                "inline the credentials (token, client-certificate-data, client-key-data, certificate-authority-data)",
            ))
    };
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else { continue };
        let files =
            [("exec", user.exec.is_some()), ("auth-provider", user.auth_provider.is_some())].into_iter().chain([
                ("tokenFile", user.token_file.is_some()),
                ("client-certificate", user.client_certificate.is_some()),
                ("client-key", user.client_key.is_some()),
            ]);
        if let Some((field, _)) = files.into_iter().find(|(_, set)| *set) {
            return refuse(format!("user `{}` sets {field}", named.name));
        }
    }
    for named in &kubeconfig.clusters {
        if named.cluster.as_ref().is_some_and(|c| c.certificate_authority.is_some()) {
            return refuse(format!("cluster `{}` sets certificate-authority (a file)", named.name));
        }
    }
    Ok(GivenCluster::Kubeconfig { kubeconfig, described: described.to_string(), live })
}

impl ConnectOptions {
    /// The cache of live state the caller hands over with its cluster.
    pub(super) fn live(&self) -> Option<&super::LiveCache> {
        match &self.given {
            Some(GivenCluster::Config { live, .. } | GivenCluster::Kubeconfig { live, .. }) => live.as_ref(),
            None => None,
        }
    }

    /// These options with a retry budget no longer than `timeout` (apply's `--timeout`): a run
    /// told to give up on readiness after 30 s does not wait a minute for a server to come back.
    pub fn retrying_within(mut self, timeout: Duration) -> ConnectOptions {
        self.retry_budget = self.retry_budget.min(timeout);
        self
    }
}

/// The connection settings of the selected context, with the request timeout. In a pod with
/// no kubeconfig at all (no --kubeconfig, KUBECONFIG, ~/.kube/config or context), the pod's
/// ServiceAccount, as kubectl does.
pub async fn config(options: &ConnectOptions) -> Result<(kube::Config, ClusterInfo)> {
    if let Some(GivenCluster::Config { config, info, .. }) = &options.given {
        if let Some((name, origin)) = &options.context {
            return Err(Error::new(format!(
                "context `{name}` (from {origin}) cannot be used: this EnvironmentSync applies to the cluster it runs in"
            ))
            .with_help("remove cluster.context from the environment, or give the EnvironmentSync spec.kubeConfig.secretRef, a kubeconfig that defines the context"));
        }
        let info = ClusterInfo {
            request_timeout: options.request_timeout,
            retry_budget: options.retry_budget,
            ..info.clone()
        };
        return Ok((with_client_settings(kube::Config::clone(config), options.request_timeout), info));
    }
    let in_a_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty());
    let (kubeconfig, described) = match read_kubeconfig(options)? {
        Some(found) => found,
        None if in_a_pod && options.context.is_none() => return in_cluster(options),
        None => return Err(no_kubeconfig()),
    };
    let context = match &options.context {
        Some((name, origin)) => {
            if !kubeconfig.contexts.iter().any(|c| &c.name == name) {
                let known: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::new(format!("context `{name}` (from {origin}) is not in {described}")).with_help(
                    if known.is_empty() {
                        "the kubeconfig defines no contexts".to_string()
                    } else {
                        format!("contexts defined there: {}", known.join(", "))
                    },
                ));
            }
            name.clone()
        }
        None => kubeconfig.current_context.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::new(format!("{described} has no current context"))
                .with_help("pass --context NAME, or set `cluster.context` in the environment file")
        })?,
    };
    check_references(&kubeconfig, &context, &described)?;
    let server = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|ctx| kubeconfig.clusters.iter().find(|cl| cl.name == ctx.cluster))
        .and_then(|cl| cl.cluster.as_ref()?.server.clone())
        .unwrap_or_default();
    let kube_options = KubeConfigOptions { context: Some(context.clone()), cluster: None, user: None };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| kubeconfig_error(&err, &described).with_help(format!("check context `{context}` there")))?;
    // The HTTP layer would panic on a token it cannot put in a header; the token is never shown.
    if static_bearer(&config.auth_info)
        .is_some_and(|token| hyper::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err())
    {
        return Err(Error::new(format!(
            "the user of context `{context}` in {described} has a token that cannot be sent: it holds a line \
             break or another character not allowed in an HTTP header"
        ))
        .with_help("check the token in the kubeconfig (its value is not shown)"));
    }
    let info =
        ClusterInfo { context, server, request_timeout: options.request_timeout, retry_budget: options.retry_budget };
    Ok((with_client_settings(config, options.request_timeout), info))
}

/// The bearer token kube sends as it is written in the kubeconfig, in kube's own order: an
/// auth provider's token, else none when a username and password are set, else `token`.
/// (Tokens read from files or commands are checked by kube when it reads them.)
fn static_bearer(auth: &kube::config::AuthInfo) -> Option<String> {
    use secrecy::ExposeSecret;
    if let Some(provider) = &auth.auth_provider {
        return ["id-token", "access-token"].iter().find_map(|key| provider.config.get(*key).cloned());
    }
    if auth.username.is_some() && auth.password.is_some() {
        return None;
    }
    auth.token.as_ref().map(|token| token.expose_secret().to_string())
}

fn with_client_settings(mut config: kube::Config, timeout: Duration) -> kube::Config {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // weaver retries by itself (`super::retry`), boundedly; kube's layer on top would multiply
    // the attempts and wait minutes on a server that keeps answering 503.
    config.default_retry = false;
    // kube builds TLS settings even for a plain-HTTP server (`kubectl proxy`, a local test
    // server) and, with no certificate authority given, reads the system's whole trust store into
    // them: 11 % of a short command's CPU in the tests' debug build, for a connection that never
    // uses TLS. An HTTPS proxy in front of such a server does use them, so it keeps the system's
    // roots. `insecure-skip-tls-verify` checks no certificate at all: without roots of its own,
    // kube would still read the trust store, and fail where there is none (weaver's image).
    let https_proxy = config.proxy_url.as_ref().is_some_and(|proxy| proxy.scheme_str() == Some("https"));
    let plain_http = config.cluster_url.scheme_str() == Some("http") && !https_proxy;
    if (plain_http || config.accept_invalid_certs) && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
    config
}

/// Nothing names a kubeconfig and there is none to read, but this runs in a pod.
fn in_cluster(options: &ConnectOptions) -> Result<(kube::Config, ClusterInfo)> {
    let config = kube::Config::incluster().map_err(|err| {
        Error::new(format!("cannot use the pod's ServiceAccount to reach the cluster: {err}"))
            .with_help("pass --kubeconfig FILE or set KUBECONFIG to say which cluster to use")
    })?;
    let server = config.cluster_url.to_string();
    let info = ClusterInfo {
        context: "in-cluster".into(),
        server,
        request_timeout: options.request_timeout,
        retry_budget: options.retry_budget,
    };
    Ok((with_client_settings(config, options.request_timeout), info))
}

fn default_kubeconfig() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".kube/config")
}

fn no_kubeconfig() -> Error {
    Error::io("read kubeconfig", &default_kubeconfig(), std::io::ErrorKind::NotFound.into())
        .with_help("pass --kubeconfig FILE or set KUBECONFIG to say which cluster to use")
}

/// The cluster and user a context names must be defined (kube says only "failed to load the
/// cluster of context").
fn check_references(kubeconfig: &Kubeconfig, context: &str, described: &str) -> Result<()> {
    let missing = |what: &str, name: &str| {
        Err(Error::new(format!("context `{context}` names {what} `{name}`, which {described} does not define")))
    };
    let Some(entry) = kubeconfig.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref()) else {
        return Err(Error::new(format!("context `{context}` in {described} has no `context` (cluster and user)")));
    };
    if !kubeconfig.clusters.iter().any(|c| c.name == entry.cluster) {
        return missing("cluster", &entry.cluster);
    }
    match &entry.user {
        Some(user) if !kubeconfig.auth_infos.iter().any(|u| &u.name == user) => missing("user", user),
        _ => Ok(()),
    }
}

/// The merged kubeconfig and how to name it; `None` when nothing names one and the default
/// file does not exist (in a pod, its ServiceAccount is used then).
fn read_kubeconfig(options: &ConnectOptions) -> Result<Option<(Kubeconfig, String)>> {
    if let Some(GivenCluster::Kubeconfig { kubeconfig, described, .. }) = &options.given {
        return Ok(Some((kubeconfig.clone(), described.clone())));
    }
    if let Some(path) = &options.kubeconfig {
        let described = format!("kubeconfig {} (from --kubeconfig)", path.display());
        return match read_file(path)? {
            Some(kubeconfig) => Ok(Some((kubeconfig, described))),
            None => Err(Error::io("read kubeconfig", path, std::io::ErrorKind::NotFound.into())
                .with_help("--kubeconfig names a file that does not exist")),
        };
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let described = format!("kubeconfig {} (from KUBECONFIG)", value.to_string_lossy());
        let paths: Vec<PathBuf> = std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect();
        return match merge_files(&paths)? {
            Some(kubeconfig) => Ok(Some((kubeconfig, described))),
            None => Err(Error::new(format!("none of the files in KUBECONFIG exists ({})", value.to_string_lossy()))
                .with_help("set KUBECONFIG to existing kubeconfig files, or pass --kubeconfig FILE")),
        };
    }
    let path = default_kubeconfig();
    let described = format!("kubeconfig {}", path.display());
    Ok(read_file(&path)?.map(|kubeconfig| (kubeconfig, described)))
}

/// Merges the files of a KUBECONFIG list as kubectl does: missing files are skipped; the first
/// file to define a cluster, user or context (by name) wins, and so does the first to set
/// `current-context`. None when no file exists. (kube's `Kubeconfig::from_env` fails on a
/// missing file and on differing `kind`/`apiVersion`, and counts an empty `current-context`.)
fn merge_files(paths: &[PathBuf]) -> Result<Option<Kubeconfig>> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        if let Some(next) = read_file(path)? {
            merged = Some(match merged {
                None => next,
                Some(first) => merge(first, next),
            });
        }
    }
    Ok(merged)
}

fn merge(mut first: Kubeconfig, next: Kubeconfig) -> Kubeconfig {
    fn add_new<T>(list: &mut Vec<T>, next: Vec<T>, name: impl Fn(&T) -> &str) {
        for item in next {
            if !list.iter().any(|known| name(known) == name(&item)) {
                list.push(item);
            }
        }
    }
    add_new(&mut first.clusters, next.clusters, |c| &c.name);
    add_new(&mut first.auth_infos, next.auth_infos, |u| &u.name);
    add_new(&mut first.contexts, next.contexts, |c| &c.name);
    first.current_context = first.current_context.filter(|c| !c.is_empty()).or(next.current_context);
    first.preferences = first.preferences.or(next.preferences);
    first.extensions = first.extensions.or(next.extensions);
    first
}

/// One kubeconfig file, None if it does not exist. weaver parses it itself so that an error
/// shows the file, line, column and reason only: kube's message quotes the lines around the
/// error, which may hold a token.
fn read_file(path: &Path) -> Result<Option<Kubeconfig>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("read kubeconfig", path, err)),
    };
    let text = decode(bytes)
        .ok_or_else(|| Error::at(Location::file(path), "invalid kubeconfig: the file is not UTF-8 or UTF-16 text"))?;
    parse(path, &text).map(Some)
}

/// UTF-8, or UTF-16 with a byte-order mark (as Windows tools write kubeconfigs; kubectl and
/// kube read those too).
fn decode(bytes: Vec<u8>) -> Option<String> {
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = rest.chunks(2).map(|c| from([c[0], *c.get(1).unwrap_or(&0)])).collect();
        String::from_utf16(&units).ok()
    };
    match bytes.as_slice() {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes).ok(),
    }
}

/// The documents of one kubeconfig file, merged, with its relative paths resolved.
fn parse(path: &Path, text: &str) -> Result<Kubeconfig> {
    let documents: Vec<Kubeconfig> = weaver_yaml::documents_as(path, text, "invalid kubeconfig")?;
    let mut config = Kubeconfig::default();
    for document in documents {
        for (what, names) in [
            ("cluster", document.clusters.iter().map(|c| &c.name).collect::<Vec<_>>()),
            ("user", document.auth_infos.iter().map(|u| &u.name).collect()),
            ("context", document.contexts.iter().map(|c| &c.name).collect()),
        ] {
            if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
                return Err(Error::at(
                    Location::file(path),
                    format!("invalid kubeconfig: {what} `{twice}` is defined twice"),
                ));
            }
        }
        config = merge(config, relative_to(document, path.parent().unwrap_or(Path::new(""))));
    }
    Ok(config)
}

/// Files named in a kubeconfig are relative to the kubeconfig's directory (as in kubectl);
/// an exec command only when it is a path, not a name looked up in PATH.
fn relative_to(mut config: Kubeconfig, dir: &Path) -> Kubeconfig {
    let resolve = |file: &mut Option<String>| {
        if let Some(name) = file.as_mut().filter(|f| Path::new(f.as_str()).is_relative()) {
            *name = dir.join(&*name).to_string_lossy().into_owned();
        }
    };
    for cluster in config.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        resolve(&mut cluster.certificate_authority);
    }
    for user in config.auth_infos.iter_mut().filter_map(|u| u.auth_info.as_mut()) {
        resolve(&mut user.client_certificate);
        resolve(&mut user.client_key);
        resolve(&mut user.token_file);
        if let Some(exec) =
            user.exec.as_mut().filter(|e| e.command.as_ref().is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR)))
        {
            resolve(&mut exec.command);
        }
    }
    config
}

fn kubeconfig_error(err: &KubeconfigError, described: &str) -> Error {
    match err {
        KubeconfigError::ReadConfig(io, path) => {
            Error::io("read kubeconfig", path, std::io::Error::new(io.kind(), io.to_string()))
        }
        // Never kube's own rendering of a YAML error: it quotes the file.
        KubeconfigError::Parse(_) => Error::new(format!("{described} is not a valid kubeconfig")),
        other => Error::new(format!("{described}: {}", super::error::innermost(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any input is a kubeconfig or an error, never a panic.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), yaml in weaver_arbitrary::arbitrary_yaml()) {
            let _ = parse(Path::new("kc"), &String::from_utf8_lossy(&bytes));
            let _ = parse(Path::new("kc"), &yaml);
        }
    }

    fn files(contents: &[&str]) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = contents
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.path().join(format!("kc{i}"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        (dir, paths)
    }

    fn kubeconfig(context: &str, current: &str, server: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: '{current}'\nclusters:\n- name: c\n  cluster: {{ server: '{server}' }}\n\
             users:\n- name: u\n  user: {{ token: t-{server} }}\ncontexts:\n- name: {context}\n  context: {{ cluster: c, user: u }}\n"
        )
    }

    #[test]
    fn only_a_plain_http_server_without_https_proxy_goes_without_the_systems_trust_store() {
        let settled_insecure = |url: &str, proxy: Option<&str>, ca: Option<Vec<Vec<u8>>>, insecure: bool| {
            let mut config = kube::Config::new(url.parse().unwrap());
            config.proxy_url = proxy.map(|p| p.parse().unwrap());
            config.root_cert = ca;
            config.accept_invalid_certs = insecure;
            with_client_settings(config, Duration::from_secs(5)).root_cert
        };
        let settled = |url: &str, proxy: Option<&str>, ca| settled_insecure(url, proxy, ca, false);
        // insecure-skip-tls-verify: no certificate is checked, so no roots are read.
        assert_eq!(settled_insecure("https://k8s.example", None, None, true), Some(vec![]));
        assert_eq!(settled_insecure("http://10.0.0.1", Some("https://proxy:3128"), None, true), Some(vec![]));
        assert_eq!(settled("http://127.0.0.1:8001", None, None), Some(vec![]), "kubectl proxy needs no roots");
        assert_eq!(settled("http://127.0.0.1:8001", Some("http://proxy:3128"), None), Some(vec![]));
        assert_eq!(settled("https://k8s.example", None, None), None, "no CA given: the system's roots");
        assert_eq!(settled("http://10.0.0.1", Some("https://proxy:3128"), None), None, "the proxy's TLS needs them");
        assert_eq!(settled("http://10.0.0.1", None, Some(vec![vec![1]])), Some(vec![vec![1]]), "a given CA is kept");
    }

    #[test]
    fn a_syntax_error_shows_where_and_why_but_no_source_line() {
        let text = "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SEEDTOKEN-4f1c9a7e\n      bad: x\n";
        let (_dir, paths) = files(&[text]);
        let err = read_file(&paths[0]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:6:10: invalid kubeconfig: ", paths[0].display())), "{err}");
        assert!(!err.contains("SEEDTOKEN") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn utf16_kubeconfigs_with_a_byte_order_mark_are_read() {
        let text = "current-context: here\n";
        let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(decode(le).as_deref(), Some(text));
        assert_eq!(decode(be).as_deref(), Some(text));
        assert_eq!(decode(vec![0xFF, 0xFE, 0x00, 0xD8]), None);
    }

    #[test]
    fn a_name_defined_twice_in_one_file_is_an_error_as_in_kubectl() {
        let text = "users:\n- name: u\n  user: { token: a }\n- name: u\n  user: { token: b }\n";
        let err = parse(Path::new("kc"), text).unwrap_err().to_string();
        assert_eq!(err, "kc: invalid kubeconfig: user `u` is defined twice");
    }

    #[test]
    fn merging_follows_kubectl() {
        let a = kubeconfig("a", "", "https://a");
        let b = kubeconfig("b", "b", "https://b").replace("apiVersion: v1", "apiVersion: v2");
        let c = kubeconfig("a", "a", "https://c");
        let (dir, mut paths) = files(&[&a, &b, &c]);
        paths.insert(1, dir.path().join("missing"));
        let merged = merge_files(&paths).unwrap().unwrap();
        // The first file to set a non-empty current-context wins.
        assert_eq!(merged.current_context.as_deref(), Some("b"));
        let names: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // The first definition of a name wins, whatever later files say.
        assert_eq!(merged.clusters.len(), 1);
        assert_eq!(merged.clusters[0].cluster.as_ref().unwrap().server.as_deref(), Some("https://a"));
        assert_eq!(merged.auth_infos.len(), 1);
        assert_eq!(merge_files(&[dir.path().join("missing")]).unwrap().map(|_| ()), None);
    }

    #[test]
    fn files_named_in_a_kubeconfig_are_relative_to_it() {
        let text = "clusters:\n- name: c\n  cluster: { server: 'https://a', certificate-authority: ca.crt }\n\
                    users:\n- name: u\n  user: { client-key: /abs/key, exec: { command: ./bin/cred, apiVersion: v1 } }\n";
        let (dir, paths) = files(&[text]);
        let config = read_file(&paths[0]).unwrap().unwrap();
        let ca = config.clusters[0].cluster.as_ref().unwrap().certificate_authority.clone();
        assert_eq!(ca, Some(dir.path().join("ca.crt").to_string_lossy().into_owned()));
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.client_key.as_deref(), Some("/abs/key"));
        assert_eq!(
            user.exec.as_ref().unwrap().command,
            Some(dir.path().join("./bin/cred").to_string_lossy().into_owned())
        );
    }
}
