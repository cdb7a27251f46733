//! `weaver ui`'s environment page (issue 56: ≤ 300 ms for 3,000 objects): a generated
//! environment of 1,000 releases (a ConfigMap, a Deployment and a Service each) applied, then
//! its page served by `weaver ui` (status with the objects' dependents and events, the plan of
//! the working tree, drift: the whole page), read over HTTP as a browser reads it. Reports the
//! median of the page views with `weaver ui`'s own CPU per view, and on a real cluster the API
//! server's CPU and, where the server shares this machine, the least a view can take (both
//! processes' CPU spread over the cores). Then the median of views each after one object was
//! changed by someone else: what a change costs, where the views before judged again only the
//! releases whose reads changed.
//!
//! Runs against the in-process fake, or against the current context of
//! `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it creates namespace `ui-<pid>-00` and
//! deletes it when done). `WEAVER_BENCH_RELEASES=N` serves N releases instead of 1,000: on a
//! real cluster each Deployment adds a ReplicaSet and a Pod to the page, so 600 releases make
//! a page of 3,000 objects there.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Releases of the environment unless `WEAVER_BENCH_RELEASES` says: 3 objects each.
const RELEASES: usize = 1000;
/// Page views measured (the median is reported), after one that warms up.
const RUNS: usize = 5;

fn main() {
    let (fake, kubeconfig) = support::cluster();
    println!("against {}", support::cluster_name(&fake, &kubeconfig));
    let prefix = format!("ui-{}", std::process::id());
    let releases: usize = std::env::var("WEAVER_BENCH_RELEASES").ok().and_then(|n| n.parse().ok()).unwrap_or(RELEASES);
    let dir = tempfile::tempdir().unwrap();
    support::generate_fleet_in(dir.path(), 1, releases, &prefix);
    let namespace = format!("{prefix}-00");
    let repo = dir.path().to_str().unwrap();
    let apply = support::time_weaver(&["--repo", repo, "--kubeconfig", &kubeconfig, "apply", "--env", "env-00"], 1);
    println!("set up: the first apply of {} objects took {}", releases * 3, support::ms(apply.times[0]));

    let address = format!("127.0.0.1:{}", support::free_port());
    let mut child = Command::new(support::WEAVER)
        // -vv: how long each phase of a view took, printed for the last view.
        .args(["--repo", repo, "--kubeconfig", &kubeconfig, "-vv", "ui", "--address", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = said.by_ref().map_while(Result::ok).find(|line| line.starts_with("weaver ui: serving"));
    assert!(serving.is_some(), "weaver ui did not start");
    // What it says later (the phases of each view) must not fill the pipe and stop it.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = log.clone();
    std::thread::spawn(move || said.map_while(Result::ok).for_each(|line| heard.lock().unwrap().push(line)));
    let ui = support::Operator { child, metrics: String::new() };

    let view = || {
        let started = Instant::now();
        let page = get(&address, "/environments/env-00");
        (started.elapsed(), page)
    };
    let (first, page) = view();
    let rows = page.matches("data-kind=").count();
    assert!(page.starts_with("HTTP/1.1 200"), "{}", &page[..page.len().min(2000)]);
    assert!(rows >= releases * 3, "{rows} objects on the page");
    assert!(!page.contains("role=\"alert\""), "every part of the page was read");
    println!("first view (discovery, the chart's first render): {}", support::ms(first));
    // A real cluster's controllers answer the apply for a while (a ReplicaSet and its Pods for
    // each Deployment, some 3,000 objects at the controller manager's 20 requests a second):
    // views are measured once two in a row, seconds apart, show as many objects, so that they
    // time the page, not the cluster settling; at most 5 minutes.
    let settling = Instant::now();
    let mut shown = rows;
    let settled = loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = view().1.matches("data-kind=").count();
        if now == shown {
            break true;
        }
        shown = now;
        if settling.elapsed() > Duration::from_secs(300) {
            break false;
        }
    };
    let waited = settling.elapsed().as_secs();
    match settled {
        true => println!("settled after {waited} s ({shown} objects shown)"),
        false => println!("not settled after {waited} s (the last view showed {shown} objects): measured as it is"),
    }

    let server = support::server_cpu(&fake, &kubeconfig);
    let cpu_before = ui.cpu();
    let mut times: Vec<Duration> = (0..RUNS).map(|_| view().0).collect();
    let cpu = (ui.cpu() - cpu_before) / RUNS as u32;
    let server = support::spent(&server, RUNS);
    times.sort();
    println!(
        "environment page of {shown} objects (weaver's and their dependents): median {} (min {}, max {}), weaver ui's CPU {} a view, peak RSS {:.1} MB{}; load average {}",
        support::ms(times[RUNS / 2]),
        support::ms(times[0]),
        support::ms(times[RUNS - 1]),
        support::ms(cpu),
        ui.peak_rss() as f64 / 1e6,
        support::beside(cpu, &server),
        support::load_average()
    );
    // Views after someone else changed one object (a different release's ConfigMap each
    // time): the judgments of the releases whose reads did not change are kept from the view
    // before, so these time what a change costs. The watch's delivery is waited for, untimed.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let configmaps =
        support::api(&support::client(&runtime, &kubeconfig), "v1", "ConfigMap", "configmaps", Some(&namespace));
    let cpu_before = ui.cpu();
    let mut after_edit: Vec<Duration> = (0..RUNS)
        .map(|run| {
            let edited = format!("edited-by-hand-{run}");
            let patch = kube::api::Patch::Merge(serde_json::json!({"data": {"LOG_LEVEL": edited}}));
            let params = kube::api::PatchParams { field_manager: Some("bench-edit".into()), ..Default::default() };
            runtime.block_on(configmaps.patch(&format!("svc-{:04}", run * 7), &params, &patch)).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let (took, page) = view();
            assert!(page.contains(&edited), "the view after the edit shows it");
            took
        })
        .collect();
    let edit_cpu = (ui.cpu() - cpu_before) / RUNS as u32;
    after_edit.sort();
    println!(
        "after one object changed elsewhere: median {} (min {}, max {}), weaver ui's CPU {} a view",
        support::ms(after_edit[RUNS / 2]),
        support::ms(after_edit[0]),
        support::ms(after_edit[RUNS - 1]),
        support::ms(edit_cpu)
    );
    // The log's lines for a view end with its HTML's; the phases of status, plan and drift
    // overlap.
    std::thread::sleep(Duration::from_millis(200));
    let log = log.lock().unwrap();
    let ends: Vec<usize> =
        log.iter().enumerate().filter(|(_, l)| l.contains("environment page's HTML took")).map(|(i, _)| i).collect();
    if let [.., before, last] = ends[..] {
        let phases: Vec<&str> = log[before + 1..=last].iter().filter_map(|l| l.strip_prefix("weaver: ")).collect();
        println!("the last view's phases: {}", phases.join("; "));
    }
    drop(ui);
    support::delete_namespace(&kubeconfig, &namespace);
}

/// The answer to `GET path`, head and body, as the page's browser would have it.
fn get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}
