//! Regular expressions in schemas: cleaning up how documents write them, asking the
//! validator's own engine whether it can compile and match one, and making strings that
//! match one for samples.
//!
//! The engine is the `jsonschema` crate's (fancy-regex over ECMA-262 syntax translated to
//! Rust's): a pattern is checked by building a one-keyword validator, so "compiles" means
//! exactly what validation will do. Strings are generated from `regex-syntax`'s parse with
//! lookaround removed, then checked with that engine; nothing here trusts the generator.

use std::borrow::Cow;
use std::collections::HashMap;

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{Value, json};

/// Candidates tried for one pattern before giving up.
const ATTEMPTS: u64 = 48;
/// Longest string the generator builds; patterns asking for more are not sampled.
const MAX_GENERATED: usize = 4096;
/// Characters a sample prefers, in a class that allows them: they read well in a mock.
const NICE: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";

/// A pattern written as a JavaScript literal, `/…/flags`, as the inner pattern: flags `i`,
/// `m` and `s` become an inline group (`(?i)`); `g`, `u`, `y`, `d` and `v` mean nothing to
/// a single match and are dropped. Anything else is returned as it is.
pub(crate) fn strip_literal(pattern: &str) -> Cow<'_, str> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Cow::Borrowed(pattern);
    };
    let Some(close) = rest.rfind('/') else {
        return Cow::Borrowed(pattern);
    };
    let (body, flags) = (&rest[..close], &rest[close + 1..]);
    if body.is_empty() || !flags.chars().all(|c| "dgimsuyv".contains(c)) {
        return Cow::Borrowed(pattern);
    }
    let inline: String = flags.chars().filter(|c| "ims".contains(*c)).collect();
    if inline.is_empty() {
        Cow::Owned(body.to_owned())
    } else {
        Cow::Owned(format!("(?{inline}){body}"))
    }
}

/// Compiled one-keyword validators by pattern, so a document's repeated patterns are compiled
/// once; `None` for a pattern the engine rejects.
#[derive(Default)]
pub(crate) struct Engine {
    compiled: HashMap<String, Option<jsonschema::Validator>>,
}

impl Engine {
    /// Whether the validator's engine compiles `pattern`.
    pub(crate) fn compiles(&mut self, pattern: &str) -> bool {
        self.validator(pattern).is_some()
    }

    /// Whether `text` matches `pattern` somewhere, as the `pattern` keyword checks it;
    /// `false` for a pattern that does not compile.
    pub(crate) fn matches(&mut self, pattern: &str, text: &str) -> bool {
        let instance = Value::String(text.to_owned());
        self.validator(pattern)
            .is_some_and(|validator| validator.is_valid(&instance))
    }

    fn validator(&mut self, pattern: &str) -> Option<&jsonschema::Validator> {
        if !self.compiled.contains_key(pattern) {
            let built = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&json!({ "pattern": pattern }))
                .ok();
            self.compiled.insert(pattern.to_owned(), built);
        }
        self.compiled.get(pattern).and_then(Option::as_ref)
    }
}

/// A string that matches every one of `patterns` (already cleaned and compilable) and has
/// between `min_len` and `max_len` characters, or `None` when no candidate passed the engine.
/// The same arguments always give the same string.
pub(crate) fn generate(
    engine: &mut Engine,
    patterns: &[String],
    min_len: usize,
    max_len: Option<usize>,
    variant: u64,
) -> Option<String> {
    let first = patterns.first()?;
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&without_lookaround(first))
        .ok();
    let fits = |text: &str| {
        let len = text.chars().count();
        len >= min_len && max_len.is_none_or(|max| len <= max)
    };
    let check = |engine: &mut Engine, text: &str| {
        fits(text) && patterns.iter().all(|p| engine.matches(p, text))
    };
    let seed = fnv(first.as_bytes()) ^ variant.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for attempt in 0..ATTEMPTS {
        let mut rng = Rng(seed ^ attempt.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut text = String::new();
        if let Some(hir) = &hir {
            let count = match attempt % 3 {
                0 => Count::Some,
                1 => Count::Fewest,
                _ => Count::Stretch(min_len),
            };
            let mode = Mode {
                count,
                wide: attempt % 2 == 1,
            };
            if !build(hir, &mut rng, mode, &mut text) {
                continue;
            }
        }
        if check(engine, &text) {
            return Some(text);
        }
        // An unanchored pattern also matches inside a longer string.
        let len = text.chars().count();
        if len < min_len && min_len <= MAX_GENERATED {
            let pad: String = "x".repeat(min_len - len);
            for candidate in [format!("{text}{pad}"), format!("{pad}{text}")] {
                if check(engine, &candidate) {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

/// How a candidate is built.
#[derive(Clone, Copy)]
struct Mode {
    count: Count,
    /// Classes draw from all printable ASCII they hold, not only letters and digits.
    wide: bool,
}

/// How repetitions choose their count.
#[derive(Clone, Copy)]
enum Count {
    /// A few more than the minimum, at random.
    Some,
    /// The minimum.
    Fewest,
    /// Enough extra to reach a minimum length.
    Stretch(usize),
}

/// Appends a string matching `hir` to `out`; `false` when it would grow too long.
fn build(hir: &Hir, rng: &mut Rng, mode: Mode, out: &mut String) -> bool {
    if out.len() > MAX_GENERATED {
        return false;
    }
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(literal) => match std::str::from_utf8(&literal.0) {
            Ok(text) => {
                out.push_str(text);
                true
            }
            Err(_) => false,
        },
        HirKind::Class(Class::Unicode(class)) => {
            let ranges: Vec<(char, char)> = class
                .ranges()
                .iter()
                .map(|r| (r.start(), r.end()))
                .collect();
            match pick_char(&ranges, rng, mode.wide) {
                Some(c) => {
                    out.push(c);
                    true
                }
                None => false,
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            let ranges: Vec<(char, char)> = class
                .ranges()
                .iter()
                .filter(|r| r.start().is_ascii())
                .map(|r| (char::from(r.start()), char::from(r.end().min(0x7f))))
                .collect();
            match pick_char(&ranges, rng, mode.wide) {
                Some(c) => {
                    out.push(c);
                    true
                }
                None => false,
            }
        }
        HirKind::Repetition(rep) => {
            let min = rep.min;
            let ceiling = rep.max.unwrap_or(u32::MAX);
            let extra = match mode.count {
                Count::Fewest => 0,
                Count::Some => rng.below(4),
                Count::Stretch(len) => {
                    rng.below(4) + u32::try_from(len).unwrap_or(u32::MAX).saturating_add(1)
                }
            };
            let count = min.saturating_add(extra).min(ceiling).max(min);
            for _ in 0..count {
                if !build(&rep.sub, rng, mode, out) {
                    return false;
                }
            }
            true
        }
        HirKind::Capture(capture) => build(&capture.sub, rng, mode, out),
        HirKind::Concat(parts) => parts.iter().all(|part| build(part, rng, mode, out)),
        HirKind::Alternation(branches) => {
            let index =
                usize::try_from(rng.below(u32::try_from(branches.len()).unwrap_or(u32::MAX)))
                    .unwrap_or(0);
            branches
                .get(index)
                .is_some_and(|branch| build(branch, rng, mode, out))
        }
    }
}

/// A character from `ranges`: one of [`NICE`] when the class has any, or in `Mode::wide`
/// any printable ASCII one (so that `[@$!%*?&]` gets picked), else its first printable one.
fn pick_char(ranges: &[(char, char)], rng: &mut Rng, wide: bool) -> Option<char> {
    let contains = |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
    let pool: Vec<char> = if wide {
        ('!'..='~').filter(|&c| contains(c)).collect()
    } else {
        NICE.chars().filter(|&c| contains(c)).collect()
    };
    if !pool.is_empty() {
        let index = usize::try_from(rng.below(u32::try_from(pool.len()).unwrap_or(1))).unwrap_or(0);
        return pool.get(index).copied();
    }
    ranges.iter().find_map(|&(lo, hi)| {
        let start = u32::from(lo).max(0x21);
        (start..=u32::from(hi))
            .take(256)
            .filter_map(char::from_u32)
            .find(|c| !c.is_control() && !c.is_whitespace())
            .or_else(|| (lo <= hi).then_some(lo))
    })
}

/// `pattern` without its lookaround groups (`(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`), which
/// `regex-syntax` cannot parse; what they demand is left to the engine's check.
fn without_lookaround(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("(?=") && !pattern.contains("(?!") && !pattern.contains("(?<") {
        return Cow::Borrowed(pattern);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let lookaround = rest.starts_with(&['(', '?', '='])
            || rest.starts_with(&['(', '?', '!'])
            || rest.starts_with(&['(', '?', '<', '='])
            || rest.starts_with(&['(', '?', '<', '!']);
        if lookaround {
            i = skip_group(&chars, i);
            continue;
        }
        match chars[i] {
            '\\' => {
                out.push('\\');
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
            }
            '[' => {
                let end = skip_class(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The index just past the group opening at `start`.
fn skip_group(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => i = skip_class(chars, i),
            '(' => {
                depth += 1;
                i += 1;
            }
            ')' => {
                depth = depth.saturating_sub(1);
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index just past the character class opening at `start`.
fn skip_class(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            ']' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// FNV-1a, for seeds derived from the input.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        u32::try_from(self.next() % u64::from(n)).unwrap_or(0)
    }
}
