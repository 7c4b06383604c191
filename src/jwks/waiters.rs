//! Requests one VM holds (paused) while keys are on their way (DESIGN.md section 12), and when
//! each must be decided again: new keys arrived, the refetch it asked for concluded or was
//! refused, no fetch can finish before its deadline, or the deadline (`timeout_ms`) passed. The
//! decision itself is made again from scratch at wake-up, with the keys and the clock of that
//! moment; this module only says who.

use super::fetch::Trigger;
use super::record::Record;
use super::remote::Hold;

/// One held request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The host's HTTP context id.
    pub id: u32,
    /// Index of the source whose keys it needs.
    pub source: usize,
    pub since_ms: i64,
    pub deadline_ms: i64,
    /// The key generation it was decided against.
    pub generation: u64,
    /// The unscheduled refetch it asked for; `None` when it waits for keys to load at all.
    pub refetch: Option<Trigger>,
}

impl Waiter {
    /// Request `id`, held at `now_ms` as the pipeline's `hold` says: until `timeout_ms` later.
    pub fn new(id: u32, hold: &Hold, now_ms: i64) -> Waiter {
        Waiter {
            id,
            source: hold.source,
            since_ms: now_ms,
            deadline_ms: now_ms.saturating_add(hold.timeout_ms),
            generation: hold.generation,
            refetch: hold.refetch,
        }
    }
}

/// What a VM knows of a source at a tick.
#[derive(Debug, Clone, Copy)]
pub struct SourceNow<'a> {
    pub generation: u64,
    pub record: &'a Record,
    /// This tick's election refused a refetch (rate limit).
    pub refetch_refused: bool,
}

/// The held requests of one VM, bounded.
#[derive(Debug, Default)]
pub struct Waiters {
    list: Vec<Waiter>,
}

/// At most this many requests are held per VM; more are refused at once (`keys_unavailable`).
///
/// A held request keeps its header map (it is decided again from the start when the keys come),
/// and it is held before any signature verified, so anyone can fill this list while a fetch is
/// in flight: with [`MAX_HELD_HEADER_BYTES`] it bounds what holding costs a VM to 8 MiB of
/// headers (issue 8, item 1, applied to the JWKS wait).
pub const MAX_WAITERS: usize = 512;

/// A request whose header names and values take more than this many bytes is never held: it
/// gets `keys_unavailable` at once while keys are missing.
pub const MAX_HELD_HEADER_BYTES: usize = 16 * 1024;

impl Waiters {
    /// Holds `w`; false when the VM already holds [`MAX_WAITERS`].
    pub fn hold(&mut self, w: Waiter) -> bool {
        self.list.retain(|o| o.id != w.id);
        if self.list.len() >= MAX_WAITERS {
            return false;
        }
        self.list.push(w);
        true
    }

    /// Forgets a request (it ended while held).
    pub fn cancel(&mut self, id: u32) {
        self.list.retain(|w| w.id != id);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The refetch this VM's held requests ask of `source`, unknown `kid` first.
    pub fn wanted_refetch(&self, source: usize) -> Option<Trigger> {
        let mut want = None;
        for w in self.list.iter().filter(|w| w.source == source) {
            match w.refetch {
                Some(Trigger::UnknownKid) => return Some(Trigger::UnknownKid),
                Some(t) => want = Some(t),
                None => {}
            }
        }
        want
    }

    /// Removes and returns the ids of `source`'s requests that must be decided now.
    pub fn wake(&mut self, source: usize, now: SourceNow<'_>, now_ms: i64) -> Vec<u32> {
        let mut woken = Vec::new();
        self.list.retain(|w| {
            let due = w.source == source && is_due(w, &now, now_ms);
            if due {
                woken.push(w.id);
            }
            !due
        });
        woken
    }
}

fn is_due(w: &Waiter, now: &SourceNow<'_>, now_ms: i64) -> bool {
    if now.generation != w.generation || now_ms >= w.deadline_ms {
        return true;
    }
    let record = now.record;
    let idle = !record.in_flight(now_ms);
    match w.refetch {
        // The refetch it asked for will not happen, or happened without new keys.
        Some(_) => now.refetch_refused || (idle && record.attempt_done_ms >= w.since_ms),
        // No fetch can bring keys before its deadline: answer now rather than hang.
        None => idle && record.next_fetch_ms > w.deadline_ms,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn waiter(id: u32, refetch: Option<Trigger>) -> Waiter {
        Waiter {
            id,
            source: 0,
            since_ms: 1_000,
            deadline_ms: 3_000,
            generation: 1,
            refetch,
        }
    }

    fn at(record: &Record, generation: u64, refused: bool) -> SourceNow<'_> {
        SourceNow {
            generation,
            record,
            refetch_refused: refused,
        }
    }

    #[test]
    fn new_keys_or_the_deadline_wake_everyone() {
        let record = Record {
            lease_owner: 9,
            lease_until_ms: 10_000,
            ..Record::default()
        };
        let mut w = Waiters::default();
        assert!(w.hold(waiter(1, None)));
        assert!(w.hold(waiter(2, Some(Trigger::UnknownKid))));
        assert_eq!(w.wake(0, at(&record, 1, false), 1_500), Vec::<u32>::new());
        assert_eq!(w.wake(1, at(&record, 2, false), 1_500), Vec::<u32>::new());
        assert_eq!(w.wake(0, at(&record, 2, false), 1_500), vec![1, 2]);
        assert!(w.is_empty());
        w.hold(waiter(3, None));
        assert_eq!(w.wake(0, at(&record, 1, false), 2_999), Vec::<u32>::new());
        assert_eq!(w.wake(0, at(&record, 1, false), 3_000), vec![3]);
    }

    #[test]
    fn a_refetch_waiter_wakes_when_its_refetch_concluded_or_was_refused() {
        let mut w = Waiters::default();
        w.hold(waiter(1, Some(Trigger::UnknownKid)));
        // A fetch that ended before the request came does not count.
        let old = Record {
            attempt_done_ms: 900,
            next_fetch_ms: 99_000,
            ..Record::default()
        };
        assert!(w.wake(0, at(&old, 1, false), 1_200).is_empty());
        let done = Record {
            attempt_done_ms: 1_100,
            ..old
        };
        assert_eq!(w.wake(0, at(&done, 1, false), 1_200), vec![1]);
        w.hold(waiter(2, Some(Trigger::BadSignature)));
        assert_eq!(w.wake(0, at(&old, 1, true), 1_200), vec![2]);
    }

    #[test]
    fn a_keyless_waiter_is_answered_at_once_when_no_fetch_can_come_in_time() {
        let mut w = Waiters::default();
        w.hold(waiter(1, None));
        let soon = Record {
            failures: 1,
            next_fetch_ms: 2_000,
            ..Record::default()
        };
        assert!(w.wake(0, at(&soon, 1, false), 1_200).is_empty());
        let late = Record {
            next_fetch_ms: 5_000,
            ..soon
        };
        assert_eq!(w.wake(0, at(&late, 1, false), 1_200), vec![1]);
    }

    #[test]
    fn bounded_cancelable_and_refetch_wish_prefers_unknown_kid() {
        let mut w = Waiters::default();
        for id in 0..MAX_WAITERS as u32 {
            assert!(w.hold(waiter(id, None)));
        }
        assert!(!w.hold(waiter(u32::MAX, None)));
        w.cancel(7);
        assert_eq!(w.len(), MAX_WAITERS - 1);
        assert_eq!(w.wanted_refetch(0), None);
        w.hold(waiter(7, Some(Trigger::BadSignature)));
        assert_eq!(w.wanted_refetch(0), Some(Trigger::BadSignature));
        w.hold(waiter(8, Some(Trigger::UnknownKid)));
        assert_eq!(w.wanted_refetch(0), Some(Trigger::UnknownKid));
        assert_eq!(w.wanted_refetch(1), None);
    }
}
