//! The documentation cannot drift from what weaver prints: every ```console block of README.md
//! and of the book (docs/src) runs here, in a copy of the demo repository, and its output is
//! compared with the block's.
//!
//! A block is `$ COMMAND` lines, each followed by what it prints (stdout and stderr, as a
//! terminal shows them). A line `…` stands for any number of lines. Commands run with `sh`, in
//! the repository copy, with `weaver` on PATH and no age key, kubeconfig or colour from the
//! machine. The line before the block may say what it needs:
//!
//! ```text
//! <!-- example: cluster setup=diff-changed -->
//! ```
//!
//! `cluster` starts the in-process fake API server, its kubeconfig as `~/.kube/config`; `setup=NAME`
//! prepares the repository or the cluster first ([`setup`] lists them).
//!
//! What varies from run to run is normalised on both sides before they are compared: times,
//! commit hashes, the fake server's port, the temporary home (shown as `~`).
//! `WEAVER_BLESS=1 cargo test --test suite docs::` writes what weaver printed into the blocks that differ.
//!
//! This is the project's own harness rather than trycmd: examples need the in-process fake API
//! server running in the test process and a per-block setup (an apply, an edit made out of band)
//! before the documented command, which trycmd's Markdown cases cannot express.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Repo;
use common::cluster::TestCluster;
use regex::Regex;
use serde_json::json;

/// One ```console block.
struct Example {
    file: PathBuf,
    /// The line of the opening fence (1-based), for messages.
    line: usize,
    /// Indices (0-based) of the lines between the fences.
    body: std::ops::Range<usize>,
    cluster: bool,
    setup: Option<String>,
    steps: Vec<Step>,
}

struct Step {
    command: String,
    expected: Vec<String>,
}

/// README.md and every page of the book.
fn documents() -> Vec<PathBuf> {
    let root = common::project_root();
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn examples(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("```") && lines[i].trim() != "```console" {
            // Another fenced block: skip it whole, so its content is never taken for a fence.
            i += 1 + lines[i + 1..].iter().position(|l| l.trim_start().starts_with("```")).unwrap_or(lines.len());
            i += 1;
            continue;
        }
        if lines[i].trim() != "```console" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap_or_else(|| panic!("{}:{}: unclosed ```console block", file.display(), i + 1));
        let directive = i.checked_sub(1).map(|p| lines[p].trim()).unwrap_or("");
        let words: Vec<&str> = directive
            .strip_prefix("<!-- example:")
            .and_then(|d| d.strip_suffix("-->"))
            .map(|d| d.split_whitespace().collect())
            .unwrap_or_default();
        if let Some(word) = words.iter().find(|w| **w != "cluster" && !w.starts_with("setup=")) {
            panic!("{}:{i}: unknown `{word}` in the example's directive (cluster, setup=NAME)", file.display());
        }
        let mut steps: Vec<Step> = Vec::new();
        for line in &lines[start..end] {
            match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step { command: command.to_string(), expected: Vec::new() }),
                None => steps
                    .last_mut()
                    .unwrap_or_else(|| {
                        panic!(
                            "{}:{}: a ```console block must start with `$ COMMAND`; \
                             write output without a command as ```text",
                            file.display(),
                            i + 1
                        )
                    })
                    .expected
                    .push(line.to_string()),
            }
        }
        out.push(Example {
            file: file.to_path_buf(),
            line: i + 1,
            body: start..end,
            cluster: words.contains(&"cluster"),
            setup: words.iter().find_map(|w| w.strip_prefix("setup=")).map(String::from),
            steps,
        });
        i = end + 1;
    }
    out
}

/// Where an example runs: the demo repository (or what its setup made), and the fake cluster.
struct Context {
    repo: Repo,
    home: tempfile::TempDir,
    bin: tempfile::TempDir,
    cluster: Option<TestCluster>,
}

impl Context {
    fn new(cluster: bool) -> Context {
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(common::WEAVER, bin.path().join("weaver")).unwrap();
        let home = tempfile::tempdir().unwrap();
        let cluster = cluster.then(TestCluster::start_fake);
        // Where kubectl and weaver look by default, so examples need no --kubeconfig.
        if let Some(cluster) = &cluster {
            std::fs::create_dir_all(home.path().join(".kube")).unwrap();
            std::fs::copy(cluster.kubeconfig(), home.path().join(".kube/config")).unwrap();
        }
        Context { repo: Repo::demo(), home, bin, cluster }
    }

    /// Runs a documented command line as a user would type it; stdout and stderr interleaved.
    fn run(&self, command: &str) -> String {
        let path = format!("{}:{}", self.bin.path().display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("exec 2>&1\n{command}")).current_dir(self.repo.path());
        for var in ["WEAVER_AGE_KEY_FILE", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "KUBECONFIG", "XDG_CONFIG_HOME"] {
            cmd.env_remove(var);
        }
        cmd.env("PATH", path).env("HOME", self.home.path()).env("NO_COLOR", "1").env_remove("COLUMNS");
        let out = cmd.output().expect("run sh");
        String::from_utf8(out.stdout).expect("output is UTF-8")
    }

    /// `weaver ARGS` for a setup step, which must succeed.
    fn weaver(&self, args: &str) {
        let path = format!("{}:{}", self.bin.path().display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("weaver {args}")).current_dir(self.repo.path());
        cmd.env("PATH", path).env("HOME", self.home.path()).env("NO_COLOR", "1");
        for var in ["WEAVER_AGE_KEY_FILE", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "KUBECONFIG", "XDG_CONFIG_HOME"] {
            cmd.env_remove(var);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 2),
            "setup `weaver {args}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.repo.path().join(path)).unwrap();
        assert!(text.contains(from), "setup: {path} has no {from:?}");
        self.repo.write(path, &text.replacen(from, to, 1));
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=Docs", "-c", "user.email=docs@example.org", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(self.repo.path())
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn cluster(&self) -> &TestCluster {
        self.cluster.as_ref().expect("this setup needs `cluster` in the example's directive")
    }
}

/// The demo's dev environment without weaver's chart's release and its tenants (the shop's
/// releases only), as the examples about the shop show it.
fn shop_only(cx: &Context) {
    let dev = std::fs::read_to_string(cx.repo.path().join("environments/dev.yaml")).unwrap();
    let start = dev.find("  # weaver's in-cluster half").expect("the demo's dev environment deploys the operator");
    cx.repo.write("environments/dev.yaml", &dev[..start]);
}

/// Named preparations of the repository or the cluster, before a block's commands run.
fn setup(name: &str, cx: &Context) {
    let object = |api_version: &str, kind: &str, name: &str| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "shop-dev"}});
    match name {
        "shop-only" => shop_only(cx),
        // The file of live objects `diff --live-from` reads in the tour.
        "live-file" => {
            let fixture = std::fs::read_to_string(common::project_root().join("tests/fixtures/live-dev.yaml")).unwrap();
            cx.repo.write("tests/fixtures/live-dev.yaml", &fixture);
        }
        // The shop applied, then changed out of band: web scaled to 3, an API key replaced.
        "diff-changed" => {
            shop_only(cx);
            cx.weaver("apply --env dev");
            cx.cluster().merge_patch(
                &object("apps/v1", "Deployment", "web"),
                &json!({"spec": {"replicas": 3}}),
                "kubectl-edit",
            );
            cx.cluster().merge_patch(
                &object("v1", "Secret", "web-secrets"),
                &json!({"stringData": {"API_KEY": "rotated-by-hand"}}),
                "kubectl-edit",
            );
        }
        // The shop applied, then the repository changed: redis gets a label, web one replica more.
        "apply-changed" => {
            shop_only(cx);
            cx.weaver("apply --env dev");
            cx.edit("environments/dev.yaml", "      replicas: 1", "      replicas: 2");
        }
        // The shop applied, then changed out of band: web scaled and its image hot-fixed, the
        // API key replaced, redis' ConfigMap deleted.
        "drifted" => {
            shop_only(cx);
            cx.weaver("apply --env dev");
            let web = object("apps/v1", "Deployment", "web");
            let live = cx.cluster().get(&web).expect("web is deployed");
            let image = live["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
            cx.cluster().merge_patch(&web, &json!({"spec": {"replicas": 5}}), "kubectl-edit");
            cx.cluster().apply(
                &[json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": "shop-dev"},
                    "spec": {"template": {"spec": {"containers": [{"name": "web", "image": format!("{image}-hotfix")}]}}}})],
                "kubectl-set-image",
            );
            cx.cluster().merge_patch(
                &object("v1", "Secret", "web-secrets"),
                &json!({"stringData": {"API_KEY": "rotated-by-hand"}}),
                "kubectl-edit",
            );
            cx.cluster().delete(&object("v1", "ConfigMap", "redis-config"));
        }
        // The shop applied to a cluster whose workload controllers do nothing yet.
        "rolling-out" => {
            shop_only(cx);
            cx.cluster().fake("workloads that stay unready").expect("the fake API server").set_auto_ready(false);
            cx.weaver("apply --env dev");
        }
        // Three revisions of web: applied, changed and applied, rolled back.
        "history" => {
            shop_only(cx);
            cx.weaver("apply --env dev");
            cx.edit("environments/dev.yaml", "      replicas: 1", "      replicas: 2");
            cx.weaver("apply --env dev");
            cx.weaver("rollback --env dev web");
        }
        // Two misspelt fields in the web chart's Deployment.
        "misspelt-fields" => {
            cx.edit("charts/web-app/templates/deployment.yaml", "  replicas:", "  replcas:");
            cx.edit("charts/web-app/templates/deployment.yaml", "imagePullPolicy:", "imagePullPolice:");
        }
        // The demo as a git repository: two commits (the second changes the web chart), then
        // an uncommitted change to the same template and a new script.
        "git-changed" => {
            cx.git(&["init", "-q", "-b", "main"]);
            cx.git(&["add", "-A"]);
            cx.git(&["commit", "-q", "-m", "the demo"]);
            cx.edit("charts/web-app/templates/deployment.yaml", "spec:\n", "spec:\n  minReadySeconds: 5\n");
            cx.git(&["commit", "-q", "-am", "web waits 5 s for a ready pod"]);
            cx.edit("charts/web-app/templates/deployment.yaml", "minReadySeconds: 5", "minReadySeconds: 10");
            cx.repo.write("scripts/smoke-test.sh", "#!/bin/sh\ncurl -f https://web.dev.shop.example.org/healthz\n");
        }
        // The helmfile of guides/import-helmfile.md, in an empty directory.
        "helmfile" => {
            for dir in ["environments", "charts", "secrets"] {
                std::fs::remove_dir_all(cx.repo.path().join(dir)).unwrap();
            }
            let page =
                std::fs::read_to_string(common::project_root().join("docs/src/guides/import-helmfile.md")).unwrap();
            let helmfile = page
                .split("```yaml\n")
                .skip(1)
                .map(|block| block.split("```").next().unwrap())
                .find(|block| block.starts_with("# helmfile.yaml"))
                .expect("the page shows a helmfile.yaml");
            cx.repo
                .write("helmfile.yaml", helmfile)
                .write("env/common.yaml", "replicas: 2\n")
                .write("env/prod.yaml", "replicas: 3\n")
                .write("values/web.yaml.gotmpl", "host: web.{{ .Environment.Name }}.example.org\n")
                .write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
        }
        // The CI user may not list ConfigMaps in shop-dev.
        "forbidden" => {
            shop_only(cx);
            cx.cluster().fake("forbidding a list").expect("the fake API server").forbid(
                "list",
                "configmaps",
                Some("shop-dev"),
            );
        }
        // The API server answers discovery 5 s late, every time.
        "slow-server" => {
            let fake = cx.cluster().fake("delaying discovery").expect("the fake API server");
            fake.inject(
                weaver_test_apiserver::Fault::delay("GET", "/api", std::time::Duration::from_secs(5)).times(50),
            );
        }
        // The web chart renders a custom resource whose CRD is installed nowhere.
        "unserved-kind" => {
            shop_only(cx);
            cx.repo.write(
                "charts/web-app/templates/gizmo.yaml",
                "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\nspec: {}\n",
            );
        }
        // dev names a kubeconfig context that the kubeconfig lacks.
        "unknown-context" => cx.edit(
            "environments/dev.yaml",
            "namespace: shop-dev",
            "namespace: shop-dev\ncluster: { context: prod-eu }",
        ),
        // Error examples: one mistake each.
        "unknown-field" => cx.edit("environments/dev.yaml", "    valuesFiles:", "    replicaz: 2\n    valuesFiles:"),
        "unknown-chart" => cx.edit("environments/base.yaml", "chart: web-app", "chart: web-ap"),
        "undefined-value" => {
            cx.edit("charts/web-app/templates/_helpers.j2", "{{ release.name }}", "{{ release.nmae }}")
        }
        "secret-key-typo" => {
            cx.edit("charts/web-app/templates/secret.yaml", "secrets.web.apiKey", "secrets.web.apikey")
        }
        "values-schema" => cx.edit("environments/dev.yaml", "      replicas: 1", "      replicas: one"),
        "duplicate-key" => cx.edit("environments/dev.yaml", "releases:", "values:\n  team: platform\nreleases:"),
        "bad-cel" => cx.edit(
            "environments/dev.yaml",
            "releases:",
            "healthChecks:\n  - apiVersion: example.com/v1\n    kind: Database\n    current: status.phase = 'Ready'\nreleases:",
        ),
        "bad-kubeconfig" => {
            cx.repo.write(
                "ci.yaml",
                "apiVersion: v1\nkind: Config\nusers:\n  - name: ci\n    user:\n      token: abc\n     client-key: x\n",
            );
        }
        other => panic!("no example setup `{other}` (tests/docs.rs)"),
    }
}

/// What varies from run to run, the same on both sides.
fn normalise(text: &str, cx: Option<&Context>) -> String {
    let mut text = text.to_string();
    if let Some(cx) = cx {
        text = text.replace(&cx.home.path().display().to_string(), "~");
        text = text.replace(&cx.repo.path().display().to_string(), ".");
    }
    // Compiled once: this runs for every line of every example, and compiling the patterns
    // each time was half the test's CPU in a debug build.
    static RULES: std::sync::LazyLock<Vec<(Regex, &str)>> = std::sync::LazyLock::new(|| {
        [
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
            (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
            (r"\b(commit|on commit) [0-9a-f]{8,12}\b", "$1 [COMMIT]"),
            (r"(?m)^(\d+ +\w+ +\[TIME\] +\S+ +\S+ +)[0-9a-f]{12}\b", "$1[COMMIT]"),
            (r"(https?)://127\.0\.0\.1:\d+", "$1://127.0.0.1:PORT"),
            (r"\(\d+(\.\d+)?(µs|ms|s)\)", "([DURATION])"),
        ]
        .into_iter()
        .map(|(pattern, replacement)| (Regex::new(pattern).unwrap(), replacement))
        .collect()
    });
    for (pattern, replacement) in RULES.iter() {
        text = pattern.replace_all(&text, *replacement).into_owned();
    }
    text
}

/// Whether `actual` is `expected`, where an expected line `…` matches any run of lines.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "…" => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((first, rest)) => {
            actual.first().is_some_and(|a| a.trim_end() == first.trim_end()) && matches(rest, &actual[1..])
        }
    }
}

#[test]
fn every_console_example_prints_what_the_documentation_shows() {
    let bless = std::env::var_os("WEAVER_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut count = 0;
    for file in documents() {
        let mut rewritten: Option<Vec<String>> = None;
        let examples = examples(&file);
        // From the last block up, so a rewritten block leaves the earlier ones' lines in place.
        for example in examples.iter().rev() {
            count += 1;
            let cx = Context::new(example.cluster);
            if let Some(name) = &example.setup {
                setup(name, &cx);
            }
            let mut block = Vec::new();
            let mut differs = false;
            for step in &example.steps {
                let printed = cx.run(&step.command);
                let actual_text = normalise(&printed, Some(&cx));
                let actual: Vec<&str> = actual_text.lines().collect();
                let expected: Vec<String> = step.expected.iter().map(|l| normalise(l, None)).collect();
                block.push(format!("$ {}", step.command));
                if matches(&expected, &actual) {
                    block.extend(step.expected.iter().cloned());
                } else {
                    differs = true;
                    failures.push(format!(
                        "{}:{}: `{}` printed:\n{}\n--- the documentation shows:\n{}\n",
                        example.file.display(),
                        example.line,
                        step.command,
                        actual_text.trim_end(),
                        step.expected.join("\n")
                    ));
                    let shown = printed.replace(&cx.home.path().display().to_string(), "~");
                    block.extend(shown.replace(&cx.repo.path().display().to_string(), ".").lines().map(String::from));
                }
            }
            if bless && differs {
                let lines = rewritten
                    .get_or_insert_with(|| std::fs::read_to_string(&file).unwrap().lines().map(String::from).collect());
                lines.splice(example.body.clone(), block);
            }
        }
        if let Some(lines) = rewritten {
            std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        }
    }
    assert!(count > 0, "no ```console example found");
    assert!(
        failures.is_empty(),
        "{} documented example(s) no longer print what the documentation shows:\n\n{}\n\
         Refresh them with: WEAVER_BLESS=1 cargo test --test suite docs:: (then review the diff: `…` lines are lost where a block is rewritten)",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn an_ellipsis_matches_any_run_of_lines() {
    let expected = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(matches(&expected(&["a", "…", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&expected(&["a", "…", "d"]), &["a", "d"]));
    assert!(!matches(&expected(&["a", "…", "d"]), &["a", "b", "c"]));
    assert!(!matches(&expected(&["a", "b"]), &["a", "b", "c"]));
}

#[test]
fn varying_output_is_normalised() {
    let text = "REVISION  STATUS      TIME                  CHART          APP VERSION  COMMIT        OBJECTS  DESCRIPTION\n\
                1         superseded  2026-11-21T01:45:40Z  web-app-1.2.0  1.4.2        4be2f0c81a9e  4        apply\n\
                base: commit a1a96a15 (HEAD~1)\nserver https://127.0.0.1:40123 <redacted:1a2b3c4d>\n1 object ready (4ms)";
    assert_eq!(
        normalise(text, None),
        "REVISION  STATUS      TIME                  CHART          APP VERSION  COMMIT        OBJECTS  DESCRIPTION\n\
         1         superseded  [TIME]  web-app-1.2.0  1.4.2        [COMMIT]  4        apply\n\
         base: commit [COMMIT] (HEAD~1)\nserver https://127.0.0.1:PORT <redacted:1a2b3c4d>\n1 object ready ([DURATION])"
    );
}

/// A heading's anchor as mdBook (and GitHub) make it: lower case, spaces to `-`, other
/// punctuation dropped; the second of two equal headings gets `-1`.
fn anchors(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut counts = std::collections::HashMap::new();
    let mut fence = false;
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        }
        let Some(text) = line.strip_prefix('#').filter(|_| !fence).map(|l| l.trim_start_matches('#').trim()) else {
            continue;
        };
        let id: String = link
            .replace_all(text, "$1")
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = counts.entry(id.clone()).or_insert(0);
        out.push(if *count == 0 { id } else { format!("{id}-{count}") });
        *count += 1;
    }
    out
}

/// The `[text](target)` links of a page, outside code, with their line numbers.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let pattern = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let mut out = Vec::new();
    let mut fence = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        let line = code.replace_all(line, "");
        out.extend(pattern.captures_iter(&line).map(|c| (i + 1, c[1].to_string())));
    }
    out
}

/// Every internal link of README.md and the book leads to a file that exists and, with `#`, to
/// a heading of it; every page is in the table of contents. (mdBook only warns of either.)
#[test]
fn internal_links_and_anchors_resolve_and_every_page_is_in_the_summary() {
    let root = common::project_root();
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            let here = format!("{}:{line}: {target}", file.strip_prefix(&root).unwrap().display());
            if !resolved.exists() {
                broken.push(format!("{here}: no such file"));
                continue;
            }
            let in_book = resolved.canonicalize().unwrap().starts_with(root.join("docs/src").canonicalize().unwrap());
            if file.starts_with(root.join("docs/src")) && !in_book && path.ends_with(".md") {
                broken.push(format!("{here}: a book page links to a Markdown file outside docs/src"));
            }
            if !anchor.is_empty() && !anchors(&std::fs::read_to_string(&resolved).unwrap()).iter().any(|a| a == anchor)
            {
                broken.push(format!("{here}: no heading with this anchor"));
            }
        }
    }
    let summary = std::fs::read_to_string(root.join("docs/src/SUMMARY.md")).unwrap();
    let listed: Vec<String> = links(&summary).into_iter().map(|(_, target)| target).collect();
    for file in documents().iter().filter(|f| f.starts_with(root.join("docs/src"))) {
        let relative = file.strip_prefix(root.join("docs/src")).unwrap().to_string_lossy().into_owned();
        if relative != "SUMMARY.md" && !listed.contains(&relative) {
            broken.push(format!("docs/src/{relative} is not in docs/src/SUMMARY.md"));
        }
    }
    assert!(broken.is_empty(), "broken links in the documentation:\n{}", broken.join("\n"));
}

/// The README is the front page (issue 38): what weaver is, the two commands, a tour and links;
/// the detail lives in the book.
#[test]
fn the_readme_stays_a_front_page() {
    let readme = std::fs::read_to_string(common::project_root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines, more than 250: move the detail into the book and link to it");
}

#[test]
fn anchors_are_made_as_mdbook_makes_them() {
    assert_eq!(
        anchors(
            "# A `weaver diff -o json` page\n```\n# not a heading\n```\n## From helmfile: `weaver import helmfile [FILE]`\n## Twice\n## Twice\n"
        ),
        ["a-weaver-diff--o-json-page", "from-helmfile-weaver-import-helmfile-file", "twice", "twice-1"]
    );
}

/// The prerequisites of getting-started.md are what .ci/run installs or requires: each apt
/// package, the pinned helm and its npm package, kubectl's rule, the pip packages, mdBook's pin.
#[test]
fn the_prerequisites_are_what_ci_installs() {
    let root = common::project_root();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let page = std::fs::read_to_string(root.join("docs/src/getting-started.md")).unwrap();
    let section = page.split("## Prerequisites").nth(1).expect("getting-started.md has Prerequisites");
    let section = section.split("\n## ").next().unwrap();
    let mut needed: Vec<String> = Vec::new();
    let capture = |pattern: &str| -> Vec<String> {
        Regex::new(pattern).unwrap().captures_iter(&ci).map(|c| c[1].to_string()).collect()
    };
    needed.extend(capture(r"need_apt\+=\(([\w.-]+)\)"));
    needed.extend(capture(r"apt-get install -y -qq ([\w.-]+) >"));
    needed.extend(capture(r"npm pack --silent (\S+)"));
    needed.extend(capture(r"grep -q '\^(v[\d.]+)'"));
    needed.extend(capture(r"pip install --quiet (\S+)"));
    needed.extend(capture(r"mdbook_version=([\d.]+)"));
    needed.extend(capture(r"(kubernetes-client)"));
    assert!(needed.len() >= 10, "read too little from .ci/run: {needed:?}");
    for thing in needed {
        let thing = thing.replace("pyyaml", "PyYAML");
        assert!(
            section.contains(&thing),
            "getting-started.md's prerequisites do not name `{thing}`, which .ci/run installs"
        );
    }
    assert!(ci.contains("cargo test --workspace --locked"), ".ci/run runs the README's test command");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("cargo test --workspace --locked"), "the README gives the test command .ci/run runs");
}

/// `tools/kube-builtins` (outside the workspace, its own lock) generates `builtins.json` from the
/// k8s-openapi weaver builds, with the schemars and serde_json weaver's lock holds, and `.ci/run`
/// runs its test: after an upgrade of one lock, this fails until the other follows.
#[test]
fn the_builtins_generator_locks_the_crates_weaver_locks() {
    let root = common::project_root();
    // Each package's versions (a lock may hold two of one name).
    type Versions = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;
    let versions = |lock: &str| -> Versions {
        let text = std::fs::read_to_string(root.join(lock)).unwrap();
        let lock: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{lock}: {e}"));
        let packages = lock["package"].as_array().expect("a lock lists packages");
        let field = |package: &toml::Value, key: &str| package[key].as_str().unwrap_or_default().to_string();
        let mut versions = Versions::new();
        for package in packages {
            versions.entry(field(package, "name")).or_default().insert(field(package, "version"));
        }
        versions
    };
    let (workspace, generator) = (versions("Cargo.lock"), versions("tools/kube-builtins/Cargo.lock"));
    for name in ["k8s-openapi", "schemars", "serde_json"] {
        assert!(workspace.contains_key(name), "Cargo.lock has no {name}");
        assert_eq!(
            generator.get(name),
            workspace.get(name),
            "{name}: tools/kube-builtins/Cargo.lock and Cargo.lock differ (cargo update -p {name} \
             --manifest-path tools/kube-builtins/Cargo.toml --precise VERSION)"
        );
    }
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --locked --manifest-path tools/kube-builtins/Cargo.toml"), ".ci/run runs it");
}

/// Each table of reference/file-formats.md lists every field of the struct it names.
#[test]
fn the_file_formats_list_every_field() {
    let root = common::project_root();
    let page = std::fs::read_to_string(root.join("docs/src/reference/file-formats.md")).unwrap();
    let structs = [
        (
            "crates/project/src/environment/file.rs",
            ["EnvironmentFile", "ClusterFile", "RepositoryFile", "ReleaseFile", "PatchFile"].as_slice(),
        ),
        ("crates/project/src/environment/mod.rs", &["PatchTarget"]),
        ("crates/project/src/ignore.rs", &["IgnoreRuleFile"]),
        ("crates/project/src/promotion.rs", &["PromotionFile", "PinFile", "Promoted", "PromotedRelease"]),
        ("crates/project/src/image_updates.rs", &["ImageUpdateFile", "PolicyFile", "FilterFile"]),
        ("crates/project/src/chart.rs", &["ChartFile"]),
        ("crates/project/src/settings.rs", &["SettingsFile"]),
        ("crates/source/src/charts/mod.rs", &["Lock", "LockedChart", "ChartRef"]),
        ("crates/source/src/charts/http.rs", &["CredentialsFile", "Credentials"]),
    ];
    let field = Regex::new(r"^\s*(?:pub(?:\([a-z]+\))? )?([a-z_]+): ").unwrap();
    let mut missing = Vec::new();
    for (file, names) in structs {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        for name in names {
            assert!(page.contains(&format!("`{name}`")), "file-formats.md does not name struct {name}");
            let start =
                source.find(&format!("struct {name} {{")).unwrap_or_else(|| panic!("{file} has no struct {name}"));
            let attributes = &source[source[..start].rfind("#[derive").unwrap()..start];
            let camel = attributes.contains("rename_all = \"camelCase\"");
            let body = &source[start..start + source[start..].find("\n}").unwrap()];
            let (mut rename, mut skipped) = (None, false);
            for line in body.lines().skip(1) {
                if let Some(r) = line.split("rename = \"").nth(1) {
                    rename = Some(r.split('"').next().unwrap().to_string());
                }
                // Not read from the file (what the cluster's Secrets give, say).
                skipped |= line.trim() == "#[serde(skip)]";
                let Some(c) = field.captures(line) else { continue };
                if std::mem::take(&mut skipped) {
                    continue;
                }
                let mut key = rename.take().unwrap_or_else(|| c[1].to_string());
                if camel {
                    key = key
                        .split('_')
                        .enumerate()
                        .map(|(i, w)| if i == 0 { w.to_string() } else { w[..1].to_uppercase() + &w[1..] })
                        .collect();
                }
                if !page.contains(&format!("`{key}`")) && !page.contains(&format!(".{key}`")) {
                    missing.push(format!("{name}.{key} ({file})"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "docs/src/reference/file-formats.md does not list: {}", missing.join(", "));
}
