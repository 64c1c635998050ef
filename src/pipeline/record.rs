//! Stage 4 of the pipeline: counting and logging the answer.
//!
//! One clock read when the response head is ready ([`measure`]); the latency since the
//! request reached the edge goes to the instance's stats, and for a project request to the
//! project's and, when an endpoint answered, the endpoint's (`observe::stats`). With the
//! access log on, one line per request (`observe::logs::access`). Requests to the
//! observability endpoints themselves (`/stats`, `/metrics`, `/health`, `/ready`) are not
//! counted, so that watching a node does not change what it reports; `/health` and `/ready`
//! are not logged either.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Response, Uri};
use http_body::Body as _;

use crate::body::Body;
use crate::error;
use crate::observe::journal::{self, Captured};
use crate::observe::{Stamp, Telemetry, logs};
use crate::routing::{CompiledEndpoint, CompiledProject};

/// An answered request, measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: u16,
    pub latency_ns: u64,
    /// The second of the node's clock it ended in.
    pub second: u64,
    /// When it ended, Unix milliseconds.
    pub unix_ms: u64,
}

/// Reads the clock once: how long since `start`, for a response with `status`.
#[inline]
pub fn measure(telemetry: &Telemetry, response: &Response<Body>, start: Stamp) -> Outcome {
    let moment = telemetry.moment(start);
    Outcome {
        status: response.status().as_u16(),
        latency_ns: moment.latency_ns,
        second: moment.second,
        unix_ms: moment.unix_ms,
    }
}

/// Counts a request that reached no project (a platform request, or an unknown mount).
#[inline]
pub fn instance(telemetry: &Telemetry, outcome: Outcome) {
    telemetry
        .instance
        .record(outcome.status, outcome.latency_ns, outcome.second);
}

/// Counts a project request: instance, project and, if one answered, endpoint.
#[inline]
pub fn project(
    telemetry: &Telemetry,
    project: &CompiledProject,
    endpoint: Option<&Arc<CompiledEndpoint>>,
    outcome: Outcome,
) {
    instance(telemetry, outcome);
    let Outcome {
        status,
        latency_ns,
        second,
        ..
    } = outcome;
    project.stats.record(status, latency_ns, second);
    if let Some(endpoint) = endpoint {
        endpoint.stats.get().record(status, latency_ns, second);
    }
}

/// The id of the endpoint at `index` of `project`, if one answered.
fn endpoint_id(project: &CompiledProject, index: Option<usize>) -> Option<&str> {
    project.endpoint_id(index?)
}

/// What the access log says of a request besides its outcome.
pub struct Line<'a> {
    pub id: &'a HeaderValue,
    pub client: SocketAddr,
    pub method: &'a Method,
    pub uri: &'a Uri,
    /// The project, and the index of the endpoint that answered.
    pub project: Option<(&'a CompiledProject, Option<usize>)>,
}

/// Writes the access-log line of a request.
pub fn access(line: Line<'_>, response: &Response<Body>, outcome: Outcome) {
    let mount = line.project.map(|(project, _)| project.def.label());
    let endpoint = line
        .project
        .and_then(|(project, index)| endpoint_id(project, index));
    logs::access(
        error::id_str(line.id),
        line.client,
        line.method,
        line.uri.path(),
        line.uri.query(),
        mount.as_deref(),
        endpoint,
        outcome.status,
        response.body().size_hint().exact(),
        outcome.latency_ns,
    );
}

/// What the journal keeps of a request besides its outcome.
pub struct Journaled<'a> {
    pub id: &'a HeaderValue,
    pub method: &'a Method,
    /// Inside the project.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: Captured,
    /// The index of the endpoint that answered.
    pub endpoint: Option<usize>,
    /// The caller the project's policy verified.
    pub subject: Option<&'a Arc<str>>,
    /// The headers of the answer when they are its handler's fixed ones, to share.
    pub fixed_headers: Option<&'a Arc<http::HeaderMap>>,
    /// How the answer differs from the endpoint's documented responses.
    pub response_invalid: Option<Box<[crate::error::FieldError]>>,
}

/// Adds a request to its project's journal: its text copied into one buffer, its bodies
/// shared.
pub fn journal(
    telemetry: &Telemetry,
    project: &CompiledProject,
    request: Journaled<'_>,
    response: &Response<Body>,
    outcome: Outcome,
    size: usize,
) {
    let journal = &project.journal;
    let answer = match response.body() {
        Body::Full(Some(bytes)) => Captured {
            bytes: bytes.slice(..bytes.len().min(telemetry.journal_body)),
            length: Some(bytes.len() as u64),
            truncated: bytes.len() > telemetry.journal_body,
        },
        Body::Full(None) => Captured {
            length: Some(0),
            ..Captured::default()
        },
        // A streamed body (the platform's, or an upstream's) is not held back for the
        // journal: it goes to the client as it arrives.
        Body::Axum(_) | Body::Upstream(_) => Captured::default(),
    };
    let entry = journal::Record {
        seq: journal.next_seq(),
        unix_ms: outcome.unix_ms,
        latency_ns: outcome.latency_ns,
        request_id: request.id.as_bytes(),
        method: request.method,
        path: request.path,
        query: request.query,
        request_headers: request.headers,
        request_body: request.body,
        status: outcome.status,
        response_headers: response.headers(),
        fixed_response_headers: request.fixed_headers,
        response_body: answer,
        endpoint: endpoint_id(project, request.endpoint),
        subject: request.subject,
        response_invalid: request.response_invalid,
    };
    journal.record(entry, size);
}
