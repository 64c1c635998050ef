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

#[tokio::test]
async fn the_request_id_wins_over_a_mocks_own_and_the_journal_shows_it_once() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_with(
        &alice,
        "ids",
        serde_json::json!([
            {"id": "own", "method": "GET", "path": "/own", "response": {"json": {"ok": true},
             "headers": {"x-request-id": "from-the-mock", "x-extra": ["1", "2"]}}},
            {"id": "plain", "method": "GET", "path": "/plain", "response": {"body": "hi"}},
        ]),
    )
    .await;
    for (path, sent) in [
        ("/alice/ids/own", Some("trace-7")),
        ("/alice/ids/plain", None),
    ] {
        let mut request = app.client.get(app.url(path));
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let ids: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
        assert_eq!(ids.len(), 1, "{path}: {ids:?}");
        let id = ids[0].to_str().unwrap().to_owned();
        match sent {
            Some(sent) => assert_eq!(id, sent),
            None => assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7),
        }
        if path.ends_with("/own") {
            let extra: Vec<_> = response.headers().get_all("x-extra").iter().collect();
            assert_eq!(extra, ["1", "2"]);
            assert_eq!(response.headers()["content-type"], "application/json");
        }
    }
    let journal = app
        .call(
            reqwest::Method::GET,
            "/admin/projects/alice/ids/journal",
            Some(&alice.token),
            None,
        )
        .await;
    let journal = json_body(journal).await;
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        let headers = entry["response"]["headers"].as_array().unwrap();
        assert!(
            headers.iter().all(|pair| pair[0] != "x-request-id"),
            "{headers:?}"
        );
        assert!(!headers.is_empty());
    }
    assert_eq!(entries[1]["request_id"], "trace-7");
}
