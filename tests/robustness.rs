//! Hostile input never panics and never turns into an allow: thousands of seeded random
//! mutations of a valid signed request (token bytes, proof headers, header-map wire bytes,
//! queries) must each be denied with some reason, and the untouched request must still pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::headers;
use proofgate::query;
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::verify::{Engine, HeadersVerdict};

/// xorshift64*: deterministic, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out.remove(i);
            }
            2 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            3 if !out.is_empty() => {
                out.truncate(rng.below(out.len()));
            }
            _ => {
                let i = rng.below(out.len() + 1);
                let junk: &[u8] = [
                    &b"%"[..],
                    b"=",
                    b"&",
                    b".",
                    b"\0",
                    b"\xff",
                    b" ",
                    b"{",
                    b"\"",
                    b"\n",
                ][rng.below(10)];
                out.splice(i..i, junk.iter().copied());
            }
        }
    }
    out
}

fn decide(engine: &Engine, store: &mut MemoryStore, view: &RequestView, body: &[u8]) -> bool {
    match engine.check_headers(view, NOW) {
        HeadersVerdict::NeedBody(p) => engine.check_body(*p, body, store, NOW).is_ok(),
        HeadersVerdict::Exempt(_) => true,
        HeadersVerdict::Deny(_) => false,
        // Inline keys only: nothing is ever held.
        HeadersVerdict::AwaitKeys(_) => false,
    }
}

#[test]
fn mutated_requests_are_all_denied() {
    let engine = Engine::new(config(&config_json()), NOW - 10);
    let req = Req::post_order();
    let signed = req.sign(&claims(), &["content-type", "x-trustplane-nonce"]);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let targets = [
        "authorization",
        "x-trustplane-proof",
        "x-trustplane-transcript-sha256",
        "x-trustplane-body-sha256",
        "x-trustplane-nonce",
        "content-type",
    ];
    for round in 0..4000 {
        let target = targets[round % targets.len()];
        let mut headers: Vec<(String, Vec<u8>)> = signed
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect();
        let slot = headers.iter_mut().find(|(n, _)| n == target).unwrap();
        let mutated = mutate(&mut rng, &slot.1);
        // transcript-v1 signs trimmed header values: surrounding whitespace is not a change.
        if mutated.trim_ascii() == slot.1.trim_ascii()
            && matches!(target, "content-type" | "x-trustplane-nonce")
        {
            continue;
        }
        if mutated == slot.1 {
            continue;
        }
        slot.1 = mutated;
        let mut pairs = vec![
            (":method".to_string(), b"POST".to_vec()),
            (":scheme".to_string(), b"https".to_vec()),
            (":authority".to_string(), b"orders.example".to_vec()),
            (":path".to_string(), req.path.as_bytes().to_vec()),
        ];
        pairs.extend(headers);
        // A fresh store each time: a mutation must be refused on its own merits, not as a replay.
        let allowed = decide(
            &engine,
            &mut MemoryStore::default(),
            &RequestView::new(pairs),
            &req.body,
        );
        assert!(
            !allowed,
            "round {round}: a mutation of {target} was allowed"
        );
    }
    assert!(decide(
        &engine,
        &mut MemoryStore::default(),
        &req.view(&signed),
        &req.body
    ));
}

#[test]
fn mutated_bodies_and_paths_are_denied() {
    let engine = Engine::new(config(&config_json()), NOW - 10);
    let req = Req::post_order();
    let signed = req.sign(&claims(), &["content-type", "x-trustplane-nonce"]);
    let mut rng = Rng(0x0bad_cafe_0000_0002);
    for round in 0..1500 {
        let body = mutate(&mut rng, &req.body);
        let path = String::from_utf8_lossy(&mutate(&mut rng, req.path.as_bytes())).into_owned();
        if body == req.body && path == req.path {
            continue;
        }
        let mut tampered = Req::post_order();
        tampered.path = path;
        let allowed = decide(
            &engine,
            &mut MemoryStore::default(),
            &tampered.view(&signed),
            &body,
        );
        assert!(
            !allowed,
            "round {round}: path {:?} / body {:?} allowed",
            tampered.path,
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn header_map_decoder_and_query_normaliser_never_panic() {
    let valid = headers::encode_map(&[
        (":path", b"/v1/orders?a=1"),
        ("authorization", b"Bearer x.y.z"),
    ]);
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let bytes = mutate(&mut rng, &valid);
        if let Some(map) = headers::decode_map(&bytes) {
            // Whatever decodes must re-encode to exactly the bytes it came from.
            let pairs: Vec<(&str, &[u8])> = map
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            assert_eq!(headers::decode_map(&headers::encode_map(&pairs)), Some(map));
        }
        let q = mutate(&mut rng, b"b=2&a=%41&c=%e2%82%ac");
        if let Ok(text) = std::str::from_utf8(&q) {
            let _ = query::normalize(text);
        }
    }
}
