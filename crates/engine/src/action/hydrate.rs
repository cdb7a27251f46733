//! Hydrate: the rendered-manifests pattern. Each selected environment's objects, rendered by
//! [`super::render::render`], written as one file per release to a directory, to a git branch
//! or to an OCI artifact's tag (Flux's format), with a metadata file naming where they came
//! from. Secrets are SOPS-encrypted to the environment's own age recipients, or left out; their
//! plaintext never leaves memory. Helm hooks are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::fleet::FleetContext;
use super::render::{RenderOptions, render};
use super::{Context, open_project};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::Manifest;
use weaver_git::hydrated::{ArtifactSource, Branch};
use weaver_git::{GitRepo, Provenance};
use weaver_project::{Environment, Project};
use weaver_secrets::{self as secrets, EncryptionSettings, Identities, Selector, SopsFile};
use weaver_source::charts::http::{Connection, Machine};
use weaver_source::charts::oci::{self, Artifact};

/// The file in each environment's directory that says what was hydrated, from what. Not
/// `.yaml` or `.json`, so that Flux and Argo CD do not take it for manifests (Argo CD's hydrator
/// names its own `hydrator.metadata` alike).
pub const METADATA_FILE: &str = "weaver-hydrate.metadata";

/// What Flux's kustomize-controller (and sops' Kubernetes convention) encrypts of a Secret.
const SECRET_FIELDS: &str = "^(data|stringData)$";

/// Where hydrated environments go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `--out DIR`: `DIR/<env>/<release>.yaml`.
    Directory(PathBuf),
    /// `--branch NAME`: `<env>/<release>.yaml` in a commit on that branch of the repository.
    Branch(String),
    /// `--oci REGISTRY/REPO:TAG`: the tree a branch would hold, pushed as an OCI artifact in
    /// Flux's format, in place of what the tag held.
    Oci(Artifact),
}

/// What becomes of Secret objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretObjects {
    /// SOPS-encrypted (age) to the environment's recipients.
    Encrypted,
    /// Left out; the metadata names them.
    Omitted,
}

/// How to hydrate.
pub struct HydrateOptions {
    /// One environment's render each, in the order given.
    pub renders: Vec<RenderOptions>,
    pub target: Target,
    pub secrets: SecretObjects,
}

/// What a hydration did (`-o json`, schema version 1).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hydrated {
    pub schema_version: u32,
    /// `{"directory": DIR}` or `{"branch": NAME}`.
    pub target: TargetReport,
    /// Whether anything was written: exit code 2 when so, 0 when not.
    pub changed: bool,
    /// The commit made on the branch; null for a directory or when nothing changed.
    pub commit: Option<String>,
    /// The branch's commit before (the new commit's parent); null for a new branch or a directory.
    pub parent: Option<String>,
    /// `--oci`: the digest (`sha256:…`) of the artifact the tag names now, pushed or already
    /// there; null for a directory or a branch.
    pub digest: Option<String>,
    /// The commit rendered from, and whether the working tree differed from it; null outside git.
    pub source: Option<Provenance>,
    pub environments: Vec<EnvironmentReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetReport {
    Directory(PathBuf),
    Branch(String),
    /// `REGISTRY/REPO:TAG`.
    Oci(String),
}

/// One environment's part of [`Hydrated`]; paths are relative to the target.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentReport {
    pub environment: String,
    /// Whether a release's file was written or removed, or what the metadata says of them (the
    /// Secrets and hooks left out) changed: the metadata is rewritten then only.
    pub changed: bool,
    /// Files written (created or changed), the metadata file included.
    pub written: Vec<String>,
    /// Files of releases the environment no longer renders, removed.
    pub removed: Vec<String>,
    /// Files that were already as rendered.
    pub unchanged: Vec<String>,
    /// Secret objects, `<release>/<namespace>/<name>`, and what became of them.
    pub secrets: BTreeMap<String, SecretObjects>,
    /// Helm hooks left out (see [`HookMetadata`]).
    pub hooks: Vec<HookMetadata>,
}

/// A Helm hook (`helm.sh/hook`) left out of the files: a GitOps tool other than Argo CD would
/// apply it as a plain object, once, beside the others (a pre-upgrade migration Job with the
/// Deployment it should precede, a test Pod at every sync), and keep it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookMetadata {
    pub release: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The `helm.sh/hook` annotation: `pre-install,pre-upgrade`.
    pub events: String,
}

/// The metadata file's content (schema version 1).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    schema_version: u32,
    environment: &'a str,
    source: Option<&'a Provenance>,
    weaver: &'static str,
    releases: Vec<ReleaseMetadata>,
    /// Secrets left out (`--secrets omit`), by name only.
    omitted_secrets: Vec<String>,
    /// Helm hooks, always left out.
    omitted_hooks: &'a [HookMetadata],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseMetadata {
    name: String,
    file: String,
    /// `sha256:<hex>` of the file as written.
    digest: String,
    objects: usize,
}

/// Renders each environment and writes those whose files differ from the target's; nothing is
/// written unless every environment rendered.
pub fn hydrate(options: &HydrateOptions, cx: FleetContext) -> Result<Hydrated> {
    let first = options.renders.first().ok_or_else(|| Error::new("no environment to hydrate"))?;
    let (repo, rev) = (&first.selection.repo, first.selection.rev.as_deref());
    let source = weaver_git::provenance(repo, rev)?;
    let mut writing = match &options.target {
        Target::Branch(name) => Writing::Branch(GitRepo::open(repo)?.hydrated_branch(name)?),
        Target::Directory(dir) => {
            super::refuse_repository_dirs("--out", dir, repo)?;
            Writing::Directory(dir)
        }
        Target::Oci(artifact) => {
            let mut connection = artifact.connect(&Machine::load(|key| std::env::var(key).ok())?)?;
            let pulled = oci::pull_artifact(&mut connection, artifact, None)?;
            let (digest, tree) = pulled.map_or((None, oci::Tree::new()), |(digest, tree)| (Some(digest), tree));
            Writing::Oci(Box::new(ArtifactTag { artifact, connection, digest, tree }))
        }
    };
    let previous = |path: &str| -> Result<Option<Vec<u8>>> {
        match &writing {
            Writing::Branch(branch) => branch.read(Path::new(path)),
            Writing::Directory(dir) => read_file(&dir.join(path)),
            Writing::Oci(tag) => Ok(tag.tree.get(path).cloned()),
        }
    };
    let project = open_project(repo, rev)?;
    let mut planned = Vec::new();
    for render_options in &options.renders {
        let env_name = render_options.selection.env.clone();
        let on = |progress: super::Progress<'_>| (cx.on)(&env_name, progress);
        let context = cx.environment(&on);
        let desired = render(render_options, context)?;
        let env = desired.env.as_ref();
        let writer =
            EnvironmentWriter { project: &project, options: render_options, env, context, previous: &previous };
        planned.push(writer.plan(&desired.rendered, options.secrets, source.as_ref())?);
    }
    let changes: BTreeMap<String, Option<Vec<u8>>> = planned.iter().flat_map(|p| p.changes.clone()).collect();
    let changed = !changes.is_empty();
    let (mut commit, mut parent, mut digest) = (None, None, None);
    match &mut writing {
        Writing::Branch(branch) => {
            parent = branch.tip();
            if changed {
                let names: Vec<&str> =
                    planned.iter().filter(|p| p.report.changed).map(|p| p.report.environment.as_str()).collect();
                let subject = format!("weaver hydrate: {}", names.join(", "));
                commit = Some(branch.commit(&changes, &subject, source.as_ref())?);
            }
        }
        Writing::Directory(dir) => write_directory(dir, &changes)?,
        Writing::Oci(tag) => digest = tag.push(&changes, repo, source.as_ref())?,
    }
    Ok(Hydrated {
        schema_version: 1,
        target: match &options.target {
            Target::Directory(dir) => TargetReport::Directory(dir.clone()),
            Target::Branch(name) => TargetReport::Branch(name.clone()),
            Target::Oci(artifact) => TargetReport::Oci(artifact.to_string()),
        },
        changed,
        commit,
        parent,
        digest,
        source,
        environments: planned.into_iter().map(|p| p.report).collect(),
    })
}

/// Where a hydration writes, opened.
enum Writing<'a> {
    Directory(&'a Path),
    Branch(Branch),
    Oci(Box<ArtifactTag<'a>>),
}

/// An artifact's tag, with the tree it held when opened (empty for a new tag).
struct ArtifactTag<'a> {
    artifact: &'a Artifact,
    connection: Connection,
    /// The tag's manifest digest when opened; None for a new tag.
    digest: Option<String>,
    tree: oci::Tree,
}

impl ArtifactTag<'_> {
    /// The tag's tree with `changes` pushed, unless nothing changed or the tag already names
    /// that artifact; the source commit's note names it. Returns the tag's digest.
    fn push(
        &mut self,
        changes: &BTreeMap<String, Option<Vec<u8>>>,
        repo: &Path,
        source: Option<&Provenance>,
    ) -> Result<Option<String>> {
        if changes.is_empty() {
            return Ok(self.digest.clone());
        }
        for (path, content) in changes {
            match content {
                Some(bytes) => self.tree.insert(path.clone(), bytes.clone()),
                None => self.tree.remove(path),
            };
        }
        let git = source.map(|_| GitRepo::open(repo)).transpose()?;
        let described = match (&git, source) {
            (Some(git), Some(source)) => Some(git.artifact_source(source)?),
            _ => None,
        };
        let built = oci::build_artifact(&self.tree, source_annotations(described.as_ref()));
        if self.digest.as_deref() != Some(built.digest.as_str()) {
            oci::push_artifact(&mut self.connection, self.artifact, &built)?;
        }
        if let (Some(git), Some(source)) = (&git, source) {
            git.note_artifact(source, &self.artifact.to_string(), &built.digest)?;
        }
        Ok(Some(built.digest))
    }
}

/// The annotations `flux push artifact` sets, from the source commit described (outside git,
/// the time `flux push artifact --reproducible` gives, and no source or revision).
pub(crate) fn source_annotations(described: Option<&ArtifactSource>) -> BTreeMap<String, String> {
    let annotations = BTreeMap::from([
        (oci::CREATED_ANNOTATION, described.map_or("1970-01-01T00:00:00Z", |s| s.created.as_str())),
        (oci::SOURCE_ANNOTATION, described.map_or("", |s| s.url.as_str())),
        (oci::REVISION_ANNOTATION, described.map_or("", |s| s.revision.as_str())),
    ]);
    annotations.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// One environment's files as they should be, compared with the target's.
struct Planned {
    /// `<env>/<file>` → its new content, or None to remove it.
    changes: BTreeMap<String, Option<Vec<u8>>>,
    report: EnvironmentReport,
}

/// What encrypting an environment's Secrets needs, found once and only when a Secret needs it.
#[derive(Default)]
struct Encryption {
    /// The recipients and selector (see [`EnvironmentWriter::encryption_settings`]).
    settings: Option<EncryptionSettings>,
    /// The identities that read back the Secrets hydrated before, if any can be loaded.
    identities: Option<Option<Identities>>,
    /// The Secrets hydrated before that did not decrypt, by file, with the first one's error:
    /// told once, when every file is written.
    unreadable: BTreeMap<String, (usize, String)>,
}

/// How many of the Secrets hydrated before do not decrypt, and where (`unreadable`: by file,
/// with the first one's error): one line for a run, however many there are. None: all do.
fn undecrypted(unreadable: &BTreeMap<String, (usize, String)>) -> Option<String> {
    // The error names its file.
    let (_, first) = unreadable.values().next()?;
    let total: usize = unreadable.values().map(|(n, _)| n).sum();
    let files: Vec<String> = unreadable.iter().map(|(file, (n, _))| format!("{n} in {file}")).collect();
    let secrets = if total == 1 { "Secret does" } else { "Secrets do" };
    Some(format!("{total} {secrets} not decrypt ({}; {first})", files.join(", ")))
}

/// Reads a file of the target (`<env>/<file>`), `None` when there is none.
type Previous<'a> = &'a dyn Fn(&str) -> Result<Option<Vec<u8>>>;

struct EnvironmentWriter<'a> {
    project: &'a Project,
    options: &'a RenderOptions,
    env: &'a Environment,
    context: Context<'a>,
    previous: Previous<'a>,
}

impl EnvironmentWriter<'_> {
    fn plan(
        &self,
        rendered: &weaver_render::Rendered,
        mode: SecretObjects,
        source: Option<&Provenance>,
    ) -> Result<Planned> {
        let env = &self.env.name;
        let path = |file: &str| format!("{env}/{file}");
        let previous_metadata = (self.previous)(&path(METADATA_FILE))?;
        let previous_files =
            previous_metadata.as_deref().map(|m| release_files(&path(METADATA_FILE), m)).transpose()?;
        let mut encryption = Encryption::default();
        let mut report = EnvironmentReport {
            environment: env.clone(),
            changed: false,
            written: Vec::new(),
            removed: Vec::new(),
            unchanged: Vec::new(),
            secrets: BTreeMap::new(),
            hooks: Vec::new(),
        };
        let mut changes = BTreeMap::new();
        let mut releases = Vec::new();
        for release in &rendered.releases {
            let file = format!("{}.yaml", release.name);
            let previous = (self.previous)(&path(&file))?;
            let Some(text) =
                self.release_file(release, &path(&file), previous.as_deref(), mode, &mut encryption, &mut report)?
            else {
                continue;
            };
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
            let objects = documents(&text).count();
            releases.push(ReleaseMetadata { name: release.name.clone(), file: file.clone(), digest, objects });
            if previous.as_deref() == Some(text.as_bytes()) {
                report.unchanged.push(path(&file));
            } else {
                report.written.push(path(&file));
                changes.insert(path(&file), Some(text.into_bytes()));
            }
        }
        if let Some(why) = undecrypted(&encryption.unreadable) {
            self.warn_encrypted_again(&why);
        }
        let kept: BTreeSet<&str> = releases.iter().map(|r| r.file.as_str()).collect();
        for stale in previous_files.iter().flatten().filter(|f| !kept.contains(f.as_str())) {
            if (self.previous)(&path(stale))?.is_some() {
                report.removed.push(path(stale));
                changes.insert(path(stale), None);
            }
        }
        let metadata = Metadata {
            schema_version: 1,
            environment: env,
            source,
            weaver: env!("CARGO_PKG_VERSION"),
            releases,
            omitted_secrets: report
                .secrets
                .iter()
                .filter(|(_, s)| **s == SecretObjects::Omitted)
                .map(|(name, _)| name.clone())
                .collect(),
            omitted_hooks: &report.hooks,
        };
        let now = serde_json::to_value(&metadata).expect("metadata serializes");
        let mut bytes = serde_json::to_vec_pretty(&metadata).expect("metadata serializes");
        bytes.push(b'\n');
        // What the metadata says of the tree (the files, the Secrets and hooks left out, which
        // only it names): a change of it rewrites it; a new source commit or weaver alone not.
        let of_tree = |metadata: &serde_json::Value| {
            let mut said = metadata.clone();
            if let Some(fields) = said.as_object_mut() {
                fields.remove("source");
                fields.remove("weaver");
            }
            said
        };
        let before = previous_metadata.as_deref().and_then(|m| serde_json::from_slice::<serde_json::Value>(m).ok());
        report.changed = !changes.is_empty() || before.as_ref().map(of_tree) != Some(of_tree(&now));
        if report.changed {
            report.written.push(path(METADATA_FILE));
            changes.insert(path(METADATA_FILE), Some(bytes));
        } else {
            report.unchanged.push(path(METADATA_FILE));
        }
        Ok(Planned { changes, report })
    }

    /// A release's file (`path`): its documents, each Secret encrypted (keeping the ciphertext
    /// of `previous`, the file as the target has it, for a Secret that did not change) or left
    /// out, each recorded in `report`. None when the release has no object to write.
    fn release_file(
        &self,
        release: &weaver_project::RenderedRelease,
        path: &str,
        previous: Option<&[u8]>,
        mode: SecretObjects,
        encryption: &mut Encryption,
        report: &mut EnvironmentReport,
    ) -> Result<Option<String>> {
        let mut reusable = None;
        let mut text = String::new();
        report.hooks.extend(release.hooks.iter().map(|hook| HookMetadata {
            release: hook.release.clone(),
            kind: hook.kind().to_string(),
            namespace: hook.namespace().unwrap_or_default().to_string(),
            name: hook.name().to_string(),
            events: hook.object["metadata"]["annotations"]["helm.sh/hook"].as_str().unwrap_or_default().to_string(),
        }));
        for m in &release.manifests {
            let document = if weaver_plan::diff::is_secret(&m.object) {
                let name = format!("{}/{}/{}", m.release, m.namespace().unwrap_or_default(), m.name());
                report.secrets.insert(name, mode);
                if mode == SecretObjects::Omitted {
                    continue;
                }
                // Only data and stringData are encrypted: a value elsewhere (an annotation)
                // would be written in plaintext.
                let mut unencrypted = m.object.clone();
                if let Some(fields) = unencrypted.as_object_mut() {
                    fields.remove("data");
                    fields.remove("stringData");
                }
                self.refuse_decrypted_values(m, &unencrypted)?;
                if encryption.settings.is_none() {
                    encryption.settings = Some(self.encryption_settings()?);
                }
                let settings = encryption.settings.as_ref().expect("set above");
                let reusable = reusable.get_or_insert_with(|| {
                    let (identities, unreadable) = (&mut encryption.identities, &mut encryption.unreadable);
                    self.encrypted_documents(path, previous, identities, &settings.recipients, unreadable)
                });
                match reusable.iter().find(|(plain, _)| plain == &m.object) {
                    Some((_, encrypted)) => encrypted.clone(),
                    None => encrypt(path, m, settings)?,
                }
            } else {
                self.refuse_decrypted_values(m, &m.object)?;
                let mut plain = String::new();
                weaver_yaml::write_yaml(&mut plain, &m.object);
                plain
            };
            text.push_str("---\n");
            text.push_str(&document);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        Ok(Some(text).filter(|text| !text.is_empty()))
    }

    /// Refuses an object other than a Secret that holds a decrypted value (a template copied
    /// one into a ConfigMap or an env var): only Secrets are encrypted, so it would be written
    /// in plaintext.
    fn refuse_decrypted_values(&self, m: &Manifest, written: &serde_json::Value) -> Result<()> {
        let redactor = self.context.redactor;
        if !redactor.finds_in(written) {
            return Ok(());
        }
        let namespace = m.namespace().map_or_else(String::new, |ns| format!("{ns}/"));
        Err(Error::at(Location::file(&m.source), format!(
            "release `{}`: {} {namespace}{} holds a decrypted secret value, and only Secrets are encrypted: hydrate would write it in plaintext",
            m.release,
            m.kind(),
            m.name()
        ))
        .with_help("keep decrypted values in Secret objects and refer to them (envFrom, secretKeyRef, a secret volume)"))
    }

    /// The identities the render would decrypt with, to read back the Secrets hydrated before;
    /// None, with a warning, when they cannot be loaded.
    fn identities(&self) -> Option<Identities> {
        match self.options.keys.load(&self.options.selection.repo, self.env.identity_file.as_ref()) {
            Ok(ids) => Some(ids),
            Err(e) => {
                self.warn_encrypted_again(&format!("no identity to decrypt them with loads ({e})"));
                None
            }
        }
    }

    /// Says that the Secrets hydrated before cannot be read back, and what follows.
    fn warn_encrypted_again(&self, why: &str) {
        // The fleet's progress names the environment.
        (self.context.on)(super::Progress::Warning(format!(
            "the Secrets hydrated before cannot be read back to tell whether they changed: {why}; they are encrypted again, so their files change (and a branch gets a commit, an artifact a push) at every run"
        )));
    }

    /// The SOPS-encrypted documents of a release's previous file that are encrypted to exactly
    /// `recipients` (a recipient added or removed encrypts again), decrypted with `identities`
    /// (loaded on first need), each with its plaintext object: an unchanged Secret keeps its
    /// ciphertext, so that its file (and the branch) changes only when the Secret does. Those
    /// that do not decrypt are counted in `unreadable`.
    fn encrypted_documents(
        &self,
        path: &str,
        previous: Option<&[u8]>,
        identities: &mut Option<Option<Identities>>,
        recipients: &[String],
        unreadable: &mut BTreeMap<String, (usize, String)>,
    ) -> Vec<(serde_json::Value, String)> {
        let Some(text) = previous.and_then(|p| std::str::from_utf8(p).ok()) else { return Vec::new() };
        let path = Path::new(path);
        let mut wanted = recipients.to_vec();
        wanted.sort();
        let encrypted: Vec<(SopsFile, &str)> = documents(text)
            .filter(|document| document.lines().any(|line| line.starts_with("sops:")))
            .filter_map(|document| SopsFile::parse(path, document).ok().map(|file| (file, document)))
            .filter(|(file, _)| {
                let mut had = file.recipients();
                had.sort();
                had == wanted
            })
            .collect();
        if encrypted.is_empty() {
            return Vec::new();
        }
        let Some(ids) = identities.get_or_insert_with(|| self.identities()) else { return Vec::new() };
        let mut read = Vec::new();
        for (file, document) in encrypted {
            match file.decrypt(ids) {
                Ok(plain) => {
                    // Only compared with what renders now, never shown: not given to the
                    // redactor, whose values the plaintext check refuses in later objects.
                    let plain = plain.into_plaintext().to_json();
                    read.push((plain, document.to_string()));
                }
                Err(e) => unreadable.entry(path.display().to_string()).or_insert((0, e.to_string())).0 += 1,
            }
        }
        read
    }

    /// What the environment's Secrets are encrypted to: the age recipients of its first secrets
    /// file, as its creation rules assign them (found as `weaver secrets` finds them), else as
    /// the file's own `sops.age` lists them.
    fn encryption_settings(&self) -> Result<EncryptionSettings> {
        let source = self.project.source.as_ref();
        let mut recipients = Vec::new();
        if let Some(file) = self.env.secrets.first() {
            // Paths of the repository, as errors name them, read from the source (a commit
            // with --rev); nothing above the repository is its.
            let mut read = |candidate: &Path| -> Result<Option<String>> {
                if candidate.is_absolute() {
                    return Ok(None);
                }
                let bytes = source.read_named(candidate, &file.at, "creation rules")?;
                Ok(bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
            };
            let (path, fallback) = (&file.path, Path::new("secrets/.sops.yaml"));
            if let Some(rules) = secrets::CreationRules::nearest(path, fallback, &mut read)?
                && let Ok(settings) = secrets::encryption_settings(path, Some(&rules), &[])
            {
                recipients = settings.recipients;
            }
            if recipients.is_empty()
                && let Some(bytes) = source.read_named(&file.path, &file.at, "secrets file")?
                && let Ok(sops) = SopsFile::parse(&file.path, &String::from_utf8_lossy(&bytes))
            {
                recipients = sops.recipients();
            }
        }
        if recipients.is_empty() {
            let listed = match self.env.secrets.first() {
                Some(file) => {
                    format!("neither a .sops.yaml creation rule for {} nor that file names any", file.path.display())
                }
                None => "it lists no secrets file".to_string(),
            };
            let message = format!(
                "environment `{}` renders Secrets, and has no age recipients to encrypt them to: {listed}",
                self.env.name
            );
            let error = match self.env.files.first() {
                Some(file) => Error::at(Location::file(file), message),
                None => Error::new(message),
            };
            return Err(error.with_help(
                "list a SOPS secrets file in the environment (`secrets:`) whose .sops.yaml creation rule names its recipients, or leave Secrets out with --secrets omit",
            ));
        }
        Ok(EncryptionSettings {
            recipients,
            selector: Selector::EncryptedRegex(regex::Regex::new(SECRET_FIELDS).expect("a valid regex")),
            mac_only_encrypted: false,
        })
    }
}

/// A Secret as a SOPS document: its `data` and `stringData` encrypted, the rest as it is. The
/// plaintext is formatted and encrypted in memory.
fn encrypt(path: &str, m: &Manifest, settings: &EncryptionSettings) -> Result<String> {
    let path = Path::new(path);
    let mut plain = String::new();
    weaver_yaml::write_yaml(&mut plain, &m.object);
    let document = secrets::Document::parse_as(path, &plain, secrets::Format::Yaml)?;
    Ok(secrets::encrypt(path, &document, settings)?)
}

/// The documents of a file hydrate wrote, each as written after its `---` line.
fn documents(text: &str) -> impl Iterator<Item = &str> {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        if line == "---\n" {
            starts.push(at);
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).map(|start| start - "---\n".len()).chain([text.len()]).collect();
    starts.into_iter().zip(ends).map(move |(start, end)| &text[start..end])
}

/// The release files a metadata file lists: plain `<name>.yaml` names only, so that a
/// hand-edited one cannot make hydrate remove anything else.
pub(super) fn release_files(path: &str, metadata: &[u8]) -> Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(metadata).map_err(|e| {
        Error::at(Location::file(Path::new(path)), format!("is not the JSON weaver hydrate writes: {e}"))
            .with_help("remove the file (and the environment's files) and hydrate again")
    })?;
    let files = value["releases"].as_array().into_iter().flatten().filter_map(|r| r["file"].as_str());
    Ok(files
        .filter(|f| f.ends_with(".yaml") && !f.starts_with('.') && !f.contains(['/', '\\']))
        .map(str::to_string)
        .collect())
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Writes and removes `changes` below `dir`.
fn write_directory(dir: &Path, changes: &BTreeMap<String, Option<Vec<u8>>>) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::at(Location::file(dir), "--out is not a directory")
            .with_help("name a directory (it is created if missing)"));
    }
    for (relative, content) in changes {
        let path = dir.join(relative);
        match content {
            Some(bytes) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
                }
                std::fs::write(&path, bytes).map_err(|e| Error::io("write file", &path, e))?;
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove stale file", &path, e)),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metadata_file_names_only_plain_release_files() {
        let metadata = br#"{"releases": [{"file": "web.yaml"}, {"file": "../x.yaml"}, {"file": ".git.yaml"}, {"file": "a/b.yaml"}, {"file": "notes.txt"}]}"#;
        assert_eq!(release_files("dev/m", metadata).unwrap(), vec!["web.yaml"]);
        let err = release_files("dev/m", b"{").unwrap_err();
        assert!(err.to_string().contains("dev/m"), "{err}");
    }

    #[test]
    fn documents_are_split_at_their_separators() {
        let text = "---\na: 1\n---\nb: |\n  ---\n  x---\n";
        assert_eq!(documents(text).collect::<Vec<_>>(), vec!["a: 1\n", "b: |\n  ---\n  x---\n"]);
    }
}
