//! `weaver changed` end to end (process start to exit) on a generated repository of 1,000
//! releases with 50 commits between base and head. Target: ≤ 0.5 s.
//! Run with `cargo bench --bench changed`.

mod support;

use weaver_test_support::git::{commit_all, init};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    support::generate_repo(dir.path(), 1_000);
    let git = init(dir.path());
    let base = commit_all(&git, "base").to_string();

    // 50 commits as a busy week makes them: most change one release, some add a release, a
    // values file or documentation.
    let env_path = dir.path().join("environments/bench.yaml");
    for new_dir in ["docs", "environments/values"] {
        std::fs::create_dir_all(dir.path().join(new_dir)).unwrap();
    }
    for i in 0..50 {
        let mut env = std::fs::read_to_string(&env_path).unwrap();
        match i % 10 {
            0 => env.push_str(&format!("  - name: new-{i:02}\n    chart: svc\n")),
            1 => {
                let file = format!("environments/values/svc-{i:02}.yaml");
                std::fs::write(dir.path().join(&file), format!("replicas: {i}\n")).unwrap();
                let release = format!("  - name: svc-{:04}\n    chart: svc\n", i * 7);
                env = env.replacen(&release, &format!("{release}    valuesFiles: [{file}]\n"), 1);
            }
            2 => std::fs::write(dir.path().join(format!("docs/change-{i:02}.md")), "notes\n").unwrap(),
            _ => {
                let release = format!("  - name: svc-{:04}\n    chart: svc\n", (i * 19) % 1_000);
                env = env.replacen(&release, &format!("{release}    labels: {{ edited: c{i} }}\n"), 1);
            }
        }
        std::fs::write(&env_path, env).unwrap();
        commit_all(&git, &format!("change {i}"));
    }

    let repo = dir.path().to_str().unwrap();
    let committed = ["--repo", repo, "changed", "--base", &base, "--head", "HEAD", "-o", "json"];
    let working_tree = ["--repo", repo, "changed", "--base", &base, "-o", "json"];
    report("base..HEAD, 50 commits", &committed);
    // An uncommitted chart edit on top affects every release.
    let template = dir.path().join("charts/svc/templates/service.yaml");
    std::fs::write(&template, std::fs::read_to_string(&template).unwrap() + "# edited\n").unwrap();
    report("base..working tree, plus a chart edit", &working_tree);
}

fn report(what: &str, args: &[&str]) {
    support::time_weaver(args, 1); // warm the page cache
    let timed = support::time_weaver(args, 9);
    let report: serde_json::Value = serde_json::from_slice(&timed.stdout).unwrap();
    println!(
        "changed 1000 releases, {what} ({} releases affected, {} unattributed): median {}, min {}, max {}",
        report["releases"].as_array().unwrap().len(),
        report["unattributed"].as_array().unwrap().len(),
        support::ms(timed.median()),
        support::ms(timed.times[0]),
        support::ms(timed.times[timed.times.len() - 1]),
    );
}
