//! Quotas on a shared instance: projects per user, endpoints per project, and pattern
//! segments side by side in one project's paths. Each is `403 quota_exceeded` naming the
//! limit, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, spawn_app_with};

#[tokio::test]
async fn a_user_may_own_only_so_many_projects_but_an_admin_may_create_more() {
    let app = spawn_app_with(|c| c.quotas.projects_per_user = 2).await;
    let admin = app.user("root").await;
    let alice = app.user("alice").await;
    app.project(&alice, "one").await;
    app.project(&alice, "two").await;
    let error = assert_error(
        app.create_project(&alice, "three").await,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2"),
        "{error}"
    );
    // A whole-project PUT that would create one is held to the same quota.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/three",
            Some(&alice.token),
            Some(&json!({"endpoints": []})),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "quota_exceeded").await;
    // Deleting one frees a place.
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/one",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.project(&alice, "three").await;
    // An admin acting for a user is not held to it.
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&admin.token),
            Some(&json!({"name": "four", "owner": "alice"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_project_holds_only_so_many_endpoints() {
    let app = spawn_app_with(|c| c.quotas.endpoints_per_project = 3).await;
    let alice = app.user("alice").await;
    app.project(&alice, "p").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.add_json_endpoint(&alice, "alice/p", &format!("/e{i}"), json!(i))
                .await,
        );
    }
    let fourth = json!({"method": "GET", "path": "/e3", "response": {}});
    let error = assert_error(
        app.post_endpoint(&alice, "alice/p", &fourth).await,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 endpoints"),
        "{error}"
    );
    let four: Vec<_> = (0..4)
        .map(|i| json!({"method": "GET", "path": format!("/x{i}"), "response": {}}))
        .collect();
    for (method, path) in [
        (Method::PUT, "/admin/projects/alice/p"),
        (Method::PUT, "/admin/projects/alice/new"),
    ] {
        let response = app
            .call(
                method,
                path,
                Some(&alice.token),
                Some(&json!({"endpoints": four})),
            )
            .await;
        assert_error(response, StatusCode::FORBIDDEN, "quota_exceeded").await;
    }
    assert_eq!(
        app.revision(&alice, "alice/p").await,
        4,
        "nothing was written"
    );
    assert_eq!(app.get("/alice/p/e3").await.status(), StatusCode::NOT_FOUND);
    // A PUT of a new id adds one, and is refused; replacing one keeps the count and is fine.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/p/endpoints/added",
            Some(&alice.token),
            Some(&fourth),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "quota_exceeded").await;
    let response = app
        .call(
            Method::PUT,
            &format!("/admin/projects/alice/p/endpoints/{}", ids[0]),
            Some(&alice.token),
            Some(&fourth),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/alice/p/e3").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn pattern_segments_side_by_side_are_bounded() {
    let app = spawn_app_with(|c| c.quotas.pattern_siblings = 2).await;
    let alice = app.user("alice").await;
    app.project(&alice, "p").await;
    // Bare parameters and literal segments are not patterns; they cost one step each.
    for path in [
        "/files/{id}",
        "/files/static",
        "/files/{id}.json",
        "/files/v{n}",
    ] {
        let response = app
            .post_endpoint(
                &alice,
                "alice/p",
                &json!({"method": "GET", "path": path, "response": {}}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{path}");
    }
    let third = json!({"method": "GET", "path": "/files/{name}.{ext}", "response": {}});
    let error = assert_error(
        app.post_endpoint(&alice, "alice/p", &third).await,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2"),
        "{error}"
    );
    // The same pattern under another parent is another place.
    let elsewhere = json!({"method": "GET", "path": "/other/{name}.{ext}", "response": {}});
    assert_eq!(
        app.post_endpoint(&alice, "alice/p", &elsewhere)
            .await
            .status(),
        StatusCode::CREATED
    );
}
