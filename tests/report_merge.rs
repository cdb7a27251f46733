//! `weaver report merge`: a fleet run as shards (`--shard`, `--wave`) on many runners, their
//! JSON reports merged, is the fleet run in one go: the same environments, objects and
//! verdicts, in every format. Reports that do not belong together are refused.

use crate::common;

use std::path::PathBuf;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::Value;

/// Chart `app` (one ConfigMap) in environments `a`, `b`, `c` (which needs `b`) of wave 0 and
/// `d`, `e` of wave 1, each in a namespace of the test cluster of its own.
fn fleet(cluster: &TestCluster) -> Repo {
    let repo = Repo::minimal();
    repo.remove("environments/dev.yaml");
    let lock = cluster.namespace("lock");
    for (env, extra) in [("a", ""), ("b", ""), ("c", "needs: [b]\n"), ("d", "wave: 1\n"), ("e", "wave: 1\n")] {
        let ns = cluster.namespace(env);
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!(
                "namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\n{extra}releases:\n  - name: app\n    chart: app\n"
            ),
        );
    }
    repo
}

/// Runs `args` once per shard of `count` (and per wave of `waves`, when given), each with
/// `-o json` into a file of its own, as the runners of a CI matrix do; returns the files.
fn run_shards(repo: &Repo, cluster: &TestCluster, args: &[&str], count: usize, waves: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let waves: Vec<Option<&str>> = if waves.is_empty() { vec![None] } else { waves.iter().map(|w| Some(*w)).collect() };
    for wave in waves {
        for index in 1..=count {
            let shard = format!("{index}/{count}");
            let mut all = args.to_vec();
            all.extend(["--shard", &shard, "-o", "json"]);
            if let Some(wave) = wave {
                all.extend(["--wave", wave]);
            }
            let run = repo.weaver_on(cluster, &all);
            assert!([0, 2].contains(&run.code), "{all:?}: {}", run.stderr);
            let file = repo.path().join(format!("{}-{}-{index}.json", args[0], wave.unwrap_or("all")));
            std::fs::write(&file, &run.stdout).unwrap();
            files.push(file);
        }
    }
    files
}

/// `weaver report merge FILES… -o FORMAT`: its stdout and exit code.
fn merge(repo: &Repo, files: &[PathBuf], format: &str) -> (String, i32) {
    let mut args = vec!["report", "merge", "-o", format];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let run = repo.weaver(&args);
    assert!([0, 2].contains(&run.code), "{}", run.stderr);
    (run.stdout, run.code)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn shards_merged_are_the_fleet_run_in_one_go_for_diff_drift_and_apply() {
    let cluster = TestCluster::start();
    let repo = fleet(&cluster);
    let weaver = |args: &[&str]| repo.weaver_on(&cluster, args);
    // a and d applied, then a edited by hand: changes, drift and records to compare.
    weaver(&["apply", "--env", "a,d"]).success();
    let ns_a = format!("{}-a", cluster.prefix);
    cluster.apply(
        &[serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns_a}, "data": {"greeting": "hi"}})],
        "kubectl-edit",
    );

    // diff: three shards merged are the one run, as JSON, text and Markdown, and exit 2 alike.
    let files = run_shards(&repo, &cluster, &["diff", "--env", "*"], 3, &[]);
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| json(&std::fs::read_to_string(f).unwrap())["environments"].as_array().unwrap().len())
        .collect();
    // Wave 0's groups {a}, {b, c} and wave 1's {d}, {e}, round-robin: b and c stay together.
    assert_eq!(sizes, [2, 3, 0], "{files:?}");
    let one = weaver(&["diff", "--env", "*", "-o", "json", "--exit-code"]);
    assert_eq!(one.code, 2, "{}", one.stderr);
    let (merged, code) = merge(&repo, &files, "json");
    assert_eq!(json(&merged), json(&one.stdout));
    assert_eq!(code, 2);
    assert_eq!(json(&merged)["summary"], serde_json::json!({"environments": 5, "changed": 4, "failed": 0}));
    for format in ["text", "markdown"] {
        let one = weaver(&["diff", "--env", "*", "-o", format]).success().to_string();
        assert_eq!(merge(&repo, &files, format).0, one, "-o {format}");
    }

    // drift: the same, as JSON, text and JUnit.
    let files = run_shards(&repo, &cluster, &["drift", "--env", "*"], 2, &[]);
    let one = weaver(&["drift", "--env", "*", "-o", "json"]);
    assert_eq!(one.code, 2, "{}", one.stderr);
    let (merged, code) = merge(&repo, &files, "json");
    assert_eq!((json(&merged), code), (json(&one.stdout), 2));
    for format in ["text", "junit"] {
        let one = weaver(&["drift", "--env", "*", "-o", format]).stdout;
        assert_eq!(merge(&repo, &files, format).0, one, "-o {format}");
    }

    // apply, a server dry run: wave by wave, two shards each, merged, is the one dry run. (The
    // hand edit of a is taken back from its field manager.)
    let apply = ["apply", "--env", "*", "--force-conflicts"];
    let files = run_shards(&repo, &cluster, &[&apply[..], &["--dry-run"]].concat(), 2, &["0", "1"]);
    let one = weaver(&[&apply[..], &["--dry-run", "-o", "json"]].concat());
    let one = json(one.success());
    let (merged, code) = merge(&repo, &files, "json");
    assert_eq!((json(&merged), code), (one.clone(), 0));
    let order: Vec<&str> =
        one["environments"].as_array().unwrap().iter().map(|e| e["environment"].as_str().unwrap()).collect();
    assert_eq!(order, ["a", "b", "c", "d", "e"]);
    let text = weaver(&[&apply[..], &["--dry-run"]].concat()).stdout;
    let table = &text[text.find("5 environments: ").unwrap_or_else(|| panic!("no summary in:\n{text}"))..];
    assert_eq!(merge(&repo, &files, "text").0, table);

    // And for real: what each environment did, object by object, is what the dry run said.
    let files = run_shards(&repo, &cluster, &apply, 2, &["0", "1"]);
    let (merged, code) = merge(&repo, &files, "json");
    assert_eq!(code, 0, "{merged}");
    // `[environment, state, [[object, result]…]]` of each environment.
    let verdicts = |report: &Value| -> Vec<Value> {
        let envs = report["environments"].as_array().unwrap();
        envs.iter()
            .map(|e| {
                let objects: Vec<Value> = e["report"]["releases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| {
                        r["objects"].as_array().unwrap().iter().map(|o| serde_json::json!([o["name"], o["result"]]))
                    })
                    .collect();
                serde_json::json!([e["environment"], e["state"], objects])
            })
            .collect()
    };
    assert_eq!(verdicts(&json(&merged)), verdicts(&one));
    assert_eq!(json(&merged)["summary"]["applied"], 5);
}

/// Chart `app` in environments `a` to `d`, planned with no cluster (`--live-from` an empty
/// file): reports to merge, offline.
fn offline_fleet() -> (Repo, String) {
    let repo = Repo::minimal();
    repo.remove("environments/dev.yaml");
    for env in ["a", "b", "c", "d"] {
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {env}\nreleases:\n  - name: app\n    chart: app\n"),
        );
    }
    let live = repo.path().join("live.yaml");
    std::fs::write(&live, "").unwrap();
    (repo, live.to_str().unwrap().to_string())
}

#[test]
fn reports_that_do_not_belong_together_or_are_not_fleet_reports_are_refused_naming_the_file() {
    let (repo, live) = offline_fleet();
    let write = |name: &str, text: &str| {
        let path = repo.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let report = |name: &str, args: &[&str]| write(name, &repo.weaver(args).stdout);
    let one = report("one.json", &["diff", "--env", "*", "--shard", "1/2", "--live-from", &live, "-o", "json"]);
    let two = report("two.json", &["diff", "--env", "*", "--shard", "2/2", "--live-from", &live, "-o", "json"]);
    let all = report("all.json", &["diff", "--env", "*", "--live-from", &live, "-o", "json"]);
    let refused = |files: &[&str]| -> String {
        let mut args = vec!["report", "merge"];
        args.extend_from_slice(files);
        let run = repo.weaver(&args);
        assert_eq!(run.code, 1, "{files:?}: {}", run.stdout);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        run.stderr
    };
    // The two shards merge; a shard with the whole fleet overlaps.
    let run = repo.weaver(&["report", "merge", &one, &two]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.starts_with("4 environments: 4 with changes, 0 failed\n"), "{}", run.stdout);
    let err = refused(&[&one, &all]);
    assert!(err.contains(&format!("error: environment `a` is in both {one} and {all}")), "{err}");

    // Another command: an apply (that could not connect: still a fleet apply's report).
    let apply =
        report("apply.json", &["apply", "--env", "*", "--shard", "2/2", "--kubeconfig", "/nonexistent", "-o", "json"]);
    let err = refused(&[&one, &apply]);
    assert!(
        err.contains(&format!(
            "error: {one} is a report of `weaver diff`, {apply} of `weaver apply`: merge combines the reports of one command"
        )),
        "{err}"
    );

    // A status report: a fleet's, but status only reads, and merge does not combine it.
    let status = report(
        "status.json",
        &["status", "--env", "*", "--shard", "1/2", "--kubeconfig", "/nonexistent", "-o", "json"],
    );
    assert_eq!(json(&std::fs::read_to_string(&status).unwrap())["command"], "status");
    let err = refused(&[&one, &status]);
    assert!(
        err.contains(&format!(
            "error: {status}: a `weaver status` report: merge combines diff, drift and apply reports"
        )),
        "{err}"
    );

    // Another commit, another mode, a newer schema: the documents edited as such.
    let edited = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut document = json(&std::fs::read_to_string(&two).unwrap());
        edit(&mut document);
        write(name, &serde_json::to_string_pretty(&document).unwrap())
    };
    let commit = edited("commit.json", &|d| d["commit"] = "0123456789abcdef0123456789abcdef01234567".into());
    let err = refused(&[&one, &commit]);
    assert!(
        err.contains(&format!(
            "error: {one} is of no commit (outside git), {commit} of commit 0123456789abcdef0123456789abcdef01234567"
        )),
        "{err}"
    );
    let server = edited("server.json", &|d| {
        for env in d["environments"].as_array_mut().unwrap() {
            env["report"]["mode"] = "server".into();
        }
    });
    let err = refused(&[&one, &server]);
    assert!(err.contains(&format!("error: {one} planned in mode client, {server} planned in mode server")), "{err}");
    let newer = edited("newer.json", &|d| d["schemaVersion"] = 2.into());
    let err = refused(&[&one, &newer]);
    assert!(
        err.contains(&format!("error: {newer}: a report of schema version 2: this weaver reads version 1")),
        "{err}"
    );

    // Not a fleet report: not JSON, JSON of something else, one environment's report, a fleet
    // report missing a field (where serde says), a file that is not there.
    let text = write("notes.txt", "not json\n");
    let err = refused(&[&one, &text]);
    assert!(err.contains(&format!("error: {text}:1:2: not a JSON document: expected ident")), "{err}");
    let other = write("other.json", "{\"name\": \"x\"}\n");
    let err = refused(&[&other]);
    assert!(err.contains(&format!("error: {other}: not a weaver fleet report")), "{err}");
    let single = report("single.json", &["diff", "--env", "a", "--live-from", &live, "-o", "json"]);
    let err = refused(&[&single]);
    assert!(err.contains(&format!("error: {single}: the report of one environment (`a`), not of a fleet")), "{err}");
    let broken = edited("broken.json", &|d| {
        d["environments"][0]["report"].as_object_mut().unwrap().remove("summary");
    });
    let err = refused(&[&broken]);
    assert!(err.contains(&format!("error: {broken}:")), "{err}");
    assert!(err.contains(": not a weaver diff fleet report: missing field `summary`"), "{err}");
    let missing = repo.path().join("missing.json");
    let err = refused(&[missing.to_str().unwrap()]);
    assert!(err.contains("missing.json") && err.contains("cannot read"), "{err}");
    // A format the command has no fleet report in.
    let err = refused(&["-o", "junit", &one, &two]);
    assert!(err.contains("error: -o junit does not show diff reports"), "{err}");
    assert!(err.contains("help: a fleet's diff report is shown as text, json or markdown"), "{err}");
}

/// A fleet apply that cannot connect, in shards: `a` and `b` fail, `c` (which needs `b`) is
/// skipped. Merged, its report is the run's in one go, and so are the errors it prints: each
/// failed environment's once, as the run printed it, and none for the skipped one.
#[test]
fn a_merged_fleet_apply_prints_the_errors_the_run_in_one_go_printed() {
    let repo = Repo::minimal();
    repo.remove("environments/dev.yaml");
    for (env, extra) in [("a", ""), ("b", ""), ("c", "needs: [b]\n")] {
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {env}\n{extra}releases:\n  - name: app\n    chart: app\n"),
        );
    }
    let apply = ["apply", "--env", "*", "--kubeconfig", "/nonexistent", "-o", "json"];
    let errors = |stderr: &str| -> Vec<String> {
        stderr.lines().filter(|l| l.starts_with("error:") || l.starts_with("  help:")).map(String::from).collect()
    };
    let one = repo.weaver(&apply);
    assert_eq!(one.code, 1, "{}", one.stderr);
    let files: Vec<PathBuf> = ["1/2", "2/2"]
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let run = repo.weaver(&[&apply[..], &["--shard", shard]].concat());
            assert_eq!(run.code, 1, "{}", run.stderr);
            let file = repo.path().join(format!("apply-{i}.json"));
            std::fs::write(&file, &run.stdout).unwrap();
            file
        })
        .collect();
    let mut args = vec!["report", "merge", "-o", "json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged = repo.weaver(&args);
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    let report = json(&merged.stdout);
    assert_eq!(report, json(&one.stdout));
    let states = common::fleet_states(&report);
    assert_eq!(states, [("a", "failed"), ("b", "failed"), ("c", "skipped")], "{report:#}");
    let printed = errors(&one.stderr);
    assert_eq!(printed.iter().filter(|l| l.starts_with("error: environment `")).count(), 2, "{}", one.stderr);
    assert_eq!(errors(&merged.stderr), printed, "{}", merged.stderr);
}
