//! Folders read and written in temporary directories.

use std::path::Path;

use super::scaffold::{self, Template};
use super::*;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn errors(dir: &Path) -> Vec<String> {
    match read(dir) {
        Ok(folder) => panic!("{} read: {folder:?}", dir.display()),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn every_template_makes_a_folder_that_reads() {
    let parent = tempfile::tempdir().unwrap();
    for template in Template::ALL {
        let name = format!("t-{}", template.name());
        let dir = scaffold::new_project(parent.path(), &name, template).unwrap();
        let folder = read(&dir).unwrap_or_else(|e| panic!("{}: {e:?}", template.name()));
        assert_eq!(folder.name, name);
        assert_eq!(folder.env.get("APP_NAME"), Some(&name));
        assert_eq!(
            folder.definition.mode,
            Some(crate::model::Mode::Development)
        );
        match template {
            Template::Mock => assert_eq!(folder.definition.endpoints.len(), 3),
            Template::Script => assert!(folder.script.is_some()),
            Template::Gateway => assert_eq!(folder.definition.backends.len(), 1),
            Template::Dataset => assert_eq!(folder.datasets[0].file, Path::new("data/iris.csv")),
        }
        // Never overwritten.
        assert!(matches!(
            scaffold::new_project(parent.path(), &name, template),
            Err(scaffold::ScaffoldError::Exists(_))
        ));
    }
}

#[test]
fn routers_add_endpoints_under_their_prefix_with_derived_ids() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold::new_project(parent.path(), "shop", Template::Mock).unwrap();
    scaffold::add_router(&dir, "orders", None).unwrap();
    scaffold::add_router(&dir, "admin", Some("/internal/admin")).unwrap();
    assert!(matches!(
        scaffold::add_router(&dir, "orders", None),
        Err(scaffold::ScaffoldError::Exists(_))
    ));
    assert!(matches!(
        scaffold::add_router(&parent.path().join("nope"), "x", None),
        Err(scaffold::ScaffoldError::NotAProject(_))
    ));
    write(
        &dir,
        "routers/orders.yaml",
        "prefix: /orders\nendpoints:\n  - {method: GET, path: /, response: {json: []}}\n  - {method: GET, path: '/{id}', response: {json: {}}}\n",
    );
    let folder = read(&dir).unwrap();
    let paths: Vec<(&str, &str)> = folder
        .definition
        .endpoints
        .iter()
        .map(|e| (e.id.as_deref().unwrap(), &*e.path))
        .collect();
    assert_eq!(
        paths,
        [
            ("GET-hello", "/hello"),
            ("GET-items-id", "/items/{id}"),
            ("POST-items", "/items"),
            ("GET-internal-admin", "/internal/admin"),
            ("GET-orders", "/orders"),
            ("GET-orders-id", "/orders/{id}"),
        ]
    );
    assert_eq!(folder.origins[4].file, Path::new("routers/orders.yaml"));
    assert_eq!(folder.origins[4].line, 3);
    assert_eq!(folder.routers.len(), 2);
    // The same folder reads the same way: ids do not change between reads.
    let again = read(&dir).unwrap();
    assert_eq!(again.definition.endpoints, folder.definition.endpoints);
}

#[test]
fn errors_name_the_file_line_and_column() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold::new_project(parent.path(), "shop", Template::Mock).unwrap();
    // A syntax error.
    write(
        &dir,
        "switchyard.yaml",
        "name: shop\nendpoints:\n  - method: GET\n    path: [\n",
    );
    let found = errors(&dir);
    assert!(found[0].starts_with("switchyard.yaml:"), "{found:?}");
    // An endpoint that is not one: the line where it starts, and the field.
    write(
        &dir,
        "switchyard.yaml",
        "name: shop\nendpoints:\n  - {method: GET, path: /a, response: {json: 1}}\n  - method: GET\n    path: no-slash\n    response: {json: 1}\n",
    );
    let found = errors(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("switchyard.yaml:4:5: endpoints[1].path"),
        "{found:?}"
    );
    // An unknown setting.
    write(&dir, "switchyard.yaml", "name: shop\ncolour: red\n");
    let found = errors(&dir);
    assert!(found[0].contains("colour"), "{found:?}");
    assert!(found[0].starts_with("switchyard.yaml:2:"), "{found:?}");
    // A router's endpoint, a duplicate id, a dataset file that is not there.
    write(
        &dir,
        "switchyard.yaml",
        "name: shop\nendpoints:\n  - {id: a, method: GET, path: /a, response: {json: 1}}\ndatasets:\n  - {name: iris, file: data/none.csv}\n",
    );
    write(
        &dir,
        "routers/x.yaml",
        "endpoints:\n  - {id: a, method: GET, path: /b, response: {json: 1}}\n  - {method: GET, path: /c, respons: {}}\n",
    );
    let found = errors(&dir);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("switchyard.yaml:5:5: datasets[0].file"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("routers/x.yaml:2:5: endpoints[0].id"),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("routers/x.yaml:3:5: endpoints[1]: unknown field `respons`"),
        "{found:?}"
    );
    // `.env`.
    write(&dir, "switchyard.yaml", "name: shop\n");
    write(&dir, ".env", "APP_NAME=shop\nthis is not a value\n");
    let found = errors(&dir);
    assert!(found[0].starts_with(".env:2:"), "{found:?}");
    assert!(read(&parent.path().join("none")).is_err());
}

#[test]
fn env_names_and_moves_the_project() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold::new_project(parent.path(), "old", Template::Mock).unwrap();
    write(
        &dir,
        ".env",
        "# mine\nAPP_NAME=old\nMODE=production\nGREETING=\"hi there\"\n",
    );
    let folder = read(&dir).unwrap();
    assert_eq!(folder.name, "old");
    assert_eq!(folder.definition.mode, Some(crate::model::Mode::Production));
    assert_eq!(folder.env["GREETING"], "hi there");
    let moved = scaffold::rename(&dir, "new").unwrap();
    assert!(!dir.exists());
    let folder = read(&moved).unwrap();
    assert_eq!(folder.name, "new");
    let env = std::fs::read_to_string(moved.join(".env")).unwrap();
    assert_eq!(
        env,
        "# mine\nAPP_NAME=new\nMODE=production\nGREETING=\"hi there\"\n"
    );
    let manifest = std::fs::read_to_string(moved.join("switchyard.yaml")).unwrap();
    assert!(manifest.contains("\nname: new\n"), "{manifest}");
    assert!(
        manifest.contains("description: Mock endpoints"),
        "{manifest}"
    );
    // A missing folder, an existing target, a bad name: errors, nothing changed.
    assert!(matches!(
        scaffold::rename(&dir, "other"),
        Err(scaffold::ScaffoldError::NotAProject(_))
    ));
    scaffold::new_project(parent.path(), "taken", Template::Mock).unwrap();
    assert!(matches!(
        scaffold::rename(&moved, "taken"),
        Err(scaffold::ScaffoldError::Exists(_))
    ));
    assert!(matches!(
        scaffold::rename(&moved, "Bad Name"),
        Err(scaffold::ScaffoldError::BadName(_))
    ));
    assert!(moved.join("switchyard.yaml").is_file());
}

/// A YAML file of the folder as JSON, checked against `schema`: the errors' places.
fn schema_errors(schema: &serde_json::Value, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let options = serde_saphyr::options! { strict_booleans: true };
    let value: serde_json::Value = serde_saphyr::from_str_with_options(&text, options).unwrap();
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_schemas_accept_every_template_and_refuse_mistakes() {
    let manifest = schema::manifest();
    let router = schema::router();
    assert!(jsonschema::meta::is_valid(&manifest));
    let parent = tempfile::tempdir().unwrap();
    for template in Template::ALL {
        let dir = scaffold::new_project(parent.path(), template.name(), template).unwrap();
        let found = schema_errors(&manifest, &dir.join(MANIFEST));
        assert!(found.is_empty(), "{}: {found:?}", template.name());
    }
    let dir = parent.path().join("mock");
    let file = scaffold::add_router(&dir, "orders", None).unwrap();
    assert!(schema_errors(&router, &file).is_empty());
    write(
        &dir,
        MANIFEST,
        "name: x\ncolour: red\nendpoints:\n  - {method: GET, path: /a, respons: {}}\nmode: testing\n",
    );
    let found = schema_errors(&manifest, &dir.join(MANIFEST));
    assert!(found.iter().any(|e| e.contains("colour")), "{found:?}");
    assert!(
        found.iter().any(|e| e.starts_with("/endpoints/0")),
        "{found:?}"
    );
    assert!(found.iter().any(|e| e.starts_with("/mode")), "{found:?}");
}
