//! Variable-time fixed-base tables for the crypto seam (DESIGN.md section 9, issue 12).
//!
//! Verification only handles public data (keys, signatures, messages), so a fixed-base
//! multiplication need not be constant time: the scalar is written in signed radix `2^w`
//! (digits in `[-2^(w-1), 2^(w-1))`) and each non-zero digit adds or subtracts one table entry
//! by direct index, with no masked scan and no doubling. Radix 2^10 takes 26 additions per
//! scalar, radix 2^8 32 from a table under a third the size, radix 2^4 64 from one an eighth of
//! that.
//!
//! The tables hold affine Niels points (`point.rs`), so an addition costs 7 field
//! multiplications where curve25519-dalek's public `EdwardsPoint` sum costs 9, and an entry takes
//! 120 bytes instead of 160.

use super::point::{multiples, Affine, Extended, Niels};
use curve25519_dalek::scalar::Scalar;

/// Scalars reaching a table are canonical (`< L < 2^253`).
const SCALAR_BITS: u32 = 253;

/// The digit width of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableWidth {
    /// Radix 2^4: 64 additions per multiplication, 512 points (60 KiB).
    Radix16,
    /// Radix 2^8: 32 additions per multiplication, 4,096 points (480 KiB).
    Radix256,
    /// Radix 2^10: 26 additions per multiplication, 13,312 points (1,560 KiB).
    Radix1024,
}

impl TableWidth {
    /// Widest first.
    pub const ALL: [TableWidth; 3] = [
        TableWidth::Radix1024,
        TableWidth::Radix256,
        TableWidth::Radix16,
    ];

    const fn bits(self) -> u32 {
        match self {
            TableWidth::Radix16 => 4,
            TableWidth::Radix256 => 8,
            TableWidth::Radix1024 => 10,
        }
    }

    const fn positions(self) -> usize {
        positions(self.bits())
    }

    const fn per_position(self) -> usize {
        1 << (self.bits() - 1)
    }

    /// Bytes of memory one table of this width takes.
    pub const fn bytes(self) -> usize {
        self.positions() * self.per_position() * core::mem::size_of::<Niels>()
    }
}

/// Signed digits of `bits` a canonical scalar needs. The top digit's window holds what is left of
/// the 253 bits plus a carry; if that can reach half the radix, the top digit is written signed
/// too and its carry takes one more position (radix 2^11, where 253 bits fill 23 windows exactly).
const fn positions(bits: u32) -> usize {
    let n = SCALAR_BITS.div_ceil(bits);
    let top = SCALAR_BITS - bits * (n - 1);
    if top + 1 >= bits {
        n as usize + 1
    } else {
        n as usize
    }
}

/// `[d * 2^(w*i)] P` for every position `i` and `d` in `1..=2^(w-1)`.
pub struct FixedBaseTable {
    width: TableWidth,
    points: Vec<Niels>,
}

impl FixedBaseTable {
    pub fn new(point: &Affine, width: TableWidth) -> FixedBaseTable {
        FixedBaseTable {
            width,
            points: multiples(point, width.positions(), width.bits()),
        }
    }

    pub fn width(&self) -> TableWidth {
        self.width
    }

    /// `acc + [scalar]P` if `subtract` is false, `acc + [scalar](-P)` if it is true: the point is
    /// negated entry by entry, never the scalar.
    pub fn mul_add(&self, acc: &mut Extended, scalar: &Scalar, subtract: bool) {
        let digits = signed_digits(scalar, self.width.bits());
        let per = self.width.per_position();
        for (i, &d) in digits.iter().take(self.width.positions()).enumerate() {
            if d == 0 {
                continue;
            }
            let index = i * per + usize::from(d.unsigned_abs()) - 1;
            // In range by construction: |d| <= 2^(w-1) and i < positions; a miss cannot
            // happen, and would leave the sum wrong (so the signature refused), never accepted
            // wrongly: the sum must still equal R exactly.
            let Some(entry) = self.points.get(index) else {
                *acc = Extended::IDENTITY;
                return;
            };
            *acc = acc.add(entry, (d < 0) != subtract);
        }
    }

    /// `[scalar]P`.
    pub fn mul(&self, scalar: &Scalar) -> Extended {
        let mut acc = Extended::IDENTITY;
        self.mul_add(&mut acc, scalar, false);
        acc
    }
}

/// The scalar in signed radix `2^bits`: digits in `[-2^(bits-1), 2^(bits-1)]`, least significant
/// first. A canonical scalar (`< 2^253`) needs [`positions`]`(bits)` digits.
fn signed_digits(scalar: &Scalar, bits: u32) -> [i16; 64] {
    let bytes = scalar.as_bytes();
    let mut digits = [0i16; 64];
    let mask = (1u32 << bits) - 1;
    let half = 1i16 << (bits - 1);
    let mut carry = 0i16;
    for (i, digit) in digits.iter_mut().enumerate() {
        let bit = i as u32 * bits;
        if bit >= 256 {
            break;
        }
        let byte = (bit / 8) as usize;
        // Three bytes hold any window of up to 17 bits at any offset within its first byte.
        let window = (0..3).fold(0u32, |w, k| {
            w | bytes.get(byte + k).map_or(0, |b| u32::from(*b)) << (8 * k)
        });
        let raw = (window >> (bit % 8)) & mask;
        let mut d = raw as i16 + carry;
        carry = 0;
        if d >= half {
            d -= 1 << bits;
            carry = 1;
        }
        *digit = d;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::EdwardsPoint;
    use sha2::{Digest, Sha512};

    fn scalar(i: u64) -> Scalar {
        let h: [u8; 64] = Sha512::new()
            .chain_update(i.to_le_bytes())
            .finalize()
            .into();
        Scalar::from_bytes_mod_order_wide(&h)
    }

    #[test]
    fn tables_multiply_like_the_crate() {
        let p = ED25519_BASEPOINT_POINT * scalar(99);
        let b = Affine::decode(ED25519_BASEPOINT_POINT.compress().as_bytes()).unwrap();
        let encode = |q: EdwardsPoint| q.compress().to_bytes();
        let base = FixedBaseTable::new(&b, TableWidth::Radix16);
        for width in TableWidth::ALL {
            let table = FixedBaseTable::new(&Affine::decode(&encode(p)).unwrap(), width);
            assert_eq!(table.points.len() * 120, width.bytes());
            let mut edge = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(128u8)];
            edge.push(Scalar::from(127u8));
            edge.push(-Scalar::from(128u8));
            edge.extend((0..64).map(scalar));
            for s in edge {
                assert_eq!(table.mul(&s).encode(), encode(p * s), "{width:?}");
                let mut acc = base.mul(&Scalar::ONE);
                table.mul_add(&mut acc, &s, true);
                let want = ED25519_BASEPOINT_POINT + (-p) * s;
                assert_eq!(acc.encode(), encode(want), "{width:?}");
            }
        }
    }

    #[test]
    fn digits_recompose_the_scalar() {
        // The table widths, and widths whose top window is full (11) or nearly empty (12).
        for bits in [4u32, 6, 8, 10, 11, 12] {
            for s in (0..200).map(scalar).chain([-Scalar::ONE]) {
                let digits = signed_digits(&s, bits);
                let half = 1i16 << (bits - 1);
                let mut total = Scalar::ZERO;
                let mut weight = Scalar::ONE;
                for d in digits {
                    assert!((-half..=half).contains(&d));
                    let m = Scalar::from(d.unsigned_abs());
                    total += if d < 0 { -m * weight } else { m * weight };
                    weight *= Scalar::from(1u32 << bits);
                }
                assert_eq!(total, s);
                let n = positions(bits);
                assert!(digits[n..].iter().all(|d| *d == 0));
            }
        }
    }
}
