//! The request journal: the last requests of each project, as they arrived and as they were
//! answered, for "what did my client actually send, and what did it get?".
//!
//! A [`Journal`] is a fixed ring of slots, one per remembered request; a request takes the
//! next sequence number with one atomic add and swaps its entry into slot `seq % capacity`,
//! so recording takes no lock and memory is bounded by the capacity whatever the traffic.
//! An entry replaced in its slot is freed at once unless a reader is walking the ring, in
//! which case it is freed when the last reader leaves (see [`Journal`]): a request pays one
//! pointer swap and one load, and takes no lock. Like stats, a project's journal is handed
//! from one revision to the next.
//!
//! An entry keeps the request head, the first bytes of its body (up to the node's capture
//! size, marked when cut), and the answer's status, headers, first body bytes and latency.
//! Recording is on the hot path, so it copies bytes and nothing more: the text of an entry
//! (request id, path, query, both header lists, endpoint id) is one buffer, bodies are
//! shared, not copied, and so are the answer's headers when they are its handler's fixed
//! ones (a mock's template, which is immutable). Credentials are redacted when an entry is
//! read, never shown: the values of [`SECRET_HEADERS`] and of every header whose name looks
//! secret (`logs::is_secret_name`: a project's own API-key header), and secret-looking query
//! values as in the access log.

use std::borrow::Cow;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use once_cell::race::OnceBox;
use serde::Serialize;

/// Request headers whose values are never shown: credentials.
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
#[derive(Debug)]
pub struct Entry {
    /// Position in the project's journal, counting from 1 since the node started (or the
    /// journal was cleared).
    pub seq: u64,
    /// When the answer was ready, Unix milliseconds; shown as RFC 3339 `time`.
    pub unix_ms: u64,
    pub latency_ns: u64,
    pub method: http::Method,
    pub status: u16,
    pub request_body: Captured,
    pub response_body: Captured,
    /// Request id, path, query, request headers, response headers, endpoint id, one after
    /// the other; `ends` says where each stops. Not shrunk to fit: a reallocation costs
    /// more than the few spare bytes.
    text: Vec<u8>,
    ends: [u32; 6],
    has_query: bool,
    has_endpoint: bool,
    /// The answer's headers when they were its handler's fixed ones (a mock's): shared,
    /// not copied into `text`.
    fixed_headers: Option<Arc<http::HeaderMap>>,
    /// The verified caller, shared.
    subject: Option<Arc<str>>,
    /// How the answer differs from the endpoint's documented responses, when they are
    /// checked (development mode) and it does.
    response_invalid: Option<Box<[crate::error::FieldError]>>,
}

/// What a new [`Entry`] is made of, borrowed from the request and its answer.
pub struct Record<'a> {
    pub seq: u64,
    pub unix_ms: u64,
    pub latency_ns: u64,
    pub request_id: &'a [u8],
    pub method: &'a http::Method,
    /// The path inside the project, `/` for its root.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub request_headers: &'a http::HeaderMap,
    pub request_body: Captured,
    pub status: u16,
    pub response_headers: &'a http::HeaderMap,
    /// `response_headers` are these, a handler's fixed headers: keep a reference to them
    /// instead of a copy.
    pub fixed_response_headers: Option<&'a Arc<http::HeaderMap>>,
    pub response_body: Captured,
    /// The id of the endpoint that answered; `None` for 404, 405 and 503 answers.
    pub endpoint: Option<&'a str>,
    /// The caller the project's auth policy verified (an API key's name, a token's
    /// subject); `None` without one.
    pub subject: Option<&'a Arc<str>>,
    /// How the answer differs from the endpoint's documented responses, if it was checked
    /// and does.
    pub response_invalid: Option<Box<[crate::error::FieldError]>>,
}

/// Room reserved per header before copying (headers are walked once: walking a `HeaderMap`
/// costs more than copying a short header); longer ones grow the buffer.
const HEADER_ROOM: usize = 48;

/// Appends `headers` as `name NUL value NUL …`, but `skip`.
fn put_headers(text: &mut Vec<u8>, headers: &http::HeaderMap, skip: Option<&http::HeaderName>) {
    for (name, value) in headers {
        if skip == Some(name) {
            continue;
        }
        text.extend_from_slice(name.as_str().as_bytes());
        text.push(0);
        text.extend_from_slice(value.as_bytes());
        text.push(0);
    }
}

impl Entry {
    pub fn new(record: Record<'_>) -> Entry {
        let mut entry = Entry {
            seq: 0,
            unix_ms: 0,
            latency_ns: 0,
            method: http::Method::GET,
            status: 0,
            request_body: Captured::default(),
            response_body: Captured::default(),
            text: Vec::new(),
            ends: [0; 6],
            has_query: false,
            has_endpoint: false,
            fixed_headers: None,
            subject: None,
            response_invalid: None,
        };
        entry.fill(record);
        entry
    }

    /// Makes this entry say `record`, reusing its text buffer.
    fn fill(&mut self, record: Record<'_>) {
        let query = record.query.unwrap_or("");
        let endpoint = record.endpoint.unwrap_or("");
        let size = record.request_id.len()
            + record.path.len()
            + query.len()
            + HEADER_ROOM * record.request_headers.len()
            + match record.fixed_response_headers {
                Some(_) => 0,
                None => HEADER_ROOM * record.response_headers.len(),
            }
            + endpoint.len();
        let text = &mut self.text;
        if text.capacity() > 2 * size {
            // A recycled buffer much larger than needed: ring memory stays near what the
            // entries hold.
            *text = Vec::with_capacity(size);
        } else {
            text.clear();
            text.reserve(size);
        }
        let ends = &mut self.ends;
        // An entry is at most a request head plus an answer's headers, far below 4 GiB.
        let mut end = |text: &Vec<u8>, i: usize| ends[i] = text.len() as u32;
        text.extend_from_slice(record.request_id);
        end(text, 0);
        text.extend_from_slice(record.path.as_bytes());
        end(text, 1);
        text.extend_from_slice(query.as_bytes());
        end(text, 2);
        put_headers(text, record.request_headers, None);
        end(text, 3);
        // The answer's `x-request-id` is the entry's request id, shown once; handlers that
        // pre-build their headers hold only a placeholder for it at this point.
        match record.fixed_response_headers {
            Some(fixed) => {
                if !self
                    .fixed_headers
                    .as_ref()
                    .is_some_and(|kept| Arc::ptr_eq(kept, fixed))
                {
                    self.fixed_headers = Some(fixed.clone());
                }
            }
            None => {
                self.fixed_headers = None;
                put_headers(text, record.response_headers, Some(&super::REQUEST_ID));
            }
        }
        end(text, 4);
        text.extend_from_slice(endpoint.as_bytes());
        end(text, 5);
        self.seq = record.seq;
        self.unix_ms = record.unix_ms;
        self.latency_ns = record.latency_ns;
        if self.method != *record.method {
            self.method = record.method.clone();
        }
        self.status = record.status;
        self.request_body = record.request_body;
        self.response_body = record.response_body;
        self.has_query = record.query.is_some();
        self.has_endpoint = record.endpoint.is_some();
        self.subject = record.subject.cloned();
        self.response_invalid = record.response_invalid;
    }

    fn part(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    fn text_part(&self, i: usize) -> &str {
        // Ids, paths, queries and endpoint ids are ASCII or UTF-8 when recorded.
        std::str::from_utf8(self.part(i)).unwrap_or_default()
    }

    pub fn request_id(&self) -> &str {
        self.text_part(0)
    }

    /// The path inside the project, `/` for its root.
    pub fn path(&self) -> &str {
        self.text_part(1)
    }

    /// The query string as it arrived (not redacted).
    pub fn query(&self) -> Option<&str> {
        self.has_query.then(|| self.text_part(2))
    }

    /// The request's headers, credentials redacted.
    pub fn request_headers(&self) -> Headers<'_> {
        Headers::Copied(self.part(3))
    }

    /// The answer's headers (as the handler gave them, without `x-request-id`: that is
    /// [`Entry::request_id`]), credentials redacted.
    pub fn response_headers(&self) -> Headers<'_> {
        match &self.fixed_headers {
            Some(fixed) => Headers::Shared(fixed),
            None => Headers::Copied(self.part(4)),
        }
    }

    /// The id of the endpoint that answered; `None` for 404, 405 and 503 answers.
    pub fn endpoint(&self) -> Option<&str> {
        self.has_endpoint.then(|| self.text_part(5))
    }

    /// The caller the project's auth policy verified, if one was.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// How the answer differs from the endpoint's documented responses, if it was checked
    /// and does.
    pub fn response_invalid(&self) -> Option<&[crate::error::FieldError]> {
        self.response_invalid.as_deref()
    }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            seq: u64,
            time: String,
            request_id: &'a str,
            request: RequestView<'a>,
            response: ResponseView<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            endpoint: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            subject: Option<&'a str>,
            latency_ms: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            response_invalid: Option<&'a [crate::error::FieldError]>,
        }
        #[derive(Serialize)]
        struct RequestView<'a> {
            method: &'a str,
            path: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            query: Option<Cow<'a, str>>,
            headers: Headers<'a>,
            #[serde(flatten)]
            body: &'a Captured,
        }
        #[derive(Serialize)]
        struct ResponseView<'a> {
            status: u16,
            headers: Headers<'a>,
            #[serde(flatten)]
            body: &'a Captured,
        }
        let time =
            chrono::DateTime::from_timestamp_millis(i64::try_from(self.unix_ms).unwrap_or(0))
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        View {
            seq: self.seq,
            time,
            request_id: self.request_id(),
            request: RequestView {
                method: self.method.as_str(),
                path: self.path(),
                query: self.query().map(super::logs::redact_query),
                headers: self.request_headers(),
                body: &self.request_body,
            },
            response: ResponseView {
                status: self.status,
                headers: self.response_headers(),
                body: &self.response_body,
            },
            endpoint: self.endpoint(),
            subject: self.subject(),
            latency_ms: self.latency_ns as f64 / 1e6,
            response_invalid: self.response_invalid(),
        }
        .serialize(serializer)
    }
}

/// Header pairs as recorded: copied (`name NUL value NUL …`: a header can hold no NUL), or
/// a handler's fixed headers, shared (their `x-request-id` placeholder left out). Shown as
/// `[name, value]` pairs. Names are lowercase; the values of [`SECRET_HEADERS`] show as
/// [`REDACTED`].
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    Copied(&'a [u8]),
    Shared(&'a http::HeaderMap),
}

impl<'a> Headers<'a> {
    /// `(name, value)` pairs, credentials redacted, values that are not UTF-8 shown lossily.
    pub fn pairs(self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
        let (copied, shared) = match self {
            Headers::Copied(text) => (Some(text), None),
            Headers::Shared(map) => (None, Some(map)),
        };
        let copied = copied.into_iter().flat_map(|text| {
            let mut parts = text.split(|&b| b == 0);
            std::iter::from_fn(move || {
                let name = parts.next().filter(|name| !name.is_empty())?;
                let value = parts.next()?;
                Some((String::from_utf8_lossy(name), value))
            })
        });
        let shared = shared.into_iter().flat_map(|map| {
            map.iter()
                .filter(|(name, _)| **name != super::REQUEST_ID)
                .map(|(name, value)| (Cow::Borrowed(name.as_str()), value.as_bytes()))
        });
        copied.chain(shared).map(|(name, value)| {
            let value =
                if SECRET_HEADERS.contains(&name.as_ref()) || super::logs::is_secret_name(&name) {
                    Cow::Borrowed(REDACTED)
                } else {
                    String::from_utf8_lossy(value)
                };
            (name, value)
        })
    }
}

impl Serialize for Headers<'_> {
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

type Slots = Box<[AtomicPtr<Entry>]>;

/// Text buffers larger than this are freed rather than recycled, so that one request with a
/// huge head does not leave every later entry of its thread that large.
const RECYCLE_MAX: usize = 2 * 1024;

thread_local! {
    /// One entry this thread took out of a ring, kept to write the next one into.
    static SPARE: std::cell::Cell<Option<Box<Entry>>> = const { std::cell::Cell::new(None) };
}

/// Keeps `entry` as this thread's spare, its bodies let go (its fixed headers are kept: the
/// next entry is likely the same mock's); frees it if its text buffer is too large to keep.
fn recycle(mut entry: Box<Entry>) {
    if entry.text.capacity() > RECYCLE_MAX {
        return;
    }
    entry.request_body = Captured::default();
    entry.response_body = Captured::default();
    SPARE.set(Some(entry));
}

/// A project's ring of recent requests. The ring itself is allocated by the first entry,
/// with the node's capacity then: a project nobody calls costs a few words.
///
/// Slots hold owned `Box<Entry>` pointers. A writer takes ownership of what it swaps out of
/// a slot; it frees that at once when no reader is walking the ring (`readers` is 0), and
/// otherwise parks it in `retired`, freed once the readers are gone. Every access to
/// `readers` and to the slots is `SeqCst`, which is what makes "no reader" safe: a reader
/// that counted itself after a writer looked at `readers` loads the slots after that
/// writer's swap, so it cannot see what the writer freed. On x86 these are the plain loads
/// and locked swaps the writer needs anyway.
#[derive(Default)]
pub struct Journal {
    slots: OnceBox<Slots>,
    next: AtomicU64,
    /// Readers walking the ring now.
    readers: AtomicUsize,
    /// Entries replaced while a reader was walking the ring. Touched only while a reader
    /// is (a `GET …/journal` in progress), never by a request otherwise.
    #[expect(
        clippy::vec_box,
        reason = "readers point into the boxes: they must not move"
    )]
    retired: Mutex<Vec<Box<Entry>>>,
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

    /// Remembers a request (numbered by [`Journal::next_seq`]), forgetting the oldest beyond
    /// `capacity` (the ring's size is fixed by the first entry). The entry is written into
    /// one this thread recycled when it can be: no allocation in the steady state.
    pub fn record(&self, record: Record<'_>, capacity: usize) {
        let entry = match SPARE.take() {
            Some(mut spare) => {
                spare.fill(record);
                spare
            }
            None => Box::new(Entry::new(record)),
        };
        self.push_boxed(entry, capacity);
    }

    /// Remembers `entry` (numbered by [`Journal::next_seq`]), as [`Journal::record`].
    #[cfg(test)]
    pub fn push(&self, entry: Entry, capacity: usize) {
        self.push_boxed(Box::new(entry), capacity);
    }

    fn push_boxed(&self, entry: Box<Entry>, capacity: usize) {
        let slots = self.slots.get_or_init(|| {
            Box::new(
                (0..capacity.max(1))
                    .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                    .collect(),
            )
        });
        let Some(slot) = slots.get((entry.seq % slots.len() as u64) as usize) else {
            return;
        };
        // Swap ours in and own what comes out. A slower writer of an older entry must not
        // leave it over a newer one: when what came out is newer than what went in, put
        // it back and take whatever comes out then. Each round puts a newer entry in, so
        // this ends, with the newest seen in the slot and the one left in hand the oldest.
        let mut held = Box::into_raw(entry);
        loop {
            let out = slot.swap(held, Ordering::SeqCst);
            // SAFETY: `held` and `out` are owned here: `held` came from `Box::into_raw` or
            // from a swap, and a pointer is only ever freed by whoever swapped it out.
            let newer = !out.is_null() && unsafe { (*out).seq > (*held).seq };
            if !newer {
                if !out.is_null() {
                    // SAFETY: swapped out above, so owned, and unreachable from the ring.
                    self.retire(unsafe { Box::from_raw(out) });
                }
                return;
            }
            held = out;
        }
    }

    /// Frees (or recycles) an entry no longer in the ring, or parks it while a reader may
    /// still see it.
    fn retire(&self, entry: Box<Entry>) {
        if self.readers.load(Ordering::SeqCst) == 0 {
            recycle(entry);
            return;
        }
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        retired.push(entry);
        Self::reclaim(&self.readers, &mut retired);
    }

    /// Frees the parked entries when no reader is walking the ring. Called with `retired`
    /// locked: whatever is parked was unlinked before, and a reader arriving now cannot
    /// load it.
    #[expect(
        clippy::vec_box,
        reason = "readers point into the boxes: they must not move"
    )]
    fn reclaim(readers: &AtomicUsize, retired: &mut Vec<Box<Entry>>) {
        if readers.load(Ordering::SeqCst) == 0 {
            retired.clear();
        }
    }

    /// Calls `read` with the remembered entries, oldest first. The entries stay valid while
    /// `read` runs (replaced ones are parked until it returns: keep it short and never
    /// await inside).
    pub fn read<R>(&self, read: impl FnOnce(&[&Entry]) -> R) -> R {
        /// Counts a reader out, even if `read` panics, and frees what was parked for it.
        struct Reading<'j>(&'j Journal);
        impl Drop for Reading<'_> {
            fn drop(&mut self) {
                if self.0.readers.fetch_sub(1, Ordering::SeqCst) == 1 {
                    let journal = self.0;
                    let mut retired = journal.retired.lock().unwrap_or_else(|e| e.into_inner());
                    Journal::reclaim(&journal.readers, &mut retired);
                }
            }
        }
        self.readers.fetch_add(1, Ordering::SeqCst);
        let _reading = Reading(self);
        let mut entries: Vec<&Entry> = match self.slots.get() {
            // SAFETY: counted in `readers` above, so nothing loaded now is freed before
            // `_reading` is dropped, after the last use of these references.
            Some(slots) => slots
                .iter()
                .filter_map(|slot| unsafe { slot.load(Ordering::SeqCst).as_ref() })
                .collect(),
            None => Vec::new(),
        };
        entries.sort_by_key(|entry| entry.seq);
        read(&entries)
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        if let Some(slots) = self.slots.get() {
            for slot in slots.iter() {
                let out = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
                if !out.is_null() {
                    // SAFETY: swapped out, so owned; see `push`.
                    self.retire(unsafe { Box::from_raw(out) });
                }
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.get() {
            for slot in slots.iter() {
                let entry = slot.swap(std::ptr::null_mut(), Ordering::Relaxed);
                if !entry.is_null() {
                    // SAFETY: `&mut self`: no reader or writer can hold this journal any
                    // more, and the ring owned the entry.
                    drop(unsafe { Box::from_raw(entry) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(
        seq: u64,
        request: &'a http::HeaderMap,
        response: &'a http::HeaderMap,
    ) -> Record<'a> {
        Record {
            seq,
            unix_ms: 0,
            latency_ns: 0,
            request_id: b"id-1",
            method: &http::Method::GET,
            path: "/",
            query: None,
            request_headers: request,
            request_body: Captured::default(),
            status: 200,
            response_headers: response,
            fixed_response_headers: None,
            response_body: Captured::default(),
            endpoint: None,
            subject: None,
            response_invalid: None,
        }
    }

    fn entry(journal: &Journal) -> Entry {
        let empty = http::HeaderMap::new();
        Entry::new(record(journal.next_seq(), &empty, &empty))
    }

    fn seqs(journal: &Journal) -> Vec<u64> {
        journal.read(|entries| entries.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn only_the_last_capacity_entries_remain_in_order() {
        let journal = Journal::new();
        for _ in 0..25 {
            journal.push(entry(&journal), 10);
        }
        assert_eq!(seqs(&journal), (16..=25).collect::<Vec<_>>());
        journal.clear();
        assert!(seqs(&journal).is_empty());
    }

    #[test]
    fn a_recycled_entry_keeps_nothing_of_its_last_request() {
        let journal = Journal::new();
        let mut headers = http::HeaderMap::new();
        headers.insert("accept", "*/*".parse().unwrap());
        let full = |seq| Record {
            query: Some("a=1"),
            endpoint: Some("ep"),
            method: &http::Method::POST,
            request_body: Captured {
                bytes: Bytes::from_static(b"in"),
                length: Some(2),
                truncated: false,
            },
            ..record(seq, &headers, &headers)
        };
        let empty = http::HeaderMap::new();
        // Capacity 1: each entry replaces the last, which this thread then recycles.
        for seq in 1..=3 {
            journal.record(full(seq), 1);
        }
        journal.record(record(4, &empty, &empty), 1);
        journal.record(record(5, &empty, &empty), 1);
        journal.read(|entries| {
            let [entry] = entries else {
                panic!("one entry")
            };
            assert_eq!(entry.seq, 5);
            assert_eq!((entry.query(), entry.endpoint()), (None, None));
            assert_eq!(entry.method, http::Method::GET);
            assert_eq!(entry.request_headers().pairs().count(), 0);
            assert!(entry.request_body.bytes.is_empty());
            assert_eq!(entry.request_id(), "id-1");
        });
    }

    #[test]
    fn an_older_entry_never_overwrites_a_newer_one() {
        let journal = Journal::new();
        let old = entry(&journal); // seq 1
        let _skipped = entry(&journal); // seq 2
        let newer = entry(&journal); // seq 3, same slot as 1
        journal.push(newer, 2);
        journal.push(old, 2);
        assert_eq!(seqs(&journal), vec![3]);
    }

    #[test]
    fn writers_on_many_threads_keep_the_newest_entries() {
        let journal = std::sync::Arc::new(Journal::new());
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let journal = journal.clone();
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        journal.push(entry(&journal), 64);
                        // Entries replaced while this reader walks the ring stay whole.
                        journal.read(|entries| {
                            assert!(entries.len() <= 64);
                            for entry in entries {
                                assert_eq!((entry.request_id(), entry.path()), ("id-1", "/"));
                            }
                        });
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(seqs(&journal), (8_000 - 63..=8_000).collect::<Vec<_>>());
    }

    #[test]
    fn every_part_reads_back_and_credentials_are_redacted() {
        let mut request = http::HeaderMap::new();
        request.insert("authorization", "Bearer abc".parse().unwrap());
        request.insert("cookie", "s=1".parse().unwrap());
        request.insert("x-api-key", "k".parse().unwrap());
        request.insert("accept", "*/*".parse().unwrap());
        let mut response = http::HeaderMap::new();
        response.insert("content-type", "text/plain".parse().unwrap());
        response.insert("set-cookie", "s=2".parse().unwrap());
        let entry = Entry::new(Record {
            query: Some("a=1&token=secret"),
            path: "/items/7",
            endpoint: Some("ep_1"),
            ..record(1, &request, &response)
        });
        assert_eq!(entry.request_id(), "id-1");
        assert_eq!(entry.path(), "/items/7");
        assert_eq!(entry.query(), Some("a=1&token=secret"));
        assert_eq!(entry.endpoint(), Some("ep_1"));
        assert_eq!(entry.request_headers().pairs().count(), 4);
        for (name, value) in entry.request_headers().pairs() {
            if name == "accept" {
                assert_eq!(value, "*/*");
            } else {
                assert_eq!(value, REDACTED, "{name}");
            }
        }
        let json = serde_json::to_value(&entry).unwrap();
        let text = json.to_string();
        for secret in ["Bearer abc", "s=1", "s=2", "secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(json["request"]["path"], "/items/7");
        assert_eq!(json["endpoint"], "ep_1");
        assert_eq!(
            json["response"]["headers"][0],
            serde_json::json!(["content-type", "text/plain"])
        );
        let empty = http::HeaderMap::new();
        let bare = Entry::new(record(2, &empty, &empty));
        assert_eq!(bare.query(), None);
        assert_eq!(bare.endpoint(), None);
        let json = serde_json::to_value(&bare).unwrap();
        assert_eq!(json["request"]["headers"], serde_json::json!([]));
        assert!(json.get("endpoint").is_none());
        assert!(json["request"].get("query").is_none());
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
