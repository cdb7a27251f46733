//! `weaver import helmfile [FILE]` and `weaver import flux [PATH]`: environment files from a
//! helmfile or a Flux repository. Prints the files written on stdout, and on stderr what was not
//! converted, by `FILE:LINE`: what is said once first, then what shares its reason with others
//! (a setting of every HelmRelease), the reason once above its places (the first three of many),
//! the largest group last; with `-o json`, every place on stdout. Exits 2 when something was
//! left out.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{GlobalArgs, ImportCommand, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::import::{ImportFluxOptions, ImportOptions, NotConverted, import_flux, import_helmfile};

/// `-o json`'s document: every place not converted, one entry each (the text groups the places
/// that share a reason); schema in docs/src/reference/json-output.md.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u32,
    written: &'a [std::path::PathBuf],
    notes: &'a [String],
    not_converted: &'a [NotConverted],
    remote_charts: &'a [String],
}

pub fn run(global: &GlobalArgs, ui: &Ui, command: &ImportCommand) -> Result<ExitCode> {
    let output = match command {
        ImportCommand::Helmfile(args) => args.replace.output,
        ImportCommand::Flux(args) => args.replace.output,
    };
    let report = match command {
        ImportCommand::Helmfile(args) => import_helmfile(&ImportOptions {
            repo: global.repo.clone(),
            helmfile: args.file.clone(),
            force: args.replace.force,
        })?,
        ImportCommand::Flux(args) => import_flux(&ImportFluxOptions {
            repo: global.repo.clone(),
            path: args.path.clone(),
            force: args.replace.force,
            clusters: args.clusters.clone(),
        })?,
    };
    let out = match output {
        ListFormat::Text => report.written.iter().map(|file| format!("wrote {}\n", file.display())).collect(),
        ListFormat::Json => {
            let document = Document {
                schema_version: 1,
                written: &report.written,
                notes: &report.notes,
                not_converted: &report.left_out,
                remote_charts: &report.remote_charts,
            };
            format!("{}\n", serde_json::to_string_pretty(&document).unwrap_or_default())
        }
    };
    super::write_stdout(out.as_bytes())?;
    for line in &report.notes {
        ui.status(line);
    }
    for line in grouped(&report.left_out) {
        ui.status(&line);
    }
    if !report.remote_charts.is_empty() {
        ui.status(&format!(
            "next: `weaver charts lock` pins the remote charts ({}) in charts.lock and pulls them",
            report.remote_charts.join(", ")
        ));
    }
    if report.left_out.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let reasons = report.left_out.iter().map(|l| &l.why).collect::<std::collections::BTreeSet<_>>().len();
    let count = report.left_out.len();
    ui.status(&format!(
        "{count} {}{} (listed above): edit the environment files for what you need of {}",
        if count == 1 { "thing was not converted" } else { "things were not converted" },
        match (count, reasons) {
            (1, _) => String::new(),
            (_, 1) => ", for 1 reason".to_string(),
            (_, n) => format!(", for {n} reasons"),
        },
        if count == 1 { "it" } else { "them" },
    ));
    Ok(ExitCode::from(2))
}

/// How many places of a reason the text shows: past it, the first few and how many more (a
/// setting of every HelmRelease, 200 of them in a home cluster, is one fact); `-o json` lists
/// every place.
const SHOWN_PLACES: usize = 5;

/// What was not converted, as printed: a reason said once first, `not converted: FILE:LINE:
/// what: why`, in the order given; then each reason several share, once, above their places
/// (`  FILE:LINE: what`; past [`SHOWN_PLACES`], the first three and how many more), the groups
/// from the smallest: what is specific to one object comes before what every object of a kind
/// repeats.
fn grouped(left_out: &[NotConverted]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&NotConverted>)> = Vec::new();
    for line in left_out {
        match groups.iter_mut().find(|(why, _)| *why == line.why) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((&line.why, vec![line])),
        }
    }
    // Stable: groups of one size keep the order of their first line.
    groups.sort_by_key(|(_, lines)| lines.len());
    let mut out = Vec::new();
    for (why, lines) in groups {
        match lines.as_slice() {
            [line] => out.push(format!("not converted: {line}")),
            _ => {
                out.push(format!("not converted, {} times: {why}", lines.len()));
                let shown = if lines.len() > SHOWN_PLACES { 3 } else { lines.len() };
                out.extend(
                    lines[..shown].iter().map(|line| format!("  {}:{}: {}", line.file.display(), line.line, line.what)),
                );
                if shown < lines.len() {
                    out.push(format!("  … and {} more (`-o json` lists every place)", lines.len() - shown));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, what: &str, why: &str) -> NotConverted {
        let (file, line) = at.split_once(':').unwrap();
        NotConverted { file: file.into(), line: line.parse().unwrap(), what: what.into(), why: why.into() }
    }

    /// Every line is printed, each reason once: the ones said once first, in order, then the
    /// groups from the smallest.
    #[test]
    fn lines_sharing_a_reason_are_grouped_under_it_after_the_ones_said_once() {
        let left_out = [
            line("a.yaml:3", "HelmRelease a/x: install", "retries"),
            line("a.yaml:9", "HelmRelease a/x: chartRef", "not found: not converted"),
            line("b.yaml:3", "HelmRelease b/y: install", "retries"),
            line("b.yaml:5", "Kustomization b/k: prune", "prunes"),
            line("c.yaml:3", "HelmRelease c/z: install", "retries"),
            line("c.yaml:4", "Kustomization c/k: prune", "prunes"),
            line("d.yaml:1", "Alert d/a", "no controller"),
        ];
        assert_eq!(
            grouped(&left_out),
            [
                "not converted: a.yaml:9: HelmRelease a/x: chartRef: not found: not converted",
                "not converted: d.yaml:1: Alert d/a: no controller",
                "not converted, 2 times: prunes",
                "  b.yaml:5: Kustomization b/k: prune",
                "  c.yaml:4: Kustomization c/k: prune",
                "not converted, 3 times: retries",
                "  a.yaml:3: HelmRelease a/x: install",
                "  b.yaml:3: HelmRelease b/y: install",
                "  c.yaml:3: HelmRelease c/z: install",
            ]
        );
        // Past five places, the first three and how many more.
        let many: Vec<NotConverted> =
            (1..=7).map(|n| line(&format!("h.yaml:{n}"), &format!("HelmRelease h/{n}: install"), "retries")).collect();
        assert_eq!(
            grouped(&many),
            [
                "not converted, 7 times: retries",
                "  h.yaml:1: HelmRelease h/1: install",
                "  h.yaml:2: HelmRelease h/2: install",
                "  h.yaml:3: HelmRelease h/3: install",
                "  … and 4 more (`-o json` lists every place)",
            ]
        );
    }
}
