//! The base point's table is built at configuration load for a provider whose fetched JWKS may
//! bring Ed25519 keys (EdDSA among its algorithms), and not for one that takes only ES256. Its own
//! test binary, as `base_table_at_load.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::hmac_provider_config as config;
use proofgate::config::Config;
use proofgate::crypto::basepoint_table_built;
use serde_json::{json, Value};

fn remote(algorithms: Value) -> Value {
    json!({"algorithms": algorithms, "keys": null,
           "jwks": {"cluster": "auth", "uri": "http://127.0.0.1:9/jwks.json"}})
}

#[test]
fn the_base_table_is_built_at_load_for_a_jwks_that_may_bring_ed25519_keys_only() {
    Config::parse(&config(remote(json!(["ES256"])))).unwrap();
    assert!(
        !basepoint_table_built(),
        "a JWKS provider taking ES256 only"
    );
    Config::parse(&config(remote(json!(["EdDSA", "ES256"])))).unwrap();
    assert!(basepoint_table_built(), "a JWKS provider taking EdDSA");
}
