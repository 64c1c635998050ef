//! Dataset import: parses an uploaded table (CSV, a JSON array of objects, or JSON lines),
//! streamed in chunks of any size, and infers or applies column types.
//!
//! This is the foundation of the dataset API (issue 23): it knows nothing of HTTP or the
//! store. An [`Importer`] is fed the body chunk by chunk ([`Importer::feed`]) — chunk
//! boundaries may fall anywhere, even inside a field or a UTF-8 sequence — and
//! [`Importer::finish`] returns a columnar, typed [`Table`] or the first [`ImportError`],
//! which names the line and the column.
//!
//! Rules:
//! - **CSV**: the first record is the header (names unique and non-empty); RFC 4180 quoting,
//!   CRLF or LF line ends, an optional final line end and an optional UTF-8 BOM. Every record
//!   must have as many fields as the header. An empty field (quoted or not) is null — also in a
//!   column declared `text`. Completely empty lines are skipped (as the `csv` crate does), so
//!   a null in a one-column file is written `""`.
//! - **JSON**: an array of objects, split into elements by a small state machine (the whole
//!   document is never held in memory), or JSON lines (one object per line, blank lines
//!   skipped). Columns are the union of the keys in order of first appearance; a missing key is
//!   null. Values are null, booleans, numbers and strings; a nested array or object is an error.
//! - **Types**: a declared type always wins; the other columns are inferred: `integer` if every
//!   non-null value is an integer (CSV: optional sign and digits fitting an `i64`; JSON: an
//!   integer number fitting an `i64`), else `number` if every one is a number (CSV: a finite
//!   decimal float, no `inf`/`nan`; JSON: a number), else `boolean` if every one is `true` or
//!   `false` (CSV: case-insensitive), else `text`. A column with no values at all is `text`.
//!   Text keeps each value's original text exactly (`007` stays `007`); a JSON number in a text
//!   column keeps its source text. A JSON string is always text for inference; in a column
//!   declared `integer`, `number` or `boolean` it is parsed like a CSV field.
//! - **Limits** ([`Limits`]): rows, columns and bytes per field (for JSON, an element or line
//!   may take `max_field_bytes * max_columns` bytes).
//!
//! Querying (pure, in memory, no HTTP or store): a [`Dataset`] wraps a [`Table`] with
//! category indexes built on first use. [`parse_body`] and [`parse_params`] validate a
//! query (a JSON body or a GET query string) against it into a [`Query`], reporting every
//! bad field in [`QueryError::Invalid`]; [`select`] returns the matching rows in file order
//! (paginated), [`stats`] an [`Op`] of every numeric column per category group, with exactly
//! rounded sums and means ([`ExactSum`], equal to Python's `math.fsum`). [`negotiate`]
//! picks JSON, CSV or NDJSON from `Accept`, and [`render_rows`], [`render_groups`] and
//! [`render_schema`] write the answer. [`QuerySettings`] is one endpoint's configuration,
//! checked against the table when the endpoint is compiled.
//!
//! Describing (for the project's OpenAPI document): [`get_parameters`] lists the GET form's
//! parameters, and [`body_schema`], [`row_schema`], [`group_schema`] and [`schema_schema`]
//! give the query body and the answers as JSON Schema, from the dataset's own columns.

mod builder;
mod csv;
mod describe;
mod exec;
#[cfg(test)]
mod exec_tests;
mod json;
mod prepared;
mod query;
#[cfg(test)]
mod query_tests;
mod render;
#[cfg(test)]
mod render_tests;
mod table;
#[cfg(test)]
mod tests;

pub use describe::{body_schema, group_schema, row_schema, schema_schema};
pub use exec::{ExactSum, Group, Groups, Op, Scalar, Selection, UnknownOp, select, stats};
pub use prepared::{CategoryIndex, CategoryKey, Dataset};
pub use query::{
    ColumnRange, MAX_DETAILS, Page, ParamDoc, Query, QueryError, QuerySettings, get_parameters,
    parse_body, parse_params,
};
pub use render::{
    NotAcceptable, OutputFormat, content_type, negotiate, render_groups, render_rows, render_schema,
};
pub use table::{ColumnData, Table, TextColumn, Value};

use builder::Builder;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(utoipa::ToSchema)]
pub enum ColumnType {
    Integer,
    Number,
    Text,
    Boolean,
}

impl ColumnType {
    /// The lowercase name (`integer`, `number`, `text`, `boolean`).
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Number => "number",
            ColumnType::Text => "text",
            ColumnType::Boolean => "boolean",
        }
    }
}

/// A column of an imported table: its name, type, whether it holds nulls, and whether its
/// type was declared (`true`) or inferred (`false`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub nullable: bool,
    pub declared: bool,
}

/// The format of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// JSON lines: one object per line.
    JsonLines,
}

impl Format {
    /// The format a file name's extension says: `.csv`, `.json`, `.jsonl` or `.ndjson`.
    pub fn from_file_name(name: &str) -> Option<Format> {
        Format::from_name(&name.rsplit_once('.')?.1.to_ascii_lowercase())
    }

    /// The format of this name: `csv`, `json`, or `jsonl` (also `ndjson`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The format for a `Content-Type` (parameters such as `charset` are ignored):
    /// `text/csv`, `application/json`, `application/x-ndjson`, `application/jsonl`
    /// (also `application/x-jsonlines`, `application/jsonlines`).
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Some(Format::Csv),
            "application/json" => Some(Format::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Limits on an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Data rows (the CSV header is not counted).
    pub max_rows: usize,
    pub max_columns: usize,
    /// Bytes of one field (CSV) or one value (JSON).
    pub max_field_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 10_000_000,
            max_columns: 256,
            max_field_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The largest JSON element (array element or line) accepted.
    fn max_element_bytes(&self) -> usize {
        self.max_field_bytes
            .saturating_mul(self.max_columns.max(1))
            .saturating_add(64 * 1024)
    }
}

/// Why an import failed, with the 1-based source line and the column when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ImportError {
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl ImportError {
    pub(crate) fn new(line: Option<u64>, column: Option<&str>, message: impl Into<String>) -> Self {
        ImportError {
            line,
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(line) = self.line {
            out.push_str(&format!("line {line}"));
        }
        if let Some(column) = &self.column {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&format!("column `{column}`"));
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

/// A value quoted in an error message, truncated to 64 characters.
pub(crate) fn quote_value(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("`{}…`", &s[..i]),
        None => format!("`{s}`"),
    }
}

enum Parser {
    Csv(csv::CsvParser),
    Json(json::ArraySplitter),
    Lines(json::LineSplitter),
}

/// A streaming importer: [`feed`](Importer::feed) it chunks, then [`finish`](Importer::finish).
pub struct Importer {
    parser: Parser,
    builder: Builder,
    bytes: u64,
    /// Bytes held back until it is known whether the input starts with a BOM.
    bom: Option<Vec<u8>>,
    failed: Option<ImportError>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Importer {
    /// An importer for `format`, with the `declared` column types (the rest are inferred).
    pub fn new(format: Format, declared: Vec<(String, ColumnType)>, limits: Limits) -> Importer {
        let parser = match format {
            Format::Csv => Parser::Csv(csv::CsvParser::new(limits)),
            Format::Json => Parser::Json(json::ArraySplitter::new(limits)),
            Format::JsonLines => Parser::Lines(json::LineSplitter::new(limits)),
        };
        Importer {
            parser,
            builder: Builder::new(declared, limits),
            bytes: 0,
            bom: Some(Vec::new()),
            failed: None,
        }
    }

    /// Feeds the next chunk of input. After an error, every call returns that error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ImportError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.bytes += chunk.len() as u64;
        let result = match self.bom.take() {
            Some(mut held) => {
                held.extend_from_slice(chunk);
                if held.len() < BOM.len() && BOM.starts_with(&held) {
                    self.bom = Some(held);
                    Ok(())
                } else {
                    let rest = held.strip_prefix(BOM).unwrap_or(&held);
                    self.parse(rest)
                }
            }
            None => self.parse(chunk),
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn parse(&mut self, input: &[u8]) -> Result<(), ImportError> {
        match &mut self.parser {
            Parser::Csv(p) => p.feed(input, &mut self.builder),
            Parser::Json(p) => p.feed(input, &mut self.builder),
            Parser::Lines(p) => p.feed(input, &mut self.builder),
        }
    }

    /// Ends the input and returns the table.
    pub fn finish(mut self) -> Result<Table, ImportError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let Some(held) = self.bom.take() {
            let rest = held.strip_prefix(BOM).unwrap_or(&held);
            self.parse(rest)?;
        }
        match &mut self.parser {
            Parser::Csv(p) => p.finish(&mut self.builder)?,
            Parser::Json(p) => p.finish(&mut self.builder)?,
            Parser::Lines(p) => p.finish(&mut self.builder)?,
        }
        self.builder.finish()
    }

    /// Data rows imported so far.
    pub fn rows(&self) -> usize {
        self.builder.rows()
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}
