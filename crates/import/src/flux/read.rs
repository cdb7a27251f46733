//! Reading the repository: its files once each, their objects and where each key and item
//! is (to name what an import leaves out by its line).

use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::Spanned;
use weaver_core::error::Result;
use weaver_project::source::lexical;

use super::{Import, LeftOut, Obj};
use crate::node::{Node, line};

impl<'a> Import<'a> {
    pub(super) fn read(&mut self, path: &Path) -> Option<String> {
        if let Some(text) = self.texts.get(path) {
            return Some(text.clone());
        }
        let bytes = self.source.read(path).ok()??;
        let text = String::from_utf8(bytes).ok()?;
        self.texts.insert(path.to_path_buf(), text.clone());
        Some(text)
    }

    /// The parsed documents of a file, with the line of every key and item, in the order the
    /// objects read from it number them (empty documents left out).
    pub(super) fn document(&mut self, file: &Path, document: usize) -> Option<&Spanned<Node>> {
        if !self.nodes.contains_key(file) {
            let text = self.read(file).unwrap_or_default();
            let docs = weaver_yaml::documents_as::<Spanned<Node>>(file, &text, "invalid YAML").unwrap_or_default();
            let docs = docs.into_iter().filter(|doc| !matches!(doc.value, Node::Null)).collect();
            self.nodes.insert(file.to_path_buf(), docs);
        }
        self.nodes.get(file)?.get(document.checked_sub(1)?)
    }

    /// The line of `key` in an object's document, or the document's first line: `key` is a JSON
    /// pointer (`/spec/chart/spec/valuesFiles`), or a field of its `spec`, itself or its
    /// `metadata`, looked for in that order.
    pub(super) fn line(&mut self, obj: &Obj, key: Option<&str>) -> u64 {
        self.line_in(&obj.file, obj.document, key)
    }

    pub(super) fn line_in(&mut self, file: &Path, document: usize, key: Option<&str>) -> u64 {
        let Some(doc) = self.document(file, document) else { return 1 };
        let pointers = match key {
            None => Vec::new(),
            Some(pointer) if pointer.starts_with('/') => vec![pointer.to_string()],
            Some(key) => ["/spec/", "/", "/metadata/"].iter().map(|at| format!("{at}{key}")).collect(),
        };
        pointers.iter().find_map(|pointer| Node::line_of(doc, pointer)).unwrap_or_else(|| line(doc))
    }

    /// The line of the item of the list at `list` (a JSON pointer) whose `field` is `value`, or
    /// of the list.
    pub(super) fn item_line(&mut self, obj: &Obj, list: &str, field: &str, value: &str) -> u64 {
        let found = self.document(&obj.file, obj.document).and_then(|doc| match &Node::at(doc, list)?.value {
            Node::List(items) => items
                .iter()
                .find(|item| {
                    Node::at(item, &format!("/{field}"))
                        .is_some_and(|v| matches!(&v.value, Node::Scalar(Value::String(s)) if s == value))
                })
                .map(line),
            _ => None,
        });
        found.unwrap_or_else(|| self.line(obj, Some(list)))
    }

    /// The line of the first string of an object's document that contains `needle`.
    pub(super) fn line_containing(&mut self, obj: &Obj, needle: &str) -> u64 {
        let found = self.document(&obj.file, obj.document).and_then(|doc| Node::line_containing(doc, needle));
        found.unwrap_or_else(|| self.line(obj, None))
    }

    pub(super) fn leave(&mut self, file: &Path, line: u64, what: impl Into<String>, why: impl Into<String>) {
        self.left_out.push(LeftOut { file: file.to_path_buf(), line, what: what.into(), why: why.into() });
    }

    pub(super) fn leave_at(&mut self, obj: &Obj, key: Option<&str>, what: impl Into<String>, why: impl Into<String>) {
        let line = self.line(obj, key);
        self.leave(&obj.file, line, what, why);
    }

    /// A path of a Flux object (a Kustomization's `spec.path`, a chart's) as a repository
    /// path: source- and kustomize-controller resolve it inside the artifact, so an absolute
    /// one (`/kubernetes/apps`) starts at the repository's root.
    pub(super) fn join(&self, path: &str) -> Option<PathBuf> {
        lexical(&self.root.join(path.trim_start_matches('/')))
    }

    /// Every `.yaml`/`.yml` file under `dir`, depth first in name order, as Flux's generator
    /// walks; with `stop_at_kustomization`, a subdirectory holding a kustomization file is
    /// listed itself instead of its files.
    pub(super) fn walk(&self, dir: &Path, stop_at_kustomization: bool, out: &mut Vec<PathBuf>) {
        let Ok(Some(entries)) = self.source.list(dir) else { return };
        for entry in entries {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                if entry.name.starts_with('.') {
                    continue;
                }
                if stop_at_kustomization && self.kustomization_in(&path) {
                    out.push(path);
                } else {
                    self.walk(&path, stop_at_kustomization, out);
                }
            } else if entry.name.ends_with(".yaml") || entry.name.ends_with(".yml") {
                out.push(path);
            }
        }
    }

    /// Whether a YAML file under the root holds a Flux object.
    pub(super) fn holds_flux_objects(&mut self) -> bool {
        let mut files = Vec::new();
        self.walk(&self.root.clone(), false, &mut files);
        files.iter().any(|file| self.objects_of(file).iter().any(Obj::is_flux))
    }

    pub(super) fn kustomization_in(&self, dir: &Path) -> bool {
        ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|name| matches!(self.source.read(&dir.join(name)), Ok(Some(_))))
    }

    /// The objects of a file, as kyaml reads them; none when it is not Kubernetes YAML.
    pub(super) fn objects_of(&mut self, file: &Path) -> Vec<Obj> {
        self.parsed(file).unwrap_or_default()
    }

    /// The objects of a file Flux builds: one that does not parse is listed, as Flux fails on it.
    pub(super) fn objects_built(&mut self, file: &Path) -> Vec<Obj> {
        self.parsed(file).unwrap_or_else(|err| {
            let line = err.location.as_ref().and_then(|l| l.line).unwrap_or(1);
            let why = format!("not read: {}; kustomize-controller fails to build the path holding it", err.message);
            self.leave(file, line, "the file", why);
            Vec::new()
        })
    }

    pub(super) fn parsed(&mut self, file: &Path) -> Result<Vec<Obj>> {
        if let Some(objects) = self.objects.get(file) {
            return Ok(objects.clone());
        }
        let Some(text) = self.read(file) else { return Ok(Vec::new()) };
        let docs = weaver_yaml::documents_kyaml(file, &text)?;
        let objects: Vec<Obj> = docs
            .into_iter()
            .enumerate()
            .filter(|(_, doc)| doc.get("kind").is_some() && doc.get("apiVersion").is_some())
            .map(|(i, object)| Obj { object, file: file.to_path_buf(), document: i + 1 })
            .collect();
        self.objects.insert(file.to_path_buf(), objects.clone());
        Ok(objects)
    }
}
