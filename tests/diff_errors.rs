//! `weaver diff` bad input: every error names what it concerns and exits 1.

use crate::common;

use common::Repo;
use common::cluster::TestCluster;

fn kubeconfig_for(repo: &Repo, server: &str) -> String {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: c
    cluster: {{ server: \"{server}\" }}
users:
  - name: u
    user: {{ token: fake-token }}
contexts:
  - name: here
    context: {{ cluster: c, user: u }}
current-context: here
"
    );
    repo.write("kubeconfig", &text);
    repo.path().join("kubeconfig").to_str().unwrap().to_string()
}

#[test]
fn a_kubeconfig_that_cannot_be_read() {
    let repo = Repo::minimal();
    let err = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", "/nonexistent/kubeconfig"]).failure().to_string();
    assert!(err.contains("error: /nonexistent/kubeconfig: cannot read kubeconfig: no such file or directory"), "{err}");

    repo.write("broken", "clusters: [ this is not: yaml\n");
    let path = repo.path().join("broken");
    let err = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", path.to_str().unwrap()]).failure().to_string();
    assert!(err.contains(&format!("error: {}:1:", path.display())), "{err}");
    assert!(err.contains(": invalid kubeconfig: "), "{err}");
}

#[test]
fn no_kubeconfig_at_all_says_how_to_name_one() {
    let repo = Repo::minimal();
    let err = repo.weaver(&["diff", "--env", "dev"]).failure().to_string();
    assert!(err.contains(".kube/config: cannot read kubeconfig: no such file or directory"), "{err}");
    assert!(err.contains("help: pass --kubeconfig FILE or set KUBECONFIG"), "{err}");
}

#[test]
fn an_unknown_context_names_where_it_came_from_and_the_known_ones() {
    let repo = Repo::minimal();
    let kubeconfig = kubeconfig_for(&repo, "http://127.0.0.1:9");
    let err =
        repo.weaver(&["diff", "--env", "dev", "--kubeconfig", &kubeconfig, "--context", "nope"]).failure().to_string();
    assert!(err.contains("context `nope` (from --context) is not in kubeconfig"), "{err}");
    assert!(err.contains("help: contexts defined there: here"), "{err}");

    repo.write(
        "environments/dev.yaml",
        "namespace: apps\ncluster: { context: prod-eu }\nreleases:\n  - name: app\n    chart: app\n",
    );
    let err = repo.weaver_env(&["diff", "--env", "dev"], &[("KUBECONFIG", &kubeconfig)]).failure().to_string();
    assert!(
        err.contains("context `prod-eu` (from cluster.context in environments/dev.yaml) is not in kubeconfig"),
        "{err}"
    );
    assert!(err.contains("(from KUBECONFIG)"), "{err}");
}

#[test]
fn an_unreachable_server_is_named() {
    let repo = Repo::minimal();
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = kubeconfig_for(&repo, &format!("http://127.0.0.1:{port}"));
    let err = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", &kubeconfig]).failure().to_string();
    assert!(
        err.contains(&format!(
            "discovering API kinds: cannot reach the cluster (context `here`, http://127.0.0.1:{port})"
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
}

#[test]
fn a_server_that_does_not_answer_times_out_after_request_timeout() {
    let repo = Repo::minimal();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let kubeconfig = kubeconfig_for(&repo, &format!("http://127.0.0.1:{port}"));
    let err = repo
        .weaver(&["diff", "--env", "dev", "--kubeconfig", &kubeconfig, "--request-timeout", "1s"])
        .failure()
        .to_string();
    assert!(err.contains("the cluster did not answer within 1s"), "{err}");
    assert!(err.contains("--request-timeout"), "{err}");

    let err = repo.weaver(&["diff", "--env", "dev", "--request-timeout", "soon"]).failure().to_string();
    assert!(err.contains("`soon` is not a duration"), "{err}");
}

#[test]
fn a_kind_the_server_does_not_know_names_the_template() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("apps");
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", &format!("namespace: {ns}\nreleases:\n  - name: app\n    chart: app\n"));
    repo.write(
        "charts/app/templates/gizmo.yaml",
        "apiVersion: nowhere.example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n",
    );
    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let err = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", kubeconfig]).failure().to_string();
    assert!(
        err.contains(
            "error: charts/app/templates/gizmo.yaml: Gizmo.nowhere.example.com g (release app) is of kind Gizmo (nowhere.example.com/v1), which the cluster"
        ),
        "{err}"
    );
    assert!(err.contains("help: install its CustomResourceDefinition first"), "{err}");

    repo.write("charts/app/templates/gizmo.yaml", "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata:\n  name: g\n");
    let err = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", kubeconfig]).failure().to_string();
    assert!(err.contains("help: the cluster serves this kind as apps/v1"), "{err}");
}

#[test]
fn a_forbidden_list_names_the_resource_and_namespace() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("RBAC denials") else { return };
    let ns = cluster.namespace("apps");
    fake.forbid("list", "configmaps", Some(&ns));
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", &format!("namespace: {ns}\nreleases:\n  - name: app\n    chart: app\n"));
    let err = repo
        .weaver(&["diff", "--env", "dev", "--kubeconfig", cluster.kubeconfig().to_str().unwrap()])
        .failure()
        .to_string();
    assert!(err.contains(&format!("error: listing configmaps in namespace {ns}: forbidden (context `fake`")), "{err}");
    assert!(err.contains("cannot list resource \"configmaps\""), "{err}");
}
