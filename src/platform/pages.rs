//! The platform's docs pages: Swagger UI at `/docs` and Redoc at `/redoc` over the
//! platform's own document (`/openapi.json`), and the pages' embedded assets at
//! `/docs/assets/{file}`, which every project's pages load too (`openapi::pages`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::openapi::{Page, pages};

/// `GET /docs`.
pub(super) async fn swagger_ui(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, Page::SwaggerUi)
}

/// `GET /redoc`.
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

/// `GET /docs/assets/{file}`.
pub(super) async fn asset(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pages::asset_response(&file, &headers)
        .map(|r| r.map(axum::body::Body::new).into_response())
        .ok_or_else(ApiError::not_found)
}
