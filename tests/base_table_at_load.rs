//! The base point's table (radix 1024, ~20 ms to build in V8) is built at configuration load when
//! a key may get a table after it (a DPoP client's EdDSA key, a fetched JWKS's Ed25519 keys), and
//! not for a configuration no Ed25519 key can reach. Its own test binary: the table is one per
//! process, and no other test may have built it first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::config::Config;
use proofgate::crypto::basepoint_table_built;
use serde_json::{json, Value};

/// A provider with one inline HS256 key and nothing else: no Ed25519 key at load.
fn config(provider: Value) -> Vec<u8> {
    let mut p = json!({"name": "hmac", "issuer": "https://auth.internal", "algorithms": ["HS256"],
        "keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]});
    for (k, v) in provider.as_object().unwrap() {
        p[k] = v.clone();
    }
    json!({"jwt_providers": [p],
           "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "hmac"}}]})
    .to_string()
    .into_bytes()
}

#[test]
fn the_base_table_is_built_at_load_only_when_a_key_may_need_it() {
    // One test, in order: the first two loads must leave the table unbuilt for the third to show
    // anything.
    Config::parse(&config(json!({}))).unwrap();
    assert!(!basepoint_table_built(), "an HS256-only configuration");
    Config::parse(&config(
        json!({"dpop": "allowed", "dpop_algorithms": ["ES256", "RS256"]}),
    ))
    .unwrap();
    assert!(!basepoint_table_built(), "DPoP without EdDSA proofs");
    Config::parse(&config(json!({"dpop": "allowed"}))).unwrap();
    assert!(
        basepoint_table_built(),
        "DPoP with EdDSA proofs (the default algorithms)"
    );
}
