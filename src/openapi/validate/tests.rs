//! Request checks compiled from endpoint definitions, run on heads and bodies.

use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

fn checks(endpoint: Value, docs: Option<Value>) -> Checks {
    let mut endpoint = endpoint;
    endpoint["method"] = json!("POST");
    endpoint["path"] = json!("/items/{id}");
    endpoint["response"] = json!({});
    let spec: EndpointSpec = serde_json::from_value(endpoint).unwrap();
    let docs = docs.map(|d| serde_json::from_value::<ProjectDocs>(d).unwrap());
    Checks::compile(&spec, docs.as_ref())
        .expect("the schemas compile")
        .expect("there is something to check")
}

fn at(failures: &[Failure]) -> Vec<&str> {
    failures.iter().map(|f| f.at.as_str()).collect()
}

fn pet_checks() -> Checks {
    checks(
        json!({
            "parameters": [
                {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}},
                {"name": "sort", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^(?=.*[a-z])[a-z_]+$"}},
                {"name": "X-Key", "in": "header", "required": true, "schema": {"type": "string", "format": "uuid"}},
                {"name": "Authorization", "in": "header", "required": true}
            ],
            "request_body": {"required": true, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["age"],
                    "properties": {"age": {"type": "integer"}}}}
            }}
        }),
        Some(json!({"components": {"schemas": {"Pet": {
            "type": "object", "required": ["id", "name"], "additionalProperties": false,
            "properties": {
                "id": {"type": "integer", "readOnly": true},
                "name": {"type": "string", "minLength": 1},
                "email": {"type": "string", "format": "email"},
                "kind": {"enum": ["cat", "dog"]},
                "owner": {"$ref": "#/components/schemas/Owner"}
            }},
            "Owner": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
        }}})),
    )
}

fn good_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-key",
        HeaderValue::from_static("6f1c2a9e-0b1d-4c3e-9f5a-2b7d8e9f0a1b"),
    );
    headers.insert("authorization", HeaderValue::from_static("Bearer x"));
    headers
}

#[test]
fn a_valid_head_passes() {
    let checks = pet_checks();
    let failures = checks.head(
        &[("id", "7")],
        Some("limit=10&sort=name&tags=a&tags=b"),
        &good_headers(),
    );
    assert!(failures.is_empty(), "{failures:?}");
    // A list may also come comma-separated.
    assert!(
        checks
            .head(&[("id", "7")], Some("sort=name&tags=a,b"), &good_headers())
            .is_empty()
    );
}

#[test]
fn each_bad_place_of_the_head_is_named() {
    let checks = pet_checks();
    let failures = checks.head(
        &[("id", "zero")],
        Some("limit=1000&tags=c"),
        &HeaderMap::new(),
    );
    assert_eq!(
        at(&failures),
        [
            "path.id",
            "query.limit",
            "query.tags/0",
            "query.sort",
            "header.x-key",
            "header.authorization"
        ]
    );
    assert!(failures[0].message.contains("integer"), "{failures:?}");
    assert!(failures[3].message.contains("required"), "{failures:?}");
    // Bad pattern (lookahead), bad format, bad range.
    let mut headers = good_headers();
    headers.insert("x-key", HeaderValue::from_static("not-a-uuid"));
    let failures = checks.head(&[("id", "0")], Some("sort=___"), &headers);
    assert_eq!(at(&failures), ["path.id", "query.sort", "header.x-key"]);
}

#[test]
fn bodies_are_checked_with_their_pointers() {
    let checks = pet_checks();
    let json_body = |text: &str| {
        checks.body(&RequestBodyView {
            content_type: Some("application/json"),
            bytes: text.as_bytes(),
        })
    };
    // `id` is readOnly: not required in a request.
    assert!(json_body(r#"{"name": "Rex", "owner": {"name": "Al"}}"#).is_empty());
    assert_eq!(at(&json_body(r#"{"name": ""}"#)), ["body/name"]);
    assert_eq!(at(&json_body(r#"{"name": 5}"#)), ["body/name"]);
    assert_eq!(at(&json_body(r#"{"name": "Rex", "extra": 1}"#)), ["body"]);
    assert_eq!(
        at(&json_body(r#"{"name": "Rex", "kind": "cow"}"#)),
        ["body/kind"]
    );
    assert_eq!(
        at(&json_body(r#"{"name": "Rex", "email": "nope"}"#)),
        ["body/email"]
    );
    assert_eq!(
        at(&json_body(r#"{"name": "Rex", "owner": {}}"#)),
        ["body/owner"]
    );
    assert_eq!(at(&json_body(r#"{"name": "#)), ["body"]);
    assert_eq!(at(&json_body("")), ["body"]);
    let form = |text: &str| {
        checks.body(&RequestBodyView {
            content_type: Some("application/x-www-form-urlencoded"),
            bytes: text.as_bytes(),
        })
    };
    assert!(form("age=3").is_empty());
    assert_eq!(at(&form("age=old")), ["body/age"]);
    assert_eq!(at(&form("name=x")), ["body"]);
    // Other media types are taken as they are.
    let other = checks.body(&RequestBodyView {
        content_type: Some("application/octet-stream"),
        bytes: b"\x00\x01",
    });
    assert!(other.is_empty());
}

#[test]
fn nothing_to_check_compiles_to_none_and_bad_schemas_are_errors() {
    let none: EndpointSpec =
        serde_json::from_value(json!({"method": "GET", "path": "/", "response": {}})).unwrap();
    assert!(Checks::compile(&none, None).unwrap().is_none());
    let off: EndpointSpec = serde_json::from_value(json!({"method": "GET", "path": "/",
        "response": {}, "validate": {"request": false},
        "parameters": [{"name": "q", "in": "query", "required": true}]}))
    .unwrap();
    assert!(Checks::compile(&off, None).unwrap().is_none());
    // A reference to nothing cannot be checked: the schema does not compile.
    let bad: EndpointSpec = serde_json::from_value(json!({"method": "GET", "path": "/",
        "response": {}, "parameters": [{"name": "q", "in": "query",
                                        "schema": {"$ref": "#/components/schemas/Nope"}}]}))
    .unwrap();
    match Checks::compile(&bad, None) {
        Err(error) => assert_eq!(error.at, "parameters[0].schema"),
        Ok(checks) => {
            // Or the reference is dropped as unenforceable; then nothing is refused for it.
            let checks = checks.expect("the parameter is still checked for presence or type");
            assert!(checks.head(&[], Some("q=1"), &HeaderMap::new()).is_empty());
        }
    }
}

fn answer_checks(responses: Value, docs: Option<Value>) -> Checks {
    checks(
        json!({"validate": {"request": false, "response": true}, "responses": responses}),
        docs,
    )
}

fn answer_of(checks: &Checks, status: u16, content_type: Option<&str>, body: &str) -> Vec<String> {
    let mut headers = HeaderMap::new();
    if let Some(media) = content_type {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(media).unwrap(),
        );
    }
    checks
        .answer(&AnswerView {
            status,
            headers: &headers,
            body: Some(body.as_bytes()),
        })
        .into_iter()
        .map(|f| f.at)
        .collect()
}

#[test]
fn an_answer_is_checked_against_its_exact_status_then_its_range_then_default() {
    let checks = answer_checks(
        json!({
            "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "integer"}}}},
            "4XX": {"description": "mistakes", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "default": {"description": "else", "content": {"text/*": {}}}
        }),
        Some(
            json!({"components": {"schemas": {"Error": {"type": "object", "required": ["error"]}}}}),
        ),
    );
    assert!(checks.checks_responses() && !checks.checks_request());
    assert!(answer_of(&checks, 200, Some("application/json"), "5").is_empty());
    assert_eq!(
        answer_of(&checks, 200, Some("application/json"), "\"five\""),
        ["response.body"]
    );
    assert!(answer_of(&checks, 404, Some("application/json"), r#"{"error": 1}"#).is_empty());
    assert_eq!(
        answer_of(&checks, 404, Some("application/json"), "{}"),
        ["response.body"]
    );
    // `default` covers the rest; `text/*` any text, with no schema to check.
    assert!(answer_of(&checks, 500, Some("text/plain; charset=utf-8"), "oops").is_empty());
    assert_eq!(
        answer_of(&checks, 500, Some("application/json"), "{}"),
        ["response.header.content-type"]
    );
    assert_eq!(
        answer_of(&checks, 200, Some("application/json"), "{"),
        ["response.body"]
    );
    // No body where one is documented; none where none is.
    assert_eq!(
        answer_of(&checks, 200, Some("application/json"), ""),
        ["response.body"]
    );
    let bare = answer_checks(json!({"204": {"description": "done"}}), None);
    assert!(answer_of(&bare, 204, None, "").is_empty());
    assert_eq!(answer_of(&bare, 204, None, "x"), ["response.body"]);
    assert_eq!(answer_of(&bare, 200, None, ""), ["response.status"]);
    // The answer to a HEAD request: its status and headers only.
    let head = bare.answer(&AnswerView {
        status: 204,
        headers: &HeaderMap::new(),
        body: None,
    });
    assert!(head.is_empty());
}

#[test]
fn write_only_properties_are_not_required_in_answers() {
    let checks = answer_checks(
        json!({"200": {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "required": ["id", "password"],
            "properties": {"id": {"type": "integer", "readOnly": true},
                           "password": {"type": "string", "writeOnly": true}}}}}}}),
        None,
    );
    assert!(answer_of(&checks, 200, Some("application/json"), r#"{"id": 1}"#).is_empty());
    assert_eq!(
        answer_of(&checks, 200, Some("application/json"), "{}"),
        ["response.body"]
    );
}

#[test]
fn lint_names_each_malformed_keyword_and_passes_good_schemas() {
    let spec = |endpoint: Value| -> EndpointSpec {
        let mut endpoint = endpoint;
        endpoint["method"] = json!("GET");
        endpoint["path"] = json!("/x");
        endpoint["response"] = json!({});
        serde_json::from_value(endpoint).unwrap()
    };
    let good = spec(json!({"parameters": [{"in": "query", "name": "q",
        "schema": {"type": "string", "nullable": true, "pattern": "^(?=a)a+$"}}]}));
    assert!(lint(&good, None).is_ok());
    let bad = spec(json!({"responses": {"200": {"description": "x",
        "headers": {"X-Rate": {"schema": {"type": "integer", "maximum": "ten"}}}}}}));
    let error = lint(&bad, None).unwrap_err();
    assert_eq!(error.at, "responses.200.headers.X-Rate.schema.maximum");
    assert!(error.message.contains("must be a number"), "{error}");
}
