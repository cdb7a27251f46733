//! libgit2's transports, replaced by weaver's own: libgit2 is built without its https (OpenSSL)
//! and ssh (libssh2) transports. Registration is process-wide and happens once; what one fetch
//! needs (URL, credentials, CA) reaches its transport through a thread-local [`Session`], set by
//! the fetching thread around its libgit2 calls (libgit2 creates and drives a transport on the
//! thread that fetches), so no credential is ever put in a URL libgit2 sees.

mod http;
mod session;
mod ssh;

pub use ssh::{generate_deploy_key, public_key_of, scan_host_key};

pub(super) use session::Session;

use std::cell::RefCell;
use std::sync::{Arc, Once};

use git2::transport::Transport;

thread_local! {
    static CURRENT: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// Makes `session` the one this thread's transports use until the guard is dropped.
pub(super) fn enter(session: Arc<Session>) -> Entered {
    register();
    CURRENT.with(|current| *current.borrow_mut() = Some(session));
    Entered(())
}

pub(super) struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|current| *current.borrow_mut() = None);
    }
}

fn current() -> Result<Arc<Session>, git2::Error> {
    CURRENT.with(|current| current.borrow().clone()).ok_or_else(|| {
        git2::Error::from_str("weaver's network transports serve only fetches and pushes made through source::GitCache")
    })
}

/// Registers weaver's transports with libgit2, once per process.
pub(super) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let http = |remote: &git2::Remote<'_>| {
            let session = current()?;
            Transport::smart(remote, true, http::HttpSubtransport::new(session))
        };
        let ssh = |remote: &git2::Remote<'_>| {
            let session = current()?;
            Transport::smart(remote, false, ssh::SshSubtransport::new(session))
        };
        // SAFETY: `Once` runs this before any fetch of this process creates a transport.
        unsafe {
            for (scheme, result) in [
                ("https", git2::transport::register("https", http)),
                // Plain http only ever reaches a loopback address (SourceUrl refuses others).
                ("http", git2::transport::register("http", http)),
                ("ssh", git2::transport::register("ssh", ssh)),
            ] {
                if let Err(err) = result {
                    tracing::error!("cannot register weaver's {scheme} transport with libgit2: {}", err.message());
                }
            }
        }
    });
}
