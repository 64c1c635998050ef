//! `GET /admin/explain?method=…&path=…`: which project and endpoint would answer a
//! request, with its path parameters, or, when none would, the nearest endpoints and why
//! each missed (`routing::explain`). Asked of the live route table, like the request path
//! itself; the caller must own the project the path is under (or be an admin).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::authorize;
use super::extract::Query;
use crate::accounts::Principal;
use crate::error::{ApiError, Code, FieldError};
use crate::model::is_reserved_root;
use crate::routing::explain::{NearMiss, near_misses};
use crate::routing::{ProjectLookup, split_segment};

/// Near misses listed at most.
const CANDIDATES: usize = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplainQuery {
    method: Option<String>,
    path: String,
}

#[derive(Serialize)]
struct Answer<'a> {
    method: &'a str,
    path: &'a str,
    matched: bool,
    /// Why nothing matched: `no_project`, `no_endpoint`, `method_not_allowed`,
    /// `project_unavailable`, `platform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<ProjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<EndpointRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<NearMiss<'a>>,
}

#[derive(Serialize)]
struct ProjectRef {
    mount: String,
    revision: i64,
}

#[derive(Serialize)]
struct EndpointRef<'a> {
    id: &'a str,
    method: &'a str,
    path: &'a str,
}

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
