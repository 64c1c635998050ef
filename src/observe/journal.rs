//! The request journal: the last requests of each project, as they arrived and as they were
//! answered, for "what did my client actually send, and what did it get?".
//!
//! A [`Journal`] is a fixed ring of slots, one per remembered request; a request takes the
//! next sequence number with one atomic add and swaps its entry into slot `seq % capacity`,
//! so recording takes no lock and memory is bounded by the capacity whatever the traffic.
//! Reading copies the slots and orders them by sequence number. Like stats, a project's
//! journal is handed from one revision to the next.
//!
//! An entry keeps the request head (credentials redacted: the headers of
//! [`SECRET_HEADERS`], and secret-looking query values as in the access log), the first
//! bytes of its body (up to the node's capture size, marked when cut), and the answer's
//! status, headers, first body bytes and latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use once_cell::race::OnceBox;
use serde::Serialize;

/// Request headers whose values are never kept: credentials.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// What replaces a secret header's value.
pub const REDACTED: &str = "[redacted]";

/// One remembered request.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// Position in the project's journal, counting from 1 since the node started (or the
    /// journal was cleared).
    pub seq: u64,
    /// When the answer was ready, Unix milliseconds; shown as RFC 3339 `time`.
    #[serde(rename = "time", serialize_with = "rfc3339")]
    pub unix_ms: u64,
    pub request_id: String,
    pub request: Request,
    pub response: Response,
    /// The id of the endpoint that answered; absent for 404, 405 and 503 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Request {
    #[serde(serialize_with = "method_text")]
    pub method: http::Method,
    /// The path inside the project, `/` for its root.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub headers: Headers,
    #[serde(flatten)]
    pub body: Captured,
}

#[derive(Debug, Serialize)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    #[serde(flatten)]
    pub body: Captured,
}

fn rfc3339<S: serde::Serializer>(unix_ms: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let time = chrono::DateTime::from_timestamp_millis(i64::try_from(*unix_ms).unwrap_or(0))
        .unwrap_or_default();
    serializer.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn method_text<S: serde::Serializer>(
    method: &http::Method,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(method.as_str())
}

/// Header pairs in one buffer (`name NUL value NUL …`: a header can hold no NUL), so that
/// keeping a request's headers is one allocation; shown as `[name, value]` pairs. Names
/// are lowercase; the values of [`SECRET_HEADERS`] are kept as [`REDACTED`].
#[derive(Debug, Default)]
pub struct Headers(Vec<u8>);

impl Headers {
    pub fn of(map: &http::HeaderMap) -> Headers {
        let size: usize = map
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum();
        let mut buffer = Vec::with_capacity(size);
        for (name, value) in map {
            let name = name.as_str();
            buffer.extend_from_slice(name.as_bytes());
            buffer.push(0);
            if SECRET_HEADERS.contains(&name) {
                buffer.extend_from_slice(REDACTED.as_bytes());
            } else {
                buffer.extend_from_slice(value.as_bytes());
            }
            buffer.push(0);
        }
        Headers(buffer)
    }

    /// `(name, value)` pairs, values that are not UTF-8 shown lossily.
    pub fn pairs(
        &self,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        let mut parts = self.0.split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = parts.next().filter(|name| !name.is_empty())?;
            let value = parts.next()?;
            Some((
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value),
            ))
        })
    }
}

impl Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.pairs().map(|(name, value)| [name, value]))
    }
}

/// The start of a body: text when it is UTF-8, base64 otherwise.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Bytes,
    /// The body's whole length, when known.
    pub length: Option<u64>,
    /// Whether `bytes` stops before the body's end.
    pub truncated: bool,
}

impl Serialize for Captured {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => map.serialize_entry("body", text)?,
            Err(_) => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
                map.serialize_entry("body_base64", &encoded)?;
            }
        }
        if let Some(length) = self.length {
            map.serialize_entry("body_length", &length)?;
        }
        map.serialize_entry("body_truncated", &self.truncated)?;
        map.end()
    }
}

type Slots = Box<[ArcSwapOption<Entry>]>;

/// A project's ring of recent requests. The ring itself is allocated by the first entry,
/// with the node's capacity then: a project nobody calls costs two words.
#[derive(Default)]
pub struct Journal {
    slots: OnceBox<Slots>,
    next: AtomicU64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("capacity", &self.capacity())
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl Journal {
    pub fn new() -> Journal {
        Journal::default()
    }

    /// Entries kept at most; 0 until the first entry.
    pub fn capacity(&self) -> usize {
        self.slots.get().map_or(0, |slots| slots.len())
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Remembers `entry` (numbered by [`Journal::next_seq`]), forgetting the oldest beyond
    /// `capacity` (the ring's size is fixed by the first entry).
    pub fn push(&self, entry: Entry, capacity: usize) {
        let slots = self.slots.get_or_init(|| {
            Box::new(
                (0..capacity.max(1))
                    .map(|_| ArcSwapOption::empty())
                    .collect(),
            )
        });
        let slot = (entry.seq % slots.len() as u64) as usize;
        if let Some(slot) = slots.get(slot) {
            // A slower writer of an older entry must not overwrite a newer one.
            let newer = slot
                .load()
                .as_ref()
                .is_some_and(|current| current.seq > entry.seq);
            if !newer {
                slot.store(Some(Arc::new(entry)));
            }
        }
    }

    /// The remembered entries, oldest first.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        let Some(slots) = self.slots.get() else {
            return Vec::new();
        };
        let mut entries: Vec<Arc<Entry>> = slots.iter().filter_map(|s| s.load_full()).collect();
        entries.sort_by_key(|entry| entry.seq);
        entries
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        if let Some(slots) = self.slots.get() {
            for slot in slots.iter() {
                slot.store(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(journal: &Journal) -> Entry {
        Entry {
            seq: journal.next_seq(),
            unix_ms: 0,
            request_id: String::new(),
            request: Request {
                method: http::Method::GET,
                path: "/".into(),
                query: None,
                headers: Headers::default(),
                body: Captured::default(),
            },
            response: Response {
                status: 200,
                headers: Headers::default(),
                body: Captured::default(),
            },
            endpoint: None,
            latency_ms: 0.0,
        }
    }

    #[test]
    fn only_the_last_capacity_entries_remain_in_order() {
        let journal = Journal::new();
        for _ in 0..25 {
            journal.push(entry(&journal), 10);
        }
        let seqs: Vec<u64> = journal.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (16..=25).collect::<Vec<_>>());
        journal.clear();
        assert!(journal.entries().is_empty());
    }

    #[test]
    fn an_older_entry_never_overwrites_a_newer_one() {
        let journal = Journal::new();
        let old = entry(&journal); // seq 1
        let _skipped = entry(&journal); // seq 2
        let newer = entry(&journal); // seq 3, same slot as 1
        journal.push(newer, 2);
        journal.push(old, 2);
        let seqs: Vec<u64> = journal.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3]);
    }

    #[test]
    fn credentials_are_redacted() {
        let mut map = http::HeaderMap::new();
        map.insert("authorization", "Bearer abc".parse().unwrap());
        map.insert("cookie", "s=1".parse().unwrap());
        map.insert("x-api-key", "k".parse().unwrap());
        map.insert("accept", "*/*".parse().unwrap());
        let kept = Headers::of(&map);
        assert_eq!(kept.pairs().count(), 4);
        for (name, value) in kept.pairs() {
            if name == "accept" {
                assert_eq!(value, "*/*");
            } else {
                assert_eq!(value, REDACTED, "{name}");
            }
        }
        let json = serde_json::to_value(&kept).unwrap();
        assert!(
            json.as_array()
                .unwrap()
                .contains(&serde_json::json!(["accept", "*/*"]))
        );
        assert_eq!(
            serde_json::to_value(Headers::default()).unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn bodies_show_as_text_or_base64() {
        let text = Captured {
            bytes: Bytes::from_static(b"hello"),
            length: Some(5),
            truncated: false,
        };
        let json = serde_json::to_value(&text).unwrap();
        assert_eq!(json["body"], "hello");
        let binary = Captured {
            bytes: Bytes::from_static(&[0xff, 0x00]),
            length: Some(10),
            truncated: true,
        };
        let json = serde_json::to_value(&binary).unwrap();
        assert_eq!(json["body_base64"], "/wA=");
        assert_eq!(json["body_truncated"], true);
    }
}
