//! Parsing and validating a dataset query: from a JSON body ([`parse_body`]) or a GET query
//! string ([`parse_params`]), into one [`Query`] both forms share.
//!
//! Validation reports every bad field, not just the first (at most [`MAX_DETAILS`]), and
//! names each as the caller wrote it: `lower.sepal_length`, `species[2]`, `query.page`.
//! Bounds are compiled here into one inclusive range per column, exact for the column's
//! type (an integer column compares integers, a number column compares against the nearest
//! `f64` on the right side of the bound), so the scan in `exec` does plain comparisons. A
//! category value is turned into a group id of the column's [`CategoryIndex`], so the scan
//! never hashes. This module does not run queries and knows nothing of HTTP.

use std::borrow::Cow;

use serde_json::{Number, Value as Json};

use super::builder::{parse_boolean, parse_integer};
use super::prepared::{CategoryIndex, CategoryKey, Dataset};
use super::table::{Table, Value};
use super::{ColumnType, quote_value};
use crate::error::{ApiError, Code, FieldError};

/// The most field errors one [`QueryError::Invalid`] carries; later ones are dropped, so a
/// huge body full of mistakes cannot make a huge answer.
pub const MAX_DETAILS: usize = 50;

/// How many distinct values an "unknown value" message lists.
const MAX_LISTED_VALUES: usize = 20;

/// How one dataset endpoint is configured (compiled once when the project changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySettings {
    /// The category column (e.g. `species`): filtered by the body key or query parameter of
    /// the same name, and the column stats are grouped by. `None`: no category filter, and
    /// stats come as one group without a label.
    pub category: Option<String>,
    /// The key the category is returned under, in rows and in groups (default `label`).
    pub label_key: String,
    /// The largest `per_page` accepted; above it the query is invalid on `per_page`.
    pub max_per_page: usize,
    /// The most rows (or groups) one answer may hold; a query whose answer would hold more
    /// fails with [`QueryError::TooLarge`].
    pub max_answer_rows: usize,
}

impl Default for QuerySettings {
    /// No category, label key `label`, at most 1,000 per page and 10,000 per answer.
    fn default() -> Self {
        QuerySettings {
            category: None,
            label_key: "label".to_owned(),
            max_per_page: 1_000,
            max_answer_rows: 10_000,
        }
    }
}

impl QuerySettings {
    /// Checks these settings against a table (when the endpoint is compiled): the category
    /// column exists and is text, integer or boolean; the label key is not empty and is not
    /// the name of another column nor a stats key (`mean_<col>` …); both limits are at
    /// least 1. `Err` is a sentence for the person configuring the endpoint.
    pub fn check(&self, table: &Table) -> Result<(), String> {
        if self.max_per_page == 0 {
            return Err("max_per_page must be at least 1".to_owned());
        }
        if self.max_answer_rows == 0 {
            return Err("max_answer_rows must be at least 1".to_owned());
        }
        if self.label_key.is_empty() {
            return Err("the label key must not be empty".to_owned());
        }
        let Some(category) = &self.category else {
            return Ok(());
        };
        let Some(index) = table.column_index(category) else {
            let names: Vec<&str> = table.columns().iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "the category column {} is not in the dataset; its columns are {}",
                quote_value(category),
                names.join(", ")
            ));
        };
        if table.columns()[index].ty == ColumnType::Number {
            return Err(format!(
                "the category column {} holds numbers; a category must be a text, integer or boolean column",
                quote_value(category)
            ));
        }
        for (i, c) in table.columns().iter().enumerate() {
            if i != index && c.name == self.label_key {
                return Err(format!(
                    "the label key {} is the name of another column",
                    quote_value(&self.label_key)
                ));
            }
            let numeric = matches!(c.ty, ColumnType::Integer | ColumnType::Number);
            if i != index && numeric {
                for op in super::Op::ALL {
                    if self
                        .label_key
                        .strip_prefix(op.as_str())
                        .and_then(|r| r.strip_prefix('_'))
                        == Some(c.name.as_str())
                    {
                        return Err(format!(
                            "the label key {} is also the key of a statistic",
                            quote_value(&self.label_key)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The category column and its index, `None` without a category setting.
    pub(crate) fn category<'d>(
        &self,
        ds: &'d Dataset,
    ) -> Result<Option<(usize, &'d CategoryIndex)>, QueryError> {
        let Some(name) = &self.category else {
            return Ok(None);
        };
        let Some(column) = ds.table().column_index(name) else {
            return Err(QueryError::Misconfigured(format!(
                "the category column {} is not in the dataset",
                quote_value(name)
            )));
        };
        match ds.category_index(column) {
            Some(index) => Ok(Some((column, index))),
            None => Err(QueryError::Misconfigured(format!(
                "the category column {} holds numbers",
                quote_value(name)
            ))),
        }
    }

    /// The category column's index in the table, if it is set and exists.
    pub(crate) fn category_column(&self, table: &Table) -> Option<usize> {
        self.category.as_deref().and_then(|c| table.column_index(c))
    }
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The body is not JSON at all (400 `malformed_json`). Also a number too large for an
    /// `f64` (`1e400`), which the JSON parser refuses.
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    /// Well-formed but wrong (422 `validation_failed`): every bad field, in input order (at
    /// most [`MAX_DETAILS`]).
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<FieldError>),
    /// The answer would hold more than `limit` rows (or groups): 422 telling the caller to
    /// page with `per_page`.
    #[error(
        "the answer would hold {rows} rows, more than the limit of {limit}; ask for it page by page with per_page"
    )]
    TooLarge { rows: usize, limit: usize },
    /// The endpoint's settings do not fit the dataset (the category column is missing or
    /// holds numbers): [`QuerySettings::check`] was not run against this table. A server
    /// fault (500), not the caller's.
    #[error("the endpoint's settings do not fit the dataset: {0}")]
    Misconfigured(String),
}

fn invalid_message(details: &[FieldError]) -> String {
    match details {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl QueryError {
    /// The error code this answers with.
    pub fn code(&self) -> Code {
        match self {
            QueryError::Malformed(_) => Code::MalformedJson,
            QueryError::Invalid(_) | QueryError::TooLarge { .. } => Code::ValidationFailed,
            QueryError::Misconfigured(_) => Code::Internal,
        }
    }

    /// The HTTP answer: 400 `malformed_json`, 422 `validation_failed` with `details` (for
    /// [`TooLarge`](QueryError::TooLarge) one detail on `per_page`), or a generic 500 whose
    /// cause is logged.
    pub fn into_api_error(self) -> ApiError {
        match self {
            QueryError::Malformed(_) => ApiError::new(Code::MalformedJson, self.to_string()),
            QueryError::Invalid(details) => ApiError::validation(details),
            QueryError::TooLarge { .. } => {
                ApiError::validation(vec![FieldError::new("per_page", self.to_string())])
            }
            QueryError::Misconfigured(_) => ApiError::internal(&self),
        }
    }
}

/// Pagination: the 1-based `page` of `per_page` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page number, from 1.
    pub page: u64,
    /// Items per page, from 1 to the endpoint's `max_per_page`.
    pub per_page: usize,
}

impl Page {
    /// The index of the first item of the page (saturating: a page far past the end is
    /// simply empty).
    pub fn offset(&self) -> usize {
        let skipped = usize::try_from(self.page.saturating_sub(1)).unwrap_or(usize::MAX);
        skipped.saturating_mul(self.per_page)
    }
}

/// The rows of one numeric column a query keeps: `lo <= x <= hi`, both inclusive (strict
/// bounds are compiled to the next representable value). `lo > hi` matches nothing; a null
/// cell never matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnRange {
    /// On an integer column: `lo <= x <= hi`, bounds rounded inward to integers.
    Integer { column: usize, lo: i64, hi: i64 },
    /// On a number column: `lo <= x <= hi`, bounds moved to the nearest `f64` inside.
    Number { column: usize, lo: f64, hi: f64 },
}

impl ColumnRange {
    /// The column this range is on.
    pub fn column(&self) -> usize {
        match *self {
            ColumnRange::Integer { column, .. } | ColumnRange::Number { column, .. } => column,
        }
    }

    /// Whether no value can match.
    pub fn is_empty(&self) -> bool {
        match *self {
            ColumnRange::Integer { lo, hi, .. } => lo > hi,
            // A NaN bound (never produced) would also count as empty.
            ColumnRange::Number { lo, hi, .. } => lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()),
        }
    }
}

/// Where a query came from, so that messages name fields as the caller wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Source {
    #[default]
    Body,
    Params,
}

/// A validated query over one [`Dataset`]: a category filter (group ids of the dataset's
/// category index), one range per bounded column, and optional pagination. All filters
/// combine by AND. A `Query` is only meaningful for the dataset it was parsed against.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// Sorted, without duplicates; `None`: every category.
    pub(crate) categories: Option<Vec<u32>>,
    /// At most one per column, in column order.
    pub(crate) ranges: Vec<ColumnRange>,
    pub(crate) page: Option<Page>,
    pub(crate) source: Source,
}

impl Query {
    /// The query that keeps every row, unpaginated.
    pub fn all() -> Query {
        Query::default()
    }

    /// The category filter: group ids of the category column's [`CategoryIndex`], sorted;
    /// `None` when every category is kept.
    pub fn categories(&self) -> Option<&[u32]> {
        self.categories.as_deref()
    }

    /// The bounds, one inclusive range per column, in column order.
    pub fn ranges(&self) -> &[ColumnRange] {
        &self.ranges
    }

    /// The pagination, when `per_page` was given.
    pub fn page(&self) -> Option<Page> {
        self.page
    }

    /// Whether a bound excludes every row.
    pub fn matches_nothing(&self) -> bool {
        self.ranges.iter().any(ColumnRange::is_empty)
    }
}

/// A bound as written: an integer (exact) or a float.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Int(i128),
    Float(f64),
}

impl Bound {
    fn from_number(n: &Number) -> Bound {
        if let Some(i) = n.as_i64() {
            Bound::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Bound::Int(i128::from(u))
        } else {
            // Without `arbitrary_precision` every number is one of the three, and serde_json
            // refuses numbers that do not fit a finite f64.
            Bound::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// The smallest integer `>= self` (`strict`: `> self`), saturating far outside `i64`.
    fn int_lower(self, strict: bool) -> i128 {
        match self {
            Bound::Int(i) => i.saturating_add(i128::from(strict)),
            // `as` saturates, and an f64 beyond ±2^126 is far outside i64 anyway.
            Bound::Float(f) if strict => (f.floor() as i128).saturating_add(1),
            Bound::Float(f) => f.ceil() as i128,
        }
    }

    /// The largest integer `<= self` (`strict`: `< self`).
    fn int_upper(self, strict: bool) -> i128 {
        match self {
            Bound::Int(i) => i.saturating_sub(i128::from(strict)),
            Bound::Float(f) if strict => (f.ceil() as i128).saturating_sub(1),
            Bound::Float(f) => f.floor() as i128,
        }
    }

    /// The smallest `f64 >= self` (`strict`: `> self`).
    fn float_lower(self, strict: bool) -> f64 {
        match self {
            Bound::Float(f) if strict => f.next_up(),
            Bound::Float(f) => f,
            Bound::Int(i) => {
                // `as` rounds to nearest; `f` is integral and below 2^127, so `f as i128` is
                // exact and tells on which side of `i` the rounding went.
                let f = i as f64;
                let back = f as i128;
                if back < i || (back == i && strict) {
                    f.next_up()
                } else {
                    f
                }
            }
        }
    }

    /// The largest `f64 <= self` (`strict`: `< self`).
    fn float_upper(self, strict: bool) -> f64 {
        match self {
            Bound::Float(f) if strict => f.next_down(),
            Bound::Float(f) => f,
            Bound::Int(i) => {
                let f = i as f64;
                let back = f as i128;
                if back > i || (back == i && strict) {
                    f.next_down()
                } else {
                    f
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Lower,
    Upper,
}

/// One range being built, in a type wide enough to hold "beyond i64".
#[derive(Debug, Clone, Copy)]
enum RangeAcc {
    Integer { lo: i128, hi: i128 },
    Number { lo: f64, hi: f64 },
}

/// The name of a field in an error, built only when there is an error.
#[derive(Clone, Copy)]
enum Field<'a> {
    /// `name`
    Name(&'a str),
    /// `name[i]`
    Item(&'a str, usize),
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Name(n) => f.write_str(n),
            Field::Item(n, i) => write!(f, "{n}[{i}]"),
        }
    }
}

/// Collects a query and its errors, whatever the form.
struct QueryBuilder<'d> {
    table: &'d Table,
    category: Option<(usize, &'d CategoryIndex)>,
    categories: Option<Vec<u32>>,
    ranges: Vec<(usize, RangeAcc)>,
    page: Option<u64>,
    per_page: Option<usize>,
    max_per_page: usize,
    errors: Vec<FieldError>,
    source: Source,
}

impl<'d> QueryBuilder<'d> {
    fn new(ds: &'d Dataset, s: &QuerySettings, source: Source) -> Result<Self, QueryError> {
        Ok(QueryBuilder {
            table: ds.table(),
            category: s.category(ds)?,
            categories: None,
            ranges: Vec::new(),
            page: None,
            per_page: None,
            max_per_page: s.max_per_page,
            errors: Vec::new(),
            source,
        })
    }

    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if !self.full() {
            self.errors.push(FieldError::new(field, message));
        }
    }

    /// Whether no more errors are kept: the answer is decided, so the rest of the input is
    /// not looked at (a huge body full of mistakes costs no more than a small one).
    fn full(&self) -> bool {
        self.errors.len() >= MAX_DETAILS
    }

    fn category_name(&self) -> Option<&'d str> {
        let (column, _) = self.category?;
        self.table.columns().get(column).map(|c| c.name.as_str())
    }

    /// Adds one category value, or an error on `field`.
    fn add_category(&mut self, field: Field<'_>, key: CategoryKey<'_>) {
        let Some((_, index)) = self.category else {
            return;
        };
        match index.lookup(key) {
            Some(id) => self.categories.get_or_insert_with(Vec::new).push(id),
            None if self.full() => {}
            None => {
                let shown = match key {
                    CategoryKey::Text(s) => quote_value(s),
                    CategoryKey::Integer(i) => format!("`{i}`"),
                    CategoryKey::Boolean(b) => format!("`{b}`"),
                };
                let message = format!(
                    "unknown value {shown}; one of {}",
                    known_values(self.table, index)
                );
                self.error(field.to_string(), message);
            }
        }
    }

    /// The category value of a JSON body, checked against the column's type.
    fn category_json(&mut self, field: Field<'_>, v: &Json) {
        let Some((column, index)) = self.category else {
            return;
        };
        let ty = self.table.columns()[column].ty;
        let key = match (ty, v) {
            (ColumnType::Text, Json::String(s)) => Some(CategoryKey::Text(s)),
            (ColumnType::Integer, Json::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Some(CategoryKey::Integer(i)),
                // An integer beyond i64 cannot be in the column.
                (None, Some(u)) => {
                    if !self.full() {
                        let message = format!(
                            "unknown value `{u}`; one of {}",
                            known_values(self.table, index)
                        );
                        self.error(field.to_string(), message);
                    }
                    return;
                }
                (None, None) => None,
            },
            (ColumnType::Boolean, Json::Bool(b)) => Some(CategoryKey::Boolean(*b)),
            _ => None,
        };
        match key {
            Some(key) => self.add_category(field, key),
            None => {
                let message = match v {
                    Json::Null => format!("must be {}, not null", category_type_phrase(ty)),
                    _ => format!("must be {}", category_type_phrase(ty)),
                };
                self.error(field.to_string(), message);
            }
        }
    }

    /// The category value of a query parameter, parsed per the column's type.
    fn category_text(&mut self, field: &str, v: &str) {
        let Some((column, _)) = self.category else {
            return;
        };
        let ty = self.table.columns()[column].ty;
        let key = match ty {
            ColumnType::Integer => parse_integer(v).map(CategoryKey::Integer),
            ColumnType::Boolean => parse_boolean(v).map(CategoryKey::Boolean),
            _ => Some(CategoryKey::Text(v)),
        };
        match key {
            Some(key) => self.add_category(Field::Name(field), key),
            None => {
                let what = match ty {
                    ColumnType::Boolean => "true or false",
                    _ => "an integer",
                };
                let message = format!("{} is not {what}", quote_value(v));
                self.error(field, message);
            }
        }
    }

    /// A bound on the column called `name`; `field` names it in errors.
    fn add_bound(&mut self, field: &str, name: &str, side: Side, strict: bool, bound: Bound) {
        let Some(column) = self.table.column_index(name) else {
            self.error(field, format!("unknown column {}", quote_value(name)));
            return;
        };
        let ty = self.table.columns()[column].ty;
        let acc = match ty {
            ColumnType::Integer => RangeAcc::Integer {
                lo: i128::from(i64::MIN),
                hi: i128::from(i64::MAX),
            },
            ColumnType::Number => RangeAcc::Number {
                lo: f64::NEG_INFINITY,
                hi: f64::INFINITY,
            },
            ColumnType::Text | ColumnType::Boolean => {
                self.error(
                    field,
                    format!(
                        "{} is not a numeric column (it holds {})",
                        quote_value(name),
                        ty.as_str()
                    ),
                );
                return;
            }
        };
        let slot = match self.ranges.iter().position(|(c, _)| *c == column) {
            Some(i) => &mut self.ranges[i].1,
            None => {
                self.ranges.push((column, acc));
                let last = self.ranges.len() - 1;
                &mut self.ranges[last].1
            }
        };
        match (slot, side) {
            (RangeAcc::Integer { lo, .. }, Side::Lower) => *lo = (*lo).max(bound.int_lower(strict)),
            (RangeAcc::Integer { hi, .. }, Side::Upper) => *hi = (*hi).min(bound.int_upper(strict)),
            (RangeAcc::Number { lo, .. }, Side::Lower) => *lo = lo.max(bound.float_lower(strict)),
            (RangeAcc::Number { hi, .. }, Side::Upper) => *hi = hi.min(bound.float_upper(strict)),
        }
    }

    /// `lower` or `upper` of a JSON body.
    fn bounds_json(&mut self, key: &str, v: &Json, side: Side) {
        let Json::Object(map) = v else {
            self.error(key, "must be an object mapping column names to numbers");
            return;
        };
        for (name, value) in map {
            if self.full() {
                return;
            }
            let field = format!("{key}.{name}");
            match value {
                Json::Number(n) => self.add_bound(&field, name, side, false, Bound::from_number(n)),
                _ => {
                    // Name the column problem first when there is one.
                    let known = self
                        .table
                        .column_index(name)
                        .map(|c| self.table.columns()[c].ty);
                    match known {
                        None | Some(ColumnType::Text | ColumnType::Boolean) => {
                            self.add_bound(&field, name, side, false, Bound::Int(0));
                        }
                        Some(_) => self.error(&field, "must be a number"),
                    }
                }
            }
        }
    }

    /// `page` or `per_page` as a JSON value.
    fn page_json(&mut self, field: &str, v: &Json, per_page: bool) {
        match v.as_u64().filter(|&n| n >= 1) {
            Some(n) => self.set_page(field, n, per_page),
            None => self.error(field, "must be an integer of at least 1"),
        }
    }

    /// `page` or `per_page` as query parameter text.
    fn page_text(&mut self, field: &str, v: &str, per_page: bool) {
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        match v.parse::<u64>().ok().filter(|&n| n >= 1) {
            Some(n) if digits => self.set_page(field, n, per_page),
            _ if digits && v.bytes().any(|b| b != b'0') => {
                // Digits only, but beyond u64: a page far past the end.
                if per_page {
                    self.error(field, format!("must be at most {}", self.max_per_page));
                } else {
                    self.page = Some(u64::MAX);
                }
            }
            _ => self.error(
                field,
                format!("{} is not an integer of at least 1", quote_value(v)),
            ),
        }
    }

    fn set_page(&mut self, field: &str, n: u64, per_page: bool) {
        if !per_page {
            self.page = Some(n);
        } else if n > self.max_per_page as u64 {
            self.error(field, format!("must be at most {}", self.max_per_page));
        } else {
            self.per_page = Some(n as usize);
        }
    }

    fn finish(mut self) -> Result<Query, QueryError> {
        if !self.errors.is_empty() {
            return Err(QueryError::Invalid(self.errors));
        }
        if let Some(c) = &mut self.categories {
            c.sort_unstable();
            c.dedup();
        }
        self.ranges.sort_by_key(|(c, _)| *c);
        let ranges = self
            .ranges
            .iter()
            .map(|&(column, acc)| match acc {
                RangeAcc::Integer { lo, hi } if lo > hi => ColumnRange::Integer {
                    column,
                    lo: i64::MAX,
                    hi: i64::MIN,
                },
                // lo only grows from i64::MIN and hi only shrinks from i64::MAX, so when
                // lo <= hi both are inside i64.
                RangeAcc::Integer { lo, hi } => ColumnRange::Integer {
                    column,
                    lo: i64::try_from(lo).unwrap_or(i64::MAX),
                    hi: i64::try_from(hi).unwrap_or(i64::MIN),
                },
                RangeAcc::Number { lo, hi } => ColumnRange::Number { column, lo, hi },
            })
            .collect();
        Ok(Query {
            categories: self.categories,
            ranges,
            page: self.per_page.map(|per_page| Page {
                page: self.page.unwrap_or(1),
                per_page,
            }),
            source: self.source,
        })
    }
}

fn category_type_phrase(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "a JSON integer",
        ColumnType::Boolean => "a JSON boolean",
        _ => "a JSON string",
    }
}

/// "a, b, c" — the first [`MAX_LISTED_VALUES`] non-null values of the index, then "…".
fn known_values(table: &Table, index: &CategoryIndex) -> String {
    let mut out = String::new();
    let mut listed = 0;
    for g in 0..index.groups() as u32 {
        let shown: Cow<'_, str> = match index.value(table, g) {
            Value::Null => continue,
            Value::Text(s) => match s.char_indices().nth(64) {
                Some((i, _)) => format!("{}…", &s[..i]).into(),
                None => s.into(),
            },
            Value::Integer(i) => i.to_string().into(),
            Value::Boolean(b) => b.to_string().into(),
            Value::Number(f) => f.to_string().into(),
        };
        if listed == MAX_LISTED_VALUES {
            out.push_str(", …");
            break;
        }
        if listed > 0 {
            out.push_str(", ");
        }
        out.push_str(&shown);
        listed += 1;
    }
    if listed == 0 {
        out.push_str("(none)");
    }
    out
}

/// Whether `b` is JSON whitespace.
fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Parses a `POST` body: `{"<category>": value | [values], "lower": {col: n},
/// "upper": {col: n}, "page": n, "per_page": n}`. An empty (or all-whitespace) body is `{}`.
///
/// Errors: [`QueryError::Malformed`] when the body is not JSON; [`QueryError::Invalid`]
/// naming every bad field (`body` when it is not an object, the key for an unknown key,
/// `<category>[i]`, `lower.<col>`, `page`, …).
pub fn parse_body(ds: &Dataset, s: &QuerySettings, body: &[u8]) -> Result<Query, QueryError> {
    let mut b = QueryBuilder::new(ds, s, Source::Body)?;
    if body.iter().all(|&c| is_json_space(c)) {
        return b.finish();
    }
    let value: Json =
        serde_json::from_slice(body).map_err(|e| QueryError::Malformed(e.to_string()))?;
    let Json::Object(map) = value else {
        b.error("body", "must be a JSON object");
        return b.finish();
    };
    let category = b.category_name();
    for (key, v) in &map {
        if b.full() {
            break;
        }
        if Some(key.as_str()) == category {
            match v {
                Json::Array(items) if items.is_empty() => {
                    b.error(key.as_str(), "must not be an empty list")
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if b.full() {
                            break;
                        }
                        b.category_json(Field::Item(key, i), item);
                    }
                }
                _ => b.category_json(Field::Name(key), v),
            }
            continue;
        }
        match key.as_str() {
            "lower" => b.bounds_json(key, v, Side::Lower),
            "upper" => b.bounds_json(key, v, Side::Upper),
            "page" => b.page_json(key, v, false),
            "per_page" => b.page_json(key, v, true),
            _ => {
                let accepted = match category {
                    Some(c) => format!("{c}, lower, upper, page, per_page"),
                    None => "lower, upper, page, per_page".to_owned(),
                };
                b.error(key.as_str(), format!("unknown field; accepted: {accepted}"));
            }
        }
    }
    b.finish()
}

/// The names a query parameter may take for pagination, resolved against the category.
struct PageNames {
    page: &'static [&'static str],
    per_page: &'static [&'static str],
}

fn page_names(category: Option<&str>) -> PageNames {
    PageNames {
        page: if category == Some("page") {
            &["_page"]
        } else if category == Some("_page") {
            &["page"]
        } else {
            &["page", "_page"]
        },
        per_page: if category == Some("per_page") {
            &["_per_page"]
        } else if category == Some("_per_page") {
            &["per_page"]
        } else {
            &["per_page", "_per_page"]
        },
    }
}

/// Parses a GET query string: `<category>=v` (repeatable), `<col>__gte=n`, `<col>__lte=n`
/// (inclusive), `<col>__gt=n`, `<col>__lt=n` (exclusive), `page`, `per_page` (also
/// `_page`, `_per_page`, the only names left when the category column is called `page` or
/// `per_page`). Values are percent-decoded; numbers follow JSON's grammar; category values
/// are parsed per the column's type (`7`, `true`/`false` in any case).
///
/// Errors: [`QueryError::Invalid`] with fields named `query.<parameter>`: unknown
/// parameters, unknown or non-numeric columns, bad values, a parameter other than the
/// category given more than once (`page` and `_page` count as one).
pub fn parse_params(
    ds: &Dataset,
    s: &QuerySettings,
    query_string: Option<&str>,
) -> Result<Query, QueryError> {
    let mut b = QueryBuilder::new(ds, s, Source::Params)?;
    let category = b.category_name();
    let names = page_names(category);
    let columns = b.table.columns().len();
    // Which (column, operator) bounds were seen, to refuse a repeat without hashing.
    let mut seen_bounds = vec![0u8; columns];
    let (mut seen_page, mut seen_per_page) = (false, false);
    for (name, value) in form_urlencoded::parse(query_string.unwrap_or("").as_bytes()) {
        if b.full() {
            break;
        }
        let field = format!("query.{name}");
        if Some(name.as_ref()) == category {
            b.category_text(&field, &value);
            continue;
        }
        let is_page = names.page.contains(&name.as_ref());
        let is_per_page = names.per_page.contains(&name.as_ref());
        if is_page || is_per_page {
            let seen = if is_page {
                &mut seen_page
            } else {
                &mut seen_per_page
            };
            if std::mem::replace(seen, true) {
                b.error(&field, "given more than once");
            } else {
                b.page_text(&field, &value, is_per_page);
            }
            continue;
        }
        let op = name.rsplit_once("__").and_then(|(col, op)| {
            let (side, strict, bit) = match op {
                "gte" => (Side::Lower, false, 1u8),
                "gt" => (Side::Lower, true, 2),
                "lte" => (Side::Upper, false, 4),
                "lt" => (Side::Upper, true, 8),
                _ => return None,
            };
            Some((col, side, strict, bit))
        });
        let Some((col, side, strict, bit)) = op else {
            let accepted = match category {
                Some(c) => format!(
                    "{c}, <column>__gte, <column>__gt, <column>__lte, <column>__lt, {}, {}",
                    names.page[0], names.per_page[0]
                ),
                None => format!(
                    "<column>__gte, <column>__gt, <column>__lte, <column>__lt, {}, {}",
                    names.page[0], names.per_page[0]
                ),
            };
            b.error(&field, format!("unknown parameter; accepted: {accepted}"));
            continue;
        };
        if let Some(c) = b.table.column_index(col) {
            let flags = &mut seen_bounds[c];
            if *flags & bit != 0 {
                b.error(&field, "given more than once");
                continue;
            }
            *flags |= bit;
        }
        // JSON's number grammar, without the whitespace serde_json would allow around it.
        let number = match value.trim_matches(|c: char| c.is_ascii_whitespace()) {
            v if v.len() == value.len() => serde_json::from_str::<Number>(v).ok(),
            _ => None,
        };
        match number {
            Some(n) => b.add_bound(&field, col, side, strict, Bound::from_number(&n)),
            None => {
                let numeric = b.table.column_index(col).is_some_and(|c| {
                    matches!(
                        b.table.columns()[c].ty,
                        ColumnType::Integer | ColumnType::Number
                    )
                });
                if numeric {
                    b.error(&field, format!("{} is not a number", quote_value(&value)));
                } else {
                    // Report the column problem (unknown, not numeric).
                    b.add_bound(&field, col, side, strict, Bound::Int(0));
                }
            }
        }
    }
    b.finish()
}

/// One GET query parameter of a dataset endpoint, for its OpenAPI description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamDoc {
    /// The parameter's name (`species`, `sepal_length__gte`, `page`).
    pub name: String,
    /// Its JSON type: `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// One sentence on what it does.
    pub description: String,
    /// Whether it may be given more than once (only the category).
    pub repeatable: bool,
    /// The least value it takes (`page` and `per_page`: 1).
    pub minimum: Option<u64>,
    /// The greatest value it takes (`per_page`: the endpoint's limit).
    pub maximum: Option<u64>,
}

/// Every GET query parameter the endpoint takes, in a stable order: the category (if any),
/// then `<col>__gte`, `__gt`, `__lte`, `__lt` for each numeric column in file order, then
/// the pagination parameters (`page`/`per_page`, or `_page`/`_per_page` when the category
/// column takes the plain name).
pub fn get_parameters(ds: &Dataset, s: &QuerySettings) -> Vec<ParamDoc> {
    let table = ds.table();
    let mut out = Vec::new();
    let category = s
        .category_column(table)
        .and_then(|c| table.columns().get(c));
    if let Some(c) = category {
        let ty = match c.ty {
            ColumnType::Integer => "integer",
            ColumnType::Boolean => "boolean",
            _ => "string",
        };
        out.push(ParamDoc {
            name: c.name.clone(),
            ty,
            description: format!(
                "Keep only rows whose `{}` is this value; repeat the parameter to keep several values.",
                c.name
            ),
            repeatable: true,
            minimum: None,
            maximum: None,
        });
    }
    for c in table.columns() {
        if !matches!(c.ty, ColumnType::Integer | ColumnType::Number) {
            continue;
        }
        for (suffix, what) in [
            ("gte", "greater than or equal to"),
            ("gt", "greater than"),
            ("lte", "less than or equal to"),
            ("lt", "less than"),
        ] {
            out.push(ParamDoc {
                name: format!("{}__{suffix}", c.name),
                ty: "number",
                description: format!(
                    "Keep only rows whose `{}` is {what} this number (a null never matches).",
                    c.name
                ),
                repeatable: false,
                minimum: None,
                maximum: None,
            });
        }
    }
    let names = page_names(category.map(|c| c.name.as_str()));
    let (page, per_page) = (names.page[0], names.per_page[0]);
    out.push(ParamDoc {
        name: page.to_owned(),
        ty: "integer",
        description: format!(
            "The page to return, from 1 (default 1); used only with `{per_page}`."
        ),
        repeatable: false,
        minimum: Some(1),
        maximum: None,
    });
    out.push(ParamDoc {
        name: per_page.to_owned(),
        ty: "integer",
        description: format!(
            "Items per page (at most {}); without it the whole answer is returned.",
            s.max_per_page
        ),
        repeatable: false,
        minimum: Some(1),
        maximum: Some(s.max_per_page as u64),
    });
    out
}
