//! What the import writes: what every environment shares in the base file, what differs in
//! each environment's file.

use serde_json::{Map, Value};

use super::{Convert, Converted, EnvConverted, Imported, base_path};

impl Convert<'_> {
    /// The files of every environment's converted state: what they all have alike in the
    /// abstract base, the rest in each one's file.
    pub(super) fn files_of(self, file_name: &str, states: Vec<EnvConverted>) -> Imported {
        let base = if states.iter().any(|s| s.env.name == "base") { "helmfile-base" } else { "base" };
        // The helmfile by its path in the repository (`deploy/helmfile.yaml`), as the files name theirs.
        let shown = self.files.repository_path(file_name).map(|p| p.to_string_lossy().replace('\\', "/"));
        let header =
            format!("# Imported from {} by `weaver import helmfile`.\n", shown.as_deref().unwrap_or(file_name));
        let alike = |of: &dyn Fn(&EnvConverted) -> Value| {
            let first = states.first().map(of);
            states.iter().all(|s| Some(of(s)) == first)
        };
        let context_alike = alike(&|s| serde_json::json!(s.context));
        let kube_version_alike = alike(&|s| serde_json::json!(s.offline.kube_version));
        let api_versions_alike = alike(&|s| serde_json::json!(s.offline.api_versions));
        let defaults_alike = alike(&|s| Value::Object(s.env.written.defaults.clone()));
        let mut repositories: Vec<&(String, Value)> = Vec::new();
        for repository in states.iter().flat_map(|s| &s.repositories) {
            if !repositories.iter().any(|(name, _)| *name == repository.0) {
                repositories.push(repository);
            }
        }
        // Releases in the order they first appear.
        let mut names: Vec<&str> = Vec::new();
        for release in states.iter().flat_map(|s| &s.releases) {
            if !names.contains(&release.name.as_str()) {
                names.push(&release.name);
            }
        }

        let mut base_file = Map::new();
        base_file.insert("abstract".into(), Value::Bool(true));
        let first = states.first();
        if let (true, Some(Some(context))) = (context_alike, first.map(|s| &s.context)) {
            base_file.insert("cluster".into(), serde_json::json!({ "context": context }));
        }
        if let (true, Some(Some(version))) = (kube_version_alike, first.map(|s| &s.offline.kube_version)) {
            base_file.insert("kubeVersion".into(), Value::String(version.clone()));
        }
        if let (true, Some(versions)) = (api_versions_alike, first.map(|s| &s.offline.api_versions))
            && !versions.is_empty()
        {
            base_file.insert("apiVersions".into(), serde_json::json!(versions));
        }
        if let (true, Some(defaults)) = (defaults_alike, first.map(|s| &s.env.written.defaults))
            && !defaults.is_empty()
        {
            base_file.insert("values".into(), Value::Object(defaults.clone()));
        }
        if !repositories.is_empty() {
            base_file.insert("repositories".into(), repositories.iter().map(|(_, r)| r.clone()).collect());
        }
        // Each environment's releases as its file writes them: whole where the base has none
        // of the name, else the fields that differ from the base's.
        let mut own: Vec<Vec<Value>> = vec![Vec::new(); states.len()];
        let mut base_releases = Vec::new();
        for name in &names {
            let found: Vec<Option<&Converted>> =
                states.iter().map(|s| s.releases.iter().find(|r| r.name == *name)).collect();
            let everywhere: Option<Vec<&Converted>> = found.iter().copied().collect();
            let Some(everywhere) = everywhere else {
                for (i, release) in found.iter().enumerate() {
                    if let Some(release) = release {
                        own[i].push(Value::Object(release.fields.clone()));
                    }
                }
                continue;
            };
            let mut common = Map::new();
            for (key, value) in &everywhere[0].fields {
                if everywhere.iter().all(|r| r.fields.get(key) == Some(value)) {
                    common.insert(key.clone(), value.clone());
                }
            }
            for (i, release) in everywhere.iter().enumerate() {
                let differ: Map<String, Value> = release
                    .fields
                    .iter()
                    .filter(|(k, _)| !common.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !differ.is_empty() {
                    let mut entry = Map::new();
                    entry.insert("name".into(), Value::String(name.to_string()));
                    entry.extend(differ);
                    own[i].push(Value::Object(entry));
                }
            }
            base_releases.push(Value::Object(common));
        }
        if !base_releases.is_empty() {
            base_file.insert("releases".into(), Value::Array(base_releases));
        }
        let mut files =
            vec![(base_path(base), format!("{header}{}", weaver_yaml::to_yaml_string(&Value::Object(base_file))))];

        for (state, releases) in states.iter().zip(own) {
            let mut map = Map::new();
            map.insert("extends".into(), Value::String(base.to_string()));
            let context = state.env.context.as_ref().or(state.context.as_ref().filter(|_| !context_alike));
            if let Some(context) = context {
                map.insert("cluster".into(), serde_json::json!({ "context": context }));
            }
            if let (false, Some(version)) = (kube_version_alike, &state.offline.kube_version) {
                map.insert("kubeVersion".into(), Value::String(version.clone()));
            }
            if !api_versions_alike && !state.offline.api_versions.is_empty() {
                map.insert("apiVersions".into(), serde_json::json!(state.offline.api_versions));
            }
            // The environment's values files are under what its base gives, and over the
            // state's values: kept as files when those are in the base.
            let values = match defaults_alike {
                true => {
                    let files: Vec<Value> =
                        state.env.written.files.iter().map(|(path, _)| Value::String(path.clone())).collect();
                    if !files.is_empty() {
                        map.insert("valuesFiles".into(), Value::Array(files));
                    }
                    state.env.written.values.clone()
                }
                false => state.env.written.merged(),
            };
            if !values.is_empty() {
                map.insert("values".into(), Value::Object(values));
            }
            if !releases.is_empty() {
                map.insert("releases".into(), Value::Array(releases));
            }
            files.push((
                base_path(&state.env.name),
                format!("{header}{}", weaver_yaml::to_yaml_string(&Value::Object(map))),
            ));
        }

        let mut remote_charts: Vec<String> = Vec::new();
        for state in &states {
            for release in &state.releases {
                if let Some(Value::String(chart)) = release.fields.get("chart")
                    && (chart.starts_with("oci://")
                        || chart.split_once('/').is_some_and(|(r, _)| state.repositories.iter().any(|(n, _)| n == r)))
                    && !remote_charts.contains(chart)
                {
                    remote_charts.push(chart.clone());
                }
            }
        }
        // Each environment lists what all of them leave out: once is enough.
        let mut left_out = self.left_out;
        // A variable is listed once, where it is first read, with the other places it is read.
        let mut listed: Vec<&Option<String>> = Vec::new();
        for (file, read) in &self.variables {
            if listed.contains(&&read.name) {
                continue;
            }
            listed.push(&read.name);
            let also: Vec<String> = self
                .variables
                .iter()
                .filter(|(other_file, other)| other.name == read.name && (other_file, other.line) != (file, read.line))
                .map(|(other_file, other)| format!("{}:{}", self.files.named(other_file), other.line))
                .collect();
            left_out.push(read.left_out(file, &also, self.files));
        }
        left_out.sort_by(|a, b| (&a.file, a.line, &a.what, &a.why).cmp(&(&b.file, b.line, &b.what, &b.why)));
        left_out.dedup();
        let main = file_name.to_string();
        left_out.sort_by_key(|l| (l.file != main, l.file.clone(), l.line));
        Imported { files, left_out, remote_charts }
    }
}
