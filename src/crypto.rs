//! The one seam to Ed25519 verification (RFC 8032), strict: `S` must be canonical (`S < L`),
//! point encodings canonical, small-order keys refused at load and small-order `R` refused, and
//! the cofactorless equation `[S]B = R + [k]A` checked by comparing encodings. Everything else in
//! proofgate calls only this module (DESIGN.md section 9).
//!
//! Keys known in advance (trust material, and any other key a caller registers with
//! [`VerifyingKey::with_table`] or a [`TableBudget`]) can carry a variable-time fixed-base table
//! of their multiples, built once (`table.rs`, over the points of `point.rs` and the field of
//! `field.rs`): verification is then two table sums, `[S]B` from the base point's table and
//! `[k](-A)` from the key's: 52 point additions with radix-2^10 tables, 58 with a key's
//! radix-2^8 one. Keys seen only at request time take the variable-base path, `[S]B + [k](-A)` as
//! one double multiplication (curve25519-dalek's). Both paths compute the same equation, point
//! for point.

mod field;
mod point;
mod table;

pub use table::TableWidth;

use curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use point::{Affine, Extended};
use sha2::{Digest, Sha512};
use std::sync::{Arc, OnceLock};
use table::FixedBaseTable;

/// The base point's table at the widest width (radix 2^10, 1,560 KiB), built on first use:
/// [`prepare`] at load. `None` only if the base point failed to decode, which the tests rule out;
/// every key then takes the variable-base path.
static BASEPOINT_TABLE: OnceLock<Option<FixedBaseTable>> = OnceLock::new();

fn basepoint_table() -> Option<&'static FixedBaseTable> {
    BASEPOINT_TABLE
        .get_or_init(|| {
            Affine::decode(ED25519_BASEPOINT_COMPRESSED.as_bytes())
                .map(|b| FixedBaseTable::new(&b, BASEPOINT_TABLE_WIDTH))
        })
        .as_ref()
}

/// The canonical encodings of the eight points of small order (the test
/// `small_order_encodings_are_the_eight_torsion_points` derives them from curve25519-dalek's
/// `EIGHT_TORSION`): constants, so no request pays for computing them. Three of the eight are
/// `y` = 1, -1 and 0 (x = 0 for the first two, whose encodings have no sign bit); the other
/// `y` values belong to two order-8 points each, `x` and `-x`, whose encodings differ only in
/// the sign bit.
const SMALL_ORDER: [[u8; 32]; 8] = [
    // identity (0, 1)
    y_bytes(0x01, 0x00, 0x00),
    // order 2: (0, -1)
    y_bytes(0xec, 0xff, 0x7f),
    // order 4: (sqrt(-1), 0) and (-sqrt(-1), 0)
    y_bytes(0x00, 0x00, 0x00),
    with_sign(y_bytes(0x00, 0x00, 0x00)),
    // order 8
    ORDER_8_Y[0],
    with_sign(ORDER_8_Y[0]),
    ORDER_8_Y[1],
    with_sign(ORDER_8_Y[1]),
];

/// The two `y` of the order-8 points, sign bit clear.
const ORDER_8_Y: [[u8; 32]; 2] = [
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// 32 little-endian bytes: `first`, thirty times `middle`, `last`.
const fn y_bytes(first: u8, middle: u8, last: u8) -> [u8; 32] {
    let mut e = [middle; 32];
    e[0] = first;
    e[31] = last;
    e
}

/// The same encoding with the sign bit of `x` set.
const fn with_sign(mut e: [u8; 32]) -> [u8; 32] {
    e[31] |= 0x80;
    e
}

fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    SMALL_ORDER.contains(bytes)
}

/// Builds the shared base-point table now (configuration load) rather than on the first request.
pub fn prepare() {
    basepoint_table();
}

/// Whether this process has built the base point's table yet (`tests/base_table_at_load.rs`).
pub fn basepoint_table_built() -> bool {
    BASEPOINT_TABLE.get().is_some()
}

/// The base point's table width: the widest, since every table-path verification uses it.
const BASEPOINT_TABLE_WIDTH: TableWidth = TableWidth::ALL[0];

/// Memory the base-point table takes once per VM.
pub const BASEPOINT_TABLE_BYTES: usize = BASEPOINT_TABLE_WIDTH.bytes();

/// The tables a memory budget gives a number of keys, in order. Coverage first: each key gets a
/// radix-256 table while one fits, then radix-16 ones, then none (the variable-base path, correct
/// but slower). Then width: in order, a key's radix-256 table grows to radix-1024 while what is
/// left allows. So no key gets a narrower table than coverage alone would give it, and a few keys
/// get the widest. [`give_tables`] applies it.
#[derive(Debug, Clone)]
pub struct TableBudget {
    plan: Vec<Option<TableWidth>>,
    remaining: usize,
}

impl TableBudget {
    pub fn new(bytes: usize, keys: usize) -> TableBudget {
        let mut remaining = bytes;
        let mut plan: Vec<Option<TableWidth>> = (0..keys)
            .map(|_| {
                let width = [TableWidth::Radix256, TableWidth::Radix16]
                    .into_iter()
                    .find(|w| w.bytes() <= remaining);
                remaining -= width.map_or(0, TableWidth::bytes);
                width
            })
            .collect();
        let growth = TableWidth::Radix1024.bytes() - TableWidth::Radix256.bytes();
        for width in &mut plan {
            if *width == Some(TableWidth::Radix256) && growth <= remaining {
                remaining -= growth;
                *width = Some(TableWidth::Radix1024);
            }
        }
        TableBudget { plan, remaining }
    }

    /// Each key's table, in order.
    pub fn planned(&self) -> &[Option<TableWidth>] {
        &self.plan
    }

    /// Bytes no planned table takes.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

/// Gives `keys`, in order, the precomputed tables a [`TableBudget`] of `bytes` plans for them.
pub fn give_tables<'a>(bytes: usize, keys: impl IntoIterator<Item = &'a mut VerifyingKey>) {
    let keys: Vec<&mut VerifyingKey> = keys.into_iter().collect();
    let budget = TableBudget::new(bytes, keys.len());
    for (key, width) in keys.into_iter().zip(budget.plan) {
        if let Some(width) = width {
            *key = key.clone().with_table_width(width);
        }
    }
}

/// A validated Ed25519 public key.
#[derive(Clone)]
pub struct VerifyingKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
    table: Option<Arc<FixedBaseTable>>,
}

impl core::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("bytes", &crate::b64::encode(&self.bytes))
            .field("table", &self.table_width())
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

    /// The same key with the widest precomputed table (radix 2^10, 1,560 KiB). For many keys, use
    /// a [`TableBudget`].
    pub fn with_table(self) -> Self {
        self.with_table_width(TableWidth::ALL[0])
    }

    /// The same key with a precomputed table of this width ([`TableWidth::bytes`] of memory).
    pub fn with_table_width(mut self, width: TableWidth) -> Self {
        // The table path needs the base point's table too: build it now, not on a request.
        // Without it, or if the key failed to decode (neither happens: the tests decode the
        // base point and every key `from_bytes` accepts), the key keeps the variable-base path.
        if basepoint_table().is_some() {
            self.table =
                Affine::decode(&self.bytes).map(|a| Arc::new(FixedBaseTable::new(&a, width)));
        }
        self
    }

    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    pub fn table_width(&self) -> Option<TableWidth> {
        self.table.as_ref().map(|t| t.width())
    }

    /// True only if `signature` is a valid strict Ed25519 signature of `message` by this key.
    // Never inlined, here and in `verify_pair`: bench/callgrind.sh finds verification by name.
    #[inline(never)]
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.recompute(message, signature)
            .is_some_and(|r| r.matches(&r.point.encode()))
    }

    /// The equation's left side for this signature, not yet compared with `R`: `None` when `S`
    /// is not canonical.
    fn recompute(&self, message: &[u8], signature: &[u8; 64]) -> Option<Recomputed> {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        s_bytes.copy_from_slice(&signature[32..]);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        let hash: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(self.bytes)
            .chain_update(message)
            .finalize()
            .into();
        let k = Scalar::from_bytes_mod_order_wide(&hash);
        Some(Recomputed {
            point: self.recompute_r(&s, &k),
            r_bytes,
        })
    }

    /// `[S]B + [k](-A)`, the one equation of both paths: the point is negated, never the scalar
    /// (for a point outside the prime-order subgroup `[L - k]A` is not `-[k]A`, and the two paths
    /// once disagreed on exactly that).
    fn recompute_r(&self, s: &Scalar, k: &Scalar) -> Sum {
        match (&self.table, basepoint_table()) {
            (Some(table), Some(base)) => {
                let mut sum = base.mul(s);
                table.mul_add(&mut sum, k, true);
                Sum::Table(sum)
            }
            _ => Sum::Dalek(EdwardsPoint::vartime_double_scalar_mul_basepoint(
                k,
                &(-self.point),
                s,
            )),
        }
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// `[S]B - [k]A` as the path that computed it holds it.
enum Sum {
    Table(Extended),
    Dalek(EdwardsPoint),
}

impl Sum {
    fn encode(&self) -> [u8; 32] {
        match self {
            Sum::Table(p) => p.encode(),
            Sum::Dalek(p) => p.compress().to_bytes(),
        }
    }
}

/// `[S]B - [k]A` for one signature, and the `R` it must encode to.
struct Recomputed {
    point: Sum,
    r_bytes: [u8; 32],
}

impl Recomputed {
    /// Comparing with the canonical encoding of `[S]B - [k]A` refuses a non-canonical `R`
    /// without decompressing it; an `R` that matches is that point, so it is of small order
    /// exactly when its encoding is one of the eight small-order points' encodings.
    fn matches(&self, encoded: &[u8; 32]) -> bool {
        encoded == &self.r_bytes && !is_small_order_encoding(encoded)
    }
}

/// One signature to check: key, message, signature.
pub type Check<'a> = (&'a VerifyingKey, &'a [u8], &'a [u8; 64]);

/// Two signatures checked at once, each exactly as [`VerifyingKey::verify`] would, with one
/// field inversion for both (issue 12): compressing `[S]B - [k]A` to compare it with `R` is an
/// inversion, shared between the two points by Montgomery's trick (`point.rs` on the table
/// path, curve25519-dalek's `compress_batch` on the variable-base one). Decompressing `R` to compare projectively would cost a square root per
/// signature instead, as dear as the inversion it saves.
#[inline(never)]
pub fn verify_pair(first: Check<'_>, second: Check<'_>) -> [bool; 2] {
    let a = first.0.recompute(first.1, first.2);
    let b = second.0.recompute(second.1, second.2);
    match (a, b) {
        (Some(a), Some(b)) => {
            let [ea, eb] = match (&a.point, &b.point) {
                (Sum::Table(pa), Sum::Table(pb)) => Extended::encode_pair(pa, pb),
                (Sum::Dalek(pa), Sum::Dalek(pb)) => {
                    let [ea, eb] = EdwardsPoint::compress_batch(&[*pa, *pb]);
                    [ea.to_bytes(), eb.to_bytes()]
                }
                (pa, pb) => [pa.encode(), pb.encode()],
            };
            [a.matches(&ea), b.matches(&eb)]
        }
        (a, b) => [a, b].map(|r| r.is_some_and(|r| r.matches(&r.point.encode()))),
    }
}

/// A verdict on exactly one (key, 32-byte message, signature): decided ahead, alongside another
/// signature by [`verify_pair`], and reused only for exactly those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    key: [u8; 32],
    message: [u8; 32],
    signature: [u8; 64],
    valid: bool,
}

impl Decided {
    pub fn new(key: &VerifyingKey, message: &[u8; 32], signature: &[u8; 64], valid: bool) -> Self {
        Decided {
            key: key.bytes,
            message: *message,
            signature: *signature,
            valid,
        }
    }

    /// [`VerifyingKey::verify`]'s verdict: the one decided ahead if these are its exact bytes,
    /// else computed now.
    pub fn verify(&self, key: &VerifyingKey, message: &[u8; 32], signature: &[u8; 64]) -> bool {
        if self.key == key.bytes && &self.message == message && &self.signature == signature {
            self.valid
        } else {
            key.verify(message, signature)
        }
    }
}

#[cfg(test)]
mod tests;
