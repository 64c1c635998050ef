//! Proxy endpoints and backends: what reaches an upstream, what comes back, which endpoint
//! answers, errors and their counts, balancing, passive health, pooled connections, and the
//! backends admin API. Upstreams are real HTTP servers in the test process (`upstream`).

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};
use crate::upstream::{HEADERS, Upstream, chunk, garbage_url, large_body, refused_url, text_body};

/// `{"urls": urls}`: a backend with every other setting left to its default.
fn urls(urls: &[&str]) -> Value {
    json!({ "urls": urls })
}

/// `ANY path` forwarding to `backend` with the endpoint's path kept.
fn proxy(path: &str, backend: &str) -> Value {
    json!({"method": "ANY", "path": path, "proxy": {"backend": backend, "strip_prefix": false}})
}

/// `ANY path` forwarding to `backend` with the endpoint's path removed.
fn proxy_stripped(path: &str, backend: &str) -> Value {
    json!({"method": "ANY", "path": path, "proxy": {"backend": backend, "strip_prefix": true}})
}

fn mock(method: &str, path: &str, json: Value) -> Value {
    json!({"method": method, "path": path, "response": {"json": json}})
}

async fn put_backend(app: &TestApp, user: &User, key: &str, name: &str, body: &Value) -> Response {
    app.call(
        Method::PUT,
        &format!("/admin/projects/{key}/backends/{name}"),
        Some(&user.token),
        Some(body),
    )
    .await
}

async fn backend_call(app: &TestApp, user: &User, method: Method, path: &str) -> Response {
    let path = format!("/admin/projects/alice/shop/backends{path}");
    app.call(method, &path, Some(&user.token), None).await
}

/// Creates `user`'s `project`, then puts `backends` and adds `endpoints` one by one, in
/// order, each of which must succeed.
async fn setup(
    app: &TestApp,
    user: &User,
    project: &str,
    backends: &[(&str, Value)],
    endpoints: &[Value],
) {
    app.project(user, project).await;
    let key = format!("{}/{project}", user.name);
    for (name, body) in backends {
        let response = put_backend(app, user, &key, name, body).await;
        let status = response.status();
        assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    }
    for endpoint in endpoints {
        let response = app.post_endpoint(user, &key, endpoint).await;
        let status = response.status();
        assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    }
}

/// A server with alice and her project `shop` set up by [`setup`].
async fn shop(backends: &[(&str, Value)], endpoints: &[Value]) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    setup(&app, &alice, "shop", backends, endpoints).await;
    (app, alice)
}

/// `shop` forwarding `/api` (prefix kept) to backend `a`, which lists `upstream`.
async fn api_to(upstream: &Upstream) -> (TestApp, User) {
    shop(&[("a", urls(&[&upstream.url()]))], &[proxy("/api", "a")]).await
}

/// GETs `path`, asserting 200, and returns the upstream's echo.
async fn echo(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
}

/// The name of the upstream that answered `GET path`.
async fn answered_by(app: &TestApp, path: &str) -> String {
    echo(app, path).await["upstream"]
        .as_str()
        .expect("an echo names its upstream")
        .to_owned()
}

async fn bytes_of(response: Response) -> Vec<u8> {
    response.bytes().await.expect("body").to_vec()
}

/// Alice's project `shop`'s stats with the per-endpoint list.
async fn shop_stats(app: &TestApp, alice: &User) -> Value {
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/stats?by=endpoint",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

fn counts(report: &Value) -> (u64, u64) {
    let counts = &report["requests_count"];
    (
        counts["success"].as_u64().expect("success"),
        counts["error"].as_u64().expect("error"),
    )
}

// What reaches the upstream.

#[tokio::test]
async fn method_raw_path_query_headers_and_body_arrive_unchanged() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let body: Vec<u8> = (0..5000).map(|i| (i * 7 % 256) as u8).collect();
    let response = app
        .send(
            Method::POST,
            "/alice/shop/api/a%2Fb/%41;v=1/caf%C3%A9?q=1&q=2&e=%20&flag",
            None,
            &[
                ("content-type", "application/octet-stream"),
                ("x-custom", "one"),
                ("x-multi", "first"),
                ("x-multi", "second"),
            ],
            Some(body.clone()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = json_body(response).await;
    assert_eq!(echoed["upstream"], "a");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/api/a%2Fb/%41;v=1/caf%C3%A9");
    assert_eq!(echoed["query"], "q=1&q=2&e=%20&flag");
    assert_eq!(echoed["body_len"], 5000);

    let seen = a.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target,
        "/api/a%2Fb/%41;v=1/caf%C3%A9?q=1&q=2&e=%20&flag"
    );
    assert_eq!(seen.body, body, "the body arrives byte for byte");
    assert_eq!(seen.header("content-length"), Some("5000"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(seen.header("x-custom"), Some("one"));
    assert_eq!(seen.headers_named("x-multi"), ["first", "second"]);
    assert_eq!(seen.header("accept"), Some("*/*"));
    assert_eq!(a.request_count(), 1);
}

#[tokio::test]
async fn every_method_is_forwarded_as_it_came() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let purge = Method::from_bytes(b"PURGE").expect("method");
    for method in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        purge,
    ] {
        let response = app
            .call(method.clone(), "/alice/shop/api/m", None, None)
            .await;
        assert_eq!(json_body(response).await["method"], method.as_str());
        assert_eq!(a.last().method, method.as_str());
    }
    let response = app
        .call(Method::HEAD, "/alice/shop/api/m", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(bytes_of(response).await.is_empty());
    assert_eq!(a.last().method, "HEAD");
    assert_eq!(a.request_count(), 6);
}

#[tokio::test]
async fn forwarding_headers_are_added_and_the_request_id_is_shared() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;

    // An incoming list, Host and sane request id.
    let response = app
        .send(
            Method::GET,
            "/alice/shop/api/fwd",
            None,
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("host", "shop.example:8080"),
                ("x-request-id", "trace-abc-123"),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-request-id"), "trace-abc-123");
    let seen = a.last();
    assert_eq!(
        seen.headers_named("x-forwarded-for"),
        ["10.0.0.1, 127.0.0.1"]
    );
    assert_eq!(seen.headers_named("x-forwarded-proto"), ["http"]);
    assert_eq!(
        seen.headers_named("x-forwarded-host"),
        ["shop.example:8080"]
    );
    assert_eq!(seen.headers_named("x-request-id"), ["trace-abc-123"]);
    assert_eq!(seen.headers_named("host"), [a.addr.to_string()]);

    // None of them incoming.
    let response = app.get("/alice/shop/api/fwd").await;
    let id = header(&response, "x-request-id");
    assert!(!id.is_empty());
    let seen = a.last();
    assert_eq!(seen.headers_named("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.headers_named("x-forwarded-proto"), ["http"]);
    assert_eq!(
        seen.headers_named("x-forwarded-host"),
        [app.addr.to_string()]
    );
    assert_eq!(seen.headers_named("x-request-id"), [id]);
    assert_eq!(seen.headers_named("host"), [a.addr.to_string()]);
}

#[tokio::test]
async fn hop_by_hop_request_headers_are_not_forwarded() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let response = app
        .send(
            Method::GET,
            "/alice/shop/api/hops",
            None,
            &[
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("te", "trailers"),
                ("trailer", "x-checksum"),
                ("x-kept", "yes"),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = a.last();
    for name in ["x-hop", "keep-alive", "proxy-connection", "te", "trailer"] {
        assert_eq!(seen.header(name), None, "{name} in {:?}", seen.headers);
    }
    // The proxy may speak for its own hop, but never passes the caller's list on.
    for value in seen.headers_named("connection") {
        assert!(!value.contains("x-hop"), "connection: {value}");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
    assert_eq!(seen.header("host"), Some(a.addr.to_string().as_str()));
}

#[tokio::test]
async fn the_base_path_comes_first_and_strip_prefix_removes_the_endpoints_path() {
    let a = Upstream::start("a").await;
    let base = format!("{}/base", a.url());
    let slashed = format!("{}/base/", a.url());
    let (app, _) = shop(
        &[("based", urls(&[&base])), ("slashed", urls(&[&slashed]))],
        &[
            proxy_stripped("/api/payment", "based"),
            proxy("/svc", "based"),
            proxy_stripped("/strip", "slashed"),
        ],
    )
    .await;
    for (path, target) in [
        ("/alice/shop/api/payment/x?y=1", "/base/x?y=1"),
        ("/alice/shop/api/payment/x/%2F/y", "/base/x/%2F/y"),
        ("/alice/shop/api/payment", "/base/"),
        ("/alice/shop/api/payment/", "/base/"),
        ("/alice/shop/svc", "/base/svc"),
        ("/alice/shop/svc/a/b?c", "/base/svc/a/b?c"),
        ("/alice/shop/strip/x", "/base/x"),
    ] {
        echo(&app, path).await;
        assert_eq!(a.last().target, target, "{path}");
    }
}

// What comes back.

#[tokio::test]
async fn array_text_and_binary_bodies_come_back_byte_for_byte() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;

    let response = app.get("/alice/shop/api/array").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(response.text().await.expect("body"), "[1,2,3]");

    let response = app.get("/alice/shop/api/text").await;
    assert_eq!(header(&response, "content-type"), "text/plain");
    assert_eq!(response.text().await.expect("body"), text_body("a"));

    let response = app.get("/alice/shop/api/binary").await;
    assert_eq!(
        header(&response, "content-type"),
        "application/octet-stream"
    );
    assert_eq!(header(&response, "content-length"), "256");
    assert_eq!(bytes_of(response).await, (0..=255u8).collect::<Vec<u8>>());
}

#[tokio::test]
async fn a_large_body_comes_back_whole() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let size = 8 * 1024 * 1024;
    let response = app
        .get(&format!("/alice/shop/api/large?bytes={size}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), size.to_string());
    let body = bytes_of(response).await;
    assert_eq!(body.len(), size);
    assert!(body == large_body(size), "the bytes differ");
}

#[tokio::test]
async fn a_chunked_body_is_streamed_as_it_comes() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    // Three chunks 400 ms apart: streamed, the first arrives 800 ms before the end;
    // buffered, they would all arrive at once.
    let mut response = app.get("/alice/shop/api/chunked?chunks=3&ms=400").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("content-length").is_none(),
        "{:?}",
        response.headers()
    );
    let mut body = response
        .chunk()
        .await
        .expect("a chunk")
        .expect("not the end")
        .to_vec();
    let first = Instant::now();
    while let Some(more) = response.chunk().await.expect("a chunk") {
        body.extend_from_slice(&more);
    }
    let rest = first.elapsed();
    assert!(
        rest >= Duration::from_millis(500),
        "the rest came {rest:?} after the first chunk: the body was buffered"
    );
    let expected: String = (0..3).map(chunk).collect();
    assert_eq!(String::from_utf8(body).expect("text"), expected);
}

#[tokio::test]
async fn upstream_statuses_and_bodies_pass_through() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    for status in [201u16, 404, 418, 500, 502, 503] {
        let response = app.get(&format!("/alice/shop/api/status/{status}")).await;
        assert_eq!(response.status().as_u16(), status);
        assert!(!header(&response, "x-request-id").is_empty());
        // The upstream's own body, not a Switchyard error.
        assert_eq!(
            json_body(response).await,
            json!({"upstream": "a", "status": status})
        );
    }
}

#[tokio::test]
async fn response_headers_are_kept_and_hop_by_hop_ones_dropped() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let response = app.get("/alice/shop/api/headers").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-custom"], "kept");
    let cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text"))
        .collect();
    let sent: Vec<&str> = HEADERS
        .iter()
        .filter(|(name, _)| *name == "set-cookie")
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(cookies, sent);
    assert!(headers.get("x-custom-hop").is_none(), "{headers:?}");
    assert!(headers.get("keep-alive").is_none(), "{headers:?}");
    for value in headers.get_all("connection") {
        assert!(
            !value.to_str().expect("text").contains("x-custom-hop"),
            "{headers:?}"
        );
    }
    // Switchyard's request id, once, the one the upstream was given.
    let ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "{headers:?}");
    assert_ne!(ids[0], "from-upstream");
    assert_eq!(
        a.last().header("x-request-id"),
        Some(ids[0].to_str().unwrap())
    );
}

// Which endpoint answers.

#[tokio::test]
async fn the_longest_prefix_wins_in_either_order() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let backends = [("a", urls(&[&a.url()])), ("b", urls(&[&b.url()]))];
    let short = proxy("/api", "a");
    let long = proxy("/api/payment", "b");
    setup(
        &app,
        &alice,
        "first",
        &backends,
        &[short.clone(), long.clone()],
    )
    .await;
    setup(&app, &alice, "second", &backends, &[long, short]).await;
    for project in ["first", "second"] {
        for (path, upstream) in [
            ("/api/payment", "b"),
            ("/api/payment/", "b"),
            ("/api/payment/x/y", "b"),
            ("/api/paymentsX", "a"),
            ("/api/other", "a"),
            ("/api", "a"),
            ("/api/", "a"),
        ] {
            let url = format!("/alice/{project}{path}");
            let echoed = echo(&app, &url).await;
            assert_eq!(echoed["upstream"], upstream, "{url}");
            assert_eq!(echoed["path"], path, "{url}");
        }
        let response = app.get(&format!("/alice/{project}/apix")).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_mock_inside_a_proxied_prefix_wins() {
    let a = Upstream::start("a").await;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let backends = [("a", urls(&[&a.url()]))];
    let health = mock("GET", "/api/health", json!({"mock": true}));
    setup(
        &app,
        &alice,
        "first",
        &backends,
        &[proxy("/api", "a"), health.clone()],
    )
    .await;
    setup(
        &app,
        &alice,
        "second",
        &backends,
        &[health, proxy("/api", "a")],
    )
    .await;
    for project in ["first", "second"] {
        assert_eq!(
            app.fetch(&format!("/alice/{project}/api/health")).await,
            (StatusCode::OK, r#"{"mock":true}"#.to_owned())
        );
        for path in ["/api/healthz", "/api/health/deeper", "/api/x"] {
            let url = format!("/alice/{project}{path}");
            assert_eq!(echo(&app, &url).await["path"], path, "{url}");
        }
    }
    assert_eq!(a.request_count(), 6);
}

#[tokio::test]
async fn a_root_proxy_catches_what_no_other_endpoint_takes() {
    let a = Upstream::start("a").await;
    let (app, _) = shop(
        &[("a", urls(&[&a.url()]))],
        &[mock("GET", "/hello", json!("mock")), proxy("/", "a")],
    )
    .await;
    assert_eq!(app.fetch("/alice/shop/hello").await.1, r#""mock""#);
    echo(&app, "/alice/shop/other/x?q=1").await;
    assert_eq!(a.last().target, "/other/x?q=1");
    echo(&app, "/alice/shop/").await;
    assert_eq!(a.last().target, "/");
    assert_eq!(a.request_count(), 2);
}

// Errors.

#[tokio::test]
async fn a_refused_connection_is_503_upstream_unavailable() {
    let (app, _) = shop(
        &[("down", urls(&[&refused_url()]))],
        &[proxy("/api", "down")],
    )
    .await;
    // Every time: with every target down, the least recently failed one is tried anyway.
    for _ in 0..3 {
        let response = app.get("/alice/shop/api/x").await;
        assert_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
        )
        .await;
    }
}

#[tokio::test]
async fn no_response_head_within_timeout_ms_is_504_gateway_timeout() {
    let a = Upstream::start("a").await;
    let (app, _) = shop(
        &[("slow", json!({"urls": [a.url()], "timeout_ms": 200}))],
        &[proxy("/api", "slow")],
    )
    .await;
    let started = Instant::now();
    let response = app.get("/alice/shop/api/slow?ms=2000").await;
    let took = started.elapsed();
    assert_error(response, StatusCode::GATEWAY_TIMEOUT, "gateway_timeout").await;
    assert!(
        (Duration::from_millis(200)..Duration::from_millis(1500)).contains(&took),
        "answered after {took:?}"
    );
    // Within the limit, the same backend answers.
    assert_eq!(
        echo(&app, "/alice/shop/api/slow?ms=20").await["upstream"],
        "a"
    );
}

#[tokio::test]
async fn a_malformed_answer_is_502_bad_gateway() {
    let garbage = garbage_url().await;
    let (app, _) = shop(&[("junk", urls(&[&garbage]))], &[proxy("/api", "junk")]).await;
    let response = app.get("/alice/shop/api/x").await;
    assert_error(response, StatusCode::BAD_GATEWAY, "bad_gateway").await;
}

#[tokio::test]
async fn proxied_answers_and_proxy_errors_are_counted_exactly() {
    let a = Upstream::start("a").await;
    let garbage = garbage_url().await;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let with_id = |id: &str, mut endpoint: Value| {
        endpoint["id"] = json!(id);
        endpoint
    };
    setup(
        &app,
        &alice,
        "shop",
        &[
            ("good", urls(&[&a.url()])),
            ("down", urls(&[&refused_url()])),
            ("slow", json!({"urls": [a.url()], "timeout_ms": 200})),
            ("junk", urls(&[&garbage])),
        ],
        &[
            with_id("ok", proxy("/ok", "good")),
            with_id("statuses", proxy("/statuses", "good")),
            with_id("down", proxy("/down", "down")),
            with_id("slow", proxy("/slow", "slow")),
            with_id("junk", proxy("/junk", "junk")),
        ],
    )
    .await;
    let reset = app
        .call(Method::DELETE, "/stats", Some(&alice.token), None)
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);

    for (path, times, status) in [
        ("/alice/shop/ok", 3, 200),
        ("/alice/shop/statuses/status/201", 1, 201),
        ("/alice/shop/statuses/status/404", 1, 404),
        ("/alice/shop/down", 2, 503),
        ("/alice/shop/slow?ms=1000", 1, 504),
        ("/alice/shop/junk", 1, 502),
    ] {
        for _ in 0..times {
            assert_eq!(app.get(path).await.status().as_u16(), status, "{path}");
        }
    }

    // The instance first: reading project stats is an admin request, which it counts.
    let response = app.get("/stats").await;
    let instance = json_body(response).await;
    assert_eq!(counts(&instance), (4, 5), "{instance}");
    assert_eq!(
        instance["status_classes"],
        json!({"1xx": 0, "2xx": 4, "3xx": 0, "4xx": 1, "5xx": 4})
    );

    let project = shop_stats(&app, &alice).await;
    assert_eq!(counts(&project), (4, 5), "{project}");
    let endpoint = |id: &str| {
        project["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["id"] == id)
            .map(counts)
            .unwrap_or_else(|| panic!("no endpoint {id} in {project}"))
    };
    assert_eq!(endpoint("ok"), (3, 0));
    assert_eq!(endpoint("statuses"), (1, 1));
    assert_eq!(endpoint("down"), (0, 2));
    assert_eq!(endpoint("slow"), (0, 1));
    assert_eq!(endpoint("junk"), (0, 1));
}

// Balancing and health.

#[tokio::test]
async fn round_robin_alternates_between_two_targets() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let (app, _) = shop(
        &[(
            "both",
            json!({"urls": [a.url(), b.url()], "policy": "round_robin"}),
        )],
        &[proxy("/api", "both")],
    )
    .await;
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(answered_by(&app, "/alice/shop/api/rr").await);
    }
    assert!(names.windows(2).all(|pair| pair[0] != pair[1]), "{names:?}");
    assert_eq!((a.request_count(), b.request_count()), (5, 5));
}

#[tokio::test]
async fn random_uses_both_targets() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let (app, _) = shop(
        &[(
            "both",
            json!({"urls": [a.url(), b.url()], "policy": "random"}),
        )],
        &[proxy("/api", "both")],
    )
    .await;
    for _ in 0..100 {
        answered_by(&app, "/alice/shop/api/random").await;
    }
    // Both by chance fail once in 2^99 runs.
    assert!(a.request_count() > 0 && b.request_count() > 0);
    assert_eq!(a.request_count() + b.request_count(), 100);
}

/// Sends `times` GETs to `path` and returns the indices of those that failed with 503;
/// every other one must be a 200 from upstream `good`.
async fn failures(app: &TestApp, path: &str, times: usize, good: &str) -> Vec<usize> {
    let mut failed = Vec::new();
    for i in 0..times {
        let response = app.get(path).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_error(
                response,
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable",
            )
            .await;
            failed.push(i);
        } else {
            assert_eq!(response.status(), StatusCode::OK, "request {i}");
            assert_eq!(json_body(response).await["upstream"], good, "request {i}");
        }
    }
    failed
}

#[tokio::test]
async fn a_refusing_target_is_skipped_after_its_first_failure() {
    let good = Upstream::start("good").await;
    let (app, _) = shop(
        &[(
            "pair",
            json!({"urls": [refused_url(), good.url()], "policy": "round_robin"}),
        )],
        &[proxy("/api", "pair")],
    )
    .await;
    // 20 requests take far less than the 1 s back-off.
    let failed = failures(&app, "/alice/shop/api/h", 20, "good").await;
    assert!(
        failed.len() <= 1 && failed.iter().all(|&i| i < 2),
        "{failed:?}"
    );
    assert_eq!(good.request_count(), 20 - failed.len());
}

#[tokio::test]
async fn a_recovered_target_is_found_without_waiting_out_its_back_off() {
    let refused = refused_url();
    let (app, _) = shop(&[("one", urls(&[&refused]))], &[proxy("/api", "one")]).await;
    let response = app.get("/alice/shop/api/x").await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
    )
    .await;
    let port = refused
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let back = Upstream::start_on("back", port).await;
    // Well within the 1 s back-off, the only (least recently failed) target is tried.
    assert_eq!(answered_by(&app, "/alice/shop/api/x").await, "back");
    assert_eq!(back.request_count(), 1);
}

// Edits.

#[tokio::test]
async fn an_edit_that_keeps_the_backend_keeps_its_connections() {
    let a = Upstream::start("a").await;
    let (app, alice) = api_to(&a).await;
    for _ in 0..10 {
        answered_by(&app, "/alice/shop/api/pooled").await;
    }
    app.add_json_endpoint(&alice, "alice/shop", "/unrelated", json!(1))
        .await;
    for _ in 0..10 {
        answered_by(&app, "/alice/shop/api/pooled").await;
    }
    assert_eq!(a.request_count(), 20);
    assert_eq!(a.connections(), 1, "one pooled keep-alive connection");
}

#[tokio::test]
async fn an_edit_that_keeps_the_backend_keeps_its_health() {
    let good = Upstream::start("good").await;
    let (app, alice) = shop(
        &[(
            "pair",
            json!({"urls": [refused_url(), good.url()], "policy": "round_robin"}),
        )],
        &[proxy("/api", "pair")],
    )
    .await;
    let mut failed = failures(&app, "/alice/shop/api/h", 4, "good").await;
    app.add_json_endpoint(&alice, "alice/shop", "/unrelated", json!(1))
        .await;
    // Forgotten health would send one of the next two requests to the refusing target.
    failed.extend(failures(&app, "/alice/shop/api/h", 6, "good").await);
    assert!(failed.len() <= 1, "{failed:?}");
}

#[tokio::test]
async fn new_urls_for_a_backend_switch_traffic_at_once() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let (app, alice) = api_to(&a).await;
    assert_eq!(answered_by(&app, "/alice/shop/api/x").await, "a");
    let response = put_backend(&app, &alice, "alice/shop", "a", &urls(&[&b.url()])).await;
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(answered_by(&app, "/alice/shop/api/x").await, "b");
    }
    assert_eq!((a.request_count(), b.request_count()), (1, 5));
}

#[tokio::test]
async fn a_whole_project_put_with_backends_survives_a_restart() {
    let a = Upstream::start("a").await;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;
    let definition = json!({
        "backends": [{"name": "api", "urls": [a.url()], "policy": "round_robin", "timeout_ms": 3000}],
        "endpoints": [
            {"id": "p", "method": "ANY", "path": "/api", "proxy": {"backend": "api", "strip_prefix": true}},
            {"id": "m", "method": "GET", "path": "/api/health", "response": {"json": "up"}},
        ],
    });
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&definition),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", json_body(response).await);
    let expected = json!([{
        "name": "api",
        "urls": [a.url()],
        "policy": "round_robin",
        "connect_timeout_ms": 5000,
        "timeout_ms": 3000,
    }]);
    let check = async |app: &TestApp| {
        let project = app.read_project(&alice, "alice/shop").await;
        assert_eq!(project["backends"], expected, "{project}");
        let proxied = project["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["id"] == "p")
            .unwrap_or_else(|| panic!("no endpoint p in {project}"));
        assert_eq!(proxied["proxy"]["backend"], "api");
        assert_eq!(proxied["proxy"]["strip_prefix"], true);
        assert!(
            proxied.get("response").is_none_or(Value::is_null),
            "{proxied}"
        );
        let response = backend_call(app, &alice, Method::GET, "").await;
        assert_eq!(json_body(response).await, expected);
        echo(app, "/alice/shop/api/after?x=1").await;
        assert_eq!(a.last().target, "/after?x=1");
        assert_eq!(app.fetch("/alice/shop/api/health").await.1, r#""up""#);
    };
    check(&app).await;
    let app = app.restart().await;
    check(&app).await;
    assert_eq!(a.request_count(), 2);
}

// The backends admin API.

#[tokio::test]
async fn a_backend_is_created_replaced_read_and_listed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;

    let response = put_backend(
        &app,
        &alice,
        "alice/shop",
        "payment",
        &urls(&["http://127.0.0.1:9000"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"2\"");
    let created = json!({
        "name": "payment",
        "urls": ["http://127.0.0.1:9000"],
        "policy": "random",
        "connect_timeout_ms": 5000,
        "timeout_ms": 60000,
    });
    assert_eq!(json_body(response).await, created);

    let replacement = json!({
        "name": "payment",
        "urls": ["http://127.0.0.1:9000", "http://127.0.0.1:9001/base"],
        "policy": "round_robin",
        "connect_timeout_ms": 250,
        "timeout_ms": 1500,
    });
    let response = put_backend(&app, &alice, "alice/shop", "payment", &replacement).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"3\"");
    assert_eq!(json_body(response).await, replacement);
    assert_eq!(app.revision(&alice, "alice/shop").await, 3);

    let response = put_backend(
        &app,
        &alice,
        "alice/shop",
        "audit",
        &urls(&["http://localhost:8080"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = backend_call(&app, &alice, Method::GET, "/payment").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, replacement);

    let response = backend_call(&app, &alice, Method::GET, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut list = json_body(response).await;
    let list = list.as_array_mut().expect("a list");
    list.sort_by_key(|b| b["name"].as_str().map(str::to_owned));
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["name"], "audit");
    assert_eq!(list[0]["urls"], json!(["http://localhost:8080"]));
    assert_eq!(list[1], replacement);

    let project = app.read_project(&alice, "alice/shop").await;
    let mut names: Vec<&str> = project["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["audit", "payment"]);
}

#[tokio::test]
async fn bad_backends_are_422_naming_the_field() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;
    let good = "http://127.0.0.1:9000";
    for (body, field) in [
        (json!({"urls": []}), "urls"),
        (json!({"urls": ["ftp://x"]}), "urls[0]"),
        (json!({"urls": ["https://127.0.0.1:9000"]}), "urls[0]"),
        (json!({"urls": ["http://"]}), "urls[0]"),
        (json!({"urls": ["/relative/path"]}), "urls[0]"),
        (
            json!({"urls": ["http://user:secret@127.0.0.1:9000"]}),
            "urls[0]",
        ),
        (
            json!({"urls": [good, "http://127.0.0.1:9001/x?q=1"]}),
            "urls[1]",
        ),
        (
            json!({"urls": [good, "http://127.0.0.1:9001/x#f"]}),
            "urls[1]",
        ),
        (json!({"urls": [good], "policy": "fastest"}), "policy"),
        (json!({"name": "other", "urls": [good]}), "name"),
    ] {
        let response = put_backend(&app, &alice, "alice/shop", "pay", &body).await;
        assert_invalid(response, field).await;
    }
    let too_many: Vec<String> = (0..65)
        .map(|i| format!("http://127.0.0.1:{}", 9000 + i))
        .collect();
    let response = put_backend(
        &app,
        &alice,
        "alice/shop",
        "pay",
        &json!({"urls": too_many}),
    )
    .await;
    assert_invalid(response, "urls").await;
    // Nothing was stored.
    let response = backend_call(&app, &alice, Method::GET, "/pay").await;
    assert_error(response, StatusCode::NOT_FOUND, "backend_not_found").await;
    assert_eq!(app.revision(&alice, "alice/shop").await, 1);
    // The name in the body may be given when it agrees.
    let response = put_backend(
        &app,
        &alice,
        "alice/shop",
        "pay",
        &json!({"name": "pay", "urls": [good]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_proxy_endpoint_must_name_a_backend_and_be_only_a_proxy() {
    let (app, alice) = shop(&[("known", urls(&["http://127.0.0.1:9000"]))], &[]).await;
    let response = app
        .post_endpoint(&alice, "alice/shop", &proxy("/api", "unknown"))
        .await;
    assert_invalid(response, "proxy.backend").await;

    let mut both = proxy("/api", "known");
    both["response"] = json!({"json": 1});
    let response = app.post_endpoint(&alice, "alice/shop", &both).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // A whole definition whose proxy names no backend of it.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&json!({"endpoints": [proxy("/api", "missing")]})),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.revision(&alice, "alice/shop").await, 2);
    assert_eq!(
        app.post_endpoint(&alice, "alice/shop", &proxy("/api", "known"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_backend_in_use_cannot_be_deleted_and_an_unused_one_can() {
    let (app, alice) = shop(
        &[
            ("used", urls(&["http://127.0.0.1:9000"])),
            ("spare", urls(&["http://127.0.0.1:9001"])),
        ],
        &[json!({"id": "p", "method": "ANY", "path": "/api", "proxy": {"backend": "used"}})],
    )
    .await;
    let response = backend_call(&app, &alice, Method::DELETE, "/used").await;
    assert_error(response, StatusCode::CONFLICT, "backend_in_use").await;
    let response = backend_call(&app, &alice, Method::GET, "/used").await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = backend_call(&app, &alice, Method::DELETE, "/spare").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = backend_call(&app, &alice, Method::GET, "/spare").await;
    assert_error(response, StatusCode::NOT_FOUND, "backend_not_found").await;
    let response = backend_call(&app, &alice, Method::DELETE, "/spare").await;
    assert_error(response, StatusCode::NOT_FOUND, "backend_not_found").await;

    // Once no endpoint names it, it goes.
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/shop/endpoints/p",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = backend_call(&app, &alice, Method::DELETE, "/used").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = backend_call(&app, &alice, Method::GET, "").await;
    assert_eq!(json_body(response).await, json!([]));
}

#[tokio::test]
async fn backends_are_their_owners_business() {
    let (app, _) = shop(&[("api", urls(&["http://127.0.0.1:9000"]))], &[]).await;
    let bob = app.user("bob").await;
    let body = urls(&["http://127.0.0.1:9001"]);
    for (method, path, body) in [
        (Method::GET, "/admin/projects/alice/shop/backends", None),
        (Method::GET, "/admin/projects/alice/shop/backends/api", None),
        (
            Method::PUT,
            "/admin/projects/alice/shop/backends/api",
            Some(&body),
        ),
        (
            Method::DELETE,
            "/admin/projects/alice/shop/backends/api",
            None,
        ),
    ] {
        let response = app.call(method.clone(), path, Some(&bob.token), body).await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        let response = app.call(method.clone(), path, None, body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
}

// Upgrades.

/// Sends a request asking to switch to the `echo` protocol on a raw connection and returns
/// the connection and the answer's head.
async fn upgrade(app: &TestApp, path: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("the answer's head in time")
            .expect("read");
        assert_eq!(
            read, 1,
            "the connection closed before the head ended: {head:?}"
        );
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).expect("utf-8 head"))
}

#[tokio::test]
async fn an_upgrade_is_passed_through_and_the_connection_becomes_a_tunnel() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    let (mut stream, head) = upgrade(&app, "/alice/shop/api/upgrade").await;
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(lower.contains("upgrade: echo"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    assert!(lower.contains("x-request-id:"), "{head}");
    // The upstream saw the switch asked for.
    let seen = a.last();
    assert_eq!(seen.header("upgrade"), Some("echo"));
    assert!(
        seen.header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("upgrade")),
        "{:?}",
        seen.headers
    );
    // Then bytes flow both ways, in several exchanges, unchanged.
    let mut greeting = [0u8; 2];
    stream.read_exact(&mut greeting).await.expect("greeting");
    assert_eq!(&greeting, b"a\n");
    for message in [&b"ping"[..], &[0u8, 255, 13, 10, 1][..], &[7u8; 3000][..]] {
        stream.write_all(message).await.expect("write");
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_exact(&mut echoed),
        )
        .await
        .expect("the echo in time")
        .expect("read");
        assert_eq!(echoed, message);
    }
}

#[tokio::test]
async fn an_upgrade_refused_upstream_is_an_ordinary_answer() {
    let a = Upstream::start("a").await;
    let (app, _) = api_to(&a).await;
    // The upstream answers 200 (its echo): no switch, the answer is relayed as is.
    let (_stream, head) = upgrade(&app, "/alice/shop/api/plain").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // And a mock never switches, whatever the request asks.
    let (app, _) = shop(&[], &[mock("GET", "/hello", json!("hi"))]).await;
    let (_stream, head) = upgrade(&app, "/alice/shop/hello").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

// Order.

/// Which upstream answers each of `paths` in `project` of `alice`.
async fn routing_of(app: &TestApp, project: &str, paths: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    for path in paths {
        seen.push(answered_by(app, &format!("/alice/{project}{path}")).await);
    }
    seen
}

#[tokio::test]
async fn which_endpoint_answers_depends_on_the_definition_not_on_the_order_of_changes() {
    let upstreams = [
        Upstream::start("a").await,
        Upstream::start("ab").await,
        Upstream::start("abc").await,
        Upstream::start("ab2").await,
        Upstream::start("root").await,
    ];
    let backends: Vec<(&str, Value)> = upstreams
        .iter()
        .map(|u| (u.name.as_str(), urls(&[&u.url()])))
        .collect();
    let routes = [
        proxy("/a", "a"),
        proxy("/a/b", "ab"),
        proxy("/a/b/c", "abc"),
        proxy("/ab", "ab2"),
        proxy("/", "root"),
    ];
    let paths = [
        "/a", "/a/", "/a/x", "/a/b", "/a/bx", "/a/b/", "/a/b/c", "/a/b/c/d", "/a/b/cd", "/ab",
        "/ab/c", "/abc", "/", "/b", "/x/a/b",
    ];
    let orders: [[usize; 5]; 4] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [2, 4, 0, 3, 1],
        [3, 0, 4, 2, 1],
    ];
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for (n, order) in orders.iter().enumerate() {
        let endpoints: Vec<Value> = order.iter().map(|&i| routes[i].clone()).collect();
        setup(&app, &alice, &format!("p{n}"), &backends, &endpoints).await;
    }
    // One more, replaced whole in yet another order (one change of many routes).
    let last: Vec<Value> = [1, 4, 3, 0, 2].iter().map(|&i| routes[i].clone()).collect();
    let whole = json!({
        "backends": upstreams.iter().map(|u| json!({"name": u.name, "urls": [u.url()]})).collect::<Vec<_>>(),
        "endpoints": last,
    });
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/p4",
            Some(&alice.token),
            Some(&whole),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );

    let expected = routing_of(&app, "p0", &paths).await;
    assert_eq!(
        expected,
        [
            "a", "a", "a", "ab", "a", "ab", "abc", "abc", "ab", "ab2", "ab2", "root", "root",
            "root", "root"
        ]
    );
    for n in 1..=4 {
        assert_eq!(
            routing_of(&app, &format!("p{n}"), &paths).await,
            expected,
            "p{n}"
        );
    }
    // Loaded back from the store, in whatever order it reads them: the same.
    let app = app.restart().await;
    for n in 0..=4 {
        assert_eq!(
            routing_of(&app, &format!("p{n}"), &paths).await,
            expected,
            "p{n} after a restart"
        );
    }
}

// One change of many routes and backends.

#[tokio::test]
async fn one_admin_change_of_many_routes_and_backends_is_one_swap_and_a_bad_one_is_none() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    const ROUTES: usize = 50;
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let definition = |backend: &str, url: &str, broken: bool| {
        let endpoints: Vec<Value> = (0..ROUTES)
            .map(|i| {
                let name = if broken && i == ROUTES - 1 {
                    "missing"
                } else {
                    backend
                };
                json!({"id": format!("r{i}"), "method": "ANY", "path": format!("/r{i}"),
                       "proxy": {"backend": name}})
            })
            .collect();
        json!({"backends": [{"name": backend, "urls": [url]}], "endpoints": endpoints})
    };
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let put = |body: Value| {
        let (app, token) = (&app, alice.token.clone());
        async move {
            app.call(
                Method::PUT,
                "/admin/projects/alice/shop",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let response = put(definition("a", &a.url(), false)).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );

    // 49 good routes and one naming no backend: refused, and nothing changes.
    let response = put(definition("b", &b.url(), true)).await;
    assert_invalid(response, "endpoints[49].proxy.backend").await;
    for i in 0..ROUTES {
        assert_eq!(answered_by(&app, &format!("/alice/shop/r{i}")).await, "a");
    }

    // Every route to a new backend, the old one removed, in one PUT: once any answer came
    // from b, no request sent after it is answered by a.
    let stop = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    for start in [0, ROUTES / 2] {
        let (client, base, stop) = (app.client.clone(), app.url("/alice/shop"), stop.clone());
        pollers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = start;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let response = client
                    .get(format!("{base}/r{}", i % ROUTES))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::OK);
                let body: Value = response.json().await.expect("echo");
                seen.push((
                    sent,
                    Instant::now(),
                    body["upstream"].as_str().unwrap_or("").to_owned(),
                ));
                i += 1;
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let response = put(definition("b", &b.url(), false)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        json_body(response).await
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for poller in pollers {
        seen.extend(poller.await.expect("poller"));
    }
    let first_b = seen
        .iter()
        .filter(|(_, _, name)| name == "b")
        .map(|(_, answered, _)| *answered)
        .min()
        .expect("b answered after the change");
    assert!(
        seen.iter().any(|(_, _, name)| name == "a"),
        "a answered before the change"
    );
    for (sent, _, name) in &seen {
        assert!(
            !(*sent > first_b && name == "a"),
            "a answered a request sent after b first did"
        );
    }
    for i in 0..ROUTES {
        assert_eq!(answered_by(&app, &format!("/alice/shop/r{i}")).await, "b");
    }
}

#[tokio::test]
async fn a_broken_project_repaired_with_the_same_backends_proxies_again() {
    let a = Upstream::start("a").await;
    let (app, alice) = shop(
        &[("a", urls(&[&a.url()]))],
        &[proxy("/api", "a"), mock("GET", "/hello", json!("hi"))],
    )
    .await;
    let db = app.db_path();
    let _dir = app.stop().await;
    // Damage one endpoint row behind the server's back; the backends stay readable.
    let pool = sqlx::SqlitePool::connect(&crate::helpers::db_url(&db))
        .await
        .expect("database");
    sqlx::query(
        "UPDATE endpoints SET definition = '{\"method\": 7}' WHERE definition LIKE '%hello%'",
    )
    .execute(&pool)
    .await
    .expect("damage");
    pool.close().await;
    let mut config = switchyard::config::Config::new(crate::helpers::db_url(&db));
    config.port = 0;
    let server = switchyard::server::start(config)
        .await
        .expect("the node starts");
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let broken = client
        .get(format!("{base}/alice/shop/api/x"))
        .send()
        .await
        .expect("get");
    assert_eq!(broken.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The whole PUT that repairs it names the very backends that could be read.
    let whole = json!({
        "backends": [{"name": "a", "urls": [a.url()]}],
        "endpoints": [proxy("/api", "a"), mock("GET", "/hello", json!("hi"))],
    });
    let repaired = client
        .put(format!("{base}/admin/projects/alice/shop"))
        .bearer_auth(&alice.token)
        .json(&whole)
        .send()
        .await
        .expect("put");
    assert_eq!(
        repaired.status(),
        StatusCode::OK,
        "{}",
        json_body(repaired).await
    );
    let proxied = client
        .get(format!("{base}/alice/shop/api/x"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        proxied.status(),
        StatusCode::OK,
        "{}",
        proxied.text().await.unwrap_or_default()
    );
    assert_eq!(a.request_count(), 1);
    server.shutdown().await;
}
