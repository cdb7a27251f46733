//! Flux objects as the import tests write them into a Flux repository.

/// A Flux Kustomization `name` building `path` of the repository (its GitRepository
/// `flux-system`).
pub fn kustomization(name: &str, path: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\n\
         spec:\n  path: {path}\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
}
