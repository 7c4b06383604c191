//! Consume-once store for jtis and other once-only values (DESIGN.md section 5; the cluster
//! backend is section 15). One interface, "consume this key until this time" ([`Claim`]), serves
//! passport jtis and DPoP proof jtis alike.
//!
//! The local backend ([`ReplayStore`]) lives in proxy-wasm shared data, shared by every VM of one
//! Envoy process. Shared-data keys can never be deleted and a CAS on an absent key is ignored, so
//! the store is a fixed set of bucket keys, each holding a compact list of entries; a consume
//! reads one bucket with its CAS, refuses a live duplicate, prunes expired entries, appends, and
//! writes back with the CAS, retrying when another worker wrote first. The host side is a trait,
//! so the algorithm runs natively in tests against an in-memory store with injected races.

mod bucket;
pub mod cluster;
pub mod etcd;
mod local;
mod secret;
mod sizing;

pub use local::{LiveCounter, ReplayStore, BUCKETS};
pub use secret::SECRET_KEY;

use crate::reason::Reason;

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

/// One once-only value to consume: "consume this key until this time".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// Keeps independent kinds of once-only values apart: [`Claim::PASSPORT`], [`Claim::DPOP`].
    pub namespace: &'a str,
    /// Who vouches for `id` (a jti is unique per issuer).
    pub issuer: &'a str,
    /// The once-only value, e.g. a jti.
    pub id: &'a str,
    /// The caller charged for the entry (with `issuer`): it bounds one caller's share.
    pub subject: &'a str,
    /// Unix seconds: the entry is live while `now < until`.
    pub until: i64,
}

impl Claim<'_> {
    pub const PASSPORT: &'static str = "passport";
    pub const DPOP: &'static str = "dpop";
}

/// Why a consume was refused. Each caller maps it to its own reason (a passport jti replay is
/// `jti_replay`, a DPoP one `dpop_replay`); [`Refusal::passport_reason`] is the passport mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The value is already consumed and its entry still live.
    Replay,
    /// `until` is not in the future: the store never accepts an entry that is already dead.
    Expired,
    /// The bucket is full of live entries.
    Full,
    /// The caller holds its whole share of the bucket.
    ShareFull,
    /// The host clock is behind entries this bucket already pruned (a backward clock step), and
    /// this claim would have been one of them: it may be a replay, so it is refused until the
    /// clock catches up.
    ClockBehind,
    /// Shared data failed, was malformed, or kept conflicting.
    Unavailable,
}

impl Refusal {
    /// The reason for a passport jti refused this way.
    pub fn passport_reason(self) -> Reason {
        match self {
            Refusal::Replay => Reason::JtiReplay,
            Refusal::Expired => Reason::PassportExpired,
            Refusal::Full | Refusal::ShareFull | Refusal::ClockBehind | Refusal::Unavailable => {
                Reason::ReplayStoreUnavailable
            }
        }
    }
}

/// Pressure observed while consuming, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub cas_retries: u32,
    /// Live entries in the bucket after the write.
    pub bucket_entries: usize,
    /// The bucket was still full after pruning, so the consume was refused.
    pub bucket_full: bool,
    /// The caller's share of the bucket was used up, so the consume was refused.
    pub share_full: bool,
}

/// A refused consume: why, the passport reason for it, and the pressure seen on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub refusal: Refusal,
    /// `refusal.passport_reason()`.
    pub reason: Reason,
    pub pressure: Pressure,
}

impl Refused {
    fn new(refusal: Refusal, pressure: Pressure) -> Self {
        Refused {
            refusal,
            reason: refusal.passport_reason(),
            pressure,
        }
    }
}

/// An in-memory [`SharedStore`] with Envoy's semantics (absent keys ignore the CAS), for tests
/// and the native benchmark.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // Ordered, not hashed: no random seed, so instruction counts repeat exactly.
    map: std::collections::BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl MemoryStore {
    /// How many keys exist (what a store leaves behind in shared data).
    pub fn keys(&self) -> usize {
        self.map.len()
    }
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
        match self.map.get_mut(key) {
            Some(slot) => {
                slot.0.clear();
                slot.0.extend_from_slice(value);
                slot.1 = self.next_cas;
            }
            None => {
                self.map
                    .insert(key.to_string(), (value.to_vec(), self.next_cas));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
