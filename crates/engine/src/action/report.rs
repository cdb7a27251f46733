//! `weaver report merge`: the `-o json` reports of a fleet's shards (`--shard`, `--wave`), read
//! back into the types they were written from and combined into the one report of the whole
//! fleet. Only reports of one command, one commit (and one diff mode, or one kind of apply)
//! whose environments do not overlap are combined: anything else would be a report of no run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::report::json::{AnyFleetReport, FleetCommand, FleetReport, FleetSummary};
use weaver_core::error::{Error, Location, Result};

/// The schema version of the fleet reports this weaver writes and reads.
const SCHEMA_VERSION: u32 = 1;

/// One file's report.
struct Read {
    path: PathBuf,
    report: AnyFleetReport<'static>,
}

/// Reads each of `files` and combines them, in the order of a fleet run of them all: by
/// environment name (diff, drift), by wave and `needs` (apply).
pub fn merge(files: &[PathBuf]) -> Result<AnyFleetReport<'static>> {
    let reads: Vec<Read> = files.iter().map(|path| read(path)).collect::<Result<_>>()?;
    let first = reads.first().ok_or_else(|| Error::new("no report to merge: give the shards' JSON files"))?;
    for other in &reads[1..] {
        if other.report.command() != first.report.command() {
            return Err(Error::new(format!(
                "{} is a report of `weaver {}`, {} of `weaver {}`: merge combines the reports of one command",
                first.path.display(),
                first.report.command().as_str(),
                other.path.display(),
                other.report.command().as_str()
            )));
        }
        let (a, b) = (commit(&first.report), commit(&other.report));
        if a != b {
            let show =
                |c: Option<&str>| c.map_or_else(|| "no commit (outside git)".to_string(), |c| format!("commit {c}"));
            return Err(Error::new(format!(
                "{} is of {}, {} of {}: merge combines the shards of one run, of one commit",
                first.path.display(),
                show(a),
                other.path.display(),
                show(b)
            ))
            .with_help("merge the reports of the pipeline run of one commit"));
        }
    }
    let mut owner: HashMap<String, &Path> = HashMap::new();
    for read in &reads {
        for env in environments(&read.report) {
            if let Some(other) = owner.insert(env.clone(), &read.path) {
                return Err(Error::new(format!(
                    "environment `{env}` is in both {} and {}: the shards of a fleet never overlap",
                    other.display(),
                    read.path.display()
                ))
                .with_help("give every shard the same selection and the same --shard COUNT, each its own INDEX"));
            }
        }
    }
    let command = first.report.command();
    let reports = reads.into_iter().map(|r| (r.path, r.report));
    Ok(match command {
        FleetCommand::Diff => {
            let fleets = reports.map(|(path, r)| match r {
                AnyFleetReport::Diff(f) => (path, f),
                _ => unreachable!("one command, checked above"),
            });
            let fleet = combine(fleets.collect(), |r| r.mode.to_string(), "planned in mode")?;
            AnyFleetReport::Diff(fleet)
        }
        FleetCommand::Drift => {
            let fleets = reports.map(|(path, r)| match r {
                AnyFleetReport::Drift(f) => (path, f),
                _ => unreachable!("one command, checked above"),
            });
            AnyFleetReport::Drift(combine(fleets.collect(), |_| String::new(), "")?)
        }
        FleetCommand::Apply => {
            let fleets = reports.map(|(path, r)| match r {
                AnyFleetReport::Apply(f) => (path, f),
                _ => unreachable!("one command, checked above"),
            });
            let dry_run = |r: &crate::report::json::ApplyReport| {
                if r.dry_run { "a server dry run (--dry-run)" } else { "an apply" }.to_string()
            };
            AnyFleetReport::Apply(combine(fleets.collect(), dry_run, "is")?)
        }
        FleetCommand::Status => unreachable!("status reports are refused as they are read"),
    })
}

fn commit<'r>(report: &'r AnyFleetReport) -> Option<&'r str> {
    match report {
        AnyFleetReport::Diff(f) => f.commit.as_deref(),
        AnyFleetReport::Drift(f) => f.commit.as_deref(),
        AnyFleetReport::Apply(f) => f.commit.as_deref(),
    }
}

fn environments(report: &AnyFleetReport) -> Vec<String> {
    fn names<R>(fleet: &FleetReport<R>) -> Vec<String> {
        fleet.environments.iter().map(|e| e.environment.to_string()).collect()
    }
    match report {
        AnyFleetReport::Diff(f) => names(f),
        AnyFleetReport::Drift(f) => names(f),
        AnyFleetReport::Apply(f) => names(f),
    }
}

/// The fleets of `files` as one: their environments together (in a fleet run's order), their
/// counts added up. `kind` says how each environment's report was made (diff's mode, apply's
/// dry run), which must be the same for all of them (`what` introduces it in the error).
fn combine<R>(
    files: Vec<(PathBuf, FleetReport<'static, R>)>,
    kind: impl Fn(&R) -> String,
    what: &str,
) -> Result<FleetReport<'static, R>> {
    let mut first_kind: Option<(String, &Path)> = None;
    for (path, fleet) in &files {
        for report in fleet.environments.iter().filter_map(|e| e.report.as_ref()) {
            let this = kind(report);
            match &first_kind {
                Some((kind, first)) if *kind != this => {
                    return Err(Error::new(format!(
                        "{} {what} {kind}, {} {what} {this}: merge combines the shards of one run",
                        first.display(),
                        path.display()
                    )));
                }
                Some(_) => {}
                None => first_kind = Some((this, path)),
            }
        }
    }
    let mut files = files.into_iter().map(|(_, fleet)| fleet);
    let mut merged = files.next().expect("at least one report");
    for fleet in files {
        add(&mut merged.summary, &fleet.summary);
        merged.dirty = match (merged.dirty, fleet.dirty) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
        merged.environments.extend(fleet.environments);
    }
    // A fleet run's order: by name, and a fleet apply's as `action::fleet` orders it.
    merged.environments.sort_by(|a, b| a.environment.cmp(&b.environment));
    if merged.command == FleetCommand::Apply {
        let index: HashMap<&str, usize> =
            merged.environments.iter().enumerate().map(|(i, e)| (e.environment.as_ref(), i)).collect();
        let needs: Vec<Vec<usize>> = merged
            .environments
            .iter()
            .map(|e| e.apply.iter().flat_map(|a| &a.needs).filter_map(|n| index.get(n.as_ref()).copied()).collect())
            .collect();
        // One without its wave (a document edited by hand) goes first.
        let waves: Vec<i32> =
            merged.environments.iter().map(|e| e.apply.as_ref().map_or(i32::MIN, |a| a.wave)).collect();
        let order = crate::action::fleet::apply_sequence(&waves, &needs).map_err(|cycle| {
            let names: Vec<&str> = cycle.iter().map(|&i| merged.environments[i].environment.as_ref()).collect();
            Error::new(format!("the reports' environments need each other in a cycle: {}", names.join(" → ")))
        })?;
        let mut environments: Vec<Option<_>> = merged.environments.drain(..).map(Some).collect();
        merged.environments = order.into_iter().filter_map(|i| environments[i].take()).collect();
    }
    Ok(merged)
}

/// `summary` with `other`'s counts added: the shards' environments do not overlap.
fn add(summary: &mut FleetSummary, other: &FleetSummary) {
    summary.environments += other.environments;
    summary.changed += other.changed;
    summary.failed += other.failed;
    if let (Some(a), Some(b)) = (&mut summary.apply, &other.apply) {
        a.applied += b.applied;
        a.interrupted += b.interrupted;
        a.skipped += b.skipped;
        a.not_started += b.not_started;
    }
}

/// One file's report, checked to be a fleet report of this schema before it is read whole.
fn read(path: &Path) -> Result<Read> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::io("cannot read", path, err))?;
    // What the report says of itself, read first so that a report of another kind or of a newer
    // schema is refused as such rather than as a missing field.
    let document: serde_json::Value = parse(path, &text, "JSON document")?;
    let field = |name: &str| document.get(name);
    let not_fleet = || {
        Error::at(
            Location::file(path),
            "not a weaver fleet report: it has no `schemaVersion` and `command` (a `-o json` report of `weaver diff`, `drift` or `apply` of a fleet)",
        )
    };
    let version = field("schemaVersion").and_then(serde_json::Value::as_u64).ok_or_else(not_fleet)?;
    if version > u64::from(SCHEMA_VERSION) {
        return Err(Error::at(
            Location::file(path),
            format!("a report of schema version {version}: this weaver reads version {SCHEMA_VERSION}"),
        )
        .with_help("merge with a weaver as new as the one that wrote the report"));
    }
    let command = match (field("command"), field("environment").and_then(serde_json::Value::as_str)) {
        (Some(command), _) => command,
        (None, Some(environment)) => {
            return Err(Error::at(
                Location::file(path),
                format!(
                    "the report of one environment (`{environment}`), not of a fleet: merge combines fleet reports"
                ),
            )
            .with_help("a selection with --shard, a glob, a selector or several --env names writes a fleet report"));
        }
        (None, None) => return Err(not_fleet()),
    };
    let command = FleetCommand::deserialize(command).map_err(|_| {
        Error::at(
            Location::file(path),
            format!("unknown `command` {command}: expected \"diff\", \"drift\" or \"apply\""),
        )
    })?;
    let report = match command {
        FleetCommand::Diff => AnyFleetReport::Diff(parse(path, &text, "weaver diff fleet report")?),
        FleetCommand::Drift => AnyFleetReport::Drift(parse(path, &text, "weaver drift fleet report")?),
        FleetCommand::Apply => AnyFleetReport::Apply(parse(path, &text, "weaver apply fleet report")?),
        FleetCommand::Status => {
            return Err(Error::at(
                Location::file(path),
                "a `weaver status` report: merge combines diff, drift and apply reports",
            )
            .with_help("status only reads: run it over the whole selection at once"));
        }
    };
    Ok(Read { path: path.to_path_buf(), report })
}

/// `text` as a `T`, or an error naming the file, line and column.
fn parse<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| {
        let message = err.to_string();
        // The location goes into the error's own place, not twice.
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
        Error::at(Location::at(path, err.line() as u64, err.column() as u64), format!("not a {what}: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::failure;
    use serde_json::{Value, json};

    /// A fleet report of `command` (schema version 1, outside git) whose environments, each
    /// (name, wave, needs), failed before they had a report.
    fn fleet(command: &str, environments: &[(&str, i32, &[&str])]) -> Value {
        let apply = command == "apply";
        let environments: Vec<Value> = environments
            .iter()
            .map(|(name, wave, needs)| {
                let mut environment = json!({"environment": name, "error": "failed to render", "report": null});
                if apply {
                    environment["wave"] = json!(wave);
                    environment["needs"] = json!(needs);
                    environment["state"] = json!("failed");
                    environment["reason"] = Value::Null;
                }
                environment
            })
            .collect();
        let mut summary = json!({"environments": environments.len(), "changed": 0, "failed": environments.len()});
        if apply {
            for count in ["applied", "interrupted", "skipped", "notStarted"] {
                summary[count] = json!(0);
            }
        }
        json!({"schemaVersion": 1, "command": command, "commit": null, "dirty": null, "summary": summary,
            "environments": environments})
    }

    /// `reports` written as the files `shard-1.json`, … of a directory, merged; an error's
    /// message with the directory left out.
    fn merged(reports: &[Value]) -> std::result::Result<AnyFleetReport<'static>, String> {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (1..=reports.len()).map(|n| dir.path().join(format!("shard-{n}.json"))).collect();
        for (file, report) in files.iter().zip(reports) {
            std::fs::write(file, report.to_string()).unwrap();
        }
        let prefix = format!("{}/", dir.path().display());
        merge(&files).map_err(|err| failure::<()>(Err(err)).replace(&prefix, ""))
    }

    fn names<'a, R>(fleet: &'a FleetReport<'_, R>) -> Vec<&'a str> {
        fleet.environments.iter().map(|e| e.environment.as_ref()).collect()
    }

    #[test]
    fn shards_are_one_fleet_in_a_fleet_runs_order_with_their_counts_added() {
        let drift = merged(&[fleet("drift", &[("b", 0, &[])]), fleet("drift", &[("a", 0, &[]), ("c", 0, &[])])]);
        let Ok(AnyFleetReport::Drift(drift)) = drift else { panic!("not a drift fleet: {drift:?}") };
        assert_eq!(names(&drift), ["a", "b", "c"]);
        assert_eq!((drift.summary.environments, drift.summary.failed), (3, 3));
        // An apply's: by wave, then each after those it needs.
        let shards =
            [fleet("apply", &[("a", 0, &["c"]), ("d", 1, &[])]), fleet("apply", &[("c", 0, &[]), ("b", 1, &[])])];
        let Ok(AnyFleetReport::Apply(apply)) = merged(&shards) else { panic!("not an apply fleet") };
        assert_eq!(names(&apply), ["c", "a", "b", "d"]);
    }

    #[test]
    fn reports_that_are_not_shards_of_one_run_are_refused() {
        let drift = || fleet("drift", &[("a", 0, &[])]);
        let refused = |reports: &[Value]| merged(reports).expect_err("merged");
        assert_eq!(refused(&[]), "no report to merge: give the shards' JSON files");
        assert_eq!(
            refused(&[drift(), fleet("diff", &[("b", 0, &[])])]),
            "shard-1.json is a report of `weaver drift`, shard-2.json of `weaver diff`: merge combines the reports of one command"
        );
        assert!(
            refused(&[drift(), drift()]).starts_with("environment `a` is in both shard-1.json and shard-2.json"),
            "overlapping shards merged"
        );
        let mut committed = drift();
        committed["commit"] = json!("3a5a33c661fbb5892d455fb48f5cc86af5f919ea");
        assert!(refused(&[drift(), committed]).contains("merge combines the shards of one run, of one commit"));
        let mut newer = drift();
        newer["schemaVersion"] = json!(2);
        assert!(refused(&[newer]).starts_with("a report of schema version 2: this weaver reads version 1"));
        assert!(refused(&[fleet("status", &[])]).starts_with("a `weaver status` report"));
        let one = json!({"schemaVersion": 1, "environment": "dev"});
        assert!(refused(&[one]).starts_with("the report of one environment (`dev`), not of a fleet"));
        let mut broken = drift();
        broken["summary"] = json!("none");
        assert!(
            refused(&[broken]).starts_with("not a weaver drift fleet report: invalid type"),
            "a broken report read"
        );
    }
}
