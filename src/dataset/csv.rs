//! A push-based RFC 4180 CSV parser that tracks the physical line each record starts on.
//!
//! (`csv-core` counts lines too, but only up to the end of the bytes it consumed, which may
//! run past the start of the next record; a byte-level state machine gives exact record
//! start lines and lets the field limit be checked as bytes arrive.)

use super::builder::{Builder, Cell};
use super::{ImportError, Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (blank lines are skipped here).
    RecordStart,
    /// At the start of a field inside a record.
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: either an escaped quote or the end of the field.
    QuoteInQuoted,
}

pub(crate) struct CsvParser {
    limits: Limits,
    state: State,
    /// The current physical line (1-based).
    line: u64,
    /// The line the current record started on.
    record_line: u64,
    /// The current record's field bytes, and where each field ends.
    buf: Vec<u8>,
    ends: Vec<usize>,
    field_start: usize,
    header: bool,
    /// The header's width, once read.
    expected: Option<usize>,
}

impl CsvParser {
    pub(crate) fn new(limits: Limits) -> Self {
        CsvParser {
            limits,
            state: State::RecordStart,
            line: 1,
            record_line: 1,
            buf: Vec::new(),
            ends: Vec::new(),
            field_start: 0,
            header: false,
            expected: None,
        }
    }

    fn push_byte(&mut self, b: u8, out: &Builder) -> Result<(), ImportError> {
        if self.buf.len() - self.field_start >= self.limits.max_field_bytes {
            let column = out.column_name(self.ends.len());
            return Err(ImportError::new(
                Some(self.record_line),
                column,
                format!(
                    "field {} is longer than {} bytes",
                    self.ends.len() + 1,
                    self.limits.max_field_bytes
                ),
            ));
        }
        self.buf.push(b);
        Ok(())
    }

    fn end_field(&mut self) -> Result<(), ImportError> {
        self.ends.push(self.buf.len());
        self.field_start = self.buf.len();
        if let Some(n) = self.expected.filter(|&n| self.ends.len() > n) {
            // A record longer than the header: report it without collecting the rest.
            return Err(ImportError::new(
                Some(self.record_line),
                None,
                format!("expected {n} fields as in the header, found more"),
            ));
        }
        if self.ends.len() > self.limits.max_columns {
            return Err(ImportError::new(
                Some(self.record_line),
                None,
                format!("more than {} columns", self.limits.max_columns),
            ));
        }
        Ok(())
    }

    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Builder) -> Result<(), ImportError> {
        for &b in input {
            match self.state {
                State::RecordStart => match b {
                    b'\n' => self.line += 1,
                    b'\r' => {}
                    _ => {
                        self.record_line = self.line;
                        self.state = State::FieldStart;
                        self.field_start_byte(b, out)?;
                    }
                },
                State::FieldStart => self.field_start_byte(b, out)?,
                State::Unquoted => match b {
                    b',' => {
                        self.end_field()?;
                        self.state = State::FieldStart;
                    }
                    b'\r' | b'\n' => self.end_record(b, out)?,
                    _ => self.push_byte(b, out)?,
                },
                State::Quoted => match b {
                    b'"' => self.state = State::QuoteInQuoted,
                    _ => {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        self.push_byte(b, out)?;
                    }
                },
                State::QuoteInQuoted => match b {
                    b'"' => {
                        self.push_byte(b'"', out)?;
                        self.state = State::Quoted;
                    }
                    b',' => {
                        self.end_field()?;
                        self.state = State::FieldStart;
                    }
                    b'\r' | b'\n' => self.end_record(b, out)?,
                    _ => {
                        // Lenient, as the `csv` crate: `"ab"c` is `abc`.
                        self.push_byte(b, out)?;
                        self.state = State::Unquoted;
                    }
                },
            }
        }
        Ok(())
    }

    fn field_start_byte(&mut self, b: u8, out: &mut Builder) -> Result<(), ImportError> {
        match b {
            b'"' => self.state = State::Quoted,
            b',' => self.end_field()?,
            b'\r' | b'\n' => self.end_record(b, out)?,
            _ => {
                self.push_byte(b, out)?;
                self.state = State::Unquoted;
            }
        }
        Ok(())
    }

    fn end_record(&mut self, terminator: u8, out: &mut Builder) -> Result<(), ImportError> {
        self.end_field()?;
        self.emit(out)?;
        if terminator == b'\n' {
            self.line += 1;
        }
        self.state = State::RecordStart;
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut Builder) -> Result<(), ImportError> {
        match self.state {
            State::RecordStart => {}
            State::Quoted => {
                return Err(ImportError::new(
                    Some(self.record_line),
                    out.column_name(self.ends.len()),
                    "quoted field not closed before the end of the input",
                ));
            }
            State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
                self.end_field()?;
                self.emit(out)?;
                self.state = State::RecordStart;
            }
        }
        if !self.header {
            return Err(ImportError::new(None, None, "no header row"));
        }
        Ok(())
    }

    /// Hands the record in `buf`/`ends` to the builder.
    fn emit(&mut self, out: &mut Builder) -> Result<(), ImportError> {
        let line = self.record_line;
        let result = self.emit_inner(out, line);
        if result.is_ok() && !self.header {
            self.header = true;
            self.expected = Some(out.column_count());
        }
        self.buf.clear();
        self.ends.clear();
        self.field_start = 0;
        result
    }

    fn emit_inner(&self, out: &mut Builder, line: u64) -> Result<(), ImportError> {
        let text = match std::str::from_utf8(&self.buf) {
            Ok(t) => t,
            Err(e) => {
                let field = self.ends.iter().position(|&end| end > e.valid_up_to());
                let column = field.and_then(|f| out.column_name(f));
                return Err(ImportError::new(Some(line), column, "invalid UTF-8"));
            }
        };
        // Fields end at ASCII separators, so every boundary is a char boundary.
        let mut start = 0;
        let mut fields = self.ends.iter().map(|&end| {
            let f = text.get(start..end).unwrap_or("");
            start = end;
            f
        });
        if !self.header {
            for name in fields {
                out.add_column(name, line)?;
            }
            return out.check_declared();
        }
        if self.ends.len() != out.column_count() {
            return Err(ImportError::new(
                Some(line),
                None,
                format!(
                    "expected {} fields as in the header, found {}",
                    out.column_count(),
                    self.ends.len()
                ),
            ));
        }
        out.start_row(line)?;
        for i in 0..self.ends.len() {
            let f = fields.next().unwrap_or("");
            let cell = if f.is_empty() {
                Cell::Null
            } else {
                Cell::Raw(f)
            };
            out.set(i, cell, line)?;
        }
        out.end_row();
        Ok(())
    }
}
