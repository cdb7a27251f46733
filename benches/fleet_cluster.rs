//! A fleet against a cluster (issue 39), over generated fleets of 10, 20 and 40 environments of
//! 250 releases each (750 objects an environment, each environment in a namespace of its own
//! on one server):
//! - the fleet's first apply (`weaver apply --env 'env-*'`, the set-up of what follows);
//! - the no-op re-apply of the fleet (target at 40 environments: ≤ 2 s);
//! - `weaver diff --env 'env-*'` with one environment changed (one release's replicas), against
//!   a loop of one `weaver diff --env NAME` per environment (target at 40: ≤ 2 s and ≥ 4×
//!   faster than the loop);
//! - and, once, the first apply of 4 environments × 250 releases into empty namespaces.
//!
//! Every time comes with the run's peak RSS, and on the fake with the requests it sent (and how
//! many were discovery's: a fleet reads discovery once per server). Runs against the in-process
//! fake, or against the current context of `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it
//! creates namespaces `fleet-<pid>-<n>-NN` and deletes them when done).
//! `WEAVER_BENCH_ENVIRONMENTS=10,40` picks the sizes. On a real cluster each run also reports the
//! API server's CPU (its `process_cpu_seconds_total`, when the user may read `/metrics`) and,
//! where the server shares this machine (a loopback address), the least the median run can
//! take: weaver's CPU and the server's spread over the cores.

mod support;

use std::time::Duration;

use serde_json::Value;

/// Releases in each environment.
const RELEASES: usize = 250;
/// Runs of the fleet's diff and no-op apply (the median is reported).
const RUNS: usize = 3;

fn main() {
    let (fake, kubeconfig) = support::cluster();
    println!("against {}", support::cluster_name(&fake, &kubeconfig));
    let requests = |runs: usize| {
        fake.as_ref().map_or_else(
            || "requests not counted on a real cluster".to_string(),
            |server| {
                let log = server.requests();
                let gets = log.iter().filter(|r| r.method == "GET").count();
                let writes = log.len() - gets;
                let discovery = log.iter().filter(|r| is_discovery(&r.path)).count();
                format!(
                    "{} requests per run ({} GETs, {} of them discovery; {} writes)",
                    log.len() / runs,
                    gets / runs,
                    discovery / runs,
                    writes / runs
                )
            },
        )
    };
    let clear = || {
        if let Some(server) = &fake {
            server.clear_requests();
        }
    };

    let sizes = std::env::var("WEAVER_BENCH_ENVIRONMENTS").unwrap_or_else(|_| "10,20,40".into());
    for environments in sizes.split(',').map(|n| n.trim().parse::<usize>().expect("a number of environments")) {
        let prefix = format!("fleet-{}-{environments}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        support::generate_fleet_in(dir.path(), environments, RELEASES, &prefix);
        let repo = dir.path().to_str().unwrap();
        let objects = environments * RELEASES * 3;
        let apply = ["--repo", repo, "--kubeconfig", &kubeconfig, "apply", "--env", "env-*", "-o", "json"];

        clear();
        let first = support::time_weaver(&apply, 1);
        applied(&first.stdout, environments);
        println!(
            "fleet first apply of {environments:>2} environments × {RELEASES} releases ({objects} objects): {}, CPU {}, peak RSS {:.1} MB; {}; load average {}",
            support::ms(first.times[0]),
            support::ms(first.cpu[0]),
            mb(first.peak_rss),
            requests(1),
            support::load_average()
        );

        clear();
        let server = support::server_cpu(&fake, &kubeconfig);
        let noop = support::time_weaver(&apply, RUNS);
        let noop_server = support::spent(&server, RUNS);
        applied(&noop.stdout, environments);
        println!(
            "fleet no-op apply of {environments:>2} environments: median {} (min {}, max {}), CPU {}, peak RSS {:.1} MB; {}{}; load average {}",
            support::ms(noop.median()),
            support::ms(noop.times[0]),
            support::ms(noop.times[RUNS - 1]),
            support::ms(noop.median_cpu()),
            mb(noop.peak_rss),
            requests(RUNS),
            support::beside(noop.median_cpu(), &noop_server),
            support::load_average()
        );

        // One environment changes: the replicas of one of its releases.
        let changed = dir.path().join("environments/env-00.yaml");
        let text = std::fs::read_to_string(&changed).unwrap();
        std::fs::write(&changed, text.replacen("replicas: 1\n", "replicas: 5\n", 1)).unwrap();
        let diff = ["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", "env-*", "-o", "json"];
        clear();
        let server = support::server_cpu(&fake, &kubeconfig);
        let fleet = support::time_weaver(&diff, RUNS);
        let fleet_server = support::spent(&server, RUNS);
        let report: Value = serde_json::from_slice(&fleet.stdout).expect("diff -o json");
        assert_eq!(report["summary"]["environments"], environments, "{}", report["summary"]);
        assert_eq!(report["summary"]["changed"], 1, "one environment changed: {}", report["summary"]);
        assert_eq!(report["summary"]["failed"], 0, "{}", report["summary"]);
        let fleet_requests = requests(RUNS);
        // The loop: one process per environment, one after another, as a shell loop runs them.
        let (mut looped, mut looped_cpu) = (Duration::ZERO, Duration::ZERO);
        let mut loop_rss = 0;
        let server = support::server_cpu(&fake, &kubeconfig);
        for i in 0..environments {
            let name = format!("env-{i:02}");
            let one = support::time_weaver(&["--repo", repo, "--kubeconfig", &kubeconfig, "diff", "--env", &name], 1);
            looped += one.times[0];
            looped_cpu += one.cpu[0];
            loop_rss = loop_rss.max(one.peak_rss);
        }
        let loop_server = support::spent(&server, 1);
        println!(
            "fleet diff of {environments:>2} environments, 1 changed: median {} (min {}, max {}), CPU {}, peak RSS {:.1} MB; {fleet_requests}{}; loop of {environments} single diffs: {}, CPU {}, peak RSS {:.1} MB each{}; {:.2}× faster (CPU {:.2}×){}; load average {}",
            support::ms(fleet.median()),
            support::ms(fleet.times[0]),
            support::ms(fleet.times[RUNS - 1]),
            support::ms(fleet.median_cpu()),
            mb(fleet.peak_rss),
            support::beside(fleet.median_cpu(), &fleet_server),
            support::ms(looped),
            support::ms(looped_cpu),
            mb(loop_rss),
            loop_server
                .map(|spent| format!(", the API server's CPU {} in all", support::ms(spent.cpu)))
                .unwrap_or_default(),
            looped.as_secs_f64() / fleet.median().as_secs_f64(),
            looped_cpu.as_secs_f64() / fleet.median_cpu().as_secs_f64(),
            support::floor(fleet.median_cpu(), &fleet_server)
                .map(|floor| format!(", at most {:.2}× here", looped.as_secs_f64() / floor.as_secs_f64()))
                .unwrap_or_default(),
            support::load_average()
        );
        for i in 0..environments {
            support::delete_namespace(&kubeconfig, &format!("{prefix}-{i:02}"));
        }
    }

    // The first apply of 4 environments into empty namespaces.
    let prefix = format!("fleet-{}-first", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    support::generate_fleet_in(dir.path(), 4, RELEASES, &prefix);
    let repo = dir.path().to_str().unwrap();
    clear();
    let first = support::time_weaver(
        &["--repo", repo, "--kubeconfig", &kubeconfig, "apply", "--env", "env-*", "-o", "json"],
        1,
    );
    applied(&first.stdout, 4);
    println!(
        "first apply of 4 environments × {RELEASES} releases ({} objects): {}, CPU {}, peak RSS {:.1} MB; {}; load average {}",
        4 * RELEASES * 3,
        support::ms(first.times[0]),
        support::ms(first.cpu[0]),
        mb(first.peak_rss),
        requests(1),
        support::load_average()
    );
    for i in 0..4 {
        support::delete_namespace(&kubeconfig, &format!("{prefix}-{i:02}"));
    }
}

/// A fleet apply's report: every one of the `environments` applied.
fn applied(stdout: &[u8], environments: usize) {
    let report: Value = serde_json::from_slice(stdout).expect("apply -o json");
    let summary = &report["summary"];
    assert_eq!(summary["environments"], environments, "{summary}");
    assert_eq!(summary["applied"], environments, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
}

/// `/api`, `/apis`, `/api/VERSION`, `/apis/GROUP` and `/apis/GROUP/VERSION`: discovery's
/// requests, not a resource's.
fn is_discovery(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _])
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
