//! `GET /admin/explain`: which endpoint answers a request, or why none does.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, json_body, spawn_app};

async fn shop() -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_with(
        &alice,
        "shop",
        json!([
            {"id": "item", "method": "GET", "path": "/items/{id}", "response": {}},
            {"id": "put-item", "method": "PUT", "path": "/items/{id}", "response": {}},
            {"id": "user", "method": "GET", "path": "/users/{id}.json", "response": {}},
            {"id": "files", "method": "GET", "path": "/files/{*rest}", "response": {}},
        ]),
    )
    .await;
    (app, alice)
}

async fn explain(app: &TestApp, user: &User, method: &str, path: &str) -> Value {
    let url = format!(
        "/admin/explain?method={method}&path={}",
        path.replace('/', "%2F")
    );
    let response = app.call(Method::GET, &url, Some(&user.token), None).await;
    assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
    json_body(response).await
}

#[tokio::test]
async fn a_hit_names_the_endpoint_and_its_parameters() {
    let (app, alice) = shop().await;
    let answer = explain(&app, &alice, "GET", "/alice/shop/items/7").await;
    assert_eq!(answer["matched"], true);
    assert_eq!(answer["project"]["mount"], "/alice/shop");
    assert_eq!(
        answer["endpoint"],
        json!({"id": "item", "method": "GET", "path": "/items/{id}"})
    );
    assert_eq!(answer["params"], json!({"id": "7"}));
    let tail = explain(&app, &alice, "HEAD", "/alice/shop/files/a/b.txt").await;
    assert_eq!(tail["endpoint"]["id"], "files");
    assert_eq!(tail["params"], json!({"rest": "a/b.txt"}));
}

#[tokio::test]
async fn a_wrong_method_lists_the_endpoints_that_match_the_path() {
    let (app, alice) = shop().await;
    let answer = explain(&app, &alice, "DELETE", "/alice/shop/items/7").await;
    assert_eq!(answer["matched"], false);
    assert_eq!(answer["reason"], "method_not_allowed");
    assert_eq!(answer["allow"], "GET, HEAD, PUT");
    let candidates = answer["candidates"].as_array().expect("candidates");
    assert_eq!(candidates[0]["id"], "item");
    assert_eq!(candidates[0]["miss"], "wrong_method");
    assert_eq!(candidates[1]["id"], "put-item");
    assert_eq!(candidates[1]["miss"], "wrong_method");
}

#[tokio::test]
async fn a_near_miss_says_where_the_path_differs() {
    let (app, alice) = shop().await;
    let answer = explain(&app, &alice, "GET", "/alice/shop/item/7").await;
    assert_eq!(answer["reason"], "no_endpoint");
    let first = &answer["candidates"][0];
    assert_eq!(first["miss"], "path_differs");
    assert_eq!(first["segment"], 1);
    assert_eq!(first["why"], "expected `items`, got `item`");

    let answer = explain(&app, &alice, "GET", "/alice/shop/users/7.xml").await;
    let first = &answer["candidates"][0];
    assert_eq!(first["id"], "user");
    assert_eq!(first["segment"], 2);
    assert_eq!(first["why"], "`7.xml` does not fit the pattern `{}.json`");

    let answer = explain(&app, &alice, "GET", "/alice/shop/items/7/extra").await;
    let first = &answer["candidates"][0];
    assert_eq!(first["id"], "item");
    assert_eq!(first["segment"], 3);
    assert!(
        answer["candidates"].as_array().unwrap().len() <= 5,
        "{answer}"
    );
}

#[tokio::test]
async fn other_places_and_bad_questions() {
    let (app, alice) = shop().await;
    let bob = app.user("bob").await;
    let none = explain(&app, &alice, "GET", "/alice/nothing/x").await;
    assert_eq!(none["reason"], "no_project");
    let platform = explain(&app, &alice, "GET", "/admin/projects").await;
    assert_eq!(platform["reason"], "platform");
    let url = "/admin/explain?path=%2Falice%2Fshop%2Fitems%2F1";
    assert_error(
        app.call(Method::GET, url, Some(&bob.token), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(Method::GET, url, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    for bad in [
        "/admin/explain?path=alice%2Fshop",
        "/admin/explain?method=B%20AD&path=%2Fa",
        "/admin/explain",
    ] {
        let response = app.call(Method::GET, bad, Some(&alice.token), None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
