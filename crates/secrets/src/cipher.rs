//! sops' value cipher: AES-256-GCM with a 32-byte nonce, serialised as
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.

use std::collections::{HashMap, VecDeque};

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use rand::rngs::OsRng;

use super::tree::Value;

type SopsGcm = AesGcm<Aes256, U32>;

const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The 32-byte key every value of a file is encrypted with.
pub(crate) struct DataKey(pub(crate) [u8; 32]);

impl DataKey {
    pub(crate) fn generate() -> DataKey {
        let mut key = [0; 32];
        OsRng.fill_bytes(&mut key);
        DataKey(key)
    }

    fn cipher(&self) -> SopsGcm {
        SopsGcm::new((&self.0).into())
    }
}

/// A plaintext as sops serialises it before encryption or hashing: its type tag and bytes.
/// Bools are `True`/`False` and floats use Go's shortest decimal form (`strconv.FormatFloat(f,
/// 'f', -1, 64)`), both inherited from sops' Python original.
pub(crate) fn plain_bytes(value: &Value) -> (&'static str, Vec<u8>) {
    match value {
        Value::Str(s) => ("str", s.as_bytes().to_vec()),
        Value::Int(i) => ("int", i.to_string().into_bytes()),
        Value::Bool(b) => ("bool", if *b { "True" } else { "False" }.into()),
        Value::Float(f) => ("float", go_format_float(*f).into_bytes()),
        Value::Null | Value::Map(_) | Value::Seq(_) => unreachable!("only scalars are encrypted"),
    }
}

fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display is the shortest round-trip decimal without an exponent, like Go's 'f', -1.
        f.to_string()
    }
}

/// IVs of the values decrypted from a file, so that re-encrypting an unchanged value (same
/// path, type and plaintext, same data key) reproduces its ciphertext, as sops' stash does.
/// Each IV is handed out once: duplicates within a list keep distinct ciphertexts.
#[derive(Clone, Default)]
pub(crate) struct Stash(HashMap<StashKey, VecDeque<[u8; IV_LEN]>>);

/// Additional data (the path), type tag and plaintext.
type StashKey = (String, &'static str, Vec<u8>);

impl Stash {
    fn record(&mut self, aad: &str, kind: &'static str, plain: &[u8], iv: [u8; IV_LEN]) {
        self.0.entry((aad.to_owned(), kind, plain.to_vec())).or_default().push_back(iv);
    }

    fn take(&mut self, aad: &str, kind: &'static str, plain: &[u8]) -> Option<[u8; IV_LEN]> {
        self.0.get_mut(&(aad.to_owned(), kind, plain.to_vec()))?.pop_front()
    }
}

/// Encrypts `plain` (tagged `kind`). Empty plaintexts stay empty strings, as in sops.
pub(crate) fn encrypt(key: &DataKey, kind: &'static str, plain: &[u8], aad: &str, stash: &mut Stash) -> String {
    if plain.is_empty() {
        return String::new();
    }
    let iv = stash.take(aad, kind, plain).unwrap_or_else(|| {
        let mut iv = [0; IV_LEN];
        OsRng.fill_bytes(&mut iv);
        iv
    });
    let mut data = plain.to_vec();
    let tag = key
        .cipher()
        .encrypt_in_place_detached(Nonce::<U32>::from_slice(&iv), aad.as_bytes(), &mut data)
        .expect("AES-GCM accepts any plaintext shorter than 64 GiB");
    format!("ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]", B64.encode(&data), B64.encode(iv), B64.encode(tag))
}

pub(crate) enum DecryptError {
    /// Not in sops' format; the reason never quotes the input.
    Malformed(String),
    /// Authentication failed: tampered ciphertext, wrong path, or wrong key.
    Integrity,
}

/// A decrypted value: its tag as written and its plaintext.
pub(crate) struct Opened {
    pub(crate) kind: String,
    pub(crate) plain: Vec<u8>,
}

/// Decrypts an `ENC[…]` string and records its IV in `stash`.
pub(crate) fn decrypt(key: &DataKey, enc: &str, aad: &str, stash: &mut Stash) -> Result<Opened, DecryptError> {
    let fields = enc.strip_prefix("ENC[AES256_GCM,data:").and_then(|rest| rest.strip_suffix(']')).and_then(|rest| {
        let (data, rest) = rest.split_once(",iv:")?;
        let (iv, rest) = rest.split_once(",tag:")?;
        let (tag, kind) = rest.split_once(",type:")?;
        Some((data, iv, tag, kind))
    });
    let Some((data, iv, tag, kind)) = fields else {
        return Err(DecryptError::Malformed("it is not of the form ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]".into()));
    };
    let decode = |field: &str, text: &str| {
        B64.decode(text).map_err(|e| DecryptError::Malformed(format!("its {field} is not valid base64 ({e})")))
    };
    let mut plain = decode("data", data)?;
    let iv: [u8; IV_LEN] = decode("iv", iv)?
        .try_into()
        .map_err(|v: Vec<u8>| DecryptError::Malformed(format!("its iv is {} bytes, expected {IV_LEN}", v.len())))?;
    let tag: [u8; TAG_LEN] = decode("tag", tag)?
        .try_into()
        .map_err(|v: Vec<u8>| DecryptError::Malformed(format!("its tag is {} bytes, expected {TAG_LEN}", v.len())))?;
    key.cipher()
        .decrypt_in_place_detached(Nonce::<U32>::from_slice(&iv), aad.as_bytes(), &mut plain, Tag::from_slice(&tag))
        .map_err(|_| DecryptError::Integrity)?;
    let stash_kind = match kind {
        "str" | "bytes" => "str",
        "int" | "int64" => "int",
        "float" => "float",
        "bool" => "bool",
        "comment" => "comment",
        other => {
            return Err(DecryptError::Malformed(format!("its type `{other}` is unknown")));
        }
    };
    stash.record(aad, stash_kind, &plain, iv);
    Ok(Opened { kind: kind.to_owned(), plain })
}

impl Opened {
    /// The value with its type, parsed as sops (Go's strconv) parses it.
    pub(crate) fn into_value(self) -> Result<Value, String> {
        let text = String::from_utf8(self.plain).map_err(|_| "it is not valid UTF-8".to_owned())?;
        let bad = |what: &str| format!("its plaintext is not a valid {what}");
        Ok(match self.kind.as_str() {
            "str" | "bytes" => Value::Str(text),
            "int" | "int64" => Value::Int(text.parse().map_err(|_| bad("integer"))?),
            "float" => Value::Float(text.parse().map_err(|_| bad("float"))?),
            "bool" => Value::Bool(match text.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                _ => return Err(bad("boolean")),
            }),
            _ => return Err("it is an encrypted comment, not a value".into()),
        })
    }

    pub(crate) fn into_comment(self) -> Result<String, String> {
        if self.kind != "comment" {
            return Err(format!("it holds a {} value, not a comment", self.kind));
        }
        String::from_utf8(self.plain).map_err(|_| "it is not valid UTF-8".to_owned())
    }
}
