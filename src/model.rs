//! Domain types and their validation: users, projects, endpoints and mock responses.
//!
//! `model` knows what a valid definition is and nothing of where it is stored or how it is
//! served: no IO, no HTTP server, no SQL. Definitions arrive as JSON from the admin API (and
//! later from project folders); [`EndpointSpec::validate`] and friends return every problem as
//! a [`FieldError`] naming the field, so the caller can answer 422 with all of them at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::error::FieldError;
use crate::routing::template::Template;

mod auth;
mod backend;
mod dataset;
mod env;
mod openapi;
pub use auth::{
    AuthPolicy, BasicUser, CorsPolicy, DEFAULT_KEY_HEADER, EndpointAuth, RateLimit, check_key_name,
};
pub use backend::{
    Backend, Balance, DockerSelector, HealthCheck, ProxySpec, check_backend_count,
    check_backend_name, check_target_url, validate_backends,
};
pub use dataset::{DatasetAction, DatasetSpec, OP_PARAM, STATS_OPS};
pub use env::Env;
pub use openapi::{
    Condition, MAX_RULES, Operation, PARAMETER_PLACES, ProjectDocs, Rule, Rules, Test, Validation,
    When, is_response_key,
};

/// Root path segments the platform owns; no user, project or mount may take them.
pub const RESERVED_NAMES: &[&str] = &[
    "health", "ready", "stats", "metrics", "docs", "redoc", "auth", "admin", "ui", "api", "static",
    "assets",
];

/// The platform's root paths that are not plain names (`/openapi.json`).
pub const RESERVED_FILES: &[&str] = &["openapi.json", "favicon.ico", "robots.txt"];

/// Is this first path segment one the platform answers itself?
pub fn is_reserved_root(segment: &str) -> bool {
    RESERVED_NAMES.contains(&segment) || RESERVED_FILES.contains(&segment)
}

fn check_name(value: &str, max: usize, what: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("{what} must be 1 to {max} characters long"));
    }
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "{what} may use only a-z, 0-9, '_' and '-', and must start with a letter or digit"
        ));
    }
    if RESERVED_NAMES.contains(&value) {
        return Err(format!("`{value}` is reserved by the platform"));
    }
    Ok(())
}

/// User names: 1–32 characters of `[a-z0-9][a-z0-9_-]*`, not a reserved root name.
pub fn check_username(value: &str) -> Result<(), String> {
    check_name(value, 32, "a user name")
}

/// Project names: 1–64 characters of `[a-z0-9][a-z0-9_-]*`, not a reserved root name.
pub fn check_project_name(value: &str) -> Result<(), String> {
    check_name(value, 64, "a project name")
}

/// Passwords: 8 to 1024 characters (the upper bound keeps hashing cost bounded).
pub fn check_password(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if !(8..=1024).contains(&len) {
        return Err("a password must be 8 to 1024 characters long".into());
    }
    Ok(())
}

/// A user's role on the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A project's mode: what its docs pages show and what is checked, never how its routes
/// answer (docs/admin-api.md).
///
/// - `development` (the default), the mode to debug in: the generated docs (`/openapi.json`,
///   `/docs`, `/redoc` inside the project) are served, and answers are checked against their
///   documented responses where an endpoint asks (mismatches logged, flagged in the journal);
/// - `staging`: docs served, answers not checked, nothing logged for debugging;
/// - `production`: docs hidden (404), answers not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum Mode {
    #[default]
    Development,
    Staging,
    Production,
}

impl Mode {
    /// Every mode, in the order of the docs.
    pub const ALL: [Mode; 3] = [Mode::Development, Mode::Staging, Mode::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Staging => "staging",
            Mode::Production => "production",
        }
    }

    pub fn parse(value: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.as_str() == value)
    }
}

/// A project as the node holds it: settings, revision and endpoints, in priority order.
#[derive(Debug, Clone)]
pub struct Project {
    /// The store's key for the project.
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub description: String,
    pub mode: Mode,
    /// Requests the project's journal keeps: `None` for the node's default, 0 for none.
    pub journal_size: Option<u32>,
    /// Starts at 1 and grows by one with every committed change.
    pub revision: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Endpoints in the order they were added. A persistent vector: the next revision
    /// shares all but the changed chunk with this one, so a one-endpoint change costs
    /// O(log n) whatever the project's size.
    pub endpoints: EndpointList,
    /// The project's backends (upstream groups its proxy endpoints name), by name.
    pub backends: Arc<[Backend]>,
    /// The project's script (a JavaScript module, `script`), if it has one.
    pub script: Option<Arc<str>>,
    /// Who may call the project.
    pub auth: AuthPolicy,
    /// Which browser origins may call it (CORS); `None`: no CORS headers, preflights go to
    /// the endpoints.
    pub cors: Option<CorsPolicy>,
    /// How often it may be called.
    pub rate_limit: Option<RateLimit>,
    /// The parts of its OpenAPI document that belong to no endpoint (`info`, `components`…).
    pub openapi: Option<Arc<ProjectDocs>>,
    /// Its environment values, which its script reads as `env`.
    pub env: Env,
    /// Where the node mounts it (not stored: the node's, see [`Layout`]).
    pub layout: Layout,
}

/// Where a node mounts its projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// At `/{owner}/{name}`: the platform.
    #[default]
    Owner,
    /// At `/{name}`: `switchyard serve --projects`, one owner's project folders.
    Name,
    /// At `/`: `switchyard run`, one project alone.
    Root,
}

/// A project's endpoints: see [`Project::endpoints`].
pub type EndpointList = imbl::Vector<Arc<Endpoint>>;

impl Project {
    /// Where the project is mounted, e.g. `/alice/demo` (`/demo` in the `Name` layout, ``
    /// in the `Root` one).
    pub fn mount(&self) -> String {
        match self.layout {
            Layout::Owner => format!("/{}/{}", self.owner, self.name),
            Layout::Name => format!("/{}", self.name),
            Layout::Root => String::new(),
        }
    }

    /// How logs name the project: its mount key, or its name when it is mounted at `/`.
    pub fn label(&self) -> String {
        match self.layout {
            Layout::Root => self.name.clone(),
            _ => self.mount_key(),
        }
    }

    /// The key of the route table: the mount without its leading slash.
    pub fn mount_key(&self) -> String {
        match self.layout {
            Layout::Owner => format!("{}/{}", self.owner, self.name),
            Layout::Name => self.name.clone(),
            Layout::Root => String::new(),
        }
    }

    /// The endpoint with this id. Searched from the end: the endpoint a change just added,
    /// the one its answer shows, is last.
    pub fn endpoint(&self, id: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().rev().find(|e| e.id == id)
    }

    /// The backend with this name.
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// A stored endpoint: its id, its validated definition and its parsed path template
/// (parsed once here, so recompiling a project never parses unchanged paths again).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub spec: EndpointSpec,
    pub template: Template,
}

impl Endpoint {
    /// Pairs a definition with its id, parsing the path.
    pub fn new(
        id: String,
        spec: EndpointSpec,
    ) -> Result<Endpoint, crate::routing::template::TemplateError> {
        let template = Template::parse_shared(spec.path.clone())?;
        let endpoint = Endpoint { id, spec, template };
        endpoint.tail().transpose()?;
        endpoint.alias().transpose()?;
        Ok(endpoint)
    }

    /// For a prefix endpoint (a proxy), the template of everything below its path: the
    /// path followed by `/{*rest}` (`/{*rest}` for `/`, which then takes every path). Made
    /// when asked (compiling a router, explaining a miss) rather than kept: prefix
    /// endpoints are few, and every endpoint would pay for the field.
    pub fn tail(&self) -> Option<Result<Template, crate::routing::template::TemplateError>> {
        match &self.spec.handler {
            HandlerSpec::Proxy(_) => {
                let path = self.spec.path.trim_end_matches('/');
                Some(Template::parse(&format!("{path}/{{*{PREFIX_TAIL}}}")))
            }
            HandlerSpec::Mock(_) | HandlerSpec::Dataset(_) => None,
        }
    }

    /// For a dataset endpoint, its path with a trailing slash added or taken away: both
    /// forms are served (`/range` and `/range/`).
    pub fn alias(&self) -> Option<Result<Template, crate::routing::template::TemplateError>> {
        match &self.spec.handler {
            HandlerSpec::Dataset(_) if &*self.spec.path != "/" => {
                let path = &self.spec.path;
                Some(match path.strip_suffix('/') {
                    Some(bare) => Template::parse(bare),
                    None => Template::parse(&format!("{path}/")),
                })
            }
            _ => None,
        }
    }
}

/// The method an endpoint answers: one HTTP method, or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodSpec {
    Any,
    One(http::Method),
}

impl MethodSpec {
    pub fn parse(value: &str) -> Result<MethodSpec, String> {
        if value.eq_ignore_ascii_case("any") {
            return Ok(MethodSpec::Any);
        }
        let upper = value.to_ascii_uppercase();
        if upper.is_empty()
            || upper.len() > 32
            || !upper
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
        {
            return Err(format!("`{value}` is not an HTTP method (or ANY)"));
        }
        http::Method::from_bytes(upper.as_bytes())
            .map(MethodSpec::One)
            .map_err(|_| format!("`{value}` is not an HTTP method (or ANY)"))
    }

    pub fn as_str(&self) -> &str {
        match self {
            MethodSpec::Any => "ANY",
            MethodSpec::One(method) => method.as_str(),
        }
    }
}

impl Serialize for MethodSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MethodSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        MethodSpec::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// An endpoint definition as users write it (admin API JSON, later project manifests).
/// Its JSON form is flat (see [`SpecJson`]); in memory the rarely given docs fields sit
/// behind one pointer, since a project holds one definition per endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "SpecJson")]
pub struct EndpointSpec {
    /// Chosen by the client (stable ids for `push`), or generated when absent.
    pub id: Option<String>,
    pub method: MethodSpec,
    /// Shared with the endpoint's parsed [`Template`], so that the path is held once.
    pub path: Arc<str>,
    pub handler: HandlerSpec,
    /// `None` when no docs field is given.
    pub docs: Option<Box<Docs>>,
    /// What a caller must hold to call it; `None`: a valid credential of the project's
    /// policy (anyone under `none`).
    pub auth: Option<Box<EndpointAuth>>,
}

/// An endpoint's docs metadata: `summary`, `description` and `tags` in the JSON form, and
/// its OpenAPI operation (`operation_id`, `parameters`, `request_body`, `responses`,
/// `openapi`, `validate`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Docs {
    pub summary: Option<Box<str>>,
    pub description: Option<Box<str>>,
    pub tags: Box<[Box<str>]>,
    pub operation: Operation,
}

/// The options a script route may give (`app.get(path, options, handler)`): an endpoint's
/// docs fields.
pub const ROUTE_OPTIONS: &[&str] = &[
    "summary",
    "description",
    "tags",
    "operation_id",
    "parameters",
    "request_body",
    "responses",
    "openapi",
    "validate",
];

impl Docs {
    /// A script route's docs from its options object (the fields of [`ROUTE_OPTIONS`], as an
    /// endpoint gives them), checked as an endpoint's are for a route at `path`: the first
    /// problem as `field: message`.
    pub fn from_route_options(
        options: serde_json::Map<String, serde_json::Value>,
        path: &str,
    ) -> Result<Option<Box<Docs>>, String> {
        if let Some(key) = options
            .keys()
            .find(|k| !ROUTE_OPTIONS.contains(&k.as_str()))
        {
            return Err(format!(
                "unknown option {key:?} (the options are {})",
                ROUTE_OPTIONS.join(", ")
            ));
        }
        let mut endpoint = options;
        endpoint.insert("method".into(), "GET".into());
        endpoint.insert("path".into(), path.into());
        endpoint.insert("response".into(), serde_json::json!({}));
        let spec: EndpointSpec = serde_json::from_value(serde_json::Value::Object(endpoint))
            .map_err(|error| error.to_string())?;
        match spec.validate("").into_iter().next() {
            Some(error) => Err(format!("{}: {}", error.field, error.message)),
            None => Ok(spec.docs),
        }
    }
}

/// What an endpoint does: one of the handler kinds, as its definition gives it. In the JSON
/// form each kind is its own field (`response` for a mock, `proxy`), and exactly one is given.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerSpec {
    Mock(MockSpec),
    Proxy(Box<ProxySpec>),
    Dataset(Box<DatasetSpec>),
}

impl HandlerSpec {
    /// The mock response, for a mock endpoint.
    pub fn mock(&self) -> Option<&MockSpec> {
        match self {
            HandlerSpec::Mock(mock) => Some(mock),
            HandlerSpec::Proxy(_) | HandlerSpec::Dataset(_) => None,
        }
    }

    /// The proxy definition, for a proxy endpoint.
    pub fn proxy(&self) -> Option<&ProxySpec> {
        match self {
            HandlerSpec::Proxy(proxy) => Some(proxy),
            HandlerSpec::Mock(_) | HandlerSpec::Dataset(_) => None,
        }
    }

    /// The dataset endpoint's definition, for a dataset endpoint.
    pub fn dataset(&self) -> Option<&DatasetSpec> {
        match self {
            HandlerSpec::Dataset(dataset) => Some(dataset),
            HandlerSpec::Mock(_) | HandlerSpec::Proxy(_) => None,
        }
    }

    /// The kind's name, as in the JSON form's field and the docs.
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerSpec::Mock(_) => "mock",
            HandlerSpec::Proxy(_) => "proxy",
            HandlerSpec::Dataset(_) => "dataset",
        }
    }
}

/// The JSON form of [`EndpointSpec`], which it is read through.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
#[schema(as = EndpointSpec, description = "An endpoint: a method and path, and one handler — `response` (a mock), `proxy` or `dataset`.")]
struct SpecJson {
    #[serde(default)]
    id: Option<String>,
    #[schema(value_type = String, example = "GET")]
    method: MethodSpec,
    #[schema(example = "/items/{id}")]
    path: Arc<str>,
    #[serde(default)]
    response: Option<MockSpec>,
    #[serde(default)]
    proxy: Option<ProxySpec>,
    #[serde(default)]
    dataset: Option<DatasetSpec>,
    #[serde(default)]
    summary: Option<Box<str>>,
    #[serde(default)]
    description: Option<Box<str>>,
    #[serde(default)]
    tags: Box<[Box<str>]>,
    #[serde(default)]
    operation_id: Option<Box<str>>,
    #[serde(default)]
    parameters: Vec<serde_json::Value>,
    #[serde(default)]
    request_body: Option<serde_json::Value>,
    #[serde(default)]
    responses: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    openapi: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    validate: Option<Validation>,
    #[serde(default)]
    auth: Option<Box<EndpointAuth>>,
}

impl TryFrom<SpecJson> for EndpointSpec {
    type Error = &'static str;

    fn try_from(json: SpecJson) -> Result<EndpointSpec, &'static str> {
        let handler = match (json.response, json.proxy, json.dataset) {
            (Some(mock), None, None) => HandlerSpec::Mock(mock),
            (None, Some(proxy), None) => HandlerSpec::Proxy(Box::new(proxy)),
            (None, None, Some(dataset)) => HandlerSpec::Dataset(Box::new(dataset)),
            (None, None, None) => {
                return Err(
                    "missing field `response` (an endpoint needs a handler: `response` for a mock, `proxy` or `dataset`)",
                );
            }
            _ => {
                return Err(
                    "an endpoint has one handler; give one of `response` (a mock), `proxy` or `dataset`",
                );
            }
        };
        let docs = Docs {
            summary: json.summary,
            description: json.description,
            tags: json.tags,
            operation: Operation {
                operation_id: json.operation_id,
                parameters: json.parameters,
                request_body: json.request_body,
                responses: json.responses,
                extra: json.openapi.filter(|o| !o.is_empty()),
                validate: json.validate.unwrap_or_default(),
            },
        };
        Ok(EndpointSpec {
            id: json.id,
            method: json.method,
            path: json.path,
            handler,
            docs: (docs != Docs::default()).then(|| Box::new(docs)),
            auth: json.auth.filter(|a| **a != EndpointAuth::default()),
        })
    }
}

/// The JSON form of [`EndpointSpec`] as it is written, borrowed; same fields, same order.
#[derive(Serialize)]
struct SpecJsonRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    method: &'a MethodSpec,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a MockSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<&'a ProxySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a DatasetSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [Box<str>],
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    parameters: &'a [serde_json::Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_body: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    responses: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    openapi: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validate: Option<&'a Validation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'a EndpointAuth>,
}

impl Serialize for EndpointSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let docs = self.docs.as_deref();
        let operation = docs.map(|d| &d.operation);
        SpecJsonRef {
            id: self.id.as_deref(),
            method: &self.method,
            path: &self.path,
            response: self.handler.mock(),
            proxy: self.handler.proxy(),
            dataset: self.handler.dataset(),
            summary: docs.and_then(|d| d.summary.as_deref()),
            description: docs.and_then(|d| d.description.as_deref()),
            tags: docs.map_or(&[], |d| &d.tags[..]),
            operation_id: operation.and_then(|o| o.operation_id.as_deref()),
            parameters: operation.map_or(&[], |o| &o.parameters[..]),
            request_body: operation.and_then(|o| o.request_body.as_ref()),
            responses: operation.and_then(|o| o.responses.as_ref()),
            openapi: operation.and_then(|o| o.extra.as_ref()),
            validate: operation
                .map(|o| &o.validate)
                .filter(|v| **v != Validation::default()),
            auth: self.auth.as_deref(),
        }
        .serialize(serializer)
    }
}

/// The schema of [`EndpointSpec`] is its JSON form's, [`SpecJson`]'s (platform API docs).
impl utoipa::PartialSchema for EndpointSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <SpecJson as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for EndpointSpec {
    fn name() -> std::borrow::Cow<'static, str> {
        <SpecJson as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <SpecJson as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A header value, or several for repeatable headers such as `set-cookie`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[derive(utoipa::ToSchema)]
pub enum HeaderValues {
    One(String),
    Many(Vec<String>),
}

impl HeaderValues {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            HeaderValues::One(one) => std::slice::from_ref(one),
            HeaderValues::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }
}

/// A mock's own response headers, by name. Most mocks set none, so the map sits behind a
/// pointer that is null then: 8 bytes of every definition instead of 24. Serialised as the
/// map itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(
    clippy::box_collection,
    reason = "the box keeps the field one pointer wide; a map costs three words even empty"
)]
pub struct Headers(Option<Box<BTreeMap<String, HeaderValues>>>);

impl Headers {
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Header names with their values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValues)> {
        self.0
            .iter()
            .flat_map(|map| map.iter())
            .map(|(name, values)| (name.as_str(), values))
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }
}

impl From<BTreeMap<String, HeaderValues>> for Headers {
    fn from(map: BTreeMap<String, HeaderValues>) -> Headers {
        Headers((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer).map(Headers::from)
    }
}

/// A mock response: a status, headers and at most one kind of body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct MockSpec {
    #[serde(default = "default_status")]
    #[schema(default = default_status, minimum = 200, maximum = 599)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    #[schema(value_type = BTreeMap<String, HeaderValues>)]
    pub headers: Headers,
    /// A JSON document sent as `application/json`; `null` is a valid document here.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<serde_json::Value>)]
    pub json: Option<JsonBody>,
    /// A literal text body, sent as `text/plain; charset=utf-8` unless a header says otherwise.
    /// Shared with the compiled handler, which serves these very bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Arc<str>>,
    /// Binary bodies, base64 (standard alphabet), sent as `application/octet-stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<Box<str>>,
    /// Wait this long before answering (at most [`MAX_DELAY_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Ordered rules: the first whose `when` the request meets answers with its `response`
    /// instead. `None` when there are none (most mocks), so that they cost one pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Box<Rules>>,
}

fn default_status() -> u16 {
    200
}

/// Distinguishes `"json": null` (a null document) from an absent field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<JsonBody>, D::Error> {
    JsonBody::deserialize(deserializer).map(Some)
}

/// A mock's JSON document, held once as its canonical text (compact, keys in the order
/// given): the definition serialises it back as raw JSON, and the compiled handler serves
/// the same bytes ([`JsonBody::bytes`] shares them, it does not copy). Two bodies are equal
/// when their canonical texts are, which is when they answer the same bytes.
#[derive(Debug, Clone)]
pub struct JsonBody(Arc<RawValue>);

impl JsonBody {
    /// The canonical text of `value`.
    pub fn new(value: &serde_json::Value) -> JsonBody {
        // Serialising a `Value` into text cannot fail: its keys are strings.
        let raw =
            serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        JsonBody(Arc::from(raw))
    }

    /// The canonical JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text as `Bytes` that share this body's allocation (one small owner record, no
    /// copy of the document).
    pub fn bytes(&self) -> Bytes {
        Bytes::from_owner(SharedJson(self.0.clone()))
    }
}

impl PartialEq for JsonBody {
    fn eq(&self, other: &JsonBody) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.get() == other.get()
    }
}

impl Serialize for JsonBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through a `Value`, so that the text is canonical whatever the spacing, escapes or
        // number spelling of the input; the `Value` lives only for this one document.
        serde_json::Value::deserialize(deserializer).map(|value| JsonBody::new(&value))
    }
}

struct SharedJson(Arc<RawValue>);

impl AsRef<[u8]> for SharedJson {
    fn as_ref(&self) -> &[u8] {
        self.0.get().as_bytes()
    }
}

/// Bytes of a shared text body, for the handler that serves it.
pub fn shared_text(text: &Arc<str>) -> Bytes {
    Bytes::from_owner(SharedText(text.clone()))
}

struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The longest `delay_ms` a mock may ask for: five minutes.
pub const MAX_DELAY_MS: u64 = 300_000;
/// The most headers one mock response may set.
pub const MAX_HEADERS: usize = 64;
/// Headers that frame the connection or the body; hyper sets them, a mock may not.
pub(crate) const FORBIDDEN_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Endpoint ids chosen by clients: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn check_endpoint_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(
            "an endpoint id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'".into(),
        );
    }
    Ok(())
}

/// An endpoint id made from `source` (an operation id, or a method and path): its
/// characters outside `[A-Za-z0-9_]` made `-` (runs as one, none at the ends), at most 58
/// of them (`op` if none is left), and `-2`, `-3`… added until it is not in `taken`, which
/// then holds it. The same sources in the same order give the same ids.
pub fn derived_endpoint_id(source: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let mut base = String::new();
    for c in source.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            base.push(c);
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
    }
    let mut base = base.trim_end_matches('-').to_owned();
    if base.is_empty() {
        base = "op".into();
    }
    base.truncate(58);
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// A fresh endpoint id: time-ordered, so listing by id follows creation.
pub fn new_endpoint_id() -> String {
    format!("ep_{}", uuid::Uuid::now_v7().simple())
}

impl EndpointSpec {
    /// Every problem of this definition, each naming its field under `prefix`
    /// (`""` for a lone endpoint, `endpoints[3].` inside a project).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let field = |name: &str| format!("{prefix}{name}");
        if let Some(id) = &self.id
            && let Err(message) = check_endpoint_id(id)
        {
            errors.push(FieldError::new(field("id"), message));
        }
        if let Err(error) = Template::parse(&self.path) {
            errors.push(FieldError::new(field("path"), error.to_string()));
        }
        let docs = self.docs.as_deref();
        if let Some(summary) = docs.and_then(|d| d.summary.as_ref())
            && summary.len() > 1024
        {
            errors.push(FieldError::new(
                field("summary"),
                "must be at most 1024 bytes",
            ));
        }
        if let Some(description) = docs.and_then(|d| d.description.as_ref())
            && description.len() > 65_536
        {
            errors.push(FieldError::new(
                field("description"),
                "must be at most 65536 bytes",
            ));
        }
        let tags = docs.map_or(&[][..], |d| &d.tags[..]);
        if tags.len() > 32 || tags.iter().any(|t| t.is_empty() || t.len() > 64) {
            errors.push(FieldError::new(
                field("tags"),
                "at most 32 tags of 1 to 64 bytes each",
            ));
        }
        if let Some(docs) = docs {
            let template = Template::parse(&self.path).ok();
            let names: Vec<&str> = template.iter().flat_map(|t| t.param_names()).collect();
            docs.operation.validate(prefix, &names, &mut errors);
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{prefix}auth."), &mut errors);
        }
        match &self.handler {
            HandlerSpec::Mock(mock) => mock.validate(&format!("{prefix}response."), &mut errors),
            HandlerSpec::Proxy(proxy) => {
                if let Err(message) = check_backend_name(&proxy.backend) {
                    errors.push(FieldError::new(field("proxy.backend"), message));
                }
                if let Err(message) = check_prefix_path(&self.path) {
                    errors.push(FieldError::new(field("path"), message));
                }
            }
            HandlerSpec::Dataset(dataset) => {
                dataset.validate(&format!("{prefix}dataset."), &self.path, &mut errors)
            }
        }
        errors
    }
}

/// The name of the tail parameter a prefix (proxy) endpoint's path is extended with.
pub const PREFIX_TAIL: &str = "rest";

/// A proxy endpoint's path is a prefix: it takes everything below it, so it may not end in
/// `/` (but for `/` itself), end in a tail of its own, or use the tail's name.
fn check_prefix_path(path: &str) -> Result<(), String> {
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!(
            "a proxy endpoint's path is a prefix and takes everything below it: write `{}`",
            path.trim_end_matches('/')
        ));
    }
    if path.contains("{*") {
        return Err("a proxy endpoint's path is a prefix and takes everything below it; leave out the tail `{*…}`".into());
    }
    if path.contains(&format!("{{{PREFIX_TAIL}}}")) {
        return Err(format!(
            "`{{{PREFIX_TAIL}}}` names what follows a proxy endpoint's prefix; give this parameter another name"
        ));
    }
    Ok(())
}

impl MockSpec {
    fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) {
        let field = |name: &str| format!("{prefix}{name}");
        if !(200..=599).contains(&self.status) {
            errors.push(FieldError::new(
                field("status"),
                "must be an HTTP status from 200 to 599",
            ));
        }
        let bodies = [
            self.json.is_some(),
            self.body.is_some(),
            self.body_base64.is_some(),
        ];
        let has_body = bodies.iter().any(|b| *b);
        if bodies.iter().filter(|b| **b).count() > 1 {
            errors.push(FieldError::new(
                field("body"),
                "give at most one of `json`, `body` and `body_base64`",
            ));
        }
        if has_body && matches!(self.status, 204 | 304) {
            errors.push(FieldError::new(
                field("status"),
                format!("a {} response cannot have a body", self.status),
            ));
        }
        if let Some(encoded) = &self.body_base64
            && base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .is_err()
        {
            errors.push(FieldError::new(
                field("body_base64"),
                "is not valid base64 (standard alphabet, padded)",
            ));
        }
        if let Some(rules) = &self.rules {
            if rules.0.len() > MAX_RULES {
                errors.push(FieldError::new(
                    field("rules"),
                    format!("at most {MAX_RULES} rules"),
                ));
            }
            for (i, rule) in rules.0.iter().enumerate() {
                let at = field(&format!("rules[{i}]."));
                rule.when.validate(&format!("{at}when."), errors);
                if rule.response.rules.is_some() {
                    errors.push(FieldError::new(
                        format!("{at}response.rules"),
                        "a rule's response has no rules of its own",
                    ));
                }
                rule.response.validate(&format!("{at}response."), errors);
            }
        }
        if self.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
            errors.push(FieldError::new(
                field("delay_ms"),
                format!("must be at most {MAX_DELAY_MS}"),
            ));
        }
        let count: usize = self.headers.iter().map(|(_, v)| v.iter().count()).sum();
        if count > MAX_HEADERS {
            errors.push(FieldError::new(
                field("headers"),
                format!("at most {MAX_HEADERS} header values"),
            ));
        }
        for (name, values) in self.headers.iter() {
            let at = field(&format!("headers.{name}"));
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Err(_) => errors.push(FieldError::new(at, "is not a valid header name")),
                Ok(header) if FORBIDDEN_HEADERS.contains(&header.as_str()) => {
                    errors.push(FieldError::new(
                        at,
                        "is set by the server from the body and may not be given",
                    ))
                }
                Ok(_) => {
                    if values
                        .iter()
                        .any(|v| http::HeaderValue::from_str(v).is_err())
                    {
                        errors.push(FieldError::new(
                            at,
                            "has a value with characters not allowed in a header",
                        ));
                    }
                }
            }
        }
    }
}

/// Project settings as the admin API takes them on create and patch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct ProjectSettings {
    pub name: Option<String>,
    pub description: Option<String>,
    pub mode: Option<Mode>,
    /// Absent: unchanged.
    #[serde(default)]
    pub auth: Option<AuthPolicy>,
    /// Absent: unchanged; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    pub cors: Option<Option<CorsPolicy>>,
    /// Absent: unchanged; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// Absent: unchanged; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub openapi: Option<Option<ProjectDocs>>,
    /// Absent: unchanged; the whole map otherwise (what is left out is removed); `null` or
    /// `{}`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Env>)]
    pub env: Option<Option<Env>>,
    /// Absent: unchanged; `null`: the node's default; a number: that many (0: none).
    #[serde(default, deserialize_with = "nullable")]
    pub journal_size: Option<Option<u32>>,
}

/// The most requests one project's journal may keep.
pub const MAX_JOURNAL_SIZE: u32 = 100_000;

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, by `default`).
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Checks a journal size given by an owner.
pub fn check_journal_size(size: Option<u32>, errors: &mut Vec<FieldError>) {
    if let Some(size) = size
        && size > MAX_JOURNAL_SIZE
    {
        errors.push(FieldError::new(
            "journal_size",
            format!("at most {MAX_JOURNAL_SIZE} (or 0 for none, null for the node's default)"),
        ));
    }
}

impl ProjectSettings {
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(size) = self.journal_size {
            check_journal_size(size, errors);
        }
        if let Some(name) = &self.name
            && let Err(message) = check_project_name(name)
        {
            errors.push(FieldError::new("name", message));
        }
        if let Some(description) = &self.description
            && description.len() > 4096
        {
            errors.push(FieldError::new("description", "must be at most 4096 bytes"));
        }
        if let Some(auth) = &self.auth {
            auth.validate("auth.", errors);
        }
        if let Some(Some(cors)) = &self.cors {
            cors.validate("cors.", errors);
        }
        if let Some(Some(limit)) = &self.rate_limit {
            limit.validate("rate_limit.", errors);
        }
        if let Some(Some(docs)) = &self.openapi {
            docs.validate("openapi.", errors);
        }
        if let Some(Some(env)) = &self.env {
            env.validate("env.", errors);
        }
    }
}

/// A whole project definition, as `PUT /admin/projects/{owner}/{name}` replaces it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectDefinition {
    pub name: Option<String>,
    pub description: Option<String>,
    pub mode: Option<Mode>,
    /// Absent: `none`.
    #[serde(default)]
    pub auth: AuthPolicy,
    /// Absent: none.
    #[serde(default)]
    pub cors: Option<CorsPolicy>,
    /// Absent: none.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Absent: none.
    #[serde(default)]
    pub openapi: Option<ProjectDocs>,
    /// Absent, `null` or `{}`: none.
    #[serde(default)]
    pub env: Env,
    /// `None` (absent or null): the node's default.
    #[serde(default)]
    pub journal_size: Option<u32>,
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    pub backends: Vec<Backend>,
}

impl ProjectDefinition {
    /// Checks the settings (auth, CORS, rate limit, OpenAPI parts, environment values); the
    /// endpoints and backends are checked by the change that takes them.
    pub fn validate_settings(&self, errors: &mut Vec<crate::error::FieldError>) {
        self.auth.validate("auth.", errors);
        if let Some(cors) = &self.cors {
            cors.validate("cors.", errors);
        }
        if let Some(limit) = &self.rate_limit {
            limit.validate("rate_limit.", errors);
        }
        if let Some(docs) = &self.openapi {
            docs.validate("openapi.", errors);
        }
        self.env.validate("env.", errors);
    }
}

/// The most endpoints one project may hold.
pub const MAX_ENDPOINTS: usize = 200_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rules() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("a1_-x").is_ok());
        assert!(check_username("0").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("Alice").is_err());
        assert!(check_username("-alice").is_err());
        assert!(check_username("_a").is_err());
        assert!(check_username("al ice").is_err());
        assert!(check_username("admin").is_err());
        assert!(check_username(&"a".repeat(32)).is_ok());
        assert!(check_username(&"a".repeat(33)).is_err());
        assert!(check_project_name(&"a".repeat(64)).is_ok());
        assert!(check_project_name(&"a".repeat(65)).is_err());
        assert!(check_username("ü").is_err());
    }

    #[test]
    fn modes_parse_and_print_alike() {
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(
                serde_json::from_value::<Mode>(serde_json::json!(mode.as_str())).unwrap(),
                mode
            );
        }
        assert_eq!(Mode::parse("staging"), Some(Mode::Staging));
        assert_eq!(Mode::parse("Staging"), None);
        assert_eq!(Mode::default(), Mode::Development);
    }

    #[test]
    fn settings_take_env_whole_and_null_removes_it() {
        let settings =
            |json: serde_json::Value| -> ProjectSettings { serde_json::from_value(json).unwrap() };
        assert!(settings(serde_json::json!({})).env.is_none());
        assert_eq!(
            settings(serde_json::json!({"env": null})).env,
            Some(None),
            "null removes"
        );
        let set = settings(serde_json::json!({"mode": "staging", "env": {"A": "1"}}));
        assert_eq!(set.mode, Some(Mode::Staging));
        assert_eq!(set.env.clone().flatten().unwrap().get("A"), Some("1"));
        let mut errors = Vec::new();
        set.validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let bad = settings(serde_json::json!({"env": {"1BAD": "x", "GOOD": "y"}}));
        let mut errors = Vec::new();
        bad.validate(&mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["env.1BAD"]);
        let definition: ProjectDefinition =
            serde_json::from_value(serde_json::json!({"env": {"A": "1"}, "mode": "staging"}))
                .unwrap();
        assert_eq!(definition.env.len(), 1);
        let without: ProjectDefinition = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(without.env.is_empty());
    }

    #[test]
    fn methods_parse_case_insensitively_and_any_is_special() {
        assert_eq!(
            MethodSpec::parse("get").unwrap(),
            MethodSpec::One(http::Method::GET)
        );
        assert_eq!(MethodSpec::parse("Any").unwrap(), MethodSpec::Any);
        assert_eq!(MethodSpec::parse("purge").unwrap().as_str(), "PURGE");
        assert!(MethodSpec::parse("").is_err());
        assert!(MethodSpec::parse("GE T").is_err());
        assert!(MethodSpec::parse("G{").is_err());
    }

    fn spec(json: serde_json::Value) -> EndpointSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn json_null_is_a_body_and_absent_is_none() {
        let with_null =
            spec(serde_json::json!({"method": "GET", "path": "/", "response": {"json": null}}));
        assert_eq!(
            with_null
                .handler
                .mock()
                .unwrap()
                .json
                .as_ref()
                .map(JsonBody::get),
            Some("null")
        );
        let without = spec(serde_json::json!({"method": "GET", "path": "/", "response": {}}));
        assert_eq!(without.handler.mock().unwrap().json, None);
        assert_eq!(without.handler.mock().unwrap().status, 200);
    }

    #[test]
    fn json_bodies_round_trip_as_canonical_raw_json() {
        let text = r#"{"method": "GET", "path": "/a", "summary": "s", "tags": ["t"],
                       "response": {"json": { "b" : [1, 2.50, "\u0041"], "a": null }}}"#;
        let parsed: EndpointSpec = serde_json::from_str(text).unwrap();
        let body = parsed.handler.mock().unwrap().json.as_ref().unwrap();
        assert_eq!(body.get(), r#"{"b":[1,2.5,"A"],"a":null}"#);
        let written = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            written,
            r#"{"method":"GET","path":"/a","response":{"status":200,"json":{"b":[1,2.5,"A"],"a":null}},"summary":"s","tags":["t"]}"#
        );
        let again: EndpointSpec = serde_json::from_str(&written).unwrap();
        assert_eq!(again, parsed);
        // Through a `Value`, as the admin API's PATCH does.
        let value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(value["response"]["json"]["b"][1], 2.5);
        assert_eq!(
            serde_json::from_value::<EndpointSpec>(value).unwrap(),
            parsed
        );
    }

    #[test]
    fn json_bodies_are_equal_when_they_answer_the_same_bytes() {
        let body = |json: serde_json::Value| {
            spec(serde_json::json!({"method": "GET", "path": "/", "response": {"json": json}}))
        };
        let one = body(serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(one, body(serde_json::json!({"a": 1, "b": 2})));
        assert_eq!(one.clone(), one);
        assert_ne!(one, body(serde_json::json!({"a": 1, "b": 3})));
        // Key order is part of what is served, so it is part of the definition.
        assert_ne!(one, body(serde_json::json!({"b": 2, "a": 1})));
    }

    #[test]
    fn endpoint_definitions_stay_small() {
        // The definition of every endpoint is held in memory; these bounds keep an
        // accidental inline field from growing 100,000 of them (see "Memory with 100,000
        // endpoints" in docs/benchmarks.md for the whole per-endpoint account).
        let sizes = [
            // 88: the rules' pointer (8 bytes, null for a mock without rules).
            ("MockSpec", std::mem::size_of::<MockSpec>(), 88),
            ("EndpointSpec", std::mem::size_of::<EndpointSpec>(), 168),
            ("Endpoint", std::mem::size_of::<Endpoint>(), 216),
        ];
        for (name, size, bound) in sizes {
            assert!(size <= bound, "{name} is {size} bytes, more than {bound}");
        }
    }

    #[test]
    fn headers_round_trip_and_none_is_no_map() {
        let bare = spec(serde_json::json!({"method": "GET", "path": "/",
                                            "response": {"headers": {}}}));
        assert!(bare.handler.mock().unwrap().headers.is_empty());
        assert_eq!(bare.handler.mock().unwrap().headers.len(), 0);
        let text = r#"{"method":"GET","path":"/","response":{"status":200,"headers":{"a":"1","b":["2","3"]}}}"#;
        let with: EndpointSpec = serde_json::from_str(text).unwrap();
        assert_eq!(with.handler.mock().unwrap().headers.len(), 2);
        let names: Vec<_> = with
            .handler
            .mock()
            .unwrap()
            .headers
            .iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(serde_json::to_string(&with).unwrap(), text);
    }

    #[test]
    fn docs_fields_round_trip_through_their_box() {
        let bare = spec(
            serde_json::json!({"method": "GET", "path": "/", "response": {},
                                            "tags": [], "summary": null}),
        );
        assert!(bare.docs.is_none());
        let text = r#"{"method":"GET","path":"/","response":{"status":200},"description":"d","tags":["a","b"]}"#;
        let documented: EndpointSpec = serde_json::from_str(text).unwrap();
        let docs = documented.docs.as_deref().unwrap();
        assert_eq!(docs.summary, None);
        assert_eq!(docs.description.as_deref(), Some("d"));
        assert_eq!(docs.tags.len(), 2);
        assert_eq!(serde_json::to_string(&documented).unwrap(), text);
    }

    #[test]
    fn validation_names_every_bad_field() {
        let bad = spec(serde_json::json!({
            "method": "GET", "path": "items", "id": "bad id",
            "response": {"status": 99, "json": 1, "body": "x", "delay_ms": 999999999,
                         "headers": {"content-length": "3", "x ok": "v", "x-fine": "a\u{1}"}}
        }));
        let fields: Vec<String> = bad.validate("").into_iter().map(|e| e.field).collect();
        for expected in [
            "id",
            "path",
            "response.status",
            "response.body",
            "response.delay_ms",
            "response.headers.content-length",
            "response.headers.x ok",
            "response.headers.x-fine",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn no_body_statuses_refuse_a_body() {
        let bad = spec(
            serde_json::json!({"method": "GET", "path": "/", "response": {"status": 204, "body": "x"}}),
        );
        assert_eq!(bad.validate("")[0].field, "response.status");
        let fine =
            spec(serde_json::json!({"method": "GET", "path": "/", "response": {"status": 204}}));
        assert!(fine.validate("").is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let result: Result<EndpointSpec, _> = serde_json::from_value(
            serde_json::json!({"method": "GET", "path": "/", "respose": {}}),
        );
        assert!(result.is_err());
    }

    proptest::proptest! {
        #[test]
        fn name_checks_never_panic_and_accept_exactly_the_documented_form(value in "\\PC{0,40}") {
            let documented = !value.is_empty()
                && value.len() <= 32
                && value.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
                && !RESERVED_NAMES.contains(&value.as_str());
            proptest::prop_assert_eq!(check_username(&value).is_ok(), documented);
        }

        #[test]
        fn generated_names_of_the_documented_form_are_accepted(value in "[a-z0-9][a-z0-9_-]{0,31}") {
            proptest::prop_assume!(!RESERVED_NAMES.contains(&value.as_str()));
            proptest::prop_assert!(check_username(&value).is_ok());
            proptest::prop_assert!(check_project_name(&value).is_ok());
        }

        #[test]
        fn method_parsing_never_panics_and_round_trips(value in "\\PC{0,40}") {
            if let Ok(method) = MethodSpec::parse(&value) {
                proptest::prop_assert_eq!(MethodSpec::parse(method.as_str()).unwrap(), method);
            }
        }

        #[test]
        fn endpoint_validation_never_panics_on_arbitrary_json(
            path in "\\PC{0,30}",
            status in 0u16..1000,
            header in "\\PC{0,12}",
            value in "\\PC{0,12}",
            base64 in "\\PC{0,12}",
        ) {
            let spec = EndpointSpec {
                id: None,
                method: MethodSpec::Any,
                path: path.into(),
                handler: HandlerSpec::Mock(MockSpec {
                    status,
                    headers: BTreeMap::from([(header, HeaderValues::One(value))]).into(),
                    json: None,
                    body: None,
                    body_base64: Some(base64.into()),
                    delay_ms: None,
                    rules: None,
                }),
                docs: None,
                auth: None,
            };
            let errors = spec.validate("");
            // A definition that validates must also compile into a handler.
            if errors.is_empty() {
                proptest::prop_assert!(crate::handlers::Handler::compile(&spec).is_ok());
            }
        }
    }
}
