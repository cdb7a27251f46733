//! An environment's `notifications:` against webhook receivers on loopback, with the demo
//! applied to a cluster (the in-process fake, or a real one with WEAVER_TEST_KUBECONFIG):
//! what is sent for an apply, for drift and for its correction, in weaver's JSON and in
//! Slack's format; and that a webhook that fails, answers slowly or refuses the connection is
//! a warning that names the notification, never its URL, and leaves the exit code alone.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Run;
use common::demo::{DEMO_RECIPIENT, Demo};
use serde_json::{Value, json};

/// The credential in every webhook URL here: no output may show it.
const TOKEN: &str = "T0KEN-5ecret-b7e1d2";

/// How a receiver answers a request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// 200, after this long.
    Slow(Duration),
}

/// An HTTP server on loopback that records each request (path, body) and answers from a
/// script, its last answer for every request after.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start(script: &[Answer]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/{TOKEN}?token={TOKEN}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, script) = (Arc::clone(&requests), script.to_vec());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let answer = script[n.min(script.len() - 1)];
                let seen = Arc::clone(&seen);
                // A thread each: a slow answer holds up no other request.
                std::thread::spawn(move || serve(stream, answer, &seen));
            }
        });
        Receiver { url, requests }
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: std::net::TcpStream, answer: Answer, seen: &Mutex<Vec<(String, Value)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let path = request_line.split(' ').nth(1).unwrap_or_default().to_string();
    seen.lock().unwrap().push((path, serde_json::from_slice(&body).expect("a JSON body")));
    let status = match answer {
        Answer::Status(code) => code,
        Answer::Slow(wait) => {
            std::thread::sleep(wait);
            200
        }
    };
    let mut stream = stream;
    let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Asserts the run printed no URL credential.
#[track_caller]
fn no_token(run: &Run) {
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

#[track_caller]
fn code(run: &Run, expected: i32) {
    assert_eq!(run.code, expected, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    no_token(run);
}

/// The demo with notifications appended to its dev environment: `json` (URL from HOOK_URL)
/// and `slack` (URL from a SOPS file of the repository), both with a timeout of `timeout`.
fn demo_with_notifications(timeout: &str) -> (Demo, Receiver) {
    let demo = Demo::new();
    let slack = Receiver::start(&[Answer::Status(200)]);
    demo.repo.write("secrets/hooks.yaml", &format!("slack: {}\n", slack.url));
    let file = demo.repo.path().join("secrets/hooks.yaml");
    demo.repo.weaver(&["secrets", "encrypt", "--age", DEMO_RECIPIENT, file.to_str().unwrap()]).success();
    demo.append(
        "environments/dev.yaml",
        &format!(
            "notifications:
  - name: ops
    type: json
    url: {{fromEnv: HOOK_URL}}
    timeout: {timeout}
  - name: team-slack
    type: slack
    url:
      fromSecret: {{file: secrets/hooks.yaml, key: slack}}
    events: [drift, driftCorrected]
"
        ),
    );
    (demo, slack)
}

fn deployment(demo: &Demo) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}})
}

#[test]
fn applies_drift_and_corrections_are_told_in_json_and_slack_without_the_url() {
    let (demo, slack) = demo_with_notifications("10s");
    let hook = Receiver::start(&[Answer::Status(200)]);
    let env = [("HOOK_URL", hook.url.as_str())];

    // A dry run changes nothing, and tells no one.
    code(&demo.weaver_env(&["apply", "--env", "dev", "--dry-run"], &env), 0);
    assert!(hook.requests().is_empty());

    // An apply that creates: `ops` hears of it; `team-slack` is not subscribed to applies.
    let applied = demo.weaver_env(&["apply", "--env", "dev", "-v"], &env);
    code(&applied, 0);
    assert!(applied.stderr.contains("notification `ops` (environments/dev.yaml:"), "{}", applied.stderr);
    assert!(applied.stderr.contains("of the apply event was delivered (1 attempt(s))"), "{}", applied.stderr);
    let requests = hook.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (path, body) = &requests[0];
    assert_eq!(path, &format!("/hooks/{TOKEN}?token={TOKEN}"));
    assert_eq!(body["schemaVersion"], 1);
    assert_eq!((body["notification"].as_str(), body["event"].as_str()), (Some("ops"), Some("apply")));
    assert_eq!((body["severity"].as_str(), body["environment"].as_str()), (Some("info"), Some("dev")));
    assert_eq!(body["drift"], Value::Null);
    assert_eq!(body["apply"]["schemaVersion"], 1, "weaver apply -o json's document");
    let created = body["apply"]["summary"]["created"].as_u64().unwrap();
    assert!(created > 0, "{body:#}");
    assert!(body["summary"].as_str().unwrap().starts_with("environment dev applied"), "{body:#}");
    assert!(body["summary"].as_str().unwrap().contains(&format!("{created} created")), "{body:#}");
    assert!(slack.requests().is_empty(), "team-slack hears of drift only");
    // The demo's secret values are not in what was sent, any more than in what was printed.
    let sent = body.to_string();
    assert!(!sent.contains(TOKEN));
    let secrets = demo.repo.weaver(&["secrets", "decrypt", "secrets/dev.yaml"]);
    assert_eq!(secrets.code, 0, "{}", secrets.stderr);
    for line in secrets.stdout.lines().filter_map(|l| l.split_once(": ").map(|(_, v)| v.trim())) {
        if line.len() >= 6 {
            assert!(!sent.contains(line), "a decrypted value was sent: {line}");
        }
    }

    // Nothing to do: nobody is told.
    code(&demo.weaver_env(&["apply", "--env", "dev"], &env), 0);
    assert_eq!(hook.requests().len(), 1);

    // Drift: both hear of it, each in its format.
    demo.cluster.merge_patch(&deployment(&demo), &json!({"spec": {"replicas": 4}}), "kubectl-edit");
    code(&demo.weaver_env(&["drift", "--env", "dev"], &env), 2);
    let (_, drift) = hook.requests().pop().unwrap();
    assert_eq!((drift["event"].as_str(), drift["severity"].as_str()), (Some("drift"), Some("warning")));
    assert_eq!(drift["apply"], Value::Null);
    assert_eq!(drift["drift"]["drifted"], true, "weaver drift -o json's document");
    assert_eq!(drift["drift"]["summary"]["drifted"], 1);
    let slack_requests = slack.requests();
    assert_eq!(slack_requests.len(), 1);
    let (_, message) = &slack_requests[0];
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("drift in environment dev: 1 drifted, 0 missing"), "{message:#}");
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("drifted: apps/v1 Deployment {}/web (release web)", demo.ns)),
        "{message:#}"
    );
    assert_eq!(blocks.last().unwrap()["type"], "context");
    assert!(!message.to_string().contains(TOKEN));

    // A correction's dry run corrects nothing: what it tells is drift.
    code(&demo.weaver_env(&["drift", "--env", "dev", "--correct", "--dry-run"], &env), 2);
    let (_, dry) = hook.requests().pop().unwrap();
    assert_eq!((dry["event"].as_str(), dry["drift"]["correction"]["dryRun"].as_bool()), (Some("drift"), Some(true)));

    // Corrected: told as such.
    code(&demo.weaver_env(&["drift", "--env", "dev", "--correct"], &env), 2);
    let (_, corrected) = hook.requests().pop().unwrap();
    assert_eq!((corrected["event"].as_str(), corrected["severity"].as_str()), (Some("driftCorrected"), Some("info")));
    assert_eq!(corrected["drift"]["correction"], json!({"dryRun": false, "failed": false}));
    let (_, message) = slack.requests().pop().unwrap();
    assert!(message["text"].as_str().unwrap().starts_with("drift in environment dev corrected"), "{message:#}");
    // In sync again: nobody is told.
    code(&demo.weaver_env(&["drift", "--env", "dev"], &env), 0);
    assert_eq!((hook.requests().len(), slack.requests().len()), (4, 3));
}

/// A webhook that answers 500, answers too slowly, refuses the connection or has no URL: a
/// warning naming the notification and what failed, and the exit code drift had anyway.
#[test]
fn a_webhook_that_fails_is_a_warning_and_the_exit_code_is_drift_s() {
    let (demo, _slack) = demo_with_notifications("2s");
    code(&demo.weaver(&["apply", "--env", "dev"]), 0);
    demo.cluster.merge_patch(&deployment(&demo), &json!({"spec": {"replicas": 4}}), "kubectl-edit");
    let drift = |url: &str| demo.weaver_env(&["drift", "--env", "dev", "-v"], &[("HOOK_URL", url)]);
    let warning = |run: &Run| -> String {
        let line = run.stderr.lines().find(|l| l.starts_with("warning: notification `ops`"));
        line.unwrap_or_else(|| panic!("no warning about `ops`:\n{}", run.stderr)).to_string()
    };

    // 500, then 200: retried, delivered.
    let flaky = Receiver::start(&[Answer::Status(500), Answer::Status(200)]);
    let run = drift(&flaky.url);
    code(&run, 2);
    assert!(run.stderr.contains("of the drift event was delivered (2 attempt(s))"), "{}", run.stderr);
    assert_eq!(flaky.requests().len(), 2);

    // 500 until the timeout.
    let failing = Receiver::start(&[Answer::Status(500)]);
    let run = drift(&failing.url);
    code(&run, 2);
    let line = warning(&run);
    assert!(line.contains("ops` (environments/dev.yaml:"), "{line}");
    assert!(
        line.contains("of the drift event was not delivered: the webhook answered 500 Internal Server Error ("),
        "{line}"
    );
    assert!(line.ends_with("; no time left for another within the timeout of 2s)"), "{line}");
    assert!(failing.requests().len() >= 2, "retried");
    assert!(run.stdout.contains("1 drifted"), "the report is whole:\n{}", run.stdout);

    // 404: not retried.
    let gone = Receiver::start(&[Answer::Status(404)]);
    let line = warning(&drift(&gone.url));
    assert!(line.contains("not delivered: the webhook answered 404 Not Found (1 attempt(s) in "), "{line}");
    assert!(!line.contains("timeout"), "not retried: {line}");
    assert_eq!(gone.requests().len(), 1);

    // Slower than the timeout: given up at the timeout, not when the webhook answers.
    let slow = Receiver::start(&[Answer::Slow(Duration::from_secs(8))]);
    let started = Instant::now();
    let run = drift(&slow.url);
    code(&run, 2);
    assert!(started.elapsed() < Duration::from_secs(7), "took {:?}", started.elapsed());
    let line = warning(&run);
    assert!(line.contains("not delivered: the request timed out"), "{line}");
    // Slow, but within the timeout: delivered.
    let patient = Receiver::start(&[Answer::Slow(Duration::from_millis(500))]);
    let run = drift(&patient.url);
    assert!(run.stderr.contains("of the drift event was delivered (1 attempt(s))"), "{}", run.stderr);

    // Nobody listening.
    // Port 1, where nothing listens, as the other tests' unreachable servers: a port freed here
    // could be bound again by a test running beside this one, and never answer.
    let refused = format!("http://127.0.0.1:1/hooks/{TOKEN}");
    let run = drift(&refused);
    code(&run, 2);
    let line = warning(&run);
    assert!(line.contains("not delivered: the connection was refused ("), "{line}");
    assert!(line.ends_with("; no time left for another within the timeout of 2s)"), "{line}");

    // No URL: the variable is not set; a URL that is not http(s) is not quoted.
    let run = demo.weaver(&["drift", "--env", "dev"]);
    code(&run, 2);
    let line = warning(&run);
    assert!(line.ends_with("not delivered: environment variable HOOK_URL, which holds its URL, is not set"), "{line}");
    let run = drift(&format!("ftp://example.org/{TOKEN}"));
    code(&run, 2);
    assert!(warning(&run).ends_with("the URL in environment variable HOOK_URL is not an http:// or https:// URL"));
}

/// A URL written in the environment file is refused where it is written, without quoting it.
#[test]
fn a_url_written_in_the_file_is_an_error_that_does_not_quote_it() {
    let repo = common::Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: apps\nnotifications:\n  - name: ops\n    type: json\n    url: https://hooks.example.org/{TOKEN}\nreleases:\n  - name: app\n    chart: app\n"
        ),
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    let stderr = run.failure();
    assert!(
        stderr.starts_with(
            "error: environments/dev.yaml:5:10: notification `ops`: `url` is written in the environment file"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("help: a webhook URL holds its credential: write `url: {fromEnv: VARIABLE}`"), "{stderr}");
    no_token(&run);
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nnotifications:\n  - name: ops\n    type: teams\n    url: {fromEnv: HOOK}\nreleases: []\n",
    );
    let stderr = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(
        stderr.starts_with(
            "error: environments/dev.yaml:4:11: notification `ops`: `type: teams` is not a notification type"
        ),
        "{stderr}"
    );
    // The URL pasted where its place is named, or in a field an error quotes: not quoted.
    let url = format!("https://hooks.example.org/{TOKEN}");
    for (notification, expected) in [
        (
            format!("{{name: ops, type: json, url: {{fromSecret: {{file: secrets/hooks.yaml, key: '{url}'}}}}}}"),
            "error: environments/dev.yaml:3:34: notification `ops`: `fromSecret.key` is a URL; `file` and `key` name where the URL is kept",
        ),
        (
            format!("{{name: ops, type: json, url: {{fromSecret: {{file: '{url}', key: slack}}}}}}"),
            "error: environments/dev.yaml:3:34: notification `ops`: `fromSecret.file` is a URL;",
        ),
        (
            format!("{{name: '{url}', type: json, url: {{fromEnv: HOOK}}}}"),
            "error: environments/dev.yaml:3:12: a URL is not a notification name",
        ),
        (
            format!("{{name: ops, type: '{url}', url: {{fromEnv: HOOK}}}}"),
            "error: environments/dev.yaml:3:23: notification `ops`: a URL is not a notification type",
        ),
        (
            format!("{{name: ops, type: json, url: {{fromEnv: HOOK}}, events: ['{url}']}}"),
            "error: environments/dev.yaml:3:60: notification `ops`: a URL is not an event",
        ),
        (
            format!("{{name: ops, type: json, url: {{fromEnv: HOOK}}, timeout: '{url}'}}"),
            "error: environments/dev.yaml:3:60: notification `ops`: `timeout`: a URL is not a duration",
        ),
    ] {
        repo.write(
            "environments/dev.yaml",
            &format!("namespace: apps\nnotifications:\n  - {notification}\nreleases: []\n"),
        );
        let run = repo.weaver(&["render", "--env", "dev"]);
        assert!(run.failure().starts_with(expected), "{notification}\n{}", run.stderr);
        no_token(&run);
    }
}

/// A fleet: each environment tells its own notifications of its own apply; one that cannot
/// be delivered is a warning naming its environment, and the fleet's exit code stays 0.
#[test]
fn each_environment_of_a_fleet_tells_its_own_notifications() {
    let cluster = common::cluster::TestCluster::start();
    let repo = common::Repo::minimal();
    let lock = cluster.namespace("lock");
    for (env, kind) in [("eu", "json"), ("us", "slack")] {
        let ns = cluster.namespace(env);
        let var = env.to_uppercase();
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!(
                "namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nnotifications:\n  - {{name: {env}-hook, type: {kind}, url: {{fromEnv: {var}_HOOK}}, timeout: 1s}}\nreleases:\n  - name: app\n    chart: app\n"
            ),
        );
    }
    let (eu, us) = (Receiver::start(&[Answer::Status(200)]), Receiver::start(&[Answer::Status(200)]));
    let run = repo.weaver_env(
        &["--kubeconfig", cluster.kubeconfig().to_str().unwrap(), "apply", "--env", "eu,us"],
        &[("EU_HOOK", &eu.url), ("US_HOOK", &us.url)],
    );
    code(&run, 0);
    let eu_requests = eu.requests();
    assert_eq!(eu_requests.len(), 1);
    assert_eq!(
        (eu_requests[0].1["environment"].as_str(), eu_requests[0].1["notification"].as_str()),
        (Some("eu"), Some("eu-hook"))
    );
    let us_requests = us.requests();
    assert_eq!(us_requests.len(), 1);
    assert!(us_requests[0].1["text"].as_str().unwrap().starts_with("environment us applied"), "{:#}", us_requests[0].1);

    // us's webhook is gone: a warning of environment us; eu's is told, the fleet exits 0.
    repo.write("charts/app/values.yaml", "greeting: bonjour\n");
    // Port 1, where nothing listens, as the other tests' unreachable servers: a port freed here
    // could be bound again by a test running beside this one, and never answer.
    let refused = format!("http://127.0.0.1:1/hooks/{TOKEN}");
    let run = repo.weaver_env(
        &["--kubeconfig", cluster.kubeconfig().to_str().unwrap(), "apply", "--env", "eu,us"],
        &[("EU_HOOK", &eu.url), ("US_HOOK", &refused)],
    );
    code(&run, 0);
    assert!(
        run.stderr.contains("warning: environment `us`: notification `us-hook` (environments/us.yaml:4:5) of the apply event was not delivered: the connection was refused ("),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("environment `eu`: notification"), "{}", run.stderr);
    assert_eq!(eu.requests().len(), 2);
}

/// The book's example is an environment file weaver reads.
#[test]
fn the_book_s_example_is_a_valid_environment_file() {
    let page = std::fs::read_to_string(common::project_root().join("docs/src/guides/notifications.md")).unwrap();
    let start = page.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &page[start..start + page[start..].find("```").unwrap()];
    assert!(example.contains("notifications:"), "{example}");
    let repo = common::Repo::minimal();
    repo.write("environments/prod.yaml", &format!("{example}releases:\n  - name: app\n    chart: app\n"));
    let out = repo.weaver(&["envs", "--env", "prod"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// An apply that fails is told as an error, with the failed release and why; the exit code is
/// the apply's (1), whether the webhook hears of it or not.
#[test]
fn a_failed_apply_is_told_as_an_error() {
    let cluster = common::cluster::TestCluster::start();
    let repo = common::Repo::minimal();
    let (lock, ns) = (cluster.namespace("lock"), cluster.namespace("apps"));
    // Its namespace does not exist, and weaver is told not to create it.
    let missing = format!("{}-missing", cluster.prefix);
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nnotifications:\n  - {{name: ops, type: json, url: {{fromEnv: HOOK_URL}}, events: [apply]}}\nreleases:\n  - name: app\n    chart: app\n    namespace: {missing}\n    createNamespace: false\n"
        ),
    );
    let hook = Receiver::start(&[Answer::Status(200)]);
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let run = repo.weaver_env(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev"], &[("HOOK_URL", &hook.url)]);
    code(&run, 1);
    let requests = hook.requests();
    assert_eq!(requests.len(), 1, "{}", run.stderr);
    let body = &requests[0].1;
    assert_eq!((body["event"].as_str(), body["severity"].as_str()), (Some("apply"), Some("error")));
    assert!(body["summary"].as_str().unwrap().starts_with("the apply of environment dev failed: "), "{body:#}");
    assert_eq!(body["apply"]["failed"], true);
    assert!(body["apply"]["releases"][0]["error"].is_string(), "{body:#}");
}

/// Drift that an apply puts back while `drift --correct` waits for the environment's lock:
/// under the lock there is nothing left to correct, and nobody is told of it.
#[test]
fn drift_gone_by_the_time_the_lock_is_held_is_told_to_no_one() {
    let (demo, slack) = demo_with_notifications("10s");
    code(&demo.weaver(&["apply", "--env", "dev"]), 0);
    let web = deployment(&demo);
    let replicas = demo.cluster.get(&web).unwrap()["spec"]["replicas"].clone();
    demo.cluster.merge_patch(&web, &json!({"spec": {"replicas": 4}}), "kubectl-edit");
    let lease = demo.hold_lock();

    let kubeconfig = demo.cluster.kubeconfig().to_str().unwrap().to_string();
    let args = ["--kubeconfig", &kubeconfig, "drift", "--env", "dev", "--correct", "--lock-timeout", "60s"];
    let mut child = demo.repo.spawn(&args);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // The first look found the drift: the correction now waits for the lock.
    while !seen.contains("waiting for the lock of environment `dev`") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "weaver ended without waiting:\n{seen}");
    }
    // The other apply puts the Deployment back and lets go of the lock.
    demo.cluster.merge_patch(&web, &json!({"spec": {"replicas": replicas}}), "kubectl-edit");
    demo.cluster.delete(&lease);
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(!seen.contains("notification"), "nothing to tell, not even that HOOK_URL is unset:\n{seen}");
    assert!(!seen.contains(TOKEN), "{seen}");
    assert!(slack.requests().is_empty(), "{:?}", slack.requests());
}
