//! `weaver render-worker`: the worker's side of [`crate::isolated`], which renders weaver
//! charts' templates for the process that started it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Engine;
use crate::filters::ChartFiles;
use crate::isolated::{Answer, Asked, WireError, WireLimits};

/// The worker's side: reads the limits and templates, then answers each release asked for
/// until its input ends. An error here is the protocol's (the parent says the worker ended).
pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut lines = input.lines();
    let mut next = || lines.next().transpose();
    let (Some(limits), Some(templates)) = (next()?, next()?) else { return Ok(()) };
    let limits: WireLimits = serde_json::from_str(&limits)?;
    let templates: Vec<(String, String)> = serde_json::from_str(&templates)?;
    let engine = Engine::of_templates(templates, &limits.limits());
    while let Some(line) = next()? {
        let asked: Asked = serde_json::from_str(&line)?;
        let answer = match &engine {
            Ok(engine) => answer(engine, asked),
            Err(error) => Answer { texts: Vec::new(), error: Some(error.into()) },
        };
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

fn answer(engine: &Engine, asked: Asked) -> Answer {
    let context = crate::serde_value(&asked.context);
    let context = match asked.files {
        Some((chart, files)) => {
            let files = minijinja::Value::from_object(ChartFiles { chart, files: Arc::new(files) });
            minijinja::context! { files => files, ..context }
        }
        None => context,
    };
    let templates: Vec<&Path> = asked.templates.iter().map(PathBuf::as_path).collect();
    let mut texts = Vec::new();
    let rendered = engine.render_release(&templates, &context, &asked.release, &mut |_, text| {
        texts.push(text);
        Ok(())
    });
    Answer { texts, error: rendered.err().as_ref().map(WireError::from) }
}
