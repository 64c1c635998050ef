//! `switchyard dataset import`: the real binary uploading a file to a real server (started
//! in-process by `spawn_app`), its stdout summary, its one-line errors and their hints, and
//! what the server then holds.

use std::path::Path;
use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, User, json_body, spawn_app, text};

const IRIS: &str = "\
sepal_length,sepal_width,species
5.1,3.5,setosa
7.0,3.2,versicolor
6.3,3.3,virginica
";

/// Runs `switchyard dataset import ARGS…` in `dir` with only the given environment, and
/// waits (at most 60 s) for it to end.
async fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut all = vec!["dataset", "import"];
    all.extend(args);
    crate::helpers::run_binary(dir, &all, envs).await
}

/// A server with user `alice` and her project `alice/iris-demo`, and a directory holding
/// `iris.csv`.
async fn setup() -> (TestApp, User, tempfile::TempDir) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "iris-demo").await;
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("iris.csv"), IRIS).expect("write iris.csv");
    (app, alice, dir)
}

/// Imports `file` into `alice/iris-demo` as `alice`, with `extra` arguments.
async fn import_as(app: &TestApp, alice: &User, dir: &Path, file: &str, extra: &[&str]) -> Output {
    let server = app.url("");
    let mut args = vec![file, "--project", "alice/iris-demo", "--server", &server];
    args.extend_from_slice(extra);
    run(dir, &args, &[("SWITCHYARD_TOKEN", &alice.token)]).await
}

/// `GET /admin/projects/alice/iris-demo/datasets/{name}`: its status and body.
async fn read_dataset(app: &TestApp, alice: &User, name: &str) -> (StatusCode, Value) {
    let response = app
        .call(
            Method::GET,
            &format!("/admin/projects/alice/iris-demo/datasets/{name}"),
            Some(&alice.token),
            None,
        )
        .await;
    let status = response.status();
    (status, json_body(response).await)
}

/// The line of `stdout` about column `name`, split into its cells.
fn column_line(stdout: &str, name: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|c| c == name))
        .unwrap_or_else(|| panic!("no line for column {name} in:\n{stdout}"))
}

#[tokio::test]
async fn an_imported_csv_is_summed_up_on_stdout_and_held_by_the_server() {
    let (app, alice, dir) = setup().await;
    let output = import_as(&app, &alice, dir.path(), "iris.csv", &[]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("dataset alice/iris-demo/iris: 3 rows, 3 columns ("),
        "{stdout}"
    );
    let revision = app.revision(&alice, "alice/iris-demo").await;
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(&format!(", revision {revision}"))),
        "{stdout}"
    );
    assert_eq!(
        column_line(&stdout, "sepal_length"),
        ["sepal_length", "number", "inferred", "no"]
    );
    assert_eq!(
        column_line(&stdout, "species"),
        ["species", "text", "inferred", "no"]
    );
    assert!(stderr.contains("uploading iris.csv: "), "{stderr}");
    assert!(stderr.contains(" (100 %), 3 rows, "), "{stderr}");

    let (status, dataset) = read_dataset(&app, &alice, "iris").await;
    assert_eq!(status, StatusCode::OK, "{dataset}");
    assert_eq!(dataset["name"], "iris");
    assert_eq!(dataset["rows"], 3);
    assert_eq!(dataset["columns"][0]["name"], "sepal_length");
    assert_eq!(dataset["columns"][0]["type"], "number");
}

#[tokio::test]
async fn declared_types_and_a_given_name_are_used() {
    let (app, alice, dir) = setup().await;
    std::fs::write(
        dir.path().join("people.ndjson"),
        "{\"zip\": \"01234\", \"age\": 31}\n\n{\"zip\": \"99999\", \"age\": null}\n",
    )
    .expect("write people.ndjson");
    let output = import_as(
        &app,
        &alice,
        dir.path(),
        "people.ndjson",
        &["--name", "people-2024", "--types", "age:number"],
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("dataset alice/iris-demo/people-2024: 2 rows, 2 columns"),
        "{stdout}"
    );
    assert_eq!(
        column_line(&stdout, "zip"),
        ["zip", "text", "inferred", "no"]
    );
    assert_eq!(
        column_line(&stdout, "age"),
        ["age", "number", "declared", "yes"]
    );
    let (status, dataset) = read_dataset(&app, &alice, "people-2024").await;
    assert_eq!(status, StatusCode::OK, "{dataset}");
    assert_eq!(dataset["rows"], 2);
}

#[tokio::test]
async fn a_bad_row_fails_naming_its_line_and_column_and_changes_nothing() {
    let (app, alice, dir) = setup().await;
    std::fs::write(
        dir.path().join("bad.csv"),
        "sepal_length,species\n5.1,setosa\nabc,versicolor\n",
    )
    .expect("write bad.csv");
    let before = app.revision(&alice, "alice/iris-demo").await;
    let output = import_as(
        &app,
        &alice,
        dir.path(),
        "bad.csv",
        &["--types", "sepal_length:number"],
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("switchyard: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(
        line.starts_with(
            "switchyard: the server refused the upload (422 validation_failed): line 3"
        ),
        "{line}"
    );
    assert!(line.contains("`sepal_length`"), "{line}");
    assert!(line.contains("`abc`"), "{line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(app.revision(&alice, "alice/iris-demo").await, before);
    let (status, _) = read_dataset(&app, &alice, "bad").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_wrong_token_fails_with_a_hint_to_log_in() {
    let (app, _alice, dir) = setup().await;
    let server = app.url("");
    let output = run(
        dir.path(),
        &[
            "iris.csv",
            "--project",
            "alice/iris-demo",
            "--server",
            &server,
        ],
        &[("SWITCHYARD_TOKEN", "not-a-token")],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("switchyard: the server refused the upload (401 unauthorized): "),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l == "hint: log in and pass --token or set SWITCHYARD_TOKEN"),
        "{stderr}"
    );
    // No token at all is the same refusal.
    let output = run(
        dir.path(),
        &[
            "iris.csv",
            "--project",
            "alice/iris-demo",
            "--server",
            &server,
        ],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("hint: log in"));
}

#[tokio::test]
async fn someone_elses_project_and_a_missing_one_are_refused() {
    let (app, _alice, dir) = setup().await;
    let bob = app.user("bob").await;
    let server = app.url("");
    for (project, expected) in [
        ("alice/iris-demo", "(403 forbidden)"),
        ("bob/nothing", "(404 project_not_found)"),
    ] {
        let output = run(
            dir.path(),
            &["iris.csv", "--project", project, "--server", &server],
            &[("SWITCHYARD_TOKEN", &bob.token)],
        )
        .await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{project}: {stderr}");
        assert!(stderr.contains("\nhint: "), "{project}: {stderr}");
    }
}

#[tokio::test]
async fn a_dry_run_shows_the_change_and_makes_none() {
    let (app, alice, dir) = setup().await;
    let before = app.revision(&alice, "alice/iris-demo").await;
    let output = import_as(&app, &alice, dir.path(), "iris.csv", &["--dry-run"]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("dry run: nothing was changed"),
        "{stdout}"
    );
    assert!(stdout.contains("  add dataset iris"), "{stdout}");
    assert!(
        stdout.contains("dataset alice/iris-demo/iris: 3 rows, 3 columns"),
        "{stdout}"
    );
    assert_eq!(app.revision(&alice, "alice/iris-demo").await, before);
    let (status, _) = read_dataset(&app, &alice, "iris").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn default_endpoints_are_listed_with_their_urls() {
    let (app, alice, dir) = setup().await;
    let output = import_as(
        &app,
        &alice,
        dir.path(),
        "iris.csv",
        &["--endpoints", "default", "--category", "species"],
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let listed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "endpoints:")
        .skip(1)
        .collect();
    assert!(!listed.is_empty(), "{stdout}");
    let base = app.url("/alice/iris-demo/");
    for line in &listed {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 3, "id, method, URL: {line}");
        assert!(cells[2].starts_with(&base), "{line}");
    }
    // Every URL printed is served.
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/iris-demo/endpoints",
            Some(&alice.token),
            None,
        )
        .await;
    let endpoints = json_body(response).await;
    let count = endpoints["endpoints"].as_array().map_or(0, Vec::len);
    assert_eq!(count, listed.len(), "{endpoints}");
}

#[tokio::test]
async fn a_missing_file_is_named_and_nothing_is_sent() {
    let dir = tempfile::tempdir().expect("a directory");
    // Nothing listens there: a request would fail to connect, not name the file.
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let output = run(
        dir.path(),
        &[
            "nope.csv",
            "--project",
            "alice/iris-demo",
            "--server",
            &server,
        ],
        &[("SWITCHYARD_TOKEN", "t")],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("switchyard: cannot read nope.csv: "),
        "{stderr}"
    );
    assert!(!stderr.contains("connect"), "{stderr}");
}

#[tokio::test]
async fn a_server_that_is_not_there_gets_a_hint() {
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("iris.csv"), IRIS).expect("write iris.csv");
    let server = format!("http://127.0.0.1:{}", free_port());
    let output = run(
        dir.path(),
        &["iris.csv", "--project", "alice/iris-demo"],
        &[("SWITCHYARD_SERVER", &server), ("SWITCHYARD_TOKEN", "t")],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("switchyard: cannot connect to {server}: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("\nhint: is the server running at {server}?\n")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_project_without_an_owner_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("iris.csv"), IRIS).expect("write iris.csv");
    let output = run(dir.path(), &["iris.csv", "--project", "iris-demo"], &[]).await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("OWNER/PROJECT"), "{stderr}");
}

/// A port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
