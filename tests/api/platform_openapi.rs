//! `GET /openapi.json`: the platform API's own OpenAPI document. It is served as JSON, it is
//! a valid OpenAPI 3.1 document for the real validator (`openapi-spec-validator`, Python),
//! and what the routes really answer fits the schemas it gives them (checked with
//! `jsonschema`, which the validator depends on).
//!
//! Python and the validator must be there: without them these tests fail, saying how to
//! install them. `scripts/test` installs them, and sets `SWITCHYARD_PYTHON` when it has to
//! put them in a virtual environment.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, header, json_body, spawn_app};

/// The pinned validator version, as `scripts/test` installs it.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";

/// The Python with `openapi-spec-validator`: `SWITCHYARD_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn install_hint(python: &str) -> String {
    format!(
        "install it with `{python} -m pip install '{VALIDATOR}'` (on Debian, in a virtual \
         environment: `python3 -m venv ~/.cache/switchyard/venv && ~/.cache/switchyard/venv/bin/pip \
         install '{VALIDATOR}'`, then set SWITCHYARD_PYTHON=~/.cache/switchyard/venv/bin/python), \
         or run scripts/test, which does this"
    )
}

/// Runs `python args…`, failing the test with how to install the validator when Python or
/// the validator is missing. Returns whether it succeeded, and its output.
pub(crate) async fn run_python(args: &[&str]) -> (bool, String) {
    let python = python();
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import openapi_spec_validator, jsonschema"])
        .output()
        .await;
    match probe {
        Err(error) => panic!(
            "cannot run `{python}` ({error}); the OpenAPI tests need Python 3 with \
             openapi-spec-validator: {}",
            install_hint(&python)
        ),
        Ok(output) if !output.status.success() => panic!(
            "openapi-spec-validator is not installed for `{python}` ({}): {}",
            String::from_utf8_lossy(&output.stderr).trim(),
            install_hint(&python)
        ),
        Ok(_) => {}
    }
    let output = tokio::process::Command::new(&python)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|error| panic!("cannot run `{python}`: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Fetches the document, checking how it is served.
async fn fetch_document(app: &TestApp) -> (String, Value) {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    let text = response.text().await.expect("body");
    let document: Value = serde_json::from_str(&text).expect("the document is JSON");
    (text, document)
}

#[tokio::test]
async fn the_document_is_served_as_json_and_the_validator_accepts_it() {
    let app = spawn_app().await;
    let (text, document) = fetch_document(&app).await;
    let version = document["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1"), "openapi is `{version}`");
    assert_eq!(document["info"]["title"], "Switchyard platform API");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    for path in [
        "/auth/login",
        "/admin/projects/{owner}/{name}",
        "/openapi.json",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).expect("write the document");
    let file = file.to_str().expect("a UTF-8 path");
    let (ok, output) = run_python(&["-m", "openapi_spec_validator", file]).await;
    assert!(ok, "openapi-spec-validator refuses the document:\n{output}");
    assert!(output.contains("OK"), "the validator said: {output}");
    // The same document every time: it is built once.
    let (again, _) = fetch_document(&app).await;
    assert_eq!(again, text);
}

#[tokio::test]
async fn the_validator_refuses_a_broken_document() {
    // The check above can fail: a document whose route names an undefined schema is refused.
    let app = spawn_app().await;
    let (_, mut document) = fetch_document(&app).await;
    document["paths"]["/auth/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/NoSuchSchema"});
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write the document");
    let (ok, output) = run_python(&["-m", "openapi_spec_validator", file.to_str().unwrap()]).await;
    assert!(!ok, "a broken document passed: {output}");
}

/// One real answer: the operation it answers and its JSON body.
struct Sample {
    method: &'static str,
    path: &'static str,
    status: u16,
    body: Value,
}

/// Records what `response` answered to `method path` (the documented template).
async fn sample(
    samples: &mut Vec<Sample>,
    method: &'static str,
    path: &'static str,
    response: reqwest::Response,
) -> Value {
    let status = response.status().as_u16();
    let body = json_body(response).await;
    samples.push(Sample {
        method,
        path,
        status,
        body: body.clone(),
    });
    body
}

/// Checks each answer against the schema the document gives its operation and status.
const CHECK: &str = r#"
import json, sys
from jsonschema import Draft202012Validator

document = json.load(open(sys.argv[1]))
samples = json.load(open(sys.argv[2]))
failures = []
for sample in samples:
    where = f"{sample['method'].upper()} {sample['path']} -> {sample['status']}"
    operation = document["paths"].get(sample["path"], {}).get(sample["method"])
    if operation is None:
        failures.append(f"{where}: the operation is not documented")
        continue
    answer = operation["responses"].get(str(sample["status"]))
    if answer is None:
        failures.append(f"{where}: the status is not documented")
        continue
    if "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        failures.append(f"{where}: no JSON schema for this answer")
        continue
    root = dict(schema)
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["components"] = document["components"]
    for error in Draft202012Validator(root).iter_errors(sample["body"]):
        at = "/".join(str(part) for part in error.absolute_path)
        failures.append(f"{where}: at `{at}`: {error.message}")
print(f"{len(samples)} answers checked")
for failure in failures:
    print(failure)
sys.exit(1 if failures else 0)
"#;

#[tokio::test]
async fn real_answers_fit_the_schemas_the_document_gives_them() {
    let app = spawn_app().await;
    let alice = app.user("alice").await; // the first user: an admin
    let token = Some(alice.token.as_str());
    let mut samples = Vec::new();
    let s = &mut samples;

    sample(s, "get", "/", app.get("/").await).await;
    sample(s, "get", "/health", app.get("/health").await).await;
    sample(s, "get", "/ready", app.get("/ready").await).await;
    sample(s, "get", "/stats", app.get("/stats").await).await;

    // Accounts and tokens.
    let register = app.register("bob", "correct horse battery").await;
    sample(s, "post", "/auth/register", register).await;
    let login = app.login("bob", "correct horse battery").await;
    let bob = sample(s, "post", "/auth/login", login).await;
    let bob = User {
        name: "bob".into(),
        password: "correct horse battery".into(),
        token: bob["access_token"].as_str().expect("a token").to_owned(),
    };
    let me = app.call(Method::GET, "/auth/me", token, None).await;
    sample(s, "get", "/auth/me", me).await;
    let made = app
        .call(
            Method::POST,
            "/auth/tokens",
            token,
            Some(&json!({"name": "ci"})),
        )
        .await;
    sample(s, "post", "/auth/tokens", made).await;
    let tokens = app.call(Method::GET, "/auth/tokens", token, None).await;
    sample(s, "get", "/auth/tokens", tokens).await;
    let anonymous = app.call(Method::GET, "/auth/me", None, None).await;
    sample(s, "get", "/auth/me", anonymous).await;

    // Projects: every kind of auth policy, CORS and a rate limit, endpoints of each kind.
    let shop = json!({
        "name": "shop",
        "description": "a shop",
        "journal_size": 50,
        "cors": {"allow_origins": ["https://app.example.com"]},
        "rate_limit": {"requests": 100, "per_secs": 1},
        "endpoints": [
            {"id": "items", "method": "GET", "path": "/items",
             "response": {"json": [{"id": 1}], "headers": {"x-a": ["1", "2"]}},
             "summary": "items", "tags": ["shop"]},
            {"method": "ANY", "path": "/api", "proxy": {"backend": "api"}},
            {"method": "GET", "path": "/text", "response": {"status": 201, "body": "hi",
             "delay_ms": 1}, "auth": {"public": true}},
        ],
        "backends": [{"name": "api", "urls": ["http://127.0.0.1:9"],
                      "health_check": {"path": "/health"}}],
    });
    let created = app
        .call(Method::POST, "/admin/projects", token, Some(&shop))
        .await;
    sample(s, "post", "/admin/projects", created).await;
    let policies = [
        ("keyed", json!({"type": "api_key", "header": "x-api-key"})),
        (
            "signed",
            json!({"type": "jwt", "algorithms": ["HS256"],
            "secret": "0123456789abcdef0123456789abcdef", "issuer": "me",
            "audience": ["you", "them"]}),
        ),
        ("members", json!({"type": "platform", "owner_only": true})),
        (
            "basic",
            json!({"type": "basic", "users": [{"username": "u", "password": "secret!"}]}),
        ),
    ];
    for (name, auth) in policies {
        let body = json!({"name": name, "auth": auth});
        let created = app
            .call(Method::POST, "/admin/projects", token, Some(&body))
            .await;
        sample(s, "post", "/admin/projects", created).await;
    }
    let dry = app
        .call(
            Method::POST,
            "/admin/projects?dry_run=true",
            token,
            Some(&json!({"name": "draft"})),
        )
        .await;
    sample(s, "post", "/admin/projects", dry).await;
    let list = app.call(Method::GET, "/admin/projects", token, None).await;
    sample(s, "get", "/admin/projects", list).await;
    let project = "/admin/projects/{owner}/{name}";
    let read = app
        .call(Method::GET, "/admin/projects/alice/shop", token, None)
        .await;
    let definition = sample(s, "get", project, read).await;
    let patched = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            token,
            Some(&json!({"description": "the shop"})),
        )
        .await;
    sample(s, "patch", project, patched).await;
    let dry = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop?dry_run=true",
            token,
            Some(&json!({"mode": "production"})),
        )
        .await;
    sample(s, "patch", project, dry).await;
    let replaced = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop",
            token,
            Some(&definition),
        )
        .await;
    sample(s, "put", project, replaced).await;
    let new = app
        .call(
            Method::PUT,
            "/admin/projects/alice/pushed",
            token,
            Some(&json!({"endpoints": []})),
        )
        .await;
    sample(s, "put", project, new).await;
    // A pushed folder: created, its dry run, a refused one.
    let folder = "/admin/projects/{owner}/{name}/folder";
    let push = |query: &str, datasets: Value| {
        let project = json!({"definition": {"endpoints": [
            {"id": "a", "method": "GET", "path": "/a", "response": {"json": 1}}]},
            "script": null, "datasets": datasets});
        app.client
            .put(app.url(&format!("/admin/projects/alice/folded/folder{query}")))
            .bearer_auth(&alice.token)
            .multipart(reqwest::multipart::Form::new().text("project", project.to_string()))
            .send()
    };
    let pushed = push("", json!([])).await.expect("push");
    sample(s, "put", folder, pushed).await;
    let dry = push("?dry_run=true", json!([])).await.expect("push");
    sample(s, "put", folder, dry).await;
    let missing = json!([{"name": "iris", "sha256": "0".repeat(64), "format": "csv"}]);
    let refused = push("", missing).await.expect("push");
    sample(s, "put", folder, refused).await;
    let stale = app
        .call_with(
            Method::PATCH,
            "/admin/projects/alice/shop",
            token,
            ("if-match", "\"1\""),
            Some(&json!({"description": "late"})),
        )
        .await;
    sample(s, "patch", project, stale).await;
    let strangers = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop",
            Some(&bob.token),
            None,
        )
        .await;
    sample(s, "get", project, strangers).await;
    let invalid = app
        .call(
            Method::POST,
            "/admin/projects",
            token,
            Some(&json!({"name": "Not A Name"})),
        )
        .await;
    sample(s, "post", "/admin/projects", invalid).await;
    let taken = app
        .call(
            Method::POST,
            "/admin/projects",
            token,
            Some(&json!({"name": "shop"})),
        )
        .await;
    sample(s, "post", "/admin/projects", taken).await;
    let changes = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/changes",
            token,
            None,
        )
        .await;
    sample(s, "get", "/admin/projects/{owner}/{name}/changes", changes).await;

    // Endpoints.
    let endpoints = "/admin/projects/{owner}/{name}/endpoints";
    let endpoint = "/admin/projects/{owner}/{name}/endpoints/{id}";
    let list = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/endpoints",
            token,
            None,
        )
        .await;
    sample(s, "get", endpoints, list).await;
    let added = app
        .post_endpoint(
            &alice,
            "alice/shop",
            &json!({"method": "GET", "path": "/users/{id}", "response": {"json": {"id": 1}}}),
        )
        .await;
    sample(s, "post", endpoints, added).await;
    let one = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/endpoints/items",
            token,
            None,
        )
        .await;
    let read = sample(s, "get", endpoint, one).await;
    let put = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop/endpoints/items",
            token,
            Some(&read),
        )
        .await;
    sample(s, "put", endpoint, put).await;
    let patched = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop/endpoints/items",
            token,
            Some(&json!({"summary": null, "response": {"status": 200, "json": []}})),
        )
        .await;
    sample(s, "patch", endpoint, patched).await;
    let missing = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/endpoints/nope",
            token,
            None,
        )
        .await;
    sample(s, "get", endpoint, missing).await;
    let dry = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/shop/endpoints/items?dry_run=true",
            token,
            None,
        )
        .await;
    sample(s, "delete", endpoint, dry).await;

    // Backends.
    let list = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/backends",
            token,
            None,
        )
        .await;
    sample(s, "get", "/admin/projects/{owner}/{name}/backends", list).await;
    let backend = "/admin/projects/{owner}/{name}/backends/{backend}";
    let one = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/backends/api",
            token,
            None,
        )
        .await;
    sample(s, "get", backend, one).await;
    let put = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop/backends/docked",
            token,
            Some(&json!({"docker": {"match_labels": ["app=web"]}, "policy": "round_robin"})),
        )
        .await;
    sample(s, "put", backend, put).await;
    let in_use = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/shop/backends/api",
            token,
            None,
        )
        .await;
    sample(s, "delete", backend, in_use).await;

    // Keys.
    let keys = "/admin/projects/{owner}/{name}/keys";
    let made = app
        .call(
            Method::POST,
            "/admin/projects/alice/keyed/keys",
            token,
            Some(&json!({"name": "ci", "scopes": ["read"], "expires_in": 3600})),
        )
        .await;
    sample(s, "post", keys, made).await;
    let list = app
        .call(Method::GET, "/admin/projects/alice/keyed/keys", token, None)
        .await;
    sample(s, "get", keys, list).await;

    // Datasets.
    let dataset = "/admin/projects/{owner}/{name}/datasets/{dataset}";
    let uploaded = app
        .send(
            Method::PUT,
            "/admin/projects/alice/shop/datasets/people?endpoints=default",
            token,
            &[("content-type", "text/csv")],
            Some(b"name,age,score\nann,31,1.5\nbo,,2\n".to_vec()),
        )
        .await;
    sample(s, "put", dataset, uploaded).await;
    let bad = app
        .send(
            Method::PUT,
            "/admin/projects/alice/shop/datasets/people",
            token,
            &[("content-type", "image/png")],
            Some(b"x".to_vec()),
        )
        .await;
    sample(s, "put", dataset, bad).await;
    let one = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/datasets/people",
            token,
            None,
        )
        .await;
    sample(s, "get", dataset, one).await;
    let missing = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/datasets/nope/file",
            token,
            None,
        )
        .await;
    sample(
        s,
        "get",
        "/admin/projects/{owner}/{name}/datasets/{dataset}/file",
        missing,
    )
    .await;
    let list = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/datasets",
            token,
            None,
        )
        .await;
    sample(s, "get", "/admin/projects/{owner}/{name}/datasets", list).await;

    // The script.
    let script = app
        .send(
            Method::PUT,
            "/admin/projects/alice/shop/script",
            token,
            &[("content-type", "application/javascript")],
            Some(br#"app.get("/hello", (req) => ({ hi: req.id }));"#.to_vec()),
        )
        .await;
    sample(s, "put", "/admin/projects/{owner}/{name}/script", script).await;
    let broken = app
        .send(
            Method::PUT,
            "/admin/projects/alice/shop/script",
            token,
            &[("content-type", "application/javascript")],
            Some(b"app.get(".to_vec()),
        )
        .await;
    sample(s, "put", "/admin/projects/{owner}/{name}/script", broken).await;

    // Traffic, then what the journal, the stats and explain say of it.
    for path in [
        "/alice/shop/items?q=1",
        "/alice/shop/itemz",
        "/alice/shop/hello",
    ] {
        let response = app.get(path).await;
        assert!(response.status().as_u16() < 500, "{path}");
    }
    let journal = "/admin/projects/{owner}/{name}/journal";
    let list = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/journal",
            token,
            None,
        )
        .await;
    sample(s, "get", journal, list).await;
    let count = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/journal?count=true&status=4xx",
            token,
            None,
        )
        .await;
    sample(s, "get", journal, count).await;
    let bad = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/journal?status=teapot",
            token,
            None,
        )
        .await;
    sample(s, "get", journal, bad).await;
    let stats = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/stats?by=endpoint",
            token,
            None,
        )
        .await;
    sample(s, "get", "/admin/projects/{owner}/{name}/stats", stats).await;
    for path in [
        "/alice/shop/items",
        "/alice/shop/itemz",
        "/alice/nothing",
        "/admin",
    ] {
        let explained = app
            .call(
                Method::GET,
                &format!("/admin/explain?method=GET&path={path}"),
                token,
                None,
            )
            .await;
        sample(s, "get", "/admin/explain", explained).await;
    }
    let stats = app.get("/stats").await;
    sample(s, "get", "/stats", stats).await;

    // Check every answer against the document.
    let (text, _) = fetch_document(&app).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let document_file = dir.path().join("openapi.json");
    std::fs::write(&document_file, text).expect("write the document");
    let samples: Vec<Value> = samples
        .iter()
        .map(|sample| {
            json!({"method": sample.method, "path": sample.path,
                   "status": sample.status, "body": sample.body})
        })
        .collect();
    let statuses: Vec<u16> = samples
        .iter()
        .filter_map(|sample| sample["status"].as_u64())
        .map(|status| status as u16)
        .collect();
    for expected in [200, 201, 401, 403, 404, 409, 412, 415, 422] {
        assert!(
            statuses.contains(&expected),
            "no sample answered {expected}: {statuses:?}"
        );
    }
    let count = samples.len();
    let samples_file = dir.path().join("samples.json");
    std::fs::write(&samples_file, Value::Array(samples).to_string()).expect("write the answers");
    let (ok, output) = run_python(&[
        "-c",
        CHECK,
        document_file.to_str().unwrap(),
        samples_file.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "answers that do not fit the document:\n{output}");
    assert!(
        output.contains(&format!("{count} answers checked")),
        "the check did not run: {output}"
    );
}
