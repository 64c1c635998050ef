//! `/admin/projects/{owner}/{name}/backends[/{backend}]`: a project's backends, the named
//! groups of upstream targets its proxy endpoints forward to. Each write is one revision of
//! the project, like an endpoint write (`If-Match`, `?dry_run=true`, `ETag`).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::AppState;
use super::admin::{actor, change_reply, live_project, read_reply};
use super::extract::{DryRun, IfMatch, Json, Path, Query, from_value};
use crate::accounts::Principal;
use crate::changes::Target;
use crate::error::{ApiError, Code, FieldError};
use crate::model::{Backend, check_backend_name};

pub(super) async fn list_backends(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    Ok(read_reply(project.def.revision, &project.def.backends[..]))
}

pub(super) async fn get_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, backend)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let found = project
        .def
        .backend(&backend)
        .ok_or_else(|| not_found(&backend))?;
    Ok(read_reply(project.def.revision, found))
}

pub(super) async fn put_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, backend)): Path<(String, String, String)>,
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

pub(super) async fn delete_backend(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, backend)): Path<(String, String, String)>,
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
