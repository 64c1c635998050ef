//! The platform's docs pages: Swagger UI at `/docs` and Redoc at `/redoc` over the
//! platform's own document (`/openapi.json`), and the pages' embedded assets at
//! `/docs/assets/{file}`, which every project's pages load too (`openapi::pages`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::openapi::{Page, pages};

/// Swagger UI over the platform's document.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    params(("x-forwarded-prefix" = Option<String>, Header,
            description = "The path a proxy in front serves the platform under")),
    responses((status = 200, description = "An HTML page", content_type = "text/html")),
)]
pub(super) async fn swagger_ui(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, Page::SwaggerUi)
}

/// Redoc over the platform's document.
#[utoipa::path(
    get,
    path = "/redoc",
    tag = "docs",
    params(("x-forwarded-prefix" = Option<String>, Header,
            description = "The path a proxy in front serves the platform under")),
    responses((status = 200, description = "An HTML page", content_type = "text/html")),
)]
pub(super) async fn redoc(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, Page::Redoc)
}

fn page(state: &AppState, headers: &HeaderMap, which: Page) -> Response {
    let prefix = pages::forwarded_prefix(headers);
    pages::page(
        which,
        "Switchyard platform API",
        "/openapi.json",
        prefix,
        &state.config.pages,
    )
    .map(axum::body::Body::new)
    .into_response()
}

/// A script or style of the docs pages, built into the binary.
///
/// `swagger-ui-bundle.js`, `swagger-ui.css` or `redoc.standalone.js`.
#[utoipa::path(
    get,
    path = "/docs/assets/{file}",
    tag = "docs",
    params(("file" = String, Path, description = "The asset's file name"),
           ("if-none-match" = Option<String>, Header, description = "An `ETag` seen before")),
    responses(
        (status = 200, description = "The asset", content_type = "text/javascript",
            headers(("etag" = String, description = "The asset's version"))),
        (status = 304, description = "Unchanged since the `ETag` given"),
        (status = 404, response = super::openapi::NotFound),
    ),
)]
pub(super) async fn asset(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pages::asset_response(&file, &headers)
        .map(|r| r.map(axum::body::Body::new).into_response())
        .ok_or_else(ApiError::not_found)
}
