//! A [`Table`] made ready to be queried: the table plus, per column, a category index built
//! on first use.
//!
//! The index is what keeps the query path free of per-row hashing: a category filter is
//! turned into group ids once, when the query is parsed, and the scan then only compares the
//! `u32` group id of each row (or walks the rows of the chosen groups directly). Building an
//! index hashes every row once; it happens at most once per column and [`Dataset`], behind a
//! [`OnceLock`], so later queries pay one atomic load. This module knows nothing of queries,
//! HTTP or the store.

use std::sync::OnceLock;

use super::table::{ColumnData, Table, Value};

/// A table ready to be queried: the [`Table`] plus, per column, a lazily built
/// [`CategoryIndex`] (a [`OnceLock`], so the hot path only does an atomic load after the
/// first use).
///
/// Only the first `u32::MAX` rows of a table are visible to queries (import limits keep
/// tables far below that).
#[derive(Debug)]
pub struct Dataset {
    table: Table,
    indexes: Box<[OnceLock<Option<CategoryIndex>>]>,
}

impl Dataset {
    /// Wraps `table`; no index is built yet.
    pub fn new(table: Table) -> Dataset {
        let indexes = (0..table.columns().len())
            .map(|_| OnceLock::new())
            .collect();
        Dataset { table, indexes }
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The number of rows queries see (the table's, capped at `u32::MAX`).
    pub fn rows(&self) -> usize {
        self.table.row_count().min(u32::MAX as usize)
    }

    /// The category index of `column`, built on first use; `None` for a number column or a
    /// column that does not exist.
    pub fn category_index(&self, column: usize) -> Option<&CategoryIndex> {
        let cell = self.indexes.get(column)?;
        cell.get_or_init(|| CategoryIndex::build(&self.table, column))
            .as_ref()
    }
}

/// The distinct values of one text, integer or boolean column, in order of first appearance,
/// and the group id of every row.
///
/// Group ids are dense (`0..groups()`) and follow first appearance in the file, so ordering
/// groups by id orders them by first appearance. A null cell is a group of its own (its
/// value is [`Value::Null`]), like `NULL` in SQL's `GROUP BY`. Besides the spec'd map and
/// per-row ids the index keeps, per group, the rows of that group in file order (a CSR
/// layout, 4 bytes per row), so a filter on a rare category does not scan the whole column.
#[derive(Debug)]
pub struct CategoryIndex {
    column: usize,
    /// The first row of each group; its value is the group's value.
    first_rows: Vec<u32>,
    keys: Keys,
    /// The group of the null cells, if there are any.
    null_group: Option<u32>,
    row_groups: Vec<u32>,
    /// `rows_by_group[starts[g]..starts[g + 1]]` are the rows of group `g`, ascending.
    starts: Vec<u32>,
    rows_by_group: Vec<u32>,
}

#[derive(Debug)]
enum Keys {
    Text(foldhash::HashMap<Box<str>, u32>),
    Integer(foldhash::HashMap<i64, u32>),
    /// The groups of `false` and `true`.
    Boolean([Option<u32>; 2]),
}

/// A category value as a caller names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CategoryKey<'a> {
    /// A value of a text column.
    Text(&'a str),
    /// A value of an integer column.
    Integer(i64),
    /// A value of a boolean column.
    Boolean(bool),
}

impl CategoryIndex {
    fn build(table: &Table, column: usize) -> Option<CategoryIndex> {
        let data = table.data.get(column)?;
        let rows = table.row_count().min(u32::MAX as usize);
        let mut first_rows = Vec::new();
        let mut null_group = None;
        let mut row_groups = Vec::with_capacity(rows);
        let keys = match data {
            ColumnData::Number(_) => return None,
            ColumnData::Text(col) => {
                let mut map = foldhash::HashMap::<Box<str>, u32>::default();
                for (row, v) in col.iter().take(rows).enumerate() {
                    let id = match v {
                        None => *null_group.get_or_insert_with(|| new_group(&mut first_rows, row)),
                        Some(s) => match map.get(s) {
                            Some(&id) => id,
                            None => {
                                let id = new_group(&mut first_rows, row);
                                map.insert(s.into(), id);
                                id
                            }
                        },
                    };
                    row_groups.push(id);
                }
                Keys::Text(map)
            }
            ColumnData::Integer(col) => {
                let mut map = foldhash::HashMap::<i64, u32>::default();
                for (row, v) in col.iter().take(rows).enumerate() {
                    let id = match v {
                        None => *null_group.get_or_insert_with(|| new_group(&mut first_rows, row)),
                        Some(x) => *map
                            .entry(*x)
                            .or_insert_with(|| new_group(&mut first_rows, row)),
                    };
                    row_groups.push(id);
                }
                Keys::Integer(map)
            }
            ColumnData::Boolean(col) => {
                let mut ids = [None; 2];
                for (row, v) in col.iter().take(rows).enumerate() {
                    let id = match v {
                        None => *null_group.get_or_insert_with(|| new_group(&mut first_rows, row)),
                        Some(b) => *ids[usize::from(*b)]
                            .get_or_insert_with(|| new_group(&mut first_rows, row)),
                    };
                    row_groups.push(id);
                }
                Keys::Boolean(ids)
            }
        };
        // Counting sort of the rows by group: rows stay ascending within a group.
        let groups = first_rows.len();
        let mut starts = vec![0u32; groups + 1];
        for &g in &row_groups {
            starts[g as usize + 1] += 1;
        }
        for g in 0..groups {
            starts[g + 1] += starts[g];
        }
        let mut next: Vec<u32> = starts[..groups].to_vec();
        let mut rows_by_group = vec![0u32; row_groups.len()];
        for (row, &g) in row_groups.iter().enumerate() {
            let slot = &mut next[g as usize];
            rows_by_group[*slot as usize] = row as u32;
            *slot += 1;
        }
        Some(CategoryIndex {
            column,
            first_rows,
            keys,
            null_group,
            row_groups,
            starts,
            rows_by_group,
        })
    }

    /// The column this index is over.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The number of groups (distinct values, null counting as one).
    pub fn groups(&self) -> usize {
        self.first_rows.len()
    }

    /// The group id of every row, in row order.
    pub fn row_groups(&self) -> &[u32] {
        &self.row_groups
    }

    /// The rows of group `group`, ascending (empty for an unknown id).
    pub fn rows_of(&self, group: u32) -> &[u32] {
        let g = group as usize;
        match (self.starts.get(g), self.starts.get(g + 1)) {
            (Some(&a), Some(&b)) => self
                .rows_by_group
                .get(a as usize..b as usize)
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The value of group `group` (`Value::Null` for the null group or an unknown id).
    pub fn value<'t>(&self, table: &'t Table, group: u32) -> Value<'t> {
        match self.first_rows.get(group as usize) {
            Some(&row) => table.value(row as usize, self.column),
            None => Value::Null,
        }
    }

    /// The group id of a value, if the column holds it. A key of the wrong type is `None`.
    pub fn lookup(&self, key: CategoryKey<'_>) -> Option<u32> {
        match (&self.keys, key) {
            (Keys::Text(map), CategoryKey::Text(s)) => map.get(s).copied(),
            (Keys::Integer(map), CategoryKey::Integer(i)) => map.get(&i).copied(),
            (Keys::Boolean(ids), CategoryKey::Boolean(b)) => ids[usize::from(b)],
            _ => None,
        }
    }

    /// The group of the null cells, if the column has any.
    pub fn null_group(&self) -> Option<u32> {
        self.null_group
    }
}

/// Starts a group whose first row is `row`. Group ids count up from 0 and never exceed the
/// row count, which fits a `u32` (rows beyond `u32::MAX` are not indexed).
fn new_group(first_rows: &mut Vec<u32>, row: usize) -> u32 {
    let id = first_rows.len() as u32;
    first_rows.push(row as u32);
    id
}
