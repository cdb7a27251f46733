//! `weaver bootstrap` against a repository served by OpenSSH's sshd on loopback, on the fake API
//! server or, unchanged, a real one, with the EnvironmentSync controller in this process (its
//! Pods need a node: tests/node.rs runs it in them). From a cluster without weaver: a deploy key
//! the server does not know, then one it lets only read, are refused before anything is
//! written; then weaver is installed and applies itself from git; a second run writes nothing;
//! a values change pushed to git is applied by the controller to itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::gitops::Controller;

use common::cluster::TestCluster;
use common::eventually;
use common::git_ssh::Sshd;
use serde_json::{Value, json};

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository with a first commit on main, and a clone to push from.
pub(crate) struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    pub(crate) fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "--bare", "-b", "main", "fleet.git"]);
        git(dir.path(), &["clone", "-q", "fleet.git", "work"]);
        std::fs::write(dir.path().join("work/README.md"), "the fleet\n").unwrap();
        git(&dir.path().join("work"), &["add", "-A"]);
        git(&dir.path().join("work"), &["commit", "-q", "-m", "first"]);
        git(&dir.path().join("work"), &["push", "-q", "origin", "main"]);
        Remote { dir }
    }

    pub(crate) fn bare(&self) -> PathBuf {
        self.dir.path().join("fleet.git")
    }

    pub(crate) fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub(crate) fn main(&self) -> String {
        git(&self.bare(), &["rev-parse", "main"])
    }

    pub(crate) fn files(&self) -> Vec<String> {
        git(&self.bare(), &["ls-tree", "-r", "--name-only", "main"]).lines().map(String::from).collect()
    }

    pub(crate) fn pull(&self) {
        git(&self.work(), &["pull", "-q", "--ff-only", "origin", "main"]);
    }
}

fn environment_sync(namespace: &str) -> Value {
    json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "weaver", "namespace": namespace}})
}

#[test]
fn bootstrap_refuses_keys_that_cannot_write_then_weaver_applies_itself_from_git() {
    if !common::skip::interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let cluster = TestCluster::start();
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let remote = Remote::new();
    let sshd = Sshd::start();
    let url = sshd.url(&remote.bare());
    let repo = common::Repo::empty();
    let key = repo.path().join("deploy-key");
    let label = format!("selfSync.labels.weaver-test={}", cluster.prefix);
    let bootstrap = |extra: &[&str]| {
        let args = [
            &["bootstrap", "--url", &url, "--path", "clusters/test", "-n", &ns, "--timeout", "90s"][..],
            &["--private-key-file", key.to_str().unwrap(), "--set", &label, "--set", "replicas=1"],
            &["--set", "gitops.approvals.enforce=false", "--set", "selfSync.interval=2s"],
            // Pushes posted to the receiver apply at once, proved by this Secret's token.
            &["--set", "selfSync.webhookSecretName=weaver-hook"],
            // The controller here is this process's: the Pods' (on a cluster with a node) reconcile nothing.
            &["--set", crate::install::NOWHERE],
            extra,
        ]
        .concat();
        repo.weaver_on(&cluster, &args)
    };
    let first_commit = remote.main();

    // A key file that is not there (a typo) is refused, and no key is made there: only
    // --generate-key writes one.
    let mistyped = repo.path().join("deploy-kye");
    let args = ["bootstrap", "--url", &url, "--path", "clusters/test", "-n", &ns, "--private-key-file"];
    let refused = repo.weaver_on(&cluster, &[&args[..], &[mistyped.to_str().unwrap()]].concat());
    assert_eq!(refused.code, 1, "{refused:?}");
    let said = format!("--private-key-file {}: no such file; nothing was written", mistyped.display());
    assert!(refused.stderr.contains(&said) && refused.stderr.contains("--generate-key"), "{refused:?}");
    assert!(!mistyped.exists(), "a key was written at the mistyped path");

    // A new key, which the server does not know: refused at the read, naming the repository (as
    // given, its user kept), the key file and the key to add, nothing written anywhere.
    let unknown = bootstrap(&["--generate-key"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains(&format!("add this public key to {url} as a deploy key")), "{unknown:?}");
    assert!(unknown.stderr.contains(&format!("check --private-key-file {}", key.display())), "{unknown:?}");
    assert!(!unknown.stderr.contains("the Secret's"), "no Secret was given: {unknown:?}");
    let again = bootstrap(&["--generate-key"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("exists, and a key is never written over a file"), "{again:?}");
    assert!(!unknown.stderr.contains("PRIVATE KEY") && !unknown.stdout.contains("PRIVATE KEY"), "{unknown:?}");
    let public = weaver_source::public_key_of(&std::fs::read_to_string(&key).unwrap()).expect("an ed25519 key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(unknown.stderr.contains("cannot read branch main of"), "{unknown:?}");
    assert!(unknown.stderr.contains(&public), "the public key to add: {unknown:?}");
    assert!(unknown.stderr.contains("deploy key with write access"), "{unknown:?}");
    assert_eq!(remote.main(), first_commit, "nothing pushed");
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weaver", "namespace": ns}});
    assert!(cluster.get(&deployment).is_none(), "nothing installed");

    // The key may only read (the server runs git-upload-pack alone): refused at the write.
    let read_only = "command=\"case \\\"$SSH_ORIGINAL_COMMAND\\\" in git-upload-pack*) eval \\\"$SSH_ORIGINAL_COMMAND\\\";; *) echo read-only >&2; exit 1;; esac\"";
    let authorized = sshd.dir.path().join("authorized_keys");
    let clients = std::fs::read_to_string(&authorized).unwrap();
    std::fs::write(&authorized, format!("{clients}{read_only} {public}\n")).unwrap();
    let cannot_write = bootstrap(&[]);
    assert_eq!(cannot_write.code, 1, "{cannot_write:?}");
    assert!(cannot_write.stderr.contains("cannot write to branch main of"), "{cannot_write:?}");
    assert!(cannot_write.stderr.contains("nothing was written"), "{cannot_write:?}");
    assert_eq!(remote.main(), first_commit, "nothing pushed");
    assert!(cluster.get(&deployment).is_none(), "nothing installed");

    // With write access, values the chart's schema refuses: refused before the push.
    std::fs::write(&authorized, format!("{clients}{public}\n")).unwrap();
    let refused = bootstrap(&["--set", "replicas=many"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("nothing was pushed") && refused.stderr.contains("replicas"), "{refused:?}");
    assert_eq!(remote.main(), first_commit, "nothing pushed");
    assert!(cluster.get(&deployment).is_none(), "nothing installed");
    let off = bootstrap(&["--set", "selfSync.enabled=false"]);
    assert_eq!(off.code, 1, "{off:?}");
    assert!(off.stderr.contains("turn selfSync off") && off.stderr.contains("nothing was pushed"), "{off:?}");
    assert_eq!(remote.main(), first_commit, "nothing pushed");

    // Pushed, installed, and applied by its own EnvironmentSync.
    let _controller = Controller::start(&cluster, None);
    let done = bootstrap(&[]);
    assert_eq!(done.code, 0, "{done:?}");
    let commit = remote.main();
    assert_ne!(commit, first_commit, "{done:?}");
    let files = remote.files();
    for file in ["README.md", "clusters/test/environments/weaver.yaml", "clusters/test/charts/weaver/Chart.yaml"] {
        assert!(files.iter().any(|f| f == file), "{file} in {files:?}");
    }
    assert!(!files.iter().any(|f| f.contains("key") || f.contains("secret")), "no credential in git: {files:?}");
    let grep = Command::new("git").args(["grep", "-q", "PRIVATE KEY", "main"]).current_dir(remote.bare()).status();
    assert_eq!(grep.unwrap().code(), Some(1), "no private key in git");
    let sync = cluster.get(&environment_sync(&ns)).expect("its EnvironmentSync");
    assert_eq!(sync["status"]["lastAppliedRevision"], commit, "{sync}");
    assert_eq!(sync["spec"]["webhook"], json!({"secretRef": {"name": "weaver-hook"}}), "{sync}");
    assert!(done.stderr.contains(&format!("weaver runs itself from {}", &commit[..12])), "{done:?}");
    // The repository's port (sshd's, not 22) is let out by the chart's NetworkPolicy.
    let port: i64 = url.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next()?.parse().ok()).expect("a port");
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "weaver", "namespace": ns}});
    let policy = cluster.get(&policy).expect("the chart's NetworkPolicy");
    let egress = policy["spec"]["egress"].as_array().cloned().unwrap_or_default();
    let ports: Vec<&Value> = egress.iter().flat_map(|rule| rule["ports"].as_array().into_iter().flatten()).collect();
    assert!(ports.iter().any(|p| p["port"] == json!(port)), "port {port} in {policy}");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weaver-git", "namespace": ns}});
    let secret_version = cluster.get(&secret).expect("the source Secret")["metadata"]["resourceVersion"].clone();
    for output in [&done.stdout, &done.stderr] {
        assert!(!output.contains("PRIVATE KEY"), "{output}");
    }

    // `weaver install` would undo what git holds: refused.
    let install = repo.weaver_on(&cluster, &["install", "-n", &ns]);
    assert_eq!(install.code, 1, "{install:?}");
    assert!(install.stderr.contains("runs from git"), "{install:?}");

    // Again: nothing written, to git or the cluster.
    let again = bootstrap(&[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(remote.main(), commit);
    assert!(again.stderr.contains("nothing to write"), "{again:?}");
    assert!(again.stderr.contains("is applied already"), "no apply, not even the lock's: {again:?}");
    assert_eq!(cluster.get(&secret).unwrap()["metadata"]["resourceVersion"], secret_version);

    // Its history, read from the repository's directory as any environment's.
    remote.pull();
    let weaver_repo = remote.work().join("clusters/test");
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let args = ["history", "--env", "weaver", "weaver", "-o", "json", "--kubeconfig", &kubeconfig];
    let history = common::weaver_in(&weaver_repo, &args, &[]);
    let history: Value = serde_json::from_str(&history.stdout).unwrap_or_else(|e| panic!("{e}: {history:?}"));
    let revisions = history["revisions"].as_array().cloned().unwrap_or_default();
    assert!(revisions.iter().any(|r| r["commit"] == commit), "{history}");

    // weaver's values changed in git are applied by weaver to itself.
    let environment = remote.work().join("clusters/test/environments/weaver.yaml");
    let text = std::fs::read_to_string(&environment).unwrap();
    assert!(text.contains("replicas: 1"), "{text}");
    std::fs::write(&environment, text.replace("replicas: 1", "replicas: 2")).unwrap();
    git(&remote.work(), &["commit", "-q", "-am", "two replicas"]);
    git(&remote.work(), &["push", "-q", "origin", "main"]);
    let pushed = remote.main();
    eventually("the controller applies weaver's new values to itself", || {
        let live = cluster.get(&deployment).ok_or("no Deployment")?;
        let applied = cluster.get(&environment_sync(&ns)).ok_or("no EnvironmentSync")?;
        match (live["spec"]["replicas"].as_i64(), applied["status"]["lastAppliedRevision"].as_str()) {
            (Some(2), Some(revision)) if revision == pushed => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // A team's app, connected by one command: its Secrets made in the cluster (in a namespace
    // made already, here by the harness, which removes it), its release pushed to weaver's
    // environment, which the controller applies to itself.
    let shop = cluster.namespace("shop");
    for (kind, name, namespace) in [
        ("ClusterRole", format!("{shop}-shop"), None),
        ("ClusterRoleBinding", format!("{shop}-shop"), None),
        ("Role", format!("{shop}-shop-lock"), Some("kube-system")),
        ("RoleBinding", format!("{shop}-shop-lock"), Some("kube-system")),
    ] {
        let mut object =
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name}});
        if let Some(namespace) = namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        cluster.delete_later(&object);
    }
    const SHOP_TOKEN: &str = "shop-read-token-5e1d";
    let shop_token = repo.path().join("shop-token");
    std::fs::write(&shop_token, format!("{SHOP_TOKEN}\n")).unwrap();
    let tenant = [
        &["tenant", "add", "shop", "-n", &shop, "--controller-namespace", &ns][..],
        &["--source-url", "https://git.example.org/acme/shop.git", "--source-path", "deploy", "--environment", "prod"],
        &["--token-file", shop_token.to_str().unwrap()],
    ]
    .concat();
    let added = repo.weaver_on(&cluster, &tenant);
    assert_eq!(added.code, 0, "{added:?}");
    let with_tenant = remote.main();
    assert_ne!(with_tenant, pushed, "{added:?}");
    assert!(added.stderr.contains(&format!("/hook/{shop}/shop")), "{added:?}");
    assert!(added.stderr.contains(&format!("kubectl -n {shop} get secret shop-webhook")), "{added:?}");
    let webhook =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-webhook", "namespace": shop}});
    let token = cluster.get(&webhook).expect("the webhook's Secret")["data"]["token"].as_str().unwrap().to_string();
    use base64::Engine;
    let token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(token).unwrap()).unwrap();
    for output in [&added.stdout, &added.stderr] {
        assert!(!output.contains(SHOP_TOKEN) && !output.contains(&token), "{output}");
    }
    let shop_sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "shop", "namespace": shop}});
    eventually("the controller applies the tenant's release to itself", || {
        let applied = cluster.get(&environment_sync(&ns)).ok_or("no EnvironmentSync")?;
        if applied["status"]["lastAppliedRevision"] != with_tenant {
            return Err(format!("at {}", applied["status"]["lastAppliedRevision"]));
        }
        let sync = cluster.get(&shop_sync).ok_or("no EnvironmentSync shop")?;
        let source = json!({"url": "https://git.example.org/acme/shop.git", "ref": {"branch": "main"}, "path": "deploy", "secretRef": {"name": "shop-git"}});
        match (&sync["spec"]["source"], &sync["spec"]["environments"], &sync["spec"]["webhook"]) {
            (s, e, w)
                if *s == source && *e == json!(["prod"]) && *w == json!({"secretRef": {"name": "shop-webhook"}}) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "shop", "namespace": shop}});
    assert!(cluster.get(&account).is_some(), "the tenant's account");
    // Again: nothing written.
    let again = repo.weaver_on(&cluster, &tenant);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("nothing to write"), "{again:?}");
    assert_eq!(remote.main(), with_tenant);
    remote.pull();

    // Another path holding files weaver did not write is refused, naming them.
    std::fs::create_dir_all(remote.work().join("clusters/other")).unwrap();
    std::fs::write(remote.work().join("clusters/other/app.yaml"), "kind: ConfigMap\n").unwrap();
    git(&remote.work(), &["add", "-A"]);
    git(&remote.work(), &["commit", "-q", "-m", "another cluster's files"]);
    git(&remote.work(), &["push", "-q", "origin", "main"]);
    let before = remote.main();
    let args = [
        "bootstrap",
        "--url",
        &url,
        "--path",
        "clusters/other",
        "-n",
        &ns,
        "--private-key-file",
        key.to_str().unwrap(),
    ];
    let foreign = repo.weaver_on(&cluster, &args);
    assert_eq!(foreign.code, 1, "{foreign:?}");
    assert!(
        foreign.stderr.contains("holds files weaver bootstrap did not write: clusters/other/app.yaml"),
        "{foreign:?}"
    );
    assert_eq!(remote.main(), before, "nothing pushed");

    // A cluster that lost weaver is brought back from the repository, which --recover leaves as
    // it is (its credentials from the Secret the first bootstrap wrote).
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(cluster.get(&deployment).is_none());
    let recover = ["bootstrap", "--url", &url, "--path", "clusters/test", "-n", &ns, "--recover", "--timeout", "90s"];
    let recovered = repo.weaver_on(&cluster, &recover);
    assert_eq!(recovered.code, 0, "{recovered:?}");
    assert_eq!(remote.main(), before, "--recover writes nothing to git");
    assert_eq!(cluster.get(&deployment).expect("the Deployment, back")["spec"]["replicas"], 2);
}

#[test]
fn bootstrap_over_https_with_a_token_keeps_it_out_of_git_and_every_output() {
    if !common::skip::interop_or_skip(common::git_http::http_backend_missing().as_deref()) {
        return;
    }
    let cluster = TestCluster::start();
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let remote = Remote::new();
    const TOKEN: &str = "glpat-bootstrap-7f3a9c";
    let options = common::git_http::Options { basic: Some(("git".into(), TOKEN.into())), ..Default::default() };
    let server = common::git_http::GitHttpServer::start(remote.dir.path(), options);
    let url = format!("{}/fleet.git", server.base);
    let repo = common::Repo::empty();
    let (wrong, token) = (repo.path().join("wrong-token"), repo.path().join("token"));
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let label = format!("selfSync.labels.weaver-test={}", cluster.prefix);
    let bootstrap = |token_file: &Path| {
        let args = [
            &["bootstrap", "--url", &url, "--path", "clusters/test", "-n", &ns, "--timeout", "90s"][..],
            &["--token-file", token_file.to_str().unwrap(), "--set", &label, "--set", "replicas=1"],
            &["--set", "gitops.approvals.enforce=false", "--set", crate::install::NOWHERE],
        ]
        .concat();
        repo.weaver_on(&cluster, &args)
    };
    let first_commit = remote.main();

    let refused = bootstrap(&wrong);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("cannot read branch main of"), "{refused:?}");
    assert!(refused.stderr.contains("give the token write access"), "{refused:?}");
    // The file given is named, not a Secret there is none of yet.
    assert!(refused.stderr.contains(&format!("check --token-file {}", wrong.display())), "{refused:?}");
    assert_eq!(remote.main(), first_commit, "nothing pushed");

    let _controller = Controller::start(&cluster, None);
    let done = bootstrap(&token);
    assert_eq!(done.code, 0, "{done:?}");
    let commit = remote.main();
    assert_ne!(commit, first_commit);
    let sync = cluster.get(&environment_sync(&ns)).expect("its EnvironmentSync");
    assert_eq!(sync["status"]["lastAppliedRevision"], commit, "{sync}");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weaver-git", "namespace": ns}});
    let data = cluster.get(&secret).expect("the source Secret")["data"].clone();
    use base64::Engine;
    let password = base64::engine::general_purpose::STANDARD.decode(data["password"].as_str().unwrap()).unwrap();
    assert_eq!(password, TOKEN.as_bytes());
    for run in [&refused, &done] {
        assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN), "{run:?}");
    }
    let grep = Command::new("git").args(["grep", "-q", TOKEN, "main"]).current_dir(remote.bare()).status().unwrap();
    assert_eq!(grep.code(), Some(1), "the token is nowhere in git");
}

#[test]
fn bootstrap_refuses_an_unreachable_cluster_before_it_pushes() {
    if !common::skip::interop_or_skip(Sshd::missing().as_deref()) {
        return;
    }
    let remote = Remote::new();
    let sshd = Sshd::start();
    let repo = common::Repo::empty();
    let kubeconfig = crate::install::unreachable_kubeconfig(repo.path());
    let key = sshd.dir.path().join("client");
    let run = repo.weaver(&[
        "bootstrap",
        "--url",
        &sshd.url(&remote.bare()),
        "--path",
        "clusters/test",
        "--private-key-file",
        key.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--request-timeout",
        "2s",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("127.0.0.1:1"), "{run:?}");
    assert_eq!(remote.files(), ["README.md"], "nothing pushed");
}

#[test]
fn bootstrap_refuses_a_path_that_leaves_the_repository() {
    let repo = common::Repo::empty();
    for path in ["../up", "/abs", "a/../b", "", "clusters//c", "clusters/./prod", "clusters/b/", ".weaver", "prod env"]
    {
        let run = repo.weaver(&["bootstrap", "--url", "ssh://git@example.invalid/x.git", "--path", path]);
        assert_eq!(run.code, 1, "{path}: {run:?}");
        assert!(run.stderr.contains("is not a directory inside the repository"), "{path}: {run:?}");
    }
}

/// `tenant add` commits to the git repository weaver runs from: where weaver runs from an OCI
/// artifact, it is refused saying so, before anything is made in the cluster.
#[test]
fn tenant_add_where_weaver_runs_from_an_oci_artifact_is_refused_saying_why() {
    let cluster = TestCluster::start();
    let ns = crate::gitops::tenant(&cluster);
    let mut sync = environment_sync(&ns);
    sync["spec"] = json!({"source": {"oci": {"url": "oci://registry.example/platform/weaver", "tag": "main"}},
                          "environments": ["prod"], "serviceAccountName": "deployer"});
    cluster.create(&sync);
    let shop = format!("{}-shop", cluster.prefix);
    let repo = common::Repo::empty();
    let run = repo.weaver_on(
        &cluster,
        &[
            "tenant",
            "add",
            "shop",
            "-n",
            &shop,
            "--controller-namespace",
            &ns,
            "--source-url",
            "https://git.example.org/acme/shop.git",
            "--environment",
            "prod",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "EnvironmentSync {ns}/weaver runs weaver from an OCI artifact (spec.source.oci), and tenant add commits to a git repository"
        )),
        "{run:?}"
    );
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": shop}});
    assert!(cluster.get(&namespace).is_none(), "nothing was made");
}
