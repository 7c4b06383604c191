//! One VM's view of a JWKS source (DESIGN.md section 12): the shared record as last read, and
//! the keys parsed from the shared document. The document is parsed again only when its
//! generation changes, so every VM serves the same keys from one shared copy. Keys are served
//! until `cache_seconds + max_stale_seconds` after the last good fetch, then dropped.

use super::fetch::{Source, Trigger};
use super::record::Record;
use crate::replay::{SharedStore, StoreError};
use std::sync::Arc;

/// Keys of one source as this VM holds them; `K` is the parsed key set.
#[derive(Debug)]
pub struct Local<K> {
    generation: u64,
    keys: Option<Arc<K>>,
    record: Record,
}

impl<K> Default for Local<K> {
    fn default() -> Self {
        Local {
            generation: 0,
            keys: None,
            record: Record::default(),
        }
    }
}

impl<K> Clone for Local<K> {
    fn clone(&self) -> Self {
        Local {
            generation: self.generation,
            keys: self.keys.clone(),
            record: self.record,
        }
    }
}

/// What a sync found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    Unchanged,
    /// A new document was parsed and adopted.
    NewKeys,
    /// A new document failed to parse here (it passed the fetcher's parser, so this only
    /// happens across proofgate versions sharing a VM id); the previous keys stay.
    Unparsable,
}

/// The keys a request can use right now.
#[derive(Debug)]
pub enum Available<'a, K> {
    Keys(&'a K),
    /// Never fetched, or dropped past `max_stale_seconds`.
    None,
}

impl<K> Local<K> {
    /// Reads the shared record and, if the document changed, parses it with `parse`.
    pub fn sync(
        &mut self,
        source: &Source,
        store: &mut dyn SharedStore,
        parse: &dyn Fn(&[u8]) -> Option<K>,
    ) -> Result<Synced, StoreError> {
        let (record, _) = source.read(store)?;
        self.record = record;
        if record.generation == self.generation {
            return Ok(Synced::Unchanged);
        }
        let Some(doc) = source.read_doc(store)? else {
            return Ok(Synced::Unchanged);
        };
        if doc.generation == self.generation {
            return Ok(Synced::Unchanged);
        }
        self.generation = doc.generation;
        match parse(&doc.bytes) {
            Some(keys) => {
                self.keys = Some(Arc::new(keys));
                Ok(Synced::NewKeys)
            }
            None => Ok(Synced::Unparsable),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The keys, if loaded and not past `max_stale_seconds`.
    pub fn available(&self, source: &Source, now_ms: i64) -> Available<'_, K> {
        match &self.keys {
            Some(keys) if now_ms < source.usable_until_ms(self.record.fetched_at_ms) => {
                Available::Keys(keys)
            }
            _ => Available::None,
        }
    }

    /// Seconds since the keys in use were fetched (for the age gauge); `None` without keys.
    pub fn age_seconds(&self, source: &Source, now_ms: i64) -> Option<i64> {
        match self.available(source, now_ms) {
            Available::Keys(_) => Some(now_ms.saturating_sub(self.record.fetched_at_ms) / 1000),
            Available::None => None,
        }
    }

    /// Whether a request that fails for `trigger` may wait for a refetch, judged on the record
    /// as last read (the election decides for real, with CAS).
    pub fn may_refetch(&self, source: &Source, trigger: Trigger, now_ms: i64) -> bool {
        self.record.in_flight(now_ms) || source.refetch_allowed(&self.record, trigger, now_ms)
    }

    /// `Retry-After` seconds for a request refused because keys are unavailable: until the next
    /// attempt, at least 1.
    pub fn retry_after_seconds(&self, now_ms: i64) -> u32 {
        let wait = if self.record.in_flight(now_ms) {
            self.record.lease_until_ms - now_ms
        } else {
            self.record.next_fetch_ms - now_ms
        };
        u32::try_from((wait.max(0) + 999) / 1000)
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// For tests: a view holding `keys` as if fetched at `fetched_at_ms`.
    pub fn with_keys(keys: K, generation: u64, record: Record) -> Self {
        Local {
            generation,
            keys: Some(Arc::new(keys)),
            record,
        }
    }
}
