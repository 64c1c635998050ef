//! The platform API: accounts (`/auth`), management (`/admin`) and health (`/health`,
//! `/ready`), served by axum on the reserved root paths.
//!
//! This is the one route list of the platform. Handlers return `Result<_, ApiError>`; the
//! JSON error body is written at the edge (`server`), which knows the request id. Every
//! change goes through `changes`; reads of projects come from the live route table, which
//! is the node's copy of the last committed revisions. Nothing here runs for requests to
//! projects.

mod admin;
mod auth;
mod backends;
mod datasets;
mod explain;
pub mod extract;
mod gateway;
mod journal;
mod keys;
mod pages;
mod script;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use crate::accounts::{AccountError, Accounts};
use crate::changes::{ChangeError, Changes};
use crate::config::Registration;
use crate::error::{ApiError, Code};
use crate::store::StoreError;

/// The settings the platform API reads.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub registration: Registration,
    pub admin_body_limit: usize,
    /// How long reading one request body may take (`--body-read-timeout`).
    pub body_read_timeout: Duration,
    /// How large a dataset upload may be.
    pub datasets: crate::datasets::UploadSettings,
    /// How the docs pages load their scripts.
    pub pages: Arc<crate::openapi::PagesConfig>,
}

/// What every platform handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub changes: Arc<Changes>,
    pub telemetry: Arc<crate::observe::Telemetry>,
    pub config: Arc<PlatformConfig>,
}

pub use gateway::router as gateway_router;

/// The platform's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/stats", get(stats::instance).delete(stats::reset_instance))
        .route("/metrics", get(stats::metrics))
        .route("/docs", get(pages::swagger_ui))
        .route("/redoc", get(pages::redoc))
        .route("/docs/assets/{file}", get(pages::asset))
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route(
            "/auth/tokens",
            get(auth::list_tokens).post(auth::create_token),
        )
        .route(
            "/auth/tokens/{id}",
            axum::routing::delete(auth::delete_token),
        )
        .route(
            "/admin/projects",
            get(admin::list_projects).post(admin::create_project),
        )
        .route(
            "/admin/projects/{owner}/{name}",
            get(admin::get_project)
                .put(admin::replace_project)
                .patch(admin::update_project)
                .delete(admin::delete_project),
        )
        .route(
            "/admin/projects/{owner}/{name}/endpoints",
            get(admin::list_endpoints).post(admin::create_endpoint),
        )
        .route(
            "/admin/projects/{owner}/{name}/endpoints/{id}",
            get(admin::get_endpoint)
                .put(admin::replace_endpoint)
                .patch(admin::patch_endpoint)
                .delete(admin::delete_endpoint),
        )
        .route(
            "/admin/projects/{owner}/{name}/backends",
            get(backends::list_backends),
        )
        .route(
            "/admin/projects/{owner}/{name}/script",
            get(script::get_script)
                .put(script::put_script)
                .delete(script::delete_script),
        )
        .route(
            "/admin/projects/{owner}/{name}/datasets",
            get(datasets::list_datasets),
        )
        .route(
            "/admin/projects/{owner}/{name}/keys",
            get(keys::list_keys).post(keys::create_key),
        )
        .route(
            "/admin/projects/{owner}/{name}/keys/{id}",
            axum::routing::delete(keys::delete_key),
        )
        .route(
            "/admin/projects/{owner}/{name}/datasets/{dataset}",
            get(datasets::get_dataset)
                .put(datasets::put_dataset)
                .delete(datasets::delete_dataset),
        )
        .route(
            "/admin/projects/{owner}/{name}/backends/{backend}",
            get(backends::get_backend)
                .put(backends::put_backend)
                .delete(backends::delete_backend),
        )
        .route(
            "/admin/projects/{owner}/{name}/changes",
            get(admin::list_changes),
        )
        .route("/admin/explain", get(explain::explain))
        .route(
            "/admin/projects/{owner}/{name}/journal",
            get(journal::list).delete(journal::clear),
        )
        .route(
            "/admin/projects/{owner}/{name}/stats",
            get(stats::project).delete(stats::reset_project),
        )
        .fallback(fallback)
        .with_state(state)
}

async fn root() -> impl IntoResponse {
    axum::Json(json!({
        "service": "switchyard",
        "version": env!("CARGO_PKG_VERSION"),
        "health": "/health",
        "auth": "/auth/register",
        "admin": "/admin/projects",
    }))
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// How long `/ready` waits for the store before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when the store answers a trivial query within [`READY_TIMEOUT`], else 503 with the
/// reason: what a load balancer or an orchestrator's readiness probe asks.
async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let reason = match tokio::time::timeout(READY_TIMEOUT, state.accounts.store().ping()).await {
        Ok(Ok(())) => return Ok(axum::Json(json!({"status": "ready"}))),
        Ok(Err(error)) => {
            // The cause stays in the log: 5xx messages do not show internals.
            tracing::warn!(%error, "store ping failed");
            "the store does not answer".to_owned()
        }
        Err(_) => format!(
            "the store did not answer within {} s",
            READY_TIMEOUT.as_secs()
        ),
    };
    tracing::warn!(%reason, "not ready");
    Err(ApiError::new(Code::StoreUnavailable, reason))
}

async fn fallback() -> ApiError {
    ApiError::not_found()
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UsernameTaken => ApiError::new(Code::UsernameTaken, error.to_string()),
            StoreError::ProjectExists => ApiError::new(Code::ProjectExists, error.to_string()),
            StoreError::RevisionConflict { .. } => {
                ApiError::new(Code::RevisionMismatch, error.to_string())
            }
            StoreError::NotFound => ApiError::new(Code::NotFound, error.to_string()),
            error if error.is_unavailable() => {
                tracing::error!(%error, "store unavailable");
                ApiError::new(
                    Code::StoreUnavailable,
                    "the store does not answer; try again",
                )
            }
            error => ApiError::internal(&error),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::InvalidCredentials => {
                ApiError::unauthorized(Code::InvalidCredentials, error.to_string())
            }
            AccountError::Busy(wait) => {
                ApiError::retry_after(Code::ServerBusy, error.to_string(), wait)
            }
            AccountError::TooManyAttempts(wait) => {
                ApiError::retry_after(Code::TooManyRequests, error.to_string(), wait)
            }
            AccountError::TokenQuota(_) => ApiError::new(Code::QuotaExceeded, error.to_string()),
            AccountError::Store(store) => store.into(),
            AccountError::Hash(_) => ApiError::internal(&error),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        let message = error.to_string();
        match error {
            ChangeError::ProjectNotFound(_) => ApiError::new(Code::ProjectNotFound, message),
            ChangeError::EndpointNotFound(_) => ApiError::new(Code::EndpointNotFound, message),
            ChangeError::EndpointExists(_) => ApiError::new(Code::EndpointExists, message),
            ChangeError::BackendNotFound(_) => ApiError::new(Code::BackendNotFound, message),
            ChangeError::ScriptNotFound => ApiError::new(Code::ScriptNotFound, message),
            ChangeError::DatasetNotFound(_) => ApiError::new(Code::DatasetNotFound, message),
            ChangeError::KeyNotFound(_) => ApiError::new(Code::KeyNotFound, message),
            ChangeError::KeyExists(_) => ApiError::new(Code::KeyExists, message),
            ChangeError::BackendInUse { .. } => ApiError::new(Code::BackendInUse, message),
            ChangeError::ProjectExists(_) => ApiError::new(Code::ProjectExists, message),
            ChangeError::RevisionMismatch { .. } => ApiError::new(Code::RevisionMismatch, message),
            ChangeError::Invalid(details) => ApiError::validation(details),
            ChangeError::RouteConflict(_) => ApiError::new(Code::RouteConflict, message),
            ChangeError::Broken(_) => ApiError::new(Code::ProjectBroken, message),
            ChangeError::Quota(_) => ApiError::new(Code::QuotaExceeded, message),
            ChangeError::Stale { .. } => {
                ApiError::new(Code::Conflict, format!("{message}; send the change again"))
            }
            ChangeError::Task(_) => ApiError::internal(&message),
            ChangeError::Store(store) => store.into(),
        }
    }
}
