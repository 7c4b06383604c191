//! Issue 7 item 3: only verified, clean values become the `issuer` / `subject` / `jti` facts that
//! reach audit events, filter state and identity headers. A passport refused before its
//! signature verified leaves those facts empty; what it claimed goes only to the audit event's
//! `unverified_*` fields, escaped and bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::audit;
use proofgate::b64;
use proofgate::decision::{Denial, Facts};
use proofgate::event_id::EventId;
use proofgate::reason::Reason;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::{json, Value};

const SIGNED: [&str; 3] = ["accept", "content-type", "x-trustplane-nonce"];
const FORGED_SUB: &str = "admin\nINJECTED 200 allow subject=root";

fn engine() -> Engine {
    let mut cfg = config_json();
    cfg["policy_bundle"]["revocations"] = json!([{"jti": "jti-revoked"}]);
    Engine::new(config(&cfg), NOW - 10)
}

fn denial_for(e: &Engine, headers: &[(String, String)]) -> Denial {
    match e.check_headers(&Req::get_order().view(headers), NOW) {
        HeadersVerdict::Deny(d) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The signed GET with its passport replaced by `token`.
fn with_token(token: &str) -> Vec<(String, String)> {
    let mut h = Req::get_order().sign(&claims(), &SIGNED);
    set_header(&mut h, "authorization", &format!("Bearer {token}"));
    h
}

fn zero_signed(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes()),
        b64::encode(&[0u8; 64])
    )
}

fn audit_json(d: &Denial) -> (String, Value) {
    let line = audit::line(
        Some(d.reason),
        &d.facts,
        &EventId::from_bytes([3; 16]),
        None,
        None,
        NOW,
    );
    let v = serde_json::from_str(line.strip_prefix(audit::LOG_PREFIX).unwrap()).unwrap();
    (line, v)
}

fn no_identity(f: &Facts) {
    assert_eq!(
        (&f.issuer, &f.subject, &f.jti),
        (&None, &None, &None),
        "{f:?}"
    );
}

#[test]
fn a_zero_signature_leaves_only_escaped_unverified_fields() {
    let e = engine();
    let mut c = claims();
    c["sub"] = json!(FORGED_SUB);
    c["jti"] = json!("jti\u{2028}x");
    let token = zero_signed(&json!({"alg": "EdDSA", "kid": KID, "typ": "JWT"}), &c);
    let d = denial_for(&e, &with_token(&token));
    assert_eq!(d.reason, Reason::InvalidPassportSignature);
    no_identity(&d.facts);
    assert_eq!(
        d.facts.unverified.subject.as_deref(),
        Some("admin\\x0aINJECTED\\x20200\\x20allow\\x20subject=root")
    );
    assert_eq!(d.facts.unverified.jti.as_deref(), Some("jti\\u{2028}x"));
    assert_eq!(d.facts.unverified.issuer.as_deref(), Some(ISSUER));

    let (line, v) = audit_json(&d);
    assert!(!line.contains('\n') && !line.contains('\u{2028}'), "{line}");
    for field in ["issuer", "subject", "jti"] {
        assert!(v.get(field).is_none(), "{field} in {v}");
    }
    assert_eq!(
        v["unverified_subject"],
        "admin\\x0aINJECTED\\x20200\\x20allow\\x20subject=root"
    );
}

#[test]
fn an_unknown_key_leaves_the_facts_empty_and_bounds_what_it_claimed() {
    let e = engine();
    let mut c = claims();
    c["sub"] = json!("s".repeat(10_000));
    let token = sign_jws(
        &json!({"alg": "EdDSA", "kid": "nobody", "typ": "JWT"}),
        &c,
        &demo_key(),
    );
    let d = denial_for(&e, &with_token(&token));
    assert_eq!(d.reason, Reason::UnknownSigningKey);
    no_identity(&d.facts);
    assert_eq!(
        d.facts.unverified.subject,
        Some(format!("{}...", "s".repeat(64)))
    );
}

#[test]
fn after_the_signature_the_claims_are_facts_if_clean() {
    let e = engine();
    // Revoked: signature verified, claims not yet validated; clean values are facts.
    let mut c = claims();
    c["jti"] = json!("jti-revoked");
    let d = denial_for(&e, &with_token(&passport(&c)));
    assert_eq!(d.reason, Reason::Revoked);
    assert_eq!(d.facts.subject.as_deref(), Some(SUBJECT));
    assert_eq!(d.facts.jti.as_deref(), Some("jti-revoked"));
    assert_eq!(d.facts.unverified, Default::default());

    // A signed subject with a line break is an invalid claim, and not a fact either.
    let mut c = claims();
    c["sub"] = json!(FORGED_SUB);
    let d = denial_for(&e, &with_token(&passport(&c)));
    assert_eq!(d.reason, Reason::InvalidPassportClaims);
    assert_eq!(d.facts.subject, None);
    assert_eq!(d.facts.issuer.as_deref(), Some(ISSUER));
    let (line, v) = audit_json(&d);
    assert!(!line.contains("INJECTED"), "{line}");
    assert!(v.get("unverified_subject").is_none());
}
