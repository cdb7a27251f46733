//! The ConfigMapSync operator's chart: its CRD is the one generated from the Rust types, it
//! renders with weaver's own render, and the operator's own RBAC cannot write ConfigMaps.

mod common;

use common::{Repo, copy_dir, project_root, weaver_in};
use serde_json::Value;

const CHART: &str = "charts/configmapsync-operator";
const CRD_FILE: &str = "charts/configmapsync-operator/crds/configmapsyncs.weaver.example.com.yaml";

#[test]
fn the_chart_ships_the_crd_generated_from_the_types() {
    let generated = weaver_in(&project_root(), &["operator", "crd"], &[]);
    let checked_in = std::fs::read_to_string(project_root().join(CRD_FILE)).expect("the chart's CRD file");
    assert!(
        generated.success() == checked_in,
        "{CRD_FILE} differs from `weaver operator crd`; regenerate it with\n  cargo run -- operator crd > {CRD_FILE}"
    );
    let crd: Value = serde_saphyr::from_str(&checked_in).unwrap();
    assert_eq!(crd["metadata"]["name"], "configmapsyncs.weaver.example.com");
    assert_eq!(crd["spec"]["names"]["shortNames"], serde_json::json!(["cms", "cmsync"]));
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object(), "status subresource");
    let columns: Vec<&str> =
        version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["Ready", "Targets In Sync", "Age"]);
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["serviceAccountName", "source"]));
    assert_eq!(spec["properties"]["source"]["required"], serde_json::json!(["name"]));
    assert_eq!(
        spec["anyOf"],
        serde_json::json!([{"required": ["targetNamespaces"]}, {"required": ["namespaceSelector"]}]),
        "at least one of targetNamespaces and namespaceSelector"
    );
    let dns_label = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    assert_eq!(spec["properties"]["serviceAccountName"]["pattern"], dns_label);
    assert_eq!(spec["properties"]["targetNamespaces"]["items"]["pattern"], dns_label);
    assert_eq!(spec["properties"]["targetNamespaces"]["items"]["maxLength"], 63);
}

/// The chart in an environment of its own, rendered by weaver.
fn render_chart() -> Vec<Value> {
    let repo = Repo::empty();
    copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
    repo.write(
        "environments/ops.yaml",
        "releases:\n  - name: configmapsync-operator\n    chart: configmapsync-operator\n    namespace: weaver-system\n",
    );
    let run = repo.weaver(&["render", "--env", "ops"]);
    serde_saphyr::from_str_multiple(run.success()).expect("render output is YAML")
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The verbs `rules` grant on `resource` of `group`, wildcards included.
fn verbs_on<'a>(rules: &'a [Value], group: &str, resource: &str) -> Vec<&'a str> {
    rules
        .iter()
        .filter(|rule| strings(&rule["apiGroups"]).iter().any(|g| *g == group || *g == "*"))
        .filter(|rule| strings(&rule["resources"]).iter().any(|r| *r == resource || *r == "*"))
        .flat_map(|rule| strings(&rule["verbs"]))
        .collect()
}

#[test]
fn the_operator_may_read_configmaps_but_never_write_them() {
    let objects = render_chart();
    let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for kind in
        ["CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    {
        assert!(kinds.contains(&kind), "the chart renders a {kind}: {kinds:?}");
    }
    let cluster_role = objects.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let rules = cluster_role["rules"].as_array().expect("rules");
    let on_configmaps = verbs_on(rules, "", "configmaps");
    for verb in ["create", "update", "patch", "delete", "deletecollection", "*"] {
        assert!(!on_configmaps.contains(&verb), "the operator's ClusterRole may `{verb}` ConfigMaps: {rules:#?}");
    }
    for verb in ["get", "list", "watch"] {
        assert!(on_configmaps.contains(&verb), "the operator must {verb} ConfigMaps");
        assert!(verbs_on(rules, "", "namespaces").contains(&verb), "the operator must {verb} Namespaces");
        assert!(verbs_on(rules, "weaver.example.com", "configmapsyncs").contains(&verb), "{verb} ConfigMapSyncs");
    }
    assert!(verbs_on(rules, "", "serviceaccounts/token").contains(&"create"), "TokenRequest");
    assert!(verbs_on(rules, "weaver.example.com", "configmapsyncs/status").contains(&"patch"), "status");
    assert!(verbs_on(rules, "weaver.example.com", "configmapsyncs/finalizers").contains(&"update"), "finalizers");
    assert!(verbs_on(rules, "events.k8s.io", "events").contains(&"create"), "events");
    assert_eq!(verbs_on(rules, "authorization.k8s.io", "subjectaccessreviews"), ["create"], "reviews");
    // RBAC objects are watched, never written: a change re-checks what tenants may see.
    for resource in ["roles", "rolebindings", "clusterroles", "clusterrolebindings"] {
        assert_eq!(verbs_on(rules, "rbac.authorization.k8s.io", resource), ["list", "watch"], "{resource}");
    }
    // Nothing else: no secrets, no impersonation, no wildcard.
    for (group, resource) in [("", "secrets"), ("", "users"), ("", "serviceaccounts"), ("", "groups")] {
        assert!(verbs_on(rules, group, resource).is_empty(), "the operator needs nothing on {resource}");
    }

    let binding = objects.iter().find(|o| o["kind"] == "ClusterRoleBinding").unwrap();
    assert_eq!(binding["roleRef"]["name"], cluster_role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], "weaver-system");
    let lease_role = objects.iter().find(|o| o["kind"] == "Role").unwrap();
    assert_eq!(lease_role["metadata"]["namespace"], "weaver-system");
    assert_eq!(
        verbs_on(lease_role["rules"].as_array().unwrap(), "coordination.k8s.io", "leases"),
        ["get", "create", "update"]
    );
}

#[test]
fn the_deployment_meets_the_restricted_pod_security_standard() {
    let objects = render_chart();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["serviceAccountName"], "configmapsync-operator");
    for key in ["hostNetwork", "hostPID", "hostIPC", "volumes"] {
        assert!(pod.get(key).is_none(), "the pod sets {key}");
    }
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(security["capabilities"].get("add").is_none());
    assert!(security.get("privileged").is_none_or(|p| p == false));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    // It runs the operator, elected, with probes on its own endpoints.
    let args = strings(&container["args"]);
    assert_eq!(&args[..3], ["operator", "run", "--leader-elect"]);
    assert!(args.contains(&"--metrics-addr=0.0.0.0:8080"), "{args:?}");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "POD_NAMESPACE"), "the Lease's namespace comes from the pod");
    let service = objects.iter().find(|o| o["kind"] == "Service").expect("a metrics Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
}
