//! `--proxy-allow`: where the backends of non-admins' projects may send. Checked when a
//! backend is defined (the hosts in its URLs; no Docker selector), when names resolve (every
//! address, so a listed name cannot lead elsewhere), and again for what is stored when the
//! node starts with another list. Admins' projects are not bounded.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, json_body, spawn_app_with};
use crate::upstream::Upstream;

/// A node with this `--proxy-allow`, its admin (the first user) and a user.
async fn node(allow: &[&str]) -> (TestApp, User, User) {
    let rules: Vec<String> = allow.iter().map(|rule| (*rule).to_owned()).collect();
    let app = spawn_app_with(|config| config.proxy_allow = rules).await;
    let admin = app.user("root").await;
    let alice = app.user("alice").await;
    (app, admin, alice)
}

async fn put_backend(app: &TestApp, user: &User, body: Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        &format!("/admin/projects/{}/shop/backends/b", user.name),
        Some(&user.token),
        Some(&body),
    )
    .await
}

/// `user`'s project `shop` with backend `b` at `url` and `ANY /api` forwarding to it.
async fn proxied(app: &TestApp, user: &User, url: &str) {
    app.project(user, "shop").await;
    let response = put_backend(app, user, json!({"urls": [url]})).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );
    let endpoint = json!({"method": "ANY", "path": "/api", "proxy": {"backend": "b"}});
    let response = app
        .post_endpoint(user, &format!("{}/shop", user.name), &endpoint)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );
}

#[tokio::test]
async fn without_a_list_only_admins_projects_may_proxy() {
    let upstream = Upstream::start("up").await;
    let (app, admin, alice) = node(&[]).await;
    app.project(&alice, "shop").await;
    let refused = put_backend(&app, &alice, json!({"urls": [upstream.url()]})).await;
    let body = assert_invalid(refused, "urls[0]").await;
    assert!(body.to_string().contains("--proxy-allow"), "{body}");
    proxied(&app, &admin, &upstream.url()).await;
    let response = app.get("/root/shop/api/x").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn listed_networks_are_allowed_and_everything_else_is_refused_by_field() {
    let upstream = Upstream::start("up").await;
    let (app, _, alice) = node(&["127.0.0.1/32"]).await;
    proxied(&app, &alice, &upstream.url()).await;
    assert_eq!(app.get("/alice/shop/api/x").await.status(), StatusCode::OK);
    for (body, field) in [
        (json!({"urls": ["http://10.1.2.3:80"]}), "urls[0]"),
        (
            json!({"urls": [upstream.url(), "http://unlisted.example"]}),
            "urls[1]",
        ),
        (json!({"docker": {"match_labels": ["app=x"]}}), "docker"),
    ] {
        assert_invalid(put_backend(&app, &alice, body).await, field).await;
    }
    // A whole-project PUT is held to the same list.
    let whole = json!({"backends": [{"name": "b", "urls": ["http://10.9.9.9"]}]});
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&whole),
        )
        .await;
    assert_invalid(response, "backends[0].urls[0]").await;
}

#[tokio::test]
async fn metadata_and_link_local_addresses_need_an_explicit_network_even_under_a_star() {
    let (app, admin, alice) = node(&["*"]).await;
    app.project(&alice, "shop").await;
    for url in [
        "http://169.254.169.254",
        "http://[fe80::1]:80",
        "http://100.100.100.200",
    ] {
        assert_invalid(
            put_backend(&app, &alice, json!({"urls": [url]})).await,
            "urls[0]",
        )
        .await;
    }
    // An admin's project is not bounded.
    app.project(&admin, "shop").await;
    let response = put_backend(&app, &admin, json!({"urls": ["http://169.254.169.254"]})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_listed_name_reaches_only_the_listed_networks_it_resolves_to() {
    let upstream = Upstream::start("up").await;
    let port = upstream.addr.port();
    // `localhost` is listed, but none of its addresses (127.0.0.1, ::1) is.
    let (app, _, alice) = node(&["localhost", "10.0.0.0/8"]).await;
    proxied(&app, &alice, &format!("http://localhost:{port}")).await;
    assert_error(
        app.get("/alice/shop/api/x").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
    )
    .await;
    assert_eq!(
        upstream.request_count(),
        0,
        "the upstream was never reached"
    );
    // With its addresses listed too, it is reached.
    let (app, _, alice) = node(&["localhost", "127.0.0.0/8", "::1/128"]).await;
    proxied(&app, &alice, &format!("http://localhost:{port}")).await;
    assert_eq!(app.get("/alice/shop/api/x").await.status(), StatusCode::OK);
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn a_stored_backend_the_list_no_longer_permits_is_not_reached_after_a_restart() {
    let upstream = Upstream::start("up").await;
    let (app, _, alice) = node(&["127.0.0.1/32"]).await;
    proxied(&app, &alice, &upstream.url()).await;
    assert_eq!(app.get("/alice/shop/api/x").await.status(), StatusCode::OK);
    let mut app = app;
    app.config.proxy_allow = vec!["10.0.0.0/8".into()];
    let app = app.restart().await;
    assert_error(
        app.get("/alice/shop/api/x").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
    )
    .await;
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn the_put_that_repairs_a_broken_project_is_held_to_the_list() {
    let upstream = Upstream::start("up").await;
    let (app, _, alice) = node(&["127.0.0.1/32"]).await;
    proxied(&app, &alice, &upstream.url()).await;
    let mut config = app.config.clone();
    let db = app.db_path();
    let _dir = app.stop().await;
    let pool = sqlx::SqlitePool::connect(&crate::helpers::db_url(&db))
        .await
        .expect("database");
    sqlx::query("UPDATE endpoints SET definition = '{\"method\": 7}'")
        .execute(&pool)
        .await
        .expect("damage");
    pool.close().await;
    config.port = 0;
    let server = switchyard::server::start(config)
        .await
        .expect("the node starts");
    let whole = json!({"backends": [{"name": "b", "urls": ["http://10.9.9.9"]}]});
    let refused = reqwest::Client::new()
        .put(format!(
            "http://{}/admin/projects/alice/shop",
            server.addr()
        ))
        .bearer_auth(&alice.token)
        .json(&whole)
        .send()
        .await
        .expect("put");
    assert_invalid(refused, "backends[0].urls[0]").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_non_admins_jwks_url_is_bounded_like_their_backends() {
    let (app, admin, alice) = node(&["api.example.com"]).await;
    let policy = |url: &str| {
        json!({"auth": {"type": "jwt", "algorithms": ["RS256"], "jwks_url": url,
                        "issuer": "https://issuer.example/", "audience": "a"}})
    };
    // Alice's project: an internal address is refused at creation and in a change.
    let mut body = policy("http://127.0.0.1:9/jwks.json");
    body["name"] = json!("shop");
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&body),
        )
        .await;
    assert_invalid(response, "auth.jwks_url").await;
    app.project(&alice, "shop").await;
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&policy("http://169.254.169.254/latest")),
        )
        .await;
    assert_invalid(response, "auth.jwks_url").await;
    // A listed host is fine, and an admin is not bounded.
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&policy("https://api.example.com/.well-known/jwks.json")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.project(&admin, "shop").await;
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/root/shop",
            Some(&admin.token),
            Some(&policy("http://127.0.0.1:9/jwks.json")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}
