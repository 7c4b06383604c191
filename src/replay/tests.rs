use super::*;
use crate::config::replay::ReplayConfig;

fn claim<'a>(issuer: &'a str, id: &'a str, subject: &'a str, until: i64) -> Claim<'a> {
    Claim {
        namespace: Claim::PASSPORT,
        issuer,
        id,
        subject,
        until,
    }
}

fn small(buckets: u32, per_bucket: usize, per_owner: usize) -> (ReplayStore, MemoryStore) {
    let r = ReplayStore::with_layout(buckets, per_bucket, per_owner);
    let mut m = MemoryStore::default();
    r.open(&mut m).unwrap();
    (r, m)
}

fn sized(max_entries: usize) -> ReplayConfig {
    ReplayConfig {
        max_entries,
        max_entries_per_subject: (max_entries / 4).max(1),
        cluster: None,
    }
}

fn refusal(r: Result<Pressure, Refused>) -> Result<Pressure, Refusal> {
    r.map_err(|e| e.refusal)
}

#[test]
fn layout_does_not_depend_on_the_size() {
    for n in [1, 100, 65_536, 4_194_304] {
        assert_eq!(ReplayStore::new(&sized(n)).buckets(), BUCKETS);
    }
    let limits = |n| {
        let r = ReplayStore::new(&sized(n));
        (r.per_bucket(), r.per_owner())
    };
    assert_eq!(limits(65_536), (12 + 8, 8));
    assert_eq!(limits(4_194_304), (120 + 47, 47));
    // Bound on what the store can ever hold (16 bytes an entry): 21 MB by default.
    assert_eq!(ReplayStore::new(&sized(65_536)).capacity(), 65_536 * 20);
}

#[test]
fn a_full_default_store_holds_max_entries_without_refusing() {
    let r = ReplayStore::new(&sized(65_536));
    let mut m = MemoryStore::default();
    r.open(&mut m).unwrap();
    for i in 0..65_536 {
        let (jti, subject) = (format!("jti-{i}"), format!("subject-{}", i % 8));
        let c = claim("https://issuer.example", &jti, &subject, 1_000);
        if let Err(e) = r.consume(&mut m, &c, 0) {
            panic!("jti {i} refused: {e:?}");
        }
    }
    assert_eq!(r.live_entries(&mut m, 0), 65_536);
}

#[test]
fn a_resize_or_reload_keeps_every_entry_and_leaves_nothing_behind() {
    let before = ReplayStore::new(&sized(65_536));
    let mut m = MemoryStore::default();
    before.open(&mut m).unwrap();
    let keys = m.keys();
    assert_eq!(keys, BUCKETS as usize + 2, "buckets, secret, ready marker");
    for i in 0..200 {
        let jti = format!("j{i}");
        before
            .consume(&mut m, &claim("i", &jti, "s", 1_000), 0)
            .unwrap();
    }
    // Another size, and the same size reloaded: a new store object reads the same secret and
    // the same buckets, so every consumed jti is still refused.
    for n in [4_194_304, 100, 65_536] {
        let after = ReplayStore::new(&sized(n));
        after.open(&mut m).unwrap();
        for i in 0..200 {
            let jti = format!("j{i}");
            assert_eq!(
                refusal(after.consume(&mut m, &claim("i", &jti, "s", 1_000), 1)),
                Err(Refusal::Replay),
                "size {n}, jti {i}"
            );
        }
        assert_eq!(m.keys(), keys, "size {n} left no new keys");
    }
}

/// The first 64 jtis (searching from 0) that land in bucket 0 under `store`'s secret.
fn aimed_at_bucket_0(r: &ReplayStore, m: &mut MemoryStore) -> Vec<String> {
    (0..)
        .map(|i| format!("aimed-{i}"))
        .filter(|j| r.bucket_of(m, &claim("i", j, "s", 10)) == 0)
        .take(64)
        .collect()
}

#[test]
fn buckets_are_chosen_by_a_keyed_hash() {
    let (a, mut ma) = small(1_024, 100, 100);
    let (b, mut mb) = small(1_024, 100, 100);
    // Different stores made different secrets.
    assert_ne!(ma.get(SECRET_KEY).unwrap().0, mb.get(SECRET_KEY).unwrap().0);
    let aimed = aimed_at_bucket_0(&a, &mut ma);
    assert!(aimed
        .iter()
        .all(|j| a.bucket_of(&mut ma, &claim("i", j, "s", 10)) == 0));
    // Whoever found them without the secret has aimed at nothing: under another secret they
    // scatter over the buckets.
    let mut spread: Vec<u32> = aimed
        .iter()
        .map(|j| b.bucket_of(&mut mb, &claim("i", j, "s", 10)))
        .collect();
    spread.sort_unstable();
    spread.dedup();
    assert!(
        spread.len() > 50,
        "64 aimed jtis landed in {} buckets",
        spread.len()
    );
    // The same secret (a reload) places every claim where it was.
    let again = ReplayStore::with_layout(1_024, 100, 100);
    assert!(aimed
        .iter()
        .all(|j| again.bucket_of(&mut ma, &claim("i", j, "s", 10)) == 0));
}

#[test]
fn one_subject_cannot_take_more_than_its_share() {
    let (r, mut m) = small(1, 10, 4);
    for j in ["a", "b", "c", "d"] {
        r.consume(&mut m, &claim("i", j, "greedy", 100), 0).unwrap();
    }
    let refused = r
        .consume(&mut m, &claim("i", "e", "greedy", 100), 0)
        .unwrap_err();
    assert_eq!(
        (refused.refusal, refused.reason, refused.pressure.share_full),
        (Refusal::ShareFull, Reason::ReplayStoreUnavailable, true)
    );
    // The same subject name under another issuer is another caller.
    assert!(r
        .consume(&mut m, &claim("j", "e", "greedy", 100), 0)
        .is_ok());
    // Everyone else still has the rest of the bucket.
    for j in ["f", "g", "h", "k", "l"] {
        r.consume(&mut m, &claim("i", j, &format!("other-{j}"), 100), 0)
            .unwrap();
    }
    let full = r
        .consume(&mut m, &claim("i", "m", "late", 100), 0)
        .unwrap_err();
    assert_eq!(
        (full.refusal, full.pressure.bucket_full),
        (Refusal::Full, true)
    );
}

#[test]
fn a_greedy_subject_never_fills_a_default_bucket_for_others() {
    // One subject consumes until every bucket it reaches refuses it; nobody else is refused.
    let r = ReplayStore::new(&sized(65_536));
    let (mut m, mut share_refusals) = (MemoryStore::default(), 0);
    r.open(&mut m).unwrap();
    for i in 0..300_000 {
        let jti = format!("g{i}");
        match refusal(r.consume(&mut m, &claim("i", &jti, "greedy", 1_000), 0)) {
            Ok(_) => {}
            Err(Refusal::ShareFull) => share_refusals += 1,
            Err(other) => panic!("greedy refused with {other:?}"),
        }
    }
    assert!(share_refusals > 0);
    for i in 0..65_536 / 2 {
        let (jti, subject) = (format!("o{i}"), format!("other-{}", i % 64));
        if let Err(e) = r.consume(&mut m, &claim("i", &jti, &subject, 1_000), 0) {
            panic!("other caller {i} refused: {e:?}");
        }
    }
}

#[test]
fn second_use_is_a_replay_until_expiry_and_namespaces_are_apart() {
    let (r, mut m) = small(4, 64, 64);
    assert!(r.consume(&mut m, &claim("iss", "a", "s", 100), 10).is_ok());
    assert_eq!(
        r.consume(&mut m, &claim("iss", "a", "s2", 100), 11)
            .map_err(|e| e.reason),
        Err(Reason::JtiReplay),
        "the subject does not make a jti new"
    );
    assert!(
        r.consume(&mut m, &claim("other-iss", "a", "s", 100), 11)
            .is_ok(),
        "jti is per issuer"
    );
    let dpop = Claim {
        namespace: Claim::DPOP,
        ..claim("iss", "a", "s", 100)
    };
    assert!(r.consume(&mut m, &dpop, 11).is_ok(), "namespaces are apart");
    assert!(
        r.consume(&mut m, &claim("iss", "a", "s", 200), 100).is_ok(),
        "expired entry is gone"
    );
}

#[test]
fn an_entry_that_is_already_dead_is_never_accepted() {
    let (r, mut m) = small(4, 64, 64);
    for (until, now) in [(100, 100), (99, 100), (i64::MIN, 0)] {
        let refused = r
            .consume(&mut m, &claim("iss", "late", "s", until), now)
            .unwrap_err();
        assert_eq!(
            (refused.refusal, refused.reason),
            (Refusal::Expired, Reason::PassportExpired)
        );
    }
    assert_eq!(r.live_entries(&mut m, 0), 0);
    assert!(r
        .consume(&mut m, &claim("iss", "late", "s", 101), 100)
        .is_ok());
}

#[test]
fn a_forward_then_backward_clock_step_never_reaccepts_a_jti() {
    let (r, mut m) = small(1, 64, 64);
    // Consumed at 10, live until 100.
    r.consume(&mut m, &claim("i", "a", "s", 100), 10).unwrap();
    // The clock steps forward to 1,000: the next consume prunes "a".
    r.consume(&mut m, &claim("i", "b", "s", 1_100), 1_000)
        .unwrap();
    assert_eq!(r.live_entries(&mut m, 1_000), 1);
    // And back to 20, where "a" would still be valid: refused (it may be a replay).
    let refused = r
        .consume(&mut m, &claim("i", "a", "s", 100), 20)
        .unwrap_err();
    assert_eq!(
        (refused.refusal, refused.reason),
        (Refusal::ClockBehind, Reason::ReplayStoreUnavailable)
    );
    // Claims that outlive the pruning are decided as usual: "b" is still a replay, a fresh
    // one is accepted.
    assert_eq!(
        refusal(r.consume(&mut m, &claim("i", "b", "s", 1_100), 20)),
        Err(Refusal::Replay)
    );
    assert!(r.consume(&mut m, &claim("i", "c", "s", 400), 20).is_ok());
    // Once the clock is past the pruned entries again, nothing is left to refuse.
    assert!(r.consume(&mut m, &claim("i", "d", "s", 600), 101).is_ok());
}

#[test]
fn live_counter_converges_in_one_pass_of_steps() {
    let r = ReplayStore::new(&sized(65_536));
    let mut m = MemoryStore::default();
    r.open(&mut m).unwrap();
    for i in 0..500 {
        let jti = format!("j{i}");
        let until = if i < 100 { 10 } else { 1_000 };
        r.consume(&mut m, &claim("i", &jti, &jti, until), 0)
            .unwrap();
    }
    let mut counter = LiveCounter::new(&r);
    let mut seen = 0;
    for _ in 0..LiveCounter::STEPS_PER_PASS {
        seen = counter.step(&r, &mut m, 5);
    }
    assert_eq!(seen, 500);
    for _ in 0..LiveCounter::STEPS_PER_PASS {
        seen = counter.step(&r, &mut m, 50);
    }
    assert_eq!(seen, 400, "expired entries drop out");
    assert_eq!(r.live_entries(&mut m, 50), 400);
}

/// A store where another worker writes between our read and our write, `races` times.
struct Racy {
    inner: MemoryStore,
    races: u32,
    rival: Option<(ReplayStore, &'static str)>,
}

impl SharedStore for Racy {
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        if self.races > 0 && cas.is_some() {
            self.races -= 1;
            if let Some((r, jti)) = self.rival.take() {
                r.consume(&mut self.inner, &claim("i", jti, "s", 100), 0)
                    .unwrap();
            } else {
                let (v, c) = self.inner.get(key)?;
                self.inner.set(key, &v.unwrap_or_default(), c)?;
            }
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn cas_conflicts_retry_and_concurrent_same_jti_loses() {
    let (r, inner) = small(4, 64, 64);
    let mut racy = Racy {
        inner,
        races: 3,
        rival: None,
    };
    assert_eq!(
        r.consume(&mut racy, &claim("i", "x", "s", 100), 0)
            .map(|p| p.cas_retries),
        Ok(3)
    );

    let (r, inner) = small(4, 64, 64);
    let mut racy = Racy {
        inner,
        races: 1,
        rival: Some((r.clone(), "same")),
    };
    assert_eq!(
        refusal(r.consume(&mut racy, &claim("i", "same", "s", 100), 0)),
        Err(Refusal::Replay)
    );
}

#[test]
fn endless_conflicts_fail_closed_and_corruption_fails_closed() {
    let (r, inner) = small(4, 64, 64);
    let mut racy = Racy {
        inner,
        races: u32::MAX,
        rival: None,
    };
    assert_eq!(
        r.consume(&mut racy, &claim("i", "x", "s", 100), 0)
            .map_err(|e| e.reason),
        Err(Reason::ReplayStoreUnavailable)
    );

    let (r, mut m) = small(1, 64, 64);
    m.set("proofgate.replay.v2.0", &[2, 0, 0], None).unwrap();
    assert_eq!(
        refusal(r.consume(&mut m, &claim("i", "x", "s", 100), 0)),
        Err(Refusal::Unavailable)
    );
}

#[test]
fn a_store_without_a_secret_refuses_rather_than_hashing_unkeyed() {
    let r = ReplayStore::with_layout(4, 64, 64);
    let mut m = MemoryStore::default();
    m.set(SECRET_KEY, b"not a secret", None).unwrap();
    assert_eq!(r.open(&mut m), Err(StoreError::Other));
    assert_eq!(
        refusal(r.consume(&mut m, &claim("i", "x", "s", 100), 0)),
        Err(Refusal::Unavailable)
    );
}

#[test]
fn debug_output_never_shows_the_secret() {
    let (r, mut m) = small(4, 64, 64);
    let secret = m.get(SECRET_KEY).unwrap().0.unwrap();
    let shown = format!("{r:?}");
    assert!(shown.contains("keyed: true"), "{shown}");
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&hex) && !shown.contains(&format!("{secret:?}")));
}

/// Two VMs loading at once: shared data has no atomic "create if absent", so a VM's creation of
/// the empty secret key can land after another VM already filled it, and the late VM then fills
/// its own secret. The early VM must not keep hashing with the secret it made: it would place
/// claims in buckets the others never look at, and a jti consumed there could be used again at
/// another worker.
#[test]
fn every_vm_hashes_with_the_secret_that_ended_up_in_shared_data() {
    let mut m = MemoryStore::default();
    let early = ReplayStore::with_layout(4096, 64, 64);
    early.open(&mut m).unwrap();
    // The late VM's unconditional create and its CAS fill replace the early VM's secret.
    m.set(SECRET_KEY, &[], None).unwrap();
    let (_, cas) = m.get(SECRET_KEY).unwrap();
    m.set(SECRET_KEY, &[0x5a; 32], cas).unwrap();
    let late = ReplayStore::with_layout(4096, 64, 64);
    late.open(&mut m).unwrap();
    // Any of these jtis, consumed at the early VM, is a replay at the late one.
    for i in 0..64 {
        let id = format!("jti-{i}");
        let c = claim("iss", &id, "sub", 100);
        assert!(early.consume(&mut m, &c, 0).is_ok(), "{id}");
        assert_eq!(
            refusal(late.consume(&mut m, &c, 0)),
            Err(Refusal::Replay),
            "{id}"
        );
        assert_eq!(
            refusal(early.consume(&mut m, &c, 0)),
            Err(Refusal::Replay),
            "{id}"
        );
    }
}
