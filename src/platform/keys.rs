//! `/admin/projects/{owner}/{name}/keys[/{id}]`: a project's API keys (docs/auth.md), for
//! its `api_key` policy. `POST` makes one — `{name, scopes?, expires_in?}` — and answers
//! with the key itself, the only time it is shown (only its SHA-256 is stored); `GET` lists
//! them without their values; `DELETE …/keys/{id}` revokes one. Each is one revision
//! (`If-Match`, `?dry_run=true`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::admin::{actor, change_reply, live_project, read_reply, timestamp};
use super::extract::{DryRun, IfMatch, Json, Path, Query};
use crate::accounts::{Principal, now_ms};
use crate::auth::keys::{self, KeyEntry};
use crate::changes::Target;
use crate::error::{ApiError, FieldError};
use crate::model::check_key_name;

/// The longest lifetime a key may be given: ten years.
const MAX_KEY_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKeyBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds until the key expires; absent: never.
    expires_in: Option<u64>,
}

impl NewKeyBody {
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if let Err(message) = check_key_name(&self.name) {
            errors.push(FieldError::new("name", message));
        }
        if self.scopes.len() > 64
            || self
                .scopes
                .iter()
                .any(|s| s.is_empty() || s.len() > 256 || s.contains(char::is_whitespace))
        {
            errors.push(FieldError::new(
                "scopes",
                "at most 64 scopes of 1 to 256 bytes, without spaces",
            ));
        }
        if self
            .expires_in
            .is_some_and(|s| s == 0 || s > MAX_KEY_LIFETIME_SECS)
        {
            errors.push(FieldError::new(
                "expires_in",
                format!("must be from 1 to {MAX_KEY_LIFETIME_SECS} seconds"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// A key as listed: never its value.
#[derive(Serialize)]
struct KeyAnswer<'a> {
    id: &'a str,
    name: &'a str,
    scopes: &'a [Box<str>],
    created_at: String,
    expires_at: Option<String>,
    expired: bool,
}

fn answer(entry: &KeyEntry, now: i64) -> KeyAnswer<'_> {
    KeyAnswer {
        id: &entry.id,
        name: &entry.name,
        scopes: &entry.scopes,
        created_at: timestamp(entry.created_at),
        expires_at: entry.expires_at.map(timestamp),
        expired: entry.expires_at.is_some_and(|at| now >= at),
    }
}

pub(super) async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let project = live_project(&state, &principal, &owner, &name)?;
    let now = now_ms();
    let keys: Vec<KeyAnswer<'_>> = project
        .auth
        .keys()
        .sorted()
        .into_iter()
        .map(|entry| answer(entry, now))
        .collect();
    Ok(read_reply(
        project.def.revision,
        serde_json::json!({ "keys": keys }),
    ))
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
    Json(body): Json<NewKeyBody>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    body.validate()?;
    let now = now_ms();
    let expires_at = body.expires_in.map(|secs| {
        now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
    });
    let made = keys::generate(&body.name, body.scopes, now, expires_at);
    let id = made.record.id.clone();
    let outcome = state
        .changes
        .add_key(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            made.record,
        )
        .await?;
    if outcome.dry_run {
        // No key is made by a dry run: nothing to show.
        return Ok(change_reply(&outcome, StatusCode::CREATED, Value::Null));
    }
    let Some(entry) = outcome.project.auth.keys().get(&id) else {
        return Err(ApiError::internal(
            &"a key just added is not in its revision",
        ));
    };
    let mut body = serde_json::to_value(answer(entry, now)).map_err(|e| ApiError::internal(&e))?;
    body["key"] = Value::String(made.key);
    let mut response = change_reply(&outcome, StatusCode::CREATED, body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response.into_response())
}

pub(super) async fn delete_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, id)): Path<(String, String, String)>,
    IfMatch(expected): IfMatch,
    Query(dry): Query<DryRun>,
) -> Result<Response, ApiError> {
    live_project(&state, &principal, &owner, &name)?;
    let outcome = state
        .changes
        .revoke_key(
            actor(&principal),
            Target {
                key: &format!("{owner}/{name}"),
                expected,
                dry_run: dry.dry_run,
            },
            &id,
        )
        .await?;
    Ok(change_reply(&outcome, StatusCode::NO_CONTENT, Value::Null))
}
