//! The journal API: `GET /admin/projects/{o}/{p}/journal` lists a project's recent
//! requests, newest first, with filters; `?count=true` only counts them (what WireMock's
//! `verify` answers); `DELETE` forgets them. Owner or admin. The recording itself is the
//! pipeline's record stage and `observe::journal`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::live_project;
use super::explain::NearMissSchema;
use super::extract::{Path, ProjectPath, Query};
use super::openapi::{
    BadRequest, Forbidden, NotFound, ServiceUnavailable, Unauthorized, ValidationFailed,
};
use crate::accounts::Principal;
use crate::error::{ApiError, FieldError};
use crate::observe::journal::Entry;
use crate::routing::explain::{NearMiss, near_misses};

/// Entries listed when no `limit` is given.
const DEFAULT_LIMIT: usize = 100;

/// The filters of a journal read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct JournalQuery {
    /// Requests with this method.
    method: Option<String>,
    /// Paths inside the project that start with this.
    path_prefix: Option<String>,
    /// `404`, or a class such as `4xx`.
    #[param(example = "4xx")]
    status: Option<String>,
    /// Requests at or after this time: RFC 3339, or Unix milliseconds.
    since: Option<String>,
    /// The request with this id.
    request_id: Option<String>,
    /// The most entries listed (default 100).
    limit: Option<usize>,
    /// Only answers that differ from their endpoint's documented responses (checked in
    /// `development` mode for endpoints with `validate.response`).
    #[serde(default)]
    response_invalid: bool,
    /// Only count the requests that match: answer `{"count": n}`.
    #[serde(default)]
    count: bool,
}

/// The filters, checked.
struct Filter {
    method: Option<String>,
    path_prefix: Option<String>,
    status: Option<(u16, u16)>,
    since_ms: Option<u64>,
    request_id: Option<String>,
    response_invalid: bool,
}

impl Filter {
    fn parse(query: &JournalQuery) -> Result<Filter, ApiError> {
        let mut errors = Vec::new();
        let status = query.status.as_deref().and_then(|status| {
            let range = match status.as_bytes() {
                [d, b'x', b'x'] | [d, b'X', b'X'] if (b'1'..=b'5').contains(d) => {
                    let low = u16::from(d - b'0') * 100;
                    Some((low, low + 99))
                }
                _ => status
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .map(|s| (s, s)),
            };
            if range.is_none() {
                errors.push(FieldError::new(
                    "status",
                    "a status such as 404, or a class such as 4xx",
                ));
            }
            range
        });
        let since_ms = query.since.as_deref().and_then(|since| {
            let parsed = since.parse::<u64>().ok().or_else(|| {
                chrono::DateTime::parse_from_rfc3339(since)
                    .ok()
                    .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
            });
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "since",
                    "an RFC 3339 time (2026-12-04T13:00:00Z) or Unix milliseconds",
                ));
            }
            parsed
        });
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Filter {
            method: query.method.as_ref().map(|m| m.to_ascii_uppercase()),
            path_prefix: query.path_prefix.clone(),
            status,
            since_ms,
            request_id: query.request_id.clone(),
            response_invalid: query.response_invalid,
        })
    }

    fn keeps(&self, entry: &Entry) -> bool {
        self.method
            .as_ref()
            .is_none_or(|m| *m == entry.method.as_str())
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| entry.path().starts_with(p.as_str()))
            && self
                .status
                .is_none_or(|(low, high)| (low..=high).contains(&entry.status))
            && self.since_ms.is_none_or(|since| entry.unix_ms >= since)
            && self
                .request_id
                .as_ref()
                .is_none_or(|id| id == entry.request_id())
            && (!self.response_invalid || entry.response_invalid().is_some())
    }
}

/// A journal entry as listed.
#[derive(Serialize, ToSchema)]
#[schema(as = JournalEntry)]
pub(super) struct Listed<'a> {
    #[serde(flatten)]
    #[schema(value_type = EntrySchema)]
    entry: &'a Entry,
    /// For a 404: the endpoints that came closest, against the current revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<NearMissSchema>>)]
    near_misses: Option<Vec<NearMiss<'a>>>,
}

/// One recorded request, as `observe::journal::Entry` writes it (a schema only).
#[derive(ToSchema)]
#[schema(as = JournalRecord)]
#[allow(dead_code, reason = "a schema only: `Entry` serialises itself")]
pub(super) struct EntrySchema {
    /// The entry's number in the project's journal.
    seq: u64,
    /// When the request came, RFC 3339.
    time: String,
    request_id: String,
    request: RequestSchema,
    response: ResponseSchema,
    /// The id of the endpoint (or script route) that answered.
    #[schema(required = false)]
    endpoint: String,
    /// The verified caller, under an auth policy.
    #[schema(required = false)]
    subject: String,
    latency_ms: f64,
    /// How the answer differs from the endpoint's documented responses (`field`: where,
    /// such as `response.body/id`; `message`), when they are checked and it does.
    #[schema(required = false)]
    response_invalid: Vec<crate::error::FieldError>,
}

/// The request of a journal entry; credentials are redacted.
#[derive(ToSchema)]
#[schema(as = JournalRequest)]
#[allow(dead_code, reason = "a schema only")]
pub(super) struct RequestSchema {
    method: String,
    /// The project-relative path.
    path: String,
    /// The query string, credentials redacted.
    #[schema(required = false)]
    query: String,
    /// `[name, value]` pairs, in order.
    headers: Vec<Vec<String>>,
    #[serde(flatten)]
    body: BodySchema,
}

/// The answer of a journal entry.
#[derive(ToSchema)]
#[schema(as = JournalResponse)]
#[allow(dead_code, reason = "a schema only")]
pub(super) struct ResponseSchema {
    status: u16,
    /// `[name, value]` pairs, in order.
    headers: Vec<Vec<String>>,
    #[serde(flatten)]
    body: BodySchema,
}

/// The start of a body: as text when it is UTF-8 (`body`), else as base64 (`body_base64`).
#[derive(ToSchema)]
#[schema(as = JournalBody)]
#[allow(dead_code, reason = "a schema only")]
pub(super) struct BodySchema {
    #[schema(required = false)]
    body: String,
    #[schema(required = false)]
    body_base64: String,
    /// The body's whole length, when known.
    #[schema(required = false)]
    body_length: u64,
    /// Whether the body was cut short.
    body_truncated: bool,
}

/// What a journal read answers: the entries, or with `?count=true` their number.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "a schema only")]
pub(super) enum JournalAnswer {
    Page(Page<'static>),
    Count(JournalCount),
}

/// How many requests match, with `?count=true`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "a schema only: written with `json!`")]
pub(super) struct JournalCount {
    count: usize,
}

/// List a project's recent requests, newest first, with filters.
///
/// `?count=true` only counts them (what WireMock's `verify` answers).
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/journal",
    tag = "journal",
    operation_id = "list_journal",
    params(ProjectPath, JournalQuery),
    responses(
        (status = 200, description = "The matching entries, or their number", body = JournalAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
    Query(query): Query<JournalQuery>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let filter = Filter::parse(&query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    // Serialised while the journal is read: its entries are borrowed, never copied.
    let body = project.journal.read(|entries| {
        let kept: Vec<&Entry> = entries
            .iter()
            .rev()
            .filter(|entry| filter.keeps(entry))
            .copied()
            .collect();
        if query.count {
            return serde_json::to_vec(&serde_json::json!({"count": kept.len()}));
        }
        let listed: Vec<Listed<'_>> = kept
            .iter()
            .take(limit)
            .map(|entry| Listed {
                entry,
                near_misses: (entry.status == 404 && entry.endpoint().is_none())
                    .then(|| near_misses(&project, &entry.method, entry.path(), 3)),
            })
            .collect();
        serde_json::to_vec(&Page {
            project: project.def.mount(),
            capacity: project.journal_size(state.telemetry.journal_size),
            matched: kept.len(),
            entries: listed,
        })
    });
    let body = body.map_err(|error| ApiError::internal(&error))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// A page of a project's journal.
#[derive(Serialize, ToSchema)]
#[schema(as = JournalPage)]
pub(super) struct Page<'a> {
    /// The project's mount.
    project: String,
    /// How many requests the journal keeps.
    capacity: usize,
    /// How many kept requests match the filters (the entries are the first `limit`).
    matched: usize,
    entries: Vec<Listed<'a>>,
}

/// Forget a project's recorded requests.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/journal",
    tag = "journal",
    operation_id = "clear_journal",
    params(ProjectPath),
    responses(
        (status = 204, description = "The journal is empty"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn clear(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
) -> Result<StatusCode, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    project.journal.clear();
    Ok(StatusCode::NO_CONTENT)
}
