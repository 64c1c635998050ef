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
    /// When the answer was ready, RFC 3339.
    pub time: String,
    /// Unix milliseconds of the same instant, for filtering.
    #[serde(skip)]
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
    pub method: String,
    /// The path inside the project, `/` for its root.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(flatten)]
    pub body: Captured,
}

#[derive(Debug, Serialize)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(flatten)]
    pub body: Captured,
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

/// Header pairs as the journal keeps them: names lowercase, secrets redacted, values that
/// are not text shown lossily.
pub fn headers(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let value = if SECRET_HEADERS.contains(&name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.to_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(journal: &Journal) -> Entry {
        Entry {
            seq: journal.next_seq(),
            time: String::new(),
            unix_ms: 0,
            request_id: String::new(),
            request: Request {
                method: "GET".into(),
                path: "/".into(),
                query: None,
                headers: Vec::new(),
                body: Captured::default(),
            },
            response: Response {
                status: 200,
                headers: Vec::new(),
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
        let kept = headers(&map);
        for (name, value) in &kept {
            if name == "accept" {
                assert_eq!(value, "*/*");
            } else {
                assert_eq!(value, REDACTED, "{name}");
            }
        }
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
