//! Conversions between Rust and JavaScript values on the script thread: `req` from a
//! [`Request`], a [`Response`] from what a handler returned, exceptions into plain Rust data,
//! and values into text for `console`.
//!
//! Nothing here keeps a JavaScript value past the call that made it: every result is either
//! a value for the caller to use at once, or plain Rust data that may leave `Context::with`.
//! Every path that swallows a JavaScript error also clears it from the context, so a stale
//! exception can never surface in a later, unrelated call.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use rquickjs::{
    ArrayBuffer, CaughtError, Ctx, Error as JsError, Object, Promise, Type, TypedArray, Value,
    convert::Coerced, promise::PromiseState,
};

use super::{Request, Response};

/// The file name the module is compiled under; error locations are looked up by it.
pub(super) const MODULE_NAME: &str = "app.js";

/// The message of the error QuickJS throws when recursion goes past its stack limit.
pub(super) const STACK_OVERFLOW: &str = "RangeError: Maximum call stack size exceeded";

/// A JavaScript exception (or an engine error), as plain Rust data.
#[derive(Debug, Clone)]
pub(super) struct Thrown {
    /// "TypeError: x is not a function", or the thrown value as text.
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub stack: Option<String>,
    /// What was thrown gives no reason (`null`, or an engine error such as a failed
    /// allocation): the caller looks at memory use to tell whether it was out of memory.
    pub unexplained: bool,
}

impl Thrown {
    fn plain(message: String, unexplained: bool) -> Self {
        Thrown {
            message,
            line: None,
            column: None,
            stack: None,
            unexplained,
        }
    }

    /// QuickJS's own out-of-memory error.
    pub fn is_out_of_memory(&self) -> bool {
        self.message == "InternalError: out of memory"
    }
}

/// Where in a call something went wrong, which decides what the caller is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Building `req`.
    Request,
    /// The handler itself, or the promise it returned.
    Handler,
    /// Turning the handler's result into an answer.
    Response,
}

/// Why a call produced no response, before it is classified into a `CallError` (which needs
/// the interrupt flag and the runtime's memory use, known only outside `Context::with`).
#[derive(Debug)]
pub(super) enum Failure {
    Thrown(Thrown, Stage),
    BadRequest(String),
    BadResponse(String),
    /// The handler's promise is still pending and no job is left that could settle it.
    NeverSettled,
}

/// Turns an error of a rquickjs call into a [`Thrown`], taking the pending exception (if any)
/// off the context.
pub(super) fn thrown<'js>(ctx: &Ctx<'js>, error: JsError) -> Thrown {
    match CaughtError::from_error(ctx, error) {
        CaughtError::Exception(exception) => {
            let object = exception.as_object();
            let name: Option<String> = property(ctx, object, "name");
            let message = exception_message(ctx, object);
            let message = match name {
                Some(name) if !name.is_empty() && !message.is_empty() => {
                    format!("{name}: {message}")
                }
                Some(name) if !name.is_empty() => name,
                _ => message,
            };
            let stack: Option<String> = property(ctx, object, "stack");
            let (line, column) = stack.as_deref().map(location).unwrap_or((None, None));
            Thrown {
                message,
                line,
                column,
                stack: stack.filter(|stack| !stack.trim().is_empty()),
                unexplained: false,
            }
        }
        CaughtError::Value(value) => {
            let unexplained = value.is_null() || value.is_undefined();
            let message = if unexplained {
                format!("the script threw {}", describe(ctx, &value))
            } else {
                format!("uncaught exception: {}", describe(ctx, &value))
            };
            Thrown::plain(message, unexplained)
        }
        CaughtError::Error(JsError::Allocation) => {
            Thrown::plain("the script engine could not allocate memory".into(), true)
        }
        CaughtError::Error(error) => {
            Thrown::plain(format!("the script engine failed: {error}"), true)
        }
    }
}

fn exception_message<'js>(ctx: &Ctx<'js>, object: &Object<'js>) -> String {
    match object.get::<_, Option<Coerced<String>>>("message") {
        Ok(message) => message.map(|message| message.0).unwrap_or_default(),
        Err(error) => {
            clear(ctx, &error);
            String::new()
        }
    }
}

/// A property of an object, or `None` if reading it failed (the error is cleared).
pub(super) fn property<'js, T: rquickjs::FromJs<'js>>(
    ctx: &Ctx<'js>,
    object: &Object<'js>,
    key: &str,
) -> Option<T> {
    match object.get::<_, Option<T>>(key) {
        Ok(value) => value,
        Err(error) => {
            clear(ctx, &error);
            None
        }
    }
}

/// Drops the pending exception an error left on the context, if any.
pub(super) fn clear(ctx: &Ctx<'_>, error: &JsError) {
    if error.is_exception() {
        drop(ctx.catch());
    }
}

/// The first `app.js:LINE:COLUMN` in a QuickJS stack trace: where the error was thrown, or
/// for a syntax error where the parser stopped.
pub(super) fn location(stack: &str) -> (Option<u32>, Option<u32>) {
    let needle = "app.js:";
    let mut rest = stack;
    while let Some(at) = rest.find(needle) {
        rest = &rest[at + needle.len()..];
        let mut numbers = rest
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .map(|digits| digits.parse::<u32>().ok());
        let line = numbers.next().flatten();
        let column = if rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .starts_with(':')
        {
            numbers.next().flatten()
        } else {
            None
        };
        if line.is_some() {
            return (line, column);
        }
    }
    (None, None)
}

/// Runs the job queue until `promise` settles. `Err(None)` when it can never settle (no job
/// is left), `Err(Some(_))` when it rejected or a job failed.
pub(super) fn settle<'js>(
    ctx: &Ctx<'js>,
    promise: &Promise<'js>,
    interrupted: &dyn Fn() -> bool,
) -> Result<Value<'js>, Option<Thrown>> {
    loop {
        match promise.state() {
            PromiseState::Resolved | PromiseState::Rejected => {
                return match promise.result::<Value>() {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(error)) => Err(Some(thrown(ctx, error))),
                    None => Err(None),
                };
            }
            PromiseState::Pending => {
                if interrupted() {
                    return Err(Some(Thrown::plain("interrupted".into(), false)));
                }
                if !ctx.execute_pending_job() {
                    if interrupted() {
                        return Err(Some(Thrown::plain("interrupted".into(), false)));
                    }
                    return Err(None);
                }
            }
        }
    }
}

/// Builds the `req` object a handler receives.
pub(super) fn request_object<'js>(
    ctx: &Ctx<'js>,
    request: &Request,
) -> Result<Object<'js>, Failure> {
    let fail = |error: JsError| Failure::Thrown(thrown(ctx, error), Stage::Request);
    let req = Object::new(ctx.clone()).map_err(fail)?;
    req.set("method", request.method.as_str()).map_err(fail)?;
    req.set("path", request.path.as_str()).map_err(fail)?;

    let params = Object::new(ctx.clone()).map_err(fail)?;
    for (name, value) in &request.params {
        params.set(name.as_str(), value.as_str()).map_err(fail)?;
    }
    req.set("params", params).map_err(fail)?;

    let query = Object::new(ctx.clone()).map_err(fail)?;
    for (name, values) in query_pairs(request.query.as_deref()) {
        if let [value] = values.as_slice() {
            query.set(name, value.as_str()).map_err(fail)?;
        } else {
            query.set(name, values).map_err(fail)?;
        }
    }
    req.set("query", query).map_err(fail)?;

    let headers = Object::new(ctx.clone()).map_err(fail)?;
    for (name, value) in joined_headers(&request.headers) {
        headers.set(name, value).map_err(fail)?;
    }
    req.set("headers", headers).map_err(fail)?;

    req.set("body", body_value(ctx, request)?).map_err(fail)?;
    req.set("id", request.id.as_str()).map_err(fail)?;
    req.set("auth", auth_value(ctx, request)?).map_err(fail)?;
    Ok(req)
}

/// `req.auth`: the caller the project's policy verified (`subject`, `scopes`, `permissions`,
/// `method`, `claims`), or `null`.
fn auth_value<'js>(ctx: &Ctx<'js>, request: &Request) -> Result<Value<'js>, Failure> {
    let fail = |error: JsError| Failure::Thrown(thrown(ctx, error), Stage::Request);
    let Some(identity) = &request.auth else {
        return Ok(Value::new_null(ctx.clone()));
    };
    let auth = Object::new(ctx.clone()).map_err(fail)?;
    auth.set("subject", &*identity.subject).map_err(fail)?;
    let list = |items: &[Box<str>]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    auth.set("scopes", list(identity.scopes())).map_err(fail)?;
    auth.set("permissions", list(identity.permissions()))
        .map_err(fail)?;
    auth.set("method", identity.method).map_err(fail)?;
    let claims = match identity.claims() {
        None => Value::new_null(ctx.clone()),
        Some(claims) => {
            let text = serde_json::to_string(claims).unwrap_or_else(|_| "null".into());
            ctx.json_parse(text).map_err(fail)?
        }
    };
    auth.set("claims", claims).map_err(fail)?;
    Ok(auth.into_value())
}

/// Form-decoded query parameters in order of first appearance; a repeated name collects
/// all its values.
pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, Vec<String>)> {
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match pairs.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => values.push(value.into_owned()),
            None => pairs.push((name.into_owned(), vec![value.into_owned()])),
        }
    }
    pairs
}

/// Headers by lower-case name in order of first appearance, repeated ones joined by ", ".
pub(super) fn joined_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut joined: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match joined.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => {
                values.push_str(", ");
                values.push_str(value);
            }
            None => joined.push((name, value.clone())),
        }
    }
    joined
}

/// Whether a `content-type` names JSON: `application/json` or any `…+json`.
pub(super) fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.contains('/') && essence.ends_with("+json"))
}

fn body_value<'js>(ctx: &Ctx<'js>, request: &Request) -> Result<Value<'js>, Failure> {
    if request.body.is_empty() {
        return Ok(Value::new_null(ctx.clone()));
    }
    let text = std::str::from_utf8(&request.body).map_err(|error| {
        Failure::BadRequest(format!(
            "the request body is not valid UTF-8 text (the bytes at offset {} are not); \
             scripts accept JSON and text bodies",
            error.valid_up_to()
        ))
    })?;
    let json = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .is_some_and(|(_, value)| is_json(value));
    if !json {
        return rquickjs::String::from_str(ctx.clone(), text)
            .map(|text| text.into_value())
            .map_err(|error| Failure::Thrown(thrown(ctx, error), Stage::Request));
    }
    match ctx.json_parse(text) {
        Ok(value) => Ok(value),
        Err(error) => {
            let failure = thrown(ctx, error);
            if failure.is_out_of_memory() || failure.unexplained {
                return Err(Failure::Thrown(failure, Stage::Request));
            }
            // serde_json says where the JSON goes wrong more precisely than QuickJS does.
            let detail = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(error) => error.to_string(),
                Ok(_) => failure.message,
            };
            Err(Failure::BadRequest(format!(
                "the request body is not valid JSON: {detail}"
            )))
        }
    }
}

/// Headers a script may not set: the server frames the answer itself.
const MANAGED_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const JSON_TYPE: &str = "application/json";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";
const BINARY_TYPE: &str = "application/octet-stream";

/// Turns what a handler returned (already awaited) into a response.
pub(super) fn response_from<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<Response, Failure> {
    if value.is_undefined() {
        return Ok(Response {
            status: 204,
            headers: Vec::new(),
            body: Bytes::new(),
        });
    }
    if let Some((object, status)) = response_object(ctx, &value)? {
        return response_from_object(ctx, &object, status);
    }
    let body = json_text(ctx, value, "the handler's result")?;
    Ok(Response {
        status: 200,
        headers: vec![("content-type".into(), JSON_TYPE.into())],
        body: Bytes::from(body),
    })
}

const RESPONSE_KEYS: [&str; 4] = ["status", "headers", "json", "body"];

/// The object and its status if `value` is a response object: a plain object whose `status`
/// is an integer and whose keys are all among `status, headers, json, body`.
fn response_object<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
) -> Result<Option<(Object<'js>, f64)>, Failure> {
    let Some(object) = value.as_object() else {
        return Ok(None);
    };
    if value.is_array() || value.is_function() || value.is_promise() || value.is_error() {
        return Ok(None);
    }
    let fail = |error: JsError| Failure::Thrown(thrown(ctx, error), Stage::Response);
    let mut has_status = false;
    for key in object.keys::<String>() {
        let key = key.map_err(fail)?;
        if key == "status" {
            has_status = true;
        } else if !RESPONSE_KEYS.contains(&key.as_str()) {
            return Ok(None);
        }
    }
    if !has_status {
        return Ok(None);
    }
    let status: Value = object.get("status").map_err(fail)?;
    match status.as_number() {
        Some(status) if status.fract() == 0.0 => Ok(Some((object.clone(), status))),
        _ => Ok(None),
    }
}

fn response_from_object<'js>(
    ctx: &Ctx<'js>,
    object: &Object<'js>,
    status: f64,
) -> Result<Response, Failure> {
    let fail = |error: JsError| Failure::Thrown(thrown(ctx, error), Stage::Response);
    if !(100.0..=599.0).contains(&status) {
        return Err(Failure::BadResponse(format!(
            "the handler returned status {status}, which is not an HTTP status (100 to 599)"
        )));
    }
    // In range and whole, so the conversion is exact.
    let status = status as u16;

    let mut headers = response_headers(ctx, object.get("headers").map_err(fail)?)?;
    let json: Value = object.get("json").map_err(fail)?;
    let body: Value = object.get("body").map_err(fail)?;
    let has_json = !json.is_undefined();
    let has_body = !body.is_undefined() && !body.is_null();
    if has_json && has_body {
        return Err(Failure::BadResponse(
            "the handler's response has both `json` and `body`; give one of them".into(),
        ));
    }
    let (bytes, content_type) = if has_json {
        let text = json_text(ctx, json, "the response's `json`")?;
        (Some(Bytes::from(text)), JSON_TYPE)
    } else if has_body {
        let (bytes, content_type) = body_bytes(ctx, body)?;
        (Some(bytes), content_type)
    } else {
        (None, "")
    };

    let Some(bytes) = bytes else {
        return Ok(Response {
            status,
            headers,
            body: Bytes::new(),
        });
    };
    if status < 200 || status == 204 || status == 304 {
        return Err(Failure::BadResponse(format!(
            "the handler's response has status {status} and a body, but a {status} response \
             cannot have one"
        )));
    }
    if !headers.iter().any(|(name, _)| name == "content-type") {
        headers.push(("content-type".into(), content_type.into()));
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn response_headers<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
) -> Result<Vec<(String, String)>, Failure> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let fail = |error: JsError| Failure::Thrown(thrown(ctx, error), Stage::Response);
    let not_object = || {
        Failure::BadResponse(
            "the response's `headers` must be an object of header names and string values".into(),
        )
    };
    if value.is_array() || value.is_function() {
        return Err(not_object());
    }
    let Some(object) = value.as_object() else {
        return Err(not_object());
    };
    let mut headers = Vec::new();
    for key in object.keys::<String>() {
        let key = key.map_err(fail)?;
        let header = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
            Failure::BadResponse(format!(
                "the response header name {key:?} is not a valid HTTP header name"
            ))
        })?;
        let name = header.as_str().to_owned();
        if MANAGED_HEADERS.contains(&name.as_str()) {
            return Err(Failure::BadResponse(format!(
                "the response header {name} is set by the server; a script cannot set it"
            )));
        }
        let value: Value = object.get(key.as_str()).map_err(fail)?;
        let text = match value.type_of() {
            Type::String | Type::Int | Type::Float | Type::Bool => {
                value.get::<Coerced<String>>().map_err(fail)?.0
            }
            _ => {
                return Err(Failure::BadResponse(format!(
                    "the value of the response header {name} must be a string, not {}",
                    type_name(&value)
                )));
            }
        };
        if HeaderValue::from_str(&text).is_err() {
            return Err(Failure::BadResponse(format!(
                "the value of the response header {name} is not a valid header value \
                 (it must be visible ASCII text without line breaks)"
            )));
        }
        headers.push((name, text));
    }
    Ok(headers)
}

fn body_bytes<'js>(ctx: &Ctx<'js>, body: Value<'js>) -> Result<(Bytes, &'static str), Failure> {
    if let Some(text) = body.as_string() {
        let text = text
            .to_string()
            .map_err(|error| Failure::Thrown(thrown(ctx, error), Stage::Response))?;
        return Ok((Bytes::from(text), TEXT_TYPE));
    }
    let detached =
        || Failure::BadResponse("the response's `body` is a detached ArrayBuffer".into());
    if let Some(object) = body.as_object() {
        if let Ok(array) = TypedArray::<u8>::from_object(object.clone()) {
            // SAFETY: the slice is copied before any JavaScript runs again.
            let bytes = unsafe { array.as_bytes() }.map(Bytes::copy_from_slice);
            return bytes.map(|bytes| (bytes, BINARY_TYPE)).ok_or_else(detached);
        }
        if let Some(buffer) = ArrayBuffer::from_object(object.clone()) {
            // SAFETY: as above.
            let bytes = unsafe { buffer.as_bytes() }.map(Bytes::copy_from_slice);
            return bytes.map(|bytes| (bytes, BINARY_TYPE)).ok_or_else(detached);
        }
    }
    Err(Failure::BadResponse(format!(
        "the response's `body` must be a string, a Uint8Array or an ArrayBuffer, not {}; \
         use `json` to send other values",
        type_name(&body)
    )))
}

/// `JSON.stringify(value)`, or a failure saying why `what` cannot be JSON.
fn json_text<'js>(ctx: &Ctx<'js>, value: Value<'js>, what: &str) -> Result<String, Failure> {
    let kind = type_name(&value);
    match ctx.json_stringify(value) {
        Ok(Some(text)) => text
            .to_string()
            .map_err(|error| Failure::Thrown(thrown(ctx, error), Stage::Response)),
        Ok(None) => Err(Failure::BadResponse(format!(
            "{what} is {kind}, which cannot be sent as JSON"
        ))),
        Err(error) => Err(Failure::Thrown(thrown(ctx, error), Stage::Response)),
    }
}

/// "a function", "a BigInt", "an object", for messages.
pub(super) fn type_name(value: &Value<'_>) -> &'static str {
    match value.type_of() {
        Type::Undefined | Type::Uninitialized => "undefined",
        Type::Null => "null",
        Type::Bool => "a boolean",
        Type::Int | Type::Float => "a number",
        Type::String => "a string",
        Type::Symbol => "a symbol",
        Type::BigInt => "a BigInt",
        Type::Array => "an array",
        Type::Function | Type::Constructor => "a function",
        Type::Promise => "a promise",
        Type::Exception => "an Error",
        _ => "an object",
    }
}

/// A value as a browser console shows it: strings as they are, errors as "Name: message",
/// objects and arrays as JSON, anything else as `String(value)`.
pub(super) fn describe<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    match value.type_of() {
        Type::String => value
            .as_string()
            .and_then(|text| text.to_string().ok())
            .unwrap_or_default(),
        Type::Undefined | Type::Uninitialized => "undefined".into(),
        Type::Null => "null".into(),
        Type::Symbol => "Symbol()".into(),
        Type::BigInt => format!("{}n", coerce(ctx, value).unwrap_or_default()),
        Type::Function | Type::Constructor => {
            let name: Option<String> = value
                .as_object()
                .and_then(|object| property(ctx, object, "name"));
            match name {
                Some(name) if !name.is_empty() => format!("[Function: {name}]"),
                _ => "[Function (anonymous)]".into(),
            }
        }
        Type::Exception => {
            let Some(object) = value.as_object() else {
                return String::new();
            };
            let name: Option<String> = property(ctx, object, "name");
            let message = exception_message(ctx, object);
            match name {
                Some(name) if !message.is_empty() => format!("{name}: {message}"),
                Some(name) => name,
                None => message,
            }
        }
        Type::Object | Type::Array | Type::Proxy | Type::Promise => {
            match ctx.json_stringify(value.clone()) {
                Ok(Some(text)) => text.to_string().unwrap_or_default(),
                Ok(None) => coerce(ctx, value).unwrap_or_else(|| "[object]".into()),
                Err(error) => {
                    clear(ctx, &error);
                    coerce(ctx, value).unwrap_or_else(|| "[object]".into())
                }
            }
        }
        _ => coerce(ctx, value).unwrap_or_default(),
    }
}

fn coerce<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Option<String> {
    match value.get::<Coerced<String>>() {
        Ok(text) => Some(text.0),
        Err(error) => {
            clear(ctx, &error);
            None
        }
    }
}
