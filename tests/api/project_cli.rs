//! The project-folder commands, the real binary in temporary directories: `new` (every
//! template, never over an existing folder), `rename`, `add-router`, `validate` (positions
//! and exit codes, one folder or a directory of them) and `completions`; each failure one
//! line on stderr (and a hint), exit code 1, nothing changed.

use std::path::Path;
use std::process::Output;

use crate::helpers::{run_binary, text};

async fn run(dir: &Path, args: &[&str]) -> Output {
    run_binary(dir, args, &[]).await
}

/// Asserts a failure: exit code 1, stderr's first line the error (naming `names`), and a
/// hint when one is expected; nothing on stdout.
fn assert_failed(output: &Output, names: &str, hint: bool) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let mut lines = stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("switchyard: ") && first.contains(names),
        "{stderr}"
    );
    assert_eq!(
        lines.next().is_some_and(|l| l.starts_with("hint: ")),
        hint,
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}

#[tokio::test]
async fn new_makes_a_valid_folder_from_each_template_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["mock", "script", "gateway", "dataset"] {
        let name = format!("p-{template}");
        let output = run(dir.path(), &["new", &name, "--template", template]).await;
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains(&name));
        let env = std::fs::read_to_string(dir.path().join(&name).join(".env")).unwrap();
        assert!(env.contains(&format!("APP_NAME={name}\n")) && env.contains("MODE=development\n"));
        let output = run(dir.path(), &["validate", &name]).await;
        assert!(
            output.status.success(),
            "{template}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains(&format!("project {name}")));
    }
    // `--dir`, made if missing.
    let output = run(dir.path(), &["new", "deep", "--dir", "a/b"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("a/b/deep/switchyard.yaml").is_file());

    let manifest = dir.path().join("p-mock/switchyard.yaml");
    std::fs::write(&manifest, "name: p-mock\n# mine\n").unwrap();
    let output = run(dir.path(), &["new", "p-mock"]).await;
    assert_failed(&output, "already exists", true);
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap(),
        "name: p-mock\n# mine\n"
    );
    let output = run(dir.path(), &["new", "Not A Name"]).await;
    assert_failed(&output, "Not A Name", false);
    assert!(!dir.path().join("Not A Name").exists());
    let output = run(dir.path(), &["new", "x", "--template", "nope"]).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
}

#[tokio::test]
async fn rename_moves_the_folder_and_its_names_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["new", "shop"]).await.status.success());
    assert!(run(dir.path(), &["new", "taken"]).await.status.success());
    let before = std::fs::read_to_string(dir.path().join("shop/switchyard.yaml")).unwrap();

    let output = run(dir.path(), &["rename", "shop", "taken"]).await;
    assert_failed(&output, "already exists", true);
    let output = run(dir.path(), &["rename", "missing", "other"]).await;
    assert_failed(&output, "not a project folder", true);
    assert!(dir.path().join("shop").is_dir() && !dir.path().join("other").exists());

    let output = run(dir.path(), &["rename", "shop", "store"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!dir.path().join("shop").exists());
    let after = std::fs::read_to_string(dir.path().join("store/switchyard.yaml")).unwrap();
    assert_eq!(after, before.replace("name: shop", "name: store"));
    let env = std::fs::read_to_string(dir.path().join("store/.env")).unwrap();
    assert!(
        env.contains("APP_NAME=store\n") && !env.contains("shop"),
        "{env}"
    );
    let output = run(dir.path(), &["validate", "store"]).await;
    assert!(
        text(&output.stdout).contains("project store"),
        "{}",
        text(&output.stdout)
    );
}

#[tokio::test]
async fn add_router_makes_a_file_mounted_under_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["new", "shop"]).await.status.success());
    let output = run(dir.path(), &["add-router", "shop", "orders"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = run(
        dir.path(),
        &["add-router", "shop", "admin", "--prefix", "/internal/admin"],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let router = std::fs::read_to_string(dir.path().join("shop/routers/admin.yaml")).unwrap();
    assert!(router.contains("prefix: /internal/admin"), "{router}");
    let output = run(dir.path(), &["validate", "shop"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("5 endpoints (2 in 2 routers)"),
        "{}",
        text(&output.stdout)
    );

    let output = run(dir.path(), &["add-router", "shop", "orders"]).await;
    assert_failed(&output, "already exists", true);
    let output = run(dir.path(), &["add-router", "nowhere", "orders"]).await;
    assert_failed(&output, "not a project folder", true);
    assert!(!dir.path().join("nowhere").exists());
    let output = run(dir.path(), &["add-router", "shop", "Bad"]).await;
    assert_failed(&output, "router name", false);
}

#[tokio::test]
async fn validate_names_file_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        assert!(run(dir.path(), &["new", name]).await.status.success());
    }
    std::fs::write(
        dir.path().join("b/switchyard.yaml"),
        "name: b\nendpoints:\n  - method: GET\n    path: /ok\n    response: {json: 1}\n  - method: GET\n    path: x\n    response: {json: 1}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c/routers/orders.yaml"),
        "endpoints:\n  - {method: GET, path: /, respons: {}}\n",
    )
    .unwrap();
    // The directory of folders: every folder checked, every problem one line.
    let output = run(dir.path(), &["validate", "."]).await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(stdout.contains("./a: ok"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("./b/switchyard.yaml:6:5: endpoints[1]"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("./c/routers/orders.yaml:2:5: endpoints[0]: unknown field `respons`"),
        "{stderr}"
    );
    assert_eq!(lines[2], "switchyard: 2 of 3 project folders have problems");
    // One good folder: 0.
    let output = run(dir.path(), &["validate", "a"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    // Nothing to check.
    let empty = tempfile::tempdir().unwrap();
    let output = run(empty.path(), &["validate", "."]).await;
    assert_failed(&output, "holds none", false);
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = run(dir.path(), &["completions", shell]).await;
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(
            script.contains("add-router") && script.contains("validate"),
            "{shell}"
        );
    }
}
