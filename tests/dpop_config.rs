//! A JWT provider's DPoP settings (DESIGN.md section 14) through the whole configuration: their
//! defaults, and every refusal with the JSON path of the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::config::Config;
use proofgate::dpop::{Alg, Mode, Settings};
use serde_json::{json, Value};

fn config(dpop: Value) -> Value {
    let mut provider = json!({"name": "trustline", "issuer": "https://auth.internal",
        "keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                  "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    for (k, v) in dpop.as_object().unwrap() {
        provider[k] = v.clone();
    }
    json!({
        "jwt_providers": [provider],
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "trustline"}}]
    })
}

fn settings(dpop: Value) -> Settings {
    Config::parse(config(dpop).to_string().as_bytes())
        .unwrap()
        .jwt_providers[0]
        .dpop
        .clone()
}

fn refused(dpop: Value) -> String {
    let e = Config::parse(config(dpop).to_string().as_bytes()).unwrap_err();
    format!("{}: {}", e.path, e.message)
}

#[test]
fn dpop_is_off_by_default_and_takes_every_setting() {
    assert_eq!(settings(json!({})), Settings::default());
    assert_eq!(settings(json!({})).mode, Mode::Disabled);
    assert_eq!(
        settings(
            json!({"dpop": "allowed", "dpop_algorithms": ["ES256", "RS256"],
                        "dpop_max_age_seconds": 30, "dpop_nonce": {"rotate_seconds": 120}})
        ),
        Settings {
            mode: Mode::Allowed,
            algorithms: vec![Alg::ES256, Alg::RS256],
            max_age_seconds: 30,
            nonce_rotate_seconds: Some(120),
        }
    );
}

#[test]
fn refusals_name_the_provider_path() {
    for (dpop, want) in [
        (json!({"dpop": "on"}), "$.jwt_providers[0].dpop: must be \"disabled\", \"allowed\" or \"required\", not \"on\""),
        (json!({"dpop": "required", "dpop_algorithms": ["HS256"]}), "$.jwt_providers[0].dpop_algorithms[0]: unsupported DPoP proof algorithm \"HS256\" (supported: EdDSA, ES256, RS256)"),
        (json!({"dpop": "required", "dpop_nonce": {"rotate_seconds": 0}}), "$.jwt_providers[0].dpop_nonce.rotate_seconds: must be an integer from 1 to 86400"),
        (json!({"dpop_max_age_seconds": 10}), "$.jwt_providers[0].dpop_max_age_seconds: only allowed with \"dpop\": \"allowed\" or \"required\""),
        (json!({"dpop": "required", "dpop_typo": 1}), "$.jwt_providers[0].dpop_typo: unknown key (allowed: name, issuer, audiences, keys, jwks, algorithms, from_headers, required_scopes, env, clock_skew_seconds, max_lifetime_seconds, claim_to_headers, forward, cache, dpop, dpop_algorithms, dpop_max_age_seconds, dpop_nonce)"),
        (json!({"dpop": "required", "from_headers": [{"name": "x-token"}]}), "$.jwt_providers[0].from_headers: must include authorization when dpop is on (DPoP tokens come as \"Authorization: DPoP <token>\")"),
    ] {
        assert_eq!(refused(dpop.clone()), want, "{dpop}");
    }
}
