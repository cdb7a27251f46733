//! The minijinja environment: every chart's templates compiled once, strict undefined, no
//! auto-escaping, helm's filters; and the translation of template errors into weaver errors.

use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use weaver_core::error::{Error, Location, Result};
use weaver_core::limits::{RenderLimits, Stop};
use weaver_project::Chart;

use crate::release_render::ReleaseRender;

pub struct Engine {
    env: Environment<'static>,
    limits: RenderLimits,
    /// Where releases render when the limits ask for processes of their own.
    workers: Option<crate::isolated::Workers>,
}

/// Template names are repository paths; `include "_helpers.j2"` resolves next to the includer.
fn join_path(name: &str, parent: &str) -> String {
    if name.starts_with("charts/") {
        return name.to_string();
    }
    let base = parent.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in name.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

pub fn template_name(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

impl Engine {
    pub fn new<'a>(charts: impl IntoIterator<Item = &'a Arc<Chart>>, limits: &RenderLimits) -> Result<Engine> {
        let templates = charts
            .into_iter()
            .flat_map(|chart| chart.templates.iter().map(|t| (template_name(&t.path), t.source.clone())))
            .collect();
        Engine::of_templates(templates, limits)
    }

    /// The templates named (repository paths) with their sources, compiled; with the limits'
    /// isolation, given to the worker processes releases render in, and compiled there.
    pub fn of_templates(templates: Vec<(String, String)>, limits: &RenderLimits) -> Result<Engine> {
        let mut env = Environment::new();
        env.set_fuel(limits.max_template_steps.as_ref().map(|bound| bound.value));
        if limits.deadline.is_some() || limits.stopping.is_some() {
            stop_ranges(&mut env, limits);
        }
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // Debug mode lets strict-undefined errors name the variable (`values.x` is undefined).
        // The debug info also snapshots variable values: it is never printed (see `template_error`).
        env.set_debug(true);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_path_join_callback(|name, parent| join_path(name, parent).into());
        super::filters::register(&mut env);
        let workers = match &limits.isolation {
            // Each worker compiles them, and says a template's syntax error as this would: this
            // process renders nothing itself.
            Some(isolation) => Some(crate::isolated::Workers::new(isolation, templates, limits)),
            None => {
                for (name, source) in templates {
                    env.add_template_owned(name, source).map_err(|e| template_error(&e, |_| None))?;
                }
                None
            }
        };
        Ok(Engine { env, limits: limits.clone(), workers })
    }

    /// The worker processes the run's templates render in, of weaver charts and Helm charts,
    /// when the limits isolate them.
    pub(crate) fn workers(&self) -> Option<&crate::isolated::Workers> {
        self.workers.as_ref()
    }

    /// Each release's templates rendered, in order, all within the one `--max-rendered-bytes`
    /// bound; each text handed to `take` with its release's place in `renders` as it is
    /// rendered, in this process or in a worker's (a batch of releases a round trip). Each
    /// release's result is its first error, a template's or `take`'s.
    pub fn render_releases(
        &self,
        renders: &[ReleaseRender<'_>],
        take: &mut dyn FnMut(usize, &Path, String) -> Result<()>,
    ) -> Vec<Result<()>> {
        if let Some(workers) = &self.workers {
            return workers.render_releases(renders, take);
        }
        let render_release =
            |at: usize, render: &ReleaseRender<'_>, take: &mut dyn FnMut(usize, &Path, String) -> Result<()>| {
                let ReleaseRender { release, templates, context, shared: (_, shared) } = *render;
                let context = ReleaseRender::whole_context(context.clone(), shared.clone());
                let mut rendered_bytes = 0;
                for template in templates {
                    let room =
                        self.limits.max_rendered_bytes.as_ref().map(|bound| bound.value.saturating_sub(rendered_bytes));
                    let text = self.render(template, &context, room, release)?;
                    rendered_bytes += text.len();
                    take(at, template, text)?;
                }
                Ok(())
            };
        renders.iter().enumerate().map(|(at, render)| render_release(at, render, take)).collect()
    }

    /// `template` rendered for `release`, its output at most `room` bytes.
    pub(crate) fn render(
        &self,
        template: &Path,
        context: &minijinja::Value,
        room: Option<usize>,
        release: &str,
    ) -> Result<String> {
        let name = template_name(template);
        let compiled = self.env.get_template(&name).map_err(|e| template_error(&e, |_| None))?;
        let mut output = Output { text: Vec::new(), room, limits: &self.limits, refused: None };
        let rendered = compiled.render_captured_to(context, &mut output);
        let limits = &self.limits;
        match (output.refused, rendered) {
            (Some(Refused::Stopped(why)), Err(e)) => {
                return Err(limits.stopped(release, why).with_location(template_location(&e, template)));
            }
            (Some(Refused::TooLarge), Err(e)) => {
                let error = limits.too_large(&format!("the output of {name}"), release);
                return Err(error.with_location(template_location(&e, template)));
            }
            (_, Err(e)) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
                let steps = limits.max_template_steps.as_ref().expect("fuel is given by the bound");
                let error = Error::new(format!(
                    "rendering stopped: {name} ran more than {} template instructions ({})",
                    steps.value, steps.setting
                ))
                .with_help(format!(
                    "release `{release}`: a template loops too long; raise {} if it is not a loop",
                    steps.setting
                ))
                .at_bound(&steps.setting);
                return Err(error.with_location(template_location(&e, template)));
            }
            // A `range` cut short by the limits ends its loop without an error.
            (_, Ok(_)) if let Some(why) = limits.stop_reason() => {
                return Err(limits.stopped(release, why).with_location(Location::file(template)));
            }
            (_, Ok(_)) => {}
            (_, Err(e)) => return Err(self.render_error(&e, template, &name, context)),
        }
        String::from_utf8(output.text)
            .map_err(|_| Error::at(Location::file(template), "the rendered output is not UTF-8".to_string()))
    }

    fn render_error(&self, e: &minijinja::Error, template: &Path, name: &str, context: &minijinja::Value) -> Error {
        let error = template_error(e, |frame| self.undefined_behind_filter(frame, context));
        // Macro calls into an imported file are not wrapped like includes are, so the
        // error only names the macro's file: say which template was being rendered.
        match (&error.help, &error.location) {
            (None, Some(at)) if at.path != template => error.with_help(format!("while rendering {name}")),
            _ => error,
        }
    }
}

/// A template's output: refused past `room` bytes, or once the render must stop.
struct Output<'l> {
    text: Vec<u8>,
    room: Option<usize>,
    limits: &'l RenderLimits,
    refused: Option<Refused>,
}

enum Refused {
    Stopped(Stop),
    TooLarge,
}

impl std::io::Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(why) = self.limits.stop_reason() {
            self.refused = Some(Refused::Stopped(why));
        } else if self.room.is_some_and(|room| self.text.len() + buf.len() > room) {
            self.refused = Some(Refused::TooLarge);
        }
        if self.refused.is_some() {
            return Err(std::io::Error::other("the render's limits refuse more output"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a render failed: the template line minijinja names, or the template.
fn template_location(e: &minijinja::Error, template: &Path) -> Location {
    template_error(e, |_| None).location.unwrap_or_else(|| Location::file(template))
}

/// `range` as minijinja's, whose loops end once the render must stop (the render then fails):
/// a loop that prints nothing would otherwise run to its end, never asked.
fn stop_ranges(env: &mut Environment<'static>, limits: &RenderLimits) {
    // Shared, not cloned: `range` is called at each pass of an outer loop.
    let limits = Arc::new(limits.clone());
    env.add_function("range", move |lower: isize, upper: Option<isize>, step: Option<isize>| {
        let range = minijinja::functions::range(lower, upper, step)?;
        let limits = limits.clone();
        // minijinja's range is iterable: `ok()` never drops an error.
        Ok(minijinja::Value::make_iterable(move || UntilStopped {
            range: range.try_iter().ok(),
            limits: limits.clone(),
            taken: 0,
        }))
    });
}

/// Values a range gives between two asks whether the render must stop: a clock read costs
/// as much as an iteration of an empty loop.
const VALUES_PER_CHECK: u32 = 64;

/// A range's values until the render must stop (asked at its first value and every
/// [`VALUES_PER_CHECK`]). Its size hint is the whole range's, as minijinja's own range gives
/// it: `loop.last`, `loop.length` and `|length` read it, and must read as they do with no
/// limits (a stopped render fails, so its shortened loop is never seen).
struct UntilStopped {
    range: Option<minijinja::value::ValueIter>,
    limits: Arc<RenderLimits>,
    /// Values given so far.
    taken: u32,
}

impl Iterator for UntilStopped {
    type Item = minijinja::Value;

    fn next(&mut self) -> Option<minijinja::Value> {
        let ask = self.taken.is_multiple_of(VALUES_PER_CHECK);
        self.taken = self.taken.wrapping_add(1);
        match ask && self.limits.stop_reason().is_some() {
            true => None,
            false => self.range.as_mut()?.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.as_ref().map_or((0, Some(0)), Iterator::size_hint)
    }
}

impl Engine {
    /// What is undefined when minijinja does not say: a strict undefined handed to a filter
    /// (`{{ env.values.domian | quote }}`) is reported at the filter, unnamed. The filter's
    /// input is re-read from the template source (repository code) and each variable path in
    /// it is looked up in the context, to name the first one that is undefined. Only names are
    /// shown, never values.
    fn undefined_behind_filter(&self, frame: &minijinja::Error, context: &minijinja::Value) -> Option<String> {
        if frame.kind() != minijinja::ErrorKind::UndefinedError || frame.detail().is_some() {
            return None;
        }
        let template = self.env.get_template(frame.name()?).ok()?;
        let source = template.source();
        let range = frame.range()?;
        let filter = source.get(range.clone())?;
        let before = source.get(..range.start)?;
        let start = before.rfind("{{").max(before.rfind("{%"))? + 2;
        let input = before[start..].trim_end().strip_suffix('|')?.trim();
        let undefined = variable_paths(input).into_iter().find_map(|path| first_undefined(context, &path));
        Some(match undefined {
            Some(path) => format!("`{path}` is undefined (given to filter `{filter}`)"),
            None => format!("an undefined value is given to filter `{filter}` in `{input}`"),
        })
    }
}

/// The dotted variable paths of an expression (`a.b.c`), outside string literals.
fn variable_paths(expression: &str) -> Vec<Vec<&str>> {
    let bytes = expression.as_bytes();
    let ident = |i: usize| {
        let end =
            bytes[i..].iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'_')).map_or(bytes.len(), |n| i + n);
        (end > i && !bytes[i].is_ascii_digit()).then_some(end)
    };
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i = bytes[i + 1..].iter().position(|b| *b == quote).map_or(bytes.len(), |n| i + n + 2);
            }
            b'.' => i = ident(i + 1).unwrap_or(i + 1),
            _ => match ident(i) {
                Some(end) => {
                    let mut path = vec![&expression[i..end]];
                    i = end;
                    while bytes.get(i) == Some(&b'.') {
                        let Some(end) = ident(i + 1) else { break };
                        path.push(&expression[i + 1..end]);
                        i = end;
                    }
                    paths.push(path);
                }
                None => i += 1,
            },
        }
    }
    paths
}

/// The shortest prefix of `path` that is undefined in `context`; None if it is defined or its
/// first name is not a context variable (a loop variable, a function or a filter's name).
fn first_undefined(context: &minijinja::Value, path: &[&str]) -> Option<String> {
    let mut value = context.get_attr(path.first()?).ok().filter(|v| !v.is_undefined())?;
    for (i, name) in path.iter().enumerate().skip(1) {
        value = value.get_attr(name).ok()?;
        if value.is_undefined() {
            return Some(path[..=i].join("."));
        }
    }
    None
}

/// A template error as one weaver error: the innermost template file and line (inside
/// `include`/`import` too), what went wrong, and the include chain.
///
/// Never uses the alternate Display form or the Debug form of minijinja errors (so never
/// `unwrap` them either): with debug mode on, both print the values of the variables the
/// failing expression referenced, and those can be decrypted secrets.
///
/// `undefined_name` may name what is undefined where minijinja's error does not.
fn template_error(err: &minijinja::Error, undefined_name: impl Fn(&minijinja::Error) -> Option<String>) -> Error {
    let mut frames: Vec<&minijinja::Error> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(frame) = e.downcast_ref::<minijinja::Error>() {
            frames.push(frame);
        }
        current = e.source();
    }
    let innermost = frames.iter().rev().find(|f| f.name().is_some()).copied().unwrap_or(err);
    let reason = match innermost.detail().map(without_operands).or_else(|| undefined_name(innermost)) {
        Some(detail) => format!("{}: {detail}", innermost.kind()),
        None => innermost.kind().to_string(),
    };
    let location =
        |frame: &minijinja::Error| frame.name().map(|name| Location::at(name, frame.line().unwrap_or(0) as u64, 0));
    let mut error = Error::new(format!("template error: {reason}"));
    if let Some(at) = location(innermost) {
        error = error.with_location(at);
    }
    let includers: Vec<String> = frames
        .iter()
        .filter(|f| !std::ptr::eq(**f, innermost) && f.name().is_some() && f.name() != innermost.name())
        .filter_map(|f| location(f).map(|l| l.to_string()))
        .collect();
    if !includers.is_empty() {
        error = error.with_help(format!("included from {}", includers.join(", included from ")));
    }
    error
}

/// minijinja's arithmetic errors quote their operands ("unable to calculate 987654 // 0"),
/// which can be values of secrets: keep the operator only.
fn without_operands(detail: &str) -> String {
    match detail.strip_prefix("unable to calculate ") {
        Some(rest) => match rest.split(' ').nth(1) {
            Some(op) => format!("`{op}` cannot be calculated (division by zero, or a result too large)"),
            None => "a calculation failed (division by zero, or a result too large)".to_string(),
        },
        None => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_paths_skip_literals_and_attributes_of_calls() {
        let paths = variable_paths(r#"env.values.domian | default("a.b") ~ x.y_1 ~ f(z).w"#);
        assert_eq!(paths, [vec!["env", "values", "domian"], vec!["default"], vec!["x", "y_1"], vec!["f"], vec!["z"]]);
    }

    #[test]
    fn include_paths_resolve_next_to_the_includer() {
        assert_eq!(join_path("_helpers.j2", "charts/web/templates/deploy.yaml"), "charts/web/templates/_helpers.j2");
        assert_eq!(join_path("../files/x.j2", "charts/web/templates/deploy.yaml"), "charts/web/files/x.j2");
        assert_eq!(
            join_path("charts/other/templates/_a.j2", "charts/web/templates/d.yaml"),
            "charts/other/templates/_a.j2"
        );
    }
}
