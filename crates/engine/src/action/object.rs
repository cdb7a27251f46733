//! Object: one live object of an environment's cluster, as `weaver ui` shows it: a Secret's
//! values replaced as the diff replaces them (and kubectl's last-applied annotation, which
//! repeats them, left out), the fields each manager owns instead of `managedFields`, and the
//! object's events.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::render::{IfEmpty, Quotes, RenderOptions, Selection, prepare};
use super::{Context, Keys, Progress, connect, open_project};
use weaver_cluster::{ClusterInfo, ConnectOptions, EVENTS_SHOWN, ObjectEvent, Unserved, newest_first};
use weaver_core::error::{Error, Result};
use weaver_core::limits::RenderLimits;
use weaver_plan::diff::{FieldSet, is_secret, redact_secret_values};

/// Which object, through which environment's cluster.
#[derive(Debug, Clone)]
pub struct ObjectOptions {
    pub repo: PathBuf,
    /// The commit the environment is read at; None: the working tree.
    pub rev: Option<String>,
    pub env: String,
    pub connect: ConnectOptions,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The environment's age identities: every secret it has is decrypted first, so that a
    /// value copied into any object (not only a Secret) is known to the redactor.
    pub keys: Keys,
    /// The bounds of reading the environment (the controller's, for a tenant's repository).
    pub limits: RenderLimits,
}

/// The object as shown, who owns which of its fields, and what the cluster said of it.
pub struct LiveObject {
    pub object: Value,
    pub managers: Vec<Manager>,
    /// Newest first, at most [`EVENTS_SHOWN`].
    pub events: Vec<ObjectEvent>,
}

/// One entry of `managedFields`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Manager {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `status`, `scale`; None for the object itself.
    pub subresource: Option<String>,
    pub time: Option<String>,
    /// The fields owned, as drift writes paths.
    pub fields: Vec<String>,
}

/// Whether the reader may read a resource (group, plural) in a namespace: `Ok(())`, or the
/// error to answer with. The controller's UI asks the API server for its signed-in user.
pub type MayGet<'a> =
    &'a (dyn Fn(&kube::discovery::ApiResource) -> futures::future::BoxFuture<'static, Result<()>> + Sync);

/// The cluster the object was looked for in, and the object, or None when the cluster has no
/// such object. `may_get`, when given, is asked once the kind is resolved and before anything
/// is decrypted or read, so that a reader it refuses learns nothing of the object, not even
/// whether it exists. Every secret of the environment is decrypted first and registered with
/// `cx`'s redactor, as `weaver diff` does before it quotes the cluster.
pub async fn object(
    options: &ObjectOptions,
    may_get: Option<MayGet<'_>>,
    cx: Context<'_>,
) -> Result<(ClusterInfo, Option<LiveObject>)> {
    let on = cx.on;
    let env = open_project(&options.repo, options.rev.as_deref())?.environment(&options.env)?;
    let cluster = connect(options.connect.clone(), &env, "reading from", on).await?;
    let (api_version, kind) = (&options.api_version, &options.kind);
    let served = cluster.resolve(api_version, kind).map_err(|unserved| {
        let help = match unserved {
            Unserved::Kind => "the cluster serves no such kind".to_string(),
            Unserved::Version(versions) => format!("it serves it as {}", versions.join(", ")),
        };
        Error::new(format!("{kind} of {api_version} is not served by the cluster of environment {}", env.name))
            .with_help(help)
    })?;
    if let Some(may_get) = may_get {
        may_get(&served.resource).await?;
    }
    let render = RenderOptions {
        selection: Selection {
            env: options.env.clone(),
            releases: Vec::new(),
            selectors: Vec::new(),
            changed_since: None,
            repo: options.repo.clone(),
            rev: options.rev.clone(),
            loaded: None,
            project: None,
            revision: None,
        },
        keys: options.keys.clone(),
        if_empty: IfEmpty::Warn,
        validate: weaver_validate::Mode::Warn,
        overrides: Default::default(),
        charts: weaver_source::charts::Archives::Machine,
        limits: options.limits.clone(),
    };
    prepare(&render, cx, Quotes::Cluster)?;
    let live = cluster.get(&served, options.namespace.as_deref(), &options.name).await?;
    let Some(live) = live else { return Ok((cluster.info, None)) };
    // A cluster-scoped object's events are kept in `default`, as `kubectl describe` finds them.
    let events_namespace = options.namespace.as_deref().unwrap_or("default");
    let events = match cluster.events(events_namespace, Some((kind, &options.name))).await {
        Ok(events) => newest_first(events, EVENTS_SHOWN),
        Err(err) => {
            on(Progress::Warning(format!("events not shown: {err}")));
            Vec::new()
        }
    };
    Ok((cluster.info, Some(LiveObject { events, ..shown(live) })))
}

/// `live` as shown: without `managedFields` (given by manager), a Secret's values redacted.
pub fn shown(mut live: Value) -> LiveObject {
    let entries = live.pointer_mut("/metadata/managedFields").map(Value::take);
    let text = |entry: &Value, field: &str| entry.get(field).and_then(Value::as_str).map(str::to_string);
    let managers = entries
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|entry| Manager {
            manager: text(entry, "manager").unwrap_or_default(),
            operation: text(entry, "operation").unwrap_or_default(),
            subresource: text(entry, "subresource").filter(|s| !s.is_empty()),
            time: text(entry, "time"),
            fields: entry
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .map(|set| set.field_paths())
                .unwrap_or_default(),
        })
        .collect();
    if let Some(Value::Object(meta)) = live.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
    if is_secret(&live) {
        if let Some(Value::Object(annotations)) = live.pointer_mut("/metadata/annotations") {
            annotations.shift_remove(weaver_plan::diff::LAST_APPLIED);
        }
        redact_secret_values(Some(&mut live), None);
    }
    LiveObject { object: live, managers, events: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_shows_no_value_and_fields_go_by_manager() {
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n",
                "annotations": {weaver_plan::diff::LAST_APPLIED: "{\"data\":{\"k\":\"c2VjcmV0\"}}", "team": "shop"},
                "managedFields": [
                    {"manager": "weaver", "operation": "Apply", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {"f:k": {}}}},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:stringData": {"f:t": {}}}}]},
            "data": {"k": "c2VjcmV0"}, "stringData": {"t": "secret"}});
        let shown = shown(live);
        let text = shown.object.to_string();
        assert!(!text.contains("c2VjcmV0") && !text.contains("\"secret\""), "{text}");
        assert_eq!(shown.object["data"]["k"], weaver_plan::diff::SECRET_MARKER);
        assert_eq!(shown.object["metadata"]["annotations"], json!({"team": "shop"}));
        assert!(shown.object["metadata"].get("managedFields").is_none());
        let owned: Vec<(&str, &[String])> =
            shown.managers.iter().map(|m| (m.manager.as_str(), m.fields.as_slice())).collect();
        assert_eq!(
            owned,
            [("weaver", &["data.k".to_string()][..]), ("kubectl-edit", &["stringData.t".to_string()][..])]
        );
    }

    #[test]
    fn other_kinds_keep_their_values() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        assert_eq!(shown(live).object["data"]["k"], "v");
    }
}
