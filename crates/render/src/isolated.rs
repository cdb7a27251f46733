//! Weaver charts' templates rendered in worker processes (`weaver render-worker`), each with
//! its memory bounded by the kernel (`RLIMIT_DATA`). minijinja has no hook where a string grows
//! (`~` in a loop doubles one), so no check inside the engine can bound it; a process can. The
//! controller renders its tenants' repositories so (`weaver operator run --max-render-memory`),
//! the CLI with `--max-render-memory`.
//!
//! The protocol: the parent writes lines of JSON on the worker's stdin. The first gives the
//! limits, the second the templates (every template of the charts the render uses, compiled
//! once per worker; the worker's side is `worker::serve`). Then, for each release, a
//! [`Request::Release`] with its context, and a [`Request::Template`] per template, in order, so
//! that the parent parses each output before the next template renders, as in its own process.
//! Each request is answered by a line of JSON ([`Answer`]), a template's text following it as
//! that many raw bytes (bounded by what the release may still render). A thread of the render
//! takes an idle worker or starts one, never waiting for another thread's, so a render has at
//! most one worker per thread rendering it; a worker that ended (its memory bound, its deadline)
//! is not used again. The worker prints nothing else, is given no environment variables, may
//! not dump core (its memory holds decrypted values), and is what the kernel kills first when
//! the container runs out of memory.

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
use crate::release_render::ReleaseRender;

/// How long a worker past its deadline is given to say so itself (naming the template where
/// it stood) before it is killed.
const GRACE: Duration = Duration::from_secs(2);
/// How often a worker's answer is waited for between two looks at the render's limits.
const LOOK_EVERY_MS: i32 = 50;
/// The most an answer's line (its JSON, not a text) may be: an error's message and place.
const HEADER_BYTES: usize = 1 << 20;

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

/// What the parent asks of a worker.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// The next templates render for this release, with this context (but its `files`, an
    /// object of its own: the chart's name and its files).
    Release {
        release: String,
        context: serde_json::Map<String, serde_json::Value>,
        files: Option<(String, BTreeMap<String, String>)>,
    },
    /// One template rendered, its output at most `room` bytes.
    Template { template: PathBuf, room: Option<usize> },
}

/// A worker's answer: to a [`Request::Template`], the length of its text (which follows as raw
/// bytes) or the template's error; to a [`Request::Release`], nothing but that it was heard.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Answer {
    pub(crate) length: Option<usize>,
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

/// The parent's side: the workers of one render, started when its threads first need them.
pub(crate) struct Workers {
    isolation: Isolation,
    limits: RenderLimits,
    /// The second line each worker is sent.
    templates: String,
    /// Those not rendering a release now.
    idle: Mutex<Vec<Worker>>,
}

impl Workers {
    pub(crate) fn new(isolation: &Isolation, templates: Vec<(String, String)>, limits: &RenderLimits) -> Workers {
        let templates = serde_json::to_string(&templates).expect("strings serialize");
        Workers { isolation: isolation.clone(), limits: limits.clone(), templates, idle: Mutex::default() }
    }

    /// A release's templates rendered by a worker, each text handed to `take` as it comes
    /// (see [`Engine::render_release`](crate::engine::Engine::render_release)).
    pub(crate) fn render(
        &self,
        render: &ReleaseRender<'_>,
        take: &mut dyn FnMut(&Path, String) -> Result<()>,
    ) -> Result<()> {
        let ReleaseRender { release, templates, context } = *render;
        let release_request = release_request(context, release)?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut worker = match idle {
            Some(worker) => worker,
            // A render that must stop starts no worker.
            None => match self.limits.stop_reason() {
                Some(why) => return Err(self.limits.stopped(release, why)),
                None => self.start()?,
            },
        };
        let rendered = self.render_with(&mut worker, &release_request, templates, take);
        match rendered {
            Err(Step::Ended(ended)) => Err(self.ended(worker, ended, release)),
            Err(Step::Failed(error)) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
                Err(error)
            }
            Ok(()) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
                Ok(())
            }
        }
    }

    fn render_with(
        &self,
        worker: &mut Worker,
        release_request: &str,
        templates: &[&Path],
        take: &mut dyn FnMut(&Path, String) -> Result<()>,
    ) -> std::result::Result<(), Step> {
        worker.ask(release_request, None, &self.limits)?;
        let mut rendered_bytes = 0;
        for template in templates {
            let room = self.limits.max_rendered_bytes.as_ref().map(|bound| bound.value.saturating_sub(rendered_bytes));
            let request = Request::Template { template: template.to_path_buf(), room };
            let request = serde_json::to_string(&request).expect("a path serializes");
            let text = worker.ask(&request, Some(room.unwrap_or(usize::MAX)), &self.limits)?;
            let text = text.ok_or(Step::Ended(Ended::Closed))?;
            rendered_bytes += text.len();
            let text = String::from_utf8(text).map_err(|_| {
                Step::Failed(Error::at(Location::file(template), "the rendered output is not UTF-8".to_string()))
            })?;
            take(template, text).map_err(Step::Failed)?;
        }
        Ok(())
    }

    fn start(&self) -> Result<Worker> {
        let max_memory = self.isolation.max_memory.value;
        let mut command = Command::new(&self.isolation.program);
        command.arg("render-worker").env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: between fork and exec only async-signal-safe calls: setrlimit, prctl, open,
        // write and close.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: max_memory, rlim_max: max_memory };
                if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Its memory holds decrypted values: never written out as a core.
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                // Gone with the thread that started it; the first the kernel kills when the
                // container's memory runs out.
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
        let signal = status.as_ref().ok().and_then(|s| s.signal());
        let bound = &self.isolation.max_memory;
        match Abort::of(&said, signal) {
            Some(Abort::StackOverflow) => Error::new(format!(
                "rendering stopped: the templates of release `{release}` nested too deep (the render worker's stack overflowed)"
            ))
            .with_help(format!(
                "release `{release}`: a template recurses or nests too deep (a macro calling itself, an include of \
                 itself, expressions or values nested thousands deep); its memory was not the cause"
            )),
            Some(Abort::OutOfMemory) => Error::new(format!(
                "rendering stopped: the templates of release `{release}` took more than {} bytes of memory ({})",
                bound.value, bound.setting
            ))
            .with_help(format!(
                "release `{release}`: a template builds a string or a list too large (a `~` concatenation in a loop?); \
                 raise {} if the chart needs that much",
                bound.setting
            )),
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

/// Why a release's render in a worker stopped: the worker ended, or the release failed (a
/// template's error, or what `take` refused), the worker still good.
enum Step {
    Ended(Ended),
    Failed(Error),
}

impl From<Ended> for Step {
    fn from(ended: Ended) -> Step {
        Step::Ended(ended)
    }
}

/// The request for `release`'s context, serialized but its `files` object.
fn release_request(context: &minijinja::Value, release: &str) -> Result<String> {
    let unserializable = |err: &dyn std::fmt::Display| {
        Error::new(format!("the context of release `{release}` cannot be sent to its render worker: {err}"))
    };
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
    let request = Request::Release { release: release.to_string(), context: map, files };
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
}

impl Worker {
    fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()
    }

    /// Sends `request` and waits for its answer, looking at `limits` between reads: the
    /// worker is killed at once when the process stops, and past its deadline by [`GRACE`].
    /// With `text` (the most bytes it may be), the answer's text; a template's error is a
    /// [`Step::Failed`].
    fn ask(
        &mut self,
        request: &str,
        text: Option<usize>,
        limits: &RenderLimits,
    ) -> std::result::Result<Option<Vec<u8>>, Step> {
        self.send(request).map_err(|_| Ended::Closed)?;
        let line =
            self.read_until(|read| read.iter().position(|b| *b == b'\n').map(|end| end + 1), HEADER_BYTES, limits)?;
        let answer: Answer = serde_json::from_slice(&line[..line.len() - 1]).map_err(|_| Ended::Closed)?;
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
        let mut chunk = vec![0u8; 64 << 10];
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
        let worker = Worker { child, stdin, stdout, read: Vec::new() };
        let isolation = Isolation {
            program: PathBuf::from("sh"),
            max_memory: Bound::new(536_870_912, "--max-render-memory".to_string()),
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
