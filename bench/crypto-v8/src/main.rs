//! Prints microseconds per Ed25519 verification for each backend, run natively or under V8.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

const ROUNDS: u32 = 400;

fn main() {
    let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    let msg = [7u8; 32]; // a transcript digest, as the request proof signs
    let sig: [u8; 64] = *kp.sk.sign(msg, None);
    let pk: [u8; 32] = *kp.pk;

    let compact = ed25519_compact::PublicKey::new(pk);
    let compact_sig = ed25519_compact::Signature::new(sig);
    let dalek = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig);
    let plain = proofgate::crypto::VerifyingKey::from_bytes(&pk).unwrap();
    let t = Instant::now();
    let tabled = plain.clone().with_table();
    let table_build = t.elapsed();

    let cases: [(&str, &dyn Fn() -> bool); 4] = [
        ("ed25519-compact verify", &|| compact.verify(msg, &compact_sig).is_ok()),
        ("ed25519-dalek verify_strict", &|| dalek.verify_strict(&msg, &dalek_sig).is_ok()),
        ("proofgate seam, variable-base", &|| plain.verify(&msg, &sig)),
        ("proofgate seam, precomputed table", &|| tabled.verify(&msg, &sig)),
    ];
    println!("| backend | µs per verify |");
    println!("|---|---|");
    for (name, f) in cases {
        for _ in 0..ROUNDS / 4 {
            assert!(f());
        }
        let t = Instant::now();
        for _ in 0..ROUNDS {
            assert!(f());
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
        println!("| {name} | {us:.1} |");
    }
    println!("| (building one key's table) | {:.1} |", table_build.as_secs_f64() * 1e6);
}
