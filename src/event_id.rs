//! Decision event ids: 16 random bytes shown as 32 lowercase hex characters.

/// A decision's event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId([u8; 16]);

impl EventId {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(bytes)
    }

    /// A fresh random id, or `None` if the platform has no randomness (callers fail closed).
    pub fn random() -> Option<Self> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).ok()?;
        Some(EventId(b))
    }
}

impl core::fmt::Display for EventId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
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
    }
}
