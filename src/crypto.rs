//! The one seam to Ed25519 verification (RFC 8032), strict: `S` must be canonical (`S < L`),
//! point encodings canonical, small-order keys refused at load and small-order `R` refused, and
//! the cofactorless equation `[S]B = R + [k]A` checked by comparing encodings. Everything else in
//! proofgate calls only this module (DESIGN.md section 9).
//!
//! Keys known in advance (trust material) can carry a fixed-base precomputed table of their
//! multiples, built once at configuration load (about 30 KB each): verification is then two
//! fixed-base multiplications, which in V8 cost well under one variable-base double
//! multiplication. Keys seen only at request time take the variable-base path.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};
use std::sync::Arc;

/// A validated Ed25519 public key.
#[derive(Clone)]
pub struct VerifyingKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
    table: Option<Arc<EdwardsBasepointTable>>,
}

impl core::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("bytes", &crate::b64::encode(&self.bytes))
            .field("precomputed", &self.table.is_some())
            .finish()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for VerifyingKey {}

/// Why key bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not a canonical encoding of a curve point.
    NotAPoint,
    /// A point of small order: it would accept forged signatures.
    WeakKey,
}

impl VerifyingKey {
    /// Validates 32 key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(KeyError::NotAPoint)?;
        // decompress() reduces y mod p; only the canonical spelling is the key.
        if point.compress().as_bytes() != bytes {
            return Err(KeyError::NotAPoint);
        }
        if point.is_small_order() {
            return Err(KeyError::WeakKey);
        }
        Ok(VerifyingKey {
            bytes: *bytes,
            point,
            table: None,
        })
    }

    /// The same key with a precomputed table of its multiples (about 30 KB).
    pub fn with_table(mut self) -> Self {
        self.table = Some(Arc::new(EdwardsBasepointTable::create(&self.point)));
        self
    }

    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    /// True only if `signature` is a valid strict Ed25519 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        s_bytes.copy_from_slice(&signature[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let hash: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(self.bytes)
            .chain_update(message)
            .finalize()
            .into();
        let k = Scalar::from_bytes_mod_order_wide(&hash);
        let expected_r = match &self.table {
            Some(table) => ED25519_BASEPOINT_TABLE.mul_base(&s) - table.mul_base(&k),
            None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-k), &self.point, &s),
        };
        // Comparing with the canonical encoding of [S]B - [k]A refuses a non-canonical R without
        // decompressing it; an R that matches is that point, so its order is checked on it.
        expected_r.compress().as_bytes() == &r_bytes && !expected_r.is_small_order()
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    // RFC 8032 section 7.1, TEST 1, 2 and 3.
    const RFC8032: [(&str, &str, &str); 3] = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];

    fn msg(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc8032_vectors_verify_and_bit_flips_fail() {
        for (pk, m, sig) in RFC8032 {
            let plain = VerifyingKey::from_bytes(&hex::<32>(pk)).unwrap();
            let tabled = plain.clone().with_table();
            for key in [plain, tabled] {
                let sig = hex::<64>(sig);
                assert!(key.verify(&msg(m), &sig));
                let mut bad = sig;
                bad[10] ^= 1;
                assert!(!key.verify(&msg(m), &bad));
                bad = sig;
                bad[40] ^= 1;
                assert!(!key.verify(&msg(m), &bad));
                assert!(!key.verify(b"other message", &sig));
            }
        }
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        let (pk, m, sig) = RFC8032[0];
        let key = VerifyingKey::from_bytes(&hex::<32>(pk)).unwrap();
        let mut sig = hex::<64>(sig);
        // S + L: the same scalar mod L, but not the canonical encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!key.verify(&msg(m), &sig));
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        // The identity point (order 1) and a point of order 8.
        let identity =
            hex::<32>("0100000000000000000000000000000000000000000000000000000000000000");
        assert_eq!(VerifyingKey::from_bytes(&identity), Err(KeyError::WeakKey));
        let order8 = hex::<32>("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
        assert_eq!(VerifyingKey::from_bytes(&order8), Err(KeyError::WeakKey));
        // y = p (non-canonical encoding of y = 0).
        let non_canonical =
            hex::<32>("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert!(VerifyingKey::from_bytes(&non_canonical).is_err());
    }

    #[test]
    fn identity_r_with_zero_s_is_not_a_universal_forgery() {
        let (pk, _, _) = RFC8032[0];
        let key = VerifyingKey::from_bytes(&hex::<32>(pk)).unwrap();
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(!key.verify(b"anything", &sig));
    }
}
