//! What offline schema validation adds to `weaver render` of the generated 1,000-release
//! repository (3,000 objects): runs with `--validate=ignore` and with the default (strict),
//! interleaved so that both see the same machine, compared by their medians. Target: at most
//! 10 % more. `WEAVER_BENCH_RELEASES` scales it. Run with `cargo bench --bench validate`.

mod support;

use std::time::Duration;

fn main() {
    let releases: usize = std::env::var("WEAVER_BENCH_RELEASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    support::generate_repo(dir.path(), releases);
    let repo = dir.path().to_str().unwrap();
    let args = |validate: &'static str| ["--repo", repo, "render", "--env", "bench", validate];
    support::time_weaver(&args("--validate=strict"), 2); // warm the page cache
    let (mut ignore, mut strict): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    let mut objects = 0;
    for _ in 0..15 {
        ignore.extend(support::time_weaver(&args("--validate=ignore"), 1).times);
        let timed = support::time_weaver(&args("--validate=strict"), 1);
        objects = support::objects(&timed.stdout);
        strict.extend(timed.times);
    }
    ignore.sort();
    strict.sort();
    let (without, with) = (ignore[ignore.len() / 2], strict[strict.len() / 2]);
    let added = (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0;
    println!(
        "render {releases} releases ({objects} objects): median {} without validation, {} with it: {added:+.1} % (target ≤ 10 %)",
        support::ms(without),
        support::ms(with)
    );
}
