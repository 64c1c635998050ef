//! Example values from schemas, for mock responses and documentation: deterministic (the same
//! schema and document always give the same value; the only randomness is seeded from the
//! pattern being matched) and valid against the normalised schema wherever that can be had.
//!
//! The schema is normalised first (see `normalize`), with every schema it references, and
//! the value is made from that 2020-12 form, so the rules are the validator's rules. A value
//! comes from, in order: `const`, `examples[0]` (3.0's `example`), `default`, `enum[0]`, and
//! otherwise from the type and its bounds. `allOf` branches are merged; `oneOf` and `anyOf`
//! take the first branch that works (for `oneOf`, the first whose value no other branch
//! also accepts), with a `discriminator` property set to the branch's mapping key or schema
//! name. Objects get their required properties and optional ones up to a bound, never a
//! `readOnly` one in a request nor a `writeOnly` one in a response.
//!
//! Recursion always ends: a reference met again inside itself is left out where the value
//! can do without it (an optional property, an array that may be empty, another branch);
//! where it cannot, it is followed at most `MAX_REENTRIES` times, and then a minimal value
//! stands in. Finally the value is checked with the validator itself; whatever it reports,
//! and whatever the generator knew it could not honour, comes back as notes with the
//! JSON pointer of the place in the value.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value, json};

use super::normalize::{Normalizer, compile, compile_with, exempting, flagged};
use super::pattern::{self, Engine};
use super::{Direction, Note, Version, child_pointer, refs};

/// How many times a reference may be entered again inside itself where it cannot be left out.
const MAX_REENTRIES: usize = 8;
/// Schema visits in one sample; past it optional parts are left out and recursion stops.
const BUDGET: usize = 20_000;
/// Properties an object gets at most unless its schema requires more.
const MAX_PROPERTIES: usize = 16;
/// The longest string a sample makes; a `minLength` beyond it is noted.
const MAX_STRING: usize = 16_384;
/// Validation errors reported as notes at most.
const MAX_ERROR_NOTES: usize = 5;

/// A sample value and where it may not be valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The value.
    pub value: Value,
    /// Places (JSON pointers into `value`) that may not be valid, and why.
    pub notes: Vec<Note>,
}

/// A value for `schema`, a Schema Object of the document `root` written for `version`, to
/// travel in `direction`. Never fails; see [`Sample::notes`].
pub fn sample(schema: &Value, root: &Value, version: Version, direction: Direction) -> Sample {
    let mut normalizer = Normalizer::new(root, version, direction);
    let top = normalizer.schema(schema, "", &HashSet::new());
    let document = normalizer.closure(&top);
    let mut generator = Generator {
        document: &document,
        direction,
        engine: std::mem::take(&mut normalizer.engine),
        notes: Vec::new(),
        stack: Vec::new(),
        path: Vec::new(),
        budget: BUDGET,
        exclusive: HashMap::new(),
    };
    let value = match generator.value(&top, Ctx::REQUIRED) {
        Ok(value) => value,
        Err(Skip) => Value::Null,
    };
    let mut notes = generator.notes;
    // Formats asserted: a schema whose `pattern` no value of its `format` can match (an
    // author's mistake) is reported, not passed off as valid.
    match compile_with(&top, &document, true) {
        Ok(validator) => {
            for error in validator.iter_errors(&value).take(MAX_ERROR_NOTES) {
                let at = error.instance_path().as_str().to_owned();
                notes.push(Note::new(
                    &at,
                    format!("the sample is not valid here: {error}"),
                ));
            }
        }
        Err(error) => notes.push(Note::new(
            "",
            format!("the sample could not be checked: {error}"),
        )),
    }
    Sample { value, notes }
}

/// A value that reached a reference already being generated, where its caller can do
/// without it.
#[derive(Debug)]
struct Skip;

/// How a value is asked for.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// The caller can leave this value out (an optional property, an array item past
    /// `minItems`, a branch with others to try).
    skippable: bool,
    /// Which of several distinct values to make (`uniqueItems`); 0 is the usual one.
    variant: u64,
}

impl Ctx {
    const REQUIRED: Ctx = Ctx {
        skippable: false,
        variant: 0,
    };
}

/// A schema with its `$ref` and `allOf` merged into one object, and its `oneOf`/`anyOf`
/// still to choose from.
#[derive(Debug, Clone, Default)]
struct Flat {
    node: Map<String, Value>,
    patterns: Vec<String>,
    choices: Vec<Choice>,
    /// A reference could not be entered again: make a minimal value.
    bounded: bool,
    /// The references entered for this value, outermost first.
    names: Vec<String>,
    /// A `discriminator` beside no `oneOf`/`anyOf`: a base schema that subtypes extend
    /// with `allOf`.
    discriminator: Option<Value>,
}

#[derive(Debug, Clone)]
struct Choice {
    /// `oneOf` (exactly one branch) rather than `anyOf`.
    one: bool,
    branches: Vec<Value>,
    discriminator: Option<Value>,
}

struct Generator<'d> {
    /// The normalised schemas references point at, at their places in the document.
    document: &'d Value,
    direction: Direction,
    engine: Engine,
    notes: Vec<Note>,
    /// References being generated (canonical), and whether each was entered again.
    stack: Vec<(String, bool)>,
    /// Where in the value the generator is.
    path: Vec<String>,
    budget: usize,
    /// Compiled `oneOf` lists, by their JSON text.
    exclusive: HashMap<String, Option<jsonschema::Validator>>,
}

impl<'d> Generator<'d> {
    fn note(&mut self, reason: impl Into<String>) {
        let at = self
            .path
            .iter()
            .fold(String::new(), |p, s| child_pointer(&p, s));
        self.notes.push(Note::new(&at, reason));
    }

    fn at<T>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment.into());
        let out = f(self);
        self.path.pop();
        out
    }

    fn value(&mut self, schema: &Value, ctx: Ctx) -> Result<Value, Skip> {
        self.budget = self.budget.saturating_sub(1);
        match schema {
            Value::Object(map) => {
                let mark = self.stack.len();
                let mut flat = Flat::default();
                let result = self
                    .absorb(&mut flat, map, ctx, 0)
                    .and_then(|()| self.choose(flat, ctx));
                self.stack.truncate(mark);
                result
            }
            Value::Bool(false) => {
                self.note("the schema accepts no value");
                Ok(Value::Null)
            }
            _ => Ok(json!({})),
        }
    }

    /// Merges `map`, its reference and its `allOf` branches into `flat`.
    fn absorb(
        &mut self,
        flat: &mut Flat,
        map: &Map<String, Value>,
        ctx: Ctx,
        depth: usize,
    ) -> Result<(), Skip> {
        if depth > 64 {
            self.note("`allOf` and `$ref` nest too deeply; the rest is ignored");
            return Ok(());
        }
        merge(&mut flat.node, &mut flat.patterns, map);
        let choices = map.contains_key("oneOf") || map.contains_key("anyOf");
        if let (Some(discriminator), false) = (map.get("discriminator"), choices) {
            flat.discriminator
                .get_or_insert_with(|| discriminator.clone());
        }
        if let Some(Value::String(reference)) = map.get("$ref") {
            flat.names.push(reference.clone());
            match self.enter(reference, ctx)? {
                Entered::Target(Value::Object(target)) => {
                    self.absorb(flat, target, ctx, depth + 1)?
                }
                Entered::Target(_) => {}
                Entered::Bounded(target) => {
                    flat.bounded = true;
                    if let Some(kind) = target.get("type") {
                        flat.node.insert("type".to_owned(), kind.clone());
                    }
                }
            }
        }
        for branch in map
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Value::Object(branch) = branch {
                self.absorb(flat, branch, ctx, depth + 1)?;
            }
        }
        for (key, one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(Value::Array(branches)) = map.get(key) {
                flat.choices.push(Choice {
                    one,
                    branches: branches.clone(),
                    discriminator: map.get("discriminator").cloned(),
                });
            }
        }
        Ok(())
    }

    /// Follows a reference, unless it is already being generated and can be left out.
    fn enter(&mut self, reference: &str, ctx: Ctx) -> Result<Entered<'d>, Skip> {
        let document = self.document;
        let canonical = refs::segments(reference)
            .map(|s| refs::encode(&s))
            .unwrap_or_default();
        let Ok(target) = refs::lookup_one(document, reference) else {
            return Ok(Entered::Target(&Value::Bool(true)));
        };
        let again = self.stack.iter().any(|(r, _)| *r == canonical);
        if again {
            if ctx.skippable {
                return Err(Skip);
            }
            let reentries = self.stack.iter().filter(|(_, again)| *again).count();
            if reentries >= MAX_REENTRIES || self.budget == 0 {
                return Ok(Entered::Bounded(target));
            }
        }
        self.stack.push((canonical, again));
        Ok(Entered::Target(target))
    }

    /// Takes a branch of each `oneOf`/`anyOf`, then makes the value.
    fn choose(&mut self, mut flat: Flat, ctx: Ctx) -> Result<Value, Skip> {
        if flat.choices.is_empty() {
            return self.make(&flat, ctx);
        }
        let choice = flat.choices.remove(0);
        let mut fallback = None;
        for branch in &choice.branches {
            let tried = Ctx {
                skippable: true,
                ..ctx
            };
            let Ok(value) = self.branch(&flat, &choice, branch, tried) else {
                continue;
            };
            if !choice.one || choice.branches.len() == 1 || self.exclusive(&choice, &value) {
                return Ok(value);
            }
            fallback.get_or_insert(value);
        }
        if let Some(value) = fallback {
            return Ok(value);
        }
        if ctx.skippable {
            return Err(Skip);
        }
        // Every branch recursed: follow the first one, as deep as allowed.
        let first = choice
            .branches
            .first()
            .cloned()
            .unwrap_or(Value::Bool(true));
        self.branch(&flat, &choice, &first, ctx)
    }

    fn branch(
        &mut self,
        flat: &Flat,
        choice: &Choice,
        branch: &Value,
        ctx: Ctx,
    ) -> Result<Value, Skip> {
        let mark = self.stack.len();
        let mut merged = flat.clone();
        let result = match branch {
            Value::Object(map) => self.absorb(&mut merged, map, ctx, 0),
            Value::Bool(true) => Ok(()),
            _ => Err(Skip),
        }
        .and_then(|()| self.choose(merged, ctx));
        self.stack.truncate(mark);
        let mut value = result?;
        if let (Some(discriminator), Value::Object(object)) = (&choice.discriminator, &mut value)
            && let Some((property, key)) = discriminate(discriminator, branch)
        {
            object.insert(property, Value::String(key));
        }
        Ok(value)
    }

    /// Whether `value` matches exactly one of a `oneOf`'s branches.
    fn exclusive(&mut self, choice: &Choice, value: &Value) -> bool {
        let schema = json!({ "oneOf": choice.branches });
        let key = schema.to_string();
        let document = self.document;
        let validator = self
            .exclusive
            .entry(key)
            .or_insert_with(|| compile(&schema, document).ok());
        validator.as_ref().is_none_or(|v| v.is_valid(value))
    }

    /// A value for a flattened schema with no choices left.
    fn make(&mut self, flat: &Flat, ctx: Ctx) -> Result<Value, Skip> {
        let node = &flat.node;
        if flat.bounded {
            self.note("the schema recurses without end here; a minimal value stands in");
            return Ok(minimal(node));
        }
        if let Some(value) = node.get("const") {
            return Ok(value.clone());
        }
        if let Some(value) = self.given(flat, ctx) {
            return Ok(value);
        }
        let excluded = excluded_types(node);
        Ok(match pick_type(node, &excluded) {
            "object" => {
                let mut value = self.object(flat, ctx)?;
                // A subtype made through `allOf` names itself in its base's discriminator.
                let named = flat.discriminator.as_ref().zip(flat.names.first());
                if let (Some((discriminator, name)), Value::Object(object)) = (named, &mut value)
                    && let Some((property, key)) =
                        discriminate(discriminator, &json!({ "$ref": name }))
                {
                    object.insert(property, Value::String(key));
                }
                value
            }
            "array" => return self.array(node, ctx),
            "string" => self.string(flat, ctx),
            "integer" => self.number(node, true, ctx),
            "number" => self.number(node, false, ctx),
            "boolean" => Value::Bool(ctx.variant.is_multiple_of(2)),
            _ => Value::Null,
        })
    }

    /// A value the schema itself offers (`examples`, `default`, `enum`) that fits it.
    fn given(&mut self, flat: &Flat, ctx: Ctx) -> Option<Value> {
        let node = &flat.node;
        let examples = node.get("examples").and_then(Value::as_array);
        let enumerated = node.get("enum").and_then(Value::as_array);
        let mut candidates: Vec<&Value> = Vec::new();
        let index = usize::try_from(ctx.variant).unwrap_or(usize::MAX);
        if ctx.variant == 0 {
            candidates.extend(examples.and_then(|e| e.first()));
            candidates.extend(node.get("default"));
        } else {
            candidates.extend(examples.and_then(|e| e.get(index)));
        }
        if let Some(values) = enumerated {
            let non_null: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
            let pool = if non_null.is_empty() {
                values.iter().collect()
            } else {
                non_null
            };
            if !pool.is_empty() {
                candidates.extend(pool.get(index % pool.len()).copied());
            }
        }
        let found = candidates.into_iter().find(|c| self.fits(flat, c)).cloned();
        if found.is_none() && enumerated.is_some_and(|values| !values.is_empty()) {
            // Nothing in the enum fits the other keywords: it still decides.
            return enumerated.and_then(|values| values.first()).cloned();
        }
        found
    }

    /// A cheap check that an offered value fits the keywords next to it.
    fn fits(&mut self, flat: &Flat, value: &Value) -> bool {
        let node = &flat.node;
        if let Some(values) = node.get("enum").and_then(Value::as_array)
            && !values.contains(value)
        {
            return false;
        }
        if !type_allows(node.get("type"), value) {
            return false;
        }
        match value {
            Value::Object(object) => node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .all(|name| object.contains_key(name)),
            Value::String(text) => {
                let len = text.chars().count();
                let (min, max) = length_bounds(node, "minLength", "maxLength");
                len >= min
                    && max.is_none_or(|max| len <= max)
                    && flat.patterns.iter().all(|p| self.engine.matches(p, text))
            }
            Value::Number(number) => number.as_f64().is_some_and(|n| {
                let (lo, hi) = number_bounds(node);
                lo.is_none_or(|(b, x)| if x { n > b } else { n >= b })
                    && hi.is_none_or(|(b, x)| if x { n < b } else { n <= b })
            }),
            _ => true,
        }
    }

    fn object(&mut self, flat: &Flat, ctx: Ctx) -> Result<Value, Skip> {
        let node = &flat.node;
        let properties = node
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let required: Vec<String> = node
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let (min, max) = length_bounds(node, "minProperties", "maxProperties");
        let limit = max.unwrap_or(usize::MAX);
        let hide = exempting(self.direction);
        let mut out = Map::new();
        // Required properties, in the order the schema lists its properties.
        let mut wanted: Vec<&String> = properties.keys().filter(|n| required.contains(n)).collect();
        wanted.extend(required.iter().filter(|n| !properties.contains_key(*n)));
        for name in wanted {
            let schema = self.property_schema(node, &properties, name);
            let value = self.at(name.clone(), |g| g.value(&schema, ctx))?;
            out.insert(name.clone(), value);
        }
        // Optional ones, up to the bound.
        let bound = limit.min(MAX_PROPERTIES.max(min));
        for (name, schema) in &properties {
            if out.len() >= bound || self.budget == 0 {
                break;
            }
            if out.contains_key(name) || flagged(schema, hide, self.document, 0) {
                continue;
            }
            let optional = Ctx {
                skippable: true,
                ..ctx
            };
            if let Ok(value) = self.at(name.clone(), |g| g.value(schema, optional)) {
                out.insert(name.clone(), value);
            }
        }
        // A map with no declared properties shows one entry of its values' shape.
        let additional = node.get("additionalProperties");
        let shows_entry = properties.is_empty()
            && additional.is_some_and(|a| a.as_object().is_some_and(|m| !m.is_empty()))
            && out.len() < limit;
        // More properties while `minProperties` asks: declared ones left out so far, then
        // names `patternProperties` or `additionalProperties` allow; first only those that
        // do not recurse, then any.
        let wanted = min.min(limit);
        for avoid_recursion in [true, false] {
            let entry = Ctx {
                skippable: avoid_recursion || ctx.skippable,
                ..ctx
            };
            for (name, schema) in &properties {
                if out.len() >= wanted {
                    break;
                }
                if !out.contains_key(name)
                    && let Ok(value) = self.at(name.clone(), |g| g.value(schema, entry))
                {
                    out.insert(name.clone(), value);
                }
            }
            let mut extra = 0u64;
            while out.len() < wanted && extra < min as u64 + 8 && self.budget > 0 {
                extra += 1;
                let Some(name) = self.extra_name(node, &out, extra) else {
                    break;
                };
                let schema = self.property_schema(node, &properties, &name);
                if let Ok(value) = self.at(name.clone(), |g| g.value(&schema, entry)) {
                    out.insert(name, value);
                }
            }
        }
        if out.len() < wanted && ctx.skippable {
            return Err(Skip);
        }
        // A map with no declared properties shows one entry of its values' shape.
        if shows_entry
            && out.is_empty()
            && let Some(name) = self.extra_name(node, &out, 1)
        {
            let schema = self.property_schema(node, &properties, &name);
            let entry = Ctx {
                skippable: true,
                ..ctx
            };
            if let Ok(value) = self.at(name.clone(), |g| g.value(&schema, entry)) {
                out.insert(name, value);
            }
        }
        if out.len() < min {
            self.note(format!(
                "the object needs {min} properties and the sample has {}",
                out.len()
            ));
        }
        Ok(Value::Object(out))
    }

    /// The schema a property's value must satisfy: its declared schema, those of the
    /// `patternProperties` it matches, or `additionalProperties`.
    fn property_schema(
        &mut self,
        node: &Map<String, Value>,
        properties: &Map<String, Value>,
        name: &str,
    ) -> Value {
        let mut parts: Vec<Value> = properties.get(name).cloned().into_iter().collect();
        for (pattern, schema) in node
            .get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if self.engine.matches(pattern, name) {
                parts.push(schema.clone());
            }
        }
        if parts.is_empty() {
            parts.extend(node.get("additionalProperties").cloned());
        }
        match parts.len() {
            0 => Value::Bool(true),
            1 => parts.pop().unwrap_or(Value::Bool(true)),
            _ => json!({ "allOf": parts }),
        }
    }

    /// A name for an extra property: from `patternProperties`, or when other names are
    /// allowed, `additionalProp1`, `additionalProp2`…, all fitting `propertyNames`.
    fn extra_name(
        &mut self,
        node: &Map<String, Value>,
        taken: &Map<String, Value>,
        n: u64,
    ) -> Option<String> {
        let names_schema = node.get("propertyNames");
        let mut candidates: Vec<String> = Vec::new();
        for pattern in node
            .get("patternProperties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(p, _)| p)
        {
            if let Some(name) = pattern::generate(
                &mut self.engine,
                std::slice::from_ref(pattern),
                1,
                Some(64),
                n,
            ) {
                candidates.push(name);
            }
        }
        if node.get("additionalProperties") != Some(&Value::Bool(false)) {
            match names_schema {
                Some(schema) => {
                    let name = self
                        .value(
                            schema,
                            Ctx {
                                skippable: false,
                                variant: n,
                            },
                        )
                        .ok();
                    candidates.extend(name.and_then(|v| v.as_str().map(str::to_owned)));
                }
                None => candidates.push(format!("additionalProp{n}")),
            }
        }
        candidates
            .into_iter()
            .find(|name| !taken.contains_key(name))
    }

    fn array(&mut self, node: &Map<String, Value>, ctx: Ctx) -> Result<Value, Skip> {
        let (min, max) = length_bounds(node, "minItems", "maxItems");
        let max = max.unwrap_or(usize::MAX);
        let prefix = node
            .get("prefixItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let items = node.get("items");
        let contains = node.get("contains");
        let min_contains = if contains.is_some() {
            length_bounds(node, "minContains", "maxContains")
                .0
                .max(usize::from(!node.contains_key("minContains")))
        } else {
            0
        };
        let unique = node.get("uniqueItems") == Some(&Value::Bool(true));
        let shaped = items.is_some_and(|i| i != &Value::Bool(false))
            || !prefix.is_empty()
            || contains.is_some();
        let mut target = min
            .max(min_contains)
            .max(usize::from(shaped))
            .max(prefix.len());
        if items == Some(&Value::Bool(false)) {
            target = target.min(prefix.len());
        }
        target = target.min(max).min(min.max(MAX_PROPERTIES));
        if self.budget == 0 {
            target = min;
        }
        let mut out: Vec<Value> = Vec::new();
        for index in 0..target {
            if self.budget == 0 && index >= min.min(1) {
                break;
            }
            let mut schema = prefix
                .get(index)
                .or(items)
                .cloned()
                .unwrap_or(Value::Bool(true));
            if index < min_contains
                && let Some(contains) = contains
            {
                schema = json!({ "allOf": [schema, contains] });
            }
            let item_ctx = Ctx {
                skippable: index >= min || ctx.skippable,
                variant: ctx.variant,
            };
            let mut made = self.at(index.to_string(), |g| g.value(&schema, item_ctx));
            if unique {
                let mut attempt = 1u64;
                while matches!(&made, Ok(value) if out.contains(value)) && attempt < 16 {
                    let varied = Ctx {
                        variant: item_ctx.variant.wrapping_add(attempt),
                        ..item_ctx
                    };
                    made = self.at(index.to_string(), |g| g.value(&schema, varied));
                    attempt += 1;
                }
            }
            match made {
                Ok(value) if unique && out.contains(&value) => {
                    if index >= min {
                        break;
                    }
                    self.at(index.to_string(), |g| {
                        g.note("could not make an item different from the others")
                    });
                    out.push(value);
                }
                Ok(value) => out.push(value),
                Err(Skip) if index >= min => break,
                Err(Skip) => return Err(Skip),
            }
        }
        if out.len() < min {
            self.note(format!(
                "the array needs {min} items and the sample has {}",
                out.len()
            ));
        }
        Ok(Value::Array(out))
    }

    fn string(&mut self, flat: &Flat, ctx: Ctx) -> Value {
        let node = &flat.node;
        let (min, max) = length_bounds(node, "minLength", "maxLength");
        if !flat.patterns.is_empty() {
            if let Some(text) =
                pattern::generate(&mut self.engine, &flat.patterns, min, max, ctx.variant)
            {
                return Value::String(text);
            }
            let shown = flat.patterns.join("`, `");
            self.note(format!(
                "could not make a string matching `{shown}`; a plain string stands in"
            ));
        }
        if let Some(format) = node.get("format").and_then(Value::as_str)
            && let Some(text) = formatted(format, ctx.variant)
        {
            let len = text.chars().count();
            if len >= min && max.is_none_or(|max| len <= max) {
                return Value::String(text);
            }
        }
        let mut text = if ctx.variant == 0 {
            "string".to_owned()
        } else {
            format!("string{}", ctx.variant)
        };
        // Long strings spend the budget too, so a sample stays small whatever it asks.
        let allowed = if self.budget == 0 { 256 } else { MAX_STRING };
        if min > allowed {
            self.note(format!(
                "a string of {min} characters is too long to sample"
            ));
        }
        let len = text.chars().count();
        if len < min.min(allowed) {
            text.push_str(&"x".repeat(min.min(allowed) - len));
        }
        self.budget = self.budget.saturating_sub(text.len() / 64);
        if let Some(max) = max {
            text = text.chars().take(max).collect();
        }
        Value::String(text)
    }

    fn number(&mut self, node: &Map<String, Value>, integer: bool, ctx: Ctx) -> Value {
        let (mut lo, mut hi) = number_bounds(node);
        if integer {
            let range = match node.get("format").and_then(Value::as_str) {
                Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
                Some("int64") => Some((-9.0e18, 9.0e18)),
                _ => None,
            };
            // The format narrows bounds the schema gives; it adds none (0 reads better than
            // -2^31 where nothing is asked).
            if let Some((low, high)) = range {
                lo = lo.map(|l| tighter_low(Some(l), (low, false)));
                hi = hi.map(|h| tighter_high(Some(h), (high, false)));
            }
        }
        let step = node
            .get("multipleOf")
            .and_then(Value::as_f64)
            .filter(|m| *m > 0.0);
        #[allow(clippy::cast_precision_loss)]
        let variant = ctx.variant as f64;
        let candidate = pick_number(lo, hi, step, integer, variant)
            .or_else(|| pick_number(lo, hi, step, integer, 0.0));
        match candidate {
            Some(number) => number_value(number, integer),
            None => {
                self.note("no number fits its bounds and `multipleOf`");
                number_value(lo.map_or(0.0, |(b, _)| b), integer)
            }
        }
    }
}

enum Entered<'d> {
    Target(&'d Value),
    Bounded(&'d Value),
}

/// The discriminator property and the value that selects `branch`: the `mapping` key that
/// points at its `$ref`, else the name the reference ends with.
fn discriminate(discriminator: &Value, branch: &Value) -> Option<(String, String)> {
    let property = discriminator.get("propertyName")?.as_str()?.to_owned();
    let reference = branch.get("$ref")?.as_str()?;
    let canonical = refs::segments(reference).ok()?;
    let mapped = discriminator
        .get("mapping")
        .and_then(Value::as_object)
        .and_then(|mapping| {
            mapping.iter().find_map(|(key, target)| {
                let target = target.as_str()?;
                let target = if target.starts_with('#') {
                    refs::segments(target).ok()?
                } else {
                    vec![
                        "components".to_owned(),
                        "schemas".to_owned(),
                        target.to_owned(),
                    ]
                };
                (target == canonical).then(|| key.clone())
            })
        });
    let key = mapped.or_else(|| canonical.last().cloned())?;
    Some((property, key))
}

/// Combines the keywords of `part` into `node`, as `allOf` means them: bounds tighten,
/// `required` and `properties` join, `enum` narrows. Applicators stay where they are.
fn merge(node: &mut Map<String, Value>, patterns: &mut Vec<String>, part: &Map<String, Value>) {
    for (key, value) in part {
        let key_str = key.as_str();
        if matches!(
            key_str,
            "$ref" | "allOf" | "oneOf" | "anyOf" | "discriminator"
        ) {
            continue;
        }
        if key_str == "pattern" {
            if let Some(p) = value.as_str()
                && !patterns.iter().any(|q| q == p)
            {
                patterns.push(p.to_owned());
            }
            continue;
        }
        let Some(existing) = node.get_mut(key_str) else {
            node.insert(key.clone(), value.clone());
            continue;
        };
        match key_str {
            "type" => {
                if let Some(both) = intersect_types(existing, value) {
                    *existing = both;
                }
            }
            "properties" | "patternProperties" | "dependentSchemas" => {
                if let (Value::Object(mine), Value::Object(theirs)) = (existing, value) {
                    for (name, schema) in theirs {
                        match mine.get_mut(name) {
                            Some(current) => {
                                *current = json!({ "allOf": [current.take(), schema] })
                            }
                            None => {
                                mine.insert(name.clone(), schema.clone());
                            }
                        }
                    }
                }
            }
            "required" => {
                if let (Value::Array(mine), Value::Array(theirs)) = (existing, value) {
                    for name in theirs {
                        if !mine.contains(name) {
                            mine.push(name.clone());
                        }
                    }
                }
            }
            "minimum" | "exclusiveMinimum" | "minLength" | "minItems" | "minProperties"
            | "minContains"
                if value.as_f64() > existing.as_f64() =>
            {
                *existing = value.clone();
            }
            "maximum" | "exclusiveMaximum" | "maxLength" | "maxItems" | "maxProperties"
            | "maxContains"
                if value.as_f64() < existing.as_f64() =>
            {
                *existing = value.clone();
            }
            "multipleOf" => {
                if let (Some(a), Some(b)) = (existing.as_f64(), value.as_f64()) {
                    let both = if (a / b).fract() == 0.0 {
                        a
                    } else if (b / a).fract() == 0.0 {
                        b
                    } else {
                        a * b
                    };
                    if let Some(number) = Number::from_f64(both) {
                        *existing = Value::Number(number);
                    }
                }
            }
            "enum" => {
                if let (Value::Array(mine), Value::Array(theirs)) = (&mut *existing, value) {
                    let narrowed: Vec<Value> = mine
                        .iter()
                        .filter(|v| theirs.contains(v))
                        .cloned()
                        .collect();
                    if !narrowed.is_empty() {
                        *mine = narrowed;
                    }
                }
            }
            "items"
            | "additionalProperties"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => {
                *existing = json!({ "allOf": [existing.take(), value] });
            }
            "not" => {
                *existing = json!({ "anyOf": [existing.take(), value] });
            }
            "prefixItems" => {
                if let (Value::Array(mine), Value::Array(theirs)) = (existing, value) {
                    for (index, schema) in theirs.iter().enumerate() {
                        match mine.get_mut(index) {
                            Some(current) => {
                                *current = json!({ "allOf": [current.take(), schema] })
                            }
                            None => mine.push(schema.clone()),
                        }
                    }
                }
            }
            "uniqueItems" | "readOnly" | "writeOnly" if value == &Value::Bool(true) => {
                *existing = Value::Bool(true);
            }
            // First one wins: `format`, `const`, `examples`, `default`, annotations.
            _ => {}
        }
    }
    if let Some(Value::String(p)) = node.remove("pattern")
        && !patterns.contains(&p)
    {
        patterns.push(p);
    }
}

fn type_names(value: &Value) -> Vec<&str> {
    match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn intersect_types(a: &Value, b: &Value) -> Option<Value> {
    let (a, b) = (type_names(a), type_names(b));
    let allows = |set: &[&str], name: &str| {
        set.contains(&name) || (name == "integer" && set.contains(&"number"))
    };
    let both: Vec<Value> = a
        .iter()
        .chain(b.iter())
        .filter(|name| allows(&a, name) && allows(&b, name))
        .map(|name| Value::String((*name).to_owned()))
        .fold(Vec::new(), |mut acc, name| {
            if !acc.contains(&name) {
                acc.push(name);
            }
            acc
        });
    (!both.is_empty()).then_some(Value::Array(both))
}

fn type_allows(types: Option<&Value>, value: &Value) -> bool {
    let Some(types) = types else { return true };
    let names = type_names(types);
    names.iter().any(|name| match *name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        _ => false,
    })
}

/// Types a simple `not` rules out (`not: {type: …}`).
fn excluded_types(node: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Object(not)) = node.get("not") else {
        return Vec::new();
    };
    if not.len() != 1 {
        return Vec::new();
    }
    not.get("type")
        .map(type_names)
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The type to make: the first non-null one allowed, else one the keywords suggest.
fn pick_type(node: &Map<String, Value>, excluded: &[String]) -> &'static str {
    const ORDER: &[&str] = &[
        "object", "array", "string", "integer", "number", "boolean", "null",
    ];
    let ok = |name: &str| !excluded.iter().any(|e| e == name);
    if let Some(types) = node.get("type") {
        let names = type_names(types);
        let chosen = names
            .iter()
            .find(|n| **n != "null" && ok(n))
            .or_else(|| names.iter().find(|n| ok(n)));
        if let Some(name) = chosen {
            return ORDER.iter().find(|o| *o == name).copied().unwrap_or("null");
        }
    }
    let has = |keys: &[&str]| keys.iter().any(|k| node.contains_key(*k));
    let suggested = if has(&[
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "minProperties",
        "maxProperties",
        "propertyNames",
    ]) {
        "object"
    } else if has(&[
        "items",
        "prefixItems",
        "contains",
        "minItems",
        "maxItems",
        "uniqueItems",
    ]) {
        "array"
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        "string"
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        "number"
    } else {
        "object"
    };
    if ok(suggested) {
        return suggested;
    }
    ORDER
        .iter()
        .copied()
        .find(|name| ok(name))
        .unwrap_or("null")
}

/// The smallest value of a schema's type, for where recursion had to stop.
fn minimal(node: &Map<String, Value>) -> Value {
    match node
        .get("type")
        .map(type_names)
        .unwrap_or_default()
        .first()
        .copied()
    {
        Some("array") => json!([]),
        Some("string") => json!(""),
        Some("integer" | "number") => json!(0),
        Some("boolean") => json!(false),
        Some("null") => Value::Null,
        _ => json!({}),
    }
}

fn length_bounds(node: &Map<String, Value>, min: &str, max: &str) -> (usize, Option<usize>) {
    let read = |key: &str| {
        node.get(key)
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    (read(min).unwrap_or(0), read(max))
}

/// The lower and upper bounds, each with whether it is exclusive.
#[allow(clippy::type_complexity)]
fn number_bounds(node: &Map<String, Value>) -> (Option<(f64, bool)>, Option<(f64, bool)>) {
    let get = |key: &str| node.get(key).and_then(Value::as_f64);
    let lo = match (get("minimum"), get("exclusiveMinimum")) {
        (Some(m), Some(x)) => Some(if x >= m { (x, true) } else { (m, false) }),
        (Some(m), None) => Some((m, false)),
        (None, Some(x)) => Some((x, true)),
        (None, None) => None,
    };
    let hi = match (get("maximum"), get("exclusiveMaximum")) {
        (Some(m), Some(x)) => Some(if x <= m { (x, true) } else { (m, false) }),
        (Some(m), None) => Some((m, false)),
        (None, Some(x)) => Some((x, true)),
        (None, None) => None,
    };
    (lo, hi)
}

fn tighter_low(current: Option<(f64, bool)>, other: (f64, bool)) -> (f64, bool) {
    match current {
        Some(c) if c.0 >= other.0 => c,
        _ => other,
    }
}

fn tighter_high(current: Option<(f64, bool)>, other: (f64, bool)) -> (f64, bool) {
    match current {
        Some(c) if c.0 <= other.0 => c,
        _ => other,
    }
}

/// A number within the bounds and on the `multipleOf` grid: the low bound (or 0, or the
/// high bound when that is negative), moved by `variant` steps when there is room.
fn pick_number(
    lo: Option<(f64, bool)>,
    hi: Option<(f64, bool)>,
    step: Option<f64>,
    integer: bool,
    variant: f64,
) -> Option<f64> {
    let above = |n: f64| lo.is_none_or(|(b, x)| if x { n > b } else { n >= b });
    let below = |n: f64| hi.is_none_or(|(b, x)| if x { n < b } else { n <= b });
    let fits = |n: f64| n.is_finite() && above(n) && below(n) && (!integer || n.fract() == 0.0);
    let grid = match step {
        Some(s) if integer => integer_grid(s),
        Some(s) => s,
        None if integer => 1.0,
        None => 0.0,
    };
    if grid > 0.0 {
        let (first, direction) = match (lo, hi) {
            (Some((b, _)), _) => ((b / grid).ceil(), 1.0),
            (None, Some((b, _))) if b < 0.0 => ((b / grid).floor(), -1.0),
            _ => (0.0, 1.0),
        };
        (0..4)
            .map(|k| round_to_grid((first + direction * (f64::from(k) + variant)) * grid, grid))
            .find(|n| fits(*n))
    } else {
        let base = match (lo, hi) {
            (Some((b, _)), _) => b,
            (None, Some((b, _))) if b < 0.0 => b,
            _ => 0.0,
        };
        let middle = match (lo, hi) {
            (Some((l, _)), Some((h, _))) => l + (h - l) / 2.0,
            _ => base,
        };
        [
            base + variant,
            base - variant,
            base + 1.0 + variant,
            base - 1.0 - variant,
            middle,
        ]
        .into_iter()
        .find(|n| fits(*n))
    }
}

/// The step of the whole numbers that are multiples of `step`: `step` itself when whole,
/// else its decimal numerator over what it shares with the denominator (0.5 → 1, 0.3 → 3).
fn integer_grid(step: f64) -> f64 {
    if step.fract() == 0.0 {
        return step;
    }
    let decimals = step
        .to_string()
        .split_once('.')
        .map_or(0, |(_, d)| d.len())
        .min(15);
    let scale = 10u64.pow(u32::try_from(decimals).unwrap_or(15));
    // Exact enough: `decimals` is how Rust writes `step`, so this is its decimal numerator.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let numerator = (step * scale as f64).round() as u64;
    let (mut a, mut b) = (numerator, scale);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    #[allow(clippy::cast_precision_loss)]
    let grid = (numerator / a.max(1)) as f64;
    grid.max(1.0)
}

/// `n` written with no more decimals than `grid`, so a decimal `multipleOf` divides it.
fn round_to_grid(n: f64, grid: f64) -> f64 {
    let decimals = grid
        .to_string()
        .split_once('.')
        .map_or(0, |(_, d)| d.len())
        .min(15);
    format!("{n:.decimals$}").parse().unwrap_or(n)
}

fn number_value(number: f64, integer: bool) -> Value {
    let whole = number.fract() == 0.0 && number.abs() < 9.0e15;
    if whole {
        // Exact: a whole number below 2^53 in magnitude.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(number as i64);
    }
    if integer {
        return Value::from(number.round() as i64);
    }
    Number::from_f64(number).map_or(Value::from(0), Value::Number)
}

/// A string in `format`; `variant` makes a different one.
fn formatted(format: &str, variant: u64) -> Option<String> {
    let v = variant;
    let day = 1 + v % 28;
    Some(match format {
        "date-time" => format!("2024-01-{day:02}T12:00:00Z"),
        "date" => format!("2024-01-{day:02}"),
        "time" => format!("12:{:02}:00Z", v % 60),
        "duration" => format!("P{}D", v + 1),
        "email" | "idn-email" => {
            if v == 0 {
                "user@example.com".to_owned()
            } else {
                format!("user{v}@example.com")
            }
        }
        "hostname" | "idn-hostname" => {
            if v == 0 {
                "example.com".to_owned()
            } else {
                format!("host{v}.example.com")
            }
        }
        "ipv4" => format!("192.0.2.{}", 1 + v % 254),
        "ipv6" => format!("2001:db8::{:x}", 1 + v % 0xfffe),
        "uri" | "url" | "iri" => {
            if v == 0 {
                "https://example.com/".to_owned()
            } else {
                format!("https://example.com/{v}")
            }
        }
        "uri-reference" | "iri-reference" => format!("/example/{v}"),
        "uri-template" if v == 0 => "https://example.com/{id}".to_owned(),
        "uri-template" => format!("https://example.com/{v}/{{id}}"),
        "uuid" => format!("3fa85f64-5717-4562-b3fc-{:012x}", 0x2c96_3f66_afa6 + v),
        "byte" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("sample {v}"))
        }
        "binary" => format!("binary data {v}"),
        "password" => format!("secret-{v}"),
        "regex" if v == 0 => "^[a-z]+$".to_owned(),
        "regex" => format!("^[a-z]{{{v}}}$"),
        "json-pointer" => format!("/example/{v}"),
        "relative-json-pointer" => format!("{v}/example"),
        _ => return None,
    })
}
