//! What survives: a normal restart keeps everything; `kill -9` right after the admin API
//! acknowledges a change keeps that change; a stored project that does not compile is
//! served as 503 without stopping the node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{
    PASSWORD, Process, assert_error, db_url, json_body, read_raw_answer, spawn_app,
};

#[tokio::test]
async fn projects_endpoints_users_and_tokens_survive_a_restart() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project(&alice, "keep").await;
    app.add_json_endpoint(&alice, "alice/keep", "/a", json!({"a": 1}))
        .await;
    let gone = app
        .add_json_endpoint(&alice, "alice/keep", "/gone", json!(0))
        .await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/admin/projects/alice/keep/endpoints/{gone}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    app.create_project(&alice, "dropped").await;
    app.call(
        Method::DELETE,
        "/admin/projects/alice/dropped",
        Some(&alice.token),
        None,
    )
    .await;
    let api_token = json_body(
        app.call(
            Method::POST,
            "/auth/tokens",
            Some(&alice.token),
            Some(&json!({"name": "ci"})),
        )
        .await,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let app = app.restart().await;

    assert_eq!(
        json_body(app.get("/alice/keep/a").await).await,
        json!({"a": 1})
    );
    assert_eq!(
        app.get("/alice/keep/gone").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/alice/dropped/").await.status(),
        StatusCode::NOT_FOUND
    );
    for token in [&alice.token, &api_token] {
        let me = app.call(Method::GET, "/auth/me", Some(token), None).await;
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(json_body(me).await["projects"], json!(["keep"]));
    }
    let project = json_body(
        app.call(
            Method::GET,
            "/admin/projects/alice/keep",
            Some(&alice.token),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(project["revision"], 4, "create, add, add, delete");
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // The first user is still the admin, and a new user still is not.
    assert_eq!(
        json_body(app.register("bob", PASSWORD).await).await["role"],
        "user"
    );
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("crash.db"));
    let mut process = Process::start(&db, &[]).await;
    let client = reqwest::Client::new();
    let base = process.base.clone();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let registered = post(
        "/auth/register",
        None,
        json!({"username": "carol", "password": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login: Value = post(
        "/auth/login",
        None,
        json!({"username": "carol", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let created = post("/admin/projects", Some(&token), json!({"name": "crash"}))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    for i in 0..25 {
        let endpoint =
            json!({"method": "GET", "path": format!("/e{i}"), "response": {"json": {"i": i}}});
        let added = post(
            "/admin/projects/carol/crash/endpoints",
            Some(&token),
            endpoint,
        )
        .await
        .unwrap();
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    // SIGKILL the moment the last change is acknowledged: no shutdown, no flush.
    process.child.kill().await.expect("kill -9");

    let process = Process::start(&db, &[]).await;
    for i in 0..25 {
        let answer = client
            .get(format!("{}/carol/crash/e{i}", process.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "endpoint {i} survived");
        assert_eq!(answer.json::<Value>().await.unwrap(), json!({"i": i}));
    }
    let me = client
        .get(format!("{}/auth/me", process.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the login session survived");
}

#[tokio::test]
async fn a_stored_project_that_does_not_compile_is_served_as_503_and_can_be_fixed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project(&alice, "broken").await;
    app.create_project(&alice, "fine").await;
    app.add_json_endpoint(&alice, "alice/broken", "/x", json!(1))
        .await;
    app.add_json_endpoint(&alice, "alice/fine", "/y", json!(2))
        .await;
    let db = app.db_path();
    let _dir = app.stop().await;

    // Damage the stored definition behind the server's back, as a bad manual edit would.
    let pool = sqlx::SqlitePool::connect(&db_url(&db)).await.unwrap();
    sqlx::query(
        "UPDATE endpoints SET definition = '{\"method\": 7}' WHERE project_id = (SELECT id FROM projects WHERE name = 'broken')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let mut config = switchyard::config::Config::new(db_url(&db));
    config.port = 0;
    let server = switchyard::server::start(config)
        .await
        .expect("the node starts anyway");
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let broken = client
        .get(format!("{base}/alice/broken/x"))
        .send()
        .await
        .unwrap();
    assert_error(
        broken,
        StatusCode::SERVICE_UNAVAILABLE,
        "project_unavailable",
    )
    .await;
    let fine = client
        .get(format!("{base}/alice/fine/y"))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let project: Value = client
        .get(format!("{base}/admin/projects/alice/broken"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(project["status"], "unavailable");
    assert!(
        project["problem"]
            .as_str()
            .unwrap()
            .contains("cannot be read")
    );

    let fixed = client
        .put(format!("{base}/admin/projects/alice/broken"))
        .bearer_auth(&alice.token)
        .json(
            &json!({"endpoints": [{"method": "GET", "path": "/x", "response": {"json": "back"}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.status(), StatusCode::OK);
    let served = client
        .get(format!("{base}/alice/broken/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.json::<Value>().await.unwrap(), json!("back"));
    server.shutdown().await;
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("term.db"));
    let mut process = Process::start(&db, &[]).await;
    let client = reqwest::Client::new();
    let base = process.base.clone();
    client
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "dave", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "dave", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let project = json!({"name": "slow", "endpoints": [
        {"method": "POST", "path": "/wait", "response": {"json": "done", "delay_ms": 1500}}
    ]});
    let created = client
        .post(format!("{base}/admin/projects"))
        .bearer_auth(&token)
        .json(&project)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // A positive signal that the request is in flight before SIGTERM: with `Expect:
    // 100-continue`, the server says `100 Continue` only once the handler reads the body.
    let addr = base.strip_prefix("http://").expect("an http URL");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /dave/slow/wait HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\n\
              expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut pending = Vec::new();
    let interim = read_raw_answer(&mut stream, &mut pending)
        .await
        .expect("100 Continue");
    assert_eq!(interim.status(), 100, "{}", interim.head);
    let pid = process.child.id().expect("a pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(signalled.success());
    // The rest of the body, after the signal: the request is still served in full.
    stream.write_all(b"body").await.unwrap();

    let answer = read_raw_answer(&mut stream, &mut pending)
        .await
        .expect("the in-flight request completes");
    assert_eq!(answer.status(), 200, "{}", answer.head);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer.body).unwrap(),
        json!("done")
    );
    let status = tokio::time::timeout(Duration::from_secs(15), process.child.wait())
        .await
        .expect("the process exits after draining")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // A fresh client cannot connect any more.
    let refused = reqwest::Client::new()
        .get(format!("{base}/health"))
        .send()
        .await;
    assert!(refused.is_err(), "the listener is closed");
}
