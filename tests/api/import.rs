//! OpenAPI import against the real server: the corpus of real documents nobody on the team
//! wrote (tests/openapi/corpus.toml: the Petstore and 50-odd documents of the APIs.guru
//! collection, GitHub's among them; fetched by scripts/openapi-corpus.sh, which
//! scripts/test runs), then every imported operation called with a request made from its
//! own schemas — it must answer its documented status, the same way twice; plus the options
//! (replace or merge, preferred status, base path, validation off), dry runs, and the
//! documents refused whole.

use std::path::{Path, PathBuf};
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard::openapi::schema::{self, Direction, Version};

use crate::helpers::{TestApp, User, assert_error, json_body, spawn_app};

/// Where scripts/openapi-corpus.sh put the documents.
fn corpus() -> PathBuf {
    let dir = std::env::var("SWITCHYARD_OPENAPI_CORPUS").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openapi-corpus"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "the OpenAPI corpus is not at {}: run `scripts/openapi-corpus.sh {}` (scripts/test does), \
         or set SWITCHYARD_OPENAPI_CORPUS",
        dir.display(),
        dir.display()
    );
    dir
}

fn documents(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read the corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            documents(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        {
            out.push(path);
        }
    }
}

/// Operations the document has: every method of every path item (path items that are a
/// `$ref` followed).
fn operation_count(doc: &Value) -> usize {
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return 0;
    };
    paths
        .values()
        .map(|item| {
            let item = match item.get("$ref").and_then(Value::as_str) {
                Some(reference) => schema::resolve(doc, reference).unwrap_or(item),
                None => item,
            };
            methods.iter().filter(|m| item.get(**m).is_some()).count()
        })
        .sum()
}

async fn import(
    app: &TestApp,
    user: &User,
    project: &str,
    query: &str,
    body: Vec<u8>,
    yaml: bool,
) -> reqwest::Response {
    let content_type = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    app.send(
        Method::POST,
        &format!("/admin/projects/alice/{project}/import{query}"),
        Some(&user.token),
        &[("content-type", content_type)],
        Some(body),
    )
    .await
}

/// A request: method, URL, headers, and a body with its media type.
type Call = (
    Method,
    String,
    Vec<(String, String)>,
    Option<(String, Vec<u8>)>,
);

/// `value` without the authors' examples on schemas: a request is made from the schemas
/// alone (an author's example may not match its own schema, and the endpoint checks
/// requests against the schema).
fn strip_examples(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let schema = match object.get("type") {
                Some(Value::String(_)) => true,
                Some(Value::Array(types)) => types.iter().all(Value::is_string),
                _ => false,
            };
            if schema {
                object.remove("example");
                if object.get("examples").is_some_and(Value::is_array) {
                    object.remove("examples");
                }
                if object.get("default").is_some() {
                    object.remove("default");
                }
            }
            object.values_mut().for_each(strip_examples);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_examples),
        _ => {}
    }
}

/// A value of `schema`, noting in `doubtful` when the sample may not be valid (a schema no
/// value can satisfy: a `pattern` that contradicts its `format`).
fn sample(schema: &Value, root: &Value, doubtful: &mut bool) -> Value {
    let sample = schema::sample(schema, root, Version::V3_1, Direction::Request);
    *doubtful |= !sample.notes.is_empty();
    sample.value
}

/// A value of `schema` as text for a path, query or header.
fn text_of(schema: Option<&Value>, root: &Value, doubtful: &mut bool) -> String {
    let value = schema.map_or(json!("x"), |s| sample(s, root, doubtful));
    // A path segment cannot be empty: another value of an enum, else `x`.
    let other = || {
        schema
            .and_then(|s| s.get("enum"))
            .and_then(Value::as_array)
            .and_then(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|v| !v.is_empty())
            })
            .map_or_else(|| "x".to_owned(), str::to_owned)
    };
    match value {
        Value::String(text) if !text.is_empty() => text,
        Value::String(_) | Value::Null => other(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The request an imported operation is called with: its path filled, its required query
/// parameters, headers and body made from their schemas, and its rule's condition.
fn request_for(
    endpoint: &Value,
    when: Option<&Value>,
    root: &Value,
    mount: &str,
    doubtful: &mut bool,
) -> Call {
    let parameters = endpoint["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |place: &str, name: &str| {
        parameters
            .iter()
            .find(|p| p["in"] == place && p["name"] == name)
            .and_then(|p| p.get("schema"))
    };
    let template = endpoint["path"].as_str().unwrap();
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        let name = rest[open + 1..close].trim_start_matches('*');
        path.push_str(&encode(&text_of(find("path", name), root, doubtful)));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    let mut query: Vec<String> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for parameter in &parameters {
        if parameter["required"] != true || parameter["in"] == "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let value = text_of(parameter.get("schema"), root, doubtful);
        match parameter["in"].as_str() {
            Some("query") => query.push(format!("{}={}", encode(name), encode(&value))),
            Some("header") if http::HeaderValue::from_str(&value).is_ok() => {
                headers.push((name.to_owned(), value))
            }
            Some("header") => headers.push((name.to_owned(), "x".into())),
            _ => {}
        }
    }
    if let Some(when) = when {
        for (name, value) in when["query"].as_object().into_iter().flatten() {
            let value = value.as_str().or(value["equals"].as_str()).unwrap();
            query.retain(|q| !q.starts_with(&format!("{}=", encode(name))));
            query.push(format!("{}={}", encode(name), encode(value)));
        }
        for (name, value) in when["headers"].as_object().into_iter().flatten() {
            let value = value.as_str().or(value["equals"].as_str()).unwrap();
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.to_owned()));
        }
    }
    let mut body_doubt = false;
    let body = endpoint
        .get("request_body")
        .filter(|b| b["required"] == true)
        .map(|body| {
            let doubtful = &mut body_doubt;
            let content = body["content"].as_object().cloned().unwrap_or_default();
            let json = content.iter().find(|(m, _)| m.contains("json"));
            let form = content
                .iter()
                .find(|(m, _)| m.starts_with("application/x-www-form-urlencoded"));
            if let Some((media, object)) = json {
                let value = object
                    .get("schema")
                    .map_or(json!({}), |s| sample(s, root, doubtful));
                (media.clone(), serde_json::to_vec(&value).unwrap())
            } else if let Some((media, object)) = form {
                let value = object
                    .get("schema")
                    .map_or(json!({}), |s| sample(s, root, doubtful));
                let mut form = form_urlencoded::Serializer::new(String::new());
                if !value.is_object() {
                    form.append_pair("x", "1");
                }
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                for (k, v) in value.as_object().into_iter().flatten() {
                    match v {
                        // A list is its field repeated.
                        Value::Array(items) => items.iter().for_each(|i| {
                            form.append_pair(k, &text(i));
                        }),
                        other => {
                            form.append_pair(k, &text(other));
                        }
                    }
                }
                (media.clone(), form.finish().into_bytes())
            } else {
                let media = content
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or("application/octet-stream".into());
                (media, b"x".to_vec())
            }
        });
    *doubtful |= body_doubt;
    let method = Method::from_bytes(endpoint["method"].as_str().unwrap().as_bytes()).unwrap();
    let mut url = format!("{mount}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    (method, url, headers, body)
}

async fn call(app: &TestApp, request: &Call) -> (StatusCode, Vec<u8>) {
    let (method, url, headers, body) = request;
    let mut headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Some((media, _)) = body {
        headers.push(("content-type", media.as_str()));
    }
    let response = app
        .send(
            method.clone(),
            url,
            None,
            &headers,
            body.as_ref().map(|(_, b)| b.clone()),
        )
        .await;
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_document_of_the_corpus_imports_and_every_operation_answers() {
    let mut paths = Vec::new();
    documents(&corpus(), &mut paths);
    assert!(
        paths.len() >= 26,
        "the corpus has {} documents",
        paths.len()
    );
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut largest = (0usize, String::new(), 0u128);
    let mut swagger = 0;
    let mut calls = 0;
    let mut unsatisfiable = 0;
    let mut generated_flagged: Vec<String> = Vec::new();
    let mut examples_flagged = 0;
    // Kept when the test fails, to look at; removed when it passes.
    let documents_dir =
        std::env::temp_dir().join(format!("switchyard-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&documents_dir).unwrap();
    let mut written: Vec<(String, String)> = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).unwrap();
        let yaml = !name.ends_with(".json");
        let doc = switchyard::openapi::import::parse(&bytes).expect("the corpus parses");
        let project = format!("doc{n}");
        let started = Instant::now();
        let response = import(
            &app,
            &alice,
            &project,
            "?validate_responses=true",
            bytes.clone(),
            yaml,
        )
        .await;
        let took = started.elapsed().as_millis();
        if doc.get("swagger").is_some() {
            let body = assert_error(
                response,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_document",
            )
            .await;
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Swagger 2.0"),
                "{name}: {body}"
            );
            swagger += 1;
            continue;
        }
        let status = response.status();
        let report = json_body(response).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {report:#}");
        if bytes.len() > largest.0 {
            largest = (bytes.len(), name.clone(), took);
        }
        // Every operation is accounted for.
        let operations = report["operations"].as_array().unwrap();
        assert_eq!(
            operations.len(),
            operation_count(&doc),
            "{name}: {report:#}"
        );
        let imported: Vec<&Value> = operations
            .iter()
            .filter(|o| o["status"] == "imported")
            .collect();
        for skipped in operations.iter().filter(|o| o["status"] == "skipped") {
            assert!(
                skipped["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{name}: {skipped}"
            );
        }
        // Two operations on one route that only the names of its parameters tell apart
        // cannot both answer: the first does, the other is skipped saying so.
        let same_route = operations
            .iter()
            .filter(|o| {
                o["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("same route"))
            })
            .count();
        assert!(
            (imported.len() + same_route) * 10 >= operations.len() * 9,
            "{name}: only {} of {} operations imported: {:#}",
            imported.len(),
            operations.len(),
            Value::Array(
                operations
                    .iter()
                    .filter(|o| o["status"] == "skipped")
                    .cloned()
                    .collect()
            )
        );
        // A journal that keeps every call, for the answers response validation flags.
        let response = app
            .call(
                Method::PATCH,
                &format!("/admin/projects/alice/{project}"),
                Some(&alice.token),
                Some(&json!({"journal_size": 100_000})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        // Each imported operation answers its status, the same way twice.
        let endpoints = json_body(
            app.call(
                Method::GET,
                &format!("/admin/projects/alice/{project}/endpoints"),
                Some(&alice.token),
                None,
            )
            .await,
        )
        .await;
        let mut settings =
            app.read_project(&alice, &format!("alice/{project}")).await["openapi"].clone();
        strip_examples(&mut settings);
        let mut endpoints = endpoints["endpoints"].clone();
        strip_examples(&mut endpoints);
        let endpoints = endpoints.as_array().unwrap();
        for operation in &imported {
            let id = operation["endpoint"].as_str().unwrap();
            let endpoint = endpoints.iter().find(|e| e["id"] == id).unwrap();
            let mut doubtful = false;
            let request = request_for(
                endpoint,
                operation.get("when"),
                &settings,
                &format!("/alice/{project}"),
                &mut doubtful,
            );
            let (status, body) = call(&app, &request).await;
            if doubtful && status == StatusCode::UNPROCESSABLE_ENTITY {
                // The schema cannot be met (the sample says so), and the check says so too.
                unsatisfiable += 1;
                continue;
            }
            assert_eq!(
                status.as_u16(),
                operation["answers"].as_u64().unwrap() as u16,
                "{name}: {} {} answered {}: {}",
                request.0,
                request.1,
                status,
                String::from_utf8_lossy(&body)
            );
            assert_eq!(
                call(&app, &request).await,
                (status, body),
                "{name}: {} {} twice",
                request.0,
                request.1
            );
            calls += 1;
        }
        // A body generated from its schema is valid against it: response validation (on
        // for these endpoints; the project is in development mode) flags none of them. An
        // author's example may not match its own schema; it is served as written, flagged.
        let flagged = json_body(
            app.call(
                Method::GET,
                &format!(
                    "/admin/projects/alice/{project}/journal?response_invalid=true&limit=100000"
                ),
                Some(&alice.token),
                None,
            )
            .await,
        )
        .await;
        for entry in flagged["entries"].as_array().unwrap() {
            let endpoint = entry["endpoint"].as_str().unwrap_or_default();
            let answered_by: Vec<&&Value> = imported
                .iter()
                .filter(|o| o["endpoint"] == endpoint)
                .collect();
            // An endpoint serving several operations (rules) is checked against its first
            // operation's responses: only one of its own is held to them.
            if answered_by.len() == 1 && answered_by[0]["body"] == "generated" {
                generated_flagged.push(format!("{name}: {entry}"));
            } else {
                examples_flagged += 1;
            }
        }
        // The project's document, for the validator (all of them in one run, below).
        let document = json_body(app.get(&format!("/alice/{project}/openapi.json")).await).await;
        let file = documents_dir.join(format!("{project}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
        written.push((file.display().to_string(), name.clone()));
    }
    // Every project's document is valid OpenAPI: one run of the validator over all of them
    // (its command stops at the first invalid file; this goes on), `FILE: OK` or
    // `FILE: ` and the error, per file.
    const EACH: &str = "import json, sys\n\
        from openapi_spec_validator import validate\n\
        for f in sys.argv[1:]:\n\
        \x20   try:\n\
        \x20       validate(json.load(open(f)))\n\
        \x20       print(f + ': OK')\n\
        \x20   except Exception as e:\n\
        \x20       print(f + ': ' + str(e))\n";
    let files: Vec<&str> = written.iter().map(|(file, _)| file.as_str()).collect();
    let mut args = vec!["-c", EACH];
    args.extend(&files);
    let (_, output) = crate::platform_openapi::run_python(&args).await;
    for (file, name) in &written {
        let start = output
            .find(&format!("{file}: "))
            .unwrap_or_else(|| panic!("{name}: the validator says nothing of {file}:\n{output}"));
        let rest = &output[start + file.len() + 2..];
        let end = written
            .iter()
            .filter_map(|(other, _)| rest.find(&format!("{other}: ")))
            .min()
            .unwrap_or(rest.len());
        let said = &rest[..end];
        // The validator checks `format: regex` with Python's `re`, which lacks ECMA-262's
        // `\p{…}` classes: such a pattern is valid OpenAPI all the same.
        let python_regex = said.contains("is not a 'regex'") && said.contains("\\p{");
        assert!(
            said.trim_end() == "OK" || python_regex,
            "{name}: openapi-spec-validator refuses the project's document (kept in {file}):\n{said}"
        );
    }
    let _ = std::fs::remove_dir_all(&documents_dir);
    assert!(
        swagger >= 1,
        "the corpus's Swagger 2.0 document was refused"
    );
    assert!(calls > 1000, "{calls} operations called");
    assert!(
        generated_flagged.is_empty(),
        "{} generated answers do not match their own schemas:\n{}",
        generated_flagged.len(),
        generated_flagged[..generated_flagged.len().min(5)].join("\n")
    );
    eprintln!("{examples_flagged} answers with an author's example flagged by response validation");
    assert!(
        unsatisfiable * 50 < calls,
        "{unsatisfiable} of {calls} operations have schemas no request meets"
    );
    eprintln!(
        "largest document: {} ({} bytes) imported in {} ms",
        largest.1, largest.0, largest.2
    );
}

const PETSTORE: &str = r##"
openapi: 3.0.3
info: {title: Pets, version: "1"}
servers: [{url: "https://pets.example/v1"}]
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
      responses:
        "200":
          description: the pets
          content:
            application/json:
              example: [{id: 1, name: Rex}]
    post:
      operationId: createPet
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {description: made, content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}}}}
        "400": {description: bad, content: {application/json: {example: {message: bad pet}}}}
  /pets/{id}:
    get:
      operationId: getPet
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
        - {name: X-Trace, in: header, required: true, schema: {type: string, pattern: "^(?=.*\\d)[a-z0-9]+$"}}
      responses:
        "200": {description: a pet, content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}}}}
components:
  schemas:
    Pet:
      type: object
      required: [id, name]
      additionalProperties: false
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, minLength: 1}
        kind: {type: string, enum: [cat, dog]}
        born: {type: string, format: date}
"##;

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, json_body(response).await)
}

#[tokio::test]
async fn one_curl_from_a_document_to_a_validating_mock_and_the_options() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (status, report) =
        answer(import(&app, &alice, "pets", "", PETSTORE.into(), true).await).await;
    assert_eq!(status, StatusCode::CREATED, "{report:#}");
    assert_eq!(
        (report["imported"].as_u64(), report["skipped"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(report["revision"], 1);
    assert_eq!(report["title"], "Pets");

    // Served at the project's root, answering the documented example or a generated body.
    let (status, body) = app.fetch("/alice/pets/pets").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"[{"id":1,"name":"Rex"}]"#)
    );
    // Validation: each bad place, each 422 with its pointer; good requests pass untouched.
    let bad = |path: &'static str,
               headers: Vec<(&'static str, &'static str)>,
               body: Option<&'static str>| {
        let app = &app;
        async move {
            let method = if body.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            let mut headers = headers;
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            let response = app
                .send(
                    method,
                    path,
                    None,
                    &headers,
                    body.map(|b| b.as_bytes().to_vec()),
                )
                .await;
            let status = response.status();
            let body = json_body(response).await;
            (
                status,
                body["error"]["details"][0]["field"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                body,
            )
        }
    };
    for (path, headers, body, field) in [
        ("/alice/pets/pets?limit=many", vec![], None, "query.limit"),
        ("/alice/pets/pets?limit=1000", vec![], None, "query.limit"),
        (
            "/alice/pets/pets/abc",
            vec![("x-trace", "a1")],
            None,
            "path.id",
        ),
        ("/alice/pets/pets/1", vec![], None, "header.x-trace"),
        (
            "/alice/pets/pets/1",
            vec![("x-trace", "nodigits")],
            None,
            "header.x-trace",
        ),
        (
            "/alice/pets/pets",
            vec![],
            Some(r#"{"kind": "cat"}"#),
            "body",
        ),
        (
            "/alice/pets/pets",
            vec![],
            Some(r#"{"name": 5}"#),
            "body/name",
        ),
        (
            "/alice/pets/pets",
            vec![],
            Some(r#"{"name": "Rex", "kind": "cow"}"#),
            "body/kind",
        ),
        (
            "/alice/pets/pets",
            vec![],
            Some(r#"{"name": "Rex", "born": "yesterday"}"#),
            "body/born",
        ),
        (
            "/alice/pets/pets",
            vec![],
            Some(r#"{"name": "Rex", "color": "red"}"#),
            "body",
        ),
    ] {
        let (status, at, body) = bad(path, headers.clone(), body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {headers:?}: {body}"
        );
        assert_eq!(body["error"]["code"], "request_invalid");
        assert_eq!(at, field, "{path} {headers:?}: {body}");
    }
    let (status, _, body) = bad("/alice/pets/pets/7", vec![("x-trace", "a1")], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = bad(
        "/alice/pets/pets",
        vec![],
        Some(r#"{"name": "Rex", "born": "2020-01-31"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Options: the preferred status, the base path kept, validation off; as a dry run first.
    let (status, dry) = answer(
        import(
            &app,
            &alice,
            "pets",
            "?status=400&base_path=keep&validate=false&dry_run=true",
            PETSTORE.into(),
            true,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry:#}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        app.revision(&alice, "alice/pets").await,
        1,
        "a dry run changes nothing"
    );
    let (status, merged) = answer(
        import(
            &app,
            &alice,
            "pets",
            "?status=400&base_path=keep&validate=false",
            PETSTORE.into(),
            true,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged:#}");
    assert_eq!(merged["revision"], 2);
    assert_eq!(merged["base_path"], "/v1");
    let (status, body) = app.fetch("/alice/pets/v1/pets").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = app
        .send(
            Method::POST,
            "/alice/pets/v1/pets",
            None,
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "validation off, the 400 preferred"
    );
    // Merged: the endpoints of the first import (same ids) were replaced, none added twice.
    let endpoints = json_body(
        app.call(
            Method::GET,
            "/admin/projects/alice/pets/endpoints",
            Some(&alice.token),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(endpoints["endpoints"].as_array().unwrap().len(), 3);

    // Replace drops the endpoints the document does not have.
    let extra = app
        .post_endpoint(
            &alice,
            "alice/pets",
            &json!({"id": "mine", "method": "GET", "path": "/mine", "response": {}}),
        )
        .await;
    assert_eq!(extra.status(), StatusCode::CREATED);
    let (status, replaced) =
        answer(import(&app, &alice, "pets", "?mode=replace", PETSTORE.into(), true).await).await;
    assert_eq!(status, StatusCode::OK, "{replaced:#}");
    assert_eq!(replaced["mode"], "replace");
    assert_eq!(
        app.get("/alice/pets/mine").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/alice/pets/pets").await.status(), StatusCode::OK);

    // Refused whole: nothing changes.
    let before = app.revision(&alice, "alice/pets").await;
    for (body, code) in [
        (
            b"{\"swagger\": \"2.0\", \"info\": {}, \"paths\": {}}".to_vec(),
            "invalid_document",
        ),
        (b"{\"openapi\": \"3.0.0\", ".to_vec(), "invalid_document"),
        (b"just: [a, yaml, list".to_vec(), "invalid_document"),
    ] {
        let response = import(&app, &alice, "pets", "", body, false).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let response = import(
        &app,
        &alice,
        "pets",
        "?mode=sideways",
        PETSTORE.into(),
        true,
    )
    .await;
    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .send(
            Method::POST,
            "/admin/projects/alice/pets/import",
            Some(&alice.token),
            &[("content-type", "image/png")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(app.revision(&alice, "alice/pets").await, before);
    // Not someone else's project.
    let bob = app.user("bob").await;
    let response = import(&app, &bob, "pets", "", PETSTORE.into(), true).await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

/// YAML 1.2, as the issue's real documents write it: unquoted `yes`, `no`, `on` and dates
/// stay strings (YAML 1.1 would make booleans and timestamps of them).
const YAML_1_2: &str = r#"
openapi: 3.0.0
info: {title: Flags, version: 2019-01-01}
paths:
  /answers:
    get:
      operationId: answers
      parameters:
        - name: agree
          in: query
          required: true
          schema: {type: string, enum: [yes, no]}
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {since: 2019-01-01, switch: on, flags: [yes, off], count: 3, ok: true}
"#;

#[tokio::test]
async fn yaml_documents_are_read_as_yaml_1_2() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (status, report) =
        answer(import(&app, &alice, "flags", "", YAML_1_2.into(), true).await).await;
    assert_eq!(status, StatusCode::CREATED, "{report:#}");
    assert_eq!(report["imported"], 1);
    let (status, body) = app.fetch("/alice/flags/answers?agree=yes").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"since": "2019-01-01", "switch": "on", "flags": ["yes", "off"], "count": 3, "ok": true})
    );
    // `yes` and `no` are the enum's strings: anything else is refused.
    let refused = app.get("/alice/flags/answers?agree=true").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let document = json_body(app.get("/alice/flags/openapi.json").await).await;
    assert_eq!(document["info"]["version"], "2019-01-01");
}
