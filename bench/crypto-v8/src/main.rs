//! Prints microseconds per Ed25519 verification for each backend, run natively or under V8.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::crypto::TableWidth;
use std::time::Instant;

const ROUNDS: usize = 9;
const PER_ROUND: u32 = 150;

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
    // The base point's table is built once per VM, with the first key table.
    let t = Instant::now();
    proofgate::crypto::prepare();
    let base_build = t.elapsed();
    let t = Instant::now();
    let widest = plain.clone().with_table_width(TableWidth::Radix1024);
    let widest_build = t.elapsed();
    let t = Instant::now();
    let wide = plain.clone().with_table_width(TableWidth::Radix256);
    let wide_build = t.elapsed();
    let t = Instant::now();
    let narrow = plain.clone().with_table_width(TableWidth::Radix16);
    let narrow_build = t.elapsed();

    let pair = |k| proofgate::crypto::verify_pair((k, &msg, &sig), (k, &msg, &sig));
    // The base point's table is radix 1024 in every row with a key table.
    let cases: [(&str, &dyn Fn() -> bool); 9] = [
        ("ed25519-compact verify", &|| {
            compact.verify(msg, &compact_sig).is_ok()
        }),
        ("ed25519-dalek verify_strict", &|| {
            dalek.verify_strict(&msg, &dalek_sig).is_ok()
        }),
        (
            "proofgate seam, variable-base (keys without a table)",
            &|| plain.verify(&msg, &sig),
        ),
        ("proofgate seam, radix-1024 key table (1,560 KiB)", &|| {
            widest.verify(&msg, &sig)
        }),
        ("proofgate seam, radix-256 key table (480 KiB)", &|| {
            wide.verify(&msg, &sig)
        }),
        ("proofgate seam, radix-16 key table (60 KiB)", &|| {
            narrow.verify(&msg, &sig)
        }),
        // A passport + proof request's two signatures: one after the other (two field
        // inversions), and as one pair (one inversion); per pair, so compare with each other.
        (
            "two radix-1024 verifications, one after the other (per pair)",
            &|| widest.verify(&msg, &sig) && widest.verify(&msg, &sig),
        ),
        (
            "two radix-1024 verifications as one pair, `verify_pair` (per pair)",
            &|| pair(&widest) == [true, true],
        ),
        (
            "two radix-256 verifications as one pair, `verify_pair` (per pair)",
            &|| pair(&wide) == [true, true],
        ),
    ];
    // Interleaved rounds, median per backend: V8 tiering and a shared host drift over seconds,
    // and interleaving spreads that drift over every backend alike.
    for (_, f) in &cases {
        for _ in 0..PER_ROUND {
            assert!(f());
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
    let medians: Vec<f64> = samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    // The host's speed drifts between runs; the ratio to ed25519-dalek within one run does not.
    println!("| backend | µs per verify (median of {ROUNDS} interleaved rounds of {PER_ROUND}) | × ed25519-dalek |");
    println!("|---|---:|---:|");
    for ((name, _), m) in cases.iter().zip(&medians) {
        println!("| {name} | {m:.1} | {:.2} |", m / medians[1]);
    }
    for (what, took) in [
        ("the base point's radix-1024 table, once per VM", base_build),
        ("one key's radix-1024 table, once at load", widest_build),
        ("one key's radix-256 table, once at load", wide_build),
        ("one key's radix-16 table, once at load", narrow_build),
    ] {
        println!("| (building {what}) | {:.1} | |", took.as_secs_f64() * 1e6);
    }
}
