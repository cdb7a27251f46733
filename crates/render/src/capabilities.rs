//! `capabilities` in templates: what a chart may know of the cluster it is rendered for without
//! asking it, since rendering is a plain function of the repository (`weaver render` with no
//! cluster gives what `weaver apply` sends). `capabilities.apiVersions` lists the API versions
//! Kubernetes serves and those served by the CRDs in `crds/` of every chart the environment
//! deploys, so a chart can render an object of a CRD's kind only where that CRD is deployed
//! too (a `ServiceMonitor` where the environment installs the Prometheus Operator's CRDs), and
//! those the environment declares in `apiVersions` (APIs installed some other way).

use serde_json::Value;
use std::collections::BTreeSet;

/// The group/versions a kube-apiserver 1.32 serves in its default configuration (`kubectl
/// api-versions` on a stock v1.32.13).
const KUBERNETES_API_VERSIONS: &[&str] = &[
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
    "v1",
];

/// `capabilities.apiVersions`, sorted: Kubernetes' own group/versions, the environment's
/// `declared` ones (as written: `group/version` or `group/version/Kind`, as helm's
/// `--api-versions` adds them to what Helm charts see) and the served versions of every
/// CustomResourceDefinition among `objects`.
pub fn api_versions<'a>(objects: impl IntoIterator<Item = &'a Value>, declared: &[String]) -> Vec<String> {
    let mut versions: BTreeSet<String> =
        KUBERNETES_API_VERSIONS.iter().map(|v| v.to_string()).chain(declared.iter().cloned()).collect();
    for crd in objects.into_iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
        let Some(group) = crd["spec"]["group"].as_str() else { continue };
        let served = crd["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["served"] == true);
        versions.extend(served.filter_map(|v| v["name"].as_str()).map(|name| format!("{group}/{name}")));
    }
    versions.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn served_versions_of_crds_join_the_kubernetes_ones() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "monitoring.coreos.com", "versions": [
                {"name": "v1", "served": true}, {"name": "v1alpha1", "served": false}]}});
        let not_a_crd = json!({"kind": "ConfigMap", "spec": {"group": "x.example.com", "versions": [{"name": "v1", "served": true}]}});
        let declared = ["gateway.networking.k8s.io/v1".to_string(), "example.com/v1/Widget".to_string()];
        let versions = api_versions([&crd, &not_a_crd], &declared);
        assert!(versions.contains(&declared[0]) && versions.contains(&declared[1]), "declared, as written");
        assert!(versions.contains(&"monitoring.coreos.com/v1".to_string()));
        assert!(!versions.contains(&"monitoring.coreos.com/v1alpha1".to_string()), "not served");
        assert!(!versions.iter().any(|v| v.starts_with("x.example.com")));
        assert!(versions.contains(&"apps/v1".to_string()) && versions.contains(&"v1".to_string()));
        assert!(versions.is_sorted());
    }
}
