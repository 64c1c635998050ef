//! Import of an OpenAPI 3.0 or 3.1 document (JSON or YAML 1.2) into mock endpoints: one
//! endpoint per operation, answering with the document's example for its chosen response,
//! or a body generated from the schema (docs/openapi.md has the table of how each
//! construct is read).
//!
//! [`plan`] is pure: it reads the document and gives the endpoints, the project's
//! `openapi` settings and a [`Report`] saying, for every operation, whether it was
//! imported (as which endpoint, answering which status) or skipped and why, and every
//! constraint that is kept but not enforced. Applying the plan is the change path's job
//! (`Changes::import`), as one revision.
//!
//! Real documents are imperfect: what is well formed is imported, an operation that cannot
//! be understood is skipped with its reason, and only a text that is not an OpenAPI 3
//! document at all is refused whole.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::schema::{self, Direction, Version};
use super::validate::{essence, is_json};
use crate::model::{
    EndpointSpec, HandlerSpec, HeaderValues, JsonBody, MethodSpec, MockSpec, Operation,
    ProjectDocs, Rules, Validation,
};
use crate::routing::template::Template;

/// The operations of a Path Item Object, in the order they are read.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Operation Object fields copied into the endpoint's `openapi`.
const OPERATION_EXTRAS: &[&str] = &[
    "deprecated",
    "callbacks",
    "security",
    "externalDocs",
    "servers",
];

/// Top-level fields kept in the project's `openapi` settings.
const DOCUMENT_FIELDS: &[&str] = &["info", "tags", "components", "security", "externalDocs"];

/// How an import is made.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replace every endpoint of the project (else: add, replacing those with the same id).
    pub replace: bool,
    /// Answer with this status (`201`, `4XX`, `default`) where an operation documents it.
    pub prefer: Option<String>,
    /// Turn request validation off on the imported endpoints.
    pub no_validation: bool,
    /// Check the imported endpoints' answers against their documented responses (in
    /// `development` mode).
    pub validate_responses: bool,
    /// Serve the paths under the first server URL's path, rather than at the project's root.
    pub keep_base_path: bool,
}

/// Why a document was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the document is not valid JSON or YAML: {0}")]
    Unparseable(String),
    #[error(
        "this is a Swagger {0} document; convert it to OpenAPI 3 first (for example with `npx swagger2openapi`), then import that"
    )]
    Swagger(String),
    #[error("{0}")]
    NotOpenApi(String),
}

/// What an import does: the endpoints, the project's settings, and the account of it.
#[derive(Debug)]
pub struct Plan {
    pub endpoints: Vec<EndpointSpec>,
    pub openapi: ProjectDocs,
    pub report: Report,
}

/// The account of an import, as the admin API answers it.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The document's `openapi` version.
    pub openapi: String,
    pub title: Option<String>,
    /// The path every operation is served under inside the project, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    pub imported: usize,
    pub skipped: usize,
    pub operations: Vec<OperationReport>,
    /// Constraints of the document that are kept but not enforced.
    pub not_enforced: Vec<Unenforced>,
}

/// One operation of the document.
#[derive(Debug, Serialize)]
pub struct OperationReport {
    /// `operationId`, or `METHOD path` where it has none.
    pub operation: String,
    pub method: String,
    /// The path key as the document writes it.
    pub path: String,
    /// `imported` or `skipped`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The status the endpoint answers with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<u16>,
    /// Where its body comes from (for the media type answered by default): `example`
    /// (the document's), `generated` (from the schema, valid against it) or
    /// `generated_unsure` (from a schema that cannot be fully met). None without a body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BodySource>,
    /// The condition that picks this operation's answer, where it shares its endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where an imported answer's body comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodySource {
    /// The document's example (served as written, even where it does not match).
    Example,
    /// Generated from the schema: deterministic and valid against it.
    Generated,
    /// Generated from a schema that cannot be fully met (or whose checks were not all
    /// honoured): it may not be valid.
    GeneratedUnsure,
}

/// A constraint kept but not enforced.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Unenforced {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// A JSON pointer into the document.
    pub at: String,
    pub reason: String,
}

/// Parses `text` (JSON, or YAML 1.2) into a document.
pub fn parse(text: &[u8]) -> Result<Value, ImportError> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let value: Value = if start.is_some_and(|i| text[i] == b'{') {
        serde_json::from_slice(text).map_err(|e| ImportError::Unparseable(e.to_string()))?
    } else {
        let text = std::str::from_utf8(text)
            .map_err(|_| ImportError::Unparseable("the text is not UTF-8".into()))?;
        // YAML 1.2: only `true` and `false` are booleans (`yes`, `on` stay strings), and
        // dates stay strings; the parser's default budget bounds aliases and depth.
        let options = serde_saphyr::options! { strict_booleans: true };
        serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| ImportError::Unparseable(e.to_string()))?
    };
    if !value.is_object() {
        return Err(ImportError::NotOpenApi(
            "an OpenAPI document is a JSON or YAML object".into(),
        ));
    }
    Ok(value)
}

/// The version of a parsed document, or why it is not one this import reads.
pub fn version(root: &Value) -> Result<Version, ImportError> {
    if let Some(swagger) = root.get("swagger") {
        let named = swagger
            .as_str()
            .map_or_else(|| swagger.to_string(), str::to_owned);
        return Err(ImportError::Swagger(named));
    }
    match root.get("openapi") {
        None => Err(ImportError::NotOpenApi(
            "the document has no `openapi` field; this is not an OpenAPI document".into(),
        )),
        Some(named) => Version::of(root).ok_or_else(|| {
            ImportError::NotOpenApi(format!(
                "OpenAPI {} is not supported; import OpenAPI 3.0 or 3.1",
                named
                    .as_str()
                    .map_or_else(|| named.to_string(), str::to_owned)
            ))
        }),
    }
}

/// Reads a parsed document into a plan.
pub fn plan(root: &Value, options: &Options) -> Result<Plan, ImportError> {
    let version = version(root)?;
    let mut reader = Reader {
        root,
        version,
        options,
        notes: Vec::new(),
        ids: HashSet::new(),
    };
    let base_path = if options.keep_base_path {
        server_path(root)
    } else {
        None
    };
    let mut operations: Vec<OperationReport> = Vec::new();
    let mut read: Vec<Read> = Vec::new();
    let empty = Map::new();
    let paths = root
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (key, item) in paths {
        let item = match follow(root, item) {
            Ok(Value::Object(item)) => item,
            Ok(_) => {
                operations.push(skipped("", key, None, "the path item is not an object"));
                continue;
            }
            Err(error) => {
                operations.push(skipped("", key, None, &error));
                continue;
            }
        };
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            match reader.operation(key, method, item, operation, base_path.as_deref()) {
                Ok(op) => read.push(op),
                Err((label, reason)) => operations.push(skipped(method, key, Some(label), &reason)),
            }
        }
    }
    let endpoints = reader.group(read, &mut operations);
    let imported = operations.iter().filter(|o| o.status == "imported").count();
    let report = Report {
        openapi: root
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        title: root
            .pointer("/info/title")
            .and_then(Value::as_str)
            .map(str::to_owned),
        base_path,
        imported,
        skipped: operations.len() - imported,
        operations,
        not_enforced: std::mem::take(&mut reader.notes),
    };
    Ok(Plan {
        endpoints,
        openapi: reader.document_settings(),
        report,
    })
}

fn skipped(method: &str, key: &str, label: Option<String>, reason: &str) -> OperationReport {
    let method = method.to_ascii_uppercase();
    OperationReport {
        operation: label.unwrap_or_else(|| format!("{method} {key}").trim().to_owned()),
        method,
        path: key.to_owned(),
        status: "skipped",
        endpoint: None,
        answers: None,
        body: None,
        when: None,
        reason: Some(reason.to_owned()),
    }
}

/// Follows `$ref` (a chain of them) to the object it names.
fn follow<'a>(root: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    let mut value = value;
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                value = schema::resolve(root, reference).map_err(|e| e.to_string())?;
            }
            None => return Ok(value),
        }
    }
    Err("a chain of more than 32 `$ref`s".into())
}

/// The path of the first server URL, its variables at their defaults: `/api/v2`, or `None`
/// for a server at a root.
fn server_path(root: &Value) -> Option<String> {
    let server = root.pointer("/servers/0")?;
    let mut url = server.get("url")?.as_str()?.to_owned();
    if let Some(variables) = server.get("variables").and_then(Value::as_object) {
        for (name, variable) in variables {
            let default = variable
                .get("default")
                .and_then(Value::as_str)
                .unwrap_or("");
            url = url.replace(&format!("{{{name}}}"), default);
        }
    }
    let path = match url.find("://") {
        Some(at) => {
            let rest = &url[at + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => url.as_str(),
    };
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    (path.starts_with('/') && path.len() > 1 && Template::parse(path).is_ok())
        .then(|| path.to_owned())
}

/// An operation as read, before operations sharing a method and path are grouped.
struct Read {
    label: String,
    method: String,
    key: String,
    path: String,
    /// The condition in the path key (`?method=x`, `#X-Amz-Target=y`).
    when: crate::model::When,
    spec: EndpointSpec,
    answers: u16,
    body: Option<BodySource>,
}

struct Reader<'a> {
    root: &'a Value,
    version: Version,
    options: &'a Options,
    notes: Vec<Unenforced>,
    ids: HashSet<String>,
}

impl Reader<'_> {
    /// One operation into an endpoint definition, or why not.
    fn operation(
        &mut self,
        key: &str,
        method: &str,
        item: &Map<String, Value>,
        operation: &Value,
        base: Option<&str>,
    ) -> Result<Read, (String, String)> {
        let operation_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control));
        let label = operation_id.map_or_else(
            || format!("{} {key}", method.to_ascii_uppercase()),
            str::to_owned,
        );
        let fail = |reason: String| (label.clone(), reason);
        let Some(operation) = operation.as_object() else {
            return Err(fail("the operation is not an object".into()));
        };
        let pointer = format!("/paths/{}/{method}", schema::escape_segment(key));
        let (raw_path, when) = split_key(key);
        let mut path = match base {
            Some(base) if raw_path == "/" => base.to_owned(),
            Some(base) => format!("{base}{raw_path}"),
            None => raw_path.clone(),
        };
        let template = Template::parse(&path)
            .map_err(|e| fail(format!("the path `{path}` cannot be served: {e}")))?;
        let names: Vec<&str> = template.param_names().collect();

        // Parameters: the path item's, replaced by the operation's of the same name and place.
        let mut parameters: Vec<Value> = Vec::new();
        let mut places: HashMap<(String, String), usize> = HashMap::new();
        let lists = [
            (
                item.get("parameters"),
                format!("/paths/{}/parameters", schema::escape_segment(key)),
            ),
            (operation.get("parameters"), format!("{pointer}/parameters")),
        ];
        for (list, at) in &lists {
            let Some(list) = list.and_then(Value::as_array) else {
                continue;
            };
            for (i, parameter) in list.iter().enumerate() {
                let Ok(resolved) = follow(self.root, parameter) else {
                    self.note(
                        &label,
                        &format!("{at}/{i}"),
                        "a parameter whose `$ref` cannot be followed is left out",
                    );
                    continue;
                };
                let Some(object) = resolved.as_object() else {
                    continue;
                };
                let (Some(name), Some(place)) = (
                    object.get("name").and_then(Value::as_str),
                    object.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if !crate::model::PARAMETER_PLACES.contains(&place) {
                    continue;
                }
                if place == "path" && !names.contains(&name) {
                    self.note(
                        &label,
                        &format!("{at}/{i}"),
                        &format!(
                            "the path has no parameter `{{{name}}}`; the parameter is left out"
                        ),
                    );
                    continue;
                }
                if place == "header" && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    continue;
                }
                let mut object = object.clone();
                if let Some(schema) = object.get("schema") {
                    let normalized = self.schema(&label, schema, Direction::Request);
                    object.insert("schema".into(), normalized);
                }
                self.content(&label, &mut object, Direction::Request);
                let place_key = (
                    place.to_owned(),
                    if place == "header" {
                        name.to_ascii_lowercase()
                    } else {
                        name.to_owned()
                    },
                );
                match places.get(&place_key) {
                    Some(&index) => parameters[index] = Value::Object(object),
                    None => {
                        places.insert(place_key, parameters.len());
                        parameters.push(Value::Object(object));
                    }
                }
            }
        }

        // A path parameter that takes one value (`{ext}` with `enum: [".json"]`) is that
        // text: written into the path, it routes exactly (`/{slug}{ext}` could not split
        // `post.json` right).
        parameters.retain(|parameter| {
            if parameter["in"] != "path" {
                return true;
            }
            let Some(name) = parameter["name"].as_str() else {
                return true;
            };
            let schema = &parameter["schema"];
            let only = schema.get("const").or_else(|| {
                schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .filter(|values| values.len() == 1)
                    .and_then(|values| values.first())
            });
            let Some(text) = only.and_then(Value::as_str).filter(|t| !t.is_empty()) else {
                return true;
            };
            let written = path.replace(&format!("{{{name}}}"), text);
            if written == path || Template::parse(&written).is_err() {
                return true;
            }
            path = written;
            false
        });
        let request_body = match operation.get("requestBody") {
            None => None,
            Some(body) => match follow(self.root, body) {
                Ok(Value::Object(body)) => {
                    let mut body = body.clone();
                    self.content(&label, &mut body, Direction::Request);
                    Some(Value::Object(body))
                }
                _ => {
                    self.note(
                        &label,
                        &format!("{pointer}/requestBody"),
                        "a request body whose `$ref` cannot be followed is not checked",
                    );
                    None
                }
            },
        };

        let mut responses = Map::new();
        if let Some(given) = operation.get("responses").and_then(Value::as_object) {
            for (status, response) in given {
                if !crate::model::is_response_key(status) {
                    self.note(
                        &label,
                        &format!("{pointer}/responses/{}", schema::escape_segment(status)),
                        "not a status, a range or `default`; left out",
                    );
                    continue;
                }
                match follow(self.root, response) {
                    Ok(Value::Object(response)) => {
                        let mut response = response.clone();
                        self.content(&label, &mut response, Direction::Response);
                        if let Some(Value::Object(headers)) = response.get_mut("headers") {
                            for header in headers.values_mut() {
                                if let Ok(Value::Object(resolved)) = follow(self.root, header) {
                                    let mut resolved = resolved.clone();
                                    if let Some(schema) = resolved.get("schema") {
                                        let normalized =
                                            self.schema(&label, schema, Direction::Response);
                                        resolved.insert("schema".into(), normalized);
                                    }
                                    *header = Value::Object(resolved);
                                }
                            }
                        }
                        response.entry("description").or_insert_with(|| json!(""));
                        responses.insert(status.clone(), Value::Object(response));
                    }
                    _ => self.note(
                        &label,
                        &format!("{pointer}/responses/{}", schema::escape_segment(status)),
                        "a response whose `$ref` cannot be followed is left out",
                    ),
                }
            }
        }
        let (answers, mock, body) = self.mock(&responses).map_err(&fail)?;

        let mut extra = Map::new();
        for (field, value) in operation {
            if OPERATION_EXTRAS.contains(&field.as_str()) || field.starts_with("x-") {
                extra.insert(field.clone(), self.inline_foreign(value, 0));
            }
        }
        let text = |field: &str, max: usize| {
            operation
                .get(field)
                .and_then(Value::as_str)
                .map(|s| Box::<str>::from(truncate(s, max)))
        };
        let tags: Box<[Box<str>]> = operation
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| !t.is_empty() && t.len() <= 64)
                    .take(32)
                    .map(Box::from)
                    .collect()
            })
            .unwrap_or_default();
        let id = self.endpoint_id(operation_id, method, &path);
        let spec = EndpointSpec {
            id: Some(id),
            method: MethodSpec::parse(method).map_err(fail)?,
            path: path.as_str().into(),
            handler: HandlerSpec::Mock(mock),
            docs: Some(Box::new(crate::model::Docs {
                summary: text("summary", 1024),
                description: text("description", 65_536),
                tags,
                operation: Operation {
                    operation_id: operation_id.map(Box::from),
                    parameters,
                    request_body,
                    responses: Some(responses),
                    extra: (!extra.is_empty()).then_some(extra),
                    validate: Validation {
                        request: !self.options.no_validation,
                        response: self.options.validate_responses,
                    },
                },
            })),
            auth: None,
        };
        let errors = spec.validate("");
        if let Some(first) = errors.first() {
            return Err(fail(format!("{}: {}", first.field, first.message)));
        }
        Ok(Read {
            label,
            method: method.to_ascii_uppercase(),
            key: key.to_owned(),
            path,
            when,
            spec,
            answers,
            body,
        })
    }

    /// The status an operation answers and the mock response for it.
    fn mock(
        &mut self,
        responses: &Map<String, Value>,
    ) -> Result<(u16, MockSpec, Option<BodySource>), String> {
        let (key, status) = choose_response(responses, self.options.prefer.as_deref())
            .ok_or("no response with a status from 200 to 599 to answer with")?;
        let response = key.and_then(|k| responses.get(k));
        let mut headers: BTreeMap<String, HeaderValues> = BTreeMap::new();
        let mut mock = MockSpec {
            status,
            headers: Default::default(),
            json: None,
            body: None,
            body_base64: None,
            delay_ms: None,
            rules: None,
        };
        if let Some(documented) = response
            .and_then(|r| r.get("headers"))
            .and_then(Value::as_object)
        {
            for (name, header) in documented {
                let lower = name.to_ascii_lowercase();
                if crate::model::FORBIDDEN_HEADERS.contains(&lower.as_str())
                    || lower == "content-type"
                    || http::HeaderName::from_bytes(lower.as_bytes()).is_err()
                {
                    continue;
                }
                let wanted = lower == "location"
                    || header.get("required").and_then(Value::as_bool) == Some(true)
                    || header.get("example").is_some();
                if !wanted || headers.len() >= 32 {
                    continue;
                }
                let value = match header.get("example") {
                    Some(example) => example.clone(),
                    None => match header.get("schema") {
                        Some(schema) => {
                            schema::sample(schema, self.root, Version::V3_1, Direction::Response)
                                .value
                        }
                        None => json!("/"),
                    },
                };
                let value = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                if http::HeaderValue::from_str(&value).is_ok() {
                    headers.insert(lower, HeaderValues::One(value));
                }
            }
        }
        if (300..400).contains(&status) && !headers.contains_key("location") {
            headers.insert("location".into(), HeaderValues::One("/".into()));
        }
        let content = response
            .and_then(|r| r.get("content"))
            .and_then(Value::as_object);
        let mut source = None;
        if let Some(content) = content.filter(|c| !c.is_empty())
            && !matches!(status, 204 | 304)
            && let Some((chosen, object)) = choose_media(content)
        {
            let base = (mock.clone(), headers.clone());
            source = self.fill(&mut mock, &mut headers, chosen, object);
            // The other media types, for a request whose `Accept` lists one of them first.
            let mut rules = Vec::new();
            for (media, object) in content {
                let essence = essence(media);
                if media == chosen || essence == "*/*" || essence.contains('*') {
                    continue;
                }
                if rules.len() >= MAX_ALTERNATIVES {
                    break;
                }
                let (mut alternative, mut own) = base.clone();
                self.fill(&mut alternative, &mut own, media, object);
                alternative.headers = own.into();
                let mut when = crate::model::When::default();
                when.headers.insert(
                    "accept".into(),
                    crate::model::Condition::matching(accept_first(&essence)),
                );
                rules.push(crate::model::Rule {
                    when,
                    response: alternative,
                });
            }
            if !rules.is_empty() {
                mock.rules = Some(Box::new(Rules(rules)));
            }
        }
        mock.headers = headers.into();
        Ok((status, mock, source))
    }

    /// Gives `mock` the body of one media type of a response: its example (or a generated
    /// one) as JSON, text or a small binary body, with its `content-type`; says where the
    /// body came from.
    fn fill(
        &mut self,
        mock: &mut MockSpec,
        headers: &mut BTreeMap<String, HeaderValues>,
        media: &str,
        object: &Value,
    ) -> Option<BodySource> {
        let (example, source) = match self.example(object) {
            Some((value, source)) => (Some(value), Some(source)),
            None => (None, None),
        };
        let kind = media_kind(media, object);
        let typed = |headers: &mut BTreeMap<String, HeaderValues>, value: &str| {
            if http::HeaderValue::from_str(value).is_ok() {
                headers.insert("content-type".into(), HeaderValues::One(value.to_owned()));
            }
        };
        match kind {
            MediaKind::Json => {
                if let Some(value) = example {
                    mock.json = Some(JsonBody::new(&value));
                }
                let bare = media.split(';').next().unwrap_or("").trim();
                if bare != "application/json" && bare != "*/*" && !bare.is_empty() {
                    typed(headers, media);
                }
            }
            MediaKind::Text => {
                if let Some(value) = example {
                    let text = match value {
                        Value::String(text) => text,
                        other if media.contains("xml") => to_xml(object, &other),
                        other => other.to_string(),
                    };
                    mock.body = Some(text.into());
                }
                typed(headers, media);
            }
            MediaKind::Binary => {
                use base64::Engine;
                let bytes = match example {
                    Some(Value::String(text)) => text.into_bytes(),
                    _ => binary_body(media),
                };
                mock.body_base64 = Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .into(),
                );
                typed(headers, media);
            }
        }
        source
    }

    /// The example a media type answers with: its `example`, the first of its `examples`,
    /// else one generated from its schema (examples on the schema first).
    fn example(&mut self, media: &Value) -> Option<(Value, BodySource)> {
        if let Some(example) = media.get("example") {
            return Some((example.clone(), BodySource::Example));
        }
        if let Some(examples) = media.get("examples").and_then(Value::as_object) {
            for example in examples.values() {
                if let Ok(example) = follow(self.root, example)
                    && let Some(value) = example.get("value")
                {
                    return Some((value.clone(), BodySource::Example));
                }
            }
        }
        let schema = media.get("schema")?;
        let sample = schema::sample(schema, self.root, Version::V3_1, Direction::Response);
        let source = if sample.notes.is_empty() {
            BodySource::Generated
        } else {
            BodySource::GeneratedUnsure
        };
        Some((sample.value, source))
    }

    /// Normalises every schema under `content` of a request body, response or parameter.
    fn content(&mut self, label: &str, object: &mut Map<String, Value>, direction: Direction) {
        let Some(Value::Object(content)) = object.get_mut("content") else {
            return;
        };
        let mut next = Map::new();
        for (media, value) in std::mem::take(content) {
            let mut value = match value {
                Value::Object(media) => media,
                _ => continue,
            };
            if let Some(schema) = value.get("schema") {
                let normalized = self.schema(label, schema, direction);
                value.insert("schema".into(), normalized);
            }
            if let Some(Value::Object(examples)) = value.get_mut("examples") {
                for example in examples.values_mut() {
                    if let Ok(resolved) = follow(self.root, example) {
                        *example = resolved.clone();
                    }
                }
            }
            next.insert(media, Value::Object(value));
        }
        *content = next;
    }

    /// A schema as JSON Schema 2020-12, with references outside `#/components` inlined.
    fn schema(&mut self, label: &str, schema: &Value, direction: Direction) -> Value {
        let inlined = self.inline_foreign(schema, 0);
        let normalized = schema::normalize(&inlined, self.version, self.root, direction);
        for note in normalized.notes {
            self.note(label, &note.pointer, &note.reason);
        }
        let mut schema = normalized.schema;
        let mut dropped = Vec::new();
        drop_bad_defaults(&mut schema, "", &mut dropped);
        for at in dropped {
            self.note(
                label,
                &at,
                "a `default` that does not fit its schema (type, enum or format) is left out",
            );
        }
        schema
    }

    /// `value` with every `$ref` that does not point into `#/components/` replaced by what it
    /// names (such references would dangle in the project's document), to a bounded depth.
    fn inline_foreign(&self, value: &Value, depth: usize) -> Value {
        match value {
            Value::Object(object) => {
                if let Some(reference) = object.get("$ref").and_then(Value::as_str)
                    && !reference.starts_with("#/components/")
                {
                    if depth < 16
                        && let Ok(target) = schema::resolve(self.root, reference)
                    {
                        return self.inline_foreign(target, depth + 1);
                    }
                    return json!({});
                }
                Value::Object(
                    object
                        .iter()
                        .map(|(k, v)| (k.clone(), self.inline_foreign(v, depth)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.inline_foreign(v, depth))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn note(&mut self, operation: &str, at: &str, reason: &str) {
        let note = Unenforced {
            operation: (!operation.is_empty()).then(|| operation.to_owned()),
            at: at.to_owned(),
            reason: reason.to_owned(),
        };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// A unique endpoint id: the operation id made safe (`[A-Za-z0-9_-]`, 64 at most), or
    /// the method and path.
    fn endpoint_id(&mut self, operation_id: Option<&str>, method: &str, path: &str) -> String {
        let source = operation_id.map_or_else(|| format!("{method}-{path}"), str::to_owned);
        crate::model::derived_endpoint_id(&source, &mut self.ids)
    }

    /// Operations sharing a method and path become one endpoint: the one without a
    /// condition in its path key answers by default (else the first), the others as rules.
    fn group(
        &mut self,
        read: Vec<Read>,
        operations: &mut Vec<OperationReport>,
    ) -> Vec<EndpointSpec> {
        let mut order: Vec<(String, String)> = Vec::new();
        let mut groups: HashMap<(String, String), Vec<Read>> = HashMap::new();
        let mut shapes: HashMap<(String, String), String> = HashMap::new();
        for op in read {
            let shape = Template::parse(&op.path)
                .map(|t| t.shape())
                .unwrap_or_default();
            match shapes.get(&(op.method.clone(), shape.clone())) {
                Some(path) if *path != op.path => {
                    let reason = format!(
                        "`{} {}` is the same route as `{} {path}` (only parameter names differ), which answers",
                        op.method, op.path, op.method
                    );
                    operations.push(skipped(&op.method, &op.key, Some(op.label), &reason));
                    continue;
                }
                Some(_) => {}
                None => {
                    shapes.insert((op.method.clone(), shape), op.path.clone());
                }
            }
            let key = (op.method.clone(), op.path.clone());
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(op);
        }
        let mut endpoints = Vec::with_capacity(order.len());
        for key in order {
            let Some(mut group) = groups.remove(&key) else {
                continue;
            };
            let lead = group
                .iter()
                .position(|op| op.when == crate::model::When::default())
                .unwrap_or(0);
            let lead = group.remove(lead);
            let mut spec = lead.spec;
            let id = spec.id.clone().unwrap_or_default();
            operations.push(OperationReport {
                operation: lead.label,
                method: lead.method,
                path: lead.key,
                status: "imported",
                endpoint: Some(id.clone()),
                answers: Some(lead.answers),
                body: lead.body,
                when: None,
                reason: None,
            });
            let mut rules = Vec::new();
            let mut seen = vec![lead.when];
            for op in group {
                if seen.contains(&op.when) {
                    let reason = format!(
                        "another operation has the same method, path and condition; `{id}` answers"
                    );
                    operations.push(skipped(&op.method, &op.key, Some(op.label), &reason));
                    continue;
                }
                seen.push(op.when.clone());
                let when = serde_json::to_value(&op.when).ok();
                if let HandlerSpec::Mock(mut mock) = op.spec.handler {
                    // Its answers by `Accept` first, each with its own condition too.
                    for alternative in mock.rules.take().map(|r| r.0).into_iter().flatten() {
                        let mut when = op.when.clone();
                        when.query.extend(alternative.when.query);
                        when.headers.extend(alternative.when.headers);
                        rules.push(crate::model::Rule {
                            when,
                            response: alternative.response,
                        });
                    }
                    rules.push(crate::model::Rule {
                        when: op.when,
                        response: mock,
                    });
                }
                if let (Some(docs), Some(other)) =
                    (spec.docs.as_deref_mut(), op.spec.docs.as_deref())
                {
                    share_parameters(&mut docs.operation, &other.operation);
                }
                operations.push(OperationReport {
                    operation: op.label,
                    method: op.method,
                    path: op.key,
                    status: "imported",
                    endpoint: Some(id.clone()),
                    answers: Some(op.answers),
                    body: op.body,
                    when,
                    reason: None,
                });
            }
            if !rules.is_empty()
                && let HandlerSpec::Mock(mock) = &mut spec.handler
            {
                // The lead's own answers by `Accept` come after the other operations'.
                rules.extend(mock.rules.take().map(|r| r.0).into_iter().flatten());
                rules.truncate(crate::model::MAX_RULES);
                mock.rules = Some(Box::new(Rules(rules)));
            }
            endpoints.push(spec);
        }
        endpoints
    }

    /// The project's `openapi` settings from the document: `info`, `tags`, `components`
    /// (as JSON Schema 2020-12), `security`, `externalDocs` and `x-…`.
    fn document_settings(&mut self) -> ProjectDocs {
        let mut settings = Map::new();
        let normalized = schema::normalize_document(self.root, self.version, Direction::Response);
        for (field, value) in normalized.schema.as_object().into_iter().flatten() {
            if DOCUMENT_FIELDS.contains(&field.as_str()) || field.starts_with("x-") {
                settings.insert(field.clone(), value.clone());
            }
        }
        for note in normalized
            .notes
            .into_iter()
            .filter(|n| n.pointer.starts_with("/components"))
        {
            self.note("", &note.pointer, &note.reason);
        }
        if let Some(components) = settings.get_mut("components") {
            let mut dropped = Vec::new();
            drop_bad_defaults(components, "/components", &mut dropped);
            for at in dropped {
                self.note(
                    "",
                    &at,
                    "a `default` that does not fit its schema (type, enum or format) is left out",
                );
            }
        }
        if self.version == Version::V3_1
            && let Some(dialect) = self.root.get("jsonSchemaDialect")
        {
            settings.insert("jsonSchemaDialect".into(), dialect.clone());
        }
        ProjectDocs::new(settings)
    }
}

/// Removes, in every schema under `value`, a `default` that is not of the schema's `type`,
/// not one of its `enum` or not of its `format` (documents have `"default": "100"` on
/// integers and `"now"` as a date-time), which would make the project's document invalid;
/// `dropped` gets where.
fn drop_bad_defaults(value: &mut Value, at: &str, dropped: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            let types: Vec<&str> = match object.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let fits = |default: &Value| {
                (types.is_empty() || types.iter().any(|t| of_type(default, t)))
                    && object
                        .get("enum")
                        .and_then(Value::as_array)
                        .is_none_or(|values| values.contains(default))
                    && object.get("format").is_none_or(|format| {
                        jsonschema::options()
                            .should_validate_formats(true)
                            .build(&json!({ "format": format }))
                            .map_or(true, |v| v.is_valid(default))
                    })
            };
            if let Some(default) = object.get("default")
                && !fits(default)
            {
                object.remove("default");
                dropped.push(format!("{at}/default"));
            }
            for (key, child) in object.iter_mut() {
                drop_bad_defaults(
                    child,
                    &format!("{at}/{}", schema::escape_segment(key)),
                    dropped,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                drop_bad_defaults(child, &format!("{at}/{i}"), dropped);
            }
        }
        _ => {}
    }
}

/// Whether `value` is of the JSON Schema type `ty`.
fn of_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

/// An operation merged into another's endpoint as a rule: the endpoint keeps the parameters
/// both declare, required only where both require them, and a request body only when both
/// give the same one, so that validation accepts every operation's requests.
fn share_parameters(kept: &mut Operation, other: &Operation) {
    kept.parameters.retain_mut(|parameter| {
        let place = parameter.get("in").cloned();
        let name = parameter.get("name").cloned();
        let Some(theirs) = other
            .parameters
            .iter()
            .find(|p| p.get("in") == place.as_ref() && p.get("name") == name.as_ref())
        else {
            return false;
        };
        let Some(object) = parameter.as_object_mut() else {
            return true;
        };
        if theirs.get("required") != Some(&Value::Bool(true)) {
            object.insert("required".into(), Value::Bool(false));
        }
        // Differing schemas (the `X-Amz-Target` header naming each operation): either.
        if let (Some(mine), Some(other)) = (object.get("schema"), theirs.get("schema"))
            && mine != other
        {
            let mut branches = match mine.get("anyOf").and_then(Value::as_array) {
                Some(branches) if mine.as_object().is_some_and(|m| m.len() == 1) => {
                    branches.clone()
                }
                _ => vec![mine.clone()],
            };
            if !branches.contains(other) {
                branches.push(other.clone());
            }
            object.insert("schema".into(), json!({ "anyOf": branches }));
        }
        true
    });
    if kept.request_body != other.request_body {
        kept.request_body = None;
    }
}

/// The response an operation answers with: its key (none when the operation documents no
/// response) and status.
fn choose_response<'a>(
    responses: &'a Map<String, Value>,
    prefer: Option<&str>,
) -> Option<(Option<&'a str>, u16)> {
    let status_of = |key: &str| -> Option<u16> {
        if key == "default" {
            return Some(200);
        }
        let first = key.as_bytes().first()?;
        if key[1..].eq_ignore_ascii_case("XX") {
            return Some(u16::from(first - b'0') * 100);
        }
        key.parse().ok()
    };
    let servable = |status: u16| (200..=599).contains(&status);
    if let Some(prefer) = prefer
        && let Some((key, _)) = responses.get_key_value(prefer).or_else(|| {
            responses
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(prefer))
        })
        && let Some(status) = status_of(key).filter(|s| servable(*s))
    {
        return Some((Some(key.as_str()), status));
    }
    let mut exact: Vec<(u16, &str)> = responses
        .keys()
        .filter_map(|k| k.parse::<u16>().ok().map(|s| (s, k.as_str())))
        .filter(|(s, _)| servable(*s))
        .collect();
    exact.sort();
    if let Some((status, key)) = exact.iter().find(|(s, _)| (200..300).contains(s)) {
        return Some((Some(key), *status));
    }
    if let Some(key) = responses.keys().find(|k| k.eq_ignore_ascii_case("2XX")) {
        return Some((Some(key.as_str()), 200));
    }
    if let Some((status, key)) = exact.first() {
        return Some((Some(key), *status));
    }
    let mut ranges: Vec<(u16, &str)> = responses
        .keys()
        .filter(|k| k.len() == 3 && k[1..].eq_ignore_ascii_case("XX"))
        .filter_map(|k| status_of(k).map(|s| (s, k.as_str())))
        .filter(|(s, _)| servable(*s))
        .collect();
    ranges.sort();
    if let Some((status, key)) = ranges.first() {
        return Some((Some(key), *status));
    }
    if responses.contains_key("default") {
        return Some((Some("default"), 200));
    }
    if responses.is_empty() {
        return Some((None, 200));
    }
    None
}

/// The media type answered: JSON first (`application/json`, then any `…/json` or
/// `…+json`, then `*/*` with a schema), else the first one offered.
/// The most other media types of one response an endpoint answers by `Accept`.
const MAX_ALTERNATIVES: usize = 8;

/// The pattern of an `Accept` header that lists `essence` first (any case, parameters such
/// as `q` aside).
fn accept_first(essence: &str) -> String {
    format!(r"(?i)^\s*{}\s*(;|,|$)", regex::escape(essence))
}

fn choose_media(content: &Map<String, Value>) -> Option<(&str, &Value)> {
    let bare = |media: &str| essence(media);
    content
        .iter()
        .find(|(m, _)| bare(m) == "application/json")
        .or_else(|| {
            content.iter().find(|(m, _)| {
                let m = bare(m);
                m.ends_with("/json") || m.ends_with("+json")
            })
        })
        .or_else(|| {
            content
                .iter()
                .find(|(m, v)| bare(m) == "*/*" && v.get("schema").is_some())
        })
        .or_else(|| content.iter().next())
        .map(|(m, v)| (m.as_str(), v))
}

enum MediaKind {
    Json,
    Text,
    Binary,
}

fn media_kind(media: &str, object: &Value) -> MediaKind {
    let bare = essence(media);
    if is_json(&bare) {
        return MediaKind::Json;
    }
    if bare == "*/*" || bare.is_empty() {
        return if object.get("schema").is_some() {
            MediaKind::Json
        } else {
            MediaKind::Binary
        };
    }
    let textual = bare.starts_with("text/")
        || bare.ends_with("/xml")
        || bare.ends_with("+xml")
        || bare.ends_with("/yaml")
        || bare.ends_with("+yaml")
        || bare.ends_with("/x-yaml")
        || bare.ends_with("/javascript")
        || bare.ends_with("/x-www-form-urlencoded")
        || bare.ends_with("/csv")
        || bare.ends_with("/graphql")
        || bare.ends_with("/html");
    if textual {
        MediaKind::Text
    } else {
        MediaKind::Binary
    }
}

/// A small body of the media type's kind, the same every time: a 1×1 PNG, a minimal PDF,
/// else a line of text.
fn binary_body(media: &str) -> Vec<u8> {
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    match essence(media).as_str() {
        "image/png" => PNG.to_vec(),
        "application/pdf" => b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec(),
        "application/msgpack" | "application/x-msgpack" => vec![0x80],
        _ => b"switchyard mock body\n".to_vec(),
    }
}

/// A generated value as XML: the schema's `xml.name` (or `response`) as the root, objects
/// as nested elements, arrays as repeated ones.
fn to_xml(media: &Value, value: &Value) -> String {
    fn write(out: &mut String, name: &str, value: &Value) {
        match value {
            Value::Array(items) => {
                for item in items {
                    write(out, name, item);
                }
            }
            Value::Object(object) => {
                out.push_str(&format!("<{name}>"));
                for (key, value) in object {
                    let key: String = key
                        .chars()
                        .filter(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    write(out, if key.is_empty() { "value" } else { &key }, value);
                }
                out.push_str(&format!("</{name}>"));
            }
            Value::Null => out.push_str(&format!("<{name}/>")),
            Value::String(text) => {
                let escaped = text
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                out.push_str(&format!("<{name}>{escaped}</{name}>"));
            }
            other => out.push_str(&format!("<{name}>{other}</{name}>")),
        }
    }
    let name = media
        .pointer("/schema/xml/name")
        .and_then(Value::as_str)
        .unwrap_or("response");
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write(&mut out, name, value);
    out
}

/// A path key split into the path and the condition written after it: `?name=value`
/// (query parameters) and `#Header=value` (a header, as AWS documents write
/// `/#X-Amz-Target=Service.Action`).
fn split_key(key: &str) -> (String, crate::model::When) {
    let mut when = crate::model::When::default();
    let (rest, fragment) = match key.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (key, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let condition = |value: &str| crate::model::Condition::Equals(value.to_owned());
    if let Some(query) = query {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !name.is_empty() {
                when.query.insert(name.into_owned(), condition(&value));
            }
        }
    }
    if let Some(fragment) = fragment {
        for pair in fragment.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            {
                when.headers
                    .insert(name.to_ascii_lowercase(), condition(value));
            }
        }
    }
    let path = if path.is_empty() { "/" } else { path };
    (path.to_owned(), when)
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
