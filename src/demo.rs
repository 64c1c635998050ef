//! `serve --demo`: a demo user, a project with a few mock endpoints, a project whose
//! script is a small todo API kept in `kv`, and the iris dataset as a query API (the
//! standard dataset endpoints), created if missing.
//!
//! The demo goes through the same change path as the admin API, so what it creates is
//! ordinary data: it survives restarts and can be edited or deleted like any project.

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::json;

use crate::accounts::Accounts;
use crate::changes::{Actor, Changes, SettingsEdit};
use crate::model::EndpointSpec;

/// The demo account's name.
pub const DEMO_USER: &str = "alice";
/// The demo project's name.
pub const DEMO_PROJECT: &str = "demo";
/// The demo script project's name.
pub const DEMO_SCRIPT_PROJECT: &str = "todo";
/// The demo dataset project's name, and its dataset's.
pub const DEMO_DATASET_PROJECT: &str = "iris";
/// The iris dataset (Fisher, 1936), as the iris service of the seeds serves it.
pub const IRIS_CSV: &[u8] = include_bytes!("dataset/testdata/iris.csv");

/// The demo script: a todo API whose items live in the project's `kv` store.
pub const DEMO_SCRIPT: &str = r#"// A todo API kept in kv: it survives restarts. See docs/scripts.md.
app.get("/", () => "index!");

app.get("/todos", { summary: "List the todos" }, () =>
  kv.list("todo:").map((entry) => entry.value));

app.post("/todos", { summary: "Add a todo" }, (req) => {
  if (typeof req.body?.title !== "string") {
    return { status: 422, json: { error: 'send {"title": "..."}' } };
  }
  const id = (kv.get("next-id") ?? 1);
  kv.set("next-id", id + 1);
  const todo = { id, title: req.body.title, done: false };
  kv.set("todo:" + String(id).padStart(8, "0"), todo);
  return { status: 201, headers: { location: "todos/" + id }, json: todo };
});

app.get("/todos/{id}", { summary: "One todo" }, (req) =>
  kv.get("todo:" + req.params.id.padStart(8, "0")) ??
    { status: 404, json: { error: "no todo " + req.params.id } });

app.delete("/todos/{id}", { summary: "Delete a todo" }, (req) =>
  kv.delete("todo:" + req.params.id.padStart(8, "0"))
    ? undefined
    : { status: 404, json: { error: "no todo " + req.params.id } });
"#;

/// What `--demo` made, for the command line to print.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub username: String,
    /// `None` when the user already existed: its password was printed when it was made.
    pub password: Option<String>,
    pub project_mount: String,
    /// `METHOD path` of each demo endpoint, relative to the mount.
    pub endpoints: Vec<String>,
    /// Where the script project is mounted, and `METHOD path` of its routes.
    pub script_mount: String,
    pub script_routes: Vec<String>,
    /// Where the dataset project is mounted, and `METHOD path` of its endpoints.
    pub dataset_mount: String,
    pub dataset_endpoints: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(String);

fn endpoints() -> Result<Vec<EndpointSpec>, DemoError> {
    let specs = json!([
        {"id": "hello", "method": "GET", "path": "/hello", "summary": "Say hello",
         "response": {"json": {"message": "hello"}}},
        {"id": "list-items", "method": "GET", "path": "/items", "summary": "List items",
         "response": {"json": [{"id": 1, "name": "anvil"}, {"id": 2, "name": "rope"}]}},
        {"id": "get-item", "method": "GET", "path": "/items/{id}", "summary": "One item",
         "response": {"json": {"id": 1, "name": "anvil"}, "headers": {"cache-control": "max-age=60"}}},
        {"id": "create-item", "method": "POST", "path": "/items", "summary": "Create an item",
         "response": {"status": 201, "json": {"created": true}, "headers": {"location": "/alice/demo/items/3"}}},
        {"id": "slow", "method": "GET", "path": "/slow", "summary": "Answers after 250 ms",
         "response": {"json": {"slow": true}, "delay_ms": 250}},
        {"id": "teapot", "method": "ANY", "path": "/teapot", "summary": "Any method, status 418",
         "response": {"status": 418, "body": "I'm a teapot\n"}},
        {"id": "files", "method": "GET", "path": "/files/{*path}", "summary": "Everything under /files/",
         "response": {"body": "a file\n", "headers": {"content-type": "text/plain"}}}
    ]);
    serde_json::from_value(specs).map_err(|e| DemoError(format!("demo endpoints: {e}")))
}

/// Creates the demo user and project where they are missing.
pub async fn seed(accounts: &Accounts, changes: &Changes) -> Result<DemoInfo, DemoError> {
    let (user, password) = match accounts
        .store()
        .user_by_name(DEMO_USER)
        .await
        .map_err(|e| DemoError(e.to_string()))?
    {
        Some(user) => (user, None),
        None => {
            let password: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from)
                .collect();
            let user = accounts
                .register(DEMO_USER, &password, None)
                .await
                .map_err(|e| DemoError(e.to_string()))?;
            (user, Some(password))
        }
    };
    let key = format!("{DEMO_USER}/{DEMO_PROJECT}");
    let specs = endpoints()?;
    let listed = specs
        .iter()
        .map(|s| format!("{} {}", s.method.as_str(), s.path))
        .collect();
    let actor = Actor {
        user_id: user.id,
        username: &user.username,
        admin: user.role == crate::model::Role::Admin,
    };
    ensure_project(
        changes,
        actor,
        DEMO_PROJECT,
        "Demo mock endpoints created by `switchyard serve --demo`",
        specs,
    )
    .await?;
    let script_key = format!("{DEMO_USER}/{DEMO_SCRIPT_PROJECT}");
    ensure_project(
        changes,
        actor,
        DEMO_SCRIPT_PROJECT,
        "Demo script (a todo API in kv) created by `switchyard serve --demo`",
        Vec::new(),
    )
    .await?;
    // Apart from the create: a demo stopped between the two gets its script next time.
    let has_script = changes
        .routes()
        .load()
        .get(&script_key)
        .is_some_and(|project| project.def.script.is_some());
    if !has_script {
        changes
            .put_script(
                actor,
                crate::changes::Target {
                    key: &script_key,
                    expected: None,
                    dry_run: false,
                },
                DEMO_SCRIPT.to_owned(),
            )
            .await
            .map_err(|error| match error {
                crate::changes::ChangeError::Invalid(details) => DemoError(format!(
                    "the demo script: {}",
                    details
                        .iter()
                        .map(|d| d.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                other => DemoError(other.to_string()),
            })?;
    }
    let script_routes = changes
        .routes()
        .load()
        .get(&script_key)
        .and_then(|project| project.script.clone())
        .map(|script| {
            script
                .ids
                .iter()
                .filter_map(|id| id.strip_prefix("script:").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let dataset_key = format!("{DEMO_USER}/{DEMO_DATASET_PROJECT}");
    seed_dataset(changes, actor, &dataset_key).await?;
    let dataset_endpoints = changes
        .routes()
        .load()
        .get(&dataset_key)
        .map(|project| {
            project
                .def
                .endpoints
                .iter()
                .map(|e| format!("{} {}", e.spec.method.as_str(), e.spec.path))
                .collect()
        })
        .unwrap_or_default();
    Ok(DemoInfo {
        username: user.username,
        password,
        project_mount: format!("/{key}"),
        endpoints: listed,
        script_mount: format!("/{script_key}"),
        script_routes,
        dataset_mount: format!("/{dataset_key}"),
        dataset_endpoints,
    })
}

/// Creates the demo user's project `name` with `endpoints`, unless it exists.
async fn ensure_project(
    changes: &Changes,
    actor: Actor<'_>,
    name: &str,
    description: &str,
    endpoints: Vec<EndpointSpec>,
) -> Result<(), DemoError> {
    if changes
        .routes()
        .load()
        .get(&format!("{}/{name}", actor.username))
        .is_some()
    {
        return Ok(());
    }
    changes
        .create_project(
            actor,
            actor,
            SettingsEdit {
                name: Some(name.into()),
                description: Some(description.into()),
                mode: None,
                journal_size: None,
                auth: None,
                cors: None,
                rate_limit: None,
                openapi: None,
                env: None,
            },
            endpoints,
            Vec::new(),
            false,
        )
        .await
        .map(|_| ())
        .map_err(|e| DemoError(format!("the demo project `{name}`: {e}")))
}

/// The iris project: created if missing, and given the iris dataset with its standard
/// endpoints if it has no dataset of that name (a demo stopped half way is finished).
async fn seed_dataset(changes: &Changes, actor: Actor<'_>, key: &str) -> Result<(), DemoError> {
    let failed = |e: crate::changes::ChangeError| DemoError(format!("the iris demo: {e}"));
    ensure_project(
        changes,
        actor,
        DEMO_DATASET_PROJECT,
        "The iris dataset as a query API, created by `switchyard serve --demo`",
        Vec::new(),
    )
    .await?;
    let Some(project) = changes.routes().load().get(key).cloned() else {
        return Ok(());
    };
    if project.datasets.get(DEMO_DATASET_PROJECT).is_some() {
        return Ok(());
    }
    let upload = crate::datasets::Upload {
        project_id: project.def.id,
        name: DEMO_DATASET_PROJECT.into(),
        format: crate::dataset::Format::Csv,
        declared: Vec::new(),
    };
    let body =
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(IRIS_CSV))]);
    let loaded = crate::datasets::receive(
        &**changes.store(),
        &upload,
        body,
        &crate::datasets::UploadSettings::default(),
        crate::accounts::now_ms(),
    )
    .await
    .map_err(|e| DemoError(format!("the iris demo: {e}")))?;
    let endpoints = crate::datasets::default_endpoints(&loaded, Some("species"), None)
        .map_err(|e| DemoError(format!("the iris demo: {e:?}")))?;
    changes
        .put_dataset(
            actor,
            crate::changes::Target {
                key,
                expected: None,
                dry_run: false,
            },
            std::sync::Arc::new(loaded),
            endpoints,
        )
        .await
        .map_err(failed)?;
    Ok(())
}
