//! Script handlers exercised end to end: `Script::compile`, then `call`, on a real QuickJS
//! thread. Timing assertions are generous upper bounds only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;

use super::values::{is_json, joined_headers, location, query_pairs};
use super::{
    CallError, CompileError, Env, Kv, KvError, Limits, MemoryKv, Request, Response, Script,
    human_bytes,
};

async fn compile(source: &str) -> Arc<Script> {
    compile_with(source, Limits::default(), Arc::new(MemoryKv::default())).await
}

async fn compile_with(source: &str, limits: Limits, kv: Arc<dyn Kv>) -> Arc<Script> {
    match Script::compile("test", source, limits, kv, Env::EMPTY).await {
        Ok(script) => script,
        Err(error) => panic!("the script should compile, but: {error}"),
    }
}

async fn compile_error(source: &str) -> CompileError {
    compile_error_with(source, Limits::default()).await
}

async fn compile_error_with(source: &str, limits: Limits) -> CompileError {
    let kv = Arc::new(MemoryKv::default());
    match Script::compile("test", source, limits, kv, Env::EMPTY).await {
        Ok(script) => panic!(
            "the script should not compile, but has {:?}",
            script.routes()
        ),
        Err(error) => error,
    }
}

fn small_limits(cpu_ms: u64) -> Limits {
    Limits {
        cpu_time: Duration::from_millis(cpu_ms),
        ..Limits::default()
    }
}

fn request(method: &str, path: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        id: "req-1".into(),
        ..Request::default()
    }
}

fn route(script: &Script, method: Option<Method>, path: &str) -> usize {
    script
        .routes()
        .iter()
        .position(|route| route.method == method && route.path == path)
        .unwrap_or_else(|| panic!("no route {method:?} {path} in {:?}", script.routes()))
}

/// Calls the GET route `path` with a request for `path`.
async fn get(script: &Script, path: &str) -> Result<Response, CallError> {
    let index = route(script, Some(Method::GET), path);
    script.call(index, request("GET", path)).await
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(known, _)| known == name)
        .map(|(_, value)| value.as_str())
}

fn json(response: &Response) -> serde_json::Value {
    assert_eq!(header(response, "content-type"), Some("application/json"));
    match serde_json::from_slice(&response.body) {
        Ok(value) => value,
        Err(error) => panic!("not JSON ({error}): {:?}", response.body),
    }
}

fn ok(result: Result<Response, CallError>) -> Response {
    match result {
        Ok(response) => response,
        Err(error) => panic!("the call should succeed, but: {error} ({error:?})"),
    }
}

fn err(result: Result<Response, CallError>) -> CallError {
    match result {
        Ok(response) => panic!("the call should fail, but answered {response:?}"),
        Err(error) => error,
    }
}

async fn compile_with_env(source: &str, pairs: &[(&str, &str)]) -> Arc<Script> {
    let env = Env::new(
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let kv = Arc::new(MemoryKv::default());
    match Script::compile("test", source, Limits::default(), kv, env).await {
        Ok(script) => script,
        Err(error) => panic!("the script should compile, but: {error}"),
    }
}

// --- env ---------------------------------------------------------------------------------

#[tokio::test]
async fn env_holds_the_values_as_a_frozen_plain_object() {
    let script = compile_with_env(
        r#"
        const atLoad = env.GREETING;
        app.get("/", () => ({
            atLoad,
            greeting: env.GREETING,
            missing: env.MISSING ?? null,
            keys: Object.keys(env),
            json: JSON.stringify(env),
            frozen: Object.isFrozen(env),
            plain: Object.getPrototypeOf(env) === Object.prototype,
            types: Object.values(env).map((v) => typeof v),
            proto: Object.prototype.hasOwnProperty.call(env, "__proto__") && env["__proto__"],
        }));
        app.get("/write", () => {
            const tried = [];
            for (const attempt of [
                () => { env.GREETING = "changed"; },
                () => { env.ADDED = "x"; },
                () => { delete env.GREETING; },
                () => { globalThis.env = {}; },
            ]) {
                try { attempt(); tried.push("allowed"); } catch (e) { tried.push(e.name); }
            }
            return { tried, greeting: env.GREETING, same: globalThis.env === env };
        });
        "#,
        &[("GREETING", "hello"), ("EMPTY", ""), ("__proto__", "own")],
    )
    .await;
    let answer = json(&ok(get(&script, "/").await));
    assert_eq!(answer["atLoad"], "hello", "top-level code sees env");
    assert_eq!(answer["greeting"], "hello");
    assert_eq!(answer["missing"], serde_json::Value::Null);
    assert_eq!(
        answer["keys"],
        serde_json::json!(["EMPTY", "GREETING", "__proto__"])
    );
    assert_eq!(
        answer["json"],
        r#"{"EMPTY":"","GREETING":"hello","__proto__":"own"}"#
    );
    assert_eq!(answer["frozen"], true);
    assert_eq!(answer["plain"], true);
    assert_eq!(
        answer["types"],
        serde_json::json!(["string", "string", "string"])
    );
    assert_eq!(answer["proto"], "own");
    let answer = json(&ok(get(&script, "/write").await));
    assert_eq!(
        answer["tried"],
        serde_json::json!(["TypeError", "TypeError", "TypeError", "TypeError"])
    );
    assert_eq!(answer["greeting"], "hello");
    assert_eq!(answer["same"], true);
    assert_eq!(script.env().get("GREETING"), Some("hello"));
}

#[tokio::test]
async fn env_is_an_empty_object_without_values() {
    let script = compile(
        r#"app.get("/", () => ({ keys: Object.keys(env), frozen: Object.isFrozen(env),
                                 type: typeof env, missing: env.ANY === undefined }));"#,
    )
    .await;
    let answer = json(&ok(get(&script, "/").await));
    assert_eq!(
        answer,
        serde_json::json!({"keys": [], "frozen": true, "type": "object", "missing": true})
    );
    assert!(script.env().is_empty());
}

// --- routes and requests ---------------------------------------------------------------

#[tokio::test]
async fn routes_are_collected_with_methods_and_summaries() {
    let script = compile(
        r#"
        app.get("/", () => "index!");
        app.post("/items", { summary: "Add an item", description: "Stores it." }, () => 1);
        app.put("/items/{id}", () => 1);
        app.patch("/items/{id}", () => 1);
        app.delete("/items/{id}", () => 1);
        app.head("/h", () => 1);
        app.options("/o", () => 1);
        app.all("/any", () => 1);
        "#,
    )
    .await;
    let routes = script.routes();
    assert_eq!(routes.len(), 8);
    assert_eq!(routes[1].method, Some(Method::POST));
    assert_eq!(routes[1].path, "/items");
    assert_eq!(routes[1].summary(), Some("Add an item"));
    assert_eq!(routes[1].description(), Some("Stores it."));
    let methods: Vec<_> = routes.iter().map(|route| route.method.clone()).collect();
    assert_eq!(
        methods,
        [
            Some(Method::GET),
            Some(Method::POST),
            Some(Method::PUT),
            Some(Method::PATCH),
            Some(Method::DELETE),
            Some(Method::HEAD),
            Some(Method::OPTIONS),
            None
        ]
    );
    assert_eq!(routes[0].summary(), None);
    assert!(routes[0].docs.is_none());
    assert_eq!(script.limits(), &Limits::default());
}

#[tokio::test]
async fn root_returning_a_string_answers_a_json_string() {
    let script = compile(r#"app.get("/", () => "index!");"#).await;
    let response = ok(get(&script, "/").await);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, Bytes::from_static(b"\"index!\""));
    assert_eq!(json(&response), "index!");
}

#[tokio::test]
async fn params_query_headers_and_id_reach_the_handler() {
    let script = compile(
        r#"app.get("/items/{id}", (req) => ({
            method: req.method, path: req.path, params: req.params, query: req.query,
            headers: req.headers, body: req.body, id: req.id, auth: req.auth,
        }));"#,
    )
    .await;
    let request = Request {
        method: "GET".into(),
        path: "/items/42".into(),
        params: vec![("id".into(), "42".into())],
        query: Some("tag=a&tag=b&q=hello+world&x=%C3%A9%26".into()),
        headers: vec![
            ("accept".into(), "text/html".into()),
            ("x-many".into(), "1".into()),
            ("X-Many".into(), "2".into()),
        ],
        body: Bytes::new(),
        id: "0190-abc".into(),
        auth: None,
    };
    let verified = Request {
        auth: Some(crate::auth::Identity::key(
            "ci".into(),
            Arc::from(vec!["read".into(), "write".into()]),
        )),
        ..request.clone()
    };
    let answered = ok(script.call(0, verified).await);
    assert_eq!(
        json(&answered)["auth"],
        serde_json::json!({
            "subject": "ci", "scopes": ["read", "write"], "permissions": [],
            "method": "api_key", "claims": null,
        })
    );
    let response = ok(script.call(0, request).await);
    assert_eq!(
        json(&response),
        serde_json::json!({
            "method": "GET", "path": "/items/42", "params": {"id": "42"},
            "query": {"tag": ["a", "b"], "q": "hello world", "x": "é&"},
            "headers": {"accept": "text/html", "x-many": "1, 2"},
            "body": null, "id": "0190-abc", "auth": null,
        })
    );
}

#[tokio::test]
async fn a_json_body_is_parsed_and_a_text_body_is_text() {
    let script =
        compile(r#"app.post("/echo", (req) => ({ type: typeof req.body, body: req.body }));"#)
            .await;
    let call = |content_type: &str, body: &'static [u8]| {
        let mut request = request("POST", "/echo");
        request.headers = vec![("content-type".into(), content_type.into())];
        request.body = Bytes::from_static(body);
        script.call(0, request)
    };

    let parsed = ok(call("application/json; charset=utf-8", br#"{"a": [1, 2]}"#).await);
    assert_eq!(
        json(&parsed),
        serde_json::json!({"type": "object", "body": {"a": [1, 2]}})
    );
    let vendor = ok(call("application/vnd.api+json", b"7").await);
    assert_eq!(
        json(&vendor),
        serde_json::json!({"type": "number", "body": 7})
    );
    let text = ok(call("text/plain", b"hello").await);
    assert_eq!(
        json(&text),
        serde_json::json!({"type": "string", "body": "hello"})
    );

    let invalid = err(call("application/json", b"{\"a\": }").await);
    let CallError::BadRequest(message) = &invalid else {
        panic!("expected BadRequest, got {invalid:?}");
    };
    assert!(
        message.starts_with("the request body is not valid JSON: "),
        "{message}"
    );
    assert!(message.contains("line 1 column 7"), "{message}");

    let binary = err(call("text/plain", b"\xff\xfe").await);
    assert!(matches!(&binary, CallError::BadRequest(message) if message.contains("UTF-8")));
    // The script keeps serving after bad requests.
    ok(call("application/json", b"1").await);
}

// --- return forms -------------------------------------------------------------------------

#[tokio::test]
async fn each_return_form_gives_its_response() {
    let script = compile(
        r#"
        app.get("/value", () => ({ a: 1, list: [true, null] }));
        app.get("/undefined", () => {});
        app.get("/created", () => ({ status: 201, json: { id: 7 } }));
        app.get("/text", () => ({ status: 200, body: "plain" }));
        app.get("/html", () => ({ status: 202, headers: { "Content-Type": "text/html", "x-n": 5 }, body: "<p>" }));
        app.get("/bytes", () => ({ status: 200, body: new Uint8Array([1, 2, 255]) }));
        app.get("/buffer", () => ({ status: 200, body: new Uint8Array([9]).buffer }));
        app.get("/empty", () => ({ status: 404 }));
        app.get("/not-a-response", () => ({ status: "ok", extra: 1 }));
        app.get("/status-and-more", () => ({ status: 200, other: 1 }));
        app.get("/number", () => 3.5);
        app.get("/null", () => null);
        "#,
    )
    .await;

    let value = ok(get(&script, "/value").await);
    assert_eq!(value.status, 200);
    assert_eq!(
        json(&value),
        serde_json::json!({"a": 1, "list": [true, null]})
    );

    let nothing = ok(get(&script, "/undefined").await);
    assert_eq!((nothing.status, nothing.body.len()), (204, 0));
    assert!(nothing.headers.is_empty());

    let created = ok(get(&script, "/created").await);
    assert_eq!(created.status, 201);
    assert_eq!(json(&created), serde_json::json!({"id": 7}));

    let text = ok(get(&script, "/text").await);
    assert_eq!(
        header(&text, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text.body, Bytes::from_static(b"plain"));

    let html = ok(get(&script, "/html").await);
    assert_eq!(html.status, 202);
    assert_eq!(header(&html, "content-type"), Some("text/html"));
    assert_eq!(header(&html, "x-n"), Some("5"));
    assert_eq!(html.body, Bytes::from_static(b"<p>"));

    let bytes = ok(get(&script, "/bytes").await);
    assert_eq!(
        header(&bytes, "content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.body, Bytes::from_static(&[1, 2, 255]));
    let buffer = ok(get(&script, "/buffer").await);
    assert_eq!(buffer.body, Bytes::from_static(&[9]));

    let empty = ok(get(&script, "/empty").await);
    assert_eq!((empty.status, empty.body.len()), (404, 0));
    assert_eq!(header(&empty, "content-type"), None);

    let plain = ok(get(&script, "/not-a-response").await);
    assert_eq!(plain.status, 200);
    assert_eq!(
        json(&plain),
        serde_json::json!({"status": "ok", "extra": 1})
    );
    let more = ok(get(&script, "/status-and-more").await);
    assert_eq!(json(&more), serde_json::json!({"status": 200, "other": 1}));

    assert_eq!(
        json(&ok(get(&script, "/number").await)),
        serde_json::json!(3.5)
    );
    assert_eq!(
        json(&ok(get(&script, "/null").await)),
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn results_that_cannot_be_answers_are_bad_responses() {
    let script = compile(
        r#"
        app.get("/status", () => ({ status: 700 }));
        app.get("/header-name", () => ({ status: 200, headers: { "bad name": "x" } }));
        app.get("/header-value", () => ({ status: 200, headers: { "x-a": "a\nb" } }));
        app.get("/header-type", () => ({ status: 200, headers: { "x-a": {} } }));
        app.get("/managed", () => ({ status: 200, headers: { "Content-Length": "3" } }));
        app.get("/both", () => ({ status: 200, json: 1, body: "x" }));
        app.get("/body-type", () => ({ status: 200, body: { a: 1 } }));
        app.get("/no-content", () => ({ status: 204, body: "x" }));
        app.get("/bigint", () => ({ n: 10n }));
        app.get("/cycle", () => { const a = {}; a.self = a; return a; });
        app.get("/function", () => () => 1);
        "#,
    )
    .await;
    let cases = [
        ("/status", "status 700"),
        (
            "/header-name",
            "\"bad name\" is not a valid HTTP header name",
        ),
        ("/header-value", "x-a is not a valid header value"),
        ("/header-type", "must be a string, not an object"),
        ("/managed", "content-length is set by the server"),
        ("/both", "both `json` and `body`"),
        (
            "/body-type",
            "must be a string, a Uint8Array or an ArrayBuffer",
        ),
        ("/no-content", "a 204 response cannot have one"),
        ("/bigint", "cannot be sent: TypeError"),
        ("/cycle", "cannot be sent: TypeError"),
        ("/function", "is a function, which cannot be sent as JSON"),
    ];
    for (path, expected) in cases {
        let error = err(get(&script, path).await);
        let CallError::BadResponse(message) = &error else {
            panic!("{path}: expected BadResponse, got {error:?}");
        };
        assert!(message.contains(expected), "{path}: {message}");
    }
    // Still serving afterwards.
    err(get(&script, "/status").await);
}

#[tokio::test]
async fn async_handlers_and_promise_chains_are_awaited() {
    let script = compile(
        r#"
        const later = (value) => Promise.resolve(value).then((v) => v + 1);
        app.get("/async", async (req) => {
            const a = await later(1);
            const b = await new Promise((resolve) => resolve(a * 10));
            const c = await Promise.all([later(b), later(0)]);
            return { status: 201, json: c };
        });
        app.get("/promise", () => later(41));
        app.get("/rejects", async () => { await null; throw new RangeError("no luck"); });
        app.get("/never", () => new Promise(() => {}));
        await Promise.resolve();
        "#,
    )
    .await;
    let response = ok(get(&script, "/async").await);
    assert_eq!(response.status, 201);
    assert_eq!(json(&response), serde_json::json!([21, 1]));
    assert_eq!(
        json(&ok(get(&script, "/promise").await)),
        serde_json::json!(42)
    );

    let rejected = err(get(&script, "/rejects").await);
    assert!(
        matches!(&rejected, CallError::Exception { message, .. } if message == "RangeError: no luck"),
        "{rejected:?}"
    );
    let never = err(get(&script, "/never").await);
    assert!(
        matches!(&never, CallError::BadResponse(message) if message.contains("the handler's promise never settled")),
        "{never:?}"
    );
}

#[tokio::test]
async fn a_thrown_error_has_its_message_line_and_stack() {
    let script = compile(
        "app.get(\"/\", (req) => {\n  const x = 1;\n  return x();\n});\n\
         app.get(\"/string\", () => { throw \"plain text\"; });\n\
         app.get(\"/custom\", () => { throw new Error(\"custom failure\"); });\n",
    )
    .await;
    let error = err(get(&script, "/").await);
    let CallError::Exception {
        message,
        line,
        column,
        stack,
    } = &error
    else {
        panic!("expected an exception, got {error:?}");
    };
    assert!(message.starts_with("TypeError: "), "{message}");
    assert!(message.contains("not a function"), "{message}");
    assert_eq!(*line, Some(3));
    assert!(column.is_some());
    assert!(
        stack
            .as_deref()
            .is_some_and(|stack| stack.contains("app.js:3")),
        "{stack:?}"
    );
    let shown = error.to_string();
    assert!(shown.starts_with("TypeError: "), "{shown}");
    assert!(shown.contains("(app.js line 3, column "), "{shown}");

    let plain = err(get(&script, "/string").await);
    assert!(
        matches!(&plain, CallError::Exception { message, .. } if message == "uncaught exception: plain text"),
        "{plain:?}"
    );
    let custom = err(get(&script, "/custom").await);
    assert!(
        matches!(&custom, CallError::Exception { message, line: Some(6), .. } if message == "Error: custom failure"),
        "{custom:?}"
    );
}

// --- compile errors -------------------------------------------------------------------------

#[tokio::test]
async fn a_syntax_error_names_its_line_and_column() {
    let error = compile_error("app.get(\"/\", () => 1);\n\nconst = 5;\n").await;
    assert_eq!(error.line, Some(3));
    assert!(error.column.is_some());
    assert!(
        error.message.starts_with("SyntaxError: "),
        "{}",
        error.message
    );
    assert!(error.to_string().starts_with("line 3, column "), "{error}");
}

#[tokio::test]
async fn an_import_is_a_compile_error_naming_it() {
    let error = compile_error(
        "app.get(\"/\", () => 1);\nimport fs from \"fs\";\nfs.readFileSync(\"/\");\n",
    )
    .await;
    assert!(error.message.contains("\"fs\""), "{}", error.message);
    assert!(error.message.contains("cannot import"), "{}", error.message);
    assert_eq!(error.line, Some(2), "{error}");

    let std = compile_error("import * as std from 'std';\n").await;
    assert!(std.message.contains("\"std\""), "{}", std.message);
}

#[tokio::test]
async fn wrong_route_definitions_are_compile_errors_with_their_line() {
    let duplicate = compile_error("app.get(\"/a\", () => 1);\napp.get(\"/a\", () => 2);\n").await;
    assert!(
        duplicate.message.contains("GET /a is defined twice"),
        "{duplicate}"
    );
    assert_eq!(duplicate.line, Some(2));

    let missing = compile_error("\napp.post(\"/a\");\n").await;
    assert!(missing.message.starts_with("TypeError: "), "{missing}");
    assert_eq!(missing.line, Some(2));

    let not_function = compile_error("app.get(\"/a\", 42);\n").await;
    assert!(
        not_function
            .message
            .contains("the handler must be a function, not a number"),
        "{not_function}"
    );
    assert_eq!(not_function.line, Some(1));

    let not_string = compile_error("app.get(42, () => 1);\n").await;
    assert!(
        not_string.message.contains("the path must be a string"),
        "{not_string}"
    );

    let relative = compile_error("app.get(\"a\", () => 1);\n").await;
    assert!(
        relative.message.contains("must start with \"/\""),
        "{relative}"
    );

    let option = compile_error("app.get(\"/a\", { sumary: \"x\" }, () => 1);\n").await;
    assert!(
        option.message.contains("unknown option \"sumary\""),
        "{option}"
    );

    // The same path with another method, or with app.all, is not a duplicate.
    let script =
        compile("app.get(\"/a\", () => 1);\napp.post(\"/a\", () => 2);\napp.all(\"/a\", () => 3);")
            .await;
    assert_eq!(script.routes().len(), 3);
}

#[tokio::test]
async fn a_module_that_throws_or_never_finishes_does_not_compile() {
    let thrown = compile_error("app.get(\"/\", () => 1);\nthrow new Error(\"broken\");\n").await;
    assert_eq!(thrown.message, "Error: broken");
    assert_eq!(thrown.line, Some(2));

    let waiting = compile_error("await new Promise(() => {});\n").await;
    assert!(
        waiting.message.contains("top-level await never finished"),
        "{waiting}"
    );

    let started = Instant::now();
    let looping = compile_error_with("for (;;) {}\n", small_limits(50)).await;
    assert!(
        looping.message.contains("CPU-time limit of 50 ms"),
        "{looping}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let nul = compile_error("app.get(\"/\", () => 1);\n\0").await;
    assert_eq!((nul.line, nul.column), (Some(2), Some(1)));
}

#[tokio::test]
async fn routes_cannot_be_defined_from_a_handler() {
    let script = compile(r#"app.get("/", () => { app.get("/late", () => 1); return 1; });"#).await;
    let error = err(get(&script, "/").await);
    assert!(
        matches!(&error, CallError::Exception { message, .. } if message.contains("routes can only be defined while the module loads")),
        "{error:?}"
    );
}

// --- limits ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_infinite_loop_times_out_and_the_next_call_works() {
    let script = compile_with(
        r#"
        let count = 0;
        app.get("/loop", () => { for (;;) { count++; } });
        app.get("/catching", () => { try { for (;;) {} } catch (e) { return "caught"; } });
        app.get("/regex", () => /^(a+)+b$/.test("a".repeat(40)));
        app.get("/sort", () => Array.from({ length: 1000 }, (_, i) => i).sort(() => { for (;;) {} }));
        app.get("/ok", () => ({ fine: true }));
        "#,
        small_limits(50),
        Arc::new(MemoryKv::default()),
    )
    .await;
    for path in ["/loop", "/catching", "/regex", "/sort"] {
        let started = Instant::now();
        let error = err(get(&script, path).await);
        assert!(
            matches!(error, CallError::Timeout { limit } if limit == Duration::from_millis(50)),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            error.to_string(),
            "the handler ran longer than its CPU-time limit of 50 ms"
        );
        assert_eq!(
            json(&ok(get(&script, "/ok").await)),
            serde_json::json!({"fine": true})
        );
    }
}

#[tokio::test]
async fn an_infinite_loop_in_a_promise_job_times_out() {
    let script = compile_with(
        r#"
        app.get("/async", async () => { await null; for (;;) {} });
        app.get("/chain", () => {
            const spin = () => Promise.resolve().then(spin);
            return spin();
        });
        app.get("/left-behind", () => {
            const spin = () => Promise.resolve().then(spin);
            spin();
            return "answered";
        });
        let calls = 0;
        app.get("/count", () => ++calls);
        "#,
        small_limits(50),
        Arc::new(MemoryKv::default()),
    )
    .await;
    for path in ["/async", "/chain"] {
        let started = Instant::now();
        let error = err(get(&script, path).await);
        assert!(
            matches!(error, CallError::Timeout { .. }),
            "{path}: {error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // A timeout alone keeps the module's state.
    assert_eq!(
        json(&ok(get(&script, "/count").await)),
        serde_json::json!(1)
    );
    assert_eq!(
        json(&ok(get(&script, "/count").await)),
        serde_json::json!(2)
    );
    // The answer goes out; the jobs it left behind are stopped when they run past the limit,
    // and the module is evaluated afresh (its state starts over) so they do not eat later calls.
    assert_eq!(json(&ok(get(&script, "/left-behind").await)), "answered");
    for expected in 1..=3 {
        assert_eq!(
            json(&ok(get(&script, "/count").await)),
            serde_json::json!(expected)
        );
    }
}

#[tokio::test]
async fn a_busy_script_does_not_slow_another() {
    let slow = compile_with(
        r#"app.get("/", () => { const end = Date.now() + 1500; while (Date.now() < end) {} return "slow"; });"#,
        small_limits(5000),
        Arc::new(MemoryKv::default()),
    )
    .await;
    let fast = compile(r#"app.get("/", () => "fast");"#).await;
    let slow_call = tokio::spawn(slow.call(0, request("GET", "/")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..10 {
        assert_eq!(json(&ok(get(&fast, "/").await)), "fast");
    }
    assert!(
        !slow_call.is_finished(),
        "the fast script waited for the slow one"
    );
    match slow_call.await {
        Ok(result) => assert_eq!(json(&ok(result)), "slow"),
        Err(error) => panic!("the slow call's task failed: {error}"),
    }
}

#[tokio::test]
async fn deep_recursion_is_an_exception_and_the_next_call_works() {
    let script = compile(
        r#"
        const down = (n) => down(n + 1) + 1;
        app.get("/deep", () => down(0));
        app.get("/json", () => { let a = []; for (let i = 0; i < 100000; i++) a = [a]; return a; });
        app.get("/ok", () => "still here");
        "#,
    )
    .await;
    let error = err(get(&script, "/deep").await);
    assert!(
        matches!(&error, CallError::Exception { message, .. } if message.contains("Maximum call stack size exceeded")),
        "{error:?}"
    );
    assert_eq!(json(&ok(get(&script, "/ok").await)), "still here");
    // Serialising a deeply nested value hits the same limit, not a crash.
    let nested = err(get(&script, "/json").await);
    assert!(
        matches!(&nested, CallError::BadResponse(message) if message.contains("stack")),
        "{nested:?}"
    );
    assert_eq!(json(&ok(get(&script, "/ok").await)), "still here");
}

#[tokio::test]
async fn a_memory_bomb_runs_out_of_memory_and_the_next_call_works() {
    let limits = Limits {
        memory_bytes: 8 * 1024 * 1024,
        cpu_time: Duration::from_secs(10),
        queue: 4,
    };
    let script = compile_with(
        r#"
        const kept = [];
        app.get("/bomb", () => { const a = []; for (;;) a.push("x".repeat(1000) + a.length); });
        app.get("/hoard", () => { for (;;) kept.push("y".repeat(1000) + kept.length); });
        app.get("/catching", () => {
            try { const a = []; for (;;) a.push("z".repeat(1000) + a.length); }
            catch (e) { throw e; }
        });
        app.get("/ok", () => ({ kept: kept.length > 0 }));
        "#,
        limits,
        Arc::new(MemoryKv::default()),
    )
    .await;
    for path in ["/bomb", "/catching", "/hoard"] {
        let error = err(get(&script, path).await);
        assert!(
            matches!(error, CallError::OutOfMemory { limit } if limit == 8 * 1024 * 1024),
            "{path}: {error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the script ran out of its 8 MiB memory limit"
        );
        // The next call works; after /hoard the module was evaluated afresh (kept is empty).
        let next = json(&ok(get(&script, "/ok").await));
        assert_eq!(next, serde_json::json!({"kept": false}), "after {path}");
    }
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once() {
    let limits = Limits {
        queue: 1,
        cpu_time: Duration::from_secs(10),
        ..Limits::default()
    };
    let script = compile_with(
        r#"app.get("/slow", () => { const end = Date.now() + 300; while (Date.now() < end) {} return "done"; });"#,
        limits,
        Arc::new(MemoryKv::default()),
    )
    .await;
    let calls: Vec<_> = (0..3)
        .map(|_| script.call(0, request("GET", "/slow")))
        .collect();
    let mut busy = 0;
    let mut done = 0;
    for call in calls {
        match call.await {
            Err(CallError::Busy) => busy += 1,
            Ok(response) => {
                assert_eq!(json(&response), "done");
                done += 1;
            }
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    assert!(busy >= 1, "busy {busy}, done {done}");
    assert!(done >= 1, "busy {busy}, done {done}");
    assert_eq!(json(&ok(get(&script, "/slow").await)), "done");
}

#[tokio::test]
async fn a_call_to_a_route_that_does_not_exist_is_refused() {
    let script = compile(r#"app.get("/", () => 1);"#).await;
    let error = err(script.call(5, request("GET", "/")).await);
    assert!(matches!(error, CallError::BadResponse(_)), "{error:?}");
}

#[tokio::test]
async fn dropping_the_script_ends_its_thread() {
    // State of all kinds is left in the runtime: freeing it must not trip QuickJS's checks.
    let script = compile(
        r#"
        const cycle = { name: "a" }; cycle.self = cycle;
        globalThis.pending = new Promise(() => {});
        const closures = Array.from({ length: 100 }, (_, i) => () => i + cycle.name);
        app.get("/", () => 1);
        app.get("/never", () => new Promise(() => {}));
        app.post("/", () => { Promise.reject(new Error("unhandled")); return closures.length; });
        "#,
    )
    .await;
    err(get(&script, "/never").await);
    let index = route(&script, Some(Method::POST), "/");
    assert_eq!(
        json(&ok(script.call(index, request("POST", "/")).await)),
        serde_json::json!(100)
    );
    let alive = script.thread_alive.clone();
    assert!(alive.upgrade().is_some());
    let pending = script.call(0, request("GET", "/"));
    drop(script);
    // A call queued before the drop is still answered.
    assert_eq!(json(&ok(pending.await)), serde_json::json!(1));
    let started = Instant::now();
    while alive.upgrade().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the thread is still running"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_sandbox_has_no_host_access() {
    let script = compile(
        r#"
        app.get("/", async () => {
            const names = ["require", "process", "std", "os", "fetch", "setTimeout", "Deno",
                "performance", "print", "scriptArgs", "XMLHttpRequest"];
            const present = names.filter((name) => typeof globalThis[name] !== "undefined");
            let imported;
            try { await import("os"); imported = "loaded"; } catch (e) { imported = String(e); }
            return { present, imported, standard: typeof JSON.parse + typeof Map + typeof Promise };
        });
        "#,
    )
    .await;
    let answer = json(&ok(get(&script, "/").await));
    assert_eq!(answer["present"], serde_json::json!([]));
    assert!(
        answer["imported"]
            .as_str()
            .is_some_and(|text| text.contains("Error")),
        "{answer}"
    );
    assert_eq!(answer["standard"], "functionfunctionfunction");
}

// --- kv and console -------------------------------------------------------------------------

#[tokio::test]
async fn kv_gets_sets_deletes_and_lists_through_the_store() {
    let store = Arc::new(MemoryKv::default());
    let script = compile_with(
        r#"
        app.post("/items/{id}", (req) => { kv.set("item:" + req.params.id, req.body); return undefined; });
        app.get("/items/{id}", (req) => kv.get("item:" + req.params.id) ?? { status: 404 });
        app.delete("/items/{id}", (req) => kv.delete("item:" + req.params.id));
        app.get("/items", (req) => kv.list("item:", { limit: Number(req.query.limit ?? 100) }));
        app.get("/errors", () => {
            const errors = [];
            for (const f of [() => kv.get(""), () => kv.get("k".repeat(257)), () => kv.get(5),
                             () => kv.set("a"), () => kv.set("a", () => 1),
                             () => kv.list("", { limit: 0 }), () => kv.list("", { limit: 1001 })]) {
                try { f(); errors.push(null); } catch (e) { errors.push(e.name); }
            }
            return errors;
        });
        kv.set("loaded", true);
        "#,
        Limits::default(),
        store.clone(),
    )
    .await;
    assert_eq!(store.get("loaded").ok().flatten().as_deref(), Some("true"));

    for (id, body) in [
        ("2", r#"{"name":"two"}"#),
        ("1", r#"{"name":"one"}"#),
        ("3", "[3]"),
    ] {
        let index = route(&script, Some(Method::POST), "/items/{id}");
        let mut request = request("POST", &format!("/items/{id}"));
        request.params = vec![("id".into(), id.into())];
        request.headers = vec![("content-type".into(), "application/json".into())];
        request.body = Bytes::from(body.to_owned());
        assert_eq!(ok(script.call(index, request).await).status, 204);
    }
    assert_eq!(
        store.get("item:1").ok().flatten().as_deref(),
        Some(r#"{"name":"one"}"#)
    );

    let by_id = |method: Method, id: &str| {
        let index = route(&script, Some(method.clone()), "/items/{id}");
        let mut request = request(method.as_str(), &format!("/items/{id}"));
        request.params = vec![("id".into(), id.into())];
        script.call(index, request)
    };
    assert_eq!(
        json(&ok(by_id(Method::GET, "2").await)),
        serde_json::json!({"name": "two"})
    );
    assert_eq!(ok(by_id(Method::GET, "9").await).status, 404);

    let list = ok(get(&script, "/items").await);
    assert_eq!(
        json(&list),
        serde_json::json!([
            {"key": "item:1", "value": {"name": "one"}},
            {"key": "item:2", "value": {"name": "two"}},
            {"key": "item:3", "value": [3]},
        ])
    );
    let mut limited = request("GET", "/items");
    limited.query = Some("limit=2".into());
    let limited = ok(script
        .call(route(&script, Some(Method::GET), "/items"), limited)
        .await);
    assert_eq!(json(&limited).as_array().map(Vec::len), Some(2));

    assert_eq!(
        json(&ok(by_id(Method::DELETE, "2").await)),
        serde_json::json!(true)
    );
    assert_eq!(
        json(&ok(by_id(Method::DELETE, "2").await)),
        serde_json::json!(false)
    );
    assert_eq!(store.get("item:2").ok().flatten(), None);

    assert_eq!(
        json(&ok(get(&script, "/errors").await)),
        serde_json::json!([
            "RangeError",
            "RangeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "RangeError",
            "RangeError"
        ])
    );
}

/// A store that is always full.
struct FullKv;

impl Kv for FullKv {
    fn get(&self, _: &str) -> Result<Option<String>, KvError> {
        Ok(None)
    }
    fn set(&self, _: &str, _: &str) -> Result<(), KvError> {
        Err(KvError::Limit(
            "kv is full: the project may store at most 10 keys".into(),
        ))
    }
    fn delete(&self, _: &str) -> Result<bool, KvError> {
        Err(KvError::Store("the store is unavailable".into()))
    }
    fn list(&self, _: &str, _: usize) -> Result<Vec<(String, String)>, KvError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn kv_errors_become_exceptions_with_their_message() {
    let script = compile_with(
        r#"
        app.get("/set", () => { kv.set("a", 1); return "stored"; });
        app.get("/caught", () => { try { kv.delete("a"); } catch (e) { return e.message; } });
        "#,
        Limits::default(),
        Arc::new(FullKv),
    )
    .await;
    let error = err(get(&script, "/set").await);
    assert!(
        matches!(&error, CallError::Exception { message, line: Some(2), .. }
            if message == "Error: kv is full: the project may store at most 10 keys"),
        "{error:?}"
    );
    assert_eq!(
        json(&ok(get(&script, "/caught").await)),
        "the store is unavailable"
    );
}

#[tokio::test]
async fn console_logging_does_not_disturb_the_handler() {
    let script = compile(
        r#"
        console.log("loading", 1);
        app.get("/", () => {
            const cycle = {}; cycle.self = cycle;
            console.log("text", 1, true, null, undefined, { a: [1] }, [2], 10n, Symbol("s"));
            console.info(cycle, () => 1, function named() {}, new TypeError("shown"));
            console.warn("x".repeat(100000));
            console.error();
            console.debug({ toJSON() { throw new Error("no"); } });
            return "logged";
        });
        "#,
    )
    .await;
    assert_eq!(json(&ok(get(&script, "/").await)), "logged");
}

/// Collects what `tracing` writes, for the console test.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        match self.0.lock() {
            Ok(captured) => String::from_utf8_lossy(&captured).into_owned(),
            Err(poisoned) => String::from_utf8_lossy(&poisoned.into_inner()).into_owned(),
        }
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut captured) => captured.extend_from_slice(bytes),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(bytes),
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn console_logs_carry_the_project_and_the_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // nextest (the test command) runs every test in a process of its own.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other tracing subscriber in this test's process (run with nextest)");
    let script = compile(
        r#"
        console.log("module loading");
        app.get("/", () => { console.warn("handling", { n: 1 }, [2]); return 1; });
        "#,
    )
    .await;
    let mut request = request("GET", "/");
    request.id = "req-42".into();
    ok(script.call(0, request).await);

    let text = captured.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["target"] == "switchyard::script")
        .collect();
    let loading = lines
        .iter()
        .find(|line| line["fields"]["message"] == "module loading")
        .unwrap_or_else(|| panic!("no loading line in {text}"));
    assert_eq!(loading["level"], "INFO");
    assert_eq!(loading["fields"]["project"], "test");
    assert!(loading["fields"].get("request_id").is_none(), "{loading}");
    let handling = lines
        .iter()
        .find(|line| line["fields"]["message"] == r#"handling {"n":1} [2]"#)
        .unwrap_or_else(|| panic!("no handling line in {text}"));
    assert_eq!(handling["level"], "WARN");
    assert_eq!(handling["fields"]["request_id"], "req-42");
}

// --- helpers -------------------------------------------------------------------------------

#[test]
fn error_messages_read_well() {
    assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
    assert_eq!(human_bytes(512 * 1024), "512 KiB");
    assert_eq!(human_bytes(1000), "1000 bytes");
    assert_eq!(
        CallError::Timeout {
            limit: Duration::from_secs(1)
        }
        .to_string(),
        "the handler ran longer than its CPU-time limit of 1000 ms"
    );
    assert_eq!(
        CallError::OutOfMemory {
            limit: 64 * 1024 * 1024
        }
        .to_string(),
        "the script ran out of its 64 MiB memory limit"
    );
    assert_eq!(
        CallError::Exception {
            message: "TypeError: x is not a function".into(),
            line: Some(3),
            column: Some(7),
            stack: None,
        }
        .to_string(),
        "TypeError: x is not a function (app.js line 3, column 7)"
    );
    let compile = CompileError {
        line: Some(2),
        column: Some(5),
        message: "SyntaxError: unexpected token".into(),
    };
    assert_eq!(
        compile.to_string(),
        "line 2, column 5: SyntaxError: unexpected token"
    );
}

#[test]
fn locations_are_read_from_stacks() {
    assert_eq!(location("    at app.js:3:7\n"), (Some(3), Some(7)));
    assert_eq!(
        location("    at get (native)\n    at <anonymous> (app.js:12:5)\n"),
        (Some(12), Some(5))
    );
    assert_eq!(location("    at f (other.js:1:1)\n"), (None, None));
    assert_eq!(location(""), (None, None));
}

#[test]
fn request_parts_are_decoded() {
    assert!(is_json("application/json"));
    assert!(is_json("Application/JSON; charset=utf-8"));
    assert!(is_json("application/problem+json"));
    assert!(!is_json("text/plain"));
    assert!(!is_json("+json"));
    assert_eq!(
        query_pairs(Some("a=1&b=2&a=3&c")),
        vec![
            ("a".to_owned(), vec!["1".to_owned(), "3".to_owned()]),
            ("b".to_owned(), vec!["2".to_owned()]),
            ("c".to_owned(), vec![String::new()]),
        ]
    );
    assert_eq!(query_pairs(None), vec![]);
    assert_eq!(
        joined_headers(&[
            ("a".into(), "1".into()),
            ("B".into(), "2".into()),
            ("a".into(), "3".into())
        ]),
        vec![
            ("a".to_owned(), "1, 3".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ]
    );
}

#[tokio::test]
async fn running_out_of_memory_is_told_apart_from_a_thrown_null_whatever_the_layout() {
    // QuickJS throws `null` when it cannot even make its "out of memory" error, which
    // depends on where in its memory the limit falls: shift it (with module data of several
    // sizes) and the answer must stay the same.
    let limits = Limits {
        memory_bytes: 8 * 1024 * 1024,
        cpu_time: Duration::from_secs(10),
        queue: 4,
    };
    for n in 0..8 {
        let source = format!(
            r#"const pad = Array.from({{ length: {n} }}, (_, i) => "p".repeat(i * 37));
               app.get("/bomb", () => {{ const a = []; for (;;) a.push("x".repeat(1000) + a.length); }});
               app.get("/null", () => {{ throw null; }});"#
        );
        let script = compile_with(&source, limits.clone(), Arc::new(MemoryKv::default())).await;
        let error = err(get(&script, "/bomb").await);
        assert!(
            matches!(error, CallError::OutOfMemory { .. }),
            "{n}: {error:?}"
        );
        let error = err(get(&script, "/null").await);
        assert!(
            matches!(&error, CallError::Exception { message, .. } if message == "the script threw null"),
            "{n}: {error:?}"
        );
    }
}
