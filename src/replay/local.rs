//! The shared-data replay store (DESIGN.md section 5), laid out so that neither its size nor a
//! reload changes where a claim lives:
//!
//! - a fixed set of [`BUCKETS`] bucket keys, `proofgate.replay.v2.<i>`, whatever
//!   `replay.max_entries` says. A resize only changes how many entries a bucket may hold, so an
//!   entry consumed under one configuration is found under any other (no replay window on a
//!   resize, a reload, or while old and new listeners drain side by side), and what the store
//!   leaves in shared data is the same bounded set of keys for every configuration;
//! - the bucket is chosen by a keyed hash (SipHash-2-4, secret in shared data, see `secret`),
//!   so no caller can aim its jtis at a victim's bucket;
//! - each entry records its owner (a keyed hash of issuer and subject), and one owner may hold
//!   only its share of a bucket, so a single caller cannot fill the store for everyone else;
//! - buckets are small (64 entries on average at the largest size), so a consume copies about a
//!   kilobyte at most, whatever the size or fill.

use super::bucket;
use super::secret;
use super::sizing::poisson_limit;
use super::{Claim, Pressure, Refusal, Refused, SharedStore, StoreError};
use crate::config::replay::ReplayConfig;
use core::hash::Hasher;
use siphasher::sip128::{Hasher128, SipHasher24};
use std::cell::RefCell;

/// Bucket keys in shared data, for every configuration.
pub const BUCKETS: u32 = 65_536;
const BUCKET_PREFIX: &str = "proofgate.replay.v2.";
/// Holds how many buckets exist, so later VMs and reloads skip creating them.
const READY_KEY: &str = "proofgate.replay.v2.ready";
const MAX_ATTEMPTS: u32 = 32;

/// The keyed hashes: one places a claim, the other names its owner.
#[derive(Clone)]
struct Keys {
    claim: SipHasher24,
    owner: SipHasher24,
}

impl Keys {
    fn new(secret: &[u8; secret::SECRET_LEN]) -> Self {
        let half = |i: usize| {
            let mut k = [0u8; 16];
            k.copy_from_slice(&secret[i..i + 16]);
            SipHasher24::new_with_key(&k)
        };
        Keys {
            claim: half(0),
            owner: half(16),
        }
    }
}

/// Length-prefixed fields, so that no two different field lists hash the same input.
fn keyed(base: &SipHasher24, fields: &[&str]) -> (u64, u64) {
    let mut h = *base;
    for f in fields {
        h.write(&(f.len() as u64).to_be_bytes());
        h.write(f.as_bytes());
    }
    h.finish128().as_u64()
}

/// The local store: its limits, and the keyed hashes once loaded from shared data.
#[derive(Clone)]
pub struct ReplayStore {
    buckets: u32,
    per_bucket: usize,
    per_owner: usize,
    /// The secret last read from shared data and the hashes keyed by it. Re-read on every use:
    /// shared data has no atomic "create if absent", so two VMs loading at the same instant can
    /// briefly hold different secrets; reading through makes every VM hash with the one value
    /// that ended up in shared data, so none places a claim where the others do not look.
    keys: RefCell<Option<([u8; secret::SECRET_LEN], Keys)>>,
}

impl core::fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the secret.
        f.debug_struct("ReplayStore")
            .field("buckets", &self.buckets)
            .field("per_bucket", &self.per_bucket)
            .field("per_owner", &self.per_owner)
            .field("keyed", &self.keys.borrow().is_some())
            .finish()
    }
}

impl ReplayStore {
    /// Limits for `replay`: one owner's share holds `max_entries_per_subject` (refused below
    /// that with probability under 1e-5), and a bucket holds the Poisson limit of
    /// `max_entries` plus one full share, so a caller at its share never crowds out the others.
    pub fn new(cfg: &ReplayConfig) -> Self {
        let n = BUCKETS as usize;
        let per_owner = poisson_limit(cfg.max_entries_per_subject, n);
        let per_bucket = poisson_limit(cfg.max_entries, n) + per_owner;
        Self::with_layout(BUCKETS, per_bucket, per_owner)
    }

    /// Explicit limits over the first `buckets` bucket keys (tests and benchmarks).
    pub fn with_layout(buckets: u32, per_bucket: usize, per_owner: usize) -> Self {
        ReplayStore {
            buckets: buckets.clamp(1, BUCKETS),
            per_bucket: per_bucket.max(1),
            per_owner: per_owner.clamp(1, per_bucket.max(1)),
            keys: RefCell::new(None),
        }
    }

    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    pub fn per_bucket(&self) -> usize {
        self.per_bucket
    }

    pub fn per_owner(&self) -> usize {
        self.per_owner
    }

    /// Entries the store can ever hold: the bound on its shared data.
    pub fn capacity(&self) -> usize {
        self.per_bucket * self.buckets as usize
    }

    /// Loads (or makes) the secret and creates the buckets that do not exist yet; called at
    /// configuration load so that a broken store refuses the configuration, not requests.
    pub fn open(&self, store: &mut dyn SharedStore) -> Result<(), StoreError> {
        self.keys(store)?;
        let ready = match store.get(READY_KEY)? {
            (Some(v), _) => v.as_slice().try_into().map_or(0, u32::from_be_bytes),
            (None, _) => 0,
        };
        if ready >= self.buckets {
            return Ok(());
        }
        for i in 0..self.buckets {
            let key = bucket_key(i);
            if let (None, _) = store.get(&key)? {
                store.set(&key, &bucket::empty(), None)?;
            }
        }
        store.set(READY_KEY, &self.buckets.to_be_bytes(), None)
    }

    /// The hashes keyed by the secret now in shared data (one read of 32 bytes; the hashers are
    /// rebuilt only when the secret differs from the one last seen).
    fn keys(&self, store: &mut dyn SharedStore) -> Result<Keys, StoreError> {
        let s = secret::load_or_create(store, &mut secret::random)?;
        let mut cached = self.keys.borrow_mut();
        match cached.as_ref() {
            Some((seen, keys)) if *seen == s => Ok(keys.clone()),
            _ => {
                let keys = Keys::new(&s);
                *cached = Some((s, keys.clone()));
                Ok(keys)
            }
        }
    }

    /// The bucket and tag of a claim, and its owner's tag.
    fn locate(&self, keys: &Keys, claim: &Claim<'_>) -> (u32, u64, u32) {
        let (h1, h2) = keyed(&keys.claim, &[claim.namespace, claim.issuer, claim.id]);
        let (o1, _) = keyed(&keys.owner, &[claim.issuer, claim.subject]);
        let index = u32::try_from(h1 % u64::from(self.buckets)).unwrap_or(0);
        (index, h2, o1 as u32)
    }

    /// Records `claim` as used until `claim.until`; refused if it already is, if `until` is not
    /// in the future, or if its bucket (or its owner's share of it) is full.
    pub fn consume(
        &self,
        store: &mut dyn SharedStore,
        claim: &Claim<'_>,
        now: i64,
    ) -> Result<Pressure, Refused> {
        let mut pressure = Pressure::default();
        if claim.until <= now {
            return Err(Refused::new(Refusal::Expired, pressure));
        }
        let Ok(keys) = self.keys(store) else {
            return Err(Refused::new(Refusal::Unavailable, pressure));
        };
        let (index, tag, owner) = self.locate(&keys, claim);
        let key = bucket_key(index);
        let refuse = |refusal, pressure| Err(Refused::new(refusal, pressure));
        for _ in 0..MAX_ATTEMPTS {
            let Ok((value, cas)) = store.get(&key) else {
                return refuse(Refusal::Unavailable, pressure);
            };
            let (Some(value), Some(cas)) = (value, cas) else {
                // Created at load; if it is gone, recreate and read again with a CAS.
                if store.set(&key, &bucket::empty(), None).is_err() {
                    return refuse(Refusal::Unavailable, pressure);
                }
                pressure.cas_retries += 1;
                continue;
            };
            let Some(scan) = bucket::scan(&value, tag, owner, now) else {
                return refuse(Refusal::Unavailable, pressure);
            };
            pressure.bucket_entries = scan.live;
            if scan.replay {
                return refuse(Refusal::Replay, pressure);
            }
            if now < scan.horizon && claim.until <= scan.horizon {
                return refuse(Refusal::ClockBehind, pressure);
            }
            if scan.live >= self.per_bucket {
                pressure.bucket_full = true;
                return refuse(Refusal::Full, pressure);
            }
            if scan.owner_live >= self.per_owner {
                pressure.share_full = true;
                return refuse(Refusal::ShareFull, pressure);
            }
            let next = bucket::rewrite(&value, scan.horizon, now, tag, owner, claim.until);
            match store.set(&key, &next, Some(cas)) {
                Ok(()) => {
                    pressure.bucket_entries = scan.live + 1;
                    return Ok(pressure);
                }
                Err(StoreError::CasMismatch) => pressure.cas_retries += 1,
                Err(StoreError::Other) => return refuse(Refusal::Unavailable, pressure),
            }
        }
        refuse(Refusal::Unavailable, pressure)
    }

    /// Live entries in bucket `i`; an unreadable bucket counts as empty (this feeds a metric,
    /// never a decision).
    pub fn live_in_bucket(&self, store: &mut dyn SharedStore, i: u32, now: i64) -> usize {
        match store.get(&bucket_key(i)) {
            Ok((Some(value), _)) => bucket::count_live(&value, now),
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

fn bucket_key(i: u32) -> String {
    format!("{BUCKET_PREFIX}{i}")
}

/// The live-entries gauge, refreshed a slice of buckets per step so that no single timer tick
/// reads the whole store (65,536 buckets) and stalls a worker's event loop.
#[derive(Debug, Clone)]
pub struct LiveCounter {
    counts: Vec<u16>,
    total: usize,
    cursor: u32,
}

impl LiveCounter {
    /// Steps per full pass over the buckets: 1,024 buckets a step (at the largest size, full,
    /// about 1 MB read a step), a pass every 32 s on the 500 ms gauge timer. A bucket read is a
    /// host call of ~3 µs; 16 steps of 4,096 buckets cost one VM 2.6% of a core (issue 12).
    pub const STEPS_PER_PASS: u32 = 64;

    pub fn new(replay: &ReplayStore) -> Self {
        LiveCounter {
            counts: vec![0; replay.buckets as usize],
            total: 0,
            cursor: 0,
        }
    }

    /// Re-reads the next slice of buckets and returns the current total.
    pub fn step(&mut self, replay: &ReplayStore, store: &mut dyn SharedStore, now: i64) -> usize {
        let slice = replay.buckets.div_ceil(Self::STEPS_PER_PASS);
        for _ in 0..slice {
            let i = self.cursor;
            if let Some(count) = self.counts.get_mut(i as usize) {
                let fresh = u16::try_from(replay.live_in_bucket(store, i, now)).unwrap_or(u16::MAX);
                self.total = self.total - usize::from(*count) + usize::from(fresh);
                *count = fresh;
            }
            self.cursor = (i + 1) % replay.buckets;
        }
        self.total
    }
}

#[cfg(test)]
impl ReplayStore {
    /// The bucket a claim lands in (tests).
    pub(crate) fn bucket_of(&self, store: &mut dyn SharedStore, claim: &Claim<'_>) -> u32 {
        match self.keys(store) {
            Ok(keys) => self.locate(&keys, claim).0,
            Err(_) => u32::MAX,
        }
    }
}
