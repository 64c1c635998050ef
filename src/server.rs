//! Wiring, the listener, the request edge and graceful shutdown.
//!
//! [`start`] opens the store, loads and compiles every project, binds the listener and
//! serves until [`Server::shutdown`]. Each request passes through [`Connection::answer`],
//! the edge, in this order (outermost first). An answer made without waiting (a literal
//! mock, most errors) is handed to hyper as a ready value; only a request that has to wait
//! (a body, a delay, the platform API) gets a boxed future.
//!
//! 1. request id — the incoming `x-request-id` is kept if sane, else a UUIDv7 is made; it is
//!    set on every response and written into every error body;
//! 2. root dispatch — reserved first segments (`/auth`, `/admin`, `/health`, …) go to the
//!    platform API (axum); everything else is a project request;
//! 3. panic guard — around the pipeline and the platform: a panic in any handler becomes a
//!    logged 500, never a dropped connection;
//! 4. project request — one `ArcSwap` load of the route table, one hash lookup of the mount,
//!    one router lookup, one `match` on the handler. No lock, no store call, no await
//!    before the answer is built;
//! 5. error rendering — platform errors ride to the edge in response extensions and are
//!    written here, with the request id, by `error::render`.
//!
//! No slow or stuck client holds a server resource past a limit (`config::ConnectionLimits`):
//!
//! - connections: at most `max_connections` are open; beyond it the accept loop waits for
//!   one to close (new clients wait in the kernel's listen backlog), still watching for
//!   shutdown. At start the open-file soft limit is raised to fit, or a warning says why not;
//! - idle and header read timeouts: each socket is wrapped in `Guarded`, which follows the
//!   connection's phase. Idle (after connecting, or once an answer is ready, until a byte of
//!   the next request arrives) is bounded by `idle_timeout`; a partly received request head
//!   by `header_read_timeout`, from its first byte. Past either the connection is closed
//!   without an answer. One sweeper task per node keeps every connection's deadline
//!   (`deadlines`): a phase change is a relaxed store, so the hot path pays no timer,
//!   allocation, lock or system call for this;
//! - body read timeout: reading a request body (`drain` here, `platform::extract` for the
//!   platform) stops after `body_read_timeout` with `408 request_timeout`, and that answer
//!   closes the connection; a dataset upload, which may rightly take longer, stops when its
//!   body makes no progress for that long. Requests without a body do not start this timer;
//! - head size: hyper answers a head over `max_header_size` with a bare 431 and closes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

mod deadlines;

use self::deadlines::{Deadlines, Watch};
use crate::accounts::Accounts;
use crate::body::Body;
use crate::changes::Changes;
use crate::config::{Config, ConnectionLimits};
use crate::demo::{self, DemoInfo};
use crate::error::{self, ApiError, Code, Pending};
use crate::model::{Layout, Role, is_reserved_root};
use crate::observe;
use crate::observe::{Stamp, Telemetry};
use crate::pipeline::{Pipeline, Served, record};
use crate::platform::{self, AppState, PlatformConfig};
use crate::routing::{Routes, split_segment};
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
    #[error("gateway configuration {0}")]
    Gateway(#[from] crate::gateway::GatewayError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Which first path segments the node answers itself rather than routing to projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reserved {
    /// The platform: `/auth`, `/admin`, `/health`, … (`model::RESERVED_NAMES`) and `/`.
    Platform,
    /// Gateway mode: only `/health`, `/ready`, `/stats` and `/metrics`; the file's routes
    /// take everything else, `/` included.
    Gateway,
    /// `serve --projects`: those of gateway mode, and the combined `/openapi.json`,
    /// `/docs` and `/redoc`.
    Folders,
    /// `run`: none; the one project takes every path.
    Nothing,
}

/// The state every request reaches.
struct App {
    /// Project requests.
    pipeline: Pipeline,
    /// Reserved paths: `/auth`, `/admin`, `/health`, `/stats`, …
    platform: axum::Router,
    reserved: Reserved,
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

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_signal() {
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
    Ok(start_node(config, Layout::Owner).await?.server)
}

/// A running node and its change path, for a caller that makes the projects itself
/// (`projects::host`: project folders).
pub struct Node {
    pub server: Server,
    pub changes: Arc<Changes>,
    pub accounts: Accounts,
}

/// Starts a node whose projects are mounted as `layout` says. In the `Owner` layout it is
/// the platform; in the others (project folders) only `/health`, `/ready`, `/stats`,
/// `/metrics` and the combined docs (`Name`), or nothing (`Root`), are reserved.
pub async fn start_node(config: Config, layout: Layout) -> Result<Node, ServerError> {
    let started = Instant::now();
    config.validate()?;
    limit_arenas();
    let store: Arc<dyn Store> = store::open(&config.db).await?;
    let accounts = Accounts::new(store.clone(), &config);
    if let Some(admin) = &config.admin {
        bootstrap_admin(&accounts, &admin.username, &admin.password).await?;
    }
    fix_mmap_threshold();
    let loaded = store.load_projects().await?;
    let projects = loaded.len();
    let endpoints: usize = loaded.iter().map(|p| p.project.endpoints.len()).sum();
    let registry = Arc::new(crate::backends::Registry::with_allow(config.proxy_allow()?));
    let scripts = crate::scripts::ScriptHost::from_settings(store.clone(), &config.scripts);
    let mut datasets = crate::datasets::load_all(&*store).await?;
    // Side by side: each script compiles on a thread of its own.
    let compiled = futures_util::future::join_all(loaded.into_iter().map(|project| {
        let datasets = datasets.remove(&project.project.id).unwrap_or_default();
        let scripts = &scripts;
        async move {
            let script = scripts.compile_stored(&project.project).await;
            (project, script, datasets)
        }
    }))
    .await;
    let routes = Arc::new(match layout {
        Layout::Owner => Routes::from_loaded(compiled, &registry),
        // Project folders start from an empty store of their own.
        _ => Routes::with_layout(layout),
    });
    release_freed_memory();
    let telemetry = Arc::new(Telemetry::new(config.journal_size, config.journal_body));
    let changes = Arc::new(Changes::new(
        store.clone(),
        routes.clone(),
        config.quotas.clone(),
        config.commit_gate.clone(),
        telemetry.clone(),
        registry,
        scripts,
    ));
    let demo = if config.demo {
        Some(
            demo::seed(&accounts, &changes)
                .await
                .map_err(|e| ServerError::Demo(e.to_string()))?,
        )
    } else {
        None
    };
    let accounts_for_requests = accounts.clone();
    let pages = Arc::new(config.pages.clone());
    let node_changes = changes.clone();
    let node_accounts = accounts.clone();
    let state = AppState {
        accounts,
        changes,
        telemetry: telemetry.clone(),
        config: Arc::new(PlatformConfig {
            registration: config.registration(),
            admin_body_limit: config.admin_body_limit,
            body_read_timeout: config.limits.body_read_timeout,
            datasets: config.datasets,
            pages: pages.clone(),
        }),
    };
    let (platform, reserved) = match layout {
        Layout::Owner => (platform::router(state), Reserved::Platform),
        Layout::Name => (
            platform::folders_router(routes.clone(), telemetry.clone(), pages.clone()),
            Reserved::Folders,
        ),
        Layout::Root => (platform::folder_assets_router(), Reserved::Nothing),
    };
    let app = Arc::new(App {
        pipeline: Pipeline {
            routes,
            telemetry,
            body_limit: config.body_limit,
            body_read_timeout: config.limits.body_read_timeout,
            access_log: config.access_log,
            accounts: Some(accounts_for_requests),
            pages: pages.clone(),
        },
        platform,
        reserved,
    });
    let server = launch(app, &config, Some(store)).await?;
    let startup = started.elapsed();
    if layout == Layout::Owner {
        tracing::info!(addr = %server.addr, projects, endpoints, startup_ms = startup.as_secs_f64() * 1000.0, "listening");
    }
    Ok(Node {
        server: Server { demo, ..server },
        changes: node_changes,
        accounts: node_accounts,
    })
}

/// Starts a node in gateway mode: the routes, backends and default response of the YAML
/// file at `file` (see `gateway`), followed as it changes; no store, no accounts, and only
/// `/health`, `/ready`, `/stats` and `/metrics` reserved. `config.db` is not used.
pub async fn start_gateway(
    config: Config,
    file: std::path::PathBuf,
) -> Result<Server, ServerError> {
    // Registration has no meaning here; the rest of the settings is checked as for `serve`.
    let mut checked = config.clone();
    checked
        .registration
        .get_or_insert(crate::config::Registration::Closed);
    checked.validate()?;
    let telemetry = Arc::new(Telemetry::new(config.journal_size, config.journal_body));
    let registry = Arc::new(crate::backends::Registry::new());
    let routes = Arc::new(Routes::new(Default::default()));
    let gateway = crate::gateway::Gateway::load(file, routes.clone(), registry)?;
    let app = Arc::new(App {
        pipeline: Pipeline {
            routes: routes.clone(),
            telemetry: telemetry.clone(),
            body_limit: config.body_limit,
            body_read_timeout: config.limits.body_read_timeout,
            access_log: config.access_log,
            accounts: None,
            pages: Arc::new(config.pages.clone()),
        },
        platform: platform::gateway_router(routes, telemetry),
        reserved: Reserved::Gateway,
    });
    let server = launch(app, &config, None).await?;
    tokio::spawn(gateway.watch(server.shutdown.subscribe()));
    tracing::info!(addr = %server.addr, "gateway listening");
    Ok(server)
}

/// Binds the listener and serves `app` on it until shutdown.
async fn launch(
    app: Arc<App>,
    config: &Config,
    store: Option<Arc<dyn Store>>,
) -> Result<Server, ServerError> {
    raise_fd_limit(config.limits.max_connections);
    let addr = SocketAddr::new(config.listen, config.port);
    let listener = bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let (shutdown, signal) = watch::channel(false);
    let task = tokio::spawn(serve(
        listener,
        app,
        signal,
        store,
        config.limits.clone(),
        config.shutdown_timeout,
    ));
    Ok(Server {
        addr,
        shutdown,
        task,
        demo: None,
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
    store: Option<Arc<dyn Store>>,
    limits: ConnectionLimits,
    shutdown_timeout: Duration,
) {
    // HTTP/1.1 only: detecting HTTP/2 prior knowledge on every connection costs each request
    // a wrapped read path, and no client of the foundation speaks h2c.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    // Each answer is copied into one buffer and sent with one `write`: for the small answers
    // that dominate (a mock's head and body), that costs less than queueing both for a
    // `writev` (about 420 instructions a request of 12,400). The buffer is reused and never
    // shrunk, so what it may hold is bounded: `Body` hands hyper at most `body::MAX_FRAME`
    // at a time, and hyper stops taking more while `max_buf_size` is buffered. A connection
    // thus keeps at most `WRITE_BUFFER` plus one frame after a large answer.
    builder.writev(false);
    // hyper's own header read timeout stays off: it counts the idle time after an answer as
    // header time (so an idle timeout longer than it could never apply), and it allocates and
    // registers a timer for every request. `Guarded` and the sweeper (`deadlines`) time both
    // phases without a timer per connection. Without a timer hyper would silently ignore the setting; saying `None`
    // keeps that choice visible.
    builder.header_read_timeout(None);
    // hyper answers a head over this size with a bare 431 and closes the connection.
    builder.max_header_size(limits.max_header_size);
    // The read buffer must be able to hold the largest head we accept.
    builder.max_buf_size(limits.max_header_size.max(WRITE_BUFFER));
    let deadlines = Deadlines::new(limits.idle_timeout, limits.header_read_timeout);
    let sweeper = {
        let telemetry = app.pipeline.telemetry.clone();
        tokio::spawn(deadlines.clone().sweep(move || telemetry.resync()))
    };
    // One permit per open connection: when none is left the loop stops accepting and new
    // clients wait in the kernel's listen backlog; a closing connection frees its permit.
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    // Every connection task holds a sender; once the loop has dropped its own, `recv` ends
    // when the last connection has.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = signal.changed() => break,
        };
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
        let connection = Arc::new(Connection {
            app: app.clone(),
            peer,
            watch: deadlines.watch(),
        });
        let io = Guarded {
            stream,
            connection: connection.clone(),
        };
        let service = hyper::service::service_fn(move |request| {
            connection.watch.busy();
            connection.answer(request)
        });
        // Upgrades: a proxy endpoint passes a WebSocket (or any `Upgrade`) through.
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let telemetry = app.pipeline.telemetry.clone();
        telemetry.connections.fetch_add(1, Ordering::Relaxed);
        let deadlines = deadlines.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            // Shutting down: the sweeper wakes every connection, and each one asks hyper to
            // finish the request in flight, if any, and close. One relaxed load per poll,
            // where a shutdown watcher would poll a `Notified` future.
            let ended = std::future::poll_fn(|cx| {
                if !closing && deadlines.closing() {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                connection.as_mut().poll(cx)
            })
            .await;
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
            telemetry.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    deadlines.close_all();
    tokio::select! {
        _ = all_closed.recv() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(shutdown_timeout) => {
            tracing::warn!(timeout = ?shutdown_timeout, "in-flight requests did not finish in time");
        }
    }
    sweeper.abort();
    if let Some(store) = store {
        store.close().await;
    }
}

/// Connections the kernel may hold, handshake done, until the accept loop takes them. A
/// burst of clients larger than this has some of its handshakes ignored: those clients
/// think themselves connected while the server only sees them after its SYN-ACK is
/// retransmitted, seconds later. Linux caps it at `net.core.somaxconn` (4096 by default
/// since 5.4); std and tokio ask for 1024, nginx 511.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (so a restarted node can
/// bind at once while old connections linger in `TIME_WAIT`), as `TcpListener::bind` would
/// set but for the backlog.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What a connection buffers of an answer before sending it (hyper's `max_buf_size`, which
/// also bounds its read buffer; raised to the largest request head accepted when that is
/// larger). hyper's default, about 400 KiB, would let every connection that once sent a
/// large answer keep that much.
const WRITE_BUFFER: usize = 64 * 1024;

/// What one connection's requests share.
struct Connection {
    app: Arc<App>,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

/// The socket of a connection, reporting its phases to the node's [`Deadlines`]: reading
/// a head, idle once an answer is ready (the service reports busy and idle). When the socket
/// has to wait and the phase's deadline has passed, the read or write fails with
/// `TimedOut`, and hyper closes the connection.
struct Guarded {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl Guarded {
    /// Called when IO has to wait: `Pending` (woken by the sweeper should the deadline
    /// pass), or the error to hand hyper once it has.
    fn wait<T>(&self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.connection.watch.overdue_waiting(cx) {
            Some(what) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what))),
            None => Poll::Pending,
        }
    }

    /// What a write of the socket answered, with the connection's deadline applied.
    #[inline]
    fn written(
        &self,
        polled: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Pending => self.wait(cx),
            ready => {
                self.connection.watch.wrote_some();
                ready
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this.wait(cx),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.connection.watch.read_some();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for Guarded {
    // A write that waits after the answer was handed over is a client that does not read
    // it: the idle timeout bounds that too (from the last write that made progress).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Makes room for `max_connections` sockets: raises the soft open-file limit toward the hard
/// one when it is lower, and says so plainly when even the hard limit is too low.
fn raise_fd_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        // The store, the listener and the runtime need a few descriptors of their own.
        let wanted = (max_connections as libc::rlim_t).saturating_add(64);
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own and pass by pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        let current = limit.rlim_cur;
        if current >= wanted {
            return;
        }
        let raised = wanted.min(limit.rlim_max);
        if raised > current {
            let new = libc::rlimit {
                rlim_cur: raised,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct we own; it changes only this process's limit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
                tracing::info!(from = current, to = raised, "raised the open-file limit");
            } else {
                tracing::warn!(limit = current, "could not raise the open-file limit");
                return;
            }
        }
        if raised < wanted {
            tracing::warn!(
                limit = raised,
                max_connections,
                "the open-file limit is below SWITCHYARD_MAX_CONNECTIONS; accepts will fail \
                 before the cap is reached (raise `ulimit -n`)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

/// What the service hands hyper for one request: the answer itself when it was made without
/// waiting (a literal mock, most errors), else a boxed future. The common answer thus costs
/// no future state to build, move and poll.
type Answer = futures_util::future::Either<
    std::future::Ready<Result<Response<Body>, Infallible>>,
    Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>,
>;

/// What the edge hands to a boxed future: a request that has to wait.
enum Later {
    /// A project request whose answer needs a wait.
    Project(Box<crate::pipeline::Waiting>),
    /// A request to a reserved path, for the platform API. Boxed like the other: this
    /// value only moves into the future.
    Platform(Box<Request<Incoming>>),
}

impl Connection {
    /// The edge: answers one request of this connection. Root dispatch happens here:
    /// reserved first segments (and `/`) go to the platform, the rest to the project
    /// pipeline, which answers what needs no wait at once.
    fn answer(self: &Arc<Self>, request: Request<Incoming>) -> Answer {
        let start = Stamp::now();
        let app = &self.app;
        let telemetry = &app.pipeline.telemetry;
        let id = observe::request_id(request.headers(), || telemetry.unix_ms_at(start));
        if self.app.reserves(request.uri().path()) {
            return self.later(Later::Platform(Box::new(request)), id, start);
        }
        let peer = self.peer;
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app.pipeline.serve(request, &id, peer, start)
        }));
        let mut response = match served {
            Ok(Served::Now(response)) => response,
            Ok(Served::Waiting(waiting)) => return self.later(Later::Project(waiting), id, start),
            Err(_) => app.panicked(&id, start),
        };
        observe::set_request_id(response.headers_mut(), id);
        self.watch.idle();
        futures_util::future::Either::Left(std::future::ready(Ok(response)))
    }

    /// The boxed future of a request that has to wait, under the same panic guard.
    fn later(self: &Arc<Self>, later: Later, id: HeaderValue, start: Stamp) -> Answer {
        let connection = self.clone();
        futures_util::future::Either::Right(Box::pin(async move {
            let app = &connection.app;
            let peer = connection.peer;
            let answer = async {
                match later {
                    Later::Project(waiting) => app.pipeline.finish(waiting, &id, peer, start).await,
                    Later::Platform(request) => {
                        app.platform_request(*request, &id, peer, start).await
                    }
                }
            };
            let guarded = std::panic::AssertUnwindSafe(answer).catch_unwind();
            let mut response = match guarded.await {
                Ok(response) => response,
                Err(_) => app.panicked(&id, start),
            };
            observe::set_request_id(response.headers_mut(), id);
            // An upgraded connection is a tunnel from now on: it stays busy (no idle or head
            // deadline) until either side closes it.
            if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                connection.watch.idle();
            }
            Ok(response)
        }))
    }
}

/// Whether `path` is for the platform: `/`, or a reserved first segment.
/// Names gateway mode keeps for itself.
const GATEWAY_RESERVED: &[&str] = &["health", "ready", "stats", "metrics"];
/// Names `serve --projects` keeps for itself besides gateway mode's: the combined docs.
const FOLDERS_DOCS: &[&str] = &["openapi.json", "docs", "redoc"];

impl App {
    /// Does the node answer this path itself (rather than a project)?
    #[inline]
    fn reserves(&self, path: &str) -> bool {
        let first = path
            .strip_prefix('/')
            .map(|rest| split_segment(rest).0)
            .unwrap_or("");
        match self.reserved {
            Reserved::Platform => first.is_empty() || is_reserved_root(first),
            Reserved::Gateway => GATEWAY_RESERVED.contains(&first),
            Reserved::Folders => GATEWAY_RESERVED.contains(&first) || FOLDERS_DOCS.contains(&first),
            // The docs pages' assets: the project's `/docs` loads them.
            Reserved::Nothing => path.starts_with(crate::openapi::pages::ASSETS),
        }
    }

    /// The 500 of a handler that panicked, counted (a panic never drops the connection).
    fn panicked(&self, id: &HeaderValue, start: Stamp) -> Response<Body> {
        tracing::error!(request_id = ?id, "handler panicked");
        let response = error::render(
            &ApiError::new(Code::Internal, "internal error"),
            error::id_str(id),
        );
        let outcome = record::measure(&self.pipeline.telemetry, &response, start);
        record::instance(&self.pipeline.telemetry, outcome);
        response
    }

    /// A request to a reserved path: the platform answers it, and it is counted and logged
    /// like a project request but for the observability endpoints.
    async fn platform_request(
        &self,
        mut request: Request<Incoming>,
        id: &HeaderValue,
        peer: SocketAddr,
        start: Stamp,
    ) -> Response<Body> {
        let path = request.uri().path();
        let counted = observe::counted(path);
        let logged = self.pipeline.access_log && observe::logged(path);
        let head = logged.then(|| (request.method().clone(), request.uri().clone()));
        request.extensions_mut().insert(RequestId(id.clone()));
        request.extensions_mut().insert(ClientAddr(peer));
        // Every log line a platform handler writes names the request.
        let span = tracing::info_span!("request", request_id = error::id_str(id));
        let response = tracing::Instrument::instrument(self.platform(request, id), span).await;
        let telemetry = &self.pipeline.telemetry;
        let outcome = record::measure(telemetry, &response, start);
        if counted {
            record::instance(telemetry, outcome);
        }
        if let Some((method, uri)) = &head {
            let line = record::Line {
                id,
                client: peer,
                method,
                uri,
                project: None,
            };
            record::access(line, &response, outcome);
        }
        response
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
            return error::render(error, error::id_str(id));
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
            return error::render(&error, error::id_str(id));
        }
        response.map(Body::Axum)
    }
}

/// Fixes glibc's mmap threshold at 4 MiB. Left dynamic, glibc raises it whenever a mapped
/// block is freed (the 19 MiB argon2 buffer of the first login raises it to 19 MiB), after
/// which the large buffers of a big change (request bodies, answers, the router of 100,000
/// endpoints) come from the heap and stay in the RSS once freed; mapped, they go back at
/// once. Not lower: adding an endpoint copies the router's flat buffers (about 1.6 MB at
/// 10,000 endpoints), and mapping fresh pages for them on every add (page faults, zeroing,
/// unmapping) cost more than the copy itself: server CPU per add at 10,000 endpoints was
/// 1.6 ms at 128 KiB and 0.74 ms at 4 MiB, with the same RSS after a 100,000-endpoint `PUT`.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning value of glibc's allocator; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    }
}

/// Lets glibc keep as many malloc arenas as there are worker threads. By default every thread
/// that meets a busy arena gets one of its own (up to eight per core), and a big change
/// parsed on a worker and compiled on a blocking thread leaves free holes in arenas that the
/// other threads never reuse: with 100,000 endpoints and one worker that was 82 MB of RSS
/// after the `PUT` instead of 78 MB. One arena per worker keeps workers from queueing at a
/// shared lock; besides, most small allocations come from glibc's per-thread cache, which
/// takes none. Called first thing, before the store's threads start allocating.
fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let workers = tokio::runtime::Handle::try_current()
            .map_or(1, |runtime| runtime.metrics().num_workers());
        let arenas = libc::c_int::try_from(workers.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a tuning value of glibc's allocator; it takes no pointers.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Gives freed memory back to the OS shortly after a large change: by then the replaced
/// revision (freed on a blocking thread by `routing::retire`) and the request's own buffers
/// are gone. Without it glibc keeps the change's peak as RSS.
pub(crate) fn release_memory_soon() {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tokio::task::spawn_blocking(release_freed_memory).await;
    });
}

/// Hands memory freed after loading (parsed rows, temporary strings) back to the OS, so that
/// idle RSS reflects what the node keeps, not the peak of reading the store.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointers from us and
    // is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The request id, in request extensions for platform handlers that log it.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// The address of the connection's peer, in request extensions for platform handlers that
/// limit per client (failed logins).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
