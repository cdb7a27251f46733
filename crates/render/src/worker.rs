//! `weaver render-worker`: the worker's side of [`crate::isolated`], which renders weaver
//! charts' templates for the process that started it.

use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::engine::Engine;
use crate::filters::ChartFiles;
use crate::isolated::{Answer, Request, WireError, WireLimits};

/// The worker's side: reads the limits and templates, then answers each request until its
/// input ends. An error here is the protocol's (the parent says the worker ended).
pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    // SAFETY: prctl with these arguments only sets a flag of this process. Its memory holds
    // decrypted values: never dumped (exec reset what the parent set).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let mut lines = input.lines();
    let mut next = || lines.next().transpose();
    let (Some(limits), Some(templates)) = (next()?, next()?) else { return Ok(()) };
    let limits: WireLimits = serde_json::from_str(&limits)?;
    let templates: Vec<(String, String)> = serde_json::from_str(&templates)?;
    let engine = Engine::of_templates(templates, &limits.limits());
    let mut release = (String::new(), minijinja::Value::UNDEFINED);
    while let Some(line) = next()? {
        let (answer, text) = match (serde_json::from_str(&line)?, &engine) {
            (_, Err(error)) => (Answer { error: Some(WireError::from(error)), ..Answer::default() }, None),
            (Request::Release { release: name, context, files }, Ok(_)) => {
                release = (name, context_of(context, files));
                (Answer::default(), None)
            }
            (Request::Template { template, room }, Ok(engine)) => {
                match engine.render(&template, &release.1, room, &release.0) {
                    Ok(text) => (Answer { length: Some(text.len()), error: None }, Some(text)),
                    Err(error) => (Answer { error: Some(WireError::from(&error)), ..Answer::default() }, None),
                }
            }
        };
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
        if let Some(text) = text {
            output.write_all(text.as_bytes())?;
        }
        output.flush()?;
    }
    Ok(())
}

/// The context as the parent's render has it: `files` an object again.
fn context_of(
    context: serde_json::Map<String, serde_json::Value>,
    files: Option<(String, std::collections::BTreeMap<String, String>)>,
) -> minijinja::Value {
    let context = crate::serde_value(&context);
    match files {
        Some((chart, files)) => {
            let files = minijinja::Value::from_object(ChartFiles { chart, files: Arc::new(files) });
            minijinja::context! { files => files, ..context }
        }
        None => context,
    }
}
