//! Per-project auth against the real server: the `api_key` policy (keys made, listed,
//! revoked, expiring), endpoint requirements (`public`, `scopes`, `subjects`), the 401/403
//! answers with their challenges, the verified caller reaching scripts, credentials passed
//! through untouched where nothing is asked, redaction in the journal, and restarts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};
use crate::upstream::Upstream;

const SHOP: &str = "/admin/projects/alice/shop";

/// An expired RS256 token from a foreign issuer, byte for byte as a client would send it.
const FOREIGN_JWT: &str = "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmVpZ24ifQ.eyJpc3MiOiJodHRwczovL2Zvcm\
VpZ24uZXhhbXBsZS8iLCJzdWIiOiJzb21lb25lIiwiZXhwIjoxMDAwMDAwMDAwfQ.c2lnbmF0dXJlLW5vdC1jaGVja2Vk";
const GARBAGE_BASIC: &str = "Basic !!not-base64!!";

/// Alice's `shop` under `policy`, with `endpoints`.
async fn shop(policy: Value, endpoints: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "shop", "auth": policy, "endpoints": endpoints})),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    (app, alice)
}

fn mock(id: &str, path: &str, auth: Option<Value>) -> Value {
    let mut endpoint = json!({"id": id, "method": "GET", "path": path,
                              "response": {"json": {"endpoint": id}}});
    if let Some(auth) = auth {
        endpoint["auth"] = auth;
    }
    endpoint
}

/// Makes a key; returns its answer (with `key`).
async fn make_key(app: &TestApp, user: &User, body: Value) -> Value {
    let response = app
        .call(
            Method::POST,
            &format!("{SHOP}/keys"),
            Some(&user.token),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "cache-control"), "no-store");
    json_body(response).await
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    app.send(Method::GET, path, None, headers, None).await
}

#[tokio::test]
async fn an_api_key_opens_the_project_and_nothing_else_does() {
    let (app, alice) = shop(
        json!({"type": "api_key"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    // No key: 401 with a challenge that says where the key goes.
    let response = app.get("/alice/shop/items").await;
    assert_eq!(
        header(&response, "www-authenticate"),
        r#"ApiKey realm="alice/shop", header="x-api-key""#
    );
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "credentials_required").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-api-key"),
        "{body}"
    );
    // A key, shown once.
    let made = make_key(&app, &alice, json!({"name": "ci", "scopes": ["read"]})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("syk_"), "{made}");
    assert_eq!(made["name"], "ci");
    assert_eq!(made["scopes"], json!(["read"]));
    assert_eq!(made["expires_at"], Value::Null);
    let response = get_with(&app, "/alice/shop/items", &[("x-api-key", &key)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({"endpoint": "items"}));
    // A wrong key and garbage are invalid, never echoed back.
    let mut wrong = key.clone();
    wrong.replace_range(key.len() - 4.., "AAAA");
    for presented in [wrong.as_str(), "garbage", "syk_"] {
        let response = get_with(&app, "/alice/shop/items", &[("x-api-key", presented)]).await;
        assert_eq!(
            header(&response, "www-authenticate"),
            r#"ApiKey realm="alice/shop", header="x-api-key", error="invalid_token""#
        );
        let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert!(!body.to_string().contains(presented), "{body}");
    }
    // A platform token is not a project key.
    let response = app
        .call(Method::GET, "/alice/shop/items", Some(&alice.token), None)
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "credentials_required").await;
    // Listed without its value.
    let response = app
        .call(
            Method::GET,
            &format!("{SHOP}/keys"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed = json_body(response).await;
    assert!(!listed.to_string().contains(&key[4..]), "{listed}");
    assert_eq!(listed["keys"][0]["id"], made["id"]);
    assert_eq!(listed["keys"][0]["name"], "ci");
    assert_eq!(listed["keys"][0]["expired"], false);
    // Revoked: refused at once, and a second revocation is a 404.
    let id = made["id"].as_str().unwrap();
    let response = app
        .call(
            Method::DELETE,
            &format!("{SHOP}/keys/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = get_with(&app, "/alice/shop/items", &[("x-api-key", &key)]).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let response = app
        .call(
            Method::DELETE,
            &format!("{SHOP}/keys/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "key_not_found").await;
}

#[tokio::test]
async fn keys_expire_are_named_once_and_belong_to_the_owner() {
    let (app, alice) = shop(
        json!({"type": "api_key"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let made = make_key(&app, &alice, json!({"name": "short", "expires_in": 1})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(made["expires_at"].is_string(), "{made}");
    let response = get_with(&app, "/alice/shop/items", &[("x-api-key", &key)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = get_with(&app, "/alice/shop/items", &[("x-api-key", &key)]).await;
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // Names are unique; bad bodies name their fields.
    let response = app
        .call(
            Method::POST,
            &format!("{SHOP}/keys"),
            Some(&alice.token),
            Some(&json!({"name": "short"})),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "key_exists").await;
    for (body, field) in [
        (json!({"name": "Bad Name"}), "name"),
        (json!({"name": "ok", "scopes": ["two words"]}), "scopes"),
        (json!({"name": "ok", "expires_in": 0}), "expires_in"),
    ] {
        let response = app
            .call(
                Method::POST,
                &format!("{SHOP}/keys"),
                Some(&alice.token),
                Some(&body),
            )
            .await;
        assert_invalid(response, field).await;
    }
    // Another user can neither list nor make keys of alice's project.
    let bob = app.user("bob").await;
    let response = app
        .call(Method::GET, &format!("{SHOP}/keys"), Some(&bob.token), None)
        .await;
    assert!(
        response.status() == StatusCode::FORBIDDEN || response.status() == StatusCode::NOT_FOUND,
        "{}",
        response.status()
    );
    let response = app
        .call(
            Method::POST,
            &format!("{SHOP}/keys"),
            Some(&bob.token),
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert!(response.status().is_client_error(), "{}", response.status());
    // A dry run makes no key.
    let response = app
        .call(
            Method::POST,
            &format!("{SHOP}/keys?dry_run=true"),
            Some(&alice.token),
            Some(&json!({"name": "dry"})),
        )
        .await;
    let body = json_body(response).await;
    assert!(!body.to_string().contains("syk_"), "{body}");
    let listed = json_body(
        app.call(
            Method::GET,
            &format!("{SHOP}/keys"),
            Some(&alice.token),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn endpoints_ask_for_scopes_and_subjects_and_public_ones_for_nothing() {
    let (app, alice) = shop(
        json!({"type": "api_key"}),
        json!([
            mock("read", "/items", Some(json!({"scopes": ["read"]}))),
            mock(
                "write",
                "/admin",
                Some(json!({"scopes": ["read", "write"]}))
            ),
            mock("ci-only", "/deploy", Some(json!({"subjects": ["ci"]}))),
            mock("open", "/status", Some(json!({"public": true}))),
        ]),
    )
    .await;
    let reader = make_key(&app, &alice, json!({"name": "reader", "scopes": ["read"]})).await;
    let ci = make_key(
        &app,
        &alice,
        json!({"name": "ci", "scopes": ["read", "write"]}),
    )
    .await;
    let reader = reader["key"].as_str().unwrap();
    let ci = ci["key"].as_str().unwrap();
    let status = |response: &reqwest::Response| response.status();
    let r = get_with(&app, "/alice/shop/items", &[("x-api-key", reader)]).await;
    assert_eq!(status(&r), StatusCode::OK);
    let r = get_with(&app, "/alice/shop/admin", &[("x-api-key", ci)]).await;
    assert_eq!(status(&r), StatusCode::OK);
    // Partly present: 403, naming the missing scope, with the required ones in the challenge.
    let r = get_with(&app, "/alice/shop/admin", &[("x-api-key", reader)]).await;
    assert_eq!(
        header(&r, "www-authenticate"),
        r#"ApiKey realm="alice/shop", error="insufficient_scope", scope="read write""#
    );
    let body = assert_error(r, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`write`"),
        "{body}"
    );
    // Subjects.
    let r = get_with(&app, "/alice/shop/deploy", &[("x-api-key", ci)]).await;
    assert_eq!(status(&r), StatusCode::OK);
    let r = get_with(&app, "/alice/shop/deploy", &[("x-api-key", reader)]).await;
    assert_error(r, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // Without a key, a restricted endpoint is 401 (not 403): credentials come first.
    let r = app.get("/alice/shop/deploy").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
    // A public endpoint, with no key and with garbage credentials.
    let r = app.get("/alice/shop/status").await;
    assert_eq!(status(&r), StatusCode::OK);
    let r = get_with(
        &app,
        "/alice/shop/status",
        &[("x-api-key", "garbage"), ("authorization", GARBAGE_BASIC)],
    )
    .await;
    assert_eq!(status(&r), StatusCode::OK);
    // Unknown paths stay 404 without a key (the policy guards endpoints, not the 404).
    let r = app.get("/alice/shop/nothing-here").await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_key_in_a_query_parameter_and_policies_changed_at_runtime() {
    let (app, alice) = shop(
        json!({"type": "none"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let made = make_key(&app, &alice, json!({"name": "ci"})).await;
    let key = made["key"].as_str().unwrap();
    // Under `none`, everyone.
    assert_eq!(app.get("/alice/shop/items").await.status(), StatusCode::OK);
    // Switched to a key in the query: one revision, served at once.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"auth": {"type": "api_key", "query": "api_key"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["auth"], json!({"type": "api_key", "query": "api_key"}));
    let r = app.get("/alice/shop/items").await;
    assert_eq!(
        header(&r, "www-authenticate"),
        r#"ApiKey realm="alice/shop", query="api_key""#
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
    let r = app
        .get(&format!("/alice/shop/items?page=1&api_key={key}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Bad policies are refused by field.
    for (policy, field) in [
        (
            json!({"type": "api_key", "header": "x-client"}),
            "auth.header",
        ),
        (
            json!({"type": "api_key", "header": "authorization"}),
            "auth.header",
        ),
        (json!({"type": "api_key", "query": "page"}), "auth.query"),
    ] {
        let response = app
            .call(
                Method::PATCH,
                SHOP,
                Some(&alice.token),
                Some(&json!({"auth": policy})),
            )
            .await;
        assert_invalid(response, field).await;
    }
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"auth": {"type": "magic"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A bad endpoint requirement is refused too.
    let response = app
        .post_endpoint(
            &alice,
            "alice/shop",
            &mock("x", "/x", Some(json!({"public": true, "scopes": ["read"]}))),
        )
        .await;
    assert_invalid(response, "auth.public").await;
}

#[tokio::test]
async fn keys_and_policies_survive_a_restart() {
    let (app, alice) = shop(
        json!({"type": "api_key", "header": "x-shop-key"}),
        json!([mock("items", "/items", Some(json!({"scopes": ["read"]})))]),
    )
    .await;
    let kept = make_key(&app, &alice, json!({"name": "kept", "scopes": ["read"]})).await;
    let gone = make_key(&app, &alice, json!({"name": "gone", "scopes": ["read"]})).await;
    let id = gone["id"].as_str().unwrap();
    let response = app
        .call(
            Method::DELETE,
            &format!("{SHOP}/keys/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let app = app.restart().await;
    let kept = kept["key"].as_str().unwrap();
    let gone = gone["key"].as_str().unwrap();
    let r = get_with(&app, "/alice/shop/items", &[("x-shop-key", kept)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get_with(&app, "/alice/shop/items", &[("x-shop-key", gone)]).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let r = app.get("/alice/shop/items").await;
    assert_eq!(
        header(&r, "www-authenticate"),
        r#"ApiKey realm="alice/shop", header="x-shop-key""#
    );
}

/// A script that answers with what it was given.
const ECHO_SCRIPT: &str = r#"
app.get("/echo", (req) => ({ headers: req.headers, auth: req.auth }));
"#;

async fn put_script(app: &TestApp, user: &User) {
    let response = app
        .send(
            Method::PUT,
            &format!("{SHOP}/script"),
            Some(&user.token),
            &[("content-type", "application/javascript")],
            Some(ECHO_SCRIPT.as_bytes().to_vec()),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn a_script_sees_the_verified_caller() {
    let (app, alice) = shop(json!({"type": "api_key"}), json!([])).await;
    put_script(&app, &alice).await;
    let made = make_key(
        &app,
        &alice,
        json!({"name": "ci", "scopes": ["read", "write"]}),
    )
    .await;
    let key = made["key"].as_str().unwrap();
    let r = get_with(&app, "/alice/shop/echo", &[("x-api-key", key)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_body(r).await;
    assert_eq!(
        body["auth"],
        json!({"subject": "ci", "scopes": ["read", "write"], "permissions": [],
               "method": "api_key", "claims": null})
    );
    // The script's routes are under the project's policy.
    let r = app.get("/alice/shop/echo").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
}

#[tokio::test]
async fn where_nothing_is_asked_credentials_pass_through_untouched() {
    let upstream = Upstream::start("a").await;
    let (app, alice) = shop(
        json!({"type": "none"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let response = app
        .call(
            Method::PUT,
            &format!("{SHOP}/backends/a"),
            Some(&alice.token),
            Some(&json!({"urls": [upstream.url()]})),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let proxy = json!({"id": "api", "method": "ANY", "path": "/api",
                       "proxy": {"backend": "a", "strip_prefix": true}});
    let response = app.post_endpoint(&alice, "alice/shop", &proxy).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    put_script(&app, &alice).await;
    for credential in [FOREIGN_JWT, GARBAGE_BASIC] {
        // The mock answers; never a 401.
        let r = get_with(&app, "/alice/shop/items", &[("authorization", credential)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{credential}");
        // The script sees the header exactly, and no verified caller.
        let r = get_with(
            &app,
            "/alice/shop/echo",
            &[
                ("authorization", credential),
                ("cookie", "session=abc; theme=dark"),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = json_body(r).await;
        assert_eq!(body["headers"]["authorization"], credential);
        assert_eq!(body["headers"]["cookie"], "session=abc; theme=dark");
        assert_eq!(body["auth"], Value::Null);
    }
    for credential in [FOREIGN_JWT, GARBAGE_BASIC] {
        let r = get_with(
            &app,
            "/alice/shop/api/thing",
            &[("authorization", credential)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(upstream.last().header("authorization"), Some(credential));
    }
    // The same on public endpoints of a project that asks for keys.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"auth": {"type": "api_key"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let public = json!({"public": true});
    for (id, body) in [
        ("items", mock("items", "/items", Some(public.clone()))),
        (
            "api",
            json!({"id": "api", "method": "ANY", "path": "/api", "auth": public,
                   "proxy": {"backend": "a", "strip_prefix": true}}),
        ),
    ] {
        let response = app
            .call(
                Method::PUT,
                &format!("{SHOP}/endpoints/{id}"),
                Some(&alice.token),
                Some(&body),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            json_body(response).await
        );
    }
    for credential in [FOREIGN_JWT, GARBAGE_BASIC] {
        let r = get_with(&app, "/alice/shop/items", &[("authorization", credential)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{credential}");
        let r = get_with(
            &app,
            "/alice/shop/api/thing",
            &[("authorization", credential)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(upstream.last().header("authorization"), Some(credential));
    }
}

#[tokio::test]
async fn no_key_reaches_the_journal() {
    let (app, alice) = shop(
        json!({"type": "api_key", "header": "x-shop-token"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let made = make_key(&app, &alice, json!({"name": "ci"})).await;
    let key = made["key"].as_str().unwrap();
    let r = get_with(&app, "/alice/shop/items", &[("x-shop-token", key)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("x-shop-token", "wrong-secret-value")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .call(
            Method::GET,
            &format!("{SHOP}/journal"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed = json_body(response).await;
    // The verified caller is journaled; the refused one has none.
    let subjects: Vec<&Value> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["subject"])
        .collect();
    assert!(subjects.contains(&&json!("ci")), "{listed}");
    assert!(subjects.contains(&&Value::Null), "{listed}");
    let journal = listed.to_string();
    assert!(!journal.contains(&key[4..]), "{journal}");
    assert!(!journal.contains("wrong-secret-value"), "{journal}");
    assert!(journal.contains("x-shop-token"), "{journal}");
}

/// The value of `name` in a response, if present.
fn maybe(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("text").to_owned())
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_project() {
    let (app, alice) = shop(
        json!({"type": "api_key"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let cors = json!({"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "POST"],
                      "allow_headers": ["content-type", "x-api-key"], "expose_headers": ["x-total-count"],
                      "allow_credentials": true, "max_age_secs": 600});
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"cors": cors})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await["cors"]["allow_origins"],
        json!(["https://app.example.com"])
    );
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::OPTIONS,
                "/alice/shop/items",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", method),
                    ("access-control-request-headers", headers),
                ],
                None,
            )
            .await
        }
    };
    // Allowed: 204 without a key (a browser sends none on a preflight), with the policy.
    let r = preflight("https://app.example.com", "POST", "Content-Type, X-API-Key").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(header(&r, "access-control-allow-credentials"), "true");
    assert_eq!(header(&r, "access-control-max-age"), "600");
    assert!(header(&r, "access-control-allow-methods").contains("POST"));
    assert!(
        header(&r, "access-control-allow-headers")
            .to_lowercase()
            .contains("x-api-key")
    );
    assert!(header(&r, "vary").to_lowercase().contains("origin"));
    // Refused: another origin, method or header, each named.
    for (origin, method, headers, named) in [
        (
            "https://evil.example",
            "GET",
            "content-type",
            "evil.example",
        ),
        (
            "https://app.example.com",
            "DELETE",
            "content-type",
            "DELETE",
        ),
        ("https://app.example.com", "GET", "x-other", "x-other"),
    ] {
        let r = preflight(origin, method, headers).await;
        if origin.contains("evil") {
            assert_eq!(maybe(&r, "access-control-allow-origin"), None);
        }
        let body = assert_error(r, StatusCode::FORBIDDEN, "cors_refused").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains(named),
            "{body}"
        );
    }
    // An actual request from the allowed origin gets the headers, errors included (a
    // browser could not read the 401 otherwise); another origin gets none.
    let made = make_key(&app, &alice, json!({"name": "web"})).await;
    let key = made["key"].as_str().unwrap();
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("origin", "https://app.example.com"), ("x-api-key", key)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(header(&r, "access-control-expose-headers"), "x-total-count");
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example.com"
    );
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("origin", "https://evil.example"), ("x-api-key", key)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(maybe(&r, "access-control-allow-origin"), None);
    // An OPTIONS that is no preflight goes to the endpoints (none takes OPTIONS here: 405).
    let r = app
        .send(Method::OPTIONS, "/alice/shop/items", None, &[], None)
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Bad policies are refused by field; `null` removes the policy.
    for (cors, field) in [
        (
            json!({"allow_origins": ["https://a.example/path"]}),
            "cors.allow_origins",
        ),
        (
            json!({"allow_origins": ["*"], "allow_credentials": true}),
            "cors.allow_origins[0]",
        ),
    ] {
        let response = app
            .call(
                Method::PATCH,
                SHOP,
                Some(&alice.token),
                Some(&json!({"cors": cors})),
            )
            .await;
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"cors": null})),
        )
        .await;
    assert_eq!(json_body(response).await["cors"], Value::Null);
    let r = preflight("https://app.example.com", "POST", "content-type").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_and_recovers() {
    let (app, alice) = shop(
        json!({"type": "none"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"rate_limit": {"requests": 2, "per_secs": 1}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(app.get("/alice/shop/items").await.status(), StatusCode::OK);
    }
    let r = app.get("/alice/shop/items").await;
    assert_eq!(header(&r, "retry-after"), "1");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    // Counted in the project's stats.
    let stats = json_body(
        app.call(
            Method::GET,
            &format!("{SHOP}/stats"),
            Some(&alice.token),
            None,
        )
        .await,
    )
    .await;
    assert!(
        stats["status_classes"]["4xx"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    // One request every half second comes back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get("/alice/shop/items").await.status(), StatusCode::OK);
    // An edit elsewhere in the project keeps the limiter's count (same limit).
    let r = app.get("/alice/shop/items").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = app
        .post_endpoint(&alice, "alice/shop", &mock("other", "/other", None))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let r = app.get("/alice/shop/items").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Removed: no limit any more.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"rate_limit": null})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(app.get("/alice/shop/items").await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_rate_limit_per_key_counts_each_caller_apart() {
    let (app, alice) = shop(
        json!({"type": "api_key"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"rate_limit": {"requests": 1, "per_secs": 60, "by": "key"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let a = make_key(&app, &alice, json!({"name": "a"})).await;
    let b = make_key(&app, &alice, json!({"name": "b"})).await;
    let (a, b) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let r = get_with(&app, "/alice/shop/items", &[("x-api-key", a)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get_with(&app, "/alice/shop/items", &[("x-api-key", a)]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let r = get_with(&app, "/alice/shop/items", &[("x-api-key", b)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Refused credentials are answered 401 before the limit is counted.
    let r = get_with(&app, "/alice/shop/items", &[("x-api-key", "garbage")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A bad limit names its field.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"rate_limit": {"requests": 0, "per_secs": 1}})),
        )
        .await;
    assert_invalid(response, "rate_limit.requests").await;
}

#[tokio::test]
async fn a_proxy_tells_its_upstream_who_the_caller_is_when_asked() {
    let upstream = Upstream::start("a").await;
    let (app, alice) = shop(
        json!({"type": "api_key", "subject_header": "x-switchyard-subject"}),
        json!([]),
    )
    .await;
    let response = app
        .call(
            Method::PUT,
            &format!("{SHOP}/backends/a"),
            Some(&alice.token),
            Some(&json!({"urls": [upstream.url()]})),
        )
        .await;
    assert!(response.status().is_success());
    for proxy in [
        json!({"id": "api", "method": "ANY", "path": "/api", "proxy": {"backend": "a"}}),
        json!({"id": "open", "method": "ANY", "path": "/open", "auth": {"public": true},
               "proxy": {"backend": "a"}}),
    ] {
        let response = app.post_endpoint(&alice, "alice/shop", &proxy).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let made = make_key(&app, &alice, json!({"name": "ci"})).await;
    let key = made["key"].as_str().unwrap();
    // The verified subject, whatever the caller claimed.
    let r = get_with(
        &app,
        "/alice/shop/api/x",
        &[("x-api-key", key), ("x-switchyard-subject", "admin")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        upstream.last().headers_named("x-switchyard-subject"),
        ["ci"]
    );
    // On a public endpoint nobody is verified: a claimed subject never reaches the upstream.
    let r = get_with(
        &app,
        "/alice/shop/open/x",
        &[("x-switchyard-subject", "admin")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        upstream
            .last()
            .headers_named("x-switchyard-subject")
            .is_empty()
    );
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn basic_users_are_stored_hashed_and_checked_with_limits() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.login.failures_per_address = 3;
        c.login.failures_per_user = 100;
        c.login.failure_window = Duration::from_secs(60);
    })
    .await;
    let alice = app.user("alice").await;
    let policy =
        json!({"type": "basic", "users": [{"username": "ops", "password": "correct horse"}]});
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "shop", "auth": policy, "endpoints": [mock("items", "/items", None)]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Only the hash is kept and shown.
    let project = json_body(response).await;
    let user = &project["auth"]["users"][0];
    assert_eq!(user["username"], "ops");
    assert!(
        user["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$"),
        "{project}"
    );
    assert!(user.get("password").is_none() && !project.to_string().contains("correct horse"));
    // No credentials, or not Basic ones: the challenge.
    for authorization in [None, Some("Bearer x"), Some("Basic !!not-base64!!")] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let r = get_with(&app, "/alice/shop/items", &headers).await;
        assert_eq!(
            header(&r, "www-authenticate"),
            r#"Basic realm="alice/shop", charset="UTF-8""#
        );
        assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
    }
    // Right, twice (the second from the verified pairs, no hashing).
    for _ in 0..2 {
        let r = get_with(
            &app,
            "/alice/shop/items",
            &[("authorization", &basic("ops", "correct horse"))],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Wrong password, unknown user: the same answer.
    for (user, password) in [("ops", "w9-not-it"), ("nobody", "correct horse")] {
        let r = get_with(
            &app,
            "/alice/shop/items",
            &[("authorization", &basic(user, password))],
        )
        .await;
        let body = assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert!(!body.to_string().contains(password), "{body}");
    }
    // A third failure from this address, then a 429 before any hash is computed.
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("authorization", &basic("ops", "guess"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("authorization", &basic("ops", "guess-again"))],
    )
    .await;
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    // A pair already verified still passes.
    let r = get_with(
        &app,
        "/alice/shop/items",
        &[("authorization", &basic("ops", "correct horse"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Read back and sent again (as pull then push would), the hash is kept as it is.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"auth": project["auth"]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Bad users are refused by field.
    for (users, field) in [
        (json!([]), "auth.users"),
        (
            json!([{"username": "a:b", "password": "x"}]),
            "auth.users[0].username",
        ),
        (json!([{"username": "ops"}]), "auth.users[0].password"),
        (
            json!([{"username": "ops", "password_hash": "plain"}]),
            "auth.users[0].password_hash",
        ),
    ] {
        let response = app
            .call(
                Method::PATCH,
                SHOP,
                Some(&alice.token),
                Some(&json!({"auth": {"type": "basic", "users": users}})),
            )
            .await;
        assert_invalid(response, field).await;
    }
}

#[tokio::test]
async fn the_platform_policy_lets_switchyard_users_in_or_only_the_owner() {
    let (app, alice) = shop(
        json!({"type": "platform"}),
        json!([mock("items", "/items", None)]),
    )
    .await;
    let bob = app.user("bob").await;
    // No token: the bearer challenge.
    let r = app.get("/alice/shop/items").await;
    assert_eq!(
        header(&r, "www-authenticate"),
        r#"Bearer realm="alice/shop""#
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
    // Any user's token, twice (the second from the tokens seen lately).
    for user in [&alice, &bob, &bob] {
        let r = app
            .call(Method::GET, "/alice/shop/items", Some(&user.token), None)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .call(
            Method::GET,
            "/alice/shop/items",
            Some("sy_not-a-token"),
            None,
        )
        .await;
    assert_eq!(
        header(&r, "www-authenticate"),
        r#"Bearer realm="alice/shop", error="invalid_token""#
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // Owner only.
    let response = app
        .call(
            Method::PATCH,
            SHOP,
            Some(&alice.token),
            Some(&json!({"auth": {"type": "platform", "owner_only": true}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let r = app
        .call(Method::GET, "/alice/shop/items", Some(&alice.token), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(Method::GET, "/alice/shop/items", Some(&bob.token), None)
        .await;
    let body = assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`bob`"),
        "{body}"
    );
    // A script sees who called.
    put_script(&app, &alice).await;
    let r = app
        .call(Method::GET, "/alice/shop/echo", Some(&alice.token), None)
        .await;
    assert_eq!(json_body(r).await["auth"]["subject"], "alice");
}
