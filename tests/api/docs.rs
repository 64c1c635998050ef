//! The documentation is tested: every error code is in docs/errors.md with its status,
//! every `SWITCHYARD_*` variable is in docs/configuration.md, and the committed `--help`
//! texts are what the binary prints.

use std::process::Command;

use switchyard::error::Code;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_error_code_is_documented_with_its_status_and_nothing_else_is() {
    let page = read("docs/errors.md");
    let mut documented = Vec::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // Table rows: | `code` | status | meaning |
        if let [_, code, status, _meaning, _] = cells.as_slice()
            && let Some(code) = code.strip_prefix('`').and_then(|c| c.strip_suffix('`'))
        {
            documented.push((
                code.to_owned(),
                status.parse::<u16>().expect("a numeric status"),
            ));
        }
    }
    let actual: Vec<(String, u16)> = Code::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status().as_u16()))
        .collect();
    assert_eq!(
        documented, actual,
        "docs/errors.md lists exactly Code::ALL, in order"
    );
}

#[test]
fn every_environment_variable_is_documented() {
    let cli = read("src/cli.rs");
    let page = read("docs/configuration.md");
    let mut count = 0;
    for (at, _) in cli.match_indices("env = \"SWITCHYARD_") {
        let rest = &cli[at + "env = \"".len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(
            page.contains(&format!("`{name}`")),
            "{name} is missing from docs/configuration.md"
        );
        count += 1;
    }
    assert!(count >= 10, "found the variables ({count})");
}

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_clear()
        .output()
        .expect("run the binary");
    assert!(output.status.success());
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn the_committed_help_texts_match_the_binary() {
    for (args, file) in [
        (&["--help"][..], "docs/cli/switchyard-help.txt"),
        (&["serve", "--help"][..], "docs/cli/serve-help.txt"),
        (&["gateway", "--help"][..], "docs/cli/gateway-help.txt"),
        (&["dataset", "--help"][..], "docs/cli/dataset-help.txt"),
        (
            &["dataset", "import", "--help"][..],
            "docs/cli/dataset-import-help.txt",
        ),
        (&["new", "--help"][..], "docs/cli/new-help.txt"),
        (&["rename", "--help"][..], "docs/cli/rename-help.txt"),
        (
            &["add-router", "--help"][..],
            "docs/cli/add-router-help.txt",
        ),
        (&["validate", "--help"][..], "docs/cli/validate-help.txt"),
        (&["run", "--help"][..], "docs/cli/run-help.txt"),
        (&["push", "--help"][..], "docs/cli/push-help.txt"),
        (&["pull", "--help"][..], "docs/cli/pull-help.txt"),
        (&["login", "--help"][..], "docs/cli/login-help.txt"),
        (
            &["completions", "--help"][..],
            "docs/cli/completions-help.txt",
        ),
        (&["schema", "--help"][..], "docs/cli/schema-help.txt"),
        (
            &["schema", "manifest"][..],
            "docs/schema/switchyard.schema.json",
        ),
        (&["schema", "router"][..], "docs/schema/router.schema.json"),
    ] {
        let printed = help(args);
        let committed = read(file);
        assert_eq!(
            printed,
            committed,
            "{file} is stale; regenerate it with `switchyard {}> {file}`",
            args.join(" ") + " "
        );
    }
}
