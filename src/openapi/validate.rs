//! Request and response validation: an endpoint's parameter, body and response schemas
//! compiled once per revision into [`Checks`], which the pipeline runs on each request
//! before the handler (422 `request_invalid` with every failing place) and, for an endpoint
//! that asks and a project in `development` mode, on each answer (its mismatches logged and
//! flagged in the journal; the answer is sent as it is). Validators are built with the `jsonschema`
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
    /// Whether any of the above checks something.
    request: bool,
    /// The documented answers, when they are checked.
    responses: Option<Responses>,
}

/// What an endpoint's answers are checked against: its documented responses.
struct Responses {
    documented: Vec<Documented>,
}

/// One documented response.
struct Documented {
    status: StatusKey,
    /// The media types it documents (their essences), each with a validator for a JSON
    /// one with a schema. Empty: the response has no body.
    content: Vec<(String, Option<jsonschema::Validator>)>,
    /// Its documented headers that are required or have a schema.
    headers: Vec<Param>,
}

/// Which statuses a documented response covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusKey {
    Exact(u16),
    /// `4XX`: the hundreds digit.
    Range(u16),
    Default,
}

/// An answer, as far as its checks need it.
pub struct AnswerView<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// Its body; `None` for the answer to a `HEAD` request, whose body is not sent.
    pub body: Option<&'a [u8]>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("path", &self.path.len())
            .field("query", &self.query.len())
            .field("headers", &self.headers.len())
            .field("body", &self.body.is_some())
            .field(
                "responses",
                &self.responses.as_ref().map(|r| r.documented.len()),
            )
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
        Checks::of(spec.docs.as_deref(), docs)
    }

    /// The checks of what `described` says (an endpoint's or a script route's docs).
    pub fn of(
        described: Option<&crate::model::Docs>,
        docs: Option<&ProjectDocs>,
    ) -> Result<Option<Checks>, SchemaError> {
        let Some(operation) = described.map(|d| &d.operation) else {
            return Ok(None);
        };
        let empty = json!({});
        let root = docs.map_or(&empty, |docs| docs.root());
        let mut checks = Checks {
            root: Value::Null,
            path: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            request: false,
            responses: None,
        };
        if operation.validate.response
            && let Some(responses) = &operation.responses
        {
            checks.responses = Some(Responses::compile(responses, root)?);
        }
        if operation.validate.request {
            checks.compile_request(operation, root)?;
        }
        checks.request = !(checks.path.is_empty()
            && checks.query.is_empty()
            && checks.headers.is_empty()
            && checks.body.is_none());
        Ok((checks.request || checks.responses.is_some()).then_some(checks))
    }

    /// The request's checks of `operation`.
    fn compile_request(
        &mut self,
        operation: &crate::model::Operation,
        root: &Value,
    ) -> Result<(), SchemaError> {
        let checks = self;
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
                Some(schema) if json || !types.object => {
                    Some(validator(schema, root, &at, Direction::Request)?)
                }
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
                    json = Some(validator(schema, root, &at, Direction::Request)?);
                } else if form.is_none() && essence == "application/x-www-form-urlencoded" {
                    // A form is fields of text: only an object's schema can check one.
                    let properties = resolve_properties(schema, root);
                    if !properties.is_empty() {
                        form = Some((
                            validator(schema, root, &at, Direction::Request)?,
                            properties,
                        ));
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
        Ok(())
    }

    /// Whether the request is checked (its head, and maybe its body) before the handler.
    #[inline]
    pub fn checks_request(&self) -> bool {
        self.request
    }

    /// Whether answers are checked against the documented responses.
    #[inline]
    pub fn checks_responses(&self) -> bool {
        self.responses.is_some()
    }

    /// The mismatches of an answer with the documented responses (none when they are not
    /// checked).
    pub fn answer(&self, answer: &AnswerView<'_>) -> Vec<Failure> {
        match &self.responses {
            Some(responses) => responses.check(answer),
            None => Vec::new(),
        }
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
            param.check_header("header", headers, &mut failures);
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

impl Responses {
    fn compile(responses: &Map<String, Value>, root: &Value) -> Result<Responses, SchemaError> {
        let mut documented = Vec::new();
        for (key, response) in responses {
            let status = match key.as_bytes() {
                b"default" => StatusKey::Default,
                [d @ b'1'..=b'5', b'X' | b'x', b'X' | b'x'] => {
                    StatusKey::Range(u16::from(d - b'0'))
                }
                _ => match key.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => StatusKey::Exact(code),
                    _ => continue,
                },
            };
            // A `$ref` to `components/responses`.
            let response = followed(response, root);
            let mut content = Vec::new();
            for (media, object) in response
                .get("content")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let essence = essence(media);
                let check = match object.get("schema") {
                    Some(schema) if is_json(&essence) || essence == "*/*" => Some(validator(
                        schema,
                        root,
                        &format!("responses.{key}.content.{media}.schema"),
                        Direction::Response,
                    )?),
                    _ => None,
                };
                content.push((essence, check));
            }
            let mut headers = Vec::new();
            for (name, header) in response
                .get("headers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let header = followed(header, root);
                let lower = name.to_ascii_lowercase();
                // The answer's own framing, not the handler's to match.
                if lower == "content-type" {
                    continue;
                }
                let required = header.get("required").and_then(Value::as_bool) == Some(true);
                let schema = header.get("schema");
                let types = schema.map(|s| types_of(s, root)).unwrap_or_default();
                let validator = match schema {
                    Some(schema) if !types.object => Some(validator(
                        schema,
                        root,
                        &format!("responses.{key}.headers.{name}.schema"),
                        Direction::Response,
                    )?),
                    _ => None,
                };
                if required || validator.is_some() {
                    headers.push(Param {
                        name: lower,
                        required,
                        json: false,
                        types,
                        validator,
                    });
                }
            }
            documented.push(Documented {
                status,
                content,
                headers,
            });
        }
        Ok(Responses { documented })
    }

    /// The documented response an answer with `status` is: the exact status, else its
    /// range, else `default`.
    fn find(&self, status: u16) -> Option<&Documented> {
        let by = |key: StatusKey| self.documented.iter().find(|d| d.status == key);
        by(StatusKey::Exact(status))
            .or_else(|| by(StatusKey::Range(status / 100)))
            .or_else(|| by(StatusKey::Default))
    }

    fn check(&self, answer: &AnswerView<'_>) -> Vec<Failure> {
        let mut failures = Vec::new();
        let Some(documented) = self.find(answer.status) else {
            let listed: Vec<String> = self
                .documented
                .iter()
                .map(|d| match d.status {
                    StatusKey::Exact(code) => code.to_string(),
                    StatusKey::Range(d) => format!("{d}XX"),
                    StatusKey::Default => "default".into(),
                })
                .collect();
            failures.push(Failure {
                at: "response.status".into(),
                message: format!(
                    "status {} is not documented (documented: {})",
                    answer.status,
                    listed.join(", ")
                ),
            });
            return failures;
        };
        for header in &documented.headers {
            header.check_header("response.header", answer.headers, &mut failures);
        }
        let Some(body) = answer.body else {
            return failures;
        };
        let media = answer
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(essence)
            .unwrap_or_default();
        if documented.content.is_empty() {
            if !body.is_empty() {
                failures.push(Failure {
                    at: "response.body".into(),
                    message: "the documented response has no body, but the answer has one".into(),
                });
            }
            return failures;
        }
        if body.is_empty() {
            failures.push(Failure {
                at: "response.body".into(),
                message: "the answer has no body; the documented response has content".into(),
            });
            return failures;
        }
        let by = |wanted: &str| documented.content.iter().find(|(m, _)| m == wanted);
        let wildcard = media
            .split_once('/')
            .map(|(kind, _)| format!("{kind}/*"))
            .unwrap_or_default();
        let Some((_, check)) = by(&media).or_else(|| by(&wildcard)).or_else(|| by("*/*")) else {
            let listed: Vec<&str> = documented.content.iter().map(|(m, _)| m.as_str()).collect();
            failures.push(Failure {
                at: "response.header.content-type".into(),
                message: format!(
                    "`{media}` is not a documented media type of this response ({})",
                    listed.join(", ")
                ),
            });
            return failures;
        };
        if let Some(validator) = check {
            match serde_json::from_slice::<Value>(body) {
                Err(error) => failures.push(Failure {
                    at: "response.body".into(),
                    message: format!("is not valid JSON: {error}"),
                }),
                Ok(value) => collect(validator, &value, "response.body", &mut failures),
            }
        }
        failures.truncate(MAX_FAILURES);
        failures
    }
}

impl Param {
    /// Checks this header's values in `headers` (every value of a repeated one).
    fn check_header(&self, place: &str, headers: &HeaderMap, failures: &mut Vec<Failure>) {
        let values: Vec<String> = headers
            .get_all(self.name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        self.check(place, (!values.is_empty()).then_some(values), failures);
    }

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

/// What `object` refers to in `root` when it is a `$ref` that resolves, else `object`.
fn followed<'a>(object: &'a Value, root: &'a Value) -> &'a Value {
    match object.get("$ref").and_then(Value::as_str) {
        Some(reference) => schema::resolve(root, reference).unwrap_or(object),
        None => object,
    }
}

/// A form schema's properties (following its `$ref`), to read fields by their types.
fn resolve_properties(schema: &Value, root: &Value) -> Map<String, Value> {
    followed(schema, root)
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Checks every schema an endpoint gives (its parameters', request body's and responses',
/// validated or not) for keywords that would be left out of its checks: a keyword whose
/// value has the wrong shape (`minimum: "5"`, `required: true` on a property), a pattern
/// the regex engine cannot compile, a `$ref` that leads nowhere. An imported document is
/// taken as it is, with those listed as not enforced; a schema written for an endpoint is
/// held to this, so that a typo is an error rather than a check that silently never runs.
pub fn lint(spec: &EndpointSpec, docs: Option<&ProjectDocs>) -> Result<(), SchemaError> {
    lint_docs(spec.docs.as_deref(), docs)
}

/// [`lint`] for what `described` says (an endpoint's or a script route's docs).
pub fn lint_docs(
    described: Option<&crate::model::Docs>,
    docs: Option<&ProjectDocs>,
) -> Result<(), SchemaError> {
    let Some(operation) = described.map(|d| &d.operation) else {
        return Ok(());
    };
    let empty = json!({});
    let root = docs.map_or(&empty, |docs| docs.root());
    let mut schemas: Vec<(String, &Value)> = Vec::new();
    fn in_content<'v>(at: &str, object: &'v Value, schemas: &mut Vec<(String, &'v Value)>) {
        for (media, m) in object
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(schema) = m.get("schema") {
                schemas.push((format!("{at}content.{media}.schema"), schema));
            }
        }
    }
    for (i, parameter) in operation.parameters.iter().enumerate() {
        let at = format!("parameters[{i}].");
        if let Some(schema) = parameter.get("schema") {
            schemas.push((format!("{at}schema"), schema));
        }
        in_content(&at, parameter, &mut schemas);
    }
    if let Some(body) = &operation.request_body {
        in_content("request_body.", body, &mut schemas);
    }
    for (status, response) in operation.responses.iter().flatten() {
        let at = format!("responses.{status}.");
        in_content(&at, response, &mut schemas);
        for (name, header) in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(schema) = header.get("schema") {
                schemas.push((format!("{at}headers.{name}.schema"), schema));
            }
        }
    }
    for (at, schema) in schemas {
        let normalized = schema::normalize(schema, Version::V3_1, root, Direction::Request);
        if let Some(note) = normalized.notes.first() {
            let reason = note
                .reason
                .strip_suffix("; it is not enforced")
                .unwrap_or(&note.reason);
            return Err(SchemaError {
                at: format!("{at}{}", note.pointer.replace('/', ".")),
                message: reason.to_owned(),
            });
        }
    }
    Ok(())
}

/// A validator for a schema of the project (OpenAPI 3.1: JSON Schema 2020-12), for requests
/// (`readOnly` properties not required) or answers (`writeOnly` ones not required), over
/// the components it reaches.
fn validator(
    schema: &Value,
    root: &Value,
    at: &str,
    direction: Direction,
) -> Result<jsonschema::Validator, SchemaError> {
    let normalized = schema::normalize(schema, Version::V3_1, root, direction);
    let reached = reach(&normalized.schema, root);
    let reached = schema::normalize_document(&reached, Version::V3_1, direction).schema;
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
