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
    /// A point with a small-order component (not in the prime-order subgroup): the verdict on
    /// its signatures would depend on how `[k]A` is computed, so it is refused outright.
    MixedOrder,
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
        if !point.is_torsion_free() {
            return Err(KeyError::MixedOrder);
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
        let expected_r = self.recompute_r(&s, &k);
        // Comparing with the canonical encoding of [S]B - [k]A refuses a non-canonical R without
        // decompressing it; an R that matches is that point, so its order is checked on it.
        expected_r.compress().as_bytes() == &r_bytes && !expected_r.is_small_order()
    }

    /// `[S]B + [k](-A)`, the one equation of both paths: the point is negated, never the scalar
    /// (for a point outside the prime-order subgroup `[L - k]A` is not `-[k]A`, and the two paths
    /// once disagreed on exactly that).
    fn recompute_r(&self, s: &Scalar, k: &Scalar) -> EdwardsPoint {
        match &self.table {
            Some(table) => ED25519_BASEPOINT_TABLE.mul_base(s) + -(table.mul_base(k)),
            None => EdwardsPoint::vartime_double_scalar_mul_basepoint(k, &(-self.point), s),
        }
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests;
