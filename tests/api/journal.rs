//! The request journal: what each request sent and got, the cap, truncation, filters,
//! counts, near misses of 404s, clearing, and survival across edits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, json_body, spawn_app_with};

async fn shop(size: usize, body: usize) -> (TestApp, User) {
    let app = spawn_app_with(|c| {
        c.journal_size = size;
        c.journal_body = body;
    })
    .await;
    let alice = app.user("alice").await;
    app.create_project_with(
        &alice,
        "shop",
        json!([
                {"id": "item", "method": "GET", "path": "/items/{id}", "response": {"json": {"ok": true}}},
                {"id": "order", "method": "POST", "path": "/orders", "response": {"status": 201, "body": "created"}},
            ]),
    )
    .await;
    (app, alice)
}

async fn journal(app: &TestApp, user: &User, query: &str) -> Value {
    app.journal(user, "alice/shop", query).await
}

#[tokio::test]
async fn an_entry_shows_what_was_sent_and_what_was_answered() {
    let (app, alice) = shop(1000, 16 * 1024).await;
    let client = reqwest::Client::new();
    let answer = client
        .post(app.url("/alice/shop/orders?source=test&token=SECRET-Q"))
        .header("x-request-id", "order-1")
        .header("authorization", "Bearer SECRET-TOKEN")
        .header("x-api-key", "SECRET-KEY")
        .header("content-type", "application/json")
        .body(r#"{"sku":"A-1","qty":2}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 201);

    let listed = journal(&app, &alice, "").await;
    let text = listed.to_string();
    for secret in ["SECRET-TOKEN", "SECRET-KEY", "SECRET-Q"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let entry = &listed["entries"][0];
    assert_eq!(entry["request_id"], "order-1");
    assert_eq!(entry["endpoint"], "order");
    assert_eq!(entry["request"]["method"], "POST");
    assert_eq!(entry["request"]["path"], "/orders");
    assert_eq!(entry["request"]["query"], "source=test&token=[redacted]");
    assert_eq!(entry["request"]["body"], r#"{"sku":"A-1","qty":2}"#);
    assert_eq!(entry["request"]["body_truncated"], false);
    let headers = entry["request"]["headers"].as_array().expect("headers");
    assert!(headers.contains(&json!(["authorization", "[redacted]"])));
    assert!(headers.contains(&json!(["content-type", "application/json"])));
    assert_eq!(entry["response"]["status"], 201);
    assert_eq!(entry["response"]["body"], "created");
    assert!(entry["latency_ms"].as_f64().expect("latency") > 0.0);
    assert!(entry["time"].as_str().expect("time").ends_with('Z'));
}

#[tokio::test]
async fn the_journal_keeps_exactly_the_last_n() {
    let (app, alice) = shop(20, 1024).await;
    for i in 0..120 {
        app.get(&format!("/alice/shop/items/{i}")).await;
    }
    let listed = journal(&app, &alice, "?limit=1000").await;
    let paths: Vec<&str> = listed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["request"]["path"].as_str().expect("path"))
        .collect();
    let expected: Vec<String> = (100..120).rev().map(|i| format!("/items/{i}")).collect();
    assert_eq!(paths, expected, "newest first, the last 20 only");
    assert_eq!(listed["capacity"], 20);
}

#[tokio::test]
async fn bodies_are_cut_at_the_capture_size_and_marked() {
    let (app, alice) = shop(100, 16).await;
    let body = "x".repeat(100);
    app.call(Method::POST, "/alice/shop/orders", None, Some(&json!(body)))
        .await;
    let listed = journal(&app, &alice, "").await;
    let request = &listed["entries"][0]["request"];
    assert_eq!(request["body_truncated"], true);
    assert_eq!(
        request["body_length"], 102,
        "the JSON string with its quotes"
    );
    assert_eq!(request["body"].as_str().expect("body").len(), 16);
}

#[tokio::test]
async fn filters_and_counts_answer_how_many_requests_like_this_arrived() {
    let (app, alice) = shop(1000, 1024).await;
    for i in 0..3 {
        app.get(&format!("/alice/shop/items/{i}")).await;
    }
    app.call(Method::POST, "/alice/shop/orders", None, Some(&json!({})))
        .await;
    app.get("/alice/shop/item/9").await; // 404
    let count = |query: &'static str| {
        let app = &app;
        let alice = &alice;
        async move { journal(app, alice, query).await["count"].clone() }
    };
    assert_eq!(count("?count=true").await, 5);
    assert_eq!(count("?count=true&method=get").await, 4);
    assert_eq!(count("?count=true&status=404").await, 1);
    assert_eq!(count("?count=true&status=2xx").await, 4);
    assert_eq!(count("?count=true&path_prefix=/items/").await, 3);
    assert_eq!(count("?count=true&since=2000-01-01T00:00:00Z").await, 5);
    assert_eq!(count("?count=true&since=4102444800000").await, 0);

    let missed = journal(&app, &alice, "?status=404").await;
    let entry = &missed["entries"][0];
    assert!(entry.get("endpoint").is_none());
    let near = &entry["near_misses"][0];
    assert_eq!(near["id"], "item");
    assert_eq!(near["segment"], 1);
    assert_eq!(near["why"], "expected `items`, got `item`");

    let one = journal(&app, &alice, "?limit=1").await;
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    assert_eq!(one["matched"], 5);

    for bad in ["?status=6xx", "?since=yesterday", "?limit=x", "?colour=red"] {
        let response = app
            .call(
                Method::GET,
                &format!("/admin/projects/alice/shop/journal{bad}"),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn clearing_edits_and_owners() {
    let (app, alice) = shop(1000, 1024).await;
    let bob = app.user("bob").await;
    app.get("/alice/shop/items/1").await;
    // An edit keeps the journal.
    let patched = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&json!({"description": "edited"})),
        )
        .await;
    assert!(patched.status().is_success());
    app.get("/alice/shop/items/2").await;
    assert_eq!(journal(&app, &alice, "?count=true").await["count"], 2);

    let path = "/admin/projects/alice/shop/journal";
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
    let cleared = app
        .call(Method::DELETE, path, Some(&alice.token), None)
        .await;
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(journal(&app, &alice, "?count=true").await["count"], 0);
}

#[tokio::test]
async fn a_journal_size_of_zero_keeps_nothing() {
    let (app, alice) = shop(0, 1024).await;
    app.get("/alice/shop/items/1").await;
    assert_eq!(journal(&app, &alice, "?count=true").await["count"], 0);
}

async fn patch(app: &TestApp, user: &User, body: Value) -> reqwest::Response {
    app.call(
        Method::PATCH,
        "/admin/projects/alice/shop",
        Some(&user.token),
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn each_project_sets_its_own_journal_size_and_it_survives_a_restart() {
    let (app, alice) = shop(1000, 1024).await;
    let resized = patch(&app, &alice, json!({"journal_size": 5})).await;
    assert_eq!(resized.status(), StatusCode::OK);
    assert_eq!(json_body(resized).await["journal_size"], 5);
    for i in 0..8 {
        app.get(&format!("/alice/shop/items/{i}")).await;
    }
    let listed = journal(&app, &alice, "").await;
    assert_eq!(listed["capacity"], 5);
    assert_eq!(listed["entries"].as_array().unwrap().len(), 5);
    assert_eq!(listed["entries"][0]["request"]["path"], "/items/7");

    // Kept by the store: a restarted node still keeps 5.
    let app = app.restart().await;
    let project = app.read_project(&alice, "alice/shop").await;
    assert_eq!(project["journal_size"], 5);
    for i in 0..7 {
        app.get(&format!("/alice/shop/items/{i}")).await;
    }
    assert_eq!(journal(&app, &alice, "?count=true").await["count"], 5);

    // 0 switches the journal off; null goes back to the node's default.
    assert!(
        patch(&app, &alice, json!({"journal_size": 0}))
            .await
            .status()
            .is_success()
    );
    app.get("/alice/shop/items/1").await;
    let off = journal(&app, &alice, "").await;
    assert_eq!(off["capacity"], 0);
    assert_eq!(off["matched"], 0);
    let back = patch(&app, &alice, json!({"journal_size": null})).await;
    assert_eq!(json_body(back).await["journal_size"], Value::Null);
    app.get("/alice/shop/items/1").await;
    let default = journal(&app, &alice, "").await;
    assert_eq!(default["capacity"], 1000);
    assert_eq!(default["matched"], 1);

    let too_big = patch(&app, &alice, json!({"journal_size": 100_001})).await;
    let body = assert_error(
        too_big,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "journal_size");
}

#[tokio::test]
async fn response_headers_are_the_ones_sent_the_mocks_or_an_errors() {
    let app = spawn_app_with(|c| c.body_limit = 1024).await;
    let alice = app.user("alice").await;
    app.create_project_with(
        &alice,
        "h",
        json!([
            {"id": "own", "method": "POST", "path": "/own", "response": {"body": "hi",
             "headers": {"x-extra": ["1", "2"], "x-request-id": "mock's"}}},
        ]),
    )
    .await;
    let client = reqwest::Client::new();
    let ok = client
        .post(app.url("/alice/h/own"))
        .body("small")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = client
        .post(app.url("/alice/h/own"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let listed = app
        .call(
            Method::GET,
            "/admin/projects/alice/h/journal",
            Some(&alice.token),
            None,
        )
        .await;
    let listed = json_body(listed).await;
    let headers = |i: usize| listed["entries"][i]["response"]["headers"].clone();
    // Newest first: the 413, then the mock's answer.
    assert_eq!(listed["entries"][0]["response"]["status"], 413);
    assert_eq!(headers(0), json!([["content-type", "application/json"]]));
    assert_eq!(
        headers(1),
        json!([
            ["x-extra", "1"],
            ["x-extra", "2"],
            ["content-type", "text/plain; charset=utf-8"]
        ])
    );
}
