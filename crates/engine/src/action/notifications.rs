//! Telling an environment's `notifications:` of an event, once the action's result is known:
//! each subscribed notification's URL is read (an environment variable, or a key of a SOPS
//! file, decrypted in memory), registered with the redactor, and the message sent to it, all
//! at once, each within its own timeout. How each went is a [`Progress::Notified`]; nothing
//! here fails the action.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Context, Progress};
use crate::notify::{Delivery, Failure, Message};
use weaver_project::notifications::{Notification, UrlSource};
use weaver_project::{Environment, Source};
use weaver_secrets::{Identities, Redactor};

/// Sends `message` to the notifications of `env` subscribed to its event. `repo` and
/// `identity` (`--identity`) find the age key a `fromSecret` URL needs, as the environment's
/// secrets are decrypted.
pub(super) async fn notify(
    env: &Environment,
    source: &dyn Source,
    (repo, keys): (&Path, &super::Keys),
    message: Message,
    cx: Context<'_>,
) {
    let Context { redactor, on, .. } = cx;
    let subscribed: Vec<&Notification> =
        env.notifications.iter().filter(|n| n.events.contains(&message.event)).collect();
    if subscribed.is_empty() {
        return;
    }
    let load_ids = || keys.load(repo, env.identity_file.as_ref());
    let own_environment = keys.own_machine();
    let mut urls = Urls { source, redactor, ids: None, load_ids: &load_ids, files: HashMap::new(), own_environment };
    let mut sending = Vec::new();
    for notification in subscribed {
        match urls.resolve(&notification.url) {
            Ok(url) => {
                redactor.register(&url);
                let (notification, message) = (notification.clone(), message.clone());
                sending.push(tokio::task::spawn_blocking(move || crate::notify::send(&notification, &url, &message)));
            }
            Err(reason) => on(Progress::Notified(Delivery {
                name: notification.name.clone(),
                at: notification.at.clone(),
                event: message.event,
                result: Err(Failure::unsent(reason)),
            })),
        }
    }
    for delivery in futures::future::join_all(sending).await {
        // A send that panicked is a bug to report, not a notification that failed.
        on(Progress::Notified(delivery.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))));
    }
}

/// Reads webhook URLs, decrypting each SOPS file once, with the age identities loaded once.
struct Urls<'a> {
    source: &'a dyn Source,
    /// Knows every value of the files decrypted, not only the URLs.
    redactor: &'a Redactor,
    ids: Option<Identities>,
    load_ids: &'a (dyn Fn() -> weaver_core::Result<Identities> + Sync),
    files: HashMap<PathBuf, serde_json::Value>,
    /// Whether `fromEnv` may read this process's environment variables (the CLI's).
    own_environment: bool,
}

impl Urls<'_> {
    /// The URL, or why it cannot be read (never a value).
    fn resolve(&mut self, url: &UrlSource) -> Result<String, String> {
        match url {
            UrlSource::Env(var) if !self.own_environment => Err(format!(
                "environment variable {var} is not read in the cluster: the controller's variables are not a tenant's; use fromSecret"
            )),
            UrlSource::Env(var) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                Ok(_) => Err(format!("environment variable {var}, which holds its URL, is empty")),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("environment variable {var}, which holds its URL, is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable {var}, which holds its URL, is not UTF-8"))
                }
            },
            UrlSource::Secret { file, key } => {
                if !self.files.contains_key(&file.path) {
                    let tree = self.decrypt(file)?;
                    self.files.insert(file.path.clone(), tree);
                }
                match self.files[&file.path].get(key) {
                    Some(serde_json::Value::String(value)) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                    Some(_) => Err(format!("{} is not a URL (a non-empty string)", url.describe())),
                    None => Err(format!("secrets file {} has no top-level key `{key}`", file.path.display())),
                }
            }
        }
    }

    fn decrypt(&mut self, file: &weaver_project::source::PathRef) -> Result<serde_json::Value, String> {
        let bytes = self
            .source
            .read_named(&file.path, &file.at, "secrets file")
            .map_err(|err| err.to_string())?
            .ok_or_else(|| format!("secrets file {} does not exist", file.path.display()))?;
        if self.ids.is_none() {
            self.ids = Some((self.load_ids)().map_err(|err| err.to_string())?);
        }
        let ids = self.ids.as_ref().expect("loaded above");
        let document = weaver_secrets::decrypt_bytes(&file.path, &bytes, ids).map_err(|err| err.to_string())?;
        let tree = document.to_json();
        self.redactor.register_tree(&tree);
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};

    use crate::action::apply::apply;
    use crate::action::testing::{Fixture, Heard, render_options};
    use weaver_secrets::NewIdentity;

    /// A webhook on loopback that answers one POST with 200 and hands its body over.
    fn webhook() -> (String, std::thread::JoinHandle<serde_json::Value>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
            serde_json::from_slice(&body).unwrap()
        });
        (url, served)
    }

    /// An apply that changed something tells the environment's notifications: a URL read from
    /// a SOPS file with the keys given is sent to, and one read from an environment variable is
    /// not, as the controller reads none of its own for a tenant.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_apply_is_sent_to_a_url_of_the_repositorys_secrets_and_not_to_a_variables() {
        let fixture = Fixture::start().await;
        let (url, served) = webhook();
        let identity = NewIdentity::generate();
        let file = std::path::Path::new("secrets/hooks.yaml");
        let settings = weaver_secrets::encryption_settings(file, None, &[identity.recipient()]).unwrap();
        let plain = weaver_secrets::Document::parse(file, &format!("hook: {url}\n")).unwrap();
        fixture.repo.write("secrets/hooks.yaml", &weaver_secrets::encrypt(file, &plain, &settings).unwrap());
        let notifications = "notifications:\n  - name: hook\n    type: json\n    \
                             url: {fromSecret: {file: secrets/hooks.yaml, key: hook}}\n  \
                             - name: oncall\n    type: json\n    url: {fromEnv: ONCALL_WEBHOOK_URL}\n";
        fixture.repo.write(
            "environments/dev.yaml",
            &format!("namespace: dev\n{notifications}releases:\n  - name: web\n    chart: app\n"),
        );
        let key_dir = tempfile::tempdir().unwrap();
        identity.write_new_file(&key_dir.path().join("key.txt")).unwrap();
        let identities = std::fs::read_to_string(key_dir.path().join("key.txt")).unwrap();
        let mut options = fixture.apply_options();
        options.render = render_options(fixture.repo.selection(), &identities);
        let heard = Heard::default();
        apply(&options, heard.cx()).await.unwrap();
        let told: Vec<String> = heard.told().into_iter().filter(|t| t.starts_with("notified")).collect();
        assert_eq!(
            told,
            [
                // Told at once: it is never sent.
                "notified oncall: environment variable ONCALL_WEBHOOK_URL is not read in the cluster: the controller's variables are not a tenant's; use fromSecret",
                "notified hook: sent in 1 attempt(s)",
            ]
        );
        let message = served.join().unwrap();
        assert_eq!((&message["event"], &message["environment"]), (&"apply".into(), &"dev".into()));
    }
}
