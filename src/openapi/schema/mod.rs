//! The schema toolkit the OpenAPI features stand on: pure functions on `serde_json::Value`,
//! no IO, no HTTP, no knowledge of endpoints or projects.
//!
//! - `refs` follows `#/…` references inside one document (escapes, percent-encoding, chains,
//!   cycles) and names what is wrong with one it cannot follow.

pub mod refs;

#[cfg(test)]
mod tests;

pub use refs::{RefError, resolve};

/// One JSON pointer segment with `~` and `/` escaped (RFC 6901).
fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
