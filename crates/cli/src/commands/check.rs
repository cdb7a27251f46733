//! `weaver check`: whether the cluster can run weaver's in-cluster half (`--pre`) or the one
//! installed works, a line per finding and what to do for each that fails; `-o json` (schema
//! in docs/src/reference/json-output.md). Exit 0 when every finding is ok, 1 when one is not,
//! as `flux check`.

use std::process::ExitCode;

use super::{Style, Ui, block_on, connect_options, write_stdout};
use crate::cli::{CheckArgs, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::check::{CheckOptions, Checked, check};

pub fn run(ui: &Ui, args: &CheckArgs) -> Result<ExitCode> {
    let options =
        CheckOptions { connect: connect_options(&args.cluster), namespace: args.namespace.clone(), pre: args.pre };
    let checked = block_on(check(&options))?;
    let text = match args.output {
        ListFormat::Json => {
            let report = serde_json::json!({"schemaVersion": 1, "ok": checked.ok(), "findings": checked.findings});
            format!("{}\n", serde_json::to_string_pretty(&report).unwrap_or_default())
        }
        ListFormat::Text => text(ui, &checked),
    };
    write_stdout(text.as_bytes())?;
    Ok(if checked.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn text(ui: &Ui, checked: &Checked) -> String {
    let mut text = String::new();
    for finding in &checked.findings {
        let (mark, style) = if finding.ok { ("✔", Style::Green) } else { ("✗", Style::Red) };
        text.push_str(&format!("{} {}: {}\n", ui.paint(ui.color_stdout, style, mark), finding.subject, finding.detail));
        if let Some(fix) = &finding.fix {
            text.push_str(&format!("  to do: {fix}\n"));
        }
    }
    let failed = checked.findings.iter().filter(|finding| !finding.ok).count();
    text.push_str(&match failed {
        0 => "all checks passed\n".to_string(),
        n => format!("{n} of {} checks failed\n", checked.findings.len()),
    });
    text
}
