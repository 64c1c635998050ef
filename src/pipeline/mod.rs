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
/// `/docs`, `/redoc`) or its `/health`: one length comparison for every other request.
#[inline(always)]
fn maybe_docs(rest: &str) -> bool {
    matches!(rest.len(), 5 | 6 | 7 | 13)
        && matches!(rest, "/docs" | "/redoc" | "/health" | "/openapi.json")
}

/// A project's own docs, asked for at `/openapi.json`, `/docs` or `/redoc` inside it
/// (`GET` or `HEAD`, and the project not in `production` mode): the revision's document,
/// made once, or a page that loads it. Where projects are folders (`run`, `serve
/// --projects`), also its `/health`, in every mode: `{"name", "mode", "debug"}`. An
/// endpoint written for that very path keeps it; one that only matches it through a
/// parameter (`/{path}`) does not.
#[cold]
fn project_docs(
    project: &CompiledProject,
    head: &Parts,
    rest: &str,
    pages: &crate::openapi::PagesConfig,
) -> Option<Result<Reply, ApiError>> {
    use crate::model::{Layout, Mode};
    use crate::openapi::{Page, pages};
    let health = rest == "/health";
    if !matches!(head.method, http::Method::GET | http::Method::HEAD)
        || (health && project.def.layout == Layout::Owner)
        || (!health && project.def.mode == Mode::Production)
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
    if health {
        let mode = project.def.mode;
        let body = serde_json::json!({
            "name": project.def.name,
            "mode": mode.as_str(),
            "debug": mode == Mode::Development,
        });
        return Some(Ok(Reply::Now(json_answer(body.to_string().into()))));
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
        None => json_answer(project.docs.get(project).text(prefix, &mount)),
        Some(page) => {
            let title = crate::openapi::document::title(&project.def);
            let spec = format!("{mount}/openapi.json");
            pages::page(page, &title, &spec, prefix, pages)
        }
    };
    Some(Ok(Reply::Now(response)))
}

/// A `200` of JSON text.
fn json_answer(text: bytes::Bytes) -> Response<Body> {
    let mut response = Response::new(Body::full(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The endpoint's checks of a request's head (its OpenAPI schemas), before the handler: a
/// `422 request_invalid` naming every failing place of the path, query and headers.
#[cold]
fn check_head(
    checks: &crate::openapi::validate::Checks,
    params: &crate::routing::matcher::Params<'_, '_>,
    head: &Parts,
) -> Result<(), ApiError> {
    let params: Vec<(&str, &str)> = params.iter().collect();
    let failures = checks.head(&params, head.uri.query(), &head.headers);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(request_invalid(failures))
    }
}

/// Reads a request body whole (within the body limits) and checks it against the
/// endpoint's schema: the body for the handler, or a `422 request_invalid`. `captured` gets
/// its start, for the journal.
#[cold]
async fn check_body(
    checks: &crate::openapi::validate::Checks,
    head: &Parts,
    unread: Option<Incoming>,
    limits: (u64, Duration),
    capture: usize,
    captured: &mut Captured,
) -> Result<RequestBody, ApiError> {
    let (limit, timeout) = limits;
    let bytes = match unread {
        Some(incoming) if !incoming.is_end_stream() => {
            let whole = usize::try_from(limit).unwrap_or(usize::MAX);
            drain(incoming, limit, timeout, whole).await?.bytes
        }
        _ => bytes::Bytes::new(),
    };
    *captured = Captured {
        bytes: bytes.slice(..bytes.len().min(capture)),
        length: Some(bytes.len() as u64),
        truncated: bytes.len() > capture,
    };
    let failures = checks.body(&crate::openapi::validate::RequestBodyView {
        content_type: head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        bytes: &bytes,
    });
    if failures.is_empty() {
        Ok(RequestBody::read(bytes))
    } else {
        Err(request_invalid(failures))
    }
}

/// The checks an endpoint's answers go through: its documented responses, when it checks
/// them and its project is in `development` mode.
#[inline]
fn answer_checks<'a>(
    project: &CompiledProject,
    endpoint: Option<&'a Arc<crate::routing::CompiledEndpoint>>,
) -> Option<&'a crate::openapi::validate::Checks> {
    endpoint
        .and_then(|endpoint| endpoint.checks.as_deref())
        .filter(|checks| {
            checks.checks_responses() && project.def.mode == crate::model::Mode::Development
        })
}

/// How a handler's answer differs from its endpoint's documented responses (those of
/// [`answer_checks`]): logged, for the journal. The answer is sent as it
/// is. A body that was not read whole (an upstream's, streamed past what is checked) is
/// not checked.
#[cold]
fn check_answer(
    checks: &crate::openapi::validate::Checks,
    project: &CompiledProject,
    head: &Parts,
    response: &Response<Body>,
    id: &HeaderValue,
) -> Option<Box<[error::FieldError]>> {
    let body: Option<&[u8]> = match response.body() {
        _ if head.method == http::Method::HEAD => None,
        Body::Full(bytes) => Some(bytes.as_deref().unwrap_or_default()),
        Body::Axum(_) | Body::Upstream(_) => None,
    };
    let failures = checks.answer(&crate::openapi::validate::AnswerView {
        status: response.status().as_u16(),
        headers: response.headers(),
        body,
    });
    let first = failures.first()?;
    tracing::warn!(
        request_id = error::id_str(id),
        project = %project.def.mount(),
        method = %head.method,
        path = head.uri.path(),
        status = response.status().as_u16(),
        mismatches = failures.len(),
        first = %format_args!("{}: {}", first.at, first.message),
        "an answer does not match its endpoint's documented responses"
    );
    Some(
        failures
            .into_iter()
            .map(|f| error::FieldError::new(f.at, f.message))
            .collect(),
    )
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
    /// What has to happen before the handler runs, in [`Pipeline::finish`] (`reply` is not
    /// used then).
    then: Option<Then>,
}

/// A request whose handler runs late, with what it needs.
struct Later<'a> {
    head: &'a mut Parts,
    mounted: &'a Mounted,
    /// The caller, as the project's policy verified it.
    identity: Option<Identity>,
    /// Whether the endpoint's checks of the head already passed.
    head_checked: bool,
    /// How much of the body the journal keeps.
    capture: usize,
}

/// What a request waits for before its handler runs.
enum Then {
    /// A policy check that has to wait (a key set to fetch).
    Verify(Pending),
    /// Its body, to check it against the endpoint's schema; the caller as the policy
    /// verified it.
    CheckBody(Option<Identity>),
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
        let mut then = None;
        let (reply, endpoint) = match project.lookup(&head.method, rest) {
            ProjectLookup::Found {
                endpoint,
                index,
                params,
            } => {
                // Stage 2: the project's policy.
                match policy::check(&project, index, &head, peer, self.accounts.as_ref()) {
                    Ok(Checked::Later(pending)) => {
                        then = Some(Then::Verify(pending));
                        (Err(ApiError::not_found()), Some(index))
                    }
                    Ok(Checked::Now(verified)) => 'handler: {
                        identity = verified;
                        if let Some(checks) = &endpoint.checks
                            && checks.checks_request()
                        {
                            if let Err(error) = check_head(checks, &params, &head) {
                                break 'handler (Err(error), Some(index));
                            }
                            if checks.reads_body() {
                                // The handler runs once the body is read and checked.
                                then = Some(Then::CheckBody(identity.clone()));
                                break 'handler (Err(ApiError::not_found()), Some(index));
                            }
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
        if then.is_some() {
            // The policy check, or the body's, has to wait: the handler runs after it, in
            // `finish`.
            return Served::Waiting(Box::new(Waiting {
                head,
                mounted: Some(mounted),
                reply,
                unread: body.into_rest(),
                then,
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
                then: None,
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
            then,
        } = *waiting;
        let capture = match &mounted {
            Some(mounted) if mounted.project.journal_size(self.telemetry.journal_size) > 0 => {
                self.telemetry.journal_body
            }
            _ => 0,
        };
        let mut captured = Captured::default();
        if let Some(then) = then {
            let (identity, head_checked) = match then {
                Then::Verify(pending) => match pending.await {
                    Ok(identity) => (Ok(identity), false),
                    Err(error) => {
                        if let Some(at) = &mut mounted {
                            // Refused by the policy: not the endpoint's answer (as when
                            // refused at once).
                            at.endpoint = None;
                        }
                        (Err(error), false)
                    }
                },
                Then::CheckBody(identity) => (Ok(identity), true),
            };
            reply = match (identity, &mut mounted) {
                (Ok(identity), Some(at)) => {
                    at.subject = identity.as_ref().map(|i| i.subject.clone());
                    let later = Later {
                        head: &mut head,
                        mounted: at,
                        identity,
                        head_checked,
                        capture,
                    };
                    self.respond_later(later, &mut unread, &mut captured, id, peer)
                        .await
                }
                (Ok(_), None) => Err(ApiError::internal(&"a verified request without a project")),
                (Err(error), _) => Err(error),
            };
        }
        let (mut response, body, handler) = self.wait(reply, unread, id, capture, captured).await;
        if handler
            && let Some(at) = &mounted
            && matches!(response.body(), Body::Upstream(_))
        {
            response = self.gather_to_check(&head, at, response).await;
        }
        cors_headers(&head, mounted.as_ref(), &mut response);
        let answer = Answered {
            response: &response,
            handler,
            body,
        };
        self.record(&head, mounted.as_ref(), answer, id, peer, start);
        response
    }

    /// Stage 3 for a request that waited for its policy check or for its body: finds its
    /// endpoint again (the same revision, so the same one), checks what is left to check
    /// and runs the handler with the verified caller. A body read to be checked goes to the
    /// handler whole, and its start to `captured`, for the journal.
    async fn respond_later(
        &self,
        later: Later<'_>,
        unread: &mut Option<Incoming>,
        captured: &mut Captured,
        id: &HeaderValue,
        peer: SocketAddr,
    ) -> Result<Reply, ApiError> {
        let upgrade = later.head.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let head = &*later.head;
        let project = &later.mounted.project;
        let rest = later.mounted.rest(head.uri.path());
        let ProjectLookup::Found {
            endpoint, params, ..
        } = project.lookup(&head.method, rest)
        else {
            return Err(ApiError::internal(&"a verified request's endpoint is gone"));
        };
        let mut body = match &endpoint.checks {
            Some(checks) if checks.checks_request() => {
                if !later.head_checked {
                    check_head(checks, &params, head)?;
                }
                if checks.reads_body() {
                    let limits = (self.body_limit, self.body_read_timeout);
                    check_body(checks, head, unread.take(), limits, later.capture, captured).await?
                } else {
                    RequestBody::from_rest(unread.take())
                }
            }
            _ => RequestBody::from_rest(unread.take()),
        };
        if endpoint.handler.forwards_upgrades() {
            body.set_upgrade(upgrade);
        }
        let identity = later.identity;
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

    /// An upstream's answer to an endpoint whose answers are checked (in a project in
    /// `development` mode), read whole first when it ends within the body limit and the
    /// body read timeout, so that the record stage can check it. An event stream is not
    /// held back.
    #[cold]
    async fn gather_to_check(
        &self,
        head: &Parts,
        at: &Mounted,
        response: Response<Body>,
    ) -> Response<Body> {
        let project = &at.project;
        let endpoint = at.endpoint.and_then(|index| project.handler(index));
        let streaming = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if answer_checks(project, endpoint).is_none()
            || streaming
            || head.method == http::Method::HEAD
        {
            return response;
        }
        let (parts, body) = response.into_parts();
        let limit = usize::try_from(self.body_limit).unwrap_or(usize::MAX);
        let deadline = tokio::time::Instant::now() + self.body_read_timeout;
        let (body, _) = body.gather(limit, deadline).await;
        Response::from_parts(parts, body)
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
        let response_invalid = match answer_checks(project, endpoint) {
            Some(checks) if answer.handler => check_answer(checks, project, head, response, id),
            _ => None,
        };
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
                response_invalid,
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

    /// Drains what is left of the body, keeping its first `capture` bytes (unless it was
    /// read and `captured` before), then waits for the reply. Also says whether the answer is the handler's (not an error of ours).
    async fn wait(
        &self,
        reply: Result<Reply, ApiError>,
        rest: Option<Incoming>,
        id: &HeaderValue,
        capture: usize,
        mut captured: Captured,
    ) -> (Response<Body>, Captured, bool) {
        // A body nobody took must still be read, so that the connection can carry the next
        // request; one over the limit is refused.
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
