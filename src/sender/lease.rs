//! The leases this worker holds, as seen from its own monotonic clock: for each
//! delivery claimed and not yet recorded, a moment before which its lease
//! surely has not run out. A lease written to the database runs from the
//! transaction that wrote it; the moment kept here runs from before that
//! transaction started, so it is never later than the database's (workers on
//! one machine share its clock; across machines their clocks must agree to well
//! within half a lease).
//!
//! A delivery is handed to its transport only while at least half its lease is
//! left, which leaves the other half to record the outcome; the sender renews
//! the leases of everything held every quarter of a lease, so only a worker
//! stalled for most of a lease lets one run out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Leases {
    lease: Duration,
    held: Mutex<HashMap<i64, Instant>>,
}

impl Leases {
    pub fn new(lease: Duration) -> Leases {
        Leases {
            lease,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// How often the held leases are renewed (a configured lease of zero
    /// must not make the renewal spin).
    pub fn renewal_interval(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(100))
    }

    /// Deliveries claimed by a transaction that started at `asked`.
    pub fn claimed(&self, ids: impl IntoIterator<Item = i64>, asked: Instant) {
        let until = asked + self.lease;
        let mut held = self.lock();
        for id in ids {
            held.insert(id, until);
        }
    }

    /// Deliveries renewed by a transaction that started at `asked`. Those
    /// released meanwhile stay released.
    pub fn renewed(&self, ids: &[i64], asked: Instant) {
        let until = asked + self.lease;
        let mut held = self.lock();
        for id in ids {
            if let Some(moment) = held.get_mut(id) {
                *moment = (*moment).max(until);
            }
        }
    }

    /// Deliveries whose outcome is recorded (or that are left to run out).
    pub fn release(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.lock();
        for id in ids {
            held.remove(&id);
        }
    }

    /// The deliveries held, to renew.
    pub fn held(&self) -> Vec<i64> {
        self.lock().keys().copied().collect()
    }

    /// Whether the delivery may go out now: held, with at least half its lease
    /// left to be sent and recorded in.
    pub fn may_send(&self, id: i64) -> bool {
        self.lock()
            .get(&id)
            .is_some_and(|until| until.saturating_duration_since(Instant::now()) >= self.lease / 2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    #[test]
    fn a_fresh_lease_may_send_a_half_spent_one_may_not() {
        let leases = Leases::new(LEASE);
        let now = Instant::now();
        leases.claimed([1], now);
        leases.claimed([2], now - LEASE / 2 - Duration::from_secs(1));
        assert!(leases.may_send(1));
        assert!(!leases.may_send(2));
        assert!(!leases.may_send(3), "never claimed");
    }

    #[test]
    fn renewal_extends_only_what_is_still_held() {
        let leases = Leases::new(LEASE);
        let old = Instant::now() - LEASE;
        leases.claimed([1, 2, 3], old);
        leases.release([3]);
        // 2 was not renewed (another worker took it, or its row was busy).
        leases.renewed(&[1, 3], Instant::now());
        assert!(leases.may_send(1));
        assert!(!leases.may_send(2));
        assert!(!leases.may_send(3), "released stays released");
        let mut held = leases.held();
        held.sort();
        assert_eq!(held, vec![1, 2]);
        // A renewal whose transaction started before the claim does not
        // shorten it.
        leases.claimed([4], Instant::now());
        leases.renewed(&[4], old);
        assert!(leases.may_send(4));
    }
}
