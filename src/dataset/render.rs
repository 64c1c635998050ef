//! Writing dataset answers: rows ([`render_rows`]), groups ([`render_groups`]) and the
//! schema ([`render_schema`]) as JSON, CSV or NDJSON, and choosing the format from
//! `Accept` ([`negotiate`]).
//!
//! Output goes straight into one `Vec<u8>`, without building JSON values: keys are escaped
//! once per answer, numbers are formatted by serde_json (the shortest representation that
//! round-trips: `5.0`, `0.1`, `1e-7`), so every format prints a number the same way. This
//! module does not run queries and sets no headers beyond naming the content type.

use std::io::Write;

use super::exec::{Groups, Scalar, Selection};
use super::prepared::Dataset;
use super::query::QuerySettings;
use super::table::Value;

/// The format of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A JSON array of objects.
    Json,
    /// CSV (RFC 4180): a header row of the keys, CRLF line ends.
    Csv,
    /// One JSON object per line, each line ending in `\n`.
    NdJson,
}

/// The `Content-Type` of an answer in `format`.
pub fn content_type(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Json => "application/json",
        OutputFormat::Csv => "text/csv; charset=utf-8",
        OutputFormat::NdJson => "application/x-ndjson",
    }
}

/// `Accept` allows none of the formats (the caller answers 406).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Accept allows none of the formats this endpoint answers in: application/json, text/csv, application/x-ndjson"
)]
pub struct NotAcceptable;

const FORMATS: [OutputFormat; 3] = [OutputFormat::Json, OutputFormat::Csv, OutputFormat::NdJson];

/// How specifically a media range names `format`: 3 exactly, 2 by `type/*`, 1 by `*/*`,
/// 0 not at all.
fn specificity(ty: &str, sub: &str, format: OutputFormat) -> u8 {
    let (fty, subs): (&str, &[&str]) = match format {
        OutputFormat::Json => ("application", &["json"]),
        OutputFormat::Csv => ("text", &["csv"]),
        OutputFormat::NdJson => ("application", &["x-ndjson", "ndjson", "jsonl"]),
    };
    if ty == "*" && sub == "*" {
        1
    } else if !ty.eq_ignore_ascii_case(fty) {
        0
    } else if sub == "*" {
        2
    } else if subs.iter().any(|s| sub.eq_ignore_ascii_case(s)) {
        3
    } else {
        0
    }
}

/// A q-value; anything but a number from 0 to 1 counts as 1.
fn parse_q(v: &str) -> f64 {
    match v.trim().parse::<f64>() {
        Ok(q) if (0.0..=1.0).contains(&q) => q,
        _ => 1.0,
    }
}

/// Chooses the answer's format from an `Accept` header.
///
/// No header, an empty one, or one without a single well-formed media range: JSON.
/// Otherwise each format gets the q-value of the most specific range naming it (the highest
/// q among equally specific ones); q=0 excludes it. The highest q wins; ties go to the format
/// named more specifically, then to JSON, CSV, NDJSON in that order. `*/*` and
/// `application/*` therefore mean JSON, `text/*` CSV. NDJSON is also asked for as
/// `application/ndjson` or `application/jsonl`. Parameters other than `q` are ignored, and
/// names are case-insensitive.
pub fn negotiate(accept: Option<&str>) -> Result<OutputFormat, NotAcceptable> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(OutputFormat::Json);
    };
    // Per format: (specificity, q) of the most specific range naming it.
    let mut best: [Option<(u8, f64)>; 3] = [None; 3];
    let mut any_range = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let Some((ty, sub)) = media.split_once('/') else {
            continue;
        };
        let (ty, sub) = (ty.trim(), sub.trim());
        if ty.is_empty() || sub.is_empty() || (ty == "*" && sub != "*") {
            continue;
        }
        any_range = true;
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| parse_q(v));
        for (slot, format) in best.iter_mut().zip(FORMATS) {
            let spec = specificity(ty, sub, format);
            if spec == 0 {
                continue;
            }
            *slot = match *slot {
                Some((s, _)) if s > spec => *slot,
                Some((s, old)) if s == spec => Some((s, old.max(q))),
                _ => Some((spec, q)),
            };
        }
    }
    if !any_range {
        return Ok(OutputFormat::Json);
    }
    let mut chosen: Option<(OutputFormat, u8, f64)> = None;
    for (slot, format) in best.iter().zip(FORMATS) {
        let Some((spec, q)) = *slot else { continue };
        if q <= 0.0 {
            continue;
        }
        // Strictly better only: the earlier format wins a full tie.
        let better = match chosen {
            None => true,
            Some((_, cs, cq)) => q > cq || (q == cq && spec > cs),
        };
        if better {
            chosen = Some((format, spec, q));
        }
    }
    chosen.map(|(f, _, _)| f).ok_or(NotAcceptable)
}

/// Appends `s` as a JSON string.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `s` as a CSV field: quoted (with quotes doubled) when it holds `,`, `"`, CR or
/// LF, or is empty (so that an empty string differs from a null, written as nothing).
fn write_csv_str(out: &mut Vec<u8>, s: &str) {
    if !s.is_empty() && !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for part in s.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// Appends a number as serde_json prints it; a non-finite one as `null` (JSON) or nothing
/// (CSV).
fn write_number(out: &mut Vec<u8>, f: f64, csv: bool) {
    if !f.is_finite() {
        if !csv {
            out.extend_from_slice(b"null");
        }
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &f);
}

fn write_integer(out: &mut Vec<u8>, i: i64) {
    let _ = serde_json::to_writer(&mut *out, &i);
}

/// Appends a cell in JSON (`csv == false`) or as a CSV field.
fn write_value(out: &mut Vec<u8>, v: Value<'_>, csv: bool) {
    match v {
        Value::Null if csv => {}
        Value::Null => out.extend_from_slice(b"null"),
        Value::Integer(i) => write_integer(out, i),
        Value::Number(f) => write_number(out, f, csv),
        Value::Text(s) if csv => write_csv_str(out, s),
        Value::Text(s) => write_json_str(out, s),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
    }
}

fn scalar_value(s: &Scalar) -> Value<'_> {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Integer(i) => Value::Integer(*i),
        Scalar::Number(f) => Value::Number(*f),
        Scalar::Text(t) => Value::Text(t),
        Scalar::Boolean(b) => Value::Boolean(*b),
    }
}

/// Writes `records` records of `keys` in `format`; `cell(record, i)` is the value of key `i`.
fn write_records<'v>(
    format: OutputFormat,
    keys: &[&str],
    records: usize,
    size_hint: usize,
    mut cell: impl FnMut(usize, usize) -> Value<'v>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.saturating_mul(size_hint).min(1 << 24) + 64);
    match format {
        OutputFormat::Csv => {
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_csv_str(&mut out, k);
            }
            out.extend_from_slice(b"\r\n");
            for r in 0..records {
                let start = out.len();
                for i in 0..keys.len() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_value(&mut out, cell(r, i), true);
                }
                // A line of one null field would be empty, and readers skip empty lines.
                if out.len() == start {
                    out.extend_from_slice(b"\"\"");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        OutputFormat::Json | OutputFormat::NdJson => {
            // `"key":` for each key, escaped once.
            let mut prefixes = Vec::with_capacity(keys.len());
            for (i, k) in keys.iter().enumerate() {
                let mut p = Vec::with_capacity(k.len() + 4);
                p.push(if i == 0 { b'{' } else { b',' });
                write_json_str(&mut p, k);
                p.push(b':');
                prefixes.push(p);
            }
            let ndjson = format == OutputFormat::NdJson;
            if !ndjson {
                out.push(b'[');
            }
            for r in 0..records {
                if !ndjson && r > 0 {
                    out.push(b',');
                }
                if keys.is_empty() {
                    out.push(b'{');
                }
                for (i, p) in prefixes.iter().enumerate() {
                    out.extend_from_slice(p);
                    write_value(&mut out, cell(r, i), false);
                }
                out.push(b'}');
                if ndjson {
                    out.push(b'\n');
                }
            }
            if !ndjson {
                out.push(b']');
            }
        }
    }
    out
}

/// Writes the selected rows: each an object with every column in file order, the category
/// column's key replaced (in place) by the label key. Integers as JSON integers, numbers as
/// serde_json prints an `f64`, text as strings, booleans, nulls. CSV: a header row of the
/// keys, null as an empty field, an empty string as `""`.
pub fn render_rows(
    ds: &Dataset,
    s: &QuerySettings,
    selection: &Selection,
    format: OutputFormat,
) -> Vec<u8> {
    let table = ds.table();
    let category = s.category_column(table);
    let keys: Vec<&str> = table
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if Some(i) == category {
                s.label_key.as_str()
            } else {
                c.name.as_str()
            }
        })
        .collect();
    let columns: Vec<_> = (0..keys.len()).map(|c| table.column_data(c)).collect();
    let rows = selection.rows();
    let hint = keys.iter().map(|k| k.len() + 12).sum::<usize>();
    write_records(format, &keys, rows.len(), hint, |r, c| {
        match (rows.get(r), columns.get(c)) {
            (Some(&row), Some(data)) => data.value(row as usize),
            _ => Value::Null,
        }
    })
}

/// Writes a stats answer: per group `{"<op>_<col>": v, …, "<label key>": label}` (without
/// a label key when the endpoint has no category). CSV: a header row of the keys; a
/// non-finite number is `null` in JSON and an empty field in CSV.
pub fn render_groups(groups: &Groups, format: OutputFormat) -> Vec<u8> {
    let mut keys: Vec<&str> = groups.keys().iter().map(String::as_str).collect();
    let label = groups.label_key();
    if let Some(l) = label {
        keys.push(l);
    }
    let stats = groups.keys().len();
    let list = groups.groups();
    let hint = keys.iter().map(|k| k.len() + 24).sum::<usize>();
    write_records(format, &keys, list.len(), hint, |r, c| {
        let Some(g) = list.get(r) else {
            return Value::Null;
        };
        if c < stats {
            g.values.get(c).map_or(Value::Null, scalar_value)
        } else {
            g.label.as_ref().map_or(Value::Null, scalar_value)
        }
    })
}

/// The dataset's schema as JSON: `{"name", "rows", "columns": [{"name", "type",
/// "nullable", "declared"}]}`, columns in file order.
pub fn render_schema(ds: &Dataset, name: &str) -> Vec<u8> {
    let table = ds.table();
    let mut out = Vec::with_capacity(64 + table.columns().len() * 80);
    out.extend_from_slice(b"{\"name\":");
    write_json_str(&mut out, name);
    out.extend_from_slice(b",\"rows\":");
    let _ = write!(out, "{}", table.row_count());
    out.extend_from_slice(b",\"columns\":[");
    for (i, c) in table.columns().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_json_str(&mut out, &c.name);
        let _ = write!(
            out,
            ",\"type\":\"{}\",\"nullable\":{},\"declared\":{}}}",
            c.ty.as_str(),
            c.nullable,
            c.declared
        );
    }
    out.extend_from_slice(b"]}");
    out
}
