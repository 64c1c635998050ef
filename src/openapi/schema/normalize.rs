//! OpenAPI Schema Objects to JSON Schema 2020-12 that the `jsonschema` crate compiles.
//!
//! What changes, in both versions (a 3.1 document that kept 3.0 habits is read kindly):
//! `nullable: true` adds `"null"` to `type` and `enum` (applicators that would still refuse
//! null move into an `anyOf` beside `{"type": "null"}`); a boolean `exclusiveMinimum` or
//! `exclusiveMaximum` takes the number of `minimum`/`maximum`; `example` becomes
//! `examples: [example]`; `/…/i` pattern literals become the inner pattern; keywords whose
//! value has the wrong shape (`type: file`, `required: true`, `minimum: "5"`) are dropped.
//! In 3.0 a `$ref`'s siblings are dropped (the spec ignores them); in 3.1 they stay. Only
//! `required` depends on the [`Direction`]: a `readOnly` property is not required in a
//! request, nor a `writeOnly` one in a response. OpenAPI's own keywords (`discriminator`,
//! `xml`, `externalDocs`, `x-*`) stay: 2020-12 ignores unknown keywords.
//!
//! What cannot be enforced is left out and reported as a [`Note`], never an error: a pattern
//! the validator's regex engine rejects, a `$ref` that cannot be followed (another document,
//! a missing target, a cycle of bare references). `format` stays an annotation.
//!
//! References: internal `$ref`s stay `#/…` pointers into the document (re-encoded so they
//! parse as URIs). [`normalize_document`] normalises every Schema Object a document holds
//! in place, so those pointers still land on the same schemas, now normalised; [`compile`]
//! builds a validator for one normalised schema with that document registered as the
//! resource its pointers resolve in. Recursive schemas are references, so they just work.
//!
//! ```text
//! let doc = normalize_document(&raw_doc, version, Direction::Request);   // once
//! let body = normalize(&raw_body_schema, version, &raw_doc, Direction::Request);
//! let validator = compile(&body.schema, &doc.schema)?;                   // per schema
//! ```

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::pattern::{self, Engine};
use super::{Direction, Note, Version, child_pointer, refs, walk};

/// The base URI the document is registered under when compiling; `#/…` references in the
/// schema compiled are rewritten against it.
const DOCUMENT_URI: &str = "urn:switchyard:openapi";
/// How deep `readOnly`/`writeOnly` are looked for through references and `allOf`.
const MAX_FLAG_DEPTH: usize = 8;
/// The JSON Schema type names.
const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];
/// Keywords that refuse `null` whatever `type` says, moved beside `{"type": "null"}` by
/// `nullable`.
const NULL_REFUSING: &[&str] = &[
    "$ref", "allOf", "anyOf", "oneOf", "not", "const", "if", "then", "else",
];
/// The operations of a Path Item Object.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A normalised schema and what in it could not be enforced.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// JSON Schema 2020-12 (for [`normalize_document`], the whole document).
    pub schema: Value,
    /// Keywords left out, by the JSON pointer of the keyword in the input.
    pub notes: Vec<Note>,
}

/// Why [`compile`] could not build a validator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The document could not be registered as the resource references resolve in.
    #[error("the document cannot be used to resolve references: {0}")]
    Document(String),
    /// The schema, or a schema it references, did not compile.
    #[error("the schema does not compile: {0}")]
    Schema(String),
}

/// `schema`, a Schema Object of the document `root` written for `version`, as JSON Schema
/// 2020-12 for values travelling in `direction`. References stay references; see
/// [`normalize_document`] and [`compile`].
pub fn normalize(
    schema: &Value,
    version: Version,
    root: &Value,
    direction: Direction,
) -> Normalized {
    let mut normalizer = Normalizer::new(root, version, direction);
    let schema = normalizer.schema(schema, "", &HashSet::new());
    Normalized {
        schema,
        notes: normalizer.notes,
    }
}

/// The document `root` with every Schema Object it holds normalised in place: component
/// schemas, and the schemas of parameters, headers, request bodies and responses in
/// components, paths, callbacks and webhooks. Notes point into the document.
pub fn normalize_document(root: &Value, version: Version, direction: Direction) -> Normalized {
    let mut places = Vec::new();
    document_schemas(root, &mut places);
    let mut normalizer = Normalizer::new(root, version, direction);
    let mut out = root.clone();
    for place in places {
        let Some(raw) = root.pointer(&place) else {
            continue;
        };
        let normalized = normalizer.schema(raw, &place, &HashSet::new());
        if let Some(slot) = out.pointer_mut(&place) {
            *slot = normalized;
        }
    }
    Normalized {
        schema: out,
        notes: normalizer.notes,
    }
}

/// A validator for `schema` (normalised) whose `#/…` references resolve in `root` (the
/// document from [`normalize_document`]). Formats are annotations, as 2020-12 has them.
pub fn compile(schema: &Value, root: &Value) -> Result<jsonschema::Validator, CompileError> {
    compile_with(schema, root, false)
}

/// [`compile`], optionally asserting `format` (tests use it to check sampled formats).
pub(crate) fn compile_with(
    schema: &Value,
    root: &Value,
    assert_formats: bool,
) -> Result<jsonschema::Validator, CompileError> {
    let mut schema = schema.clone();
    walk::each_schema_mut(&mut schema, &mut |map| {
        if let Some(Value::String(reference)) = map.get_mut("$ref")
            && reference.starts_with('#')
        {
            *reference = format!("{DOCUMENT_URI}{reference}");
        }
    });
    let registry = jsonschema::Registry::new()
        .draft(jsonschema::Draft::Draft202012)
        .add(DOCUMENT_URI, root)
        .and_then(|builder| builder.prepare())
        .map_err(|error| CompileError::Document(error.to_string()))?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_registry(&registry)
        .should_validate_formats(assert_formats)
        .build(&schema)
        .map_err(|error| CompileError::Schema(error.to_string()))
}

/// Whether `schema` is marked `key` (`readOnly` or `writeOnly`), itself, through its
/// `$ref` or through an `allOf` branch.
pub(crate) fn flagged(schema: &Value, key: &str, root: &Value, depth: usize) -> bool {
    let Value::Object(map) = schema else {
        return false;
    };
    if map.get(key) == Some(&Value::Bool(true)) {
        return true;
    }
    if depth >= MAX_FLAG_DEPTH {
        return false;
    }
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| refs::resolve(root, reference).ok())
        && flagged(target, key, root, depth + 1)
    {
        return true;
    }
    map.get("allOf")
        .and_then(Value::as_array)
        .is_some_and(|branches| branches.iter().any(|b| flagged(b, key, root, depth + 1)))
}

/// The keyword that exempts a property from `required` going `direction`.
pub(crate) fn exempting(direction: Direction) -> &'static str {
    match direction {
        Direction::Request => "readOnly",
        Direction::Response => "writeOnly",
    }
}

/// One normalisation run over a document: its settings, the regex engine's cache and the
/// notes so far.
pub(crate) struct Normalizer<'a> {
    root: &'a Value,
    version: Version,
    direction: Direction,
    pub(crate) engine: Engine,
    pub(crate) notes: Vec<Note>,
}

impl<'a> Normalizer<'a> {
    pub(crate) fn new(root: &'a Value, version: Version, direction: Direction) -> Self {
        Normalizer {
            root,
            version,
            direction,
            engine: Engine::default(),
            notes: Vec::new(),
        }
    }

    fn note(&mut self, pointer: &str, reason: impl Into<String>) {
        self.notes.push(Note::new(pointer, reason));
    }

    /// The normalised form of the schema at `pointer`; `exempt` are property names an
    /// enclosing `allOf` declared `readOnly`/`writeOnly` (for this direction).
    pub(crate) fn schema(
        &mut self,
        value: &Value,
        pointer: &str,
        exempt: &HashSet<String>,
    ) -> Value {
        match value {
            Value::Bool(_) => value.clone(),
            Value::Object(map) => Value::Object(self.object(map, pointer, exempt)),
            _ => {
                self.note(
                    pointer,
                    "a schema must be an object or a boolean; any value is accepted here",
                );
                Value::Bool(true)
            }
        }
    }

    /// A sparse copy of the document holding, at their own places, the normalised targets of
    /// every reference `schema` (normalised) reaches, directly or through other targets.
    pub(crate) fn closure(&mut self, schema: &Value) -> Value {
        let mut sparse = Value::Object(Map::new());
        let mut seen = HashSet::new();
        let mut queue = walk::refs(schema);
        while let Some(reference) = queue.pop() {
            if !seen.insert(reference.clone()) {
                continue;
            }
            let Ok(segments) = refs::segments(&reference) else {
                continue;
            };
            let Ok(raw) = refs::lookup_one(self.root, &reference) else {
                continue;
            };
            let pointer: String = segments
                .iter()
                .fold(String::new(), |p, s| child_pointer(&p, s));
            let normalized = self.schema(raw, &pointer, &HashSet::new());
            queue.extend(walk::refs(&normalized));
            place(&mut sparse, self.root, &segments, normalized);
        }
        sparse
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        inherited: &HashSet<String>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(reference) = map.get("$ref") {
            self.reference(reference, &child_pointer(pointer, "$ref"), &mut out);
            if self.version == Version::V3_0 {
                // 3.0 ignores a reference's siblings; annotations are kept for readers.
                for key in ["description", "readOnly", "writeOnly"] {
                    if let Some(value) = map.get(key) {
                        out.insert(key.to_owned(), value.clone());
                    }
                }
                return out;
            }
        }
        let exempt = self.exempt_names(map, inherited);
        for (key, value) in map {
            let at = child_pointer(pointer, key);
            self.keyword(map, key, value, &at, &exempt, &mut out);
        }
        if map.get("nullable") == Some(&Value::Bool(true)) {
            add_null(&mut out);
        }
        out
    }

    /// Checks a `$ref` and writes its canonical form into `out`, or notes why it was left out.
    fn reference(&mut self, reference: &Value, at: &str, out: &mut Map<String, Value>) {
        let Some(text) = reference.as_str() else {
            self.note(at, "`$ref` must be a string; it is not enforced");
            return;
        };
        let checked = refs::target(self.root, text).and_then(|(_, target)| {
            refs::segments(text).map(|segments| (refs::encode(&segments), target))
        });
        match checked {
            Ok((canonical, target)) if target.is_object() || target.is_boolean() => {
                out.insert("$ref".to_owned(), Value::String(canonical));
            }
            Ok(_) => self.note(
                at,
                format!("`{text}` points at something that is not a schema; it is not enforced"),
            ),
            Err(error) => self.note(at, format!("{error}; it is not enforced")),
        }
    }

    fn keyword(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        value: &Value,
        at: &str,
        exempt: &HashSet<String>,
        out: &mut Map<String, Value>,
    ) {
        let keep = |out: &mut Map<String, Value>, v: Value| {
            out.insert(key.to_owned(), v);
        };
        match key {
            "$ref" | "nullable" | "$id" | "$schema" => {}
            "example" => {
                if !map.contains_key("examples") {
                    out.insert("examples".to_owned(), json!([value]));
                }
            }
            "examples" => {
                if value.is_array() {
                    keep(out, value.clone());
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" => match value {
                Value::Bool(true) => {
                    let bound = if key == "exclusiveMinimum" {
                        "minimum"
                    } else {
                        "maximum"
                    };
                    if let Some(number) = map.get(bound).filter(|b| b.is_number()) {
                        keep(out, number.clone());
                    }
                }
                Value::Bool(false) => {}
                Value::Number(_) => keep(out, value.clone()),
                _ => self.note(at, format!("`{key}` must be a number; it is not enforced")),
            },
            "minimum" | "maximum" => {
                let exclusive = if key == "minimum" {
                    "exclusiveMinimum"
                } else {
                    "exclusiveMaximum"
                };
                if !value.is_number() {
                    self.note(at, format!("`{key}` must be a number; it is not enforced"));
                } else if map.get(exclusive) != Some(&Value::Bool(true)) {
                    keep(out, value.clone());
                }
            }
            "multipleOf" => match value.as_f64() {
                Some(number) if number > 0.0 => keep(out, value.clone()),
                _ => self.note(
                    at,
                    "`multipleOf` must be a number above 0; it is not enforced",
                ),
            },
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" | "minContains" | "maxContains" => match count(value) {
                Some(number) => keep(out, Value::from(number)),
                None => self.note(
                    at,
                    format!("`{key}` must be a whole number of at least 0; it is not enforced"),
                ),
            },
            "type" => {
                if let Some(types) = self.types(value, at) {
                    keep(out, types);
                }
            }
            "required" => match value.as_array() {
                Some(names) => {
                    let mut kept: Vec<Value> = Vec::new();
                    for name in names.iter().filter(|n| n.is_string()) {
                        let exempted = name.as_str().is_some_and(|n| exempt.contains(n));
                        if !exempted && !kept.contains(name) {
                            kept.push(name.clone());
                        }
                    }
                    keep(out, Value::Array(kept));
                }
                None => self.note(
                    at,
                    "`required` must be a list of property names; it is not enforced",
                ),
            },
            "pattern" => match value.as_str() {
                Some(text) => {
                    if let Some(pattern) = self.pattern(text, at) {
                        keep(out, Value::String(pattern));
                    }
                }
                None => self.note(at, "`pattern` must be a string; it is not enforced"),
            },
            "format" | "title" | "description" | "$comment" | "contentMediaType"
            | "contentEncoding" | "$anchor" | "$dynamicAnchor" => {
                if value.is_string() {
                    keep(out, value.clone());
                }
            }
            "uniqueItems" | "readOnly" | "writeOnly" | "deprecated" => {
                if value.is_boolean() {
                    keep(out, value.clone());
                } else if key == "uniqueItems" {
                    self.note(at, "`uniqueItems` must be a boolean; it is not enforced");
                }
            }
            "enum" => match value {
                Value::Array(_) => keep(out, value.clone()),
                _ => self.note(at, "`enum` must be a list; it is not enforced"),
            },
            "items" => match value {
                // Tuple `items` (draft 4 to 2019-09) is `prefixItems` in 2020-12.
                Value::Array(list) if !map.contains_key("prefixItems") => {
                    let items = self.list(list, at, &HashSet::new());
                    out.insert("prefixItems".to_owned(), items);
                }
                Value::Array(_) => {
                    self.note(at, "a list in `items` is not enforced beside `prefixItems`")
                }
                _ => {
                    let schema = self.schema(value, at, &HashSet::new());
                    keep(out, schema);
                }
            },
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => match value.as_array() {
                Some(list) if !list.is_empty() => {
                    // `required` in one allOf branch may name a property another declares.
                    let passed = if key == "allOf" {
                        exempt.clone()
                    } else {
                        HashSet::new()
                    };
                    let items = self.list(list, at, &passed);
                    keep(out, items);
                }
                _ => self.note(
                    at,
                    format!("`{key}` must be a non-empty list of schemas; it is not enforced"),
                ),
            },
            "patternProperties" => match value.as_object() {
                Some(entries) => {
                    let mut kept = Map::new();
                    for (name, schema) in entries {
                        let entry_at = child_pointer(at, name);
                        if let Some(pattern) = self.pattern(name, &entry_at) {
                            let schema = self.schema(schema, &entry_at, &HashSet::new());
                            kept.insert(pattern, schema);
                        }
                    }
                    keep(out, Value::Object(kept));
                }
                None => self.note(
                    at,
                    "`patternProperties` must be an object; it is not enforced",
                ),
            },
            "properties" | "$defs" | "definitions" | "dependentSchemas" => {
                match value.as_object() {
                    Some(entries) => {
                        let mut kept = Map::new();
                        for (name, schema) in entries {
                            let schema =
                                self.schema(schema, &child_pointer(at, name), &HashSet::new());
                            kept.insert(name.clone(), schema);
                        }
                        keep(out, Value::Object(kept));
                    }
                    None => self.note(at, format!("`{key}` must be an object; it is not enforced")),
                }
            }
            "dependentRequired" => {
                let well_formed = value.as_object().is_some_and(|entries| {
                    entries.values().all(|names| {
                        names
                            .as_array()
                            .is_some_and(|names| names.iter().all(Value::is_string))
                    })
                });
                if well_formed {
                    keep(out, value.clone());
                } else {
                    self.note(
                        at,
                        "`dependentRequired` must map names to lists of names; it is not enforced",
                    );
                }
            }
            "dependencies" | "$recursiveRef" | "$recursiveAnchor" | "$dynamicRef" => {
                self.note(at, format!("`{key}` is not supported; it is not enforced"));
            }
            _ if walk::SINGLE.contains(&key) => {
                let schema = self.schema(value, at, &HashSet::new());
                keep(out, schema);
            }
            // Everything else is an annotation to 2020-12: `const`, `default`, OpenAPI's
            // `discriminator`, `xml`, `externalDocs`, `x-*`, and unknown keywords.
            _ => keep(out, value.clone()),
        }
    }

    fn list(&mut self, list: &[Value], at: &str, exempt: &HashSet<String>) -> Value {
        let items = list
            .iter()
            .enumerate()
            .map(|(index, item)| self.schema(item, &child_pointer(at, &index.to_string()), exempt))
            .collect();
        Value::Array(items)
    }

    /// The `type` keyword with only JSON Schema's type names.
    fn types(&mut self, value: &Value, at: &str) -> Option<Value> {
        match value {
            Value::String(name) if TYPES.contains(&name.as_str()) => Some(value.clone()),
            Value::Array(names) => {
                let mut kept: Vec<Value> = Vec::new();
                for name in names {
                    let known = name.as_str().is_some_and(|n| TYPES.contains(&n));
                    if known && !kept.contains(name) {
                        kept.push(name.clone());
                    } else if !known {
                        self.note(
                            at,
                            format!("{name} is not a JSON Schema type; it is left out"),
                        );
                    }
                }
                (!kept.is_empty()).then_some(Value::Array(kept))
            }
            _ => {
                self.note(
                    at,
                    format!("{value} is not a JSON Schema type; any type is accepted"),
                );
                None
            }
        }
    }

    /// A pattern as the engine will see it, or `None` (noted) when it does not compile.
    fn pattern(&mut self, text: &str, at: &str) -> Option<String> {
        let cleaned = pattern::strip_literal(text);
        if self.engine.compiles(&cleaned) {
            Some(cleaned.into_owned())
        } else {
            self.note(at, format!("`{text}` is not a regular expression the validator can compile; it is not enforced"));
            None
        }
    }

    /// Property names that `required` may not demand here: those this object (and its
    /// `allOf` branches, and in 3.1 its `$ref`) declares `readOnly` for requests or
    /// `writeOnly` for responses, and those an enclosing `allOf` passed down.
    fn exempt_names(
        &self,
        map: &Map<String, Value>,
        inherited: &HashSet<String>,
    ) -> HashSet<String> {
        let mut names = inherited.clone();
        self.collect_exempt(map, &mut names, 0);
        names
    }

    fn collect_exempt(&self, map: &Map<String, Value>, names: &mut HashSet<String>, depth: usize) {
        let key = exempting(self.direction);
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, schema) in properties {
                if flagged(schema, key, self.root, 0) {
                    names.insert(name.clone());
                }
            }
        }
        if depth >= MAX_FLAG_DEPTH {
            return;
        }
        let mut parts: Vec<&Value> = map
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        if self.version == Version::V3_1 {
            parts.extend(map.get("$ref"));
        }
        for part in parts {
            let target = match part {
                Value::String(reference) => refs::resolve(self.root, reference).ok(),
                Value::Object(branch) => match branch.get("$ref").and_then(Value::as_str) {
                    Some(reference) => refs::resolve(self.root, reference).ok(),
                    None => Some(part),
                },
                _ => None,
            };
            if let Some(Value::Object(target)) = target {
                self.collect_exempt(target, names, depth + 1);
            }
        }
    }
}

/// A JSON Schema count (`minLength` and the like): a whole number of at least 0.
fn count(value: &Value) -> Option<u64> {
    if let Some(number) = value.as_u64() {
        return Some(number);
    }
    let number = value.as_f64()?;
    let whole = number >= 0.0 && number.fract() == 0.0 && number <= 9.0e15;
    // Exact: `whole` bounds it to what an f64 holds without rounding.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    whole.then_some(number as u64)
}

/// Makes a normalised schema accept `null` too (OpenAPI 3.0's `nullable: true`).
fn add_null(out: &mut Map<String, Value>) {
    let null_type = Value::String("null".to_owned());
    match out.get_mut("type") {
        Some(Value::String(name)) => {
            let name = Value::String(std::mem::take(name));
            out.insert("type".to_owned(), Value::Array(vec![name, null_type]));
        }
        Some(Value::Array(names)) if !names.contains(&null_type) => names.push(null_type),
        _ => {}
    }
    if let Some(Value::Array(values)) = out.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    if NULL_REFUSING.iter().any(|key| out.contains_key(*key)) {
        let mut moved = Map::new();
        for key in NULL_REFUSING {
            if let Some(value) = out.remove(*key) {
                moved.insert((*key).to_owned(), value);
            }
        }
        out.insert("anyOf".to_owned(), json!([moved, {"type": "null"}]));
    }
}

/// Puts `value` at `segments` in `sparse`, making arrays where `root` has arrays.
fn place(sparse: &mut Value, root: &Value, segments: &[String], value: Value) {
    let Some((last, parents)) = segments.split_last() else {
        *sparse = value;
        return;
    };
    let mut slot = sparse;
    let mut raw = Some(root);
    for segment in parents {
        raw = raw.and_then(|r| step(r, segment));
        let in_array = raw.is_some_and(Value::is_array);
        slot = child_slot(slot, segment);
        if in_array && !slot.is_array() {
            *slot = Value::Array(Vec::new());
        } else if !in_array && !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
    }
    *child_slot(slot, last) = value;
}

fn step<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

/// The slot for `segment` in `container` (an object or an array, padded with nulls).
fn child_slot<'v>(container: &'v mut Value, segment: &str) -> &'v mut Value {
    if let Value::Array(items) = container {
        let index = segment.parse::<usize>().unwrap_or(items.len());
        if items.len() <= index {
            items.resize(index + 1, Value::Null);
        }
        return &mut items[index];
    }
    if !container.is_object() {
        *container = Value::Object(Map::new());
    }
    match container {
        Value::Object(map) => map.entry(segment.to_owned()).or_insert(Value::Null),
        _ => unreachable!("made an object just above"),
    }
}

/// The entries of an object, or none.
fn entries(value: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    value.and_then(Value::as_object).into_iter().flatten()
}

/// JSON pointers of the Schema Objects in an OpenAPI document.
fn document_schemas(root: &Value, out: &mut Vec<String>) {
    if let Some(components) = root.get("components") {
        for (name, _) in entries(components.get("schemas")) {
            out.push(child_pointer("/components/schemas", name));
        }
        for kind in ["parameters", "headers"] {
            let base = child_pointer("/components", kind);
            for (name, parameter) in entries(components.get(kind)) {
                parameter_schemas(parameter, &child_pointer(&base, name), out);
            }
        }
        for (name, body) in entries(components.get("requestBodies")) {
            let at = child_pointer("/components/requestBodies", name);
            content_schemas(body, &at, out);
        }
        for (name, response) in entries(components.get("responses")) {
            response_schemas(response, &child_pointer("/components/responses", name), out);
        }
        for (name, item) in entries(components.get("pathItems")) {
            path_item_schemas(item, &child_pointer("/components/pathItems", name), out, 0);
        }
        for (name, callback) in entries(components.get("callbacks")) {
            let at = child_pointer("/components/callbacks", name);
            for (expression, item) in entries(Some(callback)) {
                path_item_schemas(item, &child_pointer(&at, expression), out, 0);
            }
        }
    }
    for section in ["paths", "webhooks"] {
        for (name, item) in entries(root.get(section)) {
            path_item_schemas(
                item,
                &child_pointer(&child_pointer("", section), name),
                out,
                0,
            );
        }
    }
}

fn path_item_schemas(item: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 4 {
        return;
    }
    parameter_list(item, at, out);
    for method in METHODS {
        let Some(operation) = item.get(*method) else {
            continue;
        };
        let at = child_pointer(at, method);
        parameter_list(operation, &at, out);
        if let Some(body) = operation.get("requestBody") {
            content_schemas(body, &child_pointer(&at, "requestBody"), out);
        }
        for (code, response) in operation
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            response_schemas(
                response,
                &child_pointer(&child_pointer(&at, "responses"), code),
                out,
            );
        }
        for (name, callback) in operation
            .get("callbacks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let callback_at = child_pointer(&child_pointer(&at, "callbacks"), name);
            for (expression, nested) in callback.as_object().into_iter().flatten() {
                path_item_schemas(
                    nested,
                    &child_pointer(&callback_at, expression),
                    out,
                    depth + 1,
                );
            }
        }
    }
}

fn parameter_list(holder: &Value, at: &str, out: &mut Vec<String>) {
    let Some(list) = holder.get("parameters").and_then(Value::as_array) else {
        return;
    };
    let at = child_pointer(at, "parameters");
    for (index, parameter) in list.iter().enumerate() {
        parameter_schemas(parameter, &child_pointer(&at, &index.to_string()), out);
    }
}

/// A Parameter or Header Object: `schema`, or `content`.
fn parameter_schemas(parameter: &Value, at: &str, out: &mut Vec<String>) {
    if parameter.get("schema").is_some() {
        out.push(child_pointer(at, "schema"));
    }
    content_schemas(parameter, at, out);
}

/// The `content` of a Request Body, Response, Parameter or Header Object.
fn content_schemas(holder: &Value, at: &str, out: &mut Vec<String>) {
    let Some(content) = holder.get("content").and_then(Value::as_object) else {
        return;
    };
    let at = child_pointer(at, "content");
    for (media_type, media) in content {
        if media.get("schema").is_some() {
            out.push(child_pointer(&child_pointer(&at, media_type), "schema"));
        }
    }
}

fn response_schemas(response: &Value, at: &str, out: &mut Vec<String>) {
    content_schemas(response, at, out);
    let Some(headers) = response.get("headers").and_then(Value::as_object) else {
        return;
    };
    let headers_at = child_pointer(at, "headers");
    for (name, header) in headers {
        parameter_schemas(header, &child_pointer(&headers_at, name), out);
    }
}
