//! weaver where users install it: its image, built here without docker from the binary under
//! test (tests/common/image.rs), and, on a cluster with nodes (tests/common/node.rs: skipped
//! without `WEAVER_E2E_KUBECONFIG` and `WEAVER_E2E_LOAD_IMAGE`), the demo installed with
//! `weaver apply --env dev --wait` as a user does, its operator in Pods from that image, and
//! what a node does to an apply (an image that cannot be pulled).
//!
//! What the suite measures on the node it prints as `figure …` lines
//! (docs/src/guides/install-in-a-cluster.md lists them).

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::certs::test_certificates;
use common::demo::Demo;
use common::eventually;
use common::git_http::{GitHttpServer, Options, http_backend_missing};
use common::image;
use common::node::{E2e, figure};
use common::skip::say_skipped;
use serde_json::{Value, json};

/// An image archive read back: its manifest, its config, and its one layer's entries (path →
/// mode, size, mtime, owner).
struct ReadBack {
    manifest: Value,
    config: Value,
    config_name: String,
    config_digest: String,
    layer_digest: String,
    entries: BTreeMap<String, (u32, u64, u64, (u64, u64))>,
}

fn read_back(archive: &std::path::Path) -> ReadBack {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        assert_eq!(entry.header().mtime().unwrap(), 0, "{name} is dated");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(name, content);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_string();
    let config_bytes = &files[&config_name];
    let layer_bytes = &files[manifest[0]["Layers"][0].as_str().unwrap()];
    let (mut entries, mut order) = (BTreeMap::new(), Vec::new());
    for entry in tar::Archive::new(layer_bytes.as_slice()).entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let path = entry.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        let owner = (header.uid().unwrap(), header.gid().unwrap());
        order.push(path.clone());
        entries.insert(path, (header.mode().unwrap(), header.size().unwrap(), header.mtime().unwrap(), owner));
    }
    assert!(order.is_sorted(), "the layer's entries are not in order: {order:?}");
    use sha2::Digest;
    ReadBack {
        config: serde_json::from_slice(config_bytes).unwrap(),
        manifest,
        config_name,
        config_digest: hex::encode(sha2::Sha256::digest(config_bytes)),
        layer_digest: hex::encode(sha2::Sha256::digest(layer_bytes)),
        entries,
    }
}

#[test]
fn weavers_image_holds_the_dockerfiles_content_the_binary_its_loader_and_libraries_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let binary = std::path::Path::new(common::WEAVER);
    let built = image::weaver(binary, dir.path()).unwrap();
    let image = read_back(&built.archive);

    // What `docker load` and containerd read: the config by its digest, the layer by its.
    let digest = image::sha256_of_file(binary).unwrap();
    let name = format!("{}:e2e-{}", image::WEAVER_REPOSITORY, &digest[..12]);
    assert_eq!(image.manifest[0]["RepoTags"], json!([name]));
    assert_eq!(image.config_name, format!("{}.json", image.config_digest));
    assert_eq!(image.config["rootfs"]["diff_ids"], json!([format!("sha256:{}", image.layer_digest)]));
    assert_eq!((image.config["os"].as_str(), image.config["architecture"].as_str()), (Some("linux"), Some("amd64")));
    // USER 65532:65532, ENTRYPOINT ["/weaver"], and nothing else set (no CMD, no shell form).
    assert_eq!(image.config["config"], json!({"User": "65532:65532", "Entrypoint": ["/weaver"]}));

    let (mode, size, _, owner) = image.entries["weaver"];
    assert_eq!((mode, size, owner), (0o755, std::fs::metadata(binary).unwrap().len(), (0, 0)));
    for absent in ["tmp", "bin/sh", "bin", "etc", "etc/ssl/certs/ca-certificates.crt", "usr/bin"] {
        assert!(!image.entries.contains_key(absent), "the image has /{absent}: {:?}", image.entries.keys());
    }
    // Dated 0 and owned by root, in order: the same binary makes the same archive, byte for byte.
    assert!(image.entries.values().all(|&(_, _, mtime, owner)| mtime == 0 && owner == (0, 0)), "{:?}", image.entries);

    // Beside the binary, only the loader it names and the libraries it loads, in directories.
    let files: Vec<&str> = image.entries.keys().map(String::as_str).collect();
    let libraries: Vec<&&str> = files.iter().filter(|p| p.contains(".so")).collect();
    match image::elf_interpreter(binary).unwrap() {
        Some(loader) => {
            assert!(image.entries.contains_key(loader.trim_start_matches('/')), "no loader {loader}: {files:?}");
            assert!(libraries.iter().any(|p| p.contains("/libc.so")), "no libc: {files:?}");
        }
        None => assert!(libraries.is_empty(), "a static binary with libraries: {files:?}"),
    }
    for path in &files {
        let is_directory = image.entries.keys().any(|other| other.starts_with(&format!("{path}/")));
        assert!(*path == "weaver" || path.contains(".so") || is_directory, "/{path} is in the image: {files:?}");
    }
}

/// Ready=True among a Pod's conditions.
fn pod_ready(pod: &Value) -> bool {
    let conditions = pod.pointer("/status/conditions").and_then(Value::as_array);
    conditions.into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap()
}

/// The Pods of a namespace not being deleted.
fn live_pods(cluster: &common::cluster::TestCluster, namespace: &str) -> Vec<Value> {
    let pods = cluster.list("v1", "Pod", "pods", namespace);
    pods.into_iter().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).collect()
}

/// The holder of the operator's leader Lease in its namespace (the one Lease there); None while
/// it is released (no `holderIdentity`, or an empty one).
fn leader(cluster: &common::cluster::TestCluster, namespace: &str) -> Option<String> {
    let leases = cluster.list("coordination.k8s.io/v1", "Lease", "leases", namespace);
    let holder = leases.iter().find_map(|l| l.pointer("/spec/holderIdentity").and_then(Value::as_str));
    holder.filter(|h| !h.is_empty()).map(String::from)
}

#[test]
fn apply_wait_installs_the_demo_and_the_operator_runs_from_its_image_leads_serves_metrics_and_hands_over() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    if let Some(why) = http_backend_missing() {
        say_skipped(&format!("the EnvironmentSync's git server needs git's http-backend: {why}"));
        return;
    }
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let operator_ns = format!("{}-weaver-system", cluster.prefix);
    let staging_ns = format!("{}-staging", cluster.prefix);

    // The EnvironmentSync's source: this demo, committed and served over https where the Pods
    // reach this machine, its private CA in a Secret the `caSecretRef` names and its account
    // may read.
    let host = e2e.host_address(cluster);
    let certs_dir = tempfile::tempdir().unwrap();
    let Some((ca, chain, key)) = test_certificates(certs_dir.path(), host) else {
        say_skipped("the openssl CLI cannot make the git server's certificates");
        return;
    };
    let repo_dir = demo.repo.path();
    let options = Options { address: Some(host), tls: Some((chain, key)), ..Options::default() };
    let server = GitHttpServer::start(repo_dir.parent().unwrap(), options);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let url = format!("{}/{}", server.base, repo_dir.file_name().unwrap().to_str().unwrap());
    demo.edit(
        "charts/environment-sync/values.yaml",
        "url: https://github.com/example/weaver.git",
        &format!("url: {url}"),
    );
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "    url: {{ values.source.url | quote }}\n",
        "    url: {{ values.source.url | quote }}\n    caSecretRef: {name: git-ca}\n",
    );
    let ca = String::from_utf8(ca).unwrap().lines().map(|line| format!("    {line}\n")).collect::<String>();
    demo.repo.write(
        "charts/environment-sync/templates/git-ca.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-ca\nstringData:\n  ca.crt: |\n{ca}---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: git-ca-reader\nrules:\n  \
             - {{apiGroups: [\"\"], resources: [secrets], resourceNames: [git-ca], verbs: [get]}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: git-ca-reader\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: git-ca-reader}}\n\
             subjects: [{{kind: ServiceAccount, name: \"{{{{ release.name }}}}\"}}]\n"
        ),
    );
    // The operator from the image of the binary under test; its NetworkPolicy lets it reach
    // the git server's port.
    let (repository, tag) = images.weaver.names[0].rsplit_once(':').unwrap();
    demo.edit(
        "environments/dev.yaml",
        "    chart: configmapsync-operator\n",
        &format!(
            "    chart: configmapsync-operator\n    values:\n      image: {{repository: {repository}, tag: \"{tag}\"}}\n      gitops: {{gitPorts: [443, 22, {port}]}}\n"
        ),
    );
    // The demo names a target its tenant may not write, to show a Forbidden target in the
    // status: its ConfigMapSync then stays not Ready, and a wait would wait for it to the end.
    demo.edit("charts/settings-sync/values.yaml", "deniedNamespaces: [default]", "deniedNamespaces: []");
    let git = common::git::init(repo_dir);
    git.set_head("refs/heads/main").unwrap();
    let commit = common::git::commit_all(&git, "the demo").to_string();

    let started = Instant::now();
    let applied = demo.weaver(&["apply", "--env", "dev", "--wait", "--timeout", "4m"]);
    let install = started.elapsed();
    let out = applied.success();
    figure(
        "`weaver apply --env dev --wait` (CRDs, the operator's two Pods, web and Redis Ready)",
        &format!("{install:.1?}"),
    );
    assert!(out.contains(", 0 failed"), "{out}");

    // The operator's two Pods: Ready, from the image built here, never restarted.
    let pods = live_pods(cluster, &operator_ns);
    assert_eq!(pods.len(), 2, "{pods:#?}");
    for pod in &pods {
        assert!(pod_ready(pod), "{} is not Ready: {:#}", name(pod), pod["status"]);
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(pod["spec"]["containers"][0]["image"], images.weaver.names[0]);
        assert_eq!(status["restartCount"], 0, "{status:#}");
    }
    // The web app and Redis behind their probes.
    for pod in live_pods(cluster, &demo.ns) {
        assert!(pod_ready(&pod), "{} is not Ready: {:#}", name(&pod), pod["status"]);
    }

    // One leader, one of the two.
    let names: Vec<String> = pods.iter().map(|p| name(p).to_string()).collect();
    let holder = eventually("a leader", || leader(cluster, &operator_ns).ok_or("no holder".to_string()));
    assert!(names.contains(&holder), "the Lease is held by {holder}, not one of {names:?}");

    // The syncs ran in the Pod: the ConfigMapSync's targets, the EnvironmentSync at the commit
    // with staging applied from the git server. A custom resource without a status yet is ready
    // to `--wait` (it has no signal to wait on: docs/src/concepts/health.md), so they are
    // awaited here.
    let sync = json!({"apiVersion": "weaver.example.com/v1alpha1", "kind": "ConfigMapSync",
        "metadata": {"name": "shop-settings", "namespace": demo.ns}});
    eventually("the ConfigMapSync's targets in sync", || {
        let status = cluster.get(&sync).ok_or("no ConfigMapSync")?["status"].clone();
        if status["targetsInSync"] == "2/2" { Ok(()) } else { Err(status.to_string()) }
    });
    let environment_sync = json!({"apiVersion": "weaver.example.com/v1alpha1", "kind": "EnvironmentSync",
        "metadata": {"name": "staging-sync", "namespace": demo.ns}});
    eventually("the EnvironmentSync to apply the commit", || {
        let status = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?["status"].clone();
        if status["lastAppliedRevision"] == commit.as_str() { Ok(()) } else { Err(status.to_string()) }
    });
    figure(
        "install to the EnvironmentSync's first apply from the Pod (https, private CA)",
        &format!("{:.1?}", started.elapsed()),
    );
    let web =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": staging_ns}});
    assert!(cluster.get(&web).is_some(), "the EnvironmentSync did not apply staging's web");

    // No false drift once the node's controllers touched the objects (ReplicaSets and Pods of
    // the Deployments, the StatefulSet's claim bound, ClusterIPs, defaulted fields, the
    // controllers' finalizers and status).
    let drift = demo.weaver(&["drift", "--env", "dev"]);
    assert_eq!(drift.code, 0, "drift after the install:\n{}\n{}", drift.stdout, drift.stderr);
    let diff = demo.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_eq!(diff.code, 0, "diff after the install:\n{}\n{}", diff.stdout, diff.stderr);

    // Probes and metrics answer, through the API server's proxy to the Pod.
    let metrics =
        cluster.get_text(&format!("/api/v1/namespaces/{operator_ns}/pods/{holder}:8080/proxy/metrics")).unwrap();
    let reconciles = metrics.lines().find_map(|l| l.strip_prefix("configmapsync_reconciles_total "));
    assert!(reconciles.and_then(|n| n.parse::<f64>().ok()).is_some_and(|n| n >= 1.0), "{metrics}");
    for pod in &names {
        let ready =
            cluster.get_text(&format!("/api/v1/namespaces/{operator_ns}/pods/{pod}:8080/proxy/readyz")).unwrap();
        assert_eq!(ready.trim(), "ok", "{pod}");
    }

    // Memory, as the kubelet counts it (the Pod's working set), once its stats (collected every
    // 10 s or so) have the Pods.
    let node = pods[0]["spec"]["nodeName"].as_str().unwrap();
    let memory = eventually("the kubelet's memory stats of the operator's Pods", || {
        let summary = cluster.get_text(&format!("/api/v1/nodes/{node}/proxy/stats/summary"))?;
        let summary: Value = serde_json::from_str(&summary).map_err(|e| e.to_string())?;
        let memory: BTreeMap<String, f64> = summary["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|stats| stats["podRef"]["namespace"] == operator_ns.as_str())
            .filter_map(|stats| {
                let bytes = stats["memory"]["workingSetBytes"].as_f64().filter(|b| *b > 0.0)?;
                Some((stats["podRef"]["name"].as_str()?.to_string(), bytes))
            })
            .collect();
        if memory.len() == 2 { Ok(memory) } else { Err(format!("{memory:?}")) }
    });
    for (pod, bytes) in memory {
        let role = if pod == holder { "leader" } else { "standby" };
        figure(&format!("operator Pod memory, working set ({role})"), &format!("{:.1} MiB", bytes / 1048576.0));
    }

    // The leader deleted: SIGTERM, it exits well within its 30 s grace period, and lets go of
    // the Lease, which the other replica takes.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": holder, "namespace": operator_ns}});
    let deleted = Instant::now();
    cluster.delete(&pod);
    let gone = deleted.elapsed();
    figure("the leader's Pod deleted to gone (SIGTERM to exit, and the kubelet's report)", &format!("{gone:.1?}"));
    assert!(gone < Duration::from_secs(15), "the leader took {gone:?} to exit");
    let next = eventually("another replica to take the Lease", || match leader(cluster, &operator_ns) {
        Some(next) if next != holder => Ok(next),
        other => Err(format!("{other:?}")),
    });
    figure("the Lease taken by the other replica, after the delete", &format!("{:.1?}", deleted.elapsed()));
    assert!(names.contains(&next), "the Lease went to {next}, not the standby of {names:?}");
}

/// `weaver apply --env dev --wait` of one Deployment whose container is `container` (YAML, at the
/// indentation of a containers item's fields) fails with exit 1, and what it says names the
/// Deployment's Pod and one of `reasons` (what the kubelet says of it).
fn apply_wait_fails_on_the_node(e2e: &E2e, what: &str, container: &str, reasons: &[&str]) {
    let cluster = e2e.cluster();
    let (ns, lock) = (cluster.namespace("fails"), cluster.namespace("lock"));
    let repo = common::Repo::empty();
    repo.write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n")
        .write(
            "charts/app/templates/deployment.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    \
                 matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      \
                 containers:\n        - name: app\n{container}"
            ),
        )
        .write(
            "environments/dev.yaml",
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nreleases:\n  - name: app\n    chart: app\n"),
        );

    let started = Instant::now();
    let applied = repo.weaver_on(&cluster, &["apply", "--env", "dev", "--wait", "--timeout", "2m"]);
    figure(&format!("apply --wait of {what}, to its exit"), &format!("{:.1?}", started.elapsed()));
    // What the user reads: the release's failure (stdout) and the error (stderr).
    let said = format!("{}{}", applied.stdout, applied.stderr);
    assert_eq!(applied.code, 1, "{said}");
    let pods = live_pods(&cluster, &ns);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let pod = name(&pods[0]);
    assert!(said.contains(pod), "the apply does not name the Pod {pod}:\n{said}");
    assert!(
        reasons.iter().any(|r| said.contains(r)),
        "the apply does not give the kubelet's reason ({reasons:?}):\n{said}"
    );
}

#[test]
fn apply_wait_fails_naming_the_pod_and_the_kubelets_reason_when_its_image_cannot_be_pulled() {
    let Some(e2e) = E2e::or_skip() else { return };
    let container = "          image: weaver-e2e.invalid/missing:1\n          imagePullPolicy: IfNotPresent\n";
    apply_wait_fails_on_the_node(
        &e2e,
        "an image that cannot be pulled",
        container,
        &["ErrImagePull", "ImagePullBackOff"],
    );
}

#[test]
fn apply_wait_fails_naming_the_pod_and_the_kubelets_reason_when_its_container_crashes_in_a_loop() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let container =
        format!("          image: {}\n          command: [/bin/busybox, \"false\"]\n", images.shop_web.names[0]);
    apply_wait_fails_on_the_node(&e2e, "a container that exits 1", &container, &["CrashLoopBackOff"]);
}

#[test]
fn apply_wait_fails_naming_the_pod_and_the_kubelets_reason_when_its_readiness_probe_fails() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let container = format!(
        "          image: {}\n          readinessProbe:\n            httpGet: {{path: /no-such-page, port: 8080}}\n            \
         periodSeconds: 2\n",
        images.shop_web.names[0]
    );
    apply_wait_fails_on_the_node(&e2e, "a failing readiness probe", &container, &["Readiness probe failed"]);
}
