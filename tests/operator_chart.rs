//! weaver's chart, `charts/weaver` (a Helm chart: the ConfigMapSync and EnvironmentSync
//! controllers, the webhook receiver, the UI): its CRDs are the ones generated from the Rust
//! types, its version is the crate's, `helm template` and weaver's render give the same objects,
//! the operator's own RBAC cannot write ConfigMaps, its production objects select the operator's
//! pods, the API server's PodSecurity admission finds its pods `restricted` (on the fake API
//! server, or unchanged on the cluster of `WEAVER_TEST_KUBECONFIG`), and a release of the former
//! configmapsync-operator chart moves to it keeping its objects' names and selector.

use crate::common;

use common::cluster::TestCluster;
use common::{Repo, copy_dir, eventually, project_root, weaver_in};
use serde_json::{Value, json};

const CHART: &str = "charts/weaver";
const CRD_FILE: &str = "charts/weaver/crds/configmapsyncs.weaver.example.com.yaml";
const ENVIRONMENTSYNC_CRD_FILE: &str = "charts/weaver/crds/environmentsyncs.weaver.example.com.yaml";
/// The release the tests' environments give the chart.
const RELEASE: &str = "weaver";

#[test]
fn the_chart_ships_the_crd_generated_from_the_types() {
    let generated = weaver_in(&project_root(), &["operator", "crd", "configmapsync"], &[]);
    let checked_in = std::fs::read_to_string(project_root().join(CRD_FILE)).expect("the chart's CRD file");
    assert!(
        generated.success() == checked_in,
        "{CRD_FILE} differs from `weaver operator crd`; regenerate it with\n  cargo run -- operator crd configmapsync > {CRD_FILE}"
    );
    let crd: Value = serde_saphyr::from_str(&checked_in).unwrap();
    assert_eq!(crd["metadata"]["name"], "configmapsyncs.weaver.example.com");
    assert_eq!(crd["spec"]["names"]["shortNames"], serde_json::json!(["cms", "cmsync"]));
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1beta1");
    assert_eq!(version["storage"], true);
    assert_eq!(crd["spec"]["versions"][1]["name"], "v1alpha1");
    assert_eq!(crd["spec"]["versions"][1]["served"], true);
    assert_eq!(crd["spec"]["versions"][1]["deprecated"], true);
    assert!(crd["spec"]["conversion"].is_null(), "no webhook: the versions differ in validation only");
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

#[test]
fn the_chart_ships_the_environmentsync_crd_generated_from_the_types() {
    let generated = weaver_in(&project_root(), &["operator", "crd", "environmentsync"], &[]);
    let checked_in =
        std::fs::read_to_string(project_root().join(ENVIRONMENTSYNC_CRD_FILE)).expect("the chart's CRD file");
    assert!(
        generated.success() == checked_in,
        "{ENVIRONMENTSYNC_CRD_FILE} differs from `weaver operator crd environmentsync`; regenerate it with\n  \
         cargo run -- operator crd environmentsync > {ENVIRONMENTSYNC_CRD_FILE}"
    );
    let crd: Value = serde_saphyr::from_str(&checked_in).unwrap();
    assert_eq!(crd["metadata"]["name"], "environmentsyncs.weaver.example.com");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1beta1");
    assert_eq!(version["storage"], true);
    let old = &crd["spec"]["versions"][1];
    assert_eq!(
        (&old["name"], &old["served"], &old["storage"], &old["deprecated"]),
        (&json!("v1alpha1"), &json!(true), &json!(false), &json!(true))
    );
    // No conversion in the file (every install's is the same): the controller sets it to its
    // webhook, behind the release's Service, which the chart names to it.
    assert!(crd["spec"]["conversion"].is_null(), "{}", crd["spec"]["conversion"]);
    let rendered = render_chart();
    let service = rendered.iter().find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "weaver-conversion");
    let service = service.expect("the conversion Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "conversion");
    // Only pods that serve it: an older version's, still running during an upgrade, do not.
    let mut selects = pod_labels(&rendered);
    selects[CONVERSION_LABEL] = json!("v1");
    assert_eq!(service["spec"]["selector"], selects);
    let pod = &rendered.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]["metadata"];
    assert_eq!(pod["labels"][CONVERSION_LABEL], "v1");
    let deployment = rendered.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(args.as_array().unwrap().contains(&json!("--conversion-service=weaver-conversion")), "{args}");
    assert!(version["subresources"]["status"].is_object(), "status subresource");
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["webhook"]["required"], json!(["secretRef"]));
    assert_eq!(spec["properties"]["webhook"]["properties"]["secretRef"]["required"], json!(["name"]));
}

/// The chart in an environment of its own, rendered by weaver.
fn render_chart() -> Vec<Value> {
    render_chart_with("{}")
}

/// The chart in an environment of its own, its release given `values` (YAML flow style).
fn render_chart_with(values: &str) -> Vec<Value> {
    render_chart_in("weaver-system", values)
}

/// The chart in an environment of its own, its release in `namespace` with `values`.
pub(crate) fn render_chart_in(namespace: &str, values: &str) -> Vec<Value> {
    rendered(&chart_repo(namespace, values), "ops")
}

/// A repository whose environment `ops` has the chart's release in `namespace` with `values`.
fn chart_repo(namespace: &str, values: &str) -> Repo {
    release_repo(RELEASE, namespace, values)
}

/// A repository whose environment `ops` has the chart's release `release` in `namespace` with
/// `values`.
fn release_repo(release: &str, namespace: &str, values: &str) -> Repo {
    let repo = Repo::empty();
    copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
    repo.write(
        "environments/ops.yaml",
        &format!(
            "releases:\n  - name: {release}\n    chart: weaver\n    namespace: {namespace}\n    values: {values}\n"
        ),
    );
    repo
}

fn rendered(repo: &Repo, env: &str) -> Vec<Value> {
    let run = repo.weaver(&["render", "--env", env]);
    serde_saphyr::from_str_multiple(run.success()).expect("render output is YAML")
}

/// The objects of the operator's release in the demo's dev environment, as `weaver render --env
/// dev` gives them.
fn demo_operator() -> Vec<Value> {
    let objects = rendered(&Repo::demo(), "dev");
    let of_operator = |o: &Value| o["metadata"]["labels"]["weaver.example.com/release"] == RELEASE;
    objects.into_iter().filter(of_operator).collect()
}

fn kinds(objects: &[Value]) -> Vec<&str> {
    objects.iter().map(|o| o["kind"].as_str().unwrap()).collect()
}

fn the<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(objects)))
}

/// The label only pods that serve the conversion webhook bear, which its Service selects.
const CONVERSION_LABEL: &str = "weaver.example.com/conversion";

/// The pods' labels the Deployment, the budget, the policy and the Services select them by: all
/// but [`CONVERSION_LABEL`], which the conversion Service adds (checked beside it).
fn pod_labels(objects: &[Value]) -> Value {
    let mut labels = the(objects, "Deployment")["spec"]["template"]["metadata"]["labels"].clone();
    labels.as_object_mut().unwrap().remove(CONVERSION_LABEL);
    labels
}

/// The port the operator's container serves its metrics on, by the container port's name.
fn metrics_port(objects: &[Value]) -> &Value {
    let ports = the(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"].as_array().unwrap();
    &ports.iter().find(|p| p["name"] == "metrics").expect("a port named metrics")["containerPort"]
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
    // The GitOps controller reads EnvironmentSyncs and the Secrets they name (credentials, keys),
    // and writes only their status: every apply is made with the tenant's token. Its UI's
    // actions hold the verbs the approvals policy asks of their writer.
    assert_eq!(
        verbs_on(rules, "weaver.example.com", "environmentsyncs"),
        ["get", "list", "watch", "patch", "update", "approve", "suspend", "resume"]
    );
    assert_eq!(verbs_on(rules, "weaver.example.com", "environmentsyncs/status"), ["get", "patch", "update"]);
    assert_eq!(verbs_on(rules, "", "secrets"), ["get"], "Secrets are read one by one, never listed or written");
    // Nothing else: no impersonation, no wildcard.
    for (group, resource) in [("", "users"), ("", "serviceaccounts"), ("", "groups")] {
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
    // A replica reads its own Deployment, by name, and ReplicaSets, to tell whether a rollout
    // replaces it: nothing more in apps.
    let apps: Vec<&Value> = lease_role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| strings(&rule["apiGroups"]).contains(&"apps"))
        .collect();
    assert_eq!(
        apps,
        [
            &json!({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [RELEASE], "verbs": ["get"]}),
            &json!({"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]}),
        ]
    );
}

#[test]
fn the_deployment_meets_the_restricted_pod_security_standard() {
    let objects = render_chart();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["serviceAccountName"], RELEASE, "serviceAccount.name \"\": the release's name");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(key).is_none(), "the pod sets {key}");
    }
    // One volume, an emptyDir for the git mirrors and the remote charts (restricted allows it),
    // bounded.
    assert_eq!(pod["volumes"], json!([{"name": "git-cache", "emptyDir": {"sizeLimit": "2Gi"}}]));
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
    // The replica knows its Deployment and its ReplicaSet, to defer to newer replicas in a rollout.
    let deployment_arg = format!("--leader-election-deployment={}", deployment["metadata"]["name"].as_str().unwrap());
    assert!(args.contains(&deployment_arg.as_str()), "{args:?}");
    let hash = env.iter().find(|e| e["name"] == "POD_TEMPLATE_HASH").expect("POD_TEMPLATE_HASH");
    assert_eq!(hash["valueFrom"]["fieldRef"]["fieldPath"], "metadata.labels['pod-template-hash']");
    let service = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-metrics")))
        .expect("a metrics Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
}

#[test]
fn the_demo_renders_a_disruption_budget_a_spread_and_a_network_policy_that_select_the_operators_pods() {
    let objects = demo_operator();
    let labels = &pod_labels(&objects);
    assert_eq!(&the(&objects, "Deployment")["spec"]["selector"]["matchLabels"], labels);

    let budget = the(&objects, "PodDisruptionBudget");
    assert_eq!(budget["apiVersion"], "policy/v1");
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(budget["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");

    // Preferred, so one node still runs both replicas.
    let pod = &the(&objects, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["topologySpreadConstraints"],
        json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels}}])
    );
    assert!(pod.get("affinity").is_none(), "the spread alone places the replicas");
    assert!(pod.get("priorityClassName").is_none(), "no PriorityClass unless one is named");

    let policy = the(&objects, "NetworkPolicy");
    assert_eq!(policy["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(&policy["spec"]["podSelector"]["matchLabels"], labels);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    // In: the metrics port, the conversion webhook's and the webhook receiver's, from anywhere.
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"ports": [{"port": metrics_port(&objects), "protocol": "TCP"}]}, {"ports": [{"port": 9443, "protocol": "TCP"}]},
            {"ports": [{"port": 9292, "protocol": "TCP"}]}])
    );
    // Out: the API server's ports to any address, and DNS: the pods in kube-system and NodeLocal
    // DNSCache's address, on 53 and on 5353 (OpenShift's DNS pods, behind their Service).
    let dns_ports = json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"},
        {"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}]);
    assert_eq!(
        policy["spec"]["egress"],
        json!([
            {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 22, "protocol": "TCP"}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                     "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
                    {"ipBlock": {"cidr": "169.254.20.10/32"}}],
             "ports": dns_ports},
        ])
    );
    assert!(!kinds(&objects).contains(&"ServiceMonitor"), "the demo deploys no Prometheus Operator CRDs");
}

#[test]
fn the_network_policy_follows_the_metrics_port_and_narrows_to_the_peers_and_addresses_given() {
    let objects = render_chart_with(
        "{metricsPort: 9090, networkPolicy: {metricsFrom: [{namespaceSelector: {matchLabels: {team: monitoring}}}], \
         apiServer: {ports: [6443], cidrs: [10.0.0.10/32, 10.0.0.11/32]}}, \
         gitops: {webhook: {from: [{ipBlock: {cidr: 192.0.2.0/24}}]}}}",
    );
    assert_eq!(metrics_port(&objects), 9090);
    let policy = &the(&objects, "NetworkPolicy")["spec"];
    assert_eq!(
        policy["ingress"],
        json!([{"ports": [{"port": 9090, "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}]},
            {"ports": [{"port": 9443, "protocol": "TCP"}]},
            {"ports": [{"port": 9292, "protocol": "TCP"}], "from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}])
    );
    assert_eq!(
        policy["egress"][0],
        json!({"ports": [{"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}, {"ipBlock": {"cidr": "10.0.0.11/32"}}]})
    );
    assert!(!kinds(&render_chart_with("{networkPolicy: {enabled: false}}")).contains(&"NetworkPolicy"));
}

#[test]
fn the_dns_peers_and_ports_are_the_clusters_to_choose() {
    // OpenShift: its DNS pods (the default label dropped with null), on 5353 only; no node-local
    // cache.
    let objects = render_chart_with(
        "{networkPolicy: {dns: {namespace: openshift-dns, \
         podLabels: {k8s-app: null, dns.operator.openshift.io/daemonset-dns: default}, cidrs: [], ports: [5353]}}}",
    );
    let dns = &the(&objects, "NetworkPolicy")["spec"]["egress"][2];
    assert_eq!(
        dns,
        &json!({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                        "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}}}],
                "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}]})
    );
    let repo = chart_repo("weaver-system", "{networkPolicy: {dns: {ports: []}}}");
    let run = repo.weaver(&["render", "--env", "ops"]);
    let error = run.failure().to_string();
    assert!(error.contains("- networkPolicy.dns.ports: "), "{error}");
}

#[test]
fn the_demos_environment_sync_account_may_watch_what_it_applies() {
    // The controller keeps watches of the kinds it applies (docs/src/guides/gitops.md): without
    // `watch`, every look is a LIST, and drift waits for the interval.
    let objects = rendered(&Repo::demo(), "dev");
    let role = objects
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == "staging-sync-deployer")
        .expect("the EnvironmentSync account's Role");
    let rules = role["rules"].as_array().unwrap();
    for resource in ["secrets", "configmaps", "services", "deployments", "statefulsets", "ingresses"] {
        let group = if ["deployments", "statefulsets"].contains(&resource) {
            "apps"
        } else if resource == "ingresses" {
            "networking.k8s.io"
        } else {
            ""
        };
        assert_eq!(
            verbs_on(rules, group, resource),
            ["get", "list", "watch", "create", "update", "patch", "delete"],
            "{resource}"
        );
    }
}

#[test]
fn memory_requests_and_limits_follow_the_measured_figures() {
    let objects = render_chart();
    let container = &the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    // 256Mi requested: 169 MB at 1,000 EnvironmentSyncs fits; the limit holds four concurrent
    // renders of 306 MB over that (the chart's gitops.concurrent).
    assert_eq!(container["resources"]["requests"]["memory"], "256Mi");
    assert_eq!(container["resources"]["limits"]["memory"], "1536Mi");
    let args = strings(&container["args"]);
    assert!(args.contains(&"--concurrent=4"), "the limit assumes four applies at once: {args:?}");
}

#[test]
fn a_disruption_budget_only_when_there_are_replicas_to_keep() {
    let budget = |values: &str| render_chart_with(values).into_iter().find(|o| o["kind"] == "PodDisruptionBudget");
    assert!(budget("{replicas: 1}").is_none(), "one replica: a budget would only block drains");
    assert!(budget("{replicas: 0}").is_none());
    assert_eq!(budget("{replicas: 3}").expect("three replicas")["spec"]["maxUnavailable"], 1);
    assert!(budget("{replicas: 3, podDisruptionBudget: {enabled: false}}").is_none());
}

#[test]
fn a_priority_class_only_when_one_is_named() {
    let pod = |values: &str| the(&render_chart_with(values), "Deployment")["spec"]["template"]["spec"].clone();
    assert!(pod("{}").get("priorityClassName").is_none());
    assert_eq!(pod("{priorityClassName: system-cluster-critical}")["priorityClassName"], "system-cluster-critical");
}

#[test]
fn the_spread_can_be_replaced_or_dropped() {
    let pod = |values: &str| the(&render_chart_with(values), "Deployment")["spec"]["template"]["spec"].clone();
    let zones = pod("{topologySpreadConstraints: [{maxSkew: 2, topologyKey: topology.kubernetes.io/zone, \
        whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: mine}}}]}");
    assert_eq!(
        zones["topologySpreadConstraints"],
        json!([{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "mine"}}}]),
        "a constraint's own labelSelector is kept"
    );
    assert!(pod("{topologySpreadConstraints: []}").get("topologySpreadConstraints").is_none());
}

#[test]
fn a_service_monitor_when_asked_or_when_the_environment_deploys_its_crd() {
    let monitor = |objects: Vec<Value>| objects.into_iter().find(|o| o["kind"] == "ServiceMonitor");
    assert!(monitor(render_chart()).is_none(), "off where the API is not known to exist");
    let objects = render_chart_with("{serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}}");
    let service =
        objects.iter().find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "weaver-metrics").unwrap().clone();
    let asked = monitor(objects).expect("enabled: true renders one");
    assert_eq!(asked["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(asked["metadata"]["namespace"], "weaver-system");
    assert_eq!(asked["metadata"]["labels"]["release"], "prometheus", "for Prometheus' serviceMonitorSelector");
    let selector = asked["spec"]["selector"]["matchLabels"].as_object().unwrap();
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "the ServiceMonitor selects the metrics Service");
    }
    assert_eq!(asked["spec"]["endpoints"], json!([{"port": "metrics", "path": "/metrics", "interval": "15s"}]));
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");

    // auto: on where the cluster serves monitoring.coreos.com/v1, which an environment declares
    // for offline renders in `apiVersions` (as `helm template --api-versions` does); a cluster's
    // discovery says it on diff and apply.
    let repo = Repo::empty();
    copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
    let environment = |enabled: &str| {
        format!(
            "apiVersions: [monitoring.coreos.com/v1]\nreleases:\n  - name: weaver\n    chart: weaver\n    \
             namespace: weaver-system\n    values: {{serviceMonitor: {{enabled: {enabled}}}}}\n"
        )
    };
    repo.write("environments/ops.yaml", &environment("auto"));
    assert!(monitor(rendered(&repo, "ops")).is_some(), "auto, with the API declared");
    repo.write("environments/ops.yaml", &environment("false"));
    assert!(monitor(rendered(&repo, "ops")).is_none(), "false wins over the API");
}

#[test]
fn values_of_the_wrong_shape_are_named() {
    let repo = Repo::empty();
    copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
    repo.write(
        "environments/ops.yaml",
        "releases:\n  - name: weaver\n    chart: weaver\n    \
         values: {serviceMonitor: {enabled: \"yes\"}, podDisruptionBudget: {maxUnavailable: 0}}\n",
    );
    let error = repo.weaver(&["render", "--env", "ops"]).failure().to_string();
    assert!(error.contains("charts/weaver/values.schema.json"), "{error}");
    assert!(error.contains("values of release `weaver` don't meet the specifications of the schema(s)"), "{error}");
    assert!(
        error.contains("- serviceMonitor.enabled: value must be one of the following: \"auto\", true, false"),
        "{error}"
    );
    assert!(error.contains("- podDisruptionBudget.maxUnavailable: "), "{error}");
}

/// The Deployment's pod template as a Pod of its own, named `name`.
fn pod_of(deployment: &Value, name: &str) -> Value {
    let template = &deployment["spec"]["template"];
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"], "labels": template["metadata"]["labels"]},
        "spec": template["spec"]})
}

/// The same object without `runAsNonRoot` anywhere in its pod spec `spec`.
fn without_run_as_non_root(mut object: Value, spec: &str) -> Value {
    let spec = object.pointer_mut(spec).unwrap();
    spec["securityContext"].as_object_mut().unwrap().remove("runAsNonRoot");
    for container in spec["containers"].as_array_mut().unwrap() {
        container["securityContext"].as_object_mut().unwrap().remove("runAsNonRoot");
    }
    object
}

/// PodSecurity only refuses Pods: workloads get warnings. So every object of the chart is sent
/// as a server-side apply dry run into a namespace that enforces and warns `restricted`, and
/// none may draw a PodSecurity warning; a Pod made of the Deployment's template must be
/// admitted. The same Deployment and Pod without `runAsNonRoot` show that both checks can fail.
#[test]
fn the_api_server_admits_the_operators_pods_in_a_restricted_namespace() {
    let cluster = TestCluster::start();
    let namespace = format!("{}-restricted", cluster.prefix);
    cluster.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
        "labels": {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}));
    let objects = render_chart_in(&namespace, "{}");

    for object in &objects {
        let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
        let warnings = cluster.dry_run_apply(object, "weaver").unwrap_or_else(|status| panic!("{what}: {status:?}"));
        assert!(!warnings.iter().any(|w| w.contains("PodSecurity")), "{what}: {warnings:?}");
    }
    let weakened = without_run_as_non_root(the(&objects, "Deployment").clone(), "/spec/template/spec");
    let warnings = cluster.dry_run_apply(&weakened, "weaver").expect("a workload is only warned about");
    assert_eq!(
        warnings,
        ["would violate PodSecurity \"restricted:latest\": runAsNonRoot != true (pod or container \"operator\" must \
          set securityContext.runAsNonRoot=true)"]
    );

    // A Pod needs its ServiceAccount to exist (a real API server's ServiceAccount admission).
    cluster.create(the(&objects, "ServiceAccount"));
    let pod = pod_of(the(&objects, "Deployment"), "weaver-restricted");
    let warnings = eventually("the operator's pod to be admitted", || {
        cluster.dry_run_create(&pod).map_err(|status| format!("{status:?}"))
    });
    assert!(warnings.is_empty(), "{warnings:?}");
    let refused =
        cluster.dry_run_create(&without_run_as_non_root(pod, "/spec")).expect_err("a pod that may run as root");
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        "pods \"weaver-restricted\" is forbidden: violates PodSecurity \"restricted:latest\": \
         runAsNonRoot != true (pod or container \"operator\" must set securityContext.runAsNonRoot=true)"
    );
}

/// `gitops.recordKey.secretName` mounts the Secret's key read-only where
/// `WEAVER_RECORD_KEY_FILE` names it, readable by the operator's group; without it, neither.
#[test]
fn the_record_key_is_mounted_read_only_from_its_secret_and_named_by_the_variable() {
    let objects = render_chart_with("{gitops: {recordKey: {secretName: weaver-record-key, key: hmac}}}");
    let deployment = the(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let variable = container["env"].as_array().unwrap().iter().find(|e| e["name"] == "WEAVER_RECORD_KEY_FILE");
    let file = variable.expect("WEAVER_RECORD_KEY_FILE")["value"].as_str().unwrap();
    let mounts = container["volumeMounts"].as_array().unwrap();
    let mount = mounts.iter().find(|m| m["name"] == "record-key").expect("the record key's mount");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "record-key").unwrap();
    assert_eq!(volume["secret"]["secretName"], "weaver-record-key");
    let item = &volume["secret"]["items"][0];
    assert_eq!(item["key"], "hmac");
    assert_eq!(file, format!("{}/{}", mount["mountPath"].as_str().unwrap(), item["path"].as_str().unwrap()));
    assert_eq!(volume["secret"]["defaultMode"], 0o440);
    assert_eq!(pod["securityContext"]["fsGroup"], 65532, "the group the key is readable by");
    assert_eq!(pod["securityContext"]["runAsGroup"], 65532);
    // The API server takes it as it is.
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("record-key");
    let deployment =
        the(&render_chart_in(&namespace, "{gitops: {recordKey: {secretName: record-key}}}"), "Deployment").clone();
    cluster.dry_run_apply(&deployment, "weaver").unwrap_or_else(|status| panic!("{status:?}"));

    let pod = the(&render_chart(), "Deployment")["spec"]["template"]["spec"].clone();
    assert!(!pod["containers"][0]["env"].as_array().unwrap().iter().any(|e| e["name"] == "WEAVER_RECORD_KEY_FILE"));
    assert!(!pod["volumes"].as_array().unwrap().iter().any(|v| v["name"] == "record-key"));
    assert!(pod["securityContext"].get("fsGroup").is_none());
}

/// The Deployment's arguments are `weaver operator run`'s: the controller's cache (git mirrors
/// and remote charts) in the emptyDir, within `gitops.cacheMaxMiB`, through the flags' older
/// names the chart still gives.
#[test]
fn the_deployments_arguments_parse_and_keep_the_cache_in_the_empty_dir() {
    use clap::Parser;
    let objects = render_chart_with("{gitops: {cacheMaxMiB: 300}}");
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = std::iter::once("weaver").chain(strings(&container["args"]));
    let cli = weaver_cli::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{}", e.render()));
    let weaver_cli::cli::Command::Operator(weaver_cli::cli::OperatorCommand::Run(run)) = cli.command else {
        panic!("not `operator run`: {}", container["args"]);
    };
    assert_eq!(run.cache_max_mib, 300);
    let dir = run.cache_dir.expect("--cache-dir");
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(dir.starts_with(mount), "{} is outside the emptyDir at {mount}", dir.display());
}

#[test]
fn the_web_ui_is_served_when_enabled_behind_its_service_and_an_ingress_with_tls() {
    let off = render_chart();
    assert!(!off.iter().any(|o| o["metadata"]["name"] == "weaver-ui"), "off by default");
    let rules = the(&off, "ClusterRole")["rules"].as_array().unwrap().clone();
    assert!(verbs_on(&rules, "authentication.k8s.io", "tokenreviews").is_empty(), "no sign-in, no TokenReviews");

    let objects = render_chart_with(
        "{gitops: {ui: {enabled: true, port: 9494, servicePort: 8443, from: [{podSelector: {matchLabels: {app: ingress}}}], \
         trustedProxies: [10.244.0.0/16, 'fd00::/8'], \
         ingress: {host: weaver.example.org, className: nginx, tlsSecretName: weaver-tls, \
         annotations: {nginx.ingress.kubernetes.io/affinity: cookie}}}}}",
    );
    use clap::Parser;
    let container = &the(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let args = std::iter::once("weaver").chain(strings(&container["args"]));
    let cli = weaver_cli::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{}", e.render()));
    let weaver_cli::cli::Command::Operator(weaver_cli::cli::OperatorCommand::Run(run)) = cli.command else {
        panic!("not `operator run`: {}", container["args"]);
    };
    assert_eq!(run.ui_address, Some("0.0.0.0:9494".parse().unwrap()));
    let proxies = ["10.244.0.0/16", "fd00::/8"].map(|cidr| cidr.parse().unwrap());
    assert_eq!(run.ui_trusted_proxies, proxies);
    let ports = container["ports"].as_array().unwrap();
    assert!(ports.contains(&json!({"name": "ui", "containerPort": 9494, "protocol": "TCP"})), "{ports:?}");

    let service = objects.iter().find(|o| o["metadata"]["name"] == "weaver-ui").expect("a Service");
    assert_eq!(service["kind"], "Service");
    assert_eq!(service["spec"]["selector"], pod_labels(&objects));
    assert_eq!(service["spec"]["ports"], json!([{"name": "ui", "port": 8443, "targetPort": "ui", "protocol": "TCP"}]));
    let ingress = the(&objects, "Ingress");
    assert_eq!(ingress["metadata"]["annotations"], json!({"nginx.ingress.kubernetes.io/affinity": "cookie"}));
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["tls"], json!([{"hosts": ["weaver.example.org"], "secretName": "weaver-tls"}]));
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "weaver.example.org");
    assert_eq!(rule["http"]["paths"][0]["backend"]["service"], json!({"name": "weaver-ui", "port": {"name": "ui"}}));

    // The policy lets the users' peers in; the operator may review their tokens.
    let policy = &the(&objects, "NetworkPolicy")["spec"]["ingress"];
    assert!(
        policy.as_array().unwrap().contains(&json!({"ports": [{"port": 9494, "protocol": "TCP"}],
            "from": [{"podSelector": {"matchLabels": {"app": "ingress"}}}]})),
        "{policy}"
    );
    let rules = the(&objects, "ClusterRole")["rules"].as_array().unwrap().clone();
    assert_eq!(verbs_on(&rules, "authentication.k8s.io", "tokenreviews"), ["create"]);
    assert_eq!(verbs_on(&rules, "authorization.k8s.io", "subjectaccessreviews"), ["create"]);

    // Without a host, no Ingress; without a Secret, no TLS.
    let plain = render_chart_with("{gitops: {ui: {enabled: true}}}");
    assert!(!kinds(&plain).contains(&"Ingress"));
    let args = strings(&the(&plain, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(!args.iter().any(|arg| arg.starts_with("--ui-trusted-proxies")), "no proxy trusted: {args:?}");
}

#[test]
fn the_web_uis_oidc_sign_in_takes_its_client_secret_from_a_mounted_secret() {
    let objects = render_chart_with(
        "{gitops: {ui: {enabled: true, ingress: {host: weaver.example.org, tlsSecretName: weaver-tls}, \
         oidc: {issuerURL: 'https://dex.example.org', clientID: weaver, clientSecret: {name: weaver-oidc, key: secret}, \
         groupsClaim: groups, groupsPrefix: 'oidc:', usernamePrefix: '-', requiredClaims: {hd: example.org}, \
         caConfigMap: {name: corp-ca, key: ca.pem}}}}}",
    );
    use clap::Parser;
    let pod = &the(&objects, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = std::iter::once("weaver").chain(strings(&container["args"]));
    let cli = weaver_cli::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{}", e.render()));
    let weaver_cli::cli::Command::Operator(weaver_cli::cli::OperatorCommand::Run(run)) = cli.command else {
        panic!("not `operator run`: {}", container["args"]);
    };
    // The URL from the Ingress's host; the mapping as given.
    assert_eq!(run.ui_url.as_deref(), Some("https://weaver.example.org"));
    assert_eq!(run.ui_oidc_issuer.as_deref(), Some("https://dex.example.org"));
    assert_eq!(run.ui_oidc_client_id.as_deref(), Some("weaver"));
    assert_eq!(run.ui_oidc_scopes, ["email", "profile"]);
    assert_eq!((run.ui_oidc_username_claim.as_str(), run.ui_oidc_username_prefix.as_deref()), ("sub", Some("-")));
    assert_eq!((run.ui_oidc_groups_claim.as_deref(), run.ui_oidc_groups_prefix.as_str()), (Some("groups"), "oidc:"));
    assert_eq!(run.ui_oidc_required_claim, [("hd".to_string(), "example.org".to_string())]);
    // The secret a file of its Secret's item, readable by the operator's group alone; in no
    // environment variable.
    let secret_file = run.ui_oidc_client_secret_file.expect("a client secret file");
    assert_eq!(secret_file, std::path::Path::new("/etc/weaver/oidc-client-secret/client-secret"));
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes.contains(&json!({"name": "oidc-client-secret", "secret": {"secretName": "weaver-oidc",
            "items": [{"key": "secret", "path": "client-secret"}], "defaultMode": 288}})),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&json!({"name": "oidc-ca", "configMap": {"name": "corp-ca",
            "items": [{"key": "ca.pem", "path": "ca.crt"}]}})),
        "{volumes:?}"
    );
    let mounts = container["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "oidc-client-secret", "mountPath": "/etc/weaver/oidc-client-secret",
        "readOnly": true})));
    assert_eq!(run.ui_oidc_ca_file.as_deref(), Some(std::path::Path::new("/etc/weaver/oidc-ca/ca.crt")));
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    assert!(!container["env"].to_string().contains("weaver-oidc"), "{}", container["env"]);

    // Without an issuer: tokens only, no OIDC flag.
    let plain = render_chart_with("{gitops: {ui: {enabled: true}}}");
    let args = strings(&the(&plain, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(!args.iter().any(|arg| arg.starts_with("--ui-oidc") || arg.starts_with("--ui-url")), "{args:?}");

    // An issuer without a client id, or without the UI's URL, fails the render, naming the value.
    let refused = |oidc: &str| {
        let repo = chart_repo("weaver-system", &format!("{{gitops: {{ui: {{enabled: true, oidc: {oidc}}}}}}}"));
        repo.weaver(&["render", "--env", "ops"]).failure().to_string()
    };
    let error = refused("{issuerURL: 'https://dex.example.org', url: 'https://weaver.example.org'}");
    assert!(error.contains("gitops.ui.oidc.issuerURL needs gitops.ui.oidc.clientID"), "{error}");
    let error = refused("{issuerURL: 'https://dex.example.org', clientID: weaver}");
    assert!(error.contains("needs gitops.ui.oidc.url or gitops.ui.ingress.host"), "{error}");
}

#[test]
fn an_ingress_host_without_tls_is_refused_unless_tls_ends_before_it() {
    // Tokens pasted into the sign-in page would cross the network in clear.
    let behind = |ingress: &str| {
        chart_repo("weaver-system", &format!("{{gitops: {{ui: {{enabled: true, ingress: {ingress}}}}}}}"))
    };
    let error = behind("{host: weaver.example.org}").weaver(&["render", "--env", "ops"]).failure().to_string();
    assert!(error.contains("templates/ui.yaml"), "{error}");
    assert!(error.contains("gitops.ui.ingress.host weaver.example.org is served without TLS"), "{error}");
    assert!(error.contains("gitops.ui.ingress.plainHTTP: true"), "{error}");
    // TLS terminated in front of the Ingress: served plain by it, as asked.
    let no_tls = rendered(&behind("{host: weaver.example.org, plainHTTP: true}"), "ops");
    assert!(the(&no_tls, "Ingress")["spec"].get("tls").is_none());
    assert!(
        the(&no_tls, "Ingress")["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("nginx.ingress.kubernetes.io/affinity").is_none())
    );
}

#[test]
fn the_webhooks_ingress_has_tls_as_the_uis_has_and_is_refused_in_clear() {
    let objects = render_chart_with(
        "{gitops: {webhook: {ingress: {host: hooks.example.org, className: nginx, tlsSecretName: hooks-tls, \
         annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 1m}}}}}",
    );
    let ingress = the(&objects, "Ingress");
    assert_eq!(ingress["metadata"]["name"], "weaver-webhook");
    assert_eq!(ingress["metadata"]["annotations"], json!({"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}));
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["tls"], json!([{"hosts": ["hooks.example.org"], "secretName": "hooks-tls"}]));
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], "/hook/");
    assert_eq!(path["backend"]["service"], json!({"name": "weaver-webhook", "port": {"name": "webhook"}}));

    // GitLab's token crosses the Ingress as it is: not in clear, unless TLS ends before it.
    let behind =
        |ingress: &str| chart_repo("weaver-system", &format!("{{gitops: {{webhook: {{ingress: {ingress}}}}}}}"));
    let error = behind("{host: hooks.example.org}").weaver(&["render", "--env", "ops"]).failure().to_string();
    assert!(error.contains("templates/webhook.yaml"), "{error}");
    assert!(error.contains("gitops.webhook.ingress.host hooks.example.org is served without TLS"), "{error}");
    assert!(error.contains("gitops.webhook.ingress.tlsSecretName"), "{error}");
    let plain = rendered(&behind("{host: hooks.example.org, plainHTTP: true}"), "ops");
    assert!(the(&plain, "Ingress")["spec"].get("tls").is_none());
    assert_eq!(the(&plain, "Ingress")["spec"]["rules"][0]["host"], "hooks.example.org");
}

#[test]
fn the_charts_version_and_app_version_are_the_crates() {
    let text = std::fs::read_to_string(project_root().join(CHART).join("Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        (&chart["apiVersion"], &chart["name"], &chart["type"]),
        (&json!("v2"), &json!("weaver"), &json!("application"))
    );
    // A binary embeds and installs the chart of its own version, whose image is of that version.
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"), "{CHART}/Chart.yaml's version is not Cargo.toml's");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"), "{CHART}/Chart.yaml's appVersion is not Cargo.toml's");
}

/// `kind/name` of each object.
fn keys(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn names_follow_the_release_the_image_the_app_version_and_the_labels_the_name_override() {
    let objects = release_repo("ops", "platform", "{}");
    let objects = rendered(&objects, "ops");
    let mut names = keys(&objects);
    names.sort();
    assert_eq!(
        names,
        [
            "ClusterRole/platform-ops",
            "ClusterRoleBinding/platform-ops",
            "CustomResourceDefinition/configmapsyncs.weaver.example.com",
            "CustomResourceDefinition/environmentsyncs.weaver.example.com",
            "Deployment/ops",
            "NetworkPolicy/ops",
            "PodDisruptionBudget/ops",
            "Role/ops-leader-election",
            "RoleBinding/ops-leader-election",
            "Service/ops-conversion",
            "Service/ops-metrics",
            "Service/ops-webhook",
            "ServiceAccount/ops",
            "ValidatingAdmissionPolicy/platform-ops-approvals",
            "ValidatingAdmissionPolicyBinding/platform-ops-approvals",
        ]
    );
    let deployment = the(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        format!("weaver:{}", env!("CARGO_PKG_VERSION")),
        "the chart's appVersion"
    );
    assert_eq!(pod["serviceAccountName"], "ops", "the release's name");
    assert_eq!(
        the(&objects, "ClusterRoleBinding")["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ops", "namespace": "platform"}])
    );
    assert_eq!(
        the(&objects, "RoleBinding")["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ops", "namespace": "platform"}])
    );
    let selector = json!({"app.kubernetes.io/name": "weaver", "app.kubernetes.io/instance": "ops"});
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(pod_labels(&objects), selector);

    let objects = rendered(
        &release_repo(
            "ops",
            "platform",
            "{nameOverride: fleet-controller, image: {tag: 1.2.3}, serviceAccount: {name: controller}}",
        ),
        "ops",
    );
    let deployment = the(&objects, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "ops", "objects keep the release's name");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], "weaver:1.2.3");
    assert_eq!(pod["serviceAccountName"], "controller");
    assert_eq!(the(&objects, "ServiceAccount")["metadata"]["name"], "controller");
    assert_eq!(the(&objects, "ClusterRoleBinding")["subjects"][0]["name"], "controller");
    let selector = json!({"app.kubernetes.io/name": "fleet-controller", "app.kubernetes.io/instance": "ops"});
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], selector);
    for service in objects.iter().filter(|o| o["kind"] == "Service") {
        let mut selects = service["spec"]["selector"].clone();
        selects.as_object_mut().unwrap().remove(CONVERSION_LABEL);
        assert_eq!(selects, selector, "{}", service["metadata"]["name"]);
    }
    let policy = the(&objects, "ValidatingAdmissionPolicy");
    assert!(
        policy.to_string().contains("request.userInfo.username == 'system:serviceaccount:platform:controller'"),
        "the controller's own account may name another approver: {policy}"
    );
}

/// Objects by `kind/name`, the labels weaver gives every object of a release (which helm does
/// not) left out.
fn by_key(objects: Vec<Value>) -> std::collections::BTreeMap<String, Value> {
    objects
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|mut o| {
            let meta = o["metadata"].as_object_mut().expect("metadata");
            if let Some(Value::Object(labels)) = meta.get_mut("labels") {
                for label in
                    ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"]
                {
                    labels.remove(label);
                }
                if labels.is_empty() {
                    meta.remove("labels");
                }
            }
            (keys(std::slice::from_ref(&o)).remove(0), o)
        })
        .collect()
}

/// `helm install weaver oci://…/weaver` and weaver's own release of the chart deploy the same
/// objects: `helm template` (helm v3.17.1 at $WEAVER_HELM or on PATH) and `weaver render` of
/// an environment with the release give the same, for the default values, for the UI with
/// OIDC, ingresses and a ServiceMonitor, and for a ServiceMonitor `auto` where the API is
/// declared (`--api-versions`, the environment's `apiVersions`); values the chart refuses (an
/// ingress without TLS, OIDC without a client id or a URL) fail both with helm's message.
#[test]
fn helm_template_and_weaver_render_the_chart_to_the_same_objects() {
    let Some(helm) = common::helm_or_skip() else { return };
    let everything = json!({
        "replicas": 3,
        "priorityClassName": "system-cluster-critical",
        "extraEnv": [{"name": "WEAVER_REGISTRY_MAX_BYTES", "value": "1000000"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "mine"}}},
        ],
        "networkPolicy": {"metricsFrom": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
            "apiServer": {"ports": [6443], "cidrs": ["10.0.0.10/32"]}},
        "serviceMonitor": {"enabled": true, "interval": "15s", "labels": {"release": "prometheus"}},
        "gitops": {
            "defaultServiceAccount": "applier",
            "cacheMaxMiB": 1536,
            "recordKey": {"secretName": "weaver-record-key", "key": "hmac"},
            "webhook": {"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "trustedProxies": ["10.244.0.0/16"],
                "ingress": {"host": "hooks.example.org", "className": "nginx", "tlsSecretName": "hooks-tls",
                    "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}}},
            "ui": {"enabled": true, "port": 9494, "servicePort": 8443,
                "from": [{"podSelector": {"matchLabels": {"app": "ingress"}}}], "trustedProxies": ["10.244.0.0/16", "fd00::/8"],
                "ingress": {"host": "weaver.example.org", "className": "nginx", "tlsSecretName": "weaver-tls",
                    "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
                "oidc": {"issuerURL": "https://dex.example.org", "clientID": "weaver",
                    "clientSecret": {"name": "weaver-oidc", "key": "secret"}, "groupsClaim": "groups",
                    "groupsPrefix": "oidc:", "usernamePrefix": "-", "requiredClaims": {"hd": "example.org", "org": "shop"},
                    "caConfigMap": {"name": "corp-ca", "key": "ca.pem"}}},
        },
    });
    let cases = [
        ("the default values", json!({}), None),
        ("the UI with OIDC, both ingresses and a ServiceMonitor", everything, None),
        ("a ServiceMonitor auto where the API is declared", json!({}), Some("monitoring.coreos.com/v1")),
    ];
    for (what, values, api_version) in cases {
        let repo = Repo::empty();
        copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
        let declared = api_version.map(|v| format!("apiVersions: [{v}]\n")).unwrap_or_default();
        repo.write(
            "environments/ops.yaml",
            &format!("{declared}releases:\n  - name: weaver\n    chart: weaver\n    namespace: weaver-system\n    values: {values}\n"),
        );
        repo.write("values.json", &values.to_string());
        let actual = by_key(rendered(&repo, "ops"));

        let mut args = vec!["--include-crds"];
        if let Some(api_version) = api_version {
            args.extend(["--api-versions", api_version]);
        }
        let out = helm_template(&helm, repo.path(), &args);
        assert!(out.status.success(), "{what}: helm template failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let expected = by_key(weaver_yaml::documents(std::path::Path::new("helm"), &text).unwrap());

        assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{what}");
        for (key, object) in &expected {
            assert_eq!(&actual[key], object, "{what}: {key} differs from helm template's");
        }
        if api_version.is_some() || what.contains("ServiceMonitor") {
            assert!(expected.contains_key("ServiceMonitor/weaver"), "{what}: {:?}", expected.keys());
        }
    }

    // The values the chart refuses, it refuses in both, with helm's message, where it failed.
    let refused = [
        json!({"gitops": {"ui": {"enabled": true, "ingress": {"host": "weaver.example.org"}}}}),
        json!({"gitops": {"webhook": {"ingress": {"host": "hooks.example.org"}}}}),
        json!({"gitops": {"ui": {"enabled": true, "oidc": {"issuerURL": "https://dex.example.org", "url": "https://weaver.example.org"}}}}),
        json!({"gitops": {"ui": {"enabled": true, "oidc": {"issuerURL": "https://dex.example.org", "clientID": "weaver"}}}}),
    ];
    for values in refused {
        let repo = chart_repo("weaver-system", &values.to_string());
        repo.write("values.json", &values.to_string());
        let error = repo.weaver(&["render", "--env", "ops"]).failure().to_string();
        let out = helm_template(&helm, repo.path(), &[]);
        assert!(!out.status.success(), "helm template took {values}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr.lines().next().and_then(|line| line.strip_prefix("Error: ")).expect("helm's error");
        assert!(message.starts_with("execution error at (weaver/templates/"), "{stderr}");
        assert!(error.contains(message), "weaver's error:\n{error}\nhelm's:\n{message}");
    }
}

/// `helm template weaver` of the chart in `dir` with its `values.json`, as weaver renders it
/// (namespace weaver-system, Kubernetes v1.32.0), with `extra` flags.
fn helm_template(helm: &std::path::Path, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(helm);
    cmd.current_dir(dir).args(["template", "weaver", CHART, "-n", "weaver-system", "--kube-version", "v1.32.0"]);
    cmd.args(["-f", "values.json"]).args(extra);
    cmd.output().expect("run helm")
}

/// The release the former chart, `charts/configmapsync-operator` (a weaver chart, which
/// charts/weaver replaced), was given in the demo, in `weaver-system`, and what it rendered with
/// its default values, as `weaver render` printed it before the chart was deleted: each object
/// by kind and name, and its pods' labels, which its Deployment selected them by.
const FORMER_RELEASE: &str = "configmapsync-operator";
const FORMER_OBJECTS: [&str; 14] = [
    "CustomResourceDefinition/configmapsyncs.weaver.example.com",
    "CustomResourceDefinition/environmentsyncs.weaver.example.com",
    "ValidatingAdmissionPolicy/weaver-system-configmapsync-operator-approvals",
    "ValidatingAdmissionPolicyBinding/weaver-system-configmapsync-operator-approvals",
    "ClusterRole/weaver-system-configmapsync-operator",
    "ClusterRoleBinding/weaver-system-configmapsync-operator",
    "ServiceAccount/configmapsync-operator",
    "Role/configmapsync-operator-leader-election",
    "RoleBinding/configmapsync-operator-leader-election",
    "Service/configmapsync-operator-metrics",
    "Service/configmapsync-operator-webhook",
    "Deployment/configmapsync-operator",
    "NetworkPolicy/configmapsync-operator",
    "PodDisruptionBudget/configmapsync-operator",
];
const FORMER_POD_LABELS: [(&str, &str); 2] =
    [("app.kubernetes.io/name", "configmapsync-operator"), ("app.kubernetes.io/instance", "configmapsync-operator")];
/// What a release of the former chart sets when its `chart:` becomes `weaver`
/// (docs/src/guides/install-in-a-cluster.md).
const MOVED: &str = "{nameOverride: configmapsync-operator, serviceAccount: {name: configmapsync-operator}}";

/// A release of the former chart that keeps its name and sets `nameOverride` and
/// `serviceAccount.name` as the install guide says renders the same objects by kind and name
/// (none pruned, none added), the same ServiceAccount and cluster-wide names, the same CRDs and
/// the same selector; the API server takes its Deployment over the former one, and refuses it
/// without `nameOverride` (a Deployment's selector cannot change).
#[test]
fn a_release_of_the_former_chart_moves_to_this_one_keeping_its_objects_and_selector() {
    let objects = rendered(&release_repo(FORMER_RELEASE, "weaver-system", MOVED), "ops");
    let mut names = keys(&objects);
    names.sort();
    let mut former = FORMER_OBJECTS.map(String::from).to_vec();
    // Added since: the Service of the EnvironmentSync CRD's conversion webhook.
    former.push("Service/configmapsync-operator-conversion".to_string());
    former.sort();
    assert_eq!(names, former, "the same objects: none pruned, none added but the conversion Service");

    let labels = Value::Object(FORMER_POD_LABELS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect());
    let deployment = the(&objects, "Deployment");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(pod_labels(&objects), labels);
    for object in &objects {
        let selects = match object["kind"].as_str().unwrap() {
            "Service" => &object["spec"]["selector"],
            "PodDisruptionBudget" => &object["spec"]["selector"]["matchLabels"],
            "NetworkPolicy" => &object["spec"]["podSelector"]["matchLabels"],
            _ => continue,
        };
        // The conversion Service, new, selects the pods that serve it alone.
        let mut selects = selects.clone();
        selects.as_object_mut().unwrap().remove(CONVERSION_LABEL);
        assert_eq!(selects, labels, "{} selects the pods as before", object["metadata"]["name"]);
    }
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], FORMER_RELEASE);
    let account = json!([{"kind": "ServiceAccount", "name": FORMER_RELEASE, "namespace": "weaver-system"}]);
    assert_eq!(the(&objects, "ClusterRoleBinding")["subjects"], account);
    assert_eq!(the(&objects, "ClusterRoleBinding")["roleRef"]["name"], "weaver-system-configmapsync-operator");
    assert_eq!(the(&objects, "RoleBinding")["subjects"], account);
    // The CRDs are the same objects (the files moved unchanged): custom resources keep theirs.
    for (file, name) in [
        (CRD_FILE, "configmapsyncs.weaver.example.com"),
        (ENVIRONMENTSYNC_CRD_FILE, "environmentsyncs.weaver.example.com"),
    ] {
        let shipped: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(project_root().join(file)).unwrap()).unwrap();
        let crd = objects.iter().find(|o| o["metadata"]["name"] == name).expect(name);
        assert_eq!(crd["spec"], shipped["spec"], "{name}");
    }

    // On the API server: the former Deployment, as the former chart made it, takes the moved
    // release's as an update; the release's without nameOverride would change its selector.
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("moved");
    let former = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": FORMER_RELEASE, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"serviceAccountName": FORMER_RELEASE, "containers": [{"name": "operator", "image": "weaver:0.1.0"}]}},
        },
    });
    cluster.apply(&[former], "weaver");
    let moved = the(&rendered(&release_repo(FORMER_RELEASE, &namespace, MOVED), "ops"), "Deployment").clone();
    cluster
        .dry_run_apply(&moved, "weaver")
        .unwrap_or_else(|status| panic!("the moved release's Deployment: {status:?}"));
    let unmoved = the(&rendered(&release_repo(FORMER_RELEASE, &namespace, "{}"), "ops"), "Deployment").clone();
    let refused = cluster.dry_run_apply(&unmoved, "weaver").expect_err("a Deployment's selector cannot change");
    assert_eq!(refused.code, 422, "{refused:?}");
    assert!(refused.message.contains("field is immutable"), "{}", refused.message);
}
