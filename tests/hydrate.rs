//! `weaver hydrate`: environments' rendered objects written to a directory or a git branch,
//! Secrets SOPS-encrypted (or left out), nothing written when nothing changed, and the objects
//! applied with `kubectl apply --server-side` the same as `weaver apply` makes them.

use std::collections::BTreeMap;
use std::path::Path;

use git2::Repository;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::cluster::TestCluster;
use crate::common::demo::Demo;
use crate::common::{Repo, Run, git, interop_available, tools};

/// A git repository of `repo` with one commit, and an identity to commit hydrated branches as.
fn committed(repo: &Repo) -> Repository {
    let git = git::init(repo.path());
    let mut config = git.config().unwrap();
    config.set_str("user.name", "Hydrator").unwrap();
    config.set_str("user.email", "hydrator@weaver.invalid").unwrap();
    git::commit_all(&git, "source");
    git
}

/// Every file below `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                found.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn json_of(run: &Run, code: i32) -> Value {
    assert_eq!(run.code, code, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn metadata(dir: &Path, env: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(env).join("weaver-hydrate.metadata")).unwrap()).unwrap()
}

/// The documents of a hydrated file, split at its `---` lines (an age stanza's armor lines end
/// in `---` too).
fn split_documents(text: &str) -> Vec<String> {
    let mut documents: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        match documents.last_mut() {
            Some(document) if line != "---\n" => document.push_str(line),
            _ => documents.push(String::new()),
        }
    }
    documents
}

/// The documents of a hydrated file, those SOPS-encrypted decrypted with `key` as Flux's
/// kustomize-controller decrypts them (each object on its own).
fn decrypted(file: &Path, key: &Path) -> Vec<Value> {
    let ids = weaver_secrets::IdentitySources::from_env(Some(key.to_path_buf()), None, |_| None).load().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    split_documents(&text)
        .iter()
        .map(|document| {
            if document.lines().any(|l| l.starts_with("sops:")) {
                weaver_secrets::decrypt_bytes(Path::new("secret.yaml"), document.as_bytes(), &ids).unwrap().to_json()
            } else {
                weaver_yaml::documents(file, document).unwrap().remove(0)
            }
        })
        .collect()
}

/// The demo's Secret values, as `weaver render --show-secrets` gives them (plain and base64).
fn secret_values(repo: &Repo) -> Vec<String> {
    let out = repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
    let objects = weaver_yaml::documents(Path::new("render"), out.success()).unwrap();
    let secret = objects.iter().find(|o| o["kind"] == "Secret").expect("the demo renders a Secret");
    let values: Vec<String> =
        secret["stringData"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(values.len() >= 3 && values.iter().all(|v| v.len() >= 8), "{values:?}");
    use base64::Engine;
    let encoded: Vec<String> =
        values.iter().map(|v| base64::engine::general_purpose::STANDARD.encode(v.as_bytes())).collect();
    values.into_iter().chain(encoded).collect()
}

#[test]
fn a_directory_gets_a_file_per_release_and_a_metadata_file_and_nothing_is_rewritten_when_unchanged() {
    let repo = Repo::demo_without_operator();
    let git = committed(&repo);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("hydrated");
    let dir_arg = dir.to_str().unwrap();
    let first = repo.weaver(&["-vv", "hydrate", "--env", "dev", "--out", dir_arg, "-o", "json"]);
    let report = json_of(&first, 2);
    assert_eq!(report["changed"], true);
    assert_eq!(report["target"], json!({"directory": dir_arg}));
    let written = files(&dir);
    let names: Vec<&str> = written.keys().map(String::as_str).collect();
    assert_eq!(names, ["dev/redis.yaml", "dev/weaver-hydrate.metadata", "dev/web.yaml"]);
    assert_eq!(report["environments"][0]["written"].as_array().unwrap().len(), 3);
    let head = git.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let meta = metadata(&dir, "dev");
    assert_eq!(meta["source"], json!({"commit": head, "dirty": false}));
    assert_eq!(report["source"], meta["source"]);
    assert_eq!(meta["weaver"], env!("CARGO_PKG_VERSION"));
    for release in meta["releases"].as_array().unwrap() {
        let file = &written[&format!("dev/{}", release["file"].as_str().unwrap())];
        assert_eq!(release["digest"], format!("sha256:{}", hex::encode(Sha256::digest(file))));
    }
    // The same objects as `weaver render`, Secret values aside.
    let rendered =
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap();
    let key = repo.path().join("secrets/dev.agekey");
    let hydrated: Vec<Value> =
        ["redis", "web"].iter().flat_map(|r| decrypted(&dir.join(format!("dev/{r}.yaml")), &key)).collect();
    let without_secrets =
        |objects: &[Value]| -> Vec<Value> { objects.iter().filter(|o| o["kind"] != "Secret").cloned().collect() };
    assert_eq!(without_secrets(&hydrated), without_secrets(&rendered));

    let mtimes = |dir: &Path| -> Vec<std::time::SystemTime> {
        files(dir).keys().map(|f| std::fs::metadata(dir.join(f)).unwrap().modified().unwrap()).collect()
    };
    let before = mtimes(&dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Read back (decrypted) to tell it unchanged, the Secret is not shown either.
    let second = repo.weaver(&["-vv", "hydrate", "--env", "dev", "--out", dir_arg, "-o", "json"]);
    for value in secret_values(&repo) {
        for run in [&first, &second] {
            assert!(!run.stdout.contains(&value) && !run.stderr.contains(&value), "hydrate printed a Secret value");
        }
    }
    let again = json_of(&second, 0);
    assert_eq!(again["changed"], false);
    assert_eq!(again["environments"][0]["written"], json!([]));
    assert_eq!(files(&dir), written, "an unchanged hydration rewrote a file (the Secret's ciphertext included)");
    assert_eq!(mtimes(&dir), before);
    let text = repo.weaver(&["hydrate", "--env", "dev", "--out", dir_arg]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("dev: unchanged"), "{}", text.stdout);

    // A recipient added to the rules: the unchanged Secret is encrypted again, to both.
    let added = "age1rh2xsjg8avja92j3jhtttuczgmqkz89lezxt4e3mmp5ukl5j4f9smvteju";
    let rules = std::fs::read_to_string(repo.path().join("secrets/.sops.yaml")).unwrap();
    let demo = crate::common::demo::DEMO_RECIPIENT;
    repo.write("secrets/.sops.yaml", &rules.replacen(&format!("age: {demo}"), &format!("age: {demo},{added}"), 1));
    let third = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir_arg, "-o", "json"]), 2);
    assert_eq!(third["environments"][0]["unchanged"], json!(["dev/redis.yaml"]), "{third}");
    assert!(third["environments"][0]["written"].as_array().unwrap().contains(&json!("dev/web.yaml")), "{third}");
    let web = std::fs::read_to_string(dir.join("dev/web.yaml")).unwrap();
    assert!(web.contains(added) && web.contains(demo), "{web}");
}

#[test]
fn files_of_releases_gone_are_removed_and_other_files_stay() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n  - name: extra\n    chart: app\n",
    );
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    assert_eq!(repo.weaver(&["hydrate", "--env", "dev", "--out", dir]).code, 2);
    std::fs::write(out.path().join("dev/kustomization.yaml"), "resources: []\n").unwrap();
    assert!(out.path().join("dev/extra.yaml").exists());
    let meta = metadata(out.path(), "dev");
    assert_eq!(meta["source"], Value::Null, "outside git there is no source commit");

    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
    let report = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]), 2);
    assert_eq!(report["environments"][0]["removed"], json!(["dev/extra.yaml"]));
    assert_eq!(report["environments"][0]["unchanged"], json!(["dev/app.yaml"]));
    let names: Vec<String> = files(out.path()).into_keys().collect();
    assert_eq!(names, ["dev/app.yaml", "dev/kustomization.yaml", "dev/weaver-hydrate.metadata"]);
    let meta = metadata(out.path(), "dev");
    let releases: Vec<&str> =
        meta["releases"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(releases, ["app"]);
}

/// Every blob of every commit reachable from `branch`, and every note of the notes ref.
fn history_blobs(git: &Repository, refs: &[&str]) -> Vec<Vec<u8>> {
    let mut blobs = Vec::new();
    let mut walk = git.revwalk().unwrap();
    for name in refs {
        walk.push_ref(name).unwrap();
    }
    for oid in walk {
        let commit = git.find_commit(oid.unwrap()).unwrap();
        blobs.push(commit.message_bytes().to_vec());
        commit
            .tree()
            .unwrap()
            .walk(git2::TreeWalkMode::PreOrder, |_, entry| {
                if let Ok(blob) = entry.to_object(git).and_then(|o| o.peel_to_blob()) {
                    blobs.push(blob.content().to_vec());
                }
                git2::TreeWalkResult::Ok
            })
            .unwrap();
    }
    blobs
}

#[test]
fn a_branch_gets_a_commit_linked_both_ways_with_the_source_and_no_plaintext_secret_anywhere() {
    let repo = Repo::demo_without_operator();
    let git = committed(&repo);
    let source = git.head().unwrap().peel_to_commit().unwrap().id();
    let status_before = git.statuses(None).unwrap().len();
    let report = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--branch", "hydrated", "-o", "json"]), 2);
    let tip = git.find_branch("hydrated", git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
    assert_eq!(report["commit"], tip.id().to_string());
    assert_eq!(report["parent"], Value::Null);
    assert_eq!(tip.parent_count(), 0);
    assert!(tip.message().unwrap().contains(&format!("\nWeaver-Source-Commit: {source}\n")), "{:?}", tip.message());
    assert_eq!(tip.author().name().unwrap(), "Hydrator");
    let note = git.find_note(Some("refs/notes/weaver-hydrated"), source).unwrap();
    assert_eq!(note.message().unwrap(), format!("hydrated {}\n", tip.id()));
    // The working tree and index are as they were: HEAD's branch did not move.
    assert_eq!(git.head().unwrap().peel_to_commit().unwrap().id(), source);
    assert_eq!(git.statuses(None).unwrap().len(), status_before);
    let tree = tip.tree().unwrap();
    let dev = tree.get_path(Path::new("dev")).unwrap().to_object(&git).unwrap().peel_to_tree().unwrap();
    let paths: Vec<String> = dev.iter().map(|e| e.name().unwrap().to_string()).collect();
    assert_eq!(paths, ["redis.yaml", "weaver-hydrate.metadata", "web.yaml"]);

    // Unchanged: no commit.
    let again = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--branch", "hydrated", "-o", "json"]), 0);
    assert_eq!(again["commit"], Value::Null);
    assert_eq!(again["parent"], tip.id().to_string());
    assert_eq!(
        git.find_branch("hydrated", git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap().id(),
        tip.id()
    );

    // A change of the source: a commit on the tip, the source commit's note naming it.
    let values = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write("environments/dev.yaml", &values.replace("replicas: 1", "replicas: 3"));
    let changed = git::commit_all(&git, "three replicas");
    let third = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--branch", "hydrated", "-o", "json"]), 2);
    let new_tip = git.find_branch("hydrated", git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
    assert_eq!(third["commit"], new_tip.id().to_string());
    assert_eq!(new_tip.parent_id(0).unwrap(), tip.id());
    assert_eq!(third["environments"][0]["written"], json!(["dev/web.yaml", "dev/weaver-hydrate.metadata"]));
    let note = git.find_note(Some("refs/notes/weaver-hydrated"), changed).unwrap();
    assert_eq!(note.message().unwrap(), format!("hydrated {}\n", new_tip.id()));
    // The Secret did not change: its ciphertext is the one committed before, byte for byte.
    let secret_of = |commit: &git2::Commit| -> String {
        let blob = commit.tree().unwrap().get_path(Path::new("dev/web.yaml")).unwrap().to_object(&git).unwrap();
        let text = String::from_utf8(blob.peel_to_blob().unwrap().content().to_vec()).unwrap();
        split_documents(&text).into_iter().find(|d| d.contains("kind: Secret")).unwrap()
    };
    assert_eq!(secret_of(&new_tip), secret_of(&tip));

    // No Secret value in plaintext (nor base64) in any commit of the branch or its notes.
    let values = secret_values(&repo);
    let blobs = history_blobs(&git, &["refs/heads/hydrated", "refs/notes/weaver-hydrated"]);
    assert!(blobs.len() > 6, "{}", blobs.len());
    for blob in &blobs {
        let text = String::from_utf8_lossy(blob);
        for value in &values {
            assert!(!text.contains(value.as_str()), "a Secret value is in the branch's history in plaintext");
        }
    }
}

#[test]
fn a_fleet_is_one_commit_and_an_environment_hydrated_alone_leaves_the_others_files() {
    let repo = Repo::minimal();
    for env in ["a", "b"] {
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: ns-{env}\nlabels: {{fleet: test}}\nreleases:\n  - name: app\n    chart: app\n"),
        );
    }
    let git = committed(&repo);
    let report =
        json_of(&repo.weaver(&["hydrate", "--env-selector", "fleet=test", "--branch", "hydrated", "-o", "json"]), 2);
    let environments: Vec<&str> =
        report["environments"].as_array().unwrap().iter().map(|e| e["environment"].as_str().unwrap()).collect();
    assert_eq!(environments, ["a", "b"]);
    let tip = git.find_branch("hydrated", git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
    assert!(tip.message().unwrap().starts_with("weaver hydrate: a, b\n"), "{:?}", tip.message());
    let tree = tip.tree().unwrap();
    let hydrated_ns = |env: &str| -> String {
        let blob = tree.get_path(Path::new(&format!("{env}/app.yaml"))).unwrap().to_object(&git).unwrap();
        let objects = weaver_yaml::documents(
            Path::new("app.yaml"),
            std::str::from_utf8(blob.peel_to_blob().unwrap().content()).unwrap(),
        )
        .unwrap();
        objects[0]["metadata"]["namespace"].as_str().unwrap().to_string()
    };
    assert_eq!((hydrated_ns("a"), hydrated_ns("b")), ("ns-a".to_string(), "ns-b".to_string()));

    repo.write("charts/app/values.yaml", "greeting: bonjour\n");
    let alone = json_of(&repo.weaver(&["hydrate", "--env", "a", "--branch", "hydrated", "-o", "json"]), 2);
    assert_eq!(alone["environments"][0]["written"], json!(["a/app.yaml", "a/weaver-hydrate.metadata"]));
    let next = git.find_branch("hydrated", git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
    let (before, after) = (tip.tree().unwrap(), next.tree().unwrap());
    assert_eq!(before.get_path(Path::new("b")).unwrap().id(), after.get_path(Path::new("b")).unwrap().id());
    assert_ne!(before.get_path(Path::new("a")).unwrap().id(), after.get_path(Path::new("a")).unwrap().id());
    // Hydrated from a working tree with uncommitted changes: the metadata says so.
    let blob = after.get_path(Path::new("a/weaver-hydrate.metadata")).unwrap().to_object(&git).unwrap();
    let meta: Value = serde_json::from_slice(blob.peel_to_blob().unwrap().content()).unwrap();
    assert_eq!(meta["source"]["dirty"], true);
    // --rev: that commit's files, whatever the working tree holds.
    let out = tempfile::tempdir().unwrap();
    let head = git.head().unwrap().peel_to_commit().unwrap().id().to_string();
    assert_eq!(repo.weaver(&["hydrate", "--env", "a", "--rev", "HEAD", "--out", out.path().to_str().unwrap()]).code, 2);
    assert_eq!(metadata(out.path(), "a")["source"], json!({"commit": head, "dirty": false}));
    let app = std::fs::read_to_string(out.path().join("a/app.yaml")).unwrap();
    assert!(app.contains("greeting: hello") && !app.contains("bonjour"), "{app}");
}

#[test]
fn the_secret_is_encrypted_to_the_environments_recipient_and_decrypts_to_the_rendered_values() {
    let repo = Repo::demo_without_operator();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let report = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]), 2);
    assert_eq!(report["environments"][0]["secrets"], json!({"web/shop-dev/web-secrets": "encrypted"}));
    let web = std::fs::read_to_string(out.path().join("dev/web.yaml")).unwrap();
    // SOPS as Flux decrypts it: only data and stringData encrypted, to the demo's recipient.
    let documents = split_documents(&web);
    let secret = documents.iter().find(|d| d.contains("kind: Secret")).unwrap();
    assert!(secret.contains("encrypted_regex: ^(data|stringData)$"), "{secret}");
    assert!(secret.contains(crate::common::demo::DEMO_RECIPIENT), "{secret}");
    assert!(secret.contains("name: web-secrets") && secret.contains("DATABASE_URL: ENC[AES256_GCM,"), "{secret}");
    for (path, content) in files(out.path()) {
        let text = String::from_utf8_lossy(&content);
        for value in secret_values(&repo).iter().take(3) {
            assert!(!text.contains(value.as_str()), "{path} holds a Secret value in plaintext");
        }
    }
    let rendered = weaver_yaml::documents(
        Path::new("render"),
        repo.weaver(&["render", "--env", "dev", "--show-secrets"]).success(),
    )
    .unwrap();
    let key = repo.path().join("secrets/dev.agekey");
    let back = decrypted(&out.path().join("dev/web.yaml"), &key);
    let secret = |objects: &[Value]| objects.iter().find(|o| o["kind"] == "Secret").cloned().unwrap();
    assert_eq!(secret(&back), secret(&rendered));

    // --secrets omit: no Secret, named in the metadata.
    let omit = tempfile::tempdir().unwrap();
    let omitted = json_of(
        &repo.weaver(&[
            "hydrate",
            "--env",
            "dev",
            "--out",
            omit.path().to_str().unwrap(),
            "--secrets",
            "omit",
            "-o",
            "json",
        ]),
        2,
    );
    assert_eq!(omitted["environments"][0]["secrets"], json!({"web/shop-dev/web-secrets": "omitted"}));
    let web = std::fs::read_to_string(omit.path().join("dev/web.yaml")).unwrap();
    assert!(!web.contains("kind: Secret") && !web.contains("sops:"), "{web}");
    assert_eq!(metadata(omit.path(), "dev")["omittedSecrets"], json!(["web/shop-dev/web-secrets"]));
}

#[test]
fn bad_input_is_refused_with_exit_code_1() {
    let repo = Repo::minimal();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let err = repo.weaver(&["hydrate", "--env", "nope", "--out", dir]);
    assert!(err.failure().contains("unknown environment `nope` (--env)"), "{}", err.stderr);
    let both = repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "--branch", "b"]);
    assert!(both.failure().contains("--out <DIR>' cannot be used with '--branch <NAME>'"), "{}", both.stderr);
    let neither = repo.weaver(&["hydrate", "--env", "dev"]);
    assert!(neither.failure().contains("--out <DIR>"), "{}", neither.stderr);
    let inside = repo.weaver(&["hydrate", "--env", "dev", "--out", repo.path().join("secrets").to_str().unwrap()]);
    assert!(inside.failure().contains("secrets is inside the repository's secrets/"), "{}", inside.stderr);
    let none = repo.weaver(&["hydrate", "--out", dir]);
    assert!(none.failure().contains("no environment selected"), "{}", none.stderr);
    let outside_git = repo.weaver(&["hydrate", "--env", "dev", "--branch", "hydrated"]);
    assert!(outside_git.failure().contains("is not inside a git repository"), "{}", outside_git.stderr);
    let git = committed(&repo);
    for name in ["bad..name", "with space", "end.lock"] {
        let bad = repo.weaver(&["hydrate", "--env", "dev", "--branch", name]);
        assert!(
            bad.failure().contains(&format!("--branch `{name}` is not a branch name git accepts")),
            "{}",
            bad.stderr
        );
    }
    let head = git.head().unwrap().shorthand().unwrap().to_string();
    let checked_out = repo.weaver(&["hydrate", "--env", "dev", "--branch", &head]);
    assert!(checked_out.failure().contains("is the branch checked out in this working tree"), "{}", checked_out.stderr);
    // Checked out in another working tree of the repository (`git worktree add`): refused too,
    // from either side.
    let tip = git.head().unwrap().peel_to_commit().unwrap();
    let branch = git.branch("elsewhere", &tip, false).unwrap();
    let linked = tempfile::tempdir().unwrap();
    let linked_dir = linked.path().join("linked");
    let mut options = git2::WorktreeAddOptions::new();
    options.reference(Some(branch.get()));
    git.worktree("linked", &linked_dir, Some(&options)).unwrap();
    let elsewhere = repo.weaver(&["hydrate", "--env", "dev", "--branch", "elsewhere"]);
    let stderr = elsewhere.failure();
    let shown = std::fs::canonicalize(&linked_dir).unwrap();
    assert!(
        stderr.contains(&format!(
            "--branch `elsewhere` is the branch checked out in the working tree {}",
            shown.display()
        )),
        "{stderr}"
    );
    let from_linked = crate::common::weaver_in(&linked_dir, &["hydrate", "--env", "dev", "--branch", &head], &[]);
    assert!(
        from_linked.failure().contains(&format!("--branch `{head}` is the branch checked out in the working tree")),
        "{}",
        from_linked.stderr
    );
    assert!(files(out.path()).is_empty(), "a refused hydration wrote files");

    // A Secret with no recipients to encrypt it to.
    repo.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ release.name }}\nstringData:\n  token: not-so-secret\n",
    );
    let no_recipients = repo.weaver(&["hydrate", "--env", "dev", "--out", dir]);
    let stderr = no_recipients.failure();
    assert!(stderr.contains("environment `dev` renders Secrets, and has no age recipients"), "{stderr}");
    assert!(stderr.contains("--secrets omit"), "{stderr}");
    assert!(files(out.path()).is_empty(), "a refused hydration wrote files");
    assert_eq!(repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "--secrets", "omit"]).code, 2);
}

#[test]
fn a_decrypted_value_outside_a_secret_is_refused_rather_than_written_in_plaintext() {
    let repo = Repo::demo_without_operator();
    repo.write(
        "charts/web-app/templates/leak.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  key: {{ secrets.web.apiKey | quote }}\n",
    );
    let out = tempfile::tempdir().unwrap();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap()]);
    let stderr = run.failure();
    assert!(stderr.contains("release `web`: ConfigMap shop-dev/leak holds a decrypted secret value"), "{stderr}");
    for value in secret_values(&repo) {
        assert!(!stderr.contains(&value), "the error quotes a Secret value");
    }
    assert!(files(out.path()).is_empty(), "a refused hydration wrote files");

    // In a Secret, only data and stringData are encrypted: a value in an annotation is refused.
    repo.remove("charts/web-app/templates/leak.yaml");
    repo.write(
        "charts/web-app/templates/leak.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\n  annotations:\n    key: {{ secrets.web.apiKey | quote }}\ntype: Opaque\n",
    );
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap()]);
    let stderr = run.failure();
    assert!(stderr.contains("charts/web-app/templates/leak.yaml"), "{stderr}");
    assert!(stderr.contains("release `web`: Secret shop-dev/leak holds a decrypted secret value"), "{stderr}");
    assert!(files(out.path()).is_empty(), "a refused hydration wrote files");
}

#[test]
fn errors_name_the_repository_s_files_by_their_paths_in_it() {
    let repo = Repo::demo_without_operator();
    repo.write("secrets/.sops.yaml", "creation_rules:\n  - path_regex: ^dev\\.yaml$\n    age: 5\n");
    let out = tempfile::tempdir().unwrap();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap()]);
    let stderr = run.failure();
    assert!(stderr.contains("secrets/.sops.yaml"), "{stderr}");
    let repo_dir = std::fs::canonicalize(repo.path()).unwrap();
    for absolute in [repo.path(), repo_dir.as_path()] {
        assert!(!stderr.contains(absolute.to_str().unwrap()), "an absolute path: {stderr}");
    }
}

#[test]
fn a_chart_literal_in_secrets_and_config_maps_hydrates_again_unchanged() {
    // The Secrets' values read back from the first run's files are compared, not taken for
    // decrypted values: a ConfigMap repeating a chart's literal, checked after another
    // release's Secret was read back, passes the second run as it did the first.
    let repo = Repo::demo_without_operator();
    for (chart, name) in [("web-app", "literal-web"), ("redis", "literal-redis")] {
        repo.write(
            &format!("charts/{chart}/templates/literal.yaml"),
            &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  pw: chart-literal-value-1234\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  pw: chart-literal-value-1234\n"),
        );
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let first = repo.weaver(&["hydrate", "--env", "dev", "--out", dir]);
    assert_eq!(first.code, 2, "{}", first.stderr);
    repo.weaver(&["hydrate", "--env", "dev", "--out", dir]).success();
}

/// The live objects of `keys` (apiVersion, kind, name) in `ns`, as far as their content goes:
/// what the server adds of its own (uid, resourceVersion, timestamps, managedFields, status) left out.
fn live(cluster: &TestCluster, ns: &str, keys: &[(String, String, String)]) -> Vec<Value> {
    keys.iter()
        .map(|(api_version, kind, name)| {
            let mut object = cluster
                .get(&json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}}))
                .unwrap_or_else(|| panic!("{kind} {name} is not live"));
            let metadata = object["metadata"].as_object_mut().unwrap();
            for field in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
                metadata.remove(field);
            }
            object.as_object_mut().unwrap().remove("status");
            // Allocated by the server at each creation.
            if let Some(spec) = object["spec"].as_object_mut().filter(|_| kind == "Service") {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            object
        })
        .collect()
}

#[test]
fn the_hydrated_objects_applied_with_kubectl_are_those_weaver_apply_makes() {
    let tool = tools::kubectl_kustomize_v5();
    if !interop_available("kubectl", tool.is_ok()) {
        return;
    }
    let (kubectl, _) = tool.unwrap();
    let demo = Demo::new();
    let out = tempfile::tempdir().unwrap();
    let hydrated = demo.repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap()]);
    assert_eq!(hydrated.code, 2, "{}", hydrated.stderr);
    // What Flux does: the SOPS documents decrypted, then applied server-side.
    let key = demo.repo.path().join("secrets/dev.agekey");
    let plain = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for release in ["redis", "web"] {
        let objects = decrypted(&out.path().join(format!("dev/{release}.yaml")), &key);
        for o in &objects {
            let key = (
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
            );
            keys.push((key.0.to_string(), key.1.to_string(), key.2.to_string()));
        }
        let text: String = objects.iter().map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap())).collect();
        std::fs::write(plain.path().join(format!("{release}.yaml")), text).unwrap();
    }
    assert!(keys.iter().any(|k| k.1 == "Secret") && keys.len() >= 5, "{keys:?}");
    let applied = weaver_test_support::kubectl::command(&kubectl)
        .arg("--kubeconfig")
        .arg(demo.cluster.client_go_kubeconfig())
        .args(["apply", "--server-side", "-f"])
        .arg(plain.path())
        .output()
        .unwrap();
    assert!(applied.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&applied.stderr));
    let by_kubectl = live(&demo.cluster, &demo.ns, &keys);
    for (api_version, kind, name) in &keys {
        demo.cluster.delete(
            &json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": demo.ns}}),
        );
    }
    demo.weaver(&["apply", "--env", "dev"]).success();
    let by_weaver = live(&demo.cluster, &demo.ns, &keys);
    assert_eq!(by_kubectl, by_weaver);
}

/// Sends a request to the registry at `port` over plain HTTP/1.0 (no weaver code): the
/// response's head and body.
pub(crate) fn registry_request(port: u16, request: &str, body: &[u8]) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "{request}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    (String::from_utf8_lossy(&response[..at]).into_owned(), response[at + 4..].to_vec())
}

/// GETs `path` of the registry at `port`: the body.
pub(crate) fn registry_get(port: u16, path: &str, accept: &str) -> Vec<u8> {
    let (head, body) = registry_request(port, &format!("GET {path} HTTP/1.0\r\nAccept: {accept}"), &[]);
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body
}

/// Pushes to `repository:tag` a manifest whose one layer is of `media_type` (its content `{}`).
fn registry_push_other(port: u16, repository: &str, tag: &str, media_type: &str) {
    let blob = b"{}";
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(blob)));
    let (head, _) = registry_request(port, &format!("POST /v2/{repository}/blobs/uploads/ HTTP/1.0"), &[]);
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap_or_else(|| panic!("{head}"));
    let location = location.split_once("://").map_or(location, |(_, rest)| &rest[rest.find('/').unwrap()..]);
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = format!(
        "PUT {location}{separator}digest={} HTTP/1.0\r\nContent-Type: application/octet-stream",
        digest.replace(':', "%3A")
    );
    let (head, _) = registry_request(port, &put, blob);
    assert!(head.contains(" 201 "), "{head}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
        "layers": [{"mediaType": media_type, "digest": digest, "size": 2}],
    });
    let put = format!(
        "PUT /v2/{repository}/manifests/{tag} HTTP/1.0\r\nContent-Type: application/vnd.oci.image.manifest.v1+json"
    );
    let (head, _) = registry_request(port, &put, manifest.to_string().as_bytes());
    assert!(head.contains(" 201 "), "{head}");
}

/// The artifact `digest` of `repository`, pulled by digest: its manifest, and its layer's
/// tree (checked against the descriptors' digests).
pub(crate) fn pull_by_digest(port: u16, repository: &str, digest: &str) -> (Value, BTreeMap<String, Vec<u8>>, Vec<u8>) {
    use std::io::Read;
    let bytes = registry_get(
        port,
        &format!("/v2/{repository}/manifests/{digest}"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))), digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = registry_get(port, &format!("/v2/{repository}/blobs/{layer_digest}"), "*/*");
    assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(&layer))), layer_digest);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice()).read_to_end(&mut tar).unwrap();
    let mut tree = BTreeMap::new();
    for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() == tar::EntryType::Regular {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            tree.insert(path, content);
        }
    }
    (manifest, tree, tar)
}

#[test]
fn an_oci_artifact_in_fluxs_format_holds_the_tree_out_writes_and_is_pushed_only_when_it_changes() {
    let registry = crate::common::registry::Registry::start();
    if !crate::common::skip::interop_or_skip(registry.as_ref().err().map(String::as_str)) {
        return;
    }
    let registry = registry.unwrap();
    let repo = Repo::demo_without_operator();
    let git = committed(&repo);
    git.remote("origin", "https://ci:t0ken-in-url@git.example.org/shop.git").unwrap();
    let source = git.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let reference = format!("127.0.0.1:{}/shop/hydrated:dev", registry.port);
    let push = |extra: &[&str]| {
        let mut args = vec!["hydrate", "--env", "dev", "--oci", &reference, "--plain-http", "-o", "json"];
        args.extend_from_slice(extra);
        repo.weaver(&args)
    };
    let first = push(&[]);
    let report = json_of(&first, 2);
    assert_eq!(report["target"], json!({"oci": reference}));
    let digest = report["digest"].as_str().unwrap().to_string();
    assert!(!first.stdout.contains("t0ken-in-url") && !first.stderr.contains("t0ken-in-url"));

    // Flux's format, pulled back by digest over plain HTTP.
    let (manifest, tree, tar) = pull_by_digest(registry.port, "shop/hydrated", &digest);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.cncf.flux.config.v1+json");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/vnd.cncf.flux.content.v1.tar+gzip");
    assert_eq!(
        manifest["annotations"],
        json!({
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
            "org.opencontainers.image.source": "https://git.example.org/shop.git",
            "org.opencontainers.image.revision": format!("sha1:{source}"),
        })
    );
    let names: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(names, ["dev/redis.yaml", "dev/weaver-hydrate.metadata", "dev/web.yaml"]);
    // No Secret value in plaintext (nor base64) in the layer; the Secret decrypts to the render's.
    let layer_text = String::from_utf8_lossy(&tar);
    for value in secret_values(&repo) {
        assert!(!layer_text.contains(&value), "a Secret value is in the artifact in plaintext");
    }
    let unpacked = tempfile::tempdir().unwrap();
    for (path, content) in &tree {
        std::fs::create_dir_all(unpacked.path().join(path).parent().unwrap()).unwrap();
        std::fs::write(unpacked.path().join(path), content).unwrap();
    }
    let key = repo.path().join("secrets/dev.agekey");
    let out = tempfile::tempdir().unwrap();
    json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap(), "-o", "json"]), 2);
    for file in ["dev/redis.yaml", "dev/web.yaml"] {
        assert_eq!(decrypted(&unpacked.path().join(file), &key), decrypted(&out.path().join(file), &key), "{file}");
    }
    // The source commit's note names the artifact.
    let note = git.find_note(Some("refs/notes/weaver-hydrated"), git2::Oid::from_str(&source).unwrap()).unwrap();
    assert_eq!(note.message().unwrap(), format!("{reference} {digest}\n"));

    // Unchanged: the same digest, and nothing pushed (the registry's tag link is not rewritten).
    let link =
        registry.dir().join("data/docker/registry/v2/repositories/shop/hydrated/_manifests/tags/dev/current/link");
    let written_at = std::fs::metadata(&link).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = json_of(&push(&[]), 0);
    assert_eq!((again["changed"].as_bool(), again["digest"].as_str()), (Some(false), Some(digest.as_str())));
    assert_eq!(std::fs::metadata(&link).unwrap().modified().unwrap(), written_at, "an unchanged tree was pushed");
    let text = repo.weaver(&["hydrate", "--env", "dev", "--oci", &reference, "--plain-http"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains(&format!("nothing changed: {reference}@{digest} holds it already")),
        "{}",
        text.stdout
    );

    // A change: a new artifact, the unchanged Secret's ciphertext read back from the tag's.
    let values = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write("environments/dev.yaml", &values.replace("replicas: 1", "replicas: 3"));
    git::commit_all(&git, "three replicas");
    let changed = json_of(&push(&[]), 2);
    let new_digest = changed["digest"].as_str().unwrap();
    assert_ne!(new_digest, digest);
    assert_eq!(changed["environments"][0]["unchanged"], json!(["dev/redis.yaml"]));
    let (_, new_tree, _) = pull_by_digest(registry.port, "shop/hydrated", new_digest);
    let secret = |tree: &BTreeMap<String, Vec<u8>>| -> String {
        let text = String::from_utf8(tree["dev/web.yaml"].clone()).unwrap();
        split_documents(&text).into_iter().find(|d| d.contains("kind: Secret")).unwrap()
    };
    assert_eq!(secret(&new_tree), secret(&tree));
    assert_ne!(new_tree["dev/web.yaml"], tree["dev/web.yaml"]);

    // Without Secrets (nothing random), the artifact's files are --out's, byte for byte, and
    // the same tree from the same commit is the same digest on another tag.
    let omit_reference = format!("127.0.0.1:{}/shop/omitted:dev", registry.port);
    let other_reference = format!("127.0.0.1:{}/shop/omitted:again", registry.port);
    let omitted = |reference: &str| {
        let run = repo.weaver(&[
            "hydrate",
            "--env",
            "dev",
            "--oci",
            reference,
            "--plain-http",
            "--secrets",
            "omit",
            "-o",
            "json",
        ]);
        json_of(&run, 2)["digest"].as_str().unwrap().to_string()
    };
    let omitted_digest = omitted(&omit_reference);
    assert_eq!(omitted(&other_reference), omitted_digest);
    let out = tempfile::tempdir().unwrap();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap(), "--secrets", "omit"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let (_, omitted_tree, _) = pull_by_digest(registry.port, "shop/omitted", &omitted_digest);
    assert_eq!(omitted_tree, files(out.path()));

    // A tag that holds something else (a Helm chart) is refused, and left as it was.
    registry_push_other(registry.port, "shop/hydrated", "chart", "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
    let chart_reference = format!("127.0.0.1:{}/shop/hydrated:chart", registry.port);
    let run = repo.weaver(&["hydrate", "--env", "dev", "--oci", &chart_reference, "--plain-http"]);
    assert!(
        run.failure().contains(&format!(
            "{chart_reference} is not a Flux artifact: its manifest has no layer of type application/vnd.cncf.flux.content.v1.tar+gzip"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_oci_reference_or_flag_is_refused() {
    let repo = Repo::minimal();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--oci", "127.0.0.1:5000/shop"]);
    assert!(run.failure().contains("--oci `127.0.0.1:5000/shop` names no tag"), "{}", run.stderr);
    let run = repo.weaver(&["hydrate", "--env", "dev", "--plain-http", "--out", "x"]);
    assert!(run.failure().contains("--oci"), "{}", run.stderr);
    let run = repo.weaver(&["hydrate", "--env", "dev", "--oci", "127.0.0.1:5000/shop:v1", "--branch", "b"]);
    assert!(run.failure().contains("cannot be used with"), "{}", run.stderr);
}

#[test]
fn helm_hooks_are_left_out_of_the_files_and_named_in_the_metadata() {
    let repo = Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
        .write("charts/app/templates/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n")
        .write(
            "charts/app/templates/migrate.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: run\n          image: busybox:1.36\n",
        )
        .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let report = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]), 2);
    let hook = json!({"release": "app", "kind": "Job", "namespace": "apps", "name": "migrate", "events": "pre-install,pre-upgrade"});
    assert_eq!(report["environments"][0]["hooks"], json!([hook]));
    let app = std::fs::read_to_string(out.path().join("dev/app.yaml")).unwrap();
    assert!(app.contains("kind: ConfigMap") && !app.contains("migrate"), "{app}");
    assert_eq!(metadata(out.path(), "dev")["omittedHooks"], json!([hook]));
    // The hook gone, the objects the same: the metadata alone is rewritten.
    repo.remove("charts/app/templates/migrate.yaml");
    let report = json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]), 2);
    assert_eq!(report["environments"][0]["written"], json!(["dev/weaver-hydrate.metadata"]));
    assert_eq!(metadata(out.path(), "dev")["omittedHooks"], json!([]));
}

#[test]
fn a_secret_left_out_alone_rewrites_the_metadata_that_names_it() {
    let repo = Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
        .write(
            "charts/app/templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n",
        )
        .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
    let out = tempfile::tempdir().unwrap();
    let args = ["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap(), "--secrets", "omit", "-o", "json"];
    json_of(&repo.weaver(&args), 2);
    assert_eq!(metadata(out.path(), "dev")["omittedSecrets"], json!([]));
    // A Secret added, left out: the release's file is the same, the metadata names it.
    repo.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  token: left-out\n",
    );
    let report = json_of(&repo.weaver(&args), 2);
    assert_eq!(report["environments"][0]["written"], json!(["dev/weaver-hydrate.metadata"]));
    assert_eq!(report["environments"][0]["unchanged"], json!(["dev/app.yaml"]));
    assert_eq!(metadata(out.path(), "dev")["omittedSecrets"], json!(["app/apps/app"]));
    json_of(&repo.weaver(&args), 0);
}

#[test]
fn a_secret_hydrated_before_that_cannot_be_read_back_is_encrypted_again_with_a_warning() {
    let repo = Repo::demo_without_operator();
    // Two Secrets in web's file.
    let template = std::fs::read_to_string(repo.path().join("charts/web-app/templates/secret.yaml")).unwrap();
    let copy = template.replace("name: {{ release.name }}-secrets", "name: {{ release.name }}-more-secrets");
    repo.write("charts/web-app/templates/secret-more.yaml", &copy);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    json_of(&repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]), 2);
    // Each Secret's ciphertext damaged (its MAC no longer matches): the identities cannot
    // decrypt them.
    let web = out.path().join("dev/web.yaml");
    let mut text = std::fs::read_to_string(&web).unwrap();
    let documents = split_documents(&text).len();
    let mut damaged = 0;
    for document in split_documents(&text) {
        let Some(at) = document.find("ENC[AES256_GCM,data:").map(|at| at + "ENC[AES256_GCM,data:".len()) else {
            continue;
        };
        let flipped = if &document[at..at + 1] == "A" { "B" } else { "A" };
        text = text.replace(&document, &format!("{}{flipped}{}", &document[..at], &document[at + 1..]));
        damaged += 1;
    }
    assert_eq!((damaged, split_documents(&text).len()), (2, documents), "{text}");
    std::fs::write(&web, text).unwrap();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", dir, "-o", "json"]);
    let report = json_of(&run, 2);
    assert!(report["environments"][0]["written"].as_array().unwrap().contains(&json!("dev/web.yaml")), "{report}");
    // Said once for the run, with how many and where.
    let warned = "environment `dev`: the Secrets hydrated before cannot be read back";
    assert_eq!(run.stderr.matches(warned).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("2 Secrets do not decrypt (2 in dev/web.yaml; dev/web.yaml: ")
            && !run.stderr.contains("environment `dev`: environment `dev`")
            && !run.stderr.contains("dev/web.yaml: dev/web.yaml")
            && run.stderr.contains("at every run"),
        "{}",
        run.stderr
    );
    for value in secret_values(&repo) {
        assert!(!run.stderr.contains(&value), "the warning quotes a Secret value");
    }
}

/// A registry with token auth (as GHCR, Docker Hub and Harbor run it) in front of the test's
/// docker-registry: the token service hands a pull or a push token out for the credentials,
/// and writes (POST, PUT) need the push one.
#[test]
fn an_artifact_is_pushed_with_the_docker_logins_credentials_through_the_token_flow_each_body_sent_once() {
    use crate::remote_charts::TestServer;
    use base64::Engine;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const PASSWORD: &str = "push-Passw0rd-not-shown";
    let registry = crate::common::registry::Registry::start();
    if !crate::common::skip::interop_or_skip(registry.as_ref().err().map(String::as_str)) {
        return;
    }
    let registry = registry.unwrap();
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("pusher:{PASSWORD}")));
    let (tokens, layer_uploads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (counted_tokens, counted_uploads) = (tokens.clone(), layer_uploads.clone());
    let registry_port = registry.port;
    let proxy = TestServer::start(move |port, request| {
        if let Some(query) = request.path.strip_prefix("token?") {
            counted_tokens.fetch_add(1, Ordering::SeqCst);
            if request.authorization != basic {
                return ("401 Unauthorized", String::new(), b"bad credentials".to_vec());
            }
            let token = if query.contains("pull%2Cpush") { "push-t0ken" } else { "pull-t0ken" };
            return ("200 OK", String::new(), format!("{{\"token\":\"{token}\"}}").into_bytes());
        }
        // Every time the layer's bytes arrive, taken or not.
        if request.method == "PUT" && request.path.contains("/blobs/uploads/") && request.body.len() > 2 {
            counted_uploads.fetch_add(1, Ordering::SeqCst);
        }
        let writing = request.method == "POST" || request.method == "PUT";
        let allowed =
            request.authorization == "Bearer push-t0ken" || (!writing && request.authorization == "Bearer pull-t0ken");
        if !allowed {
            let scope = if writing { "pull,push" } else { "pull" };
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test\",scope=\"repository:shop/hydrated:{scope}\"\r\n"
            );
            return ("401 Unauthorized", challenge, b"{}".to_vec());
        }
        let forwarded = format!(
            "{} /{} HTTP/1.0\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nContent-Type: {}",
            request.method, request.path, request.content_type
        );
        let (head, body) = registry_request(registry_port, &forwarded, &request.body);
        let status = match head.split_whitespace().nth(1).unwrap_or_default() {
            "200" => "200 OK",
            "201" => "201 Created",
            "202" => "202 Accepted",
            "404" => "404 Not Found",
            _ => "500 Internal Server Error",
        };
        let headers: String = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("location:"))
            .map(|l| format!("{}\r\n", l.replace(&format!("127.0.0.1:{registry_port}"), &format!("127.0.0.1:{port}"))))
            .collect();
        (status, headers, if request.method == "HEAD" { Vec::new() } else { body })
    });
    let repo = Repo::minimal();
    let home = tempfile::tempdir().unwrap();
    let docker = home.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let login = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{PASSWORD}"));
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"auths\": {{\"127.0.0.1:{}\": {{\"auth\": \"{login}\"}}}}}}", proxy.port),
    )
    .unwrap();
    let reference = format!("127.0.0.1:{}/shop/hydrated:v1", proxy.port);
    let home_dir = home.path().to_str().unwrap();
    let args = ["hydrate", "--env", "dev", "--oci", &reference, "--plain-http", "-o", "json"];
    let run = repo.weaver_env(&args, &[("HOME", home_dir), ("DOCKER_CONFIG", docker.to_str().unwrap())]);
    let report = json_of(&run, 2);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD), "the password was shown");
    assert_eq!(tokens.load(Ordering::SeqCst), 2, "a pull token, then a push token");
    assert_eq!(layer_uploads.load(Ordering::SeqCst), 1, "the layer was sent more than once");
    let digest = report["digest"].as_str().unwrap();
    let (_, tree, _) = pull_by_digest(registry.port, "shop/hydrated", digest);
    let out = tempfile::tempdir().unwrap();
    assert_eq!(repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap()]).code, 2);
    assert_eq!(tree, files(out.path()));

    // Without a login: refused, saying where credentials go.
    let run = repo.weaver_env(&args, &[("HOME", home_dir), ("DOCKER_CONFIG", home_dir)]);
    let stderr = run.failure();
    assert!(stderr.contains("refused the credentials (or asked for some)"), "{stderr}");
    // An artifact is no repository of `repositories:`: where its credentials come from.
    let log_in = format!("docker login 127.0.0.1:{}", proxy.port);
    assert!(stderr.contains(&log_in) && !stderr.contains("WEAVER_REPOSITORY_"), "{stderr}");
}
