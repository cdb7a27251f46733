//! Hashes, random values and cryptography (sprig's crypto.go): digests, uuidv4, randBytes, bcrypt
//! and htpasswd, derivePassword (Master Password's scrypt scheme), AES-256-CBC, private keys and
//! X.509 certificates with the extensions Go's crypto/x509 writes for sprig's templates.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use ed25519_dalek::ed25519::signature::{self, Keypair, Signer};
use gotemplate::{FuncError, Function, Object, Templates, Type, Value};
use hmac::Mac;
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use sha1::Digest;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Ia5String, OctetString, PrintableStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use x509_cert::time::{Time, Validity};

use crate::go;
use crate::{bytes_arg, int_arg, str_arg};

pub(crate) fn register(t: &mut Templates) {
    let s1 = |f: fn(&str) -> String| Function::new(&[Type::String], move |_, a| Ok(Value::from(f(str_arg(a, 0)))));
    // Hashes read a string's bytes, which a binary file's are (see `bytes_arg`).
    let b1 = |f: fn(&[u8]) -> String| Function::new(&[Type::String], move |_, a| Ok(Value::from(f(bytes_arg(a, 0)))));
    t.add_function("sha1sum", b1(|b| hex(&sha1::Sha1::digest(b))));
    t.add_function("sha256sum", b1(|b| hex(&sha2::Sha256::digest(b))));
    t.add_function("sha512sum", b1(|b| hex(&sha2::Sha512::digest(b))));
    t.add_function("adler32sum", b1(|b| adler2::adler32_slice(b).to_string()));
    t.add_function("uuidv4", Function::new(&[], |_, _| Ok(Value::from(uuidv4()))));
    t.add_function(
        "randBytes",
        Function::new(&[Type::Int], |_, a| {
            let count = int_arg(a, 0);
            if count < 0 || count as u64 > go::MAX_LEN as u64 {
                return Err(go::runtime_error("makeslice: len out of range"));
            }
            let mut bytes = vec![0u8; count as usize];
            rand::thread_rng().fill_bytes(&mut bytes);
            Ok(Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)))
        }),
    );
    t.add_function("bcrypt", s1(bcrypt));
    t.add_function(
        "htpasswd",
        Function::new(&[Type::String, Type::String], |_, a| {
            let user = str_arg(a, 0);
            if user.contains(':') {
                return Ok(Value::from(format!("invalid username: {user}")));
            }
            Ok(Value::from(format!("{user}:{}", bcrypt(str_arg(a, 1)))))
        }),
    );
    t.add_function(
        "derivePassword",
        Function::new(&[Type::Int, Type::String, Type::String, Type::String, Type::String], |_, a| {
            Ok(Value::from(derive_password(
                int_arg(a, 0) as u32,
                str_arg(a, 1),
                str_arg(a, 2),
                str_arg(a, 3),
                str_arg(a, 4),
            )))
        }),
    );
    t.add_function(
        "encryptAES",
        Function::new(&[Type::String, Type::String], |_, a| Ok(Value::from(encrypt_aes(str_arg(a, 0), str_arg(a, 1))))),
    );
    t.add_function(
        "decryptAES",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(Value::from(decrypt_aes(str_arg(a, 0), str_arg(a, 1))?))
        }),
    );
    t.add_function(
        "genPrivateKey",
        Function::new(&[Type::String], |_, a| {
            let key = match str_arg(a, 0) {
                "" | "rsa" => PrivateKey::rsa(4096),
                "ecdsa" => Ok(PrivateKey::Ecdsa(p256::SecretKey::random(&mut rand::thread_rng()))),
                "ed25519" => Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rand::thread_rng()))),
                "dsa" => return Err(FuncError::new("genPrivateKey: dsa keys are not supported")),
                other => return Ok(Value::from(format!("Unknown type {other}"))),
            };
            Ok(Value::from(match key.and_then(|k| k.to_pem()) {
                Ok(pem) => pem,
                Err(e) => format!("failed to generate private key: {e}"),
            }))
        }),
    );
    t.add_function(
        "buildCustomCert",
        Function::new(&[Type::String, Type::String], |_, a| build_custom_cert(str_arg(a, 0), str_arg(a, 1))),
    );
    t.add_function(
        "genCA",
        Function::new(&[Type::String, Type::Int], |_, a| {
            let key = PrivateKey::rsa(2048).map_err(|e| FuncError::new(format!("error generating rsa key: {e}")))?;
            generate_ca(str_arg(a, 0), int_arg(a, 1), key)
        }),
    );
    t.add_function(
        "genCAWithKey",
        Function::new(&[Type::String, Type::Int, Type::String], |_, a| {
            let key =
                PrivateKey::from_pem(str_arg(a, 2)).map_err(|e| FuncError::new(format!("parsing private key: {e}")))?;
            generate_ca(str_arg(a, 0), int_arg(a, 1), key)
        }),
    );
    t.add_function(
        "genSelfSignedCert",
        Function::new(&[Type::String, Type::List, Type::List, Type::Int], |_, a| {
            let key = PrivateKey::rsa(2048).map_err(|e| FuncError::new(format!("error generating rsa key: {e}")))?;
            self_signed(a, key)
        }),
    );
    t.add_function(
        "genSelfSignedCertWithKey",
        Function::new(&[Type::String, Type::List, Type::List, Type::Int, Type::String], |_, a| {
            let key =
                PrivateKey::from_pem(str_arg(a, 4)).map_err(|e| FuncError::new(format!("parsing private key: {e}")))?;
            self_signed(a, key)
        }),
    );
    t.add_function(
        "genSignedCert",
        Function::new(&[Type::String, Type::List, Type::List, Type::Int, Type::Any], |_, a| {
            let ca = certificate_arg(&a[4])?;
            let key = PrivateKey::rsa(2048).map_err(|e| FuncError::new(format!("error generating rsa key: {e}")))?;
            signed(a, &ca, key)
        }),
    );
    t.add_function(
        "genSignedCertWithKey",
        Function::new(&[Type::String, Type::List, Type::List, Type::Int, Type::Any, Type::String], |_, a| {
            let ca = certificate_arg(&a[4])?;
            let key =
                PrivateKey::from_pem(str_arg(a, 5)).map_err(|e| FuncError::new(format!("parsing private key: {e}")))?;
            signed(a, &ca, key)
        }),
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn uuidv4() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// golang.org/x/crypto/bcrypt at the default cost, in Go's "$2a$" form; sprig prints errors.
fn bcrypt(password: &str) -> String {
    if password.len() > 72 {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes".to_string();
    }
    match bcrypt::hash_with_result(password, 10) {
        Ok(hash) => hash.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

/// Master Password's templates, by name.
fn password_templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

fn template_characters(c: u8) -> &'static [u8] {
    match c {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// sprig's derivePassword: Master Password's algorithm (scrypt N=32768, r=8, p=2; HMAC-SHA256).
fn derive_password(counter: u32, kind: &str, password: &str, user: &str, site: &str) -> String {
    let Some(templates) = password_templates(kind) else {
        return format!("cannot find password template {kind}");
    };
    const SEED: &[u8] = b"com.lyndir.masterpassword";
    let mut salt = SEED.to_vec();
    salt.extend_from_slice(&(user.len() as u32).to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut key = [0u8; 64];
    let derived = scrypt::Params::new(15, 8, 2, 64)
        .map_err(|e| e.to_string())
        .and_then(|params| scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).map_err(|e| e.to_string()));
    if let Err(e) = derived {
        return format!("failed to derive password: {e}");
    }
    let mut message = SEED.to_vec();
    message.extend_from_slice(&(site.len() as u32).to_be_bytes());
    message.extend_from_slice(site.as_bytes());
    message.extend_from_slice(&counter.to_be_bytes());
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return "failed to derive password: invalid key".to_string();
    };
    mac.update(&message);
    let seed = mac.finalize().into_bytes();
    let template = templates[usize::from(seed[0]) % templates.len()].as_bytes();
    template
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let chars = template_characters(*c);
            char::from(chars[usize::from(seed[i + 1]) % chars.len()])
        })
        .collect()
}

/// The AES-256 key sprig makes of a password: its first 32 bytes, zero-padded.
fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let bytes = password.as_bytes();
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

/// AES-256-CBC with PKCS#7 padding and a random IV in front, base64-encoded.
fn encrypt_aes(password: &str, plaintext: &str) -> String {
    if plaintext.is_empty() {
        return String::new();
    }
    let mut iv = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut iv);
    let encryptor = cbc::Encryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into());
    let padding = 16 - plaintext.len() % 16;
    let mut buffer = plaintext.as_bytes().to_vec();
    buffer.resize(plaintext.len() + padding, padding as u8);
    let len = buffer.len();
    let Ok(ciphertext) = encryptor.encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buffer, len) else {
        return String::new();
    };
    let mut out = iv.to_vec();
    out.extend_from_slice(ciphertext);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// sprig's decryptAES, with the panics Go's slicing and CBC mode raise on malformed input.
fn decrypt_aes(password: &str, encoded: &str) -> Result<String, FuncError> {
    if encoded.is_empty() {
        return Ok(String::new());
    }
    let data = crate::encoding::base64_decode(encoded)
        .map_err(|at| FuncError::new(format!("illegal base64 data at input byte {at}")))?;
    if data.len() < 16 {
        return Err(go::runtime_error(&format!("slice bounds out of range [:16] with capacity {}", data.len())));
    }
    let (iv, ciphertext) = data.split_at(16);
    if ciphertext.len() % 16 != 0 {
        return Err(FuncError::new("crypto/cipher: input not full blocks"));
    }
    let mut buffer = ciphertext.to_vec();
    let Ok(iv) = <[u8; 16]>::try_from(iv) else { return Err(go::runtime_error("invalid IV length")) };
    let decryptor = cbc::Decryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into());
    let plain = decryptor
        .decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buffer)
        .map_err(|_| FuncError::new("crypto/cipher: input not full blocks"))?;
    let Some(&padding) = plain.last() else {
        return Err(go::runtime_error("index out of range [-1]"));
    };
    let end = plain.len() as i64 - i64::from(padding);
    if end < 0 {
        return Err(go::runtime_error(&format!("slice bounds out of range [:{end}]")));
    }
    Ok(String::from_utf8_lossy(&plain[..end as usize]).into_owned())
}

/// A private key of a kind Go's crypto/x509 handles and sprig generates.
enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ecdsa(p256::SecretKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl PrivateKey {
    /// A new RSA key of `bits` (sprig asks for 2,048 or 4,096), public exponent 65537 as Go's.
    fn rsa(bits: u32) -> Result<PrivateKey, String> {
        rsa_keys::new_key(bits)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .ok_or_else(|| "aws-lc could not make one".to_string())
    }

    /// sprig's pemBlockForKey: PKCS#1 for RSA, SEC 1 for ECDSA, PKCS#8 for Ed25519.
    fn to_pem(&self) -> Result<String, String> {
        let (kind, der) = match self {
            PrivateKey::Rsa(k) => ("RSA PRIVATE KEY", k.to_pkcs1_der().map_err(|e| e.to_string())?.as_bytes().to_vec()),
            PrivateKey::Ecdsa(k) => ("EC PRIVATE KEY", ec_private_key_der(k)?),
            PrivateKey::Ed25519(k) => ("PRIVATE KEY", k.to_pkcs8_der().map_err(|e| e.to_string())?.as_bytes().to_vec()),
        };
        Ok(pem_encode(kind, &der))
    }

    /// sprig's parsePrivateKeyPEM.
    fn from_pem(text: &str) -> Result<PrivateKey, String> {
        let (kind, der) = pem_decode(text).ok_or("no PEM data in input")?;
        if kind == "PRIVATE KEY" {
            if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(&der) {
                return Ok(PrivateKey::Rsa(Box::new(k)));
            }
            if let Ok(k) = p256::SecretKey::from_pkcs8_der(&der) {
                return Ok(PrivateKey::Ecdsa(k));
            }
            return ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| format!("decoding PEM as PKCS#8: {e}"));
        }
        let Some(prefix) = kind.strip_suffix(" PRIVATE KEY") else {
            return Err(format!("no private key data in PEM block of type {kind}"));
        };
        match prefix {
            "RSA" => rsa::RsaPrivateKey::from_pkcs1_der(&der)
                .map(|k| PrivateKey::Rsa(Box::new(k)))
                .map_err(|e| format!("parsing RSA private key from PEM: {e}")),
            "EC" => p256::SecretKey::from_sec1_der(&der)
                .map(PrivateKey::Ecdsa)
                .map_err(|e| format!("parsing EC private key from PEM: {e}")),
            "DSA" => Err("parsing DSA private key from PEM: DSA keys are not supported".to_string()),
            _ => Err(format!("invalid private key type {kind}")),
        }
    }

    fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, String> {
        let der = match self {
            PrivateKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            PrivateKey::Ecdsa(k) => k.public_key().to_public_key_der(),
            PrivateKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| e.to_string())?;
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| e.to_string())
    }
}

/// x509.MarshalECPrivateKey: SEC 1 with the curve's OID and the public key.
fn ec_private_key_der(key: &p256::SecretKey) -> Result<Vec<u8>, String> {
    let private = key.to_bytes();
    let public = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key(), false);
    let document = sec1::EcPrivateKey {
        private_key: &private,
        parameters: Some(sec1::EcParameters::NamedCurve(const_oid::db::rfc5912::SECP_256_R_1)),
        public_key: Some(public.as_bytes()),
    };
    document.to_der().map_err(|e| e.to_string())
}

/// encoding/pem's EncodeToMemory.
fn pem_encode(kind: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {kind}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

/// encoding/pem's Decode for the first block: its type and bytes.
fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let mut rest = text;
    loop {
        let start = if rest.starts_with("-----BEGIN ") { 0 } else { rest.find("\n-----BEGIN ")? + 1 };
        rest = &rest[start + "-----BEGIN ".len()..];
        let (kind, after) = rest.split_once('\n')?;
        let Some(kind) = kind.trim_end_matches('\r').strip_suffix("-----") else { continue };
        let end_marker = format!("-----END {kind}-----");
        let Some(end) = after.find(&end_marker) else { continue };
        let body: String = after[..end].lines().filter(|l| !l.contains(':')).collect::<String>();
        let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(der) => return Some((kind.to_string(), der)),
            Err(_) => rest = &after[end..],
        }
    }
}

/// sprig's `certificate` struct: PEM certificate and key.
#[derive(Debug, Clone)]
struct Certificate {
    cert: String,
    key: String,
}

impl Object for Certificate {
    fn type_name(&self) -> &str {
        "sprig.certificate"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(Value::from(self.cert.as_str())),
            "Key" => Some(Value::from(self.key.as_str())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }
}

fn certificate_arg(value: &Value) -> Result<Certificate, FuncError> {
    let found = match value {
        Value::Object(o) => {
            let any: &dyn std::any::Any = o.as_ref();
            any.downcast_ref::<Certificate>().cloned()
        }
        _ => None,
    };
    found.ok_or_else(|| {
        FuncError::new(format!("wrong type for value; expected sprig.certificate; got {}", value.type_name()))
    })
}

fn build_custom_cert(b64_cert: &str, b64_key: &str) -> Result<Value, FuncError> {
    let cert =
        crate::encoding::base64_decode(b64_cert).map_err(|_| FuncError::new("unable to decode base64 certificate"))?;
    let key =
        crate::encoding::base64_decode(b64_key).map_err(|_| FuncError::new("unable to decode base64 private key"))?;
    let (cert, key) = (String::from_utf8_lossy(&cert).into_owned(), String::from_utf8_lossy(&key).into_owned());
    let (_, der) = pem_decode(&cert).ok_or_else(|| FuncError::new("unable to decode certificate"))?;
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| FuncError::new(format!("error parsing certificate: decodedCert.Bytes: {e}")))?;
    PrivateKey::from_pem(&key).map_err(|e| FuncError::new(format!("error parsing private key: {e}")))?;
    Ok(Value::Object(Arc::new(Certificate { cert, key })))
}

/// What a certificate says about its subject, as sprig's getBaseCertTemplate fills it.
struct Template {
    subject: Name,
    ips: Vec<IpAddr>,
    dns_names: Vec<String>,
    validity: Validity,
    is_ca: bool,
}

fn common_name(cn: &str) -> Result<Name, FuncError> {
    if cn.is_empty() {
        return Ok(RdnSequence::default());
    }
    let err = |e: x509_cert::der::Error| FuncError::new(e.to_string());
    let value = match PrintableStringRef::new(cn) {
        Ok(printable) => x509_cert::der::Any::encode_from(&printable).map_err(err)?,
        Err(_) => x509_cert::der::Any::encode_from(&Utf8StringRef::new(cn).map_err(err)?).map_err(err)?,
    };
    let attribute = x509_cert::attr::AttributeTypeAndValue { oid: const_oid::db::rfc4519::CN, value };
    let rdn = RelativeDistinguishedName::try_from(vec![attribute]).map_err(err)?;
    Ok(RdnSequence(vec![rdn]))
}

fn base_template(cn: &str, ips: &Value, dns: &Value, days: i64) -> Result<Template, FuncError> {
    let items = |v: &Value| go::slice_items(v).map(|l| l.to_vec()).unwrap_or_default();
    let mut parsed_ips = Vec::new();
    for ip in items(ips) {
        let Value::String(text) = &ip else {
            return Err(FuncError::new(format!("error parsing ip: {} is not a string", go::sprint(&ip))));
        };
        parsed_ips.push(IpAddr::from_str(text).map_err(|_| FuncError::new(format!("error parsing ip: {text}")))?);
    }
    let mut dns_names = Vec::new();
    for name in items(dns) {
        let Value::String(text) = &name else {
            return Err(FuncError::new(format!(
                "error processing alternate dns name: {} is not a string",
                go::sprint(&name)
            )));
        };
        dns_names.push(text.to_string());
    }
    let now = SystemTime::now();
    let span = Duration::from_secs(days.unsigned_abs().saturating_mul(86_400));
    let not_after = if days >= 0 { now.checked_add(span) } else { now.checked_sub(span) };
    let time = |t: Option<SystemTime>| -> Result<Time, FuncError> {
        let t = t.ok_or_else(|| FuncError::new("certificate validity out of range"))?;
        Time::try_from(t).map_err(|e| FuncError::new(format!("certificate validity out of range: {e}")))
    };
    Ok(Template {
        subject: common_name(cn)?,
        ips: parsed_ips,
        dns_names,
        validity: Validity { not_before: time(Some(now))?, not_after: time(not_after)? },
        is_ca: false,
    })
}

fn generate_ca(cn: &str, days: i64, key: PrivateKey) -> Result<Value, FuncError> {
    let mut template = base_template(cn, &Value::Nil, &Value::Nil, days)?;
    template.is_ca = true;
    certificate(&template, &key, None, &key)
}

fn self_signed(a: &[Value], key: PrivateKey) -> Result<Value, FuncError> {
    let template = base_template(str_arg(a, 0), &a[1], &a[2], int_arg(a, 3))?;
    certificate(&template, &key, None, &key)
}

fn signed(a: &[Value], ca: &Certificate, key: PrivateKey) -> Result<Value, FuncError> {
    let (_, der) = pem_decode(&ca.cert).ok_or_else(|| FuncError::new("unable to decode certificate"))?;
    let parent = x509_cert::Certificate::from_der(&der)
        .map_err(|e| FuncError::new(format!("error parsing certificate: decodedSignerCert.Bytes: {e}")))?;
    let signer =
        PrivateKey::from_pem(&ca.key).map_err(|e| FuncError::new(format!("error parsing private key: {e}")))?;
    let template = base_template(str_arg(a, 0), &a[1], &a[2], int_arg(a, 3))?;
    certificate(&template, &key, Some(&parent), &signer)
}

/// Ed25519 signatures in a certificate's signature BIT STRING (the dalek types lack the trait).
struct Ed25519Signature(ed25519_dalek::Signature);

impl SignatureBitStringEncoding for Ed25519Signature {
    fn to_bitstring(&self) -> x509_cert::der::Result<x509_cert::der::asn1::BitString> {
        x509_cert::der::asn1::BitString::from_bytes(&self.0.to_bytes())
    }
}

struct Ed25519Signer(ed25519_dalek::SigningKey);

impl Keypair for Ed25519Signer {
    type VerifyingKey = ed25519_dalek::VerifyingKey;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.0.verifying_key()
    }
}

impl DynSignatureAlgorithmIdentifier for Ed25519Signer {
    fn signature_algorithm_identifier(&self) -> x509_cert::spki::Result<AlgorithmIdentifierOwned> {
        self.0.signature_algorithm_identifier()
    }
}

impl Signer<Ed25519Signature> for Ed25519Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Ed25519Signature, signature::Error> {
        Ok(Ed25519Signature(self.0.sign(message)))
    }
}

/// crypto/x509's CreateCertificate for sprig's templates: key usages, server and client auth,
/// basic constraints, a subject key id for CAs, the issuer's key id, and the SANs.
fn certificate(
    template: &Template,
    key: &PrivateKey,
    parent: Option<&x509_cert::Certificate>,
    signer: &PrivateKey,
) -> Result<Value, FuncError> {
    let creating = |e: &dyn std::fmt::Display| FuncError::new(format!("error creating certificate: {e}"));
    let spki = key
        .public_key_info()
        .map_err(|e| FuncError::new(format!("error retrieving public key from signee key: {e}")))?;
    if let Some(parent) = parent {
        let signer_spki = signer.public_key_info().map_err(|e| creating(&e))?;
        if signer_spki != parent.tbs_certificate.subject_public_key_info {
            return Err(creating(&"x509: provided PrivateKey doesn't match parent's PublicKey"));
        }
    }
    let mut serial = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    let serial = SerialNumber::new(&serial).map_err(|e| creating(&e))?;
    let issuer = parent.map(|p| p.tbs_certificate.subject.clone());
    let self_issued = issuer.as_ref().is_none_or(|i| *i == template.subject);
    let mut usages = KeyUsages::KeyEncipherment | KeyUsages::DigitalSignature;
    if template.is_ca {
        usages |= KeyUsages::KeyCertSign;
    }
    let eku = GoExtendedKeyUsage(ExtendedKeyUsage(vec![
        const_oid::db::rfc5280::ID_KP_SERVER_AUTH,
        const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
    ]));
    let basic = BasicConstraints { ca: template.is_ca, path_len_constraint: None };
    let subject_key_id = template.is_ca.then(|| sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec());
    let authority_key_id = match parent {
        Some(p) if !self_issued => p.tbs_certificate.extensions.iter().flatten().find_map(|e| {
            (e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
                .then(|| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
                .flatten()
        }),
        _ => None,
    };
    let mut sans = Vec::new();
    for name in &template.dns_names {
        sans.push(GeneralName::DnsName(Ia5String::new(name).map_err(|e| creating(&e))?));
    }
    for ip in &template.ips {
        let bytes = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        sans.push(GeneralName::IpAddress(OctetString::new(bytes).map_err(|e| creating(&e))?));
    }
    let extensions = Extensions { usages: KeyUsage(usages), eku, basic, subject_key_id, authority_key_id, sans };
    let profile = Profile::Manual { issuer };
    let der = match signer {
        PrivateKey::Rsa(k) => {
            let signing = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
            build::<_, rsa::pkcs1v15::Signature>(profile, serial, template, spki, &signing, &extensions)
        }
        PrivateKey::Ecdsa(k) => {
            let signing = p256::ecdsa::SigningKey::from(k);
            build::<_, p256::ecdsa::DerSignature>(profile, serial, template, spki, &signing, &extensions)
        }
        PrivateKey::Ed25519(k) => {
            let signing = Ed25519Signer(k.clone());
            build::<_, Ed25519Signature>(profile, serial, template, spki, &signing, &extensions)
        }
    }
    .map_err(|e| creating(&e))?;
    let key_pem = key.to_pem().map_err(|e| FuncError::new(format!("error pem-encoding key: {e}")))?;
    Ok(Value::Object(Arc::new(Certificate { cert: pem_encode("CERTIFICATE", &der), key: key_pem })))
}

/// Extended key usage as Go's x509 writes it: not critical (x509-cert marks it critical unless
/// it holds anyExtendedKeyUsage).
struct GoExtendedKeyUsage(ExtendedKeyUsage);

impl const_oid::AssociatedOid for GoExtendedKeyUsage {
    const OID: const_oid::ObjectIdentifier = ExtendedKeyUsage::OID;
}

impl Encode for GoExtendedKeyUsage {
    fn encoded_len(&self) -> x509_cert::der::Result<x509_cert::der::Length> {
        self.0.encoded_len()
    }

    fn encode(&self, writer: &mut impl x509_cert::der::Writer) -> x509_cert::der::Result<()> {
        self.0.encode(writer)
    }
}

impl x509_cert::ext::AsExtension for GoExtendedKeyUsage {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        false
    }
}

struct Extensions {
    usages: KeyUsage,
    eku: GoExtendedKeyUsage,
    basic: BasicConstraints,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<SubjectKeyIdentifier>,
    sans: Vec<GeneralName>,
}

fn build<S, Sig>(
    profile: Profile,
    serial: SerialNumber,
    template: &Template,
    spki: SubjectPublicKeyInfoOwned,
    signer: &S,
    ext: &Extensions,
) -> Result<Vec<u8>, String>
where
    S: Keypair + DynSignatureAlgorithmIdentifier + Signer<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let err = |e: x509_cert::builder::Error| e.to_string();
    let mut builder =
        CertificateBuilder::new(profile, serial, template.validity, template.subject.clone(), spki, signer)
            .map_err(err)?;
    // Go's order: key usage, extended key usage, basic constraints, key ids, then the SANs.
    builder.add_extension(&ext.usages).map_err(err)?;
    builder.add_extension(&ext.eku).map_err(err)?;
    builder.add_extension(&ext.basic).map_err(err)?;
    if let Some(id) = &ext.subject_key_id {
        let id = OctetString::new(id.clone()).map_err(|e| e.to_string())?;
        builder.add_extension(&SubjectKeyIdentifier(id)).map_err(err)?;
    }
    if let Some(SubjectKeyIdentifier(id)) = &ext.authority_key_id {
        let aki = AuthorityKeyIdentifier { key_identifier: Some(id.clone()), ..Default::default() };
        builder.add_extension(&aki).map_err(err)?;
    }
    if !ext.sans.is_empty() {
        builder.add_extension(&SubjectAltName(ext.sans.clone())).map_err(err)?;
    }
    builder.build::<Sig>().map_err(err)?.to_der().map_err(|e| e.to_string())
}

/// RSA keys of two primes `weaver_primes` finds, exponent 65537 as Go's.
pub(crate) mod rsa_keys {
    /// A new key of `bits`, or `None` when aws-lc failed or the rsa crate refused the primes.
    pub(super) fn new_key(bits: u32) -> Option<rsa::RsaPrivateKey> {
        let [p, q] = weaver_primes::two_primes(bits / 2)?;
        let prime = |bytes: &[u8]| rsa::BigUint::from_bytes_le(bytes);
        rsa::RsaPrivateKey::from_p_q(prime(&p), prime(&q), rsa::BigUint::from(weaver_primes::EXPONENT)).ok()
    }

    #[cfg(test)]
    mod tests {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};

        use super::*;

        #[test]
        fn a_key_is_whole_and_of_the_size_asked() {
            let key = new_key(2048).expect("a key");
            key.validate().expect("a consistent key");
            assert_eq!(key.size() * 8, 2048);
            assert_eq!(key.e(), &rsa::BigUint::from(weaver_primes::EXPONENT));
            assert_eq!(key.primes().len(), 2);
            assert_ne!(new_key(2048).expect("a key").n(), key.n(), "keys are drawn afresh");
        }
    }
}
