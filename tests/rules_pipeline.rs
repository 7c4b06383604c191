//! The pipeline with `rules` (DESIGN.md sections 11 and 13), natively: which checks each rule
//! runs, that a token's time is decided again at the decision, and what an allow carries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::json;

const TOKEN_ISS: &str = "https://auth.internal";

fn token_key() -> ed25519_compact::KeyPair {
    key_from_seed(77)
}

fn engine() -> Engine {
    let mut cfg = config_json();
    cfg["jwt_providers"] = json!([{
        "name": "trustline", "issuer": TOKEN_ISS,
        "keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "t1", "x": pub_b64(&token_key())}],
        "required_scopes": ["read"],
        "claim_to_headers": [{"claim": "sub", "header": "x-client"}],
        "clock_skew_seconds": 0
    }]);
    cfg["rules"] = json!([
        {"match": {"prefix": "/open"}, "requires": "allow"},
        {"match": {"prefix": "/tok"}, "requires": {"provider": "trustline"}},
        {"match": {"prefix": "/"}, "requires": {"any": ["passport", {"provider": "trustline"}]}}
    ]);
    Engine::new(config(&cfg), NOW - 10)
}

fn token(exp: i64) -> String {
    sign_jws(
        &json!({"alg": "EdDSA", "kid": "t1"}),
        &json!({"iss": TOKEN_ISS, "sub": "svc-a", "scope": "read", "jti": "j1", "exp": exp, "iat": NOW - 5}),
        &token_key(),
    )
}

fn get(path: &str, auth: Option<&str>) -> RequestView {
    let mut h: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.example".to_vec()),
        (":scheme".into(), b"https".to_vec()),
    ];
    if let Some(a) = auth {
        h.push(("authorization".into(), a.as_bytes().to_vec()));
    }
    RequestView::new(h)
}

fn reason(v: HeadersVerdict) -> Reason {
    match v {
        HeadersVerdict::Deny(d) => d.reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn each_rule_runs_its_own_checks() {
    let e = engine();
    match e.check_headers(&get("/open/x", None), NOW) {
        HeadersVerdict::Exempt(f) => {
            assert_eq!(f.allow_detail, Some("rule_allow"));
            assert_eq!(f.route_id.as_deref(), Some("rules[0]"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reason(e.check_headers(&get("/tok", None), NOW)),
        Reason::MissingToken
    );
    // A passport on a provider-only route is checked as that provider's token and refused.
    let passport = format!("Bearer {}", passport(&claims()));
    assert_eq!(
        reason(e.check_headers(&get("/tok", Some(&passport)), NOW)),
        Reason::UnknownSigningKey
    );
    // The catch-all any: no credential is the passport's missing reason; an unknown issuer is
    // issuer_mismatch; a token of the provider takes the provider path.
    assert_eq!(
        reason(e.check_headers(&get("/v1/orders/1", None), NOW)),
        Reason::MissingPassport
    );
    let stranger = sign_jws(
        &json!({"alg": "EdDSA", "kid": "t1"}),
        &json!({"iss": "https://stranger", "exp": NOW + 60}),
        &token_key(),
    );
    assert_eq!(
        reason(e.check_headers(
            &get("/v1/orders/1", Some(&format!("Bearer {stranger}"))),
            NOW
        )),
        Reason::IssuerMismatch
    );
    let t = format!("Bearer {}", token(NOW + 60));
    assert!(matches!(
        e.check_headers(&get("/v1/orders/1", Some(&t)), NOW),
        HeadersVerdict::NeedBody(_)
    ));
    // Ambiguous paths match no rule at all.
    assert_eq!(
        reason(e.check_headers(&get("/open/..%2Fadmin", None), NOW)),
        Reason::BundleRouteMissing
    );
}

#[test]
fn a_token_is_decided_again_at_the_decision() {
    let e = engine();
    let t = format!("Bearer {}", token(NOW + 60));
    let HeadersVerdict::NeedBody(pending) = e.check_headers(&get("/tok/a", Some(&t)), NOW) else {
        panic!("token refused on the headers");
    };
    let mut store = MemoryStore::default();
    // Allowed while valid, with its facts.
    let admitted = e
        .check_body((*pending).clone(), b"", &mut store, NOW + 59)
        .unwrap();
    let f = admitted.facts;
    assert_eq!(f.provider.as_deref(), Some("trustline"));
    assert_eq!(f.subject.as_deref(), Some("svc-a"));
    assert_eq!(f.issuer.as_deref(), Some(TOKEN_ISS));
    assert_eq!(f.scopes.as_deref(), Some("read"));
    assert_eq!(
        f.claim_headers,
        vec![("x-client".to_string(), "svc-a".to_string())]
    );
    assert_eq!(f.strip_headers, vec!["authorization".to_string()]);
    // A body that completes after exp (+ skew 0) is token_expired, not an allow.
    let late = e
        .check_body(*pending, b"", &mut store, NOW + 60)
        .unwrap_err();
    assert_eq!(late.reason, Reason::TokenExpired);
}

#[test]
fn insufficient_scope_carries_its_challenge() {
    let e = engine();
    let t = sign_jws(
        &json!({"alg": "EdDSA", "kid": "t1"}),
        &json!({"iss": TOKEN_ISS, "scope": "write", "exp": NOW + 60}),
        &token_key(),
    );
    let HeadersVerdict::Deny(d) = e.check_headers(&get("/tok", Some(&format!("Bearer {t}"))), NOW)
    else {
        panic!("allowed");
    };
    assert_eq!(d.reason, Reason::InsufficientScope);
    assert_eq!(
        d.challenges,
        Some(vec![
            "Bearer realm=\"proofgate\", error=\"insufficient_scope\", scope=\"read\"".to_string()
        ])
    );
}
