//! Malformed, invalid, oversized and mistyped input, and the one error format.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app, spawn_app_with,
};

const ENDPOINTS: &str = "/admin/projects/alice/demo/endpoints";

async fn alice_with_demo(app: &TestApp) -> User {
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    alice
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> reqwest::Response {
    app.send(
        method,
        path,
        Some(token),
        &[("content-type", content_type)],
        Some(body.to_vec()),
    )
    .await
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    for body in [
        &b"{\"method\": "[..],
        b"{method: GET}",
        b"{\"method\": \"GET\"} trailing",
        b"",
        b"\xff\xfe",
    ] {
        let response = raw(
            &app,
            Method::POST,
            ENDPOINTS,
            &alice.token,
            "application/json",
            body,
        )
        .await;
        assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    let response = app
        .send(
            Method::POST,
            "/auth/register",
            None,
            &[("content-type", "application/json")],
            Some(b"{\"username\": \"bob\",".to_vec()),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn wrong_field_types_are_422_naming_the_field_path() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let cases = [
        (
            json!({"method": "GET", "path": "/", "response": {"status": "200"}}),
            "response.status",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"status": -1}}),
            "response.status",
        ),
        (json!({"method": "GET", "path": 7, "response": {}}), "path"),
        (
            json!({"method": "GET", "path": "/", "response": {"headers": {"x": 1}}}),
            "response.headers.x",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"delay_ms": "soon"}}),
            "response.delay_ms",
        ),
        (
            json!({"method": "GET", "path": "/", "response": "ok"}),
            "response",
        ),
        (
            json!({"method": "GET", "path": "/", "tags": "one", "response": {}}),
            "tags",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_endpoint(&alice, "alice/demo", &body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
        assert!(
            error["error"]["details"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": 5})),
        )
        .await;
    assert_invalid(response, "name").await;
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            Some(&json!({"endpoints": [{"method": "GET", "path": "/", "response": {"status": true}}]})),
        )
        .await;
    assert_invalid(response, "endpoints[0].response.status").await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_422() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    for body in [json!("text"), json!(null), json!(3)] {
        let response = app.post_endpoint(&alice, "alice/demo", &body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(error["error"]["details"][0]["field"], "body", "{body}");
    }
    // serde reads an array as the struct's fields in order, so it names the element.
    let response = app
        .post_endpoint(&alice, "alice/demo", &json!([1, 2]))
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn missing_required_fields_are_422_naming_them() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let cases = [
        (json!({"path": "/", "response": {}}), "method"),
        (json!({"method": "GET", "response": {}}), "path"),
        (json!({"method": "GET", "path": "/"}), "response"),
    ];
    for (body, field) in cases {
        let response = app.post_endpoint(&alice, "alice/demo", &body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"description": "x"})),
        )
        .await;
    assert_invalid(response, "name").await;
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(&json!({"username": "bob"})),
        )
        .await;
    assert_invalid(response, "password").await;
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            Some(&json!({"endpoints": [{"method": "GET", "response": {}}]})),
        )
        .await;
    assert_invalid(response, "endpoints[0].path").await;
}

#[tokio::test]
async fn a_patch_that_removes_a_required_field_is_422_naming_it() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/a", json!(1))
        .await;
    let response = app
        .call(
            Method::PATCH,
            &format!("{ENDPOINTS}/{id}"),
            Some(&alice.token),
            Some(&json!({"path": null})),
        )
        .await;
    assert_invalid(response, "path").await;
    assert_eq!(app.fetch("/alice/demo/a").await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_fields_are_422() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "other", "colour": "red"})),
        )
        .await;
    assert_invalid(response, "colour").await;
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(&json!({"username": "bob", "password": "long enough", "admin": true})),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            Some(&json!({"descripton": "typo"})),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.login("bob", "long enough").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn unknown_query_parameters_are_422() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects?colour=red",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|c| c.admin_body_limit = 4096).await;
    let alice = alice_with_demo(&app).await;
    let big = json!({"method": "GET", "path": "/big", "response": {"body": "x".repeat(10 * 1024)}});
    let response = app.post_endpoint(&alice, "alice/demo", &big).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let small = json!({"method": "GET", "path": "/small", "response": {"body": "x".repeat(1024)}});
    let response = app.post_endpoint(&alice, "alice/demo", &small).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.fetch("/alice/demo/big").await.0, StatusCode::NOT_FOUND);
    let response = app
        .send(
            Method::POST,
            "/auth/register",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(format!("username=bob&password={}", "p".repeat(10 * 1024)).into_bytes()),
        )
        .await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn a_form_or_text_body_on_a_json_route_is_415() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/plain; charset=utf-8",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let response = raw(
            &app,
            Method::POST,
            ENDPOINTS,
            &alice.token,
            content_type,
            br#"{"method": "GET", "path": "/a", "response": {}}"#,
        )
        .await;
        assert_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    let response = raw(
        &app,
        Method::POST,
        "/auth/tokens",
        &alice.token,
        "application/x-www-form-urlencoded",
        b"name=ci",
    )
    .await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn json_with_a_charset_or_a_json_suffix_is_accepted() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    for (content_type, path) in [
        ("application/json; charset=utf-8", "/a"),
        ("Application/JSON", "/b"),
        ("application/merge-patch+json", "/c"),
    ] {
        let body = format!(r#"{{"method": "GET", "path": "{path}", "response": {{}}}}"#);
        let response = raw(
            &app,
            Method::POST,
            ENDPOINTS,
            &alice.token,
            content_type,
            body.as_bytes(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{content_type}");
    }
}

#[tokio::test]
async fn text_on_the_login_route_is_415() {
    let app = spawn_app().await;
    let response = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            &[("content-type", "text/plain")],
            Some(b"username=alice".to_vec()),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_platform_path_is_a_json_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for path in [
        "/admin/nope",
        "/admin",
        "/auth/nope",
        "/admin/projects/alice",
        "/health/deeper",
    ] {
        let response = app.call(Method::GET, path, Some(&alice.token), None).await;
        assert!(
            header(&response, "content-type").starts_with("application/json"),
            "{path}"
        );
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_platform_route_is_a_json_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        (Method::DELETE, "/auth/login", vec!["POST"]),
        (Method::GET, "/auth/register", vec!["POST"]),
        (Method::PATCH, "/admin/projects", vec!["GET", "POST"]),
        (Method::POST, "/health", vec!["GET"]),
        (Method::POST, "/admin/projects/a/b/changes", vec!["GET"]),
    ] {
        let response = app.call(method.clone(), path, None, None).await;
        let allow = header(&response, "allow");
        for one in allowed {
            assert!(allow.contains(one), "{method} {path}: {allow}");
        }
        assert!(!allow.contains(method.as_str()), "{method} {path}: {allow}");
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn an_error_body_carries_the_callers_request_id() {
    let app = spawn_app().await;
    let response = app
        .send(
            Method::GET,
            "/admin/projects",
            None,
            &[("x-request-id", "my-trace-42")],
            None,
        )
        .await;
    assert_eq!(header(&response, "x-request-id"), "my-trace-42");
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(body["error"]["request_id"], "my-trace-42");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["error"], "nothing beside `error`: {body}");
}

#[tokio::test]
async fn only_validation_errors_carry_details() {
    let app = spawn_app().await;
    let response = app.get("/admin/nope").await;
    let body = json_body(response).await;
    assert!(body["error"].get("details").is_none(), "{body}");
}

#[tokio::test]
async fn a_garbage_authorization_header_is_401_never_500() {
    let app = spawn_app().await;
    let alice = alice_with_demo(&app).await;
    let long = format!("Bearer {}", "x".repeat(8 * 1024));
    let long_scheme = "y".repeat(8 * 1024);
    for value in [
        long.as_str(),
        long_scheme.as_str(),
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer sy_ with spaces",
        "Token abc",
    ] {
        let response = app
            .client
            .get(app.url("/admin/projects"))
            .header("authorization", value)
            .send()
            .await
            .expect("request");
        assert_eq!(header(&response, "www-authenticate"), "Bearer");
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // Bytes that are not text in the header value.
    let value =
        reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").expect("opaque bytes");
    let response = app
        .client
        .get(app.url("/admin/projects"))
        .header("authorization", value)
        .send()
        .await
        .expect("request");
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The same garbage on a mock route does not matter: projects have no auth yet.
    app.add_json_endpoint(&alice, "alice/demo", "/open", json!(1))
        .await;
    let response = app
        .client
        .get(app.url("/alice/demo/open"))
        .header("authorization", long.as_str())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_path_segment_is_400_not_500() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/%FF%FE",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.admin_body_limit = 4096).await;
    let alice = alice_with_demo(&app).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let chunk = "x".repeat(2048);
    let mut request = format!(
        "POST {ENDPOINTS} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        alice.token
    );
    // No content-length: the limit must be found while reading, 5 chunks of 2 KiB.
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    // The server may close before reading everything; what it answered is what counts.
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
}
