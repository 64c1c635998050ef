//! Passive health of one upstream target, and the clock it is kept by.
//!
//! Passive health: a target is judged by the requests sent to it (a backend's active health
//! check, if it has one, is `probe`'s, and kept apart). A connection it
//! refuses (or that cannot reach it, or times out) marks it down for a back-off of 1 s,
//! doubling to at most 30 s while it keeps failing; a response from it makes it healthy
//! again at once. A back-off escalates only when a failure is seen while the target was
//! up: the requests already in flight when it went down fail with it, and count once.
//!
//! Two relaxed atomics per target, no lock: [`Health::is_down`] and [`Health::succeeded`]
//! are on the request path and only read while the target is healthy.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::observe::Stamp;

/// The first back-off of a target that failed, in milliseconds.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// The longest back-off, in milliseconds.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// The process's reference point for [`now_ms`].
static EPOCH: LazyLock<Stamp> = LazyLock::new(Stamp::now);

/// Milliseconds of the node's monotonic clock since the first call (so 0 is "never").
pub fn now_ms() -> u64 {
    Stamp::now().nanos_since(*EPOCH) / 1_000_000
}

/// The back-off after `failures` failures in a row: 1 s, 2 s, 4 s, ... at most 30 s.
pub fn backoff_ms(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
}

/// One target's passive health, shared by every backend that lists the target.
#[derive(Debug, Default)]
pub struct Health {
    /// Failures in a row (each counted once per back-off, see the module doc).
    failures: AtomicU32,
    /// Until when ([`now_ms`]) the target is skipped; 0 (or any past time) when it is up.
    down_until: AtomicU64,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Whether the target is in a back-off at `now`.
    #[inline]
    pub fn is_down(&self, now: u64) -> bool {
        self.down_until() > now
    }

    /// Until when ([`now_ms`]) the target is down (0, or a past time, when it is up): the earliest
    /// of these is tried when every target is down.
    #[inline]
    pub fn down_until(&self) -> u64 {
        self.down_until.load(Ordering::Relaxed)
    }

    /// Failures in a row.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The target failed a connection at `now`: down for the next back-off, unless it is
    /// down already (then this is a request that was in flight, or one sent to it because
    /// every target was down, and the back-off stays as it is).
    pub fn failed(&self, now: u64) {
        let current = self.down_until.load(Ordering::Relaxed);
        if current > now {
            return;
        }
        let failures = self.failures.load(Ordering::Relaxed).saturating_add(1);
        let until = now.saturating_add(backoff_ms(failures));
        // Of two failures seen at once, one escalates.
        if self
            .down_until
            .compare_exchange(current, until, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.failures.store(failures, Ordering::Relaxed);
        }
    }

    /// The target answered: healthy again. A read only, while it was healthy already.
    #[inline]
    pub fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.down_until.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_thirty_seconds_and_a_success_resets_it() {
        let health = Health::new();
        assert!(!health.is_down(0));
        let mut now = 10;
        let mut seen = Vec::new();
        for _ in 0..7 {
            health.failed(now);
            let until = health.down_until();
            seen.push(until - now);
            assert!(health.is_down(now));
            assert!(health.is_down(until - 1));
            assert!(!health.is_down(until), "up again once the back-off is over");
            now = until;
        }
        assert_eq!(seen, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        health.succeeded();
        assert_eq!(health.failures(), 0);
        assert!(!health.is_down(now));
        health.failed(now);
        assert_eq!(
            health.down_until() - now,
            1_000,
            "back to the first back-off"
        );
    }

    #[test]
    fn failures_while_down_count_once() {
        let health = Health::new();
        health.failed(100);
        health.failed(150);
        health.failed(1_099);
        assert_eq!(health.failures(), 1);
        assert_eq!(health.down_until(), 1_100);
    }

    #[test]
    fn back_off_never_overflows() {
        assert_eq!(backoff_ms(0), FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(1), FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
        let health = Health::new();
        health.failed(u64::MAX - 5);
        assert!(health.is_down(u64::MAX - 1));
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
    }
}
