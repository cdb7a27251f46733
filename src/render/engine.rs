//! The minijinja environment: every chart's templates compiled once, strict undefined, no
//! auto-escaping, helm's filters; and the translation of template errors into weaver errors.

use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::error::{Error, Location, Result};
use crate::project::Chart;

pub struct Engine {
    env: Environment<'static>,
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
    pub fn new<'a>(charts: impl IntoIterator<Item = &'a Arc<Chart>>) -> Result<Engine> {
        let mut env = Environment::new();
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
        for chart in charts {
            for template in &chart.templates {
                env.add_template_owned(template_name(&template.path), template.source.clone())
                    .map_err(|e| template_error(&e))?;
            }
        }
        Ok(Engine { env })
    }

    pub fn render(&self, template: &Path, context: &minijinja::Value) -> Result<String> {
        let name = template_name(template);
        let compiled = self.env.get_template(&name).map_err(|e| template_error(&e))?;
        compiled.render(context).map_err(|e| {
            let error = template_error(&e);
            // Macro calls into an imported file are not wrapped like includes are, so the
            // error only names the macro's file: say which template was being rendered.
            match (&error.help, &error.location) {
                (None, Some(at)) if at.path != template => error.with_help(format!("while rendering {name}")),
                _ => error,
            }
        })
    }
}

/// A template error as one weaver error: the innermost template file and line (inside
/// `include`/`import` too), what went wrong, and the include chain.
///
/// Never uses the alternate Display form or the Debug form of minijinja errors (so never
/// `unwrap` them either): with debug mode on, both print the values of the variables the
/// failing expression referenced, and those can be decrypted secrets.
pub fn template_error(err: &minijinja::Error) -> Error {
    let mut frames: Vec<&minijinja::Error> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(frame) = e.downcast_ref::<minijinja::Error>() {
            frames.push(frame);
        }
        current = e.source();
    }
    let innermost = frames.iter().rev().find(|f| f.name().is_some()).copied().unwrap_or(err);
    let reason = match innermost.detail() {
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

#[cfg(test)]
mod tests {
    use super::*;

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
