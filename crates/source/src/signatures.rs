//! cosign's signatures of an OCI artifact read from its registry (images by [`crate::images`],
//! OCI charts by [`crate::charts`]) and checked by weaver-verify: the manifest at the tag
//! `sha256-HEX.sig`, each of its simple signing layers' payload (a blob), the signature in the
//! layer's annotation. A registry is not trusted to bound what it serves: a signature manifest
//! is checked over at most [`MOST_SIGNATURES`] layers, each payload read only when its
//! descriptor says it is at most [`MAX_PAYLOAD`] bytes, and taken only when its content is its
//! digest's.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use weaver_core::error::Result;
use weaver_verify::Signer;
use weaver_verify::cosign::{CosignKeys, CosignRefusal, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, signature_tag};

/// Most signature layers checked of one artifact (cosign adds one per signing).
pub const MOST_SIGNATURES: usize = 16;
/// Most bytes of a simple signing payload (cosign's are a few hundred).
pub const MAX_PAYLOAD: u64 = 64 << 10;
/// What a signature manifest is asked as.
pub const SIGNATURE_MANIFEST_TYPES: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// What a registry answers for a path of the artifact's repository (`manifests/TAG`,
/// `blobs/DIGEST`) asked with an `Accept`: its body, None when it has none (404), an error
/// for any other answer.
pub type Get<'a> = dyn FnMut(&str, &str) -> Result<Option<Vec<u8>>> + 'a;

/// Checks the cosign signatures of `digest` (`sha256:HEX`) with `keys`: the first that holds
/// names its signer; else why none does, the most telling refusal first (a trusted key that
/// signed another digest, then a signature no key holds for, then one that cannot be read).
/// Errors are the registry's (a refusal, a timeout), not the signature's.
pub fn check(get: &mut Get, digest: &str, keys: &CosignKeys) -> Result<std::result::Result<Signer, CosignRefusal>> {
    let Some(body) = get(&format!("manifests/{}", signature_tag(digest)), SIGNATURE_MANIFEST_TYPES)? else {
        return Ok(Err(CosignRefusal::Unsigned));
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&body) else {
        return Ok(Err(CosignRefusal::Malformed("its signature manifest is not an OCI manifest".into())));
    };
    let layers: Vec<&Layer> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING && l.annotations.contains_key(SIGNATURE_ANNOTATION))
        .take(MOST_SIGNATURES)
        .collect();
    let mut refusals = Vec::new();
    for layer in layers {
        let refusal = match payload(get, layer)? {
            Err(why) => CosignRefusal::Malformed(why),
            Ok(payload) => match keys.verify(&payload, &layer.annotations[SIGNATURE_ANNOTATION], digest) {
                Ok(signer) => return Ok(Ok(signer)),
                Err(refusal) => refusal,
            },
        };
        refusals.push(refusal);
    }
    let rank = |r: &CosignRefusal| match r {
        CosignRefusal::OtherDigest { .. } => 0,
        CosignRefusal::NoKeyHolds { .. } => 1,
        CosignRefusal::Malformed(_) => 2,
        CosignRefusal::Unsigned => 3,
    };
    Ok(Err(refusals.into_iter().min_by_key(rank).unwrap_or(CosignRefusal::Unsigned)))
}

/// A layer's payload, read within [`MAX_PAYLOAD`] and checked against its digest.
fn payload(get: &mut Get, layer: &Layer) -> Result<std::result::Result<Vec<u8>, String>> {
    if layer.size > MAX_PAYLOAD {
        return Ok(Err(format!("its payload is {} bytes, over the {MAX_PAYLOAD} read", layer.size)));
    }
    let Some(hex) = layer.digest.strip_prefix("sha256:").filter(|h| h.len() == 64) else {
        return Ok(Err("its payload's digest is not a sha256 digest".into()));
    };
    let Some(body) = get(&format!("blobs/{}", layer.digest), "application/octet-stream")? else {
        return Ok(Err("its payload is not in the registry".into()));
    };
    if body.len() as u64 > MAX_PAYLOAD || format!("{:x}", Sha256::digest(&body)) != hex {
        return Ok(Err("its payload is not its digest's content".into()));
    }
    Ok(Ok(body))
}
