//! Endpoint handlers: the closed set of things an endpoint can do.
//!
//! [`Handler`] is one enum with one variant per kind (`mock`, `proxy`, `script` and
//! `dataset`), compiled once from a validated definition (a script's
//! routes: from the compiled script) when the project changes, and dispatched with one `match` by the request pipeline (`pipeline`, stage 3). A
//! handler never touches the store or the route table; it is handed a [`Context`] (the
//! request head, path parameters, request id) and the request body, and answers with a
//! [`Reply`].

pub(crate) mod dataset;
pub(crate) mod mock;
pub(crate) mod proxy;
pub(crate) mod script;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use hyper::body::Incoming;

use http_body_util::BodyExt;

use crate::body::Body;
use crate::error::{ApiError, Code};
use crate::model::{EndpointSpec, HandlerSpec};
use crate::observe::journal::Captured;
use crate::routing::Params;

/// What a handler may know of the request it answers. Borrowed: building one costs nothing.
pub struct Context<'a> {
    pub method: &'a Method,
    /// The path inside the project, `/` for the project's root.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Path parameters; a prefix (proxy) endpoint's `rest` is what follows its prefix.
    pub params: Params<'a, 'a>,
    pub headers: &'a HeaderMap,
    pub request_id: &'a HeaderValue,
    /// The caller's address.
    pub peer: std::net::SocketAddr,
    /// The live upstreams of the project's backends, by name.
    pub upstreams: &'a crate::backends::Upstreams,
    /// The project's datasets in this revision.
    pub datasets: &'a crate::datasets::DatasetSet,
    /// Who the caller is, verified by the project's policy; `None` under the policy `none`
    /// and on a public endpoint.
    pub identity: Option<&'a crate::auth::Identity>,
    /// The header a proxy sends the verified subject upstream in, if the project asks.
    pub subject_header: Option<&'a http::HeaderName>,
    /// The most a handler that reads the request body may read of it (`--body-limit`)...
    pub body_limit: u64,
    /// ...and how long it may take to arrive.
    pub body_read_timeout: Duration,
}

/// The request body, for a handler to take (to read it, or forward it). What no handler
/// takes, the pipeline drains within the body limits, so that the connection can carry the
/// next request.
pub struct RequestBody {
    body: Option<Incoming>,
    /// The body, already read whole: the pipeline read it to check it against the
    /// endpoint's schema before the handler ran.
    read: Option<bytes::Bytes>,
    /// The connection itself, once answered with `101 Switching Protocols`, for a request
    /// that asks for an upgrade (WebSocket) and a handler that can forward one.
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl RequestBody {
    pub fn new(body: Incoming) -> RequestBody {
        RequestBody {
            body: Some(body),
            read: None,
            upgrade: None,
        }
    }

    /// What was left of a body, handed to a handler that runs later.
    pub fn from_rest(body: Option<Incoming>) -> RequestBody {
        RequestBody {
            body,
            read: None,
            upgrade: None,
        }
    }

    /// A body the pipeline has read whole (to check it), for the handler.
    pub fn read(bytes: bytes::Bytes) -> RequestBody {
        RequestBody {
            body: None,
            read: Some(bytes),
            upgrade: None,
        }
    }

    /// The body, for a handler that reads or forwards it.
    pub fn take(&mut self) -> Option<Inbound> {
        match self.read.take() {
            Some(bytes) => Some(Inbound::Read(bytes)),
            None => self.body.take().map(Inbound::Stream),
        }
    }

    /// Hands over the connection's upgrade, if the request asked for one.
    pub fn set_upgrade(&mut self, upgrade: Option<hyper::upgrade::OnUpgrade>) {
        self.upgrade = upgrade;
    }

    pub fn take_upgrade(&mut self) -> Option<hyper::upgrade::OnUpgrade> {
        self.upgrade.take()
    }

    /// What is left for the pipeline to drain.
    pub fn into_rest(self) -> Option<Incoming> {
        self.body
    }
}

/// A request body as a handler takes it: still arriving, or already read whole.
pub enum Inbound {
    Stream(Incoming),
    Read(bytes::Bytes),
}

impl Inbound {
    /// The whole body: read now, refusing one longer than `limit` or still arriving after
    /// `timeout`, or as it was already read.
    pub async fn read_whole(self, limit: u64, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
        match self {
            Inbound::Read(bytes) => Ok(bytes),
            Inbound::Stream(body) => {
                // Kept whole: the capture is the limit, past which the body is refused.
                let whole = usize::try_from(limit).unwrap_or(usize::MAX);
                drain(body, limit, timeout, whole)
                    .await
                    .map(|read| read.bytes)
            }
        }
    }
}

/// Why a definition could not be compiled into a handler. Validation catches these first;
/// compiling re-checks so that a stored definition that somehow went bad is reported, not
/// served wrong.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("mock response: {0}")]
    Mock(String),
    #[error("dataset: {0}")]
    Dataset(String),
}

/// A compiled endpoint handler.
#[derive(Debug, Clone)]
pub enum Handler {
    Mock(mock::MockHandler),
    Proxy(proxy::ProxyHandler),
    /// A route of the project's script (never compiled from an endpoint's spec).
    Script(script::ScriptHandler),
    Dataset(dataset::DatasetHandler),
}

/// What a handler answers: a response now (literal mocks: pre-rendered bytes), after a
/// delay, or from a future (handlers that wait on something; boxed, so that the common mock
/// path keeps a small future).
pub enum Reply {
    Now(http::Response<Body>),
    After(Duration, http::Response<Body>),
    Later(Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>),
}

impl Reply {
    /// The response, once it is ready: at once, after the delay, or when the future ends.
    pub async fn answer(self) -> http::Response<Body> {
        match self {
            Reply::Now(response) => response,
            Reply::After(delay, response) => {
                tokio::time::sleep(delay).await;
                response
            }
            Reply::Later(future) => future.await,
        }
    }
}

impl Handler {
    pub fn compile(spec: &EndpointSpec) -> Result<Handler, HandlerError> {
        match &spec.handler {
            HandlerSpec::Mock(mock) => mock::MockHandler::compile(mock).map(Handler::Mock),
            HandlerSpec::Proxy(proxy) => Ok(Handler::Proxy(proxy::ProxyHandler::compile(proxy))),
            HandlerSpec::Dataset(spec) => dataset::DatasetHandler::compile(spec)
                .map(Handler::Dataset)
                .map_err(HandlerError::Dataset),
        }
    }

    /// Whether this handler can take over an upgraded connection (WebSocket).
    #[inline]
    pub fn forwards_upgrades(&self) -> bool {
        matches!(self, Handler::Proxy(_))
    }

    /// The headers every answer of this handler carries (an `x-request-id` placeholder
    /// aside), when they are fixed: the journal shares them rather than copying them.
    #[inline]
    pub fn fixed_headers(&self) -> Option<&std::sync::Arc<HeaderMap>> {
        match self {
            Handler::Mock(mock) if !mock.has_rules() => Some(mock.headers()),
            Handler::Mock(_) => None,
            Handler::Proxy(_) | Handler::Script(_) | Handler::Dataset(_) => None,
        }
    }

    /// Answers a request. Synchronous work only; anything that waits goes in
    /// [`Reply::Later`]. The context is made only for handlers that read it (`cx`): a
    /// literal mock, the hot path, answers without one being built.
    #[inline(always)]
    pub fn respond<'a>(&self, cx: impl FnOnce() -> Context<'a>, body: &mut RequestBody) -> Reply {
        match self {
            // A mock does not read the request (a mock with rules: its head); the pipeline
            // drains its body.
            Handler::Mock(mock) if !mock.has_rules() => mock.respond(),
            Handler::Mock(mock) => {
                let cx = cx();
                mock.respond_to(cx.query, cx.headers)
            }
            // A proxy forwards the body as it arrives, and an upgraded connection's bytes.
            Handler::Proxy(proxy) => proxy.respond(&cx(), body.take(), body.take_upgrade()),
            Handler::Script(script) => script.respond(&cx(), body.take()),
            Handler::Dataset(dataset) => dataset.respond(&cx(), body.take()),
        }
    }
}

/// Reads a request body to its end, keeping its first `capture` bytes (for the journal, or
/// all of it for a handler that reads the body whole), and refusing one longer than `limit` or still arriving after `timeout` (counted from the
/// start of the read, not per chunk).
pub(crate) async fn drain(
    body: Incoming,
    limit: u64,
    timeout: Duration,
    capture: usize,
) -> Result<Captured, ApiError> {
    tokio::time::timeout(timeout, discard(body, limit, capture))
        .await
        .unwrap_or_else(|_| Err(ApiError::body_timeout(timeout)))
}

async fn discard(mut body: Incoming, limit: u64, capture: usize) -> Result<Captured, ApiError> {
    let mut total = 0u64;
    let mut kept = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(Code::BadRequest, format!("could not read the body: {e}"))
        })?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            if total > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            let room = capture.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Captured {
        truncated: total > kept.len() as u64,
        bytes: kept.freeze(),
        length: Some(total),
    })
}
