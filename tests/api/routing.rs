//! What a project serves: templates, 404/405, HEAD, trailing slashes and mock responses.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, header, json_body, spawn_app};

/// A server with admin alice and her project `demo` holding `endpoints`.
async fn serving(endpoints: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "endpoints": endpoints})),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );
    (app, alice)
}

fn route(method: &str, path: &str, body: &str) -> Value {
    json!({"method": method, "path": path, "response": {"body": body}})
}

async fn send(app: &TestApp, method: Method, path: &str) -> (StatusCode, String) {
    let response = app.call(method, path, None, None).await;
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_mount_with_and_without_a_slash_reaches_the_root_route() {
    let (app, _) = serving(json!([route("GET", "/", "root"), route("GET", "/x", "x")])).await;
    for path in ["/alice/demo", "/alice/demo/"] {
        assert_eq!(
            app.fetch(path).await,
            (StatusCode::OK, "root".to_owned()),
            "{path}"
        );
    }
    assert_eq!(app.fetch("/alice/demo/x").await.1, "x");
}

#[tokio::test]
async fn without_a_root_route_the_mount_is_404() {
    let (app, _) = serving(json!([route("GET", "/x", "x")])).await;
    for path in ["/alice/demo", "/alice/demo/"] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404_with_the_request_id() {
    let (app, _) = serving(json!([route("GET", "/known", "k")])).await;
    for path in [
        "/alice/demo/unknown",
        "/alice/demo/known/deeper",
        "/alice/demo/KNOWN",
        "/alice/other/known",
        "/nobody/demo/known",
        "/alice",
    ] {
        let response = app.get(path).await;
        assert!(
            header(&response, "content-type").starts_with("application/json"),
            "{path}"
        );
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let (app, _) = serving(json!([
        route("GET", "/things", "list"),
        route("POST", "/things", "made"),
    ]))
    .await;
    let response = app
        .call(Method::DELETE, "/alice/demo/things", None, None)
        .await;
    assert_eq!(header(&response, "allow"), "GET, HEAD, POST");
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let (status, _) = send(&app, Method::PUT, "/alice/demo/things").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn head_works_wherever_get_does() {
    let (app, _) = serving(json!([
        {"method": "GET", "path": "/doc", "response": {"json": {"a": [1, 2, 3]}, "headers": {"x-tag": "t"}}},
        route("GET", "/items/{id}", "item"),
    ]))
    .await;
    for path in ["/alice/demo/doc", "/alice/demo/items/9"] {
        let get = app.get(path).await;
        let get_length = header(&get, "content-length");
        let get_type = header(&get, "content-type");
        let get_body = get.text().await.expect("body");
        assert_eq!(get_length, get_body.len().to_string());
        let head = app.call(Method::HEAD, path, None, None).await;
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&head, "content-length"), get_length, "{path}");
        assert_eq!(header(&head, "content-type"), get_type);
        assert_eq!(head.text().await.expect("body"), "");
    }
    let head = app.call(Method::HEAD, "/alice/demo/doc", None, None).await;
    assert_eq!(header(&head, "x-tag"), "t");
}

#[tokio::test]
async fn any_matches_every_method() {
    let (app, _) = serving(json!([route("ANY", "/all", "any")])).await;
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::from_bytes(b"PURGE").expect("method"),
    ] {
        let (status, body) = send(&app, method.clone(), "/alice/demo/all").await;
        assert_eq!(status, StatusCode::OK, "{method}");
        if method != Method::HEAD {
            assert_eq!(body, "any", "{method}");
        }
    }
}

#[tokio::test]
async fn an_exact_method_beats_any() {
    let (app, _) = serving(json!([
        route("ANY", "/x", "any"),
        route("POST", "/x", "post"),
    ]))
    .await;
    assert_eq!(send(&app, Method::POST, "/alice/demo/x").await.1, "post");
    assert_eq!(send(&app, Method::GET, "/alice/demo/x").await.1, "any");
    assert_eq!(send(&app, Method::DELETE, "/alice/demo/x").await.1, "any");
}

#[tokio::test]
async fn a_custom_method_is_routed() {
    let (app, _) = serving(json!([route("PURGE", "/cache", "purged")])).await;
    let purge = Method::from_bytes(b"PURGE").expect("method");
    assert_eq!(
        send(&app, purge, "/alice/demo/cache").await,
        (StatusCode::OK, "purged".to_owned())
    );
    let response = app.get("/alice/demo/cache").await;
    assert_eq!(header(&response, "allow"), "PURGE");
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_parameter_matches_one_whole_segment() {
    let (app, _) = serving(json!([route("GET", "/items/{id}", "item")])).await;
    for path in [
        "/alice/demo/items/42",
        "/alice/demo/items/a-b.c",
        "/alice/demo/items/42?x=1",
    ] {
        assert_eq!(
            app.fetch(path).await,
            (StatusCode::OK, "item".to_owned()),
            "{path}"
        );
    }
    for path in [
        "/alice/demo/items",
        "/alice/demo/items/",
        "/alice/demo/items/42/more",
    ] {
        assert_eq!(app.fetch(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_parameter_may_share_a_segment_with_text() {
    let (app, _) = serving(json!([
        route("GET", "/lists.{format}.json", "list"),
        route("POST", "/v1/{topic}:publish", "published"),
        route("GET", "/files/{name}.{ext}", "file"),
    ]))
    .await;
    assert_eq!(app.fetch("/alice/demo/lists.csv.json").await.1, "list");
    assert_eq!(app.fetch("/alice/demo/lists.a.b.json").await.1, "list");
    assert_eq!(
        app.fetch("/alice/demo/lists.json").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.fetch("/alice/demo/lists.csv").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::POST, "/alice/demo/v1/news:publish").await,
        (StatusCode::OK, "published".to_owned())
    );
    assert_eq!(
        send(&app, Method::POST, "/alice/demo/v1/news").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::POST, "/alice/demo/v1/:publish").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.fetch("/alice/demo/files/report.pdf").await.1, "file");
}

#[tokio::test]
async fn a_tail_matches_the_rest_of_the_path() {
    let (app, _) = serving(json!([route("GET", "/files/{*rest}", "tail")])).await;
    for path in [
        "/alice/demo/files/a",
        "/alice/demo/files/a/b/c",
        "/alice/demo/files/",
        "/alice/demo/files/a/",
    ] {
        assert_eq!(
            app.fetch(path).await,
            (StatusCode::OK, "tail".to_owned()),
            "{path}"
        );
    }
    assert_eq!(
        app.fetch("/alice/demo/files").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.fetch("/alice/demo/other/a").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn static_segments_beat_parameters() {
    let (app, _) = serving(json!([
        route("GET", "/items/{id}", "param"),
        route("GET", "/items/new", "static"),
        route("GET", "/items/{*rest}", "tail"),
    ]))
    .await;
    assert_eq!(app.fetch("/alice/demo/items/new").await.1, "static");
    assert_eq!(app.fetch("/alice/demo/items/old").await.1, "param");
    assert_eq!(app.fetch("/alice/demo/items/new/x").await.1, "tail");
}

#[tokio::test]
async fn a_json_body_is_served_byte_exact() {
    let document =
        json!({"zebra": 1, "apple": [true, null, 1.5], "nested": {"ü": "ß", "q": "\"quoted\""}});
    let (app, _) = serving(json!([
        {"method": "GET", "path": "/doc", "response": {"json": document}},
        {"method": "GET", "path": "/null", "response": {"json": null}},
    ]))
    .await;
    let response = app.get("/alice/demo/doc").await;
    assert_eq!(header(&response, "content-type"), "application/json");
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        std::str::from_utf8(&bytes).expect("utf-8"),
        r#"{"zebra":1,"apple":[true,null,1.5],"nested":{"ü":"ß","q":"\"quoted\""}}"#,
        "key order and content are kept"
    );
    let response = app.get("/alice/demo/null").await;
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(response.text().await.expect("body"), "null");
}

#[tokio::test]
async fn a_text_body_is_text_plain() {
    let (app, _) = serving(json!([route("GET", "/t", "hello\nworld ✓")])).await;
    let response = app.get("/alice/demo/t").await;
    assert_eq!(
        header(&response, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.expect("body"), "hello\nworld ✓");
}

#[tokio::test]
async fn a_base64_body_is_sent_as_its_bytes() {
    // 00 01 02 ff fe 7f
    let (app, _) = serving(json!([
        {"method": "GET", "path": "/bin", "response": {"body_base64": "AAEC//5/"}}
    ]))
    .await;
    let response = app.get("/alice/demo/bin").await;
    assert_eq!(
        header(&response, "content-type"),
        "application/octet-stream"
    );
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes.as_ref(), [0x00, 0x01, 0x02, 0xff, 0xfe, 0x7f]);
}

#[tokio::test]
async fn custom_headers_are_sent_and_may_repeat() {
    let (app, _) = serving(json!([{"method": "GET", "path": "/h", "response": {
        "body": "x",
        "headers": {"x-one": "1", "Set-Cookie": ["a=1", "b=2"], "cache-control": "max-age=60"}
    }}]))
    .await;
    let response = app.get("/alice/demo/h").await;
    assert_eq!(header(&response, "x-one"), "1");
    assert_eq!(header(&response, "cache-control"), "max-age=60");
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert!(response.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn a_user_content_type_overrides_the_default() {
    let (app, _) = serving(json!([
        {"method": "GET", "path": "/j", "response": {
            "json": {"data": []}, "headers": {"Content-Type": "application/vnd.api+json"}}},
        {"method": "GET", "path": "/x", "response": {
            "body": "<a/>", "headers": {"content-type": "application/xml"}}},
    ]))
    .await;
    let response = app.get("/alice/demo/j").await;
    let types: Vec<_> = response.headers().get_all("content-type").iter().collect();
    assert_eq!(types, ["application/vnd.api+json"], "one content type only");
    assert_eq!(response.text().await.expect("body"), r#"{"data":[]}"#);
    let response = app.get("/alice/demo/x").await;
    assert_eq!(header(&response, "content-type"), "application/xml");
}

#[tokio::test]
async fn the_status_is_honoured() {
    let (app, _) = serving(json!([
        {"method": "POST", "path": "/made", "response": {"status": 201, "json": {"id": 1}}},
        {"method": "GET", "path": "/teapot", "response": {"status": 418, "body": "short and stout"}},
        {"method": "GET", "path": "/down", "response": {"status": 503}},
    ]))
    .await;
    assert_eq!(
        send(&app, Method::POST, "/alice/demo/made").await,
        (StatusCode::CREATED, r#"{"id":1}"#.to_owned())
    );
    assert_eq!(
        app.fetch("/alice/demo/teapot").await,
        (StatusCode::IM_A_TEAPOT, "short and stout".to_owned())
    );
    assert_eq!(
        app.fetch("/alice/demo/down").await,
        (StatusCode::SERVICE_UNAVAILABLE, String::new())
    );
}

#[tokio::test]
async fn delay_ms_delays_the_answer() {
    let (app, _) = serving(json!([
        {"method": "GET", "path": "/slow", "response": {"body": "late", "delay_ms": 300}}
    ]))
    .await;
    let started = Instant::now();
    let (status, body) = app.fetch("/alice/demo/slow").await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((status, body.as_str()), (StatusCode::OK, "late"));
}

#[tokio::test]
async fn a_request_body_to_a_mock_is_ignored() {
    let (app, _) = serving(json!([route("POST", "/in", "ok")])).await;
    for _ in 0..3 {
        let response = app
            .call(
                Method::POST,
                "/alice/demo/in",
                None,
                Some(&json!({"big": "x".repeat(10_000)})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.expect("body"), "ok");
    }
}

#[tokio::test]
async fn another_owners_project_is_not_reachable_under_my_name() {
    let (app, _alice) = serving(json!([route("GET", "/mine", "alice's")])).await;
    let bob = app.user("bob").await;
    app.project(&bob, "secret").await;
    app.add_json_endpoint(&bob, "bob/secret", "/data", json!("bob's"))
        .await;
    app.project(&bob, "demo").await;
    app.add_json_endpoint(&bob, "bob/demo", "/theirs", json!("bob's"))
        .await;
    assert_eq!(app.fetch("/bob/secret/data").await.0, StatusCode::OK);
    assert_eq!(
        app.fetch("/alice/secret/data").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.fetch("/alice/demo/theirs").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.fetch("/bob/demo/mine").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/mine").await.1, "alice's");
}

#[tokio::test]
async fn platform_paths_are_not_project_paths() {
    let (app, _) = serving(json!([route("GET", "/", "root")])).await;
    let response = app.get("/admin/demo").await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let (status, body) = app.fetch("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["status"],
        "ok"
    );
}
