//! `/admin/projects/...`: projects and their endpoints.
//!
//! Reads come from the live route table; writes go through `changes`. Every change answers
//! with the project's new revision in the body and as `ETag`, honours `If-Match`, and with
//! `?dry_run=true` answers what it would do instead of doing it. A caller touches only its
//! own projects unless it is an admin; asking about someone else's project is 403 whether
//! or not it exists, so names do not leak. Bodies are read as JSON values first and given
//! their shape only after the ownership check, so a stranger learns nothing from a 422; a
//! whole-project `PUT`, whose owner is in the URL, is checked before its body is parsed at
//! all, then parsed straight into its types, so that a large one is held once.

use std::sync::Arc;

use std::marker::PhantomData;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::extract::{
    DryRun, EndpointPath, IfMatch, Json, JsonBytes, Path, ProjectPath, Query, from_value,
    parse_json,
};
use super::openapi::{
    BadRequest, Conflict, EndpointOrDryRun, Forbidden, NotFound, PayloadTooLarge,
    PreconditionFailed, ProjectOrDryRun, RequestTimeout, ServiceUnavailable, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use crate::accounts::Principal;
use crate::changes::{Actor, DiffItem, Outcome, SettingsEdit, Target, Upsert};
use crate::error::{ApiError, Code, FieldError};
use crate::model::{
    AuthPolicy, Backend, CorsPolicy, Endpoint, EndpointSpec, Mode, ProjectDefinition,
    ProjectSettings, RateLimit, check_project_name,
};
use crate::routing::CompiledProject;

/// RFC 3339 in UTC with milliseconds, as every timestamp in the API.
pub(super) fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub(super) fn actor(principal: &Principal) -> Actor<'_> {
    Actor {
        user_id: principal.user_id,
        username: &principal.username,
        admin: principal.is_admin(),
    }
}

/// 403 unless the caller owns `owner`'s projects or is an admin.
pub(super) fn authorize(principal: &Principal, owner: &str) -> Result<(), ApiError> {
    if principal.username == owner || principal.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::Forbidden,
            format!("you may not manage projects of `{owner}`"),
        ))
    }
}

/// The live project `owner/name`, after the ownership check.
pub(super) fn live_project(
    state: &AppState,
    principal: &Principal,
    owner: &str,
    name: &str,
) -> Result<Arc<CompiledProject>, ApiError> {
    authorize(principal, owner)?;
    state
        .changes
        .routes()
        .load()
        .get(&format!("{owner}/{name}"))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                Code::ProjectNotFound,
                format!("no project `{owner}/{name}`"),
            )
        })
}

/// An endpoint as the API shows it: its id, its definition (JSON bodies written as the raw
/// text they hold), its URL and, alone, the project's revision. Serialised straight into
/// the answer, never through a `Value`: a project answer may list 100,000 of them.
#[derive(Serialize, ToSchema)]
#[schema(
    as = Endpoint,
    description = "An endpoint as the API shows it: its definition, its `id` and `url`, and \
        when shown alone the project's `revision`."
)]
pub(super) struct EndpointAnswer<'a> {
    /// The endpoint's id: the one it was given, or a generated `ep_…`.
    id: &'a str,
    #[serde(flatten)]
    spec: &'a EndpointSpec,
    /// Where it is served: the project's mount and the endpoint's path.
    url: String,
    /// The project's revision; only when the endpoint is shown alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<i64>,
}

fn endpoint_json<'a>(project: &CompiledProject, endpoint: &'a Endpoint) -> EndpointAnswer<'a> {
    EndpointAnswer {
        id: &endpoint.id,
        spec: &endpoint.spec,
        url: format!("{}{}", project.def.mount(), endpoint.spec.path),
        revision: Some(project.def.revision),
    }
}

/// A project as the API shows it, with or without its endpoints.
#[derive(Serialize, ToSchema)]
#[schema(as = Project)]
pub(super) struct ProjectAnswer<'a> {
    name: &'a str,
    owner: Owner<'a>,
    /// Where it is served: `/{owner}/{name}`.
    mount: String,
    description: &'a str,
    mode: Mode,
    /// Requests its journal keeps: null for the node's default, 0 for none.
    journal_size: Option<u32>,
    /// Starts at 1 and grows by one with every change; also the `ETag`.
    revision: i64,
    endpoints_count: usize,
    backends: &'a [Backend],
    auth: &'a AuthPolicy,
    /// Which browser origins may call it; null: no CORS.
    cors: Option<&'a CorsPolicy>,
    /// How often it may be called; null: no limit.
    rate_limit: Option<&'a RateLimit>,
    /// The parts of its OpenAPI document that belong to no endpoint (`info`, `tags`,
    /// `components`…); null: none.
    #[schema(value_type = Option<Object>)]
    openapi: Option<&'a crate::model::ProjectDocs>,
    /// Its environment values, which its script reads as `env`; `{}`: none.
    env: &'a crate::model::Env,
    status: ProjectStatus,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    /// Why the project is `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    /// Its endpoints, in order; left out where a list of projects is answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<EndpointAnswer>>)]
    endpoints: Option<EndpointsJson<'a>>,
}

/// Who owns a project.
#[derive(Serialize, ToSchema)]
pub(super) struct Owner<'a> {
    username: &'a str,
}

/// `ok`, or `unavailable`: its stored definition could not be loaded, it answers 503 and
/// takes only a whole `PUT` or a `DELETE`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProjectStatus {
    Ok,
    Unavailable,
}

/// A project's endpoints, one answer each without the revision (the project has it).
struct EndpointsJson<'a>(&'a CompiledProject);

impl Serialize for EndpointsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let project = self.0;
        serializer.collect_seq(project.def.endpoints.iter().map(|e| EndpointAnswer {
            revision: None,
            ..endpoint_json(project, e)
        }))
    }
}

pub(super) fn project_json(project: &CompiledProject, with_endpoints: bool) -> ProjectAnswer<'_> {
    let def = &project.def;
    ProjectAnswer {
        name: &def.name,
        owner: Owner {
            username: &def.owner,
        },
        mount: def.mount(),
        description: &def.description,
        mode: def.mode,
        journal_size: def.journal_size,
        revision: def.revision,
        endpoints_count: def.endpoints.len(),
        backends: &def.backends,
        auth: &def.auth,
        cors: def.cors.as_ref(),
        rate_limit: def.rate_limit.as_ref(),
        openapi: def.openapi.as_deref(),
        env: &def.env,
        status: match project.problem {
            None => ProjectStatus::Ok,
            Some(_) => ProjectStatus::Unavailable,
        },
        created_at: timestamp(def.created_at),
        updated_at: timestamp(def.updated_at),
        problem: project.problem.as_ref().map(|problem| problem.message()),
        endpoints: with_endpoints.then_some(EndpointsJson(project)),
    }
}

/// Fields of a project answer that a client cannot set; a `PUT` ignores them, so what a
/// `GET` answered can be sent back as is.
const PROJECT_READ_ONLY: &[&str] = &[
    "owner",
    "mount",
    "revision",
    "endpoints_count",
    "status",
    "problem",
    "created_at",
    "updated_at",
];
/// The same for endpoint answers.
const ENDPOINT_READ_ONLY: &[&str] = &["url", "revision"];

fn strip_read_only(value: &mut Value, keys: &[&str]) {
    if let Value::Object(map) = value {
        for key in keys {
            map.remove(*key);
        }
    }
}

pub(super) fn etag(revision: i64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A read answer: the body with the project's revision as `ETag`.
pub(super) fn read_reply(revision: i64, body: impl Serialize) -> Response {
    ([(header::ETAG, etag(revision))], axum::Json(body)).into_response()
}

/// What a change with `?dry_run=true` answers (`200`): what it would change, and the answer
/// it would give. Nothing is changed.
#[derive(Serialize, ToSchema)]
#[schema(as = DryRun, bound = "")]
pub(super) struct DryRunAnswer<'a, T> {
    /// Always `true`.
    dry_run: bool,
    /// The revision the project would be at.
    revision: i64,
    /// What would change, one line each.
    changes: &'a [DiffItem],
    /// The body the change would answer (null for a delete).
    #[schema(value_type = Value)]
    result: T,
}

/// The dry-run answer as the docs name it.
pub(super) type DryRunBody = DryRunAnswer<'static, Value>;

/// A change answer: the new state with its revision as `ETag`, or for a dry run what would
/// change.
pub(super) fn change_reply(
    outcome: &Outcome,
    status: StatusCode,
    body: impl Serialize,
) -> Response {
    let revision = outcome.project.def.revision;
    if outcome.dry_run {
        return axum::Json(DryRunAnswer {
            dry_run: true,
            revision,
            changes: &outcome.diff,
            result: body,
        })
        .into_response();
    }
    if status == StatusCode::NO_CONTENT {
        return (status, [(header::ETAG, etag(revision))]).into_response();
    }
    (status, [(header::ETAG, etag(revision))], axum::Json(body)).into_response()
}

/// The query of a project list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this user's projects (another user's: admins only). Without it, the caller's
    /// own, or for an admin every project.
    owner: Option<String>,
}

/// A list of projects, without their endpoints.
#[derive(Serialize, ToSchema)]
pub(super) struct ProjectList<'a> {
    projects: Vec<ProjectAnswer<'a>>,
}

/// List projects: the caller's (an admin's: all, or `?owner=`), without their endpoints.
#[utoipa::path(
    get,
    path = "/admin/projects",
    tag = "projects",
    params(ListQuery),
    responses(
        (status = 200, description = "The projects, by owner and name", body = ProjectList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = match (&query.owner, principal.is_admin()) {
        (Some(owner), _) => {
            authorize(&principal, owner)?;
            Some(owner.as_str())
        }
        (None, true) => None,
        (None, false) => Some(principal.username.as_str()),
    };
    let table = state.changes.routes().load();
    let mut projects: Vec<&Arc<CompiledProject>> = table
        .projects()
        .filter(|p| owner.is_none_or(|o| p.def.owner == o))
        .collect();
    projects.sort_by(|a, b| (&a.def.owner, &a.def.name).cmp(&(&b.def.owner, &b.def.name)));
    let projects: Vec<ProjectAnswer> = projects
        .into_iter()
        .map(|p| project_json(p, false))
        .collect();
    Ok(Json(ProjectList { projects }).into_response())
}

/// A new project: its settings, and optionally its first endpoints and backends.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateProjectBody {
    /// 1 to 64 characters of `[a-z0-9][a-z0-9_-]*`, not a reserved root name.
    name: String,
    /// At most 4096 bytes.
    description: Option<String>,
    mode: Option<Mode>,
    /// Requests its journal keeps (at most 100,000; 0: none); absent: the node's default.
    journal_size: Option<u32>,
    /// Who may call it; absent: `none` (anyone).
    #[serde(default)]
    auth: Option<crate::model::AuthPolicy>,
    #[serde(default)]
    cors: Option<crate::model::CorsPolicy>,
    #[serde(default)]
    rate_limit: Option<crate::model::RateLimit>,
    #[serde(default)]
    openapi: Option<crate::model::ProjectDocs>,
    /// Environment values its script reads as `env`; absent: none.
    #[serde(default)]
    env: crate::model::Env,
    /// Admins may create a project for another user.
    owner: Option<String>,
    #[serde(default)]
    endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    backends: Vec<Backend>,
}

/// Create a project, with its first endpoints and backends if given.
#[utoipa::path(
    post,
    path = "/admin/projects",
    tag = "projects",
    params(DryRun),
    request_body = CreateProjectBody,
    responses(
        (status = 201, description = "The project, at revision 1", body = ProjectAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted: `\"1\"`"))),
        (status = 200, description = "`?dry_run=true`: what would be created", body = DryRunBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_project(
    State(state): State<AppState>,
    principal: Principal,
    Query(dry): Query<DryRun>,
    Json(body): Json<CreateProjectBody>,
) -> Result<Response, ApiError> {
    let settings = ProjectSettings {
        name: Some(body.name),
        description: body.description,
        mode: body.mode,
        journal_size: Some(body.journal_size),
        auth: body.auth,
        cors: Some(body.cors),
        rate_limit: Some(body.rate_limit),
        openapi: Some(body.openapi),
        env: Some(Some(body.env)),
    };
    let mut errors = Vec::new();
    settings.validate(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut settings = settings;
    if let Some(auth) = &mut settings.auth {
        state.accounts.seal_passwords(auth).await?;
    }
    let owner_name = body.owner.unwrap_or_else(|| principal.username.clone());
    let (owner_id, owner_name, owner_admin) = resolve_owner(&state, &principal, owner_name).await?;
    let outcome = state
        .changes
        .create_project(
            actor(&principal),
            Actor {
                user_id: owner_id,
                username: &owner_name,
                admin: owner_admin,
            },
            SettingsEdit {
                name: settings.name,
                description: settings.description,
                mode: settings.mode,
                journal_size: settings.journal_size,
                auth: settings.auth,
                cors: settings.cors,
                rate_limit: settings.rate_limit,
                openapi: settings.openapi,
                env: settings.env.map(Option::unwrap_or_default),
            },
            body.endpoints,
            body.backends,
            dry.dry_run,
        )
        .await?;
    if !outcome.dry_run {
        tracing::info!(project = %outcome.project.def.mount(), "project created");
    }
    let body = project_json(&outcome.project, true);
    Ok(change_reply(&outcome, StatusCode::CREATED, body))
}

/// The id of the user who will own a project: the caller, or for an admin any user.
pub(super) async fn resolve_owner(
    state: &AppState,
    principal: &Principal,
    owner: String,
) -> Result<(i64, String, bool), ApiError> {
    authorize(principal, &owner)?;
    if owner == principal.username {
        return Ok((principal.user_id, owner, principal.is_admin()));
    }
    match state.accounts.store().user_by_name(&owner).await? {
        Some(user) => Ok((
            user.id,
            user.username,
            user.role == crate::model::Role::Admin,
        )),
        None => Err(ApiError::validation(vec![FieldError::new(
            "owner",
            format!("there is no user `{owner}`"),
        )])),
    }
}

/// Read a project, with its endpoints.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}",
    tag = "projects",
    params(ProjectPath),
    responses(
        (status = 200, description = "The project", body = ProjectAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    Ok(read_reply(
        project.def.revision,
        project_json(&project, true),
    ))
}

/// Change a project's settings.
///
/// Only the fields given change (a `null` `cors`, `rate_limit`, `openapi`, `env` or
/// `journal_size` removes it; `env` is given whole); a new `name` renames the project.
/// Answers the project without its endpoints.
#[utoipa::path(
    patch,
    path = "/admin/projects/{owner}/{name}",
    tag = "projects",
    params(ProjectPath, IfMatch, DryRun),
    request_body = ProjectSettings,
    responses(
        (status = 200, description = "The project as changed (without its endpoints), or with \
            `?dry_run=true` what would change", body = ProjectOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let mut settings: ProjectSettings = from_value(body)?;
    let mut errors = Vec::new();
    settings.validate(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Some(auth) = &mut settings.auth {
        state.accounts.seal_passwords(auth).await?;
    }
    let outcome = state
        .changes
        .update_settings(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            SettingsEdit {
                name: settings.name,
                description: settings.description,
                mode: settings.mode,
                journal_size: settings.journal_size,
                auth: settings.auth,
                cors: settings.cors,
                rate_limit: settings.rate_limit,
                openapi: settings.openapi,
                env: settings.env.map(Option::unwrap_or_default),
            },
        )
        .await?;
    let body = project_json(&outcome.project, false);
    Ok(change_reply(&outcome, StatusCode::OK, body))
}

/// Replace a project whole, or create it.
///
/// Settings, endpoints and backends are replaced in one revision; a project that does not
/// exist is created (what `push` sends). What a `GET` answered may be sent back as it is:
/// its read-only fields are ignored.
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}",
    tag = "projects",
    params(ProjectPath, IfMatch, DryRun),
    request_body = ProjectPutFields,
    responses(
        (status = 200, description = "The project as replaced, or with `?dry_run=true` what \
            would change", body = ProjectOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The project, created at revision 1", body = ProjectAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn replace_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    JsonBytes(bytes): JsonBytes,
) -> Result<Response, ApiError> {
    // The owner is in the URL: a stranger is refused before the body is even parsed.
    authorize(&principal, &owner)?;
    // A large body takes a blocking thread to parse (100,000 endpoints are ~100 ms of
    // serde), so that it never holds an async worker that serves requests. The definition
    // owns everything it needs; the body's bytes go with the parse, not after the change.
    let ProjectPut(definition) = if bytes.len() >= LARGE_BODY {
        tokio::task::spawn_blocking(move || parse_json(&bytes))
            .await
            .map_err(|e| ApiError::internal(&e))??
    } else {
        let parsed = parse_json(&bytes)?;
        drop(bytes);
        parsed
    };
    let large = definition.endpoints.len() >= LARGE_CHANGE;
    let reply = replace_or_create(&state, &principal, owner, name, expected, dry, definition).await;
    if large {
        crate::server::release_memory_soon();
    }
    reply
}

/// Bodies of at least this many bytes are parsed on a blocking thread.
pub(super) const LARGE_BODY: usize = 256 * 1024;

/// Projects with at least this many endpoints are a large change: once it is answered, the
/// memory it used is given back to the OS.
const LARGE_CHANGE: usize = 10_000;

/// A project `PUT` body: a [`ProjectDefinition`] in which the read-only fields of a `GET`
/// answer (`PROJECT_READ_ONLY`, and `ENDPOINT_READ_ONLY` in each endpoint) are allowed and
/// ignored, so that what a `GET` answered can be sent back as is. Parsed straight from the
/// bytes, with no `Value` of the whole body in between.
pub(super) struct ProjectPut(pub(super) ProjectDefinition);

/// A whole project definition. The read-only fields of a project answer (`owner`, `mount`,
/// `revision`, `endpoints_count`, `status`, `problem`, `created_at`, `updated_at`, and each
/// endpoint's `url` and `revision`) may be given and are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProjectDefinition)]
pub(super) struct ProjectPutFields {
    /// The name in the URL, if given.
    name: Option<String>,
    description: Option<String>,
    mode: Option<Mode>,
    /// Requests its journal keeps; absent or null: the node's default.
    journal_size: Option<u32>,
    /// Absent: `none`.
    #[serde(default)]
    auth: crate::model::AuthPolicy,
    /// Absent: none.
    #[serde(default)]
    cors: Option<crate::model::CorsPolicy>,
    /// Absent: none.
    #[serde(default)]
    rate_limit: Option<crate::model::RateLimit>,
    /// The parts of its OpenAPI document that belong to no endpoint; absent: none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    openapi: Option<crate::model::ProjectDocs>,
    /// Environment values its script reads as `env`; absent, null or `{}`: none.
    #[serde(default)]
    env: crate::model::Env,
    /// Every endpoint, in order; absent: none.
    #[serde(default)]
    #[schema(value_type = Vec<EndpointSpec>)]
    endpoints: Vec<EndpointPut>,
    /// Every backend; absent: none.
    #[serde(default)]
    backends: Vec<Backend>,
}

struct EndpointPut(EndpointSpec);

impl<'de> Deserialize<'de> for ProjectPut {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields: ProjectPutFields =
            deserializer.deserialize_map(SkipKeysVisitor::new(PROJECT_READ_ONLY))?;
        Ok(ProjectPut(ProjectDefinition {
            name: fields.name,
            description: fields.description,
            mode: fields.mode,
            journal_size: fields.journal_size,
            auth: fields.auth,
            cors: fields.cors,
            rate_limit: fields.rate_limit,
            openapi: fields.openapi,
            env: fields.env,
            // Same size and alignment: collected in place, no second vector.
            endpoints: fields.endpoints.into_iter().map(|e| e.0).collect(),
            backends: fields.backends,
        }))
    }
}

impl<'de> Deserialize<'de> for EndpointPut {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(SkipKeysVisitor::new(ENDPOINT_READ_ONLY))
            .map(EndpointPut)
    }
}

/// Visits a JSON object as `T` would, leaving out the given keys (and their values).
struct SkipKeysVisitor<T> {
    skip: &'static [&'static str],
    into: PhantomData<T>,
}

impl<T> SkipKeysVisitor<T> {
    fn new(skip: &'static [&'static str]) -> Self {
        SkipKeysVisitor {
            skip,
            into: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SkipKeysVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(SkipKeys {
            map,
            skip: self.skip,
        }))
    }
}

struct SkipKeys<A> {
    map: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkipKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if self.skip.contains(&key.as_str()) {
                self.map.next_value::<IgnoredAny>()?;
                continue;
            }
            let key: serde::de::value::StringDeserializer<A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// What is wrong with a whole definition for the project `name` of the URL, as a project
/// `PUT` (and a push) checks it before the change path: the URL's name, the settings, and a
/// `name` in the body, which must be the URL's. Endpoints and backends are checked by the
/// change that takes them.
pub(super) fn definition_errors(name: &str, definition: &ProjectDefinition) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(message) = check_project_name(name) {
        errors.push(FieldError::new("name", message));
    }
    definition.validate_settings(&mut errors);
    if let Some(body_name) = &definition.name
        && body_name != name
    {
        errors.push(FieldError::new(
            "name",
            format!("is `{body_name}` but the URL names `{name}`; rename with PATCH"),
        ));
    }
    errors
}

/// The rest of a project `PUT`: replaces the project, or creates it when it does not exist.
async fn replace_or_create(
    state: &AppState,
    principal: &Principal,
    owner: String,
    name: String,
    expected: Option<i64>,
    dry: DryRun,
    definition: ProjectDefinition,
) -> Result<Response, ApiError> {
    let errors = definition_errors(&name, &definition);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut definition = definition;
    state.accounts.seal_passwords(&mut definition.auth).await?;
    let key = format!("{owner}/{name}");
    let exists = state.changes.routes().load().get(&key).is_some();
    if !exists {
        // PUT of a project that does not exist creates it (as `push` of a new folder does),
        // unless the client asked for a specific revision of it.
        if expected.is_some() {
            return Err(ApiError::new(
                Code::ProjectNotFound,
                format!("no project `{key}`"),
            ));
        }
        let (owner_id, owner_name, owner_admin) = resolve_owner(state, principal, owner).await?;
        let outcome = state
            .changes
            .create_project(
                actor(principal),
                Actor {
                    user_id: owner_id,
                    username: &owner_name,
                    admin: owner_admin,
                },
                SettingsEdit::whole(Some(name), &definition),
                definition.endpoints,
                definition.backends,
                dry.dry_run,
            )
            .await?;
        let body = project_json(&outcome.project, true);
        return Ok(change_reply(&outcome, StatusCode::CREATED, body));
    }
    let outcome = state
        .changes
        .replace_project(
            actor(principal),
            Target {
                key: &key,
                expected,
                dry_run: dry.dry_run,
            },
            definition,
        )
        .await?;
    let body = project_json(&outcome.project, true);
    Ok(change_reply(&outcome, StatusCode::OK, body))
}

/// Delete a project, its endpoints, script, datasets and keys; its name is free at once.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}",
    tag = "projects",
    params(ProjectPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The project is deleted",
            headers(("ETag" = String, description = "The revision it was deleted at, quoted"))),
        (status = 200, description = "`?dry_run=true`: what would be deleted", body = DryRunBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .delete_project(Target {
            key: &format!("{owner}/{name}"),
            expected,
            dry_run: dry.dry_run,
        })
        .await?;
    if !outcome.dry_run {
        tracing::info!(project = %outcome.project.def.mount(), "project deleted");
    }
    let body = project_json(&outcome.project, false);
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, body))
}

/// A project's endpoints, with its revision.
#[derive(Serialize, ToSchema)]
pub(super) struct EndpointList<'a> {
    revision: i64,
    endpoints: Vec<EndpointAnswer<'a>>,
}

/// List a project's endpoints, in order.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/endpoints",
    tag = "endpoints",
    params(ProjectPath),
    responses(
        (status = 200, description = "The endpoints", body = EndpointList,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let endpoints: Vec<EndpointAnswer> = project
        .def
        .endpoints
        .iter()
        .map(|e| endpoint_json(&project, e))
        .collect();
    Ok(read_reply(
        project.def.revision,
        EndpointList {
            revision: project.def.revision,
            endpoints,
        },
    ))
}

/// The answer to an endpoint write: the endpoint as now served.
fn endpoint_reply(outcome: &Outcome, id: &str, status: StatusCode) -> Result<Response, ApiError> {
    let body = outcome
        .project
        .def
        .endpoint(id)
        .map(|endpoint| endpoint_json(&outcome.project, endpoint));
    Ok(change_reply(outcome, status, body))
}

/// Add an endpoint to a project (at the end of its list).
#[utoipa::path(
    post,
    path = "/admin/projects/{owner}/{name}/endpoints",
    tag = "endpoints",
    params(ProjectPath, IfMatch, DryRun),
    request_body = EndpointSpec,
    responses(
        (status = 201, description = "The endpoint as now served, with its `id` and the \
            project's new revision", body = EndpointAnswer,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 200, description = "`?dry_run=true`: what would change", body = DryRunBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let spec: EndpointSpec = from_value(body)?;
    let key = format!("{owner}/{name}");
    let outcome = state
        .changes
        .put_endpoint(
            actor(&principal),
            Target {
                key: &key,
                expected,
                dry_run: dry.dry_run,
            },
            None,
            spec,
            Upsert::CreateOnly,
        )
        .await?;
    let id = added_id(&outcome);
    endpoint_reply(&outcome, &id, StatusCode::CREATED)
}

/// The id of the endpoint a write added or changed (the first endpoint line of its diff).
fn added_id(outcome: &Outcome) -> String {
    outcome
        .diff
        .iter()
        .find_map(|d| d.id.clone())
        .unwrap_or_default()
}

/// Read one endpoint.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/endpoints/{id}",
    tag = "endpoints",
    params(EndpointPath),
    responses(
        (status = 200, description = "The endpoint, with the project's revision",
            body = EndpointAnswer,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(EndpointPath { owner, name, id }): Path<EndpointPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let endpoint = project.def.endpoint(&id).ok_or_else(|| {
        ApiError::new(
            Code::EndpointNotFound,
            format!("no endpoint `{id}` in this project"),
        )
    })?;
    Ok(read_reply(
        project.def.revision,
        endpoint_json(&project, endpoint),
    ))
}

/// Replace one endpoint whole, or create it with this id; it keeps its place in the list.
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}/endpoints/{id}",
    tag = "endpoints",
    params(EndpointPath, IfMatch, DryRun),
    request_body(content = EndpointSpec, description = "The endpoint; its `url` and \
        `revision`, as a read answered them, are ignored"),
    responses(
        (status = 200, description = "The endpoint as replaced, or with `?dry_run=true` what \
            would change", body = EndpointOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The endpoint, created", body = EndpointAnswer,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn replace_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(EndpointPath { owner, name, id }): Path<EndpointPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(mut body): Json<Value>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    strip_read_only(&mut body, ENDPOINT_READ_ONLY);
    let spec: EndpointSpec = from_value(body)?;
    let existed = project.def.endpoint(&id).is_some();
    let outcome = state
        .changes
        .put_endpoint(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            Some(&id),
            spec,
            Upsert::CreateOrReplace,
        )
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    endpoint_reply(&outcome, &id, status)
}

/// Change some fields of one endpoint: a JSON merge patch (RFC 7386) of its definition.
#[utoipa::path(
    patch,
    path = "/admin/projects/{owner}/{name}/endpoints/{id}",
    tag = "endpoints",
    params(EndpointPath, IfMatch, DryRun),
    request_body(
        description = "A JSON merge patch (RFC 7386) of the endpoint's definition (an \
            `Endpoint` without `id`): given fields replace, `null` removes",
        content(
            (Object = "application/merge-patch+json"),
            (Object = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "The endpoint as changed, or with `?dry_run=true` what \
            would change", body = EndpointOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn patch_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(EndpointPath { owner, name, id }): Path<EndpointPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(patch): Json<Value>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    if !patch.is_object() {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "a PATCH body is a JSON merge patch (RFC 7386): an object",
        )]));
    }
    let outcome = state
        .changes
        .patch_endpoint(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            &id,
            patch,
        )
        .await?;
    endpoint_reply(&outcome, &id, StatusCode::OK)
}

/// Delete one endpoint.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/endpoints/{id}",
    tag = "endpoints",
    params(EndpointPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The endpoint is deleted",
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 200, description = "`?dry_run=true`: what would change", body = DryRunBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(EndpointPath { owner, name, id }): Path<EndpointPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .delete_endpoint(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            &id,
        )
        .await?;
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, Value::Null))
}

/// The query of a change history.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ChangesQuery {
    /// The most changes listed, newest first: 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One committed change of a project.
#[derive(Serialize, ToSchema)]
#[schema(as = Change)]
pub(super) struct ChangeAnswer {
    /// The revision it made.
    revision: i64,
    /// When, RFC 3339.
    at: String,
    /// Who made it; null if that user no longer exists.
    actor: Option<String>,
    /// What it changed, in a line.
    summary: String,
}

/// A project's change history, with its current revision.
#[derive(Serialize, ToSchema)]
pub(super) struct ChangeList {
    revision: i64,
    changes: Vec<ChangeAnswer>,
}

/// A project's change history, newest first.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/changes",
    tag = "projects",
    params(ProjectPath, ChangesQuery),
    responses(
        (status = 200, description = "The changes", body = ChangeList,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_changes(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    Query(query): Query<ChangesQuery>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "query.limit",
            "must be from 1 to 1000",
        )]));
    }
    let changes = state
        .accounts
        .store()
        .list_changes(project.def.id, limit)
        .await?;
    let changes: Vec<ChangeAnswer> = changes
        .into_iter()
        .map(|c| ChangeAnswer {
            revision: c.revision,
            at: timestamp(c.at),
            actor: c.actor,
            summary: c.summary,
        })
        .collect();
    Ok(read_reply(
        project.def.revision,
        ChangeList {
            revision: project.def.revision,
            changes,
        },
    ))
}
