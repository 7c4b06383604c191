//! The replay store's hashing secret (DESIGN.md section 5): made with `getrandom` by the first VM
//! that needs it and kept in shared data, so every VM of the Envoy process, and every later
//! configuration, chooses the same bucket for the same claim. Callers choose their own jtis; with
//! an unkeyed hash they could aim every jti at one bucket.
//!
//! Shared data has no "create if absent" (a CAS on an absent key is ignored), so the key is
//! first created empty, then filled with a CAS: of several VMs racing, one fills it and the others
//! read its value. A VM whose unconditional create of the empty key lands after another VM filled
//! it (both loading for the first time at the same instant) fills its own secret; so the store
//! reads the secret through on every use (`ReplayStore::keys`) and every VM hashes with the one
//! value that ended up in shared data, never with one it made and lost.

use super::{SharedStore, StoreError};

/// The shared-data key of the secret.
pub const SECRET_KEY: &str = "proofgate.replay.v2.secret";
pub const SECRET_LEN: usize = 32;

/// The secret in shared data, made with `random` if there is none yet.
pub fn load_or_create(
    store: &mut dyn SharedStore,
    random: &mut dyn FnMut() -> Option<[u8; SECRET_LEN]>,
) -> Result<[u8; SECRET_LEN], StoreError> {
    for _ in 0..8 {
        match store.get(SECRET_KEY)? {
            (Some(v), Some(_)) if v.len() == SECRET_LEN => {
                let mut s = [0u8; SECRET_LEN];
                s.copy_from_slice(&v);
                return Ok(s);
            }
            (Some(v), Some(cas)) if v.is_empty() => {
                let fresh = random().ok_or(StoreError::Other)?;
                match store.set(SECRET_KEY, &fresh, Some(cas)) {
                    Ok(()) => return Ok(fresh),
                    Err(StoreError::CasMismatch) => continue,
                    Err(e) => return Err(e),
                }
            }
            (None, _) => store.set(SECRET_KEY, &[], None)?,
            // Any other value is not ours to overwrite.
            _ => return Err(StoreError::Other),
        }
    }
    Err(StoreError::Other)
}

/// 32 bytes from the operating system's generator.
pub fn random() -> Option<[u8; SECRET_LEN]> {
    let mut s = [0u8; SECRET_LEN];
    getrandom::fill(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::MemoryStore;

    #[test]
    fn first_caller_creates_later_callers_read_it() {
        let mut m = MemoryStore::default();
        let a = load_or_create(&mut m, &mut || Some([7; 32])).unwrap();
        let b = load_or_create(&mut m, &mut || Some([9; 32])).unwrap();
        assert_eq!((a, b), ([7; 32], [7; 32]));
    }

    /// Another VM fills the empty key between our read and our CAS write: we take its secret.
    struct Rival(MemoryStore, bool);
    impl SharedStore for Rival {
        fn get(&mut self, k: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
            self.0.get(k)
        }
        fn set(&mut self, k: &str, v: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            if cas.is_some() && std::mem::take(&mut self.1) {
                let (_, c) = self.0.get(k)?;
                self.0.set(k, &[5; 32], c)?;
            }
            self.0.set(k, v, cas)
        }
    }

    #[test]
    fn a_race_lost_adopts_the_winner_and_junk_is_refused() {
        let mut r = Rival(MemoryStore::default(), true);
        assert_eq!(load_or_create(&mut r, &mut || Some([1; 32])), Ok([5; 32]));
        let mut m = MemoryStore::default();
        m.set(SECRET_KEY, b"short", None).unwrap();
        assert_eq!(
            load_or_create(&mut m, &mut || Some([1; 32])),
            Err(StoreError::Other)
        );
        let mut m = MemoryStore::default();
        assert_eq!(
            load_or_create(&mut m, &mut || None),
            Err(StoreError::Other),
            "no randomness, no store"
        );
        assert!(random().is_some_and(|s| s != [0; 32]));
    }
}
