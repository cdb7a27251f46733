//! OpenSSH's sshd serving git over ssh for tests: on loopback (tests/git_source.rs) or on an
//! address a cluster's Pods reach (tests/node.rs), with a host key, another host key to list
//! wrongly, and authorized client keys.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weaver_source::Credentials;

/// sshd on a free port of one address. Its directory holds the keys: `host` (the server's),
/// `other` (a host key the server does not have) and `client` (ed25519, authorized); an RSA
/// client key on demand (`authorize_rsa_client`).
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub address: Ipv4Addr,
    pub port: u16,
    child: std::process::Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// Why sshd cannot run here, if it cannot.
    pub fn missing() -> Option<String> {
        if !Path::new("/usr/sbin/sshd").exists() {
            return Some("OpenSSH's sshd (/usr/sbin/sshd, Debian's openssh-server) is not installed".into());
        }
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            return Some("ssh-keygen (Debian's openssh-client) is not installed".into());
        }
        None
    }

    /// sshd on 127.0.0.1.
    pub fn start() -> Sshd {
        Sshd::start_on(Ipv4Addr::LOCALHOST)
    }

    /// sshd listening on `address` only.
    pub fn start_on(address: Ipv4Addr) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        for name in ["host", "client", "other"] {
            keygen(&dir.path().join(name), "ed25519");
        }
        std::fs::copy(dir.path().join("client.pub"), dir.path().join("authorized_keys")).unwrap();
        // sshd's privilege separation directory, which Debian makes at boot.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = std::net::TcpListener::bind((address, 0)).unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        // Each session runs its command with the user's shell, and bash started by sshd reads
        // ~/.bashrc: HOME is this directory, so that the user's shell set-up (pyenv's took 120 ms
        // of CPU a session) and git configuration stay out of the sessions.
        let config = format!(
            "Port {port}\nListenAddress {address}\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPidFile {d}/sshd.pid\nLogLevel ERROR\nSetEnv HOME={d}\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { dir, address, port, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((address, port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen on {address}:{port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// An RSA client key, authorized as `client` is, named `client-rsa`: made only when a test asks
    /// (ssh-keygen's RSA keys cost a second of CPU each).
    pub fn authorize_rsa_client(&self) -> &'static str {
        keygen(&self.dir.path().join("client-rsa"), "rsa");
        let mut authorized = self.read("authorized_keys");
        authorized.push_str(&self.read("client-rsa.pub"));
        std::fs::write(self.dir.path().join("authorized_keys"), authorized).unwrap();
        "client-rsa"
    }

    /// A file of its directory: a private key (`client`) or a public one (`host.pub`).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// A known_hosts line for this server with the public key in `file`.
    pub fn known_host(&self, file: &str) -> String {
        format!("[{}]:{} {}", self.address, self.port, self.read(file))
    }

    /// The ssh URL of `repository` on this machine, as the user running the tests.
    pub fn url(&self, repository: &Path) -> String {
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!("ssh://{}@{}:{}{}", user.trim(), self.address, self.port, repository.display())
    }

    pub fn credentials(&self, identity: &str, known_hosts: &str) -> Credentials {
        Credentials::Ssh { identity: self.read(identity).into(), known_hosts: known_hosts.to_string() }
    }
}

fn keygen(path: &Path, kind: &str) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "weaver-test", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen");
}
