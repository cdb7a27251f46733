//! Preview environments (`spec.previews`): the controller in-process against the fake API server
//! or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`, its git server on loopback. A branch
//! matching the glob gets its namespace and the base environment applied in it; a push updates
//! it; its deletion prunes it; over the maximum, the newest wait; past `expireAfter`, pruned.

use git2::{IndexAddOption, Signature, Time};
use serde_json::{Value, json};

use crate::common::cluster::TestCluster;
use crate::common::eventually;
use crate::gitops::{Controller, Source, config_map, environment_sync, get, http_or_skip, spec, tenant, until_status};

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
             "resources": ["configmaps", "secrets", "leases", "events"], "verbs": ["*"]}
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

#[test]
fn a_pushed_branch_gets_its_preview_a_push_updates_it_and_its_deletion_prunes_it() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    let first = push(&source, "preview/a", GREETING, "greeting: preview a\n", 1_700_000_100);
    // Outside the glob: another prefix, and a name `*` does not reach (it crosses no `/`).
    push(&source, "feature/x", GREETING, "greeting: feature\n", 1_700_000_100);
    push(&source, "preview/x/y", GREETING, "greeting: nested\n", 1_700_000_100);
    let preview_namespace = format!("{namespace}-a");
    cluster.delete_later(&namespace_object(&preview_namespace));
    let _controller = Controller::start(&cluster, None);
    let previews = json!({"branches": "preview/*", "environment": "dev"});
    let sync =
        environment_sync(&cluster, &namespace, "shop", spec(&source, json!({"interval": "2s", "previews": previews})));
    cluster.create(&sync);

    let live = until_status(&cluster, &sync, "preview a Ready", |live| {
        preview(live, "a").is_some_and(|p| p["state"] == "Ready" && p["commit"] == first)
    });
    assert_eq!(
        preview(&live, "a").unwrap(),
        &json!({"name": "a", "branch": "preview/a", "commit": first, "namespace": preview_namespace, "state": "Ready"})
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

#[test]
fn a_preview_gets_no_decryption_identity_where_the_sync_decrypts_with_its_own() {
    if !http_or_skip() {
        return;
    }
    let (cluster, namespace, source) = tenant_with_previews();
    // Environment dev reads the demo's secrets file, which the demo's key decrypts.
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
}
