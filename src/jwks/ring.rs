//! The remote key sources of one configuration and this VM's view of each (DESIGN.md section
//! 12): what a tick does (elections with the refetches this VM's held requests want, then a sync
//! of each view), which held requests to wake, and the [`RemoteKeys`] answers the decision
//! pipeline gets. Pure: the shell passes the store, the clock and the callout results.

use super::fetch::{Completion, Election, FetchError, Source, Trigger};
use super::local::{Available, Local, Synced};
use super::remote::{Hold, KeyLookup, RemoteKeys};
use super::waiters::{SourceNow, Waiters};
use crate::config::Config;
use crate::crypto::{TableBudget, TableWidth, VerifyingKey};
use crate::jwk::{self, PublicKey};
use crate::reason::Reason;
use crate::replay::{SharedStore, StoreError};

/// Memory for the precomputed tables of one source's keys (as trust-material keys have): two
/// of the widest tables (the current key and the next one of a rotation), then narrower ones.
pub fn table_budget() -> TableBudget {
    TableBudget::new(2 * TableWidth::Radix256.bytes() + 2 * TableWidth::Radix16.bytes())
}

/// The Ed25519 keys of a trust-material issuer's JWKS, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct IssuerKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl IssuerKeys {
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A trust-material issuer's JWKS: passports are Ed25519 (`OKP`/`Ed25519`) with a `kid`, so
/// only such keys count; a document without one is refused whole (the last good keys stay).
pub fn parse_issuer_keys(bytes: &[u8]) -> Result<IssuerKeys, &'static str> {
    let set = jwk::parse_jwks(bytes).map_err(|e| match e {
        jwk::JwksError::Json(_) => "not strict JSON",
        jwk::JwksError::NotAJwks => "not a JWKS",
        jwk::JwksError::TooManyKeys => "too many keys",
        jwk::JwksError::NoUsableKey => "no usable key",
    })?;
    let keys: Vec<(String, VerifyingKey)> = set
        .keys
        .into_iter()
        .filter_map(|k| match (k.kid, k.key) {
            (Some(kid), PublicKey::Ed25519(key)) => Some((kid, key)),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Err("no Ed25519 key with a kid");
    }
    Ok(IssuerKeys { keys })
}

/// [`parse_issuer_keys`], with precomputed tables for the keys within [`table_budget`]. Only for
/// the keys a VM adopts: the fetcher's validation does not need them.
pub fn parse_issuer_keys_with_tables(bytes: &[u8]) -> Result<IssuerKeys, &'static str> {
    let mut budget = table_budget();
    let parsed = parse_issuer_keys(bytes)?;
    Ok(IssuerKeys {
        keys: parsed
            .keys
            .into_iter()
            .map(|(kid, key)| (kid, budget.assign(key)))
            .collect(),
    })
}

/// One remote source and this VM's view of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    /// The trust-material issuer whose keys these are.
    pub issuer: String,
    pub local: Local<IssuerKeys>,
    last_log: Option<(String, i64)>,
}

/// Every remote source of a configuration.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    pub entries: Vec<Entry>,
}

/// What one tick did for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTick {
    pub index: usize,
    pub election: Result<Election, StoreError>,
    pub synced: Result<Synced, StoreError>,
}

/// A failed log line is repeated at most this often per source and VM.
pub const LOG_INTERVAL_MS: i64 = 30_000;

impl Ring {
    pub fn new(config: &Config) -> Ring {
        let entries = config
            .issuers
            .iter()
            .filter_map(|i| {
                let jwks = i.jwks.clone()?;
                Some(Entry {
                    source: Source::new("trust_material", &i.issuer, jwks),
                    issuer: i.issuer.clone(),
                    local: Local::default(),
                    last_log: None,
                })
            })
            .collect();
        Ring { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn index(&self, issuer: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.issuer == issuer)
    }

    /// Creates every source's shared values that do not exist yet (configure time).
    pub fn create(&self, store: &mut dyn SharedStore) -> Result<(), StoreError> {
        self.entries.iter().try_for_each(|e| e.source.create(store))
    }

    /// One tick of this VM (`owner`): elect a fetcher for each source (asking for the refetch
    /// this VM's held requests want), then read each source's shared state and adopt new keys.
    /// A [`Election::Claimed`] result means: dispatch that source's fetch now.
    pub fn tick(
        &mut self,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        waiters: &Waiters,
    ) -> Vec<SourceTick> {
        let parse = |bytes: &[u8]| parse_issuer_keys_with_tables(bytes).ok();
        self.entries
            .iter_mut()
            .enumerate()
            .map(|(index, e)| {
                let want = waiters.wanted_refetch(index);
                let election = e.source.elect(store, owner, now_ms, want);
                let synced = e.local.sync(&e.source, store, &parse);
                SourceTick {
                    index,
                    election,
                    synced,
                }
            })
            .collect()
    }

    /// The held requests to decide now, after `ticks`.
    pub fn wake(&self, waiters: &mut Waiters, ticks: &[SourceTick], now_ms: i64) -> Vec<u32> {
        let mut woken = Vec::new();
        for (index, e) in self.entries.iter().enumerate() {
            let refused = ticks
                .iter()
                .any(|t| t.index == index && t.election == Ok(Election::RefetchRefused));
            let now = SourceNow {
                generation: e.local.generation(),
                record: e.local.record(),
                refetch_refused: refused,
            };
            woken.extend(waiters.wake(index, now, now_ms));
        }
        woken
    }

    /// Concludes the fetch this VM dispatched for source `index`, then adopts its keys.
    pub fn complete(
        &mut self,
        index: usize,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        result: Result<&[u8], FetchError>,
    ) -> Result<Completion, StoreError> {
        let Some(e) = self.entries.get_mut(index) else {
            return Err(StoreError::Other);
        };
        let validate = |bytes: &[u8]| parse_issuer_keys(bytes).map(|_| ());
        let completion = e.source.complete(store, owner, now_ms, result, &validate)?;
        let parse = |bytes: &[u8]| parse_issuer_keys_with_tables(bytes).ok();
        e.local.sync(&e.source, store, &parse)?;
        Ok(completion)
    }

    /// Seconds since the oldest key set in use was fetched.
    pub fn age_seconds(&self, now_ms: i64) -> Option<i64> {
        self.entries
            .iter()
            .filter_map(|e| e.local.age_seconds(&e.source, now_ms))
            .max()
    }

    /// Whether failure `kind` (e.g. `status 500`) of source `index` may be logged now: a new
    /// kind at once, the same kind again at most once per [`LOG_INTERVAL_MS`] per source and VM.
    pub fn may_log(&mut self, index: usize, kind: &str, now_ms: i64) -> bool {
        let Some(e) = self.entries.get_mut(index) else {
            return false;
        };
        match &e.last_log {
            Some((k, t)) if k == kind && now_ms.saturating_sub(*t) < LOG_INTERVAL_MS => false,
            _ => {
                e.last_log = Some((kind.to_string(), now_ms));
                true
            }
        }
    }

    fn entry(&self, issuer: &str) -> Option<(usize, &Entry)> {
        self.index(issuer)
            .and_then(|i| self.entries.get(i).map(|e| (i, e)))
    }
}

impl RemoteKeys for Ring {
    fn lookup(&self, issuer: &str, kid: &str, now: i64) -> KeyLookup<'_> {
        let Some((_, e)) = self.entry(issuer) else {
            return KeyLookup::Unavailable;
        };
        match e.local.available(&e.source, now.saturating_mul(1000)) {
            Available::Keys(keys) => match keys.find(kid) {
                Some(key) => KeyLookup::Found(key),
                None => KeyLookup::UnknownKid,
            },
            Available::None => KeyLookup::Unavailable,
        }
    }

    fn hold(&self, issuer: &str, reason: Reason, now: i64) -> Option<Hold> {
        let (index, e) = self.entry(issuer)?;
        let now_ms = now.saturating_mul(1000);
        let timeout_ms = e.source.config.timeout_ms;
        let refetch = match reason {
            Reason::KeysUnavailable => {
                let r = e.local.record();
                if !r.in_flight(now_ms) && r.next_fetch_ms > now_ms.saturating_add(timeout_ms) {
                    // No fetch can bring keys in time: answer now rather than hang.
                    return None;
                }
                None
            }
            Reason::UnknownSigningKey => Some(Trigger::UnknownKid),
            Reason::InvalidPassportSignature => Some(Trigger::BadSignature),
            _ => return None,
        };
        if let Some(trigger) = refetch {
            if !e.local.may_refetch(&e.source, trigger, now_ms) {
                return None;
            }
        }
        Some(Hold {
            source: index,
            refetch,
            generation: e.local.generation(),
            timeout_ms,
        })
    }

    fn retry_after(&self, issuer: &str, now: i64) -> u32 {
        self.entry(issuer).map_or(1, |(_, e)| {
            e.local.retry_after_seconds(now.saturating_mul(1000))
        })
    }
}
