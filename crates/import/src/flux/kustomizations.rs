//! Kustomizations as releases: the directory each builds, its variables (`postBuild`'s
//! `substitute` and `substituteFrom`) and the Flux objects among what it builds.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;
use weaver_kustomize as kustomize;
use weaver_kustomize::substitute::{self, Lookup};
use weaver_project::environment::is_release_name;
use weaver_project::source::lexical;

use super::{
    GENERATED_DIR, Import, Ks, Obj, Release, Vars, WITHOUT_REMOTE, artifact_path, depends_on, find, git_url_identity,
    namespace_or, not_a_release_name, scalar_text, shown, unique_name,
};
use crate::node::Node;

impl<'a> Import<'a> {
    /// The repository directory a Kustomization builds, or `None` (listed).
    pub(super) fn ks_dir(&mut self, ks: &Obj, sources: &[Obj]) -> Option<PathBuf> {
        let kind = ks.text("/spec/sourceRef/kind").to_string();
        let name = ks.text("/spec/sourceRef/name").to_string();
        let path = ks.text("/spec/path").to_string();
        let what = format!("{}: sourceRef {kind} {name}", ks.describe());
        if path.contains("${") {
            self.leave_at(
                ks,
                Some("path"),
                format!("{}: path `{path}`", ks.describe()),
                "a variable no substitution sets here",
            );
            return None;
        }
        match kind.as_str() {
            "GitRepository" => {
                let namespace = ks.text("/spec/sourceRef/namespace");
                let namespace = if namespace.is_empty() { ks.namespace() } else { namespace };
                let git = sources
                    .iter()
                    .find(|s| s.kind() == "GitRepository" && s.name() == name && s.namespace() == namespace);
                // One the repository does not define is the one bootstrap (or flux-operator)
                // made for it.
                let is_this_repository = name == "flux-system" || git.is_none_or(|g| g.text("/spec/url").is_empty());
                // Another name for it: its URL is the one the clusters sync from.
                let is_this_repository = is_this_repository
                    || git.is_some_and(|g| {
                        let url = git_url_identity(g.text("/spec/url"));
                        let bootstrap =
                            sources.iter().find(|s| s.kind() == "GitRepository" && s.name() == "flux-system");
                        let own = self.own_urls.contains(&url)
                            || bootstrap.is_some_and(|b| git_url_identity(b.text("/spec/url")) == url);
                        if own {
                            self.taken_as_own.insert(format!(
                                "GitRepository {}/{name} ({}, {}) taken as this repository: its URL is the one the \
                                 cluster syncs from",
                                g.namespace(),
                                g.text("/spec/url"),
                                g.file.display()
                            ));
                        }
                        own
                    });
                if !is_this_repository {
                    let url = git.map(|g| g.text("/spec/url").to_string()).unwrap_or_default();
                    self.leave_at(
                        ks,
                        Some("sourceRef"),
                        what,
                        format!(
                            "another git repository{}: weaver builds kustomizations of its own repository: import \
                             that repository, or vendor the path into this one",
                            if url.is_empty() { String::new() } else { format!(" ({url})") }
                        ),
                    );
                    return None;
                }
                let dir = self.join(&path);
                if dir.is_none() {
                    self.leave_at(
                        ks,
                        Some("path"),
                        format!("{}: path `{path}`", ks.describe()),
                        "leaves the repository",
                    );
                }
                dir
            }
            "ExternalArtifact" => {
                // An ArtifactGenerator's `copy` of this repository's directories.
                let generator = sources.iter().find(|s| {
                    s.kind() == "ArtifactGenerator"
                        && s.spec("artifacts").and_then(Value::as_array).is_some_and(|a| {
                            a.iter().any(|x| x.get("name").and_then(Value::as_str) == Some(name.as_str()))
                        })
                });
                let mapped = generator.and_then(|g| artifact_path(g, &name, &path));
                match mapped.and_then(|p| self.join(&p)) {
                    Some(dir) => Some(dir),
                    None => {
                        self.leave_at(
                            ks,
                            Some("sourceRef"),
                            what,
                            "not an ArtifactGenerator's copy of directories of this repository: not converted",
                        );
                        None
                    }
                }
            }
            _ => {
                self.leave_at(
                    ks,
                    Some("sourceRef"),
                    what,
                    "weaver builds kustomizations of its own repository, not of OCI artifacts or buckets: import the \
                     repository they are built from",
                );
                None
            }
        }
    }

    /// Applies a Kustomization's `patches` to the Flux objects of its build, as Flux patches
    /// the whole build (its other objects get them from the release's kustomization): a child
    /// Kustomization or HelmRelease is converted as patched.
    /// Applies a Kustomization's `patches` to the Flux objects it built, with kustomize's
    /// patches transformer, as kustomize-controller does (every object is patched, so that a
    /// patch without a target finds its object; the others are patched again at render).
    pub(super) fn patch_flux_objects(&mut self, ks: &Obj, objects: &mut Vec<Obj>) {
        let Some(Value::Array(entries)) = ks.spec("patches") else { return };
        if entries.is_empty() || !objects.iter().any(Obj::is_flux) {
            return;
        }
        let mut patches = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let pointer = format!("/spec/patches/{i}");
            let at = self.line(ks, Some(&pointer));
            match serde_json::from_value::<kustomize::kustomization::PatchEntry>(entry.clone()) {
                Ok(value) => {
                    // A patch its parent's patches gave it is not in its file: it is located at
                    // the Kustomization.
                    let node = self.document(&ks.file, ks.document).map(|doc| Node::at(doc, &pointer).unwrap_or(doc));
                    let Some(node) = node else { continue };
                    patches.push(Spanned { value, referenced: node.referenced, defined: node.defined });
                }
                Err(err) => {
                    let what = format!("{}: patch", ks.describe());
                    self.leave(
                        &ks.file,
                        at,
                        what,
                        format!("not a kustomize patch ({err}): not applied to its Flux objects"),
                    );
                }
            }
        }
        let resources: Vec<kustomize::Resource> = objects
            .iter()
            .map(|o| {
                let text = self.read(&o.file).unwrap_or_default();
                kustomize::Resource::read(o.object.clone(), o.file.clone(), o.document, &text)
            })
            .collect();
        match kustomize::apply_patches(self.source, &ks.file, patches, resources) {
            Ok(patched) => {
                // Plain objects stay as read (the release patches them); Flux objects as patched,
                // each found by its file, document and id as read: a component's file is built
                // once per namespace that adds it, so file and document alone name several.
                let id = |file: &Path, document: usize, (kind, name, namespace): (&str, &str, &str)| {
                    (file.to_path_buf(), document, kind.to_string(), name.to_string(), namespace.to_string())
                };
                let mut patched: HashMap<_, Value> =
                    patched.into_iter().map(|r| (id(&r.source, r.document, r.original_id()), r.object)).collect();
                objects.retain_mut(|o| match o.is_flux() {
                    false => true,
                    true => patched
                        .remove(&id(&o.file, o.document, (o.kind(), o.name(), o.namespace())))
                        .map(|object| o.object = object)
                        .is_some(),
                });
            }
            Err(err) => {
                let line = err.location.as_ref().and_then(|l| l.line).unwrap_or_else(|| self.line(ks, Some("patches")));
                let what = format!("{}: patches", ks.describe());
                self.leave(&ks.file, line, what, format!("not applied to its Flux objects: {}", err.message));
            }
        }
    }

    /// Whether an object is the only document of its file, read from it as it is (not made by
    /// a generator), so that weaver can read the file in its place.
    pub(super) fn alone_in_file(&mut self, obj: &Obj) -> bool {
        let generated = obj
            .file
            .file_name()
            .is_some_and(|n| ["kustomization.yaml", "kustomization.yml", "Kustomization"].iter().any(|k| n == *k));
        !generated && self.objects_of(&obj.file).len() == 1
    }

    /// A Kustomization's variables for what it holds (which Flux substitutes in its Flux objects
    /// as well), or `None` when it has no `postBuild`.
    pub(super) fn variables(&mut self, ks: &Obj, config: &[Obj]) -> Option<Vars> {
        let post = ks.spec("postBuild")?;
        let mut vars = Vars::default();
        for from in post.get("substituteFrom").and_then(Value::as_array).into_iter().flatten() {
            let kind = from.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = from.get("name").and_then(Value::as_str).unwrap_or_default();
            let optional = from.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match find(config, kind, name, ks.namespace()) {
                // An encrypted ConfigMap's values are read at render, not here: what uses them
                // is listed as a Secret's are.
                Some(cm) if kind == "ConfigMap" && !cm.is_encrypted() => {
                    for (key, value) in cm.object.get("data").and_then(Value::as_object).into_iter().flatten() {
                        if let Some(value) = value.as_str() {
                            vars.values.insert(key.clone(), value.to_string());
                        }
                    }
                }
                None if optional => {}
                found => {
                    let namespace = found.map_or(ks.namespace(), |f| namespace_or(f, ks.namespace()));
                    vars.unread.push(format!("{kind} {namespace}/{name}"));
                }
            }
        }
        // A value keeping a variable its parent could not substitute is not known either.
        let kept = self.kept.get(&(ks.file.clone(), ks.document));
        for (key, value) in post.get("substitute").and_then(Value::as_object).into_iter().flatten() {
            let text = scalar_text(value);
            let from = kept.into_iter().flatten().find(|(name, _)| text.contains(&format!("${{{name}")));
            match from {
                Some((name, from)) => {
                    let from = format!("its `${{{name}}}` is kept, as {from}");
                    vars.tainted.insert(key.clone(), (text.clone(), from));
                }
                None => {
                    vars.values.insert(key.clone(), text);
                }
            }
        }
        Some(vars)
    }

    /// Substitutes a Kustomization's variables in an object it holds, as Flux does, but for the
    /// variables of sources the import does not read, whose references stay: their names.
    pub(super) fn substitute_known(
        &mut self,
        obj: &mut Obj,
        vars: &Vars,
    ) -> std::result::Result<BTreeSet<String>, substitute::Problem> {
        let unknown = RefCell::new(BTreeSet::new());
        let lookup = |name: &str| {
            let found = vars.lookup(name);
            if found == Lookup::Unknown {
                unknown.borrow_mut().insert(name.to_string());
            }
            found
        };
        let mut copy = obj.object.clone();
        substitute::substitute_known(&mut copy, &lookup)?;
        obj.object = copy;
        Ok(unknown.into_inner())
    }

    /// A ConfigMap as kustomize-controller applies it, substituted; what cannot be is noted
    /// for those who read it (`valuesFrom`).
    pub(super) fn substitute_config(&mut self, cm: &mut Obj, vars: &Vars) {
        let key = (cm.file.clone(), cm.document);
        let why = match self.substitute_known(cm, vars) {
            Ok(unknown) if unknown.is_empty() => {
                self.config_unsubstituted.remove(&key);
                return;
            }
            Ok(unknown) => {
                let names = unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                match unknown.iter().any(|name| vars.tainted.contains_key(name)) {
                    false => format!(
                        "its variables {names} are {}'s (its Kustomization's substituteFrom), which the import does \
                         not read",
                        vars.unread.join(" or ")
                    ),
                    true => {
                        let sources: BTreeSet<String> = unknown.iter().map(|n| vars.unknown_source(n)).collect();
                        let sources = sources.into_iter().collect::<Vec<_>>().join("; ");
                        format!("its variables {names} are not known: {sources}, which the import does not read")
                    }
                }
            }
            Err(problem) => format!("not substituted: {problem}"),
        };
        self.config_unsubstituted.insert(key, format!("{} ({}): {why}", cm.describe(), cm.file.display()));
    }

    /// Substitutes a Kustomization's variables in a Flux object it holds, as Flux does; what
    /// cannot be is listed, one line a variable.
    pub(super) fn substitute(&mut self, obj: &mut Obj, vars: &Vars) {
        match self.substitute_known(obj, vars) {
            Ok(unknown) => {
                if !unknown.is_empty() {
                    self.unsubstituted.insert((obj.file.clone(), obj.document));
                    let sources = unknown.iter().map(|name| (name.clone(), vars.unknown_source(name))).collect();
                    self.kept.insert((obj.file.clone(), obj.document), sources);
                }
                for name in unknown {
                    let line = match self.line_containing(obj, &format!("${{{name}}}")) {
                        line if line != self.line(obj, None) => line,
                        _ => self.line_containing(obj, &format!("${{{name}")),
                    };
                    self.leave(
                        &obj.file,
                        line,
                        format!("{}: variable {name}", obj.describe()),
                        format!(
                            "{}, which the import does not read: kept as `${{{name}}}` and the release written \
                             `installed: false`; write the value in its place (a secret one in a SOPS file: `weaver \
                             secrets encrypt`) and remove that line",
                            vars.unknown_source(&name)
                        ),
                    );
                }
            }
            Err(problem) => {
                self.unsubstituted.insert((obj.file.clone(), obj.document));
                let name = match &problem {
                    substitute::Problem::Unset(name) | substitute::Problem::Unsupported { variable: name, .. } => {
                        Some(name.clone())
                    }
                    _ => None,
                };
                let line = match &name {
                    Some(name) => self.line_containing(obj, &format!("${{{name}")),
                    None => self.line(obj, None),
                };
                self.leave(
                    &obj.file,
                    line,
                    format!("{}: variables", obj.describe()),
                    format!(
                        "{problem} (Flux substitutes it from its Kustomization's postBuild): it is converted as \
                         written, with the `${{…}}` text, and the release written `installed: false`"
                    ),
                );
            }
        }
    }

    /// The `kustomize:` release of a Kustomization's objects that are not Flux's, or `None`
    /// when it has none.
    pub(super) fn kustomization_release(
        &mut self,
        env: &str,
        ks: &Ks,
        config: &[Obj],
        releases: &[Release],
        taken: &BTreeSet<String>,
        files: &mut Vec<(PathBuf, String)>,
    ) -> Option<Release> {
        let obj = ks.obj.clone();
        let what = obj.describe();
        self.kustomization_settings(&obj);
        let dir = ks.dir.clone()?;
        if ks.plain.is_empty() {
            return None;
        }
        if obj.spec("postBuild").is_none()
            && let Some(named) = ks.plain.iter().find(|o| substitute::in_identity(&o.object))
        {
            // Flux would apply the `${…}` text itself, which no object's name can be.
            let named = named.clone();
            self.leave_at(
                &named,
                None,
                format!("{what} (path {})", shown(&dir)),
                format!(
                    "{} is named with a `${{…}}` variable, and this Kustomization substitutes none: import the \
                     Kustomization that applies this path with its postBuild",
                    named.describe()
                ),
            );
            return None;
        }
        let name = unique_name(obj.name(), obj.namespace(), releases, taken);
        if !is_release_name(&name) {
            self.leave_at(&obj, Some("name"), what, not_a_release_name(&name));
            return None;
        }
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String(name.clone()));
        let target_namespace = obj.text("/spec/targetNamespace").to_string();
        if !target_namespace.is_empty() {
            if !weaver_core::manifest::is_dns1123_label(&target_namespace) {
                let why = format!("targetNamespace `{target_namespace}` is not a namespace name");
                self.leave_at(&obj, Some("targetNamespace"), what, why);
                return None;
            }
            fields.insert("namespace".into(), Value::String(target_namespace.clone()));
        }
        // What kustomize expresses goes into a kustomization of the import's, around Flux's.
        let mut wrapper = Map::new();
        let spec = |key: &str| obj.spec(key).cloned();
        if !target_namespace.is_empty()
            && ks.plain.iter().any(|o| !o.namespace().is_empty() && o.namespace() != target_namespace)
        {
            wrapper.insert("namespace".into(), Value::String(target_namespace.clone()));
        }
        for key in ["namePrefix", "nameSuffix"] {
            if let Some(v) = spec(key) {
                wrapper.insert(key.into(), v);
            }
        }
        if let Some(meta) = spec("commonMetadata") {
            if let Some(labels) = meta.get("labels").filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) {
                wrapper.insert("labels".into(), json!([{ "pairs": labels, "includeSelectors": false }]));
            }
            if let Some(annotations) = meta.get("annotations") {
                wrapper.insert("commonAnnotations".into(), annotations.clone());
            }
        }
        if let Some(images) = spec("images") {
            wrapper.insert("images".into(), images);
        }
        let generated_dir = PathBuf::from(GENERATED_DIR).join(env).join(&name);
        let mut patches: Vec<Value> = Vec::new();
        for patch in obj.spec("patches").and_then(Value::as_array).into_iter().flatten() {
            patches.push(patch.clone());
        }
        // Every object of a Flux kind goes (one patch a kind: names repeat across namespaces);
        // an encrypted Secret by its name.
        let mut kinds = BTreeSet::new();
        for dropped in &ks.dropped {
            let (target, name) = if dropped.is_flux() {
                if !kinds.insert((dropped.text("/apiVersion").to_string(), dropped.kind().to_string())) {
                    continue;
                }
                (json!({ "group": dropped.group(), "kind": dropped.kind() }), "_".to_string())
            } else {
                let mut target = json!({ "kind": dropped.kind(), "name": regex::escape(dropped.name()) });
                if !dropped.namespace().is_empty() {
                    target["namespace"] = Value::String(regex::escape(dropped.namespace()));
                }
                (target, dropped.name().to_string())
            };
            patches.push(json!({
                "patch": format!(
                    "$patch: delete\napiVersion: {}\nkind: {}\nmetadata:\n  name: {name}\n",
                    dropped.text("/apiVersion"),
                    dropped.kind(),
                ),
                "target": target,
            }));
        }
        // A kustomization listing remote entries, or including one that does, is named by its
        // copy without them.
        let mut copies = Vec::new();
        let mut components = Vec::new();
        for component in obj.spec("components").and_then(Value::as_array).into_iter().flatten() {
            if let Some(path) = component.as_str().and_then(|c| lexical(&dir.join(c))) {
                components.push(self.named_from(&generated_dir, &path, &mut copies));
            }
        }
        if !components.is_empty() {
            wrapper.insert("components".into(), Value::Array(components));
        }
        if !patches.is_empty() {
            wrapper.insert("patches".into(), Value::Array(patches));
        }
        // The entries listed in place of the directory are written here, never into the Flux
        // directory (where Flux would read a kustomization instead of generating its own, and
        // miss the files added beside it later).
        let entries = ks.listed.clone().unwrap_or_else(|| vec![dir.clone()]);
        let resources: Vec<Value> =
            entries.iter().map(|entry| self.named_from(&generated_dir, entry, &mut copies)).collect();
        let kustomize_dir = if wrapper.is_empty() && ks.listed.is_none() && copies.is_empty() {
            dir.clone()
        } else {
            let mut text = Map::new();
            text.insert("apiVersion".into(), json!("kustomize.config.k8s.io/v1beta1"));
            text.insert("kind".into(), json!("Kustomization"));
            text.insert("resources".into(), Value::Array(resources));
            text.extend(wrapper);
            let mut generated = String::new();
            if ks.listed.is_some() {
                generated.push_str(", with the kustomization Flux generates for a directory without one");
            }
            if !copies.is_empty() {
                generated.push_str(&format!(
                    ", naming copies of its kustomizations without their remote entries ({WITHOUT_REMOTE}/)"
                ));
            }
            files.push((
                generated_dir.join("kustomization.yaml"),
                format!(
                    "# Flux Kustomization {} ({}) as kustomize-controller builds it{generated}, by `weaver import \
                     flux`.\n{}",
                    obj.name(),
                    obj.file.display(),
                    weaver_yaml::to_yaml_string(&Value::Object(text))
                ),
            ));
            files.extend(copies.iter().map(|copy| (copy.file.clone(), copy.text.clone())));
            generated_dir.clone()
        };
        fields.insert("kustomize".into(), Value::String(kustomize_dir.to_string_lossy().replace('\\', "/")));
        // The generated kustomization names the directory's files, and the copies the files of
        // the Flux tree, outside their own directories.
        if ks.listed.is_some() || !copies.is_empty() || self.unrestricted.iter().any(|built| built.starts_with(&dir)) {
            fields.insert("loadRestrictions".into(), Value::String("none".into()));
        }

        // The names of the variables a Secret file gives (its values are read at render).
        let mut secret_names = BTreeSet::new();
        // Whether a substituteFrom source was left out: then an unset variable may be its.
        let mut unread_source = false;
        if let Some(post) = obj.spec("postBuild") {
            if let Some(Value::Object(substitute)) = post.get("substitute")
                && !substitute.is_empty()
            {
                let vars: Map<String, Value> =
                    substitute.iter().map(|(k, v)| (k.clone(), Value::String(scalar_text(v)))).collect();
                fields.insert("substitute".into(), Value::Object(vars));
            }
            let mut from_files = Vec::new();
            for from in post.get("substituteFrom").and_then(Value::as_array).into_iter().flatten() {
                let kind = from.get("kind").and_then(Value::as_str).unwrap_or_default();
                let from_name = from.get("name").and_then(Value::as_str).unwrap_or_default();
                let optional = from.get("optional").and_then(Value::as_bool).unwrap_or(false);
                let line = self.item_line(&obj, "/spec/postBuild/substituteFrom", "name", from_name);
                match (kind, find(config, kind, from_name, obj.namespace())) {
                    // A file of its own: weaver reads its data (decrypting it when SOPS
                    // encrypted it), so the file is named as it is.
                    (_, Some(found)) if self.alone_in_file(found) => {
                        if kind == "Secret" || found.is_encrypted() {
                            for field in ["data", "stringData"] {
                                let keys = found.object.get(field).and_then(Value::as_object).into_iter().flatten();
                                secret_names.extend(keys.map(|(k, _)| k.clone()));
                            }
                        }
                        from_files.push(Value::String(found.file.to_string_lossy().replace('\\', "/")));
                    }
                    ("ConfigMap", Some(cm)) if !cm.is_encrypted() => {
                        let data: Map<String, Value> =
                            cm.object.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
                        let path = PathBuf::from(GENERATED_DIR).join(env).join("vars").join(format!(
                            "{}-{}.yaml",
                            if cm.namespace().is_empty() { obj.namespace() } else { cm.namespace() },
                            from_name
                        ));
                        if !files.iter().any(|(p, _)| *p == path) {
                            files.push((
                                path.clone(),
                                format!(
                                    "# The data of ConfigMap {from_name} ({}), Flux's substituteFrom, by `weaver import flux`.\n{}",
                                    cm.file.display(),
                                    weaver_yaml::to_yaml_string(&Value::Object(data))
                                ),
                            ));
                        }
                        from_files.push(Value::String(path.to_string_lossy().replace('\\', "/")));
                    }
                    (_, None) if optional => {}
                    ("Secret" | "ConfigMap", Some(secret)) => {
                        unread_source = true;
                        self.leave(
                            &obj.file,
                            line,
                            format!("{what}: substituteFrom {kind} {from_name}"),
                            format!(
                                "a Secret's or SOPS-encrypted ConfigMap's values are not copied into files ({}): write \
                                 them in a SOPS-encrypted flat file (`weaver secrets encrypt`) and list it in the \
                                 release's `substituteFrom`",
                                secret.file.display()
                            ),
                        );
                    }
                    _ => {
                        unread_source = true;
                        self.leave(
                            &obj.file,
                            line,
                            format!("{what}: substituteFrom {kind} {from_name}"),
                            "not found in the repository (Flux reads it from the cluster): write its variables in a \
                             file and list it in the release's `substituteFrom`",
                        );
                    }
                }
            }
            if !from_files.is_empty() {
                fields.insert("substituteFrom".into(), Value::Array(from_files));
            }
        }
        if let Some(vars) = self.variables(&obj, config) {
            let vars_tainted = vars.tainted.clone();
            let mut unset = BTreeSet::new();
            for plain in &ks.plain {
                let mut object = plain.object.clone();
                let mut vars = vars.values.clone();
                vars.extend(secret_names.iter().map(|name| (name.clone(), String::new())));
                // Set, to what the parent could not substitute (the release is not installed).
                vars.extend(vars_tainted.iter().map(|(name, (written, _))| (name.clone(), written.clone())));
                // Each unset variable in turn, so that all of them are named.
                while let Err(substitute::Problem::Unset(name)) = substitute::substitute(&mut object, &vars) {
                    vars.insert(name.clone(), String::new());
                    unset.insert(name);
                }
            }
            if !unset.is_empty() && !unread_source {
                // Flux's default (without StrictPostBuildSubstitutions) substitutes nothing.
                let substitute = fields.entry("substitute").or_insert_with(|| json!({}));
                for name in &unset {
                    substitute[name.as_str()] = Value::String(String::new());
                }
            } else if !unset.is_empty() {
                fields.insert("installed".into(), Value::Bool(false));
                let names: Vec<String> = unset.into_iter().collect();
                let line = self.line(&obj, Some("postBuild"));
                self.leave(
                    &obj.file,
                    line,
                    format!("{what}: postBuild variables {}", names.join(", ")),
                    "set by no substitute or ConfigMap of the repository (a Secret's, or the cluster's): the release \
                     is written with `installed: false`; give them in a `substituteFrom` file and remove that line",
                );
            }
        }
        if self.unsubstituted.contains(&(obj.file.clone(), obj.document)) && !fields.contains_key("installed") {
            // Its own settings keep a `${…}` its parent would have substituted (listed where it
            // is): rendered so, the release would deploy that text.
            fields.insert("installed".into(), Value::Bool(false));
        }
        let after_ks = depends_on(&obj);
        Some(Release { name, fields, after_ks, after_hr: Vec::new() })
    }

    /// Lists a Kustomization's settings that have no weaver equivalent.
    pub(super) fn kustomization_settings(&mut self, obj: &Obj) {
        let what = obj.describe();
        let Some(Value::Object(spec)) = obj.object.get("spec") else { return };
        for (key, value) in spec {
            let why = match key.as_str() {
                "prune" if value == &Value::Bool(false) => {
                    "weaver prunes what a revision dropped: give `weaver apply --no-prune` to keep it"
                }
                "suspend" if value == &Value::Bool(true) => {
                    "nothing reconciles between weaver's applies: leave the release out of the environment while \
                     it is suspended"
                }
                "force" if value == &Value::Bool(true) => {
                    "weaver never replaces objects: `weaver apply --force-conflicts` takes fields others own"
                }
                "serviceAccountName" => {
                    "weaver applies as the kubeconfig's user, or as an EnvironmentSync's `serviceAccountName`"
                }
                "kubeConfig" => "a remote cluster: give the environment's `cluster.context`",
                "healthCheckExprs" => "write them as the environment's `healthChecks:` (CEL rules per kind)",
                "deletionPolicy" if !matches!(value.as_str(), Some("MachineGenerated" | "Delete")) => {
                    "weaver deletes a release's objects when the release is removed (`apply --prune-releases`)"
                }
                "healthChecks" => {
                    "`weaver apply --wait` waits for every object of every release (these included when they are \
                     the release's)"
                }
                _ => continue,
            };
            let line = self.line(obj, Some(key));
            self.leave(&obj.file, line, format!("{what}: {key}"), why);
        }
    }
}
