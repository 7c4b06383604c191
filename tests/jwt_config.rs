//! Configuration of `jwt_providers` and `rules` (DESIGN.md sections 11 and 13): every refusal
//! names the JSON path of the problem, and a config without `rules` behaves as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proofgate::b64;
use proofgate::config::Config;
use proofgate::rules::Requirement;
use serde_json::{json, Value};

const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn provider(name: &str, issuer: &str) -> Value {
    json!({"name": name, "issuer": issuer, "keys": [{"kty":"OKP","crv":"Ed25519","kid":"k1","x":ED_X}]})
}

fn base() -> Value {
    json!({
        "jwt_providers": [provider("trustline", "https://auth.internal"), provider("sentropic", "https://sentropic")],
        "rules": [
            {"match": {"prefix": "/healthz"}, "requires": "allow"},
            {"match": {"path_template": "/internal/{name}", "methods": ["GET", "POST"]},
             "requires": {"provider": "trustline", "scopes": ["read:orders"]}},
            {"match": {"prefix": "/"}, "requires": {"any": [{"provider": "trustline"}, {"provider": "sentropic"}]}}
        ]
    })
}

fn err(v: &Value) -> (String, String) {
    let e = Config::parse(v.to_string().as_bytes()).unwrap_err();
    (e.path, e.message)
}

fn set(mut v: Value, path: &[&str], value: Value) -> Value {
    let mut node = &mut v;
    for p in &path[..path.len() - 1] {
        node = match p.parse::<usize>() {
            Ok(i) => &mut node[i],
            Err(_) => &mut node[*p],
        };
    }
    let last = path[path.len() - 1];
    match last.parse::<usize>() {
        Ok(i) => node[i] = value,
        Err(_) => node[last] = value,
    }
    v
}

#[test]
fn providers_only_config_needs_no_trust_material_or_bundle() {
    let cfg = Config::parse(base().to_string().as_bytes()).unwrap();
    assert_eq!(cfg.jwt_providers.len(), 2);
    let rules = cfg.rules.unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(
        rules[1].requires,
        Requirement::Provider {
            provider: 0,
            scopes: vec!["read:orders".into()]
        }
    );
    let p = &cfg.jwt_providers[0];
    assert_eq!(p.from_headers[0].name, "authorization");
    assert_eq!(p.from_headers[0].value_prefix, "Bearer ");
    assert_eq!(p.claim_to_headers.len(), 4);
    assert_eq!(p.cache_max_entries, 4096);
    assert!(!p.forward);
}

#[test]
fn a_passport_rule_still_needs_trust_material() {
    let v = set(base(), &["rules", "2", "requires"], json!("passport"));
    assert_eq!(err(&v).0, "$.trust_material");
}

#[test]
fn without_rules_the_config_is_exactly_todays() {
    let cfg = common::config(&common::config_json());
    assert!(cfg.rules.is_none());
    assert!(cfg.jwt_providers.is_empty());
    let mut v = common::config_json();
    v.as_object_mut().unwrap().remove("trust_material");
    assert_eq!(err(&v).0, "$.trust_material");
}

#[test]
fn refusals_name_the_json_path() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            set(base(), &["jwt_providers", "1", "name"], json!("trustline")),
            "$.jwt_providers[1].name",
            "duplicate provider name",
        ),
        (
            set(base(), &["jwt_providers", "0", "algorithms"], json!([])),
            "$.jwt_providers[0].algorithms",
            "must not be empty",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "algorithms"],
                json!(["EdDSA", "none"]),
            ),
            "$.jwt_providers[0].algorithms[1]",
            "never accepted",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "algorithms"],
                json!(["EdDSA", "EdDSA"]),
            ),
            "$.jwt_providers[0].algorithms[1]",
            "duplicate",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "algorithms"],
                json!(["ES256"]),
            ),
            "$.jwt_providers[0].keys[0]",
            "fits only EdDSA",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "algorithms"],
                json!(["EdDSA", "HS256"]),
            ),
            "$.jwt_providers[0].algorithms",
            "HS256 needs an inline oct key",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([{"kty":"oct","k":b64::encode(&[1; 32])}]),
            ),
            "$.jwt_providers[0].keys[0]",
            "add \"HS256\"",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([{"kty":"oct","k":b64::encode(&[1; 16])}]),
            ),
            "$.jwt_providers[0].keys[0]",
            "under 256 bits",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([{"kty":"OKP","crv":"Ed25519","x":ED_X,"d":ED_X}]),
            ),
            "$.jwt_providers[0].keys[0]",
            "private",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([{"kty":"RSA","n":b64::encode(&[0xc5; 128]),"e":"AQAB"}]),
            ),
            "$.jwt_providers[0].keys[0]",
            "2048",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([{"kty":"OKP","crv":"Ed25519","x":&ED_X[..40]}]),
            ),
            "$.jwt_providers[0].keys[0]",
            "badly encoded",
        ),
        (
            set(base(), &["jwt_providers", "0", "keys"], json!([])),
            "$.jwt_providers[0].keys",
            "at least one",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "keys"],
                json!([
            {"kty":"OKP","crv":"Ed25519","kid":"a","x":ED_X},
            {"kty":"OKP","crv":"Ed25519","kid":"a","x":ED_X}]),
            ),
            "$.jwt_providers[0].keys[1].kid",
            "duplicate kid",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "jwks"],
                json!({"cluster": "auth"}),
            ),
            "$.jwt_providers[0].jwks",
            "not both",
        ),
        (
            set(base(), &["jwt_providers", "0", "typo"], json!(1)),
            "$.jwt_providers[0].typo",
            "unknown key",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "claim_to_headers"],
                json!([{"claim":"sub","header":"x-trustplane-subject"}]),
            ),
            "$.jwt_providers[0].claim_to_headers[0].header",
            "set or removed by proofgate",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "claim_to_headers"],
                json!([{"claim":"sub","header":"bad header"}]),
            ),
            "$.jwt_providers[0].claim_to_headers[0].header",
            "header name",
        ),
        (
            set(base(), &["jwt_providers", "0", "from_headers"], json!([])),
            "$.jwt_providers[0].from_headers",
            "must not be empty",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "required_scopes"],
                json!(["a b"]),
            ),
            "$.jwt_providers[0].required_scopes[0]",
            "whitespace",
        ),
        (
            set(
                base(),
                &["jwt_providers", "0", "cache"],
                json!({"max_entries": -1}),
            ),
            "$.jwt_providers[0].cache.max_entries",
            "integer",
        ),
        (
            set(
                base(),
                &["rules", "1", "requires", "provider"],
                json!("nobody"),
            ),
            "$.rules[1].requires.provider",
            "unknown provider",
        ),
        (
            set(base(), &["rules", "2", "match"], json!({"prefix": "/v1"})),
            "$.rules[2].match",
            "must match every request",
        ),
        (
            set(
                base(),
                &["rules", "2", "match"],
                json!({"prefix": "/", "methods": ["GET"]}),
            ),
            "$.rules[2].match",
            "must match every request",
        ),
        (
            set(base(), &["rules"], json!([])),
            "$.rules",
            "at least one rule",
        ),
        (
            set(
                base(),
                &["rules", "0", "match"],
                json!({"prefix": "/a", "path": "/b"}),
            ),
            "$.rules[0].match",
            "exactly one of",
        ),
        (
            set(base(), &["rules", "0", "match"], json!({"prefix": "a"})),
            "$.rules[0].match.prefix",
            "start with '/'",
        ),
        (
            set(base(), &["rules", "0", "match"], json!({"path": "/a?b"})),
            "$.rules[0].match.path",
            "before '?'",
        ),
        (
            set(base(), &["rules", "0", "match", "methods"], json!(["get"])),
            "$.rules[0].match.methods[0]",
            "upper-case",
        ),
        (
            set(base(), &["rules", "0", "requires"], json!("everyone")),
            "$.rules[0].requires",
            "unknown requirement",
        ),
        (
            set(
                base(),
                &["rules", "2", "requires"],
                json!({"any": [{"provider": "trustline"}]}),
            ),
            "$.rules[2].requires.any",
            "at least two",
        ),
        (
            set(
                base(),
                &["rules", "2", "requires"],
                json!({"any": ["allow", {"provider": "trustline"}]}),
            ),
            "$.rules[2].requires.any[0]",
            "cannot be an alternative",
        ),
        (
            set(
                base(),
                &["rules", "2", "requires"],
                json!({"any": [{"all": [{"any": [{"provider": "trustline"}, {"provider": "sentropic"}]}, {"provider": "sentropic"}]}, {"provider": "trustline"}]}),
            ),
            "$.rules[2].requires.any[0].all[0].any",
            "nesting deeper than 2",
        ),
        (
            set(
                set(
                    base(),
                    &["jwt_providers", "1", "issuer"],
                    json!("https://auth.internal"),
                ),
                &["rules", "1", "requires"],
                json!("allow"),
            ),
            "$.rules[2].requires",
            "same issuer",
        ),
        (
            set(
                base(),
                &["rules", "2", "requires"],
                json!({"all": [{"provider": "trustline"}, {"provider": "sentropic"}]}),
            ),
            "$.rules[2].requires",
            "header \"authorization\"",
        ),
    ];
    for (v, path, msg) in cases {
        let (p, m) = err(&v);
        assert_eq!(p, path, "{m}");
        assert!(m.contains(msg), "{path}: {m}");
    }
}
