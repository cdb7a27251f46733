//! Preview environments (`spec.previews`): the controller in-process against the fake API server
//! or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`, its git server on loopback. A branch
//! matching the glob gets its namespace and the base environment applied in it; a push updates
//! it; its deletion prunes it; over the maximum, the newest wait; past `expireAfter`, pruned;
//! `weaver previews delete` prunes it until a push; its URL is its Ingress's or the pattern's; a
//! preview decrypts only where `spec.previews.decryption` says.
//! With a forge (`weaver_test_support::forge`, GitHub's, GitLab's or Gitea's API on loopback),
//! the open pull requests carrying the labels get previews and commit statuses.

use git2::{IndexAddOption, Signature, Time};
use serde_json::{Value, json};
use weaver_test_support::forge::{FakeForge, Provider, PullRequest};

use crate::common::cluster::TestCluster;
use crate::common::{Repo, eventually};
use crate::gitops::{
    Controller, Replica, Source, config_map, environment_sync, get, http_or_skip, spec, tenant, until_status,
};

/// The ClusterRole that lets the tenant's account (`deployer`) make and delete namespaces and
/// write what environment `dev` applies in any namespace: a namespace's Role cannot be given
/// before the namespace exists.
fn previews_account(cluster: &TestCluster, namespace: &str) {
    let name = format!("{}-previews", cluster.prefix);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": ["", "coordination.k8s.io", "events.k8s.io"],
             "resources": ["configmaps", "secrets", "leases", "events"], "verbs": ["*"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["*"]}
        ]
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}]
    }));
}

/// A commit on `branch` of `source` (from main's head when it is new) with `path` written as
/// `content`, made at `time` (seconds); main and its working tree are left as they were.
fn push(source: &Source, branch: &str, path: &str, content: &str, time: i64) -> String {
    push_to(&source.repo, &source.work(), branch, path, content, time)
}

/// [`push`] to the repository `repo`, whose working tree is `work`.
pub(crate) fn push_to(
    repo: &git2::Repository,
    work: &std::path::Path,
    branch: &str,
    path: &str,
    content: &str,
    time: i64,
) -> String {
    let refname = format!("refs/heads/{branch}");
    let parent = match repo.find_reference(&refname) {
        Ok(reference) => reference.peel_to_commit().unwrap(),
        Err(_) => repo.head().unwrap().peel_to_commit().unwrap(),
    };
    let full = work.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    let before = std::fs::read_to_string(&full).ok();
    // The branch's tree: its parent's, with the file written.
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&parent.tree().unwrap()).unwrap();
    std::fs::write(&full, content).unwrap();
    let blob = repo.blob_path(&full).unwrap();
    let entry = git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: content.len() as u32,
        id: blob,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    };
    index.add(&entry).unwrap();
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    match before {
        Some(text) => std::fs::write(&full, text).unwrap(),
        None => std::fs::remove_file(&full).unwrap(),
    }
    let author = Signature::new("weaver tests", "tests@weaver.invalid", &Time::new(time, 0)).unwrap();
    let commit = repo.commit(Some(&refname), &author, &author, branch, &tree, &[&parent]).unwrap();
    // The working tree's index stays main's.
    let mut main = repo.index().unwrap();
    main.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    main.write().unwrap();
    commit.to_string()
}

fn delete_branch(source: &Source, branch: &str) {
    delete_branch_of(&source.repo, branch);
}

pub(crate) fn delete_branch_of(repo: &git2::Repository, branch: &str) {
    repo.find_reference(&format!("refs/heads/{branch}")).unwrap().delete().unwrap();
}

/// The preview named `name` of `live`'s status.
fn preview<'a>(live: &'a Value, name: &str) -> Option<&'a Value> {
    live["status"]["previews"].as_array()?.iter().find(|p| p["name"] == name)
}

fn namespace_object(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Whether namespace `name` is gone, or going (a real server finalizes it after the delete).
fn namespace_gone(cluster: &TestCluster, name: &str) -> bool {
    cluster.get(&namespace_object(name)).is_none_or(|ns| ns["metadata"]["deletionTimestamp"].is_string())
}

/// The namespaces, live or going, labelled as previews of EnvironmentSync `name` of `namespace`.
pub(crate) fn preview_namespaces(cluster: &TestCluster, namespace: &str, name: &str) -> Vec<String> {
    let owner = format!("{namespace}.{name}.");
    let label = |ns: &Value| ns["metadata"]["labels"]["weaver.example.com/preview"].as_str().map(String::from);
    let mut found: Vec<String> = cluster
        .list_all("v1", "Namespace", "namespaces")
        .iter()
        .filter(|ns| label(ns).is_some_and(|label| label.starts_with(&owner)))
        .map(|ns| ns["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    found.sort();
    found
}

/// The notes of `namespace`'s Events of `reason` about EnvironmentSync `name`.
fn events(cluster: &TestCluster, namespace: &str, name: &str, reason: &str) -> Vec<String> {
    let events = cluster.list("events.k8s.io/v1", "Event", "events", namespace);
    let of = |e: &&Value| e["regarding"]["name"] == name && e["reason"] == reason;
    events.iter().filter(of).map(|e| e["note"].as_str().unwrap_or_default().to_string()).collect()
}

const GREETING: &str = "charts/app/values.yaml";

/// A cluster, the tenant's namespace whose account may make previews, and its source with a
/// first commit on main.
fn tenant_with_previews() -> (TestCluster, String, Source) {
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    previews_account(&cluster, &namespace);
    let source = Source::new(&namespace);
    // What a preview's templates know of it.
    source.write(
        "charts/app/templates/preview.yaml",
        "{% if \"preview\" in env.values %}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: preview\ndata:\n  \
         name: {{ env.values.preview.name }}\n  branch: {{ env.values.preview.branch }}\n  commit: \
         {{ env.values.preview.commit }}\n  namespace: {{ env.values.preview.namespace }}\n{% endif %}",
    );
    source.commit("first");
    (cluster, namespace, source)
}

/// Branch `preview/a` pushed, the controller started, and EnvironmentSync `shop` made with
/// previews of `preview/*` every 2s: the controller, the sync, its body once preview a is
/// Ready, a's commit and namespace.
fn preview_a_ready(
    cluster: &TestCluster,
    namespace: &str,
    source: &Source,
) -> (Controller, Value, Value, String, String) {
    let first = push(source, "preview/a", GREETING, "greeting: preview a\n", 1_700_000_100);
    let preview_namespace = format!("{namespace}-a");
    cluster.delete_later(&namespace_object(&preview_namespace));
    let controller = Controller::start(cluster, None);
    let previews = json!({"branches": "preview/*", "environment": "dev"});
    let sync =
        environment_sync(cluster, namespace, "shop", spec(source, json!({"interval": "2s", "previews": previews})));
    cluster.create(&sync);
    let live = until_status(cluster, &sync, "preview a Ready", |live| {
        preview(live, "a").is_some_and(|p| p["state"] == "Ready" && p["commit"] == first)
    });
    (controller, sync, live, first, preview_namespace)
}

#[test]
fn a_pushed_branch_gets_its_preview_a_push_updates_it_and_its_deletion_prunes_it() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    // Outside the glob: another prefix, and a name `*` does not reach (it crosses no `/`).
    push(&source, "feature/x", GREETING, "greeting: feature\n", 1_700_000_100);
    push(&source, "preview/x/y", GREETING, "greeting: nested\n", 1_700_000_100);
    let (_controller, sync, live, first, preview_namespace) = preview_a_ready(&cluster, &namespace, &source);
    assert_eq!(
        preview(&live, "a").unwrap(),
        &json!({"name": "a", "branch": "preview/a", "commit": first, "namespace": preview_namespace,
                "environment": "dev--a", "state": "Ready", "lastAppliedCommit": first})
    );
    // A branch outside the glob gets nothing: no status, no namespace, no Event.
    assert_eq!(
        live["status"]["previews"].as_array().unwrap().len(),
        1,
        "feature/x and preview/x/y are outside the glob"
    );
    assert_eq!(preview_namespaces(&cluster, &namespace, "shop"), [preview_namespace.as_str()]);
    let made = cluster.get(&namespace_object(&preview_namespace)).expect("the preview's namespace");
    assert_eq!(made["metadata"]["labels"]["weaver.example.com/preview"], format!("{namespace}.shop.a"));
    let applied = config_map(&cluster, &preview_namespace, "app").expect("the base environment's ConfigMap");
    assert_eq!(applied["data"]["greeting"], "preview a");
    assert_eq!(applied["metadata"]["labels"]["weaver.example.com/environment"], "dev--a");
    let known = config_map(&cluster, &preview_namespace, "preview").expect("the ConfigMap of env.values.preview");
    assert_eq!(
        known["data"],
        json!({"name": "a", "branch": "preview/a", "commit": first, "namespace": preview_namespace})
    );
    // The sync's own environment is main's, untouched by the preview.
    assert_eq!(config_map(&cluster, &namespace, "app").expect("dev's ConfigMap")["data"]["greeting"], "hello");
    assert!(config_map(&cluster, &namespace, "preview").is_none(), "dev is no preview");
    let created = events(&cluster, &namespace, "shop", "PreviewCreated");
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].contains(&format!("preview a of branch preview/a applied at {}", &first[..12])), "{created:?}");

    let second = push(&source, "preview/a", GREETING, "greeting: preview a, again\n", 1_700_000_200);
    until_status(&cluster, &sync, "the push to preview/a applied", |live| {
        preview(live, "a").is_some_and(|p| p["state"] == "Ready" && p["commit"] == second)
    });
    let updated = config_map(&cluster, &preview_namespace, "app").unwrap();
    assert_eq!(updated["data"]["greeting"], "preview a, again");
    assert_eq!(events(&cluster, &namespace, "shop", "PreviewCreated").len(), 1, "an update is no creation");

    delete_branch(&source, "preview/a");
    until_status(&cluster, &sync, "preview a pruned", |live| preview(live, "a").is_none());
    eventually("the ConfigMap and the namespace gone", || {
        match (config_map(&cluster, &preview_namespace, "app"), namespace_gone(&cluster, &preview_namespace)) {
            (None, true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let pruned = events(&cluster, &namespace, "shop", "PreviewPruned");
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert!(pruned[0].contains("preview a pruned (its branch preview/a is gone"), "{pruned:?}");
    assert_eq!(config_map(&cluster, &namespace, "app").expect("dev stays")["data"]["greeting"], "hello");
    assert!(get(&cluster, &sync)["status"]["previews"].is_null());
}

#[test]
fn over_the_maximum_the_newest_branches_wait_and_expired_previews_are_pruned() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    // Made at these times: b is the oldest, a the newest.
    for (name, time) in [("a", 5), ("b", 1), ("c", 4), ("d", 2), ("e", 3)] {
        push(&source, &format!("preview/{name}"), GREETING, &format!("greeting: {name}\n"), 1_700_000_000 + time);
        cluster.delete_later(&namespace_object(&format!("{namespace}-{name}")));
    }
    let _controller = Controller::start(&cluster, None);
    let previews = json!({"branches": "preview/*", "environment": "dev", "max": 3});
    let sync =
        environment_sync(&cluster, &namespace, "shop", spec(&source, json!({"interval": "2s", "previews": previews})));
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "three previews Ready", |live| {
        live["status"]["previews"].as_array().is_some_and(|p| p.iter().filter(|p| p["state"] == "Ready").count() == 3)
    });
    let states: Vec<(String, String)> = live["status"]["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["state"].as_str().unwrap().to_string()))
        .collect();
    let expected = [("a", "Waiting"), ("b", "Ready"), ("c", "Waiting"), ("d", "Ready"), ("e", "Ready")];
    assert_eq!(states, expected.map(|(n, s)| (n.to_string(), s.to_string())), "sorted by name, the newest waiting");
    let waiting = preview(&live, "a").unwrap()["message"].as_str().unwrap().to_string();
    assert!(waiting.contains("5 branches match spec.previews.branches and spec.previews.max is 3"), "{waiting}");
    for name in ["a", "c"] {
        assert!(cluster.get(&namespace_object(&format!("{namespace}-{name}"))).is_none(), "{name} waits unmade");
    }
    assert_eq!(config_map(&cluster, &format!("{namespace}-b"), "app").unwrap()["data"]["greeting"], "b");

    // Every commit here is of 2023: 72h after it, all have expired, and the made ones go.
    let expire = json!({"spec": {"previews": {"expireAfter": "72h"}}});
    cluster.merge_patch(&sync, &expire, "previews-test");
    until_status(&cluster, &sync, "the expired previews pruned", |live| live["status"]["previews"].is_null());
    for name in ["b", "d", "e"] {
        let made = format!("{namespace}-{name}");
        eventually("the expired preview's namespace gone", || match namespace_gone(&cluster, &made) {
            true => Ok(()),
            false => Err(format!("namespace {made} is still there")),
        });
    }
    let pruned = events(&cluster, &namespace, "shop", "PreviewPruned");
    assert_eq!(pruned.len(), 3, "{pruned:?}");
    assert!(pruned.iter().all(|note| note.contains("expired (spec.previews.expireAfter)")), "{pruned:?}");
}

/// Environment `dev` reads the demo's SOPS secrets, which the Secret `age-keys` decrypts for the
/// sync; main committed.
fn dev_reads_secrets(cluster: &TestCluster, namespace: &str, source: &Source) -> String {
    let root = crate::common::project_root();
    source.write("secrets/dev.yaml", &std::fs::read_to_string(root.join("secrets/dev.yaml")).unwrap());
    source.write(
        "environments/dev.yaml",
        &format!("namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nsecrets: [secrets/dev.yaml]\nreleases:\n  - name: app\n    chart: app\n"),
    );
    let main = source.commit("dev reads secrets");
    let key = std::fs::read_to_string(root.join("secrets/dev.agekey")).unwrap();
    cluster.create(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "age-keys", "namespace": namespace},
                "stringData": {"dev.agekey": key}}),
    );
    main
}

#[test]
fn a_preview_gets_no_decryption_identity_where_the_sync_decrypts_with_its_own_unless_given_to_branches() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    let main = dev_reads_secrets(&cluster, &namespace, &source);
    let branch = push(&source, "preview/s", GREETING, "greeting: secret preview\n", 1_700_000_100);
    cluster.delete_later(&namespace_object(&format!("{namespace}-s")));
    let _controller = Controller::start(&cluster, None);
    let extra = json!({"interval": "2s", "decryption": {"secretRef": {"name": "age-keys"}},
                       "previews": {"branches": "preview/*", "environment": "dev"}});
    let sync = environment_sync(&cluster, &namespace, "shop", spec(&source, extra));
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "the preview failed", |live| {
        preview(live, "s").is_some_and(|p| p["state"] == "Failed")
    });
    assert_eq!(live["status"]["lastAppliedRevision"], main, "the sync decrypts with its Secret: {}", live["status"]);
    let failed = preview(&live, "s").unwrap();
    assert_eq!(failed["commit"], branch);
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("secrets/dev.yaml: no age identity available to decrypt it"), "{message}");
    assert!(message.contains("a preview (spec.previews), which is given no decryption identities"), "{message}");
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
    assert!(config_map(&cluster, &format!("{namespace}-s"), "app").is_none(), "nothing of it applied");

    // Opted in for the repository's own branches, it decrypts as the sync does.
    let opted = json!({"spec": {"previews": {"decryption": "Branches"}}});
    cluster.merge_patch(&sync, &opted, "previews-test");
    until_status(&cluster, &sync, "the preview Ready", |live| {
        preview(live, "s").is_some_and(|p| p["state"] == "Ready")
    });
    let applied = config_map(&cluster, &format!("{namespace}-s"), "app").expect("the preview's ConfigMap");
    assert_eq!(applied["data"]["greeting"], "secret preview");
}

/// The forge's token, which no status, Event or log may show.
const FORGE_TOKEN: &str = "forge-token-5b1e9c2d7a";

/// A pull request of the forge, open.
fn request(number: u64, branch: &str, sha: &str, labels: &[&str], fork: bool) -> PullRequest {
    PullRequest {
        number,
        branch: branch.into(),
        sha: sha.into(),
        labels: labels.iter().map(ToString::to_string).collect(),
        fork,
        open: true,
    }
}

/// The statuses `forge` was given on `sha`: (state, description) in order, each body checked to
/// be of the provider's shape with the sync's context.
fn statuses_on(forge: &FakeForge, sha: &str, context: &str) -> Vec<(String, String)> {
    let (name_key, failed) = match forge.provider {
        Provider::GitLab => ("name", "failed"),
        _ => ("context", "failure"),
    };
    forge
        .statuses()
        .into_iter()
        .filter(|s| s.sha == sha)
        .map(|s| {
            let body = s.body.as_object().unwrap();
            let keys: Vec<&str> = body.keys().map(String::as_str).collect();
            let mut expected = vec!["state", name_key, "description"];
            expected.sort_unstable();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(keys, expected, "{body:?}");
            assert_eq!(body[name_key], context);
            let state = body["state"].as_str().unwrap();
            // The record's word for a failure, whatever the provider says.
            let state = if state == failed { "failure" } else { state };
            (state.to_string(), body["description"].as_str().unwrap().to_string())
        })
        .collect()
}

/// A forge's pull requests carrying the label get previews; an unlabelled one, and one whose head
/// branch is outside `branches`, get none; the statuses pending then success (failure, with the
/// reason, for the fork's, which is given no decryption identity under `Branches` where the
/// same repository's request is) are posted once each; closing a request prunes its preview;
/// the token goes only as the provider's header, and no status, Event or log shows it.
fn pull_requests_of(provider: Provider) {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    dev_reads_secrets(&cluster, &namespace, &source);
    let forge = FakeForge::start(provider, "shop/web", FORGE_TOKEN);
    let a = push(&source, "feature/a", GREETING, "greeting: preview a\n", 1_700_000_100);
    let b = push(&source, "feature/b", GREETING, "greeting: unlabelled\n", 1_700_000_100);
    let c = push(&source, "other/c", GREETING, "greeting: outside the glob\n", 1_700_000_100);
    let f = push(&source, "forked/f", GREETING, "greeting: a fork's\n", 1_700_000_100);
    // The fork's commit is in the base repository only under the forge's ref of its request.
    delete_branch(&source, "forked/f");
    for (number, branch, sha, labels, fork) in [
        (1, "feature/a", &a, &["preview"][..], false),
        (2, "feature/b", &b, &[][..], false),
        (3, "other/c", &c, &["preview"][..], false),
        (4, "feature/f", &f, &["preview", "extra"][..], true),
    ] {
        forge.set(request(number, branch, sha, labels, fork));
        let oid = git2::Oid::from_str(sha).unwrap();
        source.repo.reference(&provider.head_ref(number), oid, true, "the forge's head of the request").unwrap();
        cluster.delete_later(&namespace_object(&format!("{namespace}-pr-{number}")));
    }
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "forge", "namespace": namespace},
                           "stringData": {"token": FORGE_TOKEN}}));
    let replica = Replica::start(&cluster, &namespace, "forge-replica", &[]);
    let previews = json!({
        "branches": "feature/*", "environment": "dev", "decryption": "Branches",
        "pullRequests": {"labels": ["preview"]},
        "forge": {"provider": provider.name(), "url": forge.api(), "repository": "shop/web",
                  "secretRef": {"name": "forge"}}
    });
    let extra = json!({"interval": "2s", "decryption": {"secretRef": {"name": "age-keys"}}, "previews": previews});
    let sync = environment_sync(&cluster, &namespace, "shop", spec(&source, extra));
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "pr-1 Ready and pr-4 Failed, their statuses posted", |live| {
        preview(live, "pr-1").is_some_and(|p| p["commitStatus"] == "success")
            && preview(live, "pr-4").is_some_and(|p| p["commitStatus"] == "failure")
    });
    let names: Vec<&str> =
        live["status"]["previews"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pr-1", "pr-4"], "pr-2 is unlabelled, pr-3's head is outside feature/*");
    let first = format!("{namespace}-pr-1");
    assert_eq!(
        preview(&live, "pr-1").unwrap(),
        &json!({"name": "pr-1", "branch": "feature/a", "pullRequest": 1, "commit": a, "namespace": first,
                "environment": "dev--pr-1", "state": "Ready", "lastAppliedCommit": a, "commitStatus": "success"})
    );
    assert_eq!(config_map(&cluster, &first, "app").expect("pr-1's ConfigMap")["data"]["greeting"], "preview a");
    let fork = preview(&live, "pr-4").unwrap();
    assert_eq!((&fork["state"], &fork["commit"]), (&json!("Failed"), &json!(f)));
    let reason = fork["message"].as_str().unwrap().to_string();
    assert!(reason.contains("which is given no decryption identities (spec.previews.decryption)"), "{reason}");
    assert!(config_map(&cluster, &format!("{namespace}-pr-4"), "app").is_none(), "nothing of the fork's applied");

    let context = format!("weaver/{namespace}/shop");
    let posted = statuses_on(&forge, &a, &context);
    let ready = format!("preview pr-1 is Ready in namespace {first}");
    assert_eq!(posted, [("pending".into(), "applying preview pr-1".into()), ("success".into(), ready)]);
    let posted = statuses_on(&forge, &f, &context);
    let cut: String = reason.chars().take(140).collect();
    assert_eq!(posted, [("pending".into(), "applying preview pr-4".into()), ("failure".into(), cut)]);
    assert!(statuses_on(&forge, &b, &context).is_empty() && statuses_on(&forge, &c, &context).is_empty());
    // Later reconciles (every 2 s; pr-4 is tried again at each) post nothing more.
    let count = forge.statuses().len();
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(forge.statuses().len(), count, "{:?}", forge.statuses());

    forge.set(PullRequest { open: false, ..request(1, "feature/a", &a, &["preview"], false) });
    until_status(&cluster, &sync, "pr-1 pruned", |live| preview(live, "pr-1").is_none());
    eventually("pr-1's namespace gone", || match namespace_gone(&cluster, &first) {
        true => Ok(()),
        false => Err(format!("namespace {first} is still there")),
    });
    let pruned = events(&cluster, &namespace, "shop", "PreviewPruned");
    assert!(
        pruned.iter().any(|n| n.contains("preview pr-1 pruned (its pull request #1 is closed, merged or no longer")),
        "{pruned:?}"
    );

    // The token went as the provider's header alone, to the API's paths only.
    let received = forge.received();
    let (header, value) = match provider {
        Provider::GitLab => ("private-token", FORGE_TOKEN.to_string()),
        Provider::GitHub => ("authorization", format!("Bearer {FORGE_TOKEN}")),
        Provider::Gitea => ("authorization", format!("token {FORGE_TOKEN}")),
    };
    let list_path = match provider {
        Provider::GitHub => "/repos/shop/web/pulls?state=open&per_page=100".to_string(),
        Provider::GitLab => {
            "/api/v4/projects/shop%2Fweb/merge_requests?state=opened&labels=preview&per_page=100".into()
        }
        Provider::Gitea => "/api/v1/repos/shop/web/pulls?state=open&limit=50".into(),
    };
    assert!(received.iter().any(|r| r.method == "GET" && r.path == list_path), "{received:?}");
    assert!(received.iter().any(|r| r.method == "GET" && r.path.contains("page=2")), "the second page read");
    for r in &received {
        assert_eq!(r.header(header), Some(value.as_str()), "{} {}", r.method, r.path);
        let elsewhere = r.headers.iter().filter(|(name, _)| name != header).any(|(_, v)| v.contains(FORGE_TOKEN));
        assert!(!elsewhere && !r.path.contains(FORGE_TOKEN), "{} {}", r.method, r.path);
        assert!(!String::from_utf8_lossy(&r.body).contains(FORGE_TOKEN), "{} {}", r.method, r.path);
        let status_path = r.path.contains("/statuses/") && r.method == "POST";
        assert!(status_path || r.method == "GET", "{} {}", r.method, r.path);
    }
    let live = get(&cluster, &sync);
    assert!(!live.to_string().contains(FORGE_TOKEN), "the EnvironmentSync: {live}");
    let notes = cluster.list("events.k8s.io/v1", "Event", "events", &namespace);
    assert!(!serde_json::to_string(&notes).unwrap().contains(FORGE_TOKEN), "the Events");
    assert!(!replica.log().contains(FORGE_TOKEN), "the controller's log");
}

#[test]
fn github_pull_requests_carrying_the_label_get_previews_and_commit_statuses() {
    pull_requests_of(Provider::GitHub);
}

#[test]
fn gitlab_merge_requests_carrying_the_label_get_previews_and_commit_statuses() {
    pull_requests_of(Provider::GitLab);
}

#[test]
fn gitea_pull_requests_carrying_the_label_get_previews_and_commit_statuses() {
    pull_requests_of(Provider::Gitea);
}

#[test]
fn values_files_know_the_preview_its_releases_stay_in_it_a_late_first_apply_creates_it_removal_prunes() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    let other = cluster.namespace("other");
    source.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n  - name: app\n    chart: app\n    \
             valuesFiles: [values/app.yaml.gotmpl]\n  - name: side\n    chart: side\n    namespace: {other}\n"
        ),
    );
    // A templated values file (a Helm release's way to the environment's values) knows the preview.
    source.write(
        "values/app.yaml.gotmpl",
        "greeting: {{ if hasKey .Values \"preview\" }}preview {{ .Values.preview.name }} at {{ .Values.preview.branch }}{{ else }}hello{{ end }}\n",
    );
    source.write("charts/side/chart.yaml", "name: side\nversion: 0.1.0\n");
    source.write(
        "charts/side/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: side\ndata:\n  greeting: side\n",
    );
    source.commit("dev writes in another namespace too");
    // The branch's first commit does not render.
    let broken = push(&source, "preview/p", "charts/app/templates/broken.yaml", "{{ nope( }}\n", 1_700_000_100);
    let preview_namespace = format!("{namespace}-p");
    cluster.delete_later(&namespace_object(&preview_namespace));
    let _controller = Controller::start(&cluster, None);
    let extra = json!({"interval": "2s", "previews": {"branches": "preview/*", "environment": "dev"}});
    let sync = environment_sync(&cluster, &namespace, "shop", spec(&source, extra));
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "the preview failed", |live| {
        preview(live, "p").is_some_and(|p| p["state"] == "Failed" && p["commit"] == broken)
    });
    assert!(preview(&live, "p").unwrap()["lastAppliedCommit"].is_null(), "never applied: {}", live["status"]);
    let mended = push(&source, "preview/p", "charts/app/templates/broken.yaml", "", 1_700_000_200);
    until_status(&cluster, &sync, "the mended preview Ready", |live| {
        preview(live, "p").is_some_and(|p| p["state"] == "Ready" && p["lastAppliedCommit"] == mended)
    });
    let created = events(&cluster, &namespace, "shop", "PreviewCreated");
    assert_eq!(created.len(), 1, "its first apply that succeeded is its creation: {created:?}");
    assert!(created[0].contains(&format!("applied at {}", &mended[..12])), "{created:?}");
    assert_eq!(config_map(&cluster, &preview_namespace, "app").unwrap()["data"]["greeting"], "preview p at preview/p");
    assert_eq!(config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "hello", "dev is no preview");
    // Release `side` of namespace `other` went to the preview's namespace, not to `other`.
    let side = config_map(&cluster, &preview_namespace, "side").expect("the preview's side");
    assert_eq!(side["metadata"]["labels"]["weaver.example.com/environment"], "dev--p");
    let others = config_map(&cluster, &other, "side").expect("dev's own side");
    assert_eq!(others["metadata"]["labels"]["weaver.example.com/environment"], "dev", "the preview wrote no other's");

    cluster.merge_patch(&sync, &json!({"spec": {"previews": null}}), "previews-test");
    until_status(&cluster, &sync, "the previews pruned", |live| live["status"]["previews"].is_null());
    eventually("the preview's namespace gone", || match namespace_gone(&cluster, &preview_namespace) {
        true => Ok(()),
        false => Err(format!("namespace {preview_namespace} is still there")),
    });
    let pruned = events(&cluster, &namespace, "shop", "PreviewPruned");
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert!(pruned[0].contains("preview p pruned (spec.previews was removed)"), "{pruned:?}");
    assert!(config_map(&cluster, &other, "side").is_some(), "dev's own release stays");
}

#[test]
fn spec_source_verify_holds_for_previews_an_unsigned_branch_is_refused_and_a_signed_one_applied() {
    let missing = weaver_test_support::signing::missing(&["git", "ssh-keygen"]);
    if !http_or_skip() || !crate::common::skip::interop_or_skip(missing.as_deref()) {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = weaver_test_support::signing::ssh_key(keys.path(), "alice", &["-t", "ed25519"]);
    let signing = format!("user.signingkey={}", key.display());
    let work = source.work();
    let git = |config: &[&str], args: &[&str]| weaver_test_support::signing::git(&work, &[], config, args);
    // Main's head signed, as the sync's own environment needs; a branch of an unsigned commit and
    // one of a signed commit, each with its greeting.
    git(&[&signing], &["commit", "-q", "-S", "--allow-empty", "-m", "signed main"]);
    for (branch, sign) in [("preview/unsigned", "--no-gpg-sign"), ("preview/signed", "-S")] {
        git(&[], &["checkout", "-q", "-b", branch]);
        std::fs::write(work.join(GREETING), format!("greeting: {branch}\n")).unwrap();
        git(&[&signing], &["commit", "-q", "-a", sign, "-m", branch]);
        git(&[], &["checkout", "-q", "main"]);
        cluster.delete_later(&namespace_object(&format!("{namespace}-{}", branch.trim_start_matches("preview/"))));
    }
    cluster.create(&json!({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "git-signers", "namespace": namespace},
                           "stringData": {"allowed_signers": format!("test@example.com {public}\n")}}));
    let _controller = Controller::start(&cluster, None);
    let mut spec =
        spec(&source, json!({"interval": "2s", "previews": {"branches": "preview/*", "environment": "dev"}}));
    spec["source"]["verify"] = json!({"mode": "head", "secretRef": {"name": "git-signers"}});
    let sync = environment_sync(&cluster, &namespace, "shop", spec);
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "both previews settled", |live| {
        preview(live, "signed").is_some_and(|p| p["state"] == "Ready")
            && preview(live, "unsigned").is_some_and(|p| p["state"] == "Failed")
    });
    let refused = preview(&live, "unsigned").unwrap()["message"].as_str().unwrap().to_string();
    assert!(refused.contains("branch preview/unsigned"), "{refused}");
    assert!(refused.contains("Secret") && refused.contains("git-signers"), "{refused}");
    assert!(refused.contains("nothing of it is applied"), "{refused}");
    assert!(cluster.get(&namespace_object(&format!("{namespace}-unsigned"))).is_none(), "no namespace for it");
    let signed = config_map(&cluster, &format!("{namespace}-signed"), "app").expect("the signed preview applied");
    assert_eq!(signed["data"]["greeting"], "preview/signed");
}

#[test]
fn a_preview_that_spends_the_syncs_timeout_leaves_the_others_for_the_next_reconcile_and_goes_last_there() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    // preview/a renders for longer than spec.timeout; preview/b at once.
    let endless = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}";
    let slow = push(&source, "preview/a", "charts/app/templates/slow.yaml", endless, 1_700_000_100);
    let quick = push(&source, "preview/b", GREETING, "greeting: b\n", 1_700_000_200);
    for name in ["a", "b"] {
        cluster.delete_later(&namespace_object(&format!("{namespace}-{name}")));
    }
    let _controller = Controller::start(&cluster, None);
    let extra = json!({"interval": "1h", "timeout": "3s", "retryInterval": "2s",
                       "previews": {"branches": "preview/*", "environment": "dev"}});
    let sync = environment_sync(&cluster, &namespace, "shop", spec(&source, extra));
    cluster.create(&sync);

    // a goes first (by name) and spends the time: b is left, saying why.
    let live = until_status(&cluster, &sync, "b left for the next reconcile", |live| {
        preview(live, "b").is_some_and(|p| p["state"] == "Waiting")
    });
    let left = preview(&live, "b").unwrap()["message"].as_str().unwrap().to_string();
    assert!(left.contains("not made at this reconcile: the previews' time (spec.timeout, 3 s) ran out"), "{left}");
    let failed = preview(&live, "a").unwrap();
    assert_eq!((&failed["state"], &failed["commit"]), (&json!("Failed"), &json!(slow)), "{}", live["status"]);
    // The next reconcile (at retryInterval, not the interval) applies b before trying a again.
    let live = until_status(&cluster, &sync, "b Ready", |live| {
        preview(live, "b").is_some_and(|p| p["state"] == "Ready" && p["commit"] == quick)
    });
    assert_eq!(preview(&live, "a").unwrap()["state"], "Failed");
    assert_eq!(config_map(&cluster, &format!("{namespace}-b"), "app").unwrap()["data"]["greeting"], "b");
}

/// A preview's Ingress, TLS for its host: the preview's URL without `spec.previews.url`.
const INGRESS: &str = "{% if \"preview\" in env.values %}apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  \
                       name: web\nspec:\n  tls:\n    - hosts: [\"{{ env.values.preview.name }}.preview.example.org\"]\n  \
                       rules:\n    - host: \"{{ env.values.preview.name }}.preview.example.org\"\n      http:\n        \
                       paths:\n          - path: /shop\n            pathType: Prefix\n            backend:\n              \
                       service:\n                name: web\n                port:\n                  number: 80\n\
                       {% endif %}";

#[test]
fn a_preview_deleted_on_request_is_pruned_stays_deleted_until_a_push_and_says_its_url() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    source.write("charts/app/templates/ingress.yaml", INGRESS);
    source.commit("the preview's Ingress");
    let (_controller, sync, live, first, preview_namespace) = preview_a_ready(&cluster, &namespace, &source);
    assert_eq!(preview(&live, "a").unwrap()["url"], "https://a.preview.example.org/shop", "its Ingress's, TLS");

    let cli = Repo::empty();
    let listed = cli.weaver_on(&cluster, &["previews", "list", "-n", &namespace]);
    let row: Vec<String> = listed.success().lines().nth(1).unwrap().split_whitespace().map(String::from).collect();
    let expected = ["shop", "a", "preview/a", &first[..12], "Ready", &preview_namespace];
    assert_eq!(row[..6], expected, "{}", listed.stdout);
    assert_eq!(row[6..], ["https://a.preview.example.org/shop", "-"], "{}", listed.stdout);

    let deleted = cli.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "-n", &namespace, "--wait"]);
    assert!(
        deleted.success().contains(&format!("preview a of EnvironmentSync {namespace}/shop deleted")),
        "{deleted:?}"
    );
    let live = get(&cluster, &sync);
    let gone = preview(&live, "a").expect("a deleted preview stays listed");
    assert_eq!((&gone["state"], &gone["commit"], &gone["url"]), (&json!("Deleted"), &json!(first), &Value::Null));
    eventually("the deleted preview's objects and namespace gone", || {
        match (config_map(&cluster, &preview_namespace, "app"), namespace_gone(&cluster, &preview_namespace)) {
            (None, true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let pruned = events(&cluster, &namespace, "shop", "PreviewPruned");
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert!(pruned[0].contains("preview a pruned (its deletion was asked for (weaver previews delete))"), "{pruned:?}");
    // Reconciles go on (every 2s) and leave it deleted at its commit.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let later = get(&cluster, &sync);
    assert_eq!(preview(&later, "a").unwrap()["state"], "Deleted", "{}", later["status"]);
    assert!(namespace_gone(&cluster, &preview_namespace), "not made again");
    let again = cli.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "-n", &namespace]);
    assert!(again.success().contains("was already deleted"), "{again:?}");

    // A push makes it again; spec.previews.url gives its URL from then on.
    let url = json!({"spec": {"previews": {"url": "https://{name}.review.example.org"}}});
    cluster.merge_patch(&sync, &url, "previews-test");
    let second = push(&source, "preview/a", GREETING, "greeting: preview a, again\n", 1_700_000_200);
    // A reconcile under way with the spec before the patch may apply the push first (the
    // Ingress's URL); the next one gives the pattern's.
    until_status(&cluster, &sync, "preview a made again, its URL the pattern's", |live| {
        preview(live, "a").is_some_and(|p| {
            p["state"] == "Ready" && p["commit"] == second && p["url"] == "https://a.review.example.org"
        })
    });
    assert_eq!(config_map(&cluster, &preview_namespace, "app").unwrap()["data"]["greeting"], "preview a, again");
    assert_eq!(events(&cluster, &namespace, "shop", "PreviewCreated").len(), 2, "made twice");

    // Unknown previews and EnvironmentSyncs are named.
    let unknown = cli.weaver_on(&cluster, &["previews", "delete", "zz", "--sync", "shop", "-n", &namespace]);
    let stderr = unknown.failure();
    assert!(stderr.contains(&format!("EnvironmentSync {namespace}/shop has no preview `zz`")), "{stderr}");
    assert!(stderr.contains("its previews are: a"), "{stderr}");
    let stray = cli.weaver_on(&cluster, &["previews", "list", "--sync", "nope", "-n", &namespace]);
    assert!(stray.failure().contains(&format!("EnvironmentSync `nope` not found in namespace `{namespace}`")));
}

#[test]
fn a_changed_base_environment_removes_what_the_old_one_applied_before_applying_the_new() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    // Environment `review`: dev's releases, from main (the branch below is made from it).
    let dev = std::fs::read_to_string(source.work().join("environments/dev.yaml")).unwrap();
    source.write("environments/review.yaml", &dev);
    source.commit("environment review");
    let (_controller, sync, _, first, preview_namespace) = preview_a_ready(&cluster, &namespace, &source);
    let applied = config_map(&cluster, &preview_namespace, "app").unwrap();
    assert_eq!(applied["metadata"]["labels"]["weaver.example.com/environment"], "dev--a");

    cluster.merge_patch(&sync, &json!({"spec": {"previews": {"environment": "review"}}}), "previews-test");
    let live = until_status(&cluster, &sync, "preview a applied as review--a", |live| {
        preview(live, "a").is_some_and(|p| p["environment"] == "review--a" && p["state"] == "Ready")
    });
    assert_eq!(preview(&live, "a").unwrap()["commit"], first);
    // Its objects are review--a's now: dev--a's were removed first (weaver refuses to write an
    // object another environment's labels claim).
    let applied = config_map(&cluster, &preview_namespace, "app").unwrap();
    assert_eq!(applied["metadata"]["labels"]["weaver.example.com/environment"], "review--a");
    assert_eq!(applied["data"]["greeting"], "preview a");
}
