//! Observing requests: the request id, and the traffic stats ([`stats`], counted by the
//! pipeline's record stage; [`Telemetry`] holds the instance's). Logs, metrics and the
//! journal join here.
//!
//! Every response carries `x-request-id`. A sane incoming id is kept (so a trace spans
//! services); otherwise a UUIDv7 is made. Making one is on the hot path, so it takes no lock
//! and reads no clock (its time is the request's start, by the clock the stats already
//! read): the random bits come from a per-thread xoshiro generator seeded from the OS. Ids
//! must be unique, not secret, so that is enough.

pub mod histogram;
pub mod journal;
pub mod logs;
pub mod metrics;
pub mod stats;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// A reading of the node's monotonic clock (`CLOCK_MONOTONIC`, the clock `Instant` reads),
/// in nanoseconds. A plain integer, so that a request's time arithmetic (latency, the
/// stats' second, wall-clock time) is a subtraction and two divisions rather than
/// `Duration` normalisation and 128-bit arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    /// Now.
    #[inline]
    pub fn now() -> Stamp {
        #[cfg(unix)]
        {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the struct we own and pass by pointer;
            // CLOCK_MONOTONIC always exists on the platforms we build for.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
            Stamp((now.tv_sec as u64).wrapping_mul(1_000_000_000) + now.tv_nsec as u64)
        }
        #[cfg(not(unix))]
        {
            static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            let base = BASE.get_or_init(std::time::Instant::now);
            Stamp(u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX))
        }
    }

    /// Nanoseconds from `earlier` to this reading (0 if `earlier` is later).
    #[inline]
    pub fn nanos_since(self, earlier: Stamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// What the node observes of its own traffic: the instance's stats, and the clock that
/// stats use.
pub struct Telemetry {
    pub instance: stats::Stats,
    /// Store commits: success or failure, and how long each took.
    pub commits: stats::Stats,
    /// Connections open now.
    pub connections: AtomicU64,
    /// Requests each project's journal keeps; 0: journals are off.
    pub journal_size: usize,
    /// Bytes of each body a journal entry keeps.
    pub journal_body: usize,
    started: Stamp,
    /// Unix milliseconds at `started`, so that a request's wall-clock time comes from the
    /// same clock read as its latency; re-read now and then ([`Telemetry::resync`]) so that
    /// the wall clock's corrections reach it.
    started_unix_ms: AtomicU64,
}

impl Telemetry {
    /// Nothing counted yet; journals of `journal_size` entries keeping `journal_body` bytes
    /// of each body (the node's `Config`).
    pub fn new(journal_size: usize, journal_body: usize) -> Telemetry {
        Telemetry {
            instance: stats::Stats::with_recent(),
            commits: stats::Stats::new(),
            connections: AtomicU64::new(0),
            journal_size,
            journal_body,
            started: Stamp::now(),
            started_unix_ms: AtomicU64::new(unix_ms()),
        }
    }

    /// Re-reads the wall clock: Unix milliseconds of the node's start, as the wall clock
    /// says now.
    pub fn resync(&self) {
        let elapsed = Stamp::now().nanos_since(self.started) / NANOS_PER_MS;
        self.started_unix_ms
            .store(unix_ms().saturating_sub(elapsed), Ordering::Relaxed);
    }

    /// Counts one store commit that started at `start`.
    pub fn record_commit(&self, ok: bool, start: Stamp) {
        let moment = self.moment(start);
        self.commits
            .record(if ok { 200 } else { 500 }, moment.latency_ns, moment.second);
    }

    /// The current second of the node's clock.
    pub fn second(&self) -> u64 {
        Stamp::now().nanos_since(self.started) / NANOS_PER_SECOND
    }

    /// One clock read for a request that started at `start`: its latency, the node's
    /// second (for the recent views), and the Unix milliseconds now.
    #[inline]
    pub fn moment(&self, start: Stamp) -> Moment {
        let now = Stamp::now();
        let elapsed = now.nanos_since(self.started);
        Moment {
            latency_ns: now.nanos_since(start),
            second: elapsed / NANOS_PER_SECOND,
            unix_ms: self.unix_ms_after(elapsed),
        }
    }

    /// Unix milliseconds at `stamp`, by the node's clock.
    #[inline]
    pub fn unix_ms_at(&self, stamp: Stamp) -> u64 {
        self.unix_ms_after(stamp.nanos_since(self.started))
    }

    /// Unix milliseconds `elapsed` nanoseconds after the node's start.
    #[inline]
    fn unix_ms_after(&self, elapsed: u64) -> u64 {
        self.started_unix_ms.load(Ordering::Relaxed) + elapsed / NANOS_PER_MS
    }
}

const NANOS_PER_MS: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// When a request ended, read once.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    pub latency_ns: u64,
    pub second: u64,
    pub unix_ms: u64,
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Whether requests to `path` count in the stats: all but those to the observability
/// endpoints themselves, so that watching a node does not change what it reports.
pub fn counted(path: &str) -> bool {
    !matches!(path, "/stats" | "/metrics" | "/health" | "/ready")
}

/// Whether requests to `path` get an access-log line: all but the probes, which would
/// drown the rest.
pub fn logged(path: &str) -> bool {
    !matches!(path, "/health" | "/ready")
}

/// The header that carries the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a handler puts as the first response header when it pre-builds its headers: the
/// edge replaces it with the request's id ([`set_request_id`]). Empty, so that it can never
/// be mistaken for an id.
pub const REQUEST_ID_PLACEHOLDER: HeaderValue = HeaderValue::from_static("");

/// Puts the request id on a response: into the placeholder when the response's first header
/// is one (no hash lookup), else replacing any `x-request-id` the response has.
#[inline]
pub fn set_request_id(headers: &mut HeaderMap, id: HeaderValue) {
    let mut each = headers.iter_mut();
    if let Some((name, value)) = each.next()
        && *name == REQUEST_ID
        && value.is_empty()
        && each.next().is_none_or(|(next, _)| *next != REQUEST_ID)
    {
        *value = id;
        return;
    }
    headers.insert(REQUEST_ID, id);
}

/// The longest incoming id kept as is.
const MAX_INCOMING: usize = 128;

thread_local! {
    static RANDOM: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
    /// Where this thread writes fresh ids: each id is a shared slice of it, so that making
    /// one allocates nothing once the buffer is warm (when every id cut from it has been
    /// dropped, `reserve` takes the same memory back).
    static IDS: RefCell<bytes::BytesMut> = RefCell::new(bytes::BytesMut::new());
}

/// Bytes of id buffer a thread allocates at a time: 113 ids.
const ID_BUFFER: usize = 4096;

/// The request id for a request: the caller's if it is 1–128 visible ASCII characters,
/// else a fresh UUIDv7 made at `unix_ms` (called only then).
pub fn request_id(headers: &HeaderMap, unix_ms: impl FnOnce() -> u64) -> HeaderValue {
    if let Some(given) = incoming_id(headers) {
        let bytes = given.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_INCOMING
            && bytes.iter().all(u8::is_ascii_graphic)
        {
            return given.clone();
        }
    }
    new_request_id(unix_ms())
}

/// The first `x-request-id` of a request. A head of a few names is scanned: comparing names
/// (a tag, for the standard ones) costs less than hashing this non-standard one (about 140
/// instructions with the probe), which is what a lookup does.
#[inline]
fn incoming_id(headers: &HeaderMap) -> Option<&HeaderValue> {
    const SCAN: usize = 8;
    if headers.keys_len() <= SCAN {
        headers
            .iter()
            .find(|(name, _)| **name == REQUEST_ID)
            .map(|(_, value)| value)
    } else {
        headers.get(&REQUEST_ID)
    }
}

/// A fresh UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the version, 12 random bits,
/// the variant, 62 random bits; hyphenated lowercase hex. `millis` is now, in Unix
/// milliseconds (read by the caller, who has a clock reading at hand).
pub fn new_request_id(millis: u64) -> HeaderValue {
    // Two words from the generator, not ten byte-sized draws.
    let (high, low) = RANDOM.with(|rng| {
        let mut rng = rng.borrow_mut();
        (rng.next_u64(), rng.next_u64())
    });
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..14].copy_from_slice(&high.to_le_bytes());
    bytes[14..].copy_from_slice(&low.to_le_bytes()[..2]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    let text = hyphenated(&bytes);
    let bytes = IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if ids.capacity() < text.len() {
            ids.reserve(ID_BUFFER);
        }
        ids.extend_from_slice(&text);
        ids.split().freeze()
    });
    // SAFETY: not a memory-safety matter: `from_maybe_shared_unchecked` skips the check that
    // every byte is a visible ASCII character, and `hyphenated` writes only `0-9a-f` and `-`.
    // Done on every request without an id of its own, so the check is worth skipping.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

/// Two lowercase hex digits for every byte value.
static HEX: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [digits[i >> 4], digits[i & 0xf]];
        i += 1;
    }
    table
};

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn hyphenated(bytes: &[u8; 16]) -> [u8; 36] {
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at..at + 2].copy_from_slice(&HEX[usize::from(*byte)]);
        at += 2;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incoming_id_is_found_in_small_and_large_heads_alike() {
        for others in [0, 3, 7, 8, 9, 30] {
            let mut headers = HeaderMap::new();
            for i in 0..others {
                let name = HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap();
                headers.insert(name, HeaderValue::from_static("v"));
            }
            headers.insert(http::header::HOST, HeaderValue::from_static("h"));
            assert_eq!(incoming_id(&headers), None, "{others}");
            headers.append(REQUEST_ID, HeaderValue::from_static("first"));
            headers.append(REQUEST_ID, HeaderValue::from_static("second"));
            assert_eq!(incoming_id(&headers).unwrap(), "first", "{others}");
            let kept = request_id(&headers, || 0);
            assert_eq!(kept, "first");
        }
    }

    #[test]
    fn one_clock_reading_gives_latency_second_and_wall_time() {
        let telemetry = Telemetry::new(0, 0);
        let start = Stamp::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let moment = telemetry.moment(start);
        assert!(moment.latency_ns >= 20_000_000, "{}", moment.latency_ns);
        assert!(moment.latency_ns < 5_000_000_000, "{}", moment.latency_ns);
        assert!(telemetry.second() - moment.second <= 1);
        let wall = unix_ms();
        assert!(
            moment.unix_ms.abs_diff(wall) < 1_000,
            "{} vs {wall}",
            moment.unix_ms
        );
        assert!(telemetry.unix_ms_at(start) <= moment.unix_ms);
        assert_eq!(start.nanos_since(Stamp::now()), 0, "never negative");
    }

    #[test]
    fn the_request_id_fills_a_placeholder_or_replaces_every_other_value() {
        let id = HeaderValue::from_static("id-1");
        let mut placeholder = HeaderMap::new();
        placeholder.append(REQUEST_ID, REQUEST_ID_PLACEHOLDER);
        placeholder.append(http::header::CONTENT_TYPE, HeaderValue::from_static("a/b"));
        set_request_id(&mut placeholder, id.clone());
        assert_eq!(
            placeholder.get_all(REQUEST_ID).iter().collect::<Vec<_>>(),
            [&id]
        );
        assert_eq!(placeholder.len(), 2);
        for first in ["", "upstream"] {
            let mut twice = HeaderMap::new();
            twice.append(REQUEST_ID, HeaderValue::from_str(first).unwrap());
            twice.append(REQUEST_ID, HeaderValue::from_static("second"));
            set_request_id(&mut twice, id.clone());
            assert_eq!(twice.get_all(REQUEST_ID).iter().collect::<Vec<_>>(), [&id]);
        }
        let mut none = HeaderMap::new();
        set_request_id(&mut none, id.clone());
        assert_eq!(none[REQUEST_ID], id);
    }

    #[test]
    fn fresh_ids_are_unique_time_ordered_uuidv7s() {
        let ids: Vec<uuid::Uuid> = (0..1000)
            .map(|_| uuid::Uuid::parse_str(new_request_id(unix_ms()).to_str().unwrap()).unwrap())
            .collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(
            ids.iter()
                .all(|id| id.get_variant() == uuid::Variant::RFC4122)
        );
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let (first, last) = (
            ids[0].get_timestamp().unwrap(),
            ids[999].get_timestamp().unwrap(),
        );
        assert!(first.to_unix() <= last.to_unix());
    }

    #[test]
    fn ids_are_formatted_like_the_uuid_crate_does() {
        for _ in 0..100 {
            let id = new_request_id(unix_ms());
            let text = id.to_str().unwrap();
            let parsed = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(parsed.hyphenated().to_string(), text);
        }
        let bytes: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(
            std::str::from_utf8(&hyphenated(&bytes)).unwrap(),
            uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
        );
    }

    #[test]
    fn sane_incoming_ids_are_kept_and_others_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("trace-1"));
        assert_eq!(request_id(&headers, unix_ms), "trace-1");
        for bad in ["", "has space", &"x".repeat(129)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            assert_ne!(request_id(&headers, unix_ms), bad);
        }
    }
}
