//! The platform API: accounts (`/auth`), management (`/admin`) and health (`/health`,
//! `/ready`), served by axum on the reserved root paths, and its own OpenAPI document
//! (`/openapi.json`, `openapi`).
//!
//! This is the one route list of the platform; every route in it carries its
//! `#[utoipa::path]` (a test below checks that the two agree). Handlers return `Result<_, ApiError>`; the
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
mod folders;
mod gateway;
mod import;
mod journal;
mod keys;
pub mod openapi;
mod pages;
mod push;
mod script;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Serialize;

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

pub use folders::{assets_router as folder_assets_router, router as folders_router};
pub use gateway::router as gateway_router;

/// The platform's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi::openapi_json))
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
            "/admin/projects/{owner}/{name}/folder",
            axum::routing::put(push::push_folder),
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
            "/admin/projects/{owner}/{name}/import",
            post(import::import),
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
            "/admin/projects/{owner}/{name}/datasets/{dataset}/file",
            get(datasets::get_dataset_file),
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

/// What the root answers: the service, its version and where to start.
#[derive(Serialize, utoipa::ToSchema)]
struct RootAnswer {
    /// Always `switchyard`.
    service: &'static str,
    version: &'static str,
    health: &'static str,
    auth: &'static str,
    admin: &'static str,
    /// This API's OpenAPI document.
    openapi: &'static str,
}

/// The service's name and version, and where to start.
#[utoipa::path(
    get,
    path = "/",
    tag = "health",
    responses((status = 200, description = "The service and its version", body = RootAnswer)),
)]
async fn root() -> impl IntoResponse {
    axum::Json(RootAnswer {
        service: "switchyard",
        version: env!("CARGO_PKG_VERSION"),
        health: "/health",
        auth: "/auth/register",
        admin: "/admin/projects",
        openapi: "/openapi.json",
    })
}

/// A status answer: `ok` (alive) or `ready`.
#[derive(Serialize, utoipa::ToSchema)]
struct Status {
    status: &'static str,
}

/// Liveness: `200 {"status": "ok"}` while the process serves.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The node is alive",
        body = Status, example = json!({"status": "ok"}))),
)]
async fn health() -> impl IntoResponse {
    axum::Json(Status { status: "ok" })
}

/// How long `/ready` waits for the store before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness: 200 when the store answers, else 503.
///
/// 200 when the store answers a trivial query within [`READY_TIMEOUT`], else 503 with the
/// reason: what a load balancer or an orchestrator's readiness probe asks.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "The store answers", body = Status,
            example = json!({"status": "ready"})),
        (status = 503, response = openapi::ServiceUnavailable),
    ),
)]
async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let reason = match tokio::time::timeout(READY_TIMEOUT, state.accounts.store().ping()).await {
        Ok(Ok(())) => return Ok(axum::Json(Status { status: "ready" })),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The methods axum's `MethodRouter` takes by name.
    const METHODS: [&str; 8] = [
        "get", "post", "put", "patch", "delete", "head", "options", "trace",
    ];

    /// Every `(path, method)` the route list in `source` registers: the `router` function's
    /// `.route("path", get(…).post(…)…)` calls, read from the source, since axum cannot list
    /// its routes. Panics on anything it cannot read, rather than skip a route.
    fn routes_in(source: &str) -> BTreeSet<(String, String)> {
        let start = source
            .find("pub fn router(")
            .expect("`pub fn router(` in the source");
        let body = &source[start..];
        let body = &body[..body.find(".fallback(").expect("the router's `.fallback(`")];
        for other in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
            assert!(
                !body.contains(other),
                "router uses `{other}`: teach this test to read it, so its routes are checked"
            );
        }
        let mut routes = BTreeSet::new();
        let mut rest = body;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let call = &rest[..closing_paren(rest)];
            let call = call.trim_start();
            let path = call
                .strip_prefix('"')
                .and_then(|text| text.split_once('"'))
                .map(|(path, _)| path)
                .unwrap_or_else(|| panic!("a `.route(` without a literal path: {call}"));
            let handlers = &call[path.len() + 2..];
            let methods = methods_in(handlers);
            assert!(
                !methods.is_empty(),
                "no method in the route `{path}`: {handlers}"
            );
            for method in methods {
                routes.insert((path.to_owned(), method.to_owned()));
            }
        }
        routes
    }

    /// Where the call whose arguments `text` starts with ends (its closing parenthesis).
    fn closing_paren(text: &str) -> usize {
        let mut depth = 0usize;
        let mut quoted = false;
        for (at, c) in text.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted && depth == 0 => return at,
                ')' if !quoted => depth -= 1,
                _ => {}
            }
        }
        panic!("an unclosed `.route(`: {text}");
    }

    /// The HTTP methods named in a route's method router: `get(…)`, `.post(…)`,
    /// `axum::routing::delete(…)`.
    fn methods_in(text: &str) -> Vec<&'static str> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        for (at, _) in text.char_indices() {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            for method in METHODS {
                if text[at..].starts_with(method) && text[at + method.len()..].starts_with('(') {
                    found.push(method);
                }
            }
        }
        found
    }

    /// Every `(path, method)` the OpenAPI document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(super::openapi::document()).expect("the document is JSON");
        let mut operations = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if METHODS.contains(&method.as_str()) {
                    operations.insert((path.clone(), method.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else() {
        let routed = routes_in(include_str!("mod.rs"));
        assert!(
            routed.len() > 40,
            "only {} routes read from mod.rs",
            routed.len()
        );
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes without `#[utoipa::path]` in `openapi::PlatformApi` (add the attribute to \
             the handler and the handler to `paths(...)`): {undocumented:?}"
        );
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            unrouted.is_empty(),
            "documented operations that `router` does not route: {unrouted:?}"
        );
    }

    #[test]
    fn the_route_reader_sees_every_form_of_route() {
        let source = r#"
            pub fn router(state: AppState) -> Router {
                Router::new()
                    .route("/a", get(a))
                    .route(
                        "/b/{id}",
                        get(b::get_b)
                            .put(b::put_b)
                            .delete(b::delete_b),
                    )
                    .route("/c", axum::routing::delete(c::delete_c).post(c::post))
                    .fallback(fallback)
            }
        "#;
        let routes = routes_in(source);
        let expected: BTreeSet<(String, String)> = [
            ("/a", "get"),
            ("/b/{id}", "get"),
            ("/b/{id}", "put"),
            ("/b/{id}", "delete"),
            ("/c", "delete"),
            ("/c", "post"),
        ]
        .into_iter()
        .map(|(path, method)| (path.to_owned(), method.to_owned()))
        .collect();
        assert_eq!(routes, expected);
    }

    #[test]
    fn a_route_added_without_docs_is_caught() {
        let source = include_str!("mod.rs").replacen(
            ".fallback(fallback)",
            ".route(\"/new\", get(new).post(new))\n.fallback(fallback)",
            1,
        );
        let routed = routes_in(&source);
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert_eq!(
            undocumented,
            [
                &("/new".to_owned(), "get".to_owned()),
                &("/new".to_owned(), "post".to_owned())
            ]
        );
    }
}
