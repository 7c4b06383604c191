//! Requests waiting for their body (issue 8 item 1; DESIGN.md section 16's `body_timeout_ms`).
//! A request whose headers passed is parked until its body completes; each VM's lot holds at
//! most `max` of them, at most one per one-time key (a jti already waiting is refused at once,
//! so one captured passport cannot hold more than one stream), and each with a deadline after
//! which the shell answers `body_timeout`. Pure: the shell passes context ids and milliseconds.
//!
//! Ordered maps, not hashes: the keys are caller-chosen (issuer, jti) pairs, and a tree gives
//! them no way to steer collisions.

use std::collections::BTreeMap;

/// A one-time key: (issuer, jti).
pub type Key = (String, String);

/// Why a request could not be parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The lot already holds `max` requests.
    Full,
    /// A request with the same key is already waiting.
    KeyInFlight,
}

#[derive(Debug)]
struct Parked<T> {
    key: Option<Key>,
    deadline_ms: u64,
    value: T,
}

/// One VM's waiting requests, by the host's context id.
#[derive(Debug)]
pub struct ParkingLot<T> {
    max: usize,
    by_context: BTreeMap<u32, Parked<T>>,
    by_key: BTreeMap<Key, u32>,
}

impl<T> ParkingLot<T> {
    pub fn new(max: usize) -> Self {
        ParkingLot {
            max,
            by_context: BTreeMap::new(),
            by_key: BTreeMap::new(),
        }
    }

    /// A new bound (a configuration reload); requests already parked stay until decided.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    pub fn len(&self) -> usize {
        self.by_context.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_context.is_empty()
    }

    /// Parks `value` for `context` until `deadline_ms`. A key already waiting is refused before
    /// the bound is looked at, so the answer to a copy does not depend on how full the lot is.
    pub fn park(
        &mut self,
        context: u32,
        key: Option<Key>,
        deadline_ms: u64,
        value: T,
    ) -> Result<(), (Refusal, T)> {
        if key.as_ref().is_some_and(|k| self.by_key.contains_key(k)) {
            return Err((Refusal::KeyInFlight, value));
        }
        if self.by_context.len() >= self.max || self.by_context.contains_key(&context) {
            return Err((Refusal::Full, value));
        }
        if let Some(k) = &key {
            self.by_key.insert(k.clone(), context);
        }
        self.by_context.insert(
            context,
            Parked {
                key,
                deadline_ms,
                value,
            },
        );
        Ok(())
    }

    /// Unparks `context` (its body completed, or its stream ended); `None` if it is not parked
    /// (never was, or already expired).
    pub fn take(&mut self, context: u32) -> Option<T> {
        let parked = self.by_context.remove(&context)?;
        if let Some(k) = &parked.key {
            self.by_key.remove(k);
        }
        Some(parked.value)
    }

    /// The value parked for `context`, to update while it waits.
    pub fn get_mut(&mut self, context: u32) -> Option<&mut T> {
        self.by_context.get_mut(&context).map(|p| &mut p.value)
    }

    /// Unparks and returns every request whose deadline is at or before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(u32, T)> {
        let due: Vec<u32> = self
            .by_context
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.take(id).map(|v| (id, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(jti: &str) -> Option<Key> {
        Some(("iss".to_string(), jti.to_string()))
    }

    #[test]
    fn one_waiting_request_per_key() {
        let mut lot = ParkingLot::new(10);
        assert!(lot.park(1, key("a"), 100, "first").is_ok());
        assert_eq!(
            lot.park(2, key("a"), 100, "copy"),
            Err((Refusal::KeyInFlight, "copy"))
        );
        // Same jti from another issuer is another key.
        assert!(lot
            .park(3, Some(("other".into(), "a".into())), 100, "x")
            .is_ok());
        assert_eq!(lot.take(1), Some("first"));
        assert!(lot.park(2, key("a"), 100, "after").is_ok());
        assert_eq!(lot.len(), 2);
    }

    #[test]
    fn bounded_and_a_copy_is_in_flight_even_when_full() {
        let mut lot = ParkingLot::new(2);
        assert!(lot.park(1, key("a"), 100, 1).is_ok());
        assert!(lot.park(2, None, 100, 2).is_ok());
        assert_eq!(lot.park(3, key("c"), 100, 3), Err((Refusal::Full, 3)));
        assert_eq!(
            lot.park(4, key("a"), 100, 4),
            Err((Refusal::KeyInFlight, 4))
        );
        assert_eq!(lot.take(2), Some(2));
        assert!(lot.park(3, key("c"), 100, 3).is_ok());
        lot.set_max(1);
        assert_eq!(lot.park(5, key("e"), 100, 5), Err((Refusal::Full, 5)));
        assert_eq!(lot.len(), 2);
    }

    #[test]
    fn expire_takes_only_what_is_due_and_frees_its_key() {
        let mut lot = ParkingLot::new(10);
        assert!(lot.park(1, key("a"), 100, "a").is_ok());
        assert!(lot.park(2, key("b"), 200, "b").is_ok());
        assert_eq!(lot.expire(99), vec![]);
        assert_eq!(lot.expire(100), vec![(1, "a")]);
        assert_eq!(lot.take(1), None, "an expired request is gone");
        assert!(lot.park(3, key("a"), 300, "a2").is_ok(), "its key is free");
        assert_eq!(lot.expire(1_000), vec![(2, "b"), (3, "a2")]);
        assert!(lot.is_empty());
    }

    #[test]
    fn a_context_parks_once() {
        let mut lot = ParkingLot::new(10);
        assert!(lot.park(1, key("a"), 100, 1).is_ok());
        assert_eq!(lot.park(1, key("b"), 100, 2), Err((Refusal::Full, 2)));
        assert_eq!(lot.take(7), None);
    }
}
