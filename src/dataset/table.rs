//! The imported, columnar table.

use super::Column;

/// One cell of a [`Table`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Number(f64),
    Text(&'a str),
    Boolean(bool),
}

/// Text values stored in one arena: `data[ends[i-1]..ends[i]]`, with a null flag per cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextColumn {
    data: String,
    ends: Vec<usize>,
    nulls: Vec<bool>,
}

impl TextColumn {
    pub(crate) fn push(&mut self, value: Option<&str>) {
        if let Some(v) = value {
            self.data.push_str(v);
        }
        self.ends.push(self.data.len());
        self.nulls.push(value.is_none());
    }

    /// The value of row `i` (`None` for null or out of range).
    pub fn get(&self, i: usize) -> Option<&str> {
        if *self.nulls.get(i)? {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..self.ends[i])
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The values in row order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.data.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.nulls.shrink_to_fit();
    }
}

/// The cells of one column, typed (`None` is null).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Integer(Vec<Option<i64>>),
    Number(Vec<Option<f64>>),
    Text(TextColumn),
    Boolean(Vec<Option<bool>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Integer(v) => v.len(),
            ColumnData::Number(v) => v.len(),
            ColumnData::Text(v) => v.len(),
            ColumnData::Boolean(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell at `row` (`Value::Null` when out of range).
    pub fn value(&self, row: usize) -> Value<'_> {
        let v = match self {
            ColumnData::Integer(v) => v.get(row).copied().flatten().map(Value::Integer),
            ColumnData::Number(v) => v.get(row).copied().flatten().map(Value::Number),
            ColumnData::Text(v) => v.get(row).map(Value::Text),
            ColumnData::Boolean(v) => v.get(row).copied().flatten().map(Value::Boolean),
        };
        v.unwrap_or(Value::Null)
    }
}

/// A typed, columnar table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub(crate) columns: Vec<Column>,
    pub(crate) data: Vec<ColumnData>,
    pub(crate) rows: usize,
}

impl Table {
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// The index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The cell at (`row`, `column`); `Value::Null` when out of range.
    pub fn value(&self, row: usize, column: usize) -> Value<'_> {
        self.data.get(column).map_or(Value::Null, |d| d.value(row))
    }

    /// The cells of `column`. Panics if `column >= columns().len()`.
    pub fn column_data(&self, column: usize) -> &ColumnData {
        &self.data[column]
    }
}
