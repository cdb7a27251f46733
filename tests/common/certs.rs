//! Test certificates: a private CA and a server certificate it signed, made with the openssl CLI.

use std::net::Ipv4Addr;
use std::path::Path;

/// A CA and a certificate for `address` it signed, PEM (the CA, the certificate, its key), made
/// with the openssl CLI; None when it cannot make them.
pub fn test_certificates(dir: &Path, address: Ipv4Addr) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl").args(args).current_dir(dir).output().is_ok_and(|o| o.status.success())
    };
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=weaver test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]) && openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &format!("/CN={address}"),
    ]) && openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
    made.then(|| (read("ca.pem"), read("server.pem"), read("server.key")))
}
