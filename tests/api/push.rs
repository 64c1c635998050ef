//! `PUT /admin/projects/{owner}/{name}/folder`: a whole project folder (definition, script,
//! datasets) pushed as one multipart request and applied as one revision.
//!
//! A new project is created at revision 1 with the definition's settings alone, then the
//! folder is applied as revision 2 (one revision for everything it holds); a folder holding
//! nothing but settings stays at revision 1.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app, spawn_app_with,
};

const IRIS: &str = include_str!("../../src/dataset/testdata/iris.csv");
const SCRIPT: &str = r#"app.get("/greet", () => ({ greeting: "hello" }));"#;

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// IRIS with its first row's sepal length changed: another file of the same shape.
fn iris_v2() -> String {
    IRIS.replacen("5.1,3.5,1.4,0.2", "5.2,3.5,1.4,0.2", 1)
}

/// The `project` part of a folder with one mock endpoint answering `hello`, the script
/// `script` and the dataset `iris` (with its standard endpoints under `/iris`) of digest
/// `iris_sha`.
fn folder(hello: Value, script: Option<&str>, iris_sha: Option<&str>) -> Value {
    let datasets = match iris_sha {
        Some(digest) => json!([{"name": "iris", "sha256": digest, "format": "csv", "types": null,
            "endpoints": "default", "category": "species", "prefix": "/iris"}]),
        None => json!([]),
    };
    json!({
        "definition": {
            "description": "a garden",
            "endpoints": [{"id": "hello", "method": "GET", "path": "/hello",
                           "response": {"json": hello}}],
        },
        "script": script,
        "datasets": datasets,
    })
}

/// Pushes `project` and `files` (`(dataset, bytes)`) to `user`'s `name`, with `query` and
/// extra `headers`.
async fn push_with(
    app: &TestApp,
    token: Option<&str>,
    key: &str,
    query: &str,
    headers: &[(&str, &str)],
    project: &Value,
    files: &[(&str, &[u8])],
) -> Response {
    let mut form = Form::new().text("project", project.to_string());
    for (name, bytes) in files {
        form = form.part(
            format!("dataset:{name}"),
            Part::bytes(bytes.to_vec()).file_name(format!("{name}.csv")),
        );
    }
    let mut request = app
        .client
        .put(app.url(&format!("/admin/projects/{key}/folder{query}")))
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

async fn push(
    app: &TestApp,
    user: &User,
    name: &str,
    project: &Value,
    files: &[(&str, &[u8])],
) -> Response {
    let key = format!("{}/{name}", user.name);
    push_with(app, Some(&user.token), &key, "", &[], project, files).await
}

/// Pushes, asserting `status`, and returns the body.
async fn push_ok(
    app: &TestApp,
    user: &User,
    name: &str,
    project: &Value,
    files: &[(&str, &[u8])],
    status: StatusCode,
) -> Value {
    let response = push(app, user, name, project, files).await;
    let got = response.status();
    let body = json_body(response).await;
    assert_eq!(got, status, "{body}");
    body
}

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).await;
    let status = response.status();
    (status, json_body(response).await)
}

async fn admin_get(app: &TestApp, user: &User, path: &str) -> Response {
    app.call(Method::GET, path, Some(&user.token), None).await
}

/// The SHA-256 of `key`'s dataset `name` as the server shows it.
async fn dataset_sha(app: &TestApp, user: &User, key: &str, name: &str) -> String {
    let response = admin_get(app, user, &format!("/admin/projects/{key}/datasets/{name}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["sha256"]
        .as_str()
        .expect("sha256")
        .to_owned()
}

/// The `(op, target, id)` of a dry run's changes.
fn changes(body: &Value) -> Vec<(String, String, String)> {
    body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap_or("").to_owned(),
                c["target"].as_str().unwrap_or("").to_owned(),
                c["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn item(op: &str, target: &str, id: &str) -> (String, String, String) {
    (op.to_owned(), target.to_owned(), id.to_owned())
}

#[tokio::test]
async fn a_new_folder_is_created_whole_and_the_same_push_again_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let project = folder(json!({"v": 1}), Some(SCRIPT), Some(&sha(IRIS.as_bytes())));
    let files = [("iris", IRIS.as_bytes())];
    let response = push(&app, &alice, "garden", &project, &files).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"2\"");
    let body = json_body(response).await;
    assert_eq!(body["revision"], 2, "created at 1, the folder applied as 2");
    assert_eq!(body["description"], "a garden");
    assert_eq!(body["mount"], "/alice/garden");

    // Its mock, its script's route and its dataset's endpoints answer.
    assert_eq!(
        get_json(&app, "/alice/garden/hello").await,
        (StatusCode::OK, json!({"v": 1}))
    );
    assert_eq!(
        get_json(&app, "/alice/garden/greet").await,
        (StatusCode::OK, json!({"greeting": "hello"}))
    );
    let response = app
        .call(
            Method::POST,
            "/alice/garden/iris/range",
            None,
            Some(&json!({"species": "setosa", "per_page": 2})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rows = json_body(response).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(rows[0]["label"], "setosa");
    let (status, schema) = get_json(&app, "/alice/garden/iris/schema").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schema["rows"], 150, "{schema}");
    assert_eq!(
        dataset_sha(&app, &alice, "alice/garden", "iris").await,
        sha(IRIS.as_bytes())
    );

    // The same push again: the same revision, nothing written.
    let body = push_ok(&app, &alice, "garden", &project, &files, StatusCode::OK).await;
    assert_eq!(body["revision"], 2);
    let response = push_with(
        &app,
        Some(&alice.token),
        "alice/garden",
        "?dry_run=true",
        &[],
        &project,
        &files,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dry = json_body(response).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["changes"], json!([]), "{dry}");
    // Without the file, naming the same digest: unchanged too.
    let response = push(&app, &alice, "garden", &project, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"2\"");
    assert_eq!(app.revision(&alice, "alice/garden").await, 2);
    let history =
        json_body(admin_get(&app, &alice, "/admin/projects/alice/garden/changes").await).await;
    assert_eq!(
        history["changes"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );
}

#[tokio::test]
async fn a_changed_endpoint_and_file_are_one_revision() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let first = folder(json!({"v": 1}), None, Some(&sha(IRIS.as_bytes())));
    push_ok(
        &app,
        &alice,
        "garden",
        &first,
        &[("iris", IRIS.as_bytes())],
        StatusCode::CREATED,
    )
    .await;
    let before = app.revision(&alice, "alice/garden").await;
    let v2 = iris_v2();
    let second = folder(json!({"v": 2}), None, Some(&sha(v2.as_bytes())));
    let files = [("iris", v2.as_bytes())];

    let response = push_with(
        &app,
        Some(&alice.token),
        "alice/garden",
        "?dry_run=true",
        &[],
        &second,
        &files,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dry = json_body(response).await;
    let shown = changes(&dry);
    assert!(
        shown.contains(&item("change", "endpoint", "hello")),
        "{dry}"
    );
    assert!(shown.contains(&item("change", "dataset", "iris")), "{dry}");
    assert_eq!(
        app.revision(&alice, "alice/garden").await,
        before,
        "a dry run"
    );
    assert_eq!(
        get_json(&app, "/alice/garden/hello").await.1,
        json!({"v": 1})
    );

    let body = push_ok(&app, &alice, "garden", &second, &files, StatusCode::OK).await;
    assert_eq!(body["revision"], before + 1);
    assert_eq!(
        get_json(&app, "/alice/garden/hello").await.1,
        json!({"v": 2})
    );
    assert_eq!(
        dataset_sha(&app, &alice, "alice/garden", "iris").await,
        sha(v2.as_bytes())
    );
    let history =
        json_body(admin_get(&app, &alice, "/admin/projects/alice/garden/changes").await).await;
    assert_eq!(history["changes"][0]["revision"], before + 1, "{history}");
    assert_eq!(
        history["changes"].as_array().map(Vec::len),
        Some(usize::try_from(before).unwrap() + 1)
    );
}

#[tokio::test]
async fn a_refused_push_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let iris_sha = sha(IRIS.as_bytes());
    let good = folder(json!({"v": 1}), Some(SCRIPT), Some(&iris_sha));
    push_ok(
        &app,
        &alice,
        "garden",
        &good,
        &[("iris", IRIS.as_bytes())],
        StatusCode::CREATED,
    )
    .await;
    let revision = app.revision(&alice, "alice/garden").await;
    let v2 = iris_v2();

    // Listed without its file, but not the server's copy.
    let other = folder(json!({"v": 2}), Some(SCRIPT), Some(&sha(v2.as_bytes())));
    let body = assert_invalid(
        push(&app, &alice, "garden", &other, &[]).await,
        "datasets[0]",
    )
    .await;
    let message = body["error"]["details"][0]["message"].as_str().unwrap();
    assert!(message.contains("dataset:iris"), "{message}");

    // A file whose bytes are not the ones listed.
    let files = [("iris", v2.as_bytes())];
    let wrong = folder(json!({"v": 2}), Some(SCRIPT), Some(&iris_sha));
    assert_invalid(
        push(&app, &alice, "garden", &wrong, &files).await,
        "datasets[0].sha256",
    )
    .await;

    // A script that does not compile, with a new file and a new endpoint.
    let broken = folder(
        json!({"v": 2}),
        Some("app.get(\"/x\", () => {"),
        Some(&sha(v2.as_bytes())),
    );
    assert_invalid(
        push(&app, &alice, "garden", &broken, &files).await,
        "script",
    )
    .await;

    // A bad row, and a file for a dataset the list does not name.
    let bad = "sepal_length,species\n1.0,setosa\n2.0\n";
    let listed = folder(json!({"v": 2}), Some(SCRIPT), Some(&sha(bad.as_bytes())));
    assert_invalid(
        push(&app, &alice, "garden", &listed, &[("iris", bad.as_bytes())]).await,
        "datasets[0]",
    )
    .await;
    assert_invalid(
        push(
            &app,
            &alice,
            "garden",
            &good,
            &[("iris", IRIS.as_bytes()), ("roses", b"a\n1\n")],
        )
        .await,
        "datasets",
    )
    .await;

    // None of them changed anything.
    assert_eq!(app.revision(&alice, "alice/garden").await, revision);
    assert_eq!(
        get_json(&app, "/alice/garden/hello").await.1,
        json!({"v": 1})
    );
    assert_eq!(
        dataset_sha(&app, &alice, "alice/garden", "iris").await,
        iris_sha
    );
    assert_eq!(
        get_json(&app, "/alice/garden/greet").await.0,
        StatusCode::OK
    );

    // A failed push of a new project leaves no project.
    let response = push(&app, &alice, "meadow", &broken, &files).await;
    assert_invalid(response, "script").await;
    let response = admin_get(&app, &alice, "/admin/projects/alice/meadow").await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
    let response = push(&app, &alice, "meadow", &wrong, &files).await;
    assert_invalid(response, "datasets[0].sha256").await;
    let response = admin_get(&app, &alice, "/admin/projects/alice/meadow").await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
    let endpoint = json!({"definition": {"endpoints": [
        {"method": "GET", "path": "/a/{", "response": {"json": 1}}]}});
    let body = json_body(push(&app, &alice, "meadow", &endpoint, &[]).await).await;
    let field = body["error"]["details"][0]["field"].as_str().unwrap_or("");
    assert!(field.starts_with("definition.endpoints[0]"), "{body}");
    let response = admin_get(&app, &alice, "/admin/projects/alice/meadow").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dry_run_shows_what_would_change_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let project = folder(json!({"v": 1}), Some(SCRIPT), Some(&sha(IRIS.as_bytes())));
    let files = [("iris", IRIS.as_bytes())];

    // A new project: nothing is created.
    let response = push_with(
        &app,
        Some(&alice.token),
        "alice/garden",
        "?dry_run=true",
        &[],
        &project,
        &files,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dry = json_body(response).await;
    assert_eq!(dry["dry_run"], true);
    let shown = changes(&dry);
    for expected in [
        item("add", "project", ""),
        item("add", "endpoint", "hello"),
        item("add", "endpoint", "iris-range"),
        item("add", "script", ""),
        item("add", "dataset", "iris"),
    ] {
        assert!(shown.contains(&expected), "{expected:?} in {dry}");
    }
    assert_eq!(dry["result"]["name"], "garden");
    let response = admin_get(&app, &alice, "/admin/projects/alice/garden").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/alice/garden/hello").await.status(),
        StatusCode::NOT_FOUND
    );
    // Its script is compiled: one that does not compile is refused.
    let broken = folder(json!({"v": 1}), Some("app.get(("), None);
    let response = push_with(
        &app,
        Some(&alice.token),
        "alice/garden",
        "?dry_run=true",
        &[],
        &broken,
        &[],
    )
    .await;
    assert_invalid(response, "script").await;

    // An existing project: the diff, and the project as it was.
    push_ok(
        &app,
        &alice,
        "garden",
        &project,
        &files,
        StatusCode::CREATED,
    )
    .await;
    let revision = app.revision(&alice, "alice/garden").await;
    let changed = folder(json!({"v": 2}), None, None);
    let response = push_with(
        &app,
        Some(&alice.token),
        "alice/garden",
        "?dry_run=true",
        &[],
        &changed,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dry = json_body(response).await;
    let shown = changes(&dry);
    for expected in [
        item("change", "endpoint", "hello"),
        item("remove", "script", ""),
        item("remove", "dataset", "iris"),
        item("remove", "endpoint", "iris-range"),
    ] {
        assert!(shown.contains(&expected), "{expected:?} in {dry}");
    }
    assert_eq!(app.revision(&alice, "alice/garden").await, revision);
    assert_eq!(
        get_json(&app, "/alice/garden/greet").await.0,
        StatusCode::OK
    );
    assert_eq!(
        dataset_sha(&app, &alice, "alice/garden", "iris").await,
        sha(IRIS.as_bytes())
    );
}

#[tokio::test]
async fn a_push_is_conditional_and_only_for_the_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await; // the first user: an admin
    let bob = app.user("bob").await;
    let project = folder(json!({"v": 1}), None, None);
    push_ok(&app, &bob, "garden", &project, &[], StatusCode::CREATED).await;
    let revision = app.revision(&bob, "bob/garden").await;
    assert_eq!(revision, 2);

    let changed = folder(json!({"v": 2}), None, None);
    let stale = format!("\"{}\"", revision - 1);
    let response = push_with(
        &app,
        Some(&bob.token),
        "bob/garden",
        "",
        &[("if-match", &stale)],
        &changed,
        &[],
    )
    .await;
    assert_error(
        response,
        StatusCode::PRECONDITION_FAILED,
        "revision_mismatch",
    )
    .await;
    let current = format!("\"{revision}\"");
    let response = push_with(
        &app,
        Some(&bob.token),
        "bob/garden",
        "",
        &[("if-match", &current)],
        &changed,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), format!("\"{}\"", revision + 1));

    // Someone else's project, existing or not: 403, as for the project PUT.
    let carol = app.user("carol").await;
    for key in ["bob/garden", "bob/nothing"] {
        let response = push_with(&app, Some(&carol.token), key, "", &[], &project, &[]).await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // An admin may push to anyone's.
    let response = push_with(
        &app,
        Some(&alice.token),
        "bob/garden",
        "",
        &[],
        &project,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // No token: 401.
    let response = push_with(&app, None, "bob/garden", "", &[], &project, &[]).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(
        get_json(&app, "/bob/garden/hello").await.1,
        json!({"v": 1}),
        "the admin's push"
    );
}

#[tokio::test]
async fn what_the_folder_no_longer_has_is_removed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let project = folder(json!({"v": 1}), Some(SCRIPT), Some(&sha(IRIS.as_bytes())));
    push_ok(
        &app,
        &alice,
        "garden",
        &project,
        &[("iris", IRIS.as_bytes())],
        StatusCode::CREATED,
    )
    .await;
    let revision = app.revision(&alice, "alice/garden").await;
    let bare = folder(json!({"v": 1}), None, None);
    let body = push_ok(&app, &alice, "garden", &bare, &[], StatusCode::OK).await;
    assert_eq!(body["revision"], revision + 1);
    let response = admin_get(&app, &alice, "/admin/projects/alice/garden/datasets/iris").await;
    assert_error(response, StatusCode::NOT_FOUND, "dataset_not_found").await;
    let response = admin_get(&app, &alice, "/admin/projects/alice/garden/script").await;
    assert_error(response, StatusCode::NOT_FOUND, "script_not_found").await;
    assert_eq!(
        app.get("/alice/garden/greet").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/alice/garden/iris/schema").await.status(),
        StatusCode::NOT_FOUND,
        "its standard endpoints went with it"
    );
    assert_eq!(
        get_json(&app, "/alice/garden/hello").await.1,
        json!({"v": 1})
    );
}

#[tokio::test]
async fn the_form_must_be_as_the_protocol_says() {
    let app = spawn_app_with(|config| config.admin_body_limit = 2048).await;
    let alice = app.user("alice").await;
    let url = app.url("/admin/projects/alice/garden/folder");
    let send = |form: Form| {
        app.client
            .put(&url)
            .bearer_auth(&alice.token)
            .multipart(form)
            .send()
    };
    // Not a form.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/garden/folder",
            Some(&alice.token),
            Some(&json!({"definition": {}})),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // The first part is not `project`.
    let form = Form::new()
        .part("dataset:iris", Part::bytes(IRIS.as_bytes().to_vec()))
        .text("project", json!({"definition": {}}).to_string());
    let response = send(form).await.unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("project")
    );
    let response = send(Form::new()).await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    // Not JSON; unknown fields; a bad dataset list.
    let response = send(Form::new().text("project", "{")).await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    let unknown = json!({"definition": {}, "scripts": null});
    let response = send(Form::new().text("project", unknown.to_string()))
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let unknown = json!({"definition": {"endpionts": []}});
    let response = send(Form::new().text("project", unknown.to_string()))
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let named = json!({"definition": {"name": "other"}});
    let response = send(Form::new().text("project", named.to_string()))
        .await
        .unwrap();
    assert_invalid(response, "definition.name").await;
    let twice = json!({"definition": {}, "datasets": [
        {"name": "a", "sha256": sha(b"x"), "format": "csv"},
        {"name": "a", "sha256": sha(b"x"), "format": "tsv", "endpoints": "all"}]});
    let response = send(Form::new().text("project", twice.to_string()))
        .await
        .unwrap();
    let body = assert_invalid(response, "datasets[1].name").await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "datasets[1].name",
            "datasets[1].format",
            "datasets[1].endpoints"
        ]
    );
    // A `project` part over the admin body limit.
    let large = json!({"definition": {"description": "x".repeat(4000)}});
    let response = send(Form::new().text("project", large.to_string()))
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Nothing was created by any of them.
    let response = admin_get(&app, &alice, "/admin/projects/alice/garden").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
