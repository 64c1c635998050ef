//! `/admin/projects/{owner}/{name}/script`: a project's script, the JavaScript module whose
//! routes it serves beside its endpoints (`script`, docs/scripts.md). `PUT` compiles it and
//! swaps it in with its routes as one revision (`If-Match`, `?dry_run=true`, `ETag`), `GET`
//! gives its source back, `DELETE` removes it and its routes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::admin::{DryRunBody, actor, change_reply, etag, live_project};
use super::extract::{DryRun, IfMatch, Path, ProjectPath, Query, ScriptSource};
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, RequestTimeout,
    ScriptOrDryRun, ServiceUnavailable, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use crate::accounts::Principal;
use crate::changes::Target;
use crate::error::{ApiError, Code};
use crate::routing::CompiledProject;

/// Read the project's script: its source, as it was sent.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/script",
    tag = "script",
    params(ProjectPath),
    responses(
        (status = 200, description = "The script's source",
            content_type = "application/javascript", body = String,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_script(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let Some(source) = project.def.script.clone() else {
        return Err(not_found());
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (header::ETAG, etag(project.def.revision)),
        ],
        source.to_string(),
    )
        .into_response())
}

/// Set the project's script: compiled, then swapped in with its routes as one revision.
///
/// 201 when the project had none, 200 when it replaces one; the answer lists the routes the
/// script defined. A script that does not compile is a 422 naming the line and column, and
/// the old one keeps serving.
#[utoipa::path(
    put,
    path = "/admin/projects/{owner}/{name}/script",
    tag = "script",
    params(ProjectPath, IfMatch, DryRun),
    request_body(
        description = "The JavaScript module (`app.js`), as the body (no content type is \
            taken as JavaScript too) or as a form's `file` field",
        content(
            (String = "application/javascript"),
            (String = "text/javascript"),
            (String = "text/plain"),
            (ScriptUpload = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The script's routes, replacing the old script's; or \
            with `?dry_run=true` what would change", body = ScriptOrDryRun,
            headers(("ETag" = String, description = "The project's new revision, quoted"))),
        (status = 201, description = "The script's routes; the project had no script",
            body = ScriptAnswer,
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
pub(super) async fn put_script(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    ScriptSource(source): ScriptSource,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let existed = project.def.script.is_some();
    let outcome = state
        .changes
        .put_script(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            source,
        )
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(change_reply(&outcome, status, routes_of(&outcome.project)))
}

/// Remove the project's script and its routes.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/script",
    tag = "script",
    params(ProjectPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The script is removed",
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
pub(super) async fn delete_script(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .delete_script(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
        )
        .await?;
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, Value::Null))
}

/// What a script answer shows: its routes.
#[derive(Serialize, ToSchema)]
#[schema(as = Script)]
pub(super) struct ScriptAnswer {
    routes: Vec<RouteAnswer>,
}

/// A route the script defined.
#[derive(Serialize, ToSchema)]
#[schema(as = ScriptRoute)]
pub(super) struct RouteAnswer {
    /// `script:METHOD /path`.
    id: String,
    /// An HTTP method, or `ANY`.
    method: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn routes_of(project: &CompiledProject) -> ScriptAnswer {
    let routes = project
        .script
        .as_ref()
        .map(|script| {
            script
                .script
                .routes()
                .iter()
                .zip(&script.ids)
                .map(|(route, id)| RouteAnswer {
                    id: id.to_string(),
                    method: route
                        .method
                        .as_ref()
                        .map_or("ANY", |m| m.as_str())
                        .to_owned(),
                    path: route.path.clone(),
                    summary: route.summary().map(str::to_owned),
                    description: route.description().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    ScriptAnswer { routes }
}

/// A script sent as a form.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema only: `ScriptSource` reads the form")]
pub(super) struct ScriptUpload {
    /// The JavaScript module.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn not_found() -> ApiError {
    ApiError::new(Code::ScriptNotFound, "this project has no script")
}
