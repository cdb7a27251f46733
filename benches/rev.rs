//! `weaver render --rev HEAD` against the working tree's render, end to end, over one chart of
//! 5,000 and 20,000 templates (a ConfigMap each): reads at a commit must grow with the files as
//! the working tree's do (issue 87: 9 s and 142 s at --rev, 0.14 s and 0.61 s from the working
//! tree, when each file read parsed its directory's tree again). Target: --rev within twice the
//! working tree's time. Run with `cargo bench --bench rev`.

mod support;

use weaver_test_support::git::{commit_all, init};

fn main() {
    for templates in [5_000, 20_000] {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write("charts/many/chart.yaml", "name: many\nversion: 1.0.0\n");
        for i in 0..templates {
            write(
                &format!("charts/many/templates/cm-{i:05}.yaml"),
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ release.name }}}}-{i}\ndata:\n  n: '{i}'\n"
                ),
            );
        }
        write("environments/bench.yaml", "namespace: bench\nreleases:\n  - name: many\n    chart: many\n");
        commit_all(&init(dir.path()), "templates");
        let repo = dir.path().to_str().unwrap();
        let working_tree = ["--repo", repo, "render", "--env", "bench"];
        let at_rev = ["--repo", repo, "render", "--env", "bench", "--rev", "HEAD"];
        let mut medians = Vec::new();
        for (what, args) in [("working tree", &working_tree[..]), ("--rev HEAD", &at_rev[..])] {
            support::time_weaver(args, 1); // warm the page cache
            let timed = support::time_weaver(args, 5);
            assert_eq!(support::objects(&timed.stdout), templates, "{what}");
            println!(
                "render {templates:>5} templates, {what:<12}: median {}, min {}, max {}, peak RSS {:.1} MB",
                support::ms(timed.median()),
                support::ms(timed.times[0]),
                support::ms(timed.times[timed.times.len() - 1]),
                timed.peak_rss as f64 / 1e6
            );
            medians.push(timed.median());
        }
        println!("  --rev / working tree: {:.2}", medians[1].as_secs_f64() / medians[0].as_secs_f64());
    }
}
