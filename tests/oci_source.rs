//! A weaver repository as an OCI artifact: `weaver push artifact` packs the tracked files of a
//! commit in Flux's format, pushed to Debian's docker-registry on loopback.

use crate::common;

use serde_json::Value;

use crate::hydrate::pull_by_digest;
use common::Repo;
use common::registry::Registry;

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
