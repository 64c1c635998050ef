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
use utoipa::ToSchema;

use super::AppState;
use super::admin::{DryRunBody, actor, change_reply, live_project, read_reply, timestamp};
use super::extract::{DryRun, IfMatch, Json, KeyPath, Path, ProjectPath, Query};
use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, RequestTimeout,
    ServiceUnavailable, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use crate::accounts::{Principal, now_ms};
use crate::auth::keys::{self, KeyEntry};
use crate::changes::Target;
use crate::error::{ApiError, FieldError};
use crate::model::check_key_name;

/// The longest lifetime a key may be given: ten years.
const MAX_KEY_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKeyBody {
    /// Unique in the project; the key's subject when it is used.
    name: String,
    /// What the key may do (endpoints ask for scopes): at most 64, of 1 to 256 bytes,
    /// without spaces.
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds until the key expires (at most ten years); absent: never.
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
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub(super) struct KeyAnswer<'a> {
    id: &'a str,
    name: &'a str,
    scopes: &'a [Box<str>],
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; null: never.
    expires_at: Option<String>,
    expired: bool,
}

/// A project's API keys.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyList<'a> {
    keys: Vec<KeyAnswer<'a>>,
}

/// A key just made: as listed, and the key itself, shown only this once.
#[derive(Serialize, ToSchema)]
#[schema(as = NewApiKey)]
pub(super) struct KeyCreated<'a> {
    #[serde(flatten)]
    listed: KeyAnswer<'a>,
    /// The key to send (only its SHA-256 is stored).
    key: String,
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

/// List a project's API keys, without their values.
#[utoipa::path(
    get,
    path = "/admin/projects/{owner}/{name}/keys",
    tag = "keys",
    params(ProjectPath),
    responses(
        (status = 200, description = "The keys", body = KeyList,
            headers(("ETag" = String, description = "The project's revision, quoted"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
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
    Ok(read_reply(project.def.revision, KeyList { keys }))
}

/// Make an API key for the project; the answer shows it, once.
#[utoipa::path(
    post,
    path = "/admin/projects/{owner}/{name}/keys",
    tag = "keys",
    params(ProjectPath, IfMatch, DryRun),
    request_body = NewKeyBody,
    responses(
        (status = 201, description = "The key, with its value `key` (shown only here); the \
            answer is not to be cached", body = KeyCreated,
            headers(
                ("ETag" = String, description = "The project's new revision, quoted"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 200, description = "`?dry_run=true`: what would change (no key is made)",
            body = DryRunBody),
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
pub(super) async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(ProjectPath { owner, name }): Path<ProjectPath>,
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
    let body = KeyCreated {
        listed: answer(entry, now),
        key: made.key,
    };
    let mut response = change_reply(&outcome, StatusCode::CREATED, body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response.into_response())
}

/// Revoke an API key.
#[utoipa::path(
    delete,
    path = "/admin/projects/{owner}/{name}/keys/{id}",
    tag = "keys",
    params(KeyPath, IfMatch, DryRun),
    responses(
        (status = 204, description = "The key is revoked",
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
pub(super) async fn delete_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(KeyPath { owner, name, id }): Path<KeyPath>,
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
