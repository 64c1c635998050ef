//! Endpoint CRUD through the admin API, and what the project then serves.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};

const BASE: &str = "/admin/projects/alice/demo/endpoints";

/// A server with admin alice, her project `demo`, and nothing in it.
async fn alice_with_demo() -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    (app, alice)
}

async fn endpoint_call(
    app: &TestApp,
    user: &User,
    method: Method,
    id: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    app.call(method, &format!("{BASE}/{id}"), Some(&user.token), body)
        .await
}

fn route(method: &str, path: &str, json: Value) -> Value {
    json!({"method": method, "path": path, "response": {"json": json}})
}

#[tokio::test]
async fn posting_an_endpoint_answers_201_and_serves_it_at_once() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &route("GET", "/hello", json!({"hi": 1})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"2\"");
    let body = json_body(response).await;
    assert!(
        body["id"].as_str().is_some_and(|id| id.starts_with("ep_")),
        "{body}"
    );
    assert_eq!(body["url"], "/alice/demo/hello");
    assert_eq!(body["revision"], 2);
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/hello");
    assert_eq!(body["response"]["status"], 200);
    assert_eq!(
        app.fetch("/alice/demo/hello").await,
        (StatusCode::OK, r#"{"hi":1}"#.to_owned())
    );
}

#[tokio::test]
async fn methods_are_stored_in_upper_case() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(&alice, "alice/demo", &route("post", "/things", json!(1)))
        .await;
    assert_eq!(json_body(response).await["method"], "POST");
    let response = app
        .post_endpoint(&alice, "alice/demo", &route("any", "/all", json!(1)))
        .await;
    assert_eq!(json_body(response).await["method"], "ANY");
}

#[tokio::test]
async fn endpoints_are_listed_and_read_one_by_one() {
    let (app, alice) = alice_with_demo().await;
    let first = app
        .add_json_endpoint(&alice, "alice/demo", "/one", json!(1))
        .await;
    let second = app
        .add_json_endpoint(&alice, "alice/demo", "/two", json!(2))
        .await;
    let response = app.call(Method::GET, BASE, Some(&alice.token), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"3\"");
    let list = json_body(response).await;
    assert_eq!(list["revision"], 3);
    let ids: Vec<&str> = list["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);

    let response = endpoint_call(&app, &alice, Method::GET, &second, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"3\"");
    let one = json_body(response).await;
    assert_eq!(one["id"], second.as_str());
    assert_eq!(one["path"], "/two");
    assert_eq!(one["url"], "/alice/demo/two");
    assert_eq!(one["response"]["json"], 2);
}

#[tokio::test]
async fn put_replaces_an_endpoint() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/old", json!("old"))
        .await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PUT,
        &id,
        Some(&route("GET", "/new", json!("new"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["url"], "/alice/demo/new");
    assert_eq!(body["revision"], 3);
    assert_eq!(app.fetch("/alice/demo/old").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/new").await.1, r#""new""#);
}

#[tokio::test]
async fn put_to_a_new_id_creates_it() {
    let (app, alice) = alice_with_demo().await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PUT,
        "my-stable-id",
        Some(&route("GET", "/stable", json!(true))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["id"], "my-stable-id");
    let response = endpoint_call(&app, &alice, Method::GET, "my-stable-id", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.fetch("/alice/demo/stable").await.1, "true");
}

#[tokio::test]
async fn put_with_another_id_in_the_body_is_422() {
    let (app, alice) = alice_with_demo().await;
    let mut spec = route("GET", "/x", json!(1));
    spec["id"] = json!("other");
    let response = endpoint_call(&app, &alice, Method::PUT, "mine", Some(&spec)).await;
    assert_invalid(response, "id").await;
    assert_eq!(app.fetch("/alice/demo/x").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_changes_only_the_fields_it_names() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/thing", json!({"kept": true}))
        .await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PATCH,
        &id,
        Some(&json!({"response": {"status": 201}})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["response"]["status"], 201);
    assert_eq!(body["response"]["json"], json!({"kept": true}));
    assert_eq!(body["path"], "/thing");
    assert_eq!(body["revision"], 3);
    let served = app.get("/alice/demo/thing").await;
    assert_eq!(served.status(), StatusCode::CREATED);
    assert_eq!(served.text().await.expect("body"), r#"{"kept":true}"#);
}

#[tokio::test]
async fn patch_with_null_removes_a_header() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &json!({"method": "GET", "path": "/h", "response": {
                "body": "x", "headers": {"x-gone": "soon", "x-stays": "yes"}}}),
        )
        .await;
    let id = json_body(response).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let served = app.get("/alice/demo/h").await;
    assert_eq!(header(&served, "x-gone"), "soon");
    let response = endpoint_call(
        &app,
        &alice,
        Method::PATCH,
        &id,
        Some(&json!({"response": {"headers": {"x-gone": null}}})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["response"]["headers"], json!({"x-stays": "yes"}));
    let served = app.get("/alice/demo/h").await;
    assert!(served.headers().get("x-gone").is_none());
    assert_eq!(header(&served, "x-stays"), "yes");
}

#[tokio::test]
async fn patch_may_switch_the_kind_of_body() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/b", json!({"was": "json"}))
        .await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PATCH,
        &id,
        Some(&json!({"response": {"json": null, "body": "now text"}})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let served = app.get("/alice/demo/b").await;
    assert!(header(&served, "content-type").starts_with("text/plain"));
    assert_eq!(served.text().await.expect("body"), "now text");
}

#[tokio::test]
async fn a_patch_that_breaks_the_endpoint_is_422_and_changes_nothing() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/p", json!("fine"))
        .await;
    for (patch, field) in [
        (json!({"response": {"status": 99}}), "response.status"),
        (json!({"path": "no-slash"}), "path"),
        (json!({"response": {"body": "and json"}}), "response.body"),
        (json!({"respnse": {}}), ""),
        (json!({"method": 5}), "method"),
    ] {
        let response = endpoint_call(&app, &alice, Method::PATCH, &id, Some(&patch)).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        if !field.is_empty() {
            assert_eq!(body["error"]["details"][0]["field"], field, "{patch}");
        }
    }
    for patch in [json!([1, 2]), json!("text")] {
        let response = endpoint_call(&app, &alice, Method::PATCH, &id, Some(&patch)).await;
        assert_invalid(response, "body").await;
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 2);
    assert_eq!(
        app.fetch("/alice/demo/p").await,
        (StatusCode::OK, r#""fine""#.to_owned())
    );
}

#[tokio::test]
async fn deleting_an_endpoint_stops_serving_it() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/bye", json!("bye"))
        .await;
    let keep = app
        .add_json_endpoint(&alice, "alice/demo", "/stay", json!("stay"))
        .await;
    let response = endpoint_call(&app, &alice, Method::DELETE, &id, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "etag"), "\"4\"");
    assert_eq!(app.fetch("/alice/demo/bye").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/stay").await.1, r#""stay""#);
    let response = endpoint_call(&app, &alice, Method::GET, &id, None).await;
    assert_error(response, StatusCode::NOT_FOUND, "endpoint_not_found").await;
    let response = endpoint_call(&app, &alice, Method::GET, &keep, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_endpoint_ids_are_404() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/x", json!(1))
        .await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"response": {"status": 201}}))),
        (Method::DELETE, None),
    ] {
        let response = endpoint_call(&app, &alice, method.clone(), "ep_nope", body.as_ref()).await;
        assert_error(response, StatusCode::NOT_FOUND, "endpoint_not_found").await;
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 2);
}

#[tokio::test]
async fn endpoints_of_a_missing_project_are_404() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(&alice, "alice/ghost", &route("GET", "/x", json!(1)))
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/ghost/endpoints",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
}

#[tokio::test]
async fn the_same_method_and_path_twice_is_a_route_conflict() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/items", json!("first"))
        .await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &route("GET", "/items", json!("second")),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    app.post_endpoint(
        &alice,
        "alice/demo",
        &route("GET", "/items/{id}", json!("one")),
    )
    .await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &route("GET", "/items/{other}", json!("two")),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &route("get", "/items", json!("lower")),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    assert_eq!(app.revision(&alice, "alice/demo").await, 3);
    assert_eq!(app.fetch("/alice/demo/items").await.1, r#""first""#);
    assert_eq!(app.fetch("/alice/demo/items/7").await.1, r#""one""#);
}

#[tokio::test]
async fn moving_an_endpoint_onto_another_route_is_a_conflict() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!("a"))
        .await;
    let b = app
        .add_json_endpoint(&alice, "alice/demo", "/b", json!("b"))
        .await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PATCH,
        &b,
        Some(&json!({"path": "/a"})),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    let response = endpoint_call(
        &app,
        &alice,
        Method::PUT,
        "fresh",
        Some(&route("GET", "/a", json!("c"))),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    assert_eq!(app.fetch("/alice/demo/a").await.1, r#""a""#);
    assert_eq!(app.fetch("/alice/demo/b").await.1, r#""b""#);
}

#[tokio::test]
async fn get_and_post_on_one_path_coexist() {
    let (app, alice) = alice_with_demo().await;
    for method in ["GET", "POST"] {
        let response = app
            .post_endpoint(
                &alice,
                "alice/demo",
                &route(method, "/things", json!(method)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{method}");
    }
    assert_eq!(app.fetch("/alice/demo/things").await.1, r#""GET""#);
    let posted = app
        .call(Method::POST, "/alice/demo/things", None, None)
        .await;
    assert_eq!(posted.text().await.expect("body"), r#""POST""#);
}

#[tokio::test]
async fn get_and_any_on_one_path_coexist() {
    let (app, alice) = alice_with_demo().await;
    for method in ["GET", "ANY"] {
        let response = app
            .post_endpoint(
                &alice,
                "alice/demo",
                &route(method, "/things", json!(method)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{method}");
    }
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &route("ANY", "/things", json!("again")),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
}

#[tokio::test]
async fn posting_an_id_that_exists_is_409() {
    let (app, alice) = alice_with_demo().await;
    let mut spec = route("GET", "/first", json!(1));
    spec["id"] = json!("fixed");
    let response = app.post_endpoint(&alice, "alice/demo", &spec).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut again = route("GET", "/second", json!(2));
    again["id"] = json!("fixed");
    let response = app.post_endpoint(&alice, "alice/demo", &again).await;
    assert_error(response, StatusCode::CONFLICT, "endpoint_exists").await;
    assert_eq!(app.fetch("/alice/demo/first").await.1, "1");
    assert_eq!(
        app.fetch("/alice/demo/second").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_client_chosen_id_is_kept() {
    let (app, alice) = alice_with_demo().await;
    let mut spec = route("GET", "/mine", json!("mine"));
    spec["id"] = json!("Users_List-2");
    let response = app.post_endpoint(&alice, "alice/demo", &spec).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["id"], "Users_List-2");
    let read = endpoint_call(&app, &alice, Method::GET, "Users_List-2", None).await;
    assert_eq!(json_body(read).await["path"], "/mine");
}

#[tokio::test]
async fn invalid_definitions_are_422_naming_the_field() {
    let (app, alice) = alice_with_demo().await;
    let cases = [
        (
            json!({"method": "GET", "path": "items", "response": {}}),
            "path",
        ),
        (
            json!({"method": "GET", "path": "/a/{", "response": {}}),
            "path",
        ),
        (
            json!({"method": "GET", "path": "/{x}/{x}", "response": {}}),
            "path",
        ),
        (
            json!({"method": "GET", "path": "/{*rest}/more", "response": {}}),
            "path",
        ),
        (
            json!({"method": "GET", "path": "/a b", "response": {}}),
            "path",
        ),
        (
            json!({"method": "GE T", "path": "/", "response": {}}),
            "method",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"status": 99}}),
            "response.status",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"status": 600}}),
            "response.status",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"status": 204, "body": "x"}}),
            "response.status",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"json": 1, "body": "x"}}),
            "response.body",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"body_base64": "not base64!"}}),
            "response.body_base64",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"headers": {"content-length": "3"}}}),
            "response.headers.content-length",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"headers": {"Transfer-Encoding": "chunked"}}}),
            "response.headers.Transfer-Encoding",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"headers": {"bad name": "v"}}}),
            "response.headers.bad name",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"delay_ms": 300_001}}),
            "response.delay_ms",
        ),
        (
            json!({"method": "GET", "path": "/", "id": "has space", "response": {}}),
            "id",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"status": "200"}}),
            "response.status",
        ),
    ];
    for (spec, field) in cases {
        let response = app.post_endpoint(&alice, "alice/demo", &spec).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert!(
            fields.contains(&field),
            "{field} not in {fields:?} for {spec}"
        );
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn unknown_fields_in_an_endpoint_are_422_naming_them() {
    let (app, alice) = alice_with_demo().await;
    for (spec, field) in [
        (
            json!({"method": "GET", "path": "/", "respnse": {}}),
            "respnse",
        ),
        (
            json!({"method": "GET", "path": "/", "response": {"stauts": 200}}),
            "response.stauts",
        ),
    ] {
        let response = app.post_endpoint(&alice, "alice/demo", &spec).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{spec}");
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn several_problems_are_all_named() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &json!({"method": "GET", "path": "nope", "response": {"status": 42, "delay_ms": 999_999_999}}),
        )
        .await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["path", "response.status", "response.delay_ms"]);
}

#[tokio::test]
async fn an_endpoint_with_no_body_answers_empty() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &json!({"method": "DELETE", "path": "/items/{id}", "response": {"status": 204}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let served = app
        .call(Method::DELETE, "/alice/demo/items/3", None, None)
        .await;
    assert_eq!(served.status(), StatusCode::NO_CONTENT);
    assert!(served.headers().get("content-type").is_none());
    assert_eq!(served.text().await.expect("body"), "");
}

#[tokio::test]
async fn docs_fields_are_kept() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/demo",
            &json!({"method": "GET", "path": "/users", "summary": "List users",
                    "description": "All of them.", "tags": ["users"], "response": {"json": []}}),
        )
        .await;
    let body = json_body(response).await;
    assert_eq!(body["summary"], "List users");
    assert_eq!(body["description"], "All of them.");
    assert_eq!(body["tags"], json!(["users"]));
}
