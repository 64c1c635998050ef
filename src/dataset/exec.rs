//! Running a [`Query`]: selecting rows ([`select`]) and grouped statistics ([`stats`]).
//!
//! Everything here is a columnar scan over the typed vectors of the table: the category
//! filter compares the `u32` group id of each row (or walks the rows of the chosen groups
//! straight from the [`CategoryIndex`]), bounds compare plain `i64`/`f64` values compiled by
//! `query`, 64 rows at a time into a bit mask (no unpredictable branch per row), and
//! statistics run one column at a time, only for the groups on the requested page. Nothing
//! allocates or hashes per row. Sums and means are exactly rounded: an
//! [`ExactSum`] keeps the exact sum of its `f64`s in fixed-point limbs and rounds once, at
//! the end, as Python's `math.fsum` does. This module does not parse input or write output.

use std::str::FromStr;

use super::prepared::{CategoryIndex, Dataset};
use super::query::{ColumnRange, Page, Query, QueryError, QuerySettings};
use super::quote_value;
use super::table::{ColumnData, Value};

/// A statistic of the `stats/{op}` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// The exactly rounded sum divided by the count.
    Mean,
    /// The least value, in the column's type.
    Min,
    /// The greatest value, in the column's type.
    Max,
    /// The exactly rounded sum (an integer for an integer column when it fits an `i64`).
    Sum,
    /// The number of non-null values.
    Count,
    /// The middle value, or the mean of the two middle values (always a number).
    Median,
    /// The sample standard deviation (n − 1 denominator); null below two values.
    Std,
}

impl Op {
    /// Every op, in the order the docs list them.
    pub const ALL: [Op; 7] = [
        Op::Mean,
        Op::Min,
        Op::Max,
        Op::Sum,
        Op::Count,
        Op::Median,
        Op::Std,
    ];

    /// The lowercase name used in paths and keys (`mean`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Mean => "mean",
            Op::Min => "min",
            Op::Max => "max",
            Op::Sum => "sum",
            Op::Count => "count",
            Op::Median => "median",
            Op::Std => "std",
        }
    }
}

/// A name that is not an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown statistic {}; one of mean, min, max, sum, count, median, std", quote_value(.0))]
pub struct UnknownOp(pub String);

impl FromStr for Op {
    type Err = UnknownOp;

    /// The op called `s` (exact, lowercase).
    fn from_str(s: &str) -> Result<Op, UnknownOp> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| UnknownOp(s.to_owned()))
    }
}

/// The rows a query selects: the requested page of matching row indices, in file order,
/// and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    rows: Vec<u32>,
    total: usize,
    page: Option<Page>,
}

impl Selection {
    /// The row indices of the answer (the page when paginated), ascending.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// How many rows match the filters, over all pages.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The pagination applied, if any.
    pub fn page(&self) -> Option<Page> {
        self.page
    }
}

/// An owned cell: a statistic or a group's label.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// No value: an empty group's mean, a null category.
    Null,
    /// An integer: an integer column's min, max or sum, any count, an integer label.
    Integer(i64),
    /// A number; a non-finite one (an overflowing sum) is written as null.
    Number(f64),
    /// A text label.
    Text(String),
    /// A boolean label.
    Boolean(bool),
}

impl Scalar {
    /// The owned copy of a table cell.
    pub fn from_value(v: Value<'_>) -> Scalar {
        match v {
            Value::Null => Scalar::Null,
            Value::Integer(i) => Scalar::Integer(i),
            Value::Number(f) => Scalar::Number(f),
            Value::Text(s) => Scalar::Text(s.to_owned()),
            Value::Boolean(b) => Scalar::Boolean(b),
        }
    }

    /// As a JSON value (a non-finite number is null).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Integer(i) => (*i).into(),
            Scalar::Number(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Scalar::Text(s) => s.clone().into(),
            Scalar::Boolean(b) => (*b).into(),
        }
    }
}

/// One group of a stats answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The category value (`Scalar::Null` for the group of null cells); `None` when the
    /// endpoint has no category.
    pub label: Option<Scalar>,
    /// One statistic per key of [`Groups::keys`].
    pub values: Vec<Scalar>,
}

/// A stats answer: the groups of the requested page, in order of first appearance of their
/// category in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    op: Op,
    keys: Vec<String>,
    label_key: Option<String>,
    groups: Vec<Group>,
    total: usize,
}

impl Groups {
    /// The statistic computed.
    pub fn op(&self) -> Op {
        self.op
    }

    /// `<op>_<column>` for every integer or number column except the category, in file
    /// order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The key the label is written under; `None` without a category.
    pub fn label_key(&self) -> Option<&str> {
        self.label_key.as_deref()
    }

    /// The groups of the answer (the page when paginated).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// How many groups have selected rows, over all pages.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// An exactly rounded sum of `f64`s: the exact sum is kept in fixed point, as 68 signed
/// limbs of 32 bits each spanning every `f64` exponent (a "superaccumulator"), and rounded
/// to nearest, ties to even, only when read. The result equals Python's `math.fsum`. Adding
/// is a handful of integer operations and three limb updates, without branches on the data.
///
/// Infinities and NaN are summed apart, naively; if any was added the result is that sum.
/// A finite exact sum beyond `f64::MAX` rounds to ±infinity.
#[derive(Clone)]
pub struct ExactSum {
    /// `sum = Σ limbs[i] · 2^(32·i − 1074)`.
    limbs: [i64; LIMBS],
    /// Additions since the last carry propagation.
    pending: u32,
    special: f64,
}

const LIMBS: usize = 68;
/// Carries are propagated after this many additions: each adds less than 2^32 to a limb, so
/// no limb can reach 2^63.
const CARRY_EVERY: u32 = 1 << 30;

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum::new()
    }
}

impl std::fmt::Debug for ExactSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ExactSum").field(&self.value()).finish()
    }
}

impl ExactSum {
    /// An empty sum (zero).
    pub fn new() -> Self {
        ExactSum {
            limbs: [0; LIMBS],
            pending: 0,
            special: 0.0,
        }
    }

    /// Adds `x` exactly.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7FF) as u32;
        if biased == 0x7FF {
            self.special += x;
            return;
        }
        let frac = bits & ((1 << 52) - 1);
        // x = m · 2^(p − 1074), with p in 0..=2045.
        let (m, p) = if biased == 0 {
            (frac, 0)
        } else {
            (frac | (1 << 52), biased - 1)
        };
        let c = ((p >> 5) & 63) as usize;
        let s = p & 31;
        // m · 2^s has at most 85 bits: three 32-bit pieces. `<<` on u64 drops high bits,
        // which `hi` picks up.
        let shifted = m << s;
        let lo = shifted & 0xFFFF_FFFF;
        let mid = shifted >> 32;
        let mid = mid & 0xFFFF_FFFF;
        let hi = (m >> 32) >> (32 - s);
        let mask = -((bits >> 63) as i64);
        let signed = |v: u64| ((v as i64) ^ mask) - mask;
        self.limbs[c] += signed(lo);
        self.limbs[c + 1] += signed(mid);
        self.limbs[c + 2] += signed(hi);
        self.pending += 1;
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &ExactSum) {
        self.carry();
        let mut o = other.limbs;
        carry(&mut o);
        for (a, b) in self.limbs.iter_mut().zip(o) {
            *a += b;
        }
        self.special += other.special;
        self.carry();
    }

    fn carry(&mut self) {
        carry(&mut self.limbs);
        self.pending = 0;
    }

    /// The sum, correctly rounded to the nearest `f64` (ties to even).
    pub fn value(&self) -> f64 {
        self.scaled_value(0)
    }

    /// The sum divided by `n`: the exactly rounded sum divided once by `n`. When the sum
    /// overflows but the mean would not, the sum is rounded at a scale of 2^-64 first
    /// (exact scaling, the same rounding), so large finite means still come out.
    pub fn mean(&self, n: u64) -> f64 {
        let n = n as f64;
        let sum = self.value();
        if sum.is_finite() || self.has_special() {
            return sum / n;
        }
        self.scaled_value(-64) / n * pow2(64)
    }

    fn has_special(&self) -> bool {
        self.special != 0.0 || self.special.is_nan()
    }

    /// round(sum · 2^shift). Exact rounding only holds where the result is not subnormal,
    /// so a non-zero `shift` is only used for sums too large for an `f64`.
    fn scaled_value(&self, shift: i32) -> f64 {
        if self.has_special() {
            return self.special;
        }
        let mut l = self.limbs;
        carry(&mut l);
        // After the carry every limb but the top one is in 0..2^32, so the sign is the top
        // limb's.
        let negative = l[LIMBS - 1] < 0;
        if negative {
            for x in l.iter_mut() {
                *x = -*x;
            }
            carry(&mut l);
        }
        let Some(h) = l.iter().rposition(|&x| x != 0) else {
            return 0.0;
        };
        let limb = |i: usize| l[i] as u64 as u128;
        let magnitude = if h <= 2 {
            // At most 96 bits, all kept: `as` rounds once, and scaling by 2^-1074 is exact
            // (a rounded value ≥ 2^53 lands in the normal range, a smaller one is exact).
            let mant = limb(0) | limb(1) << 32 | limb(2) << 64;
            ldexp(mant as f64, -1074 + shift)
        } else {
            // The top 96 bits, at least 65 of them significant; any lower bit set becomes a
            // sticky bit far below the rounding position, so `as` still rounds correctly.
            let mut mant = limb(h) << 64 | limb(h - 1) << 32 | limb(h - 2);
            if l[..h - 2].iter().any(|&x| x != 0) {
                mant |= 1;
            }
            ldexp(mant as f64, 32 * (h as i32 - 2) - 1074 + shift)
        };
        if negative { -magnitude } else { magnitude }
    }
}

/// Propagates carries so that every limb but the last is in `0..2^32`.
fn carry(l: &mut [i64; LIMBS]) {
    for i in 0..LIMBS - 1 {
        let c = l[i] >> 32;
        l[i] -= c << 32;
        l[i + 1] += c;
    }
}

/// 2^k for `-1022 <= k <= 1023`.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// x · 2^k, exact when the result is a normal number.
fn ldexp(mut x: f64, mut k: i32) -> f64 {
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    x * pow2(k)
}

/// Which rows to look at before the bounds: all of them, or some (ascending). A filter on
/// many categories that together cover much of the table is a predicate over all rows
/// instead ([`Pred::Group`]).
enum Candidates<'a> {
    All(usize),
    Rows(&'a [u32]),
    Owned(Vec<u32>),
}

/// One condition on a row: a bound resolved to its column's vector, or "the row's group is
/// wanted".
enum Pred<'a> {
    Int(&'a [Option<i64>], i64, i64),
    Num(&'a [Option<f64>], f64, f64),
    Group(&'a [u32], Vec<bool>),
}

/// The rows of one chunk of at most 64 candidates: `start..start + len`, or a list.
#[derive(Clone, Copy)]
enum Chunk<'a> {
    Range(usize, usize),
    List(&'a [u32]),
}

impl Chunk<'_> {
    /// The row of bit `i`.
    #[inline]
    fn row(&self, i: u32) -> u32 {
        match *self {
            // Rows fit a u32 (Dataset::rows caps them).
            Chunk::Range(start, _) => (start + i as usize) as u32,
            Chunk::List(rows) => rows.get(i as usize).copied().unwrap_or(u32::MAX),
        }
    }

    /// The mask with one bit per row of the chunk.
    #[inline]
    fn full(&self) -> u64 {
        let len = match *self {
            Chunk::Range(_, len) => len,
            Chunk::List(rows) => rows.len(),
        };
        if len >= 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        }
    }
}

/// Bit `i` set when `keep` holds for item `i` (at most 64 items). Branch-free in the loop:
/// with bounds that keep about half the rows, branching per row would mispredict half the
/// time.
#[inline]
fn mask_of<T>(items: impl Iterator<Item = T>, keep: impl Fn(T) -> bool) -> u64 {
    let mut m = 0u64;
    for (i, x) in items.take(64).enumerate() {
        m |= u64::from(keep(x)) << i;
    }
    m
}

impl Pred<'_> {
    /// The rows of `chunk` this condition keeps, as bits.
    #[inline]
    fn mask(&self, chunk: Chunk<'_>) -> u64 {
        #[inline]
        fn within<T: PartialOrd + Copy>(x: Option<&Option<T>>, lo: T, hi: T) -> bool {
            match x {
                Some(Some(x)) => (lo <= *x) & (*x <= hi),
                _ => false,
            }
        }
        match (self, chunk) {
            (Pred::Int(v, lo, hi), Chunk::Range(start, len)) => match v.get(start..start + len) {
                Some(s) => mask_of(s.iter(), |x| within(Some(x), *lo, *hi)),
                None => 0,
            },
            (Pred::Num(v, lo, hi), Chunk::Range(start, len)) => match v.get(start..start + len) {
                Some(s) => mask_of(s.iter(), |x| within(Some(x), *lo, *hi)),
                None => 0,
            },
            (Pred::Group(groups, wanted), Chunk::Range(start, len)) => {
                match groups.get(start..start + len) {
                    Some(s) => mask_of(s.iter(), |&g| wanted.get(g as usize) == Some(&true)),
                    None => 0,
                }
            }
            (Pred::Int(v, lo, hi), Chunk::List(rows)) => {
                mask_of(rows.iter(), |&r| within(v.get(r as usize), *lo, *hi))
            }
            (Pred::Num(v, lo, hi), Chunk::List(rows)) => {
                mask_of(rows.iter(), |&r| within(v.get(r as usize), *lo, *hi))
            }
            (Pred::Group(groups, wanted), Chunk::List(rows)) => mask_of(rows.iter(), |&r| {
                groups
                    .get(r as usize)
                    .is_some_and(|&g| wanted.get(g as usize) == Some(&true))
            }),
        }
    }
}

/// A query resolved against its dataset, ready to scan.
struct Plan<'a> {
    candidates: Candidates<'a>,
    /// Cheapest first: a group condition, then the bounds in column order.
    preds: Vec<Pred<'a>>,
    /// A bound matches nothing.
    empty: bool,
}

impl<'a> Plan<'a> {
    fn new(ds: &'a Dataset, category: Option<(usize, &'a CategoryIndex)>, q: &Query) -> Plan<'a> {
        let table = ds.table();
        let rows = ds.rows();
        let mut preds = Vec::with_capacity(q.ranges().len() + 1);
        let candidates = match (q.categories(), category) {
            (Some(ids), Some((_, index))) => candidates_of(index, ids, rows, &mut preds),
            // Group ids without an index cannot come from a parsed query; keep nothing.
            (Some(_), None) => Candidates::Rows(&[]),
            (None, _) => Candidates::All(rows),
        };
        let mut empty = false;
        for r in q.ranges() {
            empty |= r.is_empty();
            match (*r, table.data.get(r.column())) {
                (ColumnRange::Integer { lo, hi, .. }, Some(ColumnData::Integer(v))) => {
                    preds.push(Pred::Int(v, lo, hi))
                }
                (ColumnRange::Number { lo, hi, .. }, Some(ColumnData::Number(v))) => {
                    preds.push(Pred::Num(v, lo, hi))
                }
                // A range that does not fit its column cannot come from a parsed query.
                _ => empty = true,
            }
        }
        Plan {
            candidates,
            preds,
            empty,
        }
    }

    /// The matching rows, known without a scan when no condition applies.
    fn known_rows(&self) -> Option<KnownRows<'_>> {
        if self.empty {
            return Some(KnownRows::Slice(&[]));
        }
        if !self.preds.is_empty() {
            return None;
        }
        match &self.candidates {
            Candidates::All(n) => Some(KnownRows::Range(*n)),
            Candidates::Rows(r) => Some(KnownRows::Slice(r)),
            Candidates::Owned(r) => Some(KnownRows::Slice(r)),
        }
    }

    /// Calls `f(chunk, mask)` for every chunk of up to 64 candidates, in row order, with the
    /// bits of the rows that match every condition (possibly none).
    #[inline]
    fn for_each_chunk(&self, mut f: impl FnMut(Chunk<'_>, u64)) {
        if self.empty {
            return;
        }
        let preds = self.preds.as_slice();
        let mut visit = |chunk: Chunk<'_>| {
            let mut m = chunk.full();
            for p in preds {
                if m == 0 {
                    break;
                }
                m &= p.mask(chunk);
            }
            f(chunk, m);
        };
        match &self.candidates {
            Candidates::All(n) => {
                for start in (0..*n).step_by(64) {
                    visit(Chunk::Range(start, (*n - start).min(64)));
                }
            }
            Candidates::Rows(rows) => rows.chunks(64).for_each(|c| visit(Chunk::List(c))),
            Candidates::Owned(rows) => rows.chunks(64).for_each(|c| visit(Chunk::List(c))),
        }
    }

    /// Calls `f` with every matching row, ascending.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(u32)) {
        self.for_each_chunk(|chunk, mut m| {
            while m != 0 {
                f(chunk.row(m.trailing_zeros()));
                m &= m - 1;
            }
        });
    }
}

/// Rows known without scanning: `0..n`, or a list.
enum KnownRows<'a> {
    Range(usize),
    Slice(&'a [u32]),
}

/// The candidates for a set of group ids: the group's own row list for one group; for
/// several, their rows merged when they are few, else all rows with a group condition
/// pushed onto `preds`.
fn candidates_of<'a>(
    index: &'a CategoryIndex,
    ids: &[u32],
    rows: usize,
    preds: &mut Vec<Pred<'a>>,
) -> Candidates<'a> {
    if let [one] = ids {
        return Candidates::Rows(index.rows_of(*one));
    }
    let selected: usize = ids.iter().map(|&g| index.rows_of(g).len()).sum();
    if selected.saturating_mul(8) < rows {
        let mut list = Vec::with_capacity(selected);
        for &g in ids {
            list.extend_from_slice(index.rows_of(g));
        }
        list.sort_unstable();
        Candidates::Owned(list)
    } else {
        let mut wanted = vec![false; index.groups()];
        for &g in ids {
            if let Some(w) = wanted.get_mut(g as usize) {
                *w = true;
            }
        }
        preds.push(Pred::Group(index.row_groups(), wanted));
        Candidates::All(rows)
    }
}

/// The rows of `q`: the page (when `per_page` is given) of the matching rows in file order,
/// and their total.
///
/// Errors: [`QueryError::TooLarge`] when the answer would hold more than
/// `max_answer_rows` rows; [`QueryError::Misconfigured`] when the settings do not fit.
pub fn select(ds: &Dataset, s: &QuerySettings, q: &Query) -> Result<Selection, QueryError> {
    let plan = Plan::new(ds, s.category(ds)?, q);
    let (offset, per_page) = match q.page() {
        Some(p) => (p.offset(), p.per_page),
        None => (0, usize::MAX),
    };
    let limit = s.max_answer_rows;
    // At most this many rows are kept; a longer answer is refused below.
    let keep = per_page.min(limit);
    let mut rows = Vec::new();
    let total = match plan.known_rows() {
        Some(KnownRows::Range(n)) => {
            let end = offset.saturating_add(keep).min(n);
            rows.extend((offset.min(end)..end).map(|r| r as u32));
            n
        }
        Some(KnownRows::Slice(list)) => {
            let end = offset.saturating_add(keep).min(list.len());
            rows.extend_from_slice(&list[offset.min(end)..end]);
            list.len()
        }
        None => {
            // Whole chunks outside the page are only counted.
            let mut total = 0usize;
            let end = offset.saturating_add(keep);
            plan.for_each_chunk(|chunk, mut m| {
                let n = m.count_ones() as usize;
                if total + n <= offset || total >= end {
                    total += n;
                    return;
                }
                while m != 0 {
                    if total >= offset && total < end {
                        rows.push(chunk.row(m.trailing_zeros()));
                    }
                    total += 1;
                    m &= m - 1;
                }
            });
            total
        }
    };
    let answer = total.saturating_sub(offset).min(per_page);
    if answer > limit {
        return Err(QueryError::TooLarge {
            rows: answer,
            limit,
        });
    }
    Ok(Selection {
        rows,
        total,
        page: q.page(),
    })
}

/// The selected rows for stats.
#[derive(Clone, Copy)]
enum Rows<'a> {
    Range(usize),
    Slice(&'a [u32]),
}

impl Rows<'_> {
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        match *self {
            Rows::Range(n) => (0..n).for_each(f),
            Rows::Slice(rows) => rows.iter().for_each(|&r| f(r as usize)),
        }
    }

    fn is_empty(&self) -> bool {
        match *self {
            Rows::Range(n) => n == 0,
            Rows::Slice(rows) => rows.is_empty(),
        }
    }
}

/// Where each selected row's value goes: the slot of its group on the page, or nowhere.
#[derive(Clone, Copy)]
enum Slots<'a> {
    /// One group, slot 0.
    One,
    /// `slot_of[row_groups[row]]`, `u32::MAX` for a group not on the page.
    Groups {
        row_groups: &'a [u32],
        slot_of: &'a [u32],
    },
}

/// Calls `f(slot, value)` for every non-null value of `data` in a selected row whose group
/// is on the page.
#[inline]
fn for_each_value<T: Copy>(
    rows: &Rows<'_>,
    slots: Slots<'_>,
    data: &[Option<T>],
    mut f: impl FnMut(usize, T),
) {
    let slot = |slot_of: &[u32], g: u32| slot_of.get(g as usize).copied().unwrap_or(u32::MAX);
    match (*rows, slots) {
        // All rows: plain iterators, no bounds checks.
        (Rows::Range(n), Slots::One) => data.iter().take(n).flatten().for_each(|&v| f(0, v)),
        (
            Rows::Range(n),
            Slots::Groups {
                row_groups,
                slot_of,
            },
        ) => {
            for (v, &g) in data.iter().zip(row_groups).take(n) {
                if let Some(v) = *v {
                    let s = slot(slot_of, g);
                    if s != u32::MAX {
                        f(s as usize, v);
                    }
                }
            }
        }
        (Rows::Slice(_), Slots::One) => rows.for_each(|r| {
            if let Some(Some(v)) = data.get(r) {
                f(0, *v);
            }
        }),
        (
            Rows::Slice(_),
            Slots::Groups {
                row_groups,
                slot_of,
            },
        ) => rows.for_each(|r| {
            if let (Some(Some(v)), Some(&g)) = (data.get(r), row_groups.get(r)) {
                let s = slot(slot_of, g);
                if s != u32::MAX {
                    f(s as usize, *v);
                }
            }
        }),
    }
}

/// Grouped statistics over the rows `q` selects: one group per category value with at least
/// one selected row, in order of first appearance of the value in the file (without a
/// category: one group over all selected rows, none if nothing is selected), paginated over
/// groups. Each group holds `op` of every integer and number column except the category,
/// in file order; nulls are skipped.
///
/// Errors: [`QueryError::TooLarge`] when the answer would hold more than
/// `max_answer_rows` groups; [`QueryError::Misconfigured`] when the settings do not fit.
pub fn stats(ds: &Dataset, s: &QuerySettings, q: &Query, op: Op) -> Result<Groups, QueryError> {
    let category = s.category(ds)?;
    let table = ds.table();
    let plan = Plan::new(ds, category, q);
    let stat_columns: Vec<usize> = table
        .columns()
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != category.map(|c| c.0))
        .filter(|&(i, _)| {
            matches!(
                table.data.get(i),
                Some(ColumnData::Integer(_) | ColumnData::Number(_))
            )
        })
        .map(|(i, _)| i)
        .collect();
    let keys = stat_columns
        .iter()
        .map(|&c| format!("{}_{}", op.as_str(), table.columns()[c].name))
        .collect();

    // The selected rows, materialised once unless they are known without a scan.
    let owned;
    let rows = match plan.known_rows() {
        Some(KnownRows::Range(n)) => Rows::Range(n),
        Some(KnownRows::Slice(list)) => Rows::Slice(list),
        None => {
            let mut list = Vec::new();
            plan.for_each(|r| list.push(r));
            owned = list;
            Rows::Slice(&owned)
        }
    };

    // The groups with selected rows, in id (= first appearance) order.
    let present: Vec<u32> = match category {
        None if rows.is_empty() => Vec::new(),
        None => vec![0],
        Some((_, index)) => match (q.categories(), plan.known_rows()) {
            // Every group of the filter has rows, or it could not have been named.
            (Some(ids), Some(KnownRows::Slice(l))) if !l.is_empty() => ids.to_vec(),
            _ => {
                let mut seen = vec![false; index.groups()];
                let groups = index.row_groups();
                rows.for_each(|r| {
                    if let Some(&g) = groups.get(r)
                        && let Some(flag) = seen.get_mut(g as usize)
                    {
                        *flag = true;
                    }
                });
                (0..index.groups() as u32)
                    .filter(|&g| seen[g as usize])
                    .collect()
            }
        },
    };
    let total = present.len();
    let page: &[u32] = match q.page() {
        Some(p) => {
            let start = p.offset().min(total);
            let end = start.saturating_add(p.per_page).min(total);
            &present[start..end]
        }
        None => &present,
    };
    if page.len() > s.max_answer_rows {
        return Err(QueryError::TooLarge {
            rows: page.len(),
            limit: s.max_answer_rows,
        });
    }

    let mut groups: Vec<Group> = page
        .iter()
        .map(|&g| Group {
            label: category.map(|(_, index)| Scalar::from_value(index.value(table, g))),
            values: Vec::with_capacity(stat_columns.len()),
        })
        .collect();
    if groups.is_empty() {
        return Ok(Groups {
            op,
            keys,
            label_key: category.map(|_| s.label_key.clone()),
            groups,
            total,
        });
    }
    let slot_of_storage;
    let slots = match category {
        None => Slots::One,
        Some((_, index)) => {
            let mut slot_of = vec![u32::MAX; index.groups()];
            for (slot, &g) in page.iter().enumerate() {
                if let Some(s) = slot_of.get_mut(g as usize) {
                    *s = slot as u32;
                }
            }
            slot_of_storage = slot_of;
            Slots::Groups {
                row_groups: index.row_groups(),
                slot_of: &slot_of_storage,
            }
        }
    };
    let n = groups.len();
    for &c in &stat_columns {
        let values = match table.data.get(c) {
            Some(ColumnData::Integer(data)) => integer_stat(op, &rows, slots, n, data),
            Some(ColumnData::Number(data)) => number_stat(op, &rows, slots, n, data),
            _ => vec![Scalar::Null; n],
        };
        for (g, v) in groups.iter_mut().zip(values) {
            g.values.push(v);
        }
    }
    Ok(Groups {
        op,
        keys,
        label_key: category.map(|_| s.label_key.clone()),
        groups,
        total,
    })
}

/// Counts of non-null values per slot.
fn counts<T: Copy>(rows: &Rows<'_>, slots: Slots<'_>, n: usize, data: &[Option<T>]) -> Vec<u64> {
    let mut counts = vec![0u64; n];
    for_each_value(rows, slots, data, |s, _| counts[s] += 1);
    counts
}

fn number_stat(
    op: Op,
    rows: &Rows<'_>,
    slots: Slots<'_>,
    n: usize,
    data: &[Option<f64>],
) -> Vec<Scalar> {
    match op {
        Op::Count => counts(rows, slots, n, data)
            .into_iter()
            .map(|c| Scalar::Integer(c as i64))
            .collect(),
        Op::Sum | Op::Mean => {
            let (sums, counts) = exact_sums(rows, slots, n, data);
            sums.iter()
                .zip(counts)
                .map(|(sum, count)| match op {
                    Op::Sum => Scalar::Number(sum.value()),
                    _ if count == 0 => Scalar::Null,
                    _ => Scalar::Number(sum.mean(count)),
                })
                .collect()
        }
        Op::Min | Op::Max => {
            let mut best: Vec<Option<f64>> = vec![None; n];
            let max = op == Op::Max;
            for_each_value(rows, slots, data, |s, v| {
                let b = &mut best[s];
                match b {
                    Some(cur) if (max && v > *cur) || (!max && v < *cur) => *b = Some(v),
                    None => *b = Some(v),
                    _ => {}
                }
            });
            best.into_iter()
                .map(|b| b.map_or(Scalar::Null, Scalar::Number))
                .collect()
        }
        Op::Median => {
            let mut lists = collect_values(rows, slots, n, data);
            lists
                .iter_mut()
                .map(|l| median_f64(l).map_or(Scalar::Null, Scalar::Number))
                .collect()
        }
        Op::Std => std_dev(rows, slots, n, data, |x| x),
    }
}

fn integer_stat(
    op: Op,
    rows: &Rows<'_>,
    slots: Slots<'_>,
    n: usize,
    data: &[Option<i64>],
) -> Vec<Scalar> {
    match op {
        Op::Count => counts(rows, slots, n, data)
            .into_iter()
            .map(|c| Scalar::Integer(c as i64))
            .collect(),
        Op::Sum | Op::Mean => {
            let mut sums = vec![(0i128, 0u64); n];
            for_each_value(rows, slots, data, |s, v| {
                let e = &mut sums[s];
                e.0 += i128::from(v);
                e.1 += 1;
            });
            sums.into_iter()
                .map(|(sum, count)| match op {
                    Op::Sum => match i64::try_from(sum) {
                        Ok(i) => Scalar::Integer(i),
                        Err(_) => Scalar::Number(sum as f64),
                    },
                    _ if count == 0 => Scalar::Null,
                    _ => Scalar::Number(sum as f64 / count as f64),
                })
                .collect()
        }
        Op::Min | Op::Max => {
            let mut best: Vec<Option<i64>> = vec![None; n];
            let max = op == Op::Max;
            for_each_value(rows, slots, data, |s, v| {
                let b = &mut best[s];
                *b = Some(match *b {
                    Some(cur) if max => cur.max(v),
                    Some(cur) => cur.min(v),
                    None => v,
                });
            });
            best.into_iter()
                .map(|b| b.map_or(Scalar::Null, Scalar::Integer))
                .collect()
        }
        Op::Median => {
            let mut lists = collect_values(rows, slots, n, data);
            lists
                .iter_mut()
                .map(|l| median_i64(l).map_or(Scalar::Null, Scalar::Number))
                .collect()
        }
        Op::Std => std_dev(rows, slots, n, data, |x| x as f64),
    }
}

/// The exact sums and counts of the non-null values per slot.
fn exact_sums(
    rows: &Rows<'_>,
    slots: Slots<'_>,
    n: usize,
    data: &[Option<f64>],
) -> (Vec<ExactSum>, Vec<u64>) {
    let mut sums = vec![ExactSum::new(); n];
    let mut counts = vec![0u64; n];
    match slots {
        // The common ungrouped case gets a loop without indirection.
        Slots::One => {
            let (sum, count) = (&mut sums[0], &mut counts[0]);
            rows.for_each(|r| {
                if let Some(Some(v)) = data.get(r) {
                    sum.add(*v);
                    *count += 1;
                }
            });
        }
        _ => for_each_value(rows, slots, data, |s, v| {
            sums[s].add(v);
            counts[s] += 1;
        }),
    }
    (sums, counts)
}

fn collect_values<T: Copy>(
    rows: &Rows<'_>,
    slots: Slots<'_>,
    n: usize,
    data: &[Option<T>],
) -> Vec<Vec<T>> {
    let mut lists: Vec<Vec<T>> = vec![Vec::new(); n];
    for_each_value(rows, slots, data, |s, v| lists[s].push(v));
    lists
}

/// The median: the middle value, or the mean of the two middle ones (`a/2 + b/2` if
/// `a + b` overflows). Reorders `values`.
fn median_f64(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let k = n / 2;
    let (left, &mut b, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    if n % 2 == 1 {
        return Some(b);
    }
    let a = left.iter().copied().max_by(f64::total_cmp)?;
    let sum = a + b;
    Some(if sum.is_finite() {
        sum / 2.0
    } else {
        a / 2.0 + b / 2.0
    })
}

/// The median of integers as a number: the mean of the two middle values is computed
/// exactly and rounded once.
fn median_i64(values: &mut [i64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let k = n / 2;
    let (left, &mut b, _) = values.select_nth_unstable(k);
    if n % 2 == 1 {
        return Some(b as f64);
    }
    let a = left.iter().copied().max()?;
    Some((i128::from(a) + i128::from(b)) as f64 / 2.0)
}

/// Sample standard deviation per slot, two passes: the exact mean, then the exact sum of
/// the squared deviations, divided by n − 1. When a square overflows, the pass is redone on
/// values scaled by 2^-520 (a power of two, so the scaling itself is exact for all but
/// values near the bottom of the range) and the result scaled back.
fn std_dev<T: Copy>(
    rows: &Rows<'_>,
    slots: Slots<'_>,
    n: usize,
    data: &[Option<T>],
    to_f64: impl Fn(T) -> f64 + Copy,
) -> Vec<Scalar> {
    let run = |scale: f64| -> Vec<Option<f64>> {
        let mut sums = vec![ExactSum::new(); n];
        let mut counts = vec![0u64; n];
        for_each_value(rows, slots, data, |s, v| {
            sums[s].add(to_f64(v) * scale);
            counts[s] += 1;
        });
        let means: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(sum, &c)| if c == 0 { 0.0 } else { sum.mean(c) })
            .collect();
        let mut squares = vec![ExactSum::new(); n];
        for_each_value(rows, slots, data, |s, v| {
            let d = to_f64(v) * scale - means[s];
            squares[s].add(d * d);
        });
        squares
            .iter()
            .zip(&counts)
            .map(|(sq, &c)| (c >= 2).then(|| (sq.value() / (c - 1) as f64).sqrt()))
            .collect()
    };
    let mut out = run(1.0);
    if out.iter().any(|v| v.is_some_and(|x| !x.is_finite())) {
        let scaled = run(pow2(-520));
        for (o, s) in out.iter_mut().zip(scaled) {
            if o.is_some_and(|x| !x.is_finite()) {
                *o = s.map(|x| x * pow2(520));
            }
        }
    }
    out.into_iter()
        .map(|v| v.map_or(Scalar::Null, Scalar::Number))
        .collect()
}
