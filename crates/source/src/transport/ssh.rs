//! Git over ssh with russh: one session per connection libgit2 opens, authenticated with the
//! Secret's private key, running `git-upload-pack '<path>'`, whose channel is libgit2's stream.
//! The server's host key must be listed in the Secret's `known_hosts` (hashed entries and
//! `[host]:port` included); a host not listed, or listed with another key, is refused, never
//! trusted on first use. russh is async: every connection runs on one small tokio runtime shared
//! by the process (libgit2 calls the transport from threads that may belong to no runtime), and
//! the stream libgit2 reads and writes is bridged to it with channels.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};
use russh::ChannelMsg;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use super::session::{RECEIVE_PACK, Session, UPLOAD_PACK};
use crate::{CredentialNames, Credentials, FetchFailure};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that carries nothing for this long is closed.
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(600);
/// What is kept of the server's stderr, for the error message: the start, where git says why.
const STDERR_KEPT: usize = 4096;

/// Appends `data` to `kept`, up to [`STDERR_KEPT`] bytes: a server cannot make the stream
/// hold more of its stderr than that.
fn keep_stderr(kept: &mut Vec<u8>, data: &[u8]) {
    let room = STDERR_KEPT.saturating_sub(kept.len());
    kept.extend_from_slice(&data[..data.len().min(room)]);
}

pub(super) struct SshSubtransport {
    session: Arc<Session>,
}

impl SshSubtransport {
    pub fn new(session: Arc<Session>) -> SshSubtransport {
        SshSubtransport { session }
    }
}

impl SmartSubtransport for SshSubtransport {
    /// libgit2 asks for the ref listing; the negotiation that follows reuses its stream (the
    /// ssh transport is stateful), which git2 hands back itself.
    fn action(&self, _url: &str, action: Service) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let service = match action {
            Service::UploadPackLs => UPLOAD_PACK,
            Service::ReceivePackLs => RECEIVE_PACK,
            _ => return Err(git2::Error::from_str("the ssh transport starts with the ref listing")),
        };
        // A fetch's session never pushes (nor a push's fetches): what libgit2 asks must be it.
        if service != self.session.service {
            return Err(git2::Error::from_str(&format!("{}: libgit2 asked for {service}", self.session.what())));
        }
        let stream = SshStream::open(self.session.clone())
            .map_err(|message| git2::Error::from_str(&self.session.fail(message.0, message.1).to_string()))?;
        Ok(Box::new(stream))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// What the server sent on the channel: data, or why it ended early.
type Incoming = Result<Vec<u8>, String>;

struct SshStream {
    session: Arc<Session>,
    runtime: &'static tokio::runtime::Runtime,
    /// The tasks carrying the channel, ended with the stream (which ends the connection).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    to_server: mpsc::UnboundedSender<Vec<u8>>,
    from_server: mpsc::Receiver<Incoming>,
    pending: Vec<u8>,
    offset: usize,
}

/// Why the host key was refused, which russh reports only as an unknown key.
#[derive(Default)]
struct Verdict(Mutex<Option<String>>);

struct Client {
    known_hosts: String,
    /// How messages name `known_hosts`.
    known_hosts_name: String,
    host: String,
    port: u16,
    verdict: Arc<Verdict>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server: &PublicKey) -> Result<bool, Self::Error> {
        let refusal = check_host_key(&self.known_hosts, &self.known_hosts_name, &self.host, self.port, server).err();
        let accepted = refusal.is_none();
        *self.verdict.0.lock().unwrap_or_else(PoisonError::into_inner) = refusal;
        Ok(accepted)
    }
}

/// Whether `known_hosts` (named `named` in messages) lists `key` for `host` (as `[host]:port`
/// off port 22): Err says why not.
fn check_host_key(known_hosts: &str, named: &str, host: &str, port: u16, key: &PublicKey) -> Result<(), String> {
    let fingerprint = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
    let listed = if port == 22 { host.to_string() } else { format!("[{host}]:{port}") };
    let add = format!(
        "add the host's key to {named} (`ssh-keyscan{} {host}`, checked against a fingerprint from the server's owner)",
        if port == 22 { String::new() } else { format!(" -p {port}") }
    );
    match known_host_keys(known_hosts, &listed, key) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("the server's host key ({fingerprint}) is not in known_hosts for {listed}: {add}")),
        Err(KnownHostsError::KeyChanged) => Err(format!(
            "known_hosts lists another {} key for {listed} than the server's ({fingerprint}): the host's key changed, or \
             this is not the host: check with its owner, then {add}",
            key.algorithm()
        )),
        Err(KnownHostsError::Unreadable { line }) => Err(format!(
            "known_hosts cannot be read (line {line}: not a public key): give one `host keytype key` line per key"
        )),
    }
}

/// Why the lines of a known_hosts do not accept a key.
#[derive(Debug, PartialEq)]
enum KnownHostsError {
    /// A line for the host lists another key of the same algorithm.
    KeyChanged,
    /// The key of a line for the host does not parse.
    Unreadable { line: usize },
}

/// Whether a line of `known_hosts` lists `key` for `listed` (`host`, or `[host]:port`), as
/// OpenSSH reads the file: comments, `|1|salt|hash` hashed names, comma-separated names. Read
/// in memory: the controller's image has no writable directory but its cache.
fn known_host_keys(known_hosts: &str, listed: &str, key: &PublicKey) -> Result<bool, KnownHostsError> {
    let mut found = false;
    for (number, line) in known_hosts.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_algorithm), Some(listed_key)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // `@cert-authority` and `@revoked` lines do not list a host's own key.
        if hosts.starts_with('#') || hosts.starts_with('@') || !hosts.split(',').any(|name| host_matches(listed, name))
        {
            continue;
        }
        let listed_key = russh::keys::parse_public_key_base64(listed_key)
            .map_err(|_| KnownHostsError::Unreadable { line: number + 1 })?;
        match (listed_key.algorithm() == key.algorithm(), listed_key == *key) {
            (true, true) => found = true,
            (true, false) => return Err(KnownHostsError::KeyChanged),
            _ => {}
        }
    }
    Ok(found)
}

/// Whether `name` of a known_hosts line is `host`: equal, or its HMAC-SHA1 (`|1|salt|hash`).
fn host_matches(host: &str, name: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let Some(hashed) = name.strip_prefix("|1|") else { return name == host };
    let Some((salt, hash)) = hashed.split_once('|') else { return false };
    let engine = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (engine.decode(salt), engine.decode(hash)) else { return false };
    hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt)
        .is_ok_and(|mac| mac.chain_update(host.as_bytes()).verify_slice(&hash).is_ok())
}

/// A new ed25519 key, as a repository's deploy key: the private key in OpenSSH's format (what
/// a source Secret's `identity` holds) and its public key's `authorized_keys` line.
pub fn generate_deploy_key(comment: &str) -> Result<(secrecy::SecretString, String), String> {
    use rand::RngCore;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let keypair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut key = russh::keys::PrivateKey::from(keypair);
    key.set_comment(comment);
    let private = key.to_openssh(russh::keys::ssh_key::LineEnding::LF).map_err(|e| format!("encode the key: {e}"))?;
    let public = key.public_key().to_openssh().map_err(|e| format!("encode the public key: {e}"))?;
    Ok((secrecy::SecretString::from(private.as_str()), public))
}

/// The `authorized_keys` line of a private key (OpenSSH or PEM), None when it does not parse.
pub fn public_key_of(identity: &str) -> Option<String> {
    russh::keys::decode_secret_key(identity, None).ok()?.public_key().to_openssh().ok()
}

/// Records the server's host key and refuses it: the connection ends at key exchange.
struct Scanner(Arc<Mutex<Option<PublicKey>>>);

impl russh::client::Handler for Scanner {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server: &PublicKey) -> Result<bool, Self::Error> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(server.clone());
        Ok(false)
    }
}

/// The host key of the ssh server of `url`, as a `known_hosts` line and its fingerprint, read
/// by connecting to it: trust on first use, for `weaver bootstrap` to print and keep (as
/// `ssh-keyscan` gives it). Authenticates nothing.
pub fn scan_host_key(url: &str) -> Result<(String, String), String> {
    let url = crate::SourceUrl::parse(url)?;
    let host = url.host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port.unwrap_or(22);
    let runtime = weaver_net::runtime::runtime().map_err(|e| format!("cannot start the ssh client: {e}"))?;
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(russh::client::Config::default());
    let connect = russh::client::connect(config, (host.as_str(), port), Scanner(seen.clone()));
    let ended = runtime.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, connect).await });
    let key = seen.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(key) = key else {
        return Err(match ended {
            Err(_) => format!("{host}:{port}: no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            Ok(Err(e)) => format!("{host}:{port}: cannot connect: {e}"),
            Ok(Ok(_)) => format!("{host}:{port}: the server showed no host key"),
        });
    };
    let listed = if port == 22 { host.clone() } else { format!("[{host}]:{port}") };
    let line = key.to_openssh().map_err(|e| format!("encode the host key: {e}"))?;
    let fingerprint = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
    Ok((format!("{listed} {line}"), fingerprint))
}

impl SshStream {
    fn open(session: Arc<Session>) -> Result<SshStream, (FetchFailure, String)> {
        let what = session.what();
        let Credentials::Ssh { identity, known_hosts } = &session.credentials else {
            return Err((
                FetchFailure::AuthenticationFailed,
                format!("{what}: an ssh URL needs a Secret with an identity (private key) and known_hosts"),
            ));
        };
        let unusable = || {
            (
                FetchFailure::AuthenticationFailed,
                format!(
                    "{what}: {} is not an unencrypted ed25519 or ECDSA private key (OpenSSH or PEM; RSA keys are not \
                     supported): check it, or make a deploy key with `ssh-keygen -t ed25519`",
                    session.names.name(CredentialNames::IDENTITY)
                ),
            )
        };
        let key = russh::keys::decode_secret_key(identity.expose_secret(), None).map_err(|_| unusable())?;
        // An RSA key parses, but russh is built without RSA signatures: the server would refuse
        // it as if it were not authorized, which would send the reader to the wrong place.
        if matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
            return Err(unusable());
        }
        let url = &session.url;
        let host = url.host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = url.port.unwrap_or(22);
        let user = url.user.clone().unwrap_or_else(|| "git".to_string());
        // `ssh://host/~/path` and `host:path` are relative to the login's home, as git has it.
        let path = url.path.strip_prefix("/~").map_or(url.path.clone(), |rest| format!("~{rest}"));
        let command = format!("{} '{}'", session.service, path.replace('\'', r"'\''"));
        let service = session.service;

        let runtime = weaver_net::runtime::runtime()
            .map_err(|e| (FetchFailure::Other, format!("{what}: cannot start the ssh client: {e}")))?;
        let remaining = session.remaining().map_err(|e| (FetchFailure::TimedOut, e.to_string()))?;
        let connect_timeout = CONNECT_TIMEOUT.min(remaining);
        let verdict = Arc::new(Verdict::default());
        let client = Client {
            known_hosts: known_hosts.clone(),
            known_hosts_name: session.names.name(CredentialNames::KNOWN_HOSTS),
            host: host.clone(),
            port,
            verdict: verdict.clone(),
        };
        let config =
            Arc::new(russh::client::Config { inactivity_timeout: Some(INACTIVITY_TIMEOUT), ..Default::default() });
        let connected = runtime.block_on(async {
            let connect = russh::client::connect(config, (host.as_str(), port), client);
            let mut handle = match tokio::time::timeout(connect_timeout, connect).await {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) => return Err(Failed::Connect(e)),
                Err(_) => return Err(Failed::Timeout),
            };
            let hash = handle.best_supported_rsa_hash().await.map_err(Failed::Session)?.flatten();
            let auth = handle
                .authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(Failed::Session)?;
            if !auth.success() {
                return Err(Failed::Refused);
            }
            let channel = handle.channel_open_session().await.map_err(Failed::Session)?;
            channel.exec(true, command).await.map_err(Failed::Session)?;
            Ok((handle, channel))
        });
        let (handle, channel) = connected.map_err(|failed| {
            let refused_host = verdict.0.lock().unwrap_or_else(PoisonError::into_inner).take();
            match (failed, refused_host) {
                (_, Some(why)) => (FetchFailure::HostKeyMismatch, format!("{what}: {why}")),
                (Failed::Timeout, None) if session.expired() => (FetchFailure::TimedOut, session.timed_out().to_string()),
                (Failed::Timeout, None) => (
                    FetchFailure::Unreachable,
                    format!("{what}: no answer within {}s: check the URL and that the network lets the controller reach the host", connect_timeout.as_secs()),
                ),
                (Failed::Connect(e), None) => (
                    FetchFailure::Unreachable,
                    format!("{what}: cannot connect: {e}: check the URL, that the server is up and that the network lets the controller reach it"),
                ),
                (Failed::Refused, None) => (
                    FetchFailure::AuthenticationFailed,
                    format!("{what}: the server refused the key for user {user}: check {}, and that its public key is a deploy key of the repository", session.names.name(CredentialNames::IDENTITY)),
                ),
                (Failed::Session(e), None) => (FetchFailure::Other, format!("{what}: ssh: {e}")),
            }
        })?;

        let (to_server, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
        // Bounded: a server sending faster than libgit2 reads waits instead of filling memory.
        let (incoming, from_server) = mpsc::channel::<Incoming>(64);
        let (mut read_half, write_half) = channel.split();
        let writer = runtime.spawn(async move {
            while let Some(data) = outgoing.recv().await {
                if write_half.data(&data[..]).await.is_err() {
                    return;
                }
            }
        });
        let reader = runtime.spawn(async move {
            // Kept alive while the channel is read; the session ends with this task.
            let _handle = handle;
            let mut stderr = Vec::new();
            let mut status = None;
            while let Some(message) = read_half.wait().await {
                match message {
                    // Data is passed on in the guard; the stream's reader is gone when that fails.
                    ChannelMsg::Data { data } if incoming.send(Ok(data.to_vec())).await.is_err() => return,
                    ChannelMsg::ExtendedData { data, .. } => keep_stderr(&mut stderr, &data),
                    ChannelMsg::Failure => {
                        let _ = incoming.send(Err(format!("the server refused to run {service}"))).await;
                        return;
                    }
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::Eof | ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
            if status.is_some_and(|s| s != 0) || !stderr.is_empty() {
                let status = status.map_or_else(String::new, |s| format!(" (exit status {s})"));
                let _ = incoming.send(Err(format!("{service} ended{status}: {stderr}"))).await;
            }
        });
        Ok(SshStream {
            session,
            runtime,
            tasks: vec![writer, reader],
            to_server,
            from_server,
            pending: Vec::new(),
            offset: 0,
        })
    }
}

enum Failed {
    Connect(russh::Error),
    Timeout,
    Refused,
    Session(russh::Error),
}

impl Read for SshStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.pending.len() {
            let remaining = self.session.remaining()?;
            // The timer is made inside: it needs the runtime, which this thread may not be in.
            let from_server = &mut self.from_server;
            let received = self.runtime.block_on(async { tokio::time::timeout(remaining, from_server.recv()).await });
            let Ok(received) = received else { return Err(self.session.timed_out()) };
            match received {
                Some(Ok(data)) => {
                    self.session.received(data.len())?;
                    (self.pending, self.offset) = (data, 0);
                }
                Some(Err(why)) => {
                    let what = self.session.what();
                    return Err(self.session.fail(
                        FetchFailure::Other,
                        format!("{what}: {why}: check the repository path in the URL and the key's access to it"),
                    ));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.offset);
        buf[..n].copy_from_slice(&self.pending[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

impl Write for SshStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to_server
            .send(buf.to_vec())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the ssh channel is closed"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SshStream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBvdPXwXWJLI2l7mRmbRFdGvcoiqNiZu2CO9hNk0ehgl";

    fn key(base64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(base64).unwrap()
    }

    #[test]
    fn what_is_kept_of_the_servers_stderr_is_capped() {
        let mut kept = Vec::new();
        keep_stderr(&mut kept, b"fatal: ");
        keep_stderr(&mut kept, &vec![b'x'; 3 * STDERR_KEPT]);
        keep_stderr(&mut kept, b"more");
        assert_eq!(kept.len(), STDERR_KEPT);
        assert!(kept.starts_with(b"fatal: x"));
    }

    #[test]
    fn host_keys_are_checked_against_known_hosts_never_trusted_on_first_use() {
        let known = format!("# comment\n[git.example.com]:2222 ssh-ed25519 {KEY}\ngithub.com ssh-ed25519 {KEY}\n");
        let named = "the Secret's known_hosts";
        assert!(check_host_key(&known, named, "git.example.com", 2222, &key(KEY)).is_ok());
        assert!(check_host_key(&known, named, "github.com", 22, &key(KEY)).is_ok());
        let unlisted = check_host_key(&known, named, "git.example.com", 22, &key(KEY)).unwrap_err();
        assert!(unlisted.contains("not in known_hosts for git.example.com"), "{unlisted}");
        assert!(unlisted.contains("add the host's key to the Secret's known_hosts"), "{unlisted}");
        // Read from a file (`weaver bootstrap --known-hosts`): that file is named.
        let from_file =
            check_host_key(&known, "--known-hosts hosts.txt", "git.example.com", 22, &key(KEY)).unwrap_err();
        assert!(from_file.contains("add the host's key to --known-hosts hosts.txt"), "{from_file}");
        let changed = check_host_key(&known, named, "github.com", 22, &key(OTHER)).unwrap_err();
        assert!(changed.contains("lists another"), "{changed}");
        assert!(check_host_key("", named, "github.com", 22, &key(KEY)).is_err());
    }

    #[test]
    fn hashed_names_and_name_lists_match_and_other_lines_are_skipped() {
        // `ssh-keygen -H`'s form of `[git.example.com]:2222`, with the salt 0, 1, .., 19.
        let hashed = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|iB8ji+G7JiWchxZqOjryGAnIiTo=";
        let known = format!(
            "@cert-authority *.example.com ssh-ed25519 {OTHER}\n\n{hashed} ssh-ed25519 {KEY} a comment\n\
             other.example.com,github.com ssh-ed25519 {KEY}\nbroken.example.com ssh-ed25519 not-a-key\n"
        );
        assert_eq!(known_host_keys(&known, "[git.example.com]:2222", &key(KEY)), Ok(true));
        assert_eq!(known_host_keys(&known, "git.example.com", &key(KEY)), Ok(false));
        assert_eq!(known_host_keys(&known, "github.com", &key(KEY)), Ok(true));
        assert_eq!(known_host_keys(&known, "github.com", &key(OTHER)), Err(KnownHostsError::KeyChanged));
        assert_eq!(
            known_host_keys(&known, "broken.example.com", &key(KEY)),
            Err(KnownHostsError::Unreadable { line: 5 })
        );
    }
}
