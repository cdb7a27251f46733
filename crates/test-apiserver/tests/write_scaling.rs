//! Write-path scaling: seeds the fake the way weaver's benchmarks do
//! (releases of ConfigMap + Deployment + Service, by server-side apply and by
//! plain creates) and times it for growing store sizes.
//!
//! `seed_small` runs by default and only checks that seeding works; the timed
//! run is ignored by default:
//!
//! ```sh
//! cargo test --release -p weaver-test-apiserver --test suite write_scaling -- --ignored --nocapture
//! WEAVER_FAKE_SCALING=300,1000,3000 cargo test --release -p weaver-test-apiserver --test suite write_scaling -- --ignored --nocapture
//! ```

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weaver_test_apiserver::TestApiServer;

async fn client(server: &TestApiServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn ar(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The three objects of release `i`.
fn release(i: usize) -> [(ApiResource, Value); 3] {
    let name = format!("rel-{i}");
    let labels = json!({"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": "weaver"});
    [
        (
            ar("v1", "ConfigMap", "configmaps"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
                "data": {"config.yaml": format!("release: {i}\nreplicas: 2\n"), "LOG_LEVEL": "info"}}),
        ),
        (
            ar("apps/v1", "Deployment", "deployments"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                        "name": "app", "image": format!("registry.example/app:{i}"),
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "env": [{"name": "RELEASE", "value": name}, {"name": "LOG_LEVEL", "value": "info"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}),
        ),
        (
            ar("v1", "Service", "services"),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        ),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Apply,
    Create,
}

/// Seeds `releases` releases spread over `namespaces` namespaces; returns the
/// time the writes took and the time four cluster-wide LISTs took.
async fn seed(releases: usize, namespaces: usize, mode: Mode) -> (Duration, Duration) {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let ns_api: Api<DynamicObject> = Api::all_with(c.clone(), &ar("v1", "Namespace", "namespaces"));
    for n in 0..namespaces {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}});
        ns_api.create(&PostParams::default(), &serde_json::from_value(ns).unwrap()).await.unwrap();
    }
    let start = Instant::now();
    let apply = PatchParams::apply("weaver").force();
    for i in 0..releases {
        let ns = format!("ns-{}", i % namespaces);
        for (res, obj) in release(i) {
            let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), &ns, &res);
            match mode {
                Mode::Apply => {
                    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
                    api.patch(&name, &apply, &Patch::Apply(&obj)).await.unwrap();
                }
                Mode::Create => {
                    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.unwrap();
                }
            }
        }
    }
    let writes = start.elapsed();
    let start = Instant::now();
    for (res, _) in release(0) {
        let all: Api<DynamicObject> = Api::all_with(c.clone(), &res);
        assert!(all.list(&ListParams::default()).await.unwrap().items.len() >= releases);
    }
    let labelled: Api<DynamicObject> = Api::all_with(c.clone(), &ar("apps/v1", "Deployment", "deployments"));
    let one = labelled.list(&ListParams::default().labels("app.kubernetes.io/instance=rel-0")).await.unwrap();
    assert_eq!(one.items.len(), 1);
    (writes, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_small() {
    let (_, _) = seed(20, 20, Mode::Apply).await;
    let (_, _) = seed(20, 2, Mode::Create).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing run; see the module docs"]
async fn write_scaling() {
    let sizes: Vec<usize> = std::env::var("WEAVER_FAKE_SCALING")
        .unwrap_or_else(|_| "300,1000,3000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("object counts"))
        .collect();
    for objects in sizes {
        let releases = objects / 3;
        for (label, namespaces, mode) in [
            ("apply, one namespace per release", releases, Mode::Apply),
            ("apply, 4 namespaces", 4, Mode::Apply),
            ("create, 4 namespaces", 4, Mode::Create),
        ] {
            let (writes, lists) = seed(releases, namespaces, mode).await;
            println!(
                "{objects:>5} objects, {label:<34} writes {:>8.2?} ({:>7.1?}/write)  4 LISTs {lists:>8.2?}",
                writes,
                writes / objects as u32
            );
        }
    }
}
