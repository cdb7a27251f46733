//! `weaver apply` over 1,000 releases (3,000 objects): the first apply into an empty cluster,
//! then the no-op re-apply, with their times and request counts. For scale, `kubectl apply
//! --server-side` takes about 16 s for these objects against a real API server here, and again
//! about 16 s for the no-op, because it resends everything.
//!
//! Runs against the in-process fake (request counts come from its log), or against the current
//! context of `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it creates namespace `bench`).
//! `WEAVER_BENCH_RELEASES` (default 1,000) scales the repository.

mod support;

use serde_json::Value;

fn main() {
    let (dir, fake, kubeconfig) = support::setup();
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
            let applies = log.iter().filter(|r| r.method == "PATCH").count();
            format!("{} requests ({applies} PATCH)", log.len())
        });
        println!(
            "{run:<15} {}: {}, summary {}; peak RSS {:.1} MB",
            support::ms(timed.times[0]),
            requests.unwrap_or_else(|| "requests not counted on a real cluster".into()),
            report["summary"],
            timed.peak_rss as f64 / 1e6
        );
    }
}
