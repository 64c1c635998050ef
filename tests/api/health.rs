//! Liveness, readiness, the root document and request ids.

use reqwest::StatusCode;

use crate::helpers::{json_body, spawn_app};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        serde_json::json!({"status": "ok"})
    );
}

#[tokio::test]
async fn ready_answers_when_the_store_does() {
    let app = spawn_app().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["status"], "ready");
}

#[tokio::test]
async fn every_answer_carries_a_uuidv7_request_id() {
    let app = spawn_app().await;
    for path in ["/health", "/nobody/nothing", "/admin/projects"] {
        let response = app.get(path).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7, "{path}: {id}");
    }
}

#[tokio::test]
async fn an_incoming_request_id_is_kept_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let response = app
        .client
        .get(app.url("/nope/nope"))
        .header("x-request-id", "has spaces in it")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "has spaces in it");
    assert_eq!(json_body(response).await["error"]["request_id"], id);
}
