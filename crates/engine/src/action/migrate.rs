//! `weaver migrate`: weaver's custom resources moved to the storage version, `v1beta1`, as
//! `flux migrate` does. In a cluster (for one upgraded by hand; the controller does it by itself
//! once its conversion webhook serves): every object of weaver's CRDs written again so that the
//! API server stores it at `v1beta1`, and the CRDs' `status.storedVersions` narrowed to it
//! (`weaver_cluster::migrate_stored_versions`). In a directory (`-f DIR`): every EnvironmentSync
//! and ConfigMapSync manifest at `v1alpha1` rewritten to `v1beta1`.
//!
//! A file is rewritten line by line: only the `apiVersion:` line of such a document changes, so
//! comments, order and Helm templates stay as they are, and a second run finds nothing. A
//! document whose fields differ between the versions (an EnvironmentSync with a
//! `status.imageUpdates`, which a repository seldom holds) is converted and written anew.

use std::path::{Path, PathBuf};

use serde_json::Value;
use weaver_api::v1alpha1::{STORAGE_VERSION, VERSION};
use weaver_cluster::{Cluster, ConnectOptions, Migrated};
use weaver_core::error::{Error, Result};

/// The CRDs weaver serves, whose objects are migrated.
pub const CRDS: [&str; 2] = [weaver_api::environment_sync::CRD_NAME, weaver_api::configmap_sync::CRD_NAME];

/// Migrates the objects of the CRDs `crds` (of [`CRDS`]) in the cluster; a CRD not installed
/// is left out.
pub async fn stored_versions(client: &kube::Client, crds: &[&str], dry_run: bool) -> Result<Vec<Migrated>> {
    let mut done = Vec::new();
    for &crd in crds {
        let unconverted = weaver_api::v1alpha1::holds_older_fields;
        if let Some(migrated) = weaver_cluster::migrate_stored_versions(client, crd, dry_run, &unconverted).await? {
            done.push(migrated);
        }
    }
    Ok(done)
}

/// [`stored_versions`] in the cluster `connect` names (the CLI's).
pub async fn cluster_stored_versions(connect: &ConnectOptions, dry_run: bool) -> Result<Vec<Migrated>> {
    let cluster = Cluster::connect(connect).await?;
    stored_versions(&cluster.client(), &CRDS, dry_run).await
}

/// A file `-f` rewrote (or, `dry_run`, would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenFile {
    pub path: PathBuf,
    /// Documents whose apiVersion line changed.
    pub documents: usize,
    /// Of them, those written anew (their fields differ between the versions): their comments
    /// are gone.
    pub rewritten_whole: usize,
}

/// Rewrites the `v1alpha1` EnvironmentSyncs and ConfigMapSyncs of the YAML files under `root`
/// (`.git` left out); with `dry_run`, only says which it would.
pub fn files(root: &Path, dry_run: bool) -> Result<Vec<RewrittenFile>> {
    let mut out = Vec::new();
    let mut paths = Vec::new();
    collect(root, &mut paths)?;
    paths.sort();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
        if !text.contains(&format!("{}/{VERSION}", weaver_api::GROUP)) {
            continue;
        }
        let (rewritten, documents, whole) = rewrite(&path, &text)?;
        if documents == 0 {
            continue;
        }
        if !dry_run {
            std::fs::write(&path, rewritten)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
        }
        out.push(RewrittenFile { path, documents, rewritten_whole: whole });
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::new(format!("cannot read directory {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(format!("cannot read directory {}: {e}", dir.display())))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        if kind.is_dir() && entry.file_name() != ".git" {
            collect(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The text with its documents migrated, how many were, and how many written anew.
fn rewrite(path: &Path, text: &str) -> Result<(String, usize, usize)> {
    let (mut out, mut documents, mut whole) = (String::with_capacity(text.len()), 0, 0);
    let mut first_line = 1;
    for document in split_documents(text) {
        let lines = document.lines().count().max(1);
        match migrate_document(path, first_line, document)? {
            Some((text, anew)) => {
                documents += 1;
                whole += usize::from(anew);
                out.push_str(&text);
            }
            None => out.push_str(document),
        }
        first_line += lines;
    }
    Ok((out, documents, whole))
}

/// The text cut before each line that is `---` (with what follows it on that line).
fn split_documents(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if at > start && (line.trim_end() == "---" || line.starts_with("--- ")) {
            parts.push(&text[start..at]);
            start = at;
        }
        at += line.len();
    }
    parts.push(&text[start..]);
    parts
}

/// A top-level key's value on its line (`apiVersion: "x" # note` is `x`).
fn top_level<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let value = line.strip_prefix(key)?.strip_prefix(':')?;
    let value = value.split(" #").next().unwrap_or(value).trim();
    Some(value.trim_matches(|c| c == '"' || c == '\''))
}

/// The document migrated, and whether it was written anew; None when it is not one to migrate.
fn migrate_document(path: &Path, first_line: usize, document: &str) -> Result<Option<(String, bool)>> {
    let old = format!("{}/{VERSION}", weaver_api::GROUP);
    let new = format!("{}/{STORAGE_VERSION}", weaver_api::GROUP);
    let version_line = document.split_inclusive('\n').position(|l| top_level(l, "apiVersion") == Some(old.as_str()));
    let kind = document.lines().find_map(|l| top_level(l, "kind"));
    let (Some(version_line), Some(kind @ ("EnvironmentSync" | "ConfigMapSync"))) = (version_line, kind) else {
        return Ok(None);
    };
    let has_status = document.lines().any(|l| top_level(l, "status").is_some());
    if kind == "EnvironmentSync" && has_status {
        let at = format!("{}:{}", path.display(), first_line);
        let object: Value = weaver_yaml::documents(path, document)
            .map_err(|e| Error::new(format!("{at}: cannot read the EnvironmentSync to migrate its status: {e}")))?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let converted =
            weaver_api::v1alpha1::convert(object.clone(), &new).map_err(|e| Error::new(format!("{at}: {e}")))?;
        let mut only_the_version = object;
        only_the_version["apiVersion"] = Value::String(new.clone());
        if converted != only_the_version {
            let separator = if document.starts_with("---") { document.lines().next().unwrap_or("---") } else { "" };
            let body = weaver_yaml::to_yaml_string(&converted);
            let text = if separator.is_empty() { body } else { format!("{separator}\n{body}") };
            return Ok(Some((text, true)));
        }
    }
    let text: String = document
        .split_inclusive('\n')
        .enumerate()
        .map(|(i, line)| if i == version_line { line.replacen(&old, &new, 1) } else { line.to_string() })
        .collect();
    Ok(Some((text, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_FILE: &str = "# The shop's sync.\n\
        apiVersion: weaver.example.com/v1alpha1 # migrated by hand later\n\
        kind: EnvironmentSync\n\
        metadata: {name: shop, namespace: team-a}\n\
        spec:\n  source: {url: 'https://git.example/shop.git', ref: {branch: main}}\n\
        ---\n\
        apiVersion: v1\n\
        kind: ConfigMap\n\
        metadata: {name: keep}\n\
        data: {apiVersion: weaver.example.com/v1alpha1}\n\
        ---\n\
        apiVersion: \"weaver.example.com/v1alpha1\"\n\
        kind: ConfigMapSync\n\
        metadata: {name: {{ .Release.Name }}}\n";

    #[test]
    fn only_the_api_version_lines_of_weavers_kinds_change_and_a_second_run_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("clusters/prod")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        let file = dir.path().join("clusters/prod/sync.yaml");
        std::fs::write(&file, REPO_FILE).unwrap();
        std::fs::write(dir.path().join(".git/sync.yaml"), REPO_FILE).unwrap();
        let done = files(dir.path(), false).unwrap();
        assert_eq!(done, [RewrittenFile { path: file.clone(), documents: 2, rewritten_whole: 0 }]);
        let after = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            after,
            REPO_FILE
                .replacen("apiVersion: weaver.example.com/v1alpha1 #", "apiVersion: weaver.example.com/v1beta1 #", 1)
                .replacen("\"weaver.example.com/v1alpha1\"", "\"weaver.example.com/v1beta1\"", 1)
        );
        assert!(after.contains("data: {apiVersion: weaver.example.com/v1alpha1}"), "a ConfigMap's data is data");
        assert!(files(dir.path(), false).unwrap().is_empty(), "byte-stable: nothing on a second run");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
        assert_eq!(std::fs::read_to_string(dir.path().join(".git/sync.yaml")).unwrap(), REPO_FILE);
    }

    #[test]
    fn a_status_whose_fields_changed_is_converted_and_a_dry_run_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let text = "apiVersion: weaver.example.com/v1alpha1\nkind: EnvironmentSync\nmetadata:\n  name: shop\n\
            spec:\n  source:\n    url: https://git.example/shop.git\n    ref:\n      branch: main\n\
            status:\n  imageUpdates:\n    images:\n    - dev registry.example/web none allowed\n";
        let file = dir.path().join("sync.yml");
        std::fs::write(&file, text).unwrap();
        let planned = files(dir.path(), true).unwrap();
        assert_eq!(planned[0].rewritten_whole, 1);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "a dry run writes nothing");
        files(dir.path(), false).unwrap();
        let object = &weaver_yaml::documents(&file, &std::fs::read_to_string(&file).unwrap()).unwrap()[0];
        assert_eq!(object["apiVersion"], "weaver.example.com/v1beta1");
        assert_eq!(object["status"]["imageUpdates"]["images"][0]["image"], "registry.example/web");
        assert!(files(dir.path(), false).unwrap().is_empty());
    }

    #[test]
    fn a_status_that_is_not_yaml_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: weaver.example.com/v1alpha1\nkind: EnvironmentSync\nstatus: {{ .Values.status }}\n";
        std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
        let err = files(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("bad.yaml:3: cannot read the EnvironmentSync to migrate its status"), "{err}");
    }
}
