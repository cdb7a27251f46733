//! What a notification tells: a [`Message`], made from an apply's or a drift's result, and
//! weaver's JSON document of it (schema version 1, docs/src/reference/json-output.md), which
//! embeds the `-o json` report of the command that sent it.

use serde::Serialize;
use serde_json::Value;

use crate::apply::{ApplyOptions, Report as ApplyResults};
use crate::report::json::{ApplyReport, DriftReport};
use weaver_plan::release::drift::{CorrectionResult, Report as DriftResults, State};
use weaver_project::notifications::EventKind;
use weaver_secrets::Redactor;

/// The most lines a message lists (failed releases, drifted objects); more are counted.
const MAX_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// An apply that went through, drift corrected.
    Info,
    /// Drift found.
    Warning,
    /// An apply or a correction that failed, or was interrupted.
    Error,
}

/// One event of one environment, for every notification subscribed to it.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: EventKind,
    pub severity: Severity,
    pub environment: String,
    /// The kubeconfig context applied to or compared with.
    pub context: String,
    /// The commit applied (apply only; null outside git).
    pub commit: Option<String>,
    /// One line saying what happened.
    pub summary: String,
    /// What went wrong or drifted, one line each, at most `MAX_LINES` and a count of the rest.
    pub lines: Vec<String>,
    /// `weaver apply -o json` or `weaver drift -o json` of the run, redacted.
    report: Value,
    /// When the message was made (RFC 3339, UTC).
    time: String,
}

/// weaver's JSON document (`type: json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    schema_version: u32,
    notification: &'a str,
    event: &'static str,
    severity: Severity,
    environment: &'a str,
    context: &'a str,
    commit: Option<&'a str>,
    time: &'a str,
    summary: &'a str,
    apply: Option<&'a Value>,
    drift: Option<&'a Value>,
}

impl Message {
    /// An apply's result. `lock_lost`: another apply took the environment's lock meanwhile.
    pub fn applied(
        report: &ApplyResults,
        options: &ApplyOptions,
        context: &str,
        lock_lost: bool,
        redactor: &Redactor,
    ) -> Message {
        let t = report.totals();
        let counts =
            format!("{} created, {} configured, {} pruned, {} failed", t.created, t.configured, t.pruned, t.failed);
        let commit = options.commit.as_deref().map_or_else(String::new, |c| {
            let dirty = if options.dirty == Some(true) { ", with uncommitted changes" } else { "" };
            format!(" (commit {}{dirty})", &c[..c.len().min(12)])
        });
        let env = &options.environment;
        let (severity, summary) = if report.interrupted {
            (Severity::Error, format!("the apply of environment {env}{commit} was interrupted: {counts}"))
        } else if report.failed() || lock_lost {
            (Severity::Error, format!("the apply of environment {env}{commit} failed: {counts}"))
        } else {
            (Severity::Info, format!("environment {env} applied{commit}: {counts}"))
        };
        // The report redacts its server messages (as `-o json` shows them): the lines quote it.
        let json = ApplyReport::new(report, options, redactor);
        let mut lines: Vec<String> =
            json.releases.iter().filter_map(|r| r.error.as_ref().map(|e| format!("release {}: {e}", r.name))).collect();
        if lock_lost {
            lines.push("another apply took the environment's lock: this one stopped starting new work".to_string());
        }
        Message {
            event: EventKind::Apply,
            severity,
            environment: env.clone(),
            context: context.to_string(),
            commit: options.commit.clone(),
            summary,
            lines: bounded(lines),
            report: serde_json::to_value(&json).expect("a report is JSON"),
            time: now(),
        }
    }

    /// Drift found, and corrected if `report` says a correction ran (and was not a dry run).
    pub fn drift(report: &DriftResults, redactor: &Redactor) -> Message {
        let s = report.summary();
        let counts = format!("{} drifted, {} missing, {} in sync", s.drifted, s.missing, s.in_sync);
        let env = &report.environment;
        let correction = report.correction.filter(|c| !c.dry_run);
        let (event, severity, summary) = match correction {
            None => (EventKind::Drift, Severity::Warning, format!("drift in environment {env}: {counts}")),
            Some(c) if c.failed => (
                EventKind::DriftCorrected,
                Severity::Error,
                format!("drift in environment {env}, not all corrected: {counts}"),
            ),
            Some(_) => {
                (EventKind::DriftCorrected, Severity::Info, format!("drift in environment {env} corrected: {counts}"))
            }
        };
        let mut lines = Vec::new();
        for release in &report.releases {
            for object in release.objects.iter().filter(|o| o.state != State::InSync) {
                let sign = if object.state == State::Missing { "missing" } else { "drifted" };
                let corrected = match object.correction.as_ref().map(|c| c.result) {
                    None => "",
                    Some(CorrectionResult::Corrected) => ", corrected",
                    Some(CorrectionResult::Unchanged) => ", unchanged",
                    Some(CorrectionResult::Failed) => ", correction failed",
                    Some(CorrectionResult::NotApplied) => ", not corrected",
                };
                let name = crate::report::object_name(&object.api_version, &object.key);
                lines.push(format!("{sign}: {name} (release {}{corrected})", release.name));
            }
        }
        Message {
            event,
            severity,
            environment: env.clone(),
            context: report.context.clone(),
            commit: None,
            summary,
            lines: bounded(lines),
            report: redacted(&DriftReport::new(report), redactor),
            time: now(),
        }
    }

    /// weaver's JSON document, as notification `name` sends it.
    pub fn json(&self, name: &str) -> Vec<u8> {
        let (apply, drift) = match self.event {
            EventKind::Apply => (Some(&self.report), None),
            EventKind::Drift | EventKind::DriftCorrected => (None, Some(&self.report)),
        };
        let payload = Payload {
            schema_version: 1,
            notification: name,
            event: self.event.as_str(),
            severity: self.severity,
            environment: &self.environment,
            context: &self.context,
            commit: self.commit.as_deref(),
            time: &self.time,
            summary: &self.summary,
            apply,
            drift,
        };
        serde_json::to_vec(&payload).expect("a payload is JSON")
    }
}

/// `lines`, the first [`MAX_LINES`] of them and a count of the others.
fn bounded(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("… and {more} more"));
    }
    lines
}

/// A drift report as JSON, every value the redactor knows masked (before JSON escapes them):
/// unlike an apply's, it is made without the redactor, and its fields' values may be decrypted.
fn redacted(report: &impl Serialize, redactor: &Redactor) -> Value {
    let mut value = serde_json::to_value(report).expect("a report is JSON");
    redactor.redact_value(&mut value);
    value
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::time::Duration;

    use super::*;
    use crate::apply::{HelmAdoption, HelmRecords, ObjectResult, Outcome, ReleaseResult};
    use weaver_core::manifest::ObjectKey;
    use weaver_plan::release::adopt::HelmRelease;

    /// A failed apply's server messages may quote a decrypted value: neither the message's
    /// lines nor the report it embeds, in either format, carry it.
    #[test]
    fn a_failed_apply_s_messages_are_sent_redacted() {
        let secret = "s3cr3t-db-passw0rd";
        let redactor = Redactor::new();
        redactor.register(secret);
        // A decrypted value as short as a count: the report's numbers stay numbers.
        redactor.register("1");
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("apps".into()),
            name: "db".into(),
        };
        let quoting = format!("ConfigMap apps/db is invalid: data.password: Invalid value: \"{secret}\"");
        let report = ApplyResults {
            releases: vec![ReleaseResult {
                name: "db".into(),
                namespace: "apps".into(),
                revision: None,
                status: None,
                rollback_of: None,
                error: Some(quoting.clone()),
                objects: vec![ObjectResult {
                    release: "db".into(),
                    api_version: "v1".into(),
                    key,
                    outcome: Outcome::Failed,
                    message: Some(quoting.clone()),
                    ignored: 0,
                }],
                hooks: Vec::new(),
                helm: Some(HelmAdoption {
                    helm: HelmRelease {
                        name: "db".into(),
                        namespace: "apps".into(),
                        revision: 3,
                        status: "deployed".into(),
                        secrets: Vec::new(),
                    },
                    adopted_before: false,
                    taken: 0,
                    not_taken: 1,
                    left: 0,
                    records: HelmRecords::NotDeleted {
                        reason: format!("release `db` did not apply completely: {quoting}"),
                    },
                }),
            }],
            interrupted: false,
            retried_requests: 0,
            lock_taken_over: None,
        };
        let options = ApplyOptions {
            applied_by: "alice@build-7 pid 4242".into(),
            environment: "dev".into(),
            lock_namespace: "weaver".into(),
            dry_run: false,
            force_conflicts: false,
            prune: true,
            concurrency: 1,
            wait: false,
            timeout: Duration::from_secs(60),
            health_checks: HashMap::new(),
            commit: None,
            dirty: None,
            rollback_of: None,
            correction: false,
            overrides: Vec::new(),
            sensitive: HashSet::new(),
            forget_helm_release: false,
            take_ownership: false,
            record_key: None,
        };
        let message = Message::applied(&report, &options, "kind-dev", false, &redactor);
        assert_eq!(message.severity, Severity::Error);
        assert_eq!(message.lines.len(), 1, "{:?}", message.lines);
        assert!(message.lines[0].starts_with("release db: ConfigMap apps/db is invalid"), "{:?}", message.lines);
        let json = String::from_utf8(message.json("ops")).unwrap();
        assert!(json.contains("data.password: Invalid value"), "{json}");
        let slack = String::from_utf8(super::super::slack::body(&message)).unwrap();
        assert!(slack.contains("data.password: Invalid value"), "{slack}");
        let document: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(document["apply"]["summary"]["failed"], 1, "{json}");
        let reason = document["apply"]["releases"][0]["helm"]["records"]["reason"].as_str().unwrap();
        assert!(reason.contains("data.password: Invalid value"), "{json}");
        for sent in [message.lines.join("\n"), json, slack] {
            assert!(!sent.contains(secret), "{sent}");
        }
    }
}
