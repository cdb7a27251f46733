//! Certificates from genCA and genSignedCert carry the extensions Go's x509.CreateCertificate
//! writes for sprig's templates, with Go's criticality: key usage and basic constraints
//! critical; extended key usage, key identifiers and subject alternative names not. RSA keys
//! have the sizes sprig asks for.

use crate::common;

use base64::Engine as _;
use x509_cert::der::Decode;

fn certificate(pem: &str) -> x509_cert::Certificate {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).expect("base64 PEM body");
    x509_cert::Certificate::from_der(&der).expect("a DER certificate")
}

/// Each extension's OID (dotted) and whether it is critical, in the certificate's order.
fn extensions(cert: &x509_cert::Certificate) -> Vec<(String, bool)> {
    cert.tbs_certificate.extensions.iter().flatten().map(|e| (e.extn_id.to_string(), e.critical)).collect()
}

#[test]
fn extensions_are_critical_as_go_marks_them() {
    let case = common::Case {
        name: "certificates".into(),
        values: serde_json::json!({}),
        template: r#"{{ $ca := genCA "ca" 365 }}{{ $c := genSignedCert "leaf" (list "10.0.0.1") (list "leaf.example") 365 $ca }}{{ $ca.Cert }}{{ $c.Cert }}"#.into(),
        expected: Ok(String::new()),
    };
    let out = common::render(&case).expect("renders");
    let end = "-----END CERTIFICATE-----\n";
    let (ca, leaf) = out.split_once(end).expect("two certificates");
    const KEY_USAGE: &str = "2.5.29.15";
    const EXT_KEY_USAGE: &str = "2.5.29.37";
    const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    const SUBJECT_KEY_ID: &str = "2.5.29.14";
    const AUTHORITY_KEY_ID: &str = "2.5.29.35";
    const SUBJECT_ALT_NAME: &str = "2.5.29.17";
    let owned = |list: &[(&str, bool)]| list.iter().map(|(o, c)| (o.to_string(), *c)).collect::<Vec<_>>();
    assert_eq!(
        extensions(&certificate(&format!("{ca}{end}"))),
        owned(&[(KEY_USAGE, true), (EXT_KEY_USAGE, false), (BASIC_CONSTRAINTS, true), (SUBJECT_KEY_ID, false)])
    );
    assert_eq!(
        extensions(&certificate(leaf)),
        owned(&[
            (KEY_USAGE, true),
            (EXT_KEY_USAGE, false),
            (BASIC_CONSTRAINTS, true),
            (AUTHORITY_KEY_ID, false),
            (SUBJECT_ALT_NAME, false)
        ])
    );
}

#[test]
fn rsa_keys_have_sprigs_sizes_and_gos_exponent() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let case = common::Case {
        name: "keys".into(),
        values: serde_json::json!({}),
        template: r#"{{ genPrivateKey "rsa" }}{{ (genCA "ca" 1).Key }}"#.into(),
        expected: Ok(String::new()),
    };
    let out = common::render(&case).expect("renders");
    let end = "-----END RSA PRIVATE KEY-----\n";
    let (big, small) = out.split_once(end).expect("two keys");
    for (pem, bits) in [(format!("{big}{end}"), 4096), (small.to_string(), 2048)] {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("a PKCS#1 RSA key");
        assert_eq!(key.size() * 8, bits);
        assert_eq!(key.e(), &rsa::BigUint::from(65_537u32));
        key.validate().expect("a consistent key");
    }
}
