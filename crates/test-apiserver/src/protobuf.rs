//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients send for built-in kinds (helm's release records are Secrets
//! written so). The `k8s\0` envelope holds a `runtime.Unknown` (TypeMeta, then the object's
//! bytes); decoded here for the kinds a client has been seen to send, into the JSON the rest
//! of the server works on. Responses stay JSON, which every client reads.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\x00";

/// One protobuf field: its number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn fields(bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(bytes, &mut at)?),
            1 => {
                at += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).map_err(|_| "length overflow")?;
                let end = at.checked_add(len).filter(|end| *end <= bytes.len()).ok_or("truncated field")?;
                let value = &bytes[at..end];
                at = end;
                Field::Bytes(value)
            }
            5 => {
                at += 4;
                Field::Fixed
            }
            wire => return Err(format!("unsupported wire type {wire}")),
        };
        out.push((key >> 3, field));
    }
    if at > bytes.len() {
        return Err("truncated field".into());
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

/// A `map<string, V>` entry: key 1, value 2.
fn entry(bytes: &[u8]) -> Result<(String, &[u8]), String> {
    let (mut key, mut value) = (String::new(), &[][..]);
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for (number, field) in fields(bytes)? {
        let Field::Bytes(b) = field else {
            if let (7, Field::Varint(generation)) = (number, field) {
                meta.insert("generation".into(), json!(generation));
            }
            continue;
        };
        match number {
            1 => drop(meta.insert("name".into(), text(b)?.into())),
            2 => drop(meta.insert("generateName".into(), text(b)?.into())),
            3 => drop(meta.insert("namespace".into(), text(b)?.into())),
            5 => drop(meta.insert("uid".into(), text(b)?.into())),
            6 => drop(meta.insert("resourceVersion".into(), text(b)?.into())),
            11 => {
                let (key, value) = entry(b)?;
                labels.insert(key, text(value)?.into());
            }
            12 => {
                let (key, value) = entry(b)?;
                annotations.insert(key, text(value)?.into());
            }
            14 => finalizers.push(Value::String(text(b)?)),
            // creationTimestamp and the rest are the server's, or unused by the clients seen.
            _ => {}
        }
    }
    for (name, map) in [("labels", labels), ("annotations", annotations)] {
        if !map.is_empty() {
            meta.insert(name.into(), Value::Object(map));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// `v1.Secret`: metadata 1, data 2 (bytes, base64 in JSON), type 3, stringData 4, immutable 5.
fn secret(bytes: &[u8]) -> Result<Value, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut object = Map::new();
    let mut data = Map::new();
    let mut string_data = Map::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => drop(object.insert("metadata".into(), object_meta(b)?)),
            (2, Field::Bytes(b)) => {
                let (key, value) = entry(b)?;
                data.insert(key, b64.encode(value).into());
            }
            (3, Field::Bytes(b)) => drop(object.insert("type".into(), text(b)?.into())),
            (4, Field::Bytes(b)) => {
                let (key, value) = entry(b)?;
                string_data.insert(key, text(value)?.into());
            }
            (5, Field::Varint(v)) => drop(object.insert("immutable".into(), Value::Bool(v != 0))),
            _ => {}
        }
    }
    if !data.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !string_data.is_empty() {
        object.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(Value::Object(object))
}

/// The object a protobuf request body holds, as JSON with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let unknown = body.strip_prefix(MAGIC).ok_or("no k8s protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, field) in fields(unknown)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw)?,
        _ => return Err(format!("protobuf bodies of {api_version} {kind} are not supported by this fake")),
    };
    object["apiVersion"] = api_version.into();
    object["kind"] = kind.into();
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(number << 3 | 2).unwrap(), u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_secret_as_client_go_encodes_it() {
        let label = [field(1, b"owner"), field(2, b"helm")].concat();
        let meta = [field(1, b"sh.helm.release.v1.web.v1"), field(3, b"shop"), field(11, &label)].concat();
        let data = [field(1, b"release"), field(2, b"H4sI")].concat();
        let secret = [field(1, &meta), field(2, &data), field(3, b"helm.sh/release.v1")].concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"metadata": {"name": "sh.helm.release.v1.web.v1", "namespace": "shop", "labels": {"owner": "helm"}},
                "data": {"release": "SDRzSQ=="}, "type": "helm.sh/release.v1", "apiVersion": "v1", "kind": "Secret"})
        );
    }
}
