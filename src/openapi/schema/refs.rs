//! `$ref` resolution inside one OpenAPI document: `#/components/schemas/Pet`,
//! `#/paths/~1users~1%7Bid%7D/get/...`, chains of references and cycles among them.
//!
//! A reference's fragment is percent-decoded (RFC 3986) and then read as a JSON pointer
//! (RFC 6901: `~1` is `/`, `~0` is `~`). Raw `{` and `}`, common in real documents, are
//! accepted as they are. Only same-document references are followed: one to another file
//! or URL (`other.yaml#/…`, `https://…`) is a [`RefError::External`] naming it, for the
//! caller to skip whatever uses it. Nothing here does IO.

use serde_json::Value;

/// How many references a chain may go through before it is taken for a cycle that the
/// visited set missed; real documents need two or three.
const MAX_CHAIN: usize = 64;

/// Why a reference could not be followed. Each names the reference as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// The reference points into another document, which is never fetched.
    #[error("`{reference}` points outside this document; only `#/…` references are followed")]
    External { reference: String },
    /// The reference is not a readable JSON pointer fragment.
    #[error("`{reference}` is not a JSON pointer reference: {reason}")]
    Malformed {
        reference: String,
        reason: &'static str,
    },
    /// A segment of the pointer names nothing in the document.
    #[error("`{reference}` points at nothing: `{at}` has no `{segment}`")]
    Missing {
        reference: String,
        /// The pointer (`#/…`) of the last value found.
        at: String,
        /// The segment that was not found there.
        segment: String,
    },
    /// Following the chain of references comes back to one already followed.
    #[error("`{reference}` is part of a cycle of references: {}", .chain.join(" → "))]
    Cycle {
        reference: String,
        /// The references followed, the repeated one last.
        chain: Vec<String>,
    },
}

/// The value `reference` points at in `root`, following a chain of references (a target that
/// is itself an object with a `$ref`) to its end.
pub fn resolve<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, RefError> {
    target(root, reference).map(|(_, value)| value)
}

/// Like [`resolve`], also giving the canonical form (`#/…`, percent-encoded where a URI
/// fragment needs it) of the last reference followed, which identifies the target.
pub(crate) fn target<'a>(
    root: &'a Value,
    reference: &str,
) -> Result<(String, &'a Value), RefError> {
    let mut chain: Vec<String> = Vec::new();
    let mut current = reference.to_owned();
    loop {
        let segments = segments(&current)?;
        let canonical = encode(&segments);
        if chain.contains(&canonical) || chain.len() >= MAX_CHAIN {
            chain.push(canonical);
            return Err(RefError::Cycle {
                reference: reference.to_owned(),
                chain,
            });
        }
        let value = lookup(root, &segments, &current)?;
        chain.push(canonical);
        match value.get("$ref").and_then(Value::as_str) {
            Some(next) => current = next.to_owned(),
            None => {
                let canonical = chain.pop().unwrap_or_default();
                return Ok((canonical, value));
            }
        }
    }
}

/// The value at `reference` in `root`, one step only: a target that is itself a reference is
/// returned as it is.
pub(crate) fn lookup_one<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, RefError> {
    let segments = segments(reference)?;
    lookup(root, &segments, reference)
}

/// The decoded JSON pointer segments of a same-document reference.
pub(crate) fn segments(reference: &str) -> Result<Vec<String>, RefError> {
    let malformed = |reason| RefError::Malformed {
        reference: reference.to_owned(),
        reason,
    };
    if reference.is_empty() {
        return Err(malformed("it is empty"));
    }
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(RefError::External {
            reference: reference.to_owned(),
        });
    };
    let pointer = percent_decode(fragment)
        .ok_or_else(|| malformed("its percent-encoding is broken or does not decode to UTF-8"))?;
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(malformed(
            "a plain-name fragment (an `$anchor`) is not supported; use `#/…`",
        ));
    };
    rest.split('/')
        .map(|segment| unescape(segment).ok_or_else(|| malformed("`~` must be followed by 0 or 1")))
        .collect()
}

/// The canonical reference for pointer segments: `#` then the pointer, percent-encoding every
/// character that may not appear in a URI fragment (so `{id}` becomes `%7Bid%7D`).
pub(crate) fn encode(segments: &[String]) -> String {
    let mut out = String::from("#");
    for segment in segments {
        out.push('/');
        for byte in super::escape_segment(segment).bytes() {
            if fragment_safe(byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(hex_digit(byte >> 4));
                out.push(hex_digit(byte & 0xf));
            }
        }
    }
    out
}

fn lookup<'a>(
    root: &'a Value,
    segments: &[String],
    reference: &str,
) -> Result<&'a Value, RefError> {
    let mut value = root;
    for (depth, segment) in segments.iter().enumerate() {
        let next = match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => array_index(segment).and_then(|index| items.get(index)),
            _ => None,
        };
        value = next.ok_or_else(|| RefError::Missing {
            reference: reference.to_owned(),
            at: encode(&segments[..depth]),
            segment: segment.clone(),
        })?;
    }
    Ok(value)
}

/// An array index as RFC 6901 writes it: `0`, or digits without a leading zero.
fn array_index(segment: &str) -> Option<usize> {
    let digits = segment.bytes().all(|b| b.is_ascii_digit());
    if !digits || segment.is_empty() || (segment.len() > 1 && segment.starts_with('0')) {
        return None;
    }
    segment.parse().ok()
}

fn unescape(segment: &str) -> Option<String> {
    if !segment.contains('~') {
        return Some(segment.to_owned());
    }
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0xf)])
}

/// RFC 3986 `fragment` characters: unreserved, sub-delims, `:`, `@`, `/` and `?`.
fn fragment_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&byte)
}
