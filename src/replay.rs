//! jti replay store over proxy-wasm shared data (DESIGN.md section 5). Shared data keys can
//! never be deleted and a CAS on an absent key is ignored, so the store is a fixed set of bucket
//! keys created at start, each holding a compact list of (jti tag, expiry). Consuming reads a
//! bucket with its CAS, refuses a tag already present, prunes expired entries, appends, and
//! writes back with the CAS, retrying when another worker wrote first. The host side is a trait,
//! so the algorithm runs natively in tests against an in-memory store with injected races.

use crate::reason::Reason;
use sha2::{Digest, Sha256};

/// Shared-data access as the shell provides it.
pub trait SharedStore {
    /// The value and its CAS token; `(None, None)` when the key does not exist.
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError>;
    /// Writes `value` if `cas` still matches (a `None` CAS writes unconditionally).
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// Shared-data failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    CasMismatch,
    Other,
}

/// Pressure observed while consuming, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub cas_retries: u32,
    /// Live entries in the bucket after the write.
    pub bucket_entries: usize,
    /// The bucket was still full after pruning, so the consume was refused.
    pub bucket_full: bool,
}

/// A refused consume: the reason, and the pressure seen on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub pressure: Pressure,
}

const FORMAT: u8 = 1;
const ENTRY: usize = 16;
const MAX_ATTEMPTS: u32 = 32;

/// The bucket layout derived from `replay.max_entries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStore {
    buckets: u32,
    per_bucket: usize,
    /// Every bucket's shared-data key, formatted once at configuration load.
    keys: Vec<String>,
}

impl ReplayStore {
    /// Up to 1024 buckets holding `max_entries` live jtis between them. A jti's bucket is
    /// chosen by hash, so bucket loads vary around the mean: each bucket gets headroom of
    /// `5·√mean + 5` entries, which keeps the chance that any bucket fills before the store holds
    /// `max_entries` below 1e-5 (a Poisson tail bound), while the total stays bounded (65,536 →
    /// 1,024 × 109 = 111,616 slots, 1.8 MB of shared data). One bucket (`max_entries` < 128) is
    /// exact.
    pub fn new(max_entries: usize) -> Self {
        let buckets = (max_entries / 64).clamp(1, 1024);
        let mean = max_entries.div_ceil(buckets).max(1);
        let per_bucket = if buckets == 1 {
            mean
        } else {
            mean + 5 * mean.isqrt() + 5
        };
        let buckets = u32::try_from(buckets).unwrap_or(1024);
        // The layout is part of each key, so that two configs with different sizes on one VM
        // never read each other's buckets with the wrong capacity.
        let keys = (0..buckets)
            .map(|i| format!("proofgate.replay.v1.{buckets}x{per_bucket}.{i}"))
            .collect();
        ReplayStore {
            buckets,
            per_bucket,
            keys,
        }
    }

    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    pub fn capacity(&self) -> usize {
        self.per_bucket * self.buckets as usize
    }

    /// The shared-data key of bucket `i`.
    pub fn key(&self, i: u32) -> &str {
        self.keys.get(i as usize).map_or("", String::as_str)
    }

    /// Creates every bucket that does not exist yet (called at configure time).
    pub fn create_buckets(&self, store: &mut dyn SharedStore) -> Result<(), StoreError> {
        for i in 0..self.buckets {
            let key = self.key(i);
            if let (_, None) = store.get(key)? {
                store.set(key, &[FORMAT], None)?;
            }
        }
        Ok(())
    }

    /// Records `(issuer, jti)` as used until `expires_at`; `jti_replay` if it already was.
    pub fn consume(
        &self,
        store: &mut dyn SharedStore,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Pressure, Refused> {
        let digest = Sha256::new()
            .chain_update(issuer.as_bytes())
            .chain_update([0u8])
            .chain_update(jti.as_bytes())
            .finalize();
        let index = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % self.buckets;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[8..16]);
        let key = self.key(index);
        let mut pressure = Pressure::default();
        let refuse = |reason, pressure| Err(Refused { reason, pressure });
        for _ in 0..MAX_ATTEMPTS {
            let Ok((value, cas)) = store.get(key) else {
                return refuse(Reason::ReplayStoreUnavailable, pressure);
            };
            let Some(cas) = cas else {
                // Created at configure time; if it is gone, recreate and read again with a CAS.
                if store.set(key, &[FORMAT], None).is_err() {
                    return refuse(Reason::ReplayStoreUnavailable, pressure);
                }
                pressure.cas_retries += 1;
                continue;
            };
            let Some(entries) = decode(value.as_deref().unwrap_or(&[])) else {
                return refuse(Reason::ReplayStoreUnavailable, pressure);
            };
            if entries.iter().any(|(t, exp)| *t == tag && *exp > now) {
                return refuse(Reason::JtiReplay, pressure);
            }
            let mut live: Vec<([u8; 8], i64)> =
                entries.into_iter().filter(|(_, exp)| *exp > now).collect();
            pressure.bucket_entries = live.len();
            if live.len() >= self.per_bucket {
                pressure.bucket_full = true;
                return refuse(Reason::ReplayStoreUnavailable, pressure);
            }
            live.push((tag, expires_at));
            pressure.bucket_entries = live.len();
            match store.set(key, &encode(&live), Some(cas)) {
                Ok(()) => return Ok(pressure),
                Err(StoreError::CasMismatch) => pressure.cas_retries += 1,
                Err(StoreError::Other) => return refuse(Reason::ReplayStoreUnavailable, pressure),
            }
        }
        refuse(Reason::ReplayStoreUnavailable, pressure)
    }

    /// Live (unexpired) entries in bucket `i`; an unreadable bucket counts as empty (this feeds
    /// a metric, never a decision).
    pub fn live_in_bucket(&self, store: &mut dyn SharedStore, i: u32, now: i64) -> usize {
        match store.get(self.key(i)) {
            Ok((Some(value), _)) => count_live(&value, now),
            _ => 0,
        }
    }

    /// Live entries across every bucket (tests; the shell uses [`LiveCounter`]).
    pub fn live_entries(&self, store: &mut dyn SharedStore, now: i64) -> usize {
        (0..self.buckets)
            .map(|i| self.live_in_bucket(store, i, now))
            .sum()
    }
}

/// The live-entries gauge, refreshed a slice of buckets per step so that no single timer tick
/// reads the whole store (up to 1,024 buckets) and stalls a worker's event loop.
#[derive(Debug, Clone)]
pub struct LiveCounter {
    counts: Vec<usize>,
    cursor: u32,
}

impl LiveCounter {
    /// Steps per full pass over the buckets.
    pub const STEPS_PER_PASS: u32 = 8;

    pub fn new(replay: &ReplayStore) -> Self {
        LiveCounter {
            counts: vec![0; replay.buckets as usize],
            cursor: 0,
        }
    }

    /// Re-reads the next slice of buckets and returns the current total.
    pub fn step(&mut self, replay: &ReplayStore, store: &mut dyn SharedStore, now: i64) -> usize {
        let slice = replay.buckets.div_ceil(Self::STEPS_PER_PASS);
        for _ in 0..slice {
            let i = self.cursor;
            if let Some(count) = self.counts.get_mut(i as usize) {
                *count = replay.live_in_bucket(store, i, now);
            }
            self.cursor = (i + 1) % replay.buckets;
        }
        self.counts.iter().sum()
    }
}

/// Counts unexpired entries without decoding into a vector; a malformed bucket counts 0.
fn count_live(bytes: &[u8], now: i64) -> usize {
    match bytes.split_first() {
        Some((&FORMAT, body)) if body.len() % ENTRY == 0 => body
            .chunks_exact(ENTRY)
            .filter(|c| c[8..].try_into().is_ok_and(|b| i64::from_be_bytes(b) > now))
            .count(),
        _ => 0,
    }
}

fn decode(bytes: &[u8]) -> Option<Vec<([u8; 8], i64)>> {
    let (&format, body) = bytes.split_first()?;
    if format != FORMAT || body.len() % ENTRY != 0 {
        return None;
    }
    body.chunks_exact(ENTRY)
        .map(|c| {
            let tag: [u8; 8] = c[..8].try_into().ok()?;
            let exp = i64::from_be_bytes(c[8..].try_into().ok()?);
            Some((tag, exp))
        })
        .collect()
}

fn encode(entries: &[([u8; 8], i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * ENTRY);
    out.push(FORMAT);
    for (tag, exp) in entries {
        out.extend_from_slice(tag);
        out.extend_from_slice(&exp.to_be_bytes());
    }
    out
}

/// An in-memory [`SharedStore`] with Envoy's semantics (absent keys ignore the CAS), for tests
/// and the native benchmark.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // Ordered, not hashed: no random seed, so instruction counts repeat exactly.
    map: std::collections::BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedStore for MemoryStore {
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        Ok(match self.map.get(key) {
            Some((v, c)) => (Some(v.clone()), Some(*c)),
            None => (None, None),
        })
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        if let (Some(want), Some((_, have))) = (cas, self.map.get(key)) {
            if want != *have {
                return Err(StoreError::CasMismatch);
            }
        }
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.map
            .insert(key.to_string(), (value.to_vec(), self.next_cas));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> (ReplayStore, MemoryStore) {
        let r = ReplayStore::new(max);
        let mut m = MemoryStore::default();
        r.create_buckets(&mut m).unwrap();
        (r, m)
    }

    #[test]
    fn layout_is_bounded() {
        let layout = |n| {
            (
                ReplayStore::new(n).buckets(),
                ReplayStore::new(n).capacity(),
            )
        };
        assert_eq!(layout(65_536), (1024, 1024 * 109));
        assert_eq!(layout(4_194_304), (1024, 1024 * (4096 + 5 * 64 + 5)));
        assert_eq!(layout(10), (1, 10));
        assert_eq!(layout(100), (1, 100));
        assert_eq!(layout(128), (2, 2 * (64 + 40 + 5)));
    }

    #[test]
    fn a_full_default_store_holds_max_entries_without_refusing() {
        let (r, mut m) = store(65_536);
        for i in 0..65_536 {
            if let Err(e) = r.consume(
                &mut m,
                "https://issuer.example",
                &format!("jti-{i}"),
                1_000,
                0,
            ) {
                panic!("jti {i} refused: {e:?}");
            }
        }
        assert_eq!(r.live_entries(&mut m, 0), 65_536);
    }

    #[test]
    fn live_counter_converges_in_one_pass_of_steps() {
        let (r, mut m) = store(65_536);
        for i in 0..500 {
            r.consume(
                &mut m,
                "i",
                &format!("j{i}"),
                if i < 100 { 10 } else { 1_000 },
                0,
            )
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

    #[test]
    fn second_use_is_a_replay_until_expiry() {
        let (r, mut m) = store(64);
        assert!(r.consume(&mut m, "iss", "a", 100, 10).is_ok());
        let refused = r.consume(&mut m, "iss", "a", 100, 11).map_err(|e| e.reason);
        assert_eq!(refused, Err(Reason::JtiReplay));
        assert!(
            r.consume(&mut m, "other-iss", "a", 100, 11).is_ok(),
            "jti is per issuer"
        );
        assert!(
            r.consume(&mut m, "iss", "a", 200, 100).is_ok(),
            "expired entry is gone"
        );
    }

    #[test]
    fn full_store_fails_closed_and_recovers_after_expiry() {
        let (r, mut m) = store(3);
        for j in ["a", "b", "c"] {
            r.consume(&mut m, "i", j, 50, 0).unwrap();
        }
        assert_eq!(r.live_entries(&mut m, 1), 3);
        let refused = r.consume(&mut m, "i", "d", 50, 1).unwrap_err();
        assert_eq!(refused.reason, Reason::ReplayStoreUnavailable);
        assert!(refused.pressure.bucket_full);
        let accepted = r
            .consume(&mut m, "i", "d", 90, 50)
            .map(|p| p.bucket_entries);
        assert_eq!(accepted, Ok(1));
        assert_eq!(r.live_entries(&mut m, 50), 1);
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
            if self.races > 0 {
                self.races -= 1;
                if let Some((r, jti)) = self.rival.take() {
                    r.consume(&mut self.inner, "i", jti, 100, 0).unwrap();
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
        let (r, inner) = store(64);
        let mut racy = Racy {
            inner,
            races: 3,
            rival: None,
        };
        assert_eq!(
            r.consume(&mut racy, "i", "x", 100, 0)
                .map(|p| p.cas_retries),
            Ok(3)
        );

        let (r, inner) = store(64);
        let mut racy = Racy {
            inner,
            races: 1,
            rival: Some((r.clone(), "same")),
        };
        assert_eq!(
            r.consume(&mut racy, "i", "same", 100, 0)
                .map_err(|e| e.reason),
            Err(Reason::JtiReplay)
        );
    }

    #[test]
    fn endless_conflicts_fail_closed_and_corruption_fails_closed() {
        let (r, inner) = store(64);
        let mut racy = Racy {
            inner,
            races: u32::MAX,
            rival: None,
        };
        assert_eq!(
            r.consume(&mut racy, "i", "x", 100, 0).map_err(|e| e.reason),
            Err(Reason::ReplayStoreUnavailable)
        );

        let (r, mut m) = store(64);
        m.set(r.key(0), &[1, 2, 3], None).unwrap();
        assert_eq!(
            r.consume(&mut m, "i", "x", 100, 0).map_err(|e| e.reason),
            Err(Reason::ReplayStoreUnavailable)
        );
    }
}
