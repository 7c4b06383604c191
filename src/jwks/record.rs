//! The two shared-data values of one JWKS source (DESIGN.md section 12): a small fixed-size
//! record that every VM reads on each tick (who is fetching, until when, the document's
//! generation, when the keys were last fetched, the backoff), and the document itself, read only
//! when its generation changes. Both are written with CAS; the record is the commit point.

/// Layout version of both values; a value of another version reads as corrupt.
const FORMAT: u8 = 1;
const RECORD_LEN: usize = 1 + 8 * 7 + 4;
const DOC_HEADER: usize = 1 + 8 + 8;

/// The fetch state of one source, shared by every worker VM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    /// Generation of the document in shared data; 0 until a first good fetch.
    pub generation: u64,
    /// When the last good fetch completed (ms); 0 if never.
    pub fetched_at_ms: i64,
    /// When the next scheduled fetch is due (refresh or backoff retry), ms; 0 means now.
    pub next_fetch_ms: i64,
    /// Consecutive failed fetches since the last good one.
    pub failures: u32,
    /// A fetch is in flight until this time (ms); a VM that died mid-fetch blocks no longer.
    pub lease_until_ms: i64,
    /// Who holds the lease (a random per-VM id); 0 when free.
    pub lease_owner: u64,
    /// When the last unscheduled refetch (unknown kid, failing signature) started, ms; 0 if never.
    pub refetch_at_ms: i64,
    /// When the last fetch attempt, good or bad, concluded (ms).
    pub attempt_done_ms: i64,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_LEN);
        out.push(FORMAT);
        out.extend_from_slice(&self.generation.to_le_bytes());
        for v in [self.fetched_at_ms, self.next_fetch_ms, self.lease_until_ms] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.lease_owner.to_le_bytes());
        for v in [self.refetch_at_ms, self.attempt_done_ms] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.failures.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.len() != RECORD_LEN || bytes[0] != FORMAT {
            return None;
        }
        let mut words = bytes[1..1 + 8 * 7]
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).ok());
        let mut next = || words.next().flatten();
        let generation = u64::from_le_bytes(next()?);
        let fetched_at_ms = i64::from_le_bytes(next()?);
        let next_fetch_ms = i64::from_le_bytes(next()?);
        let lease_until_ms = i64::from_le_bytes(next()?);
        let lease_owner = u64::from_le_bytes(next()?);
        let refetch_at_ms = i64::from_le_bytes(next()?);
        let attempt_done_ms = i64::from_le_bytes(next()?);
        let failures = u32::from_le_bytes(<[u8; 4]>::try_from(&bytes[1 + 8 * 7..]).ok()?);
        Some(Record {
            generation,
            fetched_at_ms,
            next_fetch_ms,
            failures,
            lease_until_ms,
            lease_owner,
            refetch_at_ms,
            attempt_done_ms,
        })
    }

    /// A fetch is in flight (some VM holds an unexpired lease).
    pub fn in_flight(&self, now_ms: i64) -> bool {
        self.lease_owner != 0 && self.lease_until_ms > now_ms
    }
}

/// The document as stored: its generation and the JWKS bytes a fetcher validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub generation: u64,
    pub fetched_at_ms: i64,
    pub bytes: Vec<u8>,
}

impl Doc {
    pub fn encode(generation: u64, fetched_at_ms: i64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOC_HEADER + bytes.len());
        out.push(FORMAT);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&fetched_at_ms.to_le_bytes());
        out.extend_from_slice(bytes);
        out
    }

    /// An empty value (only the format byte, written at creation) is no document yet.
    pub fn decode(value: &[u8]) -> Result<Option<Doc>, Corrupt> {
        match value {
            [FORMAT] => Ok(None),
            [FORMAT, rest @ ..] if rest.len() >= DOC_HEADER - 1 => {
                let generation = u64::from_le_bytes(rest[..8].try_into().map_err(|_| Corrupt)?);
                let fetched_at_ms =
                    i64::from_le_bytes(rest[8..16].try_into().map_err(|_| Corrupt)?);
                Ok(Some(Doc {
                    generation,
                    fetched_at_ms,
                    bytes: rest[16..].to_vec(),
                }))
            }
            _ => Err(Corrupt),
        }
    }

    /// Just the generation, without copying the document.
    pub fn generation_of(value: &[u8]) -> Option<u64> {
        match value {
            [FORMAT] => Some(0),
            [FORMAT, rest @ ..] if rest.len() >= 8 => {
                Some(u64::from_le_bytes(rest[..8].try_into().ok()?))
            }
            _ => None,
        }
    }
}

/// A shared value that is not in this module's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// An empty document value (written when the source is created).
pub fn empty_doc() -> Vec<u8> {
    vec![FORMAT]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_other_shapes() {
        let r = Record {
            generation: 7,
            fetched_at_ms: -3,
            next_fetch_ms: 1 << 40,
            failures: 9,
            lease_until_ms: 12,
            lease_owner: u64::MAX,
            refetch_at_ms: 5,
            attempt_done_ms: 6,
        };
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Some(r));
        assert_eq!(Record::decode(&bytes[1..]), None);
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(Record::decode(&other), None);
        assert_eq!(
            Record::decode(&Record::default().encode()),
            Some(Record::default())
        );
    }

    #[test]
    fn doc_round_trips_and_empty_is_none() {
        assert_eq!(Doc::decode(&empty_doc()), Ok(None));
        assert_eq!(Doc::generation_of(&empty_doc()), Some(0));
        let v = Doc::encode(3, 44, b"{\"keys\":[]}");
        assert_eq!(Doc::generation_of(&v), Some(3));
        assert_eq!(
            Doc::decode(&v),
            Ok(Some(Doc {
                generation: 3,
                fetched_at_ms: 44,
                bytes: b"{\"keys\":[]}".to_vec()
            }))
        );
        assert_eq!(Doc::decode(&[]), Err(Corrupt));
        assert_eq!(Doc::decode(&[1, 2, 3]), Err(Corrupt));
    }
}
