//! `weaver diff` end to end over 100, 333 and 1,000 releases (300, 999 and 3,000 objects), all
//! live, with one object changed, in client mode, server mode (one dry-run apply for the
//! changed object) and the offline `--live-from` mode: times, peak RSS and (on the fake) the
//! requests. Targets for 3,000 objects: ≤ 0.5 s and ≤ 20 GETs against a real server,
//! `--live-from` ≤ 150 ms.
//!
//! `WEAVER_BENCH_KUBECONFIG=FILE cargo bench --bench diff` runs against that cluster's current
//! context (it creates namespaces `bench-<releases>-<pid>` and deletes them when done); without
//! it, against the in-process fake. `WEAVER_BENCH_RELEASES` (say `1000`) picks the sizes.

mod support;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const RUNS: usize = 5;

fn main() {
    let (fake, kubeconfig) = support::cluster();
    println!("against {}", support::cluster_name(&fake, &kubeconfig));
    for releases in support::sizes() {
        let (dir, namespace) = support::sized_repo(releases);
        let repo = dir.path().to_str().unwrap();

        let rendered = support::time_weaver(&["--repo", repo, "render", "--env", "bench"], 1).stdout;
        let objects = weaver_yaml::documents(std::path::Path::new("render"), &String::from_utf8(rendered).unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        apply_all(&kubeconfig, &namespace, &objects);
        println!("set-up: applied {} objects in {}", objects.len(), support::ms(started.elapsed()));

        // One object changes: the replicas of one release.
        let env_path = dir.path().join("environments/bench.yaml");
        let env = std::fs::read_to_string(&env_path).unwrap();
        std::fs::write(&env_path, env.replacen("replicas: 1\n", "replicas: 5\n", 1)).unwrap();

        let mut live = String::new();
        for object in &objects {
            live.push_str("---\n");
            live.push_str(&weaver_yaml::to_yaml_string(object));
        }
        let live_file = dir.path().join("live.yaml");
        std::fs::write(&live_file, live).unwrap();

        let cases: [(&str, Vec<&str>); 3] = [
            ("client mode", vec!["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", "bench"]),
            (
                "server mode",
                vec!["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", "bench", "--server-side"],
            ),
            ("--live-from", vec!["--repo", repo, "diff", "--env", "bench", "--live-from", live_file.to_str().unwrap()]),
        ];
        for (name, args) in cases {
            if let Some(server) = &fake {
                server.clear_requests();
            }
            let timed = support::time_weaver(&args, RUNS);
            let summary = String::from_utf8_lossy(&timed.stdout).lines().last().unwrap_or_default().to_string();
            let unchanged = objects.len() - 1;
            assert_eq!(summary, format!("0 to create, 1 to update, 0 to delete, {unchanged} unchanged"), "{name}");
            let requests = fake.as_ref().map_or_else(
                || "requests not counted on a real cluster".to_string(),
                |server| {
                    let log = server.requests();
                    let gets = log.iter().filter(|r| r.method == "GET").count() / RUNS;
                    format!("{} requests ({gets} GETs) per run", log.len() / RUNS)
                },
            );
            println!(
                "diff {name:<12} {:>5} objects, 1 changed: median {:>6}, min {}, max {}, peak RSS {:.1} MB; {requests}",
                objects.len(),
                support::ms(timed.median()),
                support::ms(timed.times[0]),
                support::ms(timed.times[timed.times.len() - 1]),
                timed.peak_rss as f64 / 1e6
            );
        }
        support::delete_namespace(&kubeconfig, &namespace);
    }
}

/// Creates `namespace` and server-side applies every object into it as `weaver`, 16 at a time.
fn apply_all(kubeconfig: &str, namespace: &str, objects: &[Value]) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = support::client(&runtime, kubeconfig);
    runtime.block_on(async {
        let namespaces: Api<DynamicObject> =
            Api::all_with(client.clone(), &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
        let created =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
                .unwrap();
        namespaces.create(&PostParams::default(), &created).await.unwrap();
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
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource(object));
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
