//! An OCI artifact of rendered manifests (`weaver hydrate --oci`'s, `flux push artifact`'s), as
//! an EnvironmentSync applies it: its YAML and JSON files, each a stream of Kubernetes objects
//! taken as written. The tree is checked whole once it is unpacked, before anything is applied;
//! a refusal names the file and line, never a value (the manifests may hold Secrets).

use std::path::{Path, PathBuf};

use weaver_core::manifest;

/// The names kustomize reads a kustomization from, which Flux builds where it finds one.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Whether the file `name` is one of manifests: `.yaml`, `.yml` or `.json`, as `kubectl apply
/// -f DIR` reads them.
pub fn is_manifest_file(name: &str) -> bool {
    [".yaml", ".yml", ".json"].iter().any(|extension| name.ends_with(extension))
}

/// The manifest files under `dir`, by path from it, in path order; other files are passed over.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let files = all_files(dir)?;
    Ok(files.into_iter().filter(|path| is_manifest_file(&path.to_string_lossy())).collect())
}

/// Every file under `dir`, by path from it, in path order.
fn all_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            match entry.file_type()?.is_dir() {
                true => pending.push(path),
                false => files.push(path),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Checks the tree unpacked at `dir`: every manifest file is UTF-8 YAML (or JSON) whose every
/// document is a Kubernetes object, none SOPS-encrypted, and no kustomization is in it. Err
/// says the first that is not, as `path:line: why`.
pub fn check_tree(dir: &Path) -> Result<(), String> {
    let files = all_files(dir).map_err(|e| format!("cannot read its tree: {e}"))?;
    let is_kustomization =
        |path: &&PathBuf| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| KUSTOMIZATION_FILES.contains(&n));
    if let Some(path) = files.iter().find(is_kustomization) {
        return Err(format!(
            "`{}` is a kustomization: weaver applies an artifact's manifests as they are and builds no kustomization \
             from one (build it before the push, `kustomize build DIR`, or push the weaver repository with a \
             `kustomize:` release, `weaver push artifact`)",
            path.display()
        ));
    }
    for path in files.iter().filter(|path| is_manifest_file(&path.to_string_lossy())) {
        let bytes = std::fs::read(dir.join(path)).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| format!("`{}` is not UTF-8 text", path.display()))?;
        check_file(path, text)?;
    }
    Ok(())
}

/// One manifest file `text`, at `path` in the tree: every document a Kubernetes object, not
/// encrypted by SOPS.
fn check_file(path: &Path, text: &str) -> Result<(), String> {
    let documents = weaver_yaml::documents(path, text).map_err(|e| {
        let line = e.location.as_ref().and_then(|l| l.line).map(|l| format!(":{l}")).unwrap_or_default();
        format!("`{}{line}` is not valid YAML: {}", path.display(), e.message)
    })?;
    let lines = weaver_yaml::scalars::document_lines(text).unwrap_or_default();
    for (index, object) in documents.iter().enumerate() {
        let at = || match lines.get(index) {
            Some(line) => format!("`{}:{line}`", path.display()),
            None => format!("`{}`", path.display()),
        };
        if let Some(problem) = manifest::object_problem(object) {
            return Err(format!(
                "{} (document {}) {problem}: every document of a manifest file must be a Kubernetes object",
                at(),
                index + 1
            ));
        }
        if object.get("sops").is_some() {
            return Err(format!(
                "{} (document {}) is encrypted by SOPS, which weaver does not decrypt in an artifact of manifests: \
                 hydrate with `--secrets omit` and deliver Secrets apart, or push the weaver repository (`weaver push artifact`)",
                at(),
                index + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use weaver_test_support::files::tree;

    const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn a_tree_s_yaml_and_json_files_are_its_manifests_and_other_files_are_passed_over() {
        let dir = tree(&[
            ("b/web.yaml", CONFIG_MAP),
            ("a.yml", CONFIG_MAP),
            ("c.json", r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#),
            ("dev/weaver-hydrate.metadata", "{}"),
            ("README.md", "# not a manifest\n"),
        ]);
        let files = manifest_files(dir.path()).unwrap();
        assert_eq!(files, ["a.yml", "b/web.yaml", "c.json"].map(PathBuf::from));
        assert_eq!(check_tree(dir.path()), Ok(()));
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused_by_file_and_line_without_its_values() {
        let text = format!(
            "{CONFIG_MAP}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n---\n\nnot: an object\npassword: hunter2\n"
        );
        let dir = tree(&[("dev/app.yaml", &text)]);
        let refused = check_tree(dir.path()).unwrap_err();
        assert_eq!(
            refused,
            "`dev/app.yaml:14` (document 3) has no `apiVersion`: every document of a manifest file must be a Kubernetes object"
        );
        assert!(!refused.contains("hunter2"), "{refused}");
        let broken = tree(&[("x.yaml", "a: [1\npassword: hunter2\n")]);
        let refused = check_tree(broken.path()).unwrap_err();
        assert!(refused.starts_with("`x.yaml:") && refused.contains("is not valid YAML"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn sops_encrypted_documents_and_kustomizations_are_refused_naming_them() {
        let encrypted = format!("{CONFIG_MAP}sops:\n  mac: ENC[AES256_GCM,data:x]\n");
        let dir = tree(&[("dev/secret.yaml", &encrypted)]);
        let refused = check_tree(dir.path()).unwrap_err();
        assert!(refused.starts_with("`dev/secret.yaml:1` (document 1) is encrypted by SOPS"), "{refused}");
        for name in ["kustomization.yaml", "apps/kustomization.yml", "apps/Kustomization"] {
            let dir = tree(&[(name, "resources: [a.yaml]\n"), ("apps/a.yaml", CONFIG_MAP)]);
            let refused = check_tree(dir.path()).unwrap_err();
            assert!(refused.starts_with(&format!("`{name}` is a kustomization")), "{name}: {refused}");
        }
    }
}
