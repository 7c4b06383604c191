//! The fetch state machine driven with an explicit clock and an in-memory shared store: two
//! "VMs" are two owners over one store, exactly as Envoy's workers share one VM id's data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::config::jwks::JwksConfig;
use crate::replay::{MemoryStore, SharedStore, StoreError};
use std::cell::Cell;

const A: u64 = 0xa;
const B: u64 = 0xb;
const GOOD: &[u8] = br#"{"keys":[{"kid":"k1"}]}"#;
const ROTATED: &[u8] = br#"{"keys":[{"kid":"k2"}]}"#;

fn config() -> JwksConfig {
    JwksConfig {
        cluster: "auth".into(),
        uri: "http://auth/jwks".into(),
        authority: "auth".into(),
        path: "/jwks".into(),
        cache_seconds: 60,
        timeout_ms: 2000,
        min_refetch_seconds: 10,
        max_stale_seconds: 120,
        max_bytes: 1024,
    }
}

fn source() -> (Source, MemoryStore) {
    let s = Source::new("issuer", "https://issuer", config());
    let mut store = MemoryStore::default();
    s.create(&mut store).unwrap();
    (s, store)
}

/// A JWKS "parser" for these tests: a document must mention a kid.
fn validate(body: &[u8]) -> Result<(), &'static str> {
    match std::str::from_utf8(body) {
        Ok(t) if t.contains("\"kid\"") => Ok(()),
        Ok(_) => Err("no usable key"),
        Err(_) => Err("not JSON"),
    }
}

fn parse(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body).ok().map(str::to_string)
}

fn good(s: &Source, store: &mut MemoryStore, owner: u64, now: i64, body: &[u8]) -> Completion {
    s.complete(store, owner, now, Ok(body), &validate).unwrap()
}

#[test]
fn prefetch_is_due_at_once_and_two_vms_make_one_fetch() {
    let (s, mut store) = source();
    assert_eq!(
        s.elect(&mut store, A, 1_000, None),
        Ok(Election::Claimed(Trigger::Scheduled))
    );
    // The other worker sees the fetch in flight, whatever it wants.
    assert_eq!(s.elect(&mut store, B, 1_001, None), Ok(Election::InFlight));
    assert_eq!(
        s.elect(&mut store, B, 1_002, Some(Trigger::UnknownKid)),
        Ok(Election::InFlight)
    );
    assert_eq!(
        good(&s, &mut store, A, 1_200, GOOD),
        Completion::Stored {
            generation: 1,
            changed: true
        }
    );
    let (r, _) = s.read(&mut store).unwrap();
    assert_eq!((r.generation, r.fetched_at_ms, r.failures), (1, 1_200, 0));
    assert_eq!((r.lease_owner, r.lease_until_ms), (0, 0));
    // Refresh at 80% of 60 s.
    assert_eq!(r.next_fetch_ms, 1_200 + 48_000);
    // Both VMs read the one stored document.
    for _ in [A, B] {
        let mut local = Local::<String>::default();
        assert_eq!(local.sync(&s, &mut store, &parse), Ok(Synced::NewKeys));
        match local.available(&s, 1_300) {
            Available::Keys(k) => assert_eq!(k.as_bytes(), GOOD),
            Available::None => panic!("keys expected"),
        }
    }
    assert_eq!(s.elect(&mut store, B, 2_000, None), Ok(Election::NotDue));
}

#[test]
fn simultaneous_elections_race_through_cas_and_one_wins() {
    // B's election lands between A's read and A's write: A's CAS fails, A re-reads, sees B's
    // lease, and does not fetch.
    struct Racy<'a> {
        inner: MemoryStore,
        source: &'a Source,
        fired: bool,
        b_result: Option<Election>,
    }
    impl SharedStore for Racy<'_> {
        fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
            self.inner.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            if !self.fired && key == self.source.record_key() {
                self.fired = true;
                self.b_result = Some(self.source.elect(&mut self.inner, B, 500, None)?);
            }
            self.inner.set(key, value, cas)
        }
    }
    let (s, store) = source();
    let mut racy = Racy {
        inner: store,
        source: &s,
        fired: false,
        b_result: None,
    };
    assert_eq!(s.elect(&mut racy, A, 500, None), Ok(Election::InFlight));
    assert_eq!(racy.b_result, Some(Election::Claimed(Trigger::Scheduled)));
    assert_eq!(s.read(&mut racy.inner).unwrap().0.lease_owner, B);
}

#[test]
fn a_vm_that_died_mid_fetch_blocks_only_until_its_lease_expires() {
    let (s, mut store) = source();
    assert_eq!(
        s.elect(&mut store, A, 0, None),
        Ok(Election::Claimed(Trigger::Scheduled))
    );
    let lease = s.lease_ms();
    assert_eq!(lease, 3_000);
    assert_eq!(
        s.elect(&mut store, B, lease - 1, None),
        Ok(Election::InFlight)
    );
    assert_eq!(
        s.elect(&mut store, B, lease, None),
        Ok(Election::Claimed(Trigger::Scheduled))
    );
    // A's response arrives late: ignored, B's lease and the record untouched.
    let before = s.read(&mut store).unwrap().0;
    assert_eq!(
        good(&s, &mut store, A, lease + 10, GOOD),
        Completion::LeaseLost
    );
    assert_eq!(
        s.complete(
            &mut store,
            A,
            lease + 10,
            Err(FetchError::NoResponse),
            &validate
        ),
        Ok(Completion::LeaseLost)
    );
    assert_eq!(s.read(&mut store).unwrap().0, before);
    assert_eq!(s.read_doc(&mut store), Ok(None));
    assert_eq!(
        good(&s, &mut store, B, lease + 20, GOOD),
        Completion::Stored {
            generation: 1,
            changed: true
        }
    );
}

#[test]
fn failures_back_off_exponentially_up_to_cache_seconds() {
    let (s, mut store) = source();
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..9 {
        assert_eq!(
            s.elect(&mut store, A, now, None),
            Ok(Election::Claimed(Trigger::Scheduled))
        );
        let c = s
            .complete(&mut store, A, now, Err(FetchError::Status(500)), &validate)
            .unwrap();
        let Completion::Failed { retry_in_ms, .. } = c else {
            panic!("{c:?}")
        };
        delays.push(retry_in_ms);
        // Not due a millisecond early, even for another VM.
        assert_eq!(
            s.elect(&mut store, B, now + retry_in_ms - 1, None),
            Ok(Election::NotDue)
        );
        now += retry_in_ms;
    }
    assert_eq!(
        delays,
        [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
    );
    assert_eq!(s.read(&mut store).unwrap().0.failures, 9);
    // A good fetch resets the count.
    s.elect(&mut store, A, now, None).unwrap();
    good(&s, &mut store, A, now, GOOD);
    assert_eq!(s.read(&mut store).unwrap().0.failures, 0);
}

#[test]
fn last_good_keys_survive_failed_refreshes_until_max_stale_seconds() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    let mut local = Local::<String>::default();
    local.sync(&s, &mut store, &parse).unwrap();
    // The JWKS server dies: every refresh from 48 s on fails.
    let mut now = 48_000;
    while now < 200_000 {
        if let Ok(Election::Claimed(_)) = s.elect(&mut store, A, now, None) {
            s.complete(&mut store, A, now, Err(FetchError::NoResponse), &validate)
                .unwrap();
        }
        local.sync(&s, &mut store, &parse).unwrap();
        let usable = matches!(local.available(&s, now), Available::Keys(_));
        // cache 60 s + max_stale 120 s after the fetch at 0.
        assert_eq!(usable, now < 180_000, "at {now}");
        now += 500;
    }
    assert_eq!(local.age_seconds(&s, 179_999), Some(179));
    assert_eq!(local.age_seconds(&s, 180_000), None);
}

#[test]
fn unknown_kid_refetch_is_rate_limited_per_source_across_vms() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    // A storm of unknown kids on both VMs: one refetch per min_refetch_seconds (10 s).
    let mut claimed = Vec::new();
    for step in 0..50 {
        let now = 1_000 + step * 500;
        for owner in [A, B] {
            match s.elect(&mut store, owner, now, Some(Trigger::UnknownKid)) {
                Ok(Election::Claimed(t)) => {
                    assert_eq!(t, Trigger::UnknownKid);
                    claimed.push(now);
                    good(&s, &mut store, owner, now + 100, GOOD);
                }
                Ok(Election::RefetchRefused | Election::InFlight) => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(claimed, vec![1_000, 11_000, 21_000]);
}

#[test]
fn failing_signature_refetches_only_keys_older_than_min_refetch() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    assert_eq!(
        s.elect(&mut store, A, 9_999, Some(Trigger::BadSignature)),
        Ok(Election::RefetchRefused)
    );
    assert_eq!(
        s.elect(&mut store, A, 10_000, Some(Trigger::BadSignature)),
        Ok(Election::Claimed(Trigger::BadSignature))
    );
    // Never fetched: a failing signature cannot have been checked, no refetch.
    let (fresh, mut empty) = source();
    let r = Record {
        next_fetch_ms: i64::MAX,
        ..Record::default()
    };
    assert!(!fresh.refetch_allowed(&r, Trigger::BadSignature, 50_000));
    assert!(fresh.refetch_allowed(&r, Trigger::UnknownKid, 50_000));
    let _ = &mut empty;
}

#[test]
fn rotation_is_a_new_generation_and_the_same_bytes_are_not() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    let parses = Cell::new(0);
    let counting = |b: &[u8]| {
        parses.set(parses.get() + 1);
        parse(b)
    };
    let mut local = Local::<String>::default();
    assert_eq!(local.sync(&s, &mut store, &counting), Ok(Synced::NewKeys));
    // A refresh with the same bytes: same generation, nobody re-parses, age restarts.
    s.elect(&mut store, A, 48_000, None).unwrap();
    assert_eq!(
        good(&s, &mut store, A, 48_000, GOOD),
        Completion::Stored {
            generation: 1,
            changed: false
        }
    );
    assert_eq!(local.sync(&s, &mut store, &counting), Ok(Synced::Unchanged));
    assert_eq!(parses.get(), 1);
    assert_eq!(local.age_seconds(&s, 50_000), Some(2));
    // Rotated keys: generation 2, parsed once.
    s.elect(&mut store, B, 60_000, Some(Trigger::UnknownKid))
        .unwrap();
    assert_eq!(
        good(&s, &mut store, B, 60_000, ROTATED),
        Completion::Stored {
            generation: 2,
            changed: true
        }
    );
    assert_eq!(local.sync(&s, &mut store, &counting), Ok(Synced::NewKeys));
    assert_eq!(local.sync(&s, &mut store, &counting), Ok(Synced::Unchanged));
    assert_eq!(parses.get(), 2);
    assert_eq!(local.generation(), 2);
}

#[test]
fn bad_responses_keep_the_last_good_keys() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    // Response classification, before any body is read.
    assert_eq!(s.check_response(None, 0), Err(FetchError::NoResponse));
    assert_eq!(
        s.check_response(Some("503"), 10),
        Err(FetchError::Status(503))
    );
    assert_eq!(
        s.check_response(Some("2x0"), 10),
        Err(FetchError::NoResponse)
    );
    assert_eq!(
        s.check_response(Some("200"), 1025),
        Err(FetchError::TooLarge(1025))
    );
    assert_eq!(s.check_response(Some("200"), 1024), Ok(()));
    let cases: [(&[u8], FetchError); 3] = [
        (b"<html>oops</html>", FetchError::Document("no usable key")),
        (&[0xff, 0xfe], FetchError::Document("not JSON")),
        (&[b' '; 1025], FetchError::TooLarge(1025)),
    ];
    let mut now = 48_000;
    for (i, (body, error)) in cases.into_iter().enumerate() {
        assert_eq!(
            s.elect(&mut store, A, now, None),
            Ok(Election::Claimed(Trigger::Scheduled))
        );
        let c = s.complete(&mut store, A, now, Ok(body), &validate).unwrap();
        assert_eq!(
            c,
            Completion::Failed {
                error,
                failures: i as u32 + 1,
                retry_in_ms: 1_000 << i
            }
        );
        now += 1_000 << i;
    }
    let doc = s.read_doc(&mut store).unwrap().unwrap();
    assert_eq!((doc.generation, doc.bytes.as_slice()), (1, GOOD));
}

#[test]
fn retry_after_counts_to_the_next_attempt() {
    let r = Record {
        next_fetch_ms: 4_500,
        ..Record::default()
    };
    let local = Local::<String>::with_keys(String::new(), 1, r);
    assert_eq!(local.retry_after_seconds(1_000), 4);
    assert_eq!(local.retry_after_seconds(9_000), 1);
    let flying = Record {
        lease_owner: A,
        lease_until_ms: 2_100,
        ..r
    };
    let local = Local::<String>::with_keys(String::new(), 1, flying);
    assert_eq!(local.retry_after_seconds(1_000), 2);
}

#[test]
fn a_corrupt_record_reads_as_new_and_is_repaired_by_the_next_election() {
    let (s, mut store) = source();
    store.set(s.record_key(), b"garbage", None).unwrap();
    assert_eq!(s.read(&mut store).unwrap().0, Record::default());
    assert_eq!(
        s.elect(&mut store, A, 5, None),
        Ok(Election::Claimed(Trigger::Scheduled))
    );
    assert_eq!(s.read(&mut store).unwrap().0.lease_owner, A);
    // A corrupt document is an error, never keys.
    store.set(s.doc_key(), &[9, 9], None).unwrap();
    assert_eq!(s.read_doc(&mut store), Err(StoreError::Other));
}

#[test]
fn creating_again_keeps_existing_keys_and_sources_get_distinct_keys() {
    let (s, mut store) = source();
    s.elect(&mut store, A, 0, None).unwrap();
    good(&s, &mut store, A, 0, GOOD);
    s.create(&mut store).unwrap();
    assert_eq!(s.read(&mut store).unwrap().0.generation, 1);
    let other = Source::new("provider", "https://issuer", config());
    assert_ne!(other.record_key(), s.record_key());
    assert_ne!(other.doc_key(), s.doc_key());
}

#[test]
fn failure_logs_are_rate_limited_per_kind() {
    let cfg = crate::config::Config::parse(
        br#"{"audience":"a","routing":{"mode":"route-id","route_id":"r"},
             "trust_material":{"issuers":[{"issuer":"https://i","jwks":{"cluster":"c"}}]}}"#,
    )
    .unwrap();
    let mut ring = Ring::new(&cfg);
    assert!(ring.may_log(0, "status 500", 0));
    assert!(!ring.may_log(0, "status 500", 29_999));
    // A new kind of failure is told at once.
    assert!(ring.may_log(0, "status 504", 1_000));
    assert!(!ring.may_log(0, "status 504", 30_999));
    assert!(ring.may_log(0, "status 504", 31_000));
    assert!(!ring.may_log(1, "status 500", 0), "no such source");
}

#[test]
fn adopted_keys_get_tables_within_the_budget_and_validation_builds_none() {
    use crate::crypto::TableWidth;
    let keys: Vec<serde_json::Value> = (1..=5u8)
        .map(|i| {
            let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([i; 32]));
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"),
                               "x": crate::b64::encode(&kp.pk[..])})
        })
        .collect();
    let doc = serde_json::json!({ "keys": keys }).to_string();
    let widths = |k: &ring::IssuerKeys| -> Vec<Option<TableWidth>> {
        (1..=5)
            .map(|i| k.find(&format!("k{i}")).unwrap().table_width())
            .collect()
    };
    let adopted = ring::parse_issuer_keys_with_tables(doc.as_bytes()).unwrap();
    assert_eq!(
        widths(&adopted),
        [
            Some(TableWidth::Radix256),
            Some(TableWidth::Radix256),
            Some(TableWidth::Radix16),
            Some(TableWidth::Radix16),
            None
        ]
    );
    let validated = ring::parse_issuer_keys(doc.as_bytes()).unwrap();
    assert_eq!(widths(&validated), [None; 5]);
}
