//! Script handlers: a project's JavaScript module (`PUT …/script`), its routes served beside
//! the project's endpoints, swapped atomically, sandboxed, with a `kv` store that survives
//! restarts.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, json_body, spawn_app, spawn_app_with};

/// Sends `source` as `user`'s project `project`'s script.
async fn put_script(app: &TestApp, user: &User, project: &str, source: &str) -> reqwest::Response {
    app.send(
        Method::PUT,
        &format!("/admin/projects/{}/{project}/script", user.name),
        Some(&user.token),
        &[("content-type", "application/javascript")],
        Some(source.as_bytes().to_vec()),
    )
    .await
}

/// Sets the script, asserting it was taken (201 or 200), and returns the answer.
async fn script_ok(app: &TestApp, user: &User, project: &str, source: &str) -> Value {
    let response = put_script(app, user, project, source).await;
    let status = response.status();
    let body = json_body(response).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{status}: {body}"
    );
    body
}

/// GET `path`: its status and JSON body.
async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).await;
    let status = response.status();
    (status, json_body(response).await)
}

#[tokio::test]
async fn an_uploaded_app_answers_at_once_and_a_new_version_replaces_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "site").await;
    let body = script_ok(&app, &alice, "site", r#"app.get("/", () => "index!");"#).await;
    assert_eq!(body["routes"][0]["method"], "GET");
    assert_eq!(body["routes"][0]["path"], "/");
    let (status, answer) = get_json(&app, "/alice/site/").await;
    assert_eq!((status, answer), (StatusCode::OK, json!("index!")));
    // The source comes back as it was sent.
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/site/script",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    assert_eq!(
        response.text().await.unwrap(),
        r#"app.get("/", () => "index!");"#
    );
    let response = put_script(&app, &alice, "site", r#"app.get("/", () => "v2");"#).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(get_json(&app, "/alice/site/").await.1, json!("v2"));
    // A project deleted and created again under the same name has only its new code.
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/site",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.project(&alice, "site").await;
    assert_eq!(
        app.get("/alice/site/").await.status(),
        StatusCode::NOT_FOUND
    );
    script_ok(&app, &alice, "site", r#"app.get("/other", () => 3);"#).await;
    assert_eq!(
        app.get("/alice/site/").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get_json(&app, "/alice/site/other").await.1, json!(3));
}

#[tokio::test]
async fn a_script_that_does_not_compile_is_refused_with_its_line_and_the_old_one_serves() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "site").await;
    script_ok(&app, &alice, "site", r#"app.get("/", () => "old");"#).await;
    let revision = app.revision(&alice, "alice/site").await;
    let broken = "app.get(\"/\", () => \"new\");\nthis is not javascript;\n";
    let response = put_script(&app, &alice, "site", broken).await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let detail = &body["error"]["details"][0];
    assert_eq!(detail["field"], "script", "{body}");
    assert!(
        detail["message"].as_str().unwrap().contains("line 2"),
        "{body}"
    );
    assert_eq!(get_json(&app, "/alice/site/").await.1, json!("old"));
    assert_eq!(app.revision(&alice, "alice/site").await, revision);
    // A route the script registers twice, and an import, are compile errors too.
    for source in [
        r#"app.get("/a", () => 1); app.get("/a", () => 2);"#,
        r#"import x from "fs"; app.get("/", () => x);"#,
    ] {
        let response = put_script(&app, &alice, "site", source).await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(get_json(&app, "/alice/site/").await.1, json!("old"));
}

#[tokio::test]
async fn script_routes_and_endpoints_may_not_share_a_method_and_path() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "site").await;
    let endpoint = json!({"method": "GET", "path": "/hello", "response": {"body": "mock"}});
    let response = app.post_endpoint(&alice, "alice/site", &endpoint).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = put_script(&app, &alice, "site", r#"app.get("/hello", () => 1);"#).await;
    let body = assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET /hello"),
        "{body}"
    );
    // Beside each other they both answer; an endpoint on a script route is refused too.
    script_ok(
        &app,
        &alice,
        "site",
        r#"app.post("/hello", () => "posted");"#,
    )
    .await;
    assert_eq!(app.get("/alice/site/hello").await.status(), StatusCode::OK);
    let response = app
        .call(Method::POST, "/alice/site/hello", None, None)
        .await;
    assert_eq!(json_body(response).await, json!("posted"));
    let clash = json!({"method": "POST", "path": "/hello", "response": {}});
    let response = app.post_endpoint(&alice, "alice/site", &clash).await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
}

#[tokio::test]
async fn handlers_get_the_request_and_choose_their_answer() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;
    let source = r#"
        app.get("/items/{id}", { summary: "One item" }, (req) => ({
            id: req.params.id, q: req.query.q, agent: req.headers["x-agent"], method: req.method,
            path: req.path, rid: req.id, auth: req.auth,
        }));
        app.post("/items", async (req) => {
            const item = await Promise.resolve({ name: req.body.name });
            return { status: 201, headers: { "x-made": "yes" }, json: item };
        });
        app.put("/text", (req) => ({ status: 200, body: "got " + req.body }));
        app.delete("/items/{id}", () => undefined);
        app.get("/early", () => ({ status: 101 }));
    "#;
    let body = script_ok(&app, &alice, "shop", source).await;
    assert_eq!(body["routes"][0]["summary"], "One item");
    let response = app
        .send(
            Method::GET,
            "/alice/shop/items/42?q=blue",
            None,
            &[("x-agent", "tester"), ("x-request-id", "req-1")],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let got = json_body(response).await;
    assert_eq!(
        got,
        json!({"id": "42", "q": "blue", "agent": "tester", "method": "GET",
               "path": "/items/42", "rid": "req-1", "auth": null})
    );
    let response = app
        .call(
            Method::POST,
            "/alice/shop/items",
            None,
            Some(&json!({"name": "lamp"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-made"], "yes");
    assert_eq!(json_body(response).await, json!({"name": "lamp"}));
    let response = app
        .send(
            Method::PUT,
            "/alice/shop/text",
            None,
            &[("content-type", "text/plain")],
            Some(b"words".to_vec()),
        )
        .await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "got words");
    let response = app
        .call(Method::DELETE, "/alice/shop/items/1", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // An informational status cannot end a request: the handler's mistake.
    let response = app.get("/alice/shop/early").await;
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "script_error").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("101"),
        "{body}"
    );
    // A JSON body that is not JSON is the caller's mistake.
    let response = app
        .send(
            Method::POST,
            "/alice/shop/items",
            None,
            &[("content-type", "application/json")],
            Some(b"{nope".to_vec()),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
}

/// A node whose scripts may run 200 ms of CPU per request and allocate 16 MiB.
async fn tight() -> TestApp {
    spawn_app_with(|config| {
        config.scripts.cpu_time = Duration::from_millis(200);
        config.scripts.memory_bytes = 16 * 1024 * 1024;
    })
    .await
}

#[tokio::test]
async fn a_runaway_handler_is_stopped_and_the_project_serves_its_next_request() {
    let app = tight().await;
    let alice = app.user("alice").await;
    app.project(&alice, "bad").await;
    app.project(&alice, "good").await;
    let source = r#"
        app.get("/loop", () => { for (;;) {} });
        app.get("/deep", () => { const f = (n) => f(n + 1) + 1; return f(0); });
        app.get("/bomb", () => { const a = []; for (;;) a.push("x".repeat(1 << 20) + a.length); });
        app.get("/throw", () => { throw new TypeError("no such item"); });
        app.get("/ok", () => "fine");
    "#;
    script_ok(&app, &alice, "bad", source).await;
    script_ok(&app, &alice, "good", r#"app.get("/", () => "good");"#).await;
    let started = Instant::now();
    let response = app.get("/alice/bad/loop").await;
    let body = assert_error(response, StatusCode::GATEWAY_TIMEOUT, "script_timeout").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("200 ms"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(get_json(&app, "/alice/bad/ok").await.1, json!("fine"));
    let response = app.get("/alice/bad/deep").await;
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "script_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("stack"),
        "{body}"
    );
    let response = app.get("/alice/bad/bomb").await;
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "script_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory"),
        "{body}"
    );
    let response = app.get("/alice/bad/throw").await;
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "script_error").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no such item"), "{body}");
    assert!(message.contains("line 5"), "{body}");
    assert_eq!(get_json(&app, "/alice/bad/ok").await.1, json!("fine"));
}

#[tokio::test]
async fn a_project_in_a_loop_does_not_hold_up_another() {
    // A long limit: the loop runs for 2 s, and the other project must answer meanwhile.
    let app = spawn_app_with(|config| config.scripts.cpu_time = Duration::from_secs(2)).await;
    let alice = app.user("alice").await;
    app.project(&alice, "bad").await;
    app.project(&alice, "good").await;
    script_ok(
        &app,
        &alice,
        "bad",
        r#"app.get("/loop", () => { for (;;) {} });"#,
    )
    .await;
    script_ok(&app, &alice, "good", r#"app.get("/", () => "good");"#).await;
    let looping = {
        let client = app.client.clone();
        let url = app.url("/alice/bad/loop");
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        assert_eq!(get_json(&app, "/alice/good/").await.1, json!("good"));
    }
    assert!(
        !looping.is_finished(),
        "the other project answered only after the loop was stopped"
    );
    assert_eq!(looping.await.unwrap().unwrap(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn kv_keeps_state_across_requests_and_restarts() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "todo").await;
    let source = r#"
        app.post("/todos/{id}", (req) => { kv.set("todo:" + req.params.id, req.body); return { status: 201, json: req.body }; });
        app.get("/todos", () => kv.list("todo:").map((e) => e.value));
        app.get("/todos/{id}", (req) => kv.get("todo:" + req.params.id) ?? { status: 404, json: { missing: req.params.id } });
        app.delete("/todos/{id}", (req) => ({ deleted: kv.delete("todo:" + req.params.id) }));
    "#;
    script_ok(&app, &alice, "todo", source).await;
    for (id, title) in [("1", "milk"), ("2", "bread")] {
        let response = app
            .call(
                Method::POST,
                &format!("/alice/todo/todos/{id}"),
                None,
                Some(&json!({"title": title})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let app = app.restart().await;
    assert_eq!(
        get_json(&app, "/alice/todo/todos").await.1,
        json!([{"title": "milk"}, {"title": "bread"}])
    );
    assert_eq!(
        get_json(&app, "/alice/todo/todos/2").await.1,
        json!({"title": "bread"})
    );
    let response = app
        .call(Method::DELETE, "/alice/todo/todos/1", None, None)
        .await;
    assert_eq!(json_body(response).await, json!({"deleted": true}));
    let (status, body) = get_json(&app, "/alice/todo/todos/1").await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"missing": "1"}))
    );
}

#[tokio::test]
async fn a_full_kv_store_is_a_clear_error() {
    let app = spawn_app_with(|config| config.scripts.kv_max_keys = 2).await;
    let alice = app.user("alice").await;
    app.project(&alice, "kv").await;
    script_ok(
        &app,
        &alice,
        "kv",
        r#"app.post("/{key}", (req) => { kv.set(req.params.key, 1); return "ok"; });"#,
    )
    .await;
    for key in ["a", "b"] {
        let response = app
            .call(Method::POST, &format!("/alice/kv/{key}"), None, None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app.call(Method::POST, "/alice/kv/c", None, None).await;
    let body = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "script_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 keys"),
        "{body}"
    );
}

#[tokio::test]
async fn a_script_is_removed_with_its_routes_and_may_come_as_a_form_file() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "site").await;
    let boundary = "XyZ";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.js\"\r\n\
         Content-Type: application/javascript\r\n\r\napp.get(\"/\", () => \"from a form\");\r\n--{boundary}--\r\n"
    );
    let response = app
        .send(
            Method::PUT,
            "/admin/projects/alice/site/script",
            Some(&alice.token),
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            )],
            Some(form.into_bytes()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_json(&app, "/alice/site/").await.1, json!("from a form"));
    let response = app
        .send(
            Method::PUT,
            "/admin/projects/alice/site/script",
            Some(&alice.token),
            &[("content-type", "image/png")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let path = "/admin/projects/alice/site/script";
    let response = app
        .call(Method::DELETE, path, Some(&alice.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/alice/site/").await.status(),
        StatusCode::NOT_FOUND
    );
    let response = app.call(Method::GET, path, Some(&alice.token), None).await;
    assert_error(response, StatusCode::NOT_FOUND, "script_not_found").await;
    let response = app
        .call(Method::DELETE, path, Some(&alice.token), None)
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "script_not_found").await;
    // Someone else's project's script is not theirs to read or set.
    let bob = app.user("bob").await;
    let response = app.call(Method::GET, path, Some(&bob.token), None).await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn requests_during_script_swaps_never_fail_and_each_sees_one_version() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "live").await;
    let version = |n: u32| format!(r#"app.get("/v", () => ({{ v: {n}, same: {n} }}));"#);
    script_ok(&app, &alice, "live", &version(0)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop) = (app.client.clone(), app.url("/alice/live/v"), stop.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client.get(&url).send().await.expect("request");
                assert_eq!(response.status(), StatusCode::OK);
                let body: Value = response.json().await.expect("json");
                // One version answers a request whole.
                assert_eq!(body["v"], body["same"], "{body}");
                seen.push(body["v"].as_u64().expect("a version"));
            }
            seen
        }));
    }
    for n in 1..=10 {
        script_ok(&app, &alice, "live", &version(n)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    for client in load {
        let seen = client.await.expect("no request failed");
        // Each client's versions only move forward.
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        answered += seen.len();
    }
    assert!(answered > 0);
    assert_eq!(
        get_json(&app, "/alice/live/v").await.1,
        json!({"v": 10, "same": 10})
    );
}

#[tokio::test]
async fn script_routes_are_counted_by_their_ids_and_keep_counting_across_versions() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "s").await;
    script_ok(
        &app,
        &alice,
        "s",
        r#"app.get("/a", () => 1); app.get("/boom", () => { throw new Error("x"); });"#,
    )
    .await;
    for _ in 0..3 {
        app.get("/alice/s/a").await;
    }
    app.get("/alice/s/boom").await;
    // A new version keeps the counts of the routes it keeps.
    script_ok(
        &app,
        &alice,
        "s",
        r#"app.get("/a", () => 2); app.get("/b", () => 3);"#,
    )
    .await;
    app.get("/alice/s/a").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/s/stats?by=endpoint",
            Some(&alice.token),
            None,
        )
        .await;
    let stats = json_body(response).await;
    let of = |id: &str| {
        stats["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {stats}"))
    };
    let counts = json!({"success": 4, "error": 0});
    assert_eq!(of("script:GET /a")["request_count"], counts, "{stats}");
    assert_eq!(of("script:GET /a")["path"], "/a");
    let none = json!({"success": 0, "error": 0});
    assert_eq!(of("script:GET /b")["request_count"], none);
    let project = json!({"success": 4, "error": 1});
    assert_eq!(stats["request_count"], project, "{stats}");
}

#[tokio::test]
async fn a_failing_handler_is_in_the_journal_with_its_error() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "s").await;
    script_ok(
        &app,
        &alice,
        "s",
        "app.get(\"/ok\", () => 1);\napp.get(\"/throw\", () => { throw new RangeError(\"out of stock\"); });",
    )
    .await;
    app.get("/alice/s/throw").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/s/journal",
            Some(&alice.token),
            None,
        )
        .await;
    let listed = json_body(response).await;
    let entry = &listed["entries"][0];
    assert_eq!(entry["endpoint"], "script:GET /throw", "{listed}");
    assert_eq!(entry["response"]["status"], 500);
    let body: Value =
        serde_json::from_str(entry["response"]["body"].as_str().expect("a body")).expect("json");
    assert_eq!(body["error"]["code"], "script_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("RangeError: out of stock"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[tokio::test]
async fn a_stored_script_that_no_longer_fits_breaks_its_project_until_it_is_replaced() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "s").await;
    let endpoint = json!({"method": "GET", "path": "/mock", "response": {"json": 1}});
    let response = app.post_endpoint(&alice, "alice/s", &endpoint).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Its top-level code keeps 3 MiB alive.
    let big = r#"const big = "x".repeat(3 << 20); app.get("/", () => big.length);"#;
    script_ok(&app, &alice, "s", big).await;
    assert_eq!(get_json(&app, "/alice/s/").await.1, json!(3 << 20));
    let mut app = app;
    app.config.scripts.memory_bytes = 2 * 1024 * 1024;
    let app = app.restart().await;
    // Sessions survive a restart.
    let response = app.get("/alice/s/mock").await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "project_unavailable",
    )
    .await;
    // A whole replacement does not publish a project whose script it cannot serve.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/s",
            Some(&alice.token),
            Some(&json!({"endpoints": [endpoint]})),
        )
        .await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "script", "{body}");
    // Another endpoint edit is refused as for any broken project; a new script repairs it.
    let response = app
        .post_endpoint(
            &alice,
            "alice/s",
            &json!({"method": "GET", "path": "/x", "response": {}}),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "project_broken").await;
    script_ok(&app, &alice, "s", r#"app.get("/", () => "small");"#).await;
    assert_eq!(get_json(&app, "/alice/s/").await.1, json!("small"));
    assert_eq!(get_json(&app, "/alice/s/mock").await.1, json!(1));
}

#[tokio::test]
async fn a_body_over_the_limit_never_reaches_the_handler() {
    let app = spawn_app_with(|config| config.body_limit = 16).await;
    let alice = app.user("alice").await;
    app.project(&alice, "s").await;
    script_ok(&app, &alice, "s", r#"app.post("/", (req) => req.body);"#).await;
    let small = app
        .send(
            Method::POST,
            "/alice/s/",
            None,
            &[],
            Some(b"short".to_vec()),
        )
        .await;
    assert_eq!(json_body(small).await, json!("short"));
    let large = app
        .send(Method::POST, "/alice/s/", None, &[], Some(vec![b'x'; 100]))
        .await;
    assert_error(large, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}
