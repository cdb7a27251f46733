//! The conversion webhook's certificates, made by the controller itself (no cert-manager): a
//! certificate authority, which the CRDs' `caBundle` trusts, and a serving certificate it signs,
//! ECDSA P-256 both. They live in a Secret of the controller's namespace, so that every replica
//! serves the same; [`renewed`] says when they are due:
//! - the serving certificate lives a year and is renewed with a third of it left;
//! - the authority lives ten years and is renewed with a year left; the bundle then holds the
//!   new authority and the old one until the old one expires, so that a replica still serving
//!   the old certificate is trusted meanwhile.

use std::time::{Duration, SystemTime};

use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Ia5String, OctetString};
use x509_cert::der::{DecodePem, EncodePem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

const DAY: Duration = Duration::from_secs(86_400);
pub const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
pub const AUTHORITY_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The Secret's keys, as a `kubernetes.io/tls` Secret holds them, and the authority's.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// The certificates, PEM: `ca_bundle` is every authority still trusted, the current one first.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificates {
    pub ca_bundle: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Certificates {
    // Private keys never reach a log, even at debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("ca_bundle", &self.ca_bundle)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// `existing` when nothing is due at `now` for `hosts`, else what replaces it (see the module's
/// documentation); new certificates when `existing` is absent or cannot be read.
pub fn renewed(
    existing: Option<&Certificates>,
    hosts: &[String],
    now: SystemTime,
) -> Result<Option<Certificates>, String> {
    let current = existing.and_then(|e| Parsed::of(e).ok());
    let Some(current) = current else {
        let (ca, ca_key) = authority(now)?;
        let (cert, key) = serving(&ca, &ca_key, hosts, now)?;
        return Ok(Some(Certificates {
            ca_bundle: pem(&ca)?,
            ca_key: key_pem(&ca_key)?,
            cert: pem(&cert)?,
            key: key_pem(&key)?,
        }));
    };
    let existing = existing.expect("parsed from it");
    let authority_due = left(&current.ca, now) < 365 * DAY;
    let serving_due = left(&current.cert, now) < SERVING_LIFETIME / 3 || current.hosts != hosts;
    if !authority_due && !serving_due && current.bundle_current(now) {
        return Ok(None);
    }
    let (ca, ca_key, mut bundle) = if authority_due {
        let (ca, key) = authority(now)?;
        (ca, key, vec![pem(&current.ca)?])
    } else {
        (current.ca.clone(), current.ca_key.clone(), Vec::new())
    };
    // Authorities still valid stay trusted; the current one goes first.
    for old in &current.bundle {
        if left(old, now) > Duration::ZERO && old != &ca && !bundle.contains(&pem(old)?) {
            bundle.push(pem(old)?);
        }
    }
    bundle.retain(|b| *b != pem(&ca).unwrap_or_default());
    bundle.insert(0, pem(&ca)?);
    let (cert, key) = if authority_due || serving_due {
        let (cert, key) = serving(&ca, &ca_key, hosts, now)?;
        (pem(&cert)?, key_pem(&key)?)
    } else {
        (existing.cert.clone(), existing.key.clone())
    };
    Ok(Some(Certificates { ca_bundle: bundle.concat(), ca_key: key_pem(&ca_key)?, cert, key }))
}

/// The serving certificate and key as DER, for rustls.
pub fn serving_der(certs: &Certificates) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert = Certificate::from_pem(certs.cert.as_bytes()).map_err(|e| format!("tls.crt: {e}"))?;
    let key = SigningKey::from_pkcs8_pem(&certs.key).map_err(|e| format!("tls.key: {e}"))?;
    let cert = x509_cert::der::Encode::to_der(&cert).map_err(|e| e.to_string())?;
    let key = key.to_pkcs8_der().map_err(|e| e.to_string())?.as_bytes().to_vec();
    Ok((cert, key))
}

/// When the serving certificate or an authority of the bundle next needs a look.
pub fn next_look(certs: &Certificates, now: SystemTime) -> Duration {
    let Ok(parsed) = Parsed::of(certs) else { return Duration::ZERO };
    let serving = left(&parsed.cert, now).saturating_sub(SERVING_LIFETIME / 3);
    let authority = left(&parsed.ca, now).saturating_sub(365 * DAY);
    let expiring = parsed.bundle.iter().map(|c| left(c, now)).filter(|l| *l > Duration::ZERO).min();
    [Some(serving), Some(authority), expiring].into_iter().flatten().min().unwrap_or(Duration::ZERO)
}

struct Parsed {
    ca: Certificate,
    ca_key: SigningKey,
    bundle: Vec<Certificate>,
    cert: Certificate,
    hosts: Vec<String>,
}

impl Parsed {
    fn of(certs: &Certificates) -> Result<Parsed, String> {
        let bundle = Certificate::load_pem_chain(certs.ca_bundle.as_bytes()).map_err(|e| format!("ca.crt: {e}"))?;
        let ca = bundle.first().cloned().ok_or("ca.crt holds no certificate")?;
        let ca_key = SigningKey::from_pkcs8_pem(&certs.ca_key).map_err(|e| format!("ca.key: {e}"))?;
        let public = SubjectPublicKeyInfoOwned::from_key(*ca_key.verifying_key()).map_err(|e| e.to_string())?;
        if public != ca.tbs_certificate.subject_public_key_info {
            return Err("ca.key is not the key of ca.crt".into());
        }
        let cert = Certificate::from_pem(certs.cert.as_bytes()).map_err(|e| format!("tls.crt: {e}"))?;
        SigningKey::from_pkcs8_pem(&certs.key).map_err(|e| format!("tls.key: {e}"))?;
        if cert.tbs_certificate.issuer != ca.tbs_certificate.subject {
            return Err("tls.crt is not signed by the current authority".into());
        }
        let hosts = hosts_of(&cert);
        Ok(Parsed { ca, ca_key, bundle, cert, hosts })
    }

    /// The bundle holds no authority that expired.
    fn bundle_current(&self, now: SystemTime) -> bool {
        self.bundle.iter().all(|c| left(c, now) > Duration::ZERO)
    }
}

fn left(cert: &Certificate, now: SystemTime) -> Duration {
    cert.tbs_certificate.validity.not_after.to_system_time().duration_since(now).unwrap_or(Duration::ZERO)
}

fn hosts_of(cert: &Certificate) -> Vec<String> {
    let Ok(Some((_, SubjectAltName(names)))) = cert.tbs_certificate.get::<SubjectAltName>() else { return Vec::new() };
    names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            GeneralName::IpAddress(ip) => match ip.as_bytes() {
                [a, b, c, d] => Some(std::net::Ipv4Addr::new(*a, *b, *c, *d).to_string()),
                bytes => <[u8; 16]>::try_from(bytes).ok().map(|b| std::net::Ipv6Addr::from(b).to_string()),
            },
            _ => None,
        })
        .collect()
}

fn new_key() -> Result<SigningKey, String> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a key: {e}"))?;
        // Out of the curve's range once in 2^32 tries: draw again.
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
}

fn serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a serial number: {e}"))?;
    bytes[0] &= 0x7f;
    SerialNumber::new(&bytes).map_err(|e| e.to_string())
}

fn validity(now: SystemTime, lifetime: Duration) -> Result<Validity, String> {
    // An hour back: the API server's clock may be behind the controller's.
    let from = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    let to = now.checked_add(lifetime).ok_or("a certificate's end is out of range")?;
    let time = |t| x509_cert::time::Time::try_from(t).map_err(|e| format!("{e}"));
    Ok(Validity { not_before: time(from)?, not_after: time(to)? })
}

fn name(cn: &str) -> Result<Name, String> {
    cn.parse().map_err(|e| format!("{e}"))
}

fn authority(now: SystemTime) -> Result<(Certificate, SigningKey), String> {
    let key = new_key()?;
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| e.to_string())?;
    // A new name for each authority: a replica serving the old certificate names its own.
    let subject = name(&format!("CN=weaver conversion webhook authority {}", serial()?.to_string().replace(':', "")))?;
    let builder =
        CertificateBuilder::new(Profile::Root, serial()?, validity(now, AUTHORITY_LIFETIME)?, subject, spki, &key)
            .map_err(|e| e.to_string())?;
    let cert = builder.build::<DerSignature>().map_err(|e| e.to_string())?;
    Ok((cert, key))
}

fn serving(
    ca: &Certificate,
    ca_key: &SigningKey,
    hosts: &[String],
    now: SystemTime,
) -> Result<(Certificate, SigningKey), String> {
    let key = new_key()?;
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| e.to_string())?;
    let profile = Profile::Leaf {
        issuer: ca.tbs_certificate.subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
        include_subject_key_identifier: true,
    };
    let subject = name(&format!("CN={}", hosts.first().map_or("weaver", String::as_str)))?;
    let mut builder =
        CertificateBuilder::new(profile, serial()?, validity(now, SERVING_LIFETIME)?, subject, spki, ca_key)
            .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for host in hosts {
        names.push(match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                GeneralName::IpAddress(OctetString::new(ip.octets().to_vec()).map_err(|e| e.to_string())?)
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                GeneralName::IpAddress(OctetString::new(ip.octets().to_vec()).map_err(|e| e.to_string())?)
            }
            Err(_) => GeneralName::DnsName(Ia5String::new(host).map_err(|e| format!("{host}: {e}"))?),
        });
    }
    builder.add_extension(&SubjectAltName(names)).map_err(|e| e.to_string())?;
    builder
        .add_extension(&ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH]))
        .map_err(|e| e.to_string())?;
    let cert = builder.build::<DerSignature>().map_err(|e| e.to_string())?;
    Ok((cert, key))
}

fn pem(cert: &Certificate) -> Result<String, String> {
    cert.to_pem(LineEnding::LF).map_err(|e| e.to_string())
}

fn key_pem(key: &SigningKey) -> Result<String, String> {
    Ok(key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["weaver-conversion.weaver-system.svc".to_string(), "127.0.0.1".to_string()]
    }

    #[test]
    fn new_certificates_are_signed_by_their_authority_for_the_hosts() {
        let now = SystemTime::now();
        let certs = renewed(None, &hosts(), now).unwrap().expect("made");
        let parsed = Parsed::of(&certs).unwrap();
        assert_eq!(parsed.hosts, hosts());
        assert_eq!(parsed.bundle.len(), 1);
        assert!(left(&parsed.cert, now) > SERVING_LIFETIME - DAY);
        assert!(renewed(Some(&certs), &hosts(), now).unwrap().is_none(), "nothing due");
        assert!(!format!("{certs:?}").contains("PRIVATE KEY"), "keys never in Debug");
    }

    #[test]
    fn the_serving_certificate_is_renewed_with_a_third_left_under_the_same_authority() {
        let start = SystemTime::now();
        let certs = renewed(None, &hosts(), start).unwrap().unwrap();
        let later = start + SERVING_LIFETIME * 2 / 3 + DAY;
        let next = renewed(Some(&certs), &hosts(), later).unwrap().expect("due");
        assert_eq!(next.ca_bundle, certs.ca_bundle, "the CRDs' caBundle does not change");
        assert_ne!(next.cert, certs.cert);
        assert!(Parsed::of(&next).is_ok());
        assert!(next_look(&certs, start) <= SERVING_LIFETIME * 2 / 3);
    }

    #[test]
    fn other_hosts_get_a_new_certificate() {
        let now = SystemTime::now();
        let certs = renewed(None, &hosts(), now).unwrap().unwrap();
        let moved = vec!["weaver-conversion.other.svc".to_string()];
        let next = renewed(Some(&certs), &moved, now).unwrap().expect("due");
        assert_eq!(Parsed::of(&next).unwrap().hosts, moved);
    }

    #[test]
    fn a_new_authority_is_trusted_beside_the_old_until_the_old_expires() {
        let start = SystemTime::now();
        let certs = renewed(None, &hosts(), start).unwrap().unwrap();
        let late = start + AUTHORITY_LIFETIME - 300 * DAY;
        let next = renewed(Some(&certs), &hosts(), late).unwrap().expect("due");
        let parsed = Parsed::of(&next).unwrap();
        assert_eq!(parsed.bundle.len(), 2, "new and old");
        assert_eq!(pem(&parsed.bundle[1]).unwrap(), certs.ca_bundle);
        assert_ne!(parsed.ca.tbs_certificate.subject, Parsed::of(&certs).unwrap().ca.tbs_certificate.subject);
        let after = start + AUTHORITY_LIFETIME + DAY;
        let last = renewed(Some(&next), &hosts(), after).unwrap().expect("the old one is dropped");
        assert_eq!(Parsed::of(&last).unwrap().bundle.len(), 1);
    }

    #[test]
    fn what_cannot_be_read_is_replaced() {
        let now = SystemTime::now();
        let mut certs = renewed(None, &hosts(), now).unwrap().unwrap();
        certs.ca_key = renewed(None, &hosts(), now).unwrap().unwrap().ca_key;
        assert!(Parsed::of(&certs).err().unwrap().contains("ca.key is not the key of ca.crt"));
        assert!(renewed(Some(&certs), &hosts(), now).unwrap().is_some());
    }
}
