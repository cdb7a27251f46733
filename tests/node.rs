//! weaver where users install it: its image, built here without docker from the binary under
//! test (tests/common/image.rs), and, on a cluster with nodes (tests/common/node.rs: skipped
//! without `WEAVER_E2E_KUBECONFIG` and `WEAVER_E2E_LOAD_IMAGE`), the demo installed with
//! `weaver apply --env dev --wait` as a user does, its operator in Pods from that image, its
//! EnvironmentSync pulling over https and over ssh and pushing its auto-promotion over ssh, and
//! what a node does to an apply (an image that cannot be pulled).
//!
//! What the suite measures on the node it prints as `figure …` lines
//! (docs/src/development/end-to-end.md lists them).

use crate::common;
use crate::previews::{delete_branch_of, preview_namespaces, push_to};

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::browser;
use common::certs::test_certificates;
use common::demo::Demo;
use common::eventually;
use common::git_http::{GitHttpServer, Options, http_backend_missing};
use common::git_ssh::Sshd;
use common::image;
use common::node::{E2e, Images, figure};
use common::skip::{interop_or_skip, say_skipped};
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
pub(crate) fn pod_ready(pod: &Value) -> bool {
    let conditions = pod.pointer("/status/conditions").and_then(Value::as_array);
    conditions.into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap()
}

/// The Pods of a namespace not being deleted.
pub(crate) fn live_pods(cluster: &common::cluster::TestCluster, namespace: &str) -> Vec<Value> {
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

/// The demo's EnvironmentSync's source, a server on this machine where the Pods reach it.
struct Source {
    url: String,
    /// The server's port, and any other the test's servers listen on, which the operator's
    /// NetworkPolicy must let the Pods reach.
    ports: Vec<u16>,
    /// What `spec.source` says beside the URL: the Secret it names (`caSecretRef`, `secretRef`).
    fields: &'static str,
    /// That Secret's name and its keys and values; the EnvironmentSync's account may read it.
    secret: (&'static str, Vec<(&'static str, String)>),
}

/// The demo served over https where the Pods reach this machine, its private CA in the Secret
/// `caSecretRef` names: the server (serving while kept) and the EnvironmentSync's source. None
/// after saying why the test skips.
fn https_source(e2e: &E2e, demo: &Demo) -> Option<(GitHttpServer, Source)> {
    let missing =
        http_backend_missing().map(|why| format!("the EnvironmentSync's git server needs git's http-backend: {why}"));
    if !interop_or_skip(missing.as_deref()) {
        return None;
    }
    let host = e2e.host_address(&demo.cluster);
    let certs_dir = tempfile::tempdir().unwrap();
    let Some((ca, chain, key)) = test_certificates(certs_dir.path(), host) else {
        interop_or_skip(Some("the openssl CLI cannot make the git server's certificates"));
        return None;
    };
    let repo_dir = demo.repo.path();
    let options = Options { address: Some(host), tls: Some((chain, key)), ..Options::default() };
    let server = GitHttpServer::start(repo_dir.parent().unwrap(), options);
    let source = Source {
        url: format!("{}/{}", server.base, repo_dir.file_name().unwrap().to_str().unwrap()),
        ports: vec![server.base.rsplit(':').next().unwrap().parse().unwrap()],
        fields: "caSecretRef: {name: git-ca}",
        secret: ("git-ca", vec![("ca.crt", String::from_utf8(ca).unwrap())]),
    };
    Some((server, source))
}

/// The demo served over ssh where the Pods reach this machine, the client's key and the
/// server's host key in the Secret `secretRef` names: the server (serving while kept) and the
/// EnvironmentSync's source. None after saying why the test skips.
fn ssh_source(e2e: &E2e, demo: &Demo) -> Option<(Sshd, Source)> {
    let missing = Sshd::missing().map(|why| format!("the EnvironmentSync's git server is OpenSSH's: {why}"));
    if !interop_or_skip(missing.as_deref()) {
        return None;
    }
    let sshd = Sshd::start_on(e2e.host_address(&demo.cluster));
    let source = Source {
        url: sshd.url(demo.repo.path()),
        ports: vec![sshd.port],
        fields: "secretRef: {name: git-ssh}",
        secret: ("git-ssh", vec![("identity", sshd.read("client")), ("known_hosts", sshd.known_host("host.pub"))]),
    };
    Some((sshd, source))
}

/// The environment-sync chart's template of Secret `name` of `type_` holding `data` (each key's
/// text, exactly), with a Role and RoleBinding that let the EnvironmentSync's account `get` it.
fn readable_secret(name: &str, type_: &str, data: &[(&str, String)]) -> String {
    // Each value as a JSON string, which YAML reads as a double-quoted scalar: no indentation or
    // trailing newline added to a password or a docker config.
    let data: String = data.iter().map(|(key, value)| format!("  {key}: {}\n", json!(value))).collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: {type_}\nstringData:\n{data}---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}-reader\nrules:\n  \
         - {{apiGroups: [\"\"], resources: [secrets], resourceNames: [{name}], verbs: [get]}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {name}-reader\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}-reader}}\n\
         subjects: [{{kind: ServiceAccount, name: \"{{{{ release.name }}}}\"}}]\n"
    )
}

/// Installs the demo as a user does, `weaver apply --env dev --wait`, with the operator from
/// weaver's image, no target the ConfigMapSync's account may not write, and the EnvironmentSync
/// pulling this demo, committed, from `source`. Returns the commit and when the apply started.
fn install_demo(demo: &Demo, images: &Images, source: Source) -> (String, Instant) {
    install_demo_with(demo, images, source, "", &[])
}

/// [`install_demo`], with `gitops` besides the operator's `gitPorts` in its release's `gitops`
/// values (`, ui: {enabled: true}`), and `envs` set for the apply.
fn install_demo_with(
    demo: &Demo,
    images: &Images,
    source: Source,
    gitops: &str,
    envs: &[(&str, &str)],
) -> (String, Instant) {
    let repo_dir = demo.repo.path();
    demo.edit(
        "charts/environment-sync/values.yaml",
        "url: https://github.com/example/weaver.git",
        &format!("url: {}", source.url),
    );
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "    url: {{ values.source.url | quote }}\n",
        &format!("    url: {{{{ values.source.url | quote }}}}\n    {}\n", source.fields),
    );
    let (secret, data) = &source.secret;
    demo.repo.write("charts/environment-sync/templates/git-secret.yaml", &readable_secret(secret, "Opaque", data));
    // The operator from the image of the binary under test; its NetworkPolicy lets it reach
    // the git server's port. It reconciles this test's syncs alone: the other tests' operators
    // on the node are other installs, and two installs must not reconcile one object.
    let (repository, tag) = images.weaver.names[0].rsplit_once(':').unwrap();
    let prefix = &demo.cluster.prefix;
    // The demo's values of the operator already set `gitops` (its approvals policy).
    demo.edit(
        "environments/dev.yaml",
        "      gitops: { approvals: ",
        &format!(
            "      image: {{repository: {repository}, tag: \"{tag}\"}}\n      selector: weaver-test={prefix}\n      gitops: {{ gitPorts: [443, 22, {}]{gitops}, approvals: ",
            source.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
    );
    // The demo names a target its tenant may not write, to show a Forbidden target in the
    // status: its ConfigMapSync then stays not Ready, and a wait would wait for it to the end.
    demo.edit("charts/settings-sync/values.yaml", "deniedNamespaces: [default]", "deniedNamespaces: []");
    let git = common::git::init(repo_dir);
    git.set_head("refs/heads/main").unwrap();
    let commit = common::git::commit_all(&git, "the demo").to_string();

    let started = Instant::now();
    let applied = demo.weaver_env(&["apply", "--env", "dev", "--wait", "--timeout", "4m"], envs);
    let install = started.elapsed();
    let out = applied.success();
    figure(
        "`weaver apply --env dev --wait` (CRDs, the operator's two Pods, web and Redis Ready)",
        &format!("{install:.1?}"),
    );
    assert!(out.contains(", 0 failed"), "{out}");
    (commit, started)
}

#[test]
fn apply_wait_installs_the_demo_and_the_operator_runs_from_its_image_leads_serves_metrics_and_hands_over() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let staging_ns = staging_namespace(cluster);

    // The EnvironmentSync's source: this demo served over https where the Pods reach this
    // machine, its private CA in a Secret the `caSecretRef` names.
    let Some((_server, source)) = https_source(&e2e, &demo) else { return };
    let (commit, started) = install_demo(&demo, images, source);

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
    let sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync",
        "metadata": {"name": "shop-settings", "namespace": demo.ns}});
    eventually("the ConfigMapSync's targets in sync", || {
        let status = cluster.get(&sync).ok_or("no ConfigMapSync")?["status"].clone();
        if status["targetsInSync"] == "2/2" { Ok(()) } else { Err(status.to_string()) }
    });
    let environment_sync = environment_sync(&demo);
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

    // The API versions: the operator's Pods serve the CRD's conversion webhook behind its
    // Service, with the certificates they made (the caBundle set), so the EnvironmentSync is
    // served at v1alpha1 too; and the leader left every object stored at v1beta1.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "environmentsyncs.weaver.example.com"}});
    let converted = Instant::now();
    let mut alpha = environment_sync.clone();
    alpha["apiVersion"] = json!("weaver.example.com/v1alpha1");
    let served = eventually("the EnvironmentSync served at v1alpha1 through the Pods' webhook", || {
        let crd = cluster.get(&crd).ok_or("no CRD")?;
        let bundle = &crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"];
        if !bundle.is_string() {
            return Err(format!("no caBundle yet: {}", crd["spec"]["conversion"]));
        }
        cluster.try_get(&alpha)
    });
    figure("the conversion webhook serving, after the first apply", &format!("{:.1?}", converted.elapsed()));
    assert_eq!(served["apiVersion"], "weaver.example.com/v1alpha1");
    assert_eq!(served["status"]["lastAppliedRevision"], json!(commit));
    eventually("the EnvironmentSync CRD's objects stored at v1beta1 alone", || {
        let stored = cluster.get(&crd).ok_or("no CRD")?["status"]["storedVersions"].clone();
        if stored == json!(["v1beta1"]) { Ok(()) } else { Err(stored.to_string()) }
    });

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
    let memory = eventually("the kubelet's memory stats of the operator's Pods", || {
        let memory = pods_memory(cluster, &operator_ns)?;
        if memory.len() == 2 { Ok(memory) } else { Err(format!("{memory:?}")) }
    });
    for (pod, bytes) in memory {
        let role = if pod == holder { "leader" } else { "standby" };
        figure(&format!("operator Pod memory, working set ({role})"), &format!("{:.1} MiB", bytes / 1048576.0));
    }

    // The leader deleted: SIGTERM, it exits well within its 30 s grace period, and lets go of
    // the Lease, which another live replica takes: the standby, or the Pod the ReplicaSet starts
    // in the deleted one's place when it asks first (seen once on the node: 0.69 s).
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
    let live: Vec<String> = live_pods(cluster, &operator_ns).iter().map(|p| name(p).to_string()).collect();
    assert!(live.contains(&next), "the Lease went to {next}, not a live replica of {live:?}");

    // A rolling update (as `kubectl rollout restart` makes one): the Lease goes from the
    // replicas it replaces to a new one once, never from one replaced replica to another
    // (issue 107: old -> old -> new). Every holder is seen, with its Pod's template hash.
    eventually("both replicas Ready before the rollout", || {
        let ready = live_pods(cluster, &operator_ns).iter().filter(|p| pod_ready(p)).count();
        if ready == 2 { Ok(()) } else { Err(format!("{ready} Ready")) }
    });
    let deployments = cluster.list("apps/v1", "Deployment", "deployments", &operator_ns);
    let [deployment] = &deployments[..] else { panic!("{deployments:#?}") };
    let hash_of =
        |pod: &Value| pod.pointer("/metadata/labels/pod-template-hash").and_then(Value::as_str).map(String::from);
    let old_hash: std::collections::BTreeSet<String> =
        live_pods(cluster, &operator_ns).iter().filter_map(hash_of).collect();
    let restarted = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "issue-107"}}}}});
    cluster.merge_patch(deployment, &restarted, "kubectl-rollout");
    let rolled = Instant::now();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let mut holders: Vec<String> = leader(cluster, &operator_ns).into_iter().collect();
    loop {
        let pods = live_pods(cluster, &operator_ns);
        for pod in &pods {
            if let Some(hash) = hash_of(pod) {
                hashes.insert(name(pod).to_string(), hash);
            }
        }
        if let Some(holder) = leader(cluster, &operator_ns)
            && holders.last() != Some(&holder)
        {
            holders.push(holder);
        }
        let new = |pod: &str| hashes.get(pod).is_some_and(|hash| !old_hash.contains(hash));
        let done = pods.len() == 2 && pods.iter().all(|p| new(name(p)) && pod_ready(p));
        if done && holders.last().is_some_and(|holder| new(holder)) {
            break;
        }
        assert!(rolled.elapsed() < Duration::from_secs(150), "the rollout: holders {holders:?}, Pods {hashes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    figure("a rolling update of the operator, to its new replicas leading", &format!("{:.1?}", rolled.elapsed()));
    let replaced: Vec<&String> =
        holders.iter().filter(|h| hashes.get(*h).is_none_or(|hash| old_hash.contains(hash))).collect();
    assert_eq!(
        replaced,
        [&next],
        "the Lease went from {next} to another replaced replica: holders {holders:?}, Pods {hashes:?}"
    );
}

/// The Ready condition of an object's status: (status, reason, message).
pub(crate) fn ready_condition(object: &Value) -> Option<(String, String, String)> {
    condition(object, "Ready")
}

/// The condition `kind` of an object's status: (status, reason, message).
fn condition(object: &Value, kind: &str) -> Option<(String, String, String)> {
    let conditions = object.pointer("/status/conditions").and_then(Value::as_array)?;
    let found = conditions.iter().find(|c| c["type"] == kind)?;
    let text = |field: &str| found[field].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The demo's EnvironmentSync, `staging-sync` (its name and namespace).
fn environment_sync(demo: &Demo) -> Value {
    json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "staging-sync", "namespace": demo.ns}})
}

/// The EnvironmentSync as it is once Ready at `commit`, or its status.
fn ready_at(cluster: &common::cluster::TestCluster, environment_sync: &Value, commit: &str) -> Result<Value, String> {
    let live = cluster.get(environment_sync).ok_or("no EnvironmentSync")?;
    if is_ready_at(&live, commit) { Ok(live) } else { Err(live["status"].to_string()) }
}

/// Whether an EnvironmentSync, as read, is Ready with `commit` applied.
fn is_ready_at(live: &Value, commit: &str) -> bool {
    ready_condition(live).is_some_and(|(status, ..)| status == "True")
        && live["status"]["lastAppliedRevision"] == commit
}

/// The namespace the demo installs the operator in, and the one its staging environment is.
fn operator_namespace(cluster: &common::cluster::TestCluster) -> String {
    format!("{}-weaver-system", cluster.prefix)
}

fn staging_namespace(cluster: &common::cluster::TestCluster) -> String {
    format!("{}-staging", cluster.prefix)
}

/// Asks the EnvironmentSync's controller for a reconcile, as `kubectl annotate` does: an apply
/// of the annotation alone, so that the test owns no other field.
pub(crate) fn request_reconcile(cluster: &common::cluster::TestCluster, environment_sync: &Value, at: &str) {
    let metadata = &environment_sync["metadata"];
    let request = json!({"apiVersion": environment_sync["apiVersion"], "kind": environment_sync["kind"],
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"],
            "annotations": {"weaver.example.com/reconcile-requested-at": at}}});
    cluster.apply(&[request], "weaver-e2e");
}

#[test]
fn environmentsync_in_the_pod_pulls_over_ssh_checking_the_host_key_against_its_secrets_known_hosts() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;

    // The EnvironmentSync's source: this demo over ssh where the Pods reach this machine, the
    // client's key and the server's host key in the Secret its `secretRef` names.
    let Some((sshd, source)) = ssh_source(&e2e, &demo) else { return };
    let (commit, started) = install_demo(&demo, images, source);

    let environment_sync = environment_sync(&demo);
    let ready_at = |commit: &str| ready_at(cluster, &environment_sync, commit);
    let live = eventually("the EnvironmentSync Ready at the commit, fetched over ssh", || ready_at(&commit));
    figure(
        "install to the EnvironmentSync Ready at the commit from the Pod (ssh, known_hosts in its Secret)",
        &format!("{:.1?}", started.elapsed()),
    );
    // The Secret's creation to Ready, as the API server dated them (to the second).
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-ssh", "namespace": demo.ns}});
    let created = cluster.get(&secret).expect("the Secret")["metadata"]["creationTimestamp"].clone();
    let conditions = live["status"]["conditions"].as_array().unwrap();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap()["lastTransitionTime"].clone();
    let seconds = |time: &Value| time.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let secret_to_ready = seconds(&ready).duration_since(seconds(&created));
    figure("the Secret created to Ready (the server's timestamps, to the second)", &format!("{secret_to_ready:#}"));
    // Staging's objects, as it renders from that commit, are in the cluster.
    let diff = demo.weaver(&["diff", "--env", "staging", "--exit-code"]);
    assert_eq!(diff.code, 0, "staging after the EnvironmentSync's apply:\n{}\n{}", diff.stdout, diff.stderr);
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": staging_namespace(cluster)}});
    assert!(cluster.get(&web).is_some(), "the EnvironmentSync did not apply staging's web");

    // Another host key listed for the server: the next fetch is refused, Ready=False with the
    // host-key reason naming the Secret, and the cluster stays at the commit.
    let request_reconcile = |at: &str| request_reconcile(cluster, &environment_sync, at);
    let set_known_hosts = |file: &str| {
        let mut changed = secret.clone();
        changed["stringData"] = json!({"known_hosts": sshd.known_host(file)});
        cluster.apply(&[changed], "weaver-e2e");
    };
    let changed = Instant::now();
    set_known_hosts("other.pub");
    request_reconcile("wrong host key");
    let (live, message) = eventually("Ready=False for the host key", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        match ready_condition(&live) {
            Some((status, reason, message)) if status == "False" && reason == "GitHostKeyMismatch" => {
                Ok((live, message))
            }
            _ => Err(live["status"].to_string()),
        }
    });
    figure(
        "known_hosts listing another key to Ready=False (a reconcile requested)",
        &format!("{:.1?}", changed.elapsed()),
    );
    let named = format!("Secret {}/git-ssh", demo.ns);
    assert!(message.contains(&named) && message.contains("lists another"), "{message}");
    assert_eq!(live["status"]["lastAppliedRevision"], commit.as_str(), "{:#}", live["status"]);
    // Neither key is in the status.
    let status = live["status"].to_string();
    for line in sshd.read("client").lines().filter(|l| !l.starts_with("-----")) {
        assert!(!status.contains(line), "the client's key is in the status: {status}");
    }

    // The right key back: Ready again at the commit.
    let corrected = Instant::now();
    set_known_hosts("host.pub");
    request_reconcile("right host key");
    eventually("the EnvironmentSync Ready again", || ready_at(&commit));
    figure("known_hosts corrected to Ready (a reconcile requested)", &format!("{:.1?}", corrected.elapsed()));
}

/// The login docker-registry asks for in the private charts test, and a wrong password for either
/// private repository.
const REGISTRY_USER: &str = "robot";
const REGISTRY_PASSWORD: &str = "Registry-s3cret-pa55";
const WRONG_PASSWORD: &str = "not-the-Chart-pa55word";

/// A docker config as `kubectl create secret docker-registry --docker-server=HOST
/// --docker-username=robot --docker-password=PASSWORD` writes it, and its `auth` (the base64 of
/// the login).
fn docker_config(host: &str, password: &str) -> (String, String) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{password}"));
    let config = json!({"auths": {host: {"username": REGISTRY_USER, "password": password, "auth": auth}}});
    (config.to_string(), auth)
}

/// Issue 108's private charts on the node: staging's releases `from-repository` and
/// `from-registry` take the chart `web`, 1.0.0 from a chart repository over https with a private
/// CA asking for basic auth and 1.1.0 from Debian's docker-registry asking for a login (htpasswd),
/// both where the Pods reach this machine; the EnvironmentSync's `chartCredentials` name a
/// Secret with `username`, `password` and `ca.crt` for the repository's URL, and one as `kubectl
/// create secret docker-registry` writes it, without `url`, for the registry its `auths` name.
/// The controller in its Pod pulls both and applies them; a wrong password in either Secret is
/// refused at the next push naming the repository and the Secret, never a password; mended, the
/// push applied.
#[test]
fn environmentsync_in_the_pod_pulls_private_charts_with_its_secrets_and_a_wrong_password_is_refused_naming_the_repository()
 {
    use crate::remote_charts::{PASSWORD, TestServer, USER};
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let helm = match common::tools::helm() {
        Ok((helm, _)) => helm,
        Err(why) => {
            interop_or_skip(Some(&format!("the registry's chart is pushed with helm: {why}")));
            return;
        }
    };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let host = e2e.host_address(cluster);
    let mut registry = match common::registry::Registry::start_on(host) {
        Ok(registry) => registry,
        Err(why) => {
            interop_or_skip(Some(&format!("a private chart is in docker-registry: {why}")));
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let Some((ca, chain, key)) = test_certificates(work.path(), host) else {
        interop_or_skip(Some("the openssl CLI cannot make the chart repository's certificates"));
        return;
    };

    // The chart repository over https, its certificate from a private CA, asking for basic auth;
    // the chart pushed to the registry, which then asks for a login.
    let served = tempfile::tempdir().unwrap();
    crate::remote_charts::chart_repository(served.path());
    let tls = weaver_test_support::tls::BlockingTls::new(&chain, &key);
    let charts = TestServer::chart_repository(host, served.path().to_path_buf(), Some(tls));
    let charts_url = charts.url();
    // Another version than the repository's: the same archive in both would be one digest,
    // which the controller pulls once per reconcile from either.
    let archive = crate::remote_charts::chart_archive(work.path(), "1.1.0");
    crate::remote_charts::helm_push(&helm, &work.path().join("helm"), &archive, &registry);
    registry.require_login(REGISTRY_USER, REGISTRY_PASSWORD);
    let registry_url = format!("oci://{}/charts", registry.host());

    // Staging's two releases of the private chart, locked by the CLI with its credentials file.
    demo.edit(
        "environments/staging.yaml",
        "releases:\n",
        &format!(
            "repositories:\n  - name: private\n    url: {charts_url}\n  - name: registry\n    url: {registry_url}\n    plainHttp: true\nreleases:\n"
        ),
    );
    demo.append(
        "environments/staging.yaml",
        "  - name: from-repository\n    chart: private/web\n    version: 1.0.0\n  - name: from-registry\n    chart: registry/web\n    version: 1.1.0\n",
    );
    let credentials = work.path().join("credentials.yaml");
    std::fs::write(
        &credentials,
        format!(
            "repositories:\n  - url: {charts_url}\n    username: {USER}\n    password: {PASSWORD}\n    caFile: {}\n  \
             - url: {registry_url}\n    username: {REGISTRY_USER}\n    password: {REGISTRY_PASSWORD}\n",
            work.path().join("ca.pem").display()
        ),
    )
    .unwrap();
    let cli_cache = tempfile::tempdir().unwrap();
    let cli_env = [
        ("WEAVER_CREDENTIALS", credentials.to_str().unwrap()),
        ("WEAVER_CHART_CACHE", cli_cache.path().to_str().unwrap()),
    ];
    demo.repo.weaver_env(&["charts", "lock"], &cli_env).success();

    // The EnvironmentSync's chartCredentials and their Secrets, which its account may read.
    let ca = String::from_utf8(ca).unwrap();
    let charts_secret = |password: &str| json!({"username": USER, "password": password, "ca.crt": ca});
    let registry_secret = |password: &str| json!({".dockerconfigjson": docker_config(&registry.host(), password).0});
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "  approval: Automatic\n",
        &format!(
            "  approval: Automatic\n  chartCredentials:\n    - {{url: \"{charts_url}\", secretRef: {{name: charts}}}}\n    - {{secretRef: {{name: regcred}}}}\n"
        ),
    );
    demo.repo.write(
        "charts/environment-sync/templates/chart-credentials.yaml",
        &(readable_secret(
            "charts",
            "Opaque",
            &[("username", USER.into()), ("password", PASSWORD.into()), ("ca.crt", ca.clone())],
        ) + "---\n"
            + &readable_secret(
                "regcred",
                "kubernetes.io/dockerconfigjson",
                &[(".dockerconfigjson", docker_config(&registry.host(), REGISTRY_PASSWORD).0)],
            )),
    );

    let Some((_server, mut source)) = https_source(&e2e, &demo) else { return };
    source.ports.extend([charts.port, registry.port]);
    let (commit, started) = install_demo(&demo, images, source);
    let environment_sync = environment_sync(&demo);
    let ready_at = |commit: &str| ready_at(cluster, &environment_sync, commit);
    eventually("the EnvironmentSync Ready at the commit, both private charts pulled from the Pod", || {
        ready_at(&commit)
    });
    figure(
        "install to the EnvironmentSync Ready at the commit from the Pod (two private charts: https with basic auth and a private CA, docker-registry with a login)",
        &format!("{:.1?}", started.elapsed()),
    );
    let staging_ns = staging_namespace(cluster);
    let greeting = |release: &str| {
        let config_map =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": release, "namespace": staging_ns}});
        let live = cluster.get(&config_map).unwrap_or_else(|| panic!("the EnvironmentSync did not apply {release}"));
        let version = if release == "from-registry" { "1.1.0" } else { "1.0.0" };
        assert_eq!(live["data"]["version"], version, "{release}: {live:#}");
        live["data"]["greeting"].clone()
    };
    for release in ["from-repository", "from-registry"] {
        assert_eq!(greeting(release), "hello", "{release}: the chart's default");
    }

    // A wrong password in either Secret, then a push changing that release: the controller keeps
    // nothing of a Secret between reconciles, and an archive pulled with other credentials is not
    // given to these, so it pulls with the wrong password, is refused, and says which repository
    // refused which Secret; nothing of the push applied. (A Secret changed alone is not read until
    // the next commit: the pinned charts of an applied commit are not rendered again.) The
    // Secret mended, the push applied.
    let request_reconcile = |at: &str| request_reconcile(cluster, &environment_sync, at);
    let set_secret = |name: &str, data: Value| {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": demo.ns},
            "stringData": data});
        cluster.apply(&[secret], "weaver-e2e");
    };
    let cases = [
        ("charts", &charts_url, 0, "from-repository", charts_secret(WRONG_PASSWORD), charts_secret(PASSWORD)),
        (
            "regcred",
            &registry_url,
            1,
            "from-registry",
            registry_secret(WRONG_PASSWORD),
            registry_secret(REGISTRY_PASSWORD),
        ),
    ];
    let (mut applied, mut said) = (commit, String::new());
    for (secret, repository, entry, release, wrong, right) in cases {
        set_secret(secret, wrong);
        demo.edit(
            "environments/staging.yaml",
            &format!("  - name: {release}\n"),
            &format!("  - name: {release}\n    values: {{greeting: pushed}}\n"),
        );
        let pushed = common::git::commit_all(&common::git::init(demo.repo.path()), release).to_string();
        let changed = Instant::now();
        request_reconcile(&pushed);
        let (live, message) = eventually("Ready=False for the wrong password", || {
            let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
            match ready_condition(&live) {
                Some((status, reason, message)) if status == "False" && reason == "RenderFailed" => Ok((live, message)),
                _ => Err(live["status"].to_string()),
            }
        });
        figure(
            &format!(
                "a push with a wrong password in Secret {secret} to Ready=False from the Pod (a reconcile requested)"
            ),
            &format!("{:.1?}", changed.elapsed()),
        );
        let refused = format!(
            "repository {repository} refused the credentials of Secret {}/{secret} (spec.chartCredentials[{entry}])",
            demo.ns
        );
        assert!(message.contains(&refused), "{message}");
        assert_eq!(live["status"]["lastAttemptedRevision"], pushed.as_str(), "{:#}", live["status"]);
        assert_eq!(live["status"]["lastAppliedRevision"], applied.as_str(), "{:#}", live["status"]);
        assert_eq!(greeting(release), "hello", "{release} changed by a refused render");
        said.push_str(&live["status"].to_string());

        let mended = Instant::now();
        set_secret(secret, right);
        request_reconcile(&format!("{secret} mended"));
        let live = eventually("the push applied with the mended Secret", || ready_at(&pushed));
        figure(
            &format!("Secret {secret} mended to the push applied from the Pod (a reconcile requested)"),
            &format!("{:.1?}", mended.elapsed()),
        );
        assert_eq!(greeting(release), "pushed", "{release} at the push");
        said.push_str(&live["status"].to_string());
        applied = pushed;
    }

    // No password, nor a docker config's `auth`, in the statuses, the Events (both APIs) of the
    // tenant's and staging's namespaces, or the operator Pods' logs.
    let mut events = String::new();
    for namespace in [&demo.ns, &staging_ns] {
        for api_version in ["v1", "events.k8s.io/v1"] {
            for event in cluster.list(api_version, "Event", "events", namespace) {
                events.push_str(&event.to_string());
            }
        }
    }
    for secret in ["charts", "regcred"] {
        let refused = format!("refused the credentials of Secret {}/{secret}", demo.ns);
        assert!(events.contains(&refused), "no Event says the refusal of {secret}: {events}");
    }
    said.push_str(&events);
    let operator_ns = operator_namespace(cluster);
    for pod in live_pods(cluster, &operator_ns) {
        let log = cluster.get_text(&format!("/api/v1/namespaces/{operator_ns}/pods/{}/log", name(&pod)));
        said.push_str(&log.unwrap_or_else(|e| panic!("the log of Pod {}: {e}", name(&pod))));
    }
    let (_, auth) = docker_config(&registry.host(), REGISTRY_PASSWORD);
    let (_, wrong_auth) = docker_config(&registry.host(), WRONG_PASSWORD);
    for secret in [PASSWORD, REGISTRY_PASSWORD, WRONG_PASSWORD, auth.as_str(), wrong_auth.as_str()] {
        assert!(!said.contains(secret), "a chart credential was said");
    }
}

/// The record key of the promotion tests, which the operator's Pods mount.
const RECORD_KEY: &str = "a record key of more than thirty-two bytes";

/// Staging takes web's replicas from dev (2 -> 1), with no soak: the gates judge dev's web as
/// the CLI applied it, its record signed with [`RECORD_KEY`] (in the chart's Secret
/// `weaver-record-key`). The EnvironmentSync promotes on a 2s interval as Promoter Bot, with
/// `promotion_fields` (lines of `spec.promotion`) besides; its account reads dev's records and
/// objects (the release namespace's), as `weaver status` and `weaver drift` do. The record key's
/// file, for the apply's `WEAVER_RECORD_KEY_FILE`.
fn promoting_staging_from_dev(demo: &Demo, promotion_fields: &str) -> tempfile::NamedTempFile {
    demo.append("environments/staging.yaml", "promotion:\n  from: dev\n  pins: [{release: web, values: replicas}]\n");
    demo.repo.write(
        "charts/weaver/templates/record-key.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: weaver-record-key\nstringData:\n  record.key: \"{RECORD_KEY}\"\n"
        ),
    );
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), RECORD_KEY).unwrap();
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "  approval: Automatic\n",
        &format!(
            "  approval: Automatic\n  promotion:\n    interval: 2s\n    author: {{name: Promoter Bot, email: promoter@weaver.invalid}}\n{promotion_fields}"
        ),
    );
    demo.repo.write(
        "charts/environment-sync/templates/source-reader.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: promotion-source-reader\nrules:\n  \
         - {apiGroups: [\"*\"], resources: [\"*\"], verbs: [get, list, watch]}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: promotion-source-reader\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: promotion-source-reader}\n\
         subjects: [{kind: ServiceAccount, name: \"{{ release.name }}\"}]\n",
    );
    key
}

#[test]
fn auto_promotion_from_the_pod_pushes_the_pins_over_ssh_checking_the_host_key() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;

    let key = promoting_staging_from_dev(&demo, "");
    // Over ssh: the client's key and the server's host key in the Secret `secretRef` names, the
    // only known_hosts the Pod has (its image has no home, no /tmp, no ssh configuration).
    let Some((sshd, source)) = ssh_source(&e2e, &demo) else { return };
    let gitops = ", recordKey: {secretName: weaver-record-key, key: record.key}";
    let envs = [("WEAVER_RECORD_KEY_FILE", key.path().to_str().unwrap())];
    let (commit, started) = install_demo_with(&demo, images, source, gitops, &envs);
    let environment_sync = environment_sync(&demo);
    let (repo, live) = pushed_to_main(&demo, &environment_sync, &commit, "Promoted");
    let main = || main_of(&repo);
    figure(
        "install to the promotion pushed over ssh from the Pod (gates passed, no soak)",
        &format!("{:.1?}", started.elapsed()),
    );
    let status = &live["status"]["promotion"];
    let pushed = status["lastPushedCommit"].as_str().unwrap().to_string();
    let (condition, _, message) = condition(&live, "Promoted").unwrap();
    assert_eq!(condition, "True", "{message}");
    assert!(message.contains(&format!("pushed {} to branch main", &pushed[..12])), "{message}");
    assert_eq!(main(), pushed, "main is the pushed commit");
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{status:#}");
    assert_eq!(
        (&targets[0]["environment"], &targets[0]["from"], &targets[0]["passed"]),
        (&json!("staging"), &json!("dev"), &json!(true))
    );
    let changes = targets[0]["changes"].as_array().unwrap();
    assert!(
        changes.len() == 1 && changes[0].as_str().unwrap().starts_with("web values replicas: 2 -> 1"),
        "{status:#}"
    );
    // The commit: on the installed one, by Promoter Bot, pinning dev's replicas for staging.
    let pushed_commit = repo.find_commit(pushed.parse().unwrap()).unwrap();
    assert_eq!(pushed_commit.parent_id(0).unwrap().to_string(), commit);
    let author = pushed_commit.author();
    assert_eq!((author.name().ok(), author.email().ok()), (Some("Promoter Bot"), Some("promoter@weaver.invalid")));
    let tree = pushed_commit.tree().unwrap();
    let blob = tree.get_path(std::path::Path::new("promotions/staging.yaml")).unwrap().to_object(&repo).unwrap();
    let file = String::from_utf8(blob.as_blob().unwrap().content().to_vec()).unwrap();
    assert!(file.contains("from: dev") && file.contains("replicas: 1"), "{file}");
    // No key in the status.
    let all = live["status"].to_string();
    for line in sshd.read("client").lines().filter(|l| !l.starts_with("-----")) {
        assert!(!all.contains(line), "the client's key is in the status: {all}");
    }
    assert!(!all.contains(RECORD_KEY), "the record key is in the status");

    // The next reconcile fetches the pushed commit over ssh and applies it: staging's web at
    // dev's one replica.
    let requested = Instant::now();
    request_reconcile(cluster, &environment_sync, "promoted");
    eventually("the EnvironmentSync Ready at the pushed commit", || ready_at(cluster, &environment_sync, &pushed));
    figure(
        "a reconcile requested to the promotion applied (fetched over ssh)",
        &format!("{:.1?}", requested.elapsed()),
    );
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": staging_namespace(cluster)}});
    assert_eq!(cluster.get(&web).expect("staging's web")["spec"]["replicas"], 1);
}

/// The served repository made to take pushes to its checked-out main (a push before is refused,
/// and the next interval pushes again); then waits until the EnvironmentSync's condition `type_`
/// has the reason `type_` (it pushed) and main moved from `commit`. The repository, and the
/// EnvironmentSync as read then.
fn pushed_to_main(demo: &Demo, environment_sync: &Value, commit: &str, type_: &str) -> (git2::Repository, Value) {
    let repo = git2::Repository::open(demo.repo.path()).unwrap();
    weaver_test_support::git::follow_pushes(&repo);
    let live = eventually(&format!("{type_}: pushed to main from the Pod"), || {
        let live = demo.cluster.get(environment_sync).ok_or("no EnvironmentSync")?;
        match condition(&live, type_) {
            Some((_, reason, _)) if reason == type_ && main_of(&repo) != commit => Ok(live),
            _ => Err(live["status"].to_string()),
        }
    });
    (repo, live)
}

fn main_of(repo: &git2::Repository) -> String {
    repo.find_reference("refs/heads/main").unwrap().target().unwrap().to_string()
}

/// Image updates from the operator's Pod: staging subscribes web to a registry behind token auth
/// where the Pods reach this machine, taking only tags cosign's key signed (`verify`); the pull
/// Secret is read as the tenant's account, the pin pushed over ssh (the Pod has no /tmp, no home,
/// no CA bundle), then fetched and applied; a newer unsigned tag is passed over, by name.
#[test]
fn image_updates_from_the_pod_pin_a_pushed_signed_tag_by_digest_push_it_over_ssh_and_apply_it() {
    use crate::images::{PASSWORD, Proxied, TOKEN, pull_secret_data, push_image, push_signature};
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let Some(registry) = Proxied::start_on(e2e.host_address(cluster)) else { return };
    let port = registry.registry.port;
    let (first, _) = push_image(port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    let web = registry.image("shop/web");
    let signer = weaver_test_support::cosign::TestSigner::new("the release team");
    push_signature(port, "shop/web", &web, &first, &signer, None);
    demo.repo.write("keys/cosign.pub", &signer.public_pem());

    // Staging's web from that registry, followed by semver; its EnvironmentSync checks every
    // 2s as Image Bot, with the pull Secret its account may read.
    demo.edit(
        "environments/staging.yaml",
        "      ingress:\n",
        &format!("      image: {{repository: {web}, tag: \"1.4.2\"}}\n      ingress:\n"),
    );
    demo.append(
        "environments/staging.yaml",
        &format!(
            "imageUpdates:\n  - {{image: {web}, releases: [web], plainHttp: true, policy: {{semver: '>=1.4.0'}}, verify: {{publicKeyRef: keys/cosign.pub}}}}\n"
        ),
    );
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "  approval: Automatic\n",
        "  approval: Automatic\n  imageUpdates:\n    interval: 2s\n    author: {name: Image Bot, email: images@weaver.invalid}\n    pullSecrets: [{name: regcred}]\n",
    );
    let (docker_config, auth) = pull_secret_data(&registry, PASSWORD);
    demo.repo.write(
        "charts/environment-sync/templates/regcred.yaml",
        &readable_secret("regcred", "kubernetes.io/dockerconfigjson", &[(".dockerconfigjson", docker_config)]),
    );
    let Some((sshd, mut source)) = ssh_source(&e2e, &demo) else { return };
    source.ports.push(registry.proxy.port);
    let (commit, started) = install_demo(&demo, images, source);
    let environment_sync = environment_sync(&demo);
    let (repo, live) = pushed_to_main(&demo, &environment_sync, &commit, "ImagesUpdated");
    let main = || main_of(&repo);
    figure("install to the image pin pushed over ssh from the Pod", &format!("{:.1?}", started.elapsed()));
    let pushed = live["status"]["imageUpdates"]["lastPushedCommit"].as_str().unwrap().to_string();
    assert_eq!(main(), pushed, "{:#}", live["status"]);
    let pushed_commit = repo.find_commit(pushed.parse().unwrap()).unwrap();
    assert_eq!(pushed_commit.parent_id(0).unwrap().to_string(), commit);
    let author = pushed_commit.author();
    assert_eq!((author.name().ok(), author.email().ok()), (Some("Image Bot"), Some("images@weaver.invalid")));
    let tree = pushed_commit.tree().unwrap();
    let blob = tree.get_path(std::path::Path::new("promotions/staging.yaml")).unwrap().to_object(&repo).unwrap();
    let file = String::from_utf8(blob.as_blob().unwrap().content().to_vec()).unwrap();
    assert!(file.contains(&format!("{web}: 1.5.0@{first}")), "{file}");

    // Fetched over ssh and applied: staging's web runs the pin (the node cannot pull it: the
    // test's registry is no mirror of the node's; what is checked is what weaver applied).
    let staging_web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": staging_namespace(cluster)}});
    let image = || cluster.get(&staging_web).map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone());
    request_reconcile(cluster, &environment_sync, "pinned");
    let pin = format!("{web}:1.5.0@{first}");
    eventually("the pin applied from the Pod", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        match live["status"]["lastAppliedRevision"] == pushed.as_str() && image() == Some(json!(pin)) {
            true => Ok(()),
            false => Err(format!("{:?} {}", image(), live["status"])),
        }
    });

    // Newer tags, pushed in turn: 1.7.0 unsigned, passed over; 1.6.0 signed, pinned, pushed and
    // applied.
    push_image(port, "shop/web", "1.7.0", "2026-11-03T00:00:00Z", "amd64");
    let (second, _) = push_image(port, "shop/web", "1.6.0", "2026-11-02T00:00:00Z", "amd64");
    push_signature(port, "shop/web", &web, &second, &signer, None);
    let tagged = Instant::now();
    let newer = format!("{web}:1.6.0@{second}");
    let live = eventually("the newer pin pushed and applied", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        let applied = live["status"]["lastAppliedRevision"].as_str().unwrap_or_default().to_string();
        if applied == main() && image() == Some(json!(newer)) {
            return Ok(live);
        }
        // The pushed commit waits for the next interval's fetch: asked for at once.
        if applied != main() {
            request_reconcile(cluster, &environment_sync, &main());
        }
        Err(format!("{:?} {}", image(), live["status"]))
    });
    figure(
        "a signed tag pushed to the registry to its pin applied from the Pod (2s image interval, a reconcile requested on the push)",
        &format!("{:.1?}", tagged.elapsed()),
    );
    let checked = &live["status"]["imageUpdates"]["images"][0];
    assert_eq!(checked["newest"], format!("1.6.0@{second}"), "{checked}");
    assert!(checked["signedBy"].as_str().unwrap_or_default().starts_with("keys/cosign.pub (ECDSA P-256"), "{checked}");
    assert_eq!(checked["passedOver"], "1 not signed (no cosign signature, sha256-DIGEST.sig) (1.7.0)", "{checked}");
    // No credential in the status, the Events or the Pods' logs.
    let mut said = live["status"].to_string();
    for event in cluster.list("events.k8s.io/v1", "Event", "events", &demo.ns) {
        said.push_str(&event.to_string());
    }
    let operator_ns = operator_namespace(cluster);
    for pod in live_pods(cluster, &operator_ns) {
        let log = cluster.get_text(&format!("/api/v1/namespaces/{operator_ns}/pods/{}/log", name(&pod)));
        said.push_str(&log.unwrap_or_else(|e| panic!("the log of Pod {}: {e}", name(&pod))));
    }
    for secret in [PASSWORD, TOKEN, auth.as_str()] {
        assert!(!said.contains(secret), "a registry credential was said");
    }
    for line in sshd.read("client").lines().filter(|l| !l.starts_with("-----")) {
        assert!(!said.contains(line), "the client's key was said");
    }
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
    // With a readiness probe, as the demo's charts have: without one, a container that exits at
    // once is Ready for a moment and its Deployment available, which `--wait` (as `kubectl rollout
    // status`) takes for done before the first restart.
    let container = format!(
        "          image: {}\n          command: [/bin/busybox, \"false\"]\n          readinessProbe:\n            \
         httpGet: {{path: /healthz/ready, port: 8080}}\n            periodSeconds: 2\n",
        images.shop_web.names[0]
    );
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

/// Pushes `count` ConfigMaps (`many-…`) into staging, committed, and asks the demo's
/// EnvironmentSync for a reconcile at once; the commit.
fn push_many_config_maps(demo: &Demo, count: usize) -> String {
    demo.repo.write("charts/many/chart.yaml", "name: many\nversion: 0.1.0\n").write(
        "charts/many/templates/configmaps.yaml",
        "{% for i in range(values.count) %}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: many-{{ i }}\ndata:\n  index: \"{{ i }}\"\n{% endfor %}\n",
    );
    demo.append(
        "environments/staging.yaml",
        &format!("  - name: many\n    chart: many\n    values: {{count: {count}}}\n"),
    );
    let git = common::git::init(demo.repo.path());
    let commit = common::git::commit_all(&git, &format!("{count} ConfigMaps")).to_string();
    request_reconcile(&demo.cluster, &environment_sync(demo), &commit);
    commit
}

/// The working set of each Pod of `namespace` in bytes, as the kubelets count it (their stats,
/// collected every 10 s or so, may not have a new Pod yet).
fn pods_memory(cluster: &common::cluster::TestCluster, namespace: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut memory = BTreeMap::new();
    for node in cluster.list_all("v1", "Node", "nodes") {
        let summary = cluster.get_text(&format!("/api/v1/nodes/{}/proxy/stats/summary", name(&node)))?;
        let summary: Value = serde_json::from_str(&summary).map_err(|e| e.to_string())?;
        let pods = summary["pods"].as_array().cloned().unwrap_or_default();
        memory.extend(pods.iter().filter(|stats| stats["podRef"]["namespace"] == namespace).filter_map(|stats| {
            let bytes = stats["memory"]["workingSetBytes"].as_f64().filter(|b| *b > 0.0)?;
            Some((stats["podRef"]["name"].as_str()?.to_string(), bytes))
        }));
    }
    Ok(memory)
}

/// The demo installed as a user does (`extra` operator values, as [`install_demo_with`]) with its
/// EnvironmentSync pulling over https, and that EnvironmentSync Ready at the commit: the demo,
/// the git server (serving while kept) and the commit. None after saying why the test skips.
fn installed_over_https(e2e: &E2e, images: &Images, extra: &str) -> Option<(Demo, GitHttpServer, String)> {
    let demo = Demo::with_operator_on(e2e.cluster());
    let (server, source) = https_source(e2e, &demo)?;
    let (commit, _) = install_demo_with(&demo, images, source, extra, &[]);
    let sync = environment_sync(&demo);
    eventually("the EnvironmentSync Ready at the demo's commit", || ready_at(&demo.cluster, &sync, &commit));
    Some((demo, server, commit))
}

/// How many of the ConfigMaps named `many-…` are in `namespace`.
fn many_applied(cluster: &common::cluster::TestCluster, namespace: &str) -> usize {
    let listed = cluster.list("v1", "ConfigMap", "configmaps", namespace);
    listed.iter().filter(|c| name(c).starts_with("many-")).count()
}

#[test]
fn the_leaders_pod_deleted_mid_apply_of_3000_objects_exits_at_once_and_the_other_replica_finishes() {
    const OBJECTS: usize = 3000;
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let Some((demo, _server, _)) = installed_over_https(&e2e, images, "") else { return };
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let staging_ns = staging_namespace(cluster);
    let environment_sync = environment_sync(&demo);

    let commit = push_many_config_maps(&demo, OBJECTS);

    // Part-way through the apply: the leader's Pod deleted, as a rollout or a drain deletes it.
    let holder = eventually("a leader", || leader(cluster, &operator_ns).ok_or("no holder".to_string()));
    let present = eventually("the apply under way", || match many_applied(cluster, &staging_ns) {
        n if n >= OBJECTS / 10 => Ok(n),
        n => Err(format!("{n} of {OBJECTS} ConfigMaps")),
    });
    assert!(present < OBJECTS, "the apply ended before the Pod could be deleted");
    let deleted = Instant::now();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": holder, "namespace": operator_ns}});
    cluster.request_delete(&pod);

    // Until the other replica has applied the commit: what the status says at each moment.
    let (mut interrupted, mut gone, mut observed) = (None, None, Vec::new());
    let deadline = deleted + Duration::from_secs(240);
    loop {
        let live = cluster.get(&environment_sync).expect("the EnvironmentSync");
        let applied = many_applied(cluster, &staging_ns);
        let message = live["status"]["environments"][0]["message"].as_str().unwrap_or_default().to_string();
        if interrupted.is_none() && message.contains("the apply was interrupted") {
            interrupted = Some((deleted.elapsed(), message.clone(), live["status"]["environments"][0].clone()));
        }
        if gone.is_none() && cluster.get(&pod).is_none() {
            gone = Some(deleted.elapsed());
        }
        let done = is_ready_at(&live, &commit);
        // Ready at the commit claims every object applied: it must be so whenever it is said.
        assert!(
            !done || applied == OBJECTS,
            "Ready at {commit} with {applied} of {OBJECTS} ConfigMaps: {:#}",
            live["status"]
        );
        observed.push((deleted.elapsed(), applied, message));
        if done && gone.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "not applied in time; last seen {:?}", observed.last());
        std::thread::sleep(Duration::from_millis(100));
    }
    let finished = deleted.elapsed();
    let gone = gone.unwrap();
    figure("the leader's Pod deleted mid-apply (3,000 ConfigMaps) to gone", &format!("{gone:.1?}"));
    figure("the leader's Pod deleted mid-apply to the other replica's apply done", &format!("{finished:.1?}"));
    assert!(gone < Duration::from_secs(15), "the leader took {gone:?} to exit, of its 30 s grace period");
    // The deleted leader said, before it exited, that its apply was interrupted and how far it got.
    let (when, message, environment) =
        interrupted.unwrap_or_else(|| panic!("no status said the apply was interrupted: {observed:?}"));
    assert!(message.contains("the controller was stopped (SIGTERM)"), "{message}");
    let counted =
        ["created", "configured", "unchanged"].iter().map(|k| environment[k].as_u64().unwrap_or(0)).sum::<u64>();
    assert!(counted as usize >= present && (counted as usize) < OBJECTS, "{environment}");
    eprintln!("interrupted at {when:?} with {counted} of {OBJECTS} applied");
    // The other replica took the Lease and the environment's lock, and let the lock go after.
    let next = leader(cluster, &operator_ns).expect("a leader");
    assert_ne!(next, holder);
    assert_eq!(many_applied(cluster, &staging_ns), OBJECTS);
    let lock = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-staging", "namespace": demo.lock_namespace()}});
    let lock = cluster.get(&lock).expect("staging's lock Lease");
    assert!(lock.pointer("/spec/holderIdentity").is_none_or(Value::is_null), "the lock is still held: {lock:#}");
}

#[test]
fn an_operator_pod_oom_killed_mid_apply_never_reports_it_done_and_a_higher_limit_finishes_it() {
    const OBJECTS: usize = 3000;
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let Some((demo, _server, _)) = installed_over_https(&e2e, images, "") else { return };
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let staging_ns = staging_namespace(cluster);
    let environment_sync = environment_sync(&demo);

    // The operator's Pods under a memory limit they idle within, and a render of 3,000 objects
    // does not fit (a user's limit set too low for their largest environment). 48Mi fitted it
    // on 2026-11-28, after this session's render changes (which one, not established).
    let operator_values = "      gitops: { gitPorts:";
    let low = "      resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 40Mi}}\n";
    demo.edit("environments/dev.yaml", operator_values, &format!("{low}{operator_values}"));
    let applied = demo.weaver(&["apply", "--env", "dev", "--wait", "--timeout", "4m"]);
    applied.success();
    let commit = push_many_config_maps(&demo, OBJECTS);
    let pushed = Instant::now();

    // The node kills the leader as it renders; whichever replica leads next is killed too. Never
    // is the commit said to be applied, nor every object there.
    let oom_killed = |pods: &[Value]| {
        pods.iter().any(|pod| {
            let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array);
            statuses
                .into_iter()
                .flatten()
                .any(|s| s.pointer("/lastState/terminated/reason") == Some(&json!("OOMKilled")))
        })
    };
    let deadline = pushed + Duration::from_secs(180);
    loop {
        let live = cluster.get(&environment_sync).expect("the EnvironmentSync");
        assert!(!is_ready_at(&live, &commit), "applied under a limit it cannot render within: {:#}", live["status"]);
        if oom_killed(&live_pods(cluster, &operator_ns)) {
            break;
        }
        assert!(Instant::now() < deadline, "no operator Pod was OOM-killed: {:#?}", live_pods(cluster, &operator_ns));
        std::thread::sleep(Duration::from_millis(200));
    }
    figure(
        "the commit pushed to the leader OOM-killed (limit 40Mi, 3,000 ConfigMaps)",
        &format!("{:.1?}", pushed.elapsed()),
    );

    // The limit raised (the chart's default): the next leader applies the commit, all of it.
    demo.edit("environments/dev.yaml", low, "");
    let raised = Instant::now();
    let applied = demo.weaver(&["apply", "--env", "dev", "--wait", "--timeout", "4m"]);
    applied.success();
    let done =
        eventually("the commit applied once the limit is raised", || ready_at(cluster, &environment_sync, &commit));
    figure(
        "the limit raised to the commit applied (rollout, the dead holder's lock expiring)",
        &format!("{:.1?}", raised.elapsed()),
    );
    assert_eq!(many_applied(cluster, &staging_ns), OBJECTS, "Ready before every object was applied");
    // Applied by the next leader, or already all there when it looked (a killed leader may have
    // sent every object before the node killed it, never saying so).
    let result = &done["status"]["environments"][0]["result"];
    assert!(result == "Applied" || result == "Unchanged", "{:#}", done["status"]);
}

#[test]
fn containerd_restarted_under_the_node_leaves_the_operator_running_leading_and_applying_without_false_drift() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(restart) = e2e.runtime_restart() else { return };
    let Some(images) = e2e.images() else { return };
    let Some((demo, _server, _)) = installed_over_https(&e2e, images, "") else { return };
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let staging_ns = staging_namespace(cluster);
    let environment_sync = environment_sync(&demo);
    let ready_at = |commit: &str| ready_at(cluster, &environment_sync, commit);
    // Each Pod's uid and its containers' ids and restarts: what a runtime restart must not change.
    let containers = |namespace: &str| -> BTreeMap<String, (String, Vec<(String, u64)>)> {
        live_pods(cluster, namespace)
            .iter()
            .map(|pod| {
                let statuses =
                    pod.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
                let ids = statuses
                    .iter()
                    .map(|s| {
                        (
                            s["containerID"].as_str().unwrap_or_default().to_string(),
                            s["restartCount"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                (name(pod).to_string(), (pod["metadata"]["uid"].as_str().unwrap().to_string(), ids))
            })
            .collect()
    };
    let before = (containers(&operator_ns), containers(&demo.ns));
    let holder = eventually("a leader", || leader(cluster, &operator_ns).ok_or("no holder".to_string()));

    let restarted = Instant::now();
    restart.run();
    figure("containerd restarted (the command, to containerd answering)", &format!("{:.1?}", restarted.elapsed()));
    // The kubelet reconnects; the containers lived on in their shims: the same Pods, the same
    // containers, no restart, the same leader.
    eventually("the node Ready after the restart", || {
        let nodes = cluster.list_all("v1", "Node", "nodes");
        let ready = nodes.iter().all(|node| {
            let conditions = node.pointer("/status/conditions").and_then(Value::as_array);
            conditions.into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready && !nodes.is_empty() { Ok(()) } else { Err("a node not Ready".to_string()) }
    });
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!((containers(&operator_ns), containers(&demo.ns)), before, "a Pod or container changed");
    assert_eq!(leader(cluster, &operator_ns).as_deref(), Some(holder.as_str()), "the leader changed");

    // The operator still applies what is pushed, and nothing drifted.
    let commit = push_many_config_maps(&demo, 10);
    let pushed = Instant::now();
    eventually("the EnvironmentSync Ready at the push after the restart", || ready_at(&commit));
    figure("a push after the containerd restart to applied", &format!("{:.1?}", pushed.elapsed()));
    assert_eq!(many_applied(cluster, &staging_ns), 10);
    let drift = demo.weaver(&["drift", "--env", "dev"]);
    assert_eq!(drift.code, 0, "drift after the restart:\n{}\n{}", drift.stdout, drift.stderr);
}

/// A Helm chart `app` (a ConfigMap `app` of `greeting: hello`, and `hooks`: file name, template)
/// released as `dev` in a namespace of the test, which also holds its lock.
fn hook_chart(e2e: &E2e, hooks: &[(&str, String)]) -> (common::cluster::TestCluster, common::Repo, String) {
    let cluster = e2e.cluster();
    let ns = cluster.namespace("hooks");
    let repo = common::Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
        .write("charts/app/values.yaml", "greeting: hello\n")
        .write(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: {{ .Values.greeting }}\n",
        )
        .write(
            "environments/dev.yaml",
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {ns}}}\nreleases:\n  - name: app\n    chart: app\n"),
        );
    for (file, text) in hooks {
        repo.write(&format!("charts/app/templates/{file}"), text);
    }
    (cluster, repo, ns)
}

/// A hook Job for `event` that runs `script` once in busybox's sh from `image` (the web app's
/// stand-in), with the release's ConfigMap `app` at /config when it exists.
fn hook_job(image: &str, name: &str, event: &str, script: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    "helm.sh/hook": {event}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: run
          image: {image}
          command: [/bin/busybox, sh, -c, {script:?}]
          volumeMounts: [{{name: config, mountPath: /config}}]
      volumes:
        - name: config
          configMap: {{name: app, optional: true}}
"#
    )
}

/// What the one Pod of Job `job` logged, read from the kubelet through the API server.
fn job_log(cluster: &common::cluster::TestCluster, ns: &str, job: &str) -> String {
    let pods = cluster.list("v1", "Pod", "pods", ns);
    let pods: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["labels"]["job-name"] == job).collect();
    assert_eq!(pods.len(), 1, "the pods of Job {job}: {pods:#?}");
    cluster.get_text(&format!("/api/v1/namespaces/{ns}/pods/{}/log", name(pods[0]))).unwrap()
}

/// `(event, name, result)` of the first release's hooks in `weaver apply -o json`'s report.
fn hook_results(report: &Value) -> Vec<(String, String, String)> {
    let hooks = report["releases"][0]["hooks"].as_array().cloned().unwrap_or_default();
    let text = |hook: &Value, field: &str| hook[field].as_str().unwrap_or_default().to_string();
    hooks.iter().map(|h| (text(h, "event"), text(h, "name"), text(h, "result"))).collect()
}

fn triple(event: &str, name: &str, result: &str) -> (String, String, String) {
    (event.into(), name.into(), result.into())
}

/// The release records of a namespace, decoded, by revision.
fn records(cluster: &common::cluster::TestCluster, ns: &str) -> Vec<weaver_plan::release::record::Record> {
    let mut records = weaver_plan::release::record::from_secrets(&cluster.list("v1", "Secret", "secrets", ns)).unwrap();
    records.sort_by_key(|r| r.revision);
    records
}

/// The script of a hook Job that says what its Pod saw of the release's ConfigMap.
const SAYS_WHAT_IT_SAW: &str = "if [ -e /config/greeting ]; then echo \"greeting: $(/bin/busybox cat /config/greeting)\"; else echo no ConfigMap yet; fi";

#[test]
fn helm_hook_jobs_run_on_the_node_pre_install_before_the_releases_objects_and_post_install_after() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let image = &images.shop_web.names[0];
    let (cluster, repo, ns) = hook_chart(
        &e2e,
        &[
            ("pre.yaml", hook_job(image, "pre", "pre-install", SAYS_WHAT_IT_SAW)),
            ("post.yaml", hook_job(image, "post", "post-install", SAYS_WHAT_IT_SAW)),
        ],
    );

    let started = Instant::now();
    let run = repo.weaver_on(&cluster, &["apply", "--env", "dev", "-o", "json", "--timeout", "2m"]);
    figure(
        "apply of a release with a pre-install and a post-install hook Job (each a Pod run to completion)",
        &format!("{:.1?}", started.elapsed()),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        hook_results(&report),
        [triple("pre-install", "pre", "succeeded"), triple("post-install", "post", "succeeded")]
    );
    // What the Jobs' Pods saw, as the kubelet kept their logs: the pre-install one ran before
    // the release's ConfigMap existed, the post-install one after, with its value.
    assert_eq!(job_log(&cluster, &ns, "pre").trim(), "no ConfigMap yet");
    assert_eq!(job_log(&cluster, &ns, "post").trim(), "greeting: hello");
    for job in ["pre", "post"] {
        let live =
            cluster.get(&json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job, "namespace": ns}}));
        let live = live.unwrap_or_else(|| panic!("no Job {job}"));
        let conditions = live["status"]["conditions"].as_array().cloned().unwrap_or_default();
        assert!(
            conditions.iter().any(|c| c["type"] == "Complete" && c["status"] == "True"),
            "{job}: {:#}",
            live["status"]
        );
        assert_eq!(live["status"]["succeeded"], 1, "{job}: {:#}", live["status"]);
    }
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}});
    assert_eq!(cluster.get(&config_map).expect("the release's ConfigMap")["data"]["greeting"], "hello");
    let records = records(&cluster, &ns);
    let record = records.last().expect("a release record");
    assert_eq!(record.status, weaver_plan::release::record::Status::Deployed);
    let runs: Vec<(&str, &str)> = record.hook_runs.iter().map(|r| (r.event.as_str(), r.name.as_str())).collect();
    assert_eq!(runs, [("pre-install", "pre"), ("post-install", "post")]);
}

#[test]
fn a_hook_job_exiting_1_on_the_node_fails_the_apply_naming_the_job_its_reason_and_its_pods_log() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let image = &images.shop_web.names[0];
    let (cluster, repo, ns) = hook_chart(
        &e2e,
        &[
            (
                "migrate.yaml",
                hook_job(image, "migrate", "pre-install", "echo cannot reach the database at db:5432; exit 1"),
            ),
            ("post.yaml", hook_job(image, "post", "post-install", SAYS_WHAT_IT_SAW)),
        ],
    );

    // What the user reads: the Job, the Job controller's reason, and what its Pod logged, from
    // the kubelet.
    let started = Instant::now();
    let run = repo.weaver_on(&cluster, &["apply", "--env", "dev", "--timeout", "2m"]);
    figure("apply whose pre-install hook Job exits 1, to its exit", &format!("{:.1?}", started.elapsed()));
    let said = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{said}");
    for what in ["Job.batch", "migrate", "BackoffLimitExceeded", "cannot reach the database at db:5432"] {
        assert!(said.contains(what), "the apply does not say {what:?}:\n{said}");
    }

    // The same in JSON, from a second install (a failed revision is none to upgrade).
    let run = repo.weaver_on(&cluster, &["apply", "--env", "dev", "-o", "json", "--timeout", "2m"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        hook_results(&report),
        [triple("pre-install", "migrate", "failed"), triple("post-install", "post", "not-run")]
    );
    let message = report["releases"][0]["hooks"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Failed=True BackoffLimitExceeded"), "{message}");
    assert!(message.contains("cannot reach the database at db:5432"), "{message}");
    let error = report["releases"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("hook pre-install Job.batch") && error.contains("migrate"), "{report:#}");

    // Nothing after the failed hook: neither the release's objects nor the post-install Job.
    assert_eq!(report["releases"][0]["objects"][0]["result"], "not-applied", "{report:#}");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}});
    assert!(cluster.get(&config_map).is_none(), "the release's ConfigMap was applied");
    let post = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "post", "namespace": ns}});
    assert!(cluster.get(&post).is_none(), "the post-install Job ran");
    // The record says what was done and what was not.
    let records = records(&cluster, &ns);
    let record = records.last().expect("a release record");
    assert_eq!(record.status, weaver_plan::release::record::Status::Failed);
    assert!(!record.objects[0].applied);
    use weaver_plan::release::record::HookOutcome::{Failed, NotRun};
    let runs: Vec<(&str, &str, weaver_plan::release::record::HookOutcome)> =
        record.hook_runs.iter().map(|r| (r.event.as_str(), r.name.as_str(), r.outcome)).collect();
    assert_eq!(runs, [("pre-install", "migrate", Failed), ("post-install", "post", NotRun)]);
}

/// Commits a change of staging to the demo's repository, as a push: its web app's
/// `FEATURE_FLAGS` on. Returns the commit.
fn push_feature_flags_on(demo: &Demo) -> String {
    demo.edit(
        "environments/staging.yaml",
        "        host: staging.shop.example.org\n",
        "        host: staging.shop.example.org\n      config: {FEATURE_FLAGS: \"on\"}\n",
    );
    let git = common::git::init(demo.repo.path());
    common::git::commit_all(&git, "staging: feature flags on").to_string()
}

/// Staging's web app's `FEATURE_FLAGS`, live.
fn staging_feature_flags(demo: &Demo) -> Value {
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": staging_namespace(&demo.cluster)}});
    demo.cluster.get(&config).expect("staging's web-config")["data"]["FEATURE_FLAGS"].clone()
}

#[test]
fn a_push_posted_to_the_webhook_receiver_through_the_charts_service_applies_the_new_commit() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let Some((_server, source)) = https_source(&e2e, &demo) else { return };
    // The EnvironmentSync takes webhooks proved by the token of a Secret of its namespace.
    let token = "e2e-webhook-token-5d1c9a";
    demo.edit(
        "charts/environment-sync/values.yaml",
        "webhook:\n  secretName: \"\"",
        "webhook:\n  secretName: git-webhook",
    );
    demo.repo.write(
        "charts/environment-sync/templates/git-webhook.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-webhook\nstringData:\n  token: {token}\n"),
    );
    let (commit, _) = install_demo(&demo, images, source);
    let environment_sync = environment_sync(&demo);
    eventually("the EnvironmentSync Ready at the first commit", || ready_at(cluster, &environment_sync, &commit));
    assert_eq!(staging_feature_flags(&demo), "off");

    // A push, and GitLab's webhook POSTed to the receiver through the chart's Service (the API
    // server's proxy to the Service: its selector and named ports choose the Pod, on any
    // cluster, whether or not the test machine reaches ClusterIPs).
    let pushed = push_feature_flags_on(&demo);
    let hook =
        format!("/api/v1/namespaces/{operator_ns}/services/weaver-webhook:webhook/proxy/hook/{}/staging-sync", demo.ns);
    let post = |token: &str| {
        let headers =
            [("Content-Type", "application/json"), ("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", token)];
        cluster.post_text(&hook, &headers, r#"{"object_kind": "push", "ref": "refs/heads/main"}"#)
    };
    // Another token is refused, and requests nothing.
    let refused = post("another-token");
    assert!(refused.as_ref().is_err_and(|e| e.contains("401") && e.contains("must match the token")), "{refused:?}");
    let live = cluster.get(&environment_sync).unwrap();
    assert!(live["metadata"]["annotations"]["weaver.example.com/reconcile-requested-at"].is_null(), "{live:#}");

    let posted = Instant::now();
    let answer = post(token).unwrap_or_else(|e| panic!("the receiver refused the push: {e}"));
    assert_eq!(answer.trim(), "accepted: a reconcile is requested");
    eventually("the EnvironmentSync Ready at the pushed commit", || ready_at(cluster, &environment_sync, &pushed));
    figure(
        "push-to-applied-through-service: the webhook POSTed through the chart's Service to Ready at the commit",
        &format!("{:.1?}", posted.elapsed()),
    );
    assert_eq!(staging_feature_flags(&demo), "on");
    // The receiver set the annotation, as its own field manager.
    let live = cluster.get(&environment_sync).unwrap();
    let managers = live["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    assert!(managers.iter().any(|m| m["manager"] == "weaver-webhook"), "{managers:#?}");
}

/// A tenant's template that would loop for hours (minijinja's nested `range(100000)`), in an
/// environment `spin` of the demo's repository: an EnvironmentSync of another namespace applying
/// it stops at its `spec.timeout`, `Ready=False` naming the release and the limit, while the
/// demo's own EnvironmentSync applies a push meanwhile (issue 87, finding 4). The same tenant's
/// template doubling a string 34 times (256 GiB) stops at the controller's --max-render-memory
/// in its render's worker process, as do a Helm chart's `until 134217728` (issue 106) and a Helm
/// chart nesting a dict 200,000 deep at the nesting bound; the operator's Pods run on, never
/// restarted.
#[test]
fn a_tenants_endless_template_stops_at_its_spec_timeout_in_the_pod_while_another_tenant_applies() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let spin_ns = cluster.namespace("spin");
    demo.repo.write("charts/spin/chart.yaml", "name: spin\nversion: 0.1.0\ndescription: loops for hours\n");
    demo.repo.write(
        "charts/spin/templates/spin.yaml",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: spin\n",
    );
    demo.repo.write(
        "environments/spin.yaml",
        &format!("namespace: {spin_ns}\nreleases:\n  - name: spin\n    chart: spin\n"),
    );
    demo.repo.write("charts/grow/chart.yaml", "name: grow\nversion: 0.1.0\ndescription: doubles a string\n");
    let doubling = "{% set s = \"xxxxxxxxxxxxxxxx\" %}".to_string() + &"{% set s = s ~ s %}".repeat(34);
    demo.repo.write("charts/grow/templates/grow.yaml", &doubling);
    demo.repo.write(
        "environments/grow.yaml",
        &format!("namespace: {spin_ns}\nreleases:\n  - name: grow\n    chart: grow\n"),
    );
    let helm_charts = [
        ("list", "{{ $l := until 134217728 }}n: {{ len $l }}\n", cluster.namespace("list")),
        (
            "deep",
            "{{- $d := dict }}{{ range until 200000 }}{{ $d = dict \"a\" $d }}{{ end }}{{ toYaml $d }}\n",
            cluster.namespace("deep"),
        ),
    ];
    for (name, template, namespace) in &helm_charts {
        demo.repo
            .write(&format!("charts/{name}/Chart.yaml"), &format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"));
        demo.repo.write(&format!("charts/{name}/templates/{name}.yaml"), template);
        demo.repo.write(
            &format!("environments/{name}.yaml"),
            &format!("namespace: {namespace}\nreleases:\n  - name: {name}\n    chart: {name}\n"),
        );
    }
    let Some((_server, source)) = https_source(&e2e, &demo) else { return };
    let ca = source.secret.1[0].1.clone();
    let url = source.url.clone();
    let (commit, _) = install_demo(&demo, images, source);
    let staging_sync = environment_sync(&demo);
    eventually("the demo's EnvironmentSync Ready at its commit", || ready_at(cluster, &staging_sync, &commit));

    // Each hostile tenant: its own namespace and account, which may read its CA and nothing
    // else (its render fails before anything is applied).
    let hostile_tenant = |namespace: &str| {
        cluster.create(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "git-ca", "namespace": namespace}, "stringData": {"ca.crt": ca}}));
        cluster.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "git-ca", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["git-ca"], "verbs": ["get"]}]}));
        cluster.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "git-ca", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "git-ca"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]}));
    };
    hostile_tenant(&spin_ns);
    let spin_sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "spin", "namespace": spin_ns, "labels": {"weaver-test": cluster.prefix}},
        "spec": {"source": {"url": url, "ref": {"branch": "main"}, "caSecretRef": {"name": "git-ca"}},
                 "environments": ["spin"], "serviceAccountName": "default", "interval": "10m", "timeout": "20s"}});
    cluster.create(&spin_sync);
    // Once it renders (the leader's log says so: the status hears of a render once it ends),
    // the demo's tenant is asked to apply a push.
    let operator_ns = operator_namespace(cluster);
    let rendering = "to environment `spin`: rendering".to_string();
    eventually("the spinning EnvironmentSync rendering", || {
        let logs: Vec<String> = live_pods(cluster, &operator_ns)
            .iter()
            .filter_map(|pod| {
                cluster.get_text(&format!("/api/v1/namespaces/{operator_ns}/pods/{}/log", name(pod))).ok()
            })
            .collect();
        if logs.iter().any(|log| log.contains(&rendering)) { Ok(()) } else { Err("not rendering yet".into()) }
    });
    let pushed = push_feature_flags_on(&demo);
    let asked = Instant::now();
    request_reconcile(cluster, &staging_sync, &jiff::Timestamp::now().to_string());
    eventually("the demo's EnvironmentSync Ready at the push", || ready_at(cluster, &staging_sync, &pushed));
    let applied_after = asked.elapsed();
    figure("another tenant's push applied while a tenant's template spins", &format!("{applied_after:.1?}"));
    assert_eq!(staging_feature_flags(&demo), "on");
    let spinning = cluster.get(&spin_sync).unwrap();
    assert_ne!(
        ready_condition(&spinning).map(|(status, ..)| status),
        Some("False".into()),
        "the push waited for the spinning render to end: {}",
        spinning["status"]
    );

    let failed = eventually("the spinning EnvironmentSync stopped at its spec.timeout", || {
        let live = cluster.get(&spin_sync).ok_or("gone")?;
        match ready_condition(&live) {
            Some((status, reason, message)) if status == "False" => Ok((reason, message)),
            _ => Err(live["status"].to_string()),
        }
    });
    let (reason, message) = failed;
    assert!(message.contains("spin") && message.contains("spec.timeout"), "{reason}: {message}");

    let mut grow_sync = spin_sync.clone();
    grow_sync["metadata"]["name"] = json!("grow");
    grow_sync["spec"]["environments"] = json!(["grow"]);
    cluster.create(&grow_sync);
    let message = eventually("the doubling EnvironmentSync stopped at the render memory bound", || {
        let live = cluster.get(&grow_sync).ok_or("gone")?;
        match live.pointer("/status/environments/0/message").and_then(Value::as_str) {
            Some(message) if message.contains("of memory") => Ok(message.to_string()),
            _ => Err(live["status"].to_string()),
        }
    });
    assert!(
        message.contains(
            "rendering stopped: the templates of release `grow` took more than 536870912 bytes of memory \
             (the controller's --max-render-memory)"
        ),
        "{message}"
    );
    // The Helm charts' tenants each in a namespace of their own: the spinning and doubling
    // tenant is held back for a while now, and they are not it.
    let expected = [
        "rendering stopped: the templates of release `list` took more than 536870912 bytes of memory",
        "value nested deeper than 1000 levels",
    ];
    for ((name, _, namespace), expected) in helm_charts.iter().zip(expected) {
        hostile_tenant(namespace);
        let mut sync = spin_sync.clone();
        sync["metadata"]["name"] = json!(name);
        sync["metadata"]["namespace"] = json!(namespace);
        sync["spec"]["environments"] = json!([name]);
        cluster.create(&sync);
        let message = eventually(&format!("the Helm chart of `{name}` stopped at its bound"), || {
            let live = cluster.get(&sync).ok_or("gone")?;
            match live.pointer("/status/environments/0/message").and_then(Value::as_str) {
                Some(message) if message.contains("release `") => Ok(message.to_string()),
                _ => Err(live["status"].to_string()),
            }
        });
        assert!(message.contains(expected), "{message}");
    }
    assert!(
        cluster
            .get(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "spin", "namespace": spin_ns}}))
            .is_none()
    );
    // The operator's Pods ran on, neither restarted nor replaced.
    for pod in live_pods(cluster, &operator_ns) {
        let restarts = pod.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_u64);
        assert_eq!(restarts, Some(0), "{} restarted", name(&pod));
    }
}

/// The objects of a release in `weaver drift -o json`'s report: (kind, name) → the object.
fn drift_objects(report: &Value, release: &str) -> BTreeMap<(String, String), Value> {
    let releases = report["releases"].as_array().cloned().unwrap_or_default();
    let release = releases.into_iter().find(|r| r["release"] == release).unwrap_or_else(|| panic!("{report:#}"));
    let objects = release["objects"].as_array().cloned().unwrap_or_default();
    let key = |o: &Value| (o["kind"].as_str().unwrap().to_string(), o["name"].as_str().unwrap().to_string());
    objects.into_iter().map(|o| (key(&o), o)).collect()
}

#[test]
fn on_the_node_an_autoscaled_replica_count_under_an_ignore_rule_is_no_drift_and_a_kubectl_scale_without_one_is_found_and_put_back()
 {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let Some((_server, source)) = https_source(&e2e, &demo) else { return };
    // dev's web app under a HorizontalPodAutoscaler (at least 2 replicas, where dev asks for 1),
    // from a chart that renders `replicas` all the same, as many do (the demo's leaves it out
    // under its autoscaler): the replica count is left to the autoscaler by an ignore rule.
    demo.edit(
        "charts/web-app/templates/deployment.yaml",
        "{% if not values.autoscaling.enabled %}\n  replicas: {{ values.replicas }}\n{% endif %}\n",
        "  replicas: {{ values.replicas }}\n",
    );
    demo.edit(
        "environments/dev.yaml",
        "      replicas: 1\n",
        "      replicas: 1\n      autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4}\n    \
         ignoreDifferences:\n      - {group: apps, kind: Deployment, name: web, jsonPointers: [/spec/replicas]}\n",
    );
    let (commit, _) = install_demo(&demo, images, source);
    let environment_sync = environment_sync(&demo);
    eventually("the EnvironmentSync Ready at the commit", || ready_at(cluster, &environment_sync, &commit));

    let deployment =
        |ns: &str| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns}});
    let replicas = |web: &Value| cluster.get(web).unwrap()["spec"]["replicas"].as_i64().unwrap();
    let (dev_web, staging_web) = (deployment(&demo.ns), deployment(&staging_namespace(cluster)));
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": demo.ns}});
    eventually("the autoscaler to raise dev's web to its minimum of 2", || match replicas(&dev_web) {
        2 => Ok(()),
        n => Err(format!(
            "{n} replicas; the HPA: {:#}",
            cluster.get(&hpa).map(|h| h["status"].clone()).unwrap_or_default()
        )),
    });
    // No drift: not from what the node's controllers wrote (ReplicaSets, ClusterIPs, defaults,
    // the HPA's defaulted behavior), nor from the autoscaler's replica count, which the rule
    // leaves out and counts.
    let drift_of = |env: &str| {
        let run = demo.weaver(&["drift", "--env", env, "-o", "json"]);
        let report: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("drift -o json ({e}):\n{}\n{}", run.stdout, run.stderr));
        (run.code, report)
    };
    let (code, report) = drift_of("dev");
    assert_eq!(code, 0, "drift with the autoscaler's replicas:\n{report:#}");
    let web = &drift_objects(&report, "web")[&("Deployment".to_string(), "web".to_string())];
    assert_eq!((&web["state"], web["ignored"].as_u64().unwrap_or(0) >= 1), (&json!("in-sync"), true), "{web:#}");
    // `kubectl scale` within the autoscaler's range: still the rule's, still no drift.
    cluster.scale(&dev_web, 3);
    let (code, report) = drift_of("dev");
    assert_eq!(code, 0, "drift after kubectl scale under the rule:\n{report:#}");
    let diff = demo.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_eq!(diff.code, 0, "diff after kubectl scale under the rule:\n{}\n{}", diff.stdout, diff.stderr);

    // staging's web, which no rule covers, scaled by hand: drift, in `weaver drift` and in the
    // EnvironmentSync's status (its watch), left as it is (correctDrift is false)…
    let (code, report) = drift_of("staging");
    assert_eq!(code, 0, "staging drifted before the scale:\n{report:#}");
    let before = replicas(&staging_web);
    let scaled = Instant::now();
    cluster.scale(&staging_web, before + 1);
    let (code, report) = drift_of("staging");
    assert_eq!(code, 2, "no drift found after kubectl scale:\n{report:#}");
    let web = &drift_objects(&report, "web")[&("Deployment".to_string(), "web".to_string())];
    assert_eq!(web["state"], "drifted", "{web:#}");
    let changes = web["changes"].as_array().cloned().unwrap_or_default();
    assert!(
        changes.iter().any(|c| c["path"] == "spec.replicas" && c["recorded"] == before && c["live"] == before + 1),
        "{web:#}"
    );
    let status = eventually("the EnvironmentSync to report the drift", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        let drift = &live["status"]["drift"];
        if drift["drifted"].as_u64().unwrap_or(0) >= 1 {
            Ok(live["status"].clone())
        } else {
            Err(live["status"].to_string())
        }
    });
    figure(
        "kubectl scale to the drift in the EnvironmentSync's status (its watch)",
        &format!("{:.1?}", scaled.elapsed()),
    );
    let staging = status["environments"].as_array().into_iter().flatten().find(|e| e["name"] == "staging").cloned();
    assert!(staging.is_some_and(|e| e["drifted"].as_u64().unwrap_or(0) >= 1), "{status:#}");
    assert_eq!(replicas(&staging_web), before + 1, "the drift was put back with correctDrift false");

    // …and put back once the EnvironmentSync corrects drift.
    let correcting = Instant::now();
    cluster.merge_patch(&environment_sync, &json!({"spec": {"correctDrift": true}}), "weaver-e2e");
    eventually("staging's web put back", || match replicas(&staging_web) {
        n if n == before => Ok(()),
        n => Err(format!("{n} replicas")),
    });
    figure("correctDrift set to the scale put back", &format!("{:.1?}", correcting.elapsed()));
    eventually("the EnvironmentSync to report no drift", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        if live["status"]["drift"]["summary"] == "none" { Ok(()) } else { Err(live["status"].to_string()) }
    });
    let (code, report) = drift_of("staging");
    assert_eq!(code, 0, "staging drifted after the correction:\n{report:#}");
}

#[test]
fn on_the_node_an_environmentsync_awaiting_approval_holds_the_plan_until_weaver_sync_approve() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let Some((demo, _server, commit)) = installed_over_https(&e2e, images, "") else { return };
    let cluster = &demo.cluster;
    let environment_sync = environment_sync(&demo);

    // Every change held for a person from now on, and a push.
    cluster.merge_patch(&environment_sync, &json!({"spec": {"approval": "Manual"}}), "weaver-e2e");
    let pushed = push_feature_flags_on(&demo);
    request_reconcile(cluster, &environment_sync, "a push");
    let pending = eventually("the pushed commit's plan waiting for approval", || {
        let live = cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
        let pending = &live["status"]["pendingPlan"];
        match ready_condition(&live) {
            Some((status, reason, _))
                if status == "False" && reason == "AwaitingApproval" && pending["revision"] == pushed.as_str() =>
            {
                Ok(pending.clone())
            }
            _ => Err(live["status"].to_string()),
        }
    });
    let digest = pending["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pending:#}");
    let releases = pending["releases"].as_array().cloned().unwrap_or_default();
    assert!(
        releases
            .iter()
            .any(|r| r["environment"] == "staging" && r["release"] == "web" && r["update"].as_u64().unwrap_or(0) >= 1),
        "{pending:#}"
    );
    // Nothing of it applied while it waits.
    assert_eq!(staging_feature_flags(&demo), "off");
    let live = cluster.get(&environment_sync).unwrap();
    assert_eq!(live["status"]["lastAppliedRevision"], commit.as_str(), "{:#}", live["status"]);
    let get = demo.weaver(&["sync", "get", "-n", &demo.ns, "staging-sync"]);
    assert_eq!(get.code, 2, "{}\n{}", get.stdout, get.stderr);
    assert!(get.stdout.contains(&digest), "{}", get.stdout);

    // An approval of another digest is refused and changes nothing; the one shown applies it.
    let other = format!("sha256:{}", "0".repeat(64));
    let refused = demo.weaver(&["sync", "approve", "-n", &demo.ns, "staging-sync", "--digest", &other, "--yes"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(cluster.get(&environment_sync).unwrap()["spec"]["approvedPlan"].is_null());
    let approved = Instant::now();
    demo.weaver(&["sync", "approve", "-n", &demo.ns, "staging-sync", "--digest", &digest, "--yes"]).success();
    let live = eventually("the approved plan applied", || ready_at(cluster, &environment_sync, &pushed));
    figure("weaver sync approve to Ready at the approved commit", &format!("{:.1?}", approved.elapsed()));
    assert_eq!(staging_feature_flags(&demo), "on");
    assert!(live["status"]["pendingPlan"].is_null(), "{:#}", live["status"]);
}

#[test]
fn operator_pod_memory_at_fleet_sizes_of_environmentsyncs() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Ok(sizes) = std::env::var("WEAVER_E2E_SYNCS") else {
        say_skipped("a measurement, run when WEAVER_E2E_SYNCS names the fleet sizes to measure (250,1000)");
        return;
    };
    let sizes: Vec<usize> = sizes.split(',').map(|n| n.trim().parse().expect("WEAVER_E2E_SYNCS: numbers")).collect();
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let Some((_server, source)) = https_source(&e2e, &demo) else { return };
    let (url, ca) = (source.url.clone(), source.secret.1[0].1.clone());
    install_demo(&demo, images, source);

    // Ten tenant namespaces, each with an account `deployer` that may do anything there, the
    // git server's CA, and the fleet's environments: two releases of ten ConfigMaps each.
    let tenants: Vec<String> = (0..10).map(|i| cluster.namespace(&format!("fleet{i}"))).collect();
    let reader = format!("{}-fleet-namespace-reader", cluster.prefix);
    let rbac = "rbac.authorization.k8s.io/v1";
    cluster.create(&json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": reader},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]}));
    let subjects: Vec<Value> =
        tenants.iter().map(|ns| json!({"kind": "ServiceAccount", "name": "deployer", "namespace": ns})).collect();
    cluster.create(&json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": reader},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader}, "subjects": subjects}));
    for ns in &tenants {
        cluster.create(
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": ns}}),
        );
        cluster.create(&json!({"apiVersion": rbac, "kind": "Role", "metadata": {"name": "deployer", "namespace": ns},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}));
        cluster.create(
            &json!({"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": "deployer", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}),
        );
        cluster.create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-ca", "namespace": ns},
            "stringData": {"ca.crt": ca}}));
    }
    let largest = sizes.iter().copied().max().unwrap_or(0);
    demo.repo.write("charts/ten/chart.yaml", "name: ten\nversion: 0.1.0\n").write(
        "charts/ten/templates/configmaps.yaml",
        "{% for i in range(10) %}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}-{{ i }}\ndata:\n  index: \"{{ i }}\"\n{% endfor %}\n",
    );
    for i in 0..largest {
        let ns = &tenants[i % tenants.len()];
        demo.repo.write(
            &format!("environments/fleet-{i}.yaml"),
            &format!("namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n  - name: a{i}\n    chart: ten\n  - name: b{i}\n    chart: ten\n"),
        );
    }
    let git = common::git::init(demo.repo.path());
    let commit = common::git::commit_all(&git, "the fleet").to_string();

    let sync = |i: usize| {
        json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
            "metadata": {"name": format!("fleet-{i}"), "namespace": tenants[i % tenants.len()],
                         "labels": {"weaver-test": cluster.prefix}},
            "spec": {"source": {"url": url, "ref": {"branch": "main"}, "caSecretRef": {"name": "git-ca"}},
                     "environments": [format!("fleet-{i}")], "serviceAccountName": "deployer", "interval": "10m"}})
    };
    let ready = || -> usize {
        tenants
            .iter()
            .flat_map(|ns| cluster.list("weaver.example.com/v1beta1", "EnvironmentSync", "environmentsyncs", ns))
            .filter(|live| {
                ready_condition(live).is_some_and(|(status, ..)| status == "True")
                    && live["status"]["lastAppliedRevision"] == commit.as_str()
            })
            .count()
    };
    let mut made = 0;
    for size in sizes {
        let started = Instant::now();
        for i in made..size {
            cluster.create(&sync(i));
        }
        made = made.max(size);
        let deadline = started + Duration::from_secs(1800);
        while ready() < size {
            assert!(Instant::now() < deadline, "{} of {size} EnvironmentSyncs Ready after 30 min", ready());
            std::thread::sleep(Duration::from_secs(2));
        }
        figure(
            &format!("{size} EnvironmentSyncs (20 ConfigMaps each) created to all Ready"),
            &format!("{:.1?}", started.elapsed()),
        );
        // Settled: one more round of the kubelet's stats.
        std::thread::sleep(Duration::from_secs(20));
        let holder = leader(cluster, &operator_ns).expect("a leader");
        let memory = pods_memory(cluster, &operator_ns).unwrap();
        for (pod, bytes) in memory {
            let role = if pod == holder { "leader" } else { "standby" };
            figure(
                &format!("operator Pod memory at {size} EnvironmentSyncs, working set ({role})"),
                &format!("{:.1} MiB", bytes / 1048576.0),
            );
        }
    }
}

/// Signs in with `token` in headless Chromium at the UI served at `base`, as a user pastes it into
/// the sign-in page; the page, at the fleet, and how long from the click to the fleet rendered.
fn sign_in_in_chromium(chromium: &std::path::Path, base: &str, token: &str) -> (browser::Driven, Duration) {
    let mut page = browser::Driven::open(chromium, &format!("{base}/sign-in"));
    let fill = format!(
        "document.getElementById('token').value = {}; document.getElementById('sign-in-button').click(); true",
        serde_json::to_string(token).unwrap()
    );
    let clicked = Instant::now();
    page.evaluate(&fill);
    let fleet = page.loaded(|at| !at.ends_with("/sign-in"));
    assert!(!fleet.contains(token), "{fleet}");
    (page, clicked.elapsed())
}

/// The HTTP status the page now shown was answered with.
fn page_status(page: &mut browser::Driven) -> Value {
    page.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
}

#[test]
fn the_controllers_ui_through_its_service_in_chromium_shows_the_sync_at_its_commit_to_a_reader_and_refuses_an_outsider()
{
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let chromium = browser::chromium();
    if !common::interop_available("chromium", chromium.is_some()) {
        return;
    }
    let chromium = chromium.unwrap();
    let Some((demo, _server, commit)) = installed_over_https(&e2e, images, ", ui: {enabled: true}") else { return };
    let cluster = &demo.cluster;
    let operator_ns = operator_namespace(cluster);
    let ns = demo.ns.clone();

    // The chart's Service, reached at its ClusterIP from this machine: the rig's node is this
    // machine, and kube-proxy's iptables rules (its OUTPUT chain's KUBE-SERVICES) translate the
    // ClusterIP for the host's own connections as for a Pod's, choosing a replica as the
    // Service's sessionAffinity says. So the browser goes through the Service itself, not
    // `kubectl port-forward svc/…`, which would pick one Pod once and tunnel to it, bypassing
    // the Service's choice of replica and its affinity.
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "weaver-ui", "namespace": operator_ns}});
    let service = cluster.get(&service).expect("the chart's UI Service");
    assert_eq!(service["spec"]["sessionAffinity"], "ClientIP", "{service:#}");
    let address = service["spec"]["clusterIP"].as_str().unwrap();
    let base = format!("http://{address}:{}", service["spec"]["ports"][0]["port"]);

    // A reader: may get, list and watch the EnvironmentSyncs of the demo's namespace, nothing else.
    cluster.service_account(&ns, "reader");
    let rule = json!({"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"], "verbs": ["get", "list", "watch"]});
    crate::ui_controller::grant(cluster, &ns, "reader", "environmentsync-reader", rule);
    let token = cluster.token(&ns, "reader");

    // Signed in through the Service, the EnvironmentSync's page: staging-sync ready at the commit.
    let (mut page, signed_in) = sign_in_in_chromium(&chromium, &base, &token);
    figure("sign-in through the Service in Chromium (the click to the fleet rendered)", &format!("{signed_in:.1?}"));
    let sync_page = format!("{base}/syncs/{ns}/staging-sync");
    let asked = Instant::now();
    let dom = page.go(&sync_page);
    figure(
        "the EnvironmentSync's page through the Service (navigation to rendered)",
        &format!("{:.1?}", asked.elapsed()),
    );
    assert_eq!(page_status(&mut page), 200, "{dom}");
    let short = &commit[..12];
    assert!(dom.contains(&format!("id=\"revision\">{short}</code>")), "not at {short}: {dom}");
    assert!(dom.contains("id=\"state\">ready</span>"), "not ready: {dom}");
    assert!(dom.contains(&format!("system:serviceaccount:{ns}:reader")), "{dom}");
    // A reader is offered no actions.
    assert!(dom.contains("id=\"actions-refused\"") && !dom.contains("id=\"action-reconcile\""), "{dom}");
    assert!(!dom.contains(&token), "{dom}");

    // A push: the page, left open, shows the new commit by itself (its live updates, a
    // server-sent event through the Service, from the replica's own watch of the status the
    // leader writes).
    let pushed_commit = push_many_config_maps(&demo, 1);
    let pushed = Instant::now();
    let short = &pushed_commit[..12];
    eventually("the open page to show the pushed commit", || {
        let state = page.evaluate(
            "document.getElementById('revision').textContent + ' ' + document.getElementById('state').textContent",
        );
        let state = state.as_str().unwrap_or_default().to_string();
        if state == format!("{short} ready") { Ok(()) } else { Err(state) }
    });
    figure(
        "a push to the open page showing it applied, live, through the Service",
        &format!("{:.1?}", pushed.elapsed()),
    );

    // The session lives in one replica's memory. Each replica asked directly at its Pod's
    // address with the browser's cookie: the one the Service chose knows it, the other sends
    // the browser to sign in.
    let cookie = page.cookie_header();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let get = |url: &str| {
        let reply = agent.get(url).header("Cookie", &cookie).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let location = reply.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (reply.status().as_u16(), location)
    };
    let pods = live_pods(cluster, &operator_ns);
    assert_eq!(pods.len(), 2, "{pods:#?}");
    let port = pods[0]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ui")
        .unwrap()["containerPort"]
        .clone();
    let replicas: Vec<(String, String)> = pods
        .iter()
        .map(|pod| (name(pod).to_string(), format!("http://{}:{port}", pod["status"]["podIP"].as_str().unwrap())))
        .collect();
    let answers: Vec<(u16, String)> =
        replicas.iter().map(|(_, url)| get(&format!("{url}/syncs/{ns}/staging-sync"))).collect();
    eprintln!(
        "the session's cookie asked of each replica: {:?}",
        replicas.iter().map(|r| &r.0).zip(&answers).collect::<Vec<_>>()
    );
    let holder = answers.iter().position(|(status, _)| *status == 200).expect("no replica knows the session");
    let other = 1 - holder;
    assert_eq!(answers[other], (303, "/sign-in".to_string()), "{answers:?}");
    let leading = leader(cluster, &operator_ns).expect("a leader");
    let role = |replica: usize| if replicas[replica].0 == leading { "the leader" } else { "the standby" };
    eprintln!("{} ({}) holds the session signed in through the Service", replicas[holder].0, role(holder));
    // Through the Service, ClientIP affinity keeps this machine on that replica.
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let asked = Instant::now();
            assert_eq!(get(&sync_page).0, 200, "the Service moved the session to the other replica");
            asked.elapsed()
        })
        .collect();
    times.sort();
    figure(
        "the EnvironmentSync's page over HTTP through the Service, signed in (median of 20)",
        &format!("{:.1?}", times[10]),
    );

    // The other replica serves the page too, to a user who signs in there: from its own watch.
    let (mut there, _) = sign_in_in_chromium(&chromium, &replicas[other].1, &token);
    let dom = there.go(&format!("{}/syncs/{ns}/staging-sync", replicas[other].1));
    assert_eq!(page_status(&mut there), 200, "{dom}");
    assert!(
        dom.contains(&format!("id=\"revision\">{short}</code>")) && dom.contains("id=\"state\">ready</span>"),
        "{dom}"
    );
    eprintln!("{} ({}) serves the page to its own sign-in", replicas[other].0, role(other));

    // A user without rights, through the Service: signed in (the token is the API server's),
    // shown an empty fleet, and refused the EnvironmentSync's page with the reason.
    cluster.service_account(&ns, "outsider");
    let outsider = cluster.token(&ns, "outsider");
    let (mut refused, _) = sign_in_in_chromium(&chromium, &base, &outsider);
    let fleet = refused.evaluate("document.documentElement.outerHTML");
    assert!(!fleet.as_str().unwrap().contains("staging-sync"), "{fleet}");
    let dom = refused.go(&sync_page);
    assert_eq!(page_status(&mut refused), 403, "{dom}");
    let said = format!("system:serviceaccount:{ns}:outsider may not see EnvironmentSync {ns}/staging-sync");
    assert!(dom.contains(&said), "{dom}");
    assert!(!dom.contains(short) && !dom.contains("id=\"state\""), "{dom}");
}

/// The resourceVersion of everything a bootstrap into `namespace` may write: the namespace's
/// Secrets (the source Secret, the records), the release's objects there and cluster-wide
/// (named after the namespace), its EnvironmentSync and the CRDs. The API server's own request
/// counter cannot tell one test's writes from the others' of a suite run in parallel; these can.
fn bootstrap_versions(cluster: &common::cluster::TestCluster, namespace: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let mut keep = |objects: Vec<Value>| {
        for object in objects {
            let key = format!("{} {}/{}", object["kind"], object["metadata"]["namespace"], object["metadata"]["name"]);
            versions.insert(key, object["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string());
        }
    };
    for (api_version, kind, plural) in [
        ("v1", "Secret", "secrets"),
        ("v1", "ServiceAccount", "serviceaccounts"),
        ("v1", "Service", "services"),
        ("apps/v1", "Deployment", "deployments"),
        ("rbac.authorization.k8s.io/v1", "Role", "roles"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ("weaver.example.com/v1beta1", "EnvironmentSync", "environmentsyncs"),
    ] {
        keep(cluster.list(api_version, kind, plural, namespace));
    }
    for (kind, plural) in [("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings")] {
        let all = cluster.list_all("rbac.authorization.k8s.io/v1", kind, plural);
        keep(
            all.into_iter()
                .filter(|o| o["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(namespace)))
                .collect(),
        );
    }
    // The environment's lock (not the leader's Lease, which its holder renews every few seconds).
    let leases = cluster.list("coordination.k8s.io/v1", "Lease", "leases", namespace);
    keep(
        leases
            .into_iter()
            .filter(|l| l["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("weaver-lock")))
            .collect(),
    );
    let crds = cluster.list_all("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions");
    keep(crds.into_iter().filter(|c| c["spec"]["group"] == "weaver.example.com").collect());
    keep(
        cluster
            .get(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
            .into_iter()
            .collect(),
    );
    versions
}

#[test]
fn bootstrap_on_the_node_runs_weaver_from_git_which_scales_itself_and_a_second_run_writes_nothing() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let sshd_missing = Sshd::missing().map(|why| format!("the repository's git server is OpenSSH's: {why}"));
    if !interop_or_skip(sshd_missing.as_deref()) {
        return;
    }
    let cluster = e2e.cluster();
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let remote = crate::bootstrap::Remote::new();
    let sshd = Sshd::start_on(e2e.host_address(&cluster));
    let url = sshd.url(&remote.bare());
    let key = sshd.dir.path().join("client");
    let repo = common::Repo::empty();
    let (repository, tag) = images.weaver.names[0].rsplit_once(':').unwrap();
    let (image_repository, image_tag) = (format!("image.repository={repository}"), format!("image.tag={tag}"));
    let ports = format!("gitops.gitPorts={{443,22,{}}}", sshd.port);
    // It reconciles its own EnvironmentSync alone, not the other tests' on the node.
    let (selector, self_label) =
        (format!("selector=weaver-test={}", cluster.prefix), format!("selfSync.labels.weaver-test={}", cluster.prefix));
    let bootstrap = |extra: &[&str]| {
        let args = [
            &["bootstrap", "--url", &url, "--path", "clusters/rig", "-n", &ns, "--timeout", "4m"][..],
            &["--private-key-file", key.to_str().unwrap()],
            extra,
        ]
        .concat();
        repo.weaver_on(&cluster, &args)
    };
    let started = Instant::now();
    let values = [
        "--set",
        &image_repository,
        "--set",
        &image_tag,
        "--set",
        "replicas=2",
        "--set",
        &ports,
        "--set",
        "gitops.approvals.enforce=false",
        "--set",
        "selfSync.interval=10m",
        "--set",
        &selector,
        "--set",
        &self_label,
    ];
    let first = bootstrap(&values);
    assert_eq!(first.code, 0, "{first:?}");
    figure(
        "`weaver bootstrap` on an empty cluster to its EnvironmentSync Ready at the commit, from the Pods",
        &format!("{:.1?}", started.elapsed()),
    );
    let commit = remote.main();
    // Its Pods' readiness is the kubelet's to report, after the sync's: asked until it has.
    let pods = eventually("two replicas Ready", || {
        let pods = live_pods(&cluster, &ns);
        match pods.iter().filter(|p| pod_ready(p)).count() {
            2 => Ok(pods),
            _ => Err(format!("{pods:#?}")),
        }
    });
    for pod in &pods {
        assert_eq!(pod["spec"]["containers"][0]["image"], images.weaver.names[0]);
    }
    let sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "weaver", "namespace": ns}});
    assert!(is_ready_at(&cluster.get(&sync).unwrap(), &commit));

    // weaver's values changed in git: the controller applies them to itself, leading throughout.
    remote.pull();
    let environment = remote.work().join("clusters/rig/environments/weaver.yaml");
    let text = std::fs::read_to_string(&environment).unwrap();
    std::fs::write(&environment, text.replace("replicas: 2", "replicas: 3")).unwrap();
    crate::bootstrap::git(&remote.work(), &["commit", "-q", "-am", "three replicas"]);
    crate::bootstrap::git(&remote.work(), &["push", "-q", "origin", "main"]);
    let pushed = remote.main();
    let pushed_at = Instant::now();
    request_reconcile(&cluster, &sync, "three-replicas");
    let (mut leaderless_since, mut longest_leaderless) = (None::<Instant>, Duration::ZERO);
    eventually("weaver applies three replicas of itself", || {
        match (leader(&cluster, &ns), leaderless_since) {
            (None, None) => leaderless_since = Some(Instant::now()),
            (Some(_), Some(since)) => {
                longest_leaderless = longest_leaderless.max(since.elapsed());
                leaderless_since = None;
            }
            _ => {}
        }
        let pods = live_pods(&cluster, &ns);
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let live = cluster.get(&sync).ok_or("no EnvironmentSync")?;
        match (ready, is_ready_at(&live, &pushed)) {
            (3, true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    figure(
        "a pushed replicas change to weaver applied by weaver, 3 Pods Ready",
        &format!("{:.1?}", pushed_at.elapsed()),
    );
    assert!(
        longest_leaderless < Duration::from_secs(15),
        "no leader for {longest_leaderless:?}, longer than the lease"
    );
    for pod in live_pods(&cluster, &ns) {
        let restarts = pod["status"]["containerStatuses"][0]["restartCount"].as_i64().unwrap_or(0);
        assert_eq!(restarts, 0, "no restart loop: {pod}");
    }

    // Again: nothing written to git, nor to any object of the install, the environment's lock
    // included (a plan reads; only an apply would take the lock).
    let before = bootstrap_versions(&cluster, &ns);
    let again = bootstrap(&[]);
    assert_eq!(again.code, 0, "{again:?}");
    let after = bootstrap_versions(&cluster, &ns);
    assert!(before.len() > 15, "{before:#?}");
    assert_eq!(after, before, "what a second bootstrap wrote (its output: {again:?})");
    assert_eq!(remote.main(), pushed, "nothing pushed");

    // Lost, and recovered from the repository.
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(removed.code, 0, "{removed:?}");
    eventually("the controller's Pods gone", || match live_pods(&cluster, &ns).len() {
        0 => Ok(()),
        n => Err(format!("{n} Pods")),
    });
    let recovered = bootstrap(&["--recover"]);
    assert_eq!(recovered.code, 0, "{recovered:?}");
    assert_eq!(remote.main(), pushed, "--recover writes nothing to git");
    eventually("three replicas Ready again", || {
        match live_pods(&cluster, &ns).iter().filter(|p| pod_ready(p)).count() {
            3 => Ok(()),
            n => Err(format!("{n} Ready")),
        }
    });
    // The cluster-wide objects go with the test.
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(removed.code, 0, "{removed:?}");
}

/// `kubectl get -w` of one EnvironmentSync, printing `lastAttemptedRevision lastAppliedRevision`
/// at every change of it: each status the API server held, in order, with no poll's gaps.
struct RevisionWatch {
    child: std::process::Child,
    what: String,
}

impl RevisionWatch {
    fn start(cluster: &common::cluster::TestCluster, namespace: &str, name: &str) -> RevisionWatch {
        let kubectl = common::tools::kubectl();
        let child = weaver_test_support::kubectl::command(kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["get", "environmentsyncs.v1beta1.weaver.example.com", "-n", namespace, name, "-w"])
            .args(["-o", r#"jsonpath={.status.lastAttemptedRevision} {.status.lastAppliedRevision}{"\n"}"#])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run kubectl get -w");
        RevisionWatch { child, what: format!("EnvironmentSync {namespace}/{name}") }
    }

    /// Stops it: the (attempted, applied) revisions seen, each once in a row.
    fn stop(mut self) -> Vec<(String, String)> {
        let _ = self.child.kill();
        let mut out = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let _ = self.child.wait();
        let mut seen: Vec<(String, String)> = Vec::new();
        for line in out.lines() {
            let (attempted, applied) = line.split_once(' ').unwrap_or((line, ""));
            let pair = (attempted.trim().to_string(), applied.trim().to_string());
            if seen.last() != Some(&pair) {
                seen.push(pair);
            }
        }
        assert!(!seen.is_empty(), "kubectl watched nothing of {}", self.what);
        seen
    }
}

/// Fails when `revisions` (an EnvironmentSync's attempted and applied commits, in order) ever
/// went back: a commit that is an ancestor of one the sync had already fetched or applied.
fn never_back(repository: &std::path::Path, what: &str, revisions: &[(String, String)]) {
    let is_ancestor = |older: &str, newer: &str| {
        std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", older, newer])
            .current_dir(repository)
            .status()
            .unwrap()
            .success()
    };
    for field in [0, 1] {
        let named = ["lastAttemptedRevision", "lastAppliedRevision"][field];
        let mut values: Vec<&str> =
            revisions.iter().map(|r| if field == 0 { &r.0 } else { &r.1 }).map(String::as_str).collect();
        values.retain(|v| !v.is_empty());
        values.dedup();
        for pair in values.windows(2) {
            assert!(
                is_ancestor(pair[0], pair[1]),
                "{what}'s {named} went from {} to {}, not a later commit: {revisions:#?}",
                pair[0],
                pair[1]
            );
        }
    }
}

/// Issue 107's adoption path on the node, as a team follows the book
/// (docs/src/guides/install-in-a-cluster.md): `weaver bootstrap` into a repository served over
/// ssh, `weaver tenant add` for the team's app (a ConfigMap, in the same repository, so that
/// both EnvironmentSyncs fetch one URL), then: a push to the app and one to the controller's own
/// values, each posted to the receiver, applied within 10 s; pushes to both without the webhook,
/// each applied within one interval; neither EnvironmentSync ever fetches or applies a commit
/// older than one it had; values the chart refuses make the controller's own sync Ready=False,
/// which `weaver check` fails (exit 1) naming it, and passes again once mended; after `weaver
/// uninstall` both versions of the EnvironmentSync API are served.
#[test]
fn a_team_adopting_weaver_on_the_node_gets_pushes_applied_promptly_and_in_order_a_failing_check_and_a_working_api_after_uninstall()
 {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let sshd_missing = Sshd::missing().map(|why| format!("the repository's git server is OpenSSH's: {why}"));
    if !interop_or_skip(sshd_missing.as_deref()) {
        return;
    }
    let cluster = e2e.cluster();
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let shop = cluster.namespace("shop");
    // The app's environment, named uniquely: its lock is a Lease of kube-system.
    let environment = format!("{}-prod", cluster.prefix);
    for (api_version, kind, name, namespace) in [
        ("rbac.authorization.k8s.io/v1", "ClusterRole", format!("{shop}-shop"), None),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", format!("{shop}-shop"), None),
        ("rbac.authorization.k8s.io/v1", "Role", format!("{shop}-shop-lock"), Some("kube-system")),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", format!("{shop}-shop-lock"), Some("kube-system")),
        ("coordination.k8s.io/v1", "Lease", format!("weaver-lock-{environment}"), Some("kube-system")),
    ] {
        let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let Some(namespace) = namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        cluster.delete_later(&object);
    }
    let remote = crate::bootstrap::Remote::new();
    let git = |args: &[&str]| crate::bootstrap::git(&remote.work(), args);
    let sshd = Sshd::start_on(e2e.host_address(&cluster));
    let url = sshd.url(&remote.bare());
    let key = sshd.dir.path().join("client");
    let known_hosts = sshd.dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_host("host.pub")).unwrap();
    let repo = common::Repo::empty();
    let write = |path: &str, text: &str| {
        let path = remote.work().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // The team's app: one ConfigMap, in its own directory of the repository.
    write("teams/shop/charts/app/chart.yaml", "name: app\nversion: 0.1.0\n");
    write("teams/shop/charts/app/values.yaml", "greeting: v1\n");
    write(
        "teams/shop/charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: {{ values.greeting }}\n",
    );
    write(
        &format!("teams/shop/environments/{environment}.yaml"),
        &format!("namespace: {shop}\nreleases:\n  - name: app\n    chart: app\n"),
    );
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "the shop's app"]);
    git(&["push", "-q", "origin", "main"]);
    // Pushes posted to the receiver are proved by this token (the book: create the Secret).
    const WEAVER_TOKEN: &str = "e2e-controller-webhook-token-7c41";
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weaver-webhook", "namespace": ns},
        "stringData": {"token": WEAVER_TOKEN}}));

    // The book's bootstrap, from weaver's image. Its interval is 5 minutes, then 20 s (the
    // pushes with the webhook cannot be applied by a poll; those without, within 20 s). It
    // reconciles its own EnvironmentSync alone, not the other tests' on the node.
    let interval = Duration::from_secs(20);
    let (repository, tag) = images.weaver.names[0].rsplit_once(':').unwrap();
    let set = [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        "replicas=1".to_string(),
        "gitops.approvals.enforce=false".to_string(),
        "selfSync.interval=5m".to_string(),
        "selfSync.webhookSecretName=weaver-webhook".to_string(),
        format!("selector=weaver-test={}", cluster.prefix),
        format!("selfSync.labels.weaver-test={}", cluster.prefix),
    ];
    let mut args = vec!["bootstrap", "--url", &url, "--path", "clusters/rig", "-n", &ns, "--timeout", "4m"];
    args.extend(["--private-key-file", key.to_str().unwrap(), "--known-hosts", known_hosts.to_str().unwrap()]);
    for value in &set {
        args.extend(["--set", value]);
    }
    let started = Instant::now();
    let bootstrapped = repo.weaver_on(&cluster, &args);
    assert_eq!(bootstrapped.code, 0, "{bootstrapped:?}");
    figure("`weaver bootstrap` to its EnvironmentSync Ready, from the Pod", &format!("{:.1?}", started.elapsed()));
    let weaver_sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "weaver", "namespace": ns}});
    let shop_sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "shop", "namespace": shop}});
    assert!(is_ready_at(&cluster.get(&weaver_sync).unwrap(), &remote.main()));

    // The team's app, by the book's one command, reading its directory of the same repository.
    let tenant = [
        &["tenant", "add", "shop", "-n", &shop, "--controller-namespace", &ns, "--source-url", &url][..],
        &["--source-path", "teams/shop", "--environment", &environment],
        &["--private-key-file", key.to_str().unwrap(), "--known-hosts", known_hosts.to_str().unwrap()],
    ]
    .concat();
    let added = repo.weaver_on(&cluster, &tenant);
    assert_eq!(added.code, 0, "{added:?}");
    let with_tenant = remote.main();
    remote.pull();
    let hook = |namespace: &str, name: &str, token: &str| {
        let path = format!("/api/v1/namespaces/{ns}/services/weaver-webhook:webhook/proxy/hook/{namespace}/{name}");
        let headers =
            [("Content-Type", "application/json"), ("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", token)];
        let answer = cluster.post_text(&path, &headers, r#"{"object_kind": "push", "ref": "refs/heads/main"}"#);
        let answer = answer.unwrap_or_else(|e| panic!("the receiver refused the push to {namespace}/{name}: {e}"));
        assert_eq!(answer.trim(), "accepted: a reconcile is requested");
    };
    hook(&ns, "weaver", WEAVER_TOKEN);
    eventually("the controller applies the tenant's release to itself", || {
        ready_at(&cluster, &weaver_sync, &with_tenant)
    });
    // The controller watches its own label alone (other tests' controllers run on the node):
    // the tenant's EnvironmentSync carries it, as `weaver tenant add` gives it.
    let labels = cluster.get(&shop_sync).expect("the tenant's EnvironmentSync")["metadata"]["labels"].clone();
    assert_eq!(labels["weaver-test"], cluster.prefix.as_str(), "{labels}");
    let app = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": shop}});
    let greeting = || cluster.get(&app).map(|c| c["data"]["greeting"].clone()).unwrap_or(Value::Null);
    let applied = |sync: &Value, commit: &str, greets: &str| -> Result<(), String> {
        ready_at(&cluster, sync, commit)?;
        match greeting() {
            g if g == greets => Ok(()),
            g => Err(format!("greeting {g}")),
        }
    };
    eventually("the team's app applied by its EnvironmentSync", || applied(&shop_sync, &with_tenant, "v1"));
    let webhook =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-webhook", "namespace": shop}});
    let shop_token =
        cluster.get(&webhook).expect("the tenant's webhook Secret")["data"]["token"].as_str().unwrap().to_string();
    use base64::Engine;
    let shop_token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(shop_token).unwrap()).unwrap();

    // From here every status both EnvironmentSyncs take is recorded.
    let watches = [RevisionWatch::start(&cluster, &ns, "weaver"), RevisionWatch::start(&cluster, &shop, "shop")];
    let weaver_file = remote.work().join("clusters/rig/environments/weaver.yaml");
    let app_values = remote.work().join("teams/shop/charts/app/values.yaml");
    let edit = |file: &std::path::Path, from: &str, to: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{from:?} once in {}:\n{text}", file.display());
        std::fs::write(file, text.replace(from, to)).unwrap();
    };
    let commit_and_push = |message: &str| {
        git(&["commit", "-q", "-am", message]);
        git(&["push", "-q", "origin", "main"]);
        remote.main()
    };
    let push = |file: &std::path::Path, from: &str, to: &str, message: &str| {
        edit(file, from, to);
        commit_and_push(message)
    };
    // Before each push, the EnvironmentSync has reconciled its spec and the branch's head: the
    // push never rides on a reconcile that an earlier change started, and its next poll is a
    // whole interval away.
    let settled = |sync: &Value| {
        eventually("the EnvironmentSync at rest, at the branch's head", || {
            let live = cluster.get(sync).ok_or("no EnvironmentSync")?;
            let observed = live["status"]["observedGeneration"] == live["metadata"]["generation"];
            match observed && is_ready_at(&live, &remote.main()) {
                true => Ok(()),
                false => Err(live["status"].to_string()),
            }
        })
    };
    // The tenant's interval, the controller's value these pushes change: its release's values in
    // the controller's environment file, where `weaver tenant add` wrote them.
    let edit_tenant_interval = |seconds: u64| {
        let text = std::fs::read_to_string(&weaver_file).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let release = lines.iter().position(|l| l.trim() == "- name: shop").expect("the tenant's release");
        let values = release + lines[release..].iter().position(|l| l.trim() == "values:").expect("its values");
        let indent = lines[values].len() - lines[values].trim_start().len() + 2;
        let line = format!("{}interval: {seconds}s", " ".repeat(indent));
        match lines[values + 1].trim_start().starts_with("interval:") {
            true => lines[values + 1] = line,
            false => lines.insert(values + 1, line),
        }
        std::fs::write(&weaver_file, lines.join("\n") + "\n").unwrap();
    };
    let tenant_interval = || cluster.get(&shop_sync).map(|s| s["spec"]["interval"].clone()).unwrap_or(Value::Null);

    // (a) A push to the team's app, posted to the receiver: applied within 10 s (its interval
    // is the chart's minute).
    settled(&shop_sync);
    let pushed = push(&app_values, "greeting: v1", "greeting: v2", "the shop: v2");
    let posted = Instant::now();
    hook(&shop, "shop", &shop_token);
    eventually("the app's push applied", || applied(&shop_sync, &pushed, "v2"));
    let took = posted.elapsed();
    figure("a push to the team's app posted to the receiver, to Ready at it", &format!("{took:.1?}"));
    assert!(took < Duration::from_secs(10), "the app's push with the webhook took {took:?}");

    // (b) A push to the controller's own values, posted: within 10 s (its interval is 5
    // minutes). It sets both intervals to 20 s.
    settled(&weaver_sync);
    edit(&weaver_file, "interval: 5m", &format!("interval: {}s", interval.as_secs()));
    edit_tenant_interval(interval.as_secs());
    let pushed = commit_and_push("both intervals: 20s");
    let posted = Instant::now();
    hook(&ns, "weaver", WEAVER_TOKEN);
    eventually("the controller's push applied", || {
        let live = ready_at(&cluster, &weaver_sync, &pushed)?;
        match (&live["spec"]["interval"], tenant_interval()) {
            (own, tenant) if own == "20s" && tenant == "20s" => Ok(()),
            other => Err(format!("the intervals {other:?}")),
        }
    });
    let took = posted.elapsed();
    figure("a push to the controller's values posted to the receiver, to Ready at it", &format!("{took:.1?}"));
    assert!(took < Duration::from_secs(10), "the controller's push with the webhook took {took:?}");

    // (c) Without the webhook, both fetching one URL: a push to each, in turns, applied within
    // one interval (and the reconcile's own time: the bug was a whole interval more).
    let bound = interval + Duration::from_secs(8);
    for round in 0..3 {
        settled(&shop_sync);
        let pushed = push(
            &app_values,
            &format!("greeting: v{}", round + 2),
            &format!("greeting: v{}", round + 3),
            "the shop, unannounced",
        );
        let at = Instant::now();
        eventually("the app's push applied within an interval", || {
            applied(&shop_sync, &pushed, &format!("v{}", round + 3))
        });
        let took = at.elapsed();
        figure(&format!("round {round}: a push to the team's app, no webhook, to Ready at it"), &format!("{took:.1?}"));
        assert!(took <= bound, "the app's push took {took:?}, more than the interval {interval:?}");

        let seconds = interval.as_secs() - 1 - round;
        settled(&weaver_sync);
        edit_tenant_interval(seconds);
        let pushed = commit_and_push(&format!("the shop's interval: {seconds}s"));
        let at = Instant::now();
        eventually("the controller's push applied within an interval", || {
            ready_at(&cluster, &weaver_sync, &pushed)?;
            match tenant_interval() {
                i if i == format!("{seconds}s").as_str() => Ok(()),
                i => Err(format!("the tenant's interval {i}")),
            }
        });
        let took = at.elapsed();
        figure(
            &format!("round {round}: a push to the controller's values, no webhook, to Ready at it"),
            &format!("{took:.1?}"),
        );
        assert!(took <= bound, "the controller's push took {took:?}, more than the interval {interval:?}");
    }

    // (d) Values weaver's chart refuses: the controller's own sync Ready=False, `weaver check`
    // exit 1 naming it; mended, Ready again and check passes.
    let broken = push(&weaver_file, "replicas: 1", "replicas: many", "weaver: a value its schema refuses");
    hook(&ns, "weaver", WEAVER_TOKEN);
    let (reason, message) = eventually("the controller's own sync Ready=False", || {
        let live = cluster.get(&weaver_sync).ok_or("no EnvironmentSync")?;
        match ready_condition(&live) {
            Some((status, reason, message))
                if status == "False" && live["status"]["lastAttemptedRevision"] == broken.as_str() =>
            {
                Ok((reason, message))
            }
            other => Err(format!("{other:?}")),
        }
    });
    figure("the controller's own sync on refused values: Ready=False", &format!("{reason}: {message}"));
    assert!(message.contains("replicas"), "{message}");
    let checked = repo.weaver_on(&cluster, &["check", "-n", &ns]);
    assert_eq!(checked.code, 1, "{checked:?}");
    let named = format!("selfsync/{ns}/weaver");
    let line = checked.stdout.lines().find(|l| l.contains(&named)).unwrap_or_else(|| panic!("{named} in {checked:?}"));
    assert!(
        line.starts_with('✗') && line.contains(&format!("weaver's own EnvironmentSync {ns}/weaver is not Ready")),
        "{checked:?}"
    );
    let mended = push(&weaver_file, "replicas: many", "replicas: 1", "weaver: mended");
    hook(&ns, "weaver", WEAVER_TOKEN);
    eventually("the controller's own sync Ready again", || ready_at(&cluster, &weaver_sync, &mended));
    let checked = repo.weaver_on(&cluster, &["check", "-n", &ns]);
    assert_eq!(checked.code, 0, "{checked:?}");

    // Neither EnvironmentSync ever went back to an older commit.
    let [weaver_watch, shop_watch] = watches;
    let (weaver_seen, shop_seen) = (weaver_watch.stop(), shop_watch.stop());
    figure(
        "statuses recorded (the controller's sync, the app's)",
        &format!("{}, {}", weaver_seen.len(), shop_seen.len()),
    );
    never_back(&remote.bare(), "the controller's EnvironmentSync", &weaver_seen);
    never_back(&remote.bare(), "the app's EnvironmentSync", &shop_seen);
    assert!(weaver_seen.iter().any(|(attempted, _)| *attempted == broken), "{weaver_seen:#?}");

    // (e) Uninstalled: the API it leaves serves both versions (its conversion back to None).
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let kubectl = common::tools::kubectl();
    for version in ["v1alpha1", "v1beta1"] {
        let out = weaver_test_support::kubectl::command(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["get", &format!("environmentsyncs.{version}.weaver.example.com"), "-n", &shop, "-o", "name"])
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kubectl get of {version} after uninstall: {stderr}");
        assert_eq!(stdout.trim(), "environmentsync.weaver.example.com/shop", "{version}: {stderr}");
    }
}

#[test]
fn helm_install_of_the_chart_from_an_oci_registry_runs_a_controller_that_passes_weaver_check() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let helm = match common::tools::helm() {
        Ok((helm, _)) => helm,
        Err(why) => {
            common::skip::interop_or_skip(Some(&format!("helm installs the chart: {why}")));
            return;
        }
    };
    let registry = match common::registry::Registry::start() {
        Ok(registry) => registry,
        Err(why) => {
            common::skip::interop_or_skip(Some(&format!("the chart is pushed to a registry: {why}")));
            return;
        }
    };
    let cluster = e2e.cluster();
    let ns = cluster.namespace("helm");
    let chart = registry.push_weaver_chart(&helm, tempfile::tempdir().unwrap().path());
    let (repository, tag) = images.weaver.names[0].rsplit_once(':').unwrap();
    let checked =
        helm_install_checked(&cluster, &helm, &ns, &chart, repository, Some(tag), "the chart from an OCI registry");
    assert_eq!(checked.code, 0, "{checked:?}");
    assert!(checked.stdout.contains("all checks passed"), "{checked:?}");
}

/// `helm install` of the chart at `chart` (an `oci://` reference, the binary's version) into
/// `ns`, its image `repository` (at `tag`, else the chart's appVersion), then `weaver check` of it
/// and `helm uninstall`: what check said.
fn helm_install_checked(
    cluster: &common::cluster::TestCluster,
    helm: &std::path::Path,
    ns: &str,
    chart: &str,
    repository: &str,
    tag: Option<&str>,
    what: &str,
) -> common::Run {
    let work = tempfile::tempdir().unwrap();
    let helm_cmd = |args: &[&str]| common::tools::run_helm(helm, work.path(), Some(cluster.kubeconfig()), args);
    let (repository, tag) = (format!("image.repository={repository}"), format!("image.tag={}", tag.unwrap_or("")));
    let selector = format!("selector=weaver-test={}", cluster.prefix);
    let version = env!("CARGO_PKG_VERSION");
    let started = Instant::now();
    helm_cmd(&[
        "install",
        "weaver",
        chart,
        "--version",
        version,
        "--plain-http",
        "-n",
        ns,
        "--set",
        &repository,
        "--set",
        &tag,
        "--set",
        "gitops.approvals.enforce=false",
        "--set",
        &selector,
        "--wait",
        "--timeout",
        "4m",
    ]);
    figure(&format!("`helm install` of {what}, --wait"), &format!("{:.1?}", started.elapsed()));
    let checked = common::Repo::empty().weaver_on(cluster, &["check", "-n", ns]);
    helm_cmd(&["uninstall", "weaver", "-n", ns, "--wait"]);
    checked
}

/// A release's artifacts (`cargo xtask release --out DIR`, named by `WEAVER_E2E_RELEASE`): the
/// static binary's image, which holds nothing but the binary, runs `--version` on the node; then
/// `cargo xtask push` puts the image and the chart in a registry on loopback, from which helm
/// installs the chart and the node pulls the image: a controller that passes `weaver check`.
#[test]
fn a_releases_image_runs_on_the_node_and_its_pushed_chart_and_image_install_from_a_registry() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(release) = std::env::var_os("WEAVER_E2E_RELEASE").map(std::path::PathBuf::from) else {
        common::skip::say_skipped(
            "WEAVER_E2E_RELEASE does not name a release's artifacts (cargo xtask release --out DIR: \
             docs/src/development/releasing.md)",
        );
        return;
    };
    let version = env!("CARGO_PKG_VERSION");
    let cluster = e2e.cluster();
    let ns = cluster.namespace("release");
    e2e.load_archive(&release.join(format!("weaver-{version}-image.tar")));
    let pod = |name: &str, image: &str, policy: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "weaver", "image": image,
                "imagePullPolicy": policy, "args": ["--version"],
                "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true}}]}})
    };
    let finished = |pod: &Value| {
        eventually("the Pod ran to its end", || {
            let live = cluster.get(pod).ok_or("gone")?;
            match live.pointer("/status/phase").and_then(Value::as_str) {
                Some("Succeeded") => Ok(()),
                Some("Failed") => panic!("the Pod failed: {}", live["status"]),
                other => Err(format!("phase {other:?}: {}", live["status"])),
            }
        });
        cluster.get_text(&format!("/api/v1/namespaces/{ns}/pods/{}/log", pod["metadata"]["name"].as_str().unwrap()))
    };
    let loaded = pod("loaded", &format!("weaver:{version}"), "Never");
    cluster.create(&loaded);
    assert_eq!(finished(&loaded).unwrap(), format!("weaver {version}\n"));

    let Ok(registry) = common::registry::Registry::start() else {
        common::skip::interop_or_skip(Some("the release is pushed to a registry: no /usr/bin/docker-registry"));
        return;
    };
    let helm = match common::tools::helm() {
        Ok((helm, _)) => helm,
        Err(why) => {
            common::skip::interop_or_skip(Some(&format!("helm installs the pushed chart: {why}")));
            return;
        }
    };
    let registry_at = format!("127.0.0.1:{}", registry.port);
    let pushed = std::process::Command::new("cargo")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["xtask", "push"])
        .arg(&release)
        .args([&registry_at, "--plain-http"])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "cargo xtask push: {}", String::from_utf8_lossy(&pushed.stderr));
    // The node pulls it (a registry on loopback is spoken to in plain http).
    let pulled = pod("pulled", &format!("{registry_at}/weaver:{version}"), "Always");
    cluster.create(&pulled);
    assert_eq!(finished(&pulled).unwrap(), format!("weaver {version}\n"));

    let chart = format!("oci://{registry_at}/charts/weaver");
    let image = format!("{registry_at}/weaver");
    let what = "a release's pushed chart, its image pulled from the registry";
    let checked = helm_install_checked(&cluster, &helm, &ns, &chart, &image, None, what);
    assert_eq!(checked.code, 0, "{checked:?}");
    assert!(checked.stdout.contains(&format!("version/weaver: weaver {version}, as this weaver")), "{checked:?}");
}

/// The served repository's working tree committed by git itself as `git commit --allow-empty`
/// with `config` (`-c` pairs) and `sign` (`-S` or `--no-gpg-sign`); the commit's id.
fn commit_with_git(demo: &Demo, config: &[&str], sign: &str, message: &str) -> String {
    let dir = demo.repo.path();
    weaver_test_support::signing::git(dir, &[], config, &["commit", "-q", "--allow-empty", sign, "-m", message]);
    weaver_test_support::signing::git(dir, &[], &[], &["rev-parse", "HEAD"]).trim().to_string()
}

/// Waits for the EnvironmentSync's Ready=False `VerificationFailed` naming `commit`: its
/// message, and the EnvironmentSync as read then.
fn refused_at(cluster: &common::cluster::TestCluster, environment_sync: &Value, commit: &str) -> (String, Value) {
    eventually(&format!("VerificationFailed naming {}", &commit[..8]), || {
        let live = cluster.get(environment_sync).ok_or("no EnvironmentSync")?;
        match ready_condition(&live) {
            Some((status, reason, message))
                if status == "False" && reason == "VerificationFailed" && message.contains(&commit[..8]) =>
            {
                Ok((message, live))
            }
            _ => Err(live["status"].to_string()),
        }
    })
}

#[test]
fn a_verified_environmentsync_in_the_pod_applies_signed_commits_alone_and_signs_what_it_promotes() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    if let Some(why) = weaver_test_support::signing::missing(&["git", "ssh-keygen"]) {
        say_skipped(&format!("the test's commits are signed by git with ssh-keygen's keys: {why}"));
        return;
    }
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_public) = weaver_test_support::signing::ssh_key(keys.path(), "alice", &["-t", "ed25519"]);
    let (bot, bot_public) = weaver_test_support::signing::ssh_key(keys.path(), "bot", &["-t", "ed25519"]);
    let allowed_signers = format!("alice@example.com {alice_public}\npromoter@weaver.invalid {bot_public}\n");

    // Staging takes web's replicas from dev, as in the auto-promotion test; its EnvironmentSync
    // checks every commit since the last applied one against alice and the bot, and signs its
    // promotion with the bot's key. Both Secrets are the chart's, read by its account alone.
    let record_key = promoting_staging_from_dev(&demo, "    signingKey: {secretRef: {name: weaver-signing}}\n");
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "    ref:\n",
        "    verify: {mode: all, secretRef: {name: git-signers}}\n    ref:\n",
    );
    let block = |text: &str| text.lines().map(|line| format!("    {line}\n")).collect::<String>();
    let private = std::fs::read_to_string(&bot).unwrap();
    demo.repo.write(
        "charts/environment-sync/templates/signing.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-signers\nstringData:\n  allowed_signers: |\n{}---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: weaver-signing\nstringData:\n  signingKey: |\n{}---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: signing-reader\nrules:\n  \
             - {{apiGroups: [\"\"], resources: [secrets], resourceNames: [git-signers, weaver-signing], verbs: [get]}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: signing-reader\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: signing-reader}}\n\
             subjects: [{{kind: ServiceAccount, name: \"{{{{ release.name }}}}\"}}]\n",
            block(&allowed_signers),
            block(&private)
        ),
    );
    let Some((sshd, source)) = ssh_source(&e2e, &demo) else { return };
    let gitops = ", recordKey: {secretName: weaver-record-key, key: record.key}";
    let envs = [("WEAVER_RECORD_KEY_FILE", record_key.path().to_str().unwrap())];
    let (unsigned, started) = install_demo_with(&demo, images, source, gitops, &envs);
    let environment_sync = environment_sync(&demo);

    // The installed commit is nobody's: refused, nothing of staging applied.
    let (message, live) = refused_at(cluster, &environment_sync, &unsigned);
    figure(
        "install to an unsigned commit refused in the Pod (VerificationFailed)",
        &format!("{:.1?}", started.elapsed()),
    );
    assert!(message.contains("is refused: it is not signed"), "{message}");
    assert!(message.contains(&format!("Secret {}/git-signers (spec.source.verify.secretRef)", demo.ns)), "{message}");
    assert!(live["status"]["lastAppliedRevision"].is_null(), "{:#}", live["status"]);
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": staging_namespace(cluster)}});
    assert!(cluster.get(&web).is_none(), "staging's web was applied from an unsigned commit");

    // Alice signs on top: applied; then the promotion, pushed signed by the bot.
    let sign_as_alice = weaver_test_support::signing::signing_with_ssh(&alice);
    let sign_as_alice: Vec<&str> = sign_as_alice.iter().map(String::as_str).collect();
    let signed = commit_with_git(&demo, &sign_as_alice, "-S", "signed by alice");
    let requested = Instant::now();
    request_reconcile(cluster, &environment_sync, "signed");
    let (repo, live) = pushed_to_main(&demo, &environment_sync, &signed, "Promoted");
    figure(
        "a signed commit to it applied and its promotion pushed, signed, from the Pod",
        &format!("{:.1?}", requested.elapsed()),
    );
    assert_eq!(live["status"]["lastAppliedRevision"], signed.as_str(), "{:#}", live["status"]);
    let pushed = main_of(&repo);
    let list = keys.path().join("allowed_signers");
    std::fs::write(&list, &allowed_signers).unwrap();
    let allowed = format!("gpg.ssh.allowedSignersFile={}", list.display());
    let shown = weaver_test_support::signing::git(
        demo.repo.path(),
        &[],
        &[&allowed],
        &["log", "-1", "--format=%G? %GS", &pushed],
    );
    assert_eq!(shown.trim(), "G promoter@weaver.invalid", "git checks the controller's signature");
    request_reconcile(cluster, &environment_sync, "promoted");
    eventually("the promotion, verified, applied", || ready_at(cluster, &environment_sync, &pushed));
    assert_eq!(cluster.get(&web).expect("staging's web")["spec"]["replicas"], 1);

    // An unsigned commit on top: refused, the cluster stays at the promotion.
    let unsigned = commit_with_git(&demo, &[], "--no-gpg-sign", "unsigned");
    request_reconcile(cluster, &environment_sync, "unsigned");
    let (message, live) = refused_at(cluster, &environment_sync, &unsigned);
    assert!(
        message.contains(&format!("commit {} (branch main) is refused: it is not signed", &unsigned[..8])),
        "{message}"
    );
    assert_eq!(live["status"]["lastAppliedRevision"], pushed.as_str(), "{:#}", live["status"]);
    // No key in the status.
    let status = live["status"].to_string();
    for line in private.lines().chain(sshd.read("client").lines()).filter(|l| !l.starts_with("-----")) {
        assert!(!status.contains(line), "a private key is in the status: {status}");
    }
}

/// The demo's EnvironmentSync's previews on the node (issue 109): environment `review`, the web
/// app alone, in a namespace per `preview/*` branch of the demo served over https where the Pods
/// reach this machine. Its account may make namespaces and write the web app's kinds in any.
fn install_previews(e2e: &E2e, images: &Images, demo: &Demo) -> Option<(GitHttpServer, git2::Repository)> {
    let cluster = &demo.cluster;
    let (server, source) = https_source(e2e, demo)?;
    demo.repo.write(
        "environments/review.yaml",
        "# A preview of the web app alone (the EnvironmentSync's spec.previews).\nnamespace: review\nvalues:\n  \
         domain: review.shop.example.org\nreleases:\n  - name: web\n    chart: web-app\n    values:\n      \
         config: {GREETING: main}\n",
    );
    demo.edit(
        "charts/environment-sync/templates/environmentsync.yaml",
        "  approval: Automatic\n",
        "  approval: Automatic\n  previews: {branches: \"preview/*\", environment: review, max: 3}\n",
    );
    let name = format!("{}-previews", cluster.prefix);
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        cluster.delete_later(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}}));
    }
    for preview in ["a", "b", "c", "d", "e", "f"] {
        cluster.delete_later(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("{}-{preview}", demo.ns)}}));
    }
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": ["", "apps", "coordination.k8s.io", "events.k8s.io"],
             "resources": ["configmaps", "services", "secrets", "deployments", "leases", "events"], "verbs": ["*"]}
        ]
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "staging-sync", "namespace": demo.ns}]
    }));
    install_demo(demo, images, source);
    Some((server, common::git::init(demo.repo.path())))
}

/// The previews of the EnvironmentSync `live`: name → (state, commit).
fn previews_of(live: &Value) -> BTreeMap<String, (String, String)> {
    let previews = live["status"]["previews"].as_array().cloned().unwrap_or_default();
    let text = |preview: &Value, field: &str| preview[field].as_str().unwrap_or_default().to_string();
    previews.iter().map(|p| (text(p, "name"), (text(p, "state"), text(p, "commit")))).collect()
}

/// Waits, up to `limit`, until `check` holds; the time it took.
fn within<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return (value, started.elapsed()),
            Err(last) => assert!(started.elapsed() < limit, "{what}, after {limit:?}: {last}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 109's acceptance on the node: the controller in its Pod from weaver's image; pushing
/// `preview/a` (and `feature/x`, outside the glob) to the demo served over https makes a's
/// namespace and applies the web app there, its Pod Ready; a second push updates it; deleting
/// the branch removes the namespace and every object in it; five branches with `max: 3` give
/// three previews and two waiting, the newest; `expireAfter` prunes them all; `feature/x` never
/// gets anything. Each step is triggered by a reconcile request, and timed.
#[test]
fn previews_on_the_node_follow_their_branches_from_push_to_pruned_within_the_maximum_and_expiry() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some(images) = e2e.images() else { return };
    let demo = Demo::with_operator_on(e2e.cluster());
    let cluster = &demo.cluster;
    let Some((_server, git)) = install_previews(&e2e, images, &demo) else { return };
    let environment_sync = environment_sync(&demo);
    let work = demo.repo.path();
    let main = main_of(&git);
    eventually("the EnvironmentSync Ready at main", || ready_at(cluster, &environment_sync, &main));
    let live = |what: &str| cluster.get(&environment_sync).unwrap_or_else(|| panic!("no EnvironmentSync, {what}"));
    let review = "environments/review.yaml";
    let greeting = |text: &str| {
        format!(
            "namespace: review\nvalues:\n  domain: review.shop.example.org\nreleases:\n  - name: web\n    \
                 chart: web-app\n    values:\n      config: {{GREETING: {text}}}\n"
        )
    };
    let now = jiff::Timestamp::now().as_second();
    let a_ns = format!("{}-a", demo.ns);
    let web_config = |namespace: &str| {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": namespace}});
        cluster.get(&config).map(|c| c["data"]["GREETING"].clone())
    };
    let limit = Duration::from_secs(180);

    // A push to preview/a, and one to feature/x, outside the glob.
    let first = push_to(&git, work, "preview/a", review, &greeting("a1"), now);
    push_to(&git, work, "feature/x", review, &greeting("x"), now);
    let pushed = Instant::now();
    request_reconcile(cluster, &environment_sync, "preview a pushed");
    let (_, to_ready) = within("preview a Ready at its commit", limit, || {
        let live = live("preview a");
        match previews_of(&live).get("a") {
            Some((state, commit)) if state == "Ready" && *commit == first => Ok(()),
            _ => Err(live["status"].to_string()),
        }
    });
    figure(
        "push of preview/a to its preview Ready (namespace made, applied; a reconcile requested)",
        &format!("{to_ready:.1?}"),
    );
    assert_eq!(web_config(&a_ns), Some(json!("a1")));
    within("preview a's web Pod Ready", limit, || {
        let pods = live_pods(cluster, &a_ns);
        if !pods.is_empty() && pods.iter().all(pod_ready) { Ok(()) } else { Err(format!("{pods:#?}")) }
    });
    figure("push of preview/a to its web app's Pod Ready", &format!("{:.1?}", pushed.elapsed()));
    let live_now = live("after preview a");
    assert_eq!(previews_of(&live_now).keys().collect::<Vec<_>>(), ["a"], "feature/x is outside the glob");
    assert_eq!(preview_namespaces(cluster, &demo.ns, "staging-sync"), [a_ns.as_str()]);
    assert_eq!(live_now["status"]["lastAppliedRevision"], main.as_str(), "staging stays at main");

    // A second push updates it.
    let second = push_to(&git, work, "preview/a", review, &greeting("a2"), now + 1);
    request_reconcile(cluster, &environment_sync, "preview a pushed again");
    let (_, to_updated) = within("preview a Ready at the second push", limit, || {
        let live = live("preview a updated");
        match previews_of(&live).get("a") {
            Some((state, commit)) if state == "Ready" && *commit == second => Ok(()),
            _ => Err(live["status"].to_string()),
        }
    });
    figure("a second push to preview/a to its preview Ready at it", &format!("{to_updated:.1?}"));
    assert_eq!(web_config(&a_ns), Some(json!("a2")));

    // The branch deleted: the preview leaves the status, and its namespace goes with every
    // object in it (the server finalizes the namespace once they are gone).
    let kinds = [
        ("v1", "ConfigMap", "configmaps"),
        ("v1", "Service", "services"),
        ("v1", "Secret", "secrets"),
        ("apps/v1", "Deployment", "deployments"),
        ("v1", "Pod", "pods"),
    ];
    let held: usize = kinds.iter().map(|(v, k, p)| cluster.list(v, k, p, &a_ns).len()).sum();
    assert!(held >= 5, "preview a's namespace holds {held} objects");
    delete_branch_of(&git, "preview/a");
    request_reconcile(cluster, &environment_sync, "preview a deleted");
    let (_, to_pruned) = within("preview a pruned", limit, || {
        let live = live("preview a pruned");
        if previews_of(&live).is_empty() { Ok(()) } else { Err(live["status"].to_string()) }
    });
    figure(
        "preview/a deleted to its preview pruned (objects deleted, namespace deletion asked)",
        &format!("{to_pruned:.1?}"),
    );
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": a_ns}});
    let (_, to_gone) = within("preview a's namespace gone", limit, || match cluster.get(&namespace) {
        None => Ok(()),
        Some(ns) => Err(ns["status"].to_string()),
    });
    figure(
        "preview a pruned to its namespace gone (its Pod terminated, the server's finalizers)",
        &format!("{to_gone:.1?}"),
    );
    for (api_version, kind, plural) in kinds {
        assert_eq!(cluster.list(api_version, kind, plural, &a_ns), Vec::<Value>::new(), "{kind}s left in {a_ns}");
    }

    // Five branches, max 3: the three oldest commits Ready, the two newest waiting, named.
    let mut heads = BTreeMap::new();
    for (name, age) in [("b", 5), ("c", 1), ("d", 4), ("e", 2), ("f", 3)] {
        let head = push_to(&git, work, &format!("preview/{name}"), review, &greeting(name), now - 3600 * age);
        heads.insert(name.to_string(), head);
    }
    let pushed = Instant::now();
    request_reconcile(cluster, &environment_sync, "five branches");
    let (live_five, to_three) = within("three previews Ready", limit, || {
        let live = live("five branches");
        let ready = previews_of(&live).values().filter(|(state, _)| state == "Ready").count();
        if ready == 3 { Ok(live) } else { Err(live["status"].to_string()) }
    });
    figure("five branches pushed to three previews Ready (max 3)", &format!("{to_three:.1?}"));
    let states: BTreeMap<String, String> = previews_of(&live_five).into_iter().map(|(n, (s, _))| (n, s)).collect();
    let expected: BTreeMap<String, String> =
        [("b", "Ready"), ("c", "Waiting"), ("d", "Ready"), ("e", "Waiting"), ("f", "Ready")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .into();
    assert_eq!(states, expected, "the two newest commits wait");
    let waiting = live_five["status"]["previews"].as_array().unwrap().iter().find(|p| p["name"] == "c").unwrap();
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(message.contains("5 branches match spec.previews.branches and spec.previews.max is 3"), "{message}");
    let made = preview_namespaces(cluster, &demo.ns, "staging-sync");
    let ns_of = |name: &str| format!("{}-{name}", demo.ns);
    assert_eq!(made, ["b", "d", "f"].map(ns_of), "feature/x and the waiting ones get no namespace");
    assert_eq!(web_config(&ns_of("d")), Some(json!("d")));
    assert!(pushed.elapsed() < limit);

    // Expiry: their commits are 1 to 5 hours old; `expireAfter: 1h` prunes every one.
    cluster.merge_patch(&environment_sync, &json!({"spec": {"previews": {"expireAfter": "1h"}}}), "previews-e2e");
    request_reconcile(cluster, &environment_sync, "expire");
    let (_, to_expired) = within("the expired previews pruned", limit, || {
        let live = live("expired");
        if previews_of(&live).is_empty() { Ok(()) } else { Err(live["status"].to_string()) }
    });
    figure("expireAfter set to the expired previews pruned (three)", &format!("{to_expired:.1?}"));
    let (_, to_gone) = within("the expired previews' namespaces gone", limit, || {
        let left = preview_namespaces(cluster, &demo.ns, "staging-sync");
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    });
    figure("the expired previews pruned to their three namespaces gone", &format!("{to_gone:.1?}"));
    let live = live("at the end");
    assert_eq!(live["status"]["lastAppliedRevision"], main.as_str(), "{:#}", live["status"]);
    assert!(ready_condition(&live).is_some_and(|(status, ..)| status == "True"), "{:#}", live["status"]);
}
