//! Shared by the benches: a generated large repository (one chart: ConfigMap, Deployment,
//! Service; an environment `bench` with N releases whose values differ per release), generated
//! Helm charts (helm_charts.rs), and running weaver and other programs with their time and memory.
#![allow(dead_code)] // each bench uses a different subset

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/common/fs.rs"]
pub mod fs;
#[path = "../../tests/common/generated.rs"]
pub mod generated;
pub mod helm_charts;
#[path = "../../tests/common/tools.rs"]
pub mod tools;

#[allow(unused_imports)] // each bench uses a different subset
pub use generated::{generate_fleet, generate_fleet_in, generate_repo, generate_repo_in};

pub const WEAVER: &str = env!("CARGO_BIN_EXE_weaver");

/// A finished child process: its output, wall time, its own CPU time (user and system, every
/// thread's) and its own peak resident memory.
pub struct Run {
    pub output: Output,
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss: u64,
}

/// Runs `command` to the end. The peak RSS is this child's own, from wait4: getrusage's
/// RUSAGE_CHILDREN is the largest of every child waited for so far, other programs' included.
pub fn run(command: &mut Command) -> Run {
    let started = Instant::now();
    // Reaped by wait4 below, which clippy does not see.
    #[allow(clippy::zombie_processes)]
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    // stderr drains on its own thread: a child blocked writing to a full pipe would never exit.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr_pipe.read_to_end(&mut buf).unwrap();
        buf
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let stderr = stderr.join().unwrap();
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    // SAFETY: wait4 reaps our own child (never waited for through `child` again) and writes
    // into locals we own.
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(reaped, child.id() as libc::pid_t, "wait4: {}", std::io::Error::last_os_error());
    let wall = started.elapsed();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        output: Output { status: ExitStatus::from_raw(status), stdout, stderr },
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

/// `runs` runs of one weaver command.
pub struct Timed {
    /// Wall times, sorted.
    pub times: Vec<Duration>,
    /// CPU times, sorted: on a machine other work shares, the wall time depends on that work
    /// and the CPU time much less.
    pub cpu: Vec<Duration>,
    /// The last run's stdout.
    pub stdout: Vec<u8>,
    /// The largest of the runs' peak RSS, in bytes.
    pub peak_rss: u64,
}

impl Timed {
    pub fn median(&self) -> Duration {
        self.times[self.times.len() / 2]
    }

    pub fn median_cpu(&self) -> Duration {
        self.cpu[self.cpu.len() / 2]
    }
}

/// Runs weaver `runs` times; each must succeed.
pub fn time_weaver(args: &[&str], runs: usize) -> Timed {
    let mut timed =
        Timed { times: Vec::with_capacity(runs), cpu: Vec::with_capacity(runs), stdout: Vec::new(), peak_rss: 0 };
    for _ in 0..runs {
        let run = run(Command::new(WEAVER).args(args));
        assert!(run.output.status.success(), "weaver {args:?} failed: {}", String::from_utf8_lossy(&run.output.stderr));
        timed.times.push(run.wall);
        timed.cpu.push(run.cpu);
        timed.peak_rss = timed.peak_rss.max(run.peak_rss);
        timed.stdout = run.output.stdout;
    }
    timed.times.sort();
    timed.cpu.sort();
    timed
}

/// The load average over the last minute: how busy the machine was with other work.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("unknown").to_string()
}

/// How many objects a YAML stream as weaver render and helm template print holds: documents'
/// top-level `kind:` lines (nested ones are indented).
pub fn objects(stream: &[u8]) -> usize {
    String::from_utf8_lossy(stream).matches("\nkind: ").count()
}

/// Splits `items` (each a release `rel-<id>`) into environments that weaver renders: `write`
/// writes the environment of a group, `render` renders it. Where two releases of a group render
/// the same object (a CRD, an IngressClass), weaver's error names the later one, which moves on
/// to the next group; the groups are returned once each renders.
pub fn split_until_rendered<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> usize,
    write: impl Fn(&str, &[T]),
    render: impl Fn(&str) -> Run,
    mut moved: impl FnMut(&T, usize),
) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = vec![items];
    let mut group = 0;
    while group < groups.len() {
        loop {
            let env = format!("all-{group}");
            write(&env, &groups[group]);
            let run = render(&env);
            if run.output.status.success() {
                break;
            }
            let stderr = String::from_utf8_lossy(&run.output.stderr);
            let failing = stderr
                .split('`')
                .filter_map(|quoted| quoted.strip_prefix("rel-")?.parse::<usize>().ok())
                .next_back()
                .unwrap_or_else(|| panic!("weaver render of {env} failed naming no release: {stderr}"));
            let at = groups[group].iter().position(|item| id(item) == failing).unwrap();
            let item = groups[group].remove(at);
            moved(&item, group + 1);
            if groups.len() == group + 1 {
                groups.push(Vec::new());
            }
            groups[group + 1].push(item);
        }
        group += 1;
    }
    groups
}

/// `weaver render` of `env` as compared with a reference tool (helm, kubectl kustomize).
/// --show-secrets: the reference prints Secrets as they are, and redacting is work it does not
/// do. --validate=warn: validation runs (its cost is counted) but refuses nothing the reference
/// renders; a real object the API server would refuse is not what is compared here.
pub fn reference_render_args<'a>(repo: &'a str, env: &'a str) -> [&'a str; 7] {
    ["--repo", repo, "render", "--env", env, "--show-secrets", "--validate=warn"]
}

/// The wall times of `runs` runs of `work` in this process, sorted.
pub fn times_of(runs: usize, mut work: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = std::time::Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The sizes the cluster benches measure, in releases of three objects:
/// `WEAVER_BENCH_RELEASES` (a comma-separated list), else 100, 333 and 1,000 (300, 999 and
/// 3,000 objects), so that growth shows.
pub fn sizes() -> Vec<usize> {
    let sizes = std::env::var("WEAVER_BENCH_RELEASES").unwrap_or_else(|_| "100,333,1000".into());
    sizes.split(',').map(|n| n.trim().parse().expect("WEAVER_BENCH_RELEASES: numbers separated by commas")).collect()
}

/// A generated repository of `releases` releases in a namespace of their own,
/// `bench-<releases>-<pid>`, so that each size and run starts from an empty namespace
/// (see [`delete_namespace`]).
pub fn sized_repo(releases: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let namespace = format!("bench-{releases}-{}", std::process::id());
    generate_repo_in(dir.path(), releases, &namespace);
    (dir, namespace)
}

/// The kubeconfig's current context, read on `runtime`.
fn config(runtime: &tokio::runtime::Runtime, kubeconfig: &str) -> kube::Config {
    runtime.block_on(async {
        let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap()
    })
}

/// A client for the kubeconfig's current context, on `runtime`.
pub fn client(runtime: &tokio::runtime::Runtime, kubeconfig: &str) -> kube::Client {
    let config = config(runtime, kubeconfig);
    let _on_runtime = runtime.enter();
    kube::Client::try_from(config).unwrap()
}

/// The objects of `kind` (`plural` its resource) at `api_version`, in `namespace` or all.
pub fn api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
) -> kube::Api<kube::api::DynamicObject> {
    use kube::core::{ApiResource, GroupVersionKind};
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    }
}

/// Deletes a namespace a bench made, and so everything in it (on a real cluster, in the
/// background).
pub fn delete_namespace(kubeconfig: &str, namespace: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = client(&runtime, kubeconfig);
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    runtime.block_on(namespaces.delete(namespace, &Default::default())).unwrap();
}

/// The current context of `WEAVER_BENCH_KUBECONFIG`, or else the in-process fake (returned, so
/// its request log can be read), and the kubeconfig's path.
pub fn cluster() -> (Option<weaver_test_apiserver::TestApiServer>, String) {
    let fake = std::env::var_os("WEAVER_BENCH_KUBECONFIG").is_none().then(weaver_test_apiserver::TestApiServer::start);
    let kubeconfig = match &fake {
        Some(server) => server.kubeconfig_path().to_str().unwrap().to_string(),
        None => std::env::var("WEAVER_BENCH_KUBECONFIG").unwrap(),
    };
    (fake, kubeconfig)
}

pub fn cluster_name<'a>(fake: &Option<weaver_test_apiserver::TestApiServer>, kubeconfig: &'a str) -> &'a str {
    if fake.is_some() { "the in-process fake" } else { kubeconfig }
}

/// One reading of an API server's own CPU time so far (user and system; Linux counts it in
/// 10 ms ticks), from its `/metrics` (`process_cpu_seconds_total`), with the time the process
/// started (`process_start_time_seconds`), read through the kubeconfig's current context. None
/// when the metrics cannot be read (the user may not GET `/metrics`).
fn server_cpu_reading(kubeconfig: &str) -> Option<(Duration, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = client(&runtime, kubeconfig);
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = runtime.block_on(client.request_text(request)).ok()?;
    let metric = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')).map(str::trim);
    let seconds = metric("process_cpu_seconds_total")?.parse::<f64>().ok()?;
    Some((Duration::from_secs_f64(seconds), metric("process_start_time_seconds")?.to_string()))
}

/// The CPU an API server spends between [`ServerCpu::start`] and [`ServerCpu::spent`]. Reading
/// `/metrics` costs the server some CPU: the window holds the tail of the first read and the
/// head of the last, one read's cost, measured at the start as the mean of three back-to-back
/// reads' differences and subtracted.
pub struct ServerCpu<'a> {
    kubeconfig: &'a str,
    reading: Duration,
    start: Duration,
    /// When the server process started: a later reading from another one (a restart, or
    /// another replica behind a load balancer) measures nothing.
    started: String,
    /// The server is on this machine (a loopback or unspecified address), sharing its cores.
    pub local: bool,
}

impl<'a> ServerCpu<'a> {
    /// None, and a line saying why, when the server's CPU cannot be read.
    pub fn start(kubeconfig: &'a str) -> Option<Self> {
        let readings: Option<Vec<(Duration, String)>> = (0..4).map(|_| server_cpu_reading(kubeconfig)).collect();
        let Some(readings) = readings else {
            println!("the API server's CPU is not reported: its /metrics cannot be read (GET /metrics)");
            return None;
        };
        let (start, started) = readings[3].clone();
        if readings.iter().any(|(_, s)| *s != started) {
            println!("the API server's CPU is not reported: successive /metrics come from different processes");
            return None;
        }
        let reading = start.saturating_sub(readings[0].0) / 3;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = config(&runtime, kubeconfig).cluster_url;
        let host = url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let local = host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
        Some(ServerCpu { kubeconfig, reading, start, started, local })
    }

    /// None when the server cannot be read now, or is another process than at the start.
    pub fn spent(&self) -> Option<Duration> {
        let (now, started) = server_cpu_reading(self.kubeconfig)?;
        (started == self.started).then(|| now.saturating_sub(self.start).saturating_sub(self.reading))
    }
}

/// On a real cluster, its API server's CPU from now on.
pub fn server_cpu<'a>(
    fake: &Option<weaver_test_apiserver::TestApiServer>,
    kubeconfig: &'a str,
) -> Option<ServerCpu<'a>> {
    fake.as_ref().map_or_else(|| ServerCpu::start(kubeconfig), |_| None)
}

/// The API server's CPU over some runs.
pub struct Spent {
    /// The mean over the runs (with one run, the whole loop's).
    pub cpu: Duration,
    /// The server shares this machine's cores.
    pub local: bool,
}

pub fn spent(server: &Option<ServerCpu>, runs: usize) -> Option<Spent> {
    let server = server.as_ref()?;
    Some(Spent { cpu: server.spent()? / runs as u32, local: server.local })
}

/// The least time the median run can take where the API server shares this machine's cores:
/// weaver's CPU and the server's spread over all of them (etcd's, and what else the server
/// does meanwhile, left out: it is a lower bound).
pub fn floor(weaver: Duration, server: &Option<Spent>) -> Option<Duration> {
    server.as_ref().filter(|server| server.local).map(|server| (weaver + server.cpu) / cores())
}

/// The API server's CPU beside a run and the run's [`floor`], to print.
pub fn beside(weaver: Duration, server: &Option<Spent>) -> String {
    let Some(spent) = server else { return String::new() };
    let cpu = format!("; the API server's CPU {} a run", ms(spent.cpu));
    match floor(weaver, server) {
        Some(floor) => format!(
            "{cpu}: with it on this machine, the median run cannot take under {} on {} cores",
            ms(floor),
            cores()
        ),
        None => cpu,
    }
}

/// This machine's cores.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running weaver server (`weaver operator run`, serving its metrics on `metrics`; `weaver
/// ui`); killed when dropped. Its CPU and memory are read from /proc while it runs.
pub struct Operator {
    pub child: Child,
    pub metrics: String,
}

impl Operator {
    /// A field of /proc/PID/status in kB (`VmHWM`, `VmRSS`), in bytes.
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().trim_end_matches(" kB"));
        kb.and_then(|kb| kb.trim().parse::<u64>().ok()).unwrap_or(0) * 1024
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM")
    }

    /// Resident memory now (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS")
    }

    /// CPU time so far, user and system, every thread's (/proc/PID/stat's utime and stime).
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command's name (which may hold spaces) start at field 3, state:
        // utime and stime are fields 14 and 15, in clock ticks.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // SAFETY: sysconf reads a constant of the system.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis((ticks(11) + ticks(12)) * 1000 / per_second)
    }

    /// The sum of a metric's samples (every label set) on the operator's `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        use std::io::Write;
        // A freshly started operator serves its metrics a moment later.
        let started = Instant::now();
        let mut stream = loop {
            match std::net::TcpStream::connect(&self.metrics) {
                Ok(stream) => break stream,
                Err(err) if started.elapsed() > Duration::from_secs(10) => panic!("the operator's metrics: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix(name).and_then(|rest| rest.split_whitespace().last()))
            .filter_map(|v| v.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a kubeconfig at `path` for the kubeconfig's current cluster, as ServiceAccount
/// `namespace/account` (a TokenRequest token, two hours), so that a process the bench starts
/// has that account's rights and its requests carry that user.
pub fn account_kubeconfig(
    client: &kube::Client,
    runtime: &tokio::runtime::Runtime,
    kubeconfig: &str,
    namespace: &str,
    account: &str,
    path: &std::path::Path,
) {
    let cluster_entry = {
        let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let current = config.current_context.clone().unwrap();
        let context = config.contexts.iter().find(|c| c.name == current).unwrap().context.clone().unwrap();
        config.clusters.iter().find(|c| c.name == context.cluster).unwrap().cluster.clone().unwrap()
    };
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), namespace);
    let request = serde_json::from_value(serde_json::json!({"spec": {"expirationSeconds": 7200}})).unwrap();
    let token = runtime.block_on(accounts.create_token_request(account, &Default::default(), &request)).unwrap();
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster_entry}],
        "users": [{"name": account, "user": {"token": token.status.unwrap().token}}],
        "contexts": [{"name": account, "context": {"cluster": "bench", "user": account}}],
        "current-context": account,
    });
    std::fs::write(path, serde_json::to_string(&config).unwrap()).unwrap();
}
