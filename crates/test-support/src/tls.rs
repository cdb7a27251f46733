//! A TLS server's side for the loopback servers of tests: the certificate chain and key as PEM.

use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Accepts TLS connections with `chain` (PEM, the server's certificate first) and `key` (PEM),
/// on rustls with aws-lc-rs as weaver's clients use it.
pub fn acceptor(chain: &[u8], key: &[u8]) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(server_config(chain, key))
}

/// [`acceptor`] for the tests' threaded servers, which block on their connections.
#[derive(Clone)]
pub struct BlockingTls(Arc<rustls::ServerConfig>);

impl BlockingTls {
    pub fn new(chain: &[u8], key: &[u8]) -> BlockingTls {
        BlockingTls(server_config(chain, key))
    }

    /// The TLS connection on `stream` (its handshake made on the first read).
    pub fn accept(&self, stream: TcpStream) -> rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
        let connection = rustls::ServerConnection::new(self.0.clone()).expect("a server connection");
        rustls::StreamOwned::new(connection, stream)
    }
}

fn server_config(chain: &[u8], key: &[u8]) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain).collect::<Result<_, _>>().expect("a PEM certificate chain");
    let key = PrivateKeyDer::from_pem_slice(key).expect("a PEM private key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the key is the certificate's");
    Arc::new(config)
}
