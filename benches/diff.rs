//! `weaver diff` end to end over 1,000 releases (3,000 objects), all live, with one object
//! changed. Target: ≤ 2 s in a release build. Also times server mode (one dry-run apply for the
//! changed object) and the offline `--live-from` mode.
//!
//! `WEAVER_BENCH_KUBECONFIG=FILE cargo bench --bench diff` runs against that cluster's current
//! context (it creates and leaves namespace `bench`). Without it the in-process fake is used,
//! whose write path is too slow to seed 3,000 objects in reasonable time: set
//! `WEAVER_BENCH_RELEASES` (default 1,000) lower there.

mod support;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn main() {
    let (dir, fake, kubeconfig) = support::setup();
    let repo = dir.path().to_str().unwrap();

    let rendered = support::time_weaver(&["--repo", repo, "render", "--env", "bench"], 1).stdout;
    let objects = weaver::yaml::documents(std::path::Path::new("render"), &String::from_utf8(rendered).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    apply_all(&kubeconfig, &objects);
    println!("set-up: applied {} objects in {}", objects.len(), support::ms(started.elapsed()));

    // One object changes: the replicas of one release.
    let env_path = dir.path().join("environments/bench.yaml");
    let env = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(&env_path, env.replacen("replicas: 1\n", "replicas: 5\n", 1)).unwrap();

    let mut live = String::new();
    for object in &objects {
        live.push_str("---\n");
        live.push_str(&weaver::yaml::to_yaml_string(object));
    }
    let live_file = dir.path().join("live.yaml");
    std::fs::write(&live_file, live).unwrap();

    let cases: [(&str, Vec<&str>); 3] = [
        ("client mode", vec!["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", "bench"]),
        ("server mode", vec!["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", "bench", "--server-side"]),
        ("--live-from", vec!["--repo", repo, "diff", "--env", "bench", "--live-from", live_file.to_str().unwrap()]),
    ];
    for (name, args) in cases {
        if let Some(server) = &fake {
            server.clear_requests();
        }
        let timed = support::time_weaver(&args, 5);
        let summary = String::from_utf8_lossy(&timed.stdout).lines().last().unwrap_or_default().to_string();
        let unchanged = objects.len() - 1;
        assert_eq!(summary, format!("0 to create, 1 to update, 0 to delete, {unchanged} unchanged"), "{name}");
        println!(
            "diff {name:<12} {} objects, 1 changed: median {}, min {}, max {}, {} requests per run (fake only); peak RSS {:.1} MB",
            objects.len(),
            support::ms(timed.median()),
            support::ms(timed.times[0]),
            support::ms(timed.times[timed.times.len() - 1]),
            fake.as_ref().map_or(0, |server| server.requests().len() / 5),
            timed.peak_rss as f64 / 1e6
        );
    }
}

/// Creates the namespace and server-side applies every object as `weaver`, 16 at a time.
fn apply_all(kubeconfig: &str, objects: &[Value]) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let namespaces: Api<DynamicObject> =
            Api::all_with(client.clone(), &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
        let namespace =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}))
                .unwrap();
        namespaces.create(&PostParams::default(), &namespace).await.unwrap();
        let resource = |object: &Value| {
            let api_version = object["apiVersion"].as_str().unwrap();
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let kind = object["kind"].as_str().unwrap();
            ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: api_version.into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
            }
        };
        futures::stream::iter(objects.iter().map(|object| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "bench", &resource(object));
            async move {
                let name = object["metadata"]["name"].as_str().unwrap();
                api.patch(name, &PatchParams::apply("weaver"), &Patch::Apply(object)).await.unwrap();
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    });
}
