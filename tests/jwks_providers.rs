//! JWT providers whose issuer publishes its keys as a JWKS (DESIGN.md sections 12 and 13),
//! through the decision pipeline with two "worker VMs" (two key rings over one in-memory shared
//! store) and an explicit clock: configuration, held while keys are on their way and decided
//! again at the wake-up, one rate-limited refetch for a rotated `kid` or a failing signature,
//! `keys_unavailable` with `Retry-After`, last good keys until `max_stale_seconds`, and the
//! verified-token cache emptied when the provider's key set changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::config::{Config, ProviderKeys};
use proofgate::jwks::{Completion, Election, FetchError, Ring, Trigger, Waiters};
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::{json, Value};

const VM_A: u64 = 1;
const VM_B: u64 = 2;
const MS: i64 = 1000;
const TOKEN_ISS: &str = "https://auth.internal";

fn remote_config() -> Value {
    json!({
        "jwt_providers": [{
            "name": "trustline", "issuer": TOKEN_ISS,
            "jwks": {"cluster": "auth", "uri": "http://127.0.0.1:9/jwks.json", "cache_seconds": 60,
                     "timeout_ms": 2000, "min_refetch_seconds": 10, "max_stale_seconds": 30},
            "clock_skew_seconds": 0
        }],
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "trustline"}}]
    })
}

fn jwks(entries: &[(&str, u8)]) -> Vec<u8> {
    let keys: Vec<Value> = entries
        .iter()
        .map(|(kid, seed)| {
            json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                   "x": pub_b64(&key_from_seed(*seed))})
        })
        .collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

fn token(kid: &str, seed: u8, jti: &str) -> String {
    sign_jws(
        &json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"}),
        &json!({"iss": TOKEN_ISS, "sub": "svc-a", "scope": "read", "jti": jti,
                "exp": NOW + 300, "iat": NOW - 5}),
        &key_from_seed(seed),
    )
}

fn get(auth: &str) -> RequestView {
    RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/v1/things".to_vec()),
        (":authority".into(), b"api.example".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {auth}").into_bytes(),
        ),
    ])
}

struct Vm {
    ring: Ring,
    waiters: Waiters,
    owner: u64,
}

struct World {
    engine: Engine,
    store: MemoryStore,
    a: Vm,
    b: Vm,
}

impl World {
    fn new() -> World {
        let engine = Engine::new(config(&remote_config()), NOW - 10);
        let mut store = MemoryStore::default();
        let ring = Ring::new(&engine.config);
        assert_eq!(ring.entries.len(), 1);
        assert_eq!(ring.provider_index("trustline"), Some(0));
        ring.create(&mut store).unwrap();
        let vm = |owner| Vm {
            ring: ring.clone(),
            waiters: Waiters::default(),
            owner,
        };
        World {
            engine,
            store,
            a: vm(VM_A),
            b: vm(VM_B),
        }
    }

    fn vm(&mut self, owner: u64) -> (&mut Vm, &mut MemoryStore) {
        let vm = if owner == VM_A {
            &mut self.a
        } else {
            &mut self.b
        };
        (vm, &mut self.store)
    }

    fn tick(&mut self, owner: u64, now: i64) -> (Vec<Election>, Vec<u32>) {
        let (vm, store) = self.vm(owner);
        let ticks = vm.ring.tick(store, vm.owner, now * MS, &vm.waiters);
        let woken = vm.ring.wake(&mut vm.waiters, &ticks, now * MS);
        (
            ticks.into_iter().map(|t| t.election.unwrap()).collect(),
            woken,
        )
    }

    fn respond(&mut self, owner: u64, now: i64, result: Result<&[u8], FetchError>) -> Completion {
        let (vm, store) = self.vm(owner);
        vm.ring
            .complete(0, store, vm.owner, now * MS, result)
            .unwrap()
    }

    fn decide(&self, owner: u64, token: &str, now: i64, may_hold: bool) -> HeadersVerdict {
        let ring = if owner == VM_A {
            &self.a.ring
        } else {
            &self.b.ring
        };
        self.engine
            .check_headers_with(&get(token), now, ring, may_hold)
    }

    /// Prefetch by VM A at `now`, adopted by both VMs.
    fn loaded(now: i64, doc: &[u8]) -> World {
        let mut w = World::new();
        assert_eq!(w.tick(VM_A, now).0, [Election::Claimed(Trigger::Scheduled)]);
        assert!(matches!(
            w.respond(VM_A, now, Ok(doc)),
            Completion::Stored { .. }
        ));
        w.tick(VM_B, now);
        w
    }
}

fn cache_hit(v: &HeadersVerdict) -> bool {
    match v {
        HeadersVerdict::NeedBody(p) => p.facts.token_cache_hit,
        other => panic!("expected a pass, got {other:?}"),
    }
}

fn err(v: &Value) -> (String, String) {
    let e = Config::parse(v.to_string().as_bytes()).unwrap_err();
    (e.path, e.message)
}

#[test]
fn a_provider_takes_a_jwks_object_with_its_defaults() {
    let mut v = remote_config();
    v["jwt_providers"][0]["jwks"] = json!({"cluster": "auth"});
    let c = config(&v);
    let ProviderKeys::Remote(j) = &c.jwt_providers[0].keys else {
        panic!("remote keys expected");
    };
    assert_eq!(j.uri, "https://auth.internal/.well-known/jwks.json");
    assert_eq!(
        (j.authority.as_str(), j.path.as_str()),
        ("auth.internal", "/.well-known/jwks.json")
    );
    assert_eq!(
        (
            j.cache_seconds,
            j.timeout_ms,
            j.min_refetch_seconds,
            j.max_stale_seconds,
            j.max_bytes
        ),
        (600, 2000, 30, 86_400, 262_144)
    );
    // A DPoP provider's access tokens may come from a JWKS too.
    v["jwt_providers"][0]["dpop"] = json!("required");
    assert!(matches!(
        config(&v).jwt_providers[0].keys,
        ProviderKeys::Remote(_)
    ));
}

#[test]
fn jwks_refusals_name_their_json_path() {
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = remote_config();
        edit(&mut v);
        err(&v)
    };
    let (path, msg) = with(&|v| v["jwt_providers"][0]["algorithms"] = json!(["EdDSA", "HS256"]));
    assert_eq!(path, "$.jwt_providers[0].algorithms[1]");
    assert!(msg.contains("HS256 is not allowed with jwks"), "{msg}");
    // The same for a DPoP provider.
    let (path, _) = with(&|v| {
        v["jwt_providers"][0]["algorithms"] = json!(["HS256"]);
        v["jwt_providers"][0]["dpop"] = json!("allowed");
    });
    assert_eq!(path, "$.jwt_providers[0].algorithms[0]");
    let (path, _) = with(&|v| v["jwt_providers"][0]["jwks"] = json!({"uri": "https://a/j"}));
    assert_eq!(path, "$.jwt_providers[0].jwks.cluster");
    let (path, msg) = with(&|v| {
        v["jwt_providers"][0]["keys"] = json!([{"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}])
    });
    assert_eq!(path, "$.jwt_providers[0].jwks");
    assert!(msg.contains("not both"), "{msg}");
    let (path, _) = with(&|v| v["jwt_providers"][0]["jwks"] = json!("auth"));
    assert_eq!(path, "$.jwt_providers[0].jwks");
    let (path, _) = with(&|v| v["jwt_providers"][0]["jwks"]["max_bytes"] = json!(10));
    assert_eq!(path, "$.jwt_providers[0].jwks.max_bytes");
}

#[test]
fn first_request_is_held_through_the_prefetch_then_allowed() {
    let mut w = World::new();
    let t = token("k1", 10, "j1");
    let h = hold(w.decide(VM_B, &t, NOW, true));
    assert_eq!(
        (h.source, h.refetch, h.generation, h.timeout_ms),
        (0, None, 0, 2000)
    );
    w.b.waiters.hold(held(7, h, NOW));
    // Decided now without holding: the gateway's own 503 with Retry-After, never a 401.
    match w.decide(VM_B, &t, NOW, false) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert_eq!(d.retry_after, Some(1));
            assert_eq!(d.facts.provider.as_deref(), Some("trustline"));
        }
        other => panic!("{other:?}"),
    }
    // One fetch for two workers.
    assert_eq!(w.tick(VM_A, NOW).0, [Election::Claimed(Trigger::Scheduled)]);
    assert_eq!(w.tick(VM_B, NOW).0, [Election::InFlight]);
    assert_eq!(
        w.respond(VM_A, NOW, Ok(&jwks(&[("k1", 10)]))),
        Completion::Stored {
            generation: 1,
            changed: true
        }
    );
    assert_eq!(w.tick(VM_B, NOW + 1), (vec![Election::NotDue], vec![7]));
    assert!(matches!(
        w.decide(VM_B, &t, NOW + 1, false),
        HeadersVerdict::NeedBody(_)
    ));
}

#[test]
fn a_malformed_token_is_refused_at_once_even_without_keys() {
    let w = World::new();
    for bad in ["not-a-jwt", "a.b.c", "e30.e30.", "x.y.z.w"] {
        assert_eq!(
            deny_reason(&w.decide(VM_A, bad, NOW, true)),
            Some(Reason::MalformedToken),
            "{bad}"
        );
    }
    let none = sign_jws(
        &json!({"alg": "none"}),
        &json!({"iss": TOKEN_ISS}),
        &key_from_seed(1),
    );
    assert_eq!(
        deny_reason(&w.decide(VM_A, &none, NOW, true)),
        Some(Reason::MalformedToken)
    );
}

#[test]
fn no_fetch_in_time_is_a_prompt_503_not_a_hold() {
    let mut w = World::new();
    // The first fetch fails: the next attempt is 1 s away, within timeout_ms: still held.
    assert_eq!(w.tick(VM_A, NOW).0, [Election::Claimed(Trigger::Scheduled)]);
    w.respond(VM_A, NOW, Err(FetchError::Status(500)));
    w.tick(VM_A, NOW);
    assert!(matches!(
        w.decide(VM_A, &token("k1", 10, "j"), NOW, true),
        HeadersVerdict::AwaitKeys(_)
    ));
    // After four more failures the backoff (16 s) is beyond timeout_ms: answered at once.
    for n in 1..=4 {
        let at = NOW + 100 * n;
        assert_eq!(w.tick(VM_A, at).0, [Election::Claimed(Trigger::Scheduled)]);
        w.respond(VM_A, at, Err(FetchError::NoResponse));
    }
    w.tick(VM_A, NOW + 400);
    match w.decide(VM_A, &token("k1", 10, "j"), NOW + 400, true) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert_eq!(d.retry_after, Some(16));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rotated_kid_is_picked_up_by_one_rate_limited_refetch() {
    let mut w = World::loaded(NOW, &jwks(&[("k1", 10)]));
    assert!(matches!(
        w.decide(VM_B, &token("k1", 10, "a"), NOW, true),
        HeadersVerdict::NeedBody(_)
    ));
    // Too soon after the fetch for another (min_refetch_seconds = 10)? No: the first refetch
    // of a source is always allowed; later ones are spaced.
    let h = hold(w.decide(VM_B, &token("k2", 11, "b"), NOW + 1, true));
    assert_eq!((h.refetch, h.generation), (Some(Trigger::UnknownKid), 1));
    w.b.waiters.hold(held(3, h, NOW + 1));
    // VM B asks for the refetch; VM A, with nothing held, does not fetch.
    assert_eq!(w.tick(VM_A, NOW + 1).0, [Election::NotDue]);
    assert_eq!(
        w.tick(VM_B, NOW + 1).0,
        [Election::Claimed(Trigger::UnknownKid)]
    );
    w.respond(VM_B, NOW + 1, Ok(&jwks(&[("k1", 10), ("k2", 11)])));
    assert_eq!(w.tick(VM_B, NOW + 1).1, vec![3]);
    assert!(matches!(
        w.decide(VM_B, &token("k2", 11, "b"), NOW + 1, false),
        HeadersVerdict::NeedBody(_)
    ));
    // VM A adopts the one shared copy on its next tick.
    w.tick(VM_A, NOW + 2);
    assert!(matches!(
        w.decide(VM_A, &token("k2", 11, "c"), NOW + 2, true),
        HeadersVerdict::NeedBody(_)
    ));
    // A storm of made-up kids within min_refetch_seconds: no hold, no fetch, a plain 401.
    for n in 0..50 {
        let v = w.decide(
            VM_A,
            &token(&format!("made-up-{n}"), 12, "d"),
            NOW + 5,
            true,
        );
        assert_eq!(deny_reason(&v), Some(Reason::UnknownSigningKey));
    }
    assert_eq!(w.tick(VM_A, NOW + 5).0, [Election::NotDue]);
    // After min_refetch_seconds one more refetch is allowed, and still unknown is a 401.
    let h = hold(w.decide(VM_A, &token("made-up", 12, "e"), NOW + 12, true));
    w.a.waiters.hold(held(9, h, NOW + 12));
    assert_eq!(
        w.tick(VM_A, NOW + 12).0,
        [Election::Claimed(Trigger::UnknownKid)]
    );
    w.respond(VM_A, NOW + 12, Ok(&jwks(&[("k1", 10), ("k2", 11)])));
    assert_eq!(w.tick(VM_A, NOW + 12).1, vec![9]);
    assert_eq!(
        deny_reason(&w.decide(VM_A, &token("made-up", 12, "e"), NOW + 12, false)),
        Some(Reason::UnknownSigningKey)
    );
}

#[test]
fn a_failing_signature_with_old_keys_refetches_once() {
    let mut w = World::loaded(NOW, &jwks(&[("k1", 10)]));
    // Same kid, another key (the issuer re-keyed under the same kid).
    let forged = token("k1", 13, "x");
    // Keys younger than min_refetch_seconds: refused at once.
    assert_eq!(
        deny_reason(&w.decide(VM_A, &forged, NOW + 5, true)),
        Some(Reason::InvalidTokenSignature)
    );
    let h = hold(w.decide(VM_A, &forged, NOW + 11, true));
    assert_eq!(h.refetch, Some(Trigger::BadSignature));
    w.a.waiters.hold(held(4, h, NOW + 11));
    assert_eq!(
        w.tick(VM_A, NOW + 11).0,
        [Election::Claimed(Trigger::BadSignature)]
    );
    w.respond(VM_A, NOW + 11, Ok(&jwks(&[("k1", 13)])));
    assert_eq!(w.tick(VM_A, NOW + 11).1, vec![4]);
    assert!(matches!(
        w.decide(VM_A, &forged, NOW + 11, false),
        HeadersVerdict::NeedBody(_)
    ));
    // And the old key's tokens are now the failing ones.
    assert_eq!(
        deny_reason(&w.decide(VM_A, &token("k1", 10, "y"), NOW + 12, true)),
        Some(Reason::InvalidTokenSignature)
    );
}

#[test]
fn the_token_cache_is_emptied_when_the_key_set_changes() {
    let mut w = World::loaded(NOW, &jwks(&[("k1", 10)]));
    let t = token("k1", 10, "cached");
    assert!(!cache_hit(&w.decide(VM_A, &t, NOW, true)));
    assert!(cache_hit(&w.decide(VM_A, &t, NOW + 1, true)));
    // The same bytes again keep the generation: the cache stays.
    assert_eq!(
        w.tick(VM_A, NOW + 60).0,
        [Election::Claimed(Trigger::Scheduled)]
    );
    assert_eq!(
        w.respond(VM_A, NOW + 60, Ok(&jwks(&[("k1", 10)]))),
        Completion::Stored {
            generation: 1,
            changed: false
        }
    );
    assert!(cache_hit(&w.decide(VM_A, &t, NOW + 60, true)));
    // A new key set (k1 kept, k2 added): the cache is cleared, the signature checked again.
    assert_eq!(
        w.tick(VM_A, NOW + 120).0,
        [Election::Claimed(Trigger::Scheduled)]
    );
    assert_eq!(
        w.respond(VM_A, NOW + 120, Ok(&jwks(&[("k1", 10), ("k2", 11)]))),
        Completion::Stored {
            generation: 2,
            changed: true
        }
    );
    assert!(!cache_hit(&w.decide(VM_A, &t, NOW + 120, true)));
    assert!(cache_hit(&w.decide(VM_A, &t, NOW + 121, true)));
    // k1 removed: a cached token of k1 is refused, not served from the cache.
    assert_eq!(
        w.tick(VM_A, NOW + 180).0,
        [Election::Claimed(Trigger::Scheduled)]
    );
    w.respond(VM_A, NOW + 180, Ok(&jwks(&[("k2", 11)])));
    assert_eq!(
        deny_reason(&w.decide(VM_A, &t, NOW + 180, false)),
        Some(Reason::UnknownSigningKey)
    );
}

#[test]
fn last_good_keys_serve_until_max_stale_seconds_then_keys_unavailable() {
    let mut w = World::loaded(NOW, &jwks(&[("k1", 10)]));
    // Refreshes fail from the first one on (cache 60 s: due at 48 s).
    let mut at = NOW + 48;
    while at < NOW + 95 {
        if let [Election::Claimed(_)] = w.tick(VM_A, at).0[..] {
            w.respond(VM_A, at, Err(FetchError::Status(503)));
        }
        at += 1;
    }
    // cache_seconds + max_stale_seconds = 90 s after the good fetch: still served at 89 s...
    assert!(matches!(
        w.decide(VM_A, &token("k1", 10, "s"), NOW + 89, false),
        HeadersVerdict::NeedBody(_)
    ));
    // ...dropped at 90 s.
    match w.decide(VM_A, &token("k1", 10, "s"), NOW + 90, false) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert!(d.retry_after.is_some_and(|s| s >= 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_document_with_no_key_for_the_providers_algorithms_keeps_the_last_good_keys() {
    let mut v = remote_config();
    v["jwt_providers"][0]["algorithms"] = json!(["ES256"]);
    let engine = Engine::new(config(&v), NOW);
    let mut ring = Ring::new(&engine.config);
    let mut store = MemoryStore::default();
    ring.create(&mut store).unwrap();
    let w = Waiters::default();
    assert_eq!(
        ring.tick(&mut store, VM_A, NOW * MS, &w)[0].election,
        Ok(Election::Claimed(Trigger::Scheduled))
    );
    // Only Ed25519 keys, an oct key, and a private key: nothing for ES256.
    let doc = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": pub_b64(&key_from_seed(1))},
        {"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}
    ]})
    .to_string();
    match ring
        .complete(0, &mut store, VM_A, NOW * MS, Ok(doc.as_bytes()))
        .unwrap()
    {
        Completion::Failed {
            error, failures, ..
        } => {
            assert_eq!(
                error,
                FetchError::Document("no key for the provider's algorithms")
            );
            assert_eq!(failures, 1);
        }
        other => panic!("{other:?}"),
    }
    // Thousands of keys: refused whole.
    let many: Vec<Value> = (0..2000)
        .map(|i| json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"), "x": pub_b64(&key_from_seed(1))}))
        .collect();
    let doc = json!({ "keys": many }).to_string();
    ring.tick(&mut store, VM_A, (NOW + 2) * MS, &w);
    match ring
        .complete(0, &mut store, VM_A, (NOW + 2) * MS, Ok(doc.as_bytes()))
        .unwrap()
    {
        Completion::Failed { error, .. } => {
            assert_eq!(error, FetchError::Document("too many keys"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ring.entries[0].local.generation(), 0);
}

#[test]
fn a_passport_issuer_and_a_provider_with_the_same_url_keep_separate_sources() {
    let mut v = config_json();
    let issuer = &mut v["trust_material"]["issuers"][0];
    issuer.as_object_mut().unwrap().remove("keys");
    issuer["jwks"] = json!({"cluster": "auth", "uri": "http://127.0.0.1:9/jwks.json"});
    v["jwt_providers"] = remote_config()["jwt_providers"].clone();
    v["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"any": ["passport", {"provider": "trustline"}]}}]);
    let ring = Ring::new(&config(&v));
    assert_eq!(ring.entries.len(), 2);
    assert_eq!(
        (ring.index(ISSUER), ring.provider_index("trustline")),
        (Some(0), Some(1))
    );
    assert_ne!(
        ring.entries[0].source.record_key(),
        ring.entries[1].source.record_key()
    );
    assert_eq!(ring.index("trustline"), None);
}

#[test]
fn a_token_that_expires_while_held_is_token_expired_at_the_wake_up() {
    let mut w = World::new();
    let t = sign_jws(
        &json!({"alg": "EdDSA", "kid": "k1"}),
        &json!({"iss": TOKEN_ISS, "sub": "svc-a", "exp": NOW + 1, "iat": NOW - 5}),
        &key_from_seed(10),
    );
    let h = hold(w.decide(VM_A, &t, NOW, true));
    w.a.waiters.hold(held(1, h, NOW));
    assert_eq!(w.tick(VM_A, NOW).0, [Election::Claimed(Trigger::Scheduled)]);
    w.respond(VM_A, NOW + 1, Ok(&jwks(&[("k1", 10)])));
    assert_eq!(w.tick(VM_A, NOW + 1).1, vec![1]);
    // Decided again from the start with the clock of the wake-up: no skew (clock_skew 0).
    assert_eq!(
        deny_reason(&w.decide(VM_A, &t, NOW + 1, false)),
        Some(Reason::TokenExpired)
    );
}

/// A DPoP-bound token of a remote-keys provider, with an Ed25519 proof made at `iat`.
fn dpop_request(iat: i64) -> RequestView {
    use proofgate::dpop::key::{access_token_hash, ProofKey};
    let client = key_from_seed(40);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": pub_b64(&client)});
    let jkt = ProofKey::from_jwk(jwk.as_object().unwrap()).unwrap().1;
    let token = sign_jws(
        &json!({"alg": "EdDSA", "kid": "k1"}),
        &json!({"iss": TOKEN_ISS, "sub": "svc-a", "exp": NOW + 600, "iat": NOW - 5,
                "cnf": {"jkt": jkt}}),
        &key_from_seed(10),
    );
    let proof = sign_jws(
        &json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
        &json!({"jti": "p1", "htm": "GET", "htu": "https://api.example/v1/things", "iat": iat,
                "ath": access_token_hash(&token)}),
        &client,
    );
    RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/v1/things".to_vec()),
        (":authority".into(), b"api.example".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        ("authorization".into(), format!("DPoP {token}").into_bytes()),
        ("dpop".into(), proof.into_bytes()),
    ])
}

#[test]
fn a_dpop_request_held_for_keys_has_its_proof_checked_again_at_the_wake_up() {
    let mut v = remote_config();
    v["jwt_providers"][0]["dpop"] = json!("required");
    let engine = Engine::new(config(&v), NOW - 10);
    let mut store = MemoryStore::default();
    let mut ring = Ring::new(&engine.config);
    ring.create(&mut store).unwrap();
    let req = dpop_request(NOW);
    match engine.check_headers_with(&req, NOW, &ring, true) {
        HeadersVerdict::AwaitKeys(h) => assert_eq!(h.refetch, None),
        other => panic!("{other:?}"),
    }
    let waiters = Waiters::default();
    ring.tick(&mut store, VM_A, NOW * MS, &waiters);
    ring.complete(0, &mut store, VM_A, NOW * MS, Ok(&jwks(&[("k1", 10)])))
        .unwrap();
    // Keys in time: the proof is good.
    assert!(matches!(
        engine.check_headers_with(&req, NOW + 1, &ring, false),
        HeadersVerdict::NeedBody(_)
    ));
    // Woken after the proof aged out (dpop_max_age_seconds 60): refused with the DPoP challenge.
    match engine.check_headers_with(&req, NOW + 61, &ring, false) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::InvalidDpopProof);
            let challenges = d.challenges.unwrap_or_default();
            assert_eq!(challenges.len(), 1);
            assert!(
                challenges[0].starts_with("DPoP error=\"invalid_dpop_proof\""),
                "{challenges:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
