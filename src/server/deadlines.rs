//! Connection deadlines: the idle and header-read timeouts of every open connection, kept
//! by one sweeper task per node instead of one timer per connection.
//!
//! A connection is in one of three phases: idle (its last answer is ready; nothing of the
//! next request has arrived), reading a head, or busy (a request is being served; its body
//! has its own deadline, `body_read_timeout`). The connection's own task notes each phase
//! change with the time it happened, read from a coarse clock the sweeper advances: a few
//! relaxed atomic stores per request, no timer registered, no clock read. Every tick the
//! sweeper wakes the connections whose phase has lasted longer than its timeout; woken, a
//! connection whose socket has nothing for it checks its deadline itself and ends with a
//! timeout error, which makes hyper close it.
//!
//! A timeout fires between its length and its length plus two ticks; a tick is a tenth of
//! the shorter timeout, between 10 ms and one second.
//!
//! The same sweeper carries graceful shutdown: once [`Deadlines::close_all`] is called it
//! wakes every connection at every tick, and each one, seeing [`Deadlines::closing`], asks
//! hyper to finish its request in flight and close.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Context;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

/// The phases of a connection, as `Watch::phase` holds them.
const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// The node's connection deadlines and its coarse clock.
pub struct Deadlines {
    start: Instant,
    /// Milliseconds since `start`, as of the last tick.
    now_ms: AtomicU64,
    idle_ms: u64,
    header_ms: u64,
    tick: Duration,
    watched: Mutex<Vec<Weak<Watch>>>,
    /// The node is shutting down: every connection should finish what it is doing and close.
    closing: AtomicBool,
}

/// One connection's phase, as its own task notes it and the sweeper reads it.
pub struct Watch {
    deadlines: Arc<Deadlines>,
    phase: AtomicU8,
    /// When the phase began, on the coarse clock.
    since_ms: AtomicU64,
    waker: AtomicWaker,
}

impl Deadlines {
    pub fn new(idle: Duration, header: Duration) -> Arc<Deadlines> {
        let shorter = idle.min(header);
        let tick = (shorter / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        Arc::new(Deadlines {
            start: Instant::now(),
            now_ms: AtomicU64::new(0),
            idle_ms: millis(idle),
            header_ms: millis(header),
            tick,
            watched: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
        })
    }

    /// A new connection, idle from now.
    pub fn watch(self: &Arc<Self>) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            deadlines: self.clone(),
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(self.now()),
            waker: AtomicWaker::new(),
        });
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&watch));
        watch
    }

    #[inline]
    fn now(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Whether the node is shutting down ([`Deadlines::close_all`]).
    #[inline]
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Starts the shutdown: every connection is woken now, and again at every tick until
    /// it has closed, to see [`Deadlines::closing`].
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.wake(|_| true);
    }

    /// Wakes the connections `which` picks, forgetting closed ones.
    fn wake(&self, which: impl Fn(&Watch) -> bool) {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        watched.retain(|watch| match watch.upgrade() {
            Some(watch) => {
                if which(&watch) {
                    watch.waker.wake();
                }
                true
            }
            None => false,
        });
    }

    /// Advances the clock and wakes every connection past its deadline (every connection,
    /// once the node is closing), every tick, for as long as the node runs. `each_tick` runs
    /// after each sweep.
    pub async fn sweep(self: Arc<Self>, mut each_tick: impl FnMut()) {
        let mut ticks = tokio::time::interval(self.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = millis(self.start.elapsed());
            self.now_ms.store(now, Ordering::Relaxed);
            let closing = self.closing();
            self.wake(|watch| {
                closing || watch.overdue(now, self.idle_ms, self.header_ms).is_some()
            });
            each_tick();
        }
    }
}

impl Watch {
    /// A request is being served: no deadline.
    #[inline]
    pub fn busy(&self) {
        self.phase.store(BUSY, Ordering::Relaxed);
    }

    /// The answer is ready: the idle timeout runs from now.
    #[inline]
    pub fn idle(&self) {
        self.since_ms.store(self.deadlines.now(), Ordering::Relaxed);
        self.phase.store(IDLE, Ordering::Relaxed);
    }

    /// Bytes arrived: if the connection was idle, a head is being read and the header-read
    /// timeout runs from now.
    #[inline]
    pub fn read_some(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.since_ms.store(self.deadlines.now(), Ordering::Relaxed);
            self.phase.store(HEAD, Ordering::Relaxed);
        }
    }

    /// An answer's bytes left: an idle connection that makes progress writing is not idle,
    /// so the idle timeout starts again.
    #[inline]
    pub fn wrote_some(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.since_ms.store(self.deadlines.now(), Ordering::Relaxed);
        }
    }

    /// The connection must wait for its socket: the timeout it has run past, if any
    /// (`"idle timeout"` or `"header read timeout"`); otherwise the sweeper will wake it
    /// through `cx` should its deadline pass.
    pub fn overdue_waiting(&self, cx: &Context<'_>) -> Option<&'static str> {
        self.waker.register(cx.waker());
        let deadlines = &*self.deadlines;
        self.overdue(deadlines.now(), deadlines.idle_ms, deadlines.header_ms)
    }

    fn overdue(&self, now: u64, idle_ms: u64, header_ms: u64) -> Option<&'static str> {
        let (limit, what) = match self.phase.load(Ordering::Relaxed) {
            IDLE => (idle_ms, "idle timeout"),
            HEAD => (header_ms, "header read timeout"),
            _ => return None,
        };
        let since = self.since_ms.load(Ordering::Relaxed);
        (now.saturating_sub(since) >= limit).then_some(what)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_has_its_own_deadline_and_busy_has_none() {
        let deadlines = Deadlines::new(Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(deadlines.tick, Duration::from_secs(1));
        let watch = deadlines.watch();
        assert_eq!(watch.overdue(59_999, 60_000, 30_000), None);
        assert_eq!(watch.overdue(60_000, 60_000, 30_000), Some("idle timeout"));
        watch.read_some();
        assert_eq!(watch.overdue(29_999, 60_000, 30_000), None);
        assert_eq!(
            watch.overdue(30_000, 60_000, 30_000),
            Some("header read timeout")
        );
        // More bytes of the same head do not move its deadline.
        deadlines.now_ms.store(20_000, Ordering::Relaxed);
        watch.read_some();
        assert_eq!(
            watch.overdue(30_000, 60_000, 30_000),
            Some("header read timeout")
        );
        watch.busy();
        assert_eq!(watch.overdue(u64::MAX, 60_000, 30_000), None);
        watch.idle();
        assert_eq!(watch.overdue(79_999, 60_000, 30_000), None);
        assert_eq!(watch.overdue(80_000, 60_000, 30_000), Some("idle timeout"));
        deadlines.now_ms.store(50_000, Ordering::Relaxed);
        watch.wrote_some();
        assert_eq!(watch.overdue(80_000, 60_000, 30_000), None);
    }

    #[test]
    fn ticks_follow_the_shorter_timeout_within_bounds() {
        let tick = |idle, header| {
            Deadlines::new(Duration::from_millis(idle), Duration::from_millis(header)).tick
        };
        assert_eq!(tick(2_000, 500), Duration::from_millis(50));
        assert_eq!(tick(50, 50), Duration::from_millis(10));
        assert_eq!(tick(3_600_000, 600_000), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn the_sweeper_advances_the_clock_and_forgets_closed_connections() {
        let deadlines = Deadlines::new(Duration::from_millis(500), Duration::from_millis(100));
        let kept = deadlines.watch();
        drop(deadlines.watch());
        let sweeper = tokio::spawn(deadlines.clone().sweep(|| {}));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(deadlines.watched.lock().unwrap().len(), 1);
        assert!(deadlines.now() >= 50, "{}", deadlines.now());
        drop(kept);
        sweeper.abort();
    }
}
