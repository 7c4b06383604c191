//! The verify matrix: every rejection the core can make, each reached by one specific request
//! and asserted by its exact reason (and the checks before it passing), plus the allows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::config::{Config, Routing};
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::{json, Value};

const SIGNED: [&str; 3] = ["accept", "content-type", "x-trustplane-nonce"];

struct Case {
    engine: Engine,
    store: MemoryStore,
}

impl Case {
    fn new(cfg: Value) -> Case {
        Case {
            engine: Engine::new(config(&cfg), NOW - 10),
            store: MemoryStore::default(),
        }
    }

    fn default() -> Case {
        Case::new(config_json())
    }

    /// The decision for `req` with `headers` and `body`: `Ok(route id)` or the exact reason.
    fn decide(&mut self, req: &RequestView, body: &[u8], now: i64) -> Result<String, Reason> {
        match self.engine.check_headers(req, now) {
            HeadersVerdict::Exempt(_) => Ok("exempt".into()),
            HeadersVerdict::Deny(d) => Err(d.reason),
            HeadersVerdict::NeedBody(p) => self
                .engine
                .check_body(*p, body, &mut self.store, now)
                .map(|a| a.facts.route_id.unwrap())
                .map_err(|d| d.reason),
            HeadersVerdict::AwaitKeys(h) => panic!("inline keys never wait: {h:?}"),
        }
    }

    fn signed(&mut self, r: &Req, claims: &Value) -> Result<String, Reason> {
        let h = r.sign(claims, &SIGNED);
        let view = r.view(&h);
        self.decide(&view, &r.body, NOW)
    }
}

fn with_claim(path: &[&str], value: Value) -> Value {
    let mut c = claims();
    let mut node = &mut c;
    for p in &path[..path.len() - 1] {
        node = &mut node[*p];
    }
    node[path[path.len() - 1]] = value;
    c
}

fn without_claim(path: &[&str]) -> Value {
    let mut c = claims();
    let mut node = &mut c;
    for p in &path[..path.len() - 1] {
        node = &mut node[*p];
    }
    node.as_object_mut().unwrap().remove(path[path.len() - 1]);
    c
}

#[test]
fn signed_requests_are_allowed() {
    let mut c = Case::default();
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Ok("orders.create".into())
    );
    let get = Req::get_order();
    assert_eq!(
        c.signed(&get, &with_claim(&["jti"], json!("jti-get"))),
        Ok("orders.get".into())
    );
    let mut search = Req::get_order();
    search.path = "/v1/orders/search".into();
    search.route_id = "orders.search".into();
    assert_eq!(
        c.signed(&search, &with_claim(&["jti"], json!("jti-search"))),
        Ok("orders.search".into()),
        "exact wins"
    );
}

#[test]
fn route_stage() {
    let mut c = Case::default();
    let mut r = Req::post_order();
    r.path = "/v1/unknown".into();
    assert_eq!(c.signed(&r, &claims()), Err(Reason::BundleRouteMissing));
    let mut r = Req::post_order();
    r.method = "PUT".into();
    assert_eq!(c.signed(&r, &claims()), Err(Reason::BundleRouteMissing));

    // A config that bypassed validation (fields are public) still fails closed.
    let mut cfg: Config = config(&config_json());
    cfg.bundle = None;
    cfg.routing = Routing::Request;
    let mut c = Case {
        engine: Engine::new(cfg, NOW),
        store: MemoryStore::default(),
    };
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Err(Reason::BundlePolicyMissing)
    );
}

#[test]
fn freshness_stage() {
    let mut cfg = config_json();
    cfg["policy_bundle"]["route_groups"][0]["routes"][0]["freshness_class"] = json!("bounded");
    cfg["policy_bundle"]["route_groups"][0]["routes"][0]["max_staleness_seconds"] = json!(300);
    let mut c = Case::new(cfg.clone());
    c.engine.loaded_at = NOW - 300;
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Ok("orders.create".into())
    );
    c.engine.loaded_at = NOW - 301;
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Err(Reason::StaleBundleFailClosed)
    );

    cfg["policy_bundle"]["route_groups"][0]["routes"][0]["max_staleness_seconds"] = json!(0);
    assert_eq!(
        Case::new(cfg.clone()).signed(&Req::post_order(), &claims()),
        Err(Reason::BundleFreshnessUnknown)
    );

    cfg["policy_bundle"]["route_groups"][0]["routes"][0]["freshness_class"] = json!("realtime");
    let mut c = Case::new(cfg.clone());
    c.engine.loaded_at = NOW - 5;
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Ok("orders.create".into())
    );
    c.engine.loaded_at = NOW - 6;
    assert_eq!(
        c.signed(&Req::post_order(), &with_claim(&["jti"], json!("j2"))),
        Err(Reason::StaleBundleFailClosed)
    );

    cfg["policy_bundle"]["route_groups"][0]["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("freshness_class");
    assert_eq!(
        Case::new(cfg).signed(&Req::post_order(), &claims()),
        Err(Reason::BundleFreshnessUnknown)
    );
}

fn headers_only(c: &Case, auth: Option<&str>) -> Reason {
    let r = Req::get_order();
    let mut h = r.sign(&claims(), &SIGNED);
    h.retain(|(n, _)| n != "authorization");
    if let Some(a) = auth {
        h.push(("authorization".into(), a.into()));
    }
    match c.engine.check_headers(&r.view(&h), NOW) {
        HeadersVerdict::Deny(d) => d.reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn passport_framing_is_strict() {
    let c = Case::default();
    let good = passport(&claims());
    assert_eq!(headers_only(&c, None), Reason::MissingPassport);
    for bad in [
        format!("bearer {good}"),
        format!("Bearer  {good}"),
        format!("Basic {good}"),
        format!("Bearer {good} "),
        format!("Bearer {good}.x"),
        good.clone(),
        "Bearer a.b".into(),
        "Bearer ..".into(),
        format!("Bearer {good}="),
        format!("Bearer {}", "a".repeat(20_000)),
    ] {
        assert_eq!(
            headers_only(&c, Some(&bad)),
            Reason::MalformedPassport,
            "{bad:.40}"
        );
    }
}

#[test]
fn passport_header_and_json_are_strict() {
    let c = Case::default();
    let k = demo_key();
    let bad_headers = [
        json!({"alg": "none", "kid": KID}),
        json!({"alg": "HS256", "kid": KID}),
        json!({"alg": "EdDSA"}),
        json!({"alg": "EdDSA", "kid": ""}),
        json!({"alg": "EdDSA", "kid": KID, "typ": "JOSE"}),
        json!({"alg": "EdDSA", "kid": KID, "crit": ["exp"]}),
    ];
    for h in bad_headers {
        let t = sign_jws(&h, &claims(), &k);
        assert_eq!(
            headers_only(&c, Some(&format!("Bearer {t}"))),
            Reason::MalformedPassport,
            "{h}"
        );
    }
    // Raw payloads that are not one JSON object with unique names.
    let h64 = proofgate::b64::encode(br#"{"alg":"EdDSA","kid":"demo-caller-1"}"#);
    let iss = ISSUER;
    for payload in [
        "not json".to_string(),
        format!(r#"["{iss}"]"#),
        format!(r#"{{"iss":"{iss}","iss":"{iss}"}}"#),
        "\u{feff}{}".to_string(),
    ] {
        let input = format!("{h64}.{}", proofgate::b64::encode(payload.as_bytes()));
        let sig = k.sk.sign(input.as_bytes(), None);
        let t = format!("{input}.{}", proofgate::b64::encode(&sig[..]));
        assert_eq!(
            headers_only(&c, Some(&format!("Bearer {t}"))),
            Reason::MalformedPassport,
            "{payload}"
        );
    }
    // A signature segment of the wrong length.
    let t = passport(&claims());
    let short = &t[..t.len() - 4];
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {short}"))),
        Reason::MalformedPassport
    );
}

/// Issue 7 item 6: a duplicated member name anywhere in the header or the claims (unknown
/// members, and inside `cnf`, `ctx`, `provenance`) is `malformed_passport`, even when the
/// signature over those exact bytes is valid and the copies agree.
#[test]
fn duplicate_member_names_are_malformed_at_every_depth() {
    let c = Case::default();
    let k = demo_key();
    let raw = |header: &str, payload: &str| {
        let input = format!(
            "{}.{}",
            proofgate::b64::encode(header.as_bytes()),
            proofgate::b64::encode(payload.as_bytes())
        );
        let sig = k.sk.sign(input.as_bytes(), None);
        format!("Bearer {input}.{}", proofgate::b64::encode(&sig[..]))
    };
    let header = format!(r#"{{"alg":"EdDSA","kid":"{KID}","typ":"JWT"}}"#);
    let body = claims().to_string();
    let inner = &body[1..];
    let key = pub_b64(&k);
    // Control: the same bytes without a duplicate pass the headers phase.
    let ok = raw(&header, &body);
    let r = Req::get_order();
    let mut h = r.sign(&claims(), &SIGNED);
    set_header(&mut h, "authorization", &ok);
    assert!(matches!(
        c.engine.check_headers(&r.view(&h), NOW),
        HeadersVerdict::NeedBody(_)
    ));
    let cases = [
        (
            "duplicate header member",
            raw(
                &format!(r#"{{"alg":"EdDSA","alg":"EdDSA","kid":"{KID}"}}"#),
                &body,
            ),
        ),
        (
            "duplicate unknown header member",
            raw(
                &format!(r#"{{"x":1,"x":2,"alg":"EdDSA","kid":"{KID}"}}"#),
                &body,
            ),
        ),
        (
            "duplicate unknown claim",
            raw(&header, &format!(r#"{{"zz":1,"zz":2,{inner}"#)),
        ),
        (
            "duplicate public_key_b64url in cnf",
            raw(
                &header,
                &body.replace(
                    r#""cnf":{"#,
                    &format!(r#""cnf":{{"public_key_b64url":"{key}","#),
                ),
            ),
        ),
        (
            "duplicate key_binding in cnf",
            raw(
                &header,
                &body.replace(r#""cnf":{"#, r#""cnf":{"key_binding":"hardware_local","#),
            ),
        ),
        (
            "duplicate inside ctx",
            raw(
                &header,
                &format!(r#"{{"ctx":{{"env":"prod","env":"prod"}},{inner}"#),
            ),
        ),
        (
            "duplicate inside provenance",
            raw(
                &header,
                &format!(r#"{{"provenance":{{"a":{{"b":1,"b":2}}}},{inner}"#),
            ),
        ),
    ];
    for (what, token) in cases {
        assert_eq!(
            headers_only(&c, Some(&token)),
            Reason::MalformedPassport,
            "{what}"
        );
    }
}

/// JSON bombs and numbers out of range in a validly signed passport get a specific denial.
#[test]
fn json_bombs_and_out_of_range_numbers() {
    let c = Case::default();
    let k = demo_key();
    let raw = |payload: &str| {
        let header = format!(r#"{{"alg":"EdDSA","kid":"{KID}","typ":"JWT"}}"#);
        let input = format!(
            "{}.{}",
            proofgate::b64::encode(header.as_bytes()),
            proofgate::b64::encode(payload.as_bytes())
        );
        let sig = k.sk.sign(input.as_bytes(), None);
        format!("Bearer {input}.{}", proofgate::b64::encode(&sig[..]))
    };
    let body = claims().to_string();
    let inner = &body[1..];
    let bomb = format!(
        r#"{{"ctx":{}1{},{inner}"#,
        "[".repeat(2000),
        "]".repeat(2000)
    );
    assert_eq!(
        headers_only(&c, Some(&raw(&bomb))),
        Reason::MalformedPassport
    );
    let huge = format!(r#"{{"exp":1e400,{inner}"#);
    assert_eq!(
        headers_only(&c, Some(&raw(&huge))),
        Reason::MalformedPassport
    );
    for exp in ["1e300", "18446744073709551615", "1750000600.5", "-1e18"] {
        let payload = body.replace(
            &format!(r#""exp":{}"#, NOW + 500),
            &format!(r#""exp":{exp}"#),
        );
        assert_ne!(payload, body);
        assert_eq!(
            headers_only(&c, Some(&raw(&payload))),
            Reason::InvalidPassportClaims,
            "exp {exp}"
        );
    }
}

#[test]
fn keys_and_signatures() {
    let c = Case::default();
    let t = sign_jws(
        &json!({"alg": "EdDSA", "kid": "other-kid"}),
        &claims(),
        &demo_key(),
    );
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {t}"))),
        Reason::UnknownSigningKey
    );
    let t = passport(&with_claim(&["iss"], json!("https://evil.example")));
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {t}"))),
        Reason::UnknownSigningKey
    );
    let t = passport(&without_claim(&["iss"]));
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {t}"))),
        Reason::UnknownSigningKey
    );
    // Forged: right kid, wrong key.
    let t = sign_jws(
        &json!({"alg": "EdDSA", "kid": KID}),
        &claims(),
        &key_from_seed(100),
    );
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {t}"))),
        Reason::InvalidPassportSignature
    );
    // Payload swapped after signing.
    let t = passport(&claims());
    let other = passport(&with_claim(&["sub"], json!("someone-else")));
    let parts: Vec<&str> = t.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(
        headers_only(&c, Some(&format!("Bearer {swapped}"))),
        Reason::InvalidPassportSignature
    );
}

#[test]
fn claims_are_validated_after_the_signature() {
    let mut c = Case::default();
    let r = Req::get_order();
    let invalid = [
        without_claim(&["sub"]),
        without_claim(&["aud"]),
        without_claim(&["iat"]),
        without_claim(&["exp"]),
        without_claim(&["jti"]),
        without_claim(&["trust_domain"]),
        without_claim(&["cnf"]),
        without_claim(&["cnf", "kid"]),
        without_claim(&["cnf", "key_binding"]),
        without_claim(&["cnf", "public_key_b64url"]),
        with_claim(&["sub"], json!(" padded")),
        with_claim(&["sub"], json!("line\nbreak")),
        with_claim(&["jti"], json!("")),
        with_claim(&["jti"], json!(7)),
        with_claim(&["iat"], json!(1.5)),
        with_claim(&["iat"], json!("1750000000")),
        with_claim(&["exp"], json!(1e300)),
        with_claim(&["exp"], json!(18446744073709551615u64)),
        with_claim(&["aud"], json!([])),
        with_claim(&["aud"], json!([5])),
        with_claim(&["aud"], json!({"a": 1})),
        with_claim(&["cnf", "key_binding"], json!("hardware")),
        with_claim(
            &["cnf", "public_key_b64url"],
            json!("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="),
        ),
        with_claim(
            &["cnf", "public_key_b64url"],
            json!("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        with_claim(
            &["cnf", "public_key_b64url"],
            json!("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb"),
        ),
        // The demo key plus the point of order 2: not torsion-free (issue 7 item 7).
        with_claim(
            &["cnf", "public_key_b64url"],
            json!("6l74QAwx70HijyLnGLQ_ZpgbKc9kWvKg4iN5m-2qzkc"),
        ),
        with_claim(&["exp"], json!(NOW - 100)),
        with_claim(&["cnf"], json!("not-an-object")),
    ];
    for claims in invalid {
        assert_eq!(
            c.signed(&r, &claims),
            Err(Reason::InvalidPassportClaims),
            "{claims}"
        );
    }
    // An array audience uses its first element.
    let ok = with_claim(&["aud"], json!(["orders-api", "other"]));
    assert_eq!(c.signed(&r, &ok), Ok("orders.get".into()));
}

#[test]
fn time_checks_with_skew() {
    let mut c = Case::default();
    let r = Req::get_order();
    let at = |iat: i64, exp: i64, jti: &str| {
        let mut cl = with_claim(&["iat"], json!(iat));
        cl["exp"] = json!(exp);
        cl["jti"] = json!(jti);
        cl
    };
    // now >= exp + 30 is expired; one second earlier is not.
    assert_eq!(
        c.signed(&r, &at(NOW - 600, NOW - 30, "t1")),
        Err(Reason::PassportExpired)
    );
    assert_eq!(
        c.signed(&r, &at(NOW - 600, NOW - 29, "t2")),
        Ok("orders.get".into())
    );
    // iat > now + 30 is not yet valid.
    assert_eq!(
        c.signed(&r, &at(NOW + 31, NOW + 600, "t3")),
        Err(Reason::PassportNotYetValid)
    );
    assert_eq!(
        c.signed(&r, &at(NOW + 30, NOW + 600, "t4")),
        Ok("orders.get".into())
    );
    // Lifetime over 900 s.
    assert_eq!(
        c.signed(&r, &at(NOW - 10, NOW - 10 + 901, "t5")),
        Err(Reason::PassportLifetimeExceeded)
    );
    assert_eq!(
        c.signed(&r, &at(NOW - 10, NOW - 10 + 900, "t6")),
        Ok("orders.get".into())
    );
    // Absurd numbers never overflow into an allow.
    assert_eq!(
        c.signed(&r, &at(i64::MIN, i64::MAX, "t7")),
        Err(Reason::PassportLifetimeExceeded)
    );
    assert_eq!(
        c.signed(&r, &at(i64::MAX - 1, i64::MAX, "t8")),
        Err(Reason::PassportNotYetValid)
    );
}

fn second_issuer_config() -> Value {
    let mut cfg = config_json();
    cfg["trust_material"]["issuers"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "issuer": "https://issuer.example/other",
            "keys": [{"kid": KID, "public_key_b64url": pub_b64(&demo_key())}]
        }));
    cfg
}

#[test]
fn identity_and_source_stages() {
    let r = Req::get_order();
    let mut c = Case::default();
    assert_eq!(
        c.signed(&r, &with_claim(&["aud"], json!("billing-api"))),
        Err(Reason::AudienceMismatch)
    );
    assert_eq!(
        c.signed(&r, &with_claim(&["trust_domain"], json!("example.other"))),
        Err(Reason::TrustDomainMismatch)
    );
    let mut cfg = config_json();
    cfg["trust_material"]["issuers"][0]
        .as_object_mut()
        .unwrap()
        .remove("trust_domain");
    cfg["trust_domain"] = json!("example.local");
    let mut c = Case::new(cfg.clone());
    assert_eq!(
        c.signed(&r, &claims()),
        Err(Reason::TrustDomainMismatch),
        "top-level trust_domain"
    );
    cfg.as_object_mut().unwrap().remove("trust_domain");
    let mut c = Case::new(cfg);
    assert_eq!(
        c.signed(&r, &with_claim(&["trust_domain"], json!("example.other"))),
        Err(Reason::SourceTrustDomainMismatch)
    );

    let mut c = Case::new(second_issuer_config());
    assert_eq!(
        c.signed(
            &r,
            &with_claim(&["iss"], json!("https://issuer.example/other"))
        ),
        Err(Reason::SourceIssuerMismatch)
    );
    assert_eq!(
        c.signed(&r, &with_claim(&["sub"], json!("external:jwks:intruder"))),
        Err(Reason::SourceSubjectMismatch)
    );
}

#[test]
fn signer_class_minimums_compose() {
    let r = Req::get_order();
    let hw = with_claim(&["cnf", "key_binding"], json!("hardware_local"));
    for (at, path) in [
        (
            "route",
            vec![
                "policy_bundle",
                "route_groups",
                "0",
                "routes",
                "1",
                "required_key_binding",
            ],
        ),
        (
            "source",
            vec![
                "policy_bundle",
                "route_groups",
                "0",
                "routes",
                "1",
                "allowed_sources",
                "0",
                "required_key_binding",
            ],
        ),
        (
            "bundle",
            vec!["policy_bundle", "default_required_key_binding"],
        ),
        ("top", vec!["required_key_binding"]),
    ] {
        let mut cfg = config_json();
        let mut node = &mut cfg;
        for p in &path[..path.len() - 1] {
            node = match p.parse::<usize>() {
                Ok(i) => &mut node[i],
                Err(_) => &mut node[*p],
            };
        }
        node[path[path.len() - 1]] = json!("hardware_local");
        let mut c = Case::new(cfg);
        assert_eq!(
            c.signed(&r, &claims()),
            Err(Reason::InsufficientKeyBinding),
            "{at}"
        );
        assert_eq!(c.signed(&r, &hw), Ok("orders.get".into()), "{at}");
    }
}

#[test]
fn context_and_provenance_policies() {
    let r = Req::get_order();
    let mut cfg = config_json();
    let src = &mut cfg["policy_bundle"]["route_groups"][0]["routes"][1]["allowed_sources"][0];
    src["context_policy"] =
        json!({"required_tool_name": "orders-runner", "max_txn_value": "1000.00"});
    src["provenance_policy"] = json!({"required_posture": "spiffe_svid_verified"});
    let mut c = Case::new(cfg);
    let good_prov = json!({"posture": "spiffe_svid_verified"});
    let ctx = |v: Value, j: &str| {
        let mut cl = with_claim(&["ctx"], v);
        cl["provenance"] = good_prov.clone();
        cl["jti"] = json!(j);
        cl
    };
    assert_eq!(
        c.signed(
            &r,
            &ctx(
                json!({"tool_name": "orders-runner", "max_txn_value": "1000.00"}),
                "c1"
            )
        ),
        Ok("orders.get".into())
    );
    assert_eq!(
        c.signed(
            &r,
            &ctx(
                json!({"tool_name": "orders-runner", "max_txn_value": 999}),
                "c2"
            )
        ),
        Ok("orders.get".into())
    );
    assert_eq!(
        c.signed(
            &r,
            &ctx(
                json!({"tool_name": "orders-runner", "max_txn_value": "1000.01"}),
                "c3"
            )
        ),
        Err(Reason::ContextMismatch)
    );
    assert_eq!(
        c.signed(
            &r,
            &ctx(
                json!({"tool_name": "orders-runner", "max_txn_value": "1e3"}),
                "c4"
            )
        ),
        Err(Reason::ContextMismatch)
    );
    assert_eq!(
        c.signed(
            &r,
            &ctx(json!({"tool_name": "other", "max_txn_value": "1"}), "c5")
        ),
        Err(Reason::ContextMismatch)
    );
    assert_eq!(
        c.signed(&r, &ctx(json!({"max_txn_value": "1"}), "c6")),
        Err(Reason::MissingContext)
    );
    assert_eq!(
        c.signed(&r, &ctx(json!({"tool_name": "orders-runner"}), "c7")),
        Err(Reason::MissingContext)
    );
    let mut no_ctx = claims();
    no_ctx["provenance"] = json!({"posture": "spiffe_svid_verified"});
    assert_eq!(c.signed(&r, &no_ctx), Err(Reason::MissingContext));
    let mut cl = ctx(
        json!({"tool_name": "orders-runner", "max_txn_value": "1"}),
        "p1",
    );
    cl["provenance"] = json!({"posture": "unverified"});
    assert_eq!(c.signed(&r, &cl), Err(Reason::ProvenanceMismatch));
    cl.as_object_mut().unwrap().remove("provenance");
    assert_eq!(c.signed(&r, &cl), Err(Reason::MissingProvenance));
}

#[test]
fn revocations() {
    let r = Req::get_order();
    for (rev, claims_for) in [
        (json!({"jti": "jti-test-0001"}), claims()),
        (json!({"sub": SUBJECT, "not_before": NOW - 99}), claims()),
        (json!({"issuer": ISSUER, "kid": KID}), claims()),
    ] {
        let mut cfg = config_json();
        cfg["policy_bundle"]["revocations"] = json!([rev]);
        let mut c = Case::new(cfg);
        assert_eq!(c.signed(&r, &claims_for), Err(Reason::Revoked), "{rev}");
    }
    // Revocation is decided right after the signature: before claims and time.
    let mut cfg = config_json();
    cfg["policy_bundle"]["revocations"] = json!([{"jti": "jti-test-0001"}]);
    let mut c = Case::new(cfg);
    let mut expired = claims();
    expired["exp"] = json!(NOW - 60);
    assert_eq!(c.signed(&r, &expired), Err(Reason::Revoked));
    assert_eq!(
        c.signed(&r, &with_claim(&["aud"], json!(7))),
        Err(Reason::Revoked)
    );
    let forged = sign_jws(
        &json!({"alg": "EdDSA", "kid": KID}),
        &claims(),
        &key_from_seed(100),
    );
    let h = r.sign(&claims(), &SIGNED);
    let mut h: Vec<(String, String)> = h
        .into_iter()
        .filter(|(n, _)| n != "authorization")
        .collect();
    h.push(("authorization".into(), format!("Bearer {forged}")));
    assert_eq!(
        c.decide(&r.view(&h), &[], NOW),
        Err(Reason::InvalidPassportSignature)
    );
    // A subject cutoff with an unreadable iat fails closed.
    let mut cfg = config_json();
    cfg["policy_bundle"]["revocations"] = json!([{"sub": SUBJECT, "not_before": NOW - 99}]);
    assert_eq!(
        Case::new(cfg).signed(&r, &with_claim(&["iat"], json!("soon"))),
        Err(Reason::Revoked)
    );
    // Issued at or after the cutoff is fine.
    let mut cfg = config_json();
    cfg["policy_bundle"]["revocations"] = json!([{"sub": SUBJECT, "not_before": NOW - 100}]);
    assert_eq!(
        Case::new(cfg).signed(&r, &claims()),
        Ok("orders.get".into())
    );
}

#[test]
fn body_limit() {
    let mut c = Case::default();
    let mut r = Req::post_order();
    r.body = vec![b'x'; 4097];
    let h = r.sign(&claims(), &SIGNED);
    let mut with_len = h.clone();
    with_len.push(("content-length".into(), "4097".into()));
    assert_eq!(
        c.decide(&r.view(&with_len), &r.body, NOW),
        Err(Reason::BodyTooLarge)
    );
    assert_eq!(
        c.decide(&r.view(&h), &r.body, NOW),
        Err(Reason::BodyTooLarge),
        "chunked, no length"
    );
    r.body = vec![b'x'; 4096];
    assert_eq!(c.signed(&r, &claims()), Ok("orders.create".into()));
}

#[test]
fn proof_headers() {
    let r = Req::post_order();
    let mut c = Case::default();
    let h = r.sign(&claims(), &SIGNED);
    for name in [
        "x-trustplane-proof",
        "x-trustplane-transcript-sha256",
        "x-trustplane-nonce",
        "x-trustplane-body-sha256",
    ] {
        assert_eq!(
            c.decide(&r.view(&without(&h, name)), &r.body, NOW),
            Err(Reason::MissingRequestProof),
            "{name}"
        );
    }
    let mut bad = h.clone();
    set_header(
        &mut bad,
        "x-trustplane-proof",
        &proofgate::b64::encode(&[7u8; 64]),
    );
    assert_eq!(
        c.decide(&r.view(&bad), &r.body, NOW),
        Err(Reason::InvalidRequestProof)
    );
    let mut bad = h.clone();
    set_header(&mut bad, "x-trustplane-proof", "not base64!");
    assert_eq!(
        c.decide(&r.view(&bad), &r.body, NOW),
        Err(Reason::InvalidRequestProof)
    );
    let mut bad = h.clone();
    let upper = h
        .iter()
        .find(|(n, _)| n == "x-trustplane-transcript-sha256")
        .unwrap()
        .1
        .to_uppercase();
    set_header(&mut bad, "x-trustplane-transcript-sha256", &upper);
    assert_eq!(
        c.decide(&r.view(&bad), &r.body, NOW),
        Err(Reason::InvalidRequestProof)
    );
    let mut bad = h.clone();
    set_header(&mut bad, "x-trustplane-transcript-sha256", &"0".repeat(64));
    assert_eq!(
        c.decide(&r.view(&bad), &r.body, NOW),
        Err(Reason::InvalidRequestProof),
        "proof covers the digest header"
    );
    let mut dup = h.clone();
    dup.push((
        "x-trustplane-proof".into(),
        proofgate::b64::encode(&[7u8; 64]),
    ));
    assert_eq!(
        c.decide(&r.view(&dup), &r.body, NOW),
        Err(Reason::InvalidRequestProof)
    );
    assert_eq!(
        c.decide(&r.view(&h), &r.body, NOW),
        Ok("orders.create".into())
    );
}

#[test]
fn request_binding_covers_every_field() {
    let r = Req::post_order();
    let mut c = Case::default();
    let h = r.sign(&claims(), &SIGNED);
    let check = |c: &mut Case, view: RequestView, body: &[u8], what: &str| {
        assert_eq!(
            c.decide(&view, body, NOW),
            Err(Reason::RequestBindingMismatch),
            "{what}"
        );
    };
    let tamper = |f: &dyn Fn(&mut Req)| {
        let mut t = Req::post_order();
        f(&mut t);
        t
    };
    check(
        &mut c,
        tamper(&|t| t.authority = "evil.example".into()).view(&h),
        &r.body,
        "authority",
    );
    check(
        &mut c,
        tamper(&|t| t.path = "/v1/orders?b=2&a=2".into()).view(&h),
        &r.body,
        "query",
    );
    check(
        &mut c,
        tamper(&|t| t.path = "/v1/orders?b=2&a=%zz".into()).view(&h),
        &r.body,
        "malformed query",
    );
    check(
        &mut c,
        r.view(&h),
        b"{\"order_id\":\"ord_124\",\"amount\":\"42.00\"}",
        "body",
    );
    let mut hh = h.clone();
    set_header(&mut hh, "content-type", "text/plain");
    check(&mut c, r.view(&hh), &r.body, "signed header");
    let mut hh = h.clone();
    set_header(&mut hh, "x-trustplane-nonce", "nonce-other");
    check(&mut c, r.view(&hh), &r.body, "nonce");
    let mut hh = h.clone();
    hh.push(("accept".into(), "text/html".into()));
    check(&mut c, r.view(&hh), &r.body, "added signed header");
    let mut hh = h.clone();
    hh.push(("content-encoding".into(), "gzip".into()));
    check(&mut c, r.view(&hh), &r.body, "content-encoding");
    let mut hh = h.clone();
    set_header(&mut hh, "x-trustplane-body-sha256", &"a".repeat(64));
    check(&mut c, r.view(&hh), &r.body, "body hash header");

    // A GET whose path changes within the same template.
    let g = Req::get_order();
    let gh = g.sign(&claims(), &SIGNED);
    let mut moved = Req::get_order();
    moved.path = "/v1/orders/124".into();
    check(&mut c, moved.view(&gh), &[], "path within template");
    // Unsigned headers may change freely; the original still passes once.
    let mut hh = h.clone();
    hh.push(("user-agent".into(), "curl/8".into()));
    assert_eq!(
        c.decide(&r.view(&hh), &r.body, NOW),
        Ok("orders.create".into())
    );
}

#[test]
fn replay_and_full_store() {
    let r = Req::post_order();
    let mut c = Case::default();
    assert_eq!(c.signed(&r, &claims()), Ok("orders.create".into()));
    assert_eq!(c.signed(&r, &claims()), Err(Reason::JtiReplay));
    // A store of one bucket with room for one entry: the second jti finds it full.
    let mut c = Case::default();
    c.engine.replay = proofgate::replay::ReplayStore::with_layout(1, 1, 1);
    assert_eq!(c.signed(&r, &claims()), Ok("orders.create".into()));
    assert_eq!(
        c.signed(&r, &with_claim(&["jti"], json!("another"))),
        Err(Reason::ReplayStoreUnavailable)
    );
}

#[test]
fn exempt_routes_are_segment_aware() {
    let c = Case::default();
    let view = |m: &str, p: &str| {
        RequestView::new(vec![
            (":method".into(), m.as_bytes().to_vec()),
            (":path".into(), p.as_bytes().to_vec()),
        ])
    };
    let exempt = |m: &str, p: &str| {
        matches!(
            c.engine.check_headers(&view(m, p), NOW),
            HeadersVerdict::Exempt(_)
        )
    };
    assert!(exempt("GET", "/healthz"));
    assert!(exempt("GET", "/healthz/live?x=1"));
    assert!(!exempt("GET", "/healthzfoo"));
    assert!(!exempt("POST", "/healthz"));
    assert!(!exempt("GET", "/healthz/../v1/orders"));
    match c.engine.check_headers(&view("GET", "/v1/orders/1"), NOW) {
        HeadersVerdict::Deny(d) => assert_eq!(d.reason, Reason::MissingPassport),
        other => panic!("{other:?}"),
    }
}

#[test]
fn route_id_mode_without_bundle_allows_any_trusted_issuer() {
    let mut cfg = config_json();
    cfg.as_object_mut().unwrap().remove("policy_bundle");
    cfg["routing"] = json!({"mode": "route-id", "route_id": "orders.create"});
    let mut c = Case::new(cfg.clone());
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Ok("orders.create".into())
    );
    cfg["required_key_binding"] = json!("remote_kms");
    let mut c = Case::new(cfg);
    assert_eq!(
        c.signed(&Req::post_order(), &claims()),
        Err(Reason::InsufficientKeyBinding)
    );
}

#[test]
fn software_caller_passport_reuses_the_trust_material_table() {
    let cfg = config(&config_json());
    let key = &cfg.issuers[0].keys[0].key;
    assert!(key.has_table());
    let t = passport(&claims());
    let p = proofgate::passport::verify(&t, &cfg, NOW).unwrap();
    assert!(
        p.cnf_key.has_table(),
        "cnf key equal to the issuer key must take the table path"
    );
    // A cnf key that is not in the trust material takes the variable-base path.
    let other = with_claim(
        &["cnf", "public_key_b64url"],
        json!(pub_b64(&key_from_seed(9))),
    );
    let p = proofgate::passport::verify(&passport(&other), &cfg, NOW).unwrap();
    assert!(!p.cnf_key.has_table());
}

#[test]
fn the_proof_signature_is_checked_with_the_passport_only_for_a_trust_material_cnf_key() {
    use proofgate::crypto::Decided;
    use proofgate::jwks::NoRemoteKeys;
    let cfg = config(&config_json());
    let r = Req::post_order();
    let h = r.sign(&claims(), &SIGNED);
    let view = r.view(&h);
    let ahead = proofgate::proof::read_ahead(&view).unwrap();
    let authorization = &h.iter().find(|(n, _)| n == "authorization").unwrap().1;
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let p =
        proofgate::passport::verify_with(token, &cfg, &NoRemoteKeys, NOW, Some(&ahead)).unwrap();
    assert_eq!(
        p.proof_signature,
        Some(Decided::new(
            &p.cnf_key,
            &ahead.digest,
            &ahead.signature,
            true
        ))
    );
    // A proof signature that does not verify is decided as such, and the passport still does.
    let mut bad = ahead;
    bad.signature[5] ^= 1;
    let p = proofgate::passport::verify_with(token, &cfg, &NoRemoteKeys, NOW, Some(&bad)).unwrap();
    assert_eq!(
        p.proof_signature,
        Some(Decided::new(&p.cnf_key, &bad.digest, &bad.signature, false))
    );
    // A cnf key outside the trust material is not looked at before the passport verifies.
    let other = with_claim(
        &["cnf", "public_key_b64url"],
        json!(pub_b64(&key_from_seed(9))),
    );
    let p =
        proofgate::passport::verify_with(&passport(&other), &cfg, &NoRemoteKeys, NOW, Some(&ahead))
            .unwrap();
    assert_eq!(p.proof_signature, None);
    // A forged passport is refused whatever its proof says.
    let forged = sign_jws(
        &json!({"alg": "EdDSA", "kid": KID}),
        &claims(),
        &key_from_seed(100),
    );
    assert_eq!(
        proofgate::passport::verify_with(&forged, &cfg, &NoRemoteKeys, NOW, Some(&ahead))
            .err()
            .map(|e| e.0),
        Some(Reason::InvalidPassportSignature)
    );
}
