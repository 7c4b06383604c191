//! The split between the headers and the decision (DESIGN.md section 7): the request proof is
//! verified on the headers (issue 7 item 8), only the body hash waits for the body, and what can
//! change while the body arrives (the passport's validity, the bundle's freshness) is decided
//! again at the `now` of the decision (issue 7 item 1). What a waiting request keeps is small.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::verify::{Engine, HeadersVerdict, Pending};
use serde_json::{json, Value};

const SIGNED: [&str; 3] = ["accept", "content-type", "x-trustplane-nonce"];
/// `clock_skew_seconds` in these tests.
const SKEW: i64 = 2;

fn engine(cfg: &Value) -> Engine {
    Engine::new(config(cfg), NOW - 10)
}

fn cfg_with_skew() -> Value {
    let mut cfg = config_json();
    cfg["clock_skew_seconds"] = json!(SKEW);
    cfg
}

fn claims_expiring(exp: i64, jti: &str) -> Value {
    let mut c = claims();
    c["exp"] = json!(exp);
    c["jti"] = json!(jti);
    c
}

fn headers_verdict(e: &Engine, r: &Req, h: &[(String, String)], now: i64) -> HeadersVerdict {
    e.check_headers(&r.view(h), now)
}

fn pending(e: &Engine, r: &Req, h: &[(String, String)], now: i64) -> Pending {
    match headers_verdict(e, r, h, now) {
        HeadersVerdict::NeedBody(p) => *p,
        other => panic!("expected the headers to pass, got {other:?}"),
    }
}

fn denied_on_headers(e: &Engine, r: &Req, h: &[(String, String)]) -> Reason {
    match headers_verdict(e, r, h, NOW) {
        HeadersVerdict::Deny(d) => d.reason,
        other => panic!("expected a denial on the headers, got {other:?}"),
    }
}

#[test]
fn a_passport_without_the_callers_key_is_refused_on_the_headers() {
    let e = engine(&config_json());
    let r = Req::post_order();
    let good = r.sign(&claims(), &SIGNED);

    // A stolen passport with a proof made by another key: refused before any body.
    let mut h = good.clone();
    let other = key_from_seed(9).sk.sign([0u8; 32], None);
    set_header(
        &mut h,
        "x-trustplane-proof",
        &proofgate::b64::encode(&other[..]),
    );
    assert_eq!(denied_on_headers(&e, &r, &h), Reason::InvalidRequestProof);

    // The passport alone, no proof headers at all.
    let mut h = good.clone();
    for name in [
        "x-trustplane-proof",
        "x-trustplane-transcript-sha256",
        "x-trustplane-body-sha256",
    ] {
        h = without(&h, name);
    }
    assert_eq!(denied_on_headers(&e, &r, &h), Reason::MissingRequestProof);

    // A valid proof over another request (the path changed after signing): the rebuilt
    // transcript, with the claimed body hash, differs.
    let mut moved = Req::post_order();
    moved.path = "/v1/orders?b=2&a=2".into();
    assert_eq!(
        denied_on_headers(&e, &moved, &good),
        Reason::RequestBindingMismatch
    );

    // A body hash header no body can match is refused now, not after buffering.
    let mut h = good.clone();
    set_header(&mut h, "x-trustplane-body-sha256", &"A".repeat(64));
    assert_eq!(
        denied_on_headers(&e, &r, &h),
        Reason::RequestBindingMismatch
    );
    let mut h = good;
    set_header(&mut h, "x-trustplane-body-sha256", "not-hex");
    assert_eq!(
        denied_on_headers(&e, &r, &h),
        Reason::RequestBindingMismatch
    );
}

#[test]
fn only_the_body_hash_waits_for_the_body() {
    let e = engine(&config_json());
    let r = Req::post_order();
    let h = r.sign(&claims(), &SIGNED);
    let p = pending(&e, &r, &h, NOW);
    let digest = h
        .iter()
        .find(|(n, _)| n == "x-trustplane-transcript-sha256")
        .map(|(_, v)| v.clone());
    assert_eq!(p.facts.transcript_sha256, digest, "verified on the headers");
    let mut store = MemoryStore::default();
    let denial = e
        .check_body(p.clone(), b"{\"order_id\":\"other\"}", &mut store, NOW)
        .unwrap_err();
    assert_eq!(denial.reason, Reason::RequestBindingMismatch);
    let admitted = e.check_body(p, &r.body, &mut store, NOW).unwrap();
    assert_eq!(admitted.facts.route_id.as_deref(), Some("orders.create"));
}

#[test]
fn the_passport_must_still_be_valid_at_the_decision() {
    let e = engine(&cfg_with_skew());
    let r = Req::get_order();
    let exp = NOW + 5;
    let h = r.sign(&claims_expiring(exp, "jti-late-body"), &SIGNED);
    let p = pending(&e, &r, &h, NOW);

    // The last second the passport is valid, and the first it is not.
    let mut store = MemoryStore::default();
    let late = e
        .check_body(p.clone(), &[], &mut MemoryStore::default(), exp + SKEW)
        .unwrap_err();
    assert_eq!(late.reason, Reason::PassportExpired);
    assert!(e.check_body(p, &[], &mut store, exp + SKEW - 1).is_ok());
}

#[test]
fn a_replay_finished_after_expiry_is_expired_not_allowed() {
    // issue 7 item 1: the first use's replay entry lives until exp + skew; a copy whose headers
    // arrive before that and whose body completes after it must not find an empty store and win.
    let e = engine(&cfg_with_skew());
    let r = Req::get_order();
    let exp = NOW + 5;
    let h = r.sign(&claims_expiring(exp, "jti-replayed-late"), &SIGNED);
    let mut store = MemoryStore::default();
    let first = pending(&e, &r, &h, NOW);
    assert!(e.check_body(first, &[], &mut store, NOW).is_ok());

    let copy = pending(&e, &r, &h, exp + SKEW - 1);
    let denial = e
        .check_body(copy, &[], &mut store, exp + SKEW + 2)
        .unwrap_err();
    assert_eq!(denial.reason, Reason::PassportExpired);
}

#[test]
fn bundle_freshness_is_decided_again() {
    let mut cfg = config_json();
    cfg["realtime_window_seconds"] = json!(5);
    cfg["policy_bundle"]["route_groups"][0]["routes"][1]["freshness_class"] = json!("realtime");
    let mut e = engine(&cfg);
    e.loaded_at = NOW - 5;
    let r = Req::get_order();
    let h = r.sign(&claims(), &SIGNED);
    let p = pending(&e, &r, &h, NOW);
    assert_eq!(p.fresh_until, Some(NOW));
    let stale = e
        .check_body(p.clone(), &[], &mut MemoryStore::default(), NOW + 1)
        .unwrap_err();
    assert_eq!(stale.reason, Reason::StaleBundleFailClosed);
    assert!(e
        .check_body(p, &[], &mut MemoryStore::default(), NOW)
        .is_ok());
}

#[test]
fn a_waiting_request_keeps_no_header_map() {
    // issue 8 item 1: a request parked for its body keeps what the decision needs, not the
    // 40 KB of headers it arrived with.
    let e = engine(&config_json());
    let mut r = Req::post_order();
    r.headers.push(("x-padding".into(), "p".repeat(40_000)));
    let h = r.sign(&claims(), &SIGNED);
    let p = pending(&e, &r, &h, NOW);
    let kept = format!("{p:?}");
    assert!(kept.len() < 2_000, "{} bytes kept: {kept}", kept.len());
    assert!(!kept.contains("ppppp"));
    assert!(!kept.contains("Bearer"));
    assert_eq!(
        p.replay.as_ref().map(|k| k.jti.as_str()),
        Some("jti-test-0001")
    );
}
