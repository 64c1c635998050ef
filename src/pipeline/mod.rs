//! The request pipeline: how a project request is answered, in four stages.
//!
//! 1. **resolve** ([`resolve`]) — one `ArcSwap` load of the route table, held only to clone
//!    the project's `Arc`; the mount, then the endpoint and its path parameters (spans of the
//!    path). 404, 405 and the 503 of a broken project are decided here.
//! 2. **project policy** ([`policy`]) — the project's own rules on the request head: its
//!    auth policy and the endpoint's requirements (`auth`), giving the caller's verified
//!    identity to the handler's context, or a 401/403. One branch for a project without.
//! 3. **handler** (`handlers`) — `Handler::respond(&Context, &mut RequestBody)`: answers now
//!    (literal mocks, from pre-rendered bytes), after a delay, or from a boxed future. A body
//!    the handler does not take is drained here, under the body limits.
//! 4. **record** ([`record`]) — the answer's status and latency go to the instance's, the
//!    project's and the endpoint's stats (`observe::stats`), the access log and the
//!    project's journal.
//!
//! [`Pipeline::serve`] is synchronous: it takes a request as far as it goes without waiting.
//! A literal mock, or an error, with no request body to drain is answered and recorded there
//! and handed back as [`Served::Now`]: no future is built, moved or polled for it. Anything
//! that waits (a body to drain, a delay, a handler's future) comes back as
//! [`Served::Waiting`], which [`Pipeline::finish`] completes and records.

pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod resolve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;

use crate::auth::cors::{CompiledCors, Preflight};
use crate::auth::{Checked, Identity, Pending};
use crate::body::Body;
use crate::error::{self, ApiError, Code};
use crate::handlers::{Context, Reply, RequestBody, drain};
use crate::observe::journal::Captured;
use crate::observe::{Stamp, Telemetry};
use crate::routing::{CompiledProject, ProjectLookup, Routes};

/// What every project request needs: the route table, the stats and the body limits.
pub(crate) struct Pipeline {
    pub routes: Arc<Routes>,
    pub telemetry: Arc<Telemetry>,
    pub body_limit: u64,
    pub body_read_timeout: Duration,
    /// One access-log line per request.
    pub access_log: bool,
    /// Password hashing and failed-attempt counters, for `basic` policies; `None` in
    /// gateway mode (no accounts, no such policy).
    pub accounts: Option<crate::accounts::Accounts>,
    /// How the projects' docs pages load their scripts.
    pub pages: Arc<crate::openapi::PagesConfig>,
}

/// Whether a project-relative path may be one of the project's docs (`/openapi.json`,
/// `/docs`, `/redoc`): one length comparison for every other request.
#[inline(always)]
fn maybe_docs(rest: &str) -> bool {
    matches!(rest.len(), 5 | 6 | 13) && matches!(rest, "/docs" | "/redoc" | "/openapi.json")
}

/// A project's own docs, asked for at `/openapi.json`, `/docs` or `/redoc` inside it
/// (`GET` or `HEAD`, and the project not in `production` mode): the revision's document,
/// made once, or a page that loads it. An endpoint written for that very path keeps it; one
/// that only matches it through a parameter (`/{path}`) does not.
#[cold]
fn project_docs(
    project: &CompiledProject,
    head: &Parts,
    rest: &str,
    pages: &crate::openapi::PagesConfig,
) -> Option<Result<Reply, ApiError>> {
    use crate::openapi::{Page, pages};
    if !matches!(head.method, http::Method::GET | http::Method::HEAD)
        || project.def.mode == crate::model::Mode::Production
    {
        return None;
    }
    if let ProjectLookup::Found { index, .. } = project.lookup(&head.method, rest) {
        let path = if index & crate::routing::SCRIPT_ROUTE as usize != 0 {
            let at = index & !(crate::routing::SCRIPT_ROUTE as usize);
            project
                .script
                .as_ref()
                .and_then(|s| s.script.routes().get(at))
                .map(|r| r.path.as_str())
        } else {
            project.def.endpoints.get(index).map(|e| &*e.spec.path)
        };
        if path == Some(rest) {
            return None;
        }
    }
    let page = match inside(rest) {
        "/openapi.json" => None,
        "/docs" => Some(Page::SwaggerUi),
        "/redoc" => Some(Page::Redoc),
        _ => return None,
    };
    let prefix = pages::forwarded_prefix(&head.headers);
    let mount = project.def.mount();
    let response = match page {
        None => {
            let text = project.docs.get(project).text(prefix, &mount);
            let mut response = Response::new(Body::full(text));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(page) => {
            let title = crate::openapi::document::title(&project.def);
            let spec = format!("{mount}/openapi.json");
            pages::page(page, &title, &spec, prefix, pages)
        }
    };
    Some(Ok(Reply::Now(response)))
}

/// The endpoint's request checks (its OpenAPI schemas), before the handler: a `422
/// request_invalid` naming every failing place of the head, or, for a mock whose request
/// body is checked, a reply that reads the body, checks it and then answers. `None`: go on
/// to the handler.
#[cold]
fn checked(
    checks: &crate::openapi::validate::Checks,
    endpoint: &Arc<crate::routing::CompiledEndpoint>,
    params: &crate::routing::matcher::Params<'_, '_>,
    head: &Parts,
    body: &mut RequestBody,
    limits: (u64, Duration),
    id: &HeaderValue,
) -> Option<Result<Reply, ApiError>> {
    let params: Vec<(&str, &str)> = params.iter().collect();
    let failures = checks.head(&params, head.uri.query(), &head.headers);
    if !failures.is_empty() {
        return Some(Err(request_invalid(failures)));
    }
    if !checks.reads_body() || !matches!(endpoint.handler, crate::handlers::Handler::Mock(_)) {
        return None;
    }
    let incoming = body.take();
    let endpoint = Arc::clone(endpoint);
    let content_type = head.headers.get(http::header::CONTENT_TYPE).cloned();
    // A mock's rules read the query and headers.
    let (query, headers) = (head.uri.query().map(str::to_owned), head.headers.clone());
    let id = id.clone();
    let (limit, timeout) = limits;
    Some(Ok(Reply::Later(Box::pin(async move {
        let bytes = match incoming {
            None => Ok(bytes::Bytes::new()),
            Some(incoming) => {
                let capture = usize::try_from(limit).unwrap_or(usize::MAX);
                drain(incoming, limit, timeout, capture)
                    .await
                    .map(|c| c.bytes)
            }
        };
        let failures = bytes.map(|bytes| {
            let Some(checks) = &endpoint.checks else {
                return Vec::new();
            };
            checks.body(&crate::openapi::validate::RequestBodyView {
                content_type: content_type.as_ref().and_then(|v| v.to_str().ok()),
                bytes: &bytes,
            })
        });
        match failures {
            Err(error) => error::render(&error, error::id_str(&id)),
            Ok(failures) if !failures.is_empty() => {
                error::render(&request_invalid(failures), error::id_str(&id))
            }
            Ok(_) => match endpoint.handler.respond_mock(query.as_deref(), &headers) {
                Some(reply) => reply.answer().await,
                None => error::render(
                    &ApiError::internal(&"a checked body for a handler that is not a mock"),
                    error::id_str(&id),
                ),
            },
        }
    }))))
}

/// The 422 of a request that does not match its endpoint's schemas.
fn request_invalid(failures: Vec<crate::openapi::validate::Failure>) -> ApiError {
    let first = failures
        .first()
        .map(|f| format!("{}: {}", f.at, f.message))
        .unwrap_or_default();
    let more = match failures.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more in `details`)", n - 1),
    };
    let mut error = ApiError::new(
        Code::RequestInvalid,
        format!("the request does not match the endpoint's schema: {first}{more}"),
    );
    error.details = failures
        .into_iter()
        .map(|f| crate::error::FieldError::new(f.at, f.message))
        .collect();
    error
}

/// What the pipeline made of a request without waiting.
pub(crate) enum Served {
    /// Answered, counted, logged and journaled: a literal mock, or an error, with no request
    /// body left to drain.
    Now(Response<Body>),
    /// The answer needs a wait (a body to drain, a delay, a handler's future):
    /// [`Pipeline::finish`] completes it. Boxed: only the slow path pays for moving it.
    Waiting(Box<Waiting>),
}

/// A request whose answer needs a wait, with what its record stage will need.
pub(crate) struct Waiting {
    head: Parts,
    mounted: Option<Mounted>,
    reply: Result<Reply, ApiError>,
    unread: Option<Incoming>,
    /// A policy check that has to wait (a key set to fetch): the handler runs after it, in
    /// [`Pipeline::finish`], and `reply` is not used.
    verify: Option<Pending>,
}

/// An answer, for the record stage.
struct Answered<'a> {
    response: &'a Response<Body>,
    /// Whether the handler made it (rather than an error of the pipeline's).
    handler: bool,
    /// The start of the request body, for the journal.
    body: Captured,
}

/// The project a request reached, and the endpoint that answered it, if one did.
struct Mounted {
    project: Arc<CompiledProject>,
    /// Bytes of the path before the project-relative rest.
    mount_len: usize,
    /// Index of the endpoint in the project.
    endpoint: Option<usize>,
    /// The caller the project's policy verified, for the journal.
    subject: Option<Arc<str>>,
}

impl Mounted {
    /// A project's request that no endpoint answers (a preflight, the docs).
    fn unmatched(project: Arc<CompiledProject>, mount_len: usize) -> Mounted {
        Mounted {
            project,
            mount_len,
            endpoint: None,
            subject: None,
        }
    }

    /// The path inside the project, `/` for its root.
    fn rest<'p>(&self, path: &'p str) -> &'p str {
        inside(path.get(self.mount_len..).unwrap_or(""))
    }
}

/// The answer to a CORS preflight (`204` with the policy's headers, or `403 cors_refused`),
/// or `None` for an `OPTIONS` that is not one, which goes to the endpoints.
#[cold]
fn preflight(cors: &CompiledCors, head: &Parts) -> Option<Result<Reply, ApiError>> {
    match cors.preflight(head) {
        Preflight::NotPreflight => None,
        Preflight::Refused(refusal) => Some(Err(refusal.into())),
        Preflight::Allowed(headers) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            response
                .headers_mut()
                .extend(headers.into_iter().map(|(n, v)| (Some(n), v)));
            Some(Ok(Reply::Now(response)))
        }
    }
}

/// Adds the project's CORS headers to an answer (every answer of a project with a CORS
/// policy, errors included, so that a browser can read them).
#[inline]
fn cors_headers(head: &Parts, mounted: Option<&Mounted>, response: &mut Response<Body>) {
    if let Some(cors) = mounted.and_then(|m| m.project.cors.as_deref()) {
        cors.apply(&head.headers, response.headers_mut());
    }
}

/// Where a request is: its head, its project and the path inside it, its id and caller.
struct Place<'a> {
    head: &'a Parts,
    project: &'a CompiledProject,
    path: &'a str,
    id: &'a HeaderValue,
    peer: SocketAddr,
}

/// What follows a project's mount, as the project sees it: `/` for its root.
fn inside(rest: &str) -> &str {
    if rest.is_empty() { "/" } else { rest }
}

impl Pipeline {
    /// Takes one project request (any path whose first segment is not reserved) as far as it
    /// goes without waiting: a literal mock, or an error, with no body to drain, is answered
    /// and recorded here, synchronously. `start` is when the request reached the edge; its
    /// latency is counted from there.
    #[inline(always)]
    pub fn serve(
        &self,
        request: Request<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Stamp,
    ) -> Served {
        let (mut head, body) = request.into_parts();
        let mut body = RequestBody::new(body);
        let path = head.uri.path();
        // Stage 1a: the project, by its mount.
        let Some((project, rest)) = resolve::project(&self.routes, path) else {
            let reply = Err(ApiError::not_found());
            return self.answer(head, None, reply, body.into_rest(), id, peer, start);
        };
        let mount_len = path.len() - rest.len();
        // A CORS preflight is the project's to answer, whatever its endpoints.
        if let Some(cors) = &project.cors
            && head.method == http::Method::OPTIONS
            && let Some(reply) = preflight(cors, &head)
        {
            let mounted = Mounted::unmatched(project, mount_len);
            return self.answer(
                head,
                Some(mounted),
                reply,
                body.into_rest(),
                id,
                peer,
                start,
            );
        }
        // The project's docs, unless an endpoint was written for their path.
        if maybe_docs(rest)
            && let Some(reply) = project_docs(&project, &head, rest, &self.pages)
        {
            let mounted = Mounted::unmatched(project, mount_len);
            return self.answer(
                head,
                Some(mounted),
                reply,
                body.into_rest(),
                id,
                peer,
                start,
            );
        }
        // Stage 1b: the endpoint.
        let mut identity: Option<Identity> = None;
        let mut verify = None;
        let (reply, endpoint) = match project.lookup(&head.method, rest) {
            ProjectLookup::Found {
                endpoint,
                index,
                params,
            } => {
                // Stage 2: the project's policy.
                match policy::check(&project, index, &head, peer, self.accounts.as_ref()) {
                    Ok(Checked::Later(pending)) => {
                        verify = Some(pending);
                        (Err(ApiError::not_found()), Some(index))
                    }
                    Ok(Checked::Now(verified)) => 'handler: {
                        identity = verified;
                        if let Some(checks) = &endpoint.checks
                            && let Some(reply) = checked(
                                checks,
                                endpoint,
                                &params,
                                &head,
                                &mut body,
                                (self.body_limit, self.body_read_timeout),
                                id,
                            )
                        {
                            break 'handler (reply, Some(index));
                        }
                        // Stage 3: the handler. hyper leaves an upgrade in the extensions
                        // only of a request that asks for one (WebSocket).
                        if endpoint.handler.forwards_upgrades() {
                            body.set_upgrade(head.extensions.remove::<hyper::upgrade::OnUpgrade>());
                        }
                        let cx = || {
                            let at = Place {
                                head: &head,
                                project: &project,
                                path: inside(rest),
                                id,
                                peer,
                            };
                            self.context(at, params, identity.as_ref())
                        };
                        (Ok(endpoint.handler.respond(cx, &mut body)), Some(index))
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
        let mounted = Mounted {
            project,
            mount_len,
            endpoint,
            subject: identity.map(|i| i.subject),
        };
        if let Some(pending) = verify {
            // The policy check has to wait: the handler runs after it, in `finish`.
            return Served::Waiting(Box::new(Waiting {
                head,
                mounted: Some(mounted),
                reply,
                unread: body.into_rest(),
                verify: Some(pending),
            }));
        }
        self.answer(
            head,
            Some(mounted),
            reply,
            body.into_rest(),
            id,
            peer,
            start,
        )
    }

    /// Records and returns an answer that needs no wait, or hands over what waiting needs.
    #[expect(
        clippy::too_many_arguments,
        reason = "one request's parts, passed through"
    )]
    #[inline(always)]
    fn answer(
        &self,
        head: Parts,
        mounted: Option<Mounted>,
        reply: Result<Reply, ApiError>,
        unread: Option<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Stamp,
    ) -> Served {
        let response = match reply {
            _ if unread.as_ref().is_some_and(|body| !body.is_end_stream()) => Err(reply),
            Ok(Reply::Now(response)) => Ok((response, true)),
            Err(error) => Ok((error::render(&error, error::id_str(id)), false)),
            reply => Err(reply),
        };
        match response {
            Ok((mut response, handler)) => {
                cors_headers(&head, mounted.as_ref(), &mut response);
                let answer = Answered {
                    response: &response,
                    handler,
                    body: Captured::default(),
                };
                self.record(&head, mounted.as_ref(), answer, id, peer, start);
                Served::Now(response)
            }
            Err(reply) => Served::Waiting(Box::new(Waiting {
                head,
                mounted,
                reply,
                unread,
                verify: None,
            })),
        }
    }

    /// Completes a request [`Pipeline::serve`] left waiting: drains what is left of its
    /// body (keeping the start for the journal), waits for the reply, and records it.
    pub async fn finish(
        &self,
        waiting: Box<Waiting>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Stamp,
    ) -> Response<Body> {
        let Waiting {
            mut head,
            mut mounted,
            mut reply,
            mut unread,
            verify,
        } = *waiting;
        if let Some(pending) = verify {
            reply = match (pending.await, &mut mounted) {
                (Ok(identity), Some(at)) => {
                    at.subject = identity.as_ref().map(|i| i.subject.clone());
                    self.respond_later(&mut head, at, identity, &mut unread, id, peer)
                }
                (Ok(_), None) => Err(ApiError::internal(&"a verified request without a project")),
                (Err(error), _) => Err(error),
            };
            if reply.is_err()
                && let Some(at) = &mut mounted
            {
                // Refused by the policy: not the endpoint's answer (as when refused at once).
                at.endpoint = None;
            }
        }
        let capture = match &mounted {
            Some(mounted) if mounted.project.journal_size(self.telemetry.journal_size) > 0 => {
                self.telemetry.journal_body
            }
            _ => 0,
        };
        let (mut response, body, handler) = self.wait(reply, unread, id, capture).await;
        cors_headers(&head, mounted.as_ref(), &mut response);
        let answer = Answered {
            response: &response,
            handler,
            body,
        };
        self.record(&head, mounted.as_ref(), answer, id, peer, start);
        response
    }

    /// Stage 3 for a request whose policy check had to wait: finds its endpoint again (the
    /// same revision, so the same one) and runs the handler with the verified caller.
    fn respond_later(
        &self,
        head: &mut Parts,
        mounted: &Mounted,
        identity: Option<Identity>,
        unread: &mut Option<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
    ) -> Result<Reply, ApiError> {
        let upgrade = head.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let head = &*head;
        let project = &mounted.project;
        let rest = mounted.rest(head.uri.path());
        let ProjectLookup::Found {
            endpoint, params, ..
        } = project.lookup(&head.method, rest)
        else {
            return Err(ApiError::internal(&"a verified request's endpoint is gone"));
        };
        let mut body = RequestBody::from_rest(unread.take());
        if endpoint.handler.forwards_upgrades() {
            body.set_upgrade(upgrade);
        }
        if let Some(checks) = &endpoint.checks
            && let Some(reply) = checked(
                checks,
                endpoint,
                &params,
                head,
                &mut body,
                (self.body_limit, self.body_read_timeout),
                id,
            )
        {
            *unread = body.into_rest();
            return reply;
        }
        let cx = || {
            let at = Place {
                head,
                project,
                path: rest,
                id,
                peer,
            };
            self.context(at, params, identity.as_ref())
        };
        let reply = endpoint.handler.respond(cx, &mut body);
        *unread = body.into_rest();
        Ok(reply)
    }

    /// The handler's view of a request at `at`.
    #[inline(always)]
    fn context<'a>(
        &'a self,
        at: Place<'a>,
        params: crate::routing::matcher::Params<'a, 'a>,
        identity: Option<&'a Identity>,
    ) -> Context<'a> {
        Context {
            method: &at.head.method,
            path: at.path,
            query: at.head.uri.query(),
            params,
            headers: &at.head.headers,
            request_id: at.id,
            peer: at.peer,
            upstreams: &at.project.upstreams,
            datasets: &at.project.datasets,
            identity,
            subject_header: at.project.auth.subject_header(),
            body_limit: self.body_limit,
            body_read_timeout: self.body_read_timeout,
        }
    }

    /// Stage 4: counts the answer, logs it and, for a project with a journal, journals it.
    fn record(
        &self,
        head: &Parts,
        mounted: Option<&Mounted>,
        answer: Answered<'_>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Stamp,
    ) {
        let response = answer.response;
        let outcome = record::measure(&self.telemetry, response, start);
        let Some(mounted) = mounted else {
            record::instance(&self.telemetry, outcome);
            self.log_access(id, peer, head, None, response, outcome);
            return;
        };
        let project = &mounted.project;
        let endpoint = mounted.endpoint.and_then(|index| project.handler(index));
        record::project(&self.telemetry, project, endpoint, outcome);
        self.log_access(
            id,
            peer,
            head,
            Some((project, mounted.endpoint)),
            response,
            outcome,
        );
        let journal_size = project.journal_size(self.telemetry.journal_size);
        if journal_size > 0 {
            let entry = record::Journaled {
                id,
                method: &head.method,
                path: mounted.rest(head.uri.path()),
                query: head.uri.query(),
                headers: &head.headers,
                body: answer.body,
                endpoint: mounted.endpoint,
                subject: mounted.subject.as_ref(),
                // The handler's own answer: its fixed headers, if it has them, are shared.
                fixed_headers: endpoint
                    .filter(|_| answer.handler)
                    .and_then(|endpoint| endpoint.handler.fixed_headers()),
            };
            record::journal(
                &self.telemetry,
                project,
                entry,
                response,
                outcome,
                journal_size,
            );
        }
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
    /// the reply. Also says whether the answer is the handler's (not an error of ours).
    async fn wait(
        &self,
        reply: Result<Reply, ApiError>,
        rest: Option<Incoming>,
        id: &HeaderValue,
        capture: usize,
    ) -> (Response<Body>, Captured, bool) {
        // A body nobody took must still be read, so that the connection can carry the next
        // request; one over the limit is refused.
        let mut captured = Captured::default();
        if let Some(body) = rest
            && !body.is_end_stream()
        {
            match drain(body, self.body_limit, self.body_read_timeout, capture).await {
                Ok(kept) => captured = kept,
                Err(error) => return (error::render(&error, error::id_str(id)), captured, false),
            }
        }
        let handler = reply.is_ok();
        let response = match reply {
            Ok(reply) => reply.answer().await,
            Err(error) => error::render(&error, error::id_str(id)),
        };
        (response, captured, handler)
    }
}
