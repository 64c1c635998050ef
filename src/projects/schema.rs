//! JSON Schemas of the folder's files, for editors to complete and check them: the
//! manifest (`switchyard.yaml`) and a router (`routers/*.yaml`). Made from the platform
//! API's own OpenAPI document (`platform::openapi`, generated from the code), so that an
//! endpoint, a backend or a policy is described once, where it is read.

use serde_json::{Map, Value, json};

/// The manifest's settings, as the admin API's whole project definition names them.
const SETTINGS: &[&str] = &[
    "name",
    "description",
    "mode",
    "auth",
    "cors",
    "rate_limit",
    "openapi",
    "journal_size",
    "endpoints",
    "backends",
];

/// The schema of `switchyard.yaml`.
pub fn manifest() -> Value {
    let (definitions, project) = platform();
    let mut properties = Map::new();
    for key in SETTINGS {
        if let Some(property) = project.get(*key) {
            properties.insert((*key).to_owned(), property.clone());
        }
    }
    properties.insert("name".into(), json!({
        "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
        "description": "The project's name; `APP_NAME` in .env takes precedence, and the folder's name stands in for both."
    }));
    properties.insert("datasets".into(), json!({
        "type": "array",
        "description": "Dataset files of the folder, uploaded as the project's datasets.",
        "items": {
            "type": "object", "additionalProperties": false, "required": ["name", "file"],
            "properties": {
                "name": {"type": "string", "description": "The dataset's name."},
                "file": {"type": "string", "description": "A path inside the folder, such as data/iris.csv."},
                "format": {"enum": ["csv", "json", "jsonl", "ndjson"], "description": "When the file's extension does not say."},
                "types": {"type": "string", "description": "Declared column types: `zip:text,age:integer`."},
                "endpoints": {"enum": ["default", "none"], "description": "`default`: the standard query, stats and schema endpoints."},
                "category": {"type": "string", "description": "The category column of the standard endpoints."},
                "prefix": {"type": "string", "description": "The path the standard endpoints are made under."}
            }
        }
    }));
    document(
        "Switchyard project manifest (switchyard.yaml)",
        properties,
        definitions,
    )
}

/// The schema of a router file.
pub fn router() -> Value {
    let (definitions, project) = platform();
    let mut properties = Map::new();
    properties.insert(
        "prefix".into(),
        json!({
            "type": "string", "pattern": "^/[^{}?#]*$",
            "description": "The path its endpoints are served under (default: /NAME)."
        }),
    );
    properties.insert(
        "description".into(),
        json!({"type": "string", "description": "For people reading the file."}),
    );
    if let Some(endpoints) = project.get("endpoints") {
        properties.insert("endpoints".into(), endpoints.clone());
    }
    document(
        "Switchyard router (routers/NAME.yaml)",
        properties,
        definitions,
    )
}

fn document(title: &str, properties: Map<String, Value>, definitions: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": "See docs/projects.md.",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "$defs": definitions,
    })
}

/// The platform document's schemas (their references made `#/$defs/…`) and the project
/// definition's properties.
fn platform() -> (Value, Map<String, Value>) {
    let text = crate::platform::openapi::document().replace("#/components/schemas/", "#/$defs/");
    let mut document: Value = serde_json::from_str(&text).unwrap_or_default();
    let schemas = document
        .pointer_mut("/components/schemas")
        .map(Value::take)
        .unwrap_or_else(|| json!({}));
    let project = schemas
        .pointer("/ProjectDefinition/properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    (schemas, project)
}
