//! The schema toolkit the OpenAPI features stand on: pure functions on `serde_json::Value`,
//! no IO, no HTTP, no knowledge of endpoints or projects.
//!
//! - `refs` follows `#/…` references inside one document (escapes, percent-encoding, chains,
//!   cycles) and names what is wrong with one it cannot follow;
//! - `normalize` turns an OpenAPI 3.0 or 3.1 Schema Object into JSON Schema 2020-12 for the
//!   `jsonschema` crate, dropping what that crate cannot enforce (a pattern its regex engine
//!   rejects, a reference it cannot follow) and saying so, and `compile` builds a validator;
//! - `sample` makes a deterministic example value that the normalised schema accepts.
//!
//! Real-world documents are full of mistakes, so nothing here fails on a bad schema: what
//! cannot be honoured is left out and reported as a [`Note`].

pub mod normalize;
mod pattern;
pub mod refs;
pub mod sample;
pub(crate) mod walk;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use normalize::{CompileError, Normalized, compile, normalize, normalize_document};
pub use refs::{RefError, resolve};
pub use sample::{Sample, sample};

use serde_json::Value;

/// The OpenAPI version a document follows; it decides how a few keywords are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// OpenAPI 3.0.x: its own JSON Schema dialect (`nullable`, boolean `exclusiveMinimum`,
    /// `example`, `$ref` siblings ignored).
    V3_0,
    /// OpenAPI 3.1.x: JSON Schema 2020-12 (`$ref` siblings apply).
    V3_1,
}

impl Version {
    /// The version named by a document's `openapi` field (`"3.0.3"`, `"3.1.0"`), if it is one
    /// of these.
    pub fn of(root: &Value) -> Option<Version> {
        let text = root.get("openapi")?.as_str()?;
        if text == "3.0" || text.starts_with("3.0.") {
            Some(Version::V3_0)
        } else if text == "3.1" || text.starts_with("3.1.") {
            Some(Version::V3_1)
        } else {
            None
        }
    }
}

/// Which way a value travels. OpenAPI's `readOnly` properties are only sent in responses and
/// `writeOnly` ones only in requests, so `required` means something different each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: `readOnly` properties are neither required nor generated.
    Request,
    /// Server to client: `writeOnly` properties are neither required nor generated.
    Response,
}

/// Something that could not be honoured: a keyword left out of a normalised schema, or a
/// place in a sample that may not be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// A JSON pointer: for `normalize`, to the keyword in the schema given (or, from
    /// `normalize_document`, in the document); for `sample`, to the place in the value.
    pub pointer: String,
    /// What was wrong, as a sentence fragment (`pattern is not a valid regular expression`).
    pub reason: String,
}

impl Note {
    fn new(pointer: &str, reason: impl Into<String>) -> Note {
        Note {
            pointer: pointer.to_owned(),
            reason: reason.into(),
        }
    }
}

/// One JSON pointer segment with `~` and `/` escaped (RFC 6901).
pub(crate) fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `pointer` extended by one segment.
fn child_pointer(pointer: &str, segment: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + segment.len() + 1);
    out.push_str(pointer);
    out.push('/');
    out.push_str(&escape_segment(segment));
    out
}
