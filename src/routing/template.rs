//! Parsing of endpoint path templates such as `/items/{id}`, `/lists.{format}.json`,
//! `/v1/{topic}:publish` and `/files/{*rest}`. Templates are user input (they come from
//! project definitions and OpenAPI documents), so this module exists to turn that text into
//! a validated, structured form once, with errors a user can act on, and so that the router
//! never has to re-validate anything on the hot path. It must not panic on any input, must
//! not do IO, and knows nothing about methods, values or matching requests.
//!
//! Syntax, in short: a template starts with `/` and is split into segments by `/`. A segment
//! is static text, a *pattern* mixing literal text with `{name}` parameters, or (only as the
//! whole last segment) a tail wildcard `{*name}`. Literal text is limited to RFC 3986 `pchar`
//! (unreserved, sub-delims, `:`, `@` and `%XX` escapes). Empty segments are literal, so
//! `/items/` and `/items` are different templates.

use std::fmt;
use std::sync::Arc;

/// Longest template accepted, in bytes; longer ones are almost certainly a mistake and
/// bounding them keeps the per-segment matcher cheap.
pub const MAX_TEMPLATE_LEN: usize = 2048;
/// Most segments a template may have; this also bounds the router's recursion depth.
pub const MAX_SEGMENTS: usize = 64;
/// Longest parameter name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why a template was rejected. Every message is a sentence that tells the user what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a path template must start with `/`")]
    NotAbsolute,
    #[error("the template is {len} bytes long, but at most {MAX_TEMPLATE_LEN} bytes are allowed")]
    TooLong { len: usize },
    #[error("the template has {count} segments, but at most {MAX_SEGMENTS} are allowed")]
    TooManySegments { count: usize },
    #[error(
        "the `{{` at byte {at} is never closed; a parameter looks like `{{name}}` and cannot contain `/`"
    )]
    UnclosedBrace { at: usize },
    #[error(
        "unexpected `{ch}` at byte {at}; braces may only surround a parameter name, as in `{{name}}`"
    )]
    UnexpectedBrace { ch: char, at: usize },
    #[error("the parameter at byte {at} has no name; write `{{name}}` or `{{*name}}`")]
    EmptyName { at: usize },
    #[error(
        "parameter name `{name}` is invalid; a name starts with a letter or `_` and continues with letters, digits, `_`, `-` or `.`"
    )]
    InvalidName { name: String },
    #[error("parameter name `{name}` is longer than {MAX_NAME_LEN} characters")]
    NameTooLong { name: String },
    #[error(
        "parameter `{{{name}}}` appears twice; every parameter in a template needs its own name"
    )]
    DuplicateName { name: String },
    #[error(
        "`{{*{name}}}` at byte {at} must be the whole last segment of the template, as in `/files/{{*{name}}}`"
    )]
    TailNotLast { name: String, at: usize },
    #[error(
        "the character {ch:?} at byte {at} is not allowed in a path template; percent-encode it (for example a space as `%20`)"
    )]
    InvalidChar { ch: char, at: usize },
    #[error("the `%` at byte {at} must be followed by two hex digits, as in `%2F`")]
    BadEscape { at: usize },
}

/// One `/`-separated piece of a parsed template, as the router walks it to build its tree.
/// Borrowed from the [`Template`], which keeps static text only once, in its raw form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment<'t> {
    /// Text that must equal the request segment byte for byte.
    Static(&'t str),
    /// Literal text interleaved with parameters: `lits[0]` comes before the first parameter
    /// and `lits[i]` after parameter `i`, so there is always one more literal (possibly empty)
    /// than parameters, and at least one parameter.
    Pattern { lits: &'t [Box<str>] },
    /// `{*name}`: the rest of the path, slashes included; only ever the last segment.
    Tail,
}

impl Segment<'_> {
    /// Appends this segment's name-free form, which is what decides routing behaviour.
    pub(super) fn write_shape(&self, out: &mut String) {
        match self {
            Segment::Static(text) => out.push_str(text),
            Segment::Pattern { lits } => {
                let mut first = true;
                for lit in lits.iter() {
                    if !first {
                        out.push_str("{}");
                    }
                    first = false;
                    out.push_str(lit);
                }
            }
            Segment::Tail => out.push_str("{*}"),
        }
    }
}

/// How a template stores one segment: static text is not copied, it is read back from the
/// raw template, whose `/`-separated pieces line up with these.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Static,
    Pattern(Box<[Box<str>]>),
    Tail,
}

/// What a template with parameters needs beyond its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dynamic {
    parts: Box<[Part]>,
    /// Parameter names in template order; the tail name, if any, is last because the tail is
    /// always the last segment.
    names: Box<[Box<str>]>,
}

/// A validated path template. Cheap to clone relative to how rarely templates change.
///
/// Memory matters here: a project holds one template per endpoint, and most are all static
/// (`/users/me`). Such a template is its text, shared with the definition it came from
/// ([`Template::parse_shared`]), and nothing else: no allocation of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: Arc<str>,
    /// `None` when every segment is static.
    dynamic: Option<Box<Dynamic>>,
}

#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "read by response templates and scripts (later issues) and by tests"
    )
)]
impl Template {
    /// Parses and validates `raw`. Never panics; every rejection names its cause.
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        Template::parse_shared(Arc::from(raw))
    }

    /// Parses and validates `raw`, keeping that very allocation as the template's text.
    pub fn parse_shared(raw: Arc<str>) -> Result<Template, TemplateError> {
        if raw.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::TooLong { len: raw.len() });
        }
        let Some(body) = raw.strip_prefix('/') else {
            return Err(TemplateError::NotAbsolute);
        };
        let count = body.split('/').count();
        if count > MAX_SEGMENTS {
            return Err(TemplateError::TooManySegments { count });
        }
        let mut parts = Vec::new();
        let mut names = Vec::new();
        // Offsets in errors are relative to the whole template so users can find the spot.
        let mut offset = 1;
        let mut texts = body.split('/').enumerate().peekable();
        while let Some((index, text)) = texts.next() {
            let is_last = texts.peek().is_none();
            let part = parse_segment(text, offset, is_last, &mut names)?;
            if part != Part::Static && parts.is_empty() {
                // The first segment with a parameter: the static ones before it get parts
                // now, so that parts and segments stay aligned.
                parts.reserve_exact(count);
                parts.resize(index, Part::Static);
            }
            if !parts.is_empty() || part != Part::Static {
                parts.push(part);
            }
            offset += text.len() + 1;
        }
        let dynamic = (!parts.is_empty()).then(|| {
            Box::new(Dynamic {
                parts: parts.into_boxed_slice(),
                names: names.into_boxed_slice(),
            })
        });
        Ok(Template { raw, dynamic })
    }

    /// The template exactly as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The template's text, shared.
    pub fn shared(&self) -> &Arc<str> {
        &self.raw
    }

    /// Does any segment have a parameter (or the tail)?
    pub fn has_params(&self) -> bool {
        self.dynamic.is_some()
    }

    /// Parameter names in the order they appear, the tail wildcard (if any) last.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.names().iter().map(|name| &**name)
    }

    /// Canonical form with parameter names erased, e.g. `/items/{}` or `/files/{*}`. Two
    /// templates with the same shape match exactly the same paths in the same way, which is
    /// why the router treats them as the same route.
    pub fn shape(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        for segment in self.segments() {
            out.push('/');
            segment.write_shape(&mut out);
        }
        out
    }

    /// The segments in order.
    pub(super) fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        let parts = self.dynamic.as_deref().map_or(&[][..], |d| &d.parts[..]);
        let body = self.raw.get(1..).unwrap_or_default();
        body.split('/')
            .enumerate()
            .map(move |(index, text)| match parts.get(index) {
                None | Some(Part::Static) => Segment::Static(text),
                Some(Part::Pattern(lits)) => Segment::Pattern { lits },
                Some(Part::Tail) => Segment::Tail,
            })
    }

    /// How many segments there are: one per `/`, since each segment follows one.
    pub(super) fn segment_count(&self) -> usize {
        self.raw.bytes().filter(|&b| b == b'/').count()
    }

    pub(super) fn names(&self) -> &[Box<str>] {
        self.dynamic.as_deref().map_or(&[], |d| &d.names)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses one segment that starts at byte `base` of the template. Parameter names are
/// appended to `names`, which also serves to detect duplicates across segments.
fn parse_segment(
    text: &str,
    base: usize,
    is_last: bool,
    names: &mut Vec<Box<str>>,
) -> Result<Part, TemplateError> {
    let bytes = text.as_bytes();
    let mut lits: Vec<Box<str>> = Vec::new();
    // Literal text is copied verbatim, escapes included, so the literal being read is always
    // `text[start..i]`: nothing is allocated for a static segment.
    let mut start = 0;
    let mut i = 0;
    // The loop only ever advances over ASCII bytes (or to just past an ASCII `}`), so `i` is
    // always a char boundary, which the InvalidChar branch relies on to report the real char.
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'{' => {
                let close = find_close(bytes, i, base)?;
                let inner = text.get(i + 1..close).unwrap_or("");
                if let Some(name) = inner.strip_prefix('*') {
                    check_name(name, base + i)?;
                    if i != 0 || close + 1 != bytes.len() || !is_last {
                        return Err(TemplateError::TailNotLast {
                            name: name.to_owned(),
                            at: base + i,
                        });
                    }
                    push_name(names, name)?;
                    return Ok(Part::Tail);
                }
                check_name(inner, base + i)?;
                push_name(names, inner)?;
                lits.push(text.get(start..i).unwrap_or_default().into());
                start = close + 1;
                i = close + 1;
            }
            b'}' => {
                return Err(TemplateError::UnexpectedBrace {
                    ch: '}',
                    at: base + i,
                });
            }
            b'%' => {
                let hex = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err(TemplateError::BadEscape { at: base + i });
                }
                i += 3;
            }
            _ if is_pchar_literal(byte) => {
                i += 1;
            }
            _ => {
                let ch = text
                    .get(i..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(TemplateError::InvalidChar { ch, at: base + i });
            }
        }
    }
    if lits.is_empty() {
        Ok(Part::Static)
    } else {
        lits.push(text.get(start..).unwrap_or_default().into());
        Ok(Part::Pattern(lits.into_boxed_slice()))
    }
}

/// Finds the `}` closing the `{` at `open`. A segment never contains `/`, so reaching the
/// segment's end means the brace is unclosed; a nested `{` is reported where it stands.
fn find_close(bytes: &[u8], open: usize, base: usize) -> Result<usize, TemplateError> {
    let mut j = open + 1;
    loop {
        match bytes.get(j) {
            None => return Err(TemplateError::UnclosedBrace { at: base + open }),
            Some(b'}') => return Ok(j),
            Some(b'{') => {
                return Err(TemplateError::UnexpectedBrace {
                    ch: '{',
                    at: base + j,
                });
            }
            Some(_) => j += 1,
        }
    }
}

/// Checks `[A-Za-z_][A-Za-z0-9_.-]*` (OpenAPI documents name parameters `user-id` and
/// `owner.name`) and the length limit; `at` is where the `{` stands.
fn check_name(name: &str, at: usize) -> Result<(), TemplateError> {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return Err(TemplateError::EmptyName { at });
    };
    let valid = (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(TemplateError::InvalidName {
            name: name.to_owned(),
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(TemplateError::NameTooLong {
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn push_name(names: &mut Vec<Box<str>>, name: &str) -> Result<(), TemplateError> {
    // A linear scan is fine: the template length limit bounds the number of names.
    if names.iter().any(|existing| **existing == *name) {
        return Err(TemplateError::DuplicateName {
            name: name.to_owned(),
        });
    }
    names.push(name.into());
    Ok(())
}

/// RFC 3986 `pchar` minus `%`, which is handled separately because it starts an escape.
fn is_pchar_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}
