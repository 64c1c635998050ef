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
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

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
    started: Instant,
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
            started: Instant::now(),
            started_unix_ms: AtomicU64::new(unix_ms()),
        }
    }

    /// Re-reads the wall clock: Unix milliseconds of the node's start, as the wall clock
    /// says now.
    pub fn resync(&self) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.started_unix_ms
            .store(unix_ms().saturating_sub(elapsed), Ordering::Relaxed);
    }

    /// Counts one store commit that started at `start`.
    pub fn record_commit(&self, ok: bool, start: Instant) {
        let moment = self.moment(start);
        self.commits
            .record(if ok { 200 } else { 500 }, moment.latency_ns, moment.second);
    }

    /// The current second of the node's clock.
    pub fn second(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.started)
            .as_secs()
    }

    /// One clock read for a request that started at `start`: its latency, the node's
    /// second (for the recent views), and the Unix milliseconds now.
    #[inline]
    pub fn moment(&self, start: Instant) -> Moment {
        let now = Instant::now();
        let latency_ns =
            u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        let elapsed = now.saturating_duration_since(self.started);
        Moment {
            latency_ns,
            second: elapsed.as_secs(),
            unix_ms: self.unix_ms_after(elapsed),
        }
    }

    /// Unix milliseconds at `instant`, by the node's clock.
    #[inline]
    pub fn unix_ms_at(&self, instant: Instant) -> u64 {
        self.unix_ms_after(instant.saturating_duration_since(self.started))
    }

    /// Unix milliseconds `elapsed` after the node's start.
    #[inline]
    fn unix_ms_after(&self, elapsed: std::time::Duration) -> u64 {
        self.started_unix_ms.load(Ordering::Relaxed) + elapsed.as_millis() as u64
    }
}

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
}

/// The request id for a request: the caller's if it is 1–128 visible ASCII characters,
/// else a fresh UUIDv7 made at `unix_ms` (called only then).
pub fn request_id(headers: &HeaderMap, unix_ms: impl FnOnce() -> u64) -> HeaderValue {
    if let Some(given) = headers.get(&REQUEST_ID) {
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
    // SAFETY: not a memory-safety matter: `from_maybe_shared_unchecked` skips the check that
    // every byte is a visible ASCII character, and `hyphenated` writes only `0-9a-f` and `-`.
    // Done on every request without an id of its own, so the check is worth skipping.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes::Bytes::copy_from_slice(&text)) }
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
