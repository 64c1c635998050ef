//! Logs of the real binary: the JSON format line by line, the access log and its fields,
//! request ids in log lines, redaction of secrets, `--access-log off`, bad settings.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{Process, db_url};

/// Every line of every log file in `dir`, parsed as JSON.
fn json_lines(dir: &Path) -> (Vec<Value>, String) {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("log dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("switchyard.log"))
        {
            text.push_str(&std::fs::read_to_string(&path).expect("log file"));
        }
    }
    let lines = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    (lines, text)
}

/// Registers and logs in alice, creates `alice/shop` with `/items/{id}`; the token.
async fn shop(base: &str, client: &reqwest::Client) -> String {
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
    let created = client
        .post(format!("{base}/admin/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "shop", "endpoints": [
            {"id": "item", "method": "GET", "path": "/items/{id}", "response": {"json": {"ok": true}}}
        ]}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    token
}

#[tokio::test]
async fn json_access_log_names_each_request_and_hides_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let file = logs.join("switchyard.log");
    let db = db_url(&dir.path().join("s.db"));
    let process = Process::start_with_logs(
        &db,
        &[
            "--log-level",
            "info",
            "--log-format",
            "json",
            "--log-file",
            file.to_str().expect("path"),
        ],
    )
    .await;
    let base = process.base.clone();
    let client = reqwest::Client::new();
    let token = shop(&base, &client).await;

    let answer = client
        .get(format!(
            "{base}/alice/shop/items/7?page=2&api_key=SECRET-KEY-123"
        ))
        .header("x-request-id", "trace-abc-1")
        .header("authorization", "Bearer SECRET-BEARER-456")
        .header("cookie", "session=SECRET-COOKIE-789")
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    let missing = client
        .get(format!("{base}/alice/shop/nothing"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    let missing_id = missing.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    for path in ["/health", "/ready"] {
        client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect(path);
    }
    process.terminate().await;

    let (lines, text) = json_lines(&logs);
    for secret in [
        "SECRET-KEY-123",
        "SECRET-BEARER-456",
        "SECRET-COOKIE-789",
        "correct horse battery",
        token.as_str(),
    ] {
        assert!(!text.contains(secret), "`{secret}` reached the log");
    }
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    let item = access
        .iter()
        .find(|l| l["request_id"] == "trace-abc-1")
        .unwrap_or_else(|| panic!("no access line for trace-abc-1 in {text}"));
    assert_eq!(item["level"], "INFO");
    assert_eq!(item["method"], "GET");
    assert_eq!(item["path"], "/alice/shop/items/7");
    assert_eq!(item["query"], "page=2&api_key=[redacted]");
    assert_eq!(item["project"], "alice/shop");
    assert_eq!(item["endpoint"], "item");
    assert_eq!(item["status"], 200);
    assert_eq!(item["client"], "127.0.0.1");
    assert_eq!(item["bytes"], 11);
    assert!(item["latency_ms"].as_f64().expect("latency") > 0.0);
    assert!(item["timestamp"].is_string());

    let miss = access
        .iter()
        .find(|l| l["request_id"] == missing_id.as_str())
        .expect("the 404 is logged with its generated id");
    assert_eq!(miss["status"], 404);
    assert_eq!(miss["project"], "alice/shop");
    assert!(miss.get("endpoint").is_none_or(Value::is_null));
    // Platform calls are logged, monitoring probes are not.
    assert!(access.iter().any(|l| l["path"] == "/admin/projects"));
    assert!(
        !access
            .iter()
            .any(|l| l["path"] == "/health" || l["path"] == "/ready")
    );
    // Other lines are JSON too, e.g. the start-up line; a platform handler's lines name
    // their request.
    assert!(lines.iter().any(|l| l["message"] == "listening"));
    let created = lines
        .iter()
        .find(|l| l["message"] == "project created")
        .expect("the create is logged");
    let id = created["span"]["request_id"].as_str().expect("request id");
    assert_eq!(id.len(), 36, "a generated UUIDv7: {created}");
    assert!(
        access
            .iter()
            .any(|l| l["request_id"] == id && l["path"] == "/admin/projects"),
        "the same id is in the create's access line"
    );
}

#[tokio::test]
async fn access_log_off_writes_no_access_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let file = logs.join("switchyard.log");
    let db = db_url(&dir.path().join("s.db"));
    let process = Process::start_with_logs(
        &db,
        &[
            "--log-format",
            "json",
            "--log-file",
            file.to_str().expect("path"),
            "--access-log",
            "off",
        ],
    )
    .await;
    let client = reqwest::Client::new();
    shop(&process.base, &client).await;
    client
        .get(format!("{}/alice/shop/items/1", process.base))
        .send()
        .await
        .expect("request");
    process.terminate().await;
    let (lines, _) = json_lines(&logs);
    assert!(!lines.is_empty(), "the start-up lines are there");
    assert!(lines.iter().all(|l| l["target"] != "access"));
}

#[tokio::test]
async fn a_bad_log_filter_stops_the_start_with_a_clear_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--port", "0", "--db", "sqlite::memory:"])
        .args(["--log-level", "info,switchyard=loud"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}
