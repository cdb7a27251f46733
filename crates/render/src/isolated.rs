//! Tenants' templates rendered in worker processes (`weaver render-worker`): weaver charts'
//! (minijinja) and Helm charts' (Go templates), each worker's memory bounded by the kernel
//! (`RLIMIT_DATA`), its time by being killed. No check inside an engine bounds a string a loop
//! doubles, a list `until` makes, a stack a nesting overflows, or one call that takes minutes
//! (an RSA key); a process can. The controller renders its tenants' repositories so (`weaver
//! operator run --max-render-memory`), the CLI with `--max-render-memory` or `--render-timeout`.
//!
//! The protocol: the parent writes lines of JSON on the worker's stdin. The first
//! (`Request::Run`) gives the render's limits and the weaver charts' templates (every template
//! of the charts the render uses, compiled once per worker; the worker's side is
//! `worker::serve`); a worker kept for the tenant's next render (`Isolation::kept`) is sent
//! another when that render takes it. Then, for each
//! release of a weaver chart, one `Request::Release` with its context and its templates, each
//! answered in order; a thread renders several such releases at once, their requests written
//! together and followed by `Request::Flush`, and the worker writes their answers together (one
//! round trip a batch of releases, not one a template or a release); for a release of a Helm chart, the chart
//! (`Request::HelmChart`, once per worker) and a `Request::Helm` with the release's values.
//! Each answer is a line of JSON (`Answer`), a text following it as that many raw
//! bytes (bounded by what the release may still render); while a Helm chart renders, the worker
//! may ask its `lookup`s first (an `Answer` with a `Question`), each answered by a line from
//! the parent's cluster snapshot, which keeps what was asked and seen. A kustomization
//! (`Request::Kustomize`) and a values template (`Request::ValuesTemplate`) are built and
//! rendered in a worker the same way, reading the repository's files through the parent, whose
//! source keeps its bounds and confinement. A thread of the render
//! takes an idle worker (the render's own, else one kept from the tenant's last render) or starts
//! one, never waiting for another thread's, so a render has at most one worker per thread
//! rendering it; a worker that ended (its memory bound, its deadline) is not used again, nor one
//! whose answers were left unread. The worker prints nothing else, is given no environment variables, may
//! not dump core (its memory holds decrypted values), and is what the kernel kills first when
//! the container runs out of memory.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weaver_core::error::{Error, Location, Result};
use weaver_core::limits::{Bound, Isolation, RenderLimits, Stop};

use crate::filters::ChartFiles;
use crate::release_render::ReleaseRender;

/// How long a worker past its deadline is given to say so itself (naming the template where
/// it stood) before it is killed.
const GRACE: Duration = Duration::from_secs(2);
/// How often a worker's answer is waited for between two looks at the render's limits.
const LOOK_EVERY_MS: i32 = 50;
/// The most an answer's line (its JSON, not a text) may be: an error's message and place.
const HEADER_BYTES: usize = 1 << 20;
/// The most memory a worker may hold to be kept for its tenant's next render: one that grew
/// (a large chart, a template near its bound) ends with its render instead of holding its
/// memory while idle.
const KEPT_RESIDENT_BYTES: u64 = 64 << 20;
/// The most read from a worker at once.
const READ_CHUNK: usize = 64 << 10;
/// The most bytes of requests a batch of releases sent to a worker at once may be (less when
/// the pipe holds less): two batches fit in the pipe, so the parent has written the next one
/// before it reads the answers to the one before, and neither side waits on the other.
const BATCH_BYTES: usize = 16 << 10;
/// The most releases a batch sent to a worker at once may have: few enough that the worker
/// renders the next batch while the thread takes this one's answers, many enough that a
/// round trip is not a release's.
const BATCH_RELEASES: usize = 4;

/// The render's limits as the worker takes them: its deadline as the time left.
#[derive(Serialize, Deserialize)]
pub(crate) struct WireLimits {
    /// Milliseconds left, the bound's milliseconds and its setting.
    deadline: Option<(u64, u64, String)>,
    max_rendered_bytes: Option<(usize, String)>,
    max_template_steps: Option<(u64, String)>,
}

impl WireLimits {
    fn of(limits: &RenderLimits) -> WireLimits {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        WireLimits {
            deadline: limits.deadline.as_ref().map(|(at, bound)| {
                (millis(at.saturating_duration_since(Instant::now())), millis(bound.value), bound.setting.clone())
            }),
            max_rendered_bytes: limits.max_rendered_bytes.as_ref().map(|b| (b.value, b.setting.clone())),
            max_template_steps: limits.max_template_steps.as_ref().map(|b| (b.value, b.setting.clone())),
        }
    }

    pub(crate) fn limits(self) -> RenderLimits {
        let deadline = self.deadline.map(|(left, bound, setting)| {
            (Instant::now() + Duration::from_millis(left), Bound::new(Duration::from_millis(bound), setting))
        });
        RenderLimits {
            deadline,
            max_rendered_bytes: self.max_rendered_bytes.map(|(value, setting)| Bound::new(value, setting)),
            max_template_steps: self.max_template_steps.map(|(value, setting)| Bound::new(value, setting)),
            ..RenderLimits::default()
        }
    }
}

/// How many Helm charts a worker keeps, the least recently used forgotten first.
const CHARTS_KEPT: usize = 8;

/// What the parent asks of a worker.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// A render begins: its limits, and the templates of its weaver charts.
    Run { limits: WireLimits, templates: Cow<'a, [(String, String)]> },
    /// A Helm chart (its id in the parent), kept to render its releases; `forget`, one kept
    /// before, goes.
    HelmChart {
        id: u64,
        #[serde(with = "weaver_helm::chart::shared")]
        chart: Arc<weaver_helm::chart::Chart>,
        forget: Option<u64>,
    },
    /// A release of the Helm chart `chart` rendered.
    Helm { chart: u64, release: HelmRelease<'a> },
    /// The kustomization in `dir` built (`weaver_kustomize::build`), the repository read
    /// through the parent (`describe` says what it is).
    Kustomize { dir: PathBuf, at: WireLocation, anywhere: bool, describe: String },
    /// A values template (`*.gotmpl`) rendered over `data` for `release`; `variables`: whether
    /// its `env` reads the parent's.
    ValuesTemplate {
        path: PathBuf,
        text: String,
        data: serde_json::Value,
        variables: bool,
        release: String,
        describe: String,
    },
    /// A release's `templates` rendered in order with this context and the shared one of that
    /// number (given with the first release that has it), all within the render's bytes; an
    /// answer each, until the first error, left in the worker's buffer for [`Request::Flush`].
    Release { release: String, context: WireContext, shared: (u64, Option<WireContext>), templates: Vec<PathBuf> },
    /// The answers to the [`Request::Release`]s before it, written now: the parent waits for
    /// them. A batch of releases is sent in one write and answered in one.
    Flush,
}

/// A release's context as it crosses the pipe: its `files` (the chart's name and its files)
/// apart, an object of its own in the render.
#[derive(Serialize, Deserialize)]
pub(crate) struct WireContext {
    pub(crate) context: serde_json::Map<String, serde_json::Value>,
    pub(crate) files: Option<(String, BTreeMap<String, String>)>,
}

/// A release of a Helm chart as [`weaver_helm::ReleaseInput`] gives it but its limits (the
/// worker's) and its `lookup`s (asked of the parent). Borrowed where the parent sends it, so that
/// a release's values are not copied to be written; owned where the worker reads it.
#[derive(Serialize, Deserialize)]
pub(crate) struct HelmRelease<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) namespace: Cow<'a, str>,
    pub(crate) values: Cow<'a, serde_json::Map<String, serde_json::Value>>,
    /// The cluster's capabilities, unless they are those of the worker's last release.
    pub(crate) capabilities: Option<Cow<'a, weaver_helm::CapabilitiesOf>>,
    pub(crate) output: weaver_helm::Output,
}

/// A worker's answer: to each template of a [`Request::Release`], to a [`Request::Helm`], a
/// [`Request::Kustomize`] or a [`Request::ValuesTemplate`], the length of its text (which
/// follows as raw bytes: a template's output; a Helm release's outputs ([`WireExecuted`]); a
/// kustomization's objects, in JSON) or the error; to a [`Request::HelmChart`], nothing but that it was heard.
/// Or, before its answer, a [`Question`]
/// the render asks, which the parent answers with a [`Told`] line.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Answer {
    pub(crate) length: Option<usize>,
    pub(crate) error: Option<WireError>,
    pub(crate) asks: Option<Question>,
}

/// What a render in a worker asks of its parent: a Helm template's `lookup`, the repository's
/// files (a kustomization's, a values template's `readFile`), an environment variable (a values
/// template's `env`, in the CLI). The parent answers from its own snapshot, source and
/// environment, which keep their bounds and what they saw.
#[derive(Serialize, Deserialize)]
pub(crate) enum Question {
    Lookup { release: String, api_version: String, kind: String, namespace: String, name: String },
    Read(PathBuf),
    Size(PathBuf),
    List(PathBuf),
    Resolve(PathBuf),
    Variable(String),
}

/// The parent's answer to a [`Question`] of the same name.
#[derive(Serialize, Deserialize)]
pub(crate) enum Told {
    Lookup(std::result::Result<serde_json::Value, String>),
    /// The file's bytes in base64.
    Read(std::result::Result<Option<String>, WireIo>),
    Size(std::result::Result<Option<u64>, WireIo>),
    List(std::result::Result<Option<Vec<(String, bool)>>, WireIo>),
    Resolve(std::result::Result<PathBuf, WireIo>),
    Variable(std::result::Result<String, String>),
    /// A question this render may not ask.
    Refused(String),
}

/// An I/O error of the parent's source, as its readers tell it: an escape from the repository,
/// or its kind and text.
#[derive(Serialize, Deserialize)]
pub(crate) enum WireIo {
    Escape { path: PathBuf, resolved: PathBuf, within: String },
    NotFound,
    PermissionDenied,
    Other(String),
}

impl From<std::io::Error> for WireIo {
    fn from(err: std::io::Error) -> WireIo {
        if let Some(escape) = weaver_core::error::Escape::of(&err) {
            let escape = escape.clone();
            return WireIo::Escape { path: escape.path, resolved: escape.resolved, within: escape.within };
        }
        match err.kind() {
            std::io::ErrorKind::NotFound => WireIo::NotFound,
            std::io::ErrorKind::PermissionDenied => WireIo::PermissionDenied,
            _ => WireIo::Other(weaver_core::error::io_reason(&err)),
        }
    }
}

impl From<WireIo> for std::io::Error {
    fn from(wire: WireIo) -> std::io::Error {
        match wire {
            WireIo::Escape { path, resolved, within } => {
                weaver_core::error::Escape { path, resolved, within }.into_io()
            }
            WireIo::NotFound => std::io::ErrorKind::NotFound.into(),
            WireIo::PermissionDenied => std::io::ErrorKind::PermissionDenied.into(),
            WireIo::Other(text) => std::io::Error::other(text),
        }
    }
}

/// What answers a render's [`Question`]s in the parent: the cluster snapshot its `lookup`s
/// read, the repository, and whether `env` reads this process's variables.
#[derive(Default, Clone, Copy)]
pub(crate) struct Answers<'a> {
    pub(crate) live: Option<&'a weaver_helm::lookup::Live>,
    pub(crate) source: Option<&'a dyn weaver_project::source::Source>,
    pub(crate) variables: bool,
}

impl Answers<'_> {
    fn answer(&self, question: &Question) -> Told {
        use base64::Engine as _;
        let refused = |what: &str| Told::Refused(format!("{what} is not answered for this render"));
        match (question, self.source) {
            (Question::Lookup { release, api_version, kind, namespace, name }, _) => match self.live {
                Some(live) => {
                    let query = weaver_helm::lookup::Query { api_version, kind, namespace, name };
                    Told::Lookup(live.lookup(release, &query))
                }
                None => refused("lookup"),
            },
            (Question::Variable(name), _) if self.variables => {
                Told::Variable(crate::gotmpl::variable(name).map_err(|err| err.to_string()))
            }
            (Question::Variable(_), _) => refused("an environment variable"),
            (_, None) => refused("a file of the repository"),
            (Question::Read(path), Some(source)) => Told::Read(
                source
                    .read(path)
                    .map(|read| read.map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)))
                    .map_err(WireIo::from),
            ),
            (Question::Size(path), Some(source)) => Told::Size(source.size(path).map_err(WireIo::from)),
            (Question::List(path), Some(source)) => Told::List(
                source
                    .list(path)
                    .map(|listed| listed.map(|entries| entries.into_iter().map(|e| (e.name, e.is_dir)).collect()))
                    .map_err(WireIo::from),
            ),
            (Question::Resolve(path), Some(source)) => Told::Resolve(source.resolve(path).map_err(WireIo::from)),
        }
    }
}

/// A location: its path, line and column.
pub(crate) type WireLocation = (PathBuf, Option<u64>, Option<u64>);

/// A Helm release's executed templates ([`weaver_helm::engine::Executed`]) as a worker answers
/// them: this as a JSON line, then the outputs' bytes one after another, unescaped (so that
/// what crosses the pipe is no larger than the render's bound on its output).
#[derive(Serialize, Deserialize)]
pub(crate) struct WireExecuted {
    /// Each output's template name, source and length in bytes.
    outputs: Vec<(String, PathBuf, usize)>,
    crds: Vec<PathBuf>,
}

impl WireExecuted {
    pub(crate) fn encode(executed: weaver_helm::engine::Executed) -> Vec<u8> {
        let outputs = executed.outputs.iter().map(|o| (o.name.clone(), o.source.clone(), o.text.len())).collect();
        let header = WireExecuted { outputs, crds: executed.crds };
        let mut bytes = serde_json::to_vec(&header).expect("names and paths serialize");
        bytes.push(b'\n');
        for output in executed.outputs {
            bytes.extend_from_slice(output.text.as_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> std::result::Result<weaver_helm::engine::Executed, String> {
        let (header, mut texts) = bytes.split_at(bytes.iter().position(|b| *b == b'\n').ok_or("no header line")?);
        let header: WireExecuted = serde_json::from_slice(header).map_err(|err| err.to_string())?;
        texts = &texts[1..];
        let mut outputs = Vec::with_capacity(header.outputs.len());
        for (name, source, length) in header.outputs {
            let (text, rest) = texts.split_at_checked(length).ok_or("an output longer than the answer")?;
            let text = String::from_utf8(text.to_vec()).map_err(|_| "an output that is not UTF-8")?;
            outputs.push(weaver_helm::engine::TemplateOutput { name, source, text });
            texts = rest;
        }
        match texts.is_empty() {
            true => Ok(weaver_helm::engine::Executed { outputs, crds: header.crds }),
            false => Err("bytes after the last output".to_string()),
        }
    }
}

/// A kustomization's objects as its build gives them.
#[derive(Serialize, Deserialize)]
pub(crate) struct WireBuilt {
    pub(crate) resources: Vec<(serde_json::Value, PathBuf, usize)>,
    pub(crate) outside_root: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireError {
    message: String,
    help: Option<String>,
    location: Option<WireLocation>,
    bound: Option<String>,
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> WireError {
        WireError {
            message: error.message.clone(),
            help: error.help.clone(),
            location: error.location.as_ref().map(|l| (l.path.clone(), l.line, l.column)),
            bound: error.bound.as_deref().cloned(),
        }
    }
}

impl From<WireError> for Error {
    fn from(wire: WireError) -> Error {
        let mut error = Error::new(wire.message);
        error.help = wire.help;
        error.location = wire.location.map(|(path, line, column)| Location { path, line, column });
        error.bound = wire.bound.map(std::sync::Arc::new);
        error
    }
}

/// The parent's side: the workers of one render, started when its threads first need them.
pub(crate) struct Workers {
    isolation: Isolation,
    limits: RenderLimits,
    /// What each worker is sent first ([`Request::Run`]).
    templates: Vec<(String, String)>,
    /// Those not rendering a release now.
    idle: Mutex<Vec<Worker>>,
}

impl Workers {
    pub(crate) fn new(isolation: &Isolation, templates: Vec<(String, String)>, limits: &RenderLimits) -> Workers {
        Workers { isolation: isolation.clone(), limits: limits.clone(), templates, idle: Mutex::default() }
    }

    /// Releases' templates rendered by workers (see
    /// [`Engine::render_releases`](crate::engine::Engine::render_releases)), in batches
    /// ([`Workers::batched`]); each text is handed to `take` with its release's place in
    /// `renders` as it comes. A release's result is its first error: a template's, `take`'s, or
    /// its worker's end.
    pub(crate) fn render_releases(
        &self,
        renders: &[ReleaseRender<'_>],
        take: &mut dyn FnMut(usize, &Path, String) -> Result<()>,
    ) -> Vec<Result<()>> {
        let request = |worker: &Worker, at: usize| {
            let render = &renders[at];
            let first = !worker.shared.contains(&render.shared.0);
            let mut line = release_request(render, first)?.into_bytes();
            line.push(b'\n');
            Ok((line, Noted { shared: Some(render.shared.0), ..Noted::default() }))
        };
        let read = |worker: &mut Worker, at: usize| {
            self.read_release(worker, &renders[at], &mut |template, text| take(at, template, text))
        };
        self.batched(renders.len(), &|at| renders[at].release, request, read)
    }

    /// Releases of Helm charts whose templates workers execute, each as [`weaver_helm::execute`]
    /// executes them in this process, in batches ([`Workers::batched`]); their `lookup`s
    /// answered from each input's `live`. A chart is sent to a worker with the first of its
    /// releases it renders.
    pub(crate) fn render_helm_releases(
        &self,
        releases: &[(&weaver_helm::HelmChart, &weaver_helm::ReleaseInput<'_>)],
    ) -> Vec<Result<weaver_helm::engine::Executed>> {
        // A run's releases share their capabilities: sent to each worker once.
        let request = |worker: &Worker, at: usize| {
            let (chart, input) = releases[at];
            let capabilities = Arc::as_ptr(&input.capabilities) as usize;
            let noted = Noted { chart: Some(chart.id), capabilities: Some(capabilities), ..Noted::default() };
            let mut lines = Vec::new();
            if !worker.charts.contains(&chart.id) {
                let forget = (worker.charts.len() >= CHARTS_KEPT).then(|| worker.charts[0]);
                let request = Request::HelmChart { id: chart.id, chart: Arc::clone(&chart.chart), forget };
                lines = serde_json::to_vec(&request).expect("a chart serializes");
                lines.push(b'\n');
            }
            let release = HelmRelease {
                name: Cow::Borrowed(input.name),
                namespace: Cow::Borrowed(input.namespace),
                values: Cow::Borrowed(&input.values),
                capabilities: (worker.capabilities != Some(capabilities))
                    .then(|| Cow::Borrowed(input.capabilities.made_of())),
                output: input.output,
            };
            serde_json::to_writer(&mut lines, &Request::Helm { chart: chart.id, release }).map_err(|err| {
                Error::new(format!("the values of release `{}` cannot be sent to its render worker: {err}", input.name))
            })?;
            lines.push(b'\n');
            Ok((lines, noted))
        };
        // The outputs, unescaped, and a line of their names.
        let room = self.limits.max_rendered_bytes.as_ref().map(|b| b.value.saturating_add(HEADER_BYTES));
        let read = |worker: &mut Worker, at: usize| {
            let (chart, input) = releases[at];
            // The chart's answer first, when the batch sent it: only that it was heard.
            if worker.charts_heard.remove(&chart.id) {
                match worker.answer(None, &self.limits, Answers::default()) {
                    Ok(_) | Err(Step::Failed(_)) => {}
                    Err(Step::Ended(ended)) => return Err(ended),
                }
            }
            let answers = Answers { live: Some(&input.live), ..Answers::default() };
            Ok(match worker.answer(Some(room.unwrap_or(usize::MAX)), &self.limits, answers) {
                Ok(text) => {
                    let text = text.ok_or(Ended::Closed)?;
                    WireExecuted::decode(&text).map_err(|err| self.unreadable(input.name, &err))
                }
                Err(Step::Failed(error)) => Err(error),
                Err(Step::Ended(ended)) => return Err(ended),
            })
        };
        self.batched(releases.len(), &|at| releases[at].1.name, request, read)
    }

    /// `count` releases rendered by workers, as many a worker as fit in a batch
    /// ([`BATCH_BYTES`], [`BATCH_RELEASES`]): a round trip a batch, not a release, and the
    /// next batch sent before the answers to the one before are read, so that the worker
    /// renders it while this thread takes those. `request` makes a release's request lines
    /// (and what the worker will then have been sent), `read` reads its answers (`Err` when
    /// the worker ended first). A worker that ended in a batch (its memory bound) may have held
    /// the answers of releases before the one that ended it: the batch's releases not yet
    /// answered go again, one a worker, so that its error names that one.
    fn batched<'n, T>(
        &self,
        count: usize,
        release: &dyn Fn(usize) -> &'n str,
        request: impl Fn(&Worker, usize) -> Result<(Vec<u8>, Noted)>,
        mut read: impl FnMut(&mut Worker, usize) -> std::result::Result<Result<T>, Ended>,
    ) -> Vec<Result<T>> {
        let mut results: Vec<Result<T>> = Vec::with_capacity(count);
        // Those before this go one a batch.
        let mut alone_until = 0;
        while results.len() < count {
            let mut worker = match self.take_worker(release(results.len())) {
                Ok(worker) => worker,
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            };
            match self.render_batches(&mut worker, (count, alone_until), &request, &mut read, &mut results) {
                Ok(()) => self.give_back(worker),
                // Dropped: killed.
                Err((_, sent)) if sent > 1 && self.limits.stop_reason().is_none() => {
                    alone_until = results.len() + sent;
                }
                Err((ended, _)) => {
                    let error = self.ended(worker, ended, release(results.len()));
                    results.push(Err(error));
                }
            }
        }
        results
    }

    /// The releases from the first without a result rendered by `worker` in batches (those
    /// before `alone_until` one a batch), their results pushed on `results` as their answers
    /// are read; `Err` when the worker ended before the next release's answers, with how many
    /// releases that one's batch had.
    fn render_batches<T>(
        &self,
        worker: &mut Worker,
        (count, alone_until): (usize, usize),
        request: &impl Fn(&Worker, usize) -> Result<(Vec<u8>, Noted)>,
        read: &mut impl FnMut(&mut Worker, usize) -> std::result::Result<Result<T>, Ended>,
        results: &mut Vec<Result<T>>,
    ) -> std::result::Result<(), (Ended, usize)> {
        let mut next = results.len();
        // A batch sent whose answers are not read yet: each release's request sent, or why it
        // could not be made.
        let mut unread: Option<Vec<Result<()>>> = None;
        loop {
            let mut sending = None;
            if next < count {
                let most = if next < alone_until { 1 } else { BATCH_RELEASES };
                let (requests, batch) = batch_requests(worker, (next, count.min(next + most)), request);
                // Written ahead of the answers to the batch before only while both fit in the
                // pipe: else neither side's write could end while the other waits on its own.
                if requests.len() > worker.batch_bytes
                    && let Some(batch) = unread.take()
                {
                    read_batch(worker, batch, read, results)?;
                }
                let sent = worker.stdin.write_all(&requests);
                next += batch.len();
                sending = Some((sent, batch));
            }
            if let Some(batch) = unread.take() {
                read_batch(worker, batch, read, results)?;
            }
            match sending {
                None => return Ok(()),
                Some((Err(_), batch)) => return Err((Ended::Closed, batch.len())),
                Some((Ok(()), batch)) => unread = Some(batch),
            }
        }
    }

    /// The answers to a release's [`Request::Release`], each text handed to `take` until the
    /// first error (the worker's, or `take`'s: the answers after that are read and dropped).
    fn read_release(
        &self,
        worker: &mut Worker,
        render: &ReleaseRender<'_>,
        take: &mut dyn FnMut(&Path, String) -> Result<()>,
    ) -> std::result::Result<Result<()>, Ended> {
        let mut outcome = Ok(());
        let mut rendered_bytes = 0;
        for template in render.templates {
            let room = self.limits.max_rendered_bytes.as_ref().map(|bound| bound.value.saturating_sub(rendered_bytes));
            let text = match worker.answer(Some(room.unwrap_or(usize::MAX)), &self.limits, Answers::default()) {
                Ok(text) => text.ok_or(Ended::Closed)?,
                // The worker answers nothing more of this release.
                Err(Step::Failed(error)) => return Ok(outcome.and(Err(error))),
                Err(Step::Ended(ended)) => return Err(ended),
            };
            rendered_bytes += text.len();
            if outcome.is_ok() {
                outcome = String::from_utf8(text)
                    .map_err(|_| Error::at(Location::file(template), "the rendered output is not UTF-8".to_string()))
                    .and_then(|text| take(template, text));
            }
        }
        Ok(outcome)
    }

    /// The kustomization in `dir` built by a worker, as [`weaver_kustomize::build`] builds it in
    /// this process, reading `source` through this one.
    pub(crate) fn build_kustomization(
        &self,
        source: &dyn weaver_project::source::Source,
        (dir, at, restrictions): (&Path, &Location, weaver_project::environment::LoadRestrictions),
        release: &str,
    ) -> Result<weaver_kustomize::Built> {
        let anywhere = restrictions == weaver_project::environment::LoadRestrictions::None;
        let at = (at.path.clone(), at.line, at.column);
        let request = Request::Kustomize { dir: dir.to_path_buf(), at, anywhere, describe: source.describe() };
        let request = serde_json::to_string(&request).expect("paths serialize");
        let answers = Answers { source: Some(source), ..Answers::default() };
        let text = self.ask_text(release, &request, answers)?;
        let built: WireBuilt = serde_json::from_slice(&text).map_err(|err| self.unreadable(release, &err))?;
        let resources = built
            .resources
            .into_iter()
            .map(|(object, source, document)| weaver_kustomize::Resource::new(object, source, document))
            .collect();
        Ok(weaver_kustomize::Built { resources, outside_root: built.outside_root })
    }

    /// A values template rendered by a worker over `data`, as `gotmpl::render` renders it in
    /// this process, reading `source` (and, with `variables`, this process's environment)
    /// through this one.
    pub(crate) fn render_values_template(
        &self,
        source: &dyn weaver_project::source::Source,
        (path, text): (&Path, &str),
        data: serde_json::Value,
        variables: bool,
        release: &str,
    ) -> Result<String> {
        let request = Request::ValuesTemplate {
            path: path.to_path_buf(),
            text: text.to_string(),
            data,
            variables,
            release: release.to_string(),
            describe: source.describe(),
        };
        let request = serde_json::to_string(&request).map_err(|err| {
            Error::new(format!("the values of release `{release}` cannot be sent to its render worker: {err}"))
        })?;
        let answers = Answers { source: Some(source), variables, ..Answers::default() };
        let text = self.ask_text(release, &request, answers)?;
        String::from_utf8(text).map_err(|_| Error::at(Location::file(path), "the rendered output is not UTF-8"))
    }

    /// The text of the request `request` makes for the worker, asked of a worker for `release`,
    /// within the render's bytes.
    fn ask_text(&self, release: &str, request: &str, answers: Answers<'_>) -> Result<Vec<u8>> {
        // JSON of objects is larger than their YAML, but not twice as large.
        let room =
            self.limits.max_rendered_bytes.as_ref().map(|b| b.value.saturating_mul(2).saturating_add(HEADER_BYTES));
        self.with_worker(release, |worker| {
            worker
                .ask(request, Some(room.unwrap_or(usize::MAX)), &self.limits, answers)?
                .ok_or(Step::Ended(Ended::Closed))
        })
    }

    fn unreadable(&self, release: &str, err: &dyn std::fmt::Display) -> Error {
        Error::new(format!("the render worker of release `{release}` answered what cannot be read: {err}"))
    }

    /// `render` with an idle worker, or one started: given back once it is done, unless it
    /// ended (then its error is said, naming `release`).
    fn with_worker<T>(
        &self,
        release: &str,
        render: impl FnOnce(&mut Worker) -> std::result::Result<T, Step>,
    ) -> Result<T> {
        let mut worker = self.take_worker(release)?;
        match render(&mut worker) {
            Err(Step::Ended(ended)) => Err(self.ended(worker, ended, release)),
            rendered => {
                self.give_back(worker);
                rendered.map_err(|step| match step {
                    Step::Failed(error) => error,
                    Step::Ended(_) => unreachable!("matched above"),
                })
            }
        }
    }

    /// An idle worker of this render, else one kept from the tenant's last, else one started;
    /// none once the render must stop (its error names `release`).
    fn take_worker(&self, release: &str) -> Result<Worker> {
        if let Some(worker) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(worker);
        }
        match self.limits.stop_reason() {
            Some(why) => Err(self.limits.stopped(release, why)),
            None => match self.kept() {
                Some(worker) => Ok(worker),
                None => self.start(),
            },
        }
    }

    /// `worker`, done with what it was taken for, for the render's next.
    fn give_back(&self, worker: Worker) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
    }

    fn start(&self) -> Result<Worker> {
        let max_memory = self.isolation.max_memory.as_ref().map(|bound| bound.value);
        let mut command = Command::new(&self.isolation.program);
        command.arg("render-worker").env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: between fork and exec only async-signal-safe calls: setrlimit, prctl, open,
        // write and close.
        unsafe {
            command.pre_exec(move || {
                if let Some(max_memory) = max_memory {
                    let limit = libc::rlimit { rlim_cur: max_memory, rlim_max: max_memory };
                    if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Its memory holds decrypted values: never written out as a core.
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                // Gone with the thread that started it (the spawning thread, which lives as
                // long as the process); the first the kernel kills when the container's memory
                // runs out.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
                if fd >= 0 {
                    libc::write(fd, b"1000".as_ptr().cast(), 4);
                    libc::close(fd);
                }
                Ok(())
            });
        }
        let program = self.isolation.program.display();
        let mut child =
            spawn(command).map_err(|err| Error::new(format!("cannot start the render worker {program}: {err}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both are piped above")
        };
        let mut worker = Worker::new(child, stdin, stdout);
        if self.begin(&mut worker).is_err() {
            return Err(Error::new(format!("the render worker {program} did not start")));
        }
        Ok(worker)
    }

    /// A worker the tenant's last render kept, told this render began; none if none is kept
    /// alive.
    fn kept(&self) -> Option<Worker> {
        let kept = self.isolation.kept.as_ref()?;
        while let Some(mut worker) = kept.take::<Worker>() {
            if matches!(worker.child.try_wait(), Ok(None)) && self.begin(&mut worker).is_ok() {
                return Some(worker);
            }
        }
        None
    }

    /// Sends `worker` this render's limits (its deadline as the time left now) and templates.
    fn begin(&self, worker: &mut Worker) -> std::io::Result<()> {
        // A worker forgets the shared contexts and capabilities of the render before.
        worker.shared.clear();
        worker.capabilities = None;
        let run = Request::Run { limits: WireLimits::of(&self.limits), templates: Cow::Borrowed(&self.templates) };
        worker.send(&serde_json::to_string(&run).expect("limits and strings serialize"))
    }

    /// The error of a worker that ended without answering: the render's own stop, its memory
    /// bound, or what its exit says.
    fn ended(&self, mut worker: Worker, ended: Ended, release: &str) -> Error {
        if let Some(why) = self.limits.stop_reason() {
            return self.limits.stopped(release, why);
        }
        let _ = worker.child.kill();
        let status = worker.child.wait();
        let mut said = Vec::new();
        if let Some(stderr) = worker.child.stderr.take() {
            let _ = stderr.take(4096).read_to_end(&mut said);
        }
        let signal = status.as_ref().ok().and_then(|s| s.signal());
        match Abort::of(&said, signal) {
            Some(Abort::StackOverflow) => Error::new(format!(
                "rendering stopped: the templates of release `{release}` nested too deep (the render worker's stack overflowed)"
            ))
            .with_help(format!(
                "release `{release}`: a template recurses or nests too deep (a macro calling itself, an include of \
                 itself, expressions or values nested thousands deep); its memory was not the cause"
            ))
            .at_bound("the render worker's stack"),
            Some(Abort::OutOfMemory) => {
                let (took, raise) = match &self.isolation.max_memory {
                    Some(bound) => (
                        format!("took more than {} bytes of memory ({})", bound.value, bound.setting),
                        bound.setting.as_str(),
                    ),
                    None => ("ran out of memory".to_string(), "--max-render-memory"),
                };
                Error::new(format!("rendering stopped: the templates of release `{release}` {took}"))
                    .with_help(format!(
                        "release `{release}`: a template builds a string or a list too large (a `~` concatenation \
                         or `until` in a loop?); raise {raise} if the chart needs that much"
                    ))
                    .at_bound(raise)
            }
            None => {
                let how = match (ended, status) {
                    (Ended::TooLarge, _) => "its answer exceeded the render's bound".to_string(),
                    (_, Ok(status)) => status.to_string(),
                    (_, Err(err)) => err.to_string(),
                };
                Error::new(format!("rendering stopped: the render worker of release `{release}` ended ({how})"))
            }
        }
    }
}

impl Drop for Workers {
    /// The idle workers kept for the tenant's next render, if it keeps them and they hold at
    /// most [`KEPT_RESIDENT_BYTES`]; else they end.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if let Some(kept) = &self.isolation.kept {
            idle.into_iter().filter(|worker| worker.resident_bytes() <= KEPT_RESIDENT_BYTES).for_each(|w| kept.keep(w));
        }
    }
}

/// `command` spawned by one thread that lives as long as the process: a worker's
/// `PR_SET_PDEATHSIG` fires when the thread that started it ends, and one kept between renders
/// must outlive the render's threads (the controller's blocking threads end when idle).
fn spawn(command: Command) -> std::io::Result<Child> {
    type Spawn = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Spawn>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (asks, asked) = std::sync::mpsc::channel::<Spawn>();
        std::thread::Builder::new()
            .name("render-workers".to_string())
            .spawn(move || {
                for (mut command, started) in asked {
                    let _ = started.send(command.spawn());
                }
            })
            .expect("a thread starts");
        Mutex::new(asks)
    });
    let (started, start) = std::sync::mpsc::channel();
    let asked = spawner.lock().unwrap_or_else(|e| e.into_inner()).send((command, started));
    asked.map_err(|_| std::io::Error::other("the thread that starts render workers ended"))?;
    start.recv().map_err(|_| std::io::Error::other("the thread that starts render workers ended"))?
}

/// Why a worker aborted, by what it said on its standard error and the signal it ended with.
/// Its standard error is weaver's own runtime's (the allocator's failure, a stack overflow, a
/// panic's message): read for these words only, never relayed, since a panic's message could
/// hold a value the templates made.
#[derive(Debug, PartialEq, Eq)]
enum Abort {
    /// Rust's runtime says `thread '…' has overflowed its stack`, then aborts (SIGABRT).
    StackOverflow,
    /// The allocator's `memory allocation of N bytes failed`, or an abort with nothing said:
    /// what an allocation refused by `RLIMIT_DATA` ends in.
    OutOfMemory,
}

impl Abort {
    fn of(stderr: &[u8], signal: Option<i32>) -> Option<Abort> {
        let said = String::from_utf8_lossy(stderr);
        match () {
            _ if said.contains("has overflowed its stack") => Some(Abort::StackOverflow),
            _ if said.contains("memory allocation of") || signal == Some(libc::SIGABRT) => Some(Abort::OutOfMemory),
            _ => None,
        }
    }
}

/// Why a render in a worker stopped: the worker ended, or the render failed (a template's
/// error), the worker still good.
enum Step {
    Ended(Ended),
    Failed(Error),
}

impl From<Ended> for Step {
    fn from(ended: Ended) -> Step {
        Step::Ended(ended)
    }
}

/// The requests of a batch of releases `from..to` (as many as fit in the worker's
/// [`Worker::batch_bytes`], at least one), then [`Request::Flush`]; and each release's outcome:
/// sent, or why its request could not be made.
fn batch_requests(
    worker: &mut Worker,
    (from, to): (usize, usize),
    request: &impl Fn(&Worker, usize) -> Result<(Vec<u8>, Noted)>,
) -> (Vec<u8>, Vec<Result<()>>) {
    let mut batch: Vec<Result<()>> = Vec::new();
    let mut requests = Vec::new();
    for at in from..to {
        match request(worker, at) {
            Err(error) => batch.push(Err(error)),
            Ok((lines, _)) if !requests.is_empty() && requests.len() + lines.len() > worker.batch_bytes => break,
            Ok((lines, noted)) => {
                noted.apply(worker);
                requests.extend_from_slice(&lines);
                batch.push(Ok(()));
            }
        }
    }
    requests.extend_from_slice(&serde_json::to_vec(&Request::Flush).expect("a unit variant serializes"));
    requests.push(b'\n');
    (requests, batch)
}

/// The answers to `batch`, the releases from the first without a result, read and their
/// results pushed on `results`.
fn read_batch<T>(
    worker: &mut Worker,
    batch: Vec<Result<()>>,
    read: &mut impl FnMut(&mut Worker, usize) -> std::result::Result<Result<T>, Ended>,
    results: &mut Vec<Result<T>>,
) -> std::result::Result<(), (Ended, usize)> {
    let sent = batch.len();
    for request in batch {
        let at = results.len();
        results.push(match request {
            Ok(()) => read(worker, at).map_err(|ended| (ended, sent))?,
            Err(error) => Err(error),
        });
    }
    Ok(())
}

/// What a worker has been sent once a release's request of a batch is written: a shared
/// context of the render, a Helm chart (new to it, whose answer comes first, or used again),
/// the render's capabilities.
#[derive(Default)]
struct Noted {
    shared: Option<u64>,
    chart: Option<u64>,
    capabilities: Option<usize>,
}

impl Noted {
    fn apply(self, worker: &mut Worker) {
        if let Some(id) = self.shared {
            worker.shared.insert(id);
        }
        if let Some(id) = self.chart {
            match worker.charts.iter().position(|kept| *kept == id) {
                Some(at) => {
                    worker.charts.remove(at);
                }
                None => {
                    if worker.charts.len() >= CHARTS_KEPT {
                        worker.charts.pop_front();
                    }
                    worker.charts_heard.insert(id);
                }
            }
            worker.charts.push_back(id);
        }
        if let Some(capabilities) = self.capabilities {
            worker.capabilities = Some(capabilities);
        }
    }
}

/// The request for a release's render: its context but the shared part, and that too if `first`
/// (the worker has not been sent it).
fn release_request(render: &ReleaseRender<'_>, first: bool) -> Result<String> {
    let ReleaseRender { release, templates, context, shared: (id, shared) } = *render;
    let unserializable = |err: &dyn std::fmt::Display| {
        Error::new(format!("the context of release `{release}` cannot be sent to its render worker: {err}"))
    };
    let wire = |context: &minijinja::Value| {
        let mut map = serde_json::Map::new();
        let mut files = None;
        for key in context.try_iter().map_err(|err| unserializable(&err))? {
            let value = context.get_item(&key).map_err(|err| unserializable(&err))?;
            if let Some(chart_files) = value.downcast_object_ref::<ChartFiles>() {
                files = Some((chart_files.chart.clone(), chart_files.files.as_ref().clone()));
                continue;
            }
            map.insert(key.to_string(), serde_json::to_value(&value).map_err(|err| unserializable(&err))?);
        }
        Ok::<_, Error>(WireContext { context: map, files })
    };
    let own = wire(context)?;
    let shared = (id, if first { Some(wire(shared)?) } else { None });
    let templates = templates.iter().map(|t| t.to_path_buf()).collect();
    let request = Request::Release { release: release.to_string(), context: own, shared, templates };
    serde_json::to_string(&request).map_err(|err| unserializable(&err))
}

/// How a worker stopped answering.
#[derive(Debug)]
enum Ended {
    /// Its output ended (it exited, or was killed).
    Closed,
    /// Its answer grew past what the render may make.
    TooLarge,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// What it wrote that is not yet a whole line.
    read: Vec<u8>,
    /// Where each read lands: made once, not zeroed per read.
    chunk: Box<[u8]>,
    /// The Helm charts it keeps, by id, the most recently used last.
    charts: VecDeque<u64>,
    /// The Helm charts sent in a batch whose answers (that the chart was heard) are unread.
    charts_heard: HashSet<u64>,
    /// The shared contexts of this render it was sent ([`ReleaseRender::shared`]).
    shared: HashSet<u64>,
    /// The capabilities (their address in this process) of the last Helm release of this
    /// render it was sent.
    capabilities: Option<usize>,
    /// The most bytes of requests a batch sent to it may be: [`BATCH_BYTES`], or a quarter of
    /// what its pipe holds if that is less (a write takes a page more than its bytes fill).
    batch_bytes: usize,
}

impl Worker {
    fn new(child: Child, stdin: ChildStdin, stdout: ChildStdout) -> Worker {
        // SAFETY: fcntl only reads the pipe's size.
        let pipe_bytes = unsafe { libc::fcntl(stdin.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let batch_bytes = usize::try_from(pipe_bytes).map_or(0, |bytes| bytes / 4).min(BATCH_BYTES);
        Worker {
            child,
            stdin,
            stdout,
            read: Vec::new(),
            chunk: vec![0; READ_CHUNK].into(),
            charts: VecDeque::new(),
            charts_heard: HashSet::new(),
            shared: HashSet::new(),
            capabilities: None,
            batch_bytes,
        }
    }

    /// Writes `line` and its end at once: one write a request (the pipe is not buffered).
    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.stdin.write_all(&bytes)
    }

    /// Sends `request` and waits for its answer, looking at `limits` between reads: the
    /// worker is killed at once when the process stops, and past its deadline by [`GRACE`].
    /// With `text` (the most bytes it may be), the answer's text; a template's error is a
    /// [`Step::Failed`]. The questions the render asks first are answered by `answers`.
    fn ask(
        &mut self,
        request: &str,
        text: Option<usize>,
        limits: &RenderLimits,
        answers: Answers<'_>,
    ) -> std::result::Result<Option<Vec<u8>>, Step> {
        self.send(request).map_err(|_| Ended::Closed)?;
        self.answer(text, limits, answers)
    }

    /// The next answer the worker gives, as [`Worker::ask`] reads it.
    fn answer(
        &mut self,
        text: Option<usize>,
        limits: &RenderLimits,
        answers: Answers<'_>,
    ) -> std::result::Result<Option<Vec<u8>>, Step> {
        let answer = loop {
            let line =
                self.read_until(|read| read.iter().position(|b| *b == b'\n').map(|end| end + 1), HEADER_BYTES, limits)?;
            let answer: Answer = serde_json::from_slice(&line[..line.len() - 1]).map_err(|_| Ended::Closed)?;
            let Some(asked) = &answer.asks else { break answer };
            let told = serde_json::to_string(&answers.answer(asked)).map_err(|_| Ended::Closed)?;
            self.send(&told).map_err(|_| Ended::Closed)?;
        };
        if let Some(error) = answer.error {
            return Err(Step::Failed(error.into()));
        }
        let (Some(most), Some(length)) = (text, answer.length) else { return Ok(None) };
        if length > most {
            let _ = self.child.kill();
            return Err(Ended::TooLarge.into());
        }
        self.read_until(|read| (read.len() >= length).then_some(length), length, limits).map(Some).map_err(Step::from)
    }

    /// The first bytes of what the worker writes that `whole` says make a whole (at most `most`
    /// bytes, else the worker is killed), the rest kept for the next read.
    fn read_until(
        &mut self,
        whole: impl Fn(&[u8]) -> Option<usize>,
        most: usize,
        limits: &RenderLimits,
    ) -> std::result::Result<Vec<u8>, Ended> {
        loop {
            if let Some(end) = whole(&self.read) {
                return Ok(self.read.drain(..end).collect());
            }
            if self.read.len() > most {
                let _ = self.child.kill();
                return Err(Ended::TooLarge);
            }
            let mut poll = libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the length given.
            let ready = unsafe { libc::poll(&mut poll, 1, LOOK_EVERY_MS) };
            if ready > 0 {
                match self.stdout.read(&mut self.chunk[..]) {
                    Ok(0) | Err(_) => return Err(Ended::Closed),
                    Ok(n) => self.read.extend_from_slice(&self.chunk[..n]),
                }
                continue;
            }
            let kill = match limits.stop_reason() {
                Some(Stop::Stopping) => true,
                Some(Stop::TimeUp(_)) => limits.deadline.as_ref().is_some_and(|(at, _)| Instant::now() >= *at + GRACE),
                None => false,
            };
            if kill {
                let _ = self.child.kill();
                return Err(Ended::Closed);
            }
        }
    }
}

impl Worker {
    /// The memory it holds now (resident), as Linux tells; `u64::MAX` when it cannot be told.
    fn resident_bytes(&self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id())).unwrap_or_default();
        // SAFETY: sysconf only reads a setting.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let pages = statm.split(' ').nth(1).and_then(|pages| pages.parse::<u64>().ok());
        pages.map_or(u64::MAX, |pages| pages.saturating_mul(page.max(0) as u64))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_overflow_is_told_from_running_out_of_memory() {
        // What Rust's runtime writes before it aborts on each.
        let overflow = b"\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow, aborting\n";
        let allocation = b"memory allocation of 1073741824 bytes failed\n";
        assert_eq!(Abort::of(overflow, Some(libc::SIGABRT)), Some(Abort::StackOverflow));
        assert_eq!(Abort::of(allocation, Some(libc::SIGABRT)), Some(Abort::OutOfMemory));
        assert_eq!(Abort::of(b"", Some(libc::SIGABRT)), Some(Abort::OutOfMemory), "an abort that said nothing");
        assert_eq!(Abort::of(b"", Some(libc::SIGKILL)), None);
        assert_eq!(Abort::of(b"", None), None);
    }

    #[test]
    fn a_worker_whose_stack_overflowed_is_said_so_and_nothing_it_wrote_is_relayed() {
        // A worker that says what Rust's runtime says, with a template's text before it, and
        // aborts as it does.
        let script = "printf 'the-template-said-SECRET\\nthread main has overflowed its stack\\n' >&2; kill -ABRT $$";
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        // Ended before it is looked at, as a worker that crashed has.
        child.wait().unwrap();
        let worker = Worker::new(child, stdin, stdout);
        let isolation = Isolation {
            program: PathBuf::from("sh"),
            max_memory: Some(Bound::new(536_870_912, "--max-render-memory".to_string())),
            kept: None,
        };
        let workers = Workers::new(&isolation, Vec::new(), &RenderLimits::default());
        let error = workers.ended(worker, Ended::Closed, "web");
        assert_eq!(
            error.message,
            "rendering stopped: the templates of release `web` nested too deep (the render worker's stack overflowed)"
        );
        assert!(!format!("{error:?}").contains("SECRET"), "{error:?}");
    }
}
