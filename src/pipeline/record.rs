//! Stage 4 of the pipeline: counting the answer.
//!
//! One clock read when the response head is ready; the latency since the request reached
//! the edge goes to the instance's stats, and for a project request to the project's and,
//! when an endpoint answered, the endpoint's (`observe::stats`). Requests to the
//! observability endpoints themselves (`/stats`, `/metrics`, `/health`, `/ready`) are not
//! counted, so that watching a node does not change what it reports.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;

use crate::observe::Telemetry;
use crate::routing::{CompiledEndpoint, CompiledProject};

/// Counts a request that reached no project (a platform request, or an unknown mount).
#[inline]
pub fn instance(telemetry: &Telemetry, status: StatusCode, start: Instant) {
    let (latency, second) = telemetry.since(start);
    telemetry.instance.record(status.as_u16(), latency, second);
}

/// Counts a project request: instance, project and, if one answered, endpoint.
#[inline]
pub fn project(
    telemetry: &Telemetry,
    project: &CompiledProject,
    endpoint: Option<&Arc<CompiledEndpoint>>,
    status: StatusCode,
    start: Instant,
) {
    let (latency, second) = telemetry.since(start);
    let status = status.as_u16();
    telemetry.instance.record(status, latency, second);
    project.stats.record(status, latency, second);
    if let Some(endpoint) = endpoint {
        endpoint.stats.get().record(status, latency, second);
    }
}
