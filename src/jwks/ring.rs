//! The remote key sources of one configuration and this VM's view of each (DESIGN.md section
//! 12): trust-material issuers (Ed25519 passport keys) and JWT providers (EdDSA, ES256, RS256
//! token keys; section 13). What a tick does (elections with the refetches this VM's held
//! requests want, then a sync of each view), which held requests to wake, and the
//! [`RemoteKeys`] answers the decision pipeline gets. Pure: the shell passes the store, the
//! clock and the callout results.

use super::fetch::{Completion, Election, FetchError, Source, Trigger};
use super::local::{Available, Local, Synced};
use super::remote::{Hold, KeyLookup, ProviderLookup, RemoteKeys};
use super::waiters::{SourceNow, Waiters};
use crate::algs::Alg;
use crate::config::Config;
use crate::config::ProviderKeys;
use crate::crypto::{give_tables, TableWidth, VerifyingKey};
use crate::jwk::{self, KeySet, PublicKey};
use crate::reason::Reason;
use crate::replay::{SharedStore, StoreError};

/// Memory for the precomputed tables of one source's Ed25519 keys (as trust-material keys
/// have): two radix-256 tables (the current key and the next one of a rotation), then two
/// radix-16 ones. Not the widest: every fetched source has its own budget, outside
/// `key_tables_max_bytes`.
pub const SOURCE_TABLE_BYTES: usize =
    2 * TableWidth::Radix256.bytes() + 2 * TableWidth::Radix16.bytes();

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

fn document_error(e: jwk::JwksError) -> &'static str {
    match e {
        jwk::JwksError::Json(_) => "not strict JSON",
        jwk::JwksError::NotAJwks => "not a JWKS",
        jwk::JwksError::TooManyKeys => "too many keys",
        jwk::JwksError::NoUsableKey => "no usable key",
    }
}

/// A trust-material issuer's JWKS: passports are Ed25519 (`OKP`/`Ed25519`) with a `kid`, so
/// only such keys count; a document without one is refused whole (the last good keys stay).
pub fn parse_issuer_keys(bytes: &[u8]) -> Result<IssuerKeys, &'static str> {
    let set = jwk::parse_jwks(bytes).map_err(document_error)?;
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

/// [`parse_issuer_keys`], with precomputed tables for the keys within [`SOURCE_TABLE_BYTES`].
/// Only for the keys a VM adopts: the fetcher's validation does not need them.
pub fn parse_issuer_keys_with_tables(bytes: &[u8]) -> Result<IssuerKeys, &'static str> {
    let mut parsed = parse_issuer_keys(bytes)?;
    give_tables(
        SOURCE_TABLE_BYTES,
        parsed.keys.iter_mut().map(|(_, key)| key),
    );
    Ok(parsed)
}

/// A JWT provider's JWKS: the keys (`OKP`/`Ed25519`, `EC`/`P-256`, `RSA` of 2048 bits or
/// more; `oct` never, section 12) that fit an algorithm the provider accepts. A document without
/// one is refused whole (the last good keys stay).
pub fn parse_provider_keys(bytes: &[u8], algorithms: &[Alg]) -> Result<KeySet, &'static str> {
    let mut set = jwk::parse_jwks(bytes).map_err(document_error)?;
    set.keys.retain(|k| algorithms.contains(&k.key.alg()));
    if set.keys.is_empty() {
        return Err("no key for the provider's algorithms");
    }
    Ok(set)
}

/// Whose keys a source holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A trust-material issuer (passports).
    Issuer(String),
    /// A `jwt_providers` entry, by name, with the algorithms it accepts.
    Provider { name: String, algorithms: Vec<Alg> },
}

/// The parsed keys of one source.
#[derive(Debug, Clone)]
pub enum SourceKeys {
    Issuer(IssuerKeys),
    Provider(KeySet),
}

impl Owner {
    /// Parses a fetched document for this owner; `tables` gives Ed25519 keys precomputed
    /// tables within [`SOURCE_TABLE_BYTES`] (only for the keys a VM adopts: the fetcher's validation
    /// does not need them).
    pub fn parse(&self, bytes: &[u8], tables: bool) -> Result<SourceKeys, &'static str> {
        match self {
            Owner::Issuer(_) if tables => {
                parse_issuer_keys_with_tables(bytes).map(SourceKeys::Issuer)
            }
            Owner::Issuer(_) => parse_issuer_keys(bytes).map(SourceKeys::Issuer),
            Owner::Provider { algorithms, .. } => {
                let mut set = parse_provider_keys(bytes, algorithms)?;
                if tables {
                    give_tables(SOURCE_TABLE_BYTES, set.ed25519_keys_mut());
                }
                Ok(SourceKeys::Provider(set))
            }
        }
    }
}

/// One remote source and this VM's view of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    pub owner: Owner,
    pub local: Local<SourceKeys>,
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
        let issuers = config.issuers.iter().filter_map(|i| {
            let jwks = i.jwks.clone()?;
            Some(Entry {
                source: Source::new("trust_material", &i.issuer, jwks),
                owner: Owner::Issuer(i.issuer.clone()),
                local: Local::default(),
                last_log: None,
            })
        });
        let providers = config.jwt_providers.iter().filter_map(|p| {
            let ProviderKeys::Remote(jwks) = &p.keys else {
                return None;
            };
            Some(Entry {
                source: Source::new("jwt_provider", &p.name, jwks.clone()),
                owner: Owner::Provider {
                    name: p.name.clone(),
                    algorithms: p.algorithms.clone(),
                },
                local: Local::default(),
                last_log: None,
            })
        });
        Ring {
            entries: issuers.chain(providers).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The source of trust-material issuer `issuer`.
    pub fn index(&self, issuer: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| matches!(&e.owner, Owner::Issuer(i) if i == issuer))
    }

    /// The source of JWT provider `name`.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| matches!(&e.owner, Owner::Provider { name: n, .. } if n == name))
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
        self.entries
            .iter_mut()
            .enumerate()
            .map(|(index, e)| {
                let want = waiters.wanted_refetch(index);
                let election = e.source.elect(store, owner, now_ms, want);
                let who = &e.owner;
                let parse = |bytes: &[u8]| who.parse(bytes, true).ok();
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
        let who = &e.owner;
        let validate = |bytes: &[u8]| who.parse(bytes, false).map(|_| ());
        let completion = e.source.complete(store, owner, now_ms, result, &validate)?;
        let parse = |bytes: &[u8]| who.parse(bytes, true).ok();
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

    /// Whether a request refused with `reason` for source `index`'s keys is worth holding.
    fn hold_at(&self, index: usize, reason: Reason, now: i64) -> Option<Hold> {
        let e = self.entries.get(index)?;
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
            Reason::InvalidPassportSignature | Reason::InvalidTokenSignature => {
                Some(Trigger::BadSignature)
            }
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

    fn retry_after_at(&self, index: Option<usize>, now: i64) -> u32 {
        index
            .and_then(|i| self.entries.get(i))
            .map_or(1, |e| e.local.retry_after_seconds(now.saturating_mul(1000)))
    }
}

impl RemoteKeys for Ring {
    fn lookup(&self, issuer: &str, kid: &str, now: i64) -> KeyLookup<'_> {
        let Some((_, e)) = self.entry(issuer) else {
            return KeyLookup::Unavailable;
        };
        match e.local.available(&e.source, now.saturating_mul(1000)) {
            Available::Keys(SourceKeys::Issuer(keys)) => match keys.find(kid) {
                Some(key) => KeyLookup::Found(key),
                None => KeyLookup::UnknownKid,
            },
            Available::Keys(SourceKeys::Provider(_)) | Available::None => KeyLookup::Unavailable,
        }
    }

    fn hold(&self, issuer: &str, reason: Reason, now: i64) -> Option<Hold> {
        self.hold_at(self.index(issuer)?, reason, now)
    }

    fn retry_after(&self, issuer: &str, now: i64) -> u32 {
        self.retry_after_at(self.index(issuer), now)
    }

    fn provider_keys(&self, provider: &str, now: i64) -> ProviderLookup<'_> {
        let Some(e) = self
            .provider_index(provider)
            .and_then(|i| self.entries.get(i))
        else {
            return ProviderLookup::Unavailable;
        };
        match e.local.available(&e.source, now.saturating_mul(1000)) {
            Available::Keys(SourceKeys::Provider(keys)) => ProviderLookup::Keys {
                keys,
                generation: e.local.generation(),
            },
            Available::Keys(SourceKeys::Issuer(_)) | Available::None => ProviderLookup::Unavailable,
        }
    }

    fn provider_hold(&self, provider: &str, reason: Reason, now: i64) -> Option<Hold> {
        self.hold_at(self.provider_index(provider)?, reason, now)
    }

    fn provider_retry_after(&self, provider: &str, now: i64) -> u32 {
        self.retry_after_at(self.provider_index(provider), now)
    }
}
