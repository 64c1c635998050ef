//! Active health checks: the targets of a backend with a `health_check` are probed with
//! `GET path` every interval, off the request path.
//!
//! - **One task per upstream** ([`start`]), started when the registry hands the upstream
//!   out, stopped as soon as the upstream is dropped (the task holds a `Weak` and watches a
//!   channel whose sender the upstream owns). Each round probes the upstream's targets *as
//!   they are then* (a Docker backend's set changes), all at once, on the upstream's pooled
//!   client; the next round starts an interval after the previous one started, or when it
//!   ends if it took longer.
//! - **A probe** is `GET path` at the target's root (a URL's base path is not put in front),
//!   with `host` the target's authority and `user-agent: switchyard-health-check`. A 2xx or
//!   3xx response head within the check's timeout is a success; a status of 400 or more, no
//!   head in time, or a failed connection is a failure. Up to [`DRAIN_LIMIT`] bytes of the
//!   answer's body are read (within the same timeout) so that the connection goes back to
//!   the pool.
//! - **Per target state** ([`ActiveHealth`]): a target starts up; `unhealthy_after` failures
//!   in a row put it down, and `healthy_after` successes in a row bring it back. Only the
//!   probe task writes it; picking reads one relaxed atomic. It is separate from the passive
//!   back-off (`health`): an answer to a proxied request does not bring a target that fails
//!   its check back, but a successful probe ends a passive back-off (the target answers).
//! - Each transition is logged once: `warn` when a target goes down, `info` when it is back.
//! - The state belongs to the upstream's targets, so it lives as long as the upstream: a
//!   project edit that keeps the backend (same definition, health check included) keeps it;
//!   a new Docker target set keeps the state of the addresses it still has
//!   (`Upstream::set_targets`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{Chain, Outgoing};
use super::pool::SendError;
use super::{Target, Upstream};
use crate::model::HealthCheck;

/// The `user-agent` of every probe.
pub const USER_AGENT: &str = "switchyard-health-check";
/// The most of a probe answer's body that is read (and thrown away) so that its connection
/// can be pooled again; past it, the connection is closed instead.
pub const DRAIN_LIMIT: usize = 64 * 1024;

/// A backend's health check, ready to run.
#[derive(Debug)]
pub struct Probe {
    path: PathAndQuery,
    interval: Duration,
    timeout: Duration,
    thresholds: Thresholds,
    /// Whether the probe task runs (it is started once, by the first `start` on a runtime).
    started: AtomicBool,
    /// Dropped with the upstream: the probe task stops when it sees the channel closed.
    stop: watch::Sender<()>,
}

/// How many probe results in a row change a target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

impl Probe {
    /// The probe of a health check definition; `None` if its path is not one (validation
    /// keeps those out).
    pub fn new(check: &HealthCheck) -> Option<Probe> {
        let path = check.path.parse::<PathAndQuery>().ok()?;
        Some(Probe {
            path,
            interval: Duration::from_millis(check.interval_ms.max(1)),
            timeout: Duration::from_millis(check.timeout_ms.max(1)),
            thresholds: Thresholds {
                unhealthy_after: check.unhealthy_after.max(1),
                healthy_after: check.healthy_after.max(1),
            },
            started: AtomicBool::new(false),
            stop: watch::channel(()).0,
        })
    }
}

/// A change of a target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Down,
    Up,
}

/// One target's state under active checks: up or down, and the results in a row that count
/// towards changing it.
#[derive(Debug, Default)]
pub struct ActiveHealth {
    down: AtomicBool,
    /// Failures in a row while up.
    failures: AtomicU32,
    /// Successes in a row while down.
    successes: AtomicU32,
}

impl ActiveHealth {
    /// Whether the target failed its check (and has not passed it enough since): picking
    /// skips it.
    #[inline]
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Takes one probe result; says when it changes the target's state. Called by one task
    /// at a time (the upstream's probe task).
    pub fn record(&self, success: bool, thresholds: Thresholds) -> Option<Transition> {
        let down = self.is_down();
        match (success, down) {
            (true, false) => {
                self.failures.store(0, Ordering::Relaxed);
                None
            }
            (false, true) => {
                self.successes.store(0, Ordering::Relaxed);
                None
            }
            (false, false) => {
                let failures = self.failures.load(Ordering::Relaxed).saturating_add(1);
                if failures >= thresholds.unhealthy_after {
                    self.failures.store(0, Ordering::Relaxed);
                    self.successes.store(0, Ordering::Relaxed);
                    self.down.store(true, Ordering::Relaxed);
                    Some(Transition::Down)
                } else {
                    self.failures.store(failures, Ordering::Relaxed);
                    None
                }
            }
            (true, true) => {
                let successes = self.successes.load(Ordering::Relaxed).saturating_add(1);
                if successes >= thresholds.healthy_after {
                    self.failures.store(0, Ordering::Relaxed);
                    self.successes.store(0, Ordering::Relaxed);
                    self.down.store(false, Ordering::Relaxed);
                    Some(Transition::Up)
                } else {
                    self.successes.store(successes, Ordering::Relaxed);
                    None
                }
            }
        }
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The target answered with this status (400 or more, or 1xx).
    Status(StatusCode),
    /// No response head within the check's timeout.
    Timeout(Duration),
    /// The request failed: connecting, or the exchange.
    Error(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Status(status) => write!(f, "answered {}", status.as_u16()),
            Failed::Timeout(timeout) => {
                write!(f, "no answer within {} ms", timeout.as_millis())
            }
            Failed::Error(error) => write!(f, "{error}"),
        }
    }
}

/// Starts `upstream`'s probe task if it has a health check and the task does not run yet.
/// Needs a Tokio runtime; without one, nothing starts (a later call on a runtime does).
pub fn start(upstream: &Arc<Upstream>) {
    let Some(probe) = upstream.probe.as_ref() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if probe.started.swap(true, Ordering::AcqRel) {
        return;
    }
    let stopped = probe.stop.subscribe();
    runtime.spawn(run(Arc::downgrade(upstream), stopped));
}

/// Probes the upstream's targets every interval until it is dropped.
async fn run(upstream: Weak<Upstream>, mut stopped: watch::Receiver<()>) {
    let interval = match upstream.upgrade() {
        Some(live) => match &live.probe {
            Some(probe) => probe.interval,
            None => return,
        },
        None => return,
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            // Only ever an error: the upstream, and the sender with it, is gone.
            _ = stopped.changed() => return,
        }
        tokio::select! {
            () = round(&upstream) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// One round: every current target probed at once, then each result recorded.
async fn round(upstream: &Weak<Upstream>) {
    let Some(live) = upstream.upgrade() else {
        return;
    };
    let Some(probe) = live.probe.as_ref() else {
        return;
    };
    let (path, timeout, thresholds) = (probe.path.clone(), probe.timeout, probe.thresholds);
    let (targets, connect_timeout, backend) = (live.targets(), live.connect_timeout, live.name());
    // The upstream is not kept alive while the probes are out.
    drop(live);
    let results = futures_util::future::join_all(
        targets
            .iter()
            .map(|target| check(target, &path, timeout, connect_timeout)),
    )
    .await;
    for (target, result) in targets.iter().zip(results) {
        if result.is_ok() {
            // It answers: any passive back-off is over.
            target.health().succeeded();
        }
        let Some(state) = target.active() else {
            continue;
        };
        match (state.record(result.is_ok(), thresholds), &result) {
            (Some(Transition::Down), Err(failed)) => tracing::warn!(
                backend = &*backend,
                target = %target.authority(),
                path = path.as_str(),
                failures = thresholds.unhealthy_after,
                reason = %failed,
                "target failed its health check; it gets no traffic until it passes again"
            ),
            (Some(Transition::Up), _) => tracing::info!(
                backend = &*backend,
                target = %target.authority(),
                path = path.as_str(),
                successes = thresholds.healthy_after,
                "target passes its health check again; it gets traffic"
            ),
            _ => {}
        }
    }
}

/// Probes one target: `GET path` at its root. `Ok` with the status of a 2xx or 3xx answer
/// within `timeout`.
pub async fn check(
    target: &Target,
    path: &PathAndQuery,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<StatusCode, Failed> {
    let deadline = Instant::now() + timeout;
    let mut request = Request::new(Outgoing::Empty);
    *request.uri_mut() = Uri::from(path.clone());
    let headers = request.headers_mut();
    headers.insert(header::HOST, target.host().clone());
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    let response = match target.pool().send(request, connect_timeout, deadline).await {
        Ok(response) => response,
        Err(SendError::Timeout) => return Err(Failed::Timeout(timeout)),
        Err(error) => return Err(Failed::Error(Chain(&error).to_string())),
    };
    let status = response.status();
    drain(response.into_body(), deadline).await;
    if status.is_success() || status.is_redirection() {
        Ok(status)
    } else {
        Err(Failed::Status(status))
    }
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of a body before `deadline`, so that its
/// connection can be reused; gives up (the connection is then closed) past either.
async fn drain(mut body: super::Returning, deadline: Instant) {
    let mut read = 0;
    while read <= DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |data| data.len());
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        unhealthy_after: 3,
        healthy_after: 2,
    };

    /// The state after each result, `D` down and `u` up.
    fn run(state: &ActiveHealth, results: &str, thresholds: Thresholds) -> (String, usize) {
        let mut shown = String::new();
        let mut transitions = 0;
        for result in results.chars() {
            if state.record(result == '+', thresholds).is_some() {
                transitions += 1;
            }
            shown.push(if state.is_down() { 'D' } else { 'u' });
        }
        (shown, transitions)
    }

    #[test]
    fn a_target_starts_up_and_goes_down_after_unhealthy_after_failures_in_a_row() {
        let state = ActiveHealth::default();
        assert!(!state.is_down());
        // Two failures, then a success: the count starts again.
        assert_eq!(run(&state, "--+--", T), ("uuuuu".into(), 0));
        assert_eq!(state.record(false, T), Some(Transition::Down));
        assert!(state.is_down());
        // More failures while down change nothing, and say nothing.
        assert_eq!(state.record(false, T), None);
        assert!(state.is_down());
    }

    #[test]
    fn a_down_target_comes_back_after_healthy_after_successes_in_a_row() {
        let state = ActiveHealth::default();
        assert_eq!(run(&state, "---", T), ("uuD".into(), 1));
        // A success, a failure: the successes start again.
        assert_eq!(run(&state, "+-+", T), ("DDD".into(), 0));
        assert_eq!(state.record(true, T), Some(Transition::Up));
        assert!(!state.is_down());
        assert_eq!(state.record(true, T), None);
        // Back up, the failures count from zero.
        assert_eq!(run(&state, "--", T), ("uu".into(), 0));
        assert_eq!(state.record(false, T), Some(Transition::Down));
    }

    #[test]
    fn thresholds_of_one_switch_on_every_change() {
        let one = Thresholds {
            unhealthy_after: 1,
            healthy_after: 1,
        };
        let state = ActiveHealth::default();
        assert_eq!(run(&state, "+-+-++--", one), ("uDuDuuDD".into(), 5));
    }

    #[test]
    fn each_transition_is_reported_once() {
        let state = ActiveHealth::default();
        let ten = Thresholds {
            unhealthy_after: 10,
            healthy_after: 10,
        };
        let transitions: Vec<_> = std::iter::repeat_n(false, 25)
            .chain(std::iter::repeat_n(true, 25))
            .filter_map(|success| state.record(success, ten))
            .collect();
        assert_eq!(transitions, [Transition::Down, Transition::Up]);
    }

    #[test]
    fn a_probe_takes_the_checks_settings() {
        let mut check = HealthCheck::of_path("/healthz?deep=1");
        check.interval_ms = 250;
        check.timeout_ms = 100;
        check.unhealthy_after = 2;
        let probe = Probe::new(&check).unwrap();
        assert_eq!(probe.path.as_str(), "/healthz?deep=1");
        assert_eq!(probe.interval, Duration::from_millis(250));
        assert_eq!(probe.timeout, Duration::from_millis(100));
        assert_eq!(
            probe.thresholds,
            Thresholds {
                unhealthy_after: 2,
                healthy_after: 1
            }
        );
        assert!(Probe::new(&HealthCheck::of_path("not a path")).is_none());
    }

    #[test]
    fn failures_read_well_in_logs() {
        assert_eq!(
            Failed::Status(StatusCode::SERVICE_UNAVAILABLE).to_string(),
            "answered 503"
        );
        assert_eq!(
            Failed::Timeout(Duration::from_millis(1000)).to_string(),
            "no answer within 1000 ms"
        );
    }
}
