//! Serving project folders with the real binary: `switchyard run DIR` (one project at `/`)
//! and `switchyard serve --projects DIR` (each at `/{name}`), followed as they change.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Process, run_binary, text};

/// Makes project folder `name` under `parent` from `template` with `switchyard new`.
async fn new_folder(parent: &Path, name: &str, template: &str) {
    let made = run_binary(parent, &["new", name, "--template", template], &[]).await;
    assert!(made.status.success(), "{}", text(&made.stderr));
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let (status, body) = get(client, url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// Polls `url` until its body contains `wanted`, for at most `limit`; answers how long
/// it took.
async fn wait_for(client: &reqwest::Client, url: &str, wanted: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (_, body) = get(client, url).await;
        if body.contains(wanted) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{url} did not answer {wanted:?} within {limit:?}; last: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("the file");
    assert!(text.contains(from), "{}: no {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("written");
}

#[tokio::test]
async fn run_serves_one_folder_at_the_root_with_health_docs_and_the_environment() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "shop", "mock").await;
    let client = reqwest::Client::new();

    let (app, _logs) = Process::spawn(Some(parent.path()), &["run", "shop", "-p", "0"], &[]).await;
    let health = get_json(&client, &format!("{}/health", app.base)).await;
    assert_eq!(
        health,
        json!({"name": "shop", "mode": "development", "debug": true})
    );
    let hello = get_json(&client, &format!("{}/hello", app.base)).await;
    assert_eq!(hello, json!({"message": "Hello from Switchyard"}));
    // Request validation, as under `serve`.
    let bad = client
        .post(format!("{}/items", app.base))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let doc = get_json(&client, &format!("{}/openapi.json", app.base)).await;
    assert_eq!(doc["servers"][0]["url"], "/");
    assert!(doc["paths"]["/items/{id}"]["get"].is_object(), "{doc}");
    let (status, page) = get(&client, &format!("{}/docs", app.base)).await;
    assert_eq!(status, 200);
    assert!(page.contains("/openapi.json"), "{page}");
    let (status, _) = get(&client, &format!("{}/docs/assets/swagger-ui.css", app.base)).await;
    assert_eq!(status, 200);
    let (status, _) = get(&client, &format!("{}/nowhere", app.base)).await;
    assert_eq!(status, 404);
    app.terminate().await;

    // The process environment overrides .env: the name, the mode.
    let (app, _logs) = Process::spawn(
        Some(parent.path()),
        &["run", "shop", "-p", "0"],
        &[("MODE", "production"), ("APP_NAME", "store")],
    )
    .await;
    let health = get_json(&client, &format!("{}/health", app.base)).await;
    assert_eq!(
        health,
        json!({"name": "store", "mode": "production", "debug": false})
    );
    // Production hides the docs; the endpoints still answer.
    for path in ["/docs", "/redoc", "/openapi.json"] {
        let (status, _) = get(&client, &format!("{}{path}", app.base)).await;
        assert_eq!(status, 404, "{path}");
    }
    let hello = get_json(&client, &format!("{}/hello", app.base)).await;
    assert_eq!(hello["message"], "Hello from Switchyard");
    app.terminate().await;
}

#[tokio::test]
async fn run_serves_scripts_with_env_and_datasets() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "calc", "script").await;
    new_folder(parent.path(), "flowers", "dataset").await;
    let client = reqwest::Client::new();

    let (app, _logs) = Process::spawn(
        Some(parent.path()),
        &["run", "calc", "-p", "0"],
        &[("GREETING", "Hi from the environment")],
    )
    .await;
    let hello = get_json(&client, &format!("{}/hello", app.base)).await;
    assert_eq!(hello, json!({"message": "Hi from the environment"}));
    let made = client
        .post(format!("{}/items", app.base))
        .json(&json!({"id": "7", "name": "seven"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let item = get_json(&client, &format!("{}/items/7", app.base)).await;
    assert_eq!(item, json!({"id": "7", "name": "seven"}));
    // The script's routes are in the project's document.
    let doc = get_json(&client, &format!("{}/openapi.json", app.base)).await;
    assert!(
        doc["paths"]["/items"]["post"]["requestBody"].is_object(),
        "{doc}"
    );
    app.terminate().await;

    let (app, _logs) =
        Process::spawn(Some(parent.path()), &["run", "flowers", "-p", "0"], &[]).await;
    let schema = get_json(&client, &format!("{}/schema", app.base)).await;
    assert!(schema.to_string().contains("species"), "{schema}");
    let stats = get_json(&client, &format!("{}/stats/count", app.base)).await;
    assert!(
        stats.to_string().contains("150") || stats.to_string().contains("50"),
        "{stats}"
    );
    app.terminate().await;
}

#[tokio::test]
async fn run_of_a_broken_folder_names_the_file_and_line_and_fails() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "shop", "mock").await;
    let manifest = parent.path().join("shop/switchyard.yaml");
    edit(
        &manifest,
        "path: /items/{id}",
        "path: items-without-a-slash",
    );
    let output = run_binary(parent.path(), &["run", "shop", "-p", "0"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("shop/switchyard.yaml:") && stderr.contains("path"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = run_binary(parent.path(), &["run", "nowhere", "-p", "0"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not a project folder"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn serve_projects_mounts_each_folder_under_its_name_with_one_document() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "shop", "mock").await;
    new_folder(parent.path(), "calc", "script").await;
    new_folder(parent.path(), "flowers", "dataset").await;
    // Not a project folder: ignored.
    std::fs::create_dir(parent.path().join("notes")).unwrap();
    let client = reqwest::Client::new();

    let (app, _logs) = Process::spawn(
        Some(parent.path()),
        &["serve", "--projects", ".", "-p", "0"],
        &[],
    )
    .await;
    let health = get_json(&client, &format!("{}/health", app.base)).await;
    assert_eq!(health, json!({"status": "ok"}));
    for name in ["shop", "calc", "flowers"] {
        let health = get_json(&client, &format!("{}/{name}/health", app.base)).await;
        assert_eq!(
            health,
            json!({"name": name, "mode": "development", "debug": true})
        );
        let (status, _) = get(&client, &format!("{}/{name}/docs", app.base)).await;
        assert_eq!(status, 200, "{name}");
        let own = get_json(&client, &format!("{}/{name}/openapi.json", app.base)).await;
        assert_eq!(own["servers"][0]["url"], format!("/{name}"));
    }
    let hello = get_json(&client, &format!("{}/shop/hello", app.base)).await;
    assert_eq!(hello["message"], "Hello from Switchyard");
    let hello = get_json(&client, &format!("{}/calc/hello", app.base)).await;
    assert_eq!(hello["message"], "Hello from Switchyard");
    let (status, _) = get(&client, &format!("{}/hello", app.base)).await;
    assert_eq!(status, 404);

    // One document: every project's paths under its prefix, operationIds unique and
    // prefixed by the project's name, a tag per project.
    let doc = get_json(&client, &format!("{}/openapi.json", app.base)).await;
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/shop/hello",
        "/shop/items/{id}",
        "/calc/items",
        "/flowers/schema",
    ] {
        assert!(paths.contains_key(path), "{path} in {:?}", paths.keys());
    }
    assert!(paths.keys().all(|p| {
        p.starts_with("/shop/") || p.starts_with("/calc/") || p.starts_with("/flowers/")
    }));
    let mut ids = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let project = path.split('/').nth(1).unwrap();
            assert!(
                id.starts_with(&format!("{project}.")),
                "{method} {path}: {id}"
            );
            assert_eq!(operation["tags"][0], project);
            ids.push(id.to_owned());
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    assert!(count >= 8, "{count}");
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["calc", "flowers", "shop"]);
    let (status, page) = get(&client, &format!("{}/docs", app.base)).await;
    assert_eq!(status, 200);
    assert!(page.contains("/openapi.json"));
    app.terminate().await;
}

#[tokio::test]
async fn serve_projects_follows_edits_under_load_and_keeps_the_last_good_version() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "shop", "mock").await;
    let client = reqwest::Client::new();
    let (app, logs) = Process::spawn(
        Some(parent.path()),
        &["serve", "--projects", ".", "-p", "0"],
        &[],
    )
    .await;
    let url = format!("{}/shop/hello", app.base);
    get_json(&client, &url).await;

    // Load: four clients asking without pause; not one request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop, served) =
            (client.clone(), url.clone(), stop.clone(), served.clone());
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => failures.push(response.status().to_string()),
                    Err(error) => failures.push(error.to_string()),
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let manifest = parent.path().join("shop/switchyard.yaml");
    edit(&manifest, "Hello from Switchyard", "Hello again");
    let took = wait_for(&client, &url, "Hello again", Duration::from_secs(3)).await;
    // Reported, not asserted as a timing (the machine is shared): the poll is 250 ms.
    eprintln!("the edit was served after {took:?}");

    // An edit that does not read: logged with its file and line; the last good version
    // keeps serving.
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{good}  - method: [not, a, method]\n")).unwrap();
    let start = Instant::now();
    loop {
        let logged = logs.lock().unwrap().join("\n");
        if logged.contains("switchyard.yaml:") {
            assert!(
                logged.contains("the last good version keeps serving"),
                "{logged}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no error logged: {logged}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hello = get_json(&client, &url).await;
    assert_eq!(hello["message"], "Hello again");
    // A router added with the CLI is mounted without editing anything else.
    std::fs::write(&manifest, &good).unwrap();
    let added = run_binary(parent.path(), &["add-router", "shop", "orders"], &[]).await;
    assert!(added.status.success(), "{}", text(&added.stderr));
    wait_for(
        &client,
        &format!("{}/shop/orders", app.base),
        "[",
        Duration::from_secs(3),
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    for task in load {
        let failures = task.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
    }
    assert!(served.load(Ordering::Relaxed) > 0);

    // A new folder is mounted; a removed one unmounted.
    new_folder(parent.path(), "calc", "script").await;
    wait_for(
        &client,
        &format!("{}/calc/health", app.base),
        "\"calc\"",
        Duration::from_secs(5),
    )
    .await;
    std::fs::remove_dir_all(parent.path().join("shop")).unwrap();
    let start = Instant::now();
    while get(&client, &url).await.0 != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "shop is still served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let doc = get_json(&client, &format!("{}/openapi.json", app.base)).await;
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| p.starts_with("/calc/")),
        "{doc}"
    );
    app.terminate().await;
}

#[tokio::test]
async fn validate_compiles_folders_as_a_server_would() {
    let parent = tempfile::tempdir().unwrap();
    new_folder(parent.path(), "calc", "script").await;
    new_folder(parent.path(), "shop", "mock").await;
    let output = run_binary(parent.path(), &["validate", "."], &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    // Each file reads, but the script does not compile, and a router's endpoint takes a
    // path the manifest's already has.
    std::fs::write(parent.path().join("calc/app.js"), "app.get('/x', () => {\n").unwrap();
    std::fs::create_dir_all(parent.path().join("shop/routers")).unwrap();
    std::fs::write(
        parent.path().join("shop/routers/more.yaml"),
        "prefix: /items\nendpoints:\n  - {id: again, method: GET, path: '/{n}', response: {json: {}}}\n",
    )
    .unwrap();
    let output = run_binary(parent.path(), &["validate", "."], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("calc/app.js:2:1: SyntaxError"), "{stderr}");
    // Placed at the endpoint's file and line, the other one's named.
    assert!(
        stderr.contains("shop/routers/more.yaml:3:5: endpoint `again` (GET /items/{n}) has the same method and path"),
        "{stderr}"
    );
    assert!(stderr.contains("(see ./shop/switchyard.yaml:"), "{stderr}");
    assert!(
        stderr.contains("2 of 2 project folders have problems"),
        "{stderr}"
    );
}
