//! `/admin/projects/...`: projects and their endpoints.
//!
//! Reads come from the live route table; writes go through `changes`. Every change answers
//! with the project's new revision in the body and as `ETag`, honours `If-Match`, and with
//! `?dry_run=true` answers what it would do instead of doing it. A caller touches only its
//! own projects unless it is an admin; asking about someone else's project is 403 whether
//! or not it exists, so names do not leak. Bodies are read as JSON values first and given
//! their shape only after the ownership check, so a stranger learns nothing from a 422.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::extract::{DryRun, IfMatch, Json, Path, Query, from_value};
use crate::accounts::Principal;
use crate::changes::{Actor, Outcome, SettingsEdit, Target, Upsert};
use crate::error::{ApiError, Code, FieldError};
use crate::model::{
    Endpoint, EndpointSpec, Mode, ProjectDefinition, ProjectSettings, check_project_name,
};
use crate::routing::CompiledProject;

/// RFC 3339 in UTC with milliseconds, as every timestamp in the API.
pub(super) fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn actor(principal: &Principal) -> Actor<'_> {
    Actor {
        user_id: principal.user_id,
        username: &principal.username,
        admin: principal.is_admin(),
    }
}

/// 403 unless the caller owns `owner`'s projects or is an admin.
fn authorize(principal: &Principal, owner: &str) -> Result<(), ApiError> {
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
fn live_project(
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

fn endpoint_json(project: &CompiledProject, endpoint: &Endpoint) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), Value::String(endpoint.id.clone()));
    if let Ok(Value::Object(spec)) = serde_json::to_value(&endpoint.spec) {
        object.extend(spec);
    }
    let url = format!("{}{}", project.def.mount(), endpoint.spec.path);
    object.insert("url".into(), Value::String(url));
    object.insert("revision".into(), Value::from(project.def.revision));
    Value::Object(object)
}

fn project_json(project: &CompiledProject, with_endpoints: bool) -> Value {
    let def = &project.def;
    let mut value = json!({
        "name": def.name,
        "owner": {"username": def.owner},
        "mount": def.mount(),
        "description": def.description,
        "mode": def.mode,
        "revision": def.revision,
        "endpoints_count": def.endpoints.len(),
        "status": if project.problem.is_none() { "ok" } else { "unavailable" },
        "created_at": timestamp(def.created_at),
        "updated_at": timestamp(def.updated_at),
    });
    if let Some(problem) = &project.problem {
        value["problem"] = Value::String(problem.message().to_owned());
    }
    if with_endpoints {
        let endpoints: Vec<Value> = def
            .endpoints
            .iter()
            .map(|e| {
                let mut one = endpoint_json(project, e);
                if let Value::Object(map) = &mut one {
                    map.remove("revision");
                }
                one
            })
            .collect();
        value["endpoints"] = Value::Array(endpoints);
    }
    value
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

fn etag(revision: i64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A read answer: the body with the project's revision as `ETag`.
fn read_reply(revision: i64, body: Value) -> Response {
    ([(header::ETAG, etag(revision))], axum::Json(body)).into_response()
}

/// A change answer: the new state with its revision as `ETag`, or for a dry run what would
/// change.
fn change_reply(outcome: &Outcome, status: StatusCode, body: Value) -> Response {
    let revision = outcome.project.def.revision;
    if outcome.dry_run {
        return axum::Json(json!({
            "dry_run": true,
            "revision": revision,
            "changes": outcome.diff,
            "result": body,
        }))
        .into_response();
    }
    if status == StatusCode::NO_CONTENT {
        return (status, [(header::ETAG, etag(revision))]).into_response();
    }
    (status, [(header::ETAG, etag(revision))], axum::Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    owner: Option<String>,
}

pub(super) async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let projects: Vec<Value> = projects
        .into_iter()
        .map(|p| project_json(p, false))
        .collect();
    Ok(Json(json!({ "projects": projects })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateProjectBody {
    name: String,
    description: Option<String>,
    mode: Option<Mode>,
    /// Admins may create a project for another user.
    owner: Option<String>,
    #[serde(default)]
    endpoints: Vec<EndpointSpec>,
}

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
    };
    let mut errors = Vec::new();
    settings.validate(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let owner_name = body.owner.unwrap_or_else(|| principal.username.clone());
    let (owner_id, owner_name) = resolve_owner(&state, &principal, owner_name).await?;
    let outcome = state
        .changes
        .create_project(
            actor(&principal),
            Actor {
                user_id: owner_id,
                username: &owner_name,
                admin: false,
            },
            SettingsEdit {
                name: settings.name,
                description: settings.description,
                mode: settings.mode,
            },
            body.endpoints,
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
async fn resolve_owner(
    state: &AppState,
    principal: &Principal,
    owner: String,
) -> Result<(i64, String), ApiError> {
    authorize(principal, &owner)?;
    if owner == principal.username {
        return Ok((principal.user_id, owner));
    }
    match state.accounts.store().user_by_name(&owner).await? {
        Some(user) => Ok((user.id, user.username)),
        None => Err(ApiError::validation(vec![FieldError::new(
            "owner",
            format!("there is no user `{owner}`"),
        )])),
    }
}

pub(super) async fn get_project(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    Ok(read_reply(
        project.def.revision,
        project_json(&project, true),
    ))
}

pub(super) async fn update_project(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let settings: ProjectSettings = from_value(body)?;
    let mut errors = Vec::new();
    settings.validate(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
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
            },
        )
        .await?;
    let body = project_json(&outcome.project, false);
    Ok(change_reply(&outcome, StatusCode::OK, body))
}

pub(super) async fn replace_project(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(mut body): Json<Value>,
) -> Result<Response, ApiError> {
    authorize(&principal, &owner)?;
    strip_read_only(&mut body, PROJECT_READ_ONLY);
    if let Some(Value::Array(endpoints)) = body.get_mut("endpoints") {
        for endpoint in endpoints {
            strip_read_only(endpoint, ENDPOINT_READ_ONLY);
        }
    }
    let definition: ProjectDefinition = from_value(body)?;
    let mut errors = Vec::new();
    if let Err(message) = check_project_name(&name) {
        errors.push(FieldError::new("name", message));
    }
    if let Some(body_name) = &definition.name
        && body_name != &name
    {
        errors.push(FieldError::new(
            "name",
            format!("is `{body_name}` but the URL names `{name}`; rename with PATCH"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
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
        let (owner_id, owner_name) = resolve_owner(&state, &principal, owner).await?;
        let outcome = state
            .changes
            .create_project(
                actor(&principal),
                Actor {
                    user_id: owner_id,
                    username: &owner_name,
                    admin: false,
                },
                SettingsEdit {
                    name: Some(name),
                    description: definition.description,
                    mode: definition.mode,
                },
                definition.endpoints,
                dry.dry_run,
            )
            .await?;
        let body = project_json(&outcome.project, true);
        return Ok(change_reply(&outcome, StatusCode::CREATED, body));
    }
    let outcome = state
        .changes
        .replace_project(
            actor(&principal),
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

pub(super) async fn delete_project(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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

pub(super) async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let endpoints: Vec<Value> = project
        .def
        .endpoints
        .iter()
        .map(|e| endpoint_json(&project, e))
        .collect();
    Ok(read_reply(
        project.def.revision,
        json!({"revision": project.def.revision, "endpoints": endpoints}),
    ))
}

/// The answer to an endpoint write: the endpoint as now served.
fn endpoint_reply(outcome: &Outcome, id: &str, status: StatusCode) -> Result<Response, ApiError> {
    let body = match outcome.project.def.endpoint(id) {
        Some(endpoint) => endpoint_json(&outcome.project, endpoint),
        None => Value::Null,
    };
    Ok(change_reply(outcome, status, body))
}

pub(super) async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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

pub(super) async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, id)): Path<(String, String, String)>,
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

pub(super) async fn replace_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, id)): Path<(String, String, String)>,
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

pub(super) async fn patch_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, id)): Path<(String, String, String)>,
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

pub(super) async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, id)): Path<(String, String, String)>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangesQuery {
    limit: Option<u32>,
}

pub(super) async fn list_changes(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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
    let changes: Vec<Value> = changes
        .into_iter()
        .map(|c| {
            json!({
                "revision": c.revision,
                "at": timestamp(c.at),
                "actor": c.actor,
                "summary": c.summary,
            })
        })
        .collect();
    Ok(read_reply(
        project.def.revision,
        json!({"revision": project.def.revision, "changes": changes}),
    ))
}
