//! `serve --demo`: a demo user and project with a few mock endpoints, created if missing.
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

/// What `--demo` made, for the command line to print.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub username: String,
    /// `None` when the user already existed: its password was printed when it was made.
    pub password: Option<String>,
    pub project_mount: String,
    /// `METHOD path` of each demo endpoint, relative to the mount.
    pub endpoints: Vec<String>,
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
    if changes.routes().load().get(&key).is_none() {
        let actor = Actor {
            user_id: user.id,
            username: &user.username,
            admin: user.role == crate::model::Role::Admin,
        };
        changes
            .create_project(
                actor,
                actor,
                SettingsEdit {
                    name: Some(DEMO_PROJECT.into()),
                    description: Some(
                        "Demo mock endpoints created by `switchyard serve --demo`".into(),
                    ),
                    mode: None,
                    journal_size: None,
                },
                specs,
                Vec::new(),
                false,
            )
            .await
            .map_err(|e| DemoError(e.to_string()))?;
    }
    Ok(DemoInfo {
        username: user.username,
        password,
        project_mount: format!("/{key}"),
        endpoints: listed,
    })
}
