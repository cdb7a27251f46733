//! `weaver init`: a new repository's skeleton in weaver's formats (an abstract base and a first
//! environment, a chart of its own, `.sops.yaml` with an age recipient, the environment's
//! secrets encrypted to it, `weaver.yaml` and a GitHub Actions workflow), so that `weaver render`
//! works right after. The secrets are encrypted to the age keys the user already holds where
//! weaver and sops find them; with none, a new key is written outside the repository, mode
//! 0600. Everything is checked and prepared before anything is written, and no existing file is
//! ever replaced.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use weaver_core::error::{Error, Result};
use weaver_secrets::{self as secrets, CreationRules, Document, IdentitySources, NewIdentity};

/// The skeleton's files: the path each is written to (`@ENV@` the environment's name) and its
/// text, whose `@…@` placeholders [`init`] fills in.
const SKELETON: [(&str, &str); 8] = [
    ("weaver.yaml", include_str!("init/weaver.yaml")),
    ("environments/base.yaml", include_str!("init/environments/base.yaml")),
    ("environments/@ENV@.yaml", include_str!("init/environments/env.yaml")),
    ("charts/app/chart.yaml", include_str!("init/charts/app/chart.yaml")),
    ("charts/app/values.yaml", include_str!("init/charts/app/values.yaml")),
    ("charts/app/templates/configmap.yaml", include_str!("init/charts/app/templates/configmap.yaml")),
    ("charts/app/templates/secret.yaml", include_str!("init/charts/app/templates/secret.yaml")),
    (".github/workflows/weaver.yml", include_str!("init/github/weaver.yml")),
];

/// The creation rules, which also say what the secrets file is encrypted to.
const SOPS_RULES: (&str, &str) = (".sops.yaml", include_str!("init/sops.yaml"));

/// The environment's secrets file, encrypted before it is written.
const SECRETS_FILE: (&str, &str) = ("secrets/@ENV@.yaml", include_str!("init/secrets/env.yaml"));

/// The base environment the skeleton writes; the first environment may not take its name.
const BASE: &str = "base";

/// Letters and digits of the example password the secrets file holds.
const PASSWORD_LENGTH: usize = 24;

pub struct InitOptions {
    /// The directory to write the repository into, made when missing.
    pub dir: PathBuf,
    /// The first environment's name.
    pub env: String,
    /// Its namespace, where its lock (a Lease) lives too.
    pub namespace: String,
    pub key: KeyChoice,
    /// The weaver release the CI workflow installs.
    pub weaver_version: String,
}

/// Where the repository's age recipient comes from.
pub enum KeyChoice {
    /// The keys the user holds where weaver and sops find them with no flag
    /// (`WEAVER_AGE_KEY_FILE`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`, sops's key file), every one
    /// of them, as `age-keygen -y` lists a file's; with none, a new key in sops's key file, or
    /// beside it when that file exists without a key.
    Held,
    /// A new key, written to this file.
    New(PathBuf),
    /// No new key: encrypt to these recipients (each `age1…`), whose keys the user holds.
    Existing(Vec<String>),
}

/// What [`init`] wrote (`weaver init -o json`'s document, with its schema version).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Initialized {
    /// The files written, relative to the repository, in the order written.
    pub written: Vec<PathBuf>,
    /// The recipients `.sops.yaml` names and the secrets file is encrypted to.
    pub recipients: Vec<String>,
    /// The new key's file, when one was made.
    pub key_file: Option<NewKeyFile>,
    /// The keys the user held that the secrets are encrypted to ([`KeyChoice::Held`]).
    pub held_keys: Vec<HeldKey>,
}

/// A key the user held, by its public key and where weaver and sops find it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldKey {
    pub recipient: String,
    /// `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE=PATH`, or the path of sops's key file.
    pub source: String,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKeyFile {
    pub path: PathBuf,
    /// Whether weaver and sops read it with no flag: sops's key file, or the file a key
    /// variable names.
    pub found_by_default: bool,
}

/// Writes a new repository into `options.dir`; see the module's documentation.
///
/// # Errors
/// Before anything is written: an environment name that is not a namespace name (or `base`), a
/// namespace name that is not one, a recipient that is not an age key, a held key that does
/// not load, a key file inside the repository or already there, and files of the skeleton that
/// exist (all of them named).
pub fn init(options: &InitOptions) -> Result<Initialized> {
    check_environment_name(&options.env)?;
    if !weaver_core::manifest::is_dns1123_label(&options.namespace) {
        return Err(Error::new(format!("--namespace `{}`: not a valid namespace name", options.namespace))
            .with_help(format!("use {}", weaver_core::manifest::DNS1123_LABEL)));
    }
    let sources = IdentitySources::from_env(None, None, |name| std::env::var_os(name));
    let new_key = |path: PathBuf, what: &str| -> Result<_> {
        check_key_file(&path, &options.dir, what)?;
        let found_by_default = found_by_default(&sources, &path);
        let identity = NewIdentity::generate();
        let recipients = vec![identity.recipient()];
        Ok((Some(identity), Some(NewKeyFile { path, found_by_default }), recipients, Vec::new()))
    };
    let (identity, key_file, recipients, held_keys) = match &options.key {
        KeyChoice::New(path) => new_key(path.clone(), "--key-file")?,
        KeyChoice::Held => {
            let held = sources.load().map_err(|err| {
                Error::from(err).with_help(
                    "weaver init encrypts to the age keys you hold, found as weaver and sops find them: correct this \
                     one, or give --key-file PATH for a new key, or --no-key --recipient age1…",
                )
            })?;
            let held_keys: Vec<HeldKey> = held
                .public_keys()
                .map(|(recipient, origin)| HeldKey { recipient: recipient.to_string(), source: origin.to_string() })
                .collect();
            match held_keys.is_empty() {
                true => new_key(default_key_file(&options.dir)?, "the default key file")?,
                false => {
                    let recipients = held_keys.iter().map(|key| key.recipient.clone()).collect();
                    (None, None, recipients, held_keys)
                }
            }
        }
        KeyChoice::Existing(recipients) => {
            for recipient in recipients {
                secrets::check_recipient(recipient, "--recipient")?;
            }
            (None, None, recipients.clone(), Vec::new())
        }
    };
    let filled = |text: &str| {
        text.replace("@ENV@", &options.env)
            .replace("@NAMESPACE@", &options.namespace)
            .replace("@RECIPIENTS@", &recipients.join(","))
            .replace("@WEAVER_VERSION@", &options.weaver_version)
    };
    let mut files: Vec<(PathBuf, String)> = std::iter::once(&SOPS_RULES)
        .chain(&SKELETON)
        .map(|(path, text)| (PathBuf::from(filled(path)), filled(text)))
        .collect();
    let secrets_file = PathBuf::from(filled(SECRETS_FILE.0));
    let paths = files.iter().map(|(path, _)| path.as_path()).chain([secrets_file.as_path()]);
    super::refuse_existing(
        &options.dir,
        paths,
        &format!(
            "weaver init never replaces a file: init into an empty directory, or move these out of {}",
            options.dir.display()
        ),
    )?;
    let encrypted = encrypted_secrets(&filled(SOPS_RULES.1), &options.dir, &secrets_file, &filled(SECRETS_FILE.1))?;
    files.push((secrets_file, encrypted));

    // The repository's directory first: what stops it (a file of that name, no right to make
    // it) then stops the init before the key is written.
    std::fs::create_dir_all(&options.dir).map_err(|err| Error::io("create directory", &options.dir, err))?;
    if let (Some(identity), Some(key_file)) = (&identity, &key_file) {
        identity.write_new_file(&key_file.path)?;
    }
    let written = super::write_files(&options.dir, &files, false)?;
    Ok(Initialized { written, recipients, key_file, held_keys })
}

/// The first environment names a file of environments/ and a namespace, and is not the base.
fn check_environment_name(name: &str) -> Result<()> {
    if !weaver_core::manifest::is_dns1123_label(name) {
        return Err(Error::new(format!("--env `{name}`: not a valid environment name for weaver init")).with_help(
            format!("weaver init uses it as the namespace too: use {}", weaver_core::manifest::DNS1123_LABEL),
        ));
    }
    if name == BASE {
        return Err(Error::new(format!(
            "--env `{BASE}`: weaver init writes the abstract environment `{BASE}` that it extends"
        ))
        .with_help("name the first environment after where it runs, such as dev"));
    }
    Ok(())
}

/// Where a new key goes by default: sops's key file (`$XDG_CONFIG_HOME/sops/age/keys.txt`, else
/// `~/.config/sops/age/keys.txt`) when there is none yet; else (a file there holding no key),
/// since a user's key file is never changed, `…/weaver/age/<the repository's directory
/// name>.txt` beside it.
fn default_key_file(dir: &Path) -> Result<PathBuf> {
    let config = secrets::config_dir(|name| std::env::var_os(name)).ok_or_else(|| {
        Error::new("no place for the new age key: neither XDG_CONFIG_HOME nor HOME is set")
            .with_help("give it one with --key-file PATH, outside the repository")
    })?;
    let sops = config.join(secrets::SOPS_KEY_FILE);
    if !sops.exists() {
        return Ok(sops);
    }
    let name = super::resolved(dir).and_then(|dir| dir.file_name().map(|name| name.to_string_lossy().into_owned()));
    Ok(config.join("weaver/age").join(format!("{}.txt", name.as_deref().unwrap_or("repository"))))
}

/// Whether weaver and sops read a key at `path` with no flag: it is sops's key file or the file
/// a key variable names.
fn found_by_default(sources: &IdentitySources, path: &Path) -> bool {
    let absolute = |path: &Path| std::path::absolute(path).ok();
    sources.files().iter().any(|file| absolute(file).is_some() && absolute(file) == absolute(path))
}

/// A new key is never written into the repository, where it would be committed, nor over a
/// file; `what` names where `path` came from.
fn check_key_file(path: &Path, dir: &Path, what: &str) -> Result<()> {
    if let (Some(key), Some(repo)) = (super::resolved(path), super::resolved(dir))
        && key.starts_with(&repo)
    {
        return Err(Error::new(format!(
            "{what} {}: inside the repository {}, where the private key would be committed",
            path.display(),
            dir.display()
        ))
        .with_help("give --key-file a path outside the repository"));
    }
    if path.symlink_metadata().is_ok() {
        return Err(Error::new(format!("{what} {}: already exists, and weaver init never replaces a key file", path.display()))
            .with_help(format!(
                "give another --key-file; or, to encrypt to that key, --no-key --recipient with its public key (`age-keygen -y {}` prints it)",
                path.display()
            )));
    }
    Ok(())
}

/// The secrets file `plain` encrypted to what `sops_yaml` (the skeleton's `.sops.yaml`) says for
/// it, so that the rules written are the ones that work.
fn encrypted_secrets(sops_yaml: &str, dir: &Path, file: &Path, plain: &str) -> Result<String> {
    let absolute = |path: &Path| std::path::absolute(dir.join(path)).map_err(|err| Error::io("resolve path", dir, err));
    let rules = CreationRules::parse(&absolute(Path::new(SOPS_RULES.0))?, sops_yaml)?;
    let settings = secrets::encryption_settings(&absolute(file)?, Some(&rules), &[])?;
    let password = secrets::random_password(PASSWORD_LENGTH);
    let plain = Document::parse(file, &plain.replace("@PASSWORD@", password.expose_secret()))?;
    Ok(secrets::encrypt(file, &plain, &settings)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::render::{Selection, render};
    use crate::action::testing::{Heard, failure, render_options};

    fn options_in(dir: &Path, env: &str, key: KeyChoice) -> InitOptions {
        InitOptions {
            dir: dir.join("repo"),
            env: env.into(),
            namespace: env.into(),
            key,
            weaver_version: "0.2.0".into(),
        }
    }

    #[test]
    fn a_new_repository_renders_with_its_new_key_and_is_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        let options = options_in(dir.path(), "staging", KeyChoice::New(key.clone()));
        let initialized = init(&options).unwrap();
        let written: Vec<&str> = initialized.written.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(written.len(), 10);
        assert!(written.contains(&"environments/staging.yaml") && written.contains(&"secrets/staging.yaml"));
        assert_eq!(initialized.key_file.as_ref().map(|k| &k.path), Some(&key));
        assert!(initialized.recipients.len() == 1 && initialized.recipients[0].starts_with("age1"));
        let selection = Selection { env: "staging".into(), repo: options.dir.clone(), ..Default::default() };
        let identities = std::fs::read_to_string(&key).unwrap();
        let desired = render(&render_options(selection.clone(), &identities), Heard::default().cx()).unwrap();
        let kinds: Vec<String> = desired.rendered.manifests().map(|m| m.key().kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret"]);
        // Its secrets are the new key's alone.
        let unkeyed = failure(render(&render_options(selection, ""), Heard::default().cx()));
        assert!(unkeyed.contains("secrets/staging.yaml"), "{unkeyed}");
        let again = failure(init(&options));
        assert!(again.contains("already exists, and weaver init never replaces a key file"), "{again}");
        let existing = KeyChoice::Existing(initialized.recipients.clone());
        let again = failure(init(&options_in(dir.path(), "staging", existing)));
        assert!(
            again.contains("already exists (and ") && again.contains("weaver init never replaces a file"),
            "{again}"
        );
    }

    #[test]
    fn names_that_are_no_namespace_the_base_and_keys_in_the_repository_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let recipients = || KeyChoice::Existing(vec!["age1notakey".into()]);
        let refused = |env: &str, key| failure(init(&options_in(dir.path(), env, key)));
        assert!(refused("Dev_1", KeyChoice::Held).starts_with("--env `Dev_1`: not a valid environment name"));
        assert!(refused("base", KeyChoice::Held).starts_with("--env `base`: weaver init writes the abstract"));
        let inside = KeyChoice::New(dir.path().join("repo/key.txt"));
        assert!(refused("dev", inside).contains("inside the repository"));
        assert!(refused("dev", recipients()).contains("age1notakey"));
        assert!(!dir.path().join("repo").exists(), "a refused init wrote the repository");
    }
}
