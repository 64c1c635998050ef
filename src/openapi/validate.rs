//! Request validation: an endpoint's parameter and body schemas compiled once per revision
//! into [`Checks`], which the pipeline runs on each request before the handler (422
//! `request_invalid` with every failing place). Validators are built with the `jsonschema`
//! crate (JSON Schema 2020-12; `format` asserted), each over the part of the project's
//! `components` its schemas reach, never per request.
//!
//! Path, query and header values arrive as text: a value is read as the schema's type asks
//! (an integer, a number, a boolean, or a list: repeated query parameters, or
//! comma-separated) before it is checked. Bodies are checked when JSON (`application/json`,
//! `…+json`) or an HTML form (`application/x-www-form-urlencoded`, fields as text read the
//! same way); other media types are accepted as they are.

use std::collections::BTreeSet;

use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::schema::{self, Direction, Version};
use crate::model::{EndpointSpec, ProjectDocs};

/// The most failures one answer lists.
const MAX_FAILURES: usize = 32;

/// What one endpoint checks of a request.
pub struct Checks {
    /// The components the schemas reach (to read form fields by their types).
    root: Value,
    path: Vec<Param>,
    query: Vec<Param>,
    headers: Vec<Param>,
    body: Option<Body>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("path", &self.path.len())
            .field("query", &self.query.len())
            .field("headers", &self.headers.len())
            .field("body", &self.body.is_some())
            .finish()
    }
}

struct Param {
    name: String,
    required: bool,
    /// Given as `content: {application/json: …}`: the text is a JSON document.
    json: bool,
    /// The types the schema allows, to read the text as.
    types: Types,
    validator: Option<jsonschema::Validator>,
}

struct Body {
    required: bool,
    json: Option<jsonschema::Validator>,
    form: Option<(jsonschema::Validator, Map<String, Value>)>,
}

/// What types a parameter's schema allows, for reading its text.
#[derive(Default, Clone, Copy)]
struct Types {
    integer: bool,
    number: bool,
    boolean: bool,
    array: bool,
    /// The items' types, for an array.
    items_integer: bool,
    items_number: bool,
    items_boolean: bool,
    /// Objects, or lists of them: text cannot say which fields (`deepObject` styles).
    object: bool,
}

/// One failing place of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `path.id`, `query.limit`, `header.x-key`, `body` or `body/items/0/name`.
    pub at: String,
    pub message: String,
}

/// Why an endpoint's schemas could not be compiled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{at}: {message}")]
pub struct SchemaError {
    /// The endpoint field: `parameters[1].schema`, `request_body.content.application/json.schema`.
    pub at: String,
    pub message: String,
}

/// The body of a request, as far as checks need it.
pub struct RequestBodyView<'a> {
    pub content_type: Option<&'a str>,
    pub bytes: &'a [u8],
}

impl Checks {
    /// The checks of an endpoint, or `None` when it has nothing to check (or validation is
    /// off). `docs` are the project's `openapi` settings, where `$ref`s resolve.
    pub fn compile(
        spec: &EndpointSpec,
        docs: Option<&ProjectDocs>,
    ) -> Result<Option<Checks>, SchemaError> {
        let Some(operation) = spec.docs.as_deref().map(|d| &d.operation) else {
            return Ok(None);
        };
        if !operation.validate.request {
            return Ok(None);
        }
        let empty = json!({});
        let root = docs.map_or(&empty, |docs| docs.root());
        let mut checks = Checks {
            root: Value::Null,
            path: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        };
        for (i, (place, name, object)) in operation.parameters().enumerate() {
            let at = format!("parameters[{i}].schema");
            let schema = object.get("schema").or_else(|| {
                object
                    .get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
            });
            let required =
                place == "path" || object.get("required").and_then(Value::as_bool) == Some(true);
            let json = object.get("schema").is_none()
                && object
                    .get("content")
                    .and_then(Value::as_object)
                    .is_some_and(|c| c.keys().next().is_some_and(|m| is_json(&essence(m))));
            let types = schema.map(|s| types_of(s, root)).unwrap_or_default();
            // Objects in a query or header have styles (`deepObject`, exploded forms) this
            // check does not read: they are checked for presence only.
            let validator = match schema {
                Some(schema) if json || !types.object => Some(validator(schema, root, &at)?),
                _ => None,
            };
            if validator.is_none() && !required {
                continue;
            }
            let param = Param {
                json,
                name: if place == "header" {
                    name.to_ascii_lowercase()
                } else {
                    name.to_owned()
                },
                required,
                types,
                validator,
            };
            match place {
                "path" => checks.path.push(param),
                "query" => checks.query.push(param),
                "header" => checks.headers.push(param),
                _ => {}
            }
        }
        if let Some(body) = operation.request_body.as_ref().and_then(Value::as_object) {
            let required = body.get("required").and_then(Value::as_bool) == Some(true);
            let content = body.get("content").and_then(Value::as_object);
            let mut json = None;
            let mut form = None;
            for (media, object) in content.into_iter().flatten() {
                let essence = essence(media);
                let Some(schema) = object.get("schema") else {
                    continue;
                };
                let at = format!("request_body.content.{media}.schema");
                if json.is_none() && is_json(&essence) {
                    json = Some(validator(schema, root, &at)?);
                } else if form.is_none() && essence == "application/x-www-form-urlencoded" {
                    // A form is fields of text: only an object's schema can check one.
                    let properties = resolve_properties(schema, root);
                    if !properties.is_empty() {
                        form = Some((validator(schema, root, &at)?, properties));
                    }
                }
            }
            if required || json.is_some() || form.is_some() {
                checks.body = Some(Body {
                    required,
                    json,
                    form,
                });
            }
        }
        if checks.body.as_ref().is_some_and(|b| b.form.is_some()) {
            checks.root = reach(
                &json!({"properties": checks.body.as_ref().and_then(|b| b.form.as_ref()).map(|f| Value::Object(f.1.clone()))}),
                root,
            );
        }
        let empty = checks.path.is_empty()
            && checks.query.is_empty()
            && checks.headers.is_empty()
            && checks.body.is_none();
        Ok((!empty).then_some(checks))
    }

    /// Whether the request body must be read to check it.
    pub fn reads_body(&self) -> bool {
        self.body.is_some()
    }

    /// The failures of a request's head: path parameters (by name), query and headers.
    pub fn head(
        &self,
        params: &[(&str, &str)],
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Vec<Failure> {
        let mut failures = Vec::new();
        for param in &self.path {
            let value = params
                .iter()
                .find(|(name, _)| *name == param.name)
                .map(|(_, v)| percent_decode(v));
            param.check("path", value.map(|v| vec![v]), &mut failures);
        }
        if !self.query.is_empty() {
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect();
            for param in &self.query {
                let values: Vec<String> = pairs
                    .iter()
                    .filter(|(n, _)| *n == param.name)
                    .map(|(_, v)| v.clone())
                    .collect();
                param.check(
                    "query",
                    (!values.is_empty()).then_some(values),
                    &mut failures,
                );
            }
        }
        for param in &self.headers {
            let values: Vec<String> = headers
                .get_all(param.name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect();
            param.check(
                "header",
                (!values.is_empty()).then_some(values),
                &mut failures,
            );
        }
        failures.truncate(MAX_FAILURES);
        failures
    }

    /// The failures of a request's body.
    pub fn body(&self, body: &RequestBodyView<'_>) -> Vec<Failure> {
        let Some(check) = &self.body else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        if body.bytes.is_empty() {
            if check.required {
                failures.push(Failure {
                    at: "body".into(),
                    message: "a request body is required".into(),
                });
            }
            return failures;
        }
        let essence = body.content_type.map(essence).unwrap_or_default();
        if let Some(validator) = &check.json
            && (is_json(&essence) || essence.is_empty())
        {
            match serde_json::from_slice::<Value>(body.bytes) {
                Err(error) => failures.push(Failure {
                    at: "body".into(),
                    message: format!("is not valid JSON: {error}"),
                }),
                Ok(value) => collect(validator, &value, "body", &mut failures),
            }
        } else if let Some((validator, properties)) = &check.form
            && essence == "application/x-www-form-urlencoded"
        {
            let mut object = Map::new();
            for (name, value) in form_urlencoded::parse(body.bytes) {
                let types = properties
                    .get(name.as_ref())
                    .map(|s| types_of(s, &self.root))
                    .unwrap_or_default();
                if types.array {
                    // A list is its field repeated.
                    let items = Types {
                        integer: types.items_integer,
                        number: types.items_number,
                        boolean: types.items_boolean,
                        ..Types::default()
                    };
                    let entry = object
                        .entry(name.into_owned())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = entry {
                        list.push(read_scalar(&value, items));
                    }
                } else {
                    object.insert(name.into_owned(), read_scalar(&value, types));
                }
            }
            collect(validator, &Value::Object(object), "body", &mut failures);
        }
        failures.truncate(MAX_FAILURES);
        failures
    }
}

impl Param {
    fn check(&self, place: &str, values: Option<Vec<String>>, failures: &mut Vec<Failure>) {
        let at = format!("{place}.{}", self.name);
        let Some(values) = values else {
            if self.required {
                failures.push(Failure {
                    at,
                    message: format!("the {} `{}` is required", noun(place), self.name),
                });
            }
            return;
        };
        let Some(validator) = &self.validator else {
            return;
        };
        let value = if self.json {
            match serde_json::from_str(&values[0]) {
                Ok(value) => value,
                Err(error) => {
                    failures.push(Failure {
                        at,
                        message: format!("is not valid JSON: {error}"),
                    });
                    return;
                }
            }
        } else if self.types.array {
            let items: Vec<&str> = if values.len() == 1 {
                values[0].split(',').collect()
            } else {
                values.iter().map(String::as_str).collect()
            };
            let item_types = Types {
                integer: self.types.items_integer,
                number: self.types.items_number,
                boolean: self.types.items_boolean,
                ..Types::default()
            };
            Value::Array(
                items
                    .into_iter()
                    .map(|v| read_scalar(v, item_types))
                    .collect(),
            )
        } else {
            read_scalar(&values[0], self.types)
        };
        collect(validator, &value, &at, failures);
    }
}

fn noun(place: &str) -> &'static str {
    match place {
        "path" => "path parameter",
        "query" => "query parameter",
        _ => "header",
    }
}

/// Text read as the first of the allowed types it parses as, else kept as text.
fn read_scalar(text: &str, types: Types) -> Value {
    if types.integer
        && let Ok(n) = text.parse::<i64>()
    {
        return json!(n);
    }
    if types.number
        && let Ok(n) = text.parse::<f64>()
        && n.is_finite()
    {
        return json!(n);
    }
    if types.boolean {
        match text {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    Value::String(text.to_owned())
}

/// Every error of `value` against `validator`, at `at` followed by the error's pointer.
fn collect(
    validator: &jsonschema::Validator,
    value: &Value,
    at: &str,
    failures: &mut Vec<Failure>,
) {
    for error in validator.iter_errors(value) {
        if failures.len() >= MAX_FAILURES {
            return;
        }
        let pointer = error.instance_path().to_string();
        failures.push(Failure {
            at: if pointer.is_empty() {
                at.to_owned()
            } else {
                format!("{at}{pointer}")
            },
            message: error.to_string(),
        });
    }
}

/// The types a schema allows, through `$ref`s and `allOf`/`anyOf`/`oneOf` branches.
fn types_of(schema: &Value, root: &Value) -> Types {
    types_within(schema, root, 0)
}

fn types_within(schema: &Value, root: &Value, depth: usize) -> Types {
    let mut types = Types::default();
    if depth > 8 {
        return types;
    }
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => match schema::resolve(root, reference) {
            Ok(target) => return types_within(target, root, depth + 1),
            Err(_) => schema,
        },
        None => schema,
    };
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let inner = types_within(branch, root, depth + 1);
            types.integer |= inner.integer;
            types.number |= inner.number;
            types.boolean |= inner.boolean;
            types.array |= inner.array;
            types.items_integer |= inner.items_integer;
            types.items_number |= inner.items_number;
            types.items_boolean |= inner.items_boolean;
            types.object |= inner.object;
        }
    }
    if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
        types.object = true;
    }
    let mut each = |t: &str| match t {
        "integer" => types.integer = true,
        "number" => types.number = true,
        "boolean" => types.boolean = true,
        "array" => types.array = true,
        "object" => types.object = true,
        _ => {}
    };
    match schema.get("type") {
        Some(Value::String(t)) => each(t),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).for_each(each),
        _ => {}
    }
    if types.array
        && let Some(items) = schema.get("items")
    {
        let inner = types_within(items, root, depth + 1);
        types.items_integer |= inner.integer;
        types.items_number |= inner.number;
        types.items_boolean |= inner.boolean;
        types.object |= inner.object;
    }
    types
}

/// A form schema's properties (following one `$ref`), to read fields by their types.
fn resolve_properties(schema: &Value, root: &Value) -> Map<String, Value> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => schema::resolve(root, reference).unwrap_or(schema),
        None => schema,
    };
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A validator for a schema of the project (OpenAPI 3.1: JSON Schema 2020-12), for requests
/// (`readOnly` properties not required), over the components it reaches.
fn validator(schema: &Value, root: &Value, at: &str) -> Result<jsonschema::Validator, SchemaError> {
    let normalized = schema::normalize(schema, Version::V3_1, root, Direction::Request);
    let reached = reach(&normalized.schema, root);
    let reached = schema::normalize_document(&reached, Version::V3_1, Direction::Request).schema;
    schema::normalize::compile_with(&normalized.schema, &reached, true).map_err(|error| {
        SchemaError {
            at: at.to_owned(),
            message: error.to_string(),
        }
    })
}

/// The part of `root` that `schema` reaches through `#/components/…` references: a
/// document with just those components.
fn reach(schema: &Value, root: &Value) -> Value {
    let mut out = json!({});
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut pending = vec![schema.clone()];
    while let Some(value) = pending.pop() {
        for reference in schema::walk::refs(&value) {
            let Ok(segments) = schema::refs::segments(&reference) else {
                continue;
            };
            let [first, kind, name, ..] = segments.as_slice() else {
                continue;
            };
            if first != "components" || !seen.insert((kind.clone(), name.clone())) {
                continue;
            }
            let Some(target) = root
                .get("components")
                .and_then(|c| c.get(kind))
                .and_then(|k| k.get(name))
            else {
                continue;
            };
            out["components"][kind][name] = target.clone();
            pending.push(target.clone());
        }
    }
    out
}

/// `%XX` escapes decoded (invalid ones kept as they are), as UTF-8 where it is.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A media type's essence: `application/json` of `Application/JSON; charset=utf-8`.
pub(crate) fn essence(media: &str) -> String {
    media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type's essence is JSON (`application/json`, `…/json`, `…+json`).
pub(crate) fn is_json(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json") || essence.ends_with("/json")
}

#[cfg(test)]
mod tests;
