//! Project create, list, read, update, replace, delete, and who may do what.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};

fn names(list: &Value) -> Vec<String> {
    list["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["owner"]["username"].as_str().unwrap_or("?"),
                p["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn list(app: &TestApp, user: &User, query: &str) -> reqwest::Response {
    app.call(
        Method::GET,
        &format!("/admin/projects{query}"),
        Some(&user.token),
        None,
    )
    .await
}

async fn put_project(app: &TestApp, user: &User, key: &str, body: &Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        &format!("/admin/projects/{key}"),
        Some(&user.token),
        Some(body),
    )
    .await
}

async fn patch_project(app: &TestApp, user: &User, key: &str, body: &Value) -> reqwest::Response {
    app.call(
        Method::PATCH,
        &format!("/admin/projects/{key}"),
        Some(&user.token),
        Some(body),
    )
    .await
}

fn get_endpoint(path: &str, json: Value) -> Value {
    json!({"method": "GET", "path": path, "response": {"json": json}})
}

#[tokio::test]
async fn creating_a_project_answers_201_with_its_mount_and_revision_1() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "description": "a demo"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"1\"");
    let body = json_body(response).await;
    assert_eq!(body["name"], "demo");
    assert_eq!(body["owner"]["username"], "alice");
    assert_eq!(body["mount"], "/alice/demo");
    assert_eq!(body["revision"], 1);
    assert_eq!(body["mode"], "development");
    assert_eq!(body["description"], "a demo");
    assert_eq!(body["endpoints"], json!([]));
}

#[tokio::test]
async fn a_project_may_be_created_with_its_endpoints_and_mode() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "mode": "production",
                         "endpoints": [get_endpoint("/hello", json!({"hi": 1}))]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    assert_eq!(body["mode"], "production");
    assert_eq!(body["revision"], 1);
    assert_eq!(body["endpoints"][0]["path"], "/hello");
    assert_eq!(
        app.fetch("/alice/demo/hello").await,
        (StatusCode::OK, r#"{"hi":1}"#.to_owned())
    );
}

#[tokio::test]
async fn a_second_project_of_the_same_name_is_409_but_another_owner_may_use_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "demo").await;
    app.add_json_endpoint(&alice, "alice/demo", "/who", json!("alice"))
        .await;
    let again = app.create_project(&alice, "demo").await;
    assert_error(again, StatusCode::CONFLICT, "project_exists").await;
    // The refused create did not reset alice's project.
    assert_eq!(app.revision(&alice, "alice/demo").await, 2);
    let bobs = app.project(&bob, "demo").await;
    assert_eq!(bobs["mount"], "/bob/demo");
    app.add_json_endpoint(&bob, "bob/demo", "/who", json!("bob"))
        .await;
    assert_eq!(app.fetch("/alice/demo/who").await.1, r#""alice""#);
    assert_eq!(app.fetch("/bob/demo/who").await.1, r#""bob""#);
}

#[tokio::test]
async fn bad_project_names_are_422() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let too_long = "p".repeat(65);
    for name in [
        "Demo",
        "",
        too_long.as_str(),
        "admin",
        "docs",
        "-demo",
        "_demo",
        "de mo",
        "de/mo",
        "démo",
    ] {
        let response = app.create_project(&alice, name).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], "name", "{name:?}");
    }
    let list = json_body(list(&app, &alice, "").await).await;
    assert_eq!(list, json!({"projects": []}));
}

#[tokio::test]
async fn project_names_at_the_limits_are_accepted() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let long = "p".repeat(64);
    for name in [long.as_str(), "0", "a-b_c9"] {
        let body = app.project(&alice, name).await;
        assert_eq!(body["mount"], format!("/alice/{name}"));
    }
}

#[tokio::test]
async fn an_unknown_mode_is_422() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "mode": "testing"})),
        )
        .await;
    assert_invalid(response, "mode").await;
}

#[tokio::test]
async fn users_list_only_their_own_projects() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "one").await;
    app.project(&bob, "two").await;
    app.project(&bob, "three").await;
    let response = list(&app, &bob, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(names(&json_body(response).await), ["bob/three", "bob/two"]);
    let own = json_body(list(&app, &bob, "?owner=bob").await).await;
    assert_eq!(names(&own), ["bob/three", "bob/two"]);
}

#[tokio::test]
async fn admins_list_everyones_projects_and_filter_by_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "one").await;
    app.project(&bob, "two").await;
    let all = json_body(list(&app, &alice, "").await).await;
    assert_eq!(names(&all), ["alice/one", "bob/two"]);
    let bobs = json_body(list(&app, &alice, "?owner=bob").await).await;
    assert_eq!(names(&bobs), ["bob/two"]);
    let nobodys = json_body(list(&app, &alice, "?owner=nobody").await).await;
    assert_eq!(nobodys, json!({"projects": []}));
}

#[tokio::test]
async fn a_user_asking_for_another_owners_list_is_403() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "one").await;
    let response = list(&app, &bob, "?owner=alice").await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = list(&app, &bob, "?owner=nobody").await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn getting_a_project_shows_its_endpoints_and_etag() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/hello", json!({"hi": true}))
        .await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"2\"");
    let body = json_body(response).await;
    assert_eq!(body["revision"], 2);
    assert_eq!(body["endpoints_count"], 1);
    let endpoints = body["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["id"], id.as_str());
    assert_eq!(endpoints[0]["method"], "GET");
    assert_eq!(endpoints[0]["path"], "/hello");
    assert_eq!(endpoints[0]["url"], "/alice/demo/hello");
    assert_eq!(endpoints[0]["response"]["json"], json!({"hi": true}));
}

#[tokio::test]
async fn getting_a_project_i_do_not_have_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/nope",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
}

#[tokio::test]
async fn patch_changes_description_and_mode() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    let response = patch_project(
        &app,
        &alice,
        "alice/demo",
        &json!({"description": "new words"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"2\"");
    let body = json_body(response).await;
    assert_eq!(body["description"], "new words");
    assert_eq!(body["mode"], "development");
    assert_eq!(body["revision"], 2);
    let response = patch_project(&app, &alice, "alice/demo", &json!({"mode": "production"})).await;
    assert_eq!(json_body(response).await["revision"], 3);
    let read = app.read_project(&alice, "alice/demo").await;
    assert_eq!(read["description"], "new words");
    assert_eq!(read["mode"], "production");
}

#[tokio::test]
async fn a_bad_patch_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    for (body, field) in [
        (json!({"mode": "testing"}), "mode"),
        (json!({"name": "Bad"}), "name"),
        (json!({"colour": "red"}), "body"),
    ] {
        let response = patch_project(&app, &alice, "alice/demo", &body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        if field != "body" {
            assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
        }
    }
    let read = app.read_project(&alice, "alice/demo").await;
    assert_eq!(read["revision"], 1);
    assert_eq!(read["mode"], "development");
}

#[tokio::test]
async fn renaming_a_project_moves_its_mount() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    app.add_json_endpoint(&alice, "alice/demo", "/hello", json!("hi"))
        .await;
    assert_eq!(app.fetch("/alice/demo/hello").await.0, StatusCode::OK);
    let response = patch_project(&app, &alice, "alice/demo", &json!({"name": "renamed"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["mount"], "/alice/renamed");
    assert_eq!(body["revision"], 3);
    assert_eq!(
        app.fetch("/alice/demo/hello").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.fetch("/alice/renamed/hello").await,
        (StatusCode::OK, r#""hi""#.to_owned())
    );
    let old = app
        .call(
            Method::GET,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(old, StatusCode::NOT_FOUND, "project_not_found").await;
    let me = app
        .call(Method::GET, "/auth/me", Some(&alice.token), None)
        .await;
    assert_eq!(json_body(me).await["projects"], json!(["renamed"]));
    // The old name is free again.
    app.project(&alice, "demo").await;
}

#[tokio::test]
async fn renaming_onto_an_existing_project_is_409() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "one").await;
    app.project(&alice, "two").await;
    app.add_json_endpoint(&alice, "alice/one", "/x", json!(1))
        .await;
    app.add_json_endpoint(&alice, "alice/two", "/x", json!(2))
        .await;
    let response = patch_project(&app, &alice, "alice/one", &json!({"name": "two"})).await;
    assert_error(response, StatusCode::CONFLICT, "project_exists").await;
    assert_eq!(app.fetch("/alice/one/x").await.1, "1");
    assert_eq!(app.fetch("/alice/two/x").await.1, "2");
}

#[tokio::test]
async fn put_replaces_all_endpoints_at_once() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!("old a"))
        .await;
    app.add_json_endpoint(&alice, "alice/demo", "/b", json!("old b"))
        .await;
    let response = put_project(
        &app,
        &alice,
        "alice/demo",
        &json!({"description": "replaced", "endpoints": [
            get_endpoint("/a", json!("new a")),
            get_endpoint("/c", json!("new c")),
        ]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"4\"");
    let body = json_body(response).await;
    assert_eq!(body["revision"], 4);
    assert_eq!(body["description"], "replaced");
    assert_eq!(body["endpoints"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.fetch("/alice/demo/a").await.1, r#""new a""#);
    assert_eq!(app.fetch("/alice/demo/b").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/c").await.1, r#""new c""#);
}

#[tokio::test]
async fn put_creates_a_project_that_does_not_exist() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = put_project(
        &app,
        &alice,
        "alice/fresh",
        &json!({"name": "fresh", "endpoints": [get_endpoint("/", json!({"root": true}))]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"1\"");
    let body = json_body(response).await;
    assert_eq!(body["mount"], "/alice/fresh");
    assert_eq!(body["revision"], 1);
    assert_eq!(app.fetch("/alice/fresh").await.1, r#"{"root":true}"#);
}

#[tokio::test]
async fn put_of_a_missing_project_with_if_match_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call_with(
            Method::PUT,
            "/admin/projects/alice/fresh",
            Some(&alice.token),
            ("if-match", "\"3\""),
            Some(&json!({"endpoints": []})),
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
    assert_eq!(
        json_body(list(&app, &alice, "").await).await,
        json!({"projects": []})
    );
}

#[tokio::test]
async fn put_with_another_name_in_the_body_is_422() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    for key in ["alice/demo", "alice/fresh"] {
        let response = put_project(
            &app,
            &alice,
            key,
            &json!({"name": "other", "endpoints": []}),
        )
        .await;
        assert_invalid(response, "name").await;
    }
    let list = json_body(list(&app, &alice, "").await).await;
    assert_eq!(names(&list), ["alice/demo"]);
}

#[tokio::test]
async fn put_to_a_bad_name_is_422() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = put_project(&app, &alice, "alice/Bad", &json!({"endpoints": []})).await;
    assert_invalid(response, "name").await;
}

#[tokio::test]
async fn deleting_a_project_frees_its_mount_and_name() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    app.add_json_endpoint(&alice, "alice/demo", "/old", json!("old"))
        .await;
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.text().await.expect("body"), "");
    assert_eq!(app.fetch("/alice/demo/old").await.0, StatusCode::NOT_FOUND);
    let read = app
        .call(
            Method::GET,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(read, StatusCode::NOT_FOUND, "project_not_found").await;
    let again = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/demo",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(again, StatusCode::NOT_FOUND, "project_not_found").await;

    let body = app.project(&alice, "demo").await;
    assert_eq!(body["revision"], 1);
    assert_eq!(body["endpoints"], json!([]));
    app.add_json_endpoint(&alice, "alice/demo", "/new", json!("new"))
        .await;
    assert_eq!(app.fetch("/alice/demo/old").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/new").await.1, r#""new""#);
    let history = app
        .call(
            Method::GET,
            "/admin/projects/alice/demo/changes",
            Some(&alice.token),
            None,
        )
        .await;
    let history = json_body(history).await;
    assert_eq!(
        history["changes"].as_array().map(Vec::len),
        Some(2),
        "the new project has only its own history: {history}"
    );
}

#[tokio::test]
async fn alice_cannot_touch_bobs_project() {
    let app = spawn_app().await;
    let _admin = app.user("root").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&bob, "demo").await;
    let id = app
        .add_json_endpoint(&bob, "bob/demo", "/secret", json!("bob's"))
        .await;
    let endpoint = get_endpoint("/evil", json!("alice was here"));
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/projects/bob/demo".into(), None),
        (
            Method::PATCH,
            "/admin/projects/bob/demo".into(),
            Some(json!({"description": "mine"})),
        ),
        (
            Method::PUT,
            "/admin/projects/bob/demo".into(),
            Some(json!({"endpoints": []})),
        ),
        (Method::DELETE, "/admin/projects/bob/demo".into(), None),
        (
            Method::GET,
            "/admin/projects/bob/demo/endpoints".into(),
            None,
        ),
        (
            Method::POST,
            "/admin/projects/bob/demo/endpoints".into(),
            Some(endpoint.clone()),
        ),
        (
            Method::GET,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
            None,
        ),
        (
            Method::PUT,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
            Some(endpoint.clone()),
        ),
        (
            Method::PATCH,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
            Some(json!({"path": "/x"})),
        ),
        (
            Method::DELETE,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
            None,
        ),
        (Method::GET, "/admin/projects/bob/demo/changes".into(), None),
    ];
    for (method, path, body) in attempts {
        let response = app
            .call(method.clone(), &path, Some(&alice.token), body.as_ref())
            .await;
        let status = response.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let read = app.read_project(&bob, "bob/demo").await;
    assert_eq!(read["revision"], 2);
    assert_eq!(read["description"], "");
    assert_eq!(app.fetch("/bob/demo/secret").await.1, r#""bob's""#);
}

#[tokio::test]
async fn asking_about_another_owners_missing_project_is_still_403() {
    let app = spawn_app().await;
    let _admin = app.user("root").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    for (method, path, body) in [
        (Method::GET, "/admin/projects/bob/ghost", None),
        (
            Method::PATCH,
            "/admin/projects/bob/ghost",
            Some(json!({"description": "x"})),
        ),
        (
            Method::PUT,
            "/admin/projects/bob/ghost",
            Some(json!({"endpoints": []})),
        ),
        (Method::DELETE, "/admin/projects/bob/ghost", None),
        (Method::GET, "/admin/projects/bob/ghost/endpoints", None),
        (
            Method::POST,
            "/admin/projects/bob/ghost/endpoints",
            Some(get_endpoint("/x", json!(1))),
        ),
        (
            Method::GET,
            "/admin/projects/nobody/ghost/endpoints/ep_1",
            None,
        ),
        (
            Method::PUT,
            "/admin/projects/nobody/ghost",
            Some(json!({"endpoints": []})),
        ),
    ] {
        let response = app
            .call(method.clone(), path, Some(&alice.token), body.as_ref())
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The refused PUT created nothing.
    assert_eq!(
        json_body(list(&app, &bob, "").await).await,
        json!({"projects": []})
    );
}

#[tokio::test]
async fn a_user_may_not_create_a_project_for_someone_else() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&bob.token),
            Some(&json!({"name": "demo", "owner": "alice"})),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        json_body(list(&app, &alice, "").await).await,
        json!({"projects": []})
    );
}

#[tokio::test]
async fn admins_manage_everyones_projects() {
    let app = spawn_app().await;
    let admin = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&bob, "demo").await;
    let read = app.read_project(&admin, "bob/demo").await;
    assert_eq!(read["owner"]["username"], "bob");
    let response = patch_project(
        &app,
        &admin,
        "bob/demo",
        &json!({"description": "by admin"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = app
        .add_json_endpoint(&admin, "bob/demo", "/from-admin", json!("hi bob"))
        .await;
    assert_eq!(app.fetch("/bob/demo/from-admin").await.1, r#""hi bob""#);
    let response = app
        .call(
            Method::DELETE,
            &format!("/admin/projects/bob/demo/endpoints/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let history = app
        .call(
            Method::GET,
            "/admin/projects/bob/demo/changes",
            Some(&bob.token),
            None,
        )
        .await;
    let history = json_body(history).await;
    assert_eq!(history["changes"][0]["actor"], "alice");
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/bob/demo",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        json_body(list(&app, &bob, "").await).await,
        json!({"projects": []})
    );
}

#[tokio::test]
async fn admins_create_projects_for_other_users() {
    let app = spawn_app().await;
    let admin = app.user("alice").await;
    let bob = app.user("bob").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&admin.token),
            Some(&json!({"name": "given", "owner": "bob"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["mount"], "/bob/given");
    let response = put_project(&app, &admin, "bob/pushed", &json!({"endpoints": []})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mine = json_body(list(&app, &bob, "").await).await;
    assert_eq!(names(&mine), ["bob/given", "bob/pushed"]);
    // Bob owns them: he can change them himself.
    let response =
        patch_project(&app, &bob, "bob/given", &json!({"description": "mine now"})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_creating_for_an_unknown_owner_is_422() {
    let app = spawn_app().await;
    let admin = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&admin.token),
            Some(&json!({"name": "demo", "owner": "ghost"})),
        )
        .await;
    assert_invalid(response, "owner").await;
    let response = put_project(&app, &admin, "ghost/demo", &json!({"endpoints": []})).await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    for (method, path) in [
        (Method::GET, "/admin/projects"),
        (Method::POST, "/admin/projects"),
        (Method::GET, "/admin/projects/alice/demo"),
        (Method::PATCH, "/admin/projects/alice/demo"),
        (Method::PUT, "/admin/projects/alice/demo"),
        (Method::DELETE, "/admin/projects/alice/demo"),
        (Method::GET, "/admin/projects/alice/demo/endpoints"),
        (Method::POST, "/admin/projects/alice/demo/endpoints"),
        (Method::GET, "/admin/projects/alice/demo/changes"),
    ] {
        let response = app.call(method.clone(), path, None, Some(&json!({}))).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(header(&response, "www-authenticate"), "Bearer");
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn an_unknown_token_is_401() {
    let app = spawn_app().await;
    let response = app
        .call(Method::GET, "/admin/projects", Some("sy_made_up"), None)
        .await;
    assert_eq!(header(&response, "www-authenticate"), "Bearer");
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_create_with_bad_endpoints_creates_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "endpoints": [
                get_endpoint("/ok", json!(1)),
                get_endpoint("no-slash", json!(2)),
            ]})),
        )
        .await;
    assert_invalid(response, "endpoints[1].path").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "demo", "endpoints": [
                get_endpoint("/same", json!(1)),
                get_endpoint("/same", json!(2)),
            ]})),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    assert_eq!(
        json_body(list(&app, &alice, "").await).await,
        json!({"projects": []})
    );
    assert_eq!(app.fetch("/alice/demo/ok").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stranger_gets_403_even_with_an_invalid_body() {
    let app = spawn_app().await;
    let _admin = app.user("root").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&bob, "demo").await;
    let id = app
        .add_json_endpoint(&bob, "bob/demo", "/x", json!(1))
        .await;
    let nonsense = json!({"no such field": true});
    for (method, path) in [
        (Method::PATCH, "/admin/projects/bob/demo".to_owned()),
        (Method::PUT, "/admin/projects/bob/demo".to_owned()),
        (
            Method::POST,
            "/admin/projects/bob/demo/endpoints".to_owned(),
        ),
        (
            Method::PUT,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
        ),
        (
            Method::PATCH,
            format!("/admin/projects/bob/demo/endpoints/{id}"),
        ),
    ] {
        let response = app
            .call(method.clone(), &path, Some(&alice.token), Some(&nonsense))
            .await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
}
