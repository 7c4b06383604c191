//! The TrustPlane conformance vectors (tests/vectors/, copied unmodified from
//! ../shared/conformance/trustplane-v1/), reproduced byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::vector;
use proofgate::config::Config;
use proofgate::query;
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::signer::SignerClass;
use proofgate::transcript::{self, TranscriptInput};
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::{json, Value};

fn transcript_vector(name: &str) {
    let v = vector(name);
    let raw = &v["raw_request"];
    let t = &v["transcript"];
    let normalized = query::normalize(raw["query"].as_str().unwrap()).unwrap();
    assert_eq!(
        normalized,
        t["query_normalization"]["normalized"].as_str().unwrap()
    );
    let headers: Vec<(String, String)> = raw["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_ascii_lowercase(),
                h["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let allow: Vec<&str> = t["headers"]["allow_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let selected: Vec<(&str, &[u8])> = allow
        .iter()
        .filter_map(|n| {
            headers
                .iter()
                .find(|(h, _)| h == n)
                .map(|(_, v)| (*n, v.as_bytes()))
        })
        .collect();
    let body_hex = transcript::sha256_hex(raw["body_utf8"].as_str().unwrap().as_bytes());
    assert_eq!(body_hex, t["body_sha256"].as_str().unwrap());
    let s = |k: &str| t[k].as_str().unwrap();
    let input = TranscriptInput {
        method: s("method"),
        scheme: s("scheme"),
        authority: s("authority"),
        path: s("path"),
        audience: s("audience"),
        route_id: s("route_id"),
        content_encoding: s("content_encoding"),
        normalized_query: &normalized,
        selected_headers: &selected,
        body_sha256_hex: &body_hex,
        passport_jti: s("passport_jti"),
        nonce: s("nonce"),
        issued_at: t["issued_at"].as_i64().unwrap(),
        key_binding: s("key_binding"),
    };
    let lines = transcript::canonical_lines(&input);
    let expected: Vec<&str> = v["canonical"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines, expected);
    assert_eq!(
        transcript::hex_lower(&transcript::digest(&input)),
        v["canonical"]["sha256"].as_str().unwrap()
    );
    assert_eq!(
        t["time_bucket"].as_i64().unwrap(),
        t["issued_at"].as_i64().unwrap() / 20
    );
}

#[test]
fn transcript_v1_json_body() {
    transcript_vector("transcript-v1.json");
}

#[test]
fn transcript_v1_ambiguous_query_headers() {
    transcript_vector("transcript-v1.ambiguous-query-headers.json");
}

#[test]
fn body_sha256_vectors() {
    for v in vector("body-sha256-v1.json")["vectors"].as_array().unwrap() {
        let got = transcript::sha256_hex(v["bytes_utf8"].as_str().unwrap().as_bytes());
        assert_eq!(got, v["sha256"].as_str().unwrap(), "{}", v["id"]);
    }
}

#[test]
fn signer_taxonomy_order_and_ranks() {
    let v = vector("signer-taxonomy-v1.json");
    let order: Vec<&str> = v["ordering"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(order, SignerClass::ALL.map(SignerClass::name));
    for c in v["classes"].as_array().unwrap() {
        let class = SignerClass::parse(c["class"].as_str().unwrap()).unwrap();
        assert_eq!(i64::from(class.rank()), c["rank"].as_i64().unwrap());
    }
    assert!(SignerClass::Software < SignerClass::RemoteKms);
    assert!(SignerClass::HardwareLocal < SignerClass::AttestedWorkload);
}

/// The vector carries only header-value hashes, not the content-type value, so our builder
/// runs with a stand-in content type and only its `headers.selected` line is replaced by the
/// vector's hashes; the other 19 lines, the query normalisation and the digest are ours.
#[test]
fn broker_success_stamp_is_a_third_transcript_vector() {
    let v = vector("broker-ipc-v1.success.json");
    let http = &v["request"]["http"];
    let s = |k: &str| http[k].as_str().unwrap();
    let normalized = query::normalize(http["query"]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(normalized, http["query"]["normalized"].as_str().unwrap());
    assert_eq!(
        transcript::sha256_hex(normalized.as_bytes()),
        http["query"]["sha256"].as_str().unwrap()
    );
    let selected: Vec<String> = http["headers"]["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}:{}",
                h["name"].as_str().unwrap(),
                h["value_sha256"].as_str().unwrap()
            )
        })
        .collect();
    let iat = v["response"]["issued_at"].as_i64().unwrap();
    let jti = v["response"]["artifacts"]["passport"]["jti"]
        .as_str()
        .unwrap();
    let input = TranscriptInput {
        method: s("method"),
        scheme: s("scheme"),
        authority: s("authority"),
        path: s("path"),
        audience: s("audience"),
        route_id: s("route_id"),
        content_encoding: s("content_encoding"),
        normalized_query: &normalized,
        selected_headers: &[
            ("content-type", b"stand-in"),
            ("x-trustplane-nonce", s("nonce").as_bytes()),
        ],
        body_sha256_hex: s("body_sha256"),
        passport_jti: jti,
        nonce: s("nonce"),
        issued_at: iat,
        key_binding: "hardware_local",
    };
    let mut lines = transcript::canonical_lines(&input);
    let ours = lines[13].clone();
    // Our nonce hash is the vector's; only the content-type hash is unknown to us.
    assert!(ours.ends_with(&selected[1]), "{ours} vs {}", selected[1]);
    lines[13] = format!("headers.selected={}", selected.join(","));
    assert_eq!(
        lines[12],
        "headers.allow_list=content-type,x-trustplane-nonce"
    );
    assert_eq!(
        transcript::sha256_hex(lines.join("\n").as_bytes()),
        v["response"]["artifacts"]["stamp"]["transcript_sha256"]
            .as_str()
            .unwrap()
    );
}

/// The minimal claims verify, and every claim the vector lists as required is: without it, the
/// same passport is `invalid_passport_claims`.
#[test]
fn passport_claims_shape_is_the_required_set() {
    let v = vector("passport-v1.minimal-valid-claims.json");
    let claims = &v["claims"];
    let iss = claims["iss"].as_str().unwrap();
    let cfg = json!({
        "audience": "orders-api",
        "trust_material": {"issuers": [{"issuer": iss,
            "keys": [{"kid": "k1", "public_key_b64url": common::pub_b64(&common::demo_key())}]}]},
        "routing": {"mode": "route-id", "route_id": "orders.create"},
    });
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    let now = claims["iat"].as_i64().unwrap() + 10;
    let sign = |c: &Value| {
        common::sign_jws(
            &json!({"alg": "EdDSA", "kid": "k1"}),
            c,
            &common::demo_key(),
        )
    };
    let verified = proofgate::passport::verify(&sign(claims), &config, now).unwrap();
    assert_eq!(verified.sub, claims["sub"].as_str().unwrap());
    assert_eq!(verified.key_binding, SignerClass::HardwareLocal);

    let required = v["required_claims"].as_array().unwrap();
    assert_eq!(required.len(), 10);
    for name in required.iter().map(|c| c.as_str().unwrap()) {
        let mut without = claims.clone();
        match name.split_once('.') {
            Some((outer, inner)) => without[outer].as_object_mut().unwrap().remove(inner),
            None => without.as_object_mut().unwrap().remove(name),
        };
        let reason = match proofgate::passport::verify(&sign(&without), &config, now) {
            Err((reason, _)) => reason,
            Ok(_) => panic!("a passport without {name} verified"),
        };
        // Without `iss` no trust-material key can be found at all.
        let expected = if name == "iss" {
            Reason::UnknownSigningKey
        } else {
            Reason::InvalidPassportClaims
        };
        assert_eq!(reason, expected, "without {name}");
    }
}

#[test]
fn conformance_bundle_loads_with_its_three_source_kinds() {
    let v = vector("bundle-v1.source-rules.json");
    let cfg = json!({
        "trust_material": {"issuers": [{"issuer": "https://issuer.example/software-jwks",
            "keys": [{"kid": "k1", "public_key_b64url": "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}]}]},
        "policy_bundle": v["policy_bundle"],
    });
    let config = Config::parse(cfg.to_string().as_bytes()).unwrap();
    let bundle = config.bundle.as_ref().unwrap();
    let route = bundle.route("orders.search").unwrap();
    assert_eq!(route.audience.as_deref(), Some("orders-api"));
    assert_eq!(
        route.sources.len(),
        v["expected_source_types"].as_array().unwrap().len()
    );
    assert_eq!(
        route.sources[2].required_key_binding,
        Some(SignerClass::AttestedWorkload)
    );
    assert!(route.sources[2]
        .subject
        .matches("spiffe://example.local/ns/orders/sa/runner"));
    assert!(!route.sources[0].subject.matches("service:orders-client-2"));
    assert_eq!(
        route.freshness,
        proofgate::config::Freshness::Bounded(Some(300))
    );
    assert_eq!(
        route.sources[1]
            .context_policy
            .as_ref()
            .unwrap()
            .required_tool_name
            .as_deref(),
        Some("orders-runner")
    );
}

/// The SDK-signed demo requests are accepted by the whole pipeline, byte for byte.
fn sdk_case(case: &Value, route_id: &str, method: &str, signed_headers: Value) {
    let demo = vector("sdk-signed-request-demo.json");
    let claims = &case["passport_claims"];
    let mut bundle = common::bundle();
    // The demo transcripts name their route ids; the common bundle already uses them.
    assert!(bundle["route_groups"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["route_id"] == route_id));
    bundle["default_required_key_binding"] = json!("software");
    let cfg = json!({
        "trust_material": {"issuers": [{"issuer": claims["iss"], "trust_domain": claims["trust_domain"],
            "keys": [{"kid": "demo-caller-1", "public_key_b64url": demo["test_key"]["public_key_b64url"]}]}]},
        "policy_bundle": bundle,
        "signed_headers": signed_headers,
    });
    let engine = Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap(), 0);
    let (method_v, url, headers) = (
        case["request"]["method"]
            .as_str()
            .or(case["method"].as_str())
            .unwrap(),
        case["request"]["url"]
            .as_str()
            .or(case["url"].as_str())
            .unwrap(),
        case["headers"].as_object().unwrap(),
    );
    assert_eq!(method_v, method);
    let rest = url.strip_prefix("https://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut pairs: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":scheme".into(), b"https".to_vec()),
        (":authority".into(), authority.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
    ];
    let mut body = Vec::new();
    if let Some(req_headers) = case["request"]["headers"].as_object() {
        pairs.extend(
            req_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec())),
        );
        body = case["request"]["body_utf8"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec();
    }
    pairs.extend(
        headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec())),
    );
    let req = RequestView::new(pairs);
    let now = claims["iat"].as_i64().unwrap() + 60;
    let HeadersVerdict::NeedBody(pending) = engine.check_headers(&req, now) else {
        panic!("headers phase did not pass");
    };
    let admitted = engine
        .check_body(*pending, &body, &mut MemoryStore::default(), now)
        .unwrap();
    assert_eq!(
        admitted.facts.transcript_sha256.as_deref(),
        case["transcript_sha256"].as_str()
    );
    assert_eq!(admitted.facts.route_id.as_deref(), Some(route_id));
    assert_eq!(
        admitted.facts.subject.as_deref(),
        Some("external:jwks:demo-caller")
    );
}

#[test]
fn sdk_signed_post_is_accepted() {
    let demo = vector("sdk-signed-request-demo.json");
    sdk_case(
        &demo["sign_request_case"],
        "orders.create",
        "POST",
        json!(["content-type", "x-trustplane-nonce"]),
    );
}

#[test]
fn sdk_protected_client_get_is_accepted() {
    let demo = vector("sdk-signed-request-demo.json");
    sdk_case(
        &demo["protected_client_case"],
        "orders.get",
        "GET",
        json!(["accept", "content-type", "x-trustplane-nonce"]),
    );
}
