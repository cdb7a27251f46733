//! The CI examples in examples/ (GitHub Actions, GitLab CI, a Kubernetes Indexed Job) cannot
//! rot: every weaver command in their scripts must parse with the current command line, and
//! their scripts run, job by job and for every runner their matrix declares (each shard), against
//! the demo repository and the test cluster.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use common::skip::say_skipped;
use serde_json::Value;
use weaver_cli::cli::Cli;

/// The shell scripts of a CI file: GitHub's `run`, GitLab's `script`, `before_script` and
/// `after_script` (a string or a list of strings), a container's `command: [sh, -c, SCRIPT]`.
fn scripts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let is_script = ["run", "script", "before_script", "after_script"].contains(&key.as_str());
                match value {
                    Value::String(text) if is_script => out.push(text.clone()),
                    Value::Array(lines) if is_script => {
                        out.extend(lines.iter().filter_map(Value::as_str).map(String::from));
                    }
                    Value::Array(_) if key == "command" => out.extend(shell_script(value)),
                    _ => scripts(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| scripts(item, out)),
        _ => {}
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    /// A word, quotes removed; one that expands a variable is a placeholder value.
    Word(String),
    /// Ends a simple command: newline, `;`, `|`, `||`, `&&`, `&`, `(`, `)`, `$(`.
    Separator,
    /// `>`, `>>`, `<`, `2>`: the next word is a file, not an argument.
    Redirect,
}

/// Enough of the shell's word splitting for CI scripts: quotes, `\` line continuations,
/// comments, operators and redirections. GitHub's `${{ … }}` and `$VAR` are placeholders.
fn tokens(script: &str) -> Vec<Token> {
    let mut text = script.replace("\\\n", " ");
    while let Some(start) = text.find("${{") {
        let end = text[start..].find("}}").map_or(text.len(), |e| start + e + 2);
        text.replace_range(start..end, "$GITHUB_EXPRESSION");
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut word, mut in_word, mut expands) = (String::new(), false, false);
    let mut i = 0;
    let end_word = |word: &mut String, in_word: &mut bool, expands: &mut bool, out: &mut Vec<Token>| {
        if *in_word {
            out.push(Token::Word(if *expands { "PLACEHOLDER".into() } else { std::mem::take(word) }));
        }
        word.clear();
        (*in_word, *expands) = (false, false);
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                let end = chars[i + 1..].iter().position(|&c| c == '\'').expect("closed quote") + i + 1;
                word.extend(&chars[i + 1..end]);
                in_word = true;
                i = end;
            }
            '"' => {
                let end = chars[i + 1..].iter().position(|&c| c == '"').expect("closed quote") + i + 1;
                let quoted: String = chars[i + 1..end].iter().collect();
                expands |= quoted.contains('$');
                word.push_str(&quoted);
                in_word = true;
                i = end;
            }
            '#' if !in_word => {
                i = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p) - 1;
            }
            ' ' | '\t' => end_word(&mut word, &mut in_word, &mut expands, &mut out),
            '\n' | ';' | '|' | '&' | '(' | ')' => {
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                out.push(Token::Separator);
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                out.push(Token::Separator);
                i += 1;
            }
            '>' | '<' => {
                // `2>` is a redirection of stderr, not the word 2.
                if word == "2" && !expands {
                    (word, in_word) = (String::new(), false);
                }
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                if chars.get(i + 1) == Some(&c) {
                    i += 1;
                }
                out.push(Token::Redirect);
            }
            '$' => {
                expands = true;
                in_word = true;
                word.push(c);
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut expands, &mut out);
    out
}

/// The arguments of every `weaver` command in a script.
fn weaver_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut redirected = false;
    let mut tokens = tokens(script);
    tokens.push(Token::Separator);
    for token in tokens {
        match token {
            Token::Word(_) if redirected => redirected = false,
            Token::Word(word) => words.push(word),
            Token::Redirect => redirected = true,
            Token::Separator => {
                let keywords = ["if", "then", "else", "elif", "do", "while", "until", "!", "time", "{", "}"];
                let start = words.iter().position(|w| !keywords.contains(&w.as_str())).unwrap_or(words.len());
                if words.get(start).is_some_and(|w| w == "weaver") {
                    commands.push(words[start + 1..].to_vec());
                }
                words.clear();
            }
        }
    }
    commands
}

/// `["/bin/sh", "-c", SCRIPT]`: the script.
fn shell_script(command: &Value) -> Option<String> {
    let parts: Vec<&str> = command.as_array()?.iter().filter_map(Value::as_str).collect();
    match parts.as_slice() {
        [shell, "-c", script] if shell.ends_with("sh") => Some(script.to_string()),
        _ => None,
    }
}

fn example_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(file)
}

/// The YAML documents of an example.
fn documents(file: &str) -> Vec<Value> {
    documents_of(&example_path(file))
}

fn documents_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    weaver_yaml::documents(path, &text).unwrap()
}

/// Every weaver command of an example, each checked with clap; returns them joined by spaces.
fn check_example(file: &str) -> Vec<String> {
    check_ci_file(&example_path(file))
}

/// Every weaver command of the CI file at `path` (an example, or the workflow `weaver init`
/// writes), each checked with clap; returns them joined by spaces.
pub(crate) fn check_ci_file(path: &Path) -> Vec<String> {
    let file = path.display();
    let mut found = Vec::new();
    for document in documents_of(path) {
        scripts(&document, &mut found);
    }
    let commands: Vec<Vec<String>> = found.iter().flat_map(|s| weaver_commands(s)).collect();
    let mut failures = Vec::new();
    for args in &commands {
        // A variable where a number is due stands for one.
        let typed =
            args.iter().enumerate().map(|(i, arg)| match (i.checked_sub(1).map(|p| args[p].as_str()), arg.as_str()) {
                (Some("--shard"), "PLACEHOLDER") => "1/2".to_string(),
                (Some("--wave"), "PLACEHOLDER") => "0".to_string(),
                _ => arg.clone(),
            });
        if let Err(err) = Cli::try_parse_from(std::iter::once("weaver".to_string()).chain(typed)) {
            failures.push(format!("weaver {}\n{}", args.join(" "), err.render()));
        }
    }
    assert!(failures.is_empty(), "{file}: commands the current CLI rejects:\n\n{}", failures.join("\n"));
    commands.iter().map(|args| args.join(" ")).collect()
}

/// What each CI example must do: plan in shards and merge the shards' reports as Markdown, apply
/// wave by wave in shards with --changed-since and merge those reports, drift as JUnit.
fn assert_covers_the_pipeline(file: &str, commands: &[String]) {
    let has = |parts: &[&str]| commands.iter().any(|c| parts.iter().all(|p| c.contains(p)));
    assert!(has(&["changed", "--base PLACEHOLDER", "-o json"]), "{file}: {commands:#?}");
    assert!(has(&["diff", "--shard PLACEHOLDER", "--changed-since PLACEHOLDER", "-o json"]), "{file}: {commands:#?}");
    assert!(has(&["report merge", "-o markdown"]), "{file}: {commands:#?}");
    assert!(has(&["apply", "--wave PLACEHOLDER", "--shard PLACEHOLDER", "--changed-since PLACEHOLDER"]), "{file}");
    assert!(has(&["report merge", "-o json"]), "{file}: {commands:#?}");
    assert!(has(&["drift", "-o junit"]), "{file}: {commands:#?}");
    assert!(has(&["drift", "-o html"]), "{file}: {commands:#?}");
}

#[test]
fn the_github_actions_example_parses_with_the_current_cli() {
    let commands = check_example("ci/github-actions.yml");
    assert_covers_the_pipeline("github-actions.yml", &commands);
}

#[test]
fn the_gitlab_ci_example_parses_with_the_current_cli() {
    let commands = check_example("ci/gitlab-ci.yml");
    assert_covers_the_pipeline("gitlab-ci.yml", &commands);
}

#[test]
fn the_indexed_job_example_parses_with_the_current_cli() {
    let commands = check_example("k8s/indexed-job.yaml");
    let has = |parts: &[&str]| commands.iter().any(|c| parts.iter().all(|p| c.contains(p)));
    assert!(has(&["apply", "--wave PLACEHOLDER", "--shard PLACEHOLDER"]), "{commands:#?}");
    assert!(has(&["report merge"]), "{commands:#?}");
}

/// One run of a script, as a CI runner (or a pod) runs it: which job, which runner of its
/// matrix, the script and its environment.
struct Step {
    job: String,
    runner: String,
    script: String,
    env: BTreeMap<String, String>,
    shell: &'static [&'static str],
}

/// How a step ended.
struct Ran {
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
}

/// The demo repository as a pipeline checks it out: a git repository whose last commit changes
/// staging, its environments in namespaces of the test cluster, a kubeconfig that also has
/// prod's context, and the programs the scripts call (`weaver`, and `curl`, which records
/// what it would send instead).
struct Checkout {
    demo: common::demo::Demo,
    base: String,
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Checkout {
        let demo = common::demo::Demo::new();
        let prefix = demo.cluster.prefix.clone();
        demo.edit("environments/staging.yaml", "namespace: shop-staging", &format!("namespace: {prefix}-staging"));
        demo.edit("environments/prod.yaml", "namespace: shop\n", &format!("namespace: {prefix}-prod\n"));
        for ns in ["staging", "prod"] {
            demo.cluster.delete_later(
                &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("{prefix}-{ns}")}}),
            );
        }
        let git = common::git::init(demo.repo.path());
        let base = common::git::commit_all(&git, "the demo").to_string();
        demo.edit("environments/staging.yaml", "storage: 2Gi", "storage: 3Gi");
        common::git::commit_all(&git, "staging: more storage for redis");
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_weaver"), bin.join("weaver")).unwrap();
        let curl =
            "#!/bin/sh\n# The examples' curl posts a comment: record it instead.\necho \"$@\" >> \"$CURL_LOG\"\n";
        std::fs::write(bin.join("curl"), curl).unwrap();
        std::fs::set_permissions(bin.join("curl"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        // prod's context (`cluster.context: prod-eu`) is the test cluster too.
        let text = std::fs::read_to_string(demo.cluster.kubeconfig()).unwrap();
        let mut config: Value = serde_saphyr::from_str(&text).unwrap();
        let current = config["current-context"].as_str().unwrap().to_string();
        let contexts = config["contexts"].as_array_mut().unwrap();
        let mut prod = contexts.iter().find(|c| c["name"] == current.as_str()).unwrap().clone();
        prod["name"] = "prod-eu".into();
        contexts.push(prod);
        let kubeconfig = home.path().join("kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_string(&config).unwrap()).unwrap();
        Checkout { demo, base, bin, kubeconfig, home }
    }

    fn dir(&self) -> &Path {
        self.demo.repo.path()
    }

    /// Runs `step` in the checkout; a GitHub step's `$GITHUB_ENV` goes into `job_env`.
    fn run(&self, step: &Step, job_env: &mut BTreeMap<String, String>) -> Ran {
        let temp = self.home.path().join("runner-temp");
        std::fs::create_dir_all(&temp).unwrap();
        let github_env = temp.join("github-env");
        std::fs::write(&github_env, "").unwrap();
        let mut command = std::process::Command::new(step.shell[0]);
        command.args(&step.shell[1..]).arg(&step.script).current_dir(self.dir());
        command.env_clear();
        command.env("PATH", format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap()));
        command.env("HOME", self.home.path()).env("NO_COLOR", "1").env("CURL_LOG", self.home.path().join("curl.log"));
        command.env("RUNNER_TEMP", &temp).env("GITHUB_ENV", &github_env).env("GITHUB_OUTPUT", temp.join("output"));
        command.envs(job_env.iter()).envs(step.env.iter());
        let out = command.output().unwrap();
        for line in std::fs::read_to_string(&github_env).unwrap().lines() {
            if let Some((key, value)) = line.split_once('=') {
                job_env.insert(key.to_string(), value.to_string());
            }
        }
        Ran {
            what: format!("{} ({})", step.job, step.runner),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the steps in order; on a real server, those that apply are skipped, saying why.
    fn run_all(&self, steps: &[Step]) -> Vec<Ran> {
        let mut ran = Vec::new();
        let mut job_env = BTreeMap::new();
        let mut last_job = String::new();
        for step in steps {
            if step.job != last_job {
                job_env.clear();
                last_job = step.job.clone();
            }
            if !self.demo.cluster.is_fake() && step.script.contains("apply") {
                say_skipped(&format!(
                    "{} ({}) applies with --wait (or merges what the applies wrote), and a real test server runs no pods: nothing would become ready",
                    step.job, step.runner
                ));
                continue;
            }
            ran.push(self.run(step, &mut job_env));
        }
        ran
    }

    /// The JSON report a script wrote.
    fn report(&self, file: &str) -> Value {
        let text = std::fs::read_to_string(self.dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}: {text}"))
    }
}

/// `${{ expression }}` of a GitHub workflow, from `values`.
fn github_expressions(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    while let Some(start) = out.find("${{") {
        let end = start + out[start..].find("}}").expect("closed expression") + 2;
        let expression = out[start + 3..end - 2].trim().to_string();
        let value =
            values.get(&expression).unwrap_or_else(|| panic!("the test knows no value of ${{{{ {expression} }}}}"));
        out.replace_range(start..end, value);
    }
    out
}

/// Each value of a `{KEY: VALUE}` map as a string.
fn string_map(value: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), String::from);
    value.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect()).unwrap_or_default()
}

/// The event a job runs on, from its `if:` or `rules:`: pull (0), push (1) or schedule (2).
fn event(condition: &str) -> usize {
    ["pull_request", "merge_request_event", "push", "schedule"]
        .iter()
        .position(|e| condition.contains(e))
        .map_or(3, |i| [0, 0, 1, 2][i])
}

/// The GitHub workflow's steps in the order a pull request, a merge and a schedule run them: the
/// jobs of each event after those they `need`, each once per combination of its matrix, with
/// its `run` steps (not the install step, which the checkout's PATH stands in for; not those
/// whose `if:` asks for an output of an earlier step).
fn github_steps(checkout: &Checkout) -> Vec<Step> {
    let workflow = documents("ci/github-actions.yml").remove(0);
    let kubeconfig = std::fs::read_to_string(&checkout.kubeconfig).unwrap();
    // The demo's dev key, as the secret would hold a key.
    let age_key = std::fs::read_to_string(checkout.dir().join("secrets/dev.agekey")).unwrap();
    let mut values: BTreeMap<String, String> = [
        ("secrets.KUBECONFIG_DATA", kubeconfig.as_str()),
        ("secrets.SOPS_AGE_KEY", age_key.as_str()),
        ("github.event.pull_request.base.sha", checkout.base.as_str()),
        ("github.event.before", checkout.base.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let jobs = workflow["jobs"].as_object().unwrap();
    let mut order: Vec<&String> = Vec::new();
    let mut names: Vec<&String> = jobs.keys().collect();
    names.sort_by_key(|name| event(jobs[*name]["if"].as_str().unwrap_or_default()));
    // Each time the first job (by event) whose needs ran: a stable order of the needs.
    while order.len() < names.len() {
        let next = names.iter().find(|name| {
            let needs: Vec<&str> = match &jobs[**name]["needs"] {
                Value::String(one) => vec![one.as_str()],
                Value::Array(all) => all.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            !order.contains(name) && needs.iter().all(|n| order.iter().any(|o| o.as_str() == *n))
        });
        order.push(next.expect("no cycle of needs"));
    }
    let mut steps = Vec::new();
    for name in order {
        let job = &jobs[name];
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), String::from);
        let matrix: Vec<(&String, Vec<String>)> = job["strategy"]["matrix"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k, v.as_array().unwrap().iter().map(text).collect())).collect())
            .unwrap_or_default();
        // Each combination of the matrix: one key at most in these examples.
        let runners: Vec<Vec<(String, String)>> = match matrix.as_slice() {
            [] => vec![vec![]],
            [(key, list)] => list.iter().map(|v| vec![(format!("matrix.{key}"), v.clone())]).collect(),
            _ => panic!("{name}: a matrix of several keys"),
        };
        for runner in runners {
            for (k, v) in &runner {
                values.insert(k.clone(), v.clone());
            }
            let mut env = string_map(&workflow["env"]);
            env.extend(string_map(&job["env"]));
            for step in job["steps"].as_array().unwrap() {
                let Some(run) = step["run"].as_str() else { continue };
                let condition = step["if"].as_str().unwrap_or("always()");
                if step["name"] == "Install weaver" || condition != "always()" {
                    continue;
                }
                let mut env = env.clone();
                env.extend(string_map(&step["env"]));
                let env = env.into_iter().map(|(k, v)| (k, github_expressions(&v, &values))).collect();
                steps.push(Step {
                    job: name.clone(),
                    runner: runner.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                    script: run.to_string(),
                    env,
                    shell: &["bash", "-eo", "pipefail", "-c"],
                });
            }
        }
    }
    steps
}

/// The GitLab pipeline's jobs in the order of its stages (a job's `extends` merged in), each
/// `parallel: N` job once per CI_NODE_INDEX, with its `script` (not `default`'s install
/// `before_script`, which the checkout's PATH stands in for).
fn gitlab_steps(checkout: &Checkout) -> Vec<Step> {
    let pipeline = documents("ci/gitlab-ci.yml").remove(0);
    let stages: Vec<&str> = pipeline["stages"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let ci: BTreeMap<String, String> = [
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", checkout.base.as_str()),
        ("CI_COMMIT_BEFORE_SHA", checkout.base.as_str()),
        ("KUBECONFIG", checkout.kubeconfig.to_str().unwrap()),
        ("CI_API_V4_URL", "https://gitlab.example/api/v4"),
        ("CI_PROJECT_ID", "1"),
        ("CI_MERGE_REQUEST_IID", "1"),
        ("PLAN_BOT_TOKEN", "token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut jobs: Vec<(usize, String, Value)> = Vec::new();
    for (name, job) in pipeline.as_object().unwrap() {
        if name.starts_with('.') || job.get("stage").is_none() {
            continue;
        }
        let mut merged = job["extends"].as_str().map_or_else(|| serde_json::json!({}), |t| pipeline[t].clone());
        for (k, v) in job.as_object().unwrap() {
            merged[k] = v.clone();
        }
        let stage = stages.iter().position(|s| Some(*s) == job["stage"].as_str()).expect("a declared stage");
        jobs.push((stage, name.clone(), merged));
    }
    jobs.sort_by_key(|(stage, ..)| *stage);
    let mut steps = Vec::new();
    for (_, name, job) in jobs {
        let script: Vec<&str> = job["script"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let count = job["parallel"].as_u64().unwrap_or(0);
        let runners: Vec<Option<u64>> = if count == 0 { vec![None] } else { (1..=count).map(Some).collect() };
        for index in runners {
            let mut env = string_map(&pipeline["variables"]);
            env.extend(string_map(&job["variables"]));
            env.extend(ci.clone());
            if let Some(index) = index {
                env.insert("CI_NODE_INDEX".into(), index.to_string());
                env.insert("CI_NODE_TOTAL".into(), count.to_string());
            }
            steps.push(Step {
                job: name.clone(),
                runner: index.map_or_else(String::new, |i| format!("CI_NODE_INDEX={i}")),
                script: script.join("\n"),
                env,
                shell: &["bash", "-eo", "pipefail", "-c"],
            });
        }
    }
    steps
}

/// The manifest's Jobs in order, an Indexed Job's script once per JOB_COMPLETION_INDEX, with
/// its container's env (the repository and the reports' volume being the checkout).
fn indexed_job_steps(checkout: &Checkout) -> Vec<Step> {
    let mut steps = Vec::new();
    for job in documents("k8s/indexed-job.yaml") {
        let name = job["metadata"]["name"].as_str().unwrap().to_string();
        let indexed = job["spec"]["completionMode"] == "Indexed";
        let count = job["spec"]["completions"].as_u64().unwrap_or(1);
        for container in job["spec"]["template"]["spec"]["containers"].as_array().unwrap() {
            let script = shell_script(&container["command"]).expect("a container running a shell script");
            let mut env: BTreeMap<String, String> = container["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
                .collect();
            let dir = checkout.dir().to_str().unwrap().to_string();
            for (key, value) in [("REPO", &dir), ("REPORTS", &dir)] {
                if env.contains_key(key) {
                    env.insert(key.to_string(), value.clone());
                }
            }
            env.insert("KUBECONFIG".into(), checkout.kubeconfig.to_str().unwrap().into());
            env.remove("SOPS_AGE_KEY_FILE");
            let indexes: Vec<Option<u64>> = if indexed { (0..count).map(Some).collect() } else { vec![None] };
            for index in indexes {
                let mut env = env.clone();
                if let Some(index) = index {
                    env.insert("JOB_COMPLETION_INDEX".into(), index.to_string());
                }
                steps.push(Step {
                    job: name.clone(),
                    runner: index.map_or_else(String::new, |i| format!("JOB_COMPLETION_INDEX={i}")),
                    script: script.clone(),
                    env,
                    shell: &["sh", "-c"],
                });
            }
        }
    }
    steps
}

/// Every step ran, and those that failed failed for prod alone: the demo's prod secrets are
/// encrypted to a key that is not in the repository (so prod fails to plan and to apply, and
/// the runs that include it exit 1 after the others' reports), as the docs show.
fn assert_only_prod_failed(ran: &[Ran]) {
    for run in ran {
        match run.code {
            0 => {}
            1 => assert!(
                run.stderr.contains("environment `prod`: secrets/prod.yaml: "),
                "{} failed for another reason than prod's key:\n{}",
                run.what,
                run.stderr
            ),
            code => panic!("{} exited {code}:\n{}", run.what, run.stderr),
        }
    }
}

/// The plan's shards: their reports hold each environment once, and the merged report says dev
/// and staging were planned and prod failed.
fn assert_planned(checkout: &Checkout, shards: &[String], merged_markdown: &str) {
    let mut planned: Vec<String> = shards
        .iter()
        .flat_map(|file| {
            let report = checkout.report(file);
            assert_eq!(report["command"], "diff", "{file}");
            report["environments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["environment"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    planned.sort();
    assert_eq!(planned, ["dev", "prod", "staging"], "{shards:?}");
    let markdown = std::fs::read_to_string(checkout.dir().join(merged_markdown)).unwrap();
    assert!(markdown.starts_with("### weaver diff: 3 environments\n\nRendered from commit `"), "{markdown}");
    assert!(markdown.contains("| `prod` | failed | | | |"), "{markdown}");
    // --changed-since: the last commit changed staging's file, not dev's: dev has nothing to do.
    assert!(markdown.contains("| `dev` | 0 | 0 | 0 | 0 |"), "{markdown}");
    assert!(markdown.contains("<details><summary><code>staging</code>: "), "{markdown}");
}

/// The apply's shards, wave by wave, merged: dev and staging (wave 0) applied, prod (wave 1)
/// failed, in the document kept and in the table the log shows (`ran`: the steps); on a real
/// server they did not run.
fn assert_applied(checkout: &Checkout, merged: &str, ran: &[Ran]) {
    if !checkout.demo.cluster.is_fake() {
        return;
    }
    let report = checkout.report(merged);
    let states = common::fleet_states(&report);
    assert_eq!(states, [("dev", "applied"), ("staging", "applied"), ("prod", "failed")], "{report:#}");
    let table = "3 environments: 2 applied, 1 failed, 0 interrupted, 0 skipped, 0 not started";
    assert!(ran.iter().any(|r| r.stdout.contains(table)), "no step printed the fleet's table `{table}`");
}

#[test]
fn the_github_actions_example_runs_against_the_demo_shard_by_shard() {
    let checkout = Checkout::new();
    let steps = github_steps(&checkout);
    let plans: Vec<&Step> = steps.iter().filter(|s| s.job == "plan" && s.script.contains("weaver diff")).collect();
    assert_eq!(plans.len(), 3, "one run per shard of the matrix");
    let ran = checkout.run_all(&steps);
    assert_only_prod_failed(&ran);
    assert_planned(&checkout, &["plan-1.json".into(), "plan-2.json".into(), "plan-3.json".into()], "plan.md");
    let output = std::fs::read_to_string(checkout.home.path().join("runner-temp/output")).unwrap_or_default();
    assert!(output.contains("status=1"), "the comment job fails the run, prod having failed: {output}");
    assert_applied(&checkout, "fleet-apply.json", &ran);
}

#[test]
fn the_gitlab_ci_example_runs_against_the_demo_shard_by_shard() {
    let checkout = Checkout::new();
    let steps = gitlab_steps(&checkout);
    assert_eq!(steps.iter().filter(|s| s.job == "plan").count(), 3, "one run per CI_NODE_INDEX");
    let ran = checkout.run_all(&steps);
    assert_only_prod_failed(&ran);
    assert_planned(&checkout, &["plan-1.json".into(), "plan-2.json".into(), "plan-3.json".into()], "plan.md");
    let posted = std::fs::read_to_string(checkout.home.path().join("curl.log")).unwrap();
    assert!(posted.contains("body@plan.md") && posted.contains("/merge_requests/1/notes"), "{posted}");
    assert_applied(&checkout, "fleet-apply.json", &ran);
}

#[test]
fn the_indexed_job_example_runs_against_the_demo_index_by_index() {
    let checkout = Checkout::new();
    let steps = indexed_job_steps(&checkout);
    assert_eq!(steps.iter().filter(|s| s.runner.starts_with("JOB_COMPLETION_INDEX")).count(), 3);
    let ran = checkout.run_all(&steps);
    assert_only_prod_failed(&ran);
    if checkout.demo.cluster.is_fake() {
        // Wave 0 (dev and staging) over three pods: one of them had nothing to do.
        let sizes: Vec<usize> = (1..=3)
            .map(|shard| checkout.report(&format!("apply-0-{shard}.json"))["environments"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [1, 1, 0]);
        let report = checkout.report("fleet-apply.json");
        assert_eq!(report["summary"]["applied"], 2, "{report:#}");
        let table = "2 environments: 2 applied, 0 failed";
        assert!(ran.iter().any(|r| r.stdout.contains(table)), "no pod printed the fleet's table `{table}`");
    }
}

#[test]
fn scripts_are_split_into_commands_as_the_shell_would() {
    let script = "# weaver render --env commented-out\n\
                  if weaver changed --base \"$BASE\" -o json | jq -e '.x == []' > /dev/null; then\n  \
                  weaver diff --env ${{ matrix.env }} \\\n    -o markdown > \"plan-$env.md\" 2> err.txt\n\
                  fi\nfor env in $(weaver envs -o json | jq -r .x); do echo weaver; done\n\
                  curl -d 'weaver apply' x && weaver drift --env 'a b' || true";
    assert_eq!(
        weaver_commands(script),
        [
            vec!["changed", "--base", "PLACEHOLDER", "-o", "json"],
            vec!["diff", "--env", "PLACEHOLDER", "-o", "markdown"],
            vec!["envs", "-o", "json"],
            vec!["drift", "--env", "a b"],
        ]
    );
}
