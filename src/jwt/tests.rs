use super::*;
use crate::config::{Config, ProviderKeys};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use serde_json::json;

const NOW: i64 = 1_750_000_000;
const ISS: &str = "https://auth.internal";
const OCT: [u8; 32] = [42; 32];

fn ed_key() -> ed25519_compact::KeyPair {
    ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32]))
}

fn ec_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap()
}

fn jwks() -> Value {
    let ec = ec_key();
    let point = ec.verifying_key().to_encoded_point(false);
    json!([
        {"kty":"OKP","crv":"Ed25519","kid":"ed","x":b64::encode(&ed_key().pk[..])},
        {"kty":"EC","crv":"P-256","kid":"ec","x":b64::encode(point.x().unwrap()),"y":b64::encode(point.y().unwrap())},
        {"kty":"oct","kid":"hs","k":b64::encode(&OCT)},
    ])
}

fn provider_json() -> Value {
    json!({
        "name": "trustline",
        "issuer": ISS,
        "audiences": ["inventory-service"],
        "keys": jwks(),
        "algorithms": ["EdDSA", "ES256", "HS256"],
        "required_scopes": ["read:inventory"],
        "env": "production"
    })
}

fn config_with(provider: Value) -> Config {
    Config::parse(
        json!({
            "jwt_providers": [provider],
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "trustline"}}]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "svc-orders", "aud": "inventory-service",
        "scope": "read:inventory write:inventory", "env": "production",
        "name": "Orders", "jti": "t-1", "iat": NOW - 10, "exp": NOW + 600
    })
}

fn sign_raw(header: &str, payload: &str, alg: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig: Vec<u8> = match alg {
        "EdDSA" => ed_key().sk.sign(input.as_bytes(), None).to_vec(),
        "ES256" => {
            let s: p256::ecdsa::Signature = ec_key().sign(input.as_bytes());
            s.to_bytes().to_vec()
        }
        "HS256" => {
            let mut m = Hmac::<Sha256>::new_from_slice(&OCT).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => vec![0; 64],
    };
    format!("{input}.{}", b64::encode(&sig))
}

fn mint(alg: &str, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
    sign_raw(&header.to_string(), &claims.to_string(), alg)
}

fn check_with(
    cfg: &Config,
    token: &str,
    extra: &[String],
    now: i64,
) -> Result<VerifiedToken, Reason> {
    let p = &cfg.jwt_providers[0];
    let ProviderKeys::Inline(keys) = &p.keys else {
        panic!("inline keys expected")
    };
    let ctx = Context {
        provider: p,
        keys,
        extra_scopes: extra,
        revocations: &[],
        now,
    };
    verify(token, &ctx, None)
}

fn check(token: &str) -> Result<VerifiedToken, Reason> {
    check_with(&config_with(provider_json()), token, &[], NOW)
}

fn with(mutate: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    mutate(&mut c);
    c
}

#[test]
fn each_algorithm_verifies() {
    for (alg, kid) in [("EdDSA", "ed"), ("ES256", "ec"), ("HS256", "hs")] {
        let t = check(&mint(alg, kid, &claims())).unwrap_or_else(|r| panic!("{alg}: {r}"));
        assert_eq!(t.alg.name(), alg);
        assert_eq!(t.sub.as_deref(), Some("svc-orders"));
        assert_eq!(t.jti.as_deref(), Some("t-1"));
        assert_eq!(t.scopes, ["read:inventory", "write:inventory"]);
        assert_eq!(
            t.header_value("scope").as_deref(),
            Some("read:inventory write:inventory")
        );
        assert!(!t.cached);
    }
}

#[test]
fn malformed_tokens() {
    let good = mint("EdDSA", "ed", &claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let bad = [
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.x"),
        format!("{h}.{p}."),
        format!(".{p}.{s}"),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.+{}", &s[1..]),
        format!("{}.{p}.{s}", b64::encode(b"[]")),
        format!("{h}.{}.{s}", b64::encode(b"not json")),
        "a".repeat(MAX_TOKEN_BYTES + 1),
        String::new(),
    ];
    for t in bad {
        assert_eq!(check(&t).err(), Some(Reason::MalformedToken), "{t:.60}");
    }
    let c = claims().to_string();
    // alg none, an alg the provider does not list, unknown alg, crit, foreign typ.
    for header in [
        r#"{"alg":"none","kid":"ed"}"#,
        r#"{"alg":"None","kid":"ed"}"#,
        r#"{"kid":"ed"}"#,
        r#"{"alg":"RS256","kid":"ed"}"#,
        r#"{"alg":"HS512","kid":"hs"}"#,
        r#"{"alg":"EdDSA","kid":"ed","crit":["exp"]}"#,
        r#"{"alg":"EdDSA","kid":"ed","typ":"dpop+jwt"}"#,
        r#"{"alg":"EdDSA","kid":7}"#,
        r#"{"alg":"EdDSA","kid":"ed","alg":"EdDSA"}"#,
    ] {
        assert_eq!(
            check(&sign_raw(header, &c, "EdDSA")).err(),
            Some(Reason::MalformedToken),
            "{header}"
        );
    }
    // HMAC keyed by a public key: HS256 naming the Ed25519 key's kid.
    assert_eq!(
        check(&mint("HS256", "ed", &claims())).err(),
        Some(Reason::MalformedToken)
    );
    // An asymmetric alg naming the oct key.
    assert_eq!(
        check(&mint("EdDSA", "hs", &claims())).err(),
        Some(Reason::MalformedToken)
    );
    // Duplicates inside the claims.
    let dup = format!(r#"{{"cnf":{{"jkt":"a","jkt":"b"}},{}"#, &c[1..]);
    assert_eq!(
        check(&sign_raw(r#"{"alg":"EdDSA","kid":"ed"}"#, &dup, "EdDSA")).err(),
        Some(Reason::MalformedToken)
    );
}

#[test]
fn alg_none_is_refused_even_when_listed_nowhere_else() {
    // An unsigned token cannot even be configured: "none" is not an algorithm.
    let mut p = provider_json();
    p["algorithms"] = json!(["none"]);
    let err = Config::parse(
        json!({"jwt_providers": [p], "rules": [{"match": {"prefix": "/"}, "requires": "allow"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.path, "$.jwt_providers[0].algorithms[0]");
    let unsigned = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none"}"#),
        b64::encode(claims().to_string().as_bytes())
    );
    assert_eq!(check(&unsigned).err(), Some(Reason::MalformedToken));
}

#[test]
fn keys_and_signatures() {
    assert_eq!(
        check(&mint("EdDSA", "nope", &claims())).err(),
        Some(Reason::UnknownSigningKey)
    );
    // No kid with several EdDSA-capable keys is fine here (one Ed25519 key): found.
    let no_kid = sign_raw(r#"{"alg":"EdDSA"}"#, &claims().to_string(), "EdDSA");
    assert!(check(&no_kid).is_ok());
    for (alg, kid) in [("EdDSA", "ed"), ("ES256", "ec"), ("HS256", "hs")] {
        let t = mint(alg, kid, &claims());
        // Flip a bit of the payload after signing: same framing, wrong signature.
        let (h, rest) = t.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let other = b64::encode(with(|c| c["sub"] = json!("admin")).to_string().as_bytes());
        assert_eq!(
            check(&format!("{h}.{other}.{s}")).err(),
            Some(Reason::InvalidTokenSignature),
            "{alg}"
        );
        // A signature of the wrong length.
        assert_eq!(
            check(&format!(
                "{h}.{}.{}",
                rest.split_once('.').unwrap().0,
                b64::encode(&[1u8; 10])
            ))
            .err(),
            Some(Reason::InvalidTokenSignature),
            "{alg}"
        );
    }
}

#[test]
fn revocations_follow_the_signature() {
    let cfg = config_with(provider_json());
    let p = &cfg.jwt_providers[0];
    let ProviderKeys::Inline(keys) = &p.keys else {
        panic!("inline keys expected")
    };
    let run = |revocations: &[Revocation], claims: &Value| {
        let ctx = Context {
            provider: p,
            keys,
            extra_scopes: &[],
            revocations,
            now: NOW,
        };
        verify(&mint("EdDSA", "ed", claims), &ctx, None).err()
    };
    assert_eq!(
        run(&[Revocation::Jti("t-1".into())], &claims()),
        Some(Reason::Revoked)
    );
    let cutoff = [Revocation::SubjectBefore {
        sub: "svc-orders".into(),
        not_before: NOW,
    }];
    assert_eq!(run(&cutoff, &claims()), Some(Reason::Revoked));
    assert_eq!(run(&cutoff, &with(|c| c["iat"] = json!(NOW))), None);
    let key = [Revocation::Key {
        issuer: ISS.into(),
        kid: "ed".into(),
    }];
    assert_eq!(run(&key, &claims()), Some(Reason::Revoked));
    // Revocation comes before the issuer check.
    assert_eq!(
        run(
            &[Revocation::Jti("t-1".into())],
            &with(|c| c["iss"] = json!("https://other"))
        ),
        Some(Reason::Revoked)
    );
}

#[test]
fn claims_in_order_with_exact_reasons() {
    let cases: Vec<(Value, Option<Reason>)> = vec![
        (
            with(|c| c["iss"] = json!("https://evil")),
            Some(Reason::IssuerMismatch),
        ),
        (
            with(|c| {
                c.as_object_mut()
                    .unwrap()
                    .remove("iss")
                    .map(|_| ())
                    .unwrap()
            }),
            Some(Reason::IssuerMismatch),
        ),
        (
            with(|c| c["exp"] = json!(NOW - 31)),
            Some(Reason::TokenExpired),
        ),
        (
            with(|c| c["exp"] = json!(NOW - 30)),
            Some(Reason::TokenExpired),
        ),
        (with(|c| c["exp"] = json!(NOW - 29)), None),
        (
            with(|c| {
                c.as_object_mut()
                    .unwrap()
                    .remove("exp")
                    .map(|_| ())
                    .unwrap()
            }),
            Some(Reason::MalformedToken),
        ),
        (
            with(|c| c["exp"] = json!(1e300)),
            Some(Reason::MalformedToken),
        ),
        (
            with(|c| c["exp"] = json!(u64::MAX)),
            Some(Reason::MalformedToken),
        ),
        (
            with(|c| c["exp"] = json!("1750000600")),
            Some(Reason::MalformedToken),
        ),
        (
            with(|c| c["exp"] = json!(i64::MAX)),
            Some(Reason::TokenExpired),
        ),
        (
            with(|c| c["nbf"] = json!(NOW + 31)),
            Some(Reason::TokenNotYetValid),
        ),
        (with(|c| c["nbf"] = json!(NOW + 30)), None),
        (
            with(|c| c["nbf"] = json!(1.5)),
            Some(Reason::MalformedToken),
        ),
        (
            with(|c| c["iat"] = json!(NOW + 31)),
            Some(Reason::TokenNotYetValid),
        ),
        (
            with(|c| c["iat"] = json!(i64::MIN)),
            Some(Reason::TokenExpired),
        ),
        (
            with(|c| c["exp"] = json!(NOW - 10 + 86_401)),
            Some(Reason::TokenExpired),
        ),
        (with(|c| c["exp"] = json!(NOW - 10 + 86_400)), None),
        (
            with(|c| c["aud"] = json!("other")),
            Some(Reason::AudienceMismatch),
        ),
        (
            with(|c| c["aud"] = json!(["other", "inventory-service"])),
            None,
        ),
        (
            with(|c| c["aud"] = json!([])),
            Some(Reason::AudienceMismatch),
        ),
        (
            with(|c| {
                c.as_object_mut()
                    .unwrap()
                    .remove("aud")
                    .map(|_| ())
                    .unwrap()
            }),
            Some(Reason::AudienceMismatch),
        ),
        (
            with(|c| c["scope"] = json!("write:inventory")),
            Some(Reason::InsufficientScope),
        ),
        (
            with(|c| c["scope"] = json!(["read:inventory"])),
            Some(Reason::InsufficientScope),
        ),
        (
            with(|c| c["scope"] = json!("read:inventoryx")),
            Some(Reason::InsufficientScope),
        ),
        (
            with(|c| c["env"] = json!("staging")),
            Some(Reason::EnvMismatch),
        ),
        (with(|c| c["env"] = json!(null)), Some(Reason::EnvMismatch)),
        // Earlier checks win: an expired token with a wrong audience is expired.
        (
            with(|c| {
                c["exp"] = json!(NOW - 100);
                c["aud"] = json!("x");
            }),
            Some(Reason::TokenExpired),
        ),
        (
            with(|c| {
                c["aud"] = json!("x");
                c["scope"] = json!("");
            }),
            Some(Reason::AudienceMismatch),
        ),
        (
            with(|c| {
                c["scope"] = json!("");
                c["env"] = json!("x");
            }),
            Some(Reason::InsufficientScope),
        ),
    ];
    for (c, want) in cases {
        assert_eq!(check(&mint("ES256", "ec", &c)).err(), want, "{c}");
    }
    // Without iat the lifetime runs from now.
    let no_iat = with(|c| {
        c.as_object_mut().unwrap().remove("iat");
        c["exp"] = json!(NOW + 86_401);
    });
    assert_eq!(
        check(&mint("EdDSA", "ed", &no_iat)).err(),
        Some(Reason::TokenExpired)
    );
}

#[test]
fn rule_scopes_add_to_the_providers() {
    let cfg = config_with(provider_json());
    let t = mint("EdDSA", "ed", &claims());
    assert!(check_with(&cfg, &t, &["write:inventory".into()], NOW).is_ok());
    assert_eq!(
        check_with(&cfg, &t, &["admin".into()], NOW).err(),
        Some(Reason::InsufficientScope)
    );
    assert_eq!(
        required_scopes(&cfg.jwt_providers[0], &["admin".into()]),
        "read:inventory admin"
    );
}

#[test]
fn cache_skips_only_the_signature() {
    let cfg = config_with(provider_json());
    let p = &cfg.jwt_providers[0];
    let ProviderKeys::Inline(keys) = &p.keys else {
        panic!("inline keys expected")
    };
    let mut cache = TokenCache::new(2);
    cache.sync_generation(1);
    let run = |token: &str, now: i64, revocations: &[Revocation], cache: &mut TokenCache| {
        let ctx = Context {
            provider: p,
            keys,
            extra_scopes: &[],
            revocations,
            now,
        };
        verify(token, &ctx, Some(cache))
    };
    let t = mint("EdDSA", "ed", &claims());
    assert!(!run(&t, NOW, &[], &mut cache).unwrap().cached);
    assert!(run(&t, NOW, &[], &mut cache).unwrap().cached);
    assert_eq!(cache.len(), 1);
    // Time, revocations and the rest still run on a hit.
    assert_eq!(
        run(&t, NOW + 700, &[], &mut cache).err(),
        Some(Reason::TokenExpired)
    );
    assert_eq!(
        run(&t, NOW, &[Revocation::Jti("t-1".into())], &mut cache).err(),
        Some(Reason::Revoked)
    );
    // A bad signature on the same claims is not a hit: the key is the whole token.
    let (hp, _) = t.rsplit_once('.').unwrap();
    let forged = format!("{hp}.{}", b64::encode(&[0u8; 64]));
    assert_eq!(
        run(&forged, NOW, &[], &mut cache).err(),
        Some(Reason::InvalidTokenSignature)
    );
    // A failed check never enters the cache.
    let wrong_aud = mint("EdDSA", "ed", &with(|c| c["aud"] = json!("x")));
    assert_eq!(
        run(&wrong_aud, NOW, &[], &mut cache).err(),
        Some(Reason::AudienceMismatch)
    );
    assert_eq!(cache.len(), 1);
    // Bounded: the entry leaving soonest makes room.
    let t2 = mint("EdDSA", "ed", &with(|c| c["exp"] = json!(NOW + 100)));
    let t3 = mint("EdDSA", "ed", &with(|c| c["exp"] = json!(NOW + 200)));
    run(&t2, NOW, &[], &mut cache).unwrap();
    run(&t3, NOW, &[], &mut cache).unwrap();
    assert_eq!(cache.len(), 2);
    assert!(
        !run(&t2, NOW, &[], &mut cache).unwrap().cached,
        "t2 was evicted"
    );
    // Entries leave at exp: past it the entry is not a hit (and the time check refuses anyway).
    // A new key set clears the cache.
    cache.sync_generation(2);
    assert!(cache.is_empty());
    assert!(!run(&t, NOW, &[], &mut cache).unwrap().cached);
    // max_entries 0 disables it.
    let mut off = TokenCache::new(0);
    run(&t, NOW, &[], &mut off).unwrap();
    assert!(!run(&t, NOW, &[], &mut off).unwrap().cached);
}

#[test]
fn find_token_in_from_headers() {
    let mut pj = provider_json();
    pj["from_headers"] = json!([
        {"name": "X-Service-Token"},
        {"name": "authorization", "value_prefix": "Bearer "}
    ]);
    let cfg = config_with(pj);
    let p = &cfg.jwt_providers[0];
    let headers = |list: Vec<(&'static str, &'static [u8])>| {
        move |name: &str| -> Vec<&'static [u8]> {
            list.iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .collect()
        }
    };
    let f = headers(vec![("authorization", b"Bearer abc")]);
    assert_eq!(find_token(p, &f).unwrap().token, "abc");
    let f = headers(vec![
        ("x-service-token", b"xyz"),
        ("authorization", b"Bearer abc"),
    ]);
    assert_eq!(find_token(p, &f).unwrap().header, "x-service-token");
    let f = headers(vec![]);
    assert_eq!(find_token(p, &f).err(), Some(Reason::MissingToken));
    let f = headers(vec![("authorization", b"Basic abc")]);
    assert_eq!(find_token(p, &f).err(), Some(Reason::MalformedToken));
    let f = headers(vec![
        ("authorization", b"Bearer a"),
        ("authorization", b"Bearer b"),
    ]);
    assert_eq!(find_token(p, &f).err(), Some(Reason::MalformedToken));
    let f = headers(vec![("authorization", b"Bearer \xff")]);
    assert_eq!(find_token(p, &f).err(), Some(Reason::MalformedToken));
}

#[test]
fn unverified_issuer_reads_only_a_strict_payload() {
    assert_eq!(
        unverified_issuer(&mint("EdDSA", "ed", &claims())).as_deref(),
        Some(ISS)
    );
    assert_eq!(unverified_issuer("x"), None);
    assert_eq!(unverified_issuer("a.b.c"), None);
    let dup = format!("e30.{}.", b64::encode(br#"{"iss":"a","iss":"b"}"#));
    assert_eq!(unverified_issuer(&dup), None);
}

#[test]
fn claim_header_values_are_clean() {
    let t = check(&mint(
        "EdDSA",
        "ed",
        &with(|c| {
            c["name"] = json!("line\nbreak");
            c["groups"] = json!(["a", "b"]);
            c["n"] = json!(5);
        }),
    ))
    .unwrap();
    assert_eq!(t.header_value("name"), None);
    assert_eq!(t.header_value("groups").as_deref(), Some("a b"));
    assert_eq!(t.header_value("n"), None);
    assert_eq!(t.header_value("missing"), None);
}
