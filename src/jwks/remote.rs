//! What the decision pipeline asks of remote keys (DESIGN.md section 12): the key for an
//! issuer's `kid`, a JWT provider's key set, and whether a request that could not be decided with the keys at hand should
//! be held for a fetch. The pipeline stays pure: it gets these answers through a trait, and the
//! shell (or a test) supplies the keys.

use super::fetch::Trigger;
use crate::crypto::VerifyingKey;
use crate::jwk::KeySet;
use crate::reason::Reason;

/// A key lookup in remote keys.
#[derive(Debug, Clone, Copy)]
pub enum KeyLookup<'a> {
    Found(&'a VerifyingKey),
    /// The keys are loaded and none has this `kid`.
    UnknownKid,
    /// No keys: never fetched, or past `max_stale_seconds`.
    Unavailable,
}

/// A JWT provider's remote keys (DESIGN.md sections 12 and 13).
#[derive(Debug, Clone, Copy)]
pub enum ProviderLookup<'a> {
    /// The key set, and its generation: the provider's verified-token cache is cleared when
    /// the generation changes.
    Keys { keys: &'a KeySet, generation: u64 },
    /// No keys: never fetched, or past `max_stale_seconds`.
    Unavailable,
}

/// A request to hold until keys change (or a deadline passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Index of the source in the shell's key ring.
    pub source: usize,
    /// The unscheduled refetch to ask for; `None` to wait for the keys to load.
    pub refetch: Option<Trigger>,
    /// The key generation the request was decided against.
    pub generation: u64,
    /// How long to hold at most (`timeout_ms`).
    pub timeout_ms: i64,
}

/// Remote keys as the pipeline sees them. `now` is Unix seconds.
pub trait RemoteKeys {
    /// The key of `issuer` (a trust-material issuer with `jwks`) named `kid`.
    fn lookup(&self, issuer: &str, kid: &str, now: i64) -> KeyLookup<'_>;
    /// Whether a request refused with `reason` (`unknown_signing_key`,
    /// `invalid_passport_signature` or `keys_unavailable`) for `issuer`'s remote keys is worth
    /// holding for a fetch; `None` to decide now.
    fn hold(&self, issuer: &str, reason: Reason, now: i64) -> Option<Hold>;
    /// `Retry-After` seconds for a `keys_unavailable` refusal.
    fn retry_after(&self, issuer: &str, now: i64) -> u32;
    /// The keys of JWT provider `provider` (one with `jwks`).
    fn provider_keys(&self, _provider: &str, _now: i64) -> ProviderLookup<'_> {
        ProviderLookup::Unavailable
    }
    /// [`RemoteKeys::hold`] for a JWT provider's token refused with `unknown_signing_key`,
    /// `invalid_token_signature` or `keys_unavailable`.
    fn provider_hold(&self, _provider: &str, _reason: Reason, _now: i64) -> Option<Hold> {
        None
    }
    /// `Retry-After` seconds for a provider's `keys_unavailable` refusal.
    fn provider_retry_after(&self, _provider: &str, _now: i64) -> u32 {
        1
    }
}

/// No remote keys at all (native callers with inline keys only): every remote issuer is
/// unavailable and nothing is held.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRemoteKeys;

impl RemoteKeys for NoRemoteKeys {
    fn lookup(&self, _issuer: &str, _kid: &str, _now: i64) -> KeyLookup<'_> {
        KeyLookup::Unavailable
    }

    fn hold(&self, _issuer: &str, _reason: Reason, _now: i64) -> Option<Hold> {
        None
    }

    fn retry_after(&self, _issuer: &str, _now: i64) -> u32 {
        1
    }
}
