//! Changes under load: while clients hammer a project, two writers change it concurrently.
//! One writer replaces the whole project 500 times, each time with a new version of `/hot`
//! and the endpoints in another order (full router rebuilds, every index moving); the other
//! adds and removes endpoints around it (incremental router extensions and rebuilds).
//! No request may fail, every answer must be a whole body of the path asked for, each client
//! must never see a version of `/hot` older than one it saw before, and the clients must see
//! many versions go by. After the last change only the new body is served.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{json_body, spawn_app};

const CHANGES: u64 = 500;
const CLIENTS: usize = 4;
/// Endpoints the whole-project writer keeps besides `/hot` and `/stable`.
const KEPT: usize = 6;

/// The body of version `v`: its length varies with the version, so a response that mixed
/// the head of one version with the body of another would not parse or not match.
fn body_of(version: u64) -> Value {
    json!({"version": version, "pad": format!("v{version}-").repeat((version % 37 + 1) as usize)})
}

fn endpoint(id: &str, path: &str, body: Value) -> Value {
    json!({"id": id, "method": "GET", "path": path, "response": {"json": body}})
}

/// The whole project at `version`: `/hot` with that version's body, `/stable`, and the
/// kept endpoints, rotated by the version so that every endpoint's place changes.
fn project_at(version: u64) -> Value {
    let mut endpoints = vec![
        endpoint("hot", "/hot", body_of(version)),
        endpoint("stable", "/stable", json!("stable")),
    ];
    endpoints.extend((0..KEPT).map(|k| endpoint(&format!("k{k}"), &format!("/k/{k}"), json!(k))));
    let shift = (version as usize) % endpoints.len();
    endpoints.rotate_left(shift);
    json!({"endpoints": endpoints})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_moving_paths_under_load_never_fail_or_mix_a_request() {
    let app = Arc::new(spawn_app().await);
    let alice = app.user("alice").await;
    app.project(&alice, "swap").await;
    let project = "/admin/projects/alice/swap";
    let response = app
        .call(
            Method::PUT,
            project,
            Some(&alice.token),
            Some(&project_at(0)),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client_no in 0..CLIENTS {
        let client = reqwest::Client::new();
        let app = app.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut last_seen = 0;
            let mut versions = HashSet::new();
            let mut round = client_no;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                // Mostly /hot, and in turn the stable endpoint, a kept one, and one the
                // second writer adds and removes.
                let path = match round % 4 {
                    0 => "/alice/swap/stable".to_owned(),
                    1 => format!("/alice/swap/k/{}", round % KEPT),
                    2 => format!("/alice/swap/extra/{}", round % 8),
                    _ => "/alice/swap/hot".to_owned(),
                };
                let response = client
                    .get(app.url(&path))
                    .send()
                    .await
                    .expect("no request fails");
                let status = response.status();
                let text = response.text().await.expect("a whole body");
                if path.contains("/extra/") && status == StatusCode::NOT_FOUND {
                    continue;
                }
                assert_eq!(status, StatusCode::OK, "{path}: {text}");
                let body: Value = serde_json::from_str(&text).expect("a whole JSON body");
                if path.ends_with("/stable") {
                    assert_eq!(body, json!("stable"));
                } else if let Some(k) = path.strip_prefix("/alice/swap/k/") {
                    assert_eq!(body, json!(k.parse::<u64>().unwrap()), "{path}");
                } else if let Some(n) = path.strip_prefix("/alice/swap/extra/") {
                    assert_eq!(body, json!(format!("extra {n}")), "{path}");
                } else {
                    let version = body["version"].as_u64().expect("a version");
                    assert_eq!(body, body_of(version), "a body that is exactly one version");
                    assert!(
                        version >= last_seen,
                        "went back from {last_seen} to {version}"
                    );
                    last_seen = version;
                    versions.insert(version);
                }
            }
            versions
        }));
    }

    // The second writer: adds `/extra/{n}` at the end (the router is extended) and removes
    // it again (the router is rebuilt), until the first writer is done.
    let adder = {
        let (app, stop, token) = (app.clone(), stop.clone(), alice.token.clone());
        tokio::spawn(async move {
            let mut changes = 0u64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n = (n + 1) % 8;
                let id = format!("x{n}");
                let path = format!("/admin/projects/alice/swap/endpoints/{id}");
                let added = endpoint(&id, &format!("/extra/{n}"), json!(format!("extra {n}")));
                let response = app
                    .call(Method::PUT, &path, Some(&token), Some(&added))
                    .await;
                assert!(response.status().is_success(), "add: {}", response.status());
                let response = app.call(Method::DELETE, &path, Some(&token), None).await;
                // The whole-project writer may have removed it in between.
                assert!(
                    matches!(
                        response.status(),
                        StatusCode::NO_CONTENT | StatusCode::NOT_FOUND
                    ),
                    "remove: {}",
                    response.status()
                );
                changes += 1;
            }
            changes
        })
    };

    let mut last_revision = 0;
    for version in 1..=CHANGES {
        let response = app
            .call(
                Method::PUT,
                project,
                Some(&alice.token),
                Some(&project_at(version)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "change {version}");
        let revision = json_body(response).await["revision"].as_i64().unwrap();
        assert!(revision > last_revision, "revisions only go up");
        last_revision = revision;
        // Acknowledged means served: the very next request sees this version.
        let seen = json_body(app.get("/alice/swap/hot").await).await;
        assert_eq!(seen, body_of(version));
    }
    stop.store(true, Ordering::Relaxed);
    let adds = adder.await.expect("the second writer did not panic");
    assert!(
        adds > 10,
        "the second writer changed the project too ({adds})"
    );
    let mut seen = HashSet::new();
    for client in clients {
        seen.extend(client.await.expect("client did not panic"));
    }
    assert!(
        seen.len() > 50,
        "the clients saw many versions go by ({} of {CHANGES})",
        seen.len()
    );

    for _ in 0..20 {
        assert_eq!(
            json_body(app.get("/alice/swap/hot").await).await,
            body_of(CHANGES)
        );
    }
    let project = app.read_project(&alice, "alice/swap").await;
    assert!(project["revision"].as_i64().unwrap() >= last_revision);
}
