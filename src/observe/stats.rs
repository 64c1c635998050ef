//! Request statistics for the instance, each project and each endpoint.
//!
//! A [`Stats`] counts answers by status class and keeps their latency (from the start of the
//! request to its response head) in a [`Histogram`], and, for the instance and projects, a
//! view of the last 60 seconds. Everything is relaxed atomics: recording takes no lock and,
//! once an endpoint's first request has allocated its counters, no allocation. Reading
//! merges a snapshot, which requests recorded meanwhile may move on.
//!
//! Stats live outside the compiled project they count for and are handed from one
//! revision to the next (`routing::CompiledProject::next`), so that editing a project does
//! not reset them; an endpoint keeps its stats as long as its id stays in the project.
//! Endpoints hold an empty [`StatsCell`] until their first request: 100,000 endpoints that
//! are never called cost nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use once_cell::race::OnceBox;
use serde::Serialize;

use super::histogram::{Histogram, Snapshot};

/// Length of the recent view, in one-second slots.
pub const RECENT_SECONDS: u64 = 60;

/// Counters of one scope (the instance, a project, an endpoint).
#[derive(Debug)]
pub struct Stats {
    /// Answers by status class: 1xx at 0 … 5xx at 4 (anything else counts as 5xx).
    classes: [AtomicU64; 5],
    latency_sum_ns: AtomicU64,
    latency_max_ns: AtomicU64,
    latency: Histogram,
    /// When the counters started: creation or the last reset, Unix milliseconds.
    since_ms: AtomicU64,
    recent: Option<Box<Recent>>,
}

impl Stats {
    /// Counters without a recent view (endpoints).
    pub fn new() -> Stats {
        Stats {
            classes: Default::default(),
            latency_sum_ns: AtomicU64::new(0),
            latency_max_ns: AtomicU64::new(0),
            latency: Histogram::new(),
            since_ms: AtomicU64::new(super::unix_ms()),
            recent: None,
        }
    }

    /// Counters with a view of the last [`RECENT_SECONDS`] (the instance, projects).
    pub fn with_recent() -> Stats {
        Stats {
            recent: Some(Box::default()),
            ..Stats::new()
        }
    }

    /// Counts one answer. `second` is the current second on the node's monotonic clock
    /// (see [`super::Clock`]), for the recent view.
    #[inline]
    pub fn record(&self, status: u16, latency_ns: u64, second: u64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns.fetch_add(latency_ns, Ordering::Relaxed);
        self.latency_max_ns.fetch_max(latency_ns, Ordering::Relaxed);
        self.latency.record(latency_ns);
        if let Some(recent) = &self.recent {
            recent.record(status < 400, latency_ns, second);
        }
    }

    /// Sets every counter back to zero and starts counting from now.
    pub fn reset(&self) {
        for class in &self.classes {
            class.store(0, Ordering::Relaxed);
        }
        self.latency_sum_ns.store(0, Ordering::Relaxed);
        self.latency_max_ns.store(0, Ordering::Relaxed);
        self.latency.reset();
        if let Some(recent) = &self.recent {
            recent.reset();
        }
        self.since_ms.store(super::unix_ms(), Ordering::Relaxed);
    }

    /// What the counters say now, in the documented stats format.
    pub fn report(&self, second: u64) -> Report {
        let classes: [u64; 5] = std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed));
        // 1xx answers are neither success nor failure by the format's rule (200–399 and
        // 400+); they are informational and only ever precede a final answer, so they
        // count with the successes.
        let success = classes[0] + classes[1] + classes[2];
        let error = classes[3] + classes[4];
        let snapshot = self.latency.snapshot();
        let count = snapshot.count();
        let sum = self.latency_sum_ns.load(Ordering::Relaxed);
        let counts = Counts { success, error };
        Report {
            requests_count: counts,
            request_count: counts,
            latency_ms: Latency {
                average: if count == 0 {
                    0.0
                } else {
                    ms(sum) / count as f64
                },
                p50: ms(snapshot.quantile(0.50)),
                p95: ms(snapshot.quantile(0.95)),
                p99: ms(snapshot.quantile(0.99)),
                max: ms(self.latency_max_ns.load(Ordering::Relaxed)),
            },
            status_classes: StatusClasses {
                informational: classes[0],
                success: classes[1],
                redirection: classes[2],
                client_error: classes[3],
                server_error: classes[4],
            },
            since: format_ms(self.since_ms.load(Ordering::Relaxed)),
            recent: self.recent.as_ref().map(|recent| recent.report(second)),
        }
    }
}

/// The raw counters, for `/metrics`.
pub struct Totals {
    /// Answers by status class, 1xx first.
    pub classes: [u64; 5],
    pub latency_sum_ns: u64,
    pub latency: Snapshot,
}

impl Stats {
    /// The raw counters as they are now.
    pub fn totals(&self) -> Totals {
        Totals {
            classes: std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed)),
            latency_sum_ns: self.latency_sum_ns.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// An endpoint's stats, allocated by its first request. Shared by every revision in which
/// the endpoint keeps its id. One pointer wide (a `OnceLock` would be two words), so that
/// an endpoint's compiled form stays in the same allocator size class with it.
#[derive(Debug, Default)]
pub struct StatsCell(OnceBox<Arc<Stats>>);

impl StatsCell {
    pub const fn new() -> StatsCell {
        StatsCell(OnceBox::new())
    }

    /// A cell that already holds `stats` (the previous revision's).
    pub fn holding(stats: Arc<Stats>) -> StatsCell {
        StatsCell(OnceBox::with_value(Box::new(stats)))
    }

    /// The stats, allocating them on first use.
    #[inline]
    pub fn get(&self) -> &Arc<Stats> {
        self.0.get_or_init(|| Box::new(Arc::new(Stats::new())))
    }

    /// Takes over `stats` if the cell is still empty (a freshly compiled endpoint that
    /// continues one of an earlier revision); otherwise keeps its own.
    pub fn adopt(&self, stats: Arc<Stats>) {
        let _ = self.0.set(Box::new(stats));
    }

    /// The stats if any request allocated them.
    pub fn peek(&self) -> Option<&Arc<Stats>> {
        self.0.get()
    }
}

/// The last [`RECENT_SECONDS`] seconds, one slot per second, reused round the ring.
#[derive(Debug)]
struct Recent {
    slots: [Slot; RECENT_SECONDS as usize],
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The second the counters belong to, plus one (0: never used), or [`CLAIMED`] while a
    /// recorder zeroes them for a new second.
    second: AtomicU64,
    success: AtomicU64,
    error: AtomicU64,
    latency_sum_ns: AtomicU64,
}

/// A slot being cleared for its new second; others wait the few nanoseconds that takes.
const CLAIMED: u64 = u64::MAX;

impl Recent {
    fn record(&self, success: bool, latency_ns: u64, second: u64) {
        let slot = &self.slots[(second % RECENT_SECONDS) as usize];
        let tag = second + 1;
        loop {
            let seen = slot.second.load(Ordering::Acquire);
            if seen == tag {
                break;
            }
            if seen == CLAIMED {
                std::hint::spin_loop();
                continue;
            }
            if seen > tag {
                // A recorder that read the clock before a slower one moved the slot on: its
                // second is gone from the ring already.
                return;
            }
            if slot
                .second
                .compare_exchange(seen, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                slot.success.store(0, Ordering::Relaxed);
                slot.error.store(0, Ordering::Relaxed);
                slot.latency_sum_ns.store(0, Ordering::Relaxed);
                slot.second.store(tag, Ordering::Release);
                break;
            }
        }
        if success {
            slot.success.fetch_add(1, Ordering::Relaxed);
        } else {
            slot.error.fetch_add(1, Ordering::Relaxed);
        }
        slot.latency_sum_ns.fetch_add(latency_ns, Ordering::Relaxed);
    }

    fn reset(&self) {
        for slot in &self.slots {
            slot.second.store(0, Ordering::Release);
        }
    }

    /// The slots of the last [`RECENT_SECONDS`] seconds up to and including `second`.
    fn report(&self, second: u64) -> RecentReport {
        let oldest = (second + 1).saturating_sub(RECENT_SECONDS);
        let (mut success, mut error, mut sum) = (0, 0, 0);
        for slot in &self.slots {
            let tag = slot.second.load(Ordering::Acquire);
            if tag == 0 || tag == CLAIMED || tag - 1 < oldest || tag - 1 > second {
                continue;
            }
            success += slot.success.load(Ordering::Relaxed);
            error += slot.error.load(Ordering::Relaxed);
            sum += slot.latency_sum_ns.load(Ordering::Relaxed);
        }
        let count = success + error;
        RecentReport {
            window_seconds: RECENT_SECONDS,
            requests_count: Counts { success, error },
            request_count: Counts { success, error },
            requests_per_second: count as f64 / RECENT_SECONDS as f64,
            latency_ms: RecentLatency {
                average: if count == 0 {
                    0.0
                } else {
                    ms(sum) / count as f64
                },
            },
        }
    }
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// RFC 3339 in UTC with milliseconds.
fn format_ms(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(unix_ms).unwrap_or(i64::MAX))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The documented stats format (DESIGN.md, "Stats format"), plus status classes, the reset
/// time and, for the instance and projects, the last 60 seconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(
    as = Stats,
    description = "Traffic since `since`: requests by outcome (`success`: 100–399, `error`: 400 \
        and above) and by status class, latency percentiles, and for the node and projects \
        the last 60 seconds."
)]
pub struct Report {
    pub requests_count: Counts,
    /// The same counts, under the key some gateway dashboards read.
    pub request_count: Counts,
    pub latency_ms: Latency,
    pub status_classes: StatusClasses,
    /// When counting started: the scope's creation (this node's start for the instance) or
    /// its last reset.
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent: Option<RecentReport>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = RequestCounts)]
pub struct Counts {
    /// Answers 100–399.
    pub success: u64,
    /// Answers 400 and above.
    pub error: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(description = "Latency in milliseconds, from the request's start to its answer's head.")]
pub struct Latency {
    pub average: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(description = "Answers by status class.")]
pub struct StatusClasses {
    #[serde(rename = "1xx")]
    pub informational: u64,
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirection: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(description = "The last `window_seconds` seconds.")]
pub struct RecentReport {
    pub window_seconds: u64,
    pub requests_count: Counts,
    pub request_count: Counts,
    pub requests_per_second: f64,
    pub latency_ms: RecentLatency,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecentLatency {
    pub average: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untouched_scope_reports_zeros() {
        let report = Stats::with_recent().report(5);
        assert_eq!(
            report.requests_count,
            Counts {
                success: 0,
                error: 0
            }
        );
        assert_eq!(report.latency_ms.p99, 0.0);
        assert_eq!(report.latency_ms.average, 0.0);
        let recent = report.recent.unwrap();
        assert_eq!(
            recent.requests_count,
            Counts {
                success: 0,
                error: 0
            }
        );
        let json = serde_json::to_value(Stats::new().report(0)).unwrap();
        assert_eq!(
            json["requests_count"],
            serde_json::json!({"success": 0, "error": 0})
        );
        assert_eq!(json["request_count"], json["requests_count"]);
        assert!(json.get("recent").is_none());
    }

    #[test]
    fn statuses_count_by_the_documented_rule() {
        let stats = Stats::new();
        for status in [200, 201, 204, 301, 399, 400, 404, 499, 500, 503, 101] {
            stats.record(status, 1_000, 0);
        }
        let report = stats.report(0);
        assert_eq!(
            report.requests_count,
            Counts {
                success: 6,
                error: 5
            }
        );
        assert_eq!(report.status_classes.success, 3);
        assert_eq!(report.status_classes.redirection, 2);
        assert_eq!(report.status_classes.client_error, 3);
        assert_eq!(report.status_classes.server_error, 2);
        assert_eq!(report.status_classes.informational, 1);
    }

    #[test]
    fn latency_reports_average_percentiles_and_max() {
        let stats = Stats::new();
        for ms in 1..=100u64 {
            stats.record(200, ms * 1_000_000, 0);
        }
        let latency = stats.report(0).latency_ms;
        assert!((latency.average - 50.5).abs() < 1e-9);
        assert!((latency.p95 - 95.0).abs() / 95.0 < 0.01, "{}", latency.p95);
        assert!((latency.p99 - 99.0).abs() / 99.0 < 0.01, "{}", latency.p99);
        assert_eq!(latency.max, 100.0);
    }

    #[test]
    fn the_recent_view_keeps_only_the_last_sixty_seconds() {
        let stats = Stats::with_recent();
        stats.record(200, 2_000_000, 10);
        stats.record(500, 4_000_000, 10);
        stats.record(200, 1_000_000, 65);
        let at = |second| stats.report(second).recent.unwrap();
        assert_eq!(
            at(65).requests_count,
            Counts {
                success: 2,
                error: 1
            }
        );
        assert!((at(65).latency_ms.average - 7.0 / 3.0).abs() < 1e-9);
        // Second 10 leaves the window at 70.
        assert_eq!(
            at(70).requests_count,
            Counts {
                success: 1,
                error: 0
            }
        );
        // Second 130 reuses second 10's slot: the old counts are gone.
        stats.record(404, 1_000_000, 130);
        assert_eq!(
            at(130).requests_count,
            Counts {
                success: 0,
                error: 1
            }
        );
        // The totals keep everything.
        assert_eq!(
            stats.report(130).requests_count,
            Counts {
                success: 2,
                error: 2
            }
        );
    }

    #[test]
    fn reset_starts_from_zero() {
        let stats = Stats::with_recent();
        stats.record(200, 1_000, 1);
        stats.reset();
        let report = stats.report(1);
        assert_eq!(
            report.requests_count,
            Counts {
                success: 0,
                error: 0
            }
        );
        assert_eq!(report.recent.unwrap().requests_count.success, 0);
        assert_eq!(report.latency_ms.max, 0.0);
    }

    #[test]
    fn concurrent_recording_is_exact() {
        let stats = Arc::new(Stats::with_recent());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        // Seconds advance while threads race to claim slots.
                        stats.record(if i % 5 == 0 { 500 } else { 200 }, 1_000 + t, i / 100);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let report = stats.report(49);
        let all = Counts {
            success: 16_000,
            error: 4_000,
        };
        assert_eq!(report.requests_count, all);
        // Seconds 0–49 all fit in the window: the recent view lost nothing either.
        assert_eq!(report.recent.unwrap().requests_count, all);
    }

    #[test]
    fn a_cell_is_empty_until_used_and_can_carry_stats_over() {
        let cell = StatsCell::new();
        assert!(cell.peek().is_none());
        cell.get().record(200, 1, 0);
        let carried = StatsCell::holding(cell.get().clone());
        assert!(Arc::ptr_eq(carried.get(), cell.get()));
    }
}
