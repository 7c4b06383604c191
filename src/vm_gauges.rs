//! Gauges that see the worst VM (issue 8, item 6; DESIGN.md section 8, metrics). Envoy keeps one
//! value per gauge name for every VM of a plugin, so a gauge each VM sets to its own value shows
//! whichever VM wrote last. Instead each VM publishes its values in its own shared-data slot on
//! every tick and sets the gauges to the maximum over the slots written recently: every VM then
//! writes the same value, the worst one. A VM that stops ticking (it crashed and was replaced)
//! drops out after `STALE_AFTER_SECONDS`.
//!
//! Counting live replay entries means reading every replay bucket (65,536 shared-data reads per
//! pass), and every VM would read the same buckets to the same total. So only one VM counts: the
//! live VM with the lowest slot, normally the first VM made for the configuration (in Envoy, the
//! main thread's, off the request path). The others publish 0 entries and read no bucket; when
//! the counting VM goes away, the next lowest takes over once its slot is stale (issue 12).

use crate::replay::{SharedStore, StoreError};

/// Slots scanned per tick; a VM beyond this many shares a slot (wraps), which only happens after
/// hundreds of VM crashes within one Envoy process.
pub const MAX_SLOTS: u32 = 256;
/// A slot not written for this long belongs to a VM that is gone.
pub const STALE_AFTER_SECONDS: i64 = 5;

const COUNTER_KEY: &str = "proofgate.vm.slots.v1";
const SLOT_LEN: usize = 24;
const MAX_ATTEMPTS: u32 = 32;

/// What one VM reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmSample {
    pub memory_bytes: u64,
    pub replay_entries: u64,
}

/// The maxima over live VMs, how many VMs are live, and which of them counts replay entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Worst {
    pub memory_bytes: u64,
    pub replay_entries: u64,
    pub vms: u32,
    /// The lowest live slot: the one VM that reads the replay buckets to count their entries.
    pub counter: Option<u32>,
}

/// Takes the next slot number for a new VM (a CAS-incremented counter in shared data).
pub fn allocate_slot(store: &mut dyn SharedStore) -> Result<u32, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let (value, cas) = store.get(COUNTER_KEY)?;
        let next = value.as_deref().map_or(0, decode_u32);
        match store.set(COUNTER_KEY, &next.wrapping_add(1).to_be_bytes(), cas) {
            Ok(()) => return Ok(next % MAX_SLOTS),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::CasMismatch)
}

fn slot_key(slot: u32) -> String {
    format!("proofgate.vm.slot.v1.{slot}")
}

/// Publishes this VM's sample in `slot` and returns the worst over the live slots.
pub fn publish(
    store: &mut dyn SharedStore,
    slot: u32,
    sample: VmSample,
    now: i64,
) -> Result<Worst, StoreError> {
    let mut bytes = [0u8; SLOT_LEN];
    bytes[..8].copy_from_slice(&now.to_be_bytes());
    bytes[8..16].copy_from_slice(&sample.memory_bytes.to_be_bytes());
    bytes[16..].copy_from_slice(&sample.replay_entries.to_be_bytes());
    // Only this VM writes this slot: no CAS needed.
    store.set(&slot_key(slot), &bytes, None)?;
    let allocated = match store.get(COUNTER_KEY)? {
        (Some(v), _) => decode_u32(&v).min(MAX_SLOTS),
        (None, _) => 0,
    };
    let mut worst = Worst::default();
    for i in 0..allocated {
        if let (Some(v), _) = store.get(&slot_key(i))? {
            if let Some((at, s)) = decode_slot(&v) {
                if now.saturating_sub(at) <= STALE_AFTER_SECONDS {
                    worst.counter = worst.counter.or(Some(i));
                    worst.memory_bytes = worst.memory_bytes.max(s.memory_bytes);
                    worst.replay_entries = worst.replay_entries.max(s.replay_entries);
                    worst.vms += 1;
                }
            }
        }
    }
    Ok(worst)
}

fn decode_u32(bytes: &[u8]) -> u32 {
    bytes.try_into().map_or(0, u32::from_be_bytes)
}

fn decode_slot(bytes: &[u8]) -> Option<(i64, VmSample)> {
    if bytes.len() != SLOT_LEN {
        return None;
    }
    let at = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    let memory_bytes = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
    let replay_entries = u64::from_be_bytes(bytes[16..].try_into().ok()?);
    Some((
        at,
        VmSample {
            memory_bytes,
            replay_entries,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem {
        map: HashMap<String, (Vec<u8>, u32)>,
        /// Writes another VM makes between our next read and write of the counter.
        races: u32,
    }

    impl SharedStore for Mem {
        fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
            Ok(match self.map.get(key) {
                Some((v, cas)) => (Some(v.clone()), Some(*cas)),
                None => (None, None),
            })
        }

        fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            if key == COUNTER_KEY && self.races > 0 {
                self.races -= 1;
                let (v, c) = self.map.get(key).cloned().unwrap_or((vec![0; 4], 0));
                let n = decode_u32(&v) + 1;
                self.map
                    .insert(key.into(), (n.to_be_bytes().to_vec(), c + 1));
                return Err(StoreError::CasMismatch);
            }
            let current = self.map.get(key).map(|(_, c)| *c);
            if let (Some(want), Some(have)) = (cas, current) {
                if want != have {
                    return Err(StoreError::CasMismatch);
                }
            }
            self.map
                .insert(key.into(), (value.to_vec(), current.unwrap_or(0) + 1));
            Ok(())
        }
    }

    fn sample(memory_bytes: u64, replay_entries: u64) -> VmSample {
        VmSample {
            memory_bytes,
            replay_entries,
        }
    }

    #[test]
    fn every_vm_reports_the_worst_vm() {
        let mut m = Mem::default();
        let a = allocate_slot(&mut m).unwrap();
        let b = allocate_slot(&mut m).unwrap();
        assert_ne!(a, b);
        publish(&mut m, a, sample(112 << 20, 10), 100).unwrap();
        let seen_by_b = publish(&mut m, b, sample(1 << 20, 12), 100).unwrap();
        let seen_by_a = publish(&mut m, a, sample(112 << 20, 10), 100).unwrap();
        let want = Worst {
            memory_bytes: 112 << 20,
            replay_entries: 12,
            vms: 2,
            counter: Some(a),
        };
        assert_eq!((seen_by_a, seen_by_b), (want, want));
    }

    #[test]
    fn a_vm_that_stopped_ticking_drops_out() {
        let mut m = Mem::default();
        let (gone, live) = (
            allocate_slot(&mut m).unwrap(),
            allocate_slot(&mut m).unwrap(),
        );
        publish(&mut m, gone, sample(900 << 20, 0), 100).unwrap();
        let at_limit = publish(&mut m, live, sample(1 << 20, 0), 100 + STALE_AFTER_SECONDS);
        assert_eq!(at_limit.unwrap().memory_bytes, 900 << 20);
        let after = publish(&mut m, live, sample(1 << 20, 0), 101 + STALE_AFTER_SECONDS).unwrap();
        assert_eq!((after.memory_bytes, after.vms), (1 << 20, 1));
    }

    #[test]
    fn the_lowest_live_slot_counts_and_the_next_takes_over_when_it_goes() {
        let mut m = Mem::default();
        let [first, second, third] = [0; 3].map(|_| allocate_slot(&mut m).unwrap());
        publish(&mut m, second, sample(1, 0), 100).unwrap();
        let w = publish(&mut m, third, sample(1, 0), 100).unwrap();
        assert_eq!(
            w.counter,
            Some(second),
            "the first VM has not published yet"
        );
        publish(&mut m, first, sample(1, 0), 101).unwrap();
        for slot in [first, second, third] {
            let w = publish(&mut m, slot, sample(1, 0), 102).unwrap();
            assert_eq!(
                w.counter,
                Some(first),
                "every VM agrees on the lowest live slot"
            );
        }
        // The first VM stops publishing; once its slot is stale the second counts.
        let w = publish(&mut m, third, sample(1, 0), 102 + STALE_AFTER_SECONDS).unwrap();
        assert_eq!(w.counter, Some(first));
        publish(&mut m, second, sample(1, 0), 103 + STALE_AFTER_SECONDS).unwrap();
        let w = publish(&mut m, third, sample(1, 0), 103 + STALE_AFTER_SECONDS).unwrap();
        assert_eq!((w.counter, w.vms), (Some(second), 2));
    }

    #[test]
    fn slot_allocation_retries_on_a_race_and_wraps() {
        let mut m = Mem {
            races: 3,
            ..Mem::default()
        };
        assert_eq!(
            allocate_slot(&mut m),
            Ok(3),
            "three racing VMs took 0, 1, 2"
        );
        for _ in 4..MAX_SLOTS {
            allocate_slot(&mut m).unwrap();
        }
        assert_eq!(allocate_slot(&mut m), Ok(0));
        let worst = publish(&mut m, 0, sample(7, 7), 1).unwrap();
        assert_eq!(worst.vms, 1, "scans at most MAX_SLOTS slots");
    }

    #[test]
    fn a_malformed_slot_is_ignored() {
        let mut m = Mem::default();
        let a = allocate_slot(&mut m).unwrap();
        let b = allocate_slot(&mut m).unwrap();
        m.set(&slot_key(b), b"junk", None).unwrap();
        let worst = publish(&mut m, a, sample(5, 6), 1).unwrap();
        assert_eq!(
            worst,
            Worst {
                memory_bytes: 5,
                replay_entries: 6,
                vms: 1,
                counter: Some(a),
            }
        );
    }
}
