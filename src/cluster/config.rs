//! Which cluster to talk to, from a kubeconfig the way kubectl picks one: `--kubeconfig`, else
//! `KUBECONFIG` (a list of files, merged), else `~/.kube/config`; `--context`, else the
//! environment's `cluster.context`, else the kubeconfig's current context.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::ClusterInfo;
use crate::error::{Error, Result};

/// What the command line and the environment file say about the cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// The context and who asked for it (`--context`, or `cluster.context in environments/dev.yaml`).
    pub context: Option<(String, String)>,
    /// Connect, read and write timeout of every request (`--request-timeout`).
    pub request_timeout: Duration,
}

/// Reads the kubeconfig, selects the context and builds a client with the request timeout.
pub(super) async fn client(options: &ConnectOptions) -> Result<(kube::Client, ClusterInfo)> {
    let (config, info) = config(options).await?;
    let client = kube::Client::try_from(config).map_err(|err| {
        Error::new(format!(
            "cannot set up a client for context `{}` ({}): {}",
            info.context,
            info.server,
            super::error::innermost(&err)
        ))
    })?;
    Ok((client, info))
}

/// The connection settings of the selected context, with the request timeout.
pub async fn config(options: &ConnectOptions) -> Result<(kube::Config, ClusterInfo)> {
    let (kubeconfig, described) = read_kubeconfig(options)?;
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
    let server = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|ctx| kubeconfig.clusters.iter().find(|cl| cl.name == ctx.cluster))
        .and_then(|cl| cl.cluster.as_ref()?.server.clone())
        .unwrap_or_default();
    let kube_options = KubeConfigOptions { context: Some(context.clone()), cluster: None, user: None };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| kubeconfig_error(&err, &described).with_help(format!("check context `{context}` there")))?;
    config.connect_timeout = Some(options.request_timeout);
    config.read_timeout = Some(options.request_timeout);
    config.write_timeout = Some(options.request_timeout);
    // weaver retries by itself (`super::retry`), boundedly; kube's layer on top would multiply
    // the attempts and wait minutes on a server that keeps answering 503.
    config.default_retry = false;
    Ok((config, ClusterInfo { context, server, request_timeout: options.request_timeout }))
}

/// The merged kubeconfig and how to name it in messages.
fn read_kubeconfig(options: &ConnectOptions) -> Result<(Kubeconfig, String)> {
    if let Some(path) = &options.kubeconfig {
        let described = format!("kubeconfig {} (from --kubeconfig)", path.display());
        return Kubeconfig::read_from(path)
            .map(|k| (k, described.clone()))
            .map_err(|err| kubeconfig_error(&err, &described));
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let described = format!("kubeconfig {} (from KUBECONFIG)", value.to_string_lossy());
        return match Kubeconfig::from_env() {
            Ok(Some(k)) => Ok((k, described)),
            Ok(None) => Err(Error::new("KUBECONFIG names no file")),
            Err(err) => Err(kubeconfig_error(&err, &described)),
        };
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let path = home.join(".kube/config");
    let described = format!("kubeconfig {}", path.display());
    Kubeconfig::read_from(&path).map(|k| (k, described.clone())).map_err(|err| {
        kubeconfig_error(&err, &described)
            .with_help("pass --kubeconfig FILE or set KUBECONFIG to say which cluster to use")
    })
}

fn kubeconfig_error(err: &KubeconfigError, described: &str) -> Error {
    match err {
        KubeconfigError::ReadConfig(io, path) => {
            Error::io("read kubeconfig", path, std::io::Error::new(io.kind(), io.to_string()))
        }
        KubeconfigError::Parse(parse) => Error::new(format!("{described} is not a valid kubeconfig: {parse}")),
        other => Error::new(format!("{described}: {}", super::error::innermost(other))),
    }
}
