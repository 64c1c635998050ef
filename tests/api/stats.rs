//! Traffic stats: `/stats` for the instance, `/admin/projects/{o}/{p}/stats` per project and
//! per endpoint, their format, percentiles, resets, and stats that survive edits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, json_body, spawn_app};

/// A server with admin alice, her project `shop` holding `endpoints`, and the instance's
/// stats reset after that set-up, so that only what a test sends is counted.
async fn shop(endpoints: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_with(&alice, "shop", endpoints).await;
    let reset = app
        .call(Method::DELETE, "/stats", Some(&alice.token), None)
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    (app, alice)
}

fn mock(id: &str, method: &str, path: &str, status: u16) -> Value {
    json!({"id": id, "method": method, "path": path, "response": {"status": status, "json": {"id": id}}})
}

async fn stats(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let response = app.call(Method::GET, path, token, None).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    json_body(response).await
}

async fn hit(app: &TestApp, method: Method, path: &str, times: usize) {
    for _ in 0..times {
        app.call(method.clone(), path, None, None).await;
    }
}

fn counts(report: &Value) -> (u64, u64) {
    let counts = &report["requests_count"];
    assert_eq!(
        report["request_count"], *counts,
        "both keys carry the counts"
    );
    (
        counts["success"].as_u64().expect("success"),
        counts["error"].as_u64().expect("error"),
    )
}

fn endpoint<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no endpoint {id} in {report}"))
}

#[tokio::test]
async fn all_zeros_before_any_traffic() {
    let (app, alice) = shop(json!([mock("ok", "GET", "/ok", 200)])).await;
    let instance = stats(&app, "/stats", None).await;
    assert_eq!(counts(&instance), (0, 0));
    assert_eq!(
        instance["latency_ms"],
        json!({"average": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0})
    );
    assert_eq!(instance["recent"]["window_seconds"], 60);
    let project = stats(
        &app,
        "/admin/projects/alice/shop/stats?by=endpoint",
        Some(&alice.token),
    )
    .await;
    assert_eq!(counts(&project), (0, 0));
    assert_eq!(counts(endpoint(&project, "ok")), (0, 0));
    assert_eq!(project["project"], "/alice/shop");
}

#[tokio::test]
async fn a_known_mix_is_counted_exactly_and_stats_requests_are_not() {
    let (app, alice) = shop(json!([
        mock("ok", "GET", "/ok", 200),
        mock("moved", "GET", "/moved", 302),
        mock("teapot", "GET", "/teapot", 418),
        mock("boom", "GET", "/boom", 500),
    ]))
    .await;
    hit(&app, Method::GET, "/alice/shop/ok", 7).await;
    hit(&app, Method::GET, "/alice/shop/moved", 2).await;
    hit(&app, Method::GET, "/alice/shop/teapot", 3).await;
    hit(&app, Method::GET, "/alice/shop/boom", 4).await;
    hit(&app, Method::GET, "/alice/shop/nowhere", 5).await; // 404 inside the project
    hit(&app, Method::POST, "/alice/shop/ok", 1).await; // 405
    hit(&app, Method::GET, "/nobody/nothing", 2).await; // 404, no project
    // Watching does not count.
    for _ in 0..3 {
        stats(&app, "/stats", None).await;
        app.get("/health").await;
    }

    let instance = stats(&app, "/stats", None).await;
    assert_eq!(counts(&instance), (9, 15), "{instance}");
    assert_eq!(
        instance["status_classes"],
        json!({"1xx": 0, "2xx": 7, "3xx": 2, "4xx": 11, "5xx": 4})
    );
    assert_eq!(counts(&instance["recent"]), (9, 15));

    let project = stats(
        &app,
        "/admin/projects/alice/shop/stats?by=endpoint",
        Some(&alice.token),
    )
    .await;
    // The project saw all but the two requests to no project.
    assert_eq!(counts(&project), (9, 13), "{project}");
    assert_eq!(counts(endpoint(&project, "ok")), (7, 0));
    assert_eq!(counts(endpoint(&project, "moved")), (2, 0));
    assert_eq!(counts(endpoint(&project, "teapot")), (0, 3));
    assert_eq!(counts(endpoint(&project, "boom")), (0, 4));
    assert_eq!(endpoint(&project, "boom")["path"], "/boom");
    assert_eq!(endpoint(&project, "boom")["method"], "GET");

    // Without `by`, no per-endpoint list.
    let plain = stats(&app, "/admin/projects/alice/shop/stats", Some(&alice.token)).await;
    assert!(plain.get("endpoints").is_none());
    assert_eq!(counts(&plain), (9, 13));
}

#[tokio::test]
async fn percentiles_follow_known_latencies() {
    let (app, alice) = shop(json!([
        {"id": "fast", "method": "GET", "path": "/fast", "response": {"body": "f"}},
        {"id": "slow", "method": "GET", "path": "/slow", "response": {"body": "s", "delay_ms": 120}},
    ]))
    .await;
    // 90 fast answers and 10 slow ones: the median is fast, p95 and p99 are slow.
    hit(&app, Method::GET, "/alice/shop/fast", 90).await;
    hit(&app, Method::GET, "/alice/shop/slow", 10).await;
    let project = stats(
        &app,
        "/admin/projects/alice/shop/stats?by=endpoint",
        Some(&alice.token),
    )
    .await;
    let latency = &project["latency_ms"];
    let ms = |key: &str| latency[key].as_f64().expect(key);
    assert!(ms("p50") < 60.0, "{latency}");
    for key in ["p95", "p99", "max"] {
        // Never below the delay; the slack above it is the server's own time.
        assert!((120.0..400.0).contains(&ms(key)), "{key}: {latency}");
    }
    let average = ms("average");
    assert!((12.0..60.0).contains(&average), "{latency}");
    let slow = &endpoint(&project, "slow")["latency_ms"];
    assert!(slow["p50"].as_f64().unwrap() >= 120.0, "{slow}");
}

#[tokio::test]
async fn an_endpoint_keeps_its_stats_across_edits_that_keep_it() {
    let (app, alice) = shop(json!([
        mock("ok", "GET", "/ok", 200),
        mock("other", "GET", "/other", 200),
    ]))
    .await;
    hit(&app, Method::GET, "/alice/shop/ok", 5).await;
    let token = Some(alice.token.as_str());
    // An unrelated edit, an added endpoint, a new response for `ok` itself, a removed
    // endpoint (the router is rebuilt), and a whole-project PUT that keeps `ok`.
    let edits: Vec<(Method, &str, Value)> = vec![
        (
            Method::PATCH,
            "/admin/projects/alice/shop",
            json!({"description": "changed"}),
        ),
        (
            Method::POST,
            "/admin/projects/alice/shop/endpoints",
            mock("new", "GET", "/new", 201),
        ),
        (
            Method::PUT,
            "/admin/projects/alice/shop/endpoints/ok",
            mock("ok", "GET", "/ok", 202),
        ),
        (
            Method::DELETE,
            "/admin/projects/alice/shop/endpoints/other",
            Value::Null,
        ),
        (
            Method::PUT,
            "/admin/projects/alice/shop",
            json!({"endpoints": [mock("ok", "GET", "/ok", 203), mock("new", "GET", "/new", 201)]}),
        ),
    ];
    for (method, path, body) in edits {
        let body = (!body.is_null()).then_some(&body);
        let response = app.call(method.clone(), path, token, body).await;
        assert!(response.status().is_success(), "{method} {path}");
        hit(&app, Method::GET, "/alice/shop/ok", 1).await;
    }
    let project = stats(&app, "/admin/projects/alice/shop/stats?by=endpoint", token).await;
    assert_eq!(counts(endpoint(&project, "ok")), (10, 0), "{project}");
    assert_eq!(counts(&project), (10, 0));
    assert_eq!(project["status_classes"]["2xx"], 10);
}

#[tokio::test]
async fn resets_are_for_owners_and_admins() {
    let (app, alice) = shop(json!([mock("ok", "GET", "/ok", 200)])).await;
    let bob = app.user("bob").await;
    hit(&app, Method::GET, "/alice/shop/ok", 3).await;
    let path = "/admin/projects/alice/shop/stats";
    assert_error(
        app.call(Method::GET, path, Some(&bob.token), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(Method::DELETE, path, Some(&bob.token), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(Method::DELETE, "/stats", Some(&bob.token), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(Method::DELETE, "/stats", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        app.call(
            Method::GET,
            &format!("{path}?by=path"),
            Some(&alice.token),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let response = app
        .call(Method::DELETE, path, Some(&alice.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let project = stats(&app, &format!("{path}?by=endpoint"), Some(&alice.token)).await;
    assert_eq!(counts(&project), (0, 0));
    assert_eq!(counts(endpoint(&project, "ok")), (0, 0));
    // The instance keeps counting; only an admin resets it.
    assert!(counts(&stats(&app, "/stats", None).await).0 >= 3);
}
