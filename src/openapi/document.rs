//! A project's own OpenAPI 3.1 document, made from its compiled revision: every endpoint and
//! script route as an operation, the project's `openapi` settings (info, tags, components…)
//! around them, and its auth policy as security schemes.
//!
//! [`Document::build`] runs once per revision, on the first request for the document (the
//! project holds it in a [`DocsCache`]); serving it afterwards is a reference-count
//! increment, or, behind a proxy that sends `X-Forwarded-Prefix`, one copy with the prefix
//! put into `servers`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};

use crate::dataset::{self, Op, QuerySettings};
use crate::model::{AuthPolicy, DatasetAction, Endpoint, HandlerSpec, MockSpec, Project};
use crate::routing::CompiledProject;

/// The methods an `ANY` endpoint is listed under.
const ANY_METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// Stands for the server URL while the document is written, then is cut out.
const SERVER_MARK: &str = "\u{1}switchyard-server\u{1}";

/// A project's document, written once: the whole text (for a request without a forwarded
/// prefix), and the text before and after the server URL.
#[derive(Debug)]
pub struct Document {
    whole: Bytes,
    head: Bytes,
    tail: Bytes,
}

impl Document {
    /// The document of this revision of a project.
    pub fn build(project: &CompiledProject) -> Document {
        let value = document(project);
        let marked = serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_owned());
        let mark = serde_json::to_string(SERVER_MARK).unwrap_or_default();
        let (head, tail) = match marked.find(&mark) {
            Some(at) => (
                marked[..at].to_owned(),
                marked[at + mark.len()..].to_owned(),
            ),
            None => (marked, String::new()),
        };
        let mount = match project.def.mount() {
            // Mounted at `/` (`switchyard run`).
            root if root.is_empty() => "/".to_owned(),
            mount => mount,
        };
        let whole = [
            head.as_bytes(),
            json_string(&mount).as_bytes(),
            tail.as_bytes(),
        ]
        .concat();
        Document {
            whole: Bytes::from(whole),
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        }
    }

    /// The text, with the server URL `mount` under `prefix` when a proxy in front gives one.
    pub fn text(&self, prefix: Option<&str>, mount: &str) -> Bytes {
        let Some(prefix) = prefix
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
        else {
            return self.whole.clone();
        };
        let url = json_string(&format!("{prefix}{mount}"));
        let mut out = BytesMut::with_capacity(self.head.len() + url.len() + self.tail.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(url.as_bytes());
        out.extend_from_slice(&self.tail);
        out.freeze()
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A revision's document, made on first use.
#[derive(Debug, Default)]
pub struct DocsCache(OnceLock<Arc<Document>>);

impl DocsCache {
    pub fn get(&self, project: &CompiledProject) -> Arc<Document> {
        self.0
            .get_or_init(|| Arc::new(Document::build(project)))
            .clone()
    }
}

fn document(project: &CompiledProject) -> Value {
    let def = &project.def;
    let settings = def.openapi.as_deref().map(|d| d.fields());
    let given = |key: &str| settings.and_then(|s| s.get(key));
    let mut info = Map::new();
    info.insert("title".into(), Value::String(def.name.clone()));
    info.insert("version".into(), Value::String(def.revision.to_string()));
    if !def.description.is_empty() {
        info.insert("description".into(), Value::String(def.description.clone()));
    }
    if let Some(Value::Object(own)) = given("info") {
        for (key, value) in own {
            info.insert(key.clone(), value.clone());
        }
    }
    let mut doc = Map::new();
    doc.insert("openapi".into(), json!("3.1.0"));
    doc.insert("servers".into(), json!([{ "url": SERVER_MARK }]));
    doc.insert("info".into(), Value::Object(info));

    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut ids = OperationIds::default();
    for endpoint in def.endpoints.iter() {
        let (key, methods) = path_and_methods(endpoint);
        let operation = endpoint_operation(endpoint, project);
        add_operations(&mut paths, &key, &methods, operation, &mut ids);
    }
    if let Some(script) = &project.script {
        for route in script.script.routes() {
            let key = openapi_path(&route.path);
            let methods: Vec<String> = match &route.method {
                Some(method) => vec![method.as_str().to_ascii_lowercase()],
                None => ANY_METHODS.iter().map(|m| (*m).to_owned()).collect(),
            };
            let mut described = Operated::new(&route.path, route.docs.as_deref());
            described
                .operation
                .entry("tags")
                .or_insert_with(|| json!(["script"]));
            let operation = described.finish("What the project's script answers.");
            add_operations(&mut paths, &key, &methods, operation, &mut ids);
        }
    }
    doc.insert(
        "paths".into(),
        Value::Object(
            paths
                .into_iter()
                .map(|(k, v)| (k, Value::Object(v)))
                .collect(),
        ),
    );

    let mut components = match given("components") {
        Some(Value::Object(components)) => components.clone(),
        _ => Map::new(),
    };
    if let Some((name, scheme)) = security_scheme(&def.auth) {
        let schemes = components
            .entry("securitySchemes")
            .or_insert_with(|| json!({}));
        if let Value::Object(schemes) = schemes {
            schemes.insert(name.into(), scheme);
        }
        doc.insert("security".into(), json!([{ name: [] }]));
    } else if let Some(security) = given("security") {
        doc.insert("security".into(), security.clone());
    }
    if !components.is_empty() {
        doc.insert("components".into(), Value::Object(components));
    }
    for key in ["tags", "externalDocs", "jsonSchemaDialect"] {
        if let Some(value) = given(key) {
            doc.insert(key.into(), value.clone());
        }
    }
    if let Some(settings) = settings {
        for (key, value) in settings.iter().filter(|(k, _)| k.starts_with("x-")) {
            doc.insert(key.clone(), value.clone());
        }
    }
    Value::Object(doc)
}

/// Unique operation ids: a given one is kept (the first time), others are made from the
/// method and path.
#[derive(Default)]
struct OperationIds(HashSet<String>);

impl OperationIds {
    fn take(&mut self, wanted: Option<&str>, method: &str, path: &str) -> String {
        let base = match wanted {
            Some(id) => id.to_owned(),
            None => {
                let mut id = method.to_owned();
                let mut gap = false;
                for c in path.chars() {
                    if c.is_ascii_alphanumeric() {
                        if gap {
                            id.push('_');
                            gap = false;
                        }
                        id.push(c);
                    } else {
                        gap = true;
                    }
                }
                id
            }
        };
        let mut id = base.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        id
    }
}

fn add_operations(
    paths: &mut BTreeMap<String, Map<String, Value>>,
    key: &str,
    methods: &[String],
    operation: Map<String, Value>,
    ids: &mut OperationIds,
) {
    let item = paths.entry(key.to_owned()).or_default();
    for method in methods {
        if item.contains_key(method) {
            // A later endpoint with the same method and path never answers (the router
            // takes the first); the document lists what answers.
            continue;
        }
        let mut operation = operation.clone();
        let wanted = operation
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = ids.take(wanted.as_deref(), method, key);
        operation.insert("operationId".into(), Value::String(id));
        item.insert(method.clone(), Value::Object(operation));
    }
}

/// An endpoint's path as OpenAPI writes it (a tail `{*rest}` is `{rest}`) and its methods.
fn path_and_methods(endpoint: &Endpoint) -> (String, Vec<String>) {
    let methods = match &endpoint.spec.method {
        crate::model::MethodSpec::Any => ANY_METHODS.iter().map(|m| (*m).to_owned()).collect(),
        crate::model::MethodSpec::One(method) => vec![method.as_str().to_ascii_lowercase()],
    };
    (openapi_path(&endpoint.spec.path), methods)
}

fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The path parameters of a template that `given` does not declare: strings, required.
fn path_parameters(path: &str, given: &[Value]) -> Vec<Value> {
    let Ok(template) = crate::routing::template::Template::parse(path) else {
        return Vec::new();
    };
    let declared = |name: &str| {
        given.iter().any(|p| {
            p.get("in").and_then(Value::as_str) == Some("path")
                && p.get("name").and_then(Value::as_str) == Some(name)
        })
    };
    let mut out: Vec<Value> = given.to_vec();
    for name in template.param_names() {
        if declared(name) {
            continue;
        }
        let tail = path.contains(&format!("{{*{name}}}"));
        let mut parameter = json!({"name": name, "in": "path", "required": true,
                                   "schema": {"type": "string"}});
        if tail {
            parameter["description"] = json!("The rest of the path; it may contain `/`.");
        }
        out.push(parameter);
    }
    out
}

/// An operation as its docs describe it (an endpoint's, or a script route's), before what
/// its handler kind adds.
struct Operated<'a> {
    operation: Map<String, Value>,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: Option<Map<String, Value>>,
    given: Option<&'a crate::model::Operation>,
}

impl<'a> Operated<'a> {
    fn new(path: &str, docs: Option<&'a crate::model::Docs>) -> Operated<'a> {
        let mut operation = Map::new();
        let given = docs.map(|d| &d.operation);
        if let Some(summary) = docs.and_then(|d| d.summary.as_deref()) {
            operation.insert("summary".into(), json!(summary));
        }
        if let Some(description) = docs.and_then(|d| d.description.as_deref()) {
            operation.insert("description".into(), json!(description));
        }
        if let Some(tags) = docs.map(|d| &d.tags).filter(|t| !t.is_empty()) {
            operation.insert("tags".into(), json!(tags));
        }
        if let Some(id) = given.and_then(|o| o.operation_id.as_deref()) {
            operation.insert("operationId".into(), json!(id));
        }
        Operated {
            operation,
            parameters: path_parameters(path, given.map_or(&[], |o| &o.parameters[..])),
            request_body: given.and_then(|o| o.request_body.clone()),
            responses: given.and_then(|o| o.responses.clone()),
            given,
        }
    }

    /// The Operation Object: the parts, the docs' other fields, and a `default` response
    /// saying `otherwise` when none is documented.
    fn finish(self, otherwise: &str) -> Map<String, Value> {
        let Operated {
            mut operation,
            parameters,
            request_body,
            responses,
            given,
        } = self;
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = request_body {
            operation.insert("requestBody".into(), body);
        }
        match responses.filter(|r| !r.is_empty()) {
            Some(responses) => operation.insert("responses".into(), Value::Object(responses)),
            None => operation.insert(
                "responses".into(),
                json!({"default": {"description": otherwise}}),
            ),
        };
        if let Some(extra) = given.and_then(|o| o.extra.as_ref()) {
            for (key, value) in extra {
                operation
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        operation
    }
}

fn endpoint_operation(endpoint: &Endpoint, project: &CompiledProject) -> Map<String, Value> {
    let spec = &endpoint.spec;
    let mut described = Operated::new(&spec.path, spec.docs.as_deref());
    let Operated {
        operation,
        parameters,
        request_body,
        responses,
        ..
    } = &mut described;
    match &spec.handler {
        HandlerSpec::Mock(mock) => {
            if responses.is_none() {
                *responses = Some(mock_responses(mock));
            }
        }
        HandlerSpec::Proxy(proxy) => {
            if !operation.contains_key("description") {
                operation.insert(
                    "description".into(),
                    json!(format!(
                        "Forwarded, with everything below this path, to the backend `{}`.",
                        proxy.backend
                    )),
                );
            }
            if responses.is_none() {
                *responses = Some(
                    json!({"default": {"description": "What the backend answers."}})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        HandlerSpec::Dataset(ds) => {
            let described = dataset_operation(ds, &spec.method, project);
            if responses.is_none() {
                *responses = Some(described.responses);
            }
            if request_body.is_none() {
                *request_body = described.request_body;
            }
            parameters.extend(described.parameters);
        }
    }
    if let Some(auth) = &spec.auth {
        let scheme = security_scheme(&project.def.auth).map(|(name, _)| name);
        if auth.public {
            operation.insert("security".into(), json!([]));
        } else if let Some(name) = scheme
            && !auth.scopes.is_empty()
        {
            operation.insert("security".into(), json!([{ name: auth.scopes }]));
        }
    }
    described.finish("The endpoint's answer.")
}

/// The responses of a mock: its own and those of its rules, each with the body's media
/// type, a schema inferred from a JSON body, and the body as the example.
fn mock_responses(mock: &MockSpec) -> Map<String, Value> {
    let mut responses = Map::new();
    let all = std::iter::once(mock).chain(
        mock.rules
            .iter()
            .flat_map(|r| r.0.iter())
            .map(|r| &r.response),
    );
    for (n, response) in all.enumerate() {
        let status = response.status.to_string();
        if responses.contains_key(&status) {
            continue;
        }
        let mut object = Map::new();
        object.insert(
            "description".into(),
            json!(if n == 0 {
                "The mock's response."
            } else {
                "The response of one of the mock's rules."
            }),
        );
        let content_type = response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .and_then(|(_, values)| values.iter().next())
            .map(str::to_owned);
        let media = if let Some(json) = &response.json {
            let example: Value = serde_json::from_str(json.get()).unwrap_or(Value::Null);
            Some((
                content_type.unwrap_or_else(|| "application/json".into()),
                json!({"schema": infer(&example), "example": example}),
            ))
        } else if let Some(text) = &response.body {
            Some((
                content_type.unwrap_or_else(|| "text/plain".into()),
                json!({"schema": {"type": "string"}, "example": text.as_ref()}),
            ))
        } else if response.body_base64.is_some() {
            Some((
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
                json!({"schema": {"type": "string", "contentEncoding": "base64"}}),
            ))
        } else {
            None
        };
        if let Some((media, object_of)) = media {
            object.insert("content".into(), json!({ media: object_of }));
        }
        let headers: Map<String, Value> = response
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
            .map(|(name, values)| {
                let example = values.iter().next().unwrap_or_default();
                (
                    name.to_owned(),
                    json!({"schema": {"type": "string"}, "example": example}),
                )
            })
            .collect();
        if !headers.is_empty() {
            object.insert("headers".into(), Value::Object(headers));
        }
        responses.insert(status, Value::Object(object));
    }
    responses
}

/// The JSON Schema a value is an instance of, as exactly as the value shows: every key of
/// an object required, an array's items from its first element.
pub fn infer(value: &Value) -> Value {
    match value {
        Value::Null => json!({"type": "null"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => match items.first() {
            Some(first) => json!({"type": "array", "items": infer(first)}),
            None => json!({"type": "array"}),
        },
        Value::Object(object) => {
            let properties: Map<String, Value> =
                object.iter().map(|(k, v)| (k.clone(), infer(v))).collect();
            let required: Vec<&String> = object.keys().collect();
            json!({"type": "object", "properties": properties, "required": required})
        }
    }
}

struct Described {
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: Map<String, Value>,
}

fn dataset_operation(
    spec: &crate::model::DatasetSpec,
    method: &crate::model::MethodSpec,
    project: &CompiledProject,
) -> Described {
    let settings = QuerySettings {
        category: spec.category.clone(),
        label_key: spec.label_key().to_owned(),
        max_per_page: crate::handlers::dataset::MAX_PER_PAGE,
        max_answer_rows: crate::handlers::dataset::MAX_ANSWER_ROWS,
    };
    let loaded = project.datasets.get(&spec.name);
    let get = matches!(method, crate::model::MethodSpec::One(m) if m == http::Method::GET || m == http::Method::HEAD);
    let mut parameters = Vec::new();
    let mut request_body = None;
    let answer = match (loaded, spec.action) {
        (None, _) => json!({}),
        (Some(ds), DatasetAction::Query) => {
            json!({"type": "array", "items": dataset::row_schema(&ds.data, &settings)})
        }
        (Some(ds), DatasetAction::Stats) => {
            let op = spec
                .op
                .as_deref()
                .and_then(|op| op.parse::<Op>().ok())
                .unwrap_or(Op::Mean);
            json!({"type": "array", "items": dataset::group_schema(&ds.data, &settings, op)})
        }
        (Some(_), DatasetAction::Schema) => dataset::schema_schema(),
    };
    if let Some(ds) = loaded
        && spec.action != DatasetAction::Schema
    {
        if get {
            for p in dataset::get_parameters(&ds.data, &settings) {
                let mut schema = json!({"type": p.ty});
                if let Some(min) = p.minimum {
                    schema["minimum"] = json!(min);
                }
                if let Some(max) = p.maximum {
                    schema["maximum"] = json!(max);
                }
                if p.repeatable {
                    schema = json!({"type": "array", "items": schema});
                }
                parameters.push(json!({"name": p.name, "in": "query", "required": false,
                                       "description": p.description, "schema": schema}));
            }
        } else {
            request_body = Some(json!({"required": false, "content": {"application/json": {
                "schema": dataset::body_schema(&ds.data, &settings)}}}));
        }
    }
    let mut ok = json!({"description": format!("From the dataset `{}`.", spec.name),
                        "content": {"application/json": {"schema": answer}}});
    if spec.action == DatasetAction::Query {
        ok["content"]["text/csv"] = json!({"schema": {"type": "string"}});
        ok["content"]["application/x-ndjson"] = json!({"schema": {"type": "string"}});
    }
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    if spec.action != DatasetAction::Schema {
        responses.insert("422".into(), error_response("The query is not valid."));
    }
    responses.insert(
        "409".into(),
        error_response("The project has no dataset of that name."),
    );
    Described {
        parameters,
        request_body,
        responses,
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": error_schema()}}})
}

/// The JSON error every Switchyard error answer has (docs/errors.md).
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }},
    })
}

/// The security scheme a project's policy is, with the name the document gives it.
fn security_scheme(policy: &AuthPolicy) -> Option<(&'static str, Value)> {
    match policy {
        AuthPolicy::None => None,
        AuthPolicy::ApiKey { header, query, .. } => {
            let (place, name) = match (header, query) {
                (_, Some(query)) => ("query", query.clone()),
                (Some(header), None) => ("header", header.clone()),
                (None, None) => ("header", crate::model::DEFAULT_KEY_HEADER.to_owned()),
            };
            Some((
                "api_key",
                json!({"type": "apiKey", "in": place, "name": name,
                       "description": "An API key of the project (`syk_…`)."}),
            ))
        }
        AuthPolicy::Jwt(_) => Some((
            "jwt",
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        )),
        AuthPolicy::Basic { .. } => Some(("basic", json!({"type": "http", "scheme": "basic"}))),
        AuthPolicy::Platform { .. } => Some((
            "platform",
            json!({"type": "http", "scheme": "bearer",
                   "description": "A Switchyard login or API token."}),
        )),
    }
}

/// The project's page title and spec URL, for the docs pages.
pub fn title(project: &Project) -> String {
    project
        .openapi
        .as_deref()
        .and_then(|d| d.fields().get("info"))
        .and_then(|i| i.get("title"))
        .and_then(Value::as_str)
        .map_or_else(|| project.name.clone(), str::to_owned)
}
