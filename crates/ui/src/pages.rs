//! The pages' models, built from what the actions return, and their rendering: minijinja with
//! HTML auto-escaping (every template is `.html`), the templates and the stylesheet embedded.
//! Nothing here reads the cluster: `http/` runs the actions and hands their results in.

use std::collections::BTreeMap;

use minijinja::Environment as Templates;
use minijinja::value::Serde;
use serde::Serialize;

use weaver_api::environment_sync::{State, state};
use weaver_cluster::ObjectEvent;
use weaver_controllers::gitops::EnvironmentSync;
use weaver_controllers::gitops::plan::short;
use weaver_core::error::{Error, Result};
use weaver_engine::report::json::{DiffReport, DriftReport, EnvsReport, HistoryReport, StatusReport};
use weaver_engine::report::{SideBySide, diff_line_class, side_by_side};
use weaver_project::Environment;

/// The stylesheet every page links: light and dark by `prefers-color-scheme`.
pub const STYLESHEET: &str = include_str!("templates/ui.css");

/// The script of the pages that update themselves (the only one, linked, never inline: the
/// Content-Security-Policy allows this server's scripts alone). The pages read fully without it.
pub const SCRIPT: &str = include_str!("templates/ui.js");

const TEMPLATES: [(&str, &str); 11] = [
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("sync.html", include_str!("templates/sync.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("environment.html", include_str!("templates/environment.html")),
    ("release.html", include_str!("templates/release.html")),
    ("object.html", include_str!("templates/object.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("signed_in.html", include_str!("templates/signed_in.html")),
    ("whoami.html", include_str!("templates/whoami.html")),
];

/// The templates, parsed once.
pub struct Pages {
    templates: Templates<'static>,
}

impl Pages {
    pub fn new() -> Result<Pages> {
        let mut templates = Templates::new();
        // minijinja's own needs a feature that builds another crate; this is its one use.
        templates.add_filter("urlencode", |text: &str| segment(text));
        for (name, source) in TEMPLATES {
            templates
                .add_template(name, source)
                .map_err(|err| Error::new(format!("the UI's template {name} does not parse: {err}")))?;
        }
        Ok(Pages { templates })
    }

    /// `page` rendered with its template (`name`), around `chrome`'s header.
    pub fn render(&self, name: &str, chrome: &Chrome, page: impl Serialize) -> Result<String> {
        let render = || {
            self.templates
                .get_template(name)?
                .render(minijinja::context! { chrome => Serde(chrome), page => Serde(&page) })
        };
        render().map_err(|err| Error::new(format!("rendering the UI's page {name}: {err}")))
    }
}

/// What a path segment or a query value keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `text` as one segment of a path or a query value: all but the unreserved characters
/// percent-encoded.
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// A cluster as a page's header names it: `context (server)`.
pub fn cluster_name(info: &weaver_cluster::ClusterInfo) -> String {
    format!("{} ({})", info.context, info.server)
}

/// What every page shows around its own content.
#[derive(Serialize)]
pub struct Chrome {
    /// The API server the pages read.
    pub server: String,
    /// Errors of the actions the page ran (redacted later with the whole page).
    pub errors: Vec<String>,
    /// What they warned of: a part of the page left out, and why.
    pub warnings: Vec<String>,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    /// Where the page's live updates come from (server-sent events), when it has them.
    pub live: Option<String>,
    /// The user signed in to the controller's UI (`weaver ui` has none: it is the kubeconfig's).
    pub user: Option<String>,
    /// The path an environment's pages are under (`/environments/ENV`; in the controller
    /// `/syncs/NAMESPACE/NAME/environments/ENV`); empty on other pages.
    pub env_path: String,
}

/// The sign-in page: the OIDC provider's issuer when users may sign in there.
#[derive(Serialize)]
pub struct SignInPage {
    pub issuer: Option<String>,
}

/// The "who am I" page: the Kubernetes identity SubjectAccessReviews ask of, how it was
/// named, and when the session ends.
#[derive(Serialize)]
pub struct WhoAmIPage {
    pub user: String,
    pub groups: Vec<String>,
    /// The OIDC issuer signed in at; None: a token.
    pub issuer: Option<String>,
    pub mapping: Option<ClaimMappingView>,
    /// RFC 3339, UTC.
    pub ends_at: String,
}

/// An ID token's claims' mapping as the "who am I" page shows it: the prefixes in effect.
#[derive(Serialize)]
pub struct ClaimMappingView {
    pub username_claim: String,
    pub username_prefix: String,
    pub groups_claim: Option<String>,
    pub groups_prefix: String,
    pub required_claims: Vec<String>,
}

/// What the fleet page selects: `?label=SELECTOR&state=STATE`.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub label: Option<String>,
    pub state: Option<SyncState>,
}

/// An EnvironmentSync's state in one word, as the fleet page filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    Ready,
    Progressing,
    AwaitingApproval,
    Failed,
    Suspended,
}

impl SyncState {
    pub const ALL: [SyncState; 5] = [
        SyncState::Ready,
        SyncState::Progressing,
        SyncState::AwaitingApproval,
        SyncState::Failed,
        SyncState::Suspended,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncState::Ready => "ready",
            SyncState::Progressing => "progressing",
            SyncState::AwaitingApproval => "awaiting-approval",
            SyncState::Failed => "failed",
            SyncState::Suspended => "suspended",
        }
    }

    pub fn parse(word: &str) -> Option<SyncState> {
        SyncState::ALL.into_iter().find(|s| s.name() == word)
    }

    /// Suspended first (nothing moves), then a plan waiting for a person, then the Ready
    /// condition as `weaver sync get` reads it. A condition of a generation before (a plan just
    /// approved, its Ready still `AwaitingApproval`) says nothing of the spec as it is: progressing
    /// until the controller has seen it, as kstatus reads it.
    fn of(sync: &EnvironmentSync, state: &State) -> SyncState {
        if sync.spec.suspend {
            SyncState::Suspended
        } else if awaiting(sync).is_some() {
            SyncState::AwaitingApproval
        } else if state.up_to_date {
            SyncState::Ready
        } else if state.observed && (state.stalled || (state.ready == "False" && !state.reconciling)) {
            SyncState::Failed
        } else {
            SyncState::Progressing
        }
    }
}

/// The digest of the plan waiting for approval, when one waits and is not approved yet.
fn awaiting(sync: &EnvironmentSync) -> Option<&str> {
    let plan = sync.status.as_ref()?.pending_plan.as_ref()?;
    (sync.spec.approved_plan.as_deref() != Some(plan.digest.as_str())).then_some(plan.digest.as_str())
}

/// One row of the fleet's EnvironmentSyncs.
#[derive(Serialize)]
pub struct SyncRow {
    pub namespace: String,
    pub name: String,
    pub state: SyncState,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The revision applied, 12 characters of it.
    pub revision: Option<String>,
    pub environments_ready: Option<String>,
    pub drift: Option<String>,
    pub pending: Option<String>,
    /// The last apply's time and result.
    pub last: Option<(String, String)>,
    pub labels: BTreeMap<String, String>,
}

/// A preview of an EnvironmentSync (`spec.previews`), as its status says it.
#[derive(Serialize)]
pub struct PreviewRow {
    /// The EnvironmentSync's namespace and name.
    pub sync_namespace: String,
    pub sync: String,
    pub name: String,
    pub branch: String,
    /// 12 characters of its commit.
    pub commit: String,
    pub state: String,
    pub namespace: String,
    pub url: Option<String>,
    /// The URL is an http(s) one, made a link: a status anyone may write could hold a
    /// `javascript:` one, which is only shown.
    pub link: bool,
    pub message: Option<String>,
}

impl PreviewRow {
    /// Every preview of `sync`, sorted by name.
    fn of(sync: &EnvironmentSync) -> Vec<PreviewRow> {
        let previews = sync.status.as_ref().map(|s| s.previews.as_slice()).unwrap_or_default();
        previews.iter().map(|preview| PreviewRow::new(sync, preview)).collect()
    }

    fn new(sync: &EnvironmentSync, preview: &weaver_controllers::gitops::api::PreviewStatus) -> PreviewRow {
        let url = preview.url.clone();
        let link = url.as_deref().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
        PreviewRow {
            sync_namespace: sync.metadata.namespace.clone().unwrap_or_default(),
            sync: sync.metadata.name.clone().unwrap_or_default(),
            name: preview.name.clone(),
            branch: preview.branch.clone(),
            commit: short(&preview.commit).to_string(),
            state: preview.state.to_string(),
            namespace: preview.namespace.clone(),
            url,
            link,
            message: preview.message.clone(),
        }
    }
}

impl SyncRow {
    fn new(sync: &EnvironmentSync) -> SyncRow {
        let read = state(sync);
        let status = sync.status.as_ref();
        SyncRow {
            namespace: sync.metadata.namespace.clone().unwrap_or_default(),
            name: sync.metadata.name.clone().unwrap_or_default(),
            state: SyncState::of(sync, &read),
            reason: read.reason,
            message: read.message,
            revision: status.and_then(|s| s.last_applied_revision.as_deref()).map(|r| short(r).to_string()),
            environments_ready: status.and_then(|s| s.environments_ready.clone()),
            drift: status.and_then(|s| s.drift.as_ref()).map(|d| d.summary.clone()),
            pending: awaiting(sync).map(str::to_string),
            last: status.and_then(|s| s.history.last()).map(|h| (h.time.clone(), h.result.to_string())),
            labels: sync.metadata.labels.clone().unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
pub struct FleetPage<'a> {
    pub label: Option<&'a str>,
    pub state: Option<SyncState>,
    pub states: Vec<&'static str>,
    pub syncs: Vec<SyncRow>,
    /// The previews of the EnvironmentSyncs listed.
    pub previews: Vec<PreviewRow>,
    /// The local repository's environments the label selects.
    pub environments: Option<EnvsReport<'a>>,
}

/// The fleet: the EnvironmentSyncs in the state asked for (the label selected them already,
/// on the server), and the repository's environments.
pub fn fleet<'a>(filter: &'a Filter, syncs: &[EnvironmentSync], environments: &'a [Environment]) -> FleetPage<'a> {
    let listed: Vec<(&EnvironmentSync, SyncRow)> = syncs
        .iter()
        .map(|sync| (sync, SyncRow::new(sync)))
        .filter(|(_, row)| filter.state.is_none_or(|s| row.state == s))
        .collect();
    FleetPage {
        label: filter.label.as_deref(),
        state: filter.state,
        states: SyncState::ALL.iter().map(|s| s.name()).collect(),
        previews: listed.iter().flat_map(|(sync, _)| PreviewRow::of(sync)).collect(),
        syncs: listed.into_iter().map(|(_, row)| row).collect(),
        environments: Some(EnvsReport::new(environments)).filter(|r| !r.environments.is_empty()),
    }
}

/// What a done action says on the page it leads back to (`?done=`): fixed words, never text of
/// the request.
pub fn done_message(action: &str) -> Option<&'static str> {
    Some(match action {
        "approve" => "Approved: the controller applies the plan at its next reconcile.",
        "reconcile" => "Reconcile requested.",
        "suspend" => "Suspended: the controller no longer fetches or applies it.",
        "resume" => "Resumed, and a reconcile requested.",
        "rollback" => "Rolled back: the revision was applied again, and recorded as a new one.",
        _ => return None,
    })
}

#[derive(Serialize)]
pub struct SyncPage<'a> {
    pub row: SyncRow,
    pub sync: &'a EnvironmentSync,
    pub done: Option<&'static str>,
    /// Newest first.
    pub history: Vec<&'a weaver_controllers::gitops::api::HistoryEntry>,
    /// The actions the user may take (`approve`, `reconcile`, `suspend`, `resume`), and why
    /// not the others, when some are refused.
    pub actions: Vec<&'static str>,
    pub actions_refused: Option<String>,
    /// What auto-promotion and image updates last did, for those the status has.
    pub pushes: Vec<PushSection<'a>>,
    pub previews: Vec<PreviewRow>,
}

/// The last auto-promotion or image update: its condition, what it pushed, and what it saw.
#[derive(Serialize)]
pub struct PushSection<'a> {
    /// `promotion` or `image-updates`, the part's id.
    pub id: &'static str,
    pub title: &'static str,
    pub condition: Option<&'a weaver_api::environment_sync::Condition>,
    pub branch: &'a str,
    /// Its first 12 characters.
    pub last_pushed_commit: Option<&'a str>,
    pub last_push_time: Option<&'a str>,
    pub last_attempt_time: &'a str,
    /// Promotion: a line per target (`staging from dev: gates passed` / `failed: soak`); image
    /// updates: the newest allowed tag per environment and image.
    pub seen: Vec<String>,
    /// What `changes` are: the pins the last push changed (image updates), or each target's
    /// pins that change once it is promoted (promotion).
    pub changes_title: &'static str,
    pub changes: Vec<String>,
}

fn pushes(sync: &EnvironmentSync) -> Vec<PushSection<'_>> {
    let Some(status) = &sync.status else { return Vec::new() };
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
    let mut pushes = Vec::new();
    if let Some(p) = &status.promotion {
        let seen = p.targets.iter().map(|t| format!("{} from {}: {}", t.environment, t.from, t.verdict()));
        pushes.push(PushSection {
            id: "promotion",
            title: "Promotion",
            condition: condition(weaver_api::conditions::PROMOTED),
            branch: &p.push.branch,
            last_pushed_commit: p.push.last_pushed_commit.as_deref().map(short),
            last_push_time: p.push.last_push_time.as_deref(),
            last_attempt_time: &p.push.last_attempt_time,
            seen: seen.collect(),
            changes_title: "Pins each target's promotion changes:",
            changes: p.changes(),
        });
    }
    if let Some(u) = &status.image_updates {
        pushes.push(PushSection {
            id: "image-updates",
            title: "Image updates",
            condition: condition(weaver_api::conditions::IMAGES_UPDATED),
            branch: &u.push.branch,
            last_pushed_commit: u.push.last_pushed_commit.as_deref().map(short),
            last_push_time: u.push.last_push_time.as_deref(),
            last_attempt_time: &u.push.last_attempt_time,
            seen: u.images.iter().map(ToString::to_string).collect(),
            changes_title: "Pins the last push changed:",
            changes: u.changes.iter().map(ToString::to_string).collect(),
        });
    }
    pushes
}

pub fn sync<'a>(
    sync: &'a EnvironmentSync,
    done: Option<&'static str>,
    (actions, actions_refused): (Vec<&'static str>, Option<String>),
) -> SyncPage<'a> {
    let history = sync.status.iter().flat_map(|s| s.history.iter().rev()).collect();
    let previews = PreviewRow::of(sync);
    SyncPage { row: SyncRow::new(sync), sync, done, history, actions, actions_refused, pushes: pushes(sync), previews }
}

/// An action asked for, to confirm: what it does, the form that does it and where Cancel leads.
#[derive(Serialize)]
pub struct ConfirmPage<'a> {
    /// `Approve EnvironmentSync team/shop?`
    pub title: String,
    pub what: &'static str,
    /// The form's target, and its fields besides the CSRF token.
    pub post: String,
    pub fields: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub back: String,
    /// For an approval, the plan the digest names, when it still waits.
    pub plan: Option<&'a weaver_controllers::gitops::api::PendingPlan>,
    /// What else to know before confirming (a rollback in the controller: until when it stays).
    pub note: Option<String>,
}

/// The path of an EnvironmentSync's page.
pub fn sync_path(ns: &str, name: &str) -> String {
    format!("/syncs/{}/{}", segment(ns), segment(name))
}

/// The words of an EnvironmentSync action's confirmation and its button, or None for an action
/// there is not.
pub fn sync_action(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        "approve" => ("Approve this plan: the controller applies it, and only it.", "Approve"),
        "reconcile" => {
            ("Ask the controller to reconcile now (the annotation `weaver sync reconcile` sets).", "Reconcile")
        }
        "suspend" => ("Suspend: the controller stops fetching and applying (spec.suspend: true).", "Suspend"),
        "resume" => ("Resume: the controller fetches and applies again, starting now.", "Resume"),
        _ => return None,
    })
}

/// What a rollback's confirmation says.
pub const ROLLBACK: &str = "Re-apply this revision's recorded objects, pruning what it did not have, and record the \
    result as a new revision (as `weaver rollback` does).";

/// Whether a release's page offers a rollback to each revision but the deployed one, and what
/// it says of rollbacks there.
#[derive(Serialize)]
pub struct RollbackOffer {
    pub offered: bool,
    /// In the controller: until when a rollback stays, or why none is offered now.
    pub note: Option<String>,
}

impl RollbackOffer {
    /// `weaver ui`'s: nothing but the user applies the working tree.
    pub const LOCAL: RollbackOffer = RollbackOffer { offered: true, note: None };

    /// The controller's, of an environment EnvironmentSync `ns/name` applies: only while it is
    /// suspended, as its next reconcile would apply git's commit again over a rollback
    /// (`refused`: why not, when it is not).
    pub fn of_sync(ns: &str, name: &str, refused: Option<String>) -> RollbackOffer {
        match refused {
            Some(why) => RollbackOffer { offered: false, note: Some(why) },
            None => RollbackOffer { offered: true, note: Some(rollback_stays(ns, name)) },
        }
    }
}

/// Until when a rollback from the controller's page stays: the EnvironmentSync's resume.
pub fn rollback_stays(ns: &str, name: &str) -> String {
    format!(
        "EnvironmentSync {ns}/{name} is suspended: a rollback stays until it is resumed, and its next reconcile then \
         applies the commit git names again (push a revert to keep an older revision). A rollback is applied as \
         the ServiceAccount the EnvironmentSync applies as."
    )
}

/// One live object: its YAML as shown, and the fields each manager owns.
#[derive(Serialize)]
pub struct ObjectPage<'a> {
    pub env: &'a str,
    pub title: String,
    pub yaml: String,
    pub managers: &'a [weaver_engine::action::object::Manager],
    pub events: &'a [ObjectEvent],
}

impl<'a> ObjectPage<'a> {
    pub fn new(
        env: &'a str,
        wanted: &weaver_engine::action::object::ObjectOptions,
        live: &'a weaver_engine::action::object::LiveObject,
    ) -> ObjectPage<'a> {
        let place = wanted.namespace.as_ref().map_or(wanted.name.clone(), |ns| format!("{ns}/{}", wanted.name));
        ObjectPage {
            env,
            title: format!("{} {place}", wanted.kind),
            yaml: weaver_yaml::to_yaml_string(&live.object),
            managers: &live.managers,
            events: &live.events,
        }
    }
}

/// A release of a local environment: its recorded revisions, newest first, each but the
/// deployed one with a rollback to it.
#[derive(Serialize)]
pub struct ReleasePage<'a> {
    pub history: HistoryReport<'a>,
    /// By revision of `history`, oldest first: what it changed against the one before.
    pub changes: Vec<DiffView<'a>>,
    pub layout: Layout,
    pub done: Option<&'static str>,
    pub rollback: RollbackOffer,
}

/// A local environment: its releases' health, the plan of the working tree against the live
/// cluster, its drift. Each part is there when its action succeeded (the page names the
/// errors of the others).
#[derive(Serialize)]
pub struct EnvironmentPage<'a> {
    pub name: &'a str,
    pub status: Option<StatusReport<'a>>,
    pub plan: Option<DiffView<'a>>,
    pub drift: Option<DriftReport<'a>>,
    /// What the cluster said of the objects, newest first.
    pub events: &'a [ObjectEvent],
}

/// How long a page's wait for a change lasts before the server answers that nothing changed
/// (the browser asks again at once, from where the wait ended).
pub const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(50);

/// How soon the browser asks again for the next change (`retry:`), in milliseconds.
const LIVE_RETRY: u32 = 1000;

/// The marks a browser sent back (`Last-Event-ID`: the `id:` of the last event it had), or
/// None when they are not marks this server could have sent.
pub fn marks_of(last_event_id: &str) -> Option<Vec<String>> {
    let marks: Vec<String> = last_event_id.split(',').map(str::to_string).collect();
    let mark_ok = |m: &String| {
        (1..=64).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (marks.len() <= 256 && marks.iter().all(mark_ok)).then_some(marks)
}

/// A page's live update as server-sent events: the marks to wait from next as the event's id
/// (the browser sends them back when it asks again), and `changed` when something did, what.
pub fn live_event(marks: &[String], changed: Option<&str>) -> String {
    let mut text = format!("retry: {LIVE_RETRY}\nid: {}\n", marks.join(","));
    if let Some(what) = changed {
        text.push_str(&format!("event: changed\ndata: {}\n", one_line(what)));
    }
    text + "\n"
}

/// Live updates that stopped, and why: the page says so, and its script asks no more.
pub fn live_failed(why: &str) -> String {
    format!("retry: 60000\nevent: failed\ndata: {}\n\n", one_line(why))
}

/// `text` on one line: a line break would end an event's data.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// How a page lays out diffs: `?diff=unified` (the CLI's) or `?diff=side-by-side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    #[default]
    Unified,
    SideBySide,
}

impl Layout {
    /// The layout a query value names; the CLI's for any other.
    pub fn parse(word: Option<&str>) -> Layout {
        match word {
            Some("side-by-side") => Layout::SideBySide,
            _ => Layout::Unified,
        }
    }
}

/// A plan as the CLI shows it (the pending plan, or what a revision changed): its objects that
/// change, each with the CLI's diff, in lines for the page to colour, or side by side.
#[derive(Serialize)]
pub struct DiffView<'a> {
    pub report: DiffReport<'a>,
    pub changes: bool,
    pub layout: Layout,
    /// By object of the report: the unified diff's lines, with their classes.
    pub diffs: Vec<Vec<(&'static str, String)>>,
    /// By object of the report, side by side (empty in the unified layout).
    pub sides: Vec<Vec<SideBySide>>,
}

impl<'a> DiffView<'a> {
    pub fn new(report: DiffReport<'a>, layout: Layout) -> DiffView<'a> {
        let text = |object: &weaver_engine::report::json::DiffObject| object.diff.clone().unwrap_or_default();
        let diffs = report
            .objects
            .iter()
            .map(|object| text(object).lines().map(|l| (diff_line_class(l), l.to_string())).collect())
            .collect();
        let sides = match layout {
            Layout::SideBySide => report.objects.iter().map(|object| side_by_side(&text(object))).collect(),
            Layout::Unified => Vec::new(),
        };
        DiffView { changes: report.has_changes(), report, layout, diffs, sides }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sync(spec: serde_json::Value, status: serde_json::Value) -> EnvironmentSync {
        serde_json::from_value(json!({
            "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
            "metadata": {"name": "shop", "namespace": "team", "generation": 1},
            "spec": spec, "status": status,
        }))
        .unwrap()
    }

    fn base_spec() -> serde_json::Value {
        json!({"source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}}, "environments": ["dev"]})
    }

    fn ready(status: &str, reason: &str) -> serde_json::Value {
        json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": "m",
            "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1}]})
    }

    #[test]
    fn the_state_word_is_suspended_then_awaiting_then_ready_or_failed() {
        let mut spec = base_spec();
        let plan = json!({"digest": "sha256:aa", "revision": "0123456789abcdef", "releases": []});
        let mut waiting = ready("False", "AwaitingApproval");
        waiting["pendingPlan"] = plan;
        let row =
            |spec: &serde_json::Value, status: &serde_json::Value| SyncRow::new(&sync(spec.clone(), status.clone()));
        assert_eq!(row(&spec, &ready("True", "ReconciliationSucceeded")).state, SyncState::Ready);
        assert_eq!(row(&spec, &ready("False", "ApplyFailed")).state, SyncState::Failed);
        assert_eq!(row(&spec, &json!({})).state, SyncState::Progressing);
        let awaiting = row(&spec, &waiting);
        assert_eq!((awaiting.state, awaiting.pending.as_deref()), (SyncState::AwaitingApproval, Some("sha256:aa")));
        spec["approvedPlan"] = json!("sha256:aa");
        assert_eq!(row(&spec, &waiting).pending, None, "an approved plan waits for nobody");
        // Approved (the spec's generation 2) before the controller's next reconcile: its Ready
        // of generation 1 is no failure.
        let mut approved = sync(spec.clone(), waiting.clone());
        approved.metadata.generation = Some(2);
        assert_eq!(SyncRow::new(&approved).state, SyncState::Progressing);
        let mut failed = sync(spec.clone(), ready("False", "ApplyFailed"));
        failed.status.as_mut().unwrap().observed_generation = Some(2);
        failed.metadata.generation = Some(2);
        assert_eq!(SyncRow::new(&failed).state, SyncState::Failed, "then its apply failed");
        spec["suspend"] = json!(true);
        assert_eq!(row(&spec, &waiting).state, SyncState::Suspended);
    }

    #[test]
    fn every_state_word_reads_back() {
        for state in SyncState::ALL {
            assert_eq!(SyncState::parse(state.name()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.name()));
        }
        assert_eq!(SyncState::parse("unknown"), None);
    }

    #[test]
    fn live_events_carry_their_marks_and_one_line_of_what_changed() {
        let marks = vec!["41".to_string(), "7".to_string()];
        assert_eq!(live_event(&marks, None), "retry: 1000\nid: 41,7\n\n");
        assert_eq!(
            live_event(&marks, Some("Deployment web\ndata: injected")),
            "retry: 1000\nid: 41,7\nevent: changed\ndata: Deployment web data: injected\n\n"
        );
        assert_eq!(marks_of("41,7"), Some(marks));
        for sent in ["", "41,", "4 1", "41\nid: 2", &"9".repeat(65)] {
            assert_eq!(marks_of(sent), None, "{sent:?}");
        }
        assert!(live_failed("forbidden\nhelp: ask").ends_with("data: forbidden help: ask\n\n"));
    }

    #[test]
    fn a_refusals_help_is_a_line_of_its_own() {
        let pages = Pages::new().unwrap();
        let chrome = Chrome {
            server: "https://k8s".into(),
            errors: vec!["ann may not see EnvironmentSync team/shop\nhelp: that needs the verb get".into()],
            warnings: vec!["slow\nhelp: <wait>".into()],
            csrf: "t".into(),
            live: None,
            user: Some("ann".into()),
            env_path: String::new(),
        };
        let html = pages.render("base.html", &chrome, ()).unwrap();
        assert!(html.contains("team&#x2f;shop<br>help: that needs the verb get</p>"), "{html}");
        assert!(html.contains("slow<br>help: &lt;wait&gt;</p>"), "{html}");
    }

    #[test]
    fn templates_escape_what_they_show() {
        let pages = Pages::new().unwrap();
        let chrome = Chrome {
            server: "https://k8s".into(),
            errors: vec!["<script>x</script>".into()],
            warnings: vec!["<b>w</b>".into()],
            csrf: "t".into(),
            live: None,
            user: Some("<b>u</b>".into()),
            env_path: String::new(),
        };
        let filter = Filter { label: Some("a=\"><b>".into()), state: None };
        let html = pages.render("fleet.html", &chrome, fleet(&filter, &[], &[])).unwrap();
        assert!(!html.contains("<script>x") && html.contains("&lt;script&gt;x"), "{html}");
        assert!(!html.contains("<b>w") && html.contains("&lt;b&gt;w"), "{html}");
        assert!(!html.contains("\"><b>") && !html.contains("<b>u"), "{html}");
    }
}
