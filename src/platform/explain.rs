//! `GET /admin/explain?method=…&path=…`: which project and endpoint would answer a
//! request, with its path parameters, or, when none would, the nearest endpoints and why
//! each missed (`routing::explain`). Asked of the live route table, like the request path
//! itself; the caller must own the project the path is under (or be an admin).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::authorize;
use super::extract::Query;
use super::openapi::{Forbidden, ServiceUnavailable, Unauthorized, ValidationFailed};
use crate::accounts::Principal;
use crate::error::{ApiError, Code, FieldError};
use crate::model::is_reserved_root;
use crate::routing::explain::{NearMiss, near_misses};
use crate::routing::{ProjectLookup, split_segment};

/// Near misses listed at most.
const CANDIDATES: usize = 5;

/// The request to explain.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ExplainQuery {
    /// The request's method (default `GET`).
    method: Option<String>,
    /// The request's path, from the root: `/alice/demo/items/7`.
    path: String,
}

/// Which endpoint would answer a request, or why none would.
#[derive(Serialize, ToSchema)]
#[schema(as = Explanation)]
pub(super) struct Answer<'a> {
    method: &'a str,
    path: &'a str,
    /// Whether an endpoint (or a script route) answers it.
    matched: bool,
    /// Why nothing matched: `no_project`, `no_endpoint`, `method_not_allowed`,
    /// `project_unavailable`, `platform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ExplainReason>)]
    reason: Option<&'static str>,
    /// The reason, as a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// The project mounted at the start of the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<ProjectRef>,
    /// The endpoint that answers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<EndpointRef<'a>>,
    /// The path parameters the endpoint would be given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    params: Option<serde_json::Map<String, serde_json::Value>>,
    /// For `method_not_allowed`: the methods the path takes, as `Allow` would list them.
    #[serde(skip_serializing_if = "Option::is_none")]
    allow: Option<&'a str>,
    /// When nothing matched: the endpoints that came closest, best first (at most 5).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<NearMissSchema>)]
    candidates: Vec<NearMiss<'a>>,
}

/// Why nothing matched a request.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "a schema only: the answer holds the name")]
pub(super) enum ExplainReason {
    /// No project is mounted at the start of the path.
    NoProject,
    /// No endpoint of the project matches the path.
    NoEndpoint,
    /// Endpoints match the path, but none for the method.
    MethodNotAllowed,
    /// The project could not be loaded: it answers 503.
    ProjectUnavailable,
    /// The path is one of Switchyard's own.
    Platform,
}

/// An endpoint that did not answer a request, and why, as `routing::explain::NearMiss`
/// writes it (a schema only).
#[derive(ToSchema)]
#[schema(as = NearMiss)]
#[allow(dead_code, reason = "a schema only: `NearMiss` serialises itself")]
pub(super) struct NearMissSchema {
    /// The endpoint's id.
    id: String,
    method: String,
    path: String,
    miss: MissKind,
    /// For `path_differs`: the first segment of the project-relative path that differs
    /// (1-based).
    #[schema(required = false)]
    segment: usize,
    /// Why, as a sentence.
    why: String,
}

/// How an endpoint missed: a wrong method on a matching path, or a path that differs.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "a schema only")]
pub(super) enum MissKind {
    WrongMethod,
    PathDiffers,
}

/// The project a path is under.
#[derive(Serialize, ToSchema)]
pub(super) struct ProjectRef {
    mount: String,
    revision: i64,
}

/// An endpoint, briefly.
#[derive(Serialize, ToSchema)]
pub(super) struct EndpointRef<'a> {
    id: &'a str,
    method: &'a str,
    path: &'a str,
}

/// Explain a request: which endpoint would answer it, or why none would.
///
/// Which project and endpoint would answer `method path`, with its path parameters, or,
/// when none would, the nearest endpoints and why each missed. Asked of the live route table, like the request itself; the caller must own the project
/// the path is under (or be an admin).
#[utoipa::path(
    get,
    path = "/admin/explain",
    tag = "endpoints",
    params(ExplainQuery),
    responses(
        (status = 200, description = "The explanation", body = Answer),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn explain(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ExplainQuery>,
) -> Result<Response, ApiError> {
    let method_text = query.method.as_deref().unwrap_or("GET");
    let method = http::Method::from_bytes(method_text.as_bytes())
        .map_err(|_| ApiError::validation(vec![FieldError::new("method", "not an HTTP method")]))?;
    let path = query.path.as_str();
    if !path.starts_with('/') {
        return Err(ApiError::validation(vec![FieldError::new(
            "path",
            "must start with `/`, as in /alice/demo/items/7",
        )]));
    }
    let mut answer = Answer {
        method: method.as_str(),
        path,
        matched: false,
        reason: None,
        message: None,
        project: None,
        endpoint: None,
        params: None,
        allow: None,
        candidates: Vec::new(),
    };
    let owner = split_segment(&path[1..]).0;
    if owner.is_empty() || is_reserved_root(owner) {
        answer.reason = Some("platform");
        answer.message = Some(format!(
            "`/{owner}` is a path of Switchyard's own API, not of a project"
        ));
        return Ok(axum::Json(answer).into_response());
    }
    authorize(&principal, owner)?;
    let table = state.changes.routes().load();
    let Some((project, rest)) = table.resolve(path) else {
        answer.reason = Some("no_project");
        answer.message = Some("no project is mounted at the start of this path".into());
        return Ok(axum::Json(answer).into_response());
    };
    answer.project = Some(ProjectRef {
        mount: project.def.mount(),
        revision: project.def.revision,
    });
    match project.lookup(&method, rest) {
        ProjectLookup::Found { index, params, .. } => {
            answer.endpoint = Some(match project.def.endpoints.get(index) {
                Some(endpoint) => EndpointRef {
                    id: &endpoint.id,
                    method: endpoint.spec.method.as_str(),
                    path: &endpoint.spec.path,
                },
                // Past the endpoints: a route of the project's script.
                None => {
                    let route = project
                        .script
                        .as_ref()
                        .zip(crate::routing::script_route(index))
                        .and_then(|(script, at)| script.script.routes().get(at));
                    let (Some(route), Some(id)) = (route, project.endpoint_id(index)) else {
                        return Err(ApiError::new(Code::Internal, "route without endpoint"));
                    };
                    EndpointRef {
                        id,
                        method: route.method.as_ref().map_or("ANY", |m| m.as_str()),
                        path: &route.path,
                    }
                }
            });
            answer.matched = true;
            answer.params = Some(
                params
                    .iter()
                    .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
                    .collect(),
            );
        }
        ProjectLookup::MethodNotAllowed(allow) => {
            answer.reason = Some("method_not_allowed");
            answer.message = Some(format!(
                "endpoints match this path, but none answers {}",
                method.as_str()
            ));
            answer.allow = Some(allow);
        }
        ProjectLookup::NotFound => {
            answer.reason = Some("no_endpoint");
            answer.message = Some("no endpoint of the project matches this path".into());
        }
        ProjectLookup::Unavailable(problem) => {
            answer.reason = Some("project_unavailable");
            answer.message = Some(format!(
                "the project could not be loaded, so it answers 503: {}",
                problem.message()
            ));
        }
    }
    if answer.matched {
        return Ok(axum::Json(answer).into_response());
    }
    answer.candidates = near_misses(project, &method, rest, CANDIDATES);
    Ok(axum::Json(answer).into_response())
}
