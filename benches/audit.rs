//! One allow audit line (`audit::line`) for a passport + proof request, the shape the benchmark
//! logs on every request. `cargo bench --bench audit` prints ns per line; `AUDIT_LINES=N` sets
//! the count. Under callgrind, two counts give instructions per line (issue 12, lever 3):
//! `bench/callgrind.sh audit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::audit;
use proofgate::decision::Facts;
use proofgate::event_id::EventId;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let lines = std::env::var("AUDIT_LINES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(200_000);
    let facts = Facts {
        route_id: Some("orders.get".into()),
        audience: Some("https://api.example.com".into()),
        issuer: Some("https://issuer.example.com".into()),
        subject: Some("spiffe://example.com/ns/default/sa/orders-client".into()),
        trust_domain: Some("example.com".into()),
        jti: Some("jti-7f3c2a9e-1b4d-4c8e-9a6f-2d5e8b1c0a47".into()),
        key_binding: Some("software".into()),
        required_key_binding: Some("software".into()),
        transcript_sha256: Some("ab".repeat(32)),
        allow_detail: Some("verified"),
        ..Facts::default()
    };
    let id = EventId::from_bytes([0x5a; 16]);
    let start = Instant::now();
    let mut total = 0usize;
    for i in 0..lines {
        let line = audit::line(
            None,
            black_box(&facts),
            &id,
            Some("6f1c2b9e-0d4a-4e7b-8c3f-9a2d1e5b7c60"),
            Some("2026-11-28.1"),
            1_764_000_000 + i as i64,
        );
        total += line.len();
    }
    let ns = start.elapsed().as_nanos() as f64 / lines as f64;
    println!(
        "audit: {lines} allow lines, {ns:.0} ns per line, {} bytes per line",
        total / lines
    );
}
