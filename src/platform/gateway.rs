//! The few paths a node in gateway mode answers itself: `/health`, `/ready`, `/stats`
//! (`DELETE` resets it) and `/metrics`. There are no accounts in gateway mode, so none of
//! them asks for a token: bind the gateway where only its operators reach these paths, or
//! put them behind the front proxy's own rules.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::observe::Telemetry;
use crate::routing::Routes;

#[derive(Clone)]
struct GatewayState {
    routes: Arc<Routes>,
    telemetry: Arc<Telemetry>,
}

/// The gateway's own routes.
pub fn router(routes: Arc<Routes>, telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/health", get(super::health))
        .route("/ready", get(ready))
        .route("/stats", get(stats).delete(reset))
        .route("/metrics", get(metrics))
        .fallback(super::fallback)
        .with_state(GatewayState { routes, telemetry })
}

/// A gateway serves once its file is loaded, which is before it listens: always ready.
async fn ready() -> impl IntoResponse {
    axum::Json(json!({"status": "ready"}))
}

async fn stats(State(state): State<GatewayState>) -> Response {
    let telemetry = &state.telemetry;
    axum::Json(telemetry.instance.report(telemetry.second())).into_response()
}

async fn reset(State(state): State<GatewayState>) -> StatusCode {
    state.telemetry.instance.reset();
    StatusCode::NO_CONTENT
}

async fn metrics(State(state): State<GatewayState>) -> Response {
    super::stats::openmetrics(crate::observe::metrics::render(
        crate::observe::metrics::Sources {
            table: arc_swap::Guard::into_inner(state.routes.load()),
            telemetry: state.telemetry.clone(),
            hashes_queued: 0,
        },
    ))
}
