//! A fleet render (`weaver render --env 'env-*'`, one process) against a loop of one
//! `weaver render --env NAME` per environment, over generated fleets of 10, 20 and 40
//! environments of 250 releases each (a ConfigMap, a Deployment and a Service per release), to
//! show what one run saves and that its cost grows linearly. Target (issue 39): 40 environments
//! (10,000 releases, 30,000 objects) in ≤ 0.8 s and ≥ 2× faster than the loop. Beside the
//! wall times, the CPU time (user and system, every thread's) and the load average: on a
//! machine other work shares, the wall time is that work's as much as weaver's.
//! Run with `cargo bench --bench fleet`; `WEAVER_BENCH_ENVIRONMENTS=10,40` picks the sizes.
//! The cluster's side (diff, apply) is `benches/fleet_cluster.rs`.

mod support;

use std::time::Duration;

/// Releases in each environment.
const RELEASES: usize = 250;

fn main() {
    let sizes = std::env::var("WEAVER_BENCH_ENVIRONMENTS").unwrap_or_else(|_| "10,20,40".into());
    for environments in sizes.split(',').map(|n| n.trim().parse::<usize>().expect("a number of environments")) {
        let dir = tempfile::tempdir().unwrap();
        support::generate_fleet(dir.path(), environments, RELEASES);
        let repo = dir.path().to_str().unwrap();
        let fleet = ["--repo", repo, "render", "--env", "env-*"];
        support::time_weaver(&fleet, 1); // warm the page cache
        let timed = support::time_weaver(&fleet, 5);
        let objects = support::objects(&timed.stdout);
        // The loop: one process per environment, one after another, as a shell loop runs them.
        let names: Vec<String> = (0..environments).map(|i| format!("env-{i:02}")).collect();
        let mut loops: Vec<(Duration, Duration)> = Vec::new();
        let mut loop_rss = 0;
        for _ in 0..3 {
            let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
            for name in &names {
                let one = support::time_weaver(&["--repo", repo, "render", "--env", name], 1);
                wall += one.times[0];
                cpu += one.cpu[0];
                loop_rss = loop_rss.max(one.peak_rss);
            }
            loops.push((wall, cpu));
        }
        loops.sort();
        let (looped, looped_cpu) = loops[loops.len() / 2];
        println!(
            "fleet render of {environments:>2} environments × {RELEASES} releases ({objects} objects): median {} (min {}, max {}), CPU {}, peak RSS {:.1} MB; loop of {environments} single runs: median {}, CPU {}, peak RSS {:.1} MB each; {:.2}× faster (CPU {:.2}×); load average {}",
            support::ms(timed.median()),
            support::ms(timed.times[0]),
            support::ms(timed.times[timed.times.len() - 1]),
            support::ms(timed.median_cpu()),
            timed.peak_rss as f64 / 1e6,
            support::ms(looped),
            support::ms(looped_cpu),
            loop_rss as f64 / 1e6,
            looped.as_secs_f64() / timed.median().as_secs_f64(),
            looped_cpu.as_secs_f64() / timed.median_cpu().as_secs_f64(),
            support::load_average()
        );
    }
}
