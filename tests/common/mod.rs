//! Test-only helpers: a TEST-ONLY Ed25519 key, passport and proof signing, request building.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_compact::{KeyPair, Seed};
use proofgate::b64;
use proofgate::config::Config;
use proofgate::jwks::{Hold, Waiter};
use proofgate::query;
use proofgate::reason::Reason;
use proofgate::request::RequestView;
use proofgate::transcript::{self, TranscriptInput};
use proofgate::verify::HeadersVerdict;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.example/external-jwks";
pub const KID: &str = "demo-caller-1";
pub const SUBJECT: &str = "external:jwks:demo-caller";
pub const TRUST_DOMAIN: &str = "example.external";
pub const NOW: i64 = 1_750_000_100;

pub fn vector(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The TEST-ONLY key with seed 00..1f.
pub fn demo_key() -> KeyPair {
    key_from_seed(0)
}

pub fn key_from_seed(first: u8) -> KeyPair {
    let seed: Vec<u8> = (0..32u8).map(|i| i.wrapping_add(first)).collect();
    KeyPair::from_seed(Seed::from_slice(&seed).unwrap())
}

pub fn pub_b64(k: &KeyPair) -> String {
    b64::encode(&k.pk[..])
}

pub fn bundle() -> Value {
    let source = json!([{
        "source_type": "software_jwks",
        "issuer": ISSUER,
        "trust_domain": TRUST_DOMAIN,
        "subject_exact": SUBJECT,
        "required_key_binding": "software"
    }]);
    json!({
        "version": "trustplane-bundle-v1",
        "apis": [{"api_id": "orders-api", "audience": "orders-api"}],
        "route_groups": [{
            "route_group_id": "orders",
            "api_id": "orders-api",
            "routes": [
                {"route_id": "orders.create", "method": "POST", "path_template": "/v1/orders", "allowed_sources": source, "freshness_class": "offline-ok"},
                {"route_id": "orders.get", "method": "GET", "path_template": "/v1/orders/{order_id}", "allowed_sources": source, "freshness_class": "offline-ok"},
                {"route_id": "orders.search", "method": "GET", "path_template": "/v1/orders/search", "allowed_sources": source, "freshness_class": "offline-ok"}
            ]
        }],
        "default_required_key_binding": "software"
    })
}

pub fn config_json() -> Value {
    json!({
        "audience": "orders-api",
        "trust_material": {"issuers": [{
            "issuer": ISSUER,
            "trust_domain": TRUST_DOMAIN,
            "keys": [{"kid": KID, "alg": "EdDSA", "public_key_b64url": pub_b64(&demo_key())}]
        }]},
        "policy_bundle": bundle(),
        "routing": {"mode": "request"},
        "signed_headers": ["content-type", "accept", "x-trustplane-nonce"],
        "transcript_scheme": "https",
        "allow_unauthenticated": [{"method": "GET", "path_prefix": "/healthz"}],
        "max_body_bytes": 4096
    })
}

pub fn config(v: &Value) -> Config {
    Config::parse(v.to_string().as_bytes()).unwrap()
}

pub fn claims() -> Value {
    let k = pub_b64(&demo_key());
    json!({
        "iss": ISSUER, "sub": SUBJECT, "aud": "orders-api",
        "iat": NOW - 100, "exp": NOW + 500, "jti": "jti-test-0001",
        "trust_domain": TRUST_DOMAIN,
        "cnf": {"kid": k, "public_key_b64url": k, "key_binding": "software"}
    })
}

pub fn sign_jws(header: &Value, claims: &Value, key: &KeyPair) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = key.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64::encode(&sig[..]))
}

pub fn passport(claims: &Value) -> String {
    sign_jws(
        &json!({"alg": "EdDSA", "kid": KID, "typ": "JWT"}),
        claims,
        &demo_key(),
    )
}

/// A request to sign: method, authority, path with query, headers, body.
pub struct Req {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub route_id: String,
    pub nonce: String,
}

impl Req {
    pub fn post_order() -> Req {
        Req {
            method: "POST".into(),
            authority: "orders.example".into(),
            path: "/v1/orders?b=2&a=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"order_id":"ord_123","amount":"42.00"}"#.to_vec(),
            route_id: "orders.create".into(),
            nonce: "nonce-test-0001".into(),
        }
    }

    pub fn get_order() -> Req {
        Req {
            method: "GET".into(),
            authority: "orders.example".into(),
            path: "/v1/orders/123".into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: vec![],
            route_id: "orders.get".into(),
            nonce: "nonce-test-0002".into(),
        }
    }

    /// Signs like the SDK: passport + proof over the transcript of exactly this request, with
    /// `signed` as the allow list.
    pub fn sign(&self, claims: &Value, signed: &[&str]) -> Vec<(String, String)> {
        let token = passport(claims);
        let (path, q) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let normalized = query::normalize(q).unwrap();
        let mut all = self.headers.clone();
        all.push(("x-trustplane-nonce".into(), self.nonce.clone()));
        let mut allow: Vec<&str> = signed.to_vec();
        allow.sort();
        let selected: Vec<(&str, &[u8])> = allow
            .iter()
            .filter_map(|n| {
                all.iter()
                    .find(|(h, _)| h == n)
                    .map(|(_, v)| (*n, v.as_bytes()))
            })
            .collect();
        let body_hex = transcript::sha256_hex(&self.body);
        let input = TranscriptInput {
            method: &self.method,
            scheme: "https",
            authority: &self.authority,
            path,
            audience: claims["aud"]
                .as_str()
                .or(claims["aud"][0].as_str())
                .unwrap_or(""),
            route_id: &self.route_id,
            content_encoding: "",
            normalized_query: &normalized,
            selected_headers: &selected,
            body_sha256_hex: &body_hex,
            passport_jti: claims["jti"].as_str().unwrap_or(""),
            nonce: &self.nonce,
            issued_at: claims["iat"].as_i64().unwrap_or(0),
            key_binding: claims["cnf"]["key_binding"].as_str().unwrap_or(""),
        };
        let digest = transcript::digest(&input);
        let proof = demo_key().sk.sign(digest, None);
        let mut out = all;
        out.push(("authorization".into(), format!("Bearer {token}")));
        out.push((
            "x-trustplane-transcript-sha256".into(),
            transcript::hex_lower(&digest),
        ));
        out.push(("x-trustplane-proof".into(), b64::encode(&proof[..])));
        out.push(("x-trustplane-body-sha256".into(), body_hex));
        out
    }

    pub fn view(&self, headers: &[(String, String)]) -> RequestView {
        let mut pairs = vec![
            (":method".to_string(), self.method.as_bytes().to_vec()),
            (":scheme".to_string(), b"http".to_vec()),
            (":authority".to_string(), self.authority.as_bytes().to_vec()),
            (":path".to_string(), self.path.as_bytes().to_vec()),
        ];
        pairs.extend(
            headers
                .iter()
                .map(|(n, v)| (n.clone(), v.as_bytes().to_vec())),
        );
        RequestView::new(pairs)
    }
}

pub fn set_header(headers: &mut [(String, String)], name: &str, value: &str) {
    for (n, v) in headers.iter_mut() {
        if n == name {
            *v = value.to_string();
        }
    }
}

pub fn without(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers.iter().filter(|(n, _)| n != name).cloned().collect()
}

/// The reason of a denial, `None` for any other verdict.
pub fn deny_reason(v: &HeadersVerdict) -> Option<Reason> {
    match v {
        HeadersVerdict::Deny(d) => Some(d.reason),
        _ => None,
    }
}

/// The hold of a verdict that must be one (keys not there yet).
pub fn hold(v: HeadersVerdict) -> Hold {
    match v {
        HeadersVerdict::AwaitKeys(h) => h,
        other => panic!("expected a hold, got {other:?}"),
    }
}

/// Request `id` held at `now` (Unix seconds), as the shell holds it.
pub fn held(id: u32, h: Hold, now: i64) -> Waiter {
    Waiter::new(id, &h, now * 1000)
}

/// A configuration with one JWT provider holding one inline HS256 key and nothing else (no
/// Ed25519 key at load), with `overrides` merged into the provider (a `null` removes a member).
pub fn hmac_provider_config(overrides: Value) -> Vec<u8> {
    let mut p = json!({"name": "hmac", "issuer": "https://auth.internal", "algorithms": ["HS256"],
        "keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]});
    for (k, v) in overrides.as_object().unwrap() {
        match v {
            Value::Null => drop(p.as_object_mut().unwrap().remove(k)),
            _ => p[k] = v.clone(),
        }
    }
    json!({"jwt_providers": [p],
           "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "hmac"}}]})
    .to_string()
    .into_bytes()
}
