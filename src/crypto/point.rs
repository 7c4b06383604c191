//! Edwards25519 points for the fixed-base tables (issue 12): the accumulator in extended
//! coordinates, table entries as affine Niels points, and the RFC 8032 encoding and decoding
//! (section 5.1.2 and 5.1.3) between them and bytes.
//!
//! The addition is the unified formula of Hisil, Wong, Carter and Dawson (2008) for `a = -1`
//! with the second point affine ("madd-2008-hwcd-3"): 7 multiplications, complete on this curve
//! (`d` is not a square), so it also doubles. curve25519-dalek adds with the same formula; its
//! public `EdwardsPoint` sum costs 9 because it cannot keep the table entries in this form.
//! Every result is compared with curve25519-dalek's in the tests.

use super::field::{Fe, Loose};

/// `d = -121665 / 121666`.
fn d() -> Fe {
    Fe::from_u32(121_665)
        .neg()
        .mul(&Fe::from_u32(121_666).invert())
}

/// `2d`, the factor a Niels point carries.
fn two_d() -> Fe {
    let d = d();
    d.add(&d).carry()
}

/// A square root of -1: `2^((p - 1) / 4) = 2 * (2^((p - 5) / 8))^2`.
fn sqrt_minus_one() -> Fe {
    let two = Fe::from_u32(2);
    two.mul(&two.pow_p58().square())
}

/// `(X : Y : Z : T)` with `x = X/Z`, `y = Y/Z`, `xy = T/Z`.
#[derive(Clone, Copy)]
pub struct Extended {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// An affine point as `(y + x, y - x, 2dxy)`: what the addition multiplies by.
#[derive(Clone, Copy)]
pub struct Niels {
    y_plus_x: Loose,
    y_minus_x: Loose,
    xy2d: Loose,
}

/// An affine point `(x, y)`.
#[derive(Clone, Copy)]
pub struct Affine {
    x: Fe,
    y: Fe,
}

impl Affine {
    /// RFC 8032 section 5.1.3. `None` for bytes that encode no point or encode one
    /// non-canonically (`y >= p`, or `x = 0` with the sign bit set).
    pub fn decode(bytes: &[u8; 32]) -> Option<Affine> {
        let y = Fe::from_bytes_masked(bytes);
        let mut masked = *bytes;
        masked[31] &= 0x7f;
        if y.to_bytes() != masked {
            return None;
        }
        let sign = bytes[31] >> 7 == 1;
        let yy = y.square();
        let u = yy.sub(&Fe::ONE).carry();
        let v = d().mul(&yy).add(&Fe::ONE).carry();
        let v3 = v.square().mul(&v);
        let v7 = v3.square().mul(&v);
        let mut x = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
        let vxx = v.mul(&x.square());
        if !vxx.same(&u) {
            if vxx.same(&u.neg()) {
                x = x.mul(&sqrt_minus_one());
            } else {
                return None;
            }
        }
        if x.is_zero() && sign {
            return None;
        }
        if x.is_negative() != sign {
            x = x.neg();
        }
        Some(Affine { x, y })
    }

    fn extended(&self) -> Extended {
        Extended {
            x: self.x,
            y: self.y,
            z: Fe::ONE,
            t: self.x.mul(&self.y),
        }
    }

    fn niels(&self, d2: &Fe) -> Niels {
        Niels {
            y_plus_x: self.y.add(&self.x),
            y_minus_x: self.y.sub(&self.x),
            xy2d: self.x.mul(&self.y).mul(d2).relax(),
        }
    }
}

impl Extended {
    pub const IDENTITY: Extended = Extended {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
        t: Fe::ZERO,
    };

    /// `self + p`, or `self - p` when `subtract`: `-p` is `p` with `y + x` and `y - x` swapped
    /// and `2dxy` negated, so it costs nothing to form.
    pub fn add(&self, p: &Niels, subtract: bool) -> Extended {
        let (plus, minus) = if subtract {
            (&p.y_minus_x, &p.y_plus_x)
        } else {
            (&p.y_plus_x, &p.y_minus_x)
        };
        let a = self.y.sub(&self.x).mul(minus);
        let b = self.y.add(&self.x).mul(plus);
        let c = self.t.relax().mul(&p.xy2d);
        let d = self.z.add(&self.z).carry();
        let (f, g) = if subtract {
            (d.add(&c), d.sub(&c))
        } else {
            (d.sub(&c), d.add(&c))
        };
        let e = b.sub(&a);
        let h = b.add(&a);
        Extended {
            x: e.mul(&f),
            y: g.mul(&h),
            z: f.mul(&g),
            t: e.mul(&h),
        }
    }

    /// `2 * self` (dbl-2008-hwcd for `a = -1`: 4 squarings and 4 multiplications, no `T`).
    fn double(&self) -> Extended {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz).carry();
        let sum_squared = self.x.add(&self.y).square();
        let yy_plus_xx = yy.add(&xx);
        let yy_minus_xx = yy.sub(&xx);
        let x = sum_squared.sub(&yy_plus_xx.carry());
        let t = zz2.sub(&yy_minus_xx.carry());
        Extended {
            x: x.mul(&t),
            y: yy_plus_xx.mul(&yy_minus_xx),
            z: yy_minus_xx.mul(&t),
            t: x.mul(&yy_plus_xx),
        }
    }

    fn affine_with(&self, z_inverse: &Fe) -> Affine {
        Affine {
            x: self.x.mul(z_inverse),
            y: self.y.mul(z_inverse),
        }
    }

    fn affine(&self) -> Affine {
        self.affine_with(&self.z.invert())
    }

    /// RFC 8032 section 5.1.2: `y` with the sign of `x` in the top bit.
    pub fn encode(&self) -> [u8; 32] {
        self.affine().encode()
    }

    /// Both encodings with one inversion (Montgomery's trick).
    pub fn encode_pair(first: &Extended, second: &Extended) -> [[u8; 32]; 2] {
        let inverse = first.z.mul(&second.z).invert();
        [
            first.affine_with(&inverse.mul(&second.z)).encode(),
            second.affine_with(&inverse.mul(&first.z)).encode(),
        ]
    }
}

impl Affine {
    fn encode(&self) -> [u8; 32] {
        let mut bytes = self.y.to_bytes();
        bytes[31] |= u8::from(self.x.is_negative()) << 7;
        bytes
    }
}

/// Entries brought to affine per inversion while a table is built. A wasm VM's linear memory
/// never shrinks, so the build's scratch space stays part of every VM's footprint: in chunks it
/// is ~140 KiB (extended points, prefix products, affine points) instead of 2.3× the table, for
/// one inversion per 512 entries instead of one per table (26 per radix-1024 table, 8 per
/// radix-256 one: about 4% more work; 1 per radix-16 one).
const AFFINE_CHUNK: usize = 512;

/// `[d * 2^(bits*i)] P` for `i` in `0..positions` and `d` in `1..=2^(bits-1)`, in that order,
/// as Niels points. Everything is computed in extended coordinates and brought to affine in
/// batches (each one inversion): the positions' bases, then the entries, [`AFFINE_CHUNK`] at a
/// time.
pub fn multiples(p: &Affine, positions: usize, bits: u32) -> Vec<Niels> {
    let d2 = two_d();
    let mut bases = Vec::with_capacity(positions);
    let mut base = p.extended();
    for _ in 0..positions {
        bases.push(base);
        for _ in 0..bits {
            base = base.double();
        }
    }
    let per_position = 1usize << (bits - 1);
    let mut table = Vec::with_capacity(positions * per_position);
    let mut chunk = Vec::with_capacity(AFFINE_CHUNK);
    let flush = |chunk: &mut Vec<Extended>, table: &mut Vec<Niels>| {
        table.extend(to_affine(chunk).iter().map(|a| a.niels(&d2)));
        chunk.clear();
    };
    for base in to_affine(&bases) {
        let step = base.niels(&d2);
        let mut multiple = base.extended();
        for digit in 0..per_position {
            if digit > 0 {
                multiple = multiple.add(&step, false);
            }
            chunk.push(multiple);
            if chunk.len() == AFFINE_CHUNK {
                flush(&mut chunk, &mut table);
            }
        }
    }
    flush(&mut chunk, &mut table);
    table
}

/// Every point in affine coordinates with one inversion (Montgomery's trick): prefix products
/// forward, one inversion, then back.
fn to_affine(points: &[Extended]) -> Vec<Affine> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut running = Fe::ONE;
    for p in points {
        prefix.push(running);
        running = running.mul(&p.z);
    }
    let mut inverse = running.invert();
    let mut affine = Vec::with_capacity(points.len());
    for (p, before) in points.iter().zip(&prefix).rev() {
        affine.push(p.affine_with(&inverse.mul(before)));
        inverse = inverse.mul(&p.z);
    }
    affine.reverse();
    affine
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;

    fn point(i: u64) -> EdwardsPoint {
        ED25519_BASEPOINT_POINT * Scalar::from(i * 7919 + 3)
    }

    fn ours(p: &EdwardsPoint) -> Affine {
        Affine::decode(p.compress().as_bytes()).unwrap()
    }

    #[test]
    fn constants_are_what_they_claim() {
        assert!(sqrt_minus_one().square().same(&Fe::ONE.neg()));
        assert!(d()
            .mul(&Fe::from_u32(121_666))
            .same(&Fe::from_u32(121_665).neg()));
    }

    #[test]
    fn decoding_agrees_with_curve25519_dalek() {
        let mut all: Vec<EdwardsPoint> = (0..40).map(point).collect();
        all.extend(EIGHT_TORSION);
        for p in all {
            let bytes = p.compress().to_bytes();
            assert_eq!(ours(&p).encode(), bytes);
            assert_eq!(ours(&p).extended().encode(), bytes);
        }
        // Not a point, not canonical, and "-0".
        let mut count = 0;
        for y in 0u8..=255 {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes[1] = 0x5a;
            let dalek = curve25519_dalek::edwards::CompressedEdwardsY(bytes).decompress();
            assert_eq!(Affine::decode(&bytes).is_some(), dalek.is_some(), "{y}");
            count += usize::from(dalek.is_none());
        }
        assert!(count > 50, "the loop must see bytes that are not points");
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        assert!(Affine::decode(&p_plus_one).is_none());
        let mut minus_zero = Fe::ONE.to_bytes();
        minus_zero[31] |= 0x80;
        assert!(Affine::decode(&minus_zero).is_none());
        assert!(Affine::decode(&Fe::ONE.to_bytes()).is_some());
    }

    #[test]
    fn additions_agree_with_curve25519_dalek() {
        let d2 = two_d();
        let mut acc = Extended::IDENTITY;
        let mut expected = EdwardsPoint::default();
        for i in 0..60 {
            let p = if i % 7 == 0 {
                EIGHT_TORSION[i % 8]
            } else {
                point(i as u64)
            };
            let subtract = i % 3 == 0;
            acc = acc.add(&ours(&p).niels(&d2), subtract);
            expected = if subtract { expected - p } else { expected + p };
            assert_eq!(acc.encode(), expected.compress().to_bytes(), "{i}");
        }
        // Doubling through the same formula, and a point minus itself.
        let p = point(5);
        let doubled = ours(&p).extended().add(&ours(&p).niels(&d2), false);
        assert_eq!(doubled.encode(), (p + p).compress().to_bytes());
        let zero = ours(&p).extended().add(&ours(&p).niels(&d2), true);
        assert_eq!(zero.encode(), EdwardsPoint::default().compress().to_bytes());
        assert_eq!(ours(&p).extended().double().encode(), doubled.encode());
        let mut twice = acc;
        for _ in 0..9 {
            twice = twice.double();
        }
        let want = (0..9).fold(expected, |q, _| q + q);
        assert_eq!(twice.encode(), want.compress().to_bytes());
        let [a, b] = Extended::encode_pair(&doubled, &acc);
        assert_eq!(a, doubled.encode());
        assert_eq!(b, acc.encode());
    }

    #[test]
    fn multiples_are_the_multiples() {
        let p = point(11);
        let per = 8;
        let table = multiples(&ours(&p), 3, 4);
        assert_eq!(table.len(), 3 * per);
        for position in 0..3u32 {
            for digit in 1..=per {
                let entry = &table[position as usize * per + digit - 1];
                let got = Extended::IDENTITY.add(entry, false).encode();
                let want = p * Scalar::from(digit as u64 * (1u64 << (4 * position)));
                assert_eq!(got, want.compress().to_bytes(), "{position} {digit}");
            }
        }
        // Across a chunk of the affine conversion: 5 positions of 128 entries.
        let wide = multiples(&ours(&p), 5, 8);
        assert_eq!(wide.len(), 640);
        for index in [0, 127, 128, 510, 511, 512, 513, 600, 639] {
            let (position, digit) = (index / 128, index % 128 + 1);
            let got = Extended::IDENTITY.add(&wide[index], false).encode();
            let want = p * (Scalar::from(digit as u64) * Scalar::from(1u64 << (8 * position)));
            assert_eq!(got, want.compress().to_bytes(), "{index}");
        }
    }
}
