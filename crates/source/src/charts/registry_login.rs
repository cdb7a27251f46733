//! Registry credentials that `helm registry login` and `docker login` left on the machine: the
//! `auths` of helm's registry config (`$HELM_REGISTRY_CONFIG`, default
//! `~/.config/helm/registry/config.json`), then of docker's (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`), and the credential helpers those files name (`credHelpers` for the
//! host, else `credsStore`), run as `docker-credential-<helper> get` as docker runs them.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use weaver_core::error::{Error, Result};

/// A registry's username and password (or identity token, as helpers give it).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// The password shown as `[redacted]`, as [`crate::Credentials`] shows its secrets.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("username", &self.username).field("password", &"[redacted]").finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `auth` (base64 of user:password) and the password shown as `[redacted]`.
impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |given: &Option<String>| given.as_ref().map(|_| "[redacted]");
        f.debug_struct("AuthEntry")
            .field("auth", &hidden(&self.auth))
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .finish()
    }
}

/// The config files to read, in order: helm's, then docker's.
pub fn config_files(var: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let home = var("HOME").map(PathBuf::from);
    let helm = var("HELM_REGISTRY_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| Path::new(&d).join("helm/registry/config.json")))
        .or_else(|| home.as_ref().map(|h| h.join(".config/helm/registry/config.json")));
    let docker = var("DOCKER_CONFIG")
        .map(|d| Path::new(&d).join("config.json"))
        .or_else(|| home.as_ref().map(|h| h.join(".docker/config.json")));
    helm.into_iter().chain(docker).collect()
}

/// The login for `host` (`host[:port]`) in the first of `files` that has one; None when none
/// does (the registry is then asked anonymously).
pub fn find(files: &[PathBuf], host: &str) -> Result<Option<Login>> {
    for path in files {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read registry config", path, e)),
        };
        // Never the parser's message: it may quote the file, which holds passwords.
        let config: ConfigFile = serde_json::from_slice(&text).map_err(|e| {
            Error::new(format!(
                "registry config {} is not a docker config file (JSON, line {} column {})",
                path.display(),
                e.line(),
                e.column()
            ))
            .with_help("it is read for the credentials of OCI chart registries (`helm registry login`, `docker login`)")
        })?;
        if let Some(login) = from_config(&config, path, host)? {
            return Ok(Some(login));
        }
    }
    Ok(None)
}

/// A docker config held in memory (a Secret's `.dockerconfigjson`, as Pods' imagePullSecrets),
/// named for errors: only its `auths` are read; no credential helper is run for it.
pub struct HeldConfig {
    name: String,
    config: ConfigFile,
}

impl HeldConfig {
    /// `name` says where it is (`Secret team/regcred`); an error never quotes the content.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<HeldConfig> {
        let config: ConfigFile = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(format!(
                "{name} is not a docker config (JSON with `auths`, line {} column {})",
                e.line(),
                e.column()
            ))
            .with_help("create it with kubectl create secret docker-registry")
        })?;
        Ok(HeldConfig {
            name: name.to_string(),
            config: ConfigFile { creds_store: None, cred_helpers: HashMap::new(), ..config },
        })
    }

    /// Where it is, as it was named.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn login(&self, host: &str) -> Result<Option<Login>> {
        from_config(&self.config, Path::new(&self.name), host)
    }

    /// Every secret its `auths` hold, for a redactor: each `password`, each `auth` as written,
    /// and the password it decodes to.
    pub fn secret_values(&self) -> Vec<String> {
        use base64::Engine;
        let decoded = |auth: &str| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            text.split_once(':').map(|(_, password)| password.to_string())
        };
        let entries = self.config.auths.values();
        let held = entries.flat_map(|e| [e.password.clone(), e.auth.clone(), e.auth.as_deref().and_then(decoded)]);
        held.flatten().filter(|value| !value.is_empty()).collect()
    }
}

fn from_config(config: &ConfigFile, path: &Path, host: &str) -> Result<Option<Login>> {
    if let Some(helper) = config.cred_helpers.get(host) {
        return run_helper(helper, host);
    }
    if let Some(entry) = config.auths.iter().find(|(key, _)| registry_host(key) == host).map(|(_, e)| e) {
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(Error::new(format!(
                    "registry config {}: the `auth` of `{host}` is not base64 of `username:password`",
                    path.display()
                ))
                .with_help(format!("log in again: helm registry login {host}")));
            };
            return Ok(Some(Login { username: username.to_string(), password: password.to_string() }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Login { username: username.clone(), password: password.clone() }));
        }
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, host),
        _ => Ok(None),
    }
}

/// `docker-credential-<helper> get` with the host on its standard input, as docker asks it;
/// "credentials not found" is no login, not an error.
fn run_helper(helper: &str, host: &str) -> Result<Option<Login>> {
    let program = format!("docker-credential-{helper}");
    let help = || format!("the credential helper of registry `{host}` in the docker/helm registry config");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run {program}: {e}")).with_help(help()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its status below.
        let _ = stdin.write_all(host.as_bytes());
    }
    let output = child.wait_with_output().map_err(|e| Error::new(format!("cannot run {program}: {e}")))?;
    if !output.status.success() {
        // Its output may be anything; only the documented "not found" answer is repeated.
        if String::from_utf8_lossy(&output.stdout).contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::new(format!("{program} get failed ({})", output.status)).with_help(help()));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperAnswer {
        username: String,
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
        Error::new(format!("{program} get answered something other than JSON with `Username` and `Secret`"))
            .with_help(help())
    })?;
    Ok(Some(Login { username: answer.username, password: answer.secret }))
}

/// The `host[:port]` of an `auths` key, which docker writes as a host or as a URL
/// (`https://index.docker.io/v1/`), or of a credentials entry's `oci://` URL.
pub fn registry_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password_or_auth() {
        let config = config(
            r#"{"auths": {"reg.example": {"auth": "cm9ib3Q6czNjcmV0", "username": "robot", "password": "s3cret"}}}"#,
        );
        let login = Login { username: "robot".into(), password: "s3cret".into() };
        let shown = format!("{config:?} {login:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("cm9ib3Q6czNjcmV0"), "{shown}");
        assert!(shown.contains("robot") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn a_held_config_gives_every_password_and_auth_it_holds_to_a_redactor() {
        let held = HeldConfig::parse(
            "Secret team/regcred",
            br#"{"auths": {"https://a.example/v1/": {"auth": "cm9ib3Q6czNjcmV0"}, "b.example:5000": {"username": "u", "password": "p4ss"}}}"#,
        )
        .unwrap();
        let mut values = held.secret_values();
        values.sort();
        assert_eq!(values, ["cm9ib3Q6czNjcmV0", "p4ss", "s3cret"]);
    }

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn auths_are_found_by_host_written_as_host_or_url() {
        let file = config(
            r#"{"auths": {"https://reg.example.com:5000/v1/": {"auth": "cm9ib3Q6czNjcmV0OndpdGgtY29sb24="},
                          "reg.example.com": {"auth": ""}}}"#,
        );
        let login = from_config(&file, Path::new("c.json"), "reg.example.com:5000").unwrap();
        assert_eq!(login, Some(Login { username: "robot".into(), password: "s3cret:with-colon".into() }));
        assert_eq!(from_config(&file, Path::new("c.json"), "reg.example.com").unwrap(), None);
        let file = config(r#"{"auths": {"reg": {"username": "u", "password": "p"}}}"#);
        assert_eq!(from_config(&file, Path::new("c.json"), "reg").unwrap().map(|l| l.username), Some("u".into()));
    }

    #[test]
    fn a_bad_auth_is_an_error_that_shows_nothing_of_it() {
        let file = config(r#"{"auths": {"reg": {"auth": "bm8tY29sb24taGVyZQ=="}}}"#);
        let err = from_config(&file, Path::new("c.json"), "reg").unwrap_err();
        assert!(err.message.contains("not base64 of `username:password`"), "{}", err.message);
        assert!(!err.message.contains("no-colon") && !err.message.contains("bm8t"), "{}", err.message);
    }

    #[test]
    fn helm_config_comes_before_dockers() {
        let vars = |key: &str| match key {
            "HOME" => Some("/home/u".to_string()),
            "DOCKER_CONFIG" => Some("/etc/docker-cfg".to_string()),
            _ => None,
        };
        assert_eq!(
            config_files(&vars),
            [PathBuf::from("/home/u/.config/helm/registry/config.json"), PathBuf::from("/etc/docker-cfg/config.json")]
        );
    }
}
