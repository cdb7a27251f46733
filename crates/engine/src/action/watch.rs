//! Watch: what `weaver ui`'s pages wait on to update themselves while an apply or a reconcile
//! runs. An environment's page watches, in each release namespace, the events (rollouts, Pods
//! starting and failing: what the cluster's controllers say as an apply settles) and weaver's
//! release records (an apply's end); an EnvironmentSync's page watches the EnvironmentSync,
//! whose status the controller writes as it reconciles.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::{OnProgress, connect, open_project};
use weaver_cluster::{Cluster, ConnectOptions, Waited, Watched};
use weaver_core::error::Result;
use weaver_core::manifest::LABEL_ENVIRONMENT;
use weaver_plan::release::record::RECORD_TYPE;

/// Which page watches, through which cluster.
#[derive(Debug, Clone)]
pub enum WatchOptions {
    /// `weaver ui`'s environment of the working tree (the controller's wait on its own watches).
    Environment {
        repo: PathBuf,
        env: String,
        connect: ConnectOptions,
    },
    Sync {
        namespace: String,
        name: String,
        connect: ConnectOptions,
    },
}

/// The cluster a page's watches go to, and what they watch.
async fn targets(options: &WatchOptions, on: OnProgress<'_>) -> Result<(Cluster, Vec<Watched>)> {
    match options {
        WatchOptions::Environment { repo, env, connect: options } => {
            let env = open_project(repo, None)?.environment(env)?;
            let cluster = connect(options.clone(), &env, "watching", on).await?;
            let namespaces: BTreeSet<&str> = env.releases.iter().map(|r| r.namespace.as_str()).collect();
            let targets = namespaces
                .into_iter()
                .flat_map(|ns| {
                    let watched = |kind: &str, labels: Option<String>, fields: Option<String>| Watched {
                        api_version: "v1".to_string(),
                        kind: kind.to_string(),
                        namespace: Some(ns.to_string()),
                        labels,
                        fields,
                    };
                    [
                        watched("Event", None, None),
                        watched(
                            "Secret",
                            Some(format!("{LABEL_ENVIRONMENT}={}", env.name)),
                            Some(format!("type={RECORD_TYPE}")),
                        ),
                    ]
                })
                .collect();
            Ok((cluster, targets))
        }
        WatchOptions::Sync { namespace, name, connect: options } => {
            let cluster = Cluster::connect(options).await?;
            let sync = Watched {
                api_version: "weaver.example.com/v1beta1".to_string(),
                kind: "EnvironmentSync".to_string(),
                namespace: Some(namespace.clone()),
                labels: None,
                fields: Some(format!("metadata.name={name}")),
            };
            Ok((cluster, vec![sync]))
        }
    }
}

/// Where the page's watched resources stand now (see [`Cluster::watch_marks`]).
pub async fn marks(options: &WatchOptions, on: OnProgress<'_>) -> Result<Vec<String>> {
    let (cluster, targets) = targets(options, on).await?;
    cluster.watch_marks(&targets).await
}

/// The first change the page shows after `marks`, waiting at most `within`. Marks that are not
/// one per watched resource (the page's environment changed its namespaces since) are
/// [`Waited::Expired`]: read again.
pub async fn next_change(
    options: &WatchOptions,
    marks: &[String],
    within: Duration,
    on: OnProgress<'_>,
) -> Result<Waited> {
    let (cluster, targets) = targets(options, on).await?;
    if marks.len() != targets.len() {
        return Ok(Waited::Expired);
    }
    cluster.next_change(&targets, marks, within).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard};

    #[tokio::test(flavor = "multi_thread")]
    async fn an_apply_is_the_next_change_of_its_environments_page() {
        let fixture = Fixture::start().await;
        let options =
            WatchOptions::Environment { repo: fixture.repo.path(), env: "dev".into(), connect: fixture.connect() };
        let heard = Heard::default();
        // The events and the records of namespace dev.
        let before = marks(&options, heard.cx().on).await.unwrap();
        assert_eq!(before.len(), 2);
        let quiet = next_change(&options, &before, Duration::from_millis(200), heard.cx().on).await.unwrap();
        assert!(matches!(quiet, Waited::Quiet { .. }), "{quiet:?}");
        fixture.apply().await;
        match next_change(&options, &before, Duration::from_secs(5), heard.cx().on).await.unwrap() {
            Waited::Changed { what, .. } => assert!(what.starts_with("Secret "), "{what}"),
            other => panic!("no change seen: {other:?}"),
        }
        // Marks of another page (other namespaces) are read again.
        let other = next_change(&options, &before[..1], Duration::from_secs(5), heard.cx().on).await.unwrap();
        assert!(matches!(other, Waited::Expired), "{other:?}");
    }
}
