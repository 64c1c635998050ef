//! Failed-login counting: how many logins failed recently per client address and per user
//! name, so that guessing passwords is slow and cheap to refuse.
//!
//! Each address and each name has a fixed window (`failure_window`, started by its first
//! attempt) and a count. An attempt is counted when it begins, before its password is
//! checked, so that a thousand concurrent guesses cannot all pass the check before the first
//! of them fails; one that then succeeds, or was never checked (server busy), is given back.
//! A caller over either limit is refused before any hashing or store lookup.
//!
//! The counters live in memory, on this node only, behind one mutex: logins are the
//! platform path, not the request path. The maps never grow past a fixed number of entries:
//! expired windows are swept once per window and whenever a map is full, then entries
//! below their limit (which lock nobody out) are dropped, and a map full of locked-out
//! entries stops tracking new ones rather than grow. User names are kept as a 64-bit keyed
//! hash (a name of any length costs the same), IPv6 addresses by their /64 prefix (one
//! host usually holds a whole /64).

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LoginLimits;

/// Entries each map may hold; about 40 bytes each.
const MAX_TRACKED: usize = 65_536;

/// Failed-login counters per client address and per user name.
pub struct LoginFailures {
    state: Mutex<State>,
    /// Keys user names; random per process, so that nobody can choose colliding names.
    names: RandomState,
}

struct State {
    addresses: Counters<IpAddr>,
    users: Counters<u64>,
}

impl LoginFailures {
    pub fn new(limits: &LoginLimits) -> LoginFailures {
        LoginFailures::with_capacity(limits, MAX_TRACKED)
    }

    fn with_capacity(limits: &LoginLimits, capacity: usize) -> LoginFailures {
        let window = limits.failure_window;
        LoginFailures {
            state: Mutex::new(State {
                addresses: Counters::new(limits.failures_per_address, window, capacity),
                users: Counters::new(limits.failures_per_user, window, capacity),
            }),
            names: RandomState::new(),
        }
    }

    /// Counts a login attempt as failed until told otherwise, or says how long the caller
    /// must wait when the address or the name has no attempts left in its window.
    pub fn begin(&self, address: IpAddr, username: &str, now: Instant) -> Result<(), Duration> {
        let (address, user) = (address_key(address), self.names.hash_one(username));
        let mut state = self.lock();
        let State { addresses, users } = &mut *state;
        let wait = [addresses.wait(&address, now), users.wait(&user, now)]
            .into_iter()
            .flatten()
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        addresses.add(address, now);
        users.add(user, now);
        Ok(())
    }

    /// The attempt succeeded: it is given back to the address, and the name's count starts
    /// over, so a user's own typos do not add up to a lockout across logins. The address's
    /// other failures stay: logging into one's own account must not wipe the record of
    /// guesses at other names from the same address.
    pub fn succeeded(&self, address: IpAddr, username: &str, now: Instant) {
        let (address, user) = (address_key(address), self.names.hash_one(username));
        let mut state = self.lock();
        state.addresses.give_back(&address, now);
        state.users.forget(&user);
    }

    /// The attempt was never checked (the server was busy, or the store did not answer):
    /// it is given back to both.
    pub fn refund(&self, address: IpAddr, username: &str, now: Instant) {
        let (address, user) = (address_key(address), self.names.hash_one(username));
        let mut state = self.lock();
        state.addresses.give_back(&address, now);
        state.users.give_back(&user, now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The counters stay consistent even if a holder panicked: every change is one
        // assignment. So a poisoned lock is taken over, not propagated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The address failures are counted under: IPv4 as is, IPv6 by its /64 prefix.
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// A fixed window and its count of failures.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Bounded fixed-window counters for one kind of key.
struct Counters<K> {
    map: HashMap<K, Window>,
    limit: u32,
    window: Duration,
    capacity: usize,
    last_sweep: Instant,
}

impl<K: Hash + Eq + Copy> Counters<K> {
    fn new(limit: u32, window: Duration, capacity: usize) -> Self {
        Counters {
            map: HashMap::new(),
            limit,
            window,
            capacity,
            last_sweep: Instant::now(),
        }
    }

    fn live(&self, window: &Window, now: Instant) -> bool {
        now.saturating_duration_since(window.start) < self.window
    }

    /// How long `key` must wait, if its window has no attempts left.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let window = self.map.get(key)?;
        (self.live(window, now) && window.count >= self.limit)
            .then(|| (window.start + self.window).saturating_duration_since(now))
    }

    fn add(&mut self, key: K, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) >= self.window {
            self.sweep(now);
        }
        let limit_window = self.window;
        match self.map.entry(key) {
            Entry::Occupied(mut entry) => {
                let window = entry.get_mut();
                if now.saturating_duration_since(window.start) < limit_window {
                    window.count = window.count.saturating_add(1);
                } else {
                    *window = Window {
                        start: now,
                        count: 1,
                    };
                }
            }
            Entry::Vacant(_) => {
                if self.map.len() >= self.capacity {
                    self.make_room(now);
                }
                if self.map.len() < self.capacity {
                    self.map.insert(
                        key,
                        Window {
                            start: now,
                            count: 1,
                        },
                    );
                }
            }
        }
    }

    fn give_back(&mut self, key: &K, now: Instant) {
        let window = self.window;
        if let Some(entry) = self.map.get_mut(key)
            && now.saturating_duration_since(entry.start) < window
        {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Drops expired windows.
    fn sweep(&mut self, now: Instant) {
        let window = self.window;
        self.map
            .retain(|_, entry| now.saturating_duration_since(entry.start) < window);
        self.last_sweep = now;
    }

    /// Called when the map is full: drops expired windows, then windows below their limit.
    /// If every entry is a lockout, the new key goes untracked (its own limit is not
    /// enforced; the other map's still is) and the map does not grow.
    fn make_room(&mut self, now: Instant) {
        self.sweep(now);
        if self.map.len() >= self.capacity {
            let limit = self.limit;
            self.map.retain(|_, entry| entry.count >= limit);
        }
        if self.map.len() >= self.capacity {
            tracing::warn!(
                entries = self.map.len(),
                "failed-login table is full of lockouts; new names or addresses go uncounted"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_user: u32, window_ms: u64) -> LoginLimits {
        LoginLimits {
            hash_concurrency: 1,
            hash_queue: 1,
            failures_per_address: per_address,
            failures_per_user: per_user,
            failure_window: Duration::from_millis(window_ms),
        }
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_name_is_refused_after_its_limit_until_the_window_ends() {
        let failures = LoginFailures::new(&limits(100, 3, 1000));
        let start = Instant::now();
        for _ in 0..3 {
            failures.begin(HOME, "alice", start).unwrap();
        }
        let wait = failures.begin(HOME, "alice", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(1000));
        let later = start + Duration::from_millis(400);
        assert_eq!(
            failures.begin(ip(7), "alice", later).unwrap_err(),
            Duration::from_millis(600),
            "the limit on a name holds from any address"
        );
        failures.begin(HOME, "bob", later).unwrap();
        let after = start + Duration::from_millis(1000);
        failures.begin(HOME, "alice", after).unwrap();
    }

    #[test]
    fn an_address_is_refused_after_its_limit_across_names() {
        let failures = LoginFailures::new(&limits(2, 100, 1000));
        let now = Instant::now();
        failures.begin(HOME, "a", now).unwrap();
        failures.begin(HOME, "b", now).unwrap();
        assert!(failures.begin(HOME, "c", now).is_err());
        failures.begin(ip(1), "c", now).unwrap();
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let failures = LoginFailures::new(&limits(1, 100, 1000));
        let now = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        failures.begin(one, "a", now).unwrap();
        assert!(failures.begin(other, "b", now).is_err());
        failures.begin(elsewhere, "c", now).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        failures.begin(HOME, "d", now).unwrap();
        assert!(failures.begin(mapped, "e", now).is_err());
    }

    #[test]
    fn success_gives_the_attempt_back_and_clears_the_name() {
        let failures = LoginFailures::new(&limits(3, 2, 1000));
        let now = Instant::now();
        failures.begin(HOME, "alice", now).unwrap();
        failures.begin(HOME, "alice", now).unwrap();
        assert!(failures.begin(HOME, "alice", now).is_err());
        // A success can only follow an attempt that was let in; simulate one from elsewhere.
        failures.begin(HOME, "carol", now).unwrap();
        failures.succeeded(HOME, "alice", now);
        failures.begin(HOME, "alice", now).unwrap();
        assert!(
            failures.begin(HOME, "dave", now).is_err(),
            "the address keeps its two failures for alice"
        );
    }

    #[test]
    fn a_refunded_attempt_does_not_count() {
        let failures = LoginFailures::new(&limits(1, 1, 1000));
        let now = Instant::now();
        for _ in 0..5 {
            failures.begin(HOME, "alice", now).unwrap();
            failures.refund(HOME, "alice", now);
        }
    }

    #[test]
    fn expired_windows_are_swept() {
        let failures = LoginFailures::new(&limits(5, 5, 100));
        let start = Instant::now();
        for n in 0..50 {
            failures.begin(ip(n), &format!("user{n}"), start).unwrap();
        }
        failures
            .begin(HOME, "late", start + Duration::from_millis(150))
            .unwrap();
        let state = failures.lock();
        assert_eq!(state.addresses.map.len(), 1);
        assert_eq!(state.users.map.len(), 1);
    }

    #[test]
    fn a_full_table_drops_entries_below_the_limit_and_never_grows() {
        let failures = LoginFailures::with_capacity(&limits(1000, 2, 60_000), 10);
        let now = Instant::now();
        // Two names locked out, eight with one failure each.
        for name in ["x", "x", "y", "y"] {
            failures.begin(HOME, name, now).unwrap();
        }
        for n in 0..8 {
            failures.begin(HOME, &format!("one{n}"), now).unwrap();
        }
        assert_eq!(failures.lock().users.map.len(), 10);
        failures.begin(HOME, "new", now).unwrap();
        {
            let state = failures.lock();
            assert_eq!(state.users.map.len(), 3, "the lockouts and the new name");
        }
        assert!(failures.begin(HOME, "x", now).is_err(), "lockouts survive");
        for n in 0..10_000 {
            let _ = failures.begin(HOME, &format!("flood{n}"), now);
            assert!(failures.lock().users.map.len() <= 10);
        }
    }

    #[test]
    fn a_table_full_of_lockouts_stops_tracking_new_keys() {
        let failures = LoginFailures::with_capacity(&limits(1000, 1, 60_000), 4);
        let now = Instant::now();
        for n in 0..4 {
            failures.begin(HOME, &format!("locked{n}"), now).unwrap();
        }
        for _ in 0..3 {
            failures.begin(HOME, "untracked", now).unwrap();
        }
        let state = failures.lock();
        assert_eq!(state.users.map.len(), 4);
    }
}
