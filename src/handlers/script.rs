//! The `script` handler: one route of a project's script (`script`), answered by its
//! JavaScript handler on the script's own thread.
//!
//! Synchronously, in `respond`: the request's method, path, parameters, query, headers and
//! id are copied out (the handler runs on another thread, after this request's borrow has
//! ended). Then, in a boxed future ([`Reply::Later`]): the body is read whole, at most
//! `--body-limit` bytes within the body read timeout, the call is queued to the script's
//! thread, and its answer (or error) becomes the response. Errors are in the JSON error
//! format: `script_busy` (503, queue full or script replaced), `script_timeout` (504, the
//! CPU-time limit), `script_error` (500: an exception with its line, the memory limit, or a
//! result that is not an answer), `bad_request` (400: a body the handler cannot be given).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};

use super::{Context, Inbound, Reply};
use crate::body::Body;
use crate::error::{self, ApiError, Code};
use crate::script::{self, CallError, Script};

/// A compiled script route: the script, and which of its routes.
#[derive(Debug, Clone)]
pub struct ScriptHandler {
    script: Arc<Script>,
    route: usize,
}

impl ScriptHandler {
    pub fn new(script: Arc<Script>, route: usize) -> ScriptHandler {
        ScriptHandler { script, route }
    }

    pub fn respond(&self, cx: &Context<'_>, body: Option<Inbound>) -> Reply {
        let request = script::Request {
            method: cx.method.as_str().to_owned(),
            path: cx.path.to_owned(),
            params: cx
                .params
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            query: cx.query.map(str::to_owned),
            headers: cx
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: Bytes::new(),
            id: error::id_str(cx.request_id).to_owned(),
            auth: cx.identity.cloned(),
        };
        let call = Call {
            script: Arc::clone(&self.script),
            route: self.route,
            id: cx.request_id.clone(),
            limit: cx.body_limit,
            timeout: cx.body_read_timeout,
        };
        Reply::Later(Box::pin(call.run(request, body)))
    }
}

/// One call on its way to the script's thread.
struct Call {
    script: Arc<Script>,
    route: usize,
    id: HeaderValue,
    limit: u64,
    timeout: Duration,
}

impl Call {
    async fn run(self, mut request: script::Request, body: Option<Inbound>) -> Response<Body> {
        if let Some(body) = body {
            match body.read_whole(self.limit, self.timeout).await {
                Ok(bytes) => request.body = bytes,
                Err(error) => return error::render(&error, error::id_str(&self.id)),
            }
        }
        match self.script.call(self.route, request).await {
            Ok(answer) => response(answer, &self.id),
            Err(failure) => {
                let code = match &failure {
                    CallError::Busy | CallError::Stopped => Code::ScriptBusy,
                    CallError::Timeout { .. } => Code::ScriptTimeout,
                    CallError::BadRequest(_) => Code::BadRequest,
                    CallError::OutOfMemory { .. }
                    | CallError::Exception { .. }
                    | CallError::BadResponse(_) => Code::ScriptError,
                };
                if code != Code::BadRequest {
                    tracing::warn!(
                        request_id = error::id_str(&self.id),
                        error = %failure,
                        "a script handler failed"
                    );
                }
                error::render(
                    &ApiError::new(code, failure.to_string()),
                    error::id_str(&self.id),
                )
            }
        }
    }
}

/// The caller's answer from a handler's: its status, headers (the engine checked them;
/// any that still cannot be a header is left out) and body. An informational status
/// (1xx) cannot be a final answer: that is the handler's error.
fn response(answer: script::Response, id: &HeaderValue) -> Response<Body> {
    let status = match StatusCode::from_u16(answer.status) {
        Ok(status) if !status.is_informational() => status,
        _ => {
            let message = format!(
                "the handler answered status {}, which cannot be a final answer (use 200-599)",
                answer.status
            );
            return error::render(
                &ApiError::new(Code::ScriptError, message),
                error::id_str(id),
            );
        }
    };
    let mut response = Response::new(Body::full(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    response
}
