//! `/admin/projects/{owner}/{name}/backends[/{backend}]`: a project's backends, the named
//! groups of upstream targets its proxy endpoints forward to. Each write is one revision of
//! the project, like an endpoint write (`If-Match`, `?dry_run=true`, `ETag`).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::AppState;
use super::admin::{DryRunBody, actor, change_reply, live_project, read_reply};
use super::extract::{BackendPath, DryRun, IfMatch, Json, Path, ProjectPath, Query, from_value};
use super::openapi::{
    BackendOrDryRun, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge,
    PreconditionFailed, RequestTimeout, ServiceUnavailable, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::accounts::Principal;
use crate::changes::Target;
use crate::error::{ApiError, Code, FieldError};
use crate::model::{Backend, check_backend_name};

/// List a project's backends.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/backends",
    tag = "backends",
    params(ProjectPath),
    responses(
        (status = 200, description = "The backends", body = Vec<Backend>,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_backends(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    Ok(read_reply(project.def.revision, &project.def.backends[..]))
}

/// Read one backend.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/backends/{backend}",
    tag = "backends",
    params(BackendPath),
    responses(
        (status = 200, description = "The backend", body = Backend,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path(BackendPath {
        owner,
        name,
        backend,
    }): Path<BackendPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let found = project
        .def
        .backend(&backend)
        .ok_or_else(|| not_found(&backend))?;
    Ok(read_reply(project.def.revision, found))
}

/// Create or replace one backend; its `name` may be left out (the URL gives it).
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}/backends/{backend}",
    tag = "backends",
    params(BackendPath, IfMatch, DryRun),
    request_body = Backend,
    responses(
        (status = 200, description = "The backend as replaced, or with `?dry_run=true` what \
            would change", body = BackendOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The backend, created", body = Backend,
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
pub(super) async fn put_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path(BackendPath {
        owner,
        name,
        backend,
    }): Path<BackendPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    if let Err(message) = check_backend_name(&backend) {
        return Err(ApiError::validation(vec![FieldError::new("name", message)]));
    }
    let mut definition: Backend = from_value(body)?;
    if definition.name.is_empty() {
        definition.name = backend.clone();
    } else if definition.name != backend {
        return Err(ApiError::validation(vec![FieldError::new(
            "name",
            format!("is `{}` but the URL names `{backend}`", definition.name),
        )]));
    }
    let existed = project.def.backend(&backend).is_some();
    let outcome = state
        .changes
        .put_backend(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            definition,
        )
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = outcome.project.def.backend(&backend).cloned();
    Ok(change_reply(&outcome, status, body))
}

/// Delete one backend; no proxy endpoint may name it (`409 backend_in_use`).
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/backends/{backend}",
    tag = "backends",
    params(BackendPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The backend is deleted",
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
pub(super) async fn delete_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path(BackendPath {
        owner,
        name,
        backend,
    }): Path<BackendPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .delete_backend(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            &backend,
        )
        .await?;
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, Value::Null))
}

fn not_found(backend: &str) -> ApiError {
    ApiError::new(
        Code::BackendNotFound,
        format!("no backend `{backend}` in this project"),
    )
}
