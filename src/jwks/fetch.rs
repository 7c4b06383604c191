//! Who fetches a JWKS, when, and what a response becomes (DESIGN.md section 12), over shared
//! data and an explicit clock in milliseconds:
//!
//! - **Election**: a VM that sees a fetch due takes a lease in the shared record with CAS; only
//!   the lease holder dispatches, so all worker VMs together make one fetch per source. The lease
//!   expires (`timeout_ms` + 1 s) so a VM that died mid-fetch blocks the others only that long.
//! - **Schedule**: prefetch at once (a new record is due at 0), refresh at 80% of
//!   `cache_seconds` (at most a minute early), and after a failure retry with exponential
//!   backoff from 1 s up to `cache_seconds`.
//! - **Unscheduled refetch** (unknown `kid`, failing signature): at most one per source per
//!   `min_refetch_seconds`, across all VMs; a failing signature refetches only keys older than
//!   that.
//! - **Completion**: only the lease holder commits. A good document (200, within `max_bytes`,
//!   accepted by the caller's parser) is written once to shared data under a new generation
//!   (the same bytes keep their generation, so nobody re-parses); a bad one keeps the last good
//!   keys and backs off.

use super::record::{empty_doc, Doc, Record};
use crate::config::jwks::JwksConfig;
use crate::replay::{SharedStore, StoreError};
use sha2::{Digest, Sha256};

const MAX_CAS_ATTEMPTS: u32 = 16;
/// The lease outlives the callout's own timeout by this much.
const LEASE_MARGIN_MS: i64 = 1000;
const FIRST_BACKOFF_MS: i64 = 1000;
/// A refresh starts at most this long before the cache runs out.
const MAX_REFRESH_LEAD_MS: i64 = 60_000;

/// One remote key source: its settings and its two shared-data keys.
#[derive(Debug, Clone)]
pub struct Source {
    /// The issuer (or provider) name, for log lines.
    pub label: String,
    pub config: JwksConfig,
    record_key: String,
    doc_key: String,
}

/// Why a fetch was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Prefetch, refresh, or a retry after backoff.
    Scheduled,
    /// A credential named a `kid` the keys do not have.
    UnknownKid,
    /// A signature failed with keys older than `min_refetch_seconds`.
    BadSignature,
}

/// The outcome of an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// This VM holds the lease and must dispatch the fetch now.
    Claimed(Trigger),
    /// Another fetch (this VM's or another's) is in flight.
    InFlight,
    /// Nothing is due and no refetch was asked for.
    NotDue,
    /// A refetch was asked for but the rate limit forbids it now.
    RefetchRefused,
}

/// Why a fetch produced no keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// The callout could not be dispatched (unknown cluster, host refusal).
    Dispatch,
    /// No response: timeout, reset, or no `:status`.
    NoResponse,
    /// A status other than 200.
    Status(u32),
    /// A body larger than `max_bytes`.
    TooLarge(usize),
    /// The body is not a usable JWKS (the parser's reason).
    Document(&'static str),
}

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FetchError::Dispatch => f.write_str("the callout could not be dispatched"),
            FetchError::NoResponse => f.write_str("no response (timeout or reset)"),
            FetchError::Status(s) => write!(f, "status {s}"),
            FetchError::TooLarge(n) => write!(f, "body of {n} bytes is over max_bytes"),
            FetchError::Document(why) => write!(f, "unusable document: {why}"),
        }
    }
}

/// What a completed fetch became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Good keys, stored under `generation`; `changed` is false when the bytes were the same.
    Stored { generation: u64, changed: bool },
    /// No keys this time; the last good ones stay until they are too stale.
    Failed {
        error: FetchError,
        failures: u32,
        retry_in_ms: i64,
    },
    /// This VM no longer holds the lease (it expired and another VM took it): the response is
    /// ignored.
    LeaseLost,
}

impl Source {
    /// `kind` separates trust-material issuers from providers (different key rules), so that
    /// two sources with the same URL never share a validated document.
    pub fn new(kind: &str, label: &str, config: JwksConfig) -> Source {
        let digest = Sha256::new()
            .chain_update(kind.as_bytes())
            .chain_update([0])
            .chain_update(label.as_bytes())
            .chain_update([0])
            .chain_update(config.cluster.as_bytes())
            .chain_update([0])
            .chain_update(config.uri.as_bytes())
            .chain_update([0])
            .chain_update(config.max_bytes.to_le_bytes())
            .finalize();
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Source {
            label: label.to_string(),
            config,
            record_key: format!("proofgate.jwks.v1.{tag}.record"),
            doc_key: format!("proofgate.jwks.v1.{tag}.doc"),
        }
    }

    pub fn record_key(&self) -> &str {
        &self.record_key
    }

    pub fn doc_key(&self) -> &str {
        &self.doc_key
    }

    /// Creates the record and the document slot if they do not exist (configure time). An
    /// existing record (another VM's, or a previous configuration's) is kept with its keys.
    pub fn create(&self, store: &mut dyn SharedStore) -> Result<(), StoreError> {
        if store.get(&self.record_key)?.0.is_none() {
            store.set(&self.record_key, &Record::default().encode(), None)?;
        }
        if store.get(&self.doc_key)?.0.is_none() {
            store.set(&self.doc_key, &empty_doc(), None)?;
        }
        Ok(())
    }

    /// The shared record and its CAS. A missing or corrupt record reads as a new one, so the
    /// next write (with the CAS) repairs it.
    pub fn read(&self, store: &mut dyn SharedStore) -> Result<(Record, Option<u32>), StoreError> {
        let (value, cas) = store.get(&self.record_key)?;
        let record = value
            .as_deref()
            .and_then(Record::decode)
            .unwrap_or_default();
        Ok((record, cas))
    }

    /// The stored document, if a good fetch ever stored one.
    pub fn read_doc(&self, store: &mut dyn SharedStore) -> Result<Option<Doc>, StoreError> {
        let (value, _) = store.get(&self.doc_key)?;
        match value.as_deref().map(Doc::decode) {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(doc))) => Ok(Some(doc)),
            Some(Err(_)) => Err(StoreError::Other),
        }
    }

    pub fn cache_ms(&self) -> i64 {
        self.config.cache_seconds.saturating_mul(1000)
    }

    pub fn lease_ms(&self) -> i64 {
        self.config.timeout_ms.saturating_add(LEASE_MARGIN_MS)
    }

    /// When keys fetched at `fetched_at_ms` stop being served: the cache period plus
    /// `max_stale_seconds` of failed refreshes.
    pub fn usable_until_ms(&self, fetched_at_ms: i64) -> i64 {
        fetched_at_ms
            .saturating_add(self.cache_ms())
            .saturating_add(self.config.max_stale_seconds.saturating_mul(1000))
    }

    /// The delay before the next scheduled refresh after a good fetch.
    pub fn refresh_in_ms(&self) -> i64 {
        let cache = self.cache_ms();
        (cache - (cache / 5).min(MAX_REFRESH_LEAD_MS)).max(FIRST_BACKOFF_MS)
    }

    /// The retry delay after `failures` consecutive failures: 1 s, 2 s, 4 s ... `cache_seconds`.
    pub fn backoff_ms(&self, failures: u32) -> i64 {
        let shift = failures.saturating_sub(1).min(30);
        FIRST_BACKOFF_MS
            .saturating_mul(1i64 << shift)
            .min(self.cache_ms())
    }

    /// Whether an unscheduled refetch for `trigger` is allowed by `record` at `now_ms`.
    pub fn refetch_allowed(&self, record: &Record, trigger: Trigger, now_ms: i64) -> bool {
        let min = self.config.min_refetch_seconds.saturating_mul(1000);
        let spaced =
            record.refetch_at_ms == 0 || now_ms.saturating_sub(record.refetch_at_ms) >= min;
        match trigger {
            Trigger::Scheduled => true,
            Trigger::UnknownKid => spaced,
            Trigger::BadSignature => {
                spaced
                    && record.generation != 0
                    && now_ms.saturating_sub(record.fetched_at_ms) >= min
            }
        }
    }

    /// Decides whether this VM (`owner`, non-zero) starts a fetch now; `want` is an unscheduled
    /// refetch some request of this VM asked for.
    pub fn elect(
        &self,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        want: Option<Trigger>,
    ) -> Result<Election, StoreError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (record, cas) = self.read(store)?;
            if cas.is_none() {
                // Without a CAS the write below would not be atomic.
                return Err(StoreError::Other);
            }
            if record.in_flight(now_ms) {
                return Ok(Election::InFlight);
            }
            let trigger = if now_ms >= record.next_fetch_ms {
                Trigger::Scheduled
            } else {
                match want {
                    None | Some(Trigger::Scheduled) => return Ok(Election::NotDue),
                    Some(t) if self.refetch_allowed(&record, t, now_ms) => t,
                    Some(_) => return Ok(Election::RefetchRefused),
                }
            };
            let mut next = record;
            next.lease_owner = owner;
            next.lease_until_ms = now_ms.saturating_add(self.lease_ms());
            if trigger != Trigger::Scheduled {
                next.refetch_at_ms = now_ms;
            }
            match store.set(&self.record_key, &next.encode(), cas) {
                Ok(()) => return Ok(Election::Claimed(trigger)),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::CasMismatch)
    }

    /// Classifies a callout response before its body is read: `status` is the `:status` header
    /// (absent on timeout or reset), `body_size` what the host reports.
    pub fn check_response(&self, status: Option<&str>, body_size: usize) -> Result<(), FetchError> {
        let status = status.ok_or(FetchError::NoResponse)?;
        match status.parse::<u32>() {
            Ok(200) => {}
            Ok(other) => return Err(FetchError::Status(other)),
            Err(_) => return Err(FetchError::NoResponse),
        }
        if body_size > self.config.max_bytes {
            return Err(FetchError::TooLarge(body_size));
        }
        Ok(())
    }

    /// Concludes the fetch `owner` dispatched: `result` is the body (already checked with
    /// [`Source::check_response`]) or why there is none; `validate` is the caller's JWKS parser
    /// (`Ok` only for a document with at least one usable key).
    pub fn complete(
        &self,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        result: Result<&[u8], FetchError>,
        validate: &dyn Fn(&[u8]) -> Result<(), &'static str>,
    ) -> Result<Completion, StoreError> {
        let result = result.and_then(|body| {
            if body.len() > self.config.max_bytes {
                return Err(FetchError::TooLarge(body.len()));
            }
            validate(body).map(|()| body).map_err(FetchError::Document)
        });
        match result {
            Ok(body) => self.store_good(store, owner, now_ms, body),
            Err(error) => self.store_failure(store, owner, now_ms, error),
        }
    }

    fn store_good(
        &self,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        body: &[u8],
    ) -> Result<Completion, StoreError> {
        let mut stored = None;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (record, _) = self.read(store)?;
            if record.lease_owner != owner {
                return Ok(Completion::LeaseLost);
            }
            let (value, cas) = store.get(&self.doc_key)?;
            let current = value.as_deref().map(Doc::decode);
            let current_generation = match &current {
                Some(Ok(Some(doc))) if doc.bytes == body && doc.generation == record.generation => {
                    stored = Some((doc.generation, false));
                    break;
                }
                Some(Ok(Some(doc))) => doc.generation,
                _ => 0,
            };
            let generation = current_generation.max(record.generation).saturating_add(1);
            match store.set(&self.doc_key, &Doc::encode(generation, now_ms, body), cas) {
                Ok(()) => {
                    stored = Some((generation, true));
                    break;
                }
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some((generation, changed)) = stored else {
            return Err(StoreError::CasMismatch);
        };
        let refresh = self.refresh_in_ms();
        self.commit(store, owner, |r| {
            r.generation = generation;
            r.fetched_at_ms = now_ms;
            r.failures = 0;
            r.next_fetch_ms = now_ms.saturating_add(refresh);
            r.attempt_done_ms = now_ms;
        })
        .map(|kept| match kept {
            true => Completion::Stored {
                generation,
                changed,
            },
            false => Completion::LeaseLost,
        })
    }

    fn store_failure(
        &self,
        store: &mut dyn SharedStore,
        owner: u64,
        now_ms: i64,
        error: FetchError,
    ) -> Result<Completion, StoreError> {
        let mut outcome = (0, 0);
        let kept = self.commit(store, owner, |r| {
            r.failures = r.failures.saturating_add(1);
            let retry = self.backoff_ms(r.failures);
            r.next_fetch_ms = now_ms.saturating_add(retry);
            r.attempt_done_ms = now_ms;
            outcome = (r.failures, retry);
        })?;
        Ok(match kept {
            true => Completion::Failed {
                error,
                failures: outcome.0,
                retry_in_ms: outcome.1,
            },
            false => Completion::LeaseLost,
        })
    }

    /// Applies `edit` to the record and releases `owner`'s lease, with CAS; false if `owner`
    /// no longer holds the lease.
    fn commit(
        &self,
        store: &mut dyn SharedStore,
        owner: u64,
        mut edit: impl FnMut(&mut Record),
    ) -> Result<bool, StoreError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (record, cas) = self.read(store)?;
            if record.lease_owner != owner || cas.is_none() {
                return Ok(false);
            }
            let mut next = record;
            edit(&mut next);
            next.lease_owner = 0;
            next.lease_until_ms = 0;
            match store.set(&self.record_key, &next.encode(), cas) {
                Ok(()) => return Ok(true),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::CasMismatch)
    }
}
