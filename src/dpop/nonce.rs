//! Server-issued DPoP nonces without per-request state (RFC 9449 sections 8 and 9, DESIGN.md
//! section 14): a nonce is `base64url(HMAC-SHA256(key, label || provider || step))` where `step`
//! is the current `rotate_seconds` window. Any worker can issue and check one with the shared key
//! alone; a nonce of the current or the previous step is accepted, so each lives between one
//! and two rotations. The key is made at load with `getrandom` and kept in shared data by the
//! shell, so every VM agrees on it.

use crate::b64;
use crate::replay::{SharedStore, StoreError};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Binds every nonce to this scheme and version, so the key could never be mistaken for
/// another HMAC use.
const LABEL: &[u8] = b"proofgate.dpop-nonce.v1\0";

/// The secret nonces are made with: 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceKey([u8; 32]);

impl core::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A fresh key from the system's random source; `None` if there is none.
    pub fn generate() -> Option<NonceKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        Some(NonceKey(bytes))
    }

    /// A key read back from shared data; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<NonceKey> {
        bytes.try_into().ok().map(NonceKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, provider: &str, step: i64) -> HmacSha256 {
        // HMAC pads a key shorter than the hash block with zeros (RFC 2104), so the key padded
        // to the 64-byte block is the same key, and this constructor cannot fail.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        mac.update(LABEL);
        mac.update(provider.as_bytes());
        mac.update(&[0]);
        mac.update(&step.to_be_bytes());
        mac
    }

    /// The nonce to hand out at `now` for `provider`.
    pub fn issue(&self, provider: &str, rotate_seconds: i64, now: i64) -> String {
        let step = now.div_euclid(rotate_seconds.max(1));
        b64::encode(&self.mac(provider, step).finalize().into_bytes())
    }

    /// True if `nonce` was issued for `provider` in the current or the previous step.
    pub fn accepts(&self, provider: &str, rotate_seconds: i64, nonce: &str, now: i64) -> bool {
        let Some(tag) = b64::decode_array::<32>(nonce) else {
            return false;
        };
        let step = now.div_euclid(rotate_seconds.max(1));
        // verify_slice compares in constant time.
        [step, step.saturating_sub(1)]
            .into_iter()
            .any(|s| self.mac(provider, s).verify_slice(&tag).is_ok())
    }
}

/// The shared-data key holding the nonce secret; stable across reloads, so nonces survive a
/// configuration update.
pub const SHARED_DATA_KEY: &str = "proofgate.dpop.nonce-key.v1";

/// The nonce secret every worker uses, made here if no worker has made it yet. Shared data has
/// no "set if absent" (a CAS on an absent key is ignored), so the key is first created empty and
/// then filled with a CAS: of several workers racing, one fills it and the others read its value.
/// A set secret is never replaced, and each request reads it through here rather than keeping a
/// copy, so every worker uses the stored one.
pub fn shared_key(store: &mut dyn SharedStore) -> Option<NonceKey> {
    for _ in 0..8 {
        match store.get(SHARED_DATA_KEY).ok()? {
            (Some(value), Some(_)) if value.len() == 32 => return NonceKey::from_slice(&value),
            (Some(value), Some(cas)) if value.is_empty() => {
                let fresh = NonceKey::generate()?;
                match store.set(SHARED_DATA_KEY, fresh.as_bytes(), Some(cas)) {
                    Ok(()) => return Some(fresh),
                    Err(StoreError::CasMismatch) => continue,
                    Err(StoreError::Other) => return None,
                }
            }
            (None, _) => store.set(SHARED_DATA_KEY, &[], None).ok()?,
            // Anything else is not ours to overwrite: no nonces (they fail closed).
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::MemoryStore;

    #[test]
    fn shared_key_is_made_once_and_then_read() {
        let mut store = MemoryStore::default();
        let first = shared_key(&mut store).unwrap();
        assert_eq!(shared_key(&mut store), Some(first.clone()));
        // A worker that created the empty key but lost the CAS reads the winner's key.
        let mut store = MemoryStore::default();
        store.set(SHARED_DATA_KEY, &[], None).unwrap();
        store.set(SHARED_DATA_KEY, &[9; 32], None).unwrap();
        assert_eq!(shared_key(&mut store), NonceKey::from_slice(&[9; 32]));
        // A value that is not a key is never overwritten, and gives no key.
        store.set(SHARED_DATA_KEY, &[1, 2, 3], None).unwrap();
        assert_eq!(shared_key(&mut store), None);
    }

    /// Shared data that cannot be read: no key, so nonces fail closed.
    struct Broken;
    impl SharedStore for Broken {
        fn get(&mut self, _: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
            Err(StoreError::Other)
        }
        fn set(&mut self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), StoreError> {
            Err(StoreError::Other)
        }
    }

    #[test]
    fn unreadable_shared_data_gives_no_key() {
        assert_eq!(shared_key(&mut Broken), None);
    }

    #[test]
    fn current_and_previous_step_accepted_older_and_future_not() {
        let key = NonceKey([7; 32]);
        let n = key.issue("trustline", 300, 1_000);
        // Step of 1_000 is 3 (900..1199).
        assert!(key.accepts("trustline", 300, &n, 900));
        assert!(key.accepts("trustline", 300, &n, 1_199));
        assert!(key.accepts("trustline", 300, &n, 1_200), "previous step");
        assert!(key.accepts("trustline", 300, &n, 1_499), "previous step");
        assert!(!key.accepts("trustline", 300, &n, 1_500), "two steps old");
        assert!(!key.accepts("trustline", 300, &n, 899), "from the future");
    }

    #[test]
    fn bound_to_key_and_provider_and_well_formed() {
        let key = NonceKey([7; 32]);
        let n = key.issue("trustline", 300, 1_000);
        assert_eq!(n.len(), 43);
        assert_eq!(
            n,
            key.issue("trustline", 300, 1_100),
            "stable within a step"
        );
        assert_ne!(n, key.issue("trustline", 300, 1_200), "rotates");
        assert!(!NonceKey([8; 32]).accepts("trustline", 300, &n, 1_000));
        assert!(!key.accepts("sentropic", 300, &n, 1_000));
        assert!(!key.accepts("trustline", 300, &format!("{n}="), 1_000));
        assert!(!key.accepts("trustline", 300, "", 1_000));
        let mut flipped = b64::decode(&n).unwrap();
        flipped[31] ^= 1;
        assert!(!key.accepts("trustline", 300, &b64::encode(&flipped), 1_000));
    }

    /// The zero-padded block key is HMAC's own padding: same MAC as the 32-byte key.
    #[test]
    fn block_key_is_the_32_byte_key() {
        let mut reference = <HmacSha256 as Mac>::new_from_slice(&[7; 32]).unwrap();
        reference.update(b"proofgate.dpop-nonce.v1\0p\0");
        reference.update(&3i64.to_be_bytes());
        assert_eq!(
            b64::encode(&reference.finalize().into_bytes()),
            NonceKey([7; 32]).issue("p", 300, 1_000)
        );
    }

    #[test]
    fn keys_are_random_and_round_trip() {
        let a = NonceKey::generate().unwrap();
        let b = NonceKey::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(NonceKey::from_slice(a.as_bytes()), Some(a));
        assert_eq!(NonceKey::from_slice(&[0; 31]), None);
        assert_eq!(format!("{b:?}"), "NonceKey(..)");
    }
}
