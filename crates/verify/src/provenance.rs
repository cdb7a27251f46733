//! Helm's provenance files (`helm package --sign`): beside an archive as `<archive>.prov`, the
//! chart's `Chart.yaml`, a `...` line, and the `files:` it vouches for with their sha256,
//! clear-signed with OpenPGP. Checked as `helm --verify` checks one: the signature by a key of
//! the keyring, and the archive's digest the one signed for its file name.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Keyring, Signer};

/// The part of a provenance file after its `...` line.
#[derive(Deserialize)]
struct Sums {
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// Checks the provenance file `prov` of the archive `archive_name` (its file name, as the
/// repository's URL ends) whose sha256 is `archive_digest` (`sha256:…`) against `keyring`.
/// The error says why, naming the key or the digests, never more of the file than that.
pub fn check_provenance(
    keyring: &Keyring,
    prov: &str,
    archive_name: &str,
    archive_digest: &str,
) -> Result<Signer, String> {
    let (signer, signed) =
        keyring.verify_cleartext(prov).map_err(|refusal| format!("its provenance file: {refusal}"))?;
    let Some((_, sums)) = signed.split_once("\n...\n") else {
        return Err("its provenance file has no `...` line before the files it vouches for".into());
    };
    let sums: Sums = serde_saphyr::from_str(sums)
        .map_err(|_| "its provenance file's `files:` cannot be read: expected `NAME: sha256:HEX` lines".to_string())?;
    match sums.files.get(archive_name) {
        Some(signed) if signed == archive_digest => Ok(signer),
        Some(signed) => Err(format!(
            "its provenance file, signed by {signer}, vouches for {archive_name} with {signed}, but the archive has \
             {archive_digest}: it changed after it was signed"
        )),
        None => Err(format!(
            "its provenance file, signed by {signer}, vouches for no file {archive_name} (it names {})",
            sums.files.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `helm package --sign` (helm 3.17.1) of a chart `web` 1.0.0 with a GnuPG RSA key made for
    // this test, and that key's public half as `gpg --export` writes it.
    const PROV: &str = include_str!("../testdata/web-1.0.0.tgz.prov");
    const KEYRING: &[u8] = include_bytes!("../testdata/chart_signer.pubring.gpg");
    const DIGEST: &str = "sha256:ec7ce46cd0d28443894508433084033a47c9024dca979277a7f09437c8f95399";
    const OTHER_KEY: &str = include_str!("../testdata/signer_openpgp.pub.asc");

    #[test]
    fn a_chart_helm_signed_passes_with_the_signers_keyring_and_nothing_else_does() {
        let keyring = Keyring::from_bytes(KEYRING).expect("a binary keyring");
        let signer = check_provenance(&keyring, PROV, "web-1.0.0.tgz", DIGEST).expect("verified");
        assert_eq!(signer.principals, ["Chart Signer <charts@example.com>"]);
        assert_eq!(signer.key.fingerprint, "3289CEE7B940C8EBAE9108E0DE7D402FDCEDC94D");

        let other = DIGEST.replace("ec7c", "0000");
        let err = check_provenance(&keyring, PROV, "web-1.0.0.tgz", &other).unwrap_err();
        assert!(
            err.contains(&format!("vouches for web-1.0.0.tgz with {DIGEST}, but the archive has {other}")),
            "{err}"
        );
        let err = check_provenance(&keyring, PROV, "web-1.0.1.tgz", DIGEST).unwrap_err();
        assert!(err.contains("vouches for no file web-1.0.1.tgz (it names web-1.0.0.tgz)"), "{err}");
        let untrusted = Keyring::parse(OTHER_KEY).unwrap();
        let err = check_provenance(&untrusted, PROV, "web-1.0.0.tgz", DIGEST).unwrap_err();
        assert!(err.contains("a key the trust list does not hold"), "{err}");
        // The signed digest changed: the signature no longer holds.
        let tampered = PROV.replace("sha256:ec7c", "sha256:0000");
        let err = check_provenance(&keyring, &tampered, "web-1.0.0.tgz", &other).unwrap_err();
        assert!(err.contains("does not match its content"), "{err}");
        let err = check_provenance(&keyring, "not a provenance file", "web-1.0.0.tgz", DIGEST).unwrap_err();
        assert!(err.starts_with("its provenance file: its signature cannot be read"), "{err}");
    }
}
