//! The import read against small documents written for each construct of docs/openapi.md's
//! table; the real documents of the corpus are imported in tests/api/import.rs.

use serde_json::json;

use super::*;

fn options() -> Options {
    Options::default()
}

fn plan_of(doc: Value) -> Plan {
    plan(&doc, &options()).expect("the document is read")
}

fn spec<'a>(plan: &'a Plan, id: &str) -> &'a EndpointSpec {
    plan.endpoints
        .iter()
        .find(|e| e.id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no endpoint {id} in {:?}", plan.report.operations))
}

fn mock(spec: &EndpointSpec) -> &MockSpec {
    spec.handler.mock().expect("a mock")
}

#[test]
fn path_keys_split_into_the_path_and_its_condition() {
    let (path, when) = split_key("/rest?method=photos.search&format=json");
    assert_eq!(path, "/rest");
    assert_eq!(when.query["method"].equals(), Some("photos.search"));
    assert_eq!(when.query["format"].equals(), Some("json"));
    let (path, when) = split_key("/#X-Amz-Target=Service.Action");
    assert_eq!(path, "/");
    assert_eq!(
        when.headers["x-amz-target"].equals(),
        Some("Service.Action")
    );
    let (path, when) = split_key("/items/{id}");
    assert_eq!(
        (path.as_str(), when),
        ("/items/{id}", crate::model::When::default())
    );
}

#[test]
fn the_response_is_chosen_as_documented() {
    let choose = |responses: Value, prefer: Option<&str>| {
        let map = responses.as_object().cloned().unwrap();
        choose_response(&map, prefer).map(|(key, status)| (key.map(str::to_owned), status))
    };
    let r = json!({"404": {}, "201": {}, "200": {}, "default": {}});
    assert_eq!(choose(r.clone(), None), Some((Some("200".into()), 200)));
    assert_eq!(
        choose(r.clone(), Some("404")),
        Some((Some("404".into()), 404))
    );
    assert_eq!(choose(r, Some("418")), Some((Some("200".into()), 200)));
    assert_eq!(
        choose(json!({"2XX": {}, "400": {}}), None),
        Some((Some("2XX".into()), 200))
    );
    assert_eq!(
        choose(json!({"404": {}, "302": {}, "default": {}}), None),
        Some((Some("302".into()), 302))
    );
    assert_eq!(
        choose(json!({"default": {}}), None),
        Some((Some("default".into()), 200))
    );
    assert_eq!(
        choose(json!({"4XX": {}}), None),
        Some((Some("4XX".into()), 400))
    );
    assert_eq!(choose(json!({}), None), Some((None, 200)));
    assert_eq!(choose(json!({"101": {}}), None), None);
}

#[test]
fn json_is_chosen_among_media_types() {
    let choose = |content: Value| {
        let map = content.as_object().cloned().unwrap();
        choose_media(&map).map(|(m, _)| m.to_owned())
    };
    assert_eq!(
        choose(json!({"application/xml": {}, "application/json": {}})).unwrap(),
        "application/json"
    );
    assert_eq!(
        choose(json!({"text/plain": {}, "application/vnd.api+json": {}})).unwrap(),
        "application/vnd.api+json"
    );
    assert_eq!(
        choose(json!({"text/plain": {}, "*/*": {"schema": {}}})).unwrap(),
        "*/*"
    );
    assert_eq!(choose(json!({"image/png": {}})).unwrap(), "image/png");
}

#[test]
fn server_paths_take_variables_at_their_defaults() {
    let doc = json!({"servers": [{"url": "https://{host}/api/{version}/",
        "variables": {"host": {"default": "x.example"}, "version": {"default": "v2"}}}]});
    assert_eq!(server_path(&doc).as_deref(), Some("/api/v2"));
    assert_eq!(
        server_path(&json!({"servers": [{"url": "/base"}]})).as_deref(),
        Some("/base")
    );
    assert_eq!(
        server_path(&json!({"servers": [{"url": "https://x.example"}]})),
        None
    );
    assert_eq!(server_path(&json!({})), None);
}

#[test]
fn yaml_is_read_as_yaml_1_2() {
    let doc = parse(
        b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\nx-flags: [yes, on, no, off]\nx-date: 2019-01-01\nx-bool: true\n",
    )
    .unwrap();
    assert_eq!(doc["x-flags"], json!(["yes", "on", "no", "off"]));
    assert_eq!(doc["x-date"], "2019-01-01");
    assert_eq!(doc["x-bool"], true);
}

#[test]
fn what_is_not_an_openapi_3_document_is_refused_whole() {
    assert!(matches!(
        parse(b"{not json"),
        Err(ImportError::Unparseable(_))
    ));
    assert!(matches!(parse(b"[1, 2]"), Err(ImportError::NotOpenApi(_))));
    let swagger = json!({"swagger": "2.0", "info": {}, "paths": {}});
    let error = plan(&swagger, &options()).unwrap_err();
    assert!(error.to_string().contains("Swagger 2.0"), "{error}");
    let other = json!({"openapi": "4.0.0"});
    assert!(
        plan(&other, &options())
            .unwrap_err()
            .to_string()
            .contains("4.0.0")
    );
    assert!(plan(&json!({"info": {}}), &options()).is_err());
}

#[test]
fn examples_are_taken_in_the_documented_order() {
    let doc = json!({
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "components": {"examples": {"One": {"value": {"from": "components"}}}},
        "paths": {
            "/a": {"get": {"operationId": "a", "responses": {"200": {"description": "", "content": {
                "application/json": {"example": {"from": "media"}, "examples": {"x": {"value": 1}}}}}}}},
            "/b": {"get": {"operationId": "b", "responses": {"200": {"description": "", "content": {
                "application/json": {"examples": {"x": {"$ref": "#/components/examples/One"}}}}}}}},
            "/c": {"get": {"operationId": "c", "responses": {"200": {"description": "", "content": {
                "application/json": {"schema": {"type": "object", "example": {"from": "schema"}}}}}}}},
            "/d": {"get": {"operationId": "d", "responses": {"200": {"description": "", "content": {
                "application/json": {"schema": {"type": "object", "required": ["n"],
                    "properties": {"n": {"type": "integer", "minimum": 3}}}}}}}}},
            "/e": {"get": {"operationId": "e", "responses": {"200": {"description": "", "content": {
                "text/plain": {"example": "hello"}}}}}},
            "/f": {"get": {"operationId": "f", "responses": {"200": {"description": "", "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}}},
            "/g": {"delete": {"operationId": "g", "responses": {"204": {"description": ""}}}},
            "/h": {"get": {"operationId": "h", "responses": {"302": {"description": "",
                "headers": {"Location": {"schema": {"type": "string"}, "example": "/elsewhere"}}}}}}
        }
    });
    let plan = plan_of(doc);
    let json_of = |id: &str| {
        serde_json::from_str::<Value>(mock(spec(&plan, id)).json.as_ref().unwrap().get()).unwrap()
    };
    assert_eq!(json_of("a"), json!({"from": "media"}));
    assert_eq!(json_of("b"), json!({"from": "components"}));
    assert_eq!(json_of("c"), json!({"from": "schema"}));
    let generated = json_of("d");
    assert!(
        generated["n"].as_i64().is_some_and(|n| n >= 3),
        "{generated}"
    );
    assert_eq!(json_of("d"), generated, "generation is deterministic");
    let text = mock(spec(&plan, "e"));
    assert_eq!(text.body.as_deref(), Some("hello"));
    let pdf = mock(spec(&plan, "f"));
    assert!(pdf.body_base64.is_some());
    assert_eq!(
        pdf.headers
            .iter()
            .find(|(n, _)| *n == "content-type")
            .unwrap()
            .1,
        &HeaderValues::One("application/pdf".into())
    );
    let deleted = mock(spec(&plan, "g"));
    assert_eq!(
        (
            deleted.status,
            deleted.json.is_none(),
            deleted.body.is_none()
        ),
        (204, true, true)
    );
    let moved = mock(spec(&plan, "h"));
    assert_eq!(moved.status, 302);
    assert_eq!(
        moved
            .headers
            .iter()
            .find(|(n, _)| *n == "location")
            .unwrap()
            .1,
        &HeaderValues::One("/elsewhere".into())
    );
    assert_eq!(plan.report.imported, 8);
    assert_eq!(plan.report.skipped, 0);
}

#[test]
fn operations_sharing_a_method_and_path_become_rules() {
    let doc = json!({
        "openapi": "3.0.0", "info": {"title": "t", "version": "1"},
        "paths": {
            "/rest?method=photos.search": {"get": {"operationId": "search", "responses": {"200": {
                "description": "", "content": {"application/json": {"example": {"photos": []}}}}}}},
            "/rest?method=photos.getInfo": {"get": {"operationId": "info", "responses": {"200": {
                "description": "", "content": {"application/json": {"example": {"photo": {}}}}}}}},
            "/#X-Amz-Target=Svc.List": {"post": {"operationId": "List", "responses": {"200": {
                "description": "", "content": {"application/json": {"example": {"items": []}}}}}}},
            "/#X-Amz-Target=Svc.Get": {"post": {"operationId": "Get", "responses": {"200": {
                "description": "", "content": {"application/json": {"example": {"item": 1}}}}}}}
        }
    });
    let plan = plan_of(doc);
    assert_eq!(plan.endpoints.len(), 2, "{:?}", plan.report.operations);
    let rest = spec(&plan, "search");
    assert_eq!(&*rest.path, "/rest");
    // The first operation answers by default; the others are rules.
    let rules = &mock(rest).rules.as_ref().unwrap().0;
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].when.query["method"].equals(),
        Some("photos.getInfo")
    );
    let amz = spec(&plan, "List");
    assert_eq!(&*amz.path, "/");
    assert_eq!(
        mock(amz).rules.as_ref().unwrap().0[0].when.headers["x-amz-target"].equals(),
        Some("Svc.Get")
    );
    assert_eq!(plan.report.imported, 4);
    let info = plan
        .report
        .operations
        .iter()
        .find(|o| o.operation == "info")
        .unwrap();
    assert_eq!(info.endpoint.as_deref(), Some("search"));
    assert!(info.when.is_some());
}

#[test]
fn imperfect_operations_are_skipped_with_their_reason_and_the_rest_imported() {
    let doc = json!({
        "openapi": "3.0.0", "info": {"title": "t", "version": "1"},
        "paths": {
            "/good/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "get": {"responses": {"200": {"description": "ok"}}},
                "head": {"responses": {"200": {"description": "ok"}}},
                "trace": {"responses": {"200": {"description": "ok"}}}
            },
            "/other/{key}": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/good/{name}": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/bad path": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/ref": {"$ref": "#/paths/~1other~1{key}"},
            "/broken-ref": {"$ref": "#/paths/nowhere"},
            "/only-upgrade": {"get": {"responses": {"101": {"description": "switching"}}}},
            "/undeclared": {"get": {"parameters": [{"name": "ghost", "in": "path", "required": true}],
                                     "responses": {"200": {"description": "ok"}}}}
        }
    });
    let plan = plan_of(doc);
    let status = |path: &str, method: &str| {
        plan.report
            .operations
            .iter()
            .find(|o| o.path == path && o.method == method.to_ascii_uppercase())
            .map(|o| (o.status, o.reason.clone()))
            .unwrap_or_else(|| panic!("{method} {path} not reported: {:?}", plan.report.operations))
    };
    assert_eq!(status("/good/{id}", "get").0, "imported");
    assert_eq!(status("/good/{id}", "head").0, "imported");
    assert_eq!(status("/good/{id}", "trace").0, "imported");
    assert_eq!(status("/ref", "get").0, "imported");
    assert_eq!(status("/undeclared", "get").0, "imported");
    let (skipped, reason) = status("/good/{name}", "get");
    assert_eq!(skipped, "skipped");
    assert!(reason.unwrap().contains("same route"));
    assert_eq!(status("/bad path", "get").0, "skipped");
    assert_eq!(status("/only-upgrade", "get").0, "skipped");
    assert!(
        plan.report
            .operations
            .iter()
            .any(|o| o.path == "/broken-ref" && o.status == "skipped")
    );
    assert!(
        plan.report
            .not_enforced
            .iter()
            .any(|n| n.reason.contains("ghost"))
    );
    // The imported ones are valid definitions with their path parameters' schemas.
    for spec in &plan.endpoints {
        assert!(spec.validate("").is_empty(), "{spec:?}");
    }
    let good = plan
        .endpoints
        .iter()
        .find(|e| &*e.path == "/good/{id}" && e.method.as_str() == "GET")
        .unwrap();
    let parameters = &good.docs.as_ref().unwrap().operation.parameters;
    assert_eq!(parameters[0]["schema"]["type"], "integer");
}

#[test]
fn the_base_path_is_kept_when_asked() {
    let doc = json!({
        "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://slack.com/api"}],
        "paths": {"/chat.postMessage": {"post": {"operationId": "post", "responses": {"200": {"description": ""}}}}}
    });
    assert_eq!(
        &*spec(&plan_of(doc.clone()), "post").path,
        "/chat.postMessage"
    );
    let kept = plan(
        &doc,
        &Options {
            keep_base_path: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(&*spec(&kept, "post").path, "/api/chat.postMessage");
    assert_eq!(kept.report.base_path.as_deref(), Some("/api"));
}

#[test]
fn the_document_level_parts_become_the_projects_settings() {
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "2"},
        "tags": [{"name": "pets"}],
        "security": [{"key": []}],
        "x-logo": {"url": "x"},
        "components": {"schemas": {"Pet": {"type": "object", "nullable": true}},
                       "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "k"}}},
        "paths": {}
    });
    let plan = plan_of(doc);
    let settings = plan.openapi.fields();
    assert_eq!(settings["info"]["title"], "Pets");
    assert_eq!(settings["security"], json!([{"key": []}]));
    assert!(settings.contains_key("x-logo"));
    assert!(!settings.contains_key("paths"));
    // 3.0's `nullable` is 3.1's type list.
    assert_eq!(
        settings["components"]["schemas"]["Pet"]["type"],
        json!(["object", "null"])
    );
    let mut errors = Vec::new();
    plan.openapi.validate("openapi.", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
}

/// What a compiled mock answers to a request with these headers: status, content type, body.
fn answer_to(mock: &MockSpec, headers: &[(&str, &str)]) -> (u16, String, String) {
    let handler = crate::handlers::mock::MockHandler::compile(mock).expect("compiles");
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let crate::handlers::Reply::Now(response) = handler.respond_to(None, &map) else {
        panic!("an answer now");
    };
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = match response.body() {
        crate::body::Body::Full(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    (response.status().as_u16(), media, body)
}

#[test]
fn other_media_types_answer_a_request_that_accepts_them_first() {
    let doc = json!({
        "openapi": "3.0.0", "info": {"title": "t", "version": "1"},
        "paths": {
            "/pet": {"get": {"operationId": "pet", "responses": {"200": {"description": "",
                "content": {
                    "application/xml": {"example": "<pet><id>1</id></pet>"},
                    "application/json": {"example": {"id": 1}},
                    "text/plain": {"example": "pet 1"}}}}}},
            "/rest?method=a": {"get": {"operationId": "a", "responses": {"200": {"description": "",
                "content": {"application/json": {"example": {"a": 1}},
                            "application/xml": {"example": "<a/>"}}}}}},
            "/rest?method=b": {"get": {"operationId": "b", "responses": {"200": {"description": "",
                "content": {"application/json": {"example": {"b": 1}},
                            "application/xml": {"example": "<b/>"}}}}}}
        }
    });
    let plan = plan_of(doc);
    let pet = mock(spec(&plan, "pet"));
    let json_answer = (200, "application/json".to_owned(), r#"{"id":1}"#.to_owned());
    assert_eq!(answer_to(pet, &[]), json_answer);
    assert_eq!(answer_to(pet, &[("accept", "*/*")]), json_answer);
    assert_eq!(
        answer_to(pet, &[("accept", "application/json, application/xml")]),
        json_answer
    );
    let xml = (
        200,
        "application/xml".to_owned(),
        "<pet><id>1</id></pet>".to_owned(),
    );
    assert_eq!(answer_to(pet, &[("accept", "application/xml")]), xml);
    assert_eq!(
        answer_to(pet, &[("accept", " Application/XML;q=0.9, */*")]),
        xml
    );
    assert_eq!(
        answer_to(pet, &[("accept", "text/plain")]),
        (200, "text/plain".to_owned(), "pet 1".to_owned())
    );
    // With operations told apart by a query parameter: each keeps its own alternatives.
    let rest = mock(spec(&plan, "a"));
    let rules = &rest.rules.as_ref().unwrap().0;
    assert_eq!(rules.len(), 3, "{rules:?}");
    let compiled = crate::handlers::mock::MockHandler::compile(rest).unwrap();
    let body = |query: &str, accept: &str| {
        let mut map = http::HeaderMap::new();
        map.insert("accept", http::HeaderValue::from_str(accept).unwrap());
        let crate::handlers::Reply::Now(response) = compiled.respond_to(Some(query), &map) else {
            panic!("an answer now");
        };
        match response.body() {
            crate::body::Body::Full(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        }
    };
    assert_eq!(body("method=a", "application/json"), r#"{"a":1}"#);
    assert_eq!(body("method=a", "application/xml"), "<a/>");
    assert_eq!(body("method=b", "application/json"), r#"{"b":1}"#);
    assert_eq!(body("method=b", "application/xml"), "<b/>");
}
