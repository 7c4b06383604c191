//! Native micro-benchmark of the core verify pipeline for one passport + proof request: route,
//! passport parse, two Ed25519 verifications, claims, policy, transcript rebuild, replay consume.
//! `cargo bench --bench pipeline` prints ns per request; `PIPELINE_ITERS=N` sets the count
//! and `PIPELINE_PREPARE=M` how many are signed up front (bench/callgrind.sh runs two counts with
//! the same M under callgrind and reports the difference per request, a stable instruction count).
//! `PIPELINE_SCALE=1` adds the configuration-size dimension (route count, revocation count):
//! load time, resolution / lookup time, and the whole pipeline at the largest size, as
//! `scale: ` Markdown lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use proofgate::config::Config;
use proofgate::replay::MemoryStore;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counts heap allocations, so the per-request allocation count is a reported number.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    if std::env::var("PIPELINE_SCALE").is_ok_and(|v| v == "1") {
        scale();
    }
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let iters = env("PIPELINE_ITERS").unwrap_or(2000);
    // Signing cost must not scale with the measured count: prepare the same number every run.
    let prepare = env("PIPELINE_PREPARE").unwrap_or(iters).max(iters);
    // `PIPELINE_ROUTES=N PIPELINE_REVOCATIONS=M`: the same requests against a bundle with N extra
    // routes and M revoked jtis (key tables on), so bench/callgrind.sh can count what growth costs.
    let engine = match (env("PIPELINE_ROUTES"), env("PIPELINE_REVOCATIONS")) {
        (None, None) => Engine::new(config(&config_json()), NOW - 10),
        (routes, revocations) => Engine::new(
            Config::parse(
                sized_config(routes.unwrap_or(0), revocations.unwrap_or(0))
                    .replace(
                        "\"key_tables_max_bytes\":0",
                        "\"key_tables_max_bytes\":4194304",
                    )
                    .as_bytes(),
            )
            .unwrap(),
            NOW - 10,
        ),
    };
    let mut store = MemoryStore::default();
    engine.replay.open(&mut store).unwrap();
    let req = Req::post_order();
    // Signing is not measured: every request is prepared first, each with its own jti.
    let prepared: Vec<_> = (0..prepare)
        .map(|i| {
            let mut claims = claims();
            claims["jti"] = json!(format!("jti-bench-{i}"));
            let headers = req.sign(&claims, &["content-type", "x-trustplane-nonce"]);
            req.view(&headers)
        })
        .collect();

    let (allocs_before, bytes_before) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    // Timed in rounds of 100 requests: the mean, and the fastest round, the one least disturbed by
    // other load on a shared machine (the same convention as the configuration-size rows).
    let mut rounds = Vec::new();
    let start = Instant::now();
    for round in prepared[..iters].chunks(ROUND) {
        let round_start = Instant::now();
        for view in round {
            let HeadersVerdict::NeedBody(pending) = engine.check_headers(view, NOW) else {
                panic!("headers phase denied");
            };
            engine
                .check_body(*pending, &req.body, &mut store, NOW)
                .unwrap();
        }
        rounds.push(round_start.elapsed().as_secs_f64() * 1e6 / round.len() as f64);
    }
    let elapsed = start.elapsed();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes_before;
    println!(
        "allocations: {:.1} per request, {:.0} bytes per request (core pipeline, replay store included)",
        allocs as f64 / iters as f64,
        bytes as f64 / iters as f64
    );

    // The pipeline's own two verifications, measured apart in the same process so their share is
    // known: `verify_pair` (as the passport path calls it) over distinct passport signing inputs
    // and proof digests, so each pair reads other rows of the key tables, as requests do. A fixed
    // count, so that it cancels out of bench/callgrind.sh's difference between two request counts.
    const CRYPTO_REQUESTS: usize = 200;
    let key = &engine.config.issuers[0].keys[0].key;
    let pairs: Vec<SignedPair> = (0..CRYPTO_REQUESTS)
        .map(|i| {
            let mut claims = claims();
            claims["jti"] = json!(format!("jti-crypto-{i}"));
            let token = passport(&claims);
            let (input, signature) = token.rsplit_once('.').unwrap();
            let signature = proofgate::b64::decode_array::<64>(signature).unwrap();
            let digest: [u8; 32] = Sha256::digest(input.as_bytes()).into();
            let proof: [u8; 64] = *demo_key().sk.sign(digest, None);
            (input.to_string(), signature, digest, proof)
        })
        .collect();
    let mut crypto_rounds = Vec::new();
    for round in pairs.chunks(CRYPTO_REQUESTS / 4) {
        let round_start = Instant::now();
        for (input, signature, digest, proof) in round {
            let verdict = proofgate::crypto::verify_pair(
                (key, input.as_bytes(), signature),
                (key, digest, proof),
            );
            assert_eq!(verdict, [true, true]);
        }
        crypto_rounds.push(round_start.elapsed().as_secs_f64() * 1e6 / round.len() as f64);
    }
    println!(
        "crypto: {:.1} µs per request in 2 table-path Ed25519 verifications (verify_pair over distinct signatures, fastest of {} rounds of {})",
        fastest(&crypto_rounds),
        crypto_rounds.len(),
        CRYPTO_REQUESTS / 4
    );
    println!(
        "pipeline: {iters} requests, {:.1} µs per request in the fastest of {} rounds of {} (mean {:.1} µs; passport + proof, 2 Ed25519 verifications)",
        fastest(&rounds),
        rounds.len(),
        ROUND.min(iters),
        elapsed.as_secs_f64() * 1e6 / iters as f64
    );
}

/// A passport signing input and its signature, and a proof digest and its signature.
type SignedPair = (String, [u8; 64], [u8; 32], [u8; 64]);

/// Requests per timed round of the pipeline.
const ROUND: usize = 100;

fn fastest(rounds: &[f64]) -> f64 {
    rounds.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The demo config plus `routes` placeholder routes (one per service, the shape the issue timed)
/// and `revocations` revoked jtis (plus a tenth as many subject and key revocations). Key tables
/// are off so load time is the bundle's own.
fn sized_config(routes: usize, revocations: usize) -> String {
    let mut v = config_json();
    v["key_tables_max_bytes"] = json!(0);
    let list = v["policy_bundle"]["route_groups"][0]["routes"]
        .as_array_mut()
        .unwrap();
    let template = list[1].clone();
    for i in 0..routes {
        let mut r = template.clone();
        r["route_id"] = json!(format!("svc{i}.get"));
        r["path_template"] = json!(format!("/svc{i}/items/{{item_id}}"));
        list.push(r);
    }
    let mut revoked = Vec::new();
    for i in 0..revocations {
        revoked.push(json!({"jti": format!("revoked-jti-{i}")}));
        if i % 10 == 0 {
            revoked.push(json!({"sub": format!("revoked-sub-{i}"), "not_before": NOW}));
            revoked.push(json!({"issuer": ISSUER, "kid": format!("revoked-kid-{i}")}));
        }
    }
    v["policy_bundle"]["revocations"] = json!(revoked);
    v.to_string()
}

/// The fastest of 7 rounds: on a shared machine the minimum is the round least disturbed.
fn per_call_ns(count: usize, mut f: impl FnMut(usize) -> bool) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let mut hits = 0usize;
        let start = Instant::now();
        for i in 0..count / 7 {
            hits += usize::from(f(i));
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e9 / (count / 7) as f64);
        assert!(hits > 0, "the measured lookups must find something");
    }
    best
}

fn scale() {
    // Once, so no row pays for the base point's table.
    proofgate::crypto::prepare();
    println!("scale: | routes in the bundle | config load, ms (of which JSON text to serde_json::Value) | route resolution, ns per request (hit / miss) |");
    println!("scale: | ---: | ---: | ---: |");
    for routes in [10usize, 100, 1_000, 10_000, 20_000] {
        let text = sized_config(routes, 0);
        let start = Instant::now();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let json_ms = start.elapsed().as_secs_f64() * 1e3;
        drop(value);
        let start = Instant::now();
        let config = Config::parse(text.as_bytes()).unwrap();
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        let bundle = config.bundle.as_ref().unwrap();
        let hits: Vec<String> = (0..1024)
            .map(|i| format!("/svc{}/items/{i}", (i * 7919) % routes))
            .collect();
        let misses: Vec<String> = (0..1024)
            .map(|i| format!("/svc{}/other/{i}", (i * 7919) % routes))
            .collect();
        let resolve = |path: &str| proofgate::routing::resolve(bundle, "GET", path).is_some();
        let hit = per_call_ns(200_000, |i| resolve(&hits[i % hits.len()]));
        let miss = per_call_ns(200_000, |i| !resolve(&misses[i % misses.len()]));
        println!("scale: | {routes} | {load_ms:.1} ({json_ms:.1}) | {hit:.0} / {miss:.0} |");
    }
    println!("scale:");
    println!("scale: | revocations in the bundle (jti + subject + key) | config load, ms | revocation lookup, ns per request (revoked / not revoked) |");
    println!("scale: | ---: | ---: | ---: |");
    for revocations in [0usize, 1_000, 100_000] {
        let text = sized_config(3, revocations);
        let start = Instant::now();
        let config = Config::parse(text.as_bytes()).unwrap();
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        let revoked = &config.bundle.as_ref().unwrap().revoked;
        let jtis: Vec<String> = (0..1024)
            .map(|i| format!("revoked-jti-{}", (i * 7919) % revocations.max(1)))
            .collect();
        let check = |jti: &str| {
            revoked.is_revoked(Some(ISSUER), KID, Some(SUBJECT), Some(jti), Some(NOW - 100))
        };
        let hit = if revocations == 0 {
            "–".to_string()
        } else {
            format!(
                "{:.0}",
                per_call_ns(200_000, |i| check(&jtis[i % jtis.len()]))
            )
        };
        let live: Vec<String> = (0..1024).map(|i| format!("jti-live-{i}")).collect();
        let miss = per_call_ns(200_000, |i| !check(&live[i % live.len()]));
        println!(
            "scale: | {} | {load_ms:.1} | {hit} / {miss:.0} |",
            revocations * 12 / 10
        );
    }
    // The whole pipeline with the largest bundle, against the demo-sized one.
    println!("scale:");
    for (routes, revocations) in [(0usize, 0usize), (10_000, 100_000)] {
        let engine = Engine::new(
            Config::parse(
                sized_config(routes, revocations)
                    .replace(
                        "\"key_tables_max_bytes\":0",
                        "\"key_tables_max_bytes\":4194304",
                    )
                    .as_bytes(),
            )
            .unwrap(),
            NOW - 10,
        );
        let mut store = MemoryStore::default();
        engine.replay.open(&mut store).unwrap();
        let req = Req::post_order();
        let views: Vec<_> = (0..300)
            .map(|i| {
                let mut claims = claims();
                claims["jti"] = json!(format!("jti-scale-{i}"));
                req.view(&req.sign(&claims, &["content-type", "x-trustplane-nonce"]))
            })
            .collect();
        let start = Instant::now();
        for view in &views {
            let HeadersVerdict::NeedBody(pending) = engine.check_headers(view, NOW) else {
                panic!("headers phase denied");
            };
            engine
                .check_body(*pending, &req.body, &mut store, NOW)
                .unwrap();
        }
        println!(
            "scale: whole pipeline with {} extra routes and {} revocations: {:.1} µs per request",
            routes,
            revocations * 12 / 10,
            start.elapsed().as_secs_f64() * 1e6 / views.len() as f64
        );
    }
}
