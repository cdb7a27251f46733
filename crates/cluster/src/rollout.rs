//! Which revision of its Deployment a replica runs, as the deployment controller records it: the
//! `deployment.kubernetes.io/revision` annotation on the Deployment (its current revision) and on
//! each of its ReplicaSets, a replica's named `<deployment>-<pod-template-hash>`. During a
//! rolling update the replicas of the older ReplicaSets are the ones about to be replaced.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;

use super::Cluster;
use super::error::request_error;
use weaver_core::error::{Error, Result};

const REVISION: &str = "deployment.kubernetes.io/revision";

/// A replica of a Deployment, as the Downward API describes its Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentReplica {
    pub namespace: String,
    pub deployment: String,
    /// The Pod's `pod-template-hash` label, which names its ReplicaSet `<deployment>-<hash>`.
    pub pod_template_hash: String,
}

/// A replica's revision beside its Deployment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    /// The revision of the replica's ReplicaSet.
    pub own: u64,
    /// The Deployment's current revision: that of its newest ReplicaSet.
    pub current: u64,
}

impl Revisions {
    /// Whether the replica runs an older revision than its Deployment's, so a rollout is
    /// replacing it.
    pub fn outdated(&self) -> bool {
        self.own < self.current
    }
}

impl Cluster {
    /// Reads `replica`'s revision and its Deployment's, once, without retrying: a caller that
    /// cannot learn them carries on without. Needs `get` on the Deployment and on ReplicaSets.
    pub async fn revisions(&self, replica: &DeploymentReplica) -> Result<Revisions> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &replica.namespace);
        let replica_sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &replica.namespace);
        let own_name = format!("{}-{}", replica.deployment, replica.pod_template_hash);
        let read_error = |error: kube::Error, what: &str| {
            let forbidden = matches!(&error, kube::Error::Api(status) if status.code == 403);
            let error = request_error(error, &format!("reading {what}"), &self.info);
            if !forbidden {
                return error;
            }
            error.with_help(format!(
                "knowing its revision needs get on deployments (apps) named `{}` and on replicasets (apps) in \
                 namespace `{}`; `kubectl auth can-i get replicasets -n {}` checks it",
                replica.deployment, replica.namespace, replica.namespace
            ))
        };
        let about_deployment = format!("Deployment {}/{}", replica.namespace, replica.deployment);
        let deployment =
            deployments.get(&replica.deployment).await.map_err(|error| read_error(error, &about_deployment))?;
        let about_own = format!("ReplicaSet {}/{own_name}", replica.namespace);
        let own = replica_sets.get(&own_name).await.map_err(|error| read_error(error, &about_own))?;
        Ok(Revisions {
            own: revision(&own.metadata, &about_own)?,
            current: revision(&deployment.metadata, &about_deployment)?,
        })
    }
}

/// The revision annotation of `meta`, the object `what` names.
fn revision(meta: &ObjectMeta, what: &str) -> Result<u64> {
    let help = "the deployment controller writes it; a Deployment it has not seen yet has none";
    match meta.annotations.as_ref().and_then(|annotations| annotations.get(REVISION)) {
        None => Err(Error::new(format!("{what} has no revision: no annotation {REVISION}")).with_help(help)),
        Some(revision) => revision.parse().map_err(|_| {
            Error::new(format!("{what} has no revision: its annotation {REVISION} is `{revision}`, not a number"))
                .with_help(help)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(revision: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            annotations: revision.map(|revision| [(REVISION.to_string(), revision.to_string())].into()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn a_replica_is_outdated_while_its_deployment_has_a_newer_revision() {
        assert!(Revisions { own: 1, current: 2 }.outdated());
        assert!(!Revisions { own: 2, current: 2 }.outdated());
        // Rolled back: the earlier ReplicaSet is the current one again, with a new revision.
        assert!(!Revisions { own: 3, current: 3 }.outdated());
    }

    #[test]
    fn the_revision_is_the_annotations_number_or_an_error_naming_the_object() {
        assert_eq!(revision(&meta(Some("12")), "ReplicaSet a/b").unwrap(), 12);
        for bad in [None, Some(""), Some("two")] {
            let err = revision(&meta(bad), "ReplicaSet a/b").unwrap_err();
            assert!(err.message.contains("ReplicaSet a/b has no revision"), "{}", err.message);
        }
    }
}
