//! `/auth`: register, login, logout, who am I, and long-lived API tokens.

use std::net::IpAddr;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{Json, JsonOrForm, MaybePrincipal, Path, TokenPath, bearer_secret};
use super::openapi::{
    BadRequest, Conflict, Forbidden, LoginFailed, NotFound, PayloadTooLarge, RequestTimeout,
    ServiceUnavailable, TooManyRequests, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use crate::accounts::{Principal, now_ms};
use crate::config::Registration;
use crate::error::{ApiError, Code, FieldError};
use crate::model::{Role, check_password, check_username};
use crate::server::ClientAddr;
use crate::store::{TokenKind, TokenRecord};

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterBody {
    /// 1 to 32 characters of `[a-z0-9][a-z0-9_-]*`, not a reserved root name.
    username: String,
    /// 8 to 1024 characters.
    #[schema(format = Password)]
    password: String,
    /// Only an admin may choose the role of an account it creates.
    role: Option<Role>,
}

/// An account, as register and `/auth/me` answer it.
#[derive(Serialize, ToSchema)]
pub(super) struct UserAnswer {
    username: String,
    role: Role,
    /// The names of the user's projects (none for a new account).
    projects: Vec<String>,
}

/// Create an account.
///
/// Open to anyone when registration is open (the first account of an instance is its
/// admin); an admin's bearer token may create accounts when it is closed, and choose their
/// `role`.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body(
        description = "The account, as JSON or as a form",
        content(
            (RegisterBody = "application/json"),
            (RegisterBody = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 201, description = "The account was created", body = UserAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security((), ("bearer" = [])),
)]
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
    let answer = UserAnswer {
        username: user.username,
        role: user.role,
        projects: Vec::new(),
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// The OAuth2 password grant's fields, also taken as JSON. Clients send `grant_type`,
/// `scope` and client credentials along; they are accepted and not used.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    username: String,
    #[schema(format = Password)]
    password: String,
    /// `password` if given: the only grant there is.
    #[schema(example = "password")]
    grant_type: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
    #[allow(dead_code)]
    client_id: Option<String>,
    #[allow(dead_code)]
    client_secret: Option<String>,
}

/// A login session's token, as login answers it.
#[derive(Serialize, ToSchema)]
pub(super) struct LoginAnswer {
    /// The bearer token: send it as `Authorization: Bearer …`.
    access_token: String,
    /// Always `bearer`.
    #[schema(value_type = String, example = "bearer")]
    token_type: &'static str,
    /// Seconds until the session ends.
    expires_in: i64,
}

/// Log in: a user name and password for a session token.
///
/// The OAuth2 password grant (a form), or the same fields as JSON. A wrong password and an
/// unknown user get the same 401; repeated failures from one address or for one user are
/// 429 for a while.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body(
        description = "The credentials, as an OAuth2 password grant form or as JSON",
        content(
            (LoginBody = "application/x-www-form-urlencoded"),
            (LoginBody = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "A new session; the answer is not to be cached",
            body = LoginAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = LoginFailed),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
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
    let answer = LoginAnswer {
        access_token: issued.secret,
        token_type: "bearer",
        expires_in: state.accounts.session_ttl_secs(),
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response())
}

/// Log out: end the session (or API token) sent as the bearer token.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, response = Unauthorized),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
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

/// Who am I: the caller's account and the names of its projects.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's account", body = UserAnswer),
        (status = 401, response = Unauthorized),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn me(State(state): State<AppState>, principal: Principal) -> Json<UserAnswer> {
    let mut projects: Vec<String> = state
        .changes
        .routes()
        .load()
        .projects()
        .filter(|p| p.def.owner == principal.username)
        .map(|p| p.def.name.clone())
        .collect();
    projects.sort();
    Json(UserAnswer {
        username: principal.username,
        role: principal.role,
        projects,
    })
}

/// An API token as listed: never its secret, but when it is made.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenAnswer {
    id: String,
    name: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; null: never.
    expires_at: Option<String>,
    /// The token itself: only in the answer that makes it, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn token_json(token: &TokenRecord) -> TokenAnswer {
    TokenAnswer {
        id: token.id.clone(),
        name: token.name.clone(),
        created_at: super::admin::timestamp(token.created_at),
        expires_at: token.expires_at.map(super::admin::timestamp),
        token: None,
    }
}

/// The caller's live API tokens.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenList {
    tokens: Vec<TokenAnswer>,
}

/// A new API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenBody {
    /// 1 to 64 bytes, not only spaces.
    name: String,
    /// Seconds until the token expires (at most ten years); absent means it never does.
    expires_in: Option<u64>,
}

/// The longest lifetime an API token may be given: ten years.
const MAX_TOKEN_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// Make a long-lived API token for the caller; the answer shows it, once.
#[utoipa::path(
    post,
    path = "/auth/tokens",
    tag = "auth",
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "The token, with its secret `token` (shown only here; \
            stored hashed); the answer is not to be cached", body = TokenAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
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
    answer.token = Some(issued.secret);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response())
}

/// The caller's API tokens that have not expired, without their secrets.
#[utoipa::path(
    get,
    path = "/auth/tokens",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's API tokens", body = TokenList),
        (status = 401, response = Unauthorized),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state
        .accounts
        .store()
        .list_tokens(principal.user_id, TokenKind::Api)
        .await?;
    let now = now_ms();
    let live: Vec<TokenAnswer> = tokens
        .iter()
        .filter(|t| t.expires_at.is_none_or(|at| at > now))
        .map(token_json)
        .collect();
    Ok(Json(TokenList { tokens: live }))
}

/// Revoke one of the caller's API tokens.
#[utoipa::path(
    delete,
    path = "/auth/tokens/{id}",
    tag = "auth",
    params(TokenPath),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(TokenPath { id }): Path<TokenPath>,
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
