//! `notifications:` of an environment: webhooks told of applies, drift found and drift
//! corrected. This module reads and checks them; what is sent, and how, is `weaver_engine::notify`'s.
//!
//! A webhook URL holds its credential (Slack's is a token in the path), so it is never written
//! in the file: `url` names where to read it, an environment variable (`fromEnv`) or a key of
//! a SOPS-encrypted file (`fromSecret`), and no message ever quotes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::ignore::location;
use crate::source::PathRef;
use crate::source::is_plain_name;
use weaver_core::error::{Error, Location, Result};

/// How long a notification may take, retries included, unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A notification as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct NotificationFile {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    url: Option<Spanned<Value>>,
    events: Option<Vec<Spanned<String>>>,
    timeout: Option<Spanned<String>>,
}

/// One notification, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub name: String,
    pub kind: Kind,
    pub url: UrlSource,
    /// The events it is sent for.
    pub events: BTreeSet<EventKind>,
    /// How long sending may take, retries included.
    pub timeout: Duration,
    /// Where it is written: what messages name it by.
    pub at: Location,
}

/// The body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// weaver's own JSON document (Flux's `generic` provider, Argo CD's `webhook` service).
    Json,
    /// Slack's incoming-webhook message: `text` and `blocks`.
    Slack,
}

/// Where the webhook's URL is read from.
#[derive(Debug, Clone, PartialEq)]
pub enum UrlSource {
    /// `fromEnv: VAR`: an environment variable of the machine running weaver.
    Env(String),
    /// `fromSecret: {file, key}`: a top-level key of a SOPS-encrypted file of the repository.
    Secret { file: PathRef, key: String },
}

/// What a notification is sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// An apply that changed something or failed (never a dry run, nor one with nothing to do).
    Apply,
    /// Drift found (`weaver drift`, and `drift --correct --dry-run`).
    Drift,
    /// Drift found and corrected, or not entirely (`weaver drift --correct`).
    DriftCorrected,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Apply, EventKind::Drift, EventKind::DriftCorrected];

    /// As files and payloads write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Apply => "apply",
            EventKind::Drift => "drift",
            EventKind::DriftCorrected => "driftCorrected",
        }
    }
}

impl UrlSource {
    /// What a message names the URL by: never the URL.
    pub fn describe(&self) -> String {
        match self {
            UrlSource::Env(var) => format!("environment variable {var}"),
            UrlSource::Secret { file, key } => format!("key `{key}` of {}", file.path.display()),
        }
    }
}

const URL_HELP: &str = "a webhook URL holds its credential: write `url: {fromEnv: VARIABLE}` (an environment variable) or `url: {fromSecret: {file: secrets/<file>.yaml, key: <key>}}` (a SOPS-encrypted file)";

impl Notification {
    pub(super) fn parse(file: &Path, spanned: Spanned<NotificationFile>) -> Result<Notification> {
        let at = location(file, &spanned.referenced);
        let fields = spanned.value;
        let name = fields.name.value;
        if !is_plain_name(&name) {
            return Err(Error::at(
                location(file, &fields.name.referenced),
                format!("{} is not a notification name", quoted(&name)),
            )
            .with_help("name it with letters, digits, '-', '_' or '.': messages about it name it"));
        }
        let kind = match fields.kind {
            None => return Err(Error::at(at, format!("notification `{name}` has no `type`")).with_help(KIND_HELP)),
            Some(kind) => match kind.value.as_str() {
                "json" => Kind::Json,
                "slack" => Kind::Slack,
                other => {
                    return Err(Error::at(
                        location(file, &kind.referenced),
                        format!(
                            "notification `{name}`: {} is not a notification type",
                            quoted(&format!("type: {other}"))
                        ),
                    )
                    .with_help(KIND_HELP));
                }
            },
        };
        let Some(url) = fields.url else {
            return Err(Error::at(at, format!("notification `{name}` has no `url`")).with_help(URL_HELP));
        };
        let url = url_source(file, &name, url)?;
        let events = match fields.events {
            None => EventKind::ALL.into_iter().collect(),
            Some(list) => {
                let mut events = BTreeSet::new();
                for event in list {
                    let kind = EventKind::ALL.into_iter().find(|k| k.as_str() == event.value).ok_or_else(|| {
                        Error::at(
                            location(file, &event.referenced),
                            format!("notification `{name}`: {} is not an event", quoted(&event.value)),
                        )
                        .with_help(EVENTS_HELP)
                    })?;
                    events.insert(kind);
                }
                if events.is_empty() {
                    return Err(Error::at(at, format!("notification `{name}` lists no event"))
                        .with_help(format!("{EVENTS_HELP}; leave `events` out for all of them")));
                }
                events
            }
        };
        let timeout = match fields.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => crate::parse_duration(&text.value).map_err(|problem| {
                let problem = if is_url(&text.value) { "a URL is not a duration".to_string() } else { problem };
                Error::at(location(file, &text.referenced), format!("notification `{name}`: `timeout`: {problem}"))
            })?,
        };
        Ok(Notification { name, kind, url, events, timeout, at })
    }
}

const KIND_HELP: &str =
    "write `type: json` (weaver's JSON document, for any webhook) or `type: slack` (a Slack incoming webhook)";
const EVENTS_HELP: &str = "events are `apply`, `drift` and `driftCorrected`";

/// `url:` as written, checked; a URL written in the file is refused without quoting it.
fn url_source(file: &Path, name: &str, url: Spanned<Value>) -> Result<UrlSource> {
    let at = location(file, &url.referenced);
    let refuse = |message: String| Err(Error::at(at.clone(), message).with_help(URL_HELP));
    let Value::Object(fields) = url.value else {
        return refuse(format!(
            "notification `{name}`: `url` is written in the environment file, where anyone who reads the repository reads its credential"
        ));
    };
    let mut entries = fields.into_iter();
    let (Some((source, value)), None) = (entries.next(), entries.next()) else {
        return refuse(format!("notification `{name}`: `url` takes exactly one of `fromEnv` and `fromSecret`"));
    };
    match (source.as_str(), value) {
        ("fromEnv", Value::String(var)) if crate::is_variable_name(&var) => Ok(UrlSource::Env(var)),
        ("fromEnv", _) => refuse(format!("notification `{name}`: `fromEnv` is not an environment variable's name")),
        ("fromSecret", Value::Object(secret)) => {
            let text = |field: &str| secret.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
            let (Some(path), Some(key)) = (text("file"), text("key")) else {
                return refuse(format!("notification `{name}`: `fromSecret` takes `file` and `key`"));
            };
            if let Some(extra) = secret.keys().find(|k| !["file", "key"].contains(&k.as_str())) {
                return refuse(format!("notification `{name}`: `fromSecret` has an unknown field {}", quoted(extra)));
            }
            // The URL pasted where its place is named: later messages would quote it.
            if let Some(field) = [("file", path), ("key", key)].into_iter().find_map(|(f, v)| is_url(v).then_some(f)) {
                return refuse(format!(
                    "notification `{name}`: `fromSecret.{field}` is a URL; `file` and `key` name where the URL is kept"
                ));
            }
            Ok(UrlSource::Secret { file: PathRef { path: PathBuf::from(path), at: at.clone() }, key: key.to_string() })
        }
        ("fromSecret", _) => refuse(format!("notification `{name}`: `fromSecret` takes `file` and `key`")),
        (other, _) => refuse(format!("notification `{name}`: `url` has an unknown field {}", quoted(other))),
    }
}

/// The notifications of one file, with unique names.
pub(super) fn parse_all(file: &Path, list: Vec<Spanned<NotificationFile>>) -> Result<Vec<Notification>> {
    let mut notifications: Vec<Notification> = Vec::new();
    for spanned in list {
        let notification = Notification::parse(file, spanned)?;
        if let Some(first) = notifications.iter().find(|n| n.name == notification.name) {
            let what = format!("notification `{}`", first.name);
            return Err(super::defined_twice(notification.at, &what, "this file", &first.at));
        }
        notifications.push(notification);
    }
    Ok(notifications)
}

/// Whether `text` is a URL, which an error must not quote: it may be a webhook's, credential
/// included, written in the wrong place.
fn is_url(text: &str) -> bool {
    text.contains("://")
}

/// `text` in backquotes, as an error quotes what is written; a URL only as "a URL".
fn quoted(text: &str) -> String {
    if is_url(text) { "a URL".to_string() } else { format!("`{text}`") }
}
