//! JSON input: a streaming splitter for a top-level array of objects, and one for JSON lines.
//! Each object's bytes are then parsed by `serde_json`, its values kept as raw JSON text so
//! that numbers keep their source text.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::builder::{Builder, Cell};
use super::{ImportError, Limits, quote_value};

/// An object's entries in source order, values unparsed.
struct Object<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push((k, v));
                }
                Ok(Object(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses one object (starting on `line`) into a row.
fn import_object(
    bytes: &[u8],
    line: u64,
    limits: &Limits,
    out: &mut Builder,
) -> Result<(), ImportError> {
    let object: Object<'_> = serde_json::from_slice(bytes).map_err(|e| {
        let at = if e.line() > 0 {
            line + e.line() as u64 - 1
        } else {
            line
        };
        ImportError::new(Some(at), None, format!("invalid JSON: {e}"))
    })?;
    out.start_row(line)?;
    for (key, raw) in &object.0 {
        let text = raw.get();
        let decoded;
        let cell = match text.as_bytes().first() {
            Some(b'n') => Cell::Null,
            Some(b't') => Cell::Bool(true),
            Some(b'f') => Cell::Bool(false),
            Some(b'"') => {
                decoded = serde_json::from_str::<String>(text).map_err(|e| {
                    ImportError::new(Some(line), Some(key), format!("invalid JSON string: {e}"))
                })?;
                Cell::Str(&decoded)
            }
            Some(b'[' | b'{') => {
                return Err(ImportError::new(
                    Some(line),
                    Some(key),
                    "nested arrays and objects are not supported",
                ));
            }
            _ => {
                if text.parse::<i64>().is_err() && !text.parse::<f64>().is_ok_and(|f| f.is_finite())
                {
                    return Err(ImportError::new(
                        Some(line),
                        Some(key),
                        format!("{} is out of range for a number", quote_value(text)),
                    ));
                }
                Cell::Num(text)
            }
        };
        if let Cell::Str(s) | Cell::Num(s) = cell
            && s.len() > limits.max_field_bytes
        {
            return Err(ImportError::new(
                Some(line),
                Some(key),
                format!("value is longer than {} bytes", limits.max_field_bytes),
            ));
        }
        let i = out.column(key, line)?;
        out.set(i, cell, line)?;
    }
    out.end_row();
    Ok(())
}

fn too_large(line: u64, limits: &Limits) -> ImportError {
    ImportError::new(
        Some(line),
        None,
        format!("object is longer than {} bytes", limits.max_element_bytes()),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` or `,`: an element or (only after `[`) `]`.
    BeforeElement { first: bool },
    /// Inside an element.
    Element {
        depth: u32,
        in_string: bool,
        escape: bool,
    },
    /// After an element: `,` or `]`.
    AfterElement,
    /// After the closing `]`: only whitespace.
    Done,
}

/// Splits a top-level JSON array into its elements, each parsed as it completes.
pub(crate) struct ArraySplitter {
    limits: Limits,
    state: State,
    line: u64,
    element_line: u64,
    buf: Vec<u8>,
}

impl ArraySplitter {
    pub(crate) fn new(limits: Limits) -> Self {
        ArraySplitter {
            limits,
            state: State::Start,
            line: 1,
            element_line: 1,
            buf: Vec::new(),
        }
    }

    fn unexpected(&self, b: u8, expected: &str) -> ImportError {
        let found = if b.is_ascii_graphic() {
            format!("`{}`", b as char)
        } else {
            format!("byte 0x{b:02x}")
        };
        ImportError::new(
            Some(self.line),
            None,
            format!("expected {expected}, found {found}"),
        )
    }

    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Builder) -> Result<(), ImportError> {
        for &b in input {
            let ws = matches!(b, b' ' | b'\t' | b'\r' | b'\n');
            match self.state {
                State::Start => {
                    if b == b'[' {
                        self.state = State::BeforeElement { first: true };
                    } else if !ws {
                        return Err(self.unexpected(b, "a JSON array of objects (`[`)"));
                    }
                }
                State::BeforeElement { first } => {
                    if b == b'{' {
                        self.element_line = self.line;
                        self.buf.clear();
                        self.buf.push(b);
                        self.state = State::Element {
                            depth: 1,
                            in_string: false,
                            escape: false,
                        };
                    } else if b == b']' && first {
                        self.state = State::Done;
                    } else if !ws {
                        return Err(self.unexpected(b, "an object (`{`)"));
                    }
                }
                State::Element {
                    depth,
                    in_string,
                    escape,
                } => {
                    if self.buf.len() >= self.limits.max_element_bytes() {
                        return Err(too_large(self.element_line, &self.limits));
                    }
                    self.buf.push(b);
                    let (mut depth, mut in_string, mut escape) = (depth, in_string, escape);
                    if in_string {
                        if escape {
                            escape = false;
                        } else if b == b'\\' {
                            escape = true;
                        } else if b == b'"' {
                            in_string = false;
                        }
                    } else {
                        match b {
                            b'"' => in_string = true,
                            b'{' | b'[' => depth = depth.saturating_add(1),
                            b'}' | b']' => depth = depth.saturating_sub(1),
                            _ => {}
                        }
                    }
                    if depth == 0 {
                        // serde_json reports positions relative to the element's first line.
                        import_object(&self.buf, self.element_line, &self.limits, out)?;
                        self.buf.clear();
                        self.state = State::AfterElement;
                        continue;
                    }
                    self.state = State::Element {
                        depth,
                        in_string,
                        escape,
                    };
                }
                State::AfterElement => {
                    if b == b',' {
                        self.state = State::BeforeElement { first: false };
                    } else if b == b']' {
                        self.state = State::Done;
                    } else if !ws {
                        return Err(self.unexpected(b, "`,` or `]`"));
                    }
                }
                State::Done => {
                    if !ws {
                        return Err(self.unexpected(b, "the end of the input"));
                    }
                }
            }
            if b == b'\n' {
                self.line += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, _out: &mut Builder) -> Result<(), ImportError> {
        if self.state == State::Done {
            return Ok(());
        }
        let line = match self.state {
            State::Element { .. } => self.element_line,
            _ => self.line,
        };
        Err(ImportError::new(
            Some(line),
            None,
            "unexpected end of the input: the JSON array is not closed",
        ))
    }
}

/// Splits JSON lines; each non-blank line is one object.
pub(crate) struct LineSplitter {
    limits: Limits,
    line: u64,
    buf: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn new(limits: Limits) -> Self {
        LineSplitter {
            limits,
            line: 1,
            buf: Vec::new(),
        }
    }

    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Builder) -> Result<(), ImportError> {
        let mut rest = input;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.append(&rest[..i])?;
                    self.flush(out)?;
                    self.line += 1;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.append(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ImportError> {
        if self.buf.len() + bytes.len() > self.limits.max_element_bytes() {
            return Err(too_large(self.line, &self.limits));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self, out: &mut Builder) -> Result<(), ImportError> {
        let trimmed = self.buf.trim_ascii();
        if !trimmed.is_empty() {
            if trimmed.first() != Some(&b'{') {
                return Err(ImportError::new(
                    Some(self.line),
                    None,
                    "expected a JSON object on this line",
                ));
            }
            import_object(trimmed, self.line, &self.limits, out)?;
        }
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut Builder) -> Result<(), ImportError> {
        self.flush(out)
    }
}
