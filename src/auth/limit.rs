//! Rate limits per project: a number of requests per window, for the whole project, per
//! verified caller, or per client address.
//!
//! A [`RateLimit`] is what users write in a project's definition (`"rate_limit": {...}`);
//! [`RateLimit::validate`] names each bad field. A [`Limiter`] keeps its state: it is `Send`
//! and `Sync`, meant to be shared in an `Arc` and kept beside the route table, so that a
//! project's next revision with the same policy ([`Limiter::same_policy`]) keeps counting
//! where the last one was. [`Limiter::check`] is synchronous and allocates nothing but a
//! new caller's room in the map: a project limit is one atomic compare-and-swap; a keyed one
//! also takes a read lock on one shard of the map (a write lock to add a caller).
//!
//! Rules:
//! - **Algorithm**: GCRA (the `governor` crate): `requests` per `per_secs` sustained, one
//!   request every `per_secs / requests`, with up to `burst` (default `requests`) at once
//!   after a quiet spell. A refusal says how long until a request would be allowed, for
//!   `Retry-After` ([`too_many_requests`]).
//! - **Partitions** ([`By`]): `project` is one bucket for all callers; `key` and `subject`
//!   one bucket per verified caller identity (an API key's id, a token's subject: the
//!   caller of [`Limiter::check`] passes the string), and a request without an identity is
//!   counted per client address; `client` one bucket per client address, an IPv6 client
//!   by its `/64` network (one host usually has a whole `/64`, so counting single IPv6
//!   addresses would not limit anyone), an IPv4-mapped IPv6 address as the IPv4 address.
//!   Identities are kept as a 64-bit keyed hash of the string, so no request allocates;
//!   two identities share a bucket only if their hashes collide (about one chance in
//!   2^64 / keys² for a limiter's random seed).
//! - **Bound on keys**: a keyed limiter keeps at most [`MAX_KEYS`] + [`SWEEP_EVERY`]
//!   buckets. Every [`SWEEP_EVERY`] checks, the thread making that check looks at the count
//!   (the others go on); past [`MAX_KEYS`] it drops the buckets that are full again (no
//!   different from a new one), holding each shard's write lock in turn. If every bucket is still in
//!   use after that — more than [`MAX_KEYS`] callers active within one window — all of the
//!   limiter's buckets are dropped at once (the limiter starts afresh, so each caller gets
//!   a new burst) and a warning is logged: the bound is on memory, and failing open once
//!   is preferred to refusing every new caller. [`Limiter::sweep`] drops the full buckets
//!   whenever the caller likes, to give back the memory of idle ones.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldError};

/// The most requests (and the largest burst) a policy may allow per window.
pub const MAX_REQUESTS: u32 = 1_000_000;
/// The longest window: one day.
pub const MAX_PER_SECS: u32 = 86_400;
/// How many buckets a keyed limiter keeps before it drops some (see the module's rules).
pub const MAX_KEYS: usize = 100_000;
/// How many checks of a keyed limiter pass between two looks at its number of buckets.
pub const SWEEP_EVERY: u32 = 4096;

/// A project's rate limit, as written in its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct RateLimit {
    /// How many requests per window, sustained.
    pub requests: u32,
    /// The window, in seconds.
    pub per_secs: u32,
    /// How many requests may come at once after a quiet spell; `requests` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// What one bucket counts.
    #[serde(default)]
    pub by: By,
}

/// What one bucket of a [`RateLimit`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(utoipa::ToSchema)]
#[schema(as = RateLimitBy)]
pub enum By {
    /// Every request to the project.
    #[default]
    Project,
    /// Each verified API key.
    Key,
    /// Each verified token subject.
    Subject,
    /// Each client address (an IPv6 client by its `/64`).
    Client,
}

impl By {
    /// The name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Project => "project",
            By::Key => "key",
            By::Subject => "subject",
            By::Client => "client",
        }
    }
}

impl RateLimit {
    /// Every problem of this limit, each naming its field under `prefix` (such as
    /// `"rate_limit."`).
    pub fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            errors.push(FieldError::new(
                field("requests"),
                format!("must be from 1 to {MAX_REQUESTS}"),
            ));
        }
        if !(1..=MAX_PER_SECS).contains(&self.per_secs) {
            errors.push(FieldError::new(
                field("per_secs"),
                format!("must be from 1 to {MAX_PER_SECS} (one day)"),
            ));
        }
        if self
            .burst
            .is_some_and(|burst| !(1..=MAX_REQUESTS).contains(&burst))
        {
            errors.push(FieldError::new(
                field("burst"),
                format!("must be from 1 to {MAX_REQUESTS}"),
            ));
        }
    }

    /// The burst in force, within bounds.
    fn effective_burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests).clamp(1, MAX_REQUESTS)
    }

    /// The policy as governor's quota, with every value brought within bounds.
    fn quota(&self) -> Quota {
        let per = u64::from(self.per_secs.clamp(1, MAX_PER_SECS)) * 1_000_000_000;
        let requests = u64::from(self.requests.clamp(1, MAX_REQUESTS));
        let period = Duration::from_nanos((per / requests).max(1));
        let burst = NonZeroU32::new(self.effective_burst()).unwrap_or(NonZeroU32::MIN);
        // `period` is at least a nanosecond, so there is always a quota; the fallback keeps
        // that promise without a panic path.
        Quota::with_period(period)
            .unwrap_or(Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The `429 too_many_requests` answer for a refusal by [`Limiter::check`]: `Retry-After` in
/// whole seconds, rounded up.
pub fn too_many_requests(wait: Duration) -> ApiError {
    ApiError::retry_after(
        Code::TooManyRequests,
        "the project's rate limit is exceeded; retry after the time in Retry-After",
        wait,
    )
}

/// The live state of one [`RateLimit`].
pub struct Limiter {
    policy: RateLimit,
    gcra: Gcra<DefaultClock>,
}

impl Limiter {
    /// A limiter for `policy`, every bucket full. Meant for a validated policy; any other is
    /// brought within bounds, never a panic.
    pub fn new(policy: &RateLimit) -> Self {
        Limiter {
            policy: policy.clone(),
            gcra: Gcra::new(policy, DefaultClock::default()),
        }
    }

    /// Counts one request: `Ok` if it may go on, else how long until one would be allowed.
    /// `key` is the verified caller identity (for `by: key` or `subject`), `client` the
    /// client's address (for `by: client`, and for a caller without an identity).
    pub fn check(&self, key: Option<&str>, client: IpAddr) -> Result<(), Duration> {
        self.gcra.check(key, client)
    }

    /// Whether `policy` counts the same way as this limiter's, so that a new revision of
    /// the project can keep this limiter and its state. A left-out burst equals a burst of
    /// `requests`.
    pub fn same_policy(&self, policy: &RateLimit) -> bool {
        let normal = |p: &RateLimit| (p.requests, p.per_secs, p.effective_burst(), p.by);
        normal(&self.policy) == normal(policy)
    }

    /// The policy this limiter counts by.
    pub fn policy(&self) -> &RateLimit {
        &self.policy
    }

    /// Drops the buckets that are full again, giving back their memory (no-op for a
    /// project-wide limit). Takes each shard's write lock in turn: call it off the request
    /// path, such as from a timer.
    pub fn sweep(&self) {
        self.gcra.sweep();
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("policy", &self.policy)
            .field("keys", &self.gcra.keys())
            .finish()
    }
}

/// One bucket's key: a caller identity's hash, or a client's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Caller(u64),
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl Key {
    fn client(address: IpAddr) -> Key {
        match address.to_canonical() {
            IpAddr::V4(v4) => Key::V4(v4.to_bits()),
            IpAddr::V6(v6) => Key::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Keyed<C> = RateLimiter<
    Key,
    DashMapStateStore<Key, foldhash::fast::RandomState>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

enum Buckets<C: Clock> {
    Project(Direct<C>),
    /// Swapped whole for an empty one past the bound on keys.
    Keyed(ArcSwap<Keyed<C>>),
}

/// The limiter proper, over any clock (tests use governor's fake clock).
struct Gcra<C: Clock> {
    by: By,
    quota: Quota,
    buckets: Buckets<C>,
    /// Hashes caller identities into [`Key::Caller`].
    identities: foldhash::quality::RandomState,
    checks: AtomicU32,
    sweeping: AtomicBool,
    /// [`MAX_KEYS`], smaller in tests.
    max_keys: usize,
}

impl<C: Clock + Clone> Gcra<C> {
    fn new(policy: &RateLimit, clock: C) -> Self {
        let quota = policy.quota();
        let buckets = match policy.by {
            By::Project => Buckets::Project(RateLimiter::direct_with_clock(quota, clock)),
            By::Key | By::Subject | By::Client => {
                Buckets::Keyed(ArcSwap::from_pointee(keyed(quota, clock)))
            }
        };
        Gcra {
            by: policy.by,
            quota,
            buckets,
            identities: foldhash::quality::RandomState::default(),
            checks: AtomicU32::new(0),
            sweeping: AtomicBool::new(false),
            max_keys: MAX_KEYS,
        }
    }

    fn check(&self, identity: Option<&str>, client: IpAddr) -> Result<(), Duration> {
        let keyed = match &self.buckets {
            Buckets::Project(limiter) => {
                return limiter
                    .check()
                    .map_err(|refused| refused.wait_time_from(limiter.clock().now()));
            }
            Buckets::Keyed(keyed) => keyed,
        };
        let key = match (self.by, identity) {
            (By::Key | By::Subject, Some(identity)) => {
                Key::Caller(self.identities.hash_one(identity))
            }
            _ => Key::client(client),
        };
        let outcome = {
            let limiter = keyed.load();
            limiter
                .check_key(&key)
                .map_err(|refused| refused.wait_time_from(limiter.clock().now()))
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.bound(keyed);
        }
        outcome
    }

    /// Keeps the number of buckets near [`MAX_KEYS`] (see the module's rules); one thread at
    /// a time, the others go on.
    fn bound(&self, keyed: &ArcSwap<Keyed<C>>) {
        if self.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        let limiter = keyed.load_full();
        if limiter.len() > self.max_keys {
            limiter.retain_recent();
            if limiter.len() > self.max_keys {
                tracing::warn!(
                    keys = limiter.len(),
                    max = self.max_keys,
                    "a rate limit has more active callers than it keeps; it starts afresh"
                );
                keyed.store(Arc::new(keyed_like(self.quota, &limiter)));
            } else {
                limiter.shrink_to_fit();
            }
        }
        self.sweeping.store(false, Ordering::Release);
    }

    fn sweep(&self) {
        if let Buckets::Keyed(keyed) = &self.buckets {
            let limiter = keyed.load();
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many buckets a keyed limiter holds (0 for a project-wide one).
    fn keys(&self) -> usize {
        match &self.buckets {
            Buckets::Project(_) => 0,
            Buckets::Keyed(keyed) => keyed.load().len(),
        }
    }
}

fn keyed<C: Clock>(quota: Quota, clock: C) -> Keyed<C> {
    RateLimiter::dashmap_with_clock_and_hasher(quota, clock, foldhash::fast::RandomState::default())
}

/// An empty keyed limiter on the same clock as `old`.
fn keyed_like<C: Clock + Clone>(quota: Quota, old: &Keyed<C>) -> Keyed<C> {
    keyed(quota, old.clock().clone())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(json: serde_json::Value) -> RateLimit {
        serde_json::from_value(json).unwrap()
    }

    fn fake(policy: &RateLimit) -> (Gcra<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Gcra::new(policy, clock.clone()), clock)
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn close_to(wait: Duration, expected: Duration) -> bool {
        wait <= expected && expected - wait <= Duration::from_millis(1)
    }

    #[test]
    fn a_burst_passes_then_the_wait_is_one_interval() {
        let (gcra, _) = fake(&limit(serde_json::json!({"requests": 10, "per_secs": 60})));
        for n in 0..10 {
            assert_eq!(gcra.check(None, HOME), Ok(()), "request {n}");
        }
        let wait = gcra.check(None, HOME).unwrap_err();
        assert!(close_to(wait, Duration::from_secs(6)), "{wait:?}");
        // Another caller shares the project's bucket.
        assert!(gcra.check(Some("alice"), AWAY).is_err());
    }

    #[test]
    fn a_smaller_burst_then_the_sustained_rate() {
        let policy = limit(serde_json::json!({"requests": 10, "per_secs": 1, "burst": 3}));
        let (gcra, clock) = fake(&policy);
        for _ in 0..3 {
            assert_eq!(gcra.check(None, HOME), Ok(()));
        }
        let wait = gcra.check(None, HOME).unwrap_err();
        assert!(close_to(wait, Duration::from_millis(100)), "{wait:?}");

        clock.advance(wait);
        assert_eq!(
            gcra.check(None, HOME),
            Ok(()),
            "allowed once the wait is over"
        );
        assert!(gcra.check(None, HOME).is_err(), "but only one");

        clock.advance(Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(
                gcra.check(None, HOME),
                Ok(()),
                "a quiet spell refills the burst"
            );
        }
        assert!(
            gcra.check(None, HOME).is_err(),
            "and no more than the burst"
        );
    }

    #[test]
    fn each_caller_has_a_bucket_of_its_own() {
        for by in ["key", "subject"] {
            let policy = limit(serde_json::json!({"requests": 2, "per_secs": 10, "by": by}));
            let (gcra, clock) = fake(&policy);
            assert_eq!(gcra.check(Some("alice"), HOME), Ok(()));
            assert_eq!(gcra.check(Some("alice"), AWAY), Ok(()));
            let wait = gcra.check(Some("alice"), HOME).unwrap_err();
            assert!(close_to(wait, Duration::from_secs(5)), "{wait:?}");
            assert_eq!(gcra.check(Some("bob"), HOME), Ok(()), "bob is not alice");
            assert_eq!(gcra.check(Some("bob"), HOME), Ok(()));
            assert!(gcra.check(Some("bob"), HOME).is_err());
            // Without an identity a request counts against its address.
            assert_eq!(gcra.check(None, HOME), Ok(()));
            assert_eq!(gcra.check(None, HOME), Ok(()));
            assert!(gcra.check(None, HOME).is_err());
            assert_eq!(gcra.check(None, AWAY), Ok(()));

            clock.advance(Duration::from_secs(5));
            assert_eq!(gcra.check(Some("alice"), HOME), Ok(()));
            assert_eq!(gcra.keys(), 4);
        }
    }

    #[test]
    fn each_client_has_a_bucket_of_its_own() {
        let policy = limit(serde_json::json!({"requests": 1, "per_secs": 60, "by": "client"}));
        let (gcra, _) = fake(&policy);
        assert_eq!(gcra.check(Some("alice"), HOME), Ok(()));
        assert!(
            gcra.check(Some("bob"), HOME).is_err(),
            "the identity does not count"
        );
        assert_eq!(gcra.check(None, AWAY), Ok(()));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 2).to_ipv6_mapped());
        assert!(
            gcra.check(None, mapped).is_err(),
            "a mapped address is IPv4"
        );

        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(gcra.check(None, one), Ok(()));
        assert!(gcra.check(None, same_64).is_err(), "one /64, one client");
        assert_eq!(gcra.check(None, other_64), Ok(()));
        assert_eq!(gcra.check(None, IpAddr::V6(Ipv6Addr::LOCALHOST)), Ok(()));
    }

    #[test]
    fn keys_stay_bounded() {
        let policy = limit(serde_json::json!({"requests": 1, "per_secs": 60, "by": "key"}));
        let (mut gcra, clock) = fake(&policy);
        gcra.max_keys = 100;
        // More active callers than the bound: past a sweep the limiter starts afresh.
        for n in 0..SWEEP_EVERY {
            assert_eq!(gcra.check(Some(&format!("caller-{n}")), HOME), Ok(()));
        }
        assert_eq!(gcra.keys(), 0, "dropped at the sweep");
        assert_eq!(gcra.check(Some("caller-0"), HOME), Ok(()), "a new burst");

        // Idle callers are dropped and active ones kept.
        for n in 0..150 {
            let _ = gcra.check(Some(&format!("idle-{n}")), HOME);
        }
        clock.advance(Duration::from_secs(120));
        assert!(gcra.check(Some("busy"), HOME).is_ok());
        assert!(gcra.keys() > 100);
        let Buckets::Keyed(keyed) = &gcra.buckets else {
            panic!("keyed");
        };
        gcra.bound(keyed);
        assert_eq!(gcra.keys(), 1);
        assert!(
            gcra.check(Some("busy"), HOME).is_err(),
            "busy kept its state"
        );

        clock.advance(Duration::from_secs(120));
        gcra.sweep();
        assert_eq!(gcra.keys(), 0);
    }

    #[test]
    fn the_real_limiter_refuses_past_the_burst() {
        fn shared<T: Send + Sync + 'static>(_: &Arc<T>) {}
        let limiter = Arc::new(Limiter::new(&limit(
            serde_json::json!({"requests": 5, "per_secs": 3600, "by": "client"}),
        )));
        shared(&limiter);
        for _ in 0..5 {
            assert_eq!(limiter.check(None, HOME), Ok(()));
        }
        let wait = limiter.check(None, HOME).unwrap_err();
        assert!(
            wait > Duration::from_secs(700) && wait <= Duration::from_secs(720),
            "{wait:?}"
        );
        let error = too_many_requests(wait);
        assert_eq!(error.code, Code::TooManyRequests);
        let (name, value) = &**error.header.as_ref().unwrap();
        assert_eq!(name, http::header::RETRY_AFTER);
        assert_eq!(value, "720");
        assert!(format!("{limiter:?}").contains("keys: 1"));
    }

    #[test]
    fn same_policy_compares_what_counts() {
        let policy = limit(serde_json::json!({"requests": 10, "per_secs": 60}));
        let limiter = Limiter::new(&policy);
        assert!(limiter.same_policy(&policy));
        assert!(limiter.same_policy(&limit(
            serde_json::json!({"requests": 10, "per_secs": 60, "burst": 10, "by": "project"})
        )));
        for other in [
            serde_json::json!({"requests": 11, "per_secs": 60}),
            serde_json::json!({"requests": 10, "per_secs": 61}),
            serde_json::json!({"requests": 10, "per_secs": 60, "burst": 5}),
            serde_json::json!({"requests": 10, "per_secs": 60, "by": "client"}),
        ] {
            assert!(!limiter.same_policy(&limit(other)));
        }
        assert_eq!(limiter.policy(), &policy);
    }

    #[test]
    fn validation_names_each_bad_field() {
        let fields = |json: serde_json::Value| {
            let mut errors = Vec::new();
            limit(json).validate("rate_limit.", &mut errors);
            errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(
            fields(serde_json::json!({"requests": 1, "per_secs": 86_400, "burst": 1_000_000})),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(serde_json::json!({"requests": 0, "per_secs": 0, "burst": 0})),
            [
                "rate_limit.requests",
                "rate_limit.per_secs",
                "rate_limit.burst"
            ]
        );
        assert_eq!(
            fields(serde_json::json!({"requests": 1_000_001, "per_secs": 86_401})),
            ["rate_limit.requests", "rate_limit.per_secs"]
        );
        let parsed = limit(serde_json::json!({"requests": 1, "per_secs": 1}));
        assert_eq!(parsed.by, By::Project);
        assert_eq!(parsed.burst, None);
        for bad in [
            serde_json::json!({"requests": 1, "per_secs": 1, "by": "ip"}),
            serde_json::json!({"requests": 1, "per_secs": 1, "window": 1}),
            serde_json::json!({"requests": 1}),
            serde_json::json!({"requests": -1, "per_secs": 1}),
        ] {
            assert!(serde_json::from_value::<RateLimit>(bad).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn check_never_panics(
            requests in proptest::num::u32::ANY,
            per_secs in proptest::num::u32::ANY,
            burst in proptest::option::of(proptest::num::u32::ANY),
            by in 0..4usize,
            key in proptest::option::of("\\PC{0,20}"),
            address in proptest::num::u128::ANY,
            v4 in proptest::bool::ANY,
            advance in 0..10_000_000_000u64,
        ) {
            let by = [By::Project, By::Key, By::Subject, By::Client][by];
            let policy = RateLimit { requests, per_secs, burst, by };
            let (gcra, clock) = fake(&policy);
            let client = if v4 {
                IpAddr::V4(Ipv4Addr::from_bits(address as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from_bits(address))
            };
            for _ in 0..3 {
                if let Err(wait) = gcra.check(key.as_deref(), client) {
                    proptest::prop_assert!(wait <= Duration::from_secs(u64::from(MAX_PER_SECS)));
                }
                clock.advance(Duration::from_nanos(advance));
            }
            Limiter::new(&policy).check(key.as_deref(), client).ok();
        }
    }
}
