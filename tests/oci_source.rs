//! A weaver repository as an OCI artifact: `weaver push artifact` packs the tracked files of a
//! commit in Flux's format, pushed to Debian's docker-registry on loopback, and an
//! EnvironmentSync's `spec.source.oci` applies it, run in-process against the fake API server
//! as tests/gitops.rs runs the controller.

use crate::common;

use serde_json::{Value, json};
use weaver_controllers::gitops::reconcile::Clock;

use crate::gitops;
use crate::hydrate::pull_by_digest;
use common::Repo;
use common::cluster::TestCluster;
use common::registry::Registry;
use weaver_test_support::cosign::TestSigner;

/// The registry, or None when the test skips (it says why).
fn registry_or_skip() -> Option<Registry> {
    let registry = Registry::start();
    common::skip::interop_or_skip(registry.as_ref().err().map(String::as_str)).then(|| registry.unwrap())
}

#[test]
fn push_artifact_packs_the_commit_s_tracked_files_only_in_flux_s_format() {
    let Some(registry) = registry_or_skip() else { return };
    let repo = Repo::minimal();
    let git = common::git::init(repo.path());
    repo.write("tools/check.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(repo.path().join("tools/check.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let commit = common::git::commit_all(&git, "source").to_string();
    // Not in the commit: an untracked file, and a change to a tracked one.
    repo.write("environments/untracked.yaml", "namespace: nope\n");
    repo.write("tools/check.sh", "#!/bin/sh\nexit 1\n");
    let reference = format!("oci://127.0.0.1:{}/shop/deploy:main", registry.port);
    let run = repo.weaver(&["push", "artifact", &reference, "--plain-http", "-o", "json"]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["commit"], commit);
    let digest = report["digest"].as_str().unwrap().to_string();

    let (manifest, tree, tar) = pull_by_digest(registry.port, "shop/deploy", &digest);
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.flux.config.v1+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.cncf.flux.content.v1.tar+gzip");
    assert_eq!(manifest["annotations"]["weaver.example.com/content"], "repository");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.revision"], format!("sha1:{commit}"));
    let tracked: Vec<String> = {
        let index = git.index().unwrap();
        index.iter().map(|e| String::from_utf8(e.path).unwrap()).collect()
    };
    assert_eq!(tree.keys().cloned().collect::<Vec<_>>(), tracked, "the commit's files, no more");
    assert!(tree.keys().all(|p| !p.starts_with(".git")), "{:?}", tree.keys());
    assert_eq!(tree["tools/check.sh"], b"#!/bin/sh\nexit 0\n", "as committed, not as in the working tree");
    let mode = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_str() == Some("tools/check.sh"))
        .map(|e| e.header().mode().unwrap());
    assert_eq!(mode, Some(0o755), "an executable stays one");

    // The text output says the digest, which the tag names; pushing the same commit again gives
    // the same digest.
    let again = repo.weaver(&["push", "artifact", &reference, "--plain-http"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout.lines().last(), Some(digest.as_str()), "{}", again.stdout);
    let tagged = crate::hydrate::registry_get(
        registry.port,
        "/v2/shop/deploy/manifests/main",
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(serde_json::from_slice::<Value>(&tagged).unwrap(), manifest);

    // Outside git, and a bad reference, are refused naming what is wrong.
    let plain = Repo::minimal();
    let outside = plain.weaver(&["push", "artifact", &reference, "--plain-http"]);
    assert_eq!(outside.code, 1);
    assert!(outside.stderr.contains("is not inside a git repository"), "{}", outside.stderr);
    let bad = repo.weaver(&["push", "artifact", "127.0.0.1:5000/shop", "--plain-http"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("REF `127.0.0.1:5000/shop` names no tag"), "{}", bad.stderr);
}

/// A weaver repository in git: chart `app` (one ConfigMap greeting `greeting`) and environment
/// `dev` applying it to `namespace`, committed; the repository's directory.
fn committed_repository(namespace: &str, greeting: &str) -> (tempfile::TempDir, git2::Repository) {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, content: &str| {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    };
    write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n");
    write("charts/app/values.yaml", &format!("greeting: {greeting}\n"));
    write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  greeting: {{ values.greeting }}\n",
    );
    write(
        "environments/dev.yaml",
        &format!(
            "namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n  - name: app\n    chart: app\n"
        ),
    );
    let git = common::git::init(dir.path());
    common::git::commit_all(&git, "first");
    (dir, git)
}

/// `weaver push artifact` of the repository in `dir` to `reference`: the digest it printed.
fn push(dir: &std::path::Path, reference: &str) -> String {
    let run = common::weaver_in(dir, &["push", "artifact", reference, "--plain-http", "-o", "json"], &[]);
    let report: Value = serde_json::from_str(run.success()).unwrap();
    report["digest"].as_str().unwrap().to_string()
}

/// The spec of an EnvironmentSync applying environment `dev` of the artifact at `url:tag`.
fn artifact_spec(url: &str, tag: &str) -> Value {
    json!({"source": {"oci": {"url": url, "tag": tag, "insecure": true}}, "environments": ["dev"],
           "serviceAccountName": "deployer", "interval": "2s"})
}

/// What a test of an EnvironmentSync of an artifact starts from: the registry, the cluster, a
/// tenant's namespace, the repository [`committed_repository`] makes for it (greeting `hello`)
/// and the `oci://` URL of the artifacts' repository, `shop/deploy`.
struct Start {
    registry: Registry,
    cluster: TestCluster,
    namespace: String,
    dir: tempfile::TempDir,
    git: git2::Repository,
    url: String,
}

/// [`Start`], or None when the test skips (it says why).
fn start() -> Option<Start> {
    let registry = registry_or_skip()?;
    let cluster = TestCluster::start();
    let namespace = gitops::tenant(&cluster);
    let (dir, git) = committed_repository(&namespace, "hello");
    let url = format!("oci://127.0.0.1:{}/shop/deploy", registry.port);
    Some(Start { registry, cluster, namespace, dir, git, url })
}

impl Start {
    /// The greeting of the release's ConfigMap; None without one.
    fn greeting(&self) -> Option<Value> {
        gitops::config_map(&self.cluster, &self.namespace, "app").map(|map| map["data"]["greeting"].clone())
    }

    /// Pushes cosign's signature of the artifact `digest` of `shop/deploy`, made by `signer`.
    fn sign(&self, digest: &str, signer: &TestSigner) {
        let image = format!("127.0.0.1:{}/shop/deploy", self.registry.port);
        crate::images::push_signature(self.registry.port, "shop/deploy", &image, digest, signer, None);
    }
}

#[test]
fn an_environment_sync_applies_a_pushed_artifact_and_the_next_push_to_its_tag() {
    let Some(Start { registry, cluster, namespace, dir, git, url }) = start() else { return };
    let first = push(dir.path(), &format!("{url}:main"));
    let _controller = gitops::Controller::start(&cluster, None);
    let sync = gitops::environment_sync(&cluster, &namespace, "shop", artifact_spec(&url, "main"));
    cluster.create(&sync);
    let live = gitops::until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the artifact applied");
    assert_eq!(live["status"]["lastAppliedRevision"], first);
    assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
    assert_eq!(live["status"]["environments"][0]["revision"], first);
    let applied = gitops::config_map(&cluster, &namespace, "app").expect("the release's ConfigMap");
    assert_eq!(applied["data"]["greeting"], "hello");
    // The record names the digest where a git source's names the commit.
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let history = common::weaver_in(
        dir.path(),
        &["history", "--env", "dev", "app", "-o", "json", "--kubeconfig", &kubeconfig],
        &[],
    );
    let history: Value = serde_json::from_str(history.success()).unwrap();
    let revisions = history["revisions"].as_array().cloned().unwrap_or_default();
    assert!(revisions.iter().any(|r| r["commit"] == first), "{history}");

    // A second push to the tag is applied at the next interval.
    std::fs::write(dir.path().join("charts/app/values.yaml"), "greeting: hi\n").unwrap();
    common::git::commit_all(&git, "second");
    let second = push(dir.path(), &format!("{url}:main"));
    assert_ne!(second, first);
    gitops::until_status(&cluster, &sync, "the second push applied", |live| {
        live["status"]["lastAppliedRevision"] == second
    });
    assert_eq!(gitops::config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "hi");

    // A tag the registry does not have fails, saying so, and keeps what was applied.
    let missing = gitops::environment_sync(&cluster, &namespace, "missing", artifact_spec(&url, "nope"));
    cluster.create(&missing);
    let live = gitops::until_ready_with(&cluster, &missing, "ArtifactNotFound", "a missing tag");
    let message = ready_message(&live);
    assert!(message.contains(&format!("127.0.0.1:{}/shop/deploy:nope", registry.port)), "{message}");
    // As a git ref that is not there: no retry cures it, only a push or a change of the spec.
    let conditions = live["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().any(|c| c["type"] == "Stalled" && c["status"] == "True"), "{conditions:?}");
    assert_eq!(gitops::get(&cluster, &sync)["status"]["lastAppliedRevision"], second, "the other one is untouched");
}

/// The Ready condition's message.
fn ready_message(sync: &Value) -> String {
    let conditions = sync["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").cloned().unwrap_or_default();
    ready["message"].as_str().unwrap_or_default().to_string()
}

/// Pushes to `tag` an artifact annotated as a weaver repository whose layer is `layer`.
fn push_layer(registry: &Registry, tag: &str, layer: Vec<u8>) {
    use weaver_source::charts::oci;
    let artifact =
        oci::Artifact::parse(&format!("127.0.0.1:{}/shop/crafted:{tag}", registry.port), true, "test").unwrap();
    let annotations = [(oci::CONTENT_ANNOTATION.to_string(), oci::REPOSITORY_CONTENT.to_string())].into();
    let built = oci::build_manifest((oci::FLUX_CONFIG, b"{}".to_vec()), vec![(oci::FLUX_CONTENT, layer)], annotations);
    let mut connection = artifact.connect(&weaver_source::charts::http::Machine::anonymous()).unwrap();
    oci::push_artifact(&mut connection, &artifact, &built).unwrap();
}

/// A gzipped tar of one entry named `name` (written into the header as is: the tar crate
/// refuses `..`) of `kind`, with `content`.
fn crafted_tar(name: &str, kind: tar::EntryType, content: &[u8]) -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(gzip);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    if kind == tar::EntryType::Symlink {
        header.set_link_name("/etc/passwd").unwrap();
    }
    header.set_cksum();
    archive.append(&header, content).unwrap();
    archive.into_inner().unwrap().finish().unwrap()
}

#[test]
fn an_artifact_past_the_byte_bound_or_with_an_entry_outside_its_tree_is_refused_and_nothing_applied() {
    let Some(registry) = registry_or_skip() else { return };
    let cluster = TestCluster::start();
    let namespace = gitops::tenant(&cluster);
    let (dir, git) = committed_repository(&namespace, "hello");
    // Bytes that gzip cannot shrink much below their size: over the cache's 16 KiB.
    let mut state: u64 = 7;
    let noise: String = (0..40_000)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'!' + (state >> 58) as u8)
        })
        .collect();
    std::fs::write(dir.path().join("charts/app/noise.txt"), noise).unwrap();
    common::git::commit_all(&git, "large");
    let url = format!("oci://127.0.0.1:{}/shop/deploy", registry.port);
    let large = push(dir.path(), &format!("{url}:large"));
    push_layer(&registry, "climbs", crafted_tar("../evil.yaml", tar::EntryType::Regular, b"kind: ConfigMap\n"));
    push_layer(&registry, "link", crafted_tar("environments/dev.yaml", tar::EntryType::Symlink, b""));
    let limits = weaver_source::CacheLimits { max_disk_bytes: 16 << 10, max_repositories: 100 };
    let _controller = gitops::Controller::start_with(&cluster, None, limits, None, Clock::system());

    let sync = gitops::environment_sync(&cluster, &namespace, "large", artifact_spec(&url, "large"));
    cluster.create(&sync);
    let live = gitops::until_ready_with(&cluster, &sync, "ArtifactTooLarge", "the large artifact refused");
    let message = ready_message(&live);
    let named = format!("127.0.0.1:{}/shop/deploy:large", registry.port);
    assert!(message.contains(&named) && message.contains("16384 bytes"), "{message}");
    assert!(live["status"].get("lastAppliedRevision").is_none(), "{}", live["status"]);
    assert!(!large.is_empty());

    let crafted = format!("oci://127.0.0.1:{}/shop/crafted", registry.port);
    for (tag, reason) in [
        ("climbs", "`../evil.yaml` is not a path inside the tree"),
        ("link", "`environments/dev.yaml` is a symbolic link"),
    ] {
        let sync = gitops::environment_sync(&cluster, &namespace, tag, artifact_spec(&crafted, tag));
        cluster.create(&sync);
        let live = gitops::until_ready_with(&cluster, &sync, "ArtifactInvalid", tag);
        let message = ready_message(&live);
        assert!(message.contains(reason), "{tag}: {message}");
        assert!(live["status"].get("lastAppliedRevision").is_none(), "{}", live["status"]);
    }
    assert!(gitops::config_map(&cluster, &namespace, "app").is_none(), "nothing was applied");
}

/// The spec of [`artifact_spec`] with `spec.source.oci.verify` naming Secret `signers`.
fn verified_spec(url: &str, tag: &str) -> Value {
    let mut spec = artifact_spec(url, tag);
    spec["source"]["oci"]["verify"] = json!({"provider": "cosign", "secretRef": {"name": "signers"}});
    spec
}

/// `spec.source.oci.verify`: the digest the tag names at each reconcile is applied only when a
/// key of the Secret signed it (cosign); unsigned, signed by another key, or the tag re-pointed
/// at an unsigned manifest after a signed one was applied, nothing of it is applied and Ready
/// says why, naming the artifact and digest, never a key.
#[test]
fn a_verified_artifact_source_applies_only_a_digest_a_trusted_cosign_key_signed() {
    let Some(start) = start() else { return };
    let (cluster, namespace, url) = (&start.cluster, &start.namespace, &start.url);
    let first = push(start.dir.path(), &format!("{url}:main"));
    let (trusted, other) = (TestSigner::new("release team"), TestSigner::new("someone else"));
    // Values not named `*.pub` are not read.
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signers", "namespace": namespace},
                           "stringData": {"cosign.pub": trusted.public_pem(), "README": "release keys"}}));
    let _controller = gitops::Controller::start(cluster, None);
    let sync = gitops::environment_sync(cluster, namespace, "shop", verified_spec(url, "main"));
    cluster.create(&sync);

    let named = format!("127.0.0.1:{}/shop/deploy:main ({first}) is refused", start.registry.port);
    let live = gitops::until_ready_with(cluster, &sync, "VerificationFailed", "the unsigned artifact refused");
    let message = ready_message(&live);
    assert!(message.contains(&format!("{named}: it is not signed")), "{message}");
    assert!(message.contains(&format!("Secret {namespace}/signers (spec.source.oci.verify.secretRef)")), "{message}");
    assert!(live["status"].get("lastAppliedRevision").is_none(), "{}", live["status"]);
    assert_eq!(start.greeting(), None, "nothing of it was applied");

    // Signed by a key the Secret does not hold: refused all the same.
    start.sign(&first, &other);
    let live = gitops::until_status(cluster, &sync, "the other key's signature refused", |live| {
        ready_message(live).contains("its cosign signature holds for no trusted key (ECDSA P-256 SHA256:")
    });
    assert!(ready_message(&live).contains(&named), "{}", ready_message(&live));
    assert!(!ready_message(&live).contains("PUBLIC KEY"), "{}", ready_message(&live));
    assert_eq!(start.greeting(), None, "nothing of it was applied");

    // Signed by the trusted key: applied; the status and its history say who signed.
    start.sign(&first, &trusted);
    let live = gitops::until_ready_with(cluster, &sync, "ReconciliationSucceeded", "the signed artifact applied");
    assert_eq!(live["status"]["lastAppliedRevision"], first);
    let artifact = &live["status"]["artifact"];
    assert_eq!((&artifact["tag"], &artifact["digest"]), (&json!("main"), &json!(first)), "{artifact}");
    let signer = artifact["signedBy"].as_str().unwrap_or_default();
    assert!(signer.starts_with("signers/cosign.pub (ECDSA P-256 key SHA256:"), "{artifact}");
    assert_eq!(live["status"]["history"][0]["signedBy"], signer, "{}", live["status"]["history"]);
    assert_eq!(start.greeting(), Some(json!("hello")));

    // The tag re-pointed at a manifest nobody signed: refused, the cluster keeps what it had.
    std::fs::write(start.dir.path().join("charts/app/values.yaml"), "greeting: pwned\n").unwrap();
    common::git::commit_all(&start.git, "unsigned");
    let second = push(start.dir.path(), &format!("{url}:main"));
    let live = gitops::until_status(cluster, &sync, "the re-pointed tag refused", |live| {
        ready_message(live).contains(&format!("({second}) is refused: it is not signed"))
    });
    let conditions = live["status"]["conditions"].as_array().cloned().unwrap_or_default();
    assert!(conditions.iter().any(|c| c["type"] == "Ready" && c["reason"] == "VerificationFailed"), "{conditions:?}");
    assert_eq!(live["status"]["lastAppliedRevision"], first);
    assert_eq!(live["status"]["artifact"]["digest"], first, "the status still tells of what was applied");
    assert_eq!(start.greeting(), Some(json!("hello")));
}

/// `spec.source.oci.semver`: the highest of the repository's tags in the range is applied
/// (`latest` and cosign's `.sig` tags are no versions), and a higher one pushed later at the
/// next reconcile; a range no tag meets says which versions there are.
#[test]
fn an_artifact_source_with_a_semver_range_applies_the_highest_tag_in_it_and_the_next_one_pushed() {
    let Some(start) = start() else { return };
    let (cluster, namespace, url) = (&start.cluster, &start.namespace, &start.url);
    let push_version = |tag: &str| {
        std::fs::write(start.dir.path().join("charts/app/values.yaml"), format!("greeting: v{tag}\n")).unwrap();
        common::git::commit_all(&start.git, tag);
        push(start.dir.path(), &format!("{url}:{tag}"))
    };
    let mut digests = std::collections::HashMap::new();
    for tag in ["1.0.0", "1.2.0", "2.0.0", "latest"] {
        digests.insert(tag, push_version(tag));
    }
    start.sign(&digests["2.0.0"], &TestSigner::new("release team"));
    let tags = crate::hydrate::registry_get(start.registry.port, "/v2/shop/deploy/tags/list", "application/json");
    assert!(String::from_utf8_lossy(&tags).contains(".sig"), "a .sig tag is listed");
    let _controller = gitops::Controller::start(cluster, None);
    let ranged = |semver: &str| {
        let mut spec = artifact_spec(url, "main");
        spec["source"]["oci"] = json!({"url": url, "semver": semver, "insecure": true});
        spec
    };
    let sync = gitops::environment_sync(cluster, namespace, "shop", ranged(">=1 <2"));
    cluster.create(&sync);

    let live = gitops::until_ready_with(cluster, &sync, "ReconciliationSucceeded", "1.2.0 applied");
    assert_eq!(live["status"]["lastAppliedRevision"], digests["1.2.0"]);
    assert_eq!(live["status"]["artifact"], json!({"tag": "1.2.0", "digest": digests["1.2.0"]}));
    assert_eq!(start.greeting(), Some(json!("v1.2.0")));

    let newer = push_version("1.3.0");
    let live =
        gitops::until_status(cluster, &sync, "1.3.0 applied", |live| live["status"]["lastAppliedRevision"] == newer);
    assert_eq!(live["status"]["artifact"]["tag"], "1.3.0");
    assert_eq!(start.greeting(), Some(json!("v1.3.0")));

    let missing = gitops::environment_sync(cluster, namespace, "none", ranged(">=3"));
    cluster.create(&missing);
    let live = gitops::until_ready_with(cluster, &missing, "ArtifactNotFound", "a range no tag meets");
    let message = ready_message(&live);
    let why = "no tag is a version in the range (versions, newest first: 2.0.0, 1.3.0, 1.2.0, 1.0.0)";
    assert!(message.contains(&format!("shop/deploy (semver `>=3`): {why}")), "{message}");
}

/// `weaver hydrate --env dev --oci reference` of the repository in `dir`: the digest the tag
/// names now (exit code 2: it pushed).
fn hydrate(dir: &std::path::Path, reference: &str) -> String {
    let run =
        common::weaver_in(dir, &["hydrate", "--env", "dev", "--oci", reference, "--plain-http", "-o", "json"], &[]);
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    report["digest"].as_str().unwrap().to_string()
}

/// Asserts `object` carries weaver's labels for `release` of `environment`.
fn assert_weaver_labels(object: &Value, release: &str, environment: &str) {
    let labels = &object["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "weaver", "{object}");
    assert_eq!(labels["weaver.example.com/release"], release, "{object}");
    assert_eq!(labels["weaver.example.com/environment"], environment, "{object}");
}

#[test]
fn an_environment_sync_applies_what_hydrate_oci_pushed_and_prunes_what_the_next_push_removed() {
    let Some(registry) = registry_or_skip() else { return };
    let cluster = TestCluster::start();
    let namespace = gitops::tenant(&cluster);
    let (dir, git) = committed_repository(&namespace, "hello");
    let extra = dir.path().join("charts/app/templates/extra.yaml");
    std::fs::write(&extra, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}-extra\n").unwrap();
    common::git::commit_all(&git, "extra");
    let url = format!("oci://127.0.0.1:{}/shop/hydrated", registry.port);
    let first = hydrate(dir.path(), &format!("{url}:dev"));
    let _controller = gitops::Controller::start(&cluster, None);
    let sync = gitops::environment_sync(&cluster, &namespace, "hydrated", artifact_spec(&url, "dev"));
    cluster.create(&sync);
    let live = gitops::until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the hydrated artifact applied");
    assert_eq!(live["status"]["lastAppliedRevision"], first);
    let environments = &live["status"]["environments"];
    assert_eq!((&environments[0]["name"], &environments[0]["revision"]), (&json!("dev"), &json!(first)));
    for name in ["app", "app-extra"] {
        let object = gitops::config_map(&cluster, &namespace, name).unwrap_or_else(|| panic!("ConfigMap {name}"));
        // The hydrated file's release, as `weaver apply` of the repository would label it.
        assert_weaver_labels(&object, "app", "dev");
    }
    assert_eq!(gitops::config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "hello");

    // The next push no longer holds `app-extra`: it is pruned, as from a git source.
    std::fs::remove_file(&extra).unwrap();
    std::fs::write(dir.path().join("charts/app/values.yaml"), "greeting: hi\n").unwrap();
    common::git::commit_all(&git, "no extra");
    let second = hydrate(dir.path(), &format!("{url}:dev"));
    assert_ne!(second, first);
    gitops::until_status(&cluster, &sync, "the second push applied", |live| {
        live["status"]["lastAppliedRevision"] == second
    });
    assert_eq!(gitops::config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "hi");
    assert!(gitops::config_map(&cluster, &namespace, "app-extra").is_none(), "the removed object is pruned");
}

/// Pushes `files` (path → content) to `repository:tag` as `flux push artifact --path=DIR`
/// pushes a directory DIR holding them (fluxcd/pkg: `oci.Push` over `tar.Tar`), through the
/// registry's API: the tar holds the walk of DIR in lexical order, the root `.` first, each
/// directory without a trailing `/`, names relative, owners 0, times zero, modes with their
/// file-type bits, gzipped; the config is of Flux's type (go-containerregistry's config file of
/// an empty image, `created` set), the one layer of Flux's content type, and the manifest
/// carries the three OpenContainers annotations. The manifest's digest.
fn push_flux_layout(registry: &Registry, repository: &str, tag: &str, files: &[(&str, &str)]) -> String {
    use sha2::Digest;
    use weaver_source::charts::oci;
    let mut entries: Vec<(String, Option<&str>)> = vec![(".".to_string(), None)];
    for (path, content) in files {
        let mut at = *path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            entries.push((parent.to_string(), None));
            at = parent;
        }
        entries.push((path.to_string(), Some(*content)));
    }
    entries.sort_by(|a, b| {
        let parts = |p: &str| if p == "." { Vec::new() } else { p.split('/').map(str::to_string).collect::<Vec<_>>() };
        parts(&a.0).cmp(&parts(&b.0))
    });
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut archive = tar::Builder::new(Vec::new());
    for (name, content) in &entries {
        let mut header = tar::Header::new_ustar();
        header.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let bytes = content.unwrap_or_default().as_bytes();
        match content {
            Some(_) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o100644);
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o40755);
            }
        }
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        archive.append(&header, bytes).unwrap();
    }
    let tar = archive.into_inner().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &tar).unwrap();
    let layer = gzip.finish().unwrap();
    let digest = |bytes: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let created = "2026-11-01T10:00:00Z";
    let config = serde_json::to_vec(&json!({
        "architecture": "", "created": created, "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]}, "config": {}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": oci::MANIFEST,
        "config": {"mediaType": oci::FLUX_CONFIG, "size": config.len(), "digest": digest(&config)},
        "layers": [{"mediaType": oci::FLUX_CONTENT, "size": layer.len(), "digest": digest(&layer)}],
        "annotations": {
            oci::CREATED_ANNOTATION: created,
            oci::SOURCE_ANNOTATION: "https://github.com/org/shop",
            oci::REVISION_ANNOTATION: "main@sha1:3a5a33c661fbb5892d455fb48f5cc86af5f919ea",
        }
    }))
    .unwrap();
    let artifact =
        oci::Artifact::parse(&format!("127.0.0.1:{}/{repository}:{tag}", registry.port), true, "test").unwrap();
    let mut connection = artifact.connect(&weaver_source::charts::http::Machine::anonymous()).unwrap();
    oci::push_blobs(&mut connection, &artifact, &[config, layer]).unwrap();
    oci::put_manifest(&mut connection, &artifact, tag, oci::MANIFEST, &manifest).unwrap();
    digest(&manifest)
}

const WEB: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  size: small\n";

#[test]
fn an_environment_sync_applies_an_artifact_laid_out_as_flux_push_artifact_lays_it_out() {
    let Some(registry) = registry_or_skip() else { return };
    let cluster = TestCluster::start();
    let namespace = gitops::tenant(&cluster);
    let placed = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: placed\n  namespace: {namespace}\n");
    let json = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}}"#;
    let files =
        [("README.md", "# not a manifest\n"), ("apps/web.yaml", &format!("{WEB}---\n{placed}")), ("infra.json", json)];
    let digest = push_flux_layout(&registry, "shop/flux", "v1", &files);
    let _controller = gitops::Controller::start(&cluster, None);
    let url = format!("oci://127.0.0.1:{}/shop/flux", registry.port);
    let mut spec = artifact_spec(&url, "v1");
    spec["environments"] = json!(["prod"]);
    let sync = gitops::environment_sync(&cluster, &namespace, "podinfo", spec);
    cluster.create(&sync);
    let live = gitops::until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the Flux artifact applied");
    assert_eq!(live["status"]["lastAppliedRevision"], digest);
    assert_eq!(live["status"]["environments"][0]["name"], "prod");
    // Every document of every manifest file, one without a namespace in the EnvironmentSync's;
    // the tree is one release named after the EnvironmentSync, as a Flux Kustomization names its objects.
    for name in ["web", "placed", "from-json"] {
        let object = gitops::config_map(&cluster, &namespace, name).unwrap_or_else(|| panic!("ConfigMap {name}"));
        assert_weaver_labels(&object, "podinfo", "prod");
    }
    assert_eq!(gitops::config_map(&cluster, &namespace, "web").unwrap()["data"]["size"], "small");
}

#[test]
fn rendered_manifests_with_a_document_that_is_no_object_or_a_kustomization_are_refused_and_nothing_applied() {
    let Some(registry) = registry_or_skip() else { return };
    let cluster = TestCluster::start();
    let namespace = gitops::tenant(&cluster);
    // Document 3 (line 15) has no kind; the Secret before it holds a value no message may show.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: pw-Zq81x\n";
    let broken = format!("{WEB}---\n{secret}---\napiVersion: v1\nmetadata:\n  name: nameless\n");
    push_flux_layout(&registry, "shop/flux", "broken", &[("apps/web.yaml", &broken)]);
    let kustomized = [("apps/web.yaml", WEB), ("apps/kustomization.yaml", "resources: [web.yaml]\n")];
    push_flux_layout(&registry, "shop/flux", "kustomized", &kustomized);
    let _controller = gitops::Controller::start(&cluster, None);
    let url = format!("oci://127.0.0.1:{}/shop/flux", registry.port);
    for (tag, reason) in [
        ("broken", "`apps/web.yaml:15` (document 3) has no `kind`"),
        ("kustomized", "`apps/kustomization.yaml` is a kustomization"),
    ] {
        let sync = gitops::environment_sync(&cluster, &namespace, tag, artifact_spec(&url, tag));
        cluster.create(&sync);
        let live = gitops::until_ready_with(&cluster, &sync, "ArtifactInvalid", tag);
        let message = ready_message(&live);
        assert!(message.contains(reason) && message.contains(&format!("shop/flux:{tag}")), "{tag}: {message}");
        assert!(!message.contains("pw-Zq81x"), "{message}");
        assert!(live["status"].get("lastAppliedRevision").is_none(), "{}", live["status"]);
    }
    assert!(gitops::config_map(&cluster, &namespace, "web").is_none(), "nothing was applied");
}

/// Asserts that the artifact `digest` of `repository` is one Flux's source-controller pulls and
/// unpacks (fluxcd/pkg `oci` and `tar.Untar`): an OCI manifest whose config is of Flux's type
/// and whose first layer is Flux's content, a gzipped tar (Untar refuses another) whose every
/// entry is a regular file or a directory named relative to the tree (Untar refuses a name
/// that is empty, holds `\` or `../`, or starts with `/`, and a link or a device); and
/// `created` in RFC 3339, as `oci.Push` writes it.
fn assert_flux_accepts(port: u16, repository: &str, digest: &str) {
    let (manifest, _, tar) = pull_by_digest(port, repository, digest);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.flux.config.v1+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.cncf.flux.content.v1.tar+gzip");
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = crate::hydrate::registry_get(port, &format!("/v2/{repository}/blobs/{layer_digest}"), "*/*");
    assert_eq!(layer[..2], [0x1f, 0x8b], "a gzip stream");
    let created = manifest["annotations"]["org.opencontainers.image.created"].as_str().unwrap();
    assert!(created.parse::<jiff::Timestamp>().is_ok() && created.ends_with('Z'), "{created}");
    for key in ["org.opencontainers.image.source", "org.opencontainers.image.revision"] {
        assert!(manifest["annotations"][key].is_string(), "{key}: {manifest}");
    }
    let mut entries = 0;
    for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let kind = entry.header().entry_type();
        assert!(matches!(kind, tar::EntryType::Regular | tar::EntryType::Directory), "{name}: {kind:?}");
        assert!(!name.is_empty() && !name.contains('\\') && !name.starts_with('/') && !name.contains("../"), "{name}");
        entries += 1;
    }
    assert!(entries > 0);
}

#[test]
fn what_push_artifact_and_hydrate_oci_push_is_what_flux_s_source_controller_unpacks() {
    let Some(registry) = registry_or_skip() else { return };
    let (dir, _git) = committed_repository("shop", "hello");
    let url = format!("oci://127.0.0.1:{}/shop", registry.port);
    let repository = push(dir.path(), &format!("{url}/deploy:main"));
    assert_flux_accepts(registry.port, "shop/deploy", &repository);
    let hydrated = hydrate(dir.path(), &format!("{url}/hydrated:dev"));
    assert_flux_accepts(registry.port, "shop/hydrated", &hydrated);
}

/// What `weaver hydrate --oci` pushed, under `verify`: refused until the digest is cosign-signed
/// by a key of the Secret, then applied, its digest and signer in the status.
#[test]
fn a_hydrated_artifact_is_applied_by_a_verifying_environment_sync_once_a_trusted_key_signed_it() {
    let Some(start) = start() else { return };
    let (cluster, namespace, port) = (&start.cluster, &start.namespace, start.registry.port);
    let url = format!("oci://127.0.0.1:{port}/shop/hydrated");
    let digest = hydrate(start.dir.path(), &format!("{url}:dev"));
    let signer = TestSigner::new("release team");
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signers", "namespace": namespace},
                           "stringData": {"cosign.pub": signer.public_pem()}}));
    let _controller = gitops::Controller::start(cluster, None);
    let sync = gitops::environment_sync(cluster, namespace, "hydrated", verified_spec(&url, "dev"));
    cluster.create(&sync);
    let live = gitops::until_ready_with(cluster, &sync, "VerificationFailed", "the unsigned hydrated artifact refused");
    assert!(
        ready_message(&live).contains(&format!("({digest}) is refused: it is not signed")),
        "{}",
        ready_message(&live)
    );
    assert_eq!(start.greeting(), None, "nothing of it was applied");

    let image = format!("127.0.0.1:{port}/shop/hydrated");
    crate::images::push_signature(port, "shop/hydrated", &image, &digest, &signer, None);
    let live =
        gitops::until_ready_with(cluster, &sync, "ReconciliationSucceeded", "the signed hydrated artifact applied");
    assert_eq!(live["status"]["lastAppliedRevision"], digest);
    let artifact = &live["status"]["artifact"];
    assert_eq!(artifact["digest"], digest, "{artifact}");
    assert!(
        artifact["signedBy"].as_str().unwrap_or_default().starts_with("signers/cosign.pub (ECDSA P-256 key"),
        "{artifact}"
    );
    assert_eq!(start.greeting(), Some(json!("hello")));
}
