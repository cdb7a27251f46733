//! Weaver charts' templates rendered in worker processes (`weaver render-worker`), each with
//! its memory bounded by the kernel (`RLIMIT_DATA`). minijinja has no hook where a string grows
//! (`~` in a loop doubles one), so no check inside the engine can bound it; a process can. The
//! controller renders its tenants' repositories so (`weaver operator run --max-render-memory`),
//! the CLI with `--max-render-memory`.
//!
//! The protocol is lines of JSON on the worker's stdin and stdout. The first line gives the
//! limits, the second the templates (every template of the charts the render uses, compiled
//! once per worker); each next line asks for one release's templates, and the worker answers
//! one line: the texts rendered, in order, and the error that stopped it, if any. A render has
//! one worker, which renders its releases one after the other (so a render's memory is bounded
//! once, not once per thread); a worker that died (its memory bound) is not used again. The
//! worker prints nothing else, and is given no environment variables.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weaver_core::error::{Error, Location, Result};
use weaver_core::limits::{Bound, Isolation, RenderLimits, Stop};

use crate::filters::ChartFiles;

/// How long a worker past its deadline is given to say so itself (naming the template where
/// it stood) before it is killed.
const GRACE: Duration = Duration::from_secs(2);
/// How often a worker's answer is waited for between two looks at the render's limits.
const LOOK_EVERY_MS: i32 = 50;

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

/// One release's templates to render, as the parent sends it.
#[derive(Serialize)]
struct Ask<'a> {
    release: &'a str,
    templates: &'a [&'a Path],
    /// The context but its `files`, which is an object of its own.
    context: serde_json::Map<String, serde_json::Value>,
    /// `files`: the chart's name and its files.
    files: Option<(&'a str, &'a BTreeMap<String, String>)>,
}

/// [`Ask`] as the worker reads it.
#[derive(Deserialize)]
pub(crate) struct Asked {
    pub(crate) release: String,
    pub(crate) templates: Vec<PathBuf>,
    pub(crate) context: serde_json::Map<String, serde_json::Value>,
    pub(crate) files: Option<(String, BTreeMap<String, String>)>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Answer {
    pub(crate) texts: Vec<String>,
    pub(crate) error: Option<WireError>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireError {
    message: String,
    help: Option<String>,
    location: Option<(PathBuf, Option<u64>, Option<u64>)>,
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> WireError {
        WireError {
            message: error.message.clone(),
            help: error.help.clone(),
            location: error.location.as_ref().map(|l| (l.path.clone(), l.line, l.column)),
        }
    }
}

impl From<WireError> for Error {
    fn from(wire: WireError) -> Error {
        let mut error = Error::new(wire.message);
        error.help = wire.help;
        error.location = wire.location.map(|(path, line, column)| Location { path, line, column });
        error
    }
}

/// The parent's side: the worker of one render, started when a release first needs it.
pub(crate) struct Workers {
    isolation: Isolation,
    limits: RenderLimits,
    /// The second line each worker is sent.
    templates: String,
    /// Held while it renders a release.
    worker: Mutex<Option<Worker>>,
}

impl Workers {
    pub(crate) fn new(isolation: &Isolation, templates: Vec<(String, String)>, limits: &RenderLimits) -> Workers {
        let templates = serde_json::to_string(&templates).expect("strings serialize");
        Workers { isolation: isolation.clone(), limits: limits.clone(), templates, worker: Mutex::default() }
    }

    /// `templates` rendered for `release` by a worker, each text handed to `take` in order (see
    /// [`Engine::render_release`]).
    pub(crate) fn render(
        &self,
        templates: &[&Path],
        context: &minijinja::Value,
        release: &str,
        take: &mut dyn FnMut(&Path, String) -> Result<()>,
    ) -> Result<()> {
        let ask = ask(templates, context, release)?;
        let mut slot = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        let mut worker = match slot.take() {
            Some(worker) => worker,
            None => self.start()?,
        };
        let answer = match worker.ask(&ask, &self.limits) {
            Ok(answer) => answer,
            Err(ended) => return Err(self.ended(worker, ended, release)),
        };
        *slot = Some(worker);
        drop(slot);
        for (template, text) in templates.iter().zip(answer.texts) {
            take(template, text)?;
        }
        match answer.error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    fn start(&self) -> Result<Worker> {
        let max_memory = self.isolation.max_memory.value;
        let mut command = Command::new(&self.isolation.program);
        command.arg("render-worker").env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: between fork and exec only async-signal-safe calls: setrlimit and prctl.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: max_memory, rlim_max: max_memory };
                if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Gone with the process that asked for it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let program = self.isolation.program.display();
        let mut child =
            command.spawn().map_err(|err| Error::new(format!("cannot start the render worker {program}: {err}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both are piped above")
        };
        let mut worker = Worker { child, stdin, stdout, read: Vec::new() };
        let limits = serde_json::to_string(&WireLimits::of(&self.limits)).expect("limits serialize");
        let started = [limits.as_str(), self.templates.as_str()].iter().try_for_each(|line| worker.send(line));
        if started.is_err() {
            return Err(Error::new(format!("the render worker {program} did not start")));
        }
        Ok(worker)
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
        let out_of_memory = String::from_utf8_lossy(&said).contains("memory allocation of")
            || status.as_ref().is_ok_and(|s| s.signal() == Some(libc::SIGABRT));
        let bound = &self.isolation.max_memory;
        if out_of_memory {
            return Error::new(format!(
                "rendering stopped: the templates of release `{release}` took more than {} bytes of memory ({})",
                bound.value, bound.setting
            ))
            .with_help(format!(
                "release `{release}`: a template builds a string or a list too large (a `~` concatenation in a loop?); \
                 raise {} if the chart needs that much",
                bound.setting
            ));
        }
        let how = match (ended, status) {
            (Ended::TooLarge, _) => "its answer exceeded the render's bound".to_string(),
            (_, Ok(status)) => status.to_string(),
            (_, Err(err)) => err.to_string(),
        };
        Error::new(format!("rendering stopped: the render worker of release `{release}` ended ({how})"))
    }
}

/// The request for `release`'s `templates`, the context serialized but its `files` object.
fn ask(templates: &[&Path], context: &minijinja::Value, release: &str) -> Result<String> {
    let unserializable = |err: &dyn std::fmt::Display| {
        Error::new(format!("the context of release `{release}` cannot be sent to its render worker: {err}"))
    };
    let mut map = serde_json::Map::new();
    let mut files = None;
    for key in context.try_iter().map_err(|err| unserializable(&err))? {
        let value = context.get_item(&key).map_err(|err| unserializable(&err))?;
        let name = key.to_string();
        if let Some(chart_files) = value.downcast_object_ref::<ChartFiles>() {
            files = Some((chart_files.chart.clone(), chart_files.files.clone()));
            continue;
        }
        map.insert(name, serde_json::to_value(&value).map_err(|err| unserializable(&err))?);
    }
    let files = files.as_ref().map(|(chart, files)| (chart.as_str(), files.as_ref()));
    let ask = Ask { release, templates, context: map, files };
    serde_json::to_string(&ask).map_err(|err| unserializable(&err))
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
}

impl Worker {
    fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()
    }

    /// Sends `ask` and waits for the answer, looking at `limits` between reads: the worker is
    /// killed at once when the process stops, and past its deadline by [`GRACE`].
    fn ask(&mut self, ask: &str, limits: &RenderLimits) -> std::result::Result<Answer, Ended> {
        self.send(ask).map_err(|_| Ended::Closed)?;
        // JSON escapes a byte in at most 6; the texts are bounded by the render's own bound.
        let most = limits.max_rendered_bytes.as_ref().map_or(usize::MAX, |b| b.value.saturating_mul(6) + (1 << 20));
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(end) = self.read.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.read.drain(..=end).collect();
                return serde_json::from_slice(&line[..end]).map_err(|_| Ended::Closed);
            }
            if self.read.len() > most {
                let _ = self.child.kill();
                return Err(Ended::TooLarge);
            }
            let mut poll = libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the length given.
            let ready = unsafe { libc::poll(&mut poll, 1, LOOK_EVERY_MS) };
            if ready > 0 {
                match self.stdout.read(&mut chunk) {
                    Ok(0) | Err(_) => return Err(Ended::Closed),
                    Ok(n) => self.read.extend_from_slice(&chunk[..n]),
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

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
