//! The bytes of one replay bucket (DESIGN.md section 5): a format byte, the bucket's horizon,
//! then fixed-size entries. Read and rewritten in one pass, never decoded into a list.
//!
//! - horizon: i64, the latest `until` among entries this bucket pruned. The host clock normally
//!   stays past it; a clock that is behind it has stepped backward, and a claim with an `until`
//!   at or before the horizon might be one that was pruned under the later clock.
//! - entry: tag (u64, keyed hash of the claim), owner (u32, keyed hash of issuer and subject),
//!   until (u32 Unix seconds; later times are kept as `u32::MAX`, which only keeps them longer).

pub const FORMAT: u8 = 2;
const HEADER: usize = 9;
pub const ENTRY: usize = 16;

/// An empty bucket.
pub fn empty() -> [u8; HEADER] {
    let mut b = [0u8; HEADER];
    b[0] = FORMAT;
    b
}

/// What one pass over a bucket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// A live entry carries the tag.
    pub replay: bool,
    pub live: usize,
    /// Live entries of the owner.
    pub owner_live: usize,
    /// The horizon after pruning what is dead at `now`.
    pub horizon: i64,
}

/// The entries of a well-formed bucket, or `None`.
fn entries(bytes: &[u8]) -> Option<(i64, &[u8])> {
    if bytes.len() < HEADER || bytes[0] != FORMAT || (bytes.len() - HEADER) % ENTRY != 0 {
        return None;
    }
    let horizon = i64::from_be_bytes(bytes[1..HEADER].try_into().ok()?);
    Some((horizon, &bytes[HEADER..]))
}

fn until_of(entry: &[u8]) -> i64 {
    i64::from(u32::from_be_bytes([
        entry[12], entry[13], entry[14], entry[15],
    ]))
}

/// Looks at every entry once; `None` when the bytes are not a bucket.
pub fn scan(bytes: &[u8], tag: u64, owner: u32, now: i64) -> Option<Scan> {
    let (mut horizon, body) = entries(bytes)?;
    let (tag, owner) = (tag.to_be_bytes(), owner.to_be_bytes());
    let mut scan = Scan::default();
    for e in body.chunks_exact(ENTRY) {
        let until = until_of(e);
        if until > now {
            scan.live += 1;
            scan.replay |= e[..8] == tag;
            if e[8..12] == owner {
                scan.owner_live += 1;
            }
        } else {
            horizon = horizon.max(until);
        }
    }
    scan.horizon = horizon;
    Some(scan)
}

/// The bucket rewritten: entries dead at `now` pruned, the horizon raised, one entry appended.
/// `bytes` must have passed [`scan`].
pub fn rewrite(bytes: &[u8], horizon: i64, now: i64, tag: u64, owner: u32, until: i64) -> Vec<u8> {
    let body = entries(bytes).map_or(&[][..], |(_, b)| b);
    let mut out = Vec::with_capacity(bytes.len() + ENTRY);
    out.push(FORMAT);
    out.extend_from_slice(&horizon.to_be_bytes());
    for e in body.chunks_exact(ENTRY) {
        if until_of(e) > now {
            out.extend_from_slice(e);
        }
    }
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&owner.to_be_bytes());
    let until = u32::try_from(until.max(0)).unwrap_or(u32::MAX);
    out.extend_from_slice(&until.to_be_bytes());
    out
}

/// Live entries; a malformed bucket counts 0 (this feeds a gauge, never a decision).
pub fn count_live(bytes: &[u8], now: i64) -> usize {
    entries(bytes).map_or(0, |(_, body)| {
        body.chunks_exact(ENTRY)
            .filter(|e| until_of(e) > now)
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_prunes_raises_nothing_itself_and_appends_in_fixed_bytes() {
        let b = rewrite(&empty(), 0, 0, 0x0102_0304_0506_0708, 0x0a0b_0c0d, 100);
        assert_eq!(
            b,
            [
                2, 0, 0, 0, 0, 0, 0, 0, 0, // format, horizon 0
                1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 100
            ]
        );
        let b = rewrite(&b, 0, 0, 9, 7, 200);
        // At 100 the first entry is dead: scanning records its until as the horizon.
        let s = scan(&b, 9, 7, 100).unwrap();
        assert_eq!(
            (s.live, s.replay, s.owner_live, s.horizon),
            (1, true, 1, 100)
        );
        let c = rewrite(&b, s.horizon, 100, 1, 1, 300);
        assert_eq!(&c[1..9], &100i64.to_be_bytes());
        assert_eq!(count_live(&c, 100), 2);
        assert_eq!(c.len(), HEADER + 2 * ENTRY);
    }

    #[test]
    fn malformed_buckets_are_refused() {
        assert_eq!(scan(&[], 0, 0, 0), None);
        assert_eq!(scan(&[1], 0, 0, 0), None, "the v1 format");
        let mut b = empty().to_vec();
        b.push(0);
        assert_eq!(scan(&b, 0, 0, 0), None, "a partial entry");
        assert_eq!(count_live(&b, 0), 0);
    }

    #[test]
    fn untils_past_u32_are_kept_longest() {
        let b = rewrite(&empty(), 0, 0, 1, 1, i64::MAX);
        assert_eq!(count_live(&b, i64::from(u32::MAX) - 1), 1);
    }
}
