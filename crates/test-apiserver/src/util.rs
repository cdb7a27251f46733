//! Timestamps, UIDs and generated names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `metav1.Time`: RFC 3339 in UTC, second precision.
pub fn now() -> String {
    in_seconds(0)
}

/// `metav1.Time` `seconds` from now.
pub fn in_seconds(seconds: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh 64-bit pseudo-random value (splitmix64 over time and a counter).
pub fn random_u64() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4 UUID string.
pub fn uid() -> String {
    let (a, b) = (random_u64(), random_u64());
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// `utilrand.String`'s alphabet (no vowels, no confusable characters).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The suffix `generateName` appends.
pub fn name_suffix() -> String {
    let mut r = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHANUMS[(r % ALPHANUMS.len() as u64) as usize] as char;
            r /= ALPHANUMS.len() as u64;
            c
        })
        .collect()
}

/// `rand.SafeEncodeString(fmt.Sprint(fnv32a(s)))`, as used for pod-template-hash.
pub fn template_hash(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string().bytes().map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc_seconds() {
        let (now, later) = (super::now(), super::in_seconds(3600));
        for t in [&now, &later] {
            assert_eq!(t.len(), "2023-11-14T22:13:20Z".len(), "{t}");
            assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
        }
        let (a, b): (jiff::Timestamp, jiff::Timestamp) = (now.parse().unwrap(), later.parse().unwrap());
        let gap = b.duration_since(a).as_secs();
        assert!((3599..=3601).contains(&gap), "{gap}");
        assert_eq!(super::uid().len(), 36);
    }
}
