//! Revisions, ETag, If-Match, dry runs and the change history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};

const PROJECT: &str = "/admin/projects/alice/demo";
const ENDPOINTS: &str = "/admin/projects/alice/demo/endpoints";

async fn alice_with_demo() -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    (app, alice)
}

fn route(path: &str, json: Value) -> Value {
    json!({"method": "GET", "path": path, "response": {"json": json}})
}

/// Asserts a change answer carries revision `expected` as ETag and, when it has a body, in it.
async fn assert_revision(response: reqwest::Response, status: StatusCode, expected: i64) {
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "etag"), format!("\"{expected}\""));
    if status != StatusCode::NO_CONTENT {
        assert_eq!(json_body(response).await["revision"], expected);
    }
}

#[tokio::test]
async fn every_change_bumps_the_revision_and_answers_it_as_etag() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    let response = app
        .post_endpoint(&alice, "alice/demo", &route("/a", json!(1)))
        .await;
    assert_eq!(header(&response, "etag"), "\"2\"");
    let body = json_body(response).await;
    assert_eq!(body["revision"], 2);
    let id = body["id"].as_str().expect("id").to_owned();
    let one = format!("{ENDPOINTS}/{id}");

    let response = app
        .call(Method::PUT, &one, token, Some(&route("/a", json!(2))))
        .await;
    assert_revision(response, StatusCode::OK, 3).await;
    let response = app
        .call(
            Method::PATCH,
            &one,
            token,
            Some(&json!({"response": {"status": 202}})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 4).await;
    let response = app
        .call(
            Method::PATCH,
            PROJECT,
            token,
            Some(&json!({"description": "d"})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 5).await;
    let response = app.call(Method::DELETE, &one, token, None).await;
    assert_revision(response, StatusCode::NO_CONTENT, 6).await;
    let response = app
        .call(
            Method::PUT,
            PROJECT,
            token,
            Some(&json!({"endpoints": [route("/b", json!(3))]})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 7).await;

    let response = app.call(Method::GET, PROJECT, token, None).await;
    assert_revision(response, StatusCode::OK, 7).await;
    let response = app.call(Method::GET, ENDPOINTS, token, None).await;
    assert_revision(response, StatusCode::OK, 7).await;
}

#[tokio::test]
async fn if_match_with_the_current_revision_succeeds() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    let response = app
        .call_with(
            Method::POST,
            ENDPOINTS,
            token,
            ("if-match", "\"1\""),
            Some(&route("/a", json!(1))),
        )
        .await;
    assert_revision(response, StatusCode::CREATED, 2).await;
    // The weak and the bare forms name the same revision.
    let response = app
        .call_with(
            Method::PATCH,
            PROJECT,
            token,
            ("if-match", "W/\"2\""),
            Some(&json!({"description": "x"})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 3).await;
    let response = app
        .call_with(
            Method::PATCH,
            PROJECT,
            token,
            ("if-match", "3"),
            Some(&json!({"description": "y"})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 4).await;
    let response = app
        .call_with(Method::DELETE, PROJECT, token, ("if-match", "\"4\""), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/a", json!("a"))
        .await;
    let one = format!("{ENDPOINTS}/{id}");
    let attempts: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, ENDPOINTS, Some(route("/b", json!("b")))),
        (Method::PUT, &one, Some(route("/a", json!("changed")))),
        (
            Method::PATCH,
            &one,
            Some(json!({"response": {"status": 500}})),
        ),
        (Method::DELETE, &one, None),
        (
            Method::PATCH,
            PROJECT,
            Some(json!({"description": "changed"})),
        ),
        (Method::PUT, PROJECT, Some(json!({"endpoints": []}))),
        (Method::DELETE, PROJECT, None),
    ];
    for (method, path, body) in attempts {
        for stale in ["\"1\"", "\"3\""] {
            let response = app
                .call_with(
                    method.clone(),
                    path,
                    token,
                    ("if-match", stale),
                    body.as_ref(),
                )
                .await;
            assert_error(
                response,
                StatusCode::PRECONDITION_FAILED,
                "revision_mismatch",
            )
            .await;
        }
    }
    let read = app.read_project(&alice, "alice/demo").await;
    assert_eq!(read["revision"], 2);
    assert_eq!(read["description"], "");
    assert_eq!(read["endpoints"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.fetch("/alice/demo/a").await,
        (StatusCode::OK, r#""a""#.to_owned())
    );
    assert_eq!(app.fetch("/alice/demo/b").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn if_match_star_always_passes() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!(1))
        .await;
    let response = app
        .call_with(
            Method::PATCH,
            PROJECT,
            token,
            ("if-match", "*"),
            Some(&json!({"description": "x"})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 3).await;
    let response = app
        .call_with(
            Method::POST,
            ENDPOINTS,
            token,
            ("if-match", "*"),
            Some(&route("/b", json!(2))),
        )
        .await;
    assert_revision(response, StatusCode::CREATED, 4).await;
}

#[tokio::test]
async fn a_garbage_if_match_is_400_and_changes_nothing() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    for garbage in ["abc", "\"1", "\"one\"", "1, 2", "W/", "\"\""] {
        let response = app
            .call_with(
                Method::POST,
                ENDPOINTS,
                token,
                ("if-match", garbage),
                Some(&route("/a", json!(1))),
            )
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
    assert_eq!(app.fetch("/alice/demo/a").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dry_run_reports_the_change_and_applies_nothing() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .call(
            Method::POST,
            &format!("{ENDPOINTS}?dry_run=true"),
            Some(&alice.token),
            Some(&route("/planned", json!("maybe"))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["revision"], 2, "the revision it would have: {body}");
    let changes = body["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["op"], "add");
    assert_eq!(changes[0]["target"], "endpoint");
    assert_eq!(changes[0]["detail"], "GET /planned");
    assert_eq!(body["result"]["url"], "/alice/demo/planned");

    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
    assert_eq!(
        app.fetch("/alice/demo/planned").await.0,
        StatusCode::NOT_FOUND
    );
    let history = app
        .call(
            Method::GET,
            &format!("{PROJECT}/changes"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(
        json_body(history).await["changes"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn dry_runs_of_every_kind_apply_nothing() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/a", json!("a"))
        .await;
    let one = format!("{ENDPOINTS}/{id}?dry_run=true");
    let cases: Vec<(Method, String, Option<Value>, &str, &str)> = vec![
        (
            Method::PUT,
            one.clone(),
            Some(route("/a", json!("b"))),
            "change",
            "endpoint",
        ),
        (
            Method::PATCH,
            one.clone(),
            Some(json!({"path": "/moved"})),
            "change",
            "endpoint",
        ),
        (Method::DELETE, one.clone(), None, "remove", "endpoint"),
        (
            Method::PATCH,
            format!("{PROJECT}?dry_run=true"),
            Some(json!({"mode": "production"})),
            "change",
            "mode",
        ),
        (
            Method::PATCH,
            format!("{PROJECT}?dry_run=true"),
            Some(json!({"name": "renamed"})),
            "change",
            "name",
        ),
        (
            Method::PUT,
            format!("{PROJECT}?dry_run=true"),
            Some(json!({"endpoints": []})),
            "remove",
            "endpoint",
        ),
        (
            Method::DELETE,
            format!("{PROJECT}?dry_run=true"),
            None,
            "remove",
            "project",
        ),
    ];
    for (method, path, body, op, target) in cases {
        let response = app.call(method.clone(), &path, token, body.as_ref()).await;
        assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
        let answer = json_body(response).await;
        assert_eq!(answer["dry_run"], true, "{answer}");
        let first = &answer["changes"][0];
        assert_eq!(
            (first["op"].as_str(), first["target"].as_str()),
            (Some(op), Some(target)),
            "{method} {path}: {answer}"
        );
    }
    let read = app.read_project(&alice, "alice/demo").await;
    assert_eq!(read["revision"], 2);
    assert_eq!(read["mode"], "development");
    assert_eq!(read["name"], "demo");
    assert_eq!(
        app.fetch("/alice/demo/a").await,
        (StatusCode::OK, r#""a""#.to_owned())
    );
}

#[tokio::test]
async fn a_dry_run_of_a_new_project_creates_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects?dry_run=true",
            Some(&alice.token),
            Some(&json!({"name": "demo", "endpoints": [route("/", json!(1))]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["changes"][0]["op"], "add");
    assert_eq!(body["changes"][0]["target"], "project");
    assert_eq!(body["result"]["mount"], "/alice/demo");
    assert_eq!(app.fetch("/alice/demo").await.0, StatusCode::NOT_FOUND);
    // The name is still free.
    app.project(&alice, "demo").await;
}

#[tokio::test]
async fn a_dry_run_of_a_bad_change_still_fails() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!(1))
        .await;
    let path = format!("{ENDPOINTS}?dry_run=true");
    let response = app
        .call(
            Method::POST,
            &path,
            Some(&alice.token),
            Some(&route("no-slash", json!(1))),
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
            Method::POST,
            &path,
            Some(&alice.token),
            Some(&route("/a", json!(2))),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;
    let response = app
        .call_with(
            Method::POST,
            &path,
            Some(&alice.token),
            ("if-match", "\"1\""),
            Some(&route("/b", json!(2))),
        )
        .await;
    assert_error(
        response,
        StatusCode::PRECONDITION_FAILED,
        "revision_mismatch",
    )
    .await;
}

#[tokio::test]
async fn a_bad_dry_run_flag_is_422() {
    let (app, alice) = alice_with_demo().await;
    let response = app
        .call(
            Method::POST,
            &format!("{ENDPOINTS}?dry_run=perhaps"),
            Some(&alice.token),
            Some(&route("/a", json!(1))),
        )
        .await;
    assert_invalid(response, "query.dry_run").await;
    assert_eq!(app.revision(&alice, "alice/demo").await, 1);
}

#[tokio::test]
async fn a_failed_replace_leaves_the_project_exactly_as_it_was() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/old", json!("old"))
        .await;
    let before = app.read_project(&alice, "alice/demo").await;
    let invalid = json!({"description": "never", "endpoints": [
        route("/new", json!("new")),
        {"method": "GET", "path": "/bad", "response": {"status": 99}},
    ]});
    let response = app
        .call(Method::PUT, PROJECT, Some(&alice.token), Some(&invalid))
        .await;
    assert_invalid(response, "endpoints[1].response.status").await;
    let conflicting = json!({"endpoints": [route("/same", json!(1)), route("/same", json!(2))]});
    let response = app
        .call(Method::PUT, PROJECT, Some(&alice.token), Some(&conflicting))
        .await;
    assert_error(response, StatusCode::CONFLICT, "route_conflict").await;

    assert_eq!(app.read_project(&alice, "alice/demo").await, before);
    assert_eq!(
        app.fetch("/alice/demo/old").await,
        (StatusCode::OK, r#""old""#.to_owned())
    );
    assert_eq!(app.fetch("/alice/demo/new").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.fetch("/alice/demo/same").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_endpoint_change_leaves_the_old_one_served() {
    let (app, alice) = alice_with_demo().await;
    let id = app
        .add_json_endpoint(&alice, "alice/demo", "/old", json!("old"))
        .await;
    let response = app
        .call(
            Method::PUT,
            &format!("{ENDPOINTS}/{id}"),
            Some(&alice.token),
            Some(&json!({"method": "GET", "path": "/old", "response": {"body_base64": "%%%"}})),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.revision(&alice, "alice/demo").await, 2);
    assert_eq!(
        app.fetch("/alice/demo/old").await,
        (StatusCode::OK, r#""old""#.to_owned())
    );
}

#[tokio::test]
async fn an_identical_change_is_a_no_op() {
    let (app, alice) = alice_with_demo().await;
    let token = Some(alice.token.as_str());
    let definition = json!({"description": "same", "endpoints": [
        {"id": "a", "method": "GET", "path": "/a", "response": {"json": 1}},
    ]});
    let response = app
        .call(Method::PUT, PROJECT, token, Some(&definition))
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
    let response = app
        .call(Method::PUT, PROJECT, token, Some(&definition))
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
    let one = format!("{ENDPOINTS}/a");
    let response = app
        .call(
            Method::PUT,
            &one,
            token,
            Some(&json!({"method": "GET", "path": "/a", "response": {"json": 1}})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
    let response = app
        .call(Method::PATCH, &one, token, Some(&json!({"path": "/a"})))
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
    let response = app
        .call(
            Method::PATCH,
            PROJECT,
            token,
            Some(&json!({"description": "same"})),
        )
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
    let history = app
        .call(Method::GET, &format!("{PROJECT}/changes"), token, None)
        .await;
    assert_eq!(
        json_body(history).await["changes"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn a_read_answer_can_be_sent_back_as_a_put() {
    let (app, alice) = alice_with_demo().await;
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!({"x": 1}))
        .await;
    let read = app.read_project(&alice, "alice/demo").await;
    let response = app
        .call(Method::PUT, PROJECT, Some(&alice.token), Some(&read))
        .await;
    assert_revision(response, StatusCode::OK, 2).await;
}

#[tokio::test]
async fn the_change_history_lists_newest_first_with_summaries_and_actor() {
    let app = spawn_app().await;
    let admin = app.user("root").await;
    let alice = app.user("alice").await;
    app.project(&alice, "demo").await;
    app.add_json_endpoint(&alice, "alice/demo", "/a", json!(1))
        .await;
    app.call(
        Method::PATCH,
        PROJECT,
        Some(&admin.token),
        Some(&json!({"mode": "production"})),
    )
    .await;
    let response = app
        .call(
            Method::GET,
            &format!("{PROJECT}/changes"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"3\"");
    let body = json_body(response).await;
    assert_eq!(body["revision"], 3);
    let changes = body["changes"].as_array().expect("changes");
    let revisions: Vec<i64> = changes
        .iter()
        .filter_map(|c| c["revision"].as_i64())
        .collect();
    assert_eq!(revisions, [3, 2, 1]);
    let actors: Vec<&str> = changes.iter().filter_map(|c| c["actor"].as_str()).collect();
    assert_eq!(actors, ["root", "alice", "alice"]);
    let summaries: Vec<&str> = changes
        .iter()
        .filter_map(|c| c["summary"].as_str())
        .collect();
    assert!(
        summaries[0].contains("mode") && summaries[0].contains("production"),
        "{summaries:?}"
    );
    assert!(
        summaries[1].contains("add endpoint GET /a"),
        "{summaries:?}"
    );
    assert!(!summaries[2].is_empty());
    assert!(
        changes
            .iter()
            .all(|c| c["at"].as_str().is_some_and(|t| t.ends_with('Z')))
    );

    let response = app
        .call(
            Method::GET,
            &format!("{PROJECT}/changes?limit=1"),
            Some(&alice.token),
            None,
        )
        .await;
    let body = json_body(response).await;
    assert_eq!(body["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["changes"][0]["revision"], 3);
}

#[tokio::test]
async fn a_bad_history_limit_is_422() {
    let (app, alice) = alice_with_demo().await;
    for limit in ["0", "1001", "many"] {
        let response = app
            .call(
                Method::GET,
                &format!("{PROJECT}/changes?limit={limit}"),
                Some(&alice.token),
                None,
            )
            .await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(
            body["error"]["details"][0]["field"], "query.limit",
            "{limit}"
        );
    }
}
