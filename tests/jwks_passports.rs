//! Passports whose issuer publishes its keys as a JWKS (DESIGN.md section 12), through the
//! decision pipeline with two "worker VMs" (two key rings over one in-memory shared store) and an
//! explicit clock: held while keys are on their way, decided again with the keys and the clock of
//! the wake-up, one refetch for a rotated `kid`, `keys_unavailable` with `Retry-After`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proofgate::jwks::{Completion, Election, FetchError, Hold, Ring, Trigger, Waiters};
use proofgate::reason::Reason;
use proofgate::replay::MemoryStore;
use proofgate::verify::{Engine, HeadersVerdict};
use serde_json::{json, Value};

const VM_A: u64 = 1;
const VM_B: u64 = 2;
const MS: i64 = 1000;

fn remote_config() -> Value {
    let mut v = config_json();
    let issuer = &mut v["trust_material"]["issuers"][0];
    issuer.as_object_mut().unwrap().remove("keys");
    issuer["jwks"] = json!({
        "cluster": "jwks", "uri": "http://127.0.0.1:9/jwks.json",
        "cache_seconds": 60, "timeout_ms": 2000, "min_refetch_seconds": 10, "max_stale_seconds": 30
    });
    v
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

    fn vm(&mut self, owner: u64) -> &mut Vm {
        if owner == VM_A {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// One tick of `owner` at `now` seconds: the elections it made and the requests it woke.
    fn tick(&mut self, owner: u64, now: i64) -> (Vec<Election>, Vec<u32>) {
        let store = &mut self.store;
        let vm = if owner == VM_A {
            &mut self.a
        } else {
            &mut self.b
        };
        let ticks = vm.ring.tick(store, vm.owner, now * MS, &vm.waiters);
        let woken = vm.ring.wake(&mut vm.waiters, &ticks, now * MS);
        (
            ticks.into_iter().map(|t| t.election.unwrap()).collect(),
            woken,
        )
    }

    fn respond(&mut self, owner: u64, now: i64, result: Result<&[u8], FetchError>) -> Completion {
        let store = &mut self.store;
        let vm = if owner == VM_A {
            &mut self.a
        } else {
            &mut self.b
        };
        vm.ring
            .complete(0, store, vm.owner, now * MS, result)
            .unwrap()
    }

    fn decide(&self, owner: u64, token: &str, now: i64, may_hold: bool) -> HeadersVerdict {
        let r = Req::get_order();
        let mut h = r.sign(&claims(), &["accept", "content-type", "x-trustplane-nonce"]);
        set_header(&mut h, "authorization", &format!("Bearer {token}"));
        let ring = if owner == VM_A {
            &self.a.ring
        } else {
            &self.b.ring
        };
        self.engine
            .check_headers_with(&r.view(&h), now, ring, may_hold)
    }
}

fn token_with(kid: &str, seed: u8, claims: &Value) -> String {
    sign_jws(
        &json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"}),
        claims,
        &key_from_seed(seed),
    )
}

fn demo_token() -> String {
    token_with(KID, 0, &claims())
}

#[test]
fn first_request_is_held_through_the_prefetch_then_allowed() {
    let mut w = World::new();
    // Before the first tick: no keys, a fetch is due now, so the request is held...
    let h = hold(w.decide(VM_B, &demo_token(), NOW, true));
    assert_eq!((h.refetch, h.generation, h.timeout_ms), (None, 0, 2000));
    w.b.waiters.hold(held(7, h, NOW));
    // ...and decided now, without holding, it is the gateway's 503 (never a 401).
    match w.decide(VM_B, &demo_token(), NOW, false) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert_eq!(d.retry_after, Some(1));
        }
        other => panic!("{other:?}"),
    }
    // VM A's first tick elects it; VM B sees the fetch in flight: one fetch for two workers.
    assert_eq!(w.tick(VM_A, NOW).0, [Election::Claimed(Trigger::Scheduled)]);
    assert_eq!(w.tick(VM_B, NOW).0, [Election::InFlight]);
    assert_eq!(
        w.respond(VM_A, NOW, Ok(&jwks(&[(KID, 0)]))),
        Completion::Stored {
            generation: 1,
            changed: true
        }
    );
    // VM B's next tick adopts the shared document and wakes the held request...
    let (elections, woken) = w.tick(VM_B, NOW + 1);
    assert_eq!((elections, woken), (vec![Election::NotDue], vec![7]));
    // ...which is decided again, at the clock of the wake-up, with the new keys.
    assert!(matches!(
        w.decide(VM_B, &demo_token(), NOW + 1, false),
        HeadersVerdict::NeedBody(_)
    ));
}

#[test]
fn a_held_request_is_decided_with_the_clock_of_the_wake_up() {
    let mut w = World::new();
    let mut c = claims();
    c["exp"] = json!(NOW + 1);
    let token = token_with(KID, 0, &c);
    assert!(matches!(
        w.decide(VM_A, &token, NOW, true),
        HeadersVerdict::AwaitKeys(_)
    ));
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW + 40, Ok(&jwks(&[(KID, 0)])));
    // exp + 30 s skew has passed by the time the keys arrived.
    assert_eq!(
        deny_reason(&w.decide(VM_A, &token, NOW + 40, false)),
        Some(Reason::PassportExpired)
    );
}

#[test]
fn a_rotated_kid_is_picked_up_by_exactly_one_refetch() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW, Ok(&jwks(&[(KID, 0)])));
    w.tick(VM_B, NOW);
    // The issuer rotates to "k2" (seed 5); passports signed with it arrive on both VMs.
    let rotated = token_with("k2", 5, &claims());
    let ha = hold(w.decide(VM_A, &rotated, NOW + 1, true));
    let hb = hold(w.decide(VM_B, &rotated, NOW + 1, true));
    assert_eq!(ha.refetch, Some(Trigger::UnknownKid));
    w.a.waiters.hold(held(1, ha, NOW + 1));
    w.b.waiters.hold(held(2, hb, NOW + 1));
    let (ea, _) = w.tick(VM_A, NOW + 1);
    let (eb, _) = w.tick(VM_B, NOW + 1);
    assert_eq!(ea, [Election::Claimed(Trigger::UnknownKid)]);
    assert_eq!(eb, [Election::InFlight]);
    w.respond(VM_A, NOW + 1, Ok(&jwks(&[(KID, 0), ("k2", 5)])));
    assert_eq!(w.tick(VM_A, NOW + 2).1, vec![1]);
    assert_eq!(w.tick(VM_B, NOW + 2).1, vec![2]);
    for vm in [VM_A, VM_B] {
        assert!(matches!(
            w.decide(vm, &rotated, NOW + 2, false),
            HeadersVerdict::NeedBody(_)
        ));
    }
}

#[test]
fn unknown_kids_refetch_once_per_min_refetch_seconds_then_fail_fast() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW, Ok(&jwks(&[(KID, 0)])));
    let bogus = token_with("nobody", 9, &claims());
    let h = hold(w.decide(VM_A, &bogus, NOW + 1, true));
    w.a.waiters.hold(held(1, h, NOW + 1));
    assert_eq!(
        w.tick(VM_A, NOW + 1).0,
        [Election::Claimed(Trigger::UnknownKid)]
    );
    w.respond(VM_A, NOW + 1, Ok(&jwks(&[(KID, 0)])));
    // The refetch concluded without the kid: woken, and unknown_signing_key.
    assert_eq!(w.tick(VM_A, NOW + 1).1, vec![1]);
    assert_eq!(
        deny_reason(&w.decide(VM_A, &bogus, NOW + 1, false)),
        Some(Reason::UnknownSigningKey)
    );
    // Within min_refetch_seconds the next unknown kid is refused at once, on either VM.
    w.tick(VM_B, NOW + 2);
    for vm in [VM_A, VM_B] {
        assert_eq!(
            deny_reason(&w.decide(vm, &bogus, NOW + 5, true)),
            Some(Reason::UnknownSigningKey)
        );
    }
    // A request held on a stale view is woken by the refused election.
    let stale_view_hold = Hold {
        source: 0,
        refetch: Some(Trigger::UnknownKid),
        generation: 1,
        timeout_ms: 2000,
    };
    w.b.waiters.hold(held(9, stale_view_hold, NOW + 5));
    assert_eq!(
        w.tick(VM_B, NOW + 5),
        (vec![Election::RefetchRefused], vec![9])
    );
    // After 10 s, one more refetch is allowed.
    assert!(matches!(
        w.decide(VM_A, &bogus, NOW + 11, true),
        HeadersVerdict::AwaitKeys(_)
    ));
}

#[test]
fn a_failing_signature_refetches_only_old_keys() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW, Ok(&jwks(&[(KID, 0)])));
    // Signed by another key under the known kid.
    let forged = token_with(KID, 3, &claims());
    assert_eq!(
        deny_reason(&w.decide(VM_A, &forged, NOW + 5, true)),
        Some(Reason::InvalidPassportSignature)
    );
    let h = hold(w.decide(VM_A, &forged, NOW + 10, true));
    assert_eq!(h.refetch, Some(Trigger::BadSignature));
}

#[test]
fn a_dead_jwks_server_keeps_old_keys_until_max_stale_then_503() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW, Ok(&jwks(&[(KID, 0)])));
    let mut now = NOW + 1;
    // cache 60 s + max_stale 30 s: keys serve until NOW + 90.
    while now < NOW + 95 {
        let (elections, _) = w.tick(VM_A, now);
        if elections == [Election::Claimed(Trigger::Scheduled)] {
            w.respond(VM_A, now, Err(FetchError::NoResponse));
        }
        let v = w.decide(VM_A, &demo_token(), now, false);
        if now < NOW + 90 {
            assert!(
                matches!(v, HeadersVerdict::NeedBody(_)),
                "at +{}",
                now - NOW
            );
        } else {
            match v {
                HeadersVerdict::Deny(d) => {
                    assert_eq!(d.reason, Reason::KeysUnavailable);
                    assert!(d.retry_after.is_some_and(|s| (1..=60).contains(&s)));
                }
                other => panic!("at +{}: {other:?}", now - NOW),
            }
        }
        now += 1;
    }
}

#[test]
fn no_keys_ever_is_a_prompt_503_not_a_hang() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    w.respond(VM_A, NOW, Err(FetchError::Status(500)));
    w.tick(VM_A, NOW + 1);
    w.respond(VM_A, NOW + 1, Err(FetchError::Status(500)));
    w.tick(VM_A, NOW + 3);
    w.respond(VM_A, NOW + 3, Err(FetchError::Status(500)));
    w.tick(VM_A, NOW + 3);
    // Next attempt in 4 s, beyond the 2 s timeout: refused at once, told when to come back.
    match w.decide(VM_A, &demo_token(), NOW + 3, true) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert_eq!(d.retry_after, Some(4));
        }
        other => panic!("{other:?}"),
    }
    // A held request whose wait outlives every attempt is woken at the deadline.
    let h = Hold {
        source: 0,
        refetch: None,
        generation: 0,
        timeout_ms: 2000,
    };
    w.a.waiters.hold(held(4, h, NOW + 6));
    assert_eq!(w.tick(VM_A, NOW + 6).1, Vec::<u32>::new());
    assert_eq!(
        w.tick(VM_A, NOW + 7).0,
        [Election::Claimed(Trigger::Scheduled)]
    );
    w.respond(VM_A, NOW + 7, Err(FetchError::NoResponse));
    assert_eq!(w.tick(VM_A, NOW + 7).1, vec![4]);
}

#[test]
fn garbage_oversize_and_keyless_documents_are_refused_whole() {
    let mut w = World::new();
    w.tick(VM_A, NOW);
    let only_bad = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "priv", "x": pub_b64(&demo_key()), "d": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "kid": "ecdh", "x": pub_b64(&demo_key())},
        {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
    ]})
    .to_string();
    let no_kid =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": pub_b64(&demo_key())}]}).to_string();
    let dup = format!(
        r#"{{"keys": [{{"kty": "OKP", "kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "{}"}}]}}"#,
        pub_b64(&demo_key())
    );
    let cases: [(&[u8], &str); 6] = [
        (b"<html>", "not strict JSON"),
        (dup.as_bytes(), "not strict JSON"),
        (br#"{"keys": "no"}"#, "not a JWKS"),
        (only_bad.as_bytes(), "no usable key"),
        (no_kid.as_bytes(), "no Ed25519 key with a kid"),
        (b"[]", "not a JWKS"),
    ];
    let mut now = NOW;
    for (body, why) in cases {
        match w.respond(VM_A, now, Ok(body)) {
            Completion::Failed { error, .. } => assert_eq!(error, FetchError::Document(why)),
            other => panic!("{other:?}"),
        }
        now += 60;
        assert_eq!(w.tick(VM_A, now).0, [Election::Claimed(Trigger::Scheduled)]);
    }
    let big = vec![b' '; 262_145];
    match w.respond(VM_A, now, Ok(&big)) {
        Completion::Failed { error, .. } => assert_eq!(error, FetchError::TooLarge(262_145)),
        other => panic!("{other:?}"),
    }
    let vm = w.vm(VM_A);
    assert_eq!(vm.ring.entries[0].local.generation(), 0);
}

#[test]
fn a_late_response_after_the_request_gave_up_changes_only_the_keys() {
    let mut w = World::new();
    let h = hold(w.decide(VM_A, &demo_token(), NOW, true));
    w.a.waiters.hold(held(3, h, NOW));
    assert_eq!(w.tick(VM_A, NOW).0, [Election::Claimed(Trigger::Scheduled)]);
    // The request gives up at its deadline (503); the response arrives after.
    assert_eq!(w.tick(VM_A, NOW + 2).1, vec![3]);
    assert!(w.a.waiters.is_empty());
    assert_eq!(
        w.respond(VM_A, NOW + 2, Ok(&jwks(&[(KID, 0)]))),
        Completion::Stored {
            generation: 1,
            changed: true
        }
    );
    assert_eq!(w.tick(VM_A, NOW + 3).1, Vec::<u32>::new());
    assert!(matches!(
        w.decide(VM_A, &demo_token(), NOW + 3, false),
        HeadersVerdict::NeedBody(_)
    ));
}

#[test]
fn under_rules_a_passport_requirement_holds_and_says_retry_after_too() {
    let mut v = remote_config();
    v["rules"] = json!([{ "match": { "prefix": "/" }, "requires": "passport" }]);
    let engine = Engine::new(config(&v), NOW - 10);
    let mut store = MemoryStore::default();
    let ring = Ring::new(&engine.config);
    ring.create(&mut store).unwrap();
    let r = Req::get_order();
    let h = r.sign(&claims(), &["accept", "content-type", "x-trustplane-nonce"]);
    let view = r.view(&h);
    let held = hold(engine.check_headers_with(&view, NOW, &ring, true));
    assert_eq!((held.refetch, held.generation), (None, 0));
    match engine.check_headers_with(&view, NOW, &ring, false) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::KeysUnavailable);
            assert_eq!(d.retry_after, Some(1));
        }
        other => panic!("{other:?}"),
    }
}
