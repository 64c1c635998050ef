//! Wiring, the listener, the request edge and graceful shutdown.
//!
//! [`start`] opens the store, loads and compiles every project, binds the listener and
//! serves until [`Server::shutdown`]. Each request passes through [`App::handle`], the
//! edge, in this order (outermost first):
//!
//! 1. panic guard — a panic in any handler becomes a logged 500, never a dropped connection;
//! 2. request id — the incoming `x-request-id` is kept if sane, else a UUIDv7 is made; it is
//!    set on every response and written into every error body;
//! 3. root dispatch — reserved first segments (`/auth`, `/admin`, `/health`, …) go to the
//!    platform API (axum); everything else is a project request;
//! 4. project request — one `ArcSwap` load of the route table, one hash lookup of the mount,
//!    one router lookup, one `match` on the handler. No lock, no store call, no await
//!    before the answer is built;
//! 5. error rendering — platform errors ride to the edge in response extensions and are
//!    written here, with the request id, by `error::render`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::accounts::Accounts;
use crate::body::Body;
use crate::changes::Changes;
use crate::config::Config;
use crate::demo::{self, DemoInfo};
use crate::error::{self, ApiError, Code, Pending};
use crate::handlers::Reply;
use crate::model::{Role, is_reserved_root};
use crate::observe;
use crate::platform::{self, AppState, PlatformConfig};
use crate::routing::{ProjectLookup, Routes, split_segment};
use crate::store::{self, Store, StoreError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error("creating the admin account: {0}")]
    Admin(String),
    #[error("creating the demo data: {0}")]
    Demo(String),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The state every request reaches.
struct App {
    routes: Arc<Routes>,
    platform: axum::Router,
    body_limit: u64,
}

/// A running node.
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    demo: Option<DemoInfo>,
}

impl Server {
    /// The address the listener is bound to (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `--demo` created, to print.
    pub fn demo(&self) -> Option<&DemoInfo> {
        self.demo.as_ref()
    }

    /// Stops accepting, lets in-flight requests finish (up to the shutdown timeout), then
    /// closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "server task failed");
        }
    }

    /// Serves until the process receives SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT stops the server");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Starts a node: store, projects, admin and demo data, listener.
pub async fn start(config: Config) -> Result<Server, ServerError> {
    let started = Instant::now();
    config.validate()?;
    let store: Arc<dyn Store> = store::open(&config.db).await?;
    let accounts = Accounts::new(store.clone(), &config);
    if let Some(admin) = &config.admin {
        bootstrap_admin(&accounts, &admin.username, &admin.password).await?;
    }
    let loaded = store.load_projects().await?;
    let projects = loaded.len();
    let endpoints: usize = loaded.iter().map(|p| p.project.endpoints.len()).sum();
    let routes = Arc::new(Routes::from_loaded(loaded));
    release_freed_memory();
    let changes = Arc::new(Changes::new(store.clone(), routes.clone()));
    let demo = if config.demo {
        Some(
            demo::seed(&accounts, &changes)
                .await
                .map_err(|e| ServerError::Demo(e.to_string()))?,
        )
    } else {
        None
    };
    let state = AppState {
        accounts,
        changes,
        config: Arc::new(PlatformConfig {
            registration: config.registration(),
            admin_body_limit: config.admin_body_limit,
        }),
    };
    let app = Arc::new(App {
        routes,
        platform: platform::router(state),
        body_limit: config.body_limit,
    });
    let addr = SocketAddr::new(config.listen, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let (shutdown, signal) = watch::channel(false);
    let task = tokio::spawn(serve(listener, app, signal, store, config.shutdown_timeout));
    let startup = started.elapsed();
    tracing::info!(%addr, projects, endpoints, startup_ms = startup.as_secs_f64() * 1000.0, "listening");
    Ok(Server {
        addr,
        shutdown,
        task,
        demo,
    })
}

async fn bootstrap_admin(
    accounts: &Accounts,
    username: &str,
    password: &str,
) -> Result<(), ServerError> {
    match accounts.store().user_by_name(username).await? {
        Some(user) if user.role == Role::Admin => Ok(()),
        Some(_) => Err(ServerError::Admin(format!(
            "`{username}` exists and is not an admin; choose another SWITCHYARD_ADMIN_USER"
        ))),
        None => {
            accounts
                .register(username, password, Some(Role::Admin))
                .await
                .map_err(|e| ServerError::Admin(e.to_string()))?;
            tracing::info!(%username, "admin account created");
            Ok(())
        }
    }
}

/// The accept loop, then the drain.
async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut signal: watch::Receiver<bool>,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
) {
    // HTTP/1.1 only: detecting HTTP/2 prior knowledge on every connection costs each request
    // a wrapped read path, and no client of the foundation speaks h2c.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = signal.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(request, peer).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(shutdown_timeout) => {
            tracing::warn!(timeout = ?shutdown_timeout, "in-flight requests did not finish in time");
        }
    }
    store.close().await;
}

impl App {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let id = observe::request_id(request.headers());
        let guarded =
            std::panic::AssertUnwindSafe(self.dispatch(request, &id, peer)).catch_unwind();
        let mut response = match guarded.await {
            Ok(response) => response,
            Err(_) => {
                tracing::error!(request_id = ?id, "handler panicked");
                error::render(
                    &ApiError::new(Code::Internal, "internal error"),
                    id_str(&id),
                )
            }
        };
        response.headers_mut().insert(observe::REQUEST_ID, id);
        response
    }

    async fn dispatch(
        &self,
        mut request: Request<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = request.uri().path();
        let first = path
            .strip_prefix('/')
            .map(|rest| split_segment(rest).0)
            .unwrap_or("");
        if first.is_empty() || is_reserved_root(first) {
            request.extensions_mut().insert(RequestId(id.clone()));
            request.extensions_mut().insert(ClientAddr(peer));
            // Boxed so that the project path's future stays small: the platform's is large,
            // and every request would otherwise copy it around.
            return Box::pin(self.platform(request, id)).await;
        }
        let reply = self.project(&request);
        // Mock answers do not depend on the body, but it must be read so that the
        // connection can carry the next request; a body over the limit is refused.
        if !request.body().is_end_stream()
            && let Err(error) = drain(request.into_body(), self.body_limit).await
        {
            return error::render(&error, id_str(id));
        }
        match reply {
            Ok(Reply::Now(response)) => response,
            Ok(Reply::After(delay, response)) => {
                tokio::time::sleep(delay).await;
                response
            }
            Err(error) => error::render(&error, id_str(id)),
        }
    }

    /// The hot path. Synchronous on purpose: the route table guard never crosses an await.
    fn project(&self, request: &Request<Incoming>) -> Result<Reply, ApiError> {
        let table = self.routes.load();
        let (project, rest) = table
            .resolve(request.uri().path())
            .ok_or_else(ApiError::not_found)?;
        match project.lookup(request.method(), rest) {
            ProjectLookup::Found { handler, .. } => Ok(handler.respond()),
            ProjectLookup::MethodNotAllowed(allow) => Err(ApiError::method_not_allowed(allow)),
            ProjectLookup::NotFound => Err(ApiError::not_found()),
            ProjectLookup::Unavailable(problem) => {
                tracing::warn!(project = %project.def.mount(), %problem, "request to a project that does not compile");
                Err(ApiError::new(
                    Code::ProjectUnavailable,
                    "this project's definition does not compile; its owner can fix it through the admin API",
                ))
            }
        }
    }

    async fn platform(&self, request: Request<Incoming>, id: &HeaderValue) -> Response<Body> {
        let response = match self
            .platform
            .clone()
            .oneshot(request.map(axum::body::Body::new))
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if let Some(Pending(error)) = response.extensions().get::<Pending>() {
            return error::render(error, id_str(id));
        }
        let status = response.status();
        let bare = !response.headers().contains_key(http::header::CONTENT_TYPE);
        if (status.is_client_error() || status.is_server_error()) && bare {
            // A layer below us answered with a bare status (axum's 405 for a known path);
            // give it our format, keeping `Allow`.
            let allow = response
                .headers()
                .get(http::header::ALLOW)
                .and_then(|v| v.to_str().ok());
            let error = match allow {
                Some(allow) if status == http::StatusCode::METHOD_NOT_ALLOWED => {
                    ApiError::method_not_allowed(allow)
                }
                _ => ApiError::from_status(status),
            };
            return error::render(&error, id_str(id));
        }
        response.map(Body::Axum)
    }
}

/// Hands memory freed after loading (parsed rows, temporary strings) back to the OS, so that
/// idle RSS reflects what the node keeps, not the peak of reading the store.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointers from us and
    // is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads and discards a request body, refusing one longer than `limit`.
async fn drain(mut body: Incoming, limit: u64) -> Result<(), ApiError> {
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(Code::BadRequest, format!("could not read the body: {e}"))
        })?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            if total > limit {
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!("the body is larger than the limit of {limit} bytes"),
                ));
            }
        }
    }
    Ok(())
}

/// The request id, in request extensions for platform handlers that log it.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// The address of the connection's peer, in request extensions for platform handlers that
/// limit per client (failed logins).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

fn id_str(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("unknown")
}
