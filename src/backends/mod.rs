//! Backends, live: the upstream state kept beside the route table.
//!
//! `model` holds what a backend *is* (a name, target URLs, a policy, timeouts); this module
//! holds what it needs to forward requests, which outlives any one revision of a project:
//!
//! - a pool of keep-alive HTTP/1.1 connections per target authority ([`pool`]), shared by
//!   every backend that lists the authority (restricted ones, `--proxy-allow`, apart);
//! - per-target passive health ([`health`]): a target that refuses connections is skipped
//!   for a back-off;
//! - for a backend with a `health_check`, active health ([`probe`]): one task per upstream
//!   probes every target every interval, and a target that fails its check is skipped
//!   until it passes again;
//! - balancing: [`Upstream::pick`] chooses a healthy target, at random or in turn.
//!
//! The [`Registry`] (one per node) hands out an [`Upstream`] for each backend definition
//! when a project is compiled; the compiled project holds them as its [`Upstreams`], which
//! its proxy handlers find by name.
//!
//! Invariants:
//! - **Same definition, same upstream.** While an `Upstream` is alive, a definition with
//!   the same URLs, policy, timeouts and health check (whatever its name or project) gets
//!   that very `Arc` back, so a project edit that keeps a backend keeps its health (passive
//!   and active), its round-robin position, its probe task and its connections.
//! - **Passive health is per target authority**, shared by every upstream that lists it;
//!   **active health is per upstream and target** (two backends may check one target on
//!   different paths).
//! - **The request path takes no lock**: picking reads atomics; the registry's lock is
//!   taken on the change path only. Nothing here panics on any definition: a URL that does
//!   not parse (validation keeps them out) is left out, and a backend left with no target
//!   answers 503.
//! - What no project holds any more is freed: the registry keeps weak references only.

pub mod allow;
pub mod client;
pub mod docker;
pub mod health;
pub mod pool;
pub mod probe;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Uri};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use client::{Failure, Outgoing};
pub use health::Health;
pub use pool::{Peers, Pool, Returning, SendError};
pub use probe::ActiveHealth;

use crate::model::{Backend, Balance, HealthCheck};

/// The most targets an upstream keeps: the most URLs a backend may list (`model`'s
/// `MAX_URLS`), so that a pick fits a small array on the stack.
pub const MAX_TARGETS: usize = 64;

thread_local! {
    /// The random policy's generator: per thread, so that picking takes no lock.
    static RANDOM: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
}

/// The node's live upstreams: every upstream, target health and connection pool in use.
pub struct Registry {
    inner: Mutex<Inner>,
    /// Where restricted backends (non-admins' projects) may send (`--proxy-allow`).
    allow: Arc<allow::ProxyAllow>,
    /// Keeps the targets of Docker backends current (started by the first one).
    discovery: Arc<docker::Discovery>,
}

/// Weak references only: what no compiled project holds is dropped (its entry pruned on the
/// next call).
#[derive(Default)]
struct Inner {
    upstreams: HashMap<Key, Weak<Upstream>>,
    /// Passive health and connection pools by target authority.
    peers: Peers,
}

/// What makes two backend definitions the same upstream: everything but the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    urls: Vec<String>,
    docker: Option<crate::model::DockerSelector>,
    policy: Balance,
    connect_timeout_ms: u64,
    timeout_ms: u64,
    health_check: Option<HealthCheck>,
    /// Whether `--proxy-allow` bounds it (a non-admin's project).
    restricted: bool,
}

impl Key {
    fn of(backend: &Backend, restricted: bool) -> Key {
        Key {
            restricted,
            urls: backend.urls.clone(),
            docker: backend.docker.clone(),
            policy: backend.policy,
            connect_timeout_ms: backend.connect_timeout_ms,
            timeout_ms: backend.timeout_ms,
            health_check: backend.health_check.clone(),
        }
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::with_allow(allow::ProxyAllow::default())
    }

    /// Where restricted backends may send.
    pub fn allow(&self) -> &allow::ProxyAllow {
        &self.allow
    }

    /// A registry whose restricted upstreams may reach only what `allow` permits.
    pub fn with_allow(allow: allow::ProxyAllow) -> Registry {
        Registry {
            inner: Mutex::new(Inner::default()),
            allow: Arc::new(allow),
            discovery: Arc::new(docker::Discovery::default()),
        }
    }

    /// The live upstreams of a project's backend definitions. The same definition (name
    /// aside: urls, docker selector, policy, timeouts, health check) gives back the very
    /// same `Arc<Upstream>` as long as one is alive, so a project edit that keeps a backend
    /// keeps its health state, probe task and round-robin position; passive per-target
    /// health is shared by every backend listing the same target authority. Starts the
    /// probe task of an upstream with a health check. Called on the change path only (takes
    /// a lock; never on the request path).
    pub fn upstreams(&self, backends: &[Backend], restricted: bool) -> Upstreams {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.prune();
        let allow = restricted.then(|| self.allow.clone());
        let live: Arc<[(Box<str>, Arc<Upstream>)]> = backends
            .iter()
            .map(|backend| {
                let upstream = inner.upstream(backend, allow.clone());
                (Box::from(backend.name.as_str()), upstream)
            })
            .collect();
        drop(inner);
        for (name, upstream) in live.iter() {
            upstream.rename(name);
            if upstream.selector().is_some() {
                self.discovery.register(upstream);
            }
            probe::start(upstream);
        }
        Upstreams(live)
    }
}

impl Inner {
    /// Forgets what nobody holds any more.
    fn prune(&mut self) {
        self.upstreams
            .retain(|_, upstream| upstream.strong_count() > 0);
        self.peers.prune();
    }

    /// The upstream of `backend`; with `allow`, a restricted one: targets `allow` does not
    /// permit are left out (validation refuses them first, but the list may have changed
    /// since the backend was stored), names resolve only to permitted addresses, and Docker
    /// containers are not selected.
    fn upstream(
        &mut self,
        backend: &Backend,
        allow: Option<Arc<allow::ProxyAllow>>,
    ) -> Arc<Upstream> {
        let key = Key::of(backend, allow.is_some());
        if let Some(live) = self.upstreams.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        let targets = backend
            .urls
            .iter()
            .take(MAX_TARGETS)
            .filter_map(|url| {
                let target =
                    Target::parse(url, |authority| self.peers.of(authority, allow.as_ref()));
                if target.is_none() {
                    tracing::warn!(
                        backend = backend.name,
                        url,
                        "a backend target that is not a valid URL is left out"
                    );
                }
                let target = target?;
                if let Some(allow) = &allow
                    && !allow.permits_host(target.authority().host())
                {
                    tracing::warn!(
                        backend = backend.name,
                        url,
                        "a backend target --proxy-allow does not permit is left out"
                    );
                    return None;
                }
                Some(target)
            })
            .collect();
        let probe = backend.health_check.as_ref().and_then(|check| {
            let probe = probe::Probe::new(check);
            if probe.is_none() {
                tracing::warn!(
                    backend = backend.name,
                    path = check.path,
                    "a health check whose path is not valid is left out"
                );
            }
            probe
        });
        let targets = Targets::new(targets).checked(probe.is_some(), &Targets::default());
        let upstream = Arc::new(Upstream {
            name: Mutex::new(Arc::from(backend.name.as_str())),
            targets: ArcSwap::from_pointee(targets),
            probe,
            // Docker containers are admin business (`allow`).
            selector: backend.docker.clone().filter(|_| allow.is_none()),
            policy: backend.policy,
            connect_timeout: Duration::from_millis(backend.connect_timeout_ms),
            timeout: Duration::from_millis(backend.timeout_ms),
            turn: AtomicUsize::new(0),
        });
        self.upstreams.insert(key, Arc::downgrade(&upstream));
        upstream
    }
}

/// A project's live upstreams, by backend name. Cheap to clone; a project has few
/// backends, so finding one is a search of a short slice.
#[derive(Clone, Default)]
pub struct Upstreams(Arc<[(Box<str>, Arc<Upstream>)]>);

impl Upstreams {
    /// The upstream of the backend named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.0
            .iter()
            .find(|(candidate, _)| **candidate == *name)
            .map(|(_, upstream)| upstream)
    }

    /// The backends' names and upstreams, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Upstream>)> {
        self.0.iter().map(|(name, upstream)| (&**name, upstream))
    }
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// One backend, live: its targets, how to pick one, its timeouts and the client to send on.
pub struct Upstream {
    /// The name of the backend it was last handed out for (for logs; an upstream is shared
    /// by every backend of the same definition, whatever its name).
    name: Mutex<Arc<str>>,
    /// At most [`MAX_TARGETS`] (what validation allows), so a pick fits a small array.
    /// Fixed for a backend of URLs; replaced whole by discovery for a Docker backend. A
    /// request works on one snapshot ([`Upstream::targets`]), so its indices stay valid.
    targets: ArcSwap<Targets>,
    /// The active health check, if the backend has one.
    probe: Option<probe::Probe>,
    /// For a Docker backend, the containers it selects.
    selector: Option<crate::model::DockerSelector>,
    policy: Balance,
    connect_timeout: Duration,
    timeout: Duration,
    /// The round-robin counter.
    turn: AtomicUsize,
}

/// A backend's targets at one moment.
#[derive(Debug, Default)]
pub struct Targets(Box<[Target]>);

impl Targets {
    pub fn new(targets: Vec<Target>) -> Targets {
        let mut targets = targets;
        targets.truncate(MAX_TARGETS);
        Targets(targets.into_boxed_slice())
    }

    pub fn get(&self, index: usize) -> Option<&Target> {
        self.0.get(index)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.0.iter()
    }

    /// These targets with active health state when `checked` (the state `previous` has
    /// for the same authority, else a fresh one, up), without any when not.
    fn checked(mut self, checked: bool, previous: &Targets) -> Targets {
        for target in self.0.iter_mut() {
            target.active = checked.then(|| {
                previous
                    .iter()
                    .find(|old| old.authority == target.authority)
                    .and_then(|old| old.active.clone())
                    .unwrap_or_default()
            });
        }
        self
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("targets", &self.targets.load())
            .field("policy", &self.policy)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The targets as they are now. A request keeps this snapshot for all of its attempts.
    #[inline]
    pub fn targets(&self) -> Arc<Targets> {
        self.targets.load_full()
    }

    /// Replaces the targets (Docker discovery). A target still there keeps its active
    /// health state.
    pub(crate) fn set_targets(&self, targets: Targets) {
        let targets = targets.checked(self.probe.is_some(), &self.targets.load());
        self.targets.store(Arc::new(targets));
    }

    /// The name of the backend this upstream was last handed out for.
    pub fn name(&self) -> Arc<str> {
        Arc::clone(&self.name.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn rename(&self, name: &str) {
        let mut current = self.name.lock().unwrap_or_else(PoisonError::into_inner);
        if **current != *name {
            *current = Arc::from(name);
        }
    }

    /// The containers this upstream selects, for a Docker backend.
    pub(crate) fn selector(&self) -> Option<&crate::model::DockerSelector> {
        self.selector.as_ref()
    }

    /// A target of `targets` to send a request to at `now` ([`health::now_ms`]): one of the
    /// healthy ones (not in a back-off, not failing its health check), by the policy; if
    /// every target is down, the one that comes back first (so that a recovered target is
    /// found without waiting out its back-off), preferring a target in a back-off to one
    /// failing its health check. `None` only when there is no target.
    #[inline]
    pub fn pick(&self, targets: &Targets, now: u64) -> Option<usize> {
        if targets.is_empty() {
            return None;
        }
        if targets.len() == 1 {
            return Some(0);
        }
        self.choose(targets, now, None)
            .or_else(|| earliest(targets, None))
    }

    /// A healthy target other than `tried`, for a second attempt; `None` if there is none.
    pub fn pick_other(&self, targets: &Targets, now: u64, tried: usize) -> Option<usize> {
        self.choose(targets, now, Some(tried))
    }

    /// One of the targets up at `now` (but `except`), by the policy.
    fn choose(&self, targets: &Targets, now: u64, except: Option<usize>) -> Option<usize> {
        let mut healthy = [0u8; MAX_TARGETS];
        let mut count = 0;
        for (index, target) in targets.iter().enumerate().take(MAX_TARGETS) {
            if Some(index) != except && !target.health.is_down(now) && !target.failing_check() {
                // `index` < MAX_TARGETS = 64.
                healthy[count] = index as u8;
                count += 1;
            }
        }
        if count == 0 {
            return None;
        }
        let nth = match self.policy {
            Balance::Random => RANDOM.with(|rng| rng.borrow_mut().gen_range(0..count)),
            Balance::RoundRobin => self.turn.fetch_add(1, Ordering::Relaxed) % count,
        };
        healthy.get(nth).map(|&index| usize::from(index))
    }

    /// Target `index` of the current set (tests).
    #[cfg(test)]
    pub fn target(&self, index: usize) -> Option<Target> {
        self.targets().get(index).cloned()
    }

    /// How long connecting to a target may take (name resolution included).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long a target may take to send its response head.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What of the request's path follows a target's base path upstream.
#[derive(Debug, Clone, Copy)]
pub enum Tail<'a> {
    /// The whole path inside the project (`/` for its root).
    Path(&'a str),
    /// What follows the endpoint's prefix (its `rest` parameter; `None` for the prefix
    /// itself), after a `/`: the prefix is stripped.
    Rest(Option<&'a str>),
}

/// The target (but `except`) whose back-off ends first, among those passing their health
/// check if any does.
fn earliest(targets: &Targets, except: Option<usize>) -> Option<usize> {
    targets
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != except)
        .min_by_key(|(_, target)| (target.failing_check(), target.health.down_until()))
        .map(|(index, _)| index)
}

/// One target of a backend: where to connect, what to put in front of the path, its
/// health and its pool of connections.
#[derive(Clone)]
pub struct Target {
    authority: Authority,
    /// The URL's path without its trailing `/`: empty for a URL without a path.
    base: Box<str>,
    /// The authority as a `host` header value.
    host: HeaderValue,
    health: Arc<Health>,
    pool: Arc<Pool>,
    /// Its state under the backend's health check, when the backend has one.
    active: Option<Arc<ActiveHealth>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base)
    }
}

impl Target {
    /// A target from a URL (as validated by `model`), with its health and pool from
    /// `peer`; `None` if the URL is not a valid target.
    pub(crate) fn parse(
        url: &str,
        peer: impl FnOnce(&Authority) -> (Arc<Health>, Arc<Pool>),
    ) -> Option<Target> {
        let uri = crate::model::check_target_url(url).ok()?;
        let authority = uri.authority()?.clone();
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        let base = uri.path().trim_end_matches('/').into();
        let (health, pool) = peer(&authority);
        Some(Target {
            authority,
            base,
            host,
            health,
            pool,
            active: None,
        })
    }

    /// `host:port` as the URL gives it.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The `host` header a request to this target carries.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Its keep-alive connections.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Its state under the backend's health check; `None` when the backend has none.
    pub fn active(&self) -> Option<&ActiveHealth> {
        self.active.as_deref()
    }

    /// Whether it fails the backend's health check (never, without one).
    #[inline]
    pub fn failing_check(&self) -> bool {
        self.active.as_ref().is_some_and(|active| active.is_down())
    }

    /// The URI of a request to this target, in origin form (the authority goes in `host`):
    /// the base path, then `tail`, then
    /// `?query` if there is one, all raw (percent-encoding as received). `None` if that is
    /// not a valid URI, which a path and query that arrived as one cannot cause.
    pub fn uri(&self, tail: Tail<'_>, query: Option<&str>) -> Option<Uri> {
        let (slash, tail) = match tail {
            Tail::Path(path) => (!path.starts_with('/'), path),
            Tail::Rest(rest) => (true, rest.unwrap_or("")),
        };
        let length = self.base.len() + 1 + tail.len() + query.map_or(0, |q| q.len() + 1);
        let mut text = String::with_capacity(length);
        text.push_str(&self.base);
        if slash {
            text.push('/');
        }
        text.push_str(tail);
        if let Some(query) = query {
            text.push('?');
            text.push_str(query);
        }
        // From `Bytes`, the text is taken as is, not copied.
        let path = PathAndQuery::from_maybe_shared(Bytes::from(text)).ok()?;
        Some(Uri::from(path))
    }

    /// `uri`, made for `from`, made for this target instead (same path below the base
    /// path, same query).
    pub fn rebase(&self, uri: &Uri, from: &Target) -> Option<Uri> {
        let path = uri.path();
        let below = path.strip_prefix(&*from.base).unwrap_or(path);
        self.uri(Tail::Path(below), uri.query())
    }
}

#[cfg(test)]
mod tests;
