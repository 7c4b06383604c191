//! Decision event ids: 16 random bytes shown as 32 lowercase hex characters.

use std::cell::RefCell;

/// Ids drawn from one call to the platform's randomness (issue 12: a host call per request
/// saved). Event ids are correlators shown in headers and logs, not secrets; each is still 16
/// bytes of the platform's randomness, used once.
const IDS_PER_DRAW: usize = 32;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; 16 * IDS_PER_DRAW], next: IDS_PER_DRAW }) };
}

struct Pool {
    bytes: [u8; 16 * IDS_PER_DRAW],
    /// The next unused id; `IDS_PER_DRAW` when the pool is empty.
    next: usize,
}

/// A decision's event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId([u8; 16]);

impl EventId {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(bytes)
    }

    /// A fresh random id, or `None` if the platform has no randomness (callers fail closed).
    pub fn random() -> Option<Self> {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.next >= IDS_PER_DRAW {
                getrandom::fill(&mut pool.bytes).ok()?;
                pool.next = 0;
            }
            let start = pool.next * 16;
            let mut id = [0u8; 16];
            id.copy_from_slice(&pool.bytes[start..start + 16]);
            // Each id is handed out once: its bytes are cleared as it leaves the pool.
            pool.bytes[start..start + 16].fill(0);
            pool.next += 1;
            Some(EventId(id))
        })
    }

    /// The 32 lowercase hex characters.
    pub fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        out
    }
}

impl core::fmt::Display for EventId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hex = self.hex();
        // Hex digits are ASCII.
        f.write_str(core::str::from_utf8(&hex).map_err(|_| core::fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_32_lowercase_hex_and_differs() {
        let a = EventId::random().unwrap().to_string();
        let b = EventId::random().unwrap().to_string();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
        assert_eq!(EventId::from_bytes([0x0f; 16]).to_string(), "0f".repeat(16));
        assert_eq!(
            EventId::from_bytes(core::array::from_fn(|i| (i * 17) as u8)).to_string(),
            "00112233445566778899aabbccddeeff"
        );
    }

    #[test]
    fn pooled_ids_are_all_different_across_draws() {
        let ids: std::collections::HashSet<String> = (0..3 * IDS_PER_DRAW + 5)
            .map(|_| EventId::random().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 3 * IDS_PER_DRAW + 5);
        assert!(!ids.contains(&"00".repeat(16)));
    }
}
