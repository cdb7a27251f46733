//! `weaver render` end to end (process start to exit) over generated repositories of 1,000, 3,000
//! and 10,000 releases (a ConfigMap, a Deployment and a Service each), to show that the cost grows
//! linearly. Target: 10,000 releases (30,000 objects) in ≤ 0.5 s wall and ≤ 150 MB peak RSS.
//! Each size again with `--max-render-memory` (the templates in a worker process, as the
//! controller renders tenants' repositories): what the isolation costs; and each again with the
//! chart a Helm chart of the same objects, in process and in workers. Goal: in workers at most
//! 1.3× in process. CPU is weaver's with its workers'.
//! Run with `cargo bench --bench render`.

mod support;

fn main() {
    type Generate = fn(&std::path::Path, usize);
    let charts: [(&str, Generate); 2] =
        [("weaver chart", support::generate_repo), ("Helm chart", support::generated::generate_helm_repo)];
    for (chart, releases) in charts.into_iter().flat_map(|c| [1_000, 3_000, 10_000].map(|n| (c, n))) {
        let (chart, generate) = chart;
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), releases);
        let repo = dir.path().to_str().unwrap();
        let args = ["--repo", repo, "render", "--env", "bench"];
        support::time_weaver(&args, 1); // warm the page cache
        for (how, extra) in [("", &[][..]), (" in a worker", &["--max-render-memory", "536870912"][..])] {
            let args: Vec<&str> = args.iter().chain(extra).copied().collect();
            let timed = support::time_weaver(&args, 7);
            let objects = support::objects(&timed.stdout);
            println!(
                "render {releases:>5} releases of a {chart} ({objects} objects){how}: median {} (CPU {}), min {}, max {}, \
                 peak RSS {:.1} MB",
                support::ms(timed.median()),
                support::ms(timed.median_cpu()),
                support::ms(timed.times[0]),
                support::ms(timed.times[timed.times.len() - 1]),
                timed.peak_rss as f64 / 1e6
            );
        }
    }
}
