//! `switchyard push`, `pull` and `login` with the real binary against a real server, and
//! one request suite answered the same by a folder under `run`, under `serve --projects`
//! and pushed to `serve`.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{Process, TestApp, User, run_binary, spawn_app, text};

/// Makes the suite's folder `shop` under `parent`: mock endpoints (the mock template), a
/// router, a script reading `env`, the iris dataset with its standard endpoints, and, with
/// an `upstream`, a proxy to it and HTTP Basic auth for user `ann`.
async fn suite_folder(parent: &Path) {
    suite_folder_with(parent, None).await;
}

async fn suite_folder_with(parent: &Path, upstream: Option<&str>) {
    for (args, what) in [
        (&["new", "shop"][..], "new"),
        (
            &["new", "flowers", "--template", "dataset"][..],
            "new dataset",
        ),
        (&["add-router", "shop", "orders"][..], "add-router"),
    ] {
        let done = run_binary(parent, args, &[]).await;
        assert!(done.status.success(), "{what}: {}", text(&done.stderr));
    }
    let shop = parent.join("shop");
    std::fs::create_dir_all(shop.join("data")).unwrap();
    std::fs::rename(
        parent.join("flowers/data/iris.csv"),
        shop.join("data/iris.csv"),
    )
    .unwrap();
    std::fs::remove_dir_all(parent.join("flowers")).unwrap();
    let manifest = shop.join("switchyard.yaml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(
        "datasets:\n  - {name: iris, file: data/iris.csv, endpoints: default, category: species, prefix: /iris}\n",
    );
    if let Some(upstream) = upstream {
        text = text.replace(
            "endpoints:\n",
            "endpoints:\n  - {method: GET, path: /up/array, proxy: {backend: up}}\n",
        );
        text.push_str(&format!(
            "backends:\n  - {{name: up, urls: [\"{upstream}\"]}}\nauth:\n  type: basic\n  users: [{{username: ann, password: correct horse battery}}]\n"
        ));
    }
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(
        shop.join("app.js"),
        "app.get('/greet', (req) => ({ greeting: env.GREETING, who: req.query.who ?? 'you' }));\n",
    )
    .unwrap();
    let mut env = std::fs::read_to_string(shop.join(".env")).unwrap();
    env.push_str("GREETING='Good morning'\n");
    std::fs::write(shop.join(".env"), env).unwrap();
}

/// The suite: method, path, body.
fn suite() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/up/array", None),
        ("GET", "/hello", None),
        ("GET", "/items/3", None),
        ("GET", "/items/0", None),
        ("POST", "/items", Some(json!({"name": "pen"}))),
        ("POST", "/items", Some(json!({}))),
        ("GET", "/orders", None),
        ("GET", "/greet?who=ann", None),
        ("GET", "/iris/schema", None),
        ("GET", "/iris/stats/count", None),
        ("GET", "/nowhere", None),
    ]
}

/// The suite's answers from the project mounted at `base`: status and body, without the
/// request ids (each request has its own).
async fn answers(base: &str) -> Vec<(u16, Value)> {
    let client = reqwest::Client::new();
    let mut all = Vec::new();
    // Without credentials first, then every request as `ann`.
    let suite = std::iter::once(("GET", "/hello", None, false))
        .chain(suite().into_iter().map(|(m, p, b)| (m, p, b, true)));
    for (method, path, body, credentials) in suite {
        let mut request = client.request(method.parse().unwrap(), format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if credentials {
            request = request.basic_auth("ann", Some("correct horse battery"));
        }
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let mut body: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
            error.remove("request_id");
        }
        all.push((status, body));
    }
    all
}

fn remote<'a>(app: &'a TestApp, user: &'a User) -> [(&'a str, String); 2] {
    [
        ("SWITCHYARD_SERVER", format!("http://{}", app.addr)),
        ("SWITCHYARD_TOKEN", user.token.clone()),
    ]
}

async fn cli(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = run_binary(dir, args, &envs).await;
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[tokio::test]
async fn one_suite_answers_the_same_under_run_serve_projects_and_pushed() {
    let parent = tempfile::tempdir().unwrap();
    let upstream = crate::upstream::Upstream::start("up").await;
    suite_folder_with(parent.path(), Some(&upstream.url())).await;

    let (app, _logs) = Process::spawn(Some(parent.path()), &["run", "shop", "-p", "0"], &[]).await;
    let alone = answers(&app.base).await;
    app.terminate().await;

    let (app, _logs) = Process::spawn(
        Some(parent.path()),
        &["serve", "--projects", ".", "-p", "0"],
        &[],
    )
    .await;
    let mounted = answers(&format!("{}/shop", app.base)).await;
    app.terminate().await;

    let server = spawn_app().await;
    let alice = server.user("alice").await;
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &remote(&server, &alice)).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("alice/shop: created at revision"), "{out}");
    let pushed = answers(&format!("http://{}/alice/shop", server.addr)).await;

    // The sanity of the suite itself: it reaches every kind.
    assert_eq!(alone[0].0, 401, "{:?}", alone[0]);
    assert_eq!(alone[1], (200, json!([1, 2, 3])));
    assert_eq!(alone[2], (200, json!({"message": "Hello from Switchyard"})));
    assert_eq!(alone[4].0, 422, "{:?}", alone[4]);
    assert_eq!(alone[5].0, 201);
    assert_eq!(alone[6].0, 422);
    assert_eq!(
        alone[8],
        (200, json!({"greeting": "Good morning", "who": "ann"}))
    );
    assert_eq!(alone[9].0, 200, "{:?}", alone[9]);
    assert_eq!(alone[11].0, 404);
    assert_eq!(alone.len(), mounted.len());
    for i in 0..alone.len() {
        assert_eq!(alone[i], mounted[i], "run vs serve --projects: request {i}");
        assert_eq!(alone[i], pushed[i], "run vs pushed: request {i}");
    }
    // Three servers, one upstream: the proxy was reached by each.
    assert_eq!(upstream.request_count(), 3);
}

#[tokio::test]
async fn push_pull_push_is_a_no_op_and_a_dry_run_changes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    suite_folder(parent.path()).await;
    let server = spawn_app().await;
    let alice = server.user("alice").await;
    let env = remote(&server, &alice);

    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("sent data/iris.csv"), "{out}");
    let revision = server.revision(&alice, "alice/shop").await;

    // The same folder again: nothing sent, nothing changed.
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("alice/shop: no change (revision {revision})")
    );
    assert_eq!(server.revision(&alice, "alice/shop").await, revision);

    // Pulled, then pushed back: still nothing.
    let (ok, out, err) = cli(parent.path(), &["pull", "alice/shop", "copy"], &env).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("pulled alice/shop"), "{out}");
    let copy = parent.path().join("copy");
    for file in ["switchyard.yaml", ".env", "app.js", "data/iris.csv"] {
        assert!(copy.join(file).is_file(), "{file}");
    }
    assert_eq!(
        std::fs::read(copy.join("data/iris.csv")).unwrap(),
        std::fs::read(parent.path().join("shop/data/iris.csv")).unwrap()
    );
    let env_file = std::fs::read_to_string(copy.join(".env")).unwrap();
    assert!(env_file.contains("GREETING='Good morning'"), "{env_file}");
    let (ok, out, err) = cli(parent.path(), &["validate", "copy"], &env).await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(parent.path(), &["push", "copy"], &env).await;
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("alice/shop: no change (revision {revision})")
    );
    // A pull never writes over a folder.
    let (ok, _, err) = cli(parent.path(), &["pull", "alice/shop", "copy"], &env).await;
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    // A dry run lists the changes and makes none.
    let manifest = parent.path().join("shop/switchyard.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("Hello from Switchyard", "Hello again"),
    )
    .unwrap();
    let (ok, out, err) = cli(parent.path(), &["push", "shop", "--dry-run"], &env).await;
    assert!(ok, "{err}");
    assert!(out.contains("dry run") && out.contains("endpoint"), "{out}");
    assert_eq!(server.revision(&alice, "alice/shop").await, revision);
    let hello = server.fetch("/alice/shop/hello").await;
    assert!(hello.1.contains("Hello from Switchyard"));
    // Pushed: one revision.
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("alice/shop: revision {revision} → {}", revision + 1)
    );
    assert!(
        server
            .fetch("/alice/shop/hello")
            .await
            .1
            .contains("Hello again")
    );
}

#[tokio::test]
async fn push_refusals_are_one_line_with_a_hint_and_change_nothing() {
    let parent = tempfile::tempdir().unwrap();
    suite_folder(parent.path()).await;
    let server = spawn_app().await;
    let alice = server.user("alice").await;
    let env = remote(&server, &alice);
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(ok, "{out}{err}");
    let revision = server.revision(&alice, "alice/shop").await;

    // A script that does not compile: refused whole, the old version kept.
    std::fs::write(
        parent.path().join("shop/app.js"),
        "app.get('/x', (req) => {\n",
    )
    .unwrap();
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(!ok, "{out}");
    assert!(
        err.starts_with("switchyard: the server refused the push (422"),
        "{err}"
    );
    assert!(err.contains("script"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(server.revision(&alice, "alice/shop").await, revision);

    // A folder with a mistake is not sent at all.
    let manifest = parent.path().join("shop/switchyard.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("path: /items/{id}", "path: items")).unwrap();
    let (ok, _, err) = cli(parent.path(), &["push", "shop"], &env).await;
    assert!(!ok);
    assert!(err.contains("shop/switchyard.yaml:"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");

    // A bad token.
    let bad = [
        ("SWITCHYARD_SERVER", format!("http://{}", server.addr)),
        ("SWITCHYARD_TOKEN", "nonsense".to_owned()),
    ];
    let (ok, _, err) = cli(parent.path(), &["pull", "alice/shop", "other"], &bad).await;
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("hint: run switchyard login"), "{err}");
    assert!(!parent.path().join("other").exists());
}

#[tokio::test]
async fn login_keeps_the_token_for_the_next_commands() {
    let parent = tempfile::tempdir().unwrap();
    suite_folder(parent.path()).await;
    let home = tempfile::tempdir().unwrap();
    let server = spawn_app().await;
    let alice = server.user("alice").await;
    let url = format!("http://{}", server.addr);

    let mut login = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["login", "--server", &url, "--username", "alice"])
        .env_clear()
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = login.stdin.take().unwrap();
        stdin
            .write_all(format!("{}\n", alice.password).as_bytes())
            .await
            .unwrap();
    }
    let output = login.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("logged in to"),
        "{}",
        text(&output.stdout)
    );
    let stored = home.path().join(".config/switchyard/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No --server, no token: the login's.
    let home_env = [("HOME", home.path().display().to_string())];
    let (ok, out, err) = cli(parent.path(), &["push", "shop"], &home_env).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("alice/shop: created"), "{out}");

    // A wrong password: refused, nothing stored over the good login.
    let before = std::fs::read(&stored).unwrap();
    let mut login = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["login", "--server", &url, "--username", "alice"])
        .env_clear()
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = login.stdin.take().unwrap();
        stdin.write_all(b"wrong password\n").await.unwrap();
    }
    let output = login.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("401"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read(&stored).unwrap(), before);
}
