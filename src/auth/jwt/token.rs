//! The compact JWS serialization (RFC 7515 §7.1) taken apart without allocating, and the
//! registered claims (RFC 7519 §4.1) checked.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Reason, Rejection, VerifiedToken};

/// The longest token looked at, in bytes.
pub(super) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The longest encoded header, in characters.
const MAX_HEADER_B64: usize = 1360;
/// The longest encoded signature (an 8192-bit RSA signature), in characters.
const MAX_SIGNATURE_B64: usize = 1366;

/// A token split at its two dots.
pub(super) struct Parts<'t> {
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    /// `header.payload`, the bytes the signature covers.
    pub signed: &'t str,
}

pub(super) fn split(token: &str) -> Result<Parts<'_>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed("the token is too long"));
    }
    let mut pieces = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(Rejection::Malformed("a token has three base64url parts"));
    };
    // An empty signature (`alg: none`) is left to the algorithm check.
    if header.is_empty() || payload.is_empty() {
        return Err(Rejection::Malformed("a token has three base64url parts"));
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signed: &token[..header.len() + 1 + payload.len()],
    })
}

/// The header members this module reads; others (`typ`, `cty`, …) are ignored.
#[derive(Deserialize)]
pub(super) struct Header<'a> {
    #[serde(borrow)]
    pub alg: Cow<'a, str>,
    #[serde(default, borrow)]
    pub kid: Option<Cow<'a, str>>,
    #[serde(default)]
    pub crit: Option<serde::de::IgnoredAny>,
}

/// Decodes `encoded` (base64url, no padding) into `buffer`, returning the bytes written.
pub(super) fn decode<'b>(
    encoded: &str,
    max_encoded: usize,
    buffer: &'b mut [u8],
    what: &'static str,
) -> Result<&'b [u8], Rejection> {
    if encoded.len() > max_encoded {
        return Err(Rejection::Malformed(what));
    }
    let written = URL_SAFE_NO_PAD
        .decode_slice(encoded.as_bytes(), buffer)
        .map_err(|_| Rejection::Malformed(what))?;
    Ok(&buffer[..written])
}

/// The header buffer's size.
pub(super) const HEADER_BUFFER: usize = MAX_HEADER_B64 / 4 * 3 + 3;
/// The signature buffer's size.
pub(super) const SIGNATURE_BUFFER: usize = MAX_SIGNATURE_B64.div_ceil(4) * 3;

pub(super) fn decode_header<'b>(
    encoded: &str,
    buffer: &'b mut [u8],
) -> Result<&'b [u8], Rejection> {
    decode(
        encoded,
        MAX_HEADER_B64,
        buffer,
        "the header is not base64url",
    )
}

pub(super) fn decode_signature<'b>(
    encoded: &str,
    buffer: &'b mut [u8],
) -> Result<&'b [u8], Rejection> {
    decode(
        encoded,
        MAX_SIGNATURE_B64,
        buffer,
        "the signature is not base64url",
    )
}

pub(super) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|_| Rejection::Malformed("the header is not a JSON object with `alg`"))
}

/// Decodes and parses the payload into its claims (after the signature was checked).
pub(super) fn parse_claims(encoded: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.as_bytes())
        .map_err(|_| Rejection::Malformed("the payload is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| Rejection::Malformed("the payload is not a JSON object"))
}

/// A NumericDate (seconds since the epoch, maybe fractional), clamped to `u64`.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Rejection> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(Rejection::Malformed(match name {
            "exp" => "the claim `exp` is not a number",
            "nbf" => "the claim `nbf` is not a number",
            _ => "the claim `iat` is not a number",
        }));
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    // Negative or fractional: a negative date is long past.
    let float = number.as_f64().unwrap_or(0.0);
    Ok(Some(if float.is_finite() && float > 0.0 {
        float as u64
    } else {
        0
    }))
}

/// What the time checks need: the expiry and the earliest valid time (`nbf`, `iat`).
pub(super) struct Times {
    pub expires_at: u64,
    pub valid_from: u64,
}

/// Checks `exp` (required), `nbf` and `iat` against `now` with `leeway`.
pub(super) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
) -> Result<Times, Rejection> {
    let expires_at =
        numeric_date(claims, "exp")?.ok_or(Rejection::Invalid(Reason::MissingExpiry))?;
    let not_before = numeric_date(claims, "nbf")?.unwrap_or(0);
    let issued_at = numeric_date(claims, "iat")?.unwrap_or(0);
    let times = Times {
        expires_at,
        valid_from: not_before.max(issued_at),
    };
    check_window(times.expires_at, times.valid_from, now, leeway)?;
    Ok(times)
}

/// The time checks alone, also made on a cache hit.
pub(super) fn check_window(
    expires_at: u64,
    valid_from: u64,
    now: u64,
    leeway: u64,
) -> Result<(), Rejection> {
    if now >= expires_at.saturating_add(leeway) {
        return Err(Rejection::Invalid(Reason::Expired));
    }
    if valid_from > now.saturating_add(leeway) {
        return Err(Rejection::Invalid(Reason::NotYetValid));
    }
    Ok(())
}

/// `iss` must equal the issuer.
pub(super) fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), Rejection> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == issuer => Ok(()),
        _ => Err(Rejection::Invalid(Reason::WrongIssuer)),
    }
}

/// `aud` (a string or an array of strings) must hold one of the audiences.
pub(super) fn check_audience(
    claims: &Map<String, Value>,
    audiences: &[Box<str>],
) -> Result<(), Rejection> {
    let accepted = |aud: &str| audiences.iter().any(|one| **one == *aud);
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(list)) => list.iter().any(|aud| aud.as_str().is_some_and(accepted)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::Invalid(Reason::WrongAudience))
    }
}

fn strings(value: Option<&Value>) -> Box<[Box<str>]> {
    match value {
        Some(Value::String(text)) => text.split_whitespace().map(Box::from).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(Box::from)
            .collect(),
        _ => Box::default(),
    }
}

/// What the caller gets: subject, scopes (`scope`, else `scp`), permissions, all claims.
pub(super) fn identity(claims: Map<String, Value>, times: Times) -> VerifiedToken {
    let subject = claims.get("sub").and_then(Value::as_str).map(Arc::from);
    let scopes = match claims.get("scope") {
        Some(scope) => strings(Some(scope)),
        None => strings(claims.get("scp")),
    };
    let permissions = match claims.get("permissions") {
        Some(Value::Array(_)) => strings(claims.get("permissions")),
        _ => Box::default(),
    };
    VerifiedToken {
        subject,
        scopes,
        permissions,
        claims,
        expires_at: times.expires_at,
        valid_from: times.valid_from,
    }
}

/// Up to `max` printable ASCII characters of an untrusted header value, for messages.
pub(super) fn printable(value: &str, max: usize) -> Box<str> {
    let mut out: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if value.chars().count() > out.len() {
        out.push('…');
    }
    out.into_boxed_str()
}
