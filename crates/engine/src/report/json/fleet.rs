//! A fleet's report (`diff`, `drift`, `apply -o json` of several environments): each
//! environment's document, or its error, and their summary.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{ApplyReport, DiffReport, DriftReport};

/// `diff -o json`, `drift -o json` and `apply -o json` of a fleet: each environment's document
/// as one environment's run prints it, or its error.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport<'a, R> {
    pub schema_version: u32,
    /// The command that made it: `weaver report merge` combines only reports of one command.
    pub command: FleetCommand,
    /// The full SHA of the commit the environments were selected (and rendered) from; null
    /// outside git. `weaver report merge` combines only reports of one commit.
    pub commit: Option<Cow<'a, str>>,
    /// Whether the working tree differed from `commit`; null outside git.
    pub dirty: Option<bool>,
    pub summary: FleetSummary,
    pub environments: Vec<FleetEnvironment<'a, R>>,
}

/// Which command's fleet a [`FleetReport`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetCommand {
    Diff,
    Drift,
    Apply,
    Status,
}

impl FleetCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetCommand::Diff => "diff",
            FleetCommand::Drift => "drift",
            FleetCommand::Apply => "apply",
            FleetCommand::Status => "status",
        }
    }
}

/// A fleet's document of any of the commands that make one: what a fleet run prints with
/// `-o json`, and what `weaver report merge` reads and combines.
#[derive(Debug)]
pub enum AnyFleetReport<'a> {
    Diff(FleetReport<'a, DiffReport<'a>>),
    Drift(FleetReport<'a, DriftReport<'a>>),
    Apply(FleetReport<'a, ApplyReport<'a>>),
}

impl AnyFleetReport<'_> {
    pub fn command(&self) -> FleetCommand {
        match self {
            AnyFleetReport::Diff(_) => FleetCommand::Diff,
            AnyFleetReport::Drift(_) => FleetCommand::Drift,
            AnyFleetReport::Apply(_) => FleetCommand::Apply,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetSummary {
    pub environments: usize,
    /// Environments with changes (diff), drift (drift), or that changed something (apply).
    pub changed: usize,
    pub failed: usize,
    /// A fleet apply's other counts; absent from diff and drift.
    #[serde(flatten)]
    pub apply: Option<FleetApplySummary>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetApplySummary {
    pub applied: usize,
    pub interrupted: usize,
    pub skipped: usize,
    pub not_started: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetEnvironment<'a, R> {
    pub environment: Cow<'a, str>,
    /// How the environment of a fleet apply ended; absent from diff and drift.
    #[serde(flatten)]
    pub apply: Option<FleetApplyEnvironment<'a>>,
    /// Why the environment has no report (redacted); null when it has one.
    pub error: Option<Cow<'a, str>>,
    pub report: Option<R>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetApplyEnvironment<'a> {
    pub wave: i32,
    /// Its `needs`, as its file says: of those selected, the environments it was applied after.
    pub needs: Vec<Cow<'a, str>>,
    pub state: FleetApplyState,
    /// Why it was skipped or not started; null otherwise.
    pub reason: Option<Cow<'a, str>>,
}

/// How an environment of a fleet apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FleetApplyState {
    /// Applied completely (its waits passed, with --wait).
    Applied,
    /// Its apply failed, or some of it did (see its report).
    Failed,
    /// Interrupted (SIGINT, SIGTERM): it stopped as an interrupted apply does.
    Interrupted,
    /// Not started: it needs an environment (or one of an earlier wave) that did not apply.
    Skipped,
    /// Not started: the run was interrupted, or stopped by --fail-fast.
    NotStarted,
}

impl<'a, R> FleetReport<'a, R> {
    /// A fleet apply's document: each environment with how it ended, its report (null when it
    /// did not start or failed before applying) and its error.
    pub fn of_apply(
        environments: Vec<FleetEnvironment<'a, R>>,
        changed: usize,
        provenance: Option<&'a weaver_git::Provenance>,
    ) -> FleetReport<'a, R> {
        let count = |state| environments.iter().filter(|e| e.apply.as_ref().is_some_and(|a| a.state == state)).count();
        let (commit, dirty) = super::commit_of(provenance);
        FleetReport {
            schema_version: 1,
            command: FleetCommand::Apply,
            commit,
            dirty,
            summary: FleetSummary {
                environments: environments.len(),
                changed,
                failed: count(FleetApplyState::Failed),
                apply: Some(FleetApplySummary {
                    applied: count(FleetApplyState::Applied),
                    interrupted: count(FleetApplyState::Interrupted),
                    skipped: count(FleetApplyState::Skipped),
                    not_started: count(FleetApplyState::NotStarted),
                }),
            },
            environments,
        }
    }
}

impl<'a, R> FleetReport<'a, R> {
    /// `results`: each environment's result, or its error as shown; `report` makes the
    /// document of a result, `changed` says whether it changes something.
    pub fn new<T>(
        command: FleetCommand,
        provenance: Option<&'a weaver_git::Provenance>,
        results: &'a [(&'a str, std::result::Result<T, String>)],
        report: impl Fn(&'a T, &'a str) -> R,
        changed: impl Fn(&R) -> bool,
    ) -> FleetReport<'a, R> {
        let (commit, dirty) = super::commit_of(provenance);
        let environments: Vec<FleetEnvironment<'a, R>> = results
            .iter()
            .map(|(environment, result)| FleetEnvironment {
                environment: (*environment).into(),
                apply: None,
                error: result.as_ref().err().map(Cow::from),
                report: result.as_ref().ok().map(|r| report(r, environment)),
            })
            .collect();
        FleetReport {
            schema_version: 1,
            command,
            commit,
            dirty,
            summary: FleetSummary {
                environments: environments.len(),
                changed: environments.iter().filter(|e| e.report.as_ref().is_some_and(&changed)).count(),
                failed: environments.iter().filter(|e| e.report.is_none()).count(),
                apply: None,
            },
            environments,
        }
    }
}
