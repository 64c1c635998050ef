//! The request pipeline: how a project request is answered, in four stages.
//!
//! 1. **resolve** ([`resolve`]) — one `ArcSwap` load of the route table, held only to clone
//!    the project's `Arc`; the mount, then the endpoint and its path parameters (spans of the
//!    path). 404, 405 and the 503 of a broken project are decided here.
//! 2. **project policy** ([`policy`]) — the project's own rules on the request head. Today
//!    every project's policy is `none`; the per-project auth issue fills this stage.
//! 3. **handler** (`handlers`) — `Handler::respond(&Context, &mut RequestBody)`: answers now
//!    (literal mocks, from pre-rendered bytes), after a delay, or from a boxed future. A body
//!    the handler does not take is drained here, under the body limits.
//! 4. **record** ([`record`]) — the answer's status and latency go to the instance's, the
//!    project's and the endpoint's stats (`observe::stats`).
//!
//! Everything before the handler is synchronous and allocation-free; a literal mock's answer
//! is built without an await, and the only awaits are for a request body, a delay or a
//! handler's future.

pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod resolve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::Body;
use crate::error::{self, ApiError, Code};
use crate::handlers::{Context, Reply, RequestBody};
use crate::observe::Telemetry;
use crate::observe::journal::Captured;
use crate::routing::{CompiledProject, ProjectLookup, Routes};

/// What every project request needs: the route table, the stats and the body limits.
pub(crate) struct Pipeline {
    pub routes: Arc<Routes>,
    pub telemetry: Arc<Telemetry>,
    pub body_limit: u64,
    pub body_read_timeout: Duration,
    /// One access-log line per request.
    pub access_log: bool,
}

impl Pipeline {
    /// Answers one project request (any path whose first segment is not reserved).
    /// `start` is when the request reached the edge; its latency is counted from there.
    pub async fn serve(
        &self,
        request: Request<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Instant,
    ) -> Response<Body> {
        let (head, body) = request.into_parts();
        let mut body = RequestBody::new(body);
        let path = head.uri.path();
        // Stage 1a: the project, by its mount.
        let Some((project, rest)) = resolve::project(&self.routes, path) else {
            let (response, _) = self
                .finish(Err(ApiError::not_found()), body.into_rest(), id, 0)
                .await;
            let outcome = record::measure(&self.telemetry, &response, start);
            record::instance(&self.telemetry, outcome);
            self.log_access(id, peer, &head, None, &response, outcome);
            return response;
        };
        // Stage 1b: the endpoint.
        let (reply, endpoint) = match project.lookup(&head.method, rest) {
            ProjectLookup::Found {
                endpoint,
                index,
                params,
            } => {
                // Stage 2: the project's policy.
                match policy::check(&project, &head) {
                    Ok(()) => {
                        // Stage 3: the handler.
                        let cx = Context {
                            method: &head.method,
                            path: if rest.is_empty() { "/" } else { rest },
                            query: head.uri.query(),
                            params,
                            headers: &head.headers,
                            request_id: id,
                        };
                        let reply = endpoint.handler.respond(&cx, &mut body);
                        (Ok(reply), Some((endpoint, index)))
                    }
                    Err(error) => (Err(error), None),
                }
            }
            ProjectLookup::MethodNotAllowed(allow) => {
                (Err(ApiError::method_not_allowed(allow)), None)
            }
            ProjectLookup::NotFound => (Err(ApiError::not_found()), None),
            ProjectLookup::Unavailable(problem) => {
                if let Some(requests) = problem.note_request() {
                    tracing::warn!(
                        request_id = error::id_str(id),
                        project = %project.def.mount(),
                        problem = problem.message(),
                        requests,
                        "requests to a project that could not be loaded"
                    );
                }
                (
                    Err(ApiError::new(
                        Code::ProjectUnavailable,
                        "this project's definition does not compile; its owner can fix it through the admin API",
                    )),
                    None,
                )
            }
        };
        let journal_size = project.journal_size(self.telemetry.journal_size);
        let capture = if journal_size > 0 {
            self.telemetry.journal_body
        } else {
            0
        };
        let unread = body.into_rest();
        let (response, captured) = match reply {
            // A literal mock's answer, with no body to drain: nothing to wait for.
            Ok(Reply::Now(response)) if unread.as_ref().is_none_or(|b| b.is_end_stream()) => {
                (response, Captured::default())
            }
            reply => self.finish(reply, unread, id, capture).await,
        };
        // Stage 4: record.
        let outcome = record::measure(&self.telemetry, &response, start);
        record::project(
            &self.telemetry,
            &project,
            endpoint.map(|(endpoint, _)| endpoint),
            outcome,
        );
        let answered = Some((&*project, endpoint.map(|(_, index)| index)));
        self.log_access(id, peer, &head, answered, &response, outcome);
        if capture > 0 {
            let entry = record::Journaled {
                id,
                method: &head.method,
                path: if rest.is_empty() { "/" } else { rest },
                query: head.uri.query(),
                headers: &head.headers,
                body: captured,
                endpoint: endpoint.map(|(_, index)| index),
            };
            record::journal(
                &self.telemetry,
                &project,
                entry,
                &response,
                outcome,
                journal_size,
            );
        }
        response
    }

    /// The request's access-log line, if the access log is on.
    fn log_access(
        &self,
        id: &HeaderValue,
        peer: SocketAddr,
        head: &http::request::Parts,
        project: Option<(&CompiledProject, Option<usize>)>,
        response: &Response<Body>,
        outcome: record::Outcome,
    ) {
        if self.access_log {
            let line = record::Line {
                id,
                client: peer,
                method: &head.method,
                uri: &head.uri,
                project,
            };
            record::access(line, response, outcome);
        }
    }

    /// Drains what is left of the body, keeping its first `capture` bytes, then waits for
    /// the reply.
    async fn finish(
        &self,
        reply: Result<Reply, ApiError>,
        rest: Option<Incoming>,
        id: &HeaderValue,
        capture: usize,
    ) -> (Response<Body>, Captured) {
        // A body nobody took must still be read, so that the connection can carry the next
        // request; one over the limit is refused.
        let mut captured = Captured::default();
        if let Some(body) = rest
            && !body.is_end_stream()
        {
            match drain(body, self.body_limit, self.body_read_timeout, capture).await {
                Ok(kept) => captured = kept,
                Err(error) => return (error::render(&error, error::id_str(id)), captured),
            }
        }
        let response = match reply {
            Ok(Reply::Now(response)) => response,
            Ok(Reply::After(delay, response)) => {
                tokio::time::sleep(delay).await;
                response
            }
            Ok(Reply::Later(future)) => future.await,
            Err(error) => error::render(&error, error::id_str(id)),
        };
        (response, captured)
    }
}

/// Reads and discards a request body, keeping its first `capture` bytes for the journal,
/// refusing one longer than `limit` or still arriving after `timeout` (counted from the
/// start of the read, not per chunk).
async fn drain(
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
