//! The stats API: `GET /stats` for the whole instance, `GET /admin/projects/{o}/{p}/stats`
//! for a project (`?by=endpoint` adds one entry per endpoint), and `DELETE` on the same
//! paths to start counting again (an admin for the instance; the owner or an admin for a
//! project). The format is DESIGN.md's "Stats format", documented in
//! `docs/observability.md`; the counting itself is `observe::stats`. Also `GET /metrics`,
//! the same counters and the node's state for Prometheus (`observe::metrics`), for admins:
//! it names every tenant's projects and endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::live_project;
use super::extract::{Path, ProjectPath, Query};
use super::openapi::{
    BadRequest, Forbidden, NotFound, ServiceUnavailable, Unauthorized, ValidationFailed,
};
use crate::accounts::Principal;
use crate::error::{ApiError, Code};
use crate::observe::stats::{Report, Stats};

/// The node's traffic: requests by outcome and status class, latency, the last minute.
///
/// Every request since start (or the last reset), but those to `/stats`, `/metrics`,
/// `/health` and `/ready`.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "stats",
    operation_id = "instance_stats",
    responses((status = 200, description = "The node's stats", body = Report)),
)]
pub(super) async fn instance(State(state): State<AppState>) -> Response {
    let telemetry = &state.telemetry;
    axum::Json(telemetry.instance.report(telemetry.second())).into_response()
}

/// Start counting the node's traffic again (admins only).
#[utoipa::path(
    delete,
    path = "/stats",
    tag = "stats",
    operation_id = "reset_instance_stats",
    responses(
        (status = 204, description = "The counts start again from zero"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn reset_instance(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    if !principal.is_admin() {
        return Err(ApiError::new(
            Code::Forbidden,
            "only an admin may reset the instance's stats",
        ));
    }
    state.telemetry.instance.reset();
    Ok(StatusCode::NO_CONTENT)
}

/// The node's counters and state for Prometheus (admins only).
///
/// The OpenMetrics text exposition, which Prometheus reads natively. Admins only: it names
/// every user's projects and endpoints.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "stats",
    responses(
        (status = 200, description = "The node's counters and state",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body = String),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn metrics(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    if !principal.is_admin() {
        return Err(ApiError::new(
            Code::Forbidden,
            "only an admin may read /metrics: it names every user's projects and endpoints",
        ));
    }
    let body = crate::observe::metrics::render(crate::observe::metrics::Sources {
        table: arc_swap::Guard::into_inner(state.changes.routes().load()),
        telemetry: state.telemetry.clone(),
        hashes_queued: state.accounts.hashes_queued(),
    });
    Ok(openmetrics(body))
}

/// A rendered exposition as its answer (OpenMetrics text, which Prometheus reads natively).
pub(super) fn openmetrics(body: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The query of a project's stats.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsQuery {
    /// `endpoint`: add each endpoint's (and script route's) stats.
    #[param(inline)]
    by: Option<By>,
}

/// What project stats are broken down by.
#[derive(Debug, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
enum By {
    Endpoint,
}

/// A project's stats, and with `?by=endpoint` each endpoint's.
#[derive(Serialize, ToSchema)]
pub(super) struct ProjectStats<'a> {
    /// The project's mount.
    project: String,
    revision: i64,
    #[serde(flatten)]
    totals: Report,
    /// With `?by=endpoint`: each endpoint's stats, then each script route's.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<Vec<EndpointStats<'a>>>,
}

/// One endpoint's (or script route's) stats.
#[derive(Serialize, ToSchema)]
pub(super) struct EndpointStats<'a> {
    id: &'a str,
    method: &'a str,
    path: &'a str,
    #[serde(flatten)]
    totals: Report,
}

/// A project's traffic, and with `?by=endpoint` each endpoint's.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/stats",
    tag = "stats",
    operation_id = "project_stats",
    params(ProjectPath, StatsQuery),
    responses(
        (status = 200, description = "The project's stats", body = ProjectStats),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    Query(query): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let second = state.telemetry.second();
    // Endpoints never called have no counters yet; they report zeros.
    let untouched = Stats::new().report(second);
    let report = |compiled: &crate::routing::CompiledEndpoint| {
        compiled
            .stats
            .peek()
            .map_or_else(|| untouched.clone(), |stats| stats.report(second))
    };
    let endpoints = (query.by == Some(By::Endpoint)).then(|| {
        let endpoints = project
            .def
            .endpoints
            .iter()
            .zip(project.handlers.iter())
            .map(|(endpoint, compiled)| EndpointStats {
                id: &endpoint.id,
                method: endpoint.spec.method.as_str(),
                path: &endpoint.spec.path,
                totals: report(compiled),
            });
        // Then the script's routes, by their ids (`script:GET /path`).
        let routes = project.script.iter().flat_map(|script| {
            script
                .script
                .routes()
                .iter()
                .zip(&script.ids)
                .zip(&script.handlers)
                .map(|((route, id), compiled)| EndpointStats {
                    id,
                    method: route.method.as_ref().map_or("ANY", |m| m.as_str()),
                    path: &route.path,
                    totals: report(compiled),
                })
        });
        endpoints.chain(routes).collect()
    });
    let answer = ProjectStats {
        project: project.def.mount(),
        revision: project.def.revision,
        totals: project.stats.report(second),
        endpoints,
    };
    Ok(axum::Json(answer).into_response())
}

/// Start counting a project's traffic (and its endpoints') again.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/stats",
    tag = "stats",
    operation_id = "reset_project_stats",
    params(ProjectPath),
    responses(
        (status = 204, description = "The counts start again from zero"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn reset_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<StatusCode, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    project.stats.reset();
    let routes = project
        .script
        .iter()
        .flat_map(|script| script.handlers.iter());
    for compiled in project.handlers.iter().chain(routes) {
        if let Some(stats) = compiled.stats.peek() {
            stats.reset();
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
