//! Observing requests: the request id, and the traffic stats ([`stats`], counted by the
//! pipeline's record stage; [`Telemetry`] holds the instance's). Logs, metrics and the
//! journal join here.
//!
//! Every response carries `x-request-id`. A sane incoming id is kept (so a trace spans
//! services); otherwise a UUIDv7 is made. Making one is on the hot path, so it takes no lock
//! and no system call beyond the vDSO clock: the random bits come from a per-thread
//! xoshiro generator seeded from the OS. Ids must be unique, not secret, so that is enough.

pub mod histogram;
pub mod stats;

use std::cell::RefCell;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// What the node observes of its own traffic: the instance's stats, and the clock that
/// stats use.
pub struct Telemetry {
    pub instance: stats::Stats,
    started: Instant,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry {
            instance: stats::Stats::with_recent(),
            started: Instant::now(),
        }
    }

    /// Nanoseconds from `start` to now, and the current second of the node's clock (for
    /// the recent views). One clock read.
    #[inline]
    pub fn since(&self, start: Instant) -> (u64, u64) {
        let now = Instant::now();
        let latency =
            u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        (latency, self.second_at(now))
    }

    /// The current second of the node's clock.
    pub fn second(&self) -> u64 {
        self.second_at(Instant::now())
    }

    fn second_at(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs()
    }
}

/// Whether requests to `path` count in the stats: all but those to the observability
/// endpoints themselves, so that watching a node does not change what it reports.
pub fn counted(path: &str) -> bool {
    !matches!(path, "/stats" | "/metrics" | "/health" | "/ready")
}

/// The header that carries the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id kept as is.
const MAX_INCOMING: usize = 128;

thread_local! {
    static RANDOM: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
}

/// The request id for a request: the caller's if it is 1–128 visible ASCII characters,
/// else a fresh UUIDv7.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(given) = headers.get(&REQUEST_ID) {
        let bytes = given.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_INCOMING
            && bytes.iter().all(u8::is_ascii_graphic)
        {
            return given.clone();
        }
    }
    new_request_id()
}

/// A fresh UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.
pub fn new_request_id() -> HeaderValue {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    // Two words from the generator, not ten byte-sized draws.
    let (high, low) = RANDOM.with(|rng| {
        let mut rng = rng.borrow_mut();
        (rng.next_u64(), rng.next_u64())
    });
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&high.to_le_bytes());
    random[8..].copy_from_slice(&low.to_le_bytes()[..2]);
    let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_unique_time_ordered_uuidv7s() {
        let ids: Vec<uuid::Uuid> = (0..1000)
            .map(|_| uuid::Uuid::parse_str(new_request_id().to_str().unwrap()).unwrap())
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
    fn sane_incoming_ids_are_kept_and_others_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("trace-1"));
        assert_eq!(request_id(&headers), "trace-1");
        for bad in ["", "has space", &"x".repeat(129)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            assert_ne!(request_id(&headers), bad);
        }
    }
}
