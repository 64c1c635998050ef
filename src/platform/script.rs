//! `/admin/projects/{owner}/{name}/script`: a project's script, the JavaScript module whose
//! routes it serves beside its endpoints (`script`, docs/scripts.md). `PUT` compiles it and
//! swaps it in with its routes as one revision (`If-Match`, `?dry_run=true`, `ETag`), `GET`
//! gives its source back, `DELETE` removes it and its routes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::admin::{actor, change_reply, etag, live_project};
use super::extract::{DryRun, IfMatch, Path, Query, ScriptSource};
use crate::accounts::Principal;
use crate::changes::Target;
use crate::error::{ApiError, Code};
use crate::routing::CompiledProject;

/// The script's source, as it was sent, with the project's revision as `ETag`.
pub(super) async fn get_script(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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

/// Sets the script: 201 when the project had none, 200 when it replaces one; the answer
/// lists the routes the script defined.
pub(super) async fn put_script(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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

/// Removes the script and its routes.
pub(super) async fn delete_script(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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
#[derive(Serialize)]
struct ScriptAnswer {
    routes: Vec<RouteAnswer>,
}

#[derive(Serialize)]
struct RouteAnswer {
    id: String,
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
                    summary: route.summary.clone(),
                    description: route.description.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    ScriptAnswer { routes }
}

fn not_found() -> ApiError {
    ApiError::new(Code::ScriptNotFound, "this project has no script")
}
