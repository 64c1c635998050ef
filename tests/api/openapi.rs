//! Each project's own OpenAPI document and docs pages, against the real server: what the
//! document says of every handler kind (mocks with rules, given parameters and schemas),
//! the project's `openapi` settings and auth policy in it, one document per revision,
//! `X-Forwarded-Prefix`, production mode hiding the docs, endpoints taking precedence over
//! them, the platform's pages and the embedded assets; and mock rules answering by query
//! parameter and header.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_invalid, header, json_body, spawn_app};

const PETS: &str = "/admin/projects/alice/pets";

async fn pets(body: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_from(&alice, "pets", body).await;
    (app, alice)
}

async fn document(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let response = app
        .send(Method::GET, "/alice/pets/openapi.json", None, headers, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    json_body(response).await
}

#[tokio::test]
async fn a_projects_document_describes_its_endpoints_settings_and_policy() {
    let (app, _alice) = pets(json!({
        "description": "Pets for tests",
        "auth": {"type": "api_key"},
        "openapi": {
            "info": {"title": "Pet store", "contact": {"name": "Team"}},
            "tags": [{"name": "pets", "description": "Everything about pets"}],
            "components": {"schemas": {"Pet": {"type": "object", "required": ["id"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}},
            "x-audience": "internal"
        },
        "endpoints": [
            {"method": "GET", "path": "/pets/{id}", "summary": "One pet", "tags": ["pets"],
             "operation_id": "getPet",
             "parameters": [{"name": "id", "in": "path", "required": true,
                             "schema": {"type": "integer", "minimum": 1}}],
             "responses": {"200": {"description": "The pet", "content": {"application/json":
                 {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
             "response": {"json": {"id": 1, "name": "Rex"}}},
            {"method": "POST", "path": "/pets", "auth": {"public": true},
             "request_body": {"required": true, "content": {"application/json":
                 {"schema": {"$ref": "#/components/schemas/Pet"}}}},
             "openapi": {"deprecated": true, "x-internal": true},
             "response": {"status": 201, "json": {"id": 2, "tags": ["a"], "price": 1.5},
                          "headers": {"location": "/pets/2"}}},
            {"method": "GET", "path": "/rest", "response": {"json": {"default": true},
             "rules": [{"when": {"query": {"method": "photos.search"}},
                        "response": {"status": 202, "body": "searched"}}]}},
            {"method": "ANY", "path": "/files/{*path}", "response": {"status": 204}},
            {"method": "GET", "path": "/lists.{format}.json", "response": {"json": []}}
        ]
    }))
    .await;
    let doc = document(&app, &[]).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"], json!([{"url": "/alice/pets"}]));
    assert_eq!(doc["info"]["title"], "Pet store");
    assert_eq!(doc["info"]["description"], "Pets for tests");
    assert_eq!(doc["info"]["contact"]["name"], "Team");
    assert_eq!(doc["info"]["version"], "1");
    assert_eq!(doc["x-audience"], "internal");
    assert_eq!(doc["tags"][0]["name"], "pets");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "apiKey", "in": "header", "name": "x-api-key",
               "description": "An API key of the project (`syk_…`)."})
    );
    assert_eq!(doc["security"], json!([{"api_key": []}]));
    assert!(doc["components"]["schemas"]["Pet"].is_object());

    let get = &doc["paths"]["/pets/{id}"]["get"];
    assert_eq!(get["operationId"], "getPet");
    assert_eq!(get["summary"], "One pet");
    assert_eq!(get["parameters"][0]["schema"]["minimum"], 1);
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Pet"
    );

    let post = &doc["paths"]["/pets"]["post"];
    assert_eq!(post["security"], json!([]));
    assert_eq!(post["deprecated"], true);
    assert_eq!(post["x-internal"], true);
    assert_eq!(post["requestBody"]["required"], true);
    let created = &post["responses"]["201"];
    let media = &created["content"]["application/json"];
    assert_eq!(
        media["example"],
        json!({"id": 2, "tags": ["a"], "price": 1.5})
    );
    assert_eq!(
        media["schema"],
        json!({"type": "object",
               "properties": {"id": {"type": "integer"},
                              "tags": {"type": "array", "items": {"type": "string"}},
                              "price": {"type": "number"}},
               "required": ["id", "tags", "price"]})
    );
    assert_eq!(created["headers"]["location"]["example"], "/pets/2");
    assert!(
        post["operationId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // A mock's rules are responses too.
    let rest = &doc["paths"]["/rest"]["get"]["responses"];
    assert!(rest["200"].is_object() && rest["202"].is_object(), "{rest}");
    assert_eq!(rest["202"]["content"]["text/plain"]["example"], "searched");

    // ANY is listed under the common methods; a tail is an ordinary path parameter.
    let files = &doc["paths"]["/files/{path}"];
    for method in ["get", "put", "post", "delete", "patch"] {
        assert!(files[method].is_object(), "{method} in {files}");
    }
    assert_eq!(files["get"]["parameters"][0]["name"], "path");
    assert!(files["get"]["responses"]["204"].is_object());
    assert_eq!(
        doc["paths"]["/lists.{format}.json"]["get"]["parameters"][0]["name"],
        "format"
    );

    // Operation ids are unique.
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            ids.push(operation["operationId"].as_str().unwrap().to_owned());
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
}

#[tokio::test]
async fn the_document_follows_each_revision_and_the_forwarded_prefix() {
    let (app, alice) = pets(json!({"endpoints": [
        {"method": "GET", "path": "/a", "response": {"json": 1}}
    ]}))
    .await;
    let first = document(&app, &[]).await;
    assert!(first["paths"]["/a"].is_object());
    assert!(first["paths"].get("/b").is_none());
    let response = app
        .post_endpoint(
            &alice,
            "alice/pets",
            &json!({"method": "GET", "path": "/b", "response": {"json": 2}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let second = document(&app, &[]).await;
    assert!(second["paths"]["/b"].is_object());
    assert_eq!(second["info"]["version"], "2");

    let behind = document(&app, &[("x-forwarded-prefix", "/gateway/v1/")]).await;
    assert_eq!(
        behind["servers"],
        json!([{"url": "/gateway/v1/alice/pets"}])
    );
    assert_eq!(behind["paths"], second["paths"]);
    // Anything but a plain path is ignored.
    let odd = document(&app, &[("x-forwarded-prefix", "\"><script>")]).await;
    assert_eq!(odd["servers"], json!([{"url": "/alice/pets"}]));

    let (status, html) = app.fetch("/alice/pets/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"url: "/alice/pets/openapi.json""#),
        "{html}"
    );
    assert!(html.contains("/docs/assets/swagger-ui-bundle.js"));
    let response = app
        .send(
            Method::GET,
            "/alice/pets/redoc",
            None,
            &[("x-forwarded-prefix", "/gw")],
            None,
        )
        .await;
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"spec-url="/gw/alice/pets/openapi.json""#),
        "{html}"
    );
    assert!(
        html.contains(r#"src="/gw/docs/assets/redoc.standalone.js"#),
        "{html}"
    );

    // The assets the pages load are served, and revalidated by version.
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    ] {
        let response = app.get(&format!("/docs/assets/{asset}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let etag = header(&response, "etag");
        assert!(response.bytes().await.unwrap().len() > 10_000);
        let again = app
            .send(
                Method::GET,
                &format!("/docs/assets/{asset}"),
                None,
                &[("if-none-match", &etag)],
                None,
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    assert_eq!(
        app.get("/docs/assets/nope.js").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn production_hides_the_docs_and_endpoints_take_precedence() {
    let (app, alice) = pets(json!({"endpoints": [
        {"method": "GET", "path": "/redoc", "response": {"body": "my own redoc"}},
        {"method": "GET", "path": "/hello", "response": {"json": "hi"}},
        {"method": "GET", "path": "/{name}", "response": {"json": "by name"}}
    ]}))
    .await;
    // Written for that very path, an endpoint keeps it; one matching through a parameter
    // does not hide the docs.
    assert_eq!(app.fetch("/alice/pets/redoc").await.1, "my own redoc");
    let (status, html) = app.fetch("/alice/pets/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("swagger-ui"), "{html}");
    assert_eq!(
        app.fetch("/alice/pets/openapi.json").await.0,
        StatusCode::OK
    );
    assert_eq!(app.fetch("/alice/pets/other").await.1, "\"by name\"");
    // Only GET and HEAD reach the docs.
    // `/{name}` takes GET only.
    let post = app
        .call(Method::POST, "/alice/pets/openapi.json", None, None)
        .await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let head = app
        .call(Method::HEAD, "/alice/pets/openapi.json", None, None)
        .await;
    assert_eq!(head.status(), StatusCode::OK);

    let response = app
        .call(
            Method::PATCH,
            PETS,
            Some(&alice.token),
            Some(&json!({"mode": "production"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Hidden: what answers there now is the endpoint matching through its parameter.
    for path in ["/alice/pets/openapi.json", "/alice/pets/docs"] {
        assert_eq!(app.fetch(path).await.1, "\"by name\"", "{path}");
    }
    // With nothing else there, a production project's docs are 404.
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "quiet", "mode": "production",
                         "endpoints": [{"method": "GET", "path": "/a", "response": {}}]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for path in ["/openapi.json", "/docs", "/redoc"] {
        let path = format!("/alice/quiet{path}");
        assert_eq!(
            app.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(app.get("/alice/quiet/a").await.status(), StatusCode::OK);
    assert_eq!(app.fetch("/alice/pets/hello").await.1, "\"hi\"");
    assert_eq!(app.fetch("/alice/pets/redoc").await.1, "my own redoc");
}

#[tokio::test]
async fn the_platform_has_its_own_pages() {
    let app = spawn_app().await;
    let (status, html) = app.fetch("/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"url: "/openapi.json""#), "{html}");
    let (status, html) = app.fetch("/redoc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"spec-url="/openapi.json""#), "{html}");
}

#[tokio::test]
async fn mock_rules_answer_by_query_parameter_and_header() {
    let (app, _alice) = pets(json!({"endpoints": [
        {"method": "POST", "path": "/", "response": {"status": 400, "json": {"error": "no target"},
         "rules": [
            {"when": {"headers": {"X-Amz-Target": "Svc.List"}},
             "response": {"json": {"items": []}}},
            {"when": {"headers": {"x-amz-target": {"equals": "Svc.Get"}}},
             "response": {"json": {"item": 1}}}
         ]}},
        {"method": "GET", "path": "/rest", "response": {"json": "default",
         "rules": [
            {"when": {"query": {"method": "photos.search", "format": "json"}},
             "response": {"json": "search"}},
            {"when": {"query": {"method": "photos get"}}, "response": {"json": "get"}}
         ]}}
    ]}))
    .await;
    let post = |target: Option<&'static str>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                target.map(|t| ("x-amz-target", t)).into_iter().collect();
            let response = app
                .send(
                    Method::POST,
                    "/alice/pets/",
                    None,
                    &headers,
                    Some(b"{}".to_vec()),
                )
                .await;
            (response.status(), response.text().await.unwrap())
        }
    };
    assert_eq!(
        post(Some("Svc.List")).await,
        (StatusCode::OK, r#"{"items":[]}"#.into())
    );
    assert_eq!(
        post(Some("Svc.Get")).await,
        (StatusCode::OK, r#"{"item":1}"#.into())
    );
    assert_eq!(post(Some("Svc.get")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(post(None).await.0, StatusCode::BAD_REQUEST);

    for (query, expected) in [
        ("?method=photos.search&format=json", "\"search\""),
        ("?format=json&method=photos.search", "\"search\""),
        ("?method=photos.search", "\"default\""),
        ("?method=photos+get", "\"get\""),
        ("?method=photos%20get", "\"get\""),
        ("", "\"default\""),
    ] {
        let (status, body) = app.fetch(&format!("/alice/pets/rest{query}")).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, expected),
            "{query}"
        );
    }
}

#[tokio::test]
async fn bad_operations_rules_and_settings_are_refused_by_field() {
    let (app, alice) = pets(json!({})).await;
    let endpoint = |extra: Value| {
        let mut endpoint = json!({"method": "GET", "path": "/items/{id}", "response": {}});
        for (key, value) in extra.as_object().unwrap() {
            endpoint[key] = value.clone();
        }
        endpoint
    };
    for (extra, field) in [
        (
            json!({"parameters": [{"name": "nope", "in": "path"}]}),
            "parameters[0].name",
        ),
        (
            json!({"parameters": [{"name": "q", "in": "body"}]}),
            "parameters[0].in",
        ),
        (json!({"responses": {"200x": {}}}), "responses.200x"),
        (
            json!({"openapi": {"requestBody": {}}}),
            "openapi.requestBody",
        ),
        (json!({"request_body": []}), "request_body"),
        (
            json!({"response": {"rules": [{"when": {}, "response": {}}]}}),
            "response.rules[0].when",
        ),
        (
            json!({"response": {"rules": [{"when": {"headers": {"bad header": "1"}},
                                           "response": {}}]}}),
            "response.rules[0].when.headers.bad header",
        ),
        (
            json!({"response": {"rules": [{"when": {"query": {"a": "1"}},
                                           "response": {"status": 99}}]}}),
            "response.rules[0].response.status",
        ),
    ] {
        let response = app
            .post_endpoint(&alice, "alice/pets", &endpoint(extra.clone()))
            .await;
        assert_invalid(response, field).await;
    }
    let response = app
        .call(
            Method::PATCH,
            PETS,
            Some(&alice.token),
            Some(&json!({"openapi": {"paths": {}}})),
        )
        .await;
    assert_invalid(response, "openapi.paths").await;

    // What was accepted round-trips through the admin API as written.
    let written = endpoint(json!({
        "operation_id": "getItem",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}},
        "validate": {"request": false},
        "openapi": {"x-a": 1}
    }));
    let response = app.post_endpoint(&alice, "alice/pets", &written).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored = json_body(response).await;
    for key in ["operation_id", "parameters", "responses", "openapi"] {
        assert_eq!(stored[key], written[key], "{key} in {stored}");
    }
    assert_eq!(
        stored["validate"],
        json!({"request": false, "response": false})
    );
    let response = app
        .call(
            Method::PATCH,
            PETS,
            Some(&alice.token),
            Some(&json!({"openapi": {"info": {"title": "T"}}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let project = app.read_project(&alice, "alice/pets").await;
    assert_eq!(project["openapi"], json!({"info": {"title": "T"}}));
}

/// Runs the real OpenAPI validator on a document, failing with its output.
pub(crate) async fn assert_valid_openapi(document: &Value) {
    let (ok, output) = openapi_validator(document).await;
    assert!(
        ok,
        "openapi-spec-validator refuses the document:\n{output}\n{document:#}"
    );
}

/// Runs the real OpenAPI validator on a document: whether it accepts it, and what it said.
pub(crate) async fn openapi_validator(document: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(document).unwrap()).expect("write the document");
    let file = file.to_str().expect("a UTF-8 path");
    crate::platform_openapi::run_python(&["-m", "openapi_spec_validator", file]).await
}

#[tokio::test]
async fn a_document_of_every_handler_kind_passes_the_openapi_validator() {
    let (app, alice) = pets(json!({
        "auth": {"type": "jwt", "issuer": "https://issuer.example/", "audience": "pets",
                 "algorithms": ["HS256"], "secret": "a-secret-of-at-least-32-bytes-long!!"},
        "openapi": {"info": {"title": "Everything"},
                    "components": {"schemas": {"Pet": {"type": "object",
                        "properties": {"id": {"type": "integer"}}}}}},
        "backends": [{"name": "up", "urls": ["http://127.0.0.1:9"]}],
        "endpoints": [
            {"method": "GET", "path": "/pets/{id}", "auth": {"public": true},
             "responses": {"200": {"description": "A pet", "content": {"application/json":
                 {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
             "response": {"json": {"id": 1}}},
            {"method": "POST", "path": "/search", "response": {"body": "plain",
             "rules": [{"when": {"query": {"q": "x"}}, "response": {"status": 404}}]}},
            {"method": "ANY", "path": "/upstream", "proxy": {"backend": "up"}},
            {"method": "GET", "path": "/bin", "response": {"body_base64": "AAEC"}},
            {"method": "GET", "path": "/files/{*rest}", "response": {"status": 204}}
        ]
    }))
    .await;
    let iris = include_str!("../../src/dataset/testdata/iris.csv");
    let response = app
        .send(
            Method::PUT,
            "/admin/projects/alice/pets/datasets/iris?endpoints=default&category=species",
            Some(&alice.token),
            &[("content-type", "text/csv")],
            Some(iris.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
    let response = app
        .send(
            Method::PUT,
            "/admin/projects/alice/pets/script",
            Some(&alice.token),
            &[("content-type", "application/javascript")],
            Some(
                b"app.get('/hello/{name}', {summary: 'Hello'}, (req) => ({hi: req.params.name}));"
                    .to_vec(),
            ),
        )
        .await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let doc = document(&app, &[]).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["jwt"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/hello/{name}"]["get"].is_object(), "{doc:#}");
    let range = &doc["paths"]["/range"]["get"];
    assert!(
        range["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "species")),
        "{range:#}"
    );
    assert_eq!(
        range["responses"]["200"]["content"]["application/json"]["schema"]["items"]["properties"]["sepal_length"]
            ["type"],
        "number"
    );
    assert_valid_openapi(&doc).await;
}
