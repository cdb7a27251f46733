//! API versions Kubernetes stopped serving, from its deprecated API migration guide
//! (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>).

/// (apiVersion, kind or `*` for every kind of the version, removed in 1.x, what to use instead).
const REMOVED: &[(&str, &str, u32, Option<&str>)] = &[
    ("extensions/v1beta1", "Ingress", 22, Some("networking.k8s.io/v1")),
    ("extensions/v1beta1", "PodSecurityPolicy", 16, None),
    ("extensions/v1beta1", "*", 16, Some("apps/v1")),
    ("apps/v1beta1", "*", 16, Some("apps/v1")),
    ("apps/v1beta2", "*", 16, Some("apps/v1")),
    ("networking.k8s.io/v1beta1", "*", 22, Some("networking.k8s.io/v1")),
    ("admissionregistration.k8s.io/v1beta1", "*", 22, Some("admissionregistration.k8s.io/v1")),
    ("apiextensions.k8s.io/v1beta1", "*", 22, Some("apiextensions.k8s.io/v1")),
    ("apiregistration.k8s.io/v1beta1", "*", 22, Some("apiregistration.k8s.io/v1")),
    ("authentication.k8s.io/v1beta1", "*", 22, Some("authentication.k8s.io/v1")),
    ("authorization.k8s.io/v1beta1", "*", 22, Some("authorization.k8s.io/v1")),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest", 22, Some("certificates.k8s.io/v1")),
    ("coordination.k8s.io/v1beta1", "Lease", 22, Some("coordination.k8s.io/v1")),
    ("rbac.authorization.k8s.io/v1beta1", "*", 22, Some("rbac.authorization.k8s.io/v1")),
    ("rbac.authorization.k8s.io/v1alpha1", "*", 22, Some("rbac.authorization.k8s.io/v1")),
    ("scheduling.k8s.io/v1beta1", "*", 22, Some("scheduling.k8s.io/v1")),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity", 27, Some("storage.k8s.io/v1")),
    ("storage.k8s.io/v1beta1", "CSIDriver", 22, Some("storage.k8s.io/v1")),
    ("storage.k8s.io/v1beta1", "CSINode", 22, Some("storage.k8s.io/v1")),
    ("storage.k8s.io/v1beta1", "StorageClass", 22, Some("storage.k8s.io/v1")),
    ("storage.k8s.io/v1beta1", "VolumeAttachment", 22, Some("storage.k8s.io/v1")),
    ("batch/v1beta1", "CronJob", 25, Some("batch/v1")),
    ("discovery.k8s.io/v1beta1", "EndpointSlice", 25, Some("discovery.k8s.io/v1")),
    ("events.k8s.io/v1beta1", "Event", 25, Some("events.k8s.io/v1")),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler", 25, Some("autoscaling/v2")),
    ("policy/v1beta1", "PodDisruptionBudget", 25, Some("policy/v1")),
    ("policy/v1beta1", "PodSecurityPolicy", 25, None),
    ("node.k8s.io/v1beta1", "RuntimeClass", 25, Some("node.k8s.io/v1")),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", 26, Some("autoscaling/v2")),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "*", 26, Some("flowcontrol.apiserver.k8s.io/v1")),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "*", 29, Some("flowcontrol.apiserver.k8s.io/v1")),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "*", 32, Some("flowcontrol.apiserver.k8s.io/v1")),
];

/// When `apiVersion` `kind` stopped being served (1.x), and what replaces it.
pub fn removed(api_version: &str, kind: &str) -> Option<(u32, Option<&'static str>)> {
    REMOVED
        .iter()
        .find(|(version, k, ..)| *version == api_version && (*k == kind || *k == "*"))
        .map(|&(_, _, minor, replacement)| (minor, replacement))
}

#[cfg(test)]
mod tests {
    use super::removed;

    #[test]
    fn removals() {
        assert_eq!(removed("policy/v1beta1", "PodDisruptionBudget"), Some((25, Some("policy/v1"))));
        assert_eq!(removed("extensions/v1beta1", "Ingress"), Some((22, Some("networking.k8s.io/v1"))));
        assert_eq!(removed("extensions/v1beta1", "Deployment"), Some((16, Some("apps/v1"))));
        assert_eq!(removed("policy/v1", "PodDisruptionBudget"), None);
    }
}
