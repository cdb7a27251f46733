//! Releases: templates inherited as helmfile merges them, each release's chart, `needs`, `set`
//! entries and patches.

use std::path::Path;
use std::rc::Rc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location};
use weaver_helm::strvals::{self, Kind};
use weaver_project::source::is_plain_name;
use weaver_project::values::merge_overrides;

use super::super::node::{Key, Node, line};
use super::{
    Chart, Convert, Converted, Found, Offline, Shared, escape, flag_reason, is_default, variable_in, with_common_labels,
};

impl Convert<'_> {
    /// A release with the release templates it inherits (its `inherit:`, after the state's
    /// `defaultInherit`) merged in, as helmfile merges them: a field the release or an earlier
    /// template has stays, lists are appended, a template's `except` fields are left out.
    pub(super) fn inherit(
        &mut self,
        node: &Spanned<Node>,
        templates: &[(String, Spanned<Node>)],
        default: &[String],
    ) -> Spanned<Node> {
        let Node::Map(fields) = &node.value else { return node.clone() };
        let mut inherits: Vec<(String, Vec<String>, u64)> =
            default.iter().map(|name| (name.clone(), Vec::new(), line(node))).collect();
        if let Some((key, value)) = fields.iter().find(|(k, _)| k.value.0 == "inherit") {
            let items = match &value.value {
                Node::List(items) => items.clone(),
                _ => vec![value.clone()],
            };
            for item in &items {
                let (mut name, mut except) = (None, Vec::new());
                for (k, v) in self.entries(item, "inherit") {
                    match (k.value.0.as_str(), &v.value) {
                        ("template", _) => name = self.text(v, "inherit template"),
                        ("except", Node::List(keys)) => {
                            except = keys.iter().filter_map(|k| self.text(k, "inherit except")).collect()
                        }
                        _ => {}
                    }
                }
                match name {
                    Some(name) => {
                        inherits.retain(|(n, _, _)| *n != name);
                        inherits.push((name, except, line(key)));
                    }
                    None => self.leave(line(item), "inherit", "names no `template`"),
                }
            }
        }
        if inherits.is_empty() {
            return node.clone();
        }
        let mut merged: Vec<(Spanned<Key>, Spanned<Node>)> = Vec::new();
        for (name, except, at) in inherits {
            let Some((_, template)) = templates.iter().find(|(n, _)| *n == name) else {
                self.leave(at, format!("inherit `{name}`"), "no such template in `templates:`: not inherited");
                continue;
            };
            if let Node::Map(entries) = &template.value {
                let kept = entries.iter().filter(|(k, _)| !except.contains(&k.value.0) && k.value.0 != "inherit");
                fill(&mut merged, kept.cloned().collect());
            }
        }
        fill(&mut merged, fields.iter().filter(|(k, _)| k.value.0 != "inherit").cloned().collect());
        /// `from`'s fields into `into`, as mergo merges without overriding: lists appended,
        /// mappings key by key, any other field kept where `into` has it.
        fn fill(into: &mut Vec<(Spanned<Key>, Spanned<Node>)>, from: Vec<(Spanned<Key>, Spanned<Node>)>) {
            for (key, value) in from {
                match into.iter_mut().find(|(k, _)| k.value.0 == key.value.0) {
                    None => into.push((key, value)),
                    Some((_, have)) => match (&mut have.value, value.value) {
                        (Node::List(items), Node::List(more)) => items.extend(more),
                        (Node::Map(entries), Node::Map(more)) => fill(entries, more),
                        (Node::Null, other) => have.value = other,
                        _ => {}
                    },
                }
            }
        }
        Spanned { value: Node::Map(merged), referenced: node.referenced, defined: node.defined }
    }

    /// A release with the templates of its fields rendered, as helmfile renders a release's
    /// own once the state is read (`{{ .Release.Name }}` in a values file's path): over the
    /// environment's data and the release's name, namespace, labels and chart. Inline values are
    /// data, not templates. A field that does not render is listed, and the release left out.
    pub(super) fn release_templates(&mut self, node: &Spanned<Node>, shared: &Shared) -> Option<Spanned<Node>> {
        let Node::Map(fields) = &node.value else { return Some(node.clone()) };
        fn has_template(node: &Node) -> bool {
            match node {
                Node::Scalar(Value::String(s)) => s.contains("{{"),
                Node::List(items) => items.iter().any(|i| has_template(&i.value)),
                Node::Map(entries) => entries.iter().any(|(_, v)| has_template(&v.value)),
                _ => false,
            }
        }
        let templated = |(key, value): &(Spanned<Key>, Spanned<Node>)| match (key.value.0.as_str(), &value.value) {
            ("hooks", _) => false,
            ("values", Node::List(items)) => {
                items.iter().any(|i| matches!(&i.value, Node::Scalar(_)) && has_template(&i.value))
            }
            _ => has_template(&value.value),
        };
        if !fields.iter().any(templated) {
            return Some(node.clone());
        }
        let field = |name: &str| {
            fields.iter().find(|(k, _)| k.value.0 == name).map(|(_, v)| match &v.value {
                Node::Scalar(Value::String(s)) => Value::String(s.clone()),
                Node::Map(entries) => Value::Object(
                    entries
                        .iter()
                        .filter_map(|(k, v)| match &v.value {
                            Node::Scalar(value) => Some((
                                k.value.0.clone(),
                                Value::String(value.as_str().map_or_else(|| value.to_string(), str::to_string)),
                            )),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => Value::Null,
            })
        };
        let mut data = shared.data.clone();
        data["Release"] = serde_json::json!({
            "Name": field("name").unwrap_or_default(),
            "Namespace": field("namespace").unwrap_or_else(|| Value::String(String::new())),
            "Labels": with_common_labels(
                match field("labels") {
                    Some(Value::Object(own)) => own,
                    _ => Map::new(),
                },
                &shared.common_labels,
            ),
            "Chart": field("chart").unwrap_or_default(),
            "KubeContext": field("kubeContext").unwrap_or_else(|| Value::String(String::new())),
        });
        let name = field("name").and_then(|n| n.as_str().map(str::to_string)).unwrap_or_default();
        let mut out = node.clone();
        let Node::Map(fields) = &mut out.value else { return Some(out) };
        let mut failed = None;
        for (key, value) in fields.iter_mut() {
            let mut render = |text: &mut String, at: u64| {
                if !text.contains("{{") || failed.is_some() {
                    return;
                }
                match self.files.render(&self.ctx.file, self.ctx.dir(), text, &data) {
                    Ok(rendered) => *text = rendered,
                    Err(err) => failed = Some((at, format!("release `{name}`: {}", key.value.0), err.message)),
                }
            };
            fn walk(node: &mut Spanned<Node>, inline: bool, render: &mut dyn FnMut(&mut String, u64)) {
                let at = node.referenced.line();
                match &mut node.value {
                    Node::Scalar(Value::String(s)) => render(s, at),
                    Node::List(items) => items.iter_mut().for_each(|i| walk(i, inline, render)),
                    Node::Map(_) if inline => {}
                    Node::Map(entries) => entries.iter_mut().for_each(|(_, v)| walk(v, false, render)),
                    _ => {}
                }
            }
            // Hooks are rendered when they run (`.Event`), and left out anyway.
            if key.value.0 != "hooks" {
                walk(value, key.value.0 == "values", &mut render);
            }
        }
        if let Some((at, what, message)) = failed {
            self.leave(at, what, format!("{message}: the release is left out"));
            return None;
        }
        Some(out)
    }

    pub(super) fn release(&mut self, node: &Spanned<Node>, shared: &Shared) -> Option<Converted> {
        let node = &self.release_templates(node, shared)?;
        let at = line(node);
        let fields = self.entries(node, "release");
        let name_node = fields.iter().find(|(k, _)| k.value.0 == "name").map(|(_, v)| v);
        let Some(name_node) = name_node else {
            self.leave(at, "release", "has no `name`");
            return None;
        };
        let name = self.text(name_node, "release name")?;
        let what = format!("release `{name}`");
        // A name, namespace or path from a variable's placeholder would deploy something else.
        let prefix = self.files.placeholder("");
        for (key, value) in fields {
            let decisive = match (key.value.0.as_str(), &value.value) {
                ("values" | "secrets", Node::List(items)) => items
                    .iter()
                    .filter(|item| matches!(item.value, Node::Scalar(_)))
                    .find_map(|i| variable_in(i, &prefix)),
                ("values" | "set" | "setString" | "hooks" | "description", _) => None,
                _ => variable_in(value, &prefix),
            };
            if let Some(variable) = decisive {
                self.leave(
                    line(key),
                    format!("{what}: {}", key.value.0),
                    format!(
                        "comes from environment variable `{variable}`, whose value the import does not read: the \
                         release is left out; add it by hand"
                    ),
                );
                return None;
            }
        }
        let mut chart: Option<(String, u64)> = None;
        let mut version: Option<(String, u64)> = None;
        let mut namespace = None;
        let mut create_namespace = shared.create_namespace.filter(|c| !c);
        let mut needs = Vec::new();
        let mut labels = Map::new();
        let mut installed = None;
        let mut condition = None;
        let mut patches = Vec::new();
        let mut missing_ok = shared.missing_ok;
        // `values` and `secrets` in helmfile's order: values, then secrets, each in order.
        let mut values_items: Vec<&Spanned<Node>> = Vec::new();
        let mut secrets_items: Vec<&Spanned<Node>> = Vec::new();
        let mut sets: Vec<(&Spanned<Node>, Kind)> = Vec::new();
        for (key, value) in fields {
            let field = key.value.0.as_str();
            let field_what = format!("{what}: {field}");
            match field {
                "name" => {}
                "chart" => chart = self.text(value, &format!("{what} chart")).map(|c| (c, line(value))),
                "version" => version = self.text(value, &format!("{what} version")).map(|v| (v, line(value))),
                "namespace" => namespace = self.text(value, &format!("{what} namespace")),
                "createNamespace" => create_namespace = self.bool(value, &field_what),
                "installed" => installed = self.bool(value, &field_what),
                "labels" => {
                    if let Some(own) = self.labels(value, &format!("{what} labels")) {
                        labels = own;
                    }
                }
                "condition" => condition = self.text(value, &field_what).map(|c| (c, line(value))),
                "values" => values_items.extend(self.list(value, &field_what)),
                "secrets" => secrets_items.extend(self.list(value, &field_what)),
                "set" => sets.extend(self.list(value, &field_what).iter().map(|s| (s, Kind::Typed))),
                "setString" => sets.extend(self.list(value, &field_what).iter().map(|s| (s, Kind::String))),
                "needs" => {
                    for need in self.list(value, &field_what) {
                        if let Some(text) = self.text(need, &format!("{what} needs"))
                            && let Some(resolved) = self.need(line(need), &what, &text, shared)
                            && !needs.contains(&resolved)
                        {
                            needs.push(resolved);
                        }
                    }
                }
                "strategicMergePatches" => {
                    for patch in self.list(value, &field_what) {
                        if let Some(p) = self.strategic_patch(patch, &what) {
                            patches.push(p);
                        }
                    }
                }
                "jsonPatches" => {
                    for patch in self.list(value, &field_what) {
                        if let Some(p) = self.json_patch(patch, &what) {
                            patches.push(p);
                        }
                    }
                }
                "hooks" => {
                    for hook in self.list(value, &field_what) {
                        let events = match &hook.value {
                            Node::Map(entries) => {
                                entries.iter().find(|(k, _)| k.value.0 == "events").and_then(|(_, v)| match &v.value {
                                    Node::List(items) => Some(
                                        items
                                            .iter()
                                            .filter_map(|i| match &i.value {
                                                Node::Scalar(Value::String(s)) => Some(s.clone()),
                                                _ => None,
                                            })
                                            .collect::<Vec<_>>()
                                            .join(", "),
                                    ),
                                    _ => None,
                                })
                            }
                            _ => None,
                        };
                        let hook_what = match events {
                            Some(events) if !events.is_empty() => format!("{what}: hook on {events}"),
                            _ => format!("{what}: hook"),
                        };
                        self.leave(line(hook), hook_what, flag_reason("hooks").unwrap_or_default());
                    }
                }
                "kubeContext" => {
                    let context = self.text(value, &field_what);
                    if context.is_some() && context != shared.context {
                        self.leave(
                            line(key),
                            field_what,
                            "weaver deploys an environment to one cluster (`cluster.context`): put the release in \
                             an environment of that context",
                        );
                    }
                }
                "apiVersions" => {
                    let own = Offline { api_versions: self.api_versions(value, &field_what), ..shared.offline.clone() };
                    let environment = shared.offline.with(&shared.template_args);
                    // helmfile: a release's list, when it has one, replaces the state's.
                    if !own.api_versions.is_empty()
                        && own.with(&shared.template_args).api_version_set() != environment.api_version_set()
                    {
                        let listed = |versions: &[String]| match versions {
                            [] => "none".to_string(),
                            _ => versions.join(", "),
                        };
                        self.leave(
                            line(key),
                            field_what,
                            format!(
                                "weaver sets `apiVersions` per environment: this release's ({}), which replace the \
                                 state's ({}) in helmfile, are not converted; add them to the environment's \
                                 `apiVersions` if its other releases may see them too",
                                own.api_versions.join(", "),
                                listed(&shared.offline.api_versions),
                            ),
                        );
                    }
                }
                "kubeVersion" => {
                    let environment = shared.offline.with(&shared.template_args).kube_version;
                    // helmfile: templateArgs' `--kube-version`, else the release's, else the state's.
                    let own = self.kube_version(value, &field_what);
                    let release = shared.template_args.kube_version.clone().or(own).or(environment.clone());
                    if release != environment {
                        self.leave(
                            line(key),
                            field_what,
                            format!(
                                "weaver sets `kubeVersion` per environment, and this release's ({}) differs from the \
                                 environment's ({}): not converted",
                                release.unwrap_or_default(),
                                environment.unwrap_or_else(|| format!(
                                    "none: helm's default {}",
                                    weaver_helm::DEFAULT_KUBE_VERSION
                                ))
                            ),
                        );
                    }
                }
                "description" | "missingFileHandlerConfig" => {}
                "missingFileHandler" => missing_ok = self.text(value, &field_what).is_some_and(|h| h != "Error"),
                "valuesTemplate" | "setTemplate" | "installedTemplate" | "conditionTemplate" | "waitTemplate"
                | "verifyTemplate" => {
                    self.leave(line(key), field_what, "templated: helmfile evaluates it when it runs")
                }
                _ if is_default(&value.value) => {}
                other => {
                    let why = flag_reason(other).unwrap_or("not a release key weaver knows: not converted");
                    self.leave(line(key), field_what, why);
                }
            }
        }

        let Some((chart, chart_at)) = chart else {
            self.leave(at, what, "has no `chart` it could be converted with: left out");
            return None;
        };
        let reference = self.chart(chart_at, &what, &chart, shared)?;
        let has_values = !values_items.is_empty() || !secrets_items.is_empty() || !sets.is_empty();

        let mut out = Map::new();
        out.insert("name".into(), Value::String(name.clone()));
        match reference {
            Chart::Remote(chart) => {
                out.insert("chart".into(), Value::String(chart));
                if let Some((version, _)) = version {
                    out.insert("version".into(), Value::String(version));
                }
            }
            // helm ignores `--version` for a chart directory, and so does weaver: nothing is lost.
            Chart::Local(chart) => {
                out.insert("chart".into(), Value::String(chart));
            }
            Chart::Kustomize(dir) => {
                if has_values {
                    self.leave(
                        chart_at,
                        format!("{what}: chart `{chart}`"),
                        "a kustomization with values (helmfile makes a chart of it): weaver's `kustomize:` releases \
                         take no values; left out",
                    );
                    return None;
                }
                out.insert("kustomize".into(), Value::String(dir));
            }
        }
        if let Some(namespace) = namespace {
            out.insert("namespace".into(), Value::String(namespace));
        }
        if let Some(create) = create_namespace.filter(|c| !c) {
            out.insert("createNamespace".into(), Value::Bool(create));
        }
        if !needs.is_empty() {
            out.insert("needs".into(), Value::Array(needs.into_iter().map(Value::String).collect()));
        }
        let labels = with_common_labels(labels, &shared.common_labels);
        if !labels.is_empty() {
            out.insert("labels".into(), Value::Object(labels));
        }

        // Values files and inline values, in helmfile's order.
        let mut values_files: Vec<Value> = Vec::new();
        // helmfile's release `secrets` go after its values: weaver's release `secrets` too.
        let mut secret_files: Vec<Value> = Vec::new();
        let mut inline = Map::new();
        let mut inline_before_file: Option<u64> = None;
        let mut inline_line = None;
        for (item, secret) in values_items.iter().map(|i| (i, false)).chain(secrets_items.iter().map(|i| (i, true))) {
            match &item.value {
                Node::Map(_) if !secret => {
                    if let Some(map) = self.map(item, &format!("{what} values")) {
                        merge_overrides(&mut inline, map);
                        inline_line.get_or_insert(line(item));
                    }
                }
                _ => {
                    let kind = if secret { "secrets file" } else { "values file" };
                    let Some(path) = self.text(item, &format!("{what} {kind}")) else { continue };
                    let Some(repo_path) = self.repository_path(line(item), &format!("{what} {kind}"), &path) else {
                        continue;
                    };
                    let file = format!("{what} {kind} `{path}`");
                    match self.files.found(Path::new(&repo_path)) {
                        Found::File => {}
                        // helmfile passes over a missing file unless its handler says `Error`.
                        Found::Missing if missing_ok => {
                            self.optional(line(item), &file, "not found");
                            continue;
                        }
                        Found::Missing => {
                            self.leave(line(item), file, "not found");
                            continue;
                        }
                        _ => {
                            self.leave(line(item), file, "a directory, not a file: left out");
                            continue;
                        }
                    }
                    let local = self.ctx.local(&path);
                    // helm stops on a values file that is not YAML values: so does the import
                    // (a `.gotmpl` one is read once weaver renders it).
                    if !secret
                        && !path.ends_with(".gotmpl")
                        && let Err(err) = self.helm_values_file(&local)
                    {
                        self.stop(err, &file);
                        continue;
                    }
                    self.name_file(line(item), &format!("{what} {kind} `{path}`"), &local);
                    if secret {
                        secret_files.push(Value::String(repo_path));
                        continue;
                    }
                    if let Some(at) = inline_line {
                        inline_before_file.get_or_insert(at);
                    }
                    values_files.push(Value::String(repo_path));
                }
            }
        }
        if let Some(at) = inline_before_file {
            self.leave(
                at,
                format!("{what}: inline values before a values file"),
                "converted, but weaver applies the release's `values` over all its `valuesFiles`, where helmfile \
                 applied the files after them: check the keys they share",
            );
        }
        for (item, kind) in sets {
            self.set(item, kind, &what, !values_files.is_empty(), &mut inline);
        }
        if !values_files.is_empty() {
            out.insert("valuesFiles".into(), Value::Array(values_files));
        }
        if !inline.is_empty() {
            out.insert("values".into(), Value::Object(inline));
        }
        if !secret_files.is_empty() {
            out.insert("secrets".into(), Value::Array(secret_files));
        }
        if installed == Some(false) {
            out.insert("installed".into(), Value::Bool(false));
        }
        if !patches.is_empty() {
            out.insert("patches".into(), Value::Array(patches));
        }
        Some(Converted { name, ctx: Rc::clone(&self.ctx), line: at, fields: out, condition })
    }

    /// Whether the release values file at `local` (as written) reads as helm reads one: YAML
    /// (1.1, as helm's reader) whose first document is a mapping of values, or empty. The error
    /// is located in the file.
    fn helm_values_file(&self, local: &str) -> weaver_core::error::Result<()> {
        let Some(text) = self.files.read(local)? else { return Ok(()) };
        match weaver_yaml::helm::from_str(&text) {
            Ok(None | Some(Value::Null | Value::Object(_))) => Ok(()),
            Ok(Some(_)) => Err(Error::at(Location::file(local), "expected a mapping of values at the top level")),
            Err(err) => Err(Error::at(
                Location::at(local, err.line.unwrap_or(0) as u64, 0),
                format!("invalid YAML: {}", err.message),
            )),
        }
    }

    pub(super) fn chart(&mut self, at: u64, what: &str, chart: &str, shared: &Shared) -> Option<Chart> {
        if chart.starts_with("oci://") {
            return Some(Chart::Remote(chart.to_string()));
        }
        if let Some((repository, rest)) = chart.split_once('/')
            && is_plain_name(rest)
        {
            if shared.repositories.contains(repository) {
                return Some(Chart::Remote(chart.to_string()));
            }
            if shared.refused.contains(repository) {
                self.leave(
                    at,
                    format!("{what}: chart `{chart}`"),
                    format!("its repository `{repository}` was left out (see its line): left out"),
                );
                return None;
            }
        }
        let what = format!("{what}: chart `{chart}`");
        let path = self.repository_path(at, &what, chart)?;
        let repo_path = Path::new(&path);
        match self.files.found(repo_path) {
            Found::HelmChart => match (repo_path.parent(), repo_path.file_name()) {
                (Some(parent), Some(name)) if parent == Path::new("charts") => {
                    Some(Chart::Local(name.to_string_lossy().into_owned()))
                }
                // weaver names a chart elsewhere by its path from the repository's root.
                (_, Some(_)) => Some(Chart::Local(format!("./{path}"))),
                (_, None) => {
                    self.leave(
                        at,
                        what,
                        "the repository's root is a chart: weaver names a chart by a directory below it",
                    );
                    None
                }
            },
            Found::File if path.ends_with(".tgz") => Some(Chart::Local(path)),
            Found::Kustomization => Some(Chart::Kustomize(path)),
            Found::Missing if !chart.starts_with('.') && chart.split('/').count() == 2 => {
                let repository = chart.split('/').next().unwrap_or_default();
                self.leave(
                    at,
                    what,
                    format!("no repository `{repository}` in `repositories:` and no such path: left out"),
                );
                None
            }
            Found::Missing => {
                self.leave(at, what, "not found: left out");
                None
            }
            Found::File | Found::Directory => {
                self.leave(at, what, "neither a Helm chart (Chart.yaml), a packaged .tgz nor a kustomization");
                None
            }
        }
    }

    /// `name`, `namespace/name` or `context/namespace/name` as the release name weaver expects.
    pub(super) fn need(&mut self, at: u64, what: &str, need: &str, shared: &Shared) -> Option<String> {
        let parts: Vec<&str> = need.split('/').collect();
        let (namespace, name) = match parts.as_slice() {
            [name] => (None, *name),
            [namespace, name] | [_, namespace, name] => (Some(*namespace), *name),
            _ => {
                self.leave(at, format!("{what}: needs `{need}`"), "expected [[context/]namespace/]name");
                return None;
            }
        };
        let named: Vec<&Option<String>> = shared.releases.iter().filter(|(n, _)| n == name).map(|(_, ns)| ns).collect();
        let exact = named.iter().filter(|ns| namespace.is_none_or(|want| ns.as_deref() == Some(want))).count();
        match (named.len(), exact) {
            (0, _) => {
                self.leave(at, format!("{what}: needs `{need}`"), format!("no release `{name}` in this helmfile"));
                None
            }
            (1, _) => Some(name.to_string()),
            (_, 1) if namespace.is_some() => {
                self.leave(
                    at,
                    format!("{what}: needs `{need}`"),
                    format!(
                        "converted as `{name}`, but several releases are named `{name}` and weaver keeps only the \
                         first (release names are unique in an environment)"
                    ),
                );
                Some(name.to_string())
            }
            _ => {
                self.leave(
                    at,
                    format!("{what}: needs `{need}`"),
                    format!(
                        "ambiguous: several releases are named `{name}`; converted as `{name}`, the first of them, \
                         the one weaver keeps"
                    ),
                );
                Some(name.to_string())
            }
        }
    }

    /// One `set` (or `setString`) entry into the release's inline values, as helm's `--set`.
    pub(super) fn set(
        &mut self,
        item: &Spanned<Node>,
        kind: Kind,
        what: &str,
        has_files: bool,
        into: &mut Map<String, Value>,
    ) {
        let mut name = None;
        let mut value = None;
        let mut file = None;
        let mut list = None;
        for (key, v) in self.entries(item, &format!("{what}: set")) {
            match key.value.0.as_str() {
                "name" => name = self.text(v, &format!("{what}: set name")),
                "value" if !matches!(v.value, Node::Null) => value = self.text(v, &format!("{what}: set value")),
                "file" => file = self.text(v, &format!("{what}: set file")),
                "values" => {
                    let items: Vec<Option<String>> =
                        self.list(v, &format!("{what}: set values")).iter().map(|i| self.text(i, what)).collect();
                    list = items.into_iter().collect::<Option<Vec<_>>>();
                }
                _ => {}
            }
        }
        let Some(name) = name else { return };
        let set_what = format!("{what}: set `{name}`");
        if name.contains('[') && has_files {
            self.leave(
                line(item),
                set_what,
                "a list item: helm sets it in the list the values files give, weaver's `values` replace a list \
                 whole: write the whole list in the release's `values`",
            );
            return;
        }
        let files = self.files;
        let ctx = Rc::clone(&self.ctx);
        let read = move |path: &str| match files.read(&ctx.local(path)) {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(format!("{path} not found")),
            Err(err) => Err(err.message),
        };
        let (line_text, kind) = match (value, file, list) {
            (Some(value), _, _) if !value.is_empty() => (format!("{}={}", escape(&name), escape(&value)), kind),
            (_, Some(file), _) if kind == Kind::Typed => (format!("{}={file}", escape(&name)), Kind::File),
            (_, _, Some(list)) if !list.is_empty() => {
                let items: Vec<String> = list.iter().map(|i| escape(i)).collect();
                (format!("{}={{{}}}", escape(&name), items.join(",")), kind)
            }
            _ => return,
        };
        if let Err(reason) = strvals::parse_into(&line_text, into, kind, &read) {
            self.leave(line(item), set_what, format!("not converted: {reason}"));
        }
    }

    pub(super) fn strategic_patch(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        let patch_what = format!("{what}: strategicMergePatches");
        let patch = match self.value(node, &patch_what)? {
            Value::Object(map) => map,
            _ => {
                self.leave(line(node), patch_what, "expected a mapping (an object's fields to merge)");
                return None;
            }
        };
        let mut target = Map::new();
        for (field, key) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
            if let Some(Value::String(s)) = patch.get(key) {
                target.insert(field.into(), Value::String(s.clone()));
            }
        }
        for key in ["name", "namespace"] {
            if let Some(Value::String(s)) = patch.get("metadata").and_then(|m| m.get(key)) {
                target.insert(key.into(), Value::String(s.clone()));
            }
        }
        if !target.contains_key("kind") || !target.contains_key("name") {
            self.leave(line(node), patch_what, "names no object: a patch needs its `kind` and `metadata.name`");
            return None;
        }
        Some(serde_json::json!({ "target": target, "patch": patch }))
    }

    pub(super) fn json_patch(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        let patch_what = format!("{what}: jsonPatches");
        let Some(Value::Object(spec)) = self.value(node, &patch_what) else {
            self.leave(line(node), patch_what, "expected a mapping with `target` and `patch`");
            return None;
        };
        let empty = Map::new();
        let given = spec.get("target").and_then(Value::as_object).unwrap_or(&empty);
        let text = |key: &str| given.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut target = Map::new();
        let api_version = match (text("group"), text("version")) {
            (Some(group), Some(version)) => Some(format!("{group}/{version}")),
            (Some(group), None) => Some(group.to_string()),
            (None, Some(version)) => Some(version.to_string()),
            (None, None) => None,
        };
        if let Some(api_version) = api_version {
            target.insert("apiVersion".into(), Value::String(api_version));
        }
        for key in ["kind", "name", "namespace"] {
            if let Some(s) = text(key) {
                target.insert(key.into(), Value::String(s.to_string()));
            }
        }
        let unknown: Vec<&String> =
            given.keys().filter(|k| !["group", "version", "kind", "name", "namespace"].contains(&k.as_str())).collect();
        if target.is_empty() || !unknown.is_empty() {
            self.leave(line(node), patch_what, "its `target` must name a group, version, kind, name or namespace only");
            return None;
        }
        let ops = match spec.get("patch") {
            Some(Value::Array(ops)) => ops.clone(),
            Some(Value::String(text)) => match weaver_yaml::from_str::<Vec<Value>>(Path::new("patch"), text) {
                Ok(ops) => ops,
                Err(err) => {
                    self.leave(line(node), patch_what, format!("its `patch` is not a list of operations: {err}"));
                    return None;
                }
            },
            _ => {
                self.leave(line(node), patch_what, "its `patch` must be a list of RFC 6902 operations");
                return None;
            }
        };
        Some(serde_json::json!({ "target": target, "ops": ops }))
    }
}
