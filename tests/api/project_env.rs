//! A project's mode `staging` beside `development` and `production`, and its environment
//! values (`env`): set on create, `PUT` and `PATCH`, shown to the owner, validated by field,
//! stored across restarts, read by the project's script as `env` (compiled again, in the same
//! revision, when they change), and kept out of logs, the journal, errors and the history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Process, TestApp, User, assert_invalid, db_url, json_body, spawn_app};

const SITE: &str = "/admin/projects/alice/site";

/// `user`'s `PATCH` of their project `site` with `body`; the answer's status and body.
async fn patch(app: &TestApp, user: &User, body: Value) -> (StatusCode, Value) {
    let response = app
        .call(Method::PATCH, SITE, Some(&user.token), Some(&body))
        .await;
    let status = response.status();
    (status, json_body(response).await)
}

/// Sends `source` as the script of `user`'s project `site`, which must be taken.
async fn put_script(app: &TestApp, user: &User, source: &str) {
    let response = app
        .send(
            Method::PUT,
            &format!("{SITE}/script"),
            Some(&user.token),
            &[("content-type", "application/javascript")],
            Some(source.as_bytes().to_vec()),
        )
        .await;
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        json_body(response).await
    );
}

/// GET `path` as anyone: its status and JSON body.
async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.get(path).await;
    let status = response.status();
    (status, json_body(response).await)
}

/// The summaries of `site`'s change history, newest first.
async fn history(app: &TestApp, user: &User) -> Vec<String> {
    let response = app
        .call(
            Method::GET,
            &format!("{SITE}/changes"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["summary"].as_str().expect("summary").to_owned())
        .collect()
}

#[tokio::test]
async fn staging_and_env_are_created_shown_patched_and_replaced() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "site", "mode": "staging",
                         "env": {"GREETING": "hello", "TOKEN": "s3cret-one"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["mode"], "staging");
    assert_eq!(
        created["env"],
        json!({"GREETING": "hello", "TOKEN": "s3cret-one"})
    );
    let read = app.read_project(&alice, "alice/site").await;
    assert_eq!(read["mode"], "staging");
    assert_eq!(read["env"]["TOKEN"], "s3cret-one");
    // The list shows them to the owner too.
    let response = app
        .call(Method::GET, "/admin/projects", Some(&alice.token), None)
        .await;
    let listed = json_body(response).await;
    assert_eq!(listed["projects"][0]["mode"], "staging");
    assert_eq!(listed["projects"][0]["env"]["GREETING"], "hello");
    // Another user sees nothing of it.
    let bob = app.user("bob").await;
    let response = app.call(Method::GET, SITE, Some(&bob.token), None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.text().await.expect("body").contains("s3cret"));

    // A PATCH gives the whole map: what it leaves out goes.
    let (status, patched) = patch(
        &app,
        &alice,
        json!({"mode": "production", "env": {"GREETING": "bonjour", "NEW": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["mode"], "production");
    assert_eq!(patched["env"], json!({"GREETING": "bonjour", "NEW": "x"}));
    assert_eq!(patched["revision"], 2);
    // Other settings leave it alone; the same map again changes nothing.
    let (_, patched) = patch(&app, &alice, json!({"description": "d"})).await;
    assert_eq!(patched["env"], json!({"GREETING": "bonjour", "NEW": "x"}));
    let (_, again) = patch(
        &app,
        &alice,
        json!({"env": {"NEW": "x", "GREETING": "bonjour"}}),
    )
    .await;
    assert_eq!(again["revision"], 3, "no change, no revision");
    // A dry run shows the change and makes none.
    let response = app
        .call(
            Method::PATCH,
            &format!("{SITE}?dry_run=true"),
            Some(&alice.token),
            Some(&json!({"mode": "staging", "env": {"GREETING": "dry-secret"}})),
        )
        .await;
    let dry = json_body(response).await;
    assert_eq!(dry["dry_run"], true);
    let targets: Vec<&str> = dry["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["target"].as_str())
        .collect();
    assert_eq!(targets, ["mode", "env"]);
    assert!(!dry["changes"].to_string().contains("dry-secret"), "{dry}");
    assert_eq!(
        app.read_project(&alice, "alice/site").await["mode"],
        "production"
    );
    // `null` removes them all.
    let (_, cleared) = patch(&app, &alice, json!({"env": null, "mode": "staging"})).await;
    assert_eq!(cleared["env"], json!({}));
    assert_eq!(cleared["mode"], "staging");

    // What a GET answered goes back through a PUT unchanged, as a no-op.
    let (_, patched) = patch(&app, &alice, json!({"env": {"A": "1"}})).await;
    let revision = patched["revision"].as_i64().expect("revision");
    let whole = app.read_project(&alice, "alice/site").await;
    let response = app
        .call(Method::PUT, SITE, Some(&alice.token), Some(&whole))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let put = json_body(response).await;
    assert_eq!(put["revision"], revision);
    assert_eq!(
        (put["env"].clone(), put["mode"].clone()),
        (json!({"A": "1"}), json!("staging"))
    );
    // A PUT is the whole definition: without `env` or `mode`, none and `development`.
    let response = app
        .call(Method::PUT, SITE, Some(&alice.token), Some(&json!({})))
        .await;
    let put = json_body(response).await;
    assert_eq!(
        (put["env"].clone(), put["mode"].clone()),
        (json!({}), json!("development"))
    );
    // And a PUT that creates takes them.
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/other",
            Some(&alice.token),
            Some(&json!({"mode": "staging", "env": {"B": "2"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let other = json_body(response).await;
    assert_eq!(
        (other["env"].clone(), other["mode"].clone()),
        (json!({"B": "2"}), json!("staging"))
    );

    // The history names what changed, never a value.
    let summaries = history(&app, &alice).await;
    let text = summaries.join("\n");
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("env") && s.contains("GREETING")),
        "{text}"
    );
    assert!(
        summaries.iter().any(|s| s.contains("mode staging")),
        "{text}"
    );
    for value in ["s3cret-one", "bonjour", "dry-secret"] {
        assert!(!text.contains(value), "{value} in {text}");
    }
}

#[tokio::test]
async fn a_script_reads_env_and_sees_a_change_in_the_same_revision() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_from(&alice, "site", json!({"env": {"GREETING": "hello"}}))
        .await;
    put_script(
        &app,
        &alice,
        r#"const atLoad = env.GREETING;
           if (!env.GREETING) throw new Error("GREETING is missing");
           app.get("/greet", () => env.GREETING);
           app.get("/loaded", () => ({ atLoad, keys: Object.keys(env) }));"#,
    )
    .await;
    assert_eq!(
        get_json(&app, "/alice/site/greet").await,
        (StatusCode::OK, json!("hello"))
    );

    // Answered means served: the very next request sees the new value, at load time too.
    let (status, patched) = patch(
        &app,
        &alice,
        json!({"env": {"GREETING": "bonjour", "X": "1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let revision = patched["revision"].as_i64().expect("revision");
    assert_eq!(
        get_json(&app, "/alice/site/greet").await.1,
        json!("bonjour")
    );
    assert_eq!(
        get_json(&app, "/alice/site/loaded").await.1,
        json!({"atLoad": "bonjour", "keys": ["GREETING", "X"]})
    );
    assert_eq!(app.revision(&alice, "alice/site").await, revision);

    // A dry run compiles with the new values and changes nothing.
    let response = app
        .call(
            Method::PATCH,
            &format!("{SITE}?dry_run=true"),
            Some(&alice.token),
            Some(&json!({"env": {"GREETING": "dry"}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        get_json(&app, "/alice/site/greet").await.1,
        json!("bonjour")
    );

    // Values the script does not load with are refused, naming `env`; it keeps serving.
    let (status, refused) = patch(&app, &alice, json!({"env": {"X": "1"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "env");
    let message = refused["error"]["details"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("GREETING is missing"), "{message}");
    assert_eq!(
        get_json(&app, "/alice/site/greet").await.1,
        json!("bonjour")
    );
    assert_eq!(app.revision(&alice, "alice/site").await, revision);

    // A whole PUT changes them the same way, and so does one that changes the mode too.
    let mut whole = app.read_project(&alice, "alice/site").await;
    whole["env"] = json!({"GREETING": "hallo"});
    whole["mode"] = json!("staging");
    let response = app
        .call(Method::PUT, SITE, Some(&alice.token), Some(&whole))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(get_json(&app, "/alice/site/greet").await.1, json!("hallo"));
    // A new script is compiled with the values the project has.
    put_script(
        &app,
        &alice,
        r#"app.get("/greet", () => "v2 " + env.GREETING);"#,
    )
    .await;
    assert_eq!(
        get_json(&app, "/alice/site/greet").await.1,
        json!("v2 hallo")
    );
    let (_, _) = patch(&app, &alice, json!({"env": null})).await;
    assert_eq!(
        get_json(&app, "/alice/site/greet").await.1,
        json!("v2 undefined")
    );
}

#[tokio::test]
async fn invalid_env_is_refused_by_field_without_its_values() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let secret = "do-not-echo-this";
    app.project(&alice, "site").await;
    let many: serde_json::Map<String, Value> =
        (0..257).map(|i| (format!("V{i}"), json!("v"))).collect();
    for (env, field) in [
        (json!({"1BAD": secret}), "env.1BAD"),
        (json!({"A-B": secret}), "env.A-B"),
        (
            json!({"N".repeat(129): secret}),
            &*format!("env.{}", "N".repeat(129)),
        ),
        (json!({"BIG": "x".repeat(64 * 1024 + 1)}), "env.BIG"),
        (Value::Object(many), "env"),
    ] {
        // On create, on PATCH and on PUT alike.
        let response = app
            .call(
                Method::POST,
                "/admin/projects",
                Some(&alice.token),
                Some(&json!({"name": "fresh", "env": env})),
            )
            .await;
        let body = assert_invalid(response, field).await;
        assert!(!body.to_string().contains(secret), "{body}");
        let response = app
            .call(
                Method::PATCH,
                SITE,
                Some(&alice.token),
                Some(&json!({"env": env})),
            )
            .await;
        let body = assert_invalid(response, field).await;
        assert!(!body.to_string().contains(secret), "{body}");
        let response = app
            .call(
                Method::PUT,
                SITE,
                Some(&alice.token),
                Some(&json!({"env": env})),
            )
            .await;
        assert_invalid(response, field).await;
    }
    // Limits are inclusive, and values are strings.
    let (status, fits) = patch(
        &app,
        &alice,
        json!({"env": {"N".repeat(128): "x".repeat(64 * 1024), "_": ""}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fits}");
    let response = app
        .call(
            Method::PATCH,
            SITE,
            Some(&alice.token),
            Some(&json!({"env": {"A": 1}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .call(
            Method::PATCH,
            SITE,
            Some(&alice.token),
            Some(&json!({"mode": "testing"})),
        )
        .await;
    assert_invalid(response, "mode").await;
}

#[tokio::test]
async fn staging_shows_the_docs_and_checks_no_answers_while_production_hides_them() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_from(
        &alice,
        "site",
        json!({"mode": "staging", "endpoints": [
            {"method": "GET", "path": "/bad", "validate": {"response": true},
             "responses": {"200": {"description": "A number", "content": {"application/json":
                 {"schema": {"type": "integer"}}}}},
             "response": {"json": "not a number"}}
        ]}),
    )
    .await;
    let docs = [
        "/alice/site/openapi.json",
        "/alice/site/docs",
        "/alice/site/redoc",
    ];
    for path in docs {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    let flagged = |entry: &Value| entry.get("response_invalid").is_some();
    // Staging sends the answer unchecked; development flags it.
    assert_eq!(app.get("/alice/site/bad").await.status(), StatusCode::OK);
    let journal = app.journal(&alice, "alice/site", "?limit=1").await;
    assert!(!flagged(&journal["entries"][0]), "{journal:#}");
    let (status, _) = patch(&app, &alice, json!({"mode": "development"})).await;
    assert_eq!(status, StatusCode::OK);
    app.get("/alice/site/bad").await;
    let journal = app.journal(&alice, "alice/site", "?limit=1").await;
    assert!(flagged(&journal["entries"][0]), "{journal:#}");
    // Production hides the docs; back in staging they are there again.
    patch(&app, &alice, json!({"mode": "production"})).await;
    for path in docs {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    patch(&app, &alice, json!({"mode": "staging"})).await;
    let (status, document) = get_json(&app, "/alice/site/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["paths"]["/bad"].is_object(), "{document:#}");
}

#[tokio::test]
async fn staging_and_env_survive_a_restart() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_from(
        &alice,
        "site",
        json!({"mode": "staging", "env": {"GREETING": "hello"}}),
    )
    .await;
    put_script(&app, &alice, r#"app.get("/greet", () => env.GREETING);"#).await;
    patch(&app, &alice, json!({"env": {"GREETING": "stored"}})).await;
    let app = app.restart().await;
    let read = app.read_project(&alice, "alice/site").await;
    assert_eq!(read["mode"], "staging");
    assert_eq!(read["env"], json!({"GREETING": "stored"}));
    assert_eq!(read["status"], "ok");
    assert_eq!(get_json(&app, "/alice/site/greet").await.1, json!("stored"));
    assert_eq!(
        app.get("/alice/site/openapi.json").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn env_values_reach_no_log_line_journal_entry_or_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let file = logs.join("switchyard.log");
    let db = db_url(&dir.path().join("s.db"));
    let process = Process::start_with_logs(
        &db,
        &[
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--log-file",
            file.to_str().expect("path"),
        ],
    )
    .await;
    let base = process.base.clone();
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .expect("register");
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let send = |method: Method, path: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let created = send(
        Method::POST,
        "/admin/projects",
        Some(json!({"name": "site", "env": {"TOKEN": "SECRET-ENV-111"}})),
    )
    .await
    .expect("create");
    assert_eq!(created.status(), 201);
    let script = client
        .put(format!("{base}{SITE}/script"))
        .bearer_auth(&token)
        .header("content-type", "application/javascript")
        .body(r#"app.get("/len", () => env.TOKEN.length); console.log("keys", Object.keys(env));"#)
        .send()
        .await
        .expect("script");
    assert!(script.status().is_success());
    let patched = send(
        Method::PATCH,
        SITE,
        Some(json!({"env": {"TOKEN": "SECRET-ENV-222"}, "mode": "staging"})),
    )
    .await
    .expect("patch");
    assert_eq!(patched.status(), 200);
    let refused = send(
        Method::PATCH,
        SITE,
        Some(json!({"env": {"1BAD": "SECRET-ENV-333", "BIG": "SECRET-ENV-444".repeat(5000)}})),
    )
    .await
    .expect("patch");
    assert_eq!(refused.status(), 422);
    let refused = refused.text().await.expect("body");
    let answer = client
        .get(format!("{base}/alice/site/len?x=1"))
        .send()
        .await
        .expect("call");
    assert_eq!(answer.text().await.expect("body"), "14");
    let journal = send(Method::GET, &format!("{SITE}/journal"), None)
        .await
        .expect("journal")
        .text()
        .await
        .expect("body");
    let changes = send(Method::GET, &format!("{SITE}/changes"), None)
        .await
        .expect("changes")
        .text()
        .await
        .expect("body");
    process.terminate().await;

    let mut text = String::new();
    for entry in std::fs::read_dir(&logs).expect("log dir") {
        text.push_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("log"));
    }
    assert!(
        text.contains("project created"),
        "the log was written: {text}"
    );
    for secret in [
        "SECRET-ENV-111",
        "SECRET-ENV-222",
        "SECRET-ENV-333",
        "SECRET-ENV-444",
    ] {
        assert!(!text.contains(secret), "`{secret}` reached the log");
        assert!(!journal.contains(secret), "`{secret}` reached the journal");
        assert!(!changes.contains(secret), "`{secret}` reached the history");
        assert!(
            !refused.contains(secret),
            "`{secret}` reached an error: {refused}"
        );
    }
}
