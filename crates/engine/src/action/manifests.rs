//! The environments of an OCI artifact of rendered manifests, which an EnvironmentSync applies
//! as they are (see `weaver_source::manifests`): each a kustomization generated for its files,
//! as Flux's kustomize-controller generates one for a directory without one, rendered and
//! applied by the same actions as any environment.

use std::path::{Path, PathBuf};

use super::fleet::EnvironmentSelection;
use super::hydrate::{METADATA_FILE, release_files};
use weaver_core::error::{Error, Result};
use weaver_project::Environment;
use weaver_project::source::is_plain_name;

/// The environments `selection` names (by name only: a tree has no labels to select by) of
/// the tree at `repository`. An environment that `weaver hydrate --oci`
/// pushed (a directory `<name>/` holding its metadata file) has the releases it lists, each its
/// file `<name>/<release>.yaml`; otherwise the tree is one environment (then only one may be
/// named) of one release, `release`, whose objects are every manifest file of the tree. Objects
/// without a namespace, the records and the lock are in `namespace`.
pub fn manifest_environments(
    repository: &Path,
    selection: &EnvironmentSelection,
    namespace: &str,
    release: &str,
) -> Result<Vec<Environment>> {
    if !selection.selectors.is_empty() {
        return Err(Error::new(
            "spec.environmentSelector selects environments by the labels of their files, and an artifact of rendered manifests has none",
        )
        .with_help("name the artifact's environments in spec.environments"));
    }
    let names = &selection.envs;
    if names.is_empty() {
        return Err(Error::new("spec.environments names no environment of the artifact")
            .with_help("name the environment a tree of plain manifests is, or those `weaver hydrate --oci` pushed"));
    }
    // A tree `weaver hydrate --oci` pushed is its environments' directories alone: a name none
    // of them has is a mistake, never the whole tree (every environment's objects in one).
    let hydrated = hydrated_environments(repository)?;
    let mut environments = Vec::new();
    for name in names {
        if !is_plain_name(name) {
            return Err(Error::new(format!("`{name}` is not an environment name"))
                .with_help("name an environment of the artifact: a directory `weaver hydrate --oci` wrote"));
        }
        let dir = PathBuf::from(name);
        let metadata = repository.join(name).join(METADATA_FILE);
        let releases = match std::fs::read(&metadata) {
            Ok(bytes) => {
                let files = release_files(&format!("{name}/{METADATA_FILE}"), &bytes)?;
                let release =
                    |file: String| (file.trim_end_matches(".yaml").to_string(), dir.clone(), vec![dir.join(file)]);
                files.into_iter().map(release).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !hydrated.is_empty() => {
                return Err(Error::new(format!(
                    "the artifact has no environment `{name}`: it holds the environments {} (`weaver hydrate --oci` wrote them)",
                    hydrated.join(", ")
                ))
                .with_help("name one of them in spec.environments"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && names.len() == 1 => {
                let files = weaver_source::manifests::manifest_files(repository)
                    .map_err(|e| Error::io("read the artifact's manifests", repository, e))?;
                if files.is_empty() {
                    return Err(Error::new("the artifact holds no manifest file (`.yaml`, `.yml`, `.json`)")
                        .with_help("push a directory of manifests, or point spec.source.path at one"));
                }
                vec![(release.to_string(), PathBuf::from("."), files)]
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(format!(
                    "the artifact has no environment `{name}`: no directory `{name}/` with the {METADATA_FILE} `weaver hydrate --oci` writes"
                ))
                .with_help("an artifact of plain manifests is one environment: name only one in spec.environments"));
            }
            Err(e) => return Err(Error::io("read", &metadata, e)),
        };
        environments.push(Environment::of_manifests(name, namespace, releases));
    }
    Ok(environments)
}

/// The environments of a tree `weaver hydrate --oci` pushed: its directories holding the
/// metadata file, by name; none in a tree of plain manifests.
fn hydrated_environments(repository: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(repository).map_err(|e| Error::io("read the artifact", repository, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read the artifact", repository, e))?;
        if entry.path().join(METADATA_FILE).is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    use weaver_test_support::files::tree;

    fn named(names: &[&str]) -> EnvironmentSelection {
        EnvironmentSelection { envs: names.iter().map(|n| n.to_string()).collect(), ..Default::default() }
    }

    /// Each environment's releases: name, directory and files.
    fn releases(environments: &[Environment]) -> Vec<(String, String, Vec<String>)> {
        let shown = |r: &weaver_project::Release| {
            let files = r.generated_resources.iter().map(|f| f.display().to_string()).collect();
            (format!("{}/{}", r.namespace, r.name), r.kustomize.clone().unwrap().display().to_string(), files)
        };
        environments.iter().flat_map(|e| e.releases.iter().map(shown)).collect()
    }

    #[test]
    fn a_hydrated_environment_has_the_releases_its_metadata_lists_and_a_plain_tree_is_one() {
        let metadata = r#"{"releases": [{"name": "web", "file": "web.yaml"}, {"name": "db", "file": "db.yaml"}]}"#;
        let hydrated = tree(&[
            ("dev/weaver-hydrate.metadata", metadata),
            ("dev/web.yaml", ""),
            ("dev/db.yaml", ""),
            ("prod/weaver-hydrate.metadata", r#"{"releases": [{"name": "web", "file": "web.yaml"}]}"#),
        ]);
        let names = named(&["dev", "prod"]);
        let environments = manifest_environments(hydrated.path(), &names, "team-a", "shop").unwrap();
        assert_eq!(environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["dev", "prod"]);
        assert_eq!(environments[1].lock_namespace, "team-a");
        assert_eq!(
            releases(&environments),
            [
                ("team-a/web".to_string(), "dev".to_string(), vec!["dev/web.yaml".to_string()]),
                ("team-a/db".to_string(), "dev".to_string(), vec!["dev/db.yaml".to_string()]),
                ("team-a/web".to_string(), "prod".to_string(), vec!["prod/web.yaml".to_string()]),
            ]
        );

        // A name the hydrated tree has no directory for is refused, not read as a plain tree of
        // every environment's files.
        let typo = manifest_environments(hydrated.path(), &named(&["staging"]), "team-a", "shop").unwrap_err();
        assert!(typo.message.contains("no environment `staging`: it holds the environments dev, prod"), "{typo}");

        let plain = tree(&[("apps/web.yaml", ""), ("infra.yml", ""), ("notes.txt", "")]);
        let environments = manifest_environments(plain.path(), &named(&["dev"]), "team-a", "shop").unwrap();
        assert_eq!(
            releases(&environments),
            [("team-a/shop".to_string(), ".".to_string(), vec!["apps/web.yaml".to_string(), "infra.yml".to_string()])]
        );
        // Two environments of a plain tree, a name that climbs, an empty tree: refused.
        let two = manifest_environments(plain.path(), &names, "team-a", "shop").unwrap_err();
        assert!(two.message.contains("no environment `dev`"), "{two}");
        let climbs = manifest_environments(plain.path(), &named(&[".."]), "team-a", "shop").unwrap_err();
        assert!(climbs.message.contains("is not an environment name"), "{climbs}");
        let empty = tree(&[("README.md", "")]);
        let none = manifest_environments(empty.path(), &named(&["dev"]), "team-a", "shop").unwrap_err();
        assert!(none.message.contains("holds no manifest file"), "{none}");
        let selected = EnvironmentSelection { selectors: vec!["tier=prod".into()], ..named(&["dev"]) };
        let labels = manifest_environments(plain.path(), &selected, "team-a", "shop").unwrap_err();
        assert!(labels.message.starts_with("spec.environmentSelector selects"), "{labels}");
    }
}
