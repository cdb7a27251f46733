//! `weaver apply` of 100, 333 and 1,000 releases (300, 999 and 3,000 objects), each into an
//! empty namespace of its own: the first apply, then the no-op re-apply, with their times, peak
//! RSS and (on the fake) request counts. Targets for 3,000 objects on a real server: the first
//! apply ≤ 5 s, the no-op ≤ 0.5 s with no write at all. For scale, `kubectl apply
//! --server-side` takes about 16 s for the 3,000 objects against a real API server here, and
//! again about 16 s for the no-op, because it resends everything.
//!
//! Runs against the in-process fake (request counts come from its log), or against the current
//! context of `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it creates namespaces
//! `bench-<releases>-<pid>` and deletes them when done). `WEAVER_BENCH_RELEASES` (say `1000`, or `100,1000`) picks the sizes.

mod support;

use serde_json::Value;

fn main() {
    let (fake, kubeconfig) = support::cluster();
    println!("against {}", support::cluster_name(&fake, &kubeconfig));
    for releases in support::sizes() {
        let (dir, namespace) = support::sized_repo(releases);
        let repo = dir.path().to_str().unwrap();
        let args = ["--repo", repo, "--kubeconfig", &kubeconfig, "apply", "--env", "bench", "-o", "json"];
        for run in ["first apply", "no-op re-apply"] {
            if let Some(server) = &fake {
                server.clear_requests();
            }
            let timed = support::time_weaver(&args, 1);
            let report: Value = serde_json::from_slice(&timed.stdout).expect("apply -o json");
            assert_eq!(report["failed"], false, "{run} failed: {report:#}");
            let requests = fake.as_ref().map(|server| {
                let log = server.requests();
                let writes = log.iter().filter(|r| r.method != "GET").count();
                format!("{} requests ({writes} writes)", log.len())
            });
            println!(
                "{run:<15} {:>5} objects: {:>7}, peak RSS {:.1} MB; {}; summary {}",
                releases * 3,
                support::ms(timed.times[0]),
                timed.peak_rss as f64 / 1e6,
                requests.unwrap_or_else(|| "requests not counted on a real cluster".into()),
                report["summary"],
            );
        }
        support::delete_namespace(&kubeconfig, &namespace);
    }
}
