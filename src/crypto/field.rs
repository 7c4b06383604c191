//! Arithmetic modulo `p = 2^255 - 19` for the fixed-base tables (issue 12), over fiat-crypto's
//! formally verified 32-bit code (the code curve25519-dalek runs with its fiat backend).
//!
//! curve25519-dalek keeps its field type private, so its public points can only be added with
//! the complete `EdwardsPoint` formula (9 multiplications); tables of affine Niels points, added
//! with 7, need a field type of their own. Only the operations the tables and their sums use
//! are here. Everything is variable time: verification handles only public data.
//!
//! fiat-crypto's two bounds are kept as two types: a [`Fe`] is carried (tight), a [`Loose`] is
//! the result of an addition or subtraction, which a multiplication accepts but another
//! addition does not.

use fiat_crypto::curve25519_32::{
    fiat_25519_add, fiat_25519_carry, fiat_25519_carry_mul, fiat_25519_carry_square,
    fiat_25519_from_bytes, fiat_25519_loose_field_element, fiat_25519_opp, fiat_25519_relax,
    fiat_25519_sub, fiat_25519_tight_field_element, fiat_25519_to_bytes,
};

/// A carried field element.
#[derive(Clone, Copy)]
pub struct Fe(fiat_25519_tight_field_element);

/// A field element straight out of an addition or subtraction.
#[derive(Clone, Copy)]
pub struct Loose(fiat_25519_loose_field_element);

impl Fe {
    pub const ZERO: Fe = Fe(fiat_25519_tight_field_element([0; 10]));
    pub const ONE: Fe = Fe(fiat_25519_tight_field_element([
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]));

    /// The element a small integer names.
    pub fn from_u32(n: u32) -> Fe {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        Fe::from_bytes_masked(&bytes)
    }

    /// The low 255 bits of `bytes`, little-endian, reduced modulo `p` (the top bit is ignored:
    /// in a point encoding it is the sign of `x`).
    pub fn from_bytes_masked(bytes: &[u8; 32]) -> Fe {
        let mut masked = *bytes;
        masked[31] &= 0x7f;
        tight(|out| fiat_25519_from_bytes(out, &masked))
    }

    /// The canonical (fully reduced) little-endian encoding.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        fiat_25519_to_bytes(&mut out, &self.0);
        out
    }

    /// Odd in its canonical form: the sign RFC 8032 encodes for `x`.
    pub fn is_negative(&self) -> bool {
        self.to_bytes()[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        self.to_bytes() == [0u8; 32]
    }

    pub fn same(&self, other: &Fe) -> bool {
        self.to_bytes() == other.to_bytes()
    }

    pub fn relax(&self) -> Loose {
        loose(|out| fiat_25519_relax(out, &self.0))
    }

    pub fn add(&self, other: &Fe) -> Loose {
        loose(|out| fiat_25519_add(out, &self.0, &other.0))
    }

    pub fn sub(&self, other: &Fe) -> Loose {
        loose(|out| fiat_25519_sub(out, &self.0, &other.0))
    }

    pub fn neg(&self) -> Fe {
        loose(|out| fiat_25519_opp(out, &self.0)).carry()
    }

    pub fn mul(&self, other: &Fe) -> Fe {
        self.relax().mul(&other.relax())
    }

    pub fn square(&self) -> Fe {
        self.relax().square()
    }

    fn square_times(&self, n: u32) -> Fe {
        let mut out = *self;
        for _ in 0..n {
            out = out.square();
        }
        out
    }

    /// `(self^(2^250 - 1), self^11)`: the shared start of the inversion and the square root
    /// (the usual addition chain of ref10 and curve25519-dalek).
    fn pow22501(&self) -> (Fe, Fe) {
        let t0 = self.square(); // 2
        let t1 = t0.square_times(2); // 8
        let t2 = self.mul(&t1); // 9
        let t3 = t0.mul(&t2); // 11
        let t4 = t3.square(); // 22
        let t5 = t2.mul(&t4); // 2^5 - 1
        let t6 = t5.square_times(5);
        let t7 = t6.mul(&t5); // 2^10 - 1
        let t8 = t7.square_times(10);
        let t9 = t8.mul(&t7); // 2^20 - 1
        let t10 = t9.square_times(20);
        let t11 = t10.mul(&t9); // 2^40 - 1
        let t12 = t11.square_times(10);
        let t13 = t12.mul(&t7); // 2^50 - 1
        let t14 = t13.square_times(50);
        let t15 = t14.mul(&t13); // 2^100 - 1
        let t16 = t15.square_times(100);
        let t17 = t16.mul(&t15); // 2^200 - 1
        let t18 = t17.square_times(50);
        let t19 = t18.mul(&t13); // 2^250 - 1
        (t19, t3)
    }

    /// `self^(p - 2)`: the inverse, and zero for zero.
    pub fn invert(&self) -> Fe {
        let (t19, t3) = self.pow22501();
        t19.square_times(5).mul(&t3)
    }

    /// `self^((p - 5) / 8)`, the core of the square root.
    pub fn pow_p58(&self) -> Fe {
        let (t19, _) = self.pow22501();
        t19.square_times(2).mul(self)
    }
}

impl Loose {
    pub fn mul(&self, other: &Loose) -> Fe {
        tight(|out| fiat_25519_carry_mul(out, &self.0, &other.0))
    }

    pub fn square(&self) -> Fe {
        tight(|out| fiat_25519_carry_square(out, &self.0))
    }

    pub fn carry(&self) -> Fe {
        tight(|out| fiat_25519_carry(out, &self.0))
    }
}

/// fiat's functions write into an output argument; these give the result as a value.
#[inline(always)]
fn tight(f: impl FnOnce(&mut fiat_25519_tight_field_element)) -> Fe {
    let mut out = fiat_25519_tight_field_element([0; 10]);
    f(&mut out);
    Fe(out)
}

#[inline(always)]
fn loose(f: impl FnOnce(&mut fiat_25519_loose_field_element)) -> Loose {
    let mut out = fiat_25519_loose_field_element([0; 10]);
    f(&mut out);
    Loose(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(seed: u8) -> Fe {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8).wrapping_mul(97);
        }
        Fe::from_bytes_masked(&bytes)
    }

    #[test]
    fn encodings_are_canonical_and_round_trip() {
        // p itself and p + 1 reduce to 0 and 1; 2^255 - 1 to 18.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(Fe::from_bytes_masked(&p).is_zero());
        p[0] = 0xee;
        assert_eq!(Fe::from_bytes_masked(&p).to_bytes(), Fe::ONE.to_bytes());
        assert_eq!(
            Fe::from_bytes_masked(&[0xff; 32]).to_bytes(),
            Fe::from_u32(18).to_bytes()
        );
        for seed in 0..50 {
            let x = element(seed);
            assert_eq!(
                Fe::from_bytes_masked(&x.to_bytes()).to_bytes(),
                x.to_bytes()
            );
        }
    }

    #[test]
    fn inverse_and_negation_behave() {
        assert!(Fe::ZERO.invert().is_zero());
        for seed in 1..50 {
            let x = element(seed);
            assert!(x.mul(&x.invert()).same(&Fe::ONE));
            assert!(x.add(&x.neg()).carry().is_zero());
            assert!(x.square().same(&x.mul(&x)));
            assert!(x.sub(&x).carry().is_zero());
        }
        // -1 = p - 1, whose encoding is known.
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        assert_eq!(Fe::ONE.neg().to_bytes(), minus_one);
    }

    #[test]
    fn pow_p58_is_the_right_power() {
        // (x^((p-5)/8))^8 * x^5 = x^(p-5) * x^5 = x^p = x.
        for seed in 1..20 {
            let x = element(seed);
            let t = x.pow_p58().square_times(3);
            let x5 = x.square().square().mul(&x);
            assert!(t.mul(&x5).same(&x));
        }
    }
}
