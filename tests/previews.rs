//! Preview environments (`spec.previews`): the controller in-process against the fake API server
//! or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`, its git server on loopback. A branch
//! matching the glob gets its namespace and the base environment applied in it; a push updates
//! it; its deletion prunes it; over the maximum, the newest wait; past `expireAfter`, pruned; a
//! preview decrypts only where `spec.previews.decryption` says.
//! With a forge (`weaver_test_support::forge`, GitHub's, GitLab's or Gitea's API on loopback),
//! the open pull requests carrying the labels get previews and commit statuses.

use git2::{IndexAddOption, Signature, Time};
use serde_json::{Value, json};
use weaver_test_support::forge::{FakeForge, Provider, PullRequest};

use crate::common::cluster::TestCluster;
use crate::common::eventually;
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
             "resources": ["configmaps", "secrets", "leases", "events"], "verbs": ["*"]}
        ]
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}]
    }));
}

/// A commit on `branch` (from main's head when it is new) with `path` written as `content`,
/// made at `time` (seconds); main and its working tree are left as they were.
fn push(source: &Source, branch: &str, path: &str, content: &str, time: i64) -> String {
    let repo = &source.repo;
    let refname = format!("refs/heads/{branch}");
    let parent = match repo.find_reference(&refname) {
        Ok(reference) => reference.peel_to_commit().unwrap(),
        Err(_) => repo.head().unwrap().peel_to_commit().unwrap(),
    };
    let full = source.work().join(path);
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
    source.repo.find_reference(&format!("refs/heads/{branch}")).unwrap().delete().unwrap();
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
    push(&source, "feature/x", GREETING, "greeting: feature\n", 1_700_000_100);
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
    assert_eq!(live["status"]["previews"].as_array().unwrap().len(), 1, "feature/x is outside the glob");
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
                "state": "Ready", "commitStatus": "success"})
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
