//! Request and response validation beyond mocks, against the real server and a real
//! upstream: request bodies checked before a proxy forwards them (the upstream never sees
//! a refused one, and gets an accepted one byte for byte), a checked body kept in the
//! journal, and answers checked against their documented responses in `development` mode
//! (sent as they are, flagged in the journal, filtered by `response_invalid=true`), for
//! mocks and for an upstream's streamed answer; not in `production`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, json_body, spawn_app};
use crate::upstream::Upstream;

/// An order: a `sku` string and a positive `qty`, nothing else.
fn order_schema() -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["sku"], "additionalProperties": false,
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}}}})
}

async fn shop(body: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_from(&alice, "shop", body).await;
    (app, alice)
}

async fn post_json(app: &TestApp, path: &str, body: &str) -> (StatusCode, Value) {
    let response = app
        .send(
            Method::POST,
            path,
            None,
            &[("content-type", "application/json")],
            Some(body.as_bytes().to_vec()),
        )
        .await;
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn journal(app: &TestApp, user: &User, query: &str) -> Value {
    app.journal(user, "alice/shop", query).await
}

#[tokio::test]
async fn a_proxy_forwards_only_bodies_that_match_its_schema() {
    let upstream = Upstream::start("a").await;
    let (app, alice) = shop(json!({
        "backends": [{"name": "a", "urls": [upstream.url()]}],
        "endpoints": [{"method": "POST", "path": "/orders", "proxy": {"backend": "a"},
                       "parameters": [{"in": "header", "name": "X-Tenant", "required": true,
                                       "schema": {"type": "string", "pattern": "^t-"}}],
                       "request_body": order_schema()}]
    }))
    .await;
    let send = |headers: Vec<(&'static str, &'static str)>, body: &'static str| {
        let app = &app;
        async move {
            let mut all = vec![("content-type", "application/json")];
            all.extend(headers);
            let response = app
                .send(
                    Method::POST,
                    "/alice/shop/orders",
                    None,
                    &all,
                    Some(body.as_bytes().to_vec()),
                )
                .await;
            (response.status(), json_body(response).await)
        }
    };
    for (headers, body, field) in [
        (vec![("x-tenant", "t-1")], r#"{"qty": 2}"#, "body"),
        (
            vec![("x-tenant", "t-1")],
            r#"{"sku": "A", "qty": 0}"#,
            "body/qty",
        ),
        (
            vec![("x-tenant", "t-1")],
            r#"{"sku": "A", "gift": true}"#,
            "body",
        ),
        (vec![("x-tenant", "t-1")], "", "body"),
        (vec![("x-tenant", "t-1")], "{not json", "body"),
        (
            vec![("x-tenant", "other")],
            r#"{"sku": "A"}"#,
            "header.x-tenant",
        ),
        (vec![], r#"{"sku": "A"}"#, "header.x-tenant"),
    ] {
        let (status, answer) = send(headers.clone(), body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{headers:?} {body}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "request_invalid", "{answer}");
        assert_eq!(
            answer["error"]["details"][0]["field"], field,
            "{headers:?} {body}: {answer}"
        );
    }
    assert_eq!(
        upstream.request_count(),
        0,
        "no refused request reaches the upstream"
    );

    let body = r#"{"sku": "A-1",   "qty": 3}"#;
    let (status, echoed) = send(vec![("x-tenant", "t-9")], body).await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    assert_eq!(echoed["upstream"], "a");
    let seen = upstream.last();
    assert_eq!(seen.body, body.as_bytes(), "forwarded byte for byte");
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(seen.header("x-tenant"), Some("t-9"));

    // The journal keeps the checked body, accepted or refused.
    let listed = journal(&app, &alice, "?method=POST&limit=2").await;
    let entries = listed["entries"].as_array().expect("entries");
    assert_eq!(entries[0]["request"]["body"], body, "{listed:#}");
    assert_eq!(entries[0]["response"]["status"], 200);
    assert_eq!(entries[1]["request"]["body"], r#"{"sku": "A"}"#);
    assert_eq!(entries[1]["response"]["status"], 422);
}

#[tokio::test]
async fn a_checked_body_is_journaled_and_a_body_over_the_limit_refused() {
    let (app, alice) = shop(json!({
        "endpoints": [{"method": "POST", "path": "/orders", "request_body": order_schema(),
                       "response": {"status": 201, "json": {"ok": true}}}]
    }))
    .await;
    let (status, answer) = post_json(&app, "/alice/shop/orders", r#"{"sku": "B"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = post_json(&app, "/alice/shop/orders", r#"{"sku": 7}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "body/sku");
    let listed = journal(&app, &alice, "").await;
    assert_eq!(listed["entries"][0]["request"]["body"], r#"{"sku": 7}"#);
    assert_eq!(listed["entries"][1]["request"]["body"], r#"{"sku": "B"}"#);
    assert_eq!(listed["entries"][1]["request"]["body_length"], 12);

    let huge = format!(r#"{{"sku": "{}"}}"#, "x".repeat(17 * 1024 * 1024));
    let response = app
        .send(
            Method::POST,
            "/alice/shop/orders",
            None,
            &[("content-type", "application/json")],
            Some(huge.into_bytes()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn answers_that_differ_from_their_documented_responses_are_flagged_not_changed() {
    let upstream = Upstream::start("a").await;
    let pet = json!({"type": "object", "required": ["id"],
                     "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}});
    let documented = |schema: &Value| {
        json!({"200": {"description": "A pet",
                       "headers": {"X-Rate": {"required": true, "schema": {"type": "integer"}}},
                       "content": {"application/json": {"schema": schema}}},
               "404": {"description": "None"}})
    };
    let (app, alice) = shop(json!({
        "mode": "development",
        "backends": [{"name": "a", "urls": [upstream.url()]}],
        "endpoints": [
            {"method": "GET", "path": "/good", "validate": {"response": true},
             "responses": documented(&pet),
             "response": {"headers": {"x-rate": "5"}, "json": {"id": 1, "name": "Rex"}}},
            {"method": "GET", "path": "/bad", "validate": {"response": true},
             "responses": documented(&pet),
             "response": {"json": {"id": "one"}}},
            {"method": "GET", "path": "/teapot", "validate": {"response": true},
             "responses": documented(&pet),
             "response": {"status": 418, "body": "short and stout"}},
            {"method": "GET", "path": "/text", "validate": {"response": true},
             "responses": documented(&pet),
             "response": {"headers": {"x-rate": "1"}, "body": "plain"}},
            {"method": "GET", "path": "/unchecked", "responses": documented(&pet),
             "response": {"json": {"id": "one"}}},
            {"method": "GET", "path": "/echo", "proxy": {"backend": "a"},
             "validate": {"response": true},
             "responses": {"200": {"description": "The echo", "content": {"application/json":
                 {"schema": {"type": "object", "required": ["upstream", "method"],
                             "properties": {"upstream": {"type": "integer"}}}}}}}}
        ]
    }))
    .await;
    // Every answer is sent as the handler made it.
    for (path, status, body) in [
        ("/good", 200, r#"{"id":1,"name":"Rex"}"#),
        ("/bad", 200, r#"{"id":"one"}"#),
        ("/teapot", 418, "short and stout"),
        ("/text", 200, "plain"),
        ("/unchecked", 200, r#"{"id":"one"}"#),
    ] {
        let (got, text) = app.fetch(&format!("/alice/shop{path}")).await;
        assert_eq!((got.as_u16(), text.as_str()), (status, body), "{path}");
    }
    let response = app.get("/alice/shop/echo").await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = json_body(response).await;
    assert_eq!(
        echoed["upstream"], "a",
        "the upstream's answer passes whole"
    );
    assert_eq!(echoed["method"], "GET");

    let flags = |entry: &Value| -> Vec<String> {
        entry["response_invalid"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let listed = journal(&app, &alice, "").await;
    let by_path = |path: &str| -> Value {
        listed["entries"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["request"]["path"] == path))
            .cloned()
            .unwrap_or_else(|| panic!("{path} in {listed:#}"))
    };
    assert!(flags(&by_path("/good")).is_empty(), "{listed:#}");
    assert!(by_path("/good").get("response_invalid").is_none());
    assert_eq!(
        flags(&by_path("/bad")),
        ["response.header.x-rate", "response.body/id"]
    );
    assert_eq!(flags(&by_path("/teapot")), ["response.status"]);
    let teapot = &by_path("/teapot")["response_invalid"][0]["message"];
    assert!(
        teapot
            .as_str()
            .is_some_and(|m| m.contains("418") && m.contains("200") && m.contains("404")),
        "{teapot}"
    );
    assert_eq!(flags(&by_path("/text")), ["response.header.content-type"]);
    assert!(flags(&by_path("/unchecked")).is_empty());
    assert_eq!(flags(&by_path("/echo")), ["response.body/upstream"]);

    let flagged = journal(&app, &alice, "?response_invalid=true").await;
    let paths: Vec<&str> = flagged["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["request"]["path"].as_str())
        .collect();
    assert_eq!(paths, ["/echo", "/text", "/teapot", "/bad"]);

    // In production, answers are not checked.
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&json!({"mode": "production"})),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", json_body(response).await);
    let (status, _) = app.fetch("/alice/shop/bad").await;
    assert_eq!(status, StatusCode::OK);
    let listed = journal(&app, &alice, "?limit=1").await;
    assert_eq!(listed["entries"][0]["request"]["path"], "/bad");
    assert!(
        listed["entries"][0].get("response_invalid").is_none(),
        "{listed:#}"
    );
}

#[tokio::test]
async fn a_malformed_schema_written_for_an_endpoint_is_refused_by_field() {
    let (app, alice) = shop(json!({})).await;
    for (endpoint, field, says) in [
        (
            json!({"method": "GET", "path": "/x",
                   "responses": {"200": {"description": "x", "content": {"application/json":
                       {"schema": {"type": "integer", "minimum": "zero"}}}}},
                   "response": {"json": 1}}),
            "responses.200.content.application/json.schema.minimum",
            "must be a number",
        ),
        (
            json!({"method": "POST", "path": "/x", "validate": {"request": false},
                   "request_body": {"content": {"application/json": {"schema": {
                       "type": "object",
                       "properties": {"a": {"type": "string", "required": true}}}}}},
                   "response": {"json": 1}}),
            "request_body.content.application/json.schema.properties.a.required",
            "required",
        ),
        (
            json!({"method": "GET", "path": "/x",
                   "parameters": [{"in": "query", "name": "q",
                                   "schema": {"$ref": "#/components/schemas/Missing"}}],
                   "response": {"json": 1}}),
            "parameters[0].schema.$ref",
            "Missing",
        ),
    ] {
        let response = app.post_endpoint(&alice, "alice/shop", &endpoint).await;
        let body = crate::helpers::assert_invalid(response, field).await;
        let message = body["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or("");
        assert!(message.contains(says), "{body}");
    }
}

async fn put_script(app: &TestApp, user: &User, source: &str) -> reqwest::Response {
    app.send(
        Method::PUT,
        "/admin/projects/alice/shop/script",
        Some(&user.token),
        &[("content-type", "application/javascript")],
        Some(source.as_bytes().to_vec()),
    )
    .await
}

#[tokio::test]
async fn a_script_route_takes_schemas_that_are_checked_documented_and_linted() {
    let (app, alice) = shop(json!({
        "openapi": {"components": {"schemas": {"Order": {
            "type": "object", "required": ["sku"], "additionalProperties": false,
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}}}}
    }))
    .await;
    let source = r##"
app.post("/orders/{shop}", {
  summary: "Place an order",
  tags: ["orders"],
  operation_id: "placeOrder",
  parameters: [{ name: "shop", in: "path", required: true, schema: { type: "integer" } }],
  request_body: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/Order" } } } },
  responses: { "201": { description: "Placed", content: { "application/json": { schema: {
    type: "object", required: ["id"], properties: { id: { type: "integer" } } } } } } },
  validate: { response: true },
}, (req) => ({ status: 201, json: { id: req.params.shop === "1" ? 7 : "seven", sku: req.body.sku } }));
"##;
    let response = put_script(&app, &alice, source).await;
    let status = response.status();
    assert!(status.is_success(), "{}", json_body(response).await);

    // Checked before the script runs: the path parameter's type, the body's schema.
    let (status, answer) = post_json(&app, "/alice/shop/orders/x", r#"{"sku": "A"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "path.shop");
    let (status, answer) =
        post_json(&app, "/alice/shop/orders/1", r#"{"sku": "A", "qty": 0}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "body/qty");
    // The script gets the checked body whole.
    let (status, answer) =
        post_json(&app, "/alice/shop/orders/1", r#"{"sku": "A", "qty": 2}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"id": 7, "sku": "A"}));
    // An answer that does not match its documented response is sent, and flagged.
    let (status, answer) = post_json(&app, "/alice/shop/orders/2", r#"{"sku": "B"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["id"], "seven");
    let listed = journal(&app, &alice, "?response_invalid=true").await;
    assert_eq!(listed["matched"], 1, "{listed:#}");
    assert_eq!(
        listed["entries"][0]["response_invalid"][0]["field"],
        "response.body/id"
    );

    // The project's document describes the route as written.
    let (status, text) = app.fetch("/alice/shop/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let operation = &doc["paths"]["/orders/{shop}"]["post"];
    assert_eq!(operation["operationId"], "placeOrder", "{operation:#}");
    assert_eq!(operation["tags"], json!(["orders"]));
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Order"
    );
    assert!(operation["responses"]["201"].is_object());
    crate::openapi::assert_valid_openapi(&doc).await;

    // New components in the project's settings: the route's `$ref` reaches them.
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&json!({"openapi": {"components": {"schemas": {"Order": {
                "type": "object", "required": ["sku", "qty"]}}}}})),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", json_body(response).await);
    let (status, answer) = post_json(&app, "/alice/shop/orders/1", r#"{"sku": "A"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "body");
    let (status, answer) = post_json(
        &app,
        "/alice/shop/orders/1",
        r#"{"sku": "A", "qty": 1, "x": 1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // Options are checked as an endpoint's are, with the script's line.
    for (bad, says) in [
        (
            r#"app.get("/a", { summary: "x", colour: "red" }, () => 1);"#,
            "unknown option",
        ),
        (
            r#"app.get("/a/{id}", { parameters: [{ name: "nope", in: "path", required: true }] }, () => 1);"#,
            "nope",
        ),
        (
            r#"app.get("/a", { responses: { "200": { description: "x", content: { "application/json": { schema: { type: "integer", minimum: "one" } } } } } }, () => 1);"#,
            "minimum",
        ),
    ] {
        let response = put_script(&app, &alice, bad).await;
        let body = crate::helpers::assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let message = body["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or("");
        assert!(message.contains(says), "{bad}: {body}");
    }
}
