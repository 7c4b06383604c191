#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::{json, Value};

const KEY: &str = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";

fn base() -> Value {
    json!({
        "audience": "orders-api",
        "trust_material": {"issuers": [{"issuer": "https://issuer.example", "keys": [{"kid": "k1", "public_key_b64url": KEY}]}]},
        "policy_bundle": {
            "version": "trustplane-bundle-v1",
            "apis": [{"api_id": "orders-api", "audience": "orders-api"}],
            "route_groups": [{"api_id": "orders-api", "routes": [
                {"route_id": "orders.create", "method": "POST", "path_template": "/v1/orders",
                 "allowed_sources": [{"issuer": "https://issuer.example", "trust_domain": "t", "subject_exact": "s"}],
                 "freshness_class": "offline-ok"},
                {"route_id": "orders.get", "method": "GET", "path_template": "/v1/orders/{id}",
                 "allowed_sources": [{"issuer": "https://issuer.example", "trust_domain": "t", "subject_prefix": "s"}]}
            ]}]
        }
    })
}

fn parse(v: &Value) -> core::result::Result<Config, ConfigError> {
    Config::parse(v.to_string().as_bytes())
}

/// Applies `edit` to the base config and expects an error at exactly `path` whose message
/// contains `says`.
fn rejects(edit: impl FnOnce(&mut Value), path: &str, says: &str) {
    let mut v = base();
    edit(&mut v);
    match parse(&v) {
        Ok(_) => panic!("accepted, expected an error at {path}"),
        Err(e) => {
            assert_eq!(e.path, path, "message: {}", e.message);
            assert!(
                e.message.contains(says),
                "{path}: {:?} does not mention {says:?}",
                e.message
            );
        }
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = parse(&base()).unwrap();
    assert_eq!(c.routing, Routing::Request);
    assert_eq!(c.required_key_binding, SignerClass::Software);
    assert_eq!(c.signed_headers, vec!["content-type", "x-trustplane-nonce"]);
    assert_eq!(c.transcript_scheme, None);
    assert_eq!(c.clock_skew_seconds, 30);
    assert_eq!(c.max_passport_lifetime_seconds, 900);
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.replay.max_entries, 65_536);
    assert!(c.allow_unauthenticated.is_empty());
    assert!(!c.forward_credentials);
    assert!(c.audit_log_allow);
    assert_eq!(c.realtime_window_seconds, 5);
    let b = c.bundle.unwrap();
    assert_eq!(b.routes[0].freshness, Freshness::OfflineOk);
    assert_eq!(b.routes[1].freshness, Freshness::Unknown);
}

#[test]
fn every_field_is_read() {
    let mut v = base();
    let o = v.as_object_mut().unwrap();
    o.insert("trust_domain".into(), json!("example.local"));
    o.insert(
        "routing".into(),
        json!({"mode": "route-id", "route_id": "orders.get"}),
    );
    o.insert("required_key_binding".into(), json!("remote_kms"));
    o.insert(
        "signed_headers".into(),
        json!(["X-Trustplane-Nonce", "accept", "accept"]),
    );
    o.insert("transcript_scheme".into(), json!("https"));
    o.insert("clock_skew_seconds".into(), json!(0));
    o.insert("max_passport_lifetime_seconds".into(), json!(60));
    o.insert("max_body_bytes".into(), json!(0));
    o.insert("replay".into(), json!({"max_entries": 128}));
    o.insert(
        "allow_unauthenticated".into(),
        json!([{"path_prefix": "/healthz"}]),
    );
    o.insert("forward_credentials".into(), json!(true));
    o.insert("audit".into(), json!({"log_allow": false}));
    o.insert("realtime_window_seconds".into(), json!(9));
    let c = parse(&v).unwrap();
    assert_eq!(c.trust_domain.as_deref(), Some("example.local"));
    assert_eq!(c.routing, Routing::RouteId("orders.get".into()));
    assert_eq!(c.required_key_binding, SignerClass::RemoteKms);
    assert_eq!(c.signed_headers, vec!["accept", "x-trustplane-nonce"]);
    assert_eq!(c.transcript_scheme.as_deref(), Some("https"));
    assert_eq!(
        (
            c.clock_skew_seconds,
            c.max_passport_lifetime_seconds,
            c.max_body_bytes
        ),
        (0, 60, 0)
    );
    assert_eq!(c.replay.max_entries, 128);
    assert_eq!(
        c.allow_unauthenticated,
        vec![ExemptRule {
            method: None,
            path_prefix: "/healthz".into()
        }]
    );
    assert!(c.forward_credentials && !c.audit_log_allow);
    assert_eq!(c.realtime_window_seconds, 9);
}

#[test]
fn rejections_name_the_json_path() {
    rejects(|v| v["audiance"] = json!("x"), "$.audiance", "unknown key");
    rejects(
        |v| {
            v.as_object_mut().unwrap().remove("trust_material");
        },
        "$.trust_material",
        "is required",
    );
    rejects(
        |v| v["trust_material"]["issuers"] = json!([]),
        "$.trust_material.issuers",
        "at least one",
    );
    rejects(
        |v| v["trust_material"]["issuerz"] = json!([]),
        "$.trust_material.issuerz",
        "unknown key",
    );
    rejects(
        |v| {
            v["trust_material"]["issuers"][0]["keys"][0]["public_key_b64url"] =
                json!("A6EHv+POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg")
        },
        "$.trust_material.issuers[0].keys[0].public_key_b64url",
        "base64url",
    );
    rejects(
        |v| {
            v["trust_material"]["issuers"][0]["keys"][0]["public_key_b64url"] =
                json!("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJV")
        },
        "$.trust_material.issuers[0].keys[0].public_key_b64url",
        "32 bytes",
    );
    rejects(
        |v| {
            v["trust_material"]["issuers"][0]["keys"][0]["public_key_b64url"] =
                json!("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        },
        "$.trust_material.issuers[0].keys[0].public_key_b64url",
        "small-order",
    );
    // The demo key plus the point of order 2: a mixed-order key (issue 7 item 7).
    rejects(
        |v| {
            v["trust_material"]["issuers"][0]["keys"][0]["public_key_b64url"] =
                json!("6l74QAwx70HijyLnGLQ_ZpgbKc9kWvKg4iN5m-2qzkc")
        },
        "$.trust_material.issuers[0].keys[0].public_key_b64url",
        "not torsion-free",
    );
    rejects(
        |v| v["trust_material"]["issuers"][0]["keys"][0]["alg"] = json!("RS256"),
        "$.trust_material.issuers[0].keys[0].alg",
        "EdDSA",
    );
    rejects(
        |v| v["trust_material"]["issuers"][0]["keys"] = json!([]),
        "$.trust_material.issuers[0].keys",
        "at least one",
    );
    rejects(
        |v| v["trust_material"]["issuers"][0]["jwks"] = json!({}),
        "$.trust_material.issuers[0].jwks.cluster",
        "is required",
    );
    rejects(
        |v| v["trust_material"]["issuers"][0]["jwks"] = json!({"cluster": "auth"}),
        "$.trust_material.issuers[0].keys",
        "not allowed with jwks",
    );
    rejects(
        |v| {
            v["trust_material"]["issuers"][0]["jwks"] = json!({"cluster": "auth", "timeout_ms": 0});
            v["trust_material"]["issuers"][0]
                .as_object_mut()
                .unwrap()
                .remove("keys");
        },
        "$.trust_material.issuers[0].jwks.timeout_ms",
        "from 100",
    );
    rejects(
        |v| {
            let k = v["trust_material"]["issuers"][0]["keys"][0].clone();
            v["trust_material"]["issuers"][0]["keys"]
                .as_array_mut()
                .unwrap()
                .push(k);
        },
        "$.trust_material.issuers[0].keys[1].kid",
        "duplicate kid",
    );
    rejects(
        |v| v["required_key_binding"] = json!("hardware"),
        "$.required_key_binding",
        "unknown signer class",
    );
    rejects(
        |v| {
            v.as_object_mut().unwrap().remove("audience");
            v["policy_bundle"]["apis"][0]
                .as_object_mut()
                .unwrap()
                .remove("audience");
        },
        "$.audience",
        "is required",
    );
    rejects(
        |v| v["audience"] = json!(" orders-api"),
        "$.audience",
        "whitespace",
    );
    rejects(
        |v| v["audience"] = json!(7),
        "$.audience",
        "must be a string",
    );
    rejects(
        |v| v["clock_skew_seconds"] = json!(-1),
        "$.clock_skew_seconds",
        "from 0 to 3600",
    );
    rejects(
        |v| v["max_passport_lifetime_seconds"] = json!(1.5),
        "$.max_passport_lifetime_seconds",
        "integer",
    );
    rejects(
        |v| v["max_body_bytes"] = json!(1e12),
        "$.max_body_bytes",
        "integer",
    );
    rejects(
        |v| v["replay"] = json!({"max_entries": 0}),
        "$.replay.max_entries",
        "from 1",
    );
    rejects(
        |v| v["replay"] = json!({"size": 3}),
        "$.replay.size",
        "unknown key",
    );
    rejects(
        |v| v["routing"] = json!({"mode": "path"}),
        "$.routing.mode",
        "must be",
    );
    rejects(
        |v| v["routing"] = json!({"mode": "route-id"}),
        "$.routing.route_id",
        "is required",
    );
    rejects(
        |v| v["routing"] = json!({"mode": "route-id", "route_id": "nope"}),
        "$.routing",
        "not a route",
    );
    rejects(
        |v| {
            v.as_object_mut().unwrap().remove("policy_bundle");
        },
        "$.policy_bundle",
        "required with routing mode",
    );
    rejects(
        |v| v["signed_headers"] = json!(["bad header"]),
        "$.signed_headers[0]",
        "header name",
    );
    rejects(
        |v| v["transcript_scheme"] = json!("ftp"),
        "$.transcript_scheme",
        "http",
    );
    rejects(
        |v| v["allow_unauthenticated"] = json!([{"path": "/x"}]),
        "$.allow_unauthenticated[0].path",
        "unknown key",
    );
    rejects(
        |v| v["allow_unauthenticated"] = json!([{"path_prefix": "healthz"}]),
        "$.allow_unauthenticated[0].path_prefix",
        "start with",
    );
    rejects(
        |v| v["forward_credentials"] = json!("yes"),
        "$.forward_credentials",
        "true or false",
    );
    rejects(
        |v| {
            v["trust_domain"] = json!("a");
            v["trust_material"]["issuers"][0]["trust_domain"] = json!("b");
        },
        "$",
        "contradicts",
    );
}

#[test]
fn bundle_rejections_name_the_json_path() {
    let r0 = "$.policy_bundle.route_groups[0].routes[0]";
    rejects(
        |v| v["policy_bundle"]["version"] = json!("trustplane-bundle-v2"),
        "$.policy_bundle.version",
        "trustplane-bundle-v1",
    );
    rejects(
        |v| v["policy_bundle"]["route_groups"][0]["routes"][1]["route_id"] = json!("orders.create"),
        "$.policy_bundle.route_groups[0].routes[1].route_id",
        "duplicate route_id",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["path_template"] = json!("/v1/{a-b}")
        },
        &format!("{r0}.path_template"),
        "placeholder",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["path_template"] = json!("/v1/x{id}")
        },
        &format!("{r0}.path_template"),
        "whole segment",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["required_key_binding"] =
                json!("tpm")
        },
        &format!("{r0}.required_key_binding"),
        "unknown signer class",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["allowed_sources"][0]
                ["subject_prefix"] = json!("s")
        },
        &format!("{r0}.allowed_sources[0]"),
        "both",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["allowed_sources"][0]
                .as_object_mut()
                .unwrap()
                .remove("subject_exact");
        },
        &format!("{r0}.allowed_sources[0]"),
        "exactly one",
    );
    rejects(
        |v| v["policy_bundle"]["route_groups"][0]["routes"][0]["allowed_sources"] = json!([]),
        &format!("{r0}.allowed_sources"),
        "at least one",
    );
    rejects(
        |v| v["policy_bundle"]["route_groups"][0]["api_id"] = json!("billing"),
        "$.policy_bundle.route_groups[0].api_id",
        "names no API",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["freshness_class"] =
                json!("eventually")
        },
        &format!("{r0}.freshness_class"),
        "unknown freshness",
    );
    rejects(
        |v| v["policy_bundle"]["revocations"] = json!([{"jti": "a", "sub": "b"}]),
        "$.policy_bundle.revocations[0]",
        "exactly one",
    );
    rejects(
        |v| v["policy_bundle"]["revocations"] = json!([{"sub": "b"}]),
        "$.policy_bundle.revocations[0].not_before",
        "is required",
    );
    rejects(
        |v| v["policy_bundle"]["revocations"] = json!([{"issuer": "b"}]),
        "$.policy_bundle.revocations[0].kid",
        "is required",
    );
    rejects(
        |v| {
            v["policy_bundle"]["route_groups"][0]["routes"][0]["allowed_sources"][0]
                ["context_policy"] = json!({"max_txn_value": "ten"})
        },
        &format!("{r0}.allowed_sources[0].context_policy.max_txn_value"),
        "decimal",
    );
    // Two templates that match the same GET requests.
    rejects(
        |v| {
            let mut extra = v["policy_bundle"]["route_groups"][0]["routes"][1].clone();
            extra["route_id"] = json!("orders.other");
            extra["path_template"] = json!("/v1/{kind}/{id}");
            v["policy_bundle"]["route_groups"][0]["routes"]
                .as_array_mut()
                .unwrap()
                .push(extra);
        },
        "$.policy_bundle.route_groups[0].routes[2].path_template",
        "orders.get",
    );
}

#[test]
fn bundle_tolerates_unknown_fields_and_exact_beside_template() {
    let mut v = base();
    v["policy_bundle"]["signature"] = json!({"format": "whatever"});
    v["policy_bundle"]["route_groups"][0]["routes"][0]["risk"] = json!("high");
    let mut exact = v["policy_bundle"]["route_groups"][0]["routes"][1].clone();
    exact["route_id"] = json!("orders.search");
    exact["path_template"] = json!("/v1/orders/search");
    v["policy_bundle"]["route_groups"][0]["routes"]
        .as_array_mut()
        .unwrap()
        .push(exact);
    let c = parse(&v).unwrap();
    let b = c.bundle.unwrap();
    assert_eq!(
        crate::routing::resolve(&b, "GET", "/v1/orders/search").map(|r| r.route_id.as_str()),
        Some("orders.search")
    );
    assert_eq!(
        crate::routing::resolve(&b, "GET", "/v1/orders/7").map(|r| r.route_id.as_str()),
        Some("orders.get")
    );
    assert!(crate::routing::resolve(&b, "DELETE", "/v1/orders/7").is_none());
}

#[test]
fn route_freshness_fields_override_bundle_defaults_one_by_one() {
    let route = |v: &Value| parse(v).unwrap().bundle.unwrap().routes[0].freshness;
    let mut v = base();
    v["policy_bundle"]["default_freshness_class"] = json!("bounded");
    v["policy_bundle"]["default_max_staleness_seconds"] = json!(3600);
    let r0 = v["policy_bundle"]["route_groups"][0]["routes"][0]
        .as_object_mut()
        .unwrap();
    r0.remove("freshness_class");
    r0.insert("max_staleness_seconds".into(), json!(1));
    assert_eq!(
        route(&v),
        Freshness::Bounded(Some(1)),
        "the route's tighter limit is kept"
    );
    let r0 = v["policy_bundle"]["route_groups"][0]["routes"][0]
        .as_object_mut()
        .unwrap();
    r0.remove("max_staleness_seconds");
    r0.insert("freshness_class".into(), json!("bounded"));
    assert_eq!(
        route(&v),
        Freshness::Bounded(Some(3600)),
        "the default limit fills in"
    );
    v["policy_bundle"]["route_groups"][0]["routes"][0]["freshness_class"] = json!("realtime");
    assert_eq!(route(&v), Freshness::Realtime);
    v["policy_bundle"]["default_max_staleness_seconds"] = json!(0);
    v["policy_bundle"]["route_groups"][0]["routes"][0]["freshness_class"] = json!("bounded");
    assert_eq!(
        route(&v),
        Freshness::Bounded(None),
        "no positive limit: fails closed at request time"
    );
}

#[test]
fn not_json_is_rejected_at_the_root() {
    let e = Config::parse(b"{not json").unwrap_err();
    assert_eq!(e.path, "$");
    assert!(e.message.contains("not valid JSON"));
    let e = Config::parse(b"[]").unwrap_err();
    assert_eq!(e.path, "$");
}

#[test]
fn an_issuer_with_remote_keys_needs_no_inline_keys() {
    let mut v = base();
    let issuer = &mut v["trust_material"]["issuers"][0];
    issuer.as_object_mut().unwrap().remove("keys");
    issuer["jwks"] = json!({"cluster": "auth", "cache_seconds": 60});
    let c = parse(&v).unwrap();
    let jwks = c.issuers[0].jwks.as_ref().unwrap();
    assert!(c.issuers[0].keys.is_empty());
    assert_eq!(jwks.uri, "https://issuer.example/.well-known/jwks.json");
    assert_eq!((jwks.cluster.as_str(), jwks.cache_seconds), ("auth", 60));
}

#[test]
fn parking_limits_default_and_bounds() {
    let c = parse(&base()).unwrap();
    assert_eq!((c.max_parked_requests, c.body_timeout_ms), (1024, 10_000));
    let mut v = base();
    v["max_parked_requests"] = json!(4);
    v["body_timeout_ms"] = json!(2500);
    let c = parse(&v).unwrap();
    assert_eq!((c.max_parked_requests, c.body_timeout_ms), (4, 2500));
    rejects(
        |v| v["max_parked_requests"] = json!(0),
        "$.max_parked_requests",
        "",
    );
    rejects(
        |v| v["max_parked_requests"] = json!(65_537),
        "$.max_parked_requests",
        "",
    );
    rejects(
        |v| v["body_timeout_ms"] = json!(99),
        "$.body_timeout_ms",
        "",
    );
    rejects(
        |v| v["body_timeout_ms"] = json!("10s"),
        "$.body_timeout_ms",
        "",
    );
}
