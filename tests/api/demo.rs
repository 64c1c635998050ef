//! `serve --demo`: the demo user and project, created once and served like any other.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_body, spawn_app_with};

#[tokio::test]
async fn the_demo_creates_alice_and_a_project_whose_endpoints_answer() {
    let app = spawn_app_with(|c| c.demo = true).await;
    assert_eq!(
        json_body(app.get("/alice/demo/hello").await).await,
        json!({"message": "hello"})
    );
    assert_eq!(app.get("/alice/demo/items").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/alice/demo/items/7").await.status(),
        StatusCode::OK
    );
    let created = app
        .client
        .post(app.url("/alice/demo/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let teapot = app
        .client
        .delete(app.url("/alice/demo/teapot"))
        .send()
        .await
        .unwrap();
    assert_eq!(teapot.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        app.get("/alice/demo/files/a/b.txt").await.status(),
        StatusCode::OK
    );
    // The demo user is an ordinary account: the first one, so the admin.
    assert_eq!(
        json_body(app.register("bob", crate::helpers::PASSWORD).await).await["role"],
        "user"
    );

    // The script project: a todo API kept in kv.
    assert_eq!(
        json_body(app.get("/alice/todo/").await).await,
        json!("index!")
    );
    let created = app
        .client
        .post(app.url("/alice/todo/todos"))
        .json(&json!({"title": "water the plants"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let todo = json_body(created).await;
    assert_eq!(todo["title"], "water the plants");
    let refused = app
        .client
        .post(app.url("/alice/todo/todos"))
        .json(&json!({"name": "no title"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Starting again with --demo on the same store keeps what is there, todos included.
    let app = app.restart().await;
    assert_eq!(
        json_body(app.get("/alice/demo/hello").await).await,
        json!({"message": "hello"})
    );
    let id = todo["id"].as_i64().unwrap();
    assert_eq!(
        json_body(app.get(&format!("/alice/todo/todos/{id}")).await).await,
        todo
    );
    assert_eq!(
        json_body(app.get("/alice/todo/todos").await).await,
        json!([todo])
    );
    let deleted = app
        .client
        .delete(app.url(&format!("/alice/todo/todos/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/alice/todo/todos/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_demo_serves_the_iris_dataset_as_the_iris_service_did() {
    let app = spawn_app_with(|c| c.demo = true).await;
    let means = app
        .client
        .post(app.url("/alice/iris/stats/mean/"))
        .json(&json!({"species": ["setosa", "versicolor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(means.status(), StatusCode::OK);
    let means = json_body(means).await;
    assert_eq!(means[0]["mean_petal_width"], json!(0.24600000000000002));
    assert_eq!(means[1]["label"], "versicolor");
    let rows = app
        .client
        .post(app.url("/alice/iris/range/"))
        .json(&json!({"species": "setosa", "lower": {"sepal_length": 5.0, "sepal_width": 3.0}, "upper": {"sepal_length": 5.1}}))
        .send()
        .await
        .unwrap();
    let rows = json_body(rows).await;
    assert!(!rows.as_array().unwrap().is_empty());
    assert_eq!(rows[0]["label"], "setosa");
    // Seeding again (a restart) keeps the one dataset and its endpoints.
    let app = app.restart().await;
    assert_eq!(app.get("/alice/iris/schema").await.status(), StatusCode::OK);
}
