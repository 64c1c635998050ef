//! Column builders: typed storage for declared columns, raw text plus inference flags for the
//! others, turned into a [`Table`] at the end.

use std::collections::HashMap;

use super::table::{ColumnData, Table, TextColumn};
use super::{Column, ColumnType, ImportError, Limits, quote_value};

/// One cell as the parsers see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Null,
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number, its source text (already checked to be finite).
    Num(&'a str),
    /// A JSON string: text for inference.
    Str(&'a str),
    /// A non-empty CSV field: may be an integer, a number, a boolean or text.
    Raw(&'a str),
}

/// Optional sign and ASCII digits, fitting an `i64`.
pub(crate) fn parse_integer(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// A finite decimal float as Rust parses it; no `inf`, `nan` or other words.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `true` or `false`, case-insensitive.
pub(crate) fn parse_boolean(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

enum Data {
    Integer(Vec<Option<i64>>),
    Number(Vec<Option<f64>>),
    Boolean(Vec<Option<bool>>),
    Text(TextColumn),
    Infer {
        raw: TextColumn,
        any_value: bool,
        integer: bool,
        number: bool,
        boolean: bool,
    },
}

struct ColumnBuilder {
    name: String,
    declared: bool,
    nullable: bool,
    data: Data,
    /// The row this column last got a value in (JSON: missing keys and duplicates).
    last_row: usize,
}

fn not_a(line: u64, name: &str, value: &str, what: &str) -> ImportError {
    ImportError::new(
        Some(line),
        Some(name),
        format!("{} is not {what}", quote_value(value)),
    )
}

impl ColumnBuilder {
    fn new(name: String, declared: Option<ColumnType>, rows: usize) -> Self {
        let data = match declared {
            Some(ColumnType::Integer) => Data::Integer(Vec::new()),
            Some(ColumnType::Number) => Data::Number(Vec::new()),
            Some(ColumnType::Boolean) => Data::Boolean(Vec::new()),
            Some(ColumnType::Text) => Data::Text(TextColumn::default()),
            None => Data::Infer {
                raw: TextColumn::default(),
                any_value: false,
                integer: true,
                number: true,
                boolean: true,
            },
        };
        let mut b = ColumnBuilder {
            name,
            declared: declared.is_some(),
            nullable: false,
            data,
            last_row: usize::MAX,
        };
        for _ in 0..rows {
            b.push_null();
        }
        b
    }

    fn push_null(&mut self) {
        self.nullable = true;
        match &mut self.data {
            Data::Integer(v) => v.push(None),
            Data::Number(v) => v.push(None),
            Data::Boolean(v) => v.push(None),
            Data::Text(t) | Data::Infer { raw: t, .. } => t.push(None),
        }
    }

    fn push(&mut self, cell: Cell<'_>, line: u64) -> Result<(), ImportError> {
        if let Cell::Null = cell {
            self.push_null();
            return Ok(());
        }
        let name = &self.name;
        match (&mut self.data, cell) {
            (_, Cell::Null) => {}
            (Data::Integer(_), Cell::Bool(b)) => {
                return Err(not_a(
                    line,
                    name,
                    if b { "true" } else { "false" },
                    "an integer",
                ));
            }
            (Data::Integer(v), Cell::Num(s) | Cell::Str(s) | Cell::Raw(s)) => v.push(Some(
                parse_integer(s).ok_or_else(|| not_a(line, name, s, "an integer"))?,
            )),
            (Data::Number(_), Cell::Bool(b)) => {
                return Err(not_a(
                    line,
                    name,
                    if b { "true" } else { "false" },
                    "a number",
                ));
            }
            (Data::Number(v), Cell::Num(s) | Cell::Str(s) | Cell::Raw(s)) => v.push(Some(
                parse_number(s).ok_or_else(|| not_a(line, name, s, "a number"))?,
            )),
            (Data::Boolean(v), Cell::Bool(b)) => v.push(Some(b)),
            (Data::Boolean(_), Cell::Num(s)) => return Err(not_a(line, name, s, "a boolean")),
            (Data::Boolean(v), Cell::Str(s) | Cell::Raw(s)) => v.push(Some(
                parse_boolean(s).ok_or_else(|| not_a(line, name, s, "a boolean"))?,
            )),
            (Data::Text(t), Cell::Bool(b)) => t.push(Some(if b { "true" } else { "false" })),
            (Data::Text(t), Cell::Num(s) | Cell::Str(s) | Cell::Raw(s)) => t.push(Some(s)),
            (
                Data::Infer {
                    raw,
                    any_value,
                    integer,
                    number,
                    boolean,
                },
                cell,
            ) => {
                *any_value = true;
                match cell {
                    Cell::Null => {}
                    Cell::Bool(b) => {
                        *integer = false;
                        *number = false;
                        raw.push(Some(if b { "true" } else { "false" }));
                    }
                    Cell::Num(s) => {
                        *integer = *integer && parse_integer(s).is_some();
                        *boolean = false;
                        raw.push(Some(s));
                    }
                    Cell::Str(s) => {
                        *integer = false;
                        *number = false;
                        *boolean = false;
                        raw.push(Some(s));
                    }
                    Cell::Raw(s) => {
                        *integer = *integer && parse_integer(s).is_some();
                        *number = *number && parse_number(s).is_some();
                        *boolean = *boolean && parse_boolean(s).is_some();
                        raw.push(Some(s));
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> (Column, ColumnData) {
        let (ty, data) = match self.data {
            Data::Integer(v) => (ColumnType::Integer, ColumnData::Integer(v)),
            Data::Number(v) => (ColumnType::Number, ColumnData::Number(v)),
            Data::Boolean(v) => (ColumnType::Boolean, ColumnData::Boolean(v)),
            Data::Text(mut t) => {
                t.shrink_to_fit();
                (ColumnType::Text, ColumnData::Text(t))
            }
            Data::Infer {
                mut raw,
                any_value,
                integer,
                number,
                boolean,
            } => {
                if !any_value {
                    raw.shrink_to_fit();
                    (ColumnType::Text, ColumnData::Text(raw))
                } else if integer {
                    let v = raw.iter().map(|s| s.and_then(parse_integer)).collect();
                    (ColumnType::Integer, ColumnData::Integer(v))
                } else if number {
                    // JSON numbers were checked finite; CSV ones by `parse_number`.
                    let v = raw
                        .iter()
                        .map(|s| s.and_then(|s| s.parse::<f64>().ok()))
                        .collect();
                    (ColumnType::Number, ColumnData::Number(v))
                } else if boolean {
                    let v = raw.iter().map(|s| s.and_then(parse_boolean)).collect();
                    (ColumnType::Boolean, ColumnData::Boolean(v))
                } else {
                    raw.shrink_to_fit();
                    (ColumnType::Text, ColumnData::Text(raw))
                }
            }
        };
        let column = Column {
            name: self.name,
            ty,
            nullable: self.nullable,
            declared: self.declared,
        };
        (column, data)
    }
}

/// Collects rows into column builders.
pub(crate) struct Builder {
    declared: Vec<(String, ColumnType)>,
    limits: Limits,
    columns: Vec<ColumnBuilder>,
    index: HashMap<String, usize>,
    rows: usize,
}

impl Builder {
    pub(crate) fn new(declared: Vec<(String, ColumnType)>, limits: Limits) -> Self {
        Builder {
            declared,
            limits,
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn column_count(&self) -> usize {
        self.columns.len()
    }

    pub(crate) fn column_name(&self, i: usize) -> Option<&str> {
        self.columns.get(i).map(|c| c.name.as_str())
    }

    fn declared_type(&self, name: &str) -> Option<ColumnType> {
        self.declared
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    /// Adds a column (checking the name and the column limit), filled with nulls for the rows
    /// so far.
    pub(crate) fn add_column(&mut self, name: &str, line: u64) -> Result<usize, ImportError> {
        if name.is_empty() {
            return Err(ImportError::new(
                Some(line),
                Some(name),
                "empty column name",
            ));
        }
        if self.index.contains_key(name) {
            return Err(ImportError::new(
                Some(line),
                Some(name),
                format!("duplicate column name {}", quote_value(name)),
            ));
        }
        if self.columns.len() >= self.limits.max_columns {
            return Err(ImportError::new(
                Some(line),
                Some(name),
                format!("more than {} columns", self.limits.max_columns),
            ));
        }
        let ty = self.declared_type(name);
        let i = self.columns.len();
        self.columns
            .push(ColumnBuilder::new(name.to_owned(), ty, self.rows));
        self.index.insert(name.to_owned(), i);
        Ok(i)
    }

    /// The index of column `name`, added if new (JSON).
    pub(crate) fn column(&mut self, name: &str, line: u64) -> Result<usize, ImportError> {
        match self.index.get(name) {
            Some(&i) => Ok(i),
            None => self.add_column(name, line),
        }
    }

    /// Checks that every declared column is in the header (CSV).
    pub(crate) fn check_declared(&self) -> Result<(), ImportError> {
        for (name, _) in &self.declared {
            if !self.index.contains_key(name) {
                return Err(ImportError::new(
                    None,
                    Some(name),
                    "declared column is not in the data",
                ));
            }
        }
        Ok(())
    }

    /// Starts a row; errors past the row limit.
    pub(crate) fn start_row(&mut self, line: u64) -> Result<(), ImportError> {
        if self.rows >= self.limits.max_rows {
            return Err(ImportError::new(
                Some(line),
                None,
                format!("more than {} rows", self.limits.max_rows),
            ));
        }
        Ok(())
    }

    /// Sets column `i` of the current row.
    pub(crate) fn set(&mut self, i: usize, cell: Cell<'_>, line: u64) -> Result<(), ImportError> {
        let row = self.rows;
        let Some(c) = self.columns.get_mut(i) else {
            return Err(ImportError::new(Some(line), None, "field without a column"));
        };
        if c.last_row == row {
            return Err(ImportError::new(
                Some(line),
                Some(&c.name),
                format!("duplicate key {}", quote_value(&c.name)),
            ));
        }
        c.last_row = row;
        c.push(cell, line)
    }

    /// Ends the current row: columns not set in it get a null.
    pub(crate) fn end_row(&mut self) {
        let row = self.rows;
        for c in &mut self.columns {
            if c.last_row != row {
                c.last_row = row;
                c.push_null();
            }
        }
        self.rows += 1;
    }

    pub(crate) fn finish(self) -> Result<Table, ImportError> {
        self.check_declared()?;
        let rows = self.rows;
        let (columns, data) = self.columns.into_iter().map(ColumnBuilder::finish).unzip();
        Ok(Table {
            columns,
            data,
            rows,
        })
    }
}
