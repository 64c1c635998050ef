//! The journal API: `GET /admin/projects/{o}/{p}/journal` lists a project's recent
//! requests, newest first, with filters; `?count=true` only counts them (what WireMock's
//! `verify` answers); `DELETE` forgets them. Owner or admin. The recording itself is the
//! pipeline's record stage and `observe::journal`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::live_project;
use super::extract::{Path, Query};
use crate::accounts::Principal;
use crate::error::{ApiError, FieldError};
use crate::observe::journal::Entry;
use crate::routing::explain::{NearMiss, near_misses};

/// Entries listed when no `limit` is given.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JournalQuery {
    method: Option<String>,
    /// Paths inside the project that start with this.
    path_prefix: Option<String>,
    /// `404`, or a class such as `4xx`.
    status: Option<String>,
    /// RFC 3339, or Unix milliseconds.
    since: Option<String>,
    request_id: Option<String>,
    limit: Option<usize>,
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
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    entry: &'a Entry,
    /// For a 404: the endpoints that came closest, against the current revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    near_misses: Option<Vec<NearMiss<'a>>>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
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

#[derive(Serialize)]
struct Page<'a> {
    project: String,
    capacity: usize,
    matched: usize,
    entries: Vec<Listed<'a>>,
}

pub(super) async fn clear(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    project.journal.clear();
    Ok(StatusCode::NO_CONTENT)
}
