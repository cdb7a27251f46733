//! Repository confinement (issue 16): nothing a repository's files say, no `..`, absolute path
//! or symbolic link, makes weaver read a file outside the repository (or, for a chart's files,
//! outside the chart), on the working tree and on `--rev`; links that stay inside are followed.
//! A distinctive value planted outside the repository appears in no output.

use crate::common;
use common::git::{commit_all, init};
use common::{Repo, Run};

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Planted in every file outside the repository; seeing it in any output is a leak.
const SEED: &str = "OUTSIDE-SEED-7c41e2d9";

/// A directory beside the repository, as a CI runner's home or another checkout would be.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let outside = Outside { dir: tempfile::tempdir().unwrap() };
        let write = |path: &str, text: &str| {
            let full = outside.dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write("values.yaml", &format!("greeting: {SEED}\n"));
        write("env.yaml", &format!("namespace: apps\nvalues:\n  leak: {SEED}\n"));
        write("chart/chart.yaml", "name: app\nversion: 0.1.0\n");
        write(
            "chart/templates/cm.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  leak: {SEED}\n"),
        );
        write(
            "crd.yaml",
            &format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {SEED}.example.com\n"
            ),
        );
        outside
    }

    /// The absolute, symlink-free path of one of its files.
    fn path(&self, name: &str) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap().join(name)
    }

    /// The same file named relatively from `from` (a directory of the repository), with `..`.
    fn relative(&self, repo: &Repo, from: &str, name: &str) -> String {
        let depth = std::fs::canonicalize(repo.path().join(from)).unwrap().components().count() - 1;
        format!("{}{}", "../".repeat(depth), self.path(name).display().to_string().trim_start_matches('/'))
    }
}

fn link(repo: &Repo, path: &str, target: impl AsRef<Path>) {
    let full = repo.path().join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    symlink(target, full).unwrap();
}

const DEV: &str = "environments/dev.yaml";

/// One way to point outside; `expect` are stderr substrings: where it was named, and where it led.
struct Case {
    name: &'static str,
    setup: fn(&Repo, &Outside) -> Vec<String>,
}

/// Environment `dev` with `top` (whole lines) before one release of chart `chart`.
fn env_with(repo: &Repo, top: &str, chart: &str) {
    repo.write(DEV, &format!("namespace: apps\n{top}releases:\n  - name: app\n    chart: {chart}\n"));
}

/// The expected message: named at `{DEV}:{at}`, and where `path` led.
fn led_out(at: &str, path: &str) -> Vec<String> {
    vec![format!("{DEV}:{at}"), format!("{path} resolves to")]
}

/// A link at `at` to `target`, refused where the release names the chart.
fn link_out(repo: &Repo, at: &str, target: impl AsRef<Path>) -> Vec<String> {
    link(repo, at, target);
    led_out("4:12", at)
}

fn with_release_field(repo: &Repo, field: &str) {
    repo.write(DEV, &format!("namespace: apps\nreleases:\n  - name: app\n    chart: app\n    {field}\n"));
}

const CASES: &[Case] = &[
    Case {
        name: "valuesFiles: an absolute path",
        setup: |repo, outside| {
            with_release_field(repo, &format!("valuesFiles: [{}]", outside.path("values.yaml").display()));
            vec![format!("{DEV}:5:"), "outside the repository".into()]
        },
    },
    Case {
        name: "valuesFiles: `..` out of the repository",
        setup: |repo, outside| {
            with_release_field(repo, &format!("valuesFiles: [{}]", outside.relative(repo, ".", "values.yaml")));
            vec![format!("{DEV}:5:"), "outside the repository".into()]
        },
    },
    Case {
        name: "valuesFiles: a symbolic link out",
        setup: |repo, outside| {
            link(repo, "values/dev.yaml", outside.path("values.yaml"));
            with_release_field(repo, "valuesFiles: [values/dev.yaml]");
            vec![format!("{DEV}:5:"), "values/dev.yaml resolves to".into(), "outside the repository".into()]
        },
    },
    Case {
        name: "secrets: an absolute path",
        setup: |repo, outside| {
            repo.write(
                DEV,
                &format!(
                    "namespace: apps\nsecrets: [{}]\nreleases:\n  - name: app\n    chart: app\n",
                    outside.path("values.yaml").display()
                ),
            );
            vec![format!("{DEV}:2:"), "outside the repository".into()]
        },
    },
    Case {
        name: "secrets: a symbolic link out",
        setup: |repo, outside| {
            link(repo, "secrets/dev.yaml", outside.path("values.yaml"));
            repo.write(DEV, "namespace: apps\nsecrets: [secrets/dev.yaml]\nreleases:\n  - name: app\n    chart: app\n");
            vec![format!("{DEV}:2:"), "secrets/dev.yaml resolves to".into()]
        },
    },
    Case {
        name: "chart: an absolute path",
        setup: |repo, outside| {
            repo.write(
                DEV,
                &format!("namespace: apps\nreleases:\n  - name: app\n    chart: {}\n", outside.path("chart").display()),
            );
            vec![format!("{DEV}:4:12"), "is not a chart name".into()]
        },
    },
    Case {
        name: "chart: `..` out of the repository",
        setup: |repo, outside| {
            let chart = outside.relative(repo, "charts", "chart");
            repo.write(DEV, &format!("namespace: apps\nreleases:\n  - name: app\n    chart: {chart}\n"));
            vec![format!("{DEV}:4:12"), "is not a chart name".into()]
        },
    },
    Case {
        name: "chart: a symbolic link under charts/ out",
        setup: |repo, outside| {
            link(repo, "charts/ext", outside.path("chart"));
            env_with(repo, "", "ext");
            led_out("4:12", "charts/ext")
        },
    },
    Case {
        name: "a template that is a symbolic link out",
        setup: |repo, outside| {
            link_out(repo, "charts/app/templates/leak.yaml", outside.path("chart/templates/cm.yaml"))
        },
    },
    Case {
        name: "a template that is a relative symbolic link out",
        setup: |repo, outside| {
            let target = outside.relative(repo, "charts/app/templates", "chart/templates/cm.yaml");
            link_out(repo, "charts/app/templates/leak.yaml", target)
        },
    },
    Case {
        name: "a templates directory that is a symbolic link out",
        setup: |repo, outside| link_out(repo, "charts/app/templates/more", outside.path("chart/templates")),
    },
    Case {
        name: "a chart file for files.get that is a symbolic link out",
        setup: |repo, outside| {
            link(repo, "charts/app/files/host", outside.path("values.yaml"));
            repo.write(
                "charts/app/templates/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  host: {{ files.get('files/host') | tojson }}\n",
            );
            led_out("4:12", "charts/app/files/host")
        },
    },
    Case {
        name: "a chart file that is a symbolic link to the repository outside the chart",
        setup: |repo, _| {
            repo.write("shared/host", "shared\n");
            link(repo, "charts/app/files/host", "../../../shared/host");
            vec![
                format!("{DEV}:4:12"),
                "charts/app/files/host resolves to shared/host, outside chart `app` (charts/app)".into(),
            ]
        },
    },
    Case {
        name: "a chart's values.yaml that is a symbolic link out",
        setup: |repo, outside| {
            std::fs::remove_file(repo.path().join("charts/app/values.yaml")).unwrap();
            link_out(repo, "charts/app/values.yaml", outside.path("values.yaml"))
        },
    },
    Case {
        name: "a CRD that is a symbolic link out",
        setup: |repo, outside| link_out(repo, "charts/app/crds/widget.yaml", outside.path("crd.yaml")),
    },
    Case {
        name: "an extended environment file that is a symbolic link out",
        setup: |repo, outside| {
            link(repo, "environments/base.yaml", outside.path("env.yaml"));
            repo.write(DEV, "extends: base\nreleases:\n  - name: app\n    chart: app\n");
            vec![format!("{DEV}:1:10"), "environments/base.yaml resolves to".into()]
        },
    },
    Case {
        name: "the environment file itself is a symbolic link out",
        setup: |repo, outside| {
            std::fs::remove_file(repo.path().join(DEV)).unwrap();
            link(repo, DEV, outside.path("env.yaml"));
            vec![format!("{DEV}: {DEV} resolves to")]
        },
    },
];

/// Runs `args` on the repository as it is, and on the commit of it (`--rev HEAD`).
fn both_sources(repo: &Repo, args: &[&str]) -> [(&'static str, Run); 2] {
    let git = init(repo.path());
    commit_all(&git, "case");
    let rev: Vec<&str> = args.iter().copied().chain(["--rev", "HEAD"]).collect();
    [("working tree", repo.weaver(args)), ("--rev HEAD", repo.weaver(&rev))]
}

#[track_caller]
fn check_refused(case: &str, source: &str, run: &Run, expect: &[String]) -> Result<(), String> {
    let fail = |why: String| Err(format!("{case} ({source}): {why}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr));
    if run.code != 1 {
        return fail(format!("exit code {}, expected 1", run.code));
    }
    if run.stdout.contains(SEED) || run.stderr.contains(SEED) {
        return fail("the value planted outside the repository appears in the output".into());
    }
    for expected in expect {
        if !run.stderr.contains(expected.as_str()) {
            return fail(format!("stderr does not contain {expected:?}"));
        }
    }
    Ok(())
}

#[test]
fn every_way_out_of_the_repository_is_refused_where_it_is_named() {
    let mut failures = Vec::new();
    for case in CASES {
        let (repo, outside) = (Repo::minimal(), Outside::new());
        let expect = (case.setup)(&repo, &outside);
        for (source, run) in both_sources(&repo, &["render", "--env", "dev"]) {
            // In a commit, a link is resolved in the tree: an absolute target is named as written.
            if let Err(failure) = check_refused(case.name, source, &run, &expect) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn no_output_of_render_diff_or_apply_shows_a_file_outside_the_repository() {
    let live = common::project_root().join("tests/fixtures/live-dev.yaml");
    let live = live.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["render", "--env", "dev"],
        &["render", "--env", "dev", "--show-secrets"],
        &["diff", "--env", "dev", "--live-from", live],
        &["diff", "--env", "dev", "--live-from", live, "-o", "json"],
        &["apply", "--env", "dev"],
    ];
    let mut failures = Vec::new();
    for case in CASES {
        let (repo, outside) = (Repo::minimal(), Outside::new());
        // Refused for this reason, not another (apply has no cluster here, and would fail anyway).
        let expect = (case.setup)(&repo, &outside);
        for args in commands {
            for (source, run) in both_sources(&repo, args) {
                let command = format!("{} on {source}", args.join(" "));
                if let Err(failure) = check_refused(case.name, &command, &run, &expect) {
                    failures.push(failure);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn links_that_stay_inside_the_repository_are_followed() {
    let repo = Repo::minimal();
    repo.write("values/common.yaml", "greeting: from-a-link\n");
    link(&repo, "values/dev.yaml", "common.yaml");
    repo.write("shared/app/chart.yaml", "name: app\nversion: 0.1.0\n");
    repo.write(
        "shared/app/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: linked\ndata:\n  greeting: {{ values.greeting }}\n",
    );
    link(&repo, "charts/linked", "../shared/app");
    repo.write(
        DEV,
        "namespace: apps\nreleases:\n  - name: app\n    chart: linked\n    valuesFiles: [values/dev.yaml]\n",
    );
    for (source, run) in both_sources(&repo, &["render", "--env", "dev"]) {
        assert_eq!(run.code, 0, "{source}: {}", run.stderr);
        assert!(run.stdout.contains("greeting: from-a-link"), "{source}: {}", run.stdout);
    }
}

#[test]
fn links_that_loop_are_an_error_on_both_sources_not_an_endless_walk() {
    let repo = Repo::minimal();
    link(&repo, "charts/app/templates/a", ".");
    link(&repo, "charts/app/templates/b", ".");
    for (source, run) in both_sources(&repo, &["render", "--env", "dev"]) {
        assert_eq!(run.code, 1, "{source}: {}", run.stderr);
        assert!(run.stderr.contains("charts/app/templates/"), "{source}: {}", run.stderr);
        assert!(run.stderr.contains("through a symbolic link (a loop)"), "{source}: {}", run.stderr);
    }
}

/// Two ways to one directory (a link beside it) are no loop: the chart renders on both sources.
#[test]
fn two_links_to_one_directory_are_not_a_loop() {
    let repo = Repo::minimal();
    repo.write("charts/app/files/shared/banner.txt", "hello\n");
    link(&repo, "charts/app/files/alias", "shared");
    for (source, run) in both_sources(&repo, &["render", "--env", "dev"]) {
        assert_eq!(run.code, 0, "{source}: {}", run.stderr);
    }
}

#[test]
fn a_repository_inside_a_larger_git_repository_stays_in_its_own_directory() {
    let top = Repo::empty();
    // Another directory of the same git repository: inside the commit's tree, outside weaver's.
    top.write("other/values.yaml", &format!("greeting: {SEED}\n"));
    top.write("deploy/charts/app/chart.yaml", "name: app\nversion: 0.1.0\n");
    top.write(
        "deploy/charts/app/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  greeting: {{ values.greeting }}\n",
    );
    link(&top, "deploy/values/linked.yaml", "../../other/values.yaml");
    let git = init(top.path());
    let deploy = top.path().join("deploy");
    for entry in ["values/linked.yaml", "../other/values.yaml"] {
        top.write(
            &format!("deploy/{DEV}"),
            &format!("namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [{entry}]\n"),
        );
        commit_all(&git, entry);
        for args in [&["render", "--env", "dev"][..], &["render", "--env", "dev", "--rev", "HEAD"]] {
            let run = common::weaver_in(&deploy, args, &[]);
            let expect = [format!("{DEV}:5:19"), format!("{entry} resolves to"), "outside the repository".to_string()];
            check_refused(entry, &args.join(" "), &run, &expect).unwrap();
        }
    }
}
