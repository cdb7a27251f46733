//! HMAC-SHA256 (RFC 2104) from `sha2`: the redactor's markers and the webhook receiver's
//! signatures (compared in constant time with `subtle`).

use sha2::{Digest, Sha256};

/// SHA-256's block size, in bytes.
const BLOCK: usize = 64;

/// An HMAC-SHA256 key with its pads already hashed, so a MAC costs two short hashes.
pub struct HmacSha256 {
    inner: Sha256,
    outer: Sha256,
}

impl HmacSha256 {
    /// A key longer than SHA-256's block is hashed first, as RFC 2104 says.
    pub fn new(key: &[u8]) -> HmacSha256 {
        let hashed;
        let key = match key.len() > BLOCK {
            true => {
                hashed = Sha256::digest(key);
                hashed.as_slice()
            }
            false => key,
        };
        let padded = |pad: u8| {
            let mut block = [pad; BLOCK];
            block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            Sha256::new_with_prefix(block)
        };
        HmacSha256 { inner: padded(0x36), outer: padded(0x5c) }
    }

    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let inner = self.inner.clone().chain_update(message).finalize();
        self.outer.clone().chain_update(inner).finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn computes_hmac_sha256() {
        let mac = HmacSha256::new(b"Jefe").mac(b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    /// RFC 4231, test case 6: a key longer than the block is hashed first.
    #[test]
    fn hashes_a_key_longer_than_the_block_first() {
        let mac = HmacSha256::new(&[0xaa; 131]).mac(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex::encode(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }
}
