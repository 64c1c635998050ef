//! Changes under load: while clients hammer an endpoint, its response is changed 1,000
//! times. No request may fail, every answer must be a whole old or a whole new body, each
//! client must never see a version older than one it saw before, and after the last change
//! only the new body is served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{json_body, spawn_app};

const CHANGES: u64 = 1000;
const CLIENTS: usize = 4;

/// The body of version `v`: its length varies with the version, so a response that mixed
/// the head of one version with the body of another would not parse or not match.
fn body_of(version: u64) -> Value {
    json!({"version": version, "pad": format!("v{version}-").repeat((version % 37 + 1) as usize)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_changes_under_load_never_fail_or_mix_a_request() {
    let app = Arc::new(spawn_app().await);
    let alice = app.user("alice").await;
    assert_eq!(
        app.create_project(&alice, "swap").await.status(),
        StatusCode::CREATED
    );
    let id = app
        .add_json_endpoint(&alice, "alice/swap", "/hot", body_of(0))
        .await;
    let url = app.url("/alice/swap/hot");

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = reqwest::Client::new();
        let url = url.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut last_seen = 0;
            let mut served = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let response = client.get(&url).send().await.expect("no request fails");
                assert_eq!(response.status(), StatusCode::OK);
                let text = response.text().await.expect("a whole body");
                let body: Value = serde_json::from_str(&text).expect("a whole JSON body");
                let version = body["version"].as_u64().expect("a version");
                assert_eq!(body, body_of(version), "a body that is exactly one version");
                assert!(
                    version >= last_seen,
                    "went back from {last_seen} to {version}"
                );
                last_seen = version;
                served += 1;
            }
            served
        }));
    }

    let path = format!("/admin/projects/alice/swap/endpoints/{id}");
    for version in 1..=CHANGES {
        let definition =
            json!({"method": "GET", "path": "/hot", "response": {"json": body_of(version)}});
        let response = app
            .call(Method::PUT, &path, Some(&alice.token), Some(&definition))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "change {version}");
        // Acknowledged means served: the very next request sees this version.
        let seen = json_body(app.get("/alice/swap/hot").await).await;
        assert_eq!(seen, body_of(version));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.expect("client did not panic");
    }
    assert!(total > 0, "the clients made requests");

    for _ in 0..20 {
        assert_eq!(
            json_body(app.get("/alice/swap/hot").await).await,
            body_of(CHANGES)
        );
    }
    let project = json_body(
        app.call(
            Method::GET,
            "/admin/projects/alice/swap",
            Some(&alice.token),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        project["revision"],
        2 + CHANGES,
        "create, add, then one revision per change"
    );
}
