//! Regular expressions in schemas: cleaning up how documents write them, and asking the
//! validator's own engine whether it can compile and match one.
//!
//! The engine is the `jsonschema` crate's (fancy-regex over ECMA-262 syntax translated to
//! Rust's): a pattern is checked by building a one-keyword validator, so "compiles" means
//! exactly what validation will do.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::json;

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
