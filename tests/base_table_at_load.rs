//! The base point's table (radix 1024, ~20 ms to build in V8) is built at configuration load when
//! a DPoP client's EdDSA key may get a table after it, and not for a configuration no Ed25519 key
//! can reach. Its own test binary (`base_table_at_load_jwks.rs` has the JWKS case): the table is
//! one per process, and no other test may have built it first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hmac_provider_config as config;
use proofgate::config::Config;
use proofgate::crypto::basepoint_table_built;
use serde_json::json;

#[test]
fn the_base_table_is_built_at_load_for_dpop_with_eddsa_proofs_only() {
    // One test, in order: the first loads must leave the table unbuilt for the last to show
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
