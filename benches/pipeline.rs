//! Native micro-benchmark of the core verify pipeline for one passport + proof request: route,
//! passport parse, two Ed25519 verifications, claims, policy, transcript rebuild, replay consume.
//! `cargo bench --bench pipeline` prints ns per request; `PIPELINE_ITERS=N` sets the count
//! and `PIPELINE_PREPARE=M` how many are signed up front (bench/callgrind.sh runs two counts with
//! the same M under callgrind and reports the difference per request, a stable instruction count).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use proofgate::replay::MemoryStore;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::json;
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
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let iters = env("PIPELINE_ITERS").unwrap_or(2000);
    // Signing cost must not scale with the measured count: prepare the same number every run.
    let prepare = env("PIPELINE_PREPARE").unwrap_or(iters).max(iters);
    let engine = Engine::new(config(&config_json()), NOW - 10);
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
    let start = Instant::now();
    for view in &prepared[..iters] {
        let HeadersVerdict::NeedBody(pending) = engine.check_headers(view, NOW) else {
            panic!("headers phase denied");
        };
        engine
            .check_body(*pending, &req.body, &mut store, NOW)
            .unwrap();
    }
    let elapsed = start.elapsed();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes_before;
    println!(
        "allocations: {:.1} per request, {:.0} bytes per request (core pipeline, replay store included)",
        allocs as f64 / iters as f64,
        bytes as f64 / iters as f64
    );

    // The same process's two table-path verifications per request, so the share of the
    // signatures is measured under the same conditions as the pipeline itself. A fixed count,
    // so that it cancels out of bench/callgrind.sh's difference between two request counts.
    const CRYPTO_REQUESTS: u32 = 200;
    let key = &engine.config.issuers[0].keys[0].key;
    let digest = [7u8; 32];
    let signature: [u8; 64] = *demo_key().sk.sign(digest, None);
    let start = Instant::now();
    for _ in 0..CRYPTO_REQUESTS * 2 {
        assert!(key.verify(&digest, &signature));
    }
    println!(
        "crypto: {:.1} µs per request in 2 table-path Ed25519 verifications",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(CRYPTO_REQUESTS)
    );
    println!(
        "pipeline: {iters} requests, {:.1} µs per request (passport + proof, 2 Ed25519 verifications)",
        elapsed.as_secs_f64() * 1e6 / iters as f64
    );
}
