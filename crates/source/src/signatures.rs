//! cosign's signatures of an OCI artifact read from its registry (images by [`crate::images`],
//! OCI charts by [`crate::charts`]) and checked by weaver-verify: the manifest at the tag
//! `sha256-HEX.sig`, each of its simple signing layers' payload (a blob), the signature in the
//! layer's annotation. A registry is not trusted to bound what it serves: a signature manifest
//! is read up to [`MAX_SIGNATURE_MANIFEST`] bytes and checked over at most [`MOST_SIGNATURES`]
//! layers, each payload read up to [`MAX_PAYLOAD`] bytes only when its descriptor says so, and
//! taken only when its content is its digest's. What breaks those bounds is the signature's
//! fault, not the registry's: a refusal of that artifact ([`CosignRefusal::Oversized`]), so
//! that one repository's oversized or garbled `.sig` passes over its tag alone; a registry
//! that cannot be asked (unreachable, refusing, failing) is an error.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use weaver_core::error::Result;
use weaver_verify::Signer;
use weaver_verify::cosign::{CosignKeys, CosignRefusal, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, signature_tag};

/// Most signature layers checked of one artifact (cosign adds one per signing).
pub const MOST_SIGNATURES: usize = 8;
/// Most bytes of a simple signing payload (cosign's are a few hundred).
pub const MAX_PAYLOAD: u64 = 64 << 10;
/// Most bytes of a signature manifest (a few hundred per signature).
pub const MAX_SIGNATURE_MANIFEST: u64 = 256 << 10;
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

/// What a registry answered for a part of a signature, read within a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Body(Vec<u8>),
    /// It has none (404).
    Missing,
    /// Its body is over the bound asked, and was not read.
    OverBound,
}

/// What a registry answers for a path of the artifact's repository (`manifests/TAG`,
/// `blobs/DIGEST`) asked with an `Accept` and read up to a number of bytes; an error for any
/// other answer than 200 or 404 (the registry's, not the signature's).
pub type Get<'a> = dyn FnMut(&str, &str, u64) -> Result<Part> + 'a;

/// Checks the cosign signatures of `digest` (`sha256:HEX`) with `keys`: the first that holds
/// names its signer; else why none does, the most telling refusal first (a trusted key that
/// signed another digest, then a signature no key holds for, then one that cannot be read).
/// Errors are the registry's (a refusal, a timeout), not the signature's.
pub fn check(get: &mut Get, digest: &str, keys: &CosignKeys) -> Result<std::result::Result<Signer, CosignRefusal>> {
    let tag = signature_tag(digest);
    let body = match get(&format!("manifests/{tag}"), SIGNATURE_MANIFEST_TYPES, MAX_SIGNATURE_MANIFEST)? {
        Part::Body(body) => body,
        Part::Missing => return Ok(Err(CosignRefusal::Unsigned)),
        Part::OverBound => {
            return Ok(Err(CosignRefusal::Oversized(format!(
                "its signature manifest is over {MAX_SIGNATURE_MANIFEST} bytes, the most read of one"
            ))));
        }
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
            Err(refusal) => refusal,
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
        CosignRefusal::Malformed(_) | CosignRefusal::Oversized(_) | CosignRefusal::Unsigned => 2,
    };
    Ok(Err(refusals.into_iter().min_by_key(rank).unwrap_or(CosignRefusal::Unsigned)))
}

/// A layer's payload, read within [`MAX_PAYLOAD`] (as its descriptor must say it is) and
/// checked against its digest.
fn payload(get: &mut Get, layer: &Layer) -> Result<std::result::Result<Vec<u8>, CosignRefusal>> {
    let malformed = |why: &str| Ok(Err(CosignRefusal::Malformed(why.to_string())));
    if layer.size == 0 || layer.size > MAX_PAYLOAD {
        return malformed(&format!("its payload's descriptor says {} bytes, not 1 to {MAX_PAYLOAD}", layer.size));
    }
    // The digest goes into a URL: only a sha256 digest is asked for.
    if !weaver_project::chart::is_sha256_digest(&layer.digest) {
        return malformed("its payload's digest is not a sha256 digest");
    }
    let body = match get(&format!("blobs/{}", layer.digest), "application/octet-stream", MAX_PAYLOAD)? {
        Part::Body(body) => body,
        Part::Missing => return malformed("its payload is not in the registry"),
        Part::OverBound => {
            return Ok(Err(CosignRefusal::Oversized(format!(
                "its payload is over {MAX_PAYLOAD} bytes, more than its descriptor says"
            ))));
        }
    };
    if format!("sha256:{:x}", Sha256::digest(&body)) != layer.digest {
        return malformed("its payload is not its digest's content");
    }
    Ok(Ok(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weaver_test_support::cosign::{TestSigner, signature_manifest};

    const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";

    fn sha256(data: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(data))
    }

    /// A registry of `blobs` and one signature manifest, answering within the bound asked,
    /// that counts what it was asked.
    struct Served {
        manifest: Vec<u8>,
        blobs: Vec<Vec<u8>>,
        asked: Vec<(String, u64)>,
    }

    impl Served {
        fn get(&mut self, path: &str, _: &str, bound: u64) -> Result<Part> {
            self.asked.push((path.to_string(), bound));
            let body = match path.strip_prefix("blobs/") {
                None => Some(self.manifest.clone()),
                Some(digest) => self.blobs.iter().find(|b| sha256(b) == digest).cloned(),
            };
            Ok(match body {
                Some(body) if body.len() as u64 > bound => Part::OverBound,
                Some(body) => Part::Body(body),
                None => Part::Missing,
            })
        }
    }

    fn check_served(served: &mut Served, keys: &CosignKeys) -> std::result::Result<Signer, CosignRefusal> {
        check(&mut |path: &str, accept: &str, bound: u64| served.get(path, accept, bound), DIGEST, keys).unwrap()
    }

    #[test]
    fn the_layer_a_trusted_key_signed_passes_among_others_and_only_the_first_few_are_read() {
        let (trusted, other) = (TestSigner::new("trusted"), TestSigner::new("other"));
        let keys = CosignKeys::parse("cosign.pub", &trusted.public_pem()).unwrap();
        let payload = trusted.payload("registry.example/shop/web", DIGEST);
        let layer = |signer: &TestSigner| (sha256(&payload), payload.len(), signer.sign(&payload));
        // Another key's signature first, then the trusted one's.
        let manifest = signature_manifest(("sha256:00", 2), &[layer(&other), layer(&trusted)]);
        let mut served = Served {
            manifest: serde_json::to_vec(&manifest).unwrap(),
            blobs: vec![payload.clone()],
            asked: Vec::new(),
        };
        assert_eq!(check_served(&mut served, &keys).unwrap().principals, ["cosign.pub"]);
        assert_eq!(
            served.asked[0],
            (signature_tag(DIGEST).replace("sha256-", "manifests/sha256-"), MAX_SIGNATURE_MANIFEST)
        );
        assert!(served.asked[1..].iter().all(|(_, bound)| *bound == MAX_PAYLOAD));

        // Twenty signatures no key holds: MOST_SIGNATURES payloads are read, no more.
        let manifest = signature_manifest(("sha256:00", 2), &vec![layer(&other); 20]);
        served.manifest = serde_json::to_vec(&manifest).unwrap();
        served.asked.clear();
        assert!(matches!(check_served(&mut served, &keys), Err(CosignRefusal::NoKeyHolds { .. })));
        assert_eq!(served.asked.len(), 1 + MOST_SIGNATURES);
    }

    #[test]
    fn payloads_the_descriptor_does_not_bound_or_vouch_for_are_not_asked_for() {
        let trusted = TestSigner::new("trusted");
        let keys = CosignKeys::parse("cosign.pub", &trusted.public_pem()).unwrap();
        let payload = trusted.payload("registry.example/shop/web", DIGEST);
        let signature = trusted.sign(&payload);
        let cases = [
            (json!(sha256(&payload)), json!(0), "not 1 to 65536"),
            (json!(sha256(&payload)), json!(MAX_PAYLOAD + 1), "not 1 to 65536"),
            (json!("sha256:../../other/blobs/x"), json!(payload.len()), "not a sha256 digest"),
            (json!(sha256(b"another blob")), json!(payload.len()), "not in the registry"),
        ];
        for (digest, size, why) in cases {
            let manifest = json!({"layers": [{"mediaType": SIMPLE_SIGNING, "digest": digest, "size": size,
                "annotations": {SIGNATURE_ANNOTATION: signature}}]});
            let mut served = Served {
                manifest: serde_json::to_vec(&manifest).unwrap(),
                blobs: vec![payload.clone()],
                asked: Vec::new(),
            };
            let refused = check_served(&mut served, &keys).unwrap_err();
            assert!(matches!(&refused, CosignRefusal::Malformed(m) if m.contains(why)), "{why}: {refused}");
            assert!(served.asked.len() <= 2, "{:?}", served.asked);
        }
        // No signature manifest: unsigned; one without simple signing layers too.
        let mut none = |_: &str, _: &str, _: u64| -> Result<Part> { Ok(Part::Missing) };
        assert_eq!(check(&mut none, DIGEST, &keys).unwrap(), Err(CosignRefusal::Unsigned));
        let mut empty = |_: &str, _: &str, _: u64| -> Result<Part> { Ok(Part::Body(b"{\"layers\": []}".to_vec())) };
        assert_eq!(check(&mut empty, DIGEST, &keys).unwrap(), Err(CosignRefusal::Unsigned));
    }

    #[test]
    fn a_signature_over_its_bounds_or_garbled_is_refused_and_a_registry_that_fails_is_an_error() {
        let trusted = TestSigner::new("trusted");
        let keys = CosignKeys::parse("cosign.pub", &trusted.public_pem()).unwrap();
        let payload = trusted.payload("registry.example/shop/web", DIGEST);
        let signed = [(sha256(&payload), payload.len(), trusted.sign(&payload))];
        let refused = |manifest: Vec<u8>, blobs: Vec<Vec<u8>>| {
            check_served(&mut Served { manifest, blobs, asked: Vec::new() }, &keys).unwrap_err()
        };
        // A manifest of 300,587 bytes, a valid one padded: over the bound, read no further.
        let mut manifest = serde_json::to_value(signature_manifest(("sha256:00", 2), &signed)).unwrap();
        manifest["annotations"] = json!({"padding": "x".repeat(300_000)});
        let oversized = serde_json::to_vec(&manifest).unwrap();
        assert!(oversized.len() as u64 > MAX_SIGNATURE_MANIFEST);
        let why = refused(oversized, vec![payload.clone()]);
        assert_eq!(
            why,
            CosignRefusal::Oversized("its signature manifest is over 262144 bytes, the most read of one".into())
        );
        // A manifest that is not JSON.
        let why = refused(b"\x00not json".to_vec(), vec![payload.clone()]);
        assert!(matches!(&why, CosignRefusal::Malformed(m) if m.contains("not an OCI manifest")), "{why}");
        // A payload larger than its descriptor says, over MAX_PAYLOAD.
        let huge = vec![b'{'; MAX_PAYLOAD as usize + 1];
        let lying =
            serde_json::to_vec(&signature_manifest(("sha256:00", 2), &[(sha256(&huge), 10, trusted.sign(&huge))]));
        let why = refused(lying.unwrap(), vec![huge]);
        assert_eq!(
            why,
            CosignRefusal::Oversized("its payload is over 65536 bytes, more than its descriptor says".into())
        );
        // The same manifest whole passes: the bounds, not the signature, refused them.
        let whole = serde_json::to_vec(&signature_manifest(("sha256:00", 2), &signed)).unwrap();
        let mut served = Served { manifest: whole, blobs: vec![payload], asked: Vec::new() };
        assert!(check_served(&mut served, &keys).is_ok());
        // A registry that cannot be asked is an error, not a refusal of the signature.
        let mut unreachable =
            |_: &str, _: &str, _: u64| -> Result<Part> { Err(weaver_core::Error::new("connection refused")) };
        assert_eq!(check(&mut unreachable, DIGEST, &keys).unwrap_err().message, "connection refused");
    }
}
