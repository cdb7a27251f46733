//! `weaver render-worker`: the worker's side of [`crate::isolated`], which renders weaver
//! charts' templates, Helm charts' releases, kustomizations and values templates for the
//! process that started it, asking it what the render reads: `lookup`s, the repository's
//! files, environment variables.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::engine::Engine;
use crate::filters::ChartFiles;
use crate::isolated::{Answer, HelmRelease, Question, Request, Told, WireBuilt, WireContext, WireError};
use crate::release_render::ReleaseRender;
use weaver_core::error::{Error, Location};
use weaver_core::limits::RenderLimits;
use weaver_project::source::{Entry, Source};

/// The worker's pipes: a Helm chart's `lookup` writes its question and reads the answer in
/// the middle of a render, so they are shared with it.
struct Pipes {
    input: Box<dyn BufRead + Send>,
    output: Box<dyn Write + Send>,
    /// Requests read while a render waited for the answer to its question: the parent sends
    /// a batch's requests (and the next batch's) before it reads the answers.
    queued: VecDeque<String>,
}

impl Pipes {
    /// The next request.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        match self.queued.pop_front() {
            Some(line) => Ok(Some(line)),
            None => self.read_line(),
        }
    }

    /// The parent's answer to a question just asked, the requests before it queued.
    fn told(&mut self) -> std::io::Result<Told> {
        loop {
            let line = self.read_line()?.ok_or_else(|| std::io::Error::other("the render's question had no answer"))?;
            match serde_json::from_str::<Told>(&line) {
                Ok(told) => return Ok(told),
                Err(_) => self.queued.push_back(line),
            }
        }
    }

    fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        match self.input.read_line(&mut line)? {
            0 => Ok(None),
            _ => Ok(Some(line.trim_end_matches('\n').to_string())),
        }
    }

    fn answer(&mut self, answer: &Answer, text: Option<&[u8]>) -> std::io::Result<()> {
        self.write(answer, text)?;
        self.output.flush()
    }

    /// [`Pipes::answer`] left in the buffer until [`Request::Flush`], for the answers that
    /// follow to take with them: a batch of releases reaches the parent in one write, which
    /// wakes it once.
    fn write(&mut self, answer: &Answer, text: Option<&[u8]>) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.output, answer)?;
        self.output.write_all(b"\n")?;
        if let Some(text) = text {
            self.output.write_all(text)?;
        }
        Ok(())
    }
}

/// The worker's side: reads the limits and templates, then answers each request until its
/// input ends. An error here is the protocol's (the parent says the worker ended).
pub fn serve(input: Box<dyn BufRead + Send>, output: Box<dyn Write + Send>) -> std::io::Result<()> {
    // SAFETY: prctl with these arguments only sets a flag of this process. Its memory holds
    // decrypted values: never dumped (exec reset what the parent set).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // A tenant's render takes one core, its RSA keys' searches too.
    sprig::search_rsa_keys_on_one_core();
    let pipes = Arc::new(Mutex::new(Pipes { input, output, queued: VecDeque::new() }));
    let next = || pipes.lock().unwrap_or_else(PoisonError::into_inner).line();
    // Each render that takes the worker begins with its limits and templates.
    let mut limits = RenderLimits::default();
    let mut engine = Engine::of_templates(Vec::new(), &limits);
    let mut charts: HashMap<u64, weaver_helm::HelmChart> = HashMap::new();
    // The parts of its releases' contexts this render shares (`ReleaseRender::shared`).
    let mut shared: HashMap<u64, minijinja::Value> = HashMap::new();
    // A run's releases see one cluster: its capabilities are sent and made once, not per release.
    let mut capabilities: Option<Arc<weaver_helm::Capabilities>> = None;
    let parent = Parent(Arc::clone(&pipes));
    let live = Arc::new(weaver_helm::lookup::Live::Asking(Box::new(parent.lookups())));
    while let Some(line) = next()? {
        let failed =
            |error: &weaver_core::error::Error| Answer { error: Some(WireError::from(error)), ..Answer::default() };
        let request: Request = serde_json::from_str(&line)?;
        // A Helm chart's and release's answers wait in the buffer for their batch's Flush.
        let batched = matches!(request, Request::HelmChart { .. } | Request::Helm { .. });
        let (answer, text) = match request {
            Request::Run { limits: run_limits, templates } => {
                limits = run_limits.limits();
                engine = Engine::of_templates(templates.into_owned(), &limits);
                shared.clear();
                capabilities = None;
                continue;
            }
            Request::HelmChart { id, chart, forget } => {
                if let Some(forget) = forget {
                    charts.remove(&forget);
                }
                charts.insert(id, weaver_helm::HelmChart::new(chart, Vec::new()));
                (Answer::default(), None)
            }
            Request::Helm { chart, release } => match charts.get(&chart) {
                Some(chart) => match render_helm(chart, release, &mut capabilities, &live, &limits) {
                    Ok(documents) => (Answer { length: Some(documents.len()), ..Answer::default() }, Some(documents)),
                    Err(error) => (failed(&error), None),
                },
                None => return Err(std::io::Error::other("a release of a chart the worker was not sent")),
            },
            Request::Kustomize { dir, at, anywhere, describe } => {
                let source = Repository { parent: parent.clone(), describe };
                match build_kustomization(&source, &dir, at, anywhere, &limits) {
                    Ok(built) => (Answer { length: Some(built.len()), ..Answer::default() }, Some(built)),
                    Err(error) => (failed(&error), None),
                }
            }
            Request::ValuesTemplate { path, text, data, variables, release, describe } => {
                let source: Arc<dyn Source> = Arc::new(Repository { parent: parent.clone(), describe });
                let variables = match variables {
                    true => crate::gotmpl::Variables::Asked(parent.variables()),
                    false => crate::gotmpl::Variables::Refused,
                };
                let rendered =
                    crate::gotmpl::render_in_worker(&source, (&path, &text), &data, variables, (&limits, &release));
                match rendered {
                    Ok(text) => (Answer { length: Some(text.len()), ..Answer::default() }, Some(text.into_bytes())),
                    Err(error) => (failed(&error), None),
                }
            }
            Request::Release { release, context, shared: (id, given), templates } => {
                if let Some(given) = given {
                    shared.insert(id, context_of(given));
                }
                let shared = shared.get(&id).ok_or_else(|| std::io::Error::other("a shared context never sent"))?;
                let context = ReleaseRender::whole_context(context_of(context), shared.clone());
                render_release(&engine, (&release, context), &templates, &limits, &pipes)?;
                continue;
            }
            Request::Flush => {
                pipes.lock().unwrap_or_else(PoisonError::into_inner).output.flush()?;
                continue;
            }
        };
        let mut pipes = pipes.lock().unwrap_or_else(PoisonError::into_inner);
        match batched {
            true => pipes.write(&answer, text.as_deref())?,
            false => pipes.answer(&answer, text.as_deref())?,
        }
    }
    Ok(())
}

/// A release's templates rendered here in order, all within the render's bytes, each answered
/// until the first error; the answers reach the parent with its batch's, at [`Request::Flush`].
fn render_release(
    engine: &weaver_core::error::Result<Engine>,
    (release, context): (&str, minijinja::Value),
    templates: &[PathBuf],
    limits: &RenderLimits,
    pipes: &Mutex<Pipes>,
) -> std::io::Result<()> {
    let mut rendered_bytes = 0;
    for template in templates {
        let room = limits.max_rendered_bytes.as_ref().map(|bound| bound.value.saturating_sub(rendered_bytes));
        let rendered = match engine {
            Ok(engine) => engine.render(template, &context, room, release),
            Err(error) => Err(error.clone()),
        };
        let mut pipes = pipes.lock().unwrap_or_else(PoisonError::into_inner);
        match rendered {
            Ok(text) => {
                rendered_bytes += text.len();
                pipes.write(&Answer { length: Some(text.len()), ..Answer::default() }, Some(text.as_bytes()))?;
            }
            Err(error) => {
                return pipes.write(&Answer { error: Some(WireError::from(&error)), ..Answer::default() }, None);
            }
        }
    }
    Ok(())
}

/// A release of a Helm chart whose templates are executed here, their outputs as
/// [`crate::isolated::WireExecuted`] encodes them.
fn render_helm(
    chart: &weaver_helm::HelmChart,
    release: HelmRelease<'_>,
    made: &mut Option<Arc<weaver_helm::Capabilities>>,
    live: &Arc<weaver_helm::lookup::Live>,
    limits: &RenderLimits,
) -> weaver_core::error::Result<Vec<u8>> {
    if let Some(of) = release.capabilities {
        *made = Some(Arc::new(weaver_helm::Capabilities::from(of.into_owned())));
    }
    let capabilities = made.clone().ok_or_else(|| Error::new("a Helm release sent without capabilities"))?;
    let input = weaver_helm::ReleaseInput {
        name: &release.name,
        namespace: &release.namespace,
        values: release.values.into_owned(),
        capabilities,
        live: Arc::clone(live),
        output: release.output,
        limits: limits.clone(),
    };
    Ok(crate::isolated::WireExecuted::encode(weaver_helm::execute(chart, &input)?))
}

/// A kustomization built here, its objects in JSON.
fn build_kustomization(
    source: &dyn Source,
    dir: &Path,
    (path, line, column): crate::isolated::WireLocation,
    anywhere: bool,
    limits: &RenderLimits,
) -> weaver_core::error::Result<Vec<u8>> {
    let restrictions = match anywhere {
        true => weaver_project::environment::LoadRestrictions::None,
        false => weaver_project::environment::LoadRestrictions::RootOnly,
    };
    let at = Location { path, line, column };
    let built = weaver_kustomize::build(source, dir, &at, restrictions, limits)?;
    let resources = built.resources.into_iter().map(|r| (r.object, r.source, r.document)).collect();
    serde_json::to_vec(&WireBuilt { resources, outside_root: built.outside_root })
        .map_err(|err| Error::new(format!("{err}")))
}

/// The process that started this worker, asked what a render reads: a question, then its
/// answer, on the pipes.
#[derive(Clone)]
struct Parent(Arc<Mutex<Pipes>>);

impl Parent {
    fn ask(&self, question: Question) -> std::io::Result<Told> {
        let mut pipes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pipes.answer(&Answer { asks: Some(question), ..Answer::default() }, None)?;
        match pipes.told()? {
            Told::Refused(why) => Err(std::io::Error::other(why)),
            told => Ok(told),
        }
    }

    fn lookups(
        &self,
    ) -> impl Fn(&str, &weaver_helm::lookup::Query) -> Result<serde_json::Value, String> + Send + Sync + use<> {
        let parent = self.clone();
        move |release, query| {
            let question = Question::Lookup {
                release: release.to_string(),
                api_version: query.api_version.to_string(),
                kind: query.kind.to_string(),
                namespace: query.namespace.to_string(),
                name: query.name.to_string(),
            };
            match parent.ask(question) {
                Ok(Told::Lookup(found)) => found,
                Ok(_) => Err(unexpected().to_string()),
                Err(err) => Err(format!("the render's lookup had no answer: {err}")),
            }
        }
    }

    fn variables(&self) -> crate::gotmpl::Asker {
        let parent = self.clone();
        crate::gotmpl::Asker(Arc::new(move |name| match parent.ask(Question::Variable(name.to_string())) {
            Ok(Told::Variable(value)) => value,
            Ok(_) => Err(unexpected().to_string()),
            Err(err) => Err(format!("`{name}`: {err}")),
        }))
    }
}

fn unexpected() -> std::io::Error {
    std::io::Error::other("the render worker's parent answered another question")
}

/// The repository as the parent's source reads it, its bounds and confinement kept there.
struct Repository {
    parent: Parent,
    describe: String,
}

impl Source for Repository {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        use base64::Engine as _;
        match self.parent.ask(Question::Read(path.to_path_buf()))? {
            Told::Read(read) => read?
                .map(|text| base64::engine::general_purpose::STANDARD.decode(text).map_err(std::io::Error::other))
                .transpose(),
            _ => Err(unexpected()),
        }
    }

    fn size(&self, path: &Path) -> std::io::Result<Option<u64>> {
        match self.parent.ask(Question::Size(path.to_path_buf()))? {
            Told::Size(size) => Ok(size?),
            _ => Err(unexpected()),
        }
    }

    fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<Entry>>> {
        match self.parent.ask(Question::List(dir.to_path_buf()))? {
            Told::List(listed) => {
                Ok(listed?.map(|entries| entries.into_iter().map(|(name, is_dir)| Entry { name, is_dir }).collect()))
            }
            _ => Err(unexpected()),
        }
    }

    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        match self.parent.ask(Question::Resolve(path.to_path_buf()))? {
            Told::Resolve(resolved) => Ok(resolved?),
            _ => Err(unexpected()),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// The context as the parent's render has it: `files` an object again.
fn context_of(wire: WireContext) -> minijinja::Value {
    let context = crate::serde_value(&wire.context);
    match wire.files {
        Some((chart, files)) => {
            let files = minijinja::Value::from_object(ChartFiles { chart, files: Arc::new(files) });
            minijinja::context! { files => files, ..context }
        }
        None => context,
    }
}
