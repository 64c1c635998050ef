//! `/auth`: register, login, logout, who am I, and long-lived API tokens.

use std::net::IpAddr;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Json, JsonOrForm, MaybePrincipal, Path, bearer_secret};
use crate::accounts::{Principal, now_ms};
use crate::config::Registration;
use crate::error::{ApiError, Code, FieldError};
use crate::model::{Role, check_password, check_username};
use crate::server::ClientAddr;
use crate::store::{TokenKind, TokenRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterBody {
    username: String,
    password: String,
    /// Only an admin may choose the role of an account it creates.
    role: Option<Role>,
}

pub(super) async fn register(
    State(state): State<AppState>,
    MaybePrincipal(caller): MaybePrincipal,
    JsonOrForm(body): JsonOrForm<RegisterBody>,
) -> Result<Response, ApiError> {
    let caller_is_admin = caller.as_ref().is_some_and(Principal::is_admin);
    if state.config.registration == Registration::Closed && !caller_is_admin {
        return Err(ApiError::new(
            Code::RegistrationClosed,
            "registration is closed on this instance; ask an admin to create your account",
        ));
    }
    if body.role.is_some() && !caller_is_admin {
        return Err(ApiError::new(
            Code::Forbidden,
            "only an admin may choose a role",
        ));
    }
    let mut errors = Vec::new();
    if let Err(message) = check_username(&body.username) {
        errors.push(FieldError::new("username", message));
    }
    if let Err(message) = check_password(&body.password) {
        errors.push(FieldError::new("password", message));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let user = state
        .accounts
        .register(&body.username, &body.password, body.role)
        .await?;
    tracing::info!(username = %user.username, role = user.role.as_str(), "user registered");
    let answer = json!({"username": user.username, "role": user.role, "projects": []});
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// The OAuth2 password grant's fields, also taken as JSON. Clients send `grant_type`,
/// `scope` and client credentials along; they are accepted and not used.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    username: String,
    password: String,
    grant_type: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
    #[allow(dead_code)]
    client_id: Option<String>,
    #[allow(dead_code)]
    client_secret: Option<String>,
}

pub(super) async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    JsonOrForm(body): JsonOrForm<LoginBody>,
) -> Result<Response, ApiError> {
    if let Some(grant) = &body.grant_type
        && grant != "password"
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "grant_type",
            "only the `password` grant is supported",
        )]));
    }
    // The edge always sets the peer address; a request that somehow lacks it is counted
    // under one shared unspecified address rather than escaping the limits.
    let client = client.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ClientAddr(peer))| {
        peer.ip()
    });
    let user = state
        .accounts
        .check_login(client, &body.username, &body.password)
        .await?;
    let issued = state
        .accounts
        .issue_token(user.id, TokenKind::Session, "login", None)
        .await?;
    let answer = json!({
        "access_token": issued.secret,
        "token_type": "bearer",
        "expires_in": state.accounts.session_ttl_secs(),
    });
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response())
}

pub(super) async fn logout(
    State(state): State<AppState>,
    parts: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Some(secret) = bearer_secret(&parts)? else {
        return Err(ApiError::unauthorized(
            Code::Unauthorized,
            "send the bearer token to end",
        ));
    };
    if state.accounts.revoke_secret(secret).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unauthorized(
            Code::Unauthorized,
            "the bearer token is unknown, expired or revoked",
        ))
    }
}

pub(super) async fn me(State(state): State<AppState>, principal: Principal) -> Json<Value> {
    let mut projects: Vec<String> = state
        .changes
        .routes()
        .load()
        .projects()
        .filter(|p| p.def.owner == principal.username)
        .map(|p| p.def.name.clone())
        .collect();
    projects.sort();
    Json(json!({
        "username": principal.username,
        "role": principal.role,
        "projects": projects,
    }))
}

fn token_json(token: &TokenRecord) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "created_at": super::admin::timestamp(token.created_at),
        "expires_at": token.expires_at.map(super::admin::timestamp),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenBody {
    name: String,
    /// Seconds until the token expires; absent means it never does.
    expires_in: Option<u64>,
}

/// The longest lifetime an API token may be given: ten years.
const MAX_TOKEN_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

pub(super) async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<NewTokenBody>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    if body.name.trim().is_empty() || body.name.len() > 64 {
        errors.push(FieldError::new(
            "name",
            "must be 1 to 64 bytes, not only spaces",
        ));
    }
    if body
        .expires_in
        .is_some_and(|s| s == 0 || s > MAX_TOKEN_LIFETIME_SECS)
    {
        errors.push(FieldError::new(
            "expires_in",
            format!("must be from 1 to {MAX_TOKEN_LIFETIME_SECS} seconds"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let expires_at = body.expires_in.map(|secs| {
        now_ms().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
    });
    let issued = state
        .accounts
        .issue_api_token(principal.user_id, body.name.trim(), expires_at)
        .await?;
    let mut answer = token_json(&issued.record);
    answer["token"] = Value::String(issued.secret);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response())
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let tokens = state
        .accounts
        .store()
        .list_tokens(principal.user_id, TokenKind::Api)
        .await?;
    let now = now_ms();
    let live: Vec<Value> = tokens
        .iter()
        .filter(|t| t.expires_at.is_none_or(|at| at > now))
        .map(token_json)
        .collect();
    Ok(Json(json!({ "tokens": live })))
}

pub(super) async fn delete_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .accounts
        .store()
        .delete_token(principal.user_id, &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            Code::TokenNotFound,
            format!("you have no API token `{id}`"),
        ))
    }
}
