//! Keep-alive connections to one target, and sending a request on one of them.
//!
//! A [`Pool`] per target authority (and restriction: a restricted backend's connections
//! were made to addresses `--proxy-allow` permits, so they are kept apart): idle HTTP/1.1
//! connections (hyper's `client::conn::http1`, each driven by its own task), used last in,
//! first out so that the warmest is used next. Sending takes an idle connection that is
//! ready, or opens one within the backend's connect timeout; the answer's body carries the
//! connection back ([`Returning`]) and puts it back in the pool once the body has been read
//! to its end. A body dropped half-read, an error or an upgrade closes the connection
//! instead. A request that a reused connection could not even start sending (the target
//! closed it while it was idle) is sent again on a fresh connection.
//!
//! The response head must come before a deadline. Each connection keeps its timer for its
//! whole life and moves it to the next request's deadline: a later deadline only moves an
//! atomic (tokio's timer entries are re-registered lazily), where a timer per request would
//! take the timer wheel's lock twice per request.
//!
//! Idle connections are kept for [`POOL_IDLE`], at most [`MAX_IDLE_PER_TARGET`] per pool;
//! a reaper task, running while a pool has idle connections, closes the expired ones.
//!
//! The request path: a pool's lock is held to pop or push one connection (no await, no
//! allocation under it). Opening a connection resolves the name (`getaddrinfo` on a
//! blocking thread; an IP address is used as it is) and keeps, for a restricted pool, only
//! the addresses `--proxy-allow` permits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::allow::ProxyAllow;
use super::client::{Failure, Outgoing};
use super::health::{self, Health};

/// How long an idle pooled connection is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(90);
/// The most idle connections a pool keeps; more than that in use at once are closed when
/// they are done rather than pooled.
pub const MAX_IDLE_PER_TARGET: usize = 256;
/// The most an upstream connection buffers of what it reads: the largest response head
/// accepted (a larger one is a 502), and so the largest body frame read at once. hyper's
/// default, about 400 KiB, would be kept by every pooled connection that once read fast.
pub const READ_BUFFER: usize = 64 * 1024;
/// TCP keep-alive probes on upstream connections, so that a pooled connection whose peer
/// vanished is found out.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Why a request could not be sent, or got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The name does not resolve, or not to an address `--proxy-allow` permits.
    #[error("cannot resolve `{host}`: {error}")]
    Resolve { host: String, error: io::Error },
    /// Connecting failed (the OS's error).
    #[error("cannot connect to {address}: {error}")]
    Connect {
        address: SocketAddr,
        error: io::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(Duration),
    /// The deadline passed before the response head came.
    #[error("no response head before the deadline")]
    Timeout,
    /// The exchange failed once connected: reset, closed early, or not valid HTTP.
    #[error(transparent)]
    Exchange(#[from] hyper::Error),
}

impl SendError {
    /// What it means for the target and the caller.
    pub fn failure(&self) -> Failure {
        match self {
            SendError::Resolve { .. } => Failure::Unreachable,
            SendError::ConnectTimeout(_) => Failure::ConnectTimeout,
            SendError::Connect { error, .. } => Failure::of_connect(error),
            SendError::Exchange(_) | SendError::Timeout => Failure::Exchange,
        }
    }
}

/// The keep-alive connections to one target authority.
pub struct Pool {
    authority: Authority,
    /// For a restricted pool: the addresses it may connect to.
    allow: Option<Arc<ProxyAllow>>,
    /// Idle connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// Whether a reaper task is watching `idle`.
    reaping: AtomicBool,
}

struct Idle {
    sender: http1::SendRequest<Outgoing>,
    timer: Timer,
    /// When it was put back ([`health::now_ms`]).
    since: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("authority", &self.authority)
            .field("restricted", &self.allow.is_some())
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Pool {
    pub fn new(authority: Authority, allow: Option<Arc<ProxyAllow>>) -> Pool {
        Pool {
            authority,
            allow,
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
        }
    }

    /// How many idle connections it holds.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `request` (origin-form URI, its `host` set) on an idle connection, or on a new
    /// one opened within `connect_timeout`, and waits for the response head until
    /// `deadline` ([`SendError::Timeout`] past it). The body of the answer gives the
    /// connection back once read to its end.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<Outgoing>,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<Response<Returning>, SendError> {
        let mut request = request;
        // Idle connections first; a request one of them could not start sending is tried
        // on the next, then on a fresh one.
        while let Some((mut sender, mut timer)) = self.checkout() {
            timer.as_mut().reset(deadline);
            match before(&mut timer, sender.try_send_request(request)).await {
                None => return Err(SendError::Timeout),
                Some(Ok(response)) => return Ok(self.lease(response, sender, timer)),
                Some(Err(mut error)) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Exchange(error.into_error())),
                },
            }
        }
        // Boxed: connecting is the rare path, and its future is large; unboxed, every send
        // would carry (and move) its space.
        Box::pin(self.fresh(request, connect_timeout, deadline)).await
    }

    /// Sends `request` on a new connection.
    async fn fresh(
        self: &Arc<Self>,
        request: Request<Outgoing>,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<Response<Returning>, SendError> {
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        let Some(connected) = before(&mut timer, self.connect(connect_timeout)).await else {
            return Err(SendError::Timeout);
        };
        let mut sender = connected?;
        let Some(response) = before(&mut timer, sender.send_request(request)).await else {
            return Err(SendError::Timeout);
        };
        Ok(self.lease(response?, sender, timer))
    }

    /// The answer, with its connection to give back.
    fn lease(
        self: &Arc<Self>,
        response: Response<Incoming>,
        sender: http1::SendRequest<Outgoing>,
        timer: Timer,
    ) -> Response<Returning> {
        response.map(|body| {
            Returning::new(
                body,
                Lease {
                    pool: Arc::clone(self),
                    sender,
                    timer,
                },
            )
        })
    }

    /// An idle connection ready for a request, if there is one; closes the expired and
    /// closed ones it meets. One still finishing its last exchange (rare: its answer was
    /// read before its request was sent whole) is left in the pool.
    fn checkout(&self) -> Option<(http1::SendRequest<Outgoing>, Timer)> {
        let now = health::now_ms();
        let mut idle = self.lock();
        let mut busy = None;
        let found = loop {
            let Some(candidate) = idle.pop() else {
                break None;
            };
            if candidate.sender.is_ready() && !expired(candidate.since, now) {
                break Some((candidate.sender, candidate.timer));
            }
            if !candidate.sender.is_closed() && !expired(candidate.since, now) && busy.is_none() {
                busy = Some(candidate);
            }
        };
        if let Some(busy) = busy {
            idle.insert(0, busy);
        }
        found
    }

    /// Puts a connection back, unless the pool is full or the connection closed.
    fn put_back(self: &Arc<Self>, sender: http1::SendRequest<Outgoing>, timer: Timer) {
        if sender.is_closed() {
            return;
        }
        {
            let mut idle = self.lock();
            if idle.len() >= MAX_IDLE_PER_TARGET {
                return;
            }
            idle.push(Idle {
                sender,
                timer,
                since: health::now_ms(),
            });
        }
        if !self.reaping.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(reap(Arc::downgrade(self)));
                }
                Err(_) => self.reaping.store(false, Ordering::Release),
            }
        }
    }

    /// Opens a connection within `timeout` (name resolution included) and waits until it
    /// can take a request.
    async fn connect(&self, timeout: Duration) -> Result<http1::SendRequest<Outgoing>, SendError> {
        let stream = tokio::time::timeout(timeout, self.open())
            .await
            .map_err(|_| SendError::ConnectTimeout(timeout))??;
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let (mut sender, connection) = http1::Builder::new()
            .max_buf_size(READ_BUFFER)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "an upstream connection ended with an error");
            }
        });
        sender.ready().await?;
        Ok(sender)
    }

    /// A TCP connection to the first of the target's addresses that accepts one.
    async fn open(&self) -> Result<TcpStream, SendError> {
        let addresses = self.resolve().await?;
        let mut last = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last = Some(SendError::Connect { address, error }),
            }
        }
        Err(last.unwrap_or_else(|| SendError::Resolve {
            host: self.authority.host().to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "no address"),
        }))
    }

    /// The target's addresses: an IP address as it is, a name through the system's
    /// resolver; for a restricted pool, only those `--proxy-allow` permits.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, SendError> {
        let host = self.authority.host();
        let port = self.authority.port_u16().unwrap_or(80);
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let found = if let Ok(ip) = literal.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            let name = host.to_owned();
            let resolved = tokio::task::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                    .map(Iterator::collect::<Vec<_>>)
            })
            .await
            .map_err(io::Error::other)
            .and_then(|result| result);
            resolved.map_err(|error| SendError::Resolve {
                host: host.to_owned(),
                error,
            })?
        };
        let Some(allow) = &self.allow else {
            return Ok(found);
        };
        let kept: Vec<SocketAddr> = found
            .into_iter()
            .filter(|address| allow.permits_address(address.ip()))
            .collect();
        if kept.is_empty() {
            return Err(SendError::Resolve {
                host: host.to_owned(),
                error: io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "it resolves to no address --proxy-allow permits ({})",
                        allow.describe()
                    ),
                ),
            });
        }
        Ok(kept)
    }
}

/// A connection's timer for the response head of its current request.
type Timer = Pin<Box<Sleep>>;

/// `future`'s output, or `None` if `timer` goes off first.
async fn before<F: Future>(timer: &mut Timer, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

fn expired(since: u64, now: u64) -> bool {
    now.saturating_sub(since) >= POOL_IDLE.as_millis() as u64
}

/// Closes a pool's expired idle connections, every few seconds, for as long as it has
/// idle connections (and exists).
async fn reap(pool: Weak<Pool>) {
    let every = (POOL_IDLE / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let now = health::now_ms();
        let mut idle = pool.lock();
        idle.retain(|entry| !expired(entry.since, now) && !entry.sender.is_closed());
        if idle.is_empty() {
            pool.reaping.store(false, Ordering::Release);
            return;
        }
    }
}

/// A connection lent out for one exchange.
struct Lease {
    pool: Arc<Pool>,
    sender: http1::SendRequest<Outgoing>,
    timer: Timer,
}

/// An upstream answer's body, which gives its connection back to the pool once read to
/// its end. Dropped before that, it closes the connection (hyper does, when the body's
/// reader goes away).
pub struct Returning {
    body: Incoming,
    lease: Option<Lease>,
}

impl Returning {
    fn new(body: Incoming, lease: Lease) -> Returning {
        let mut returning = Returning {
            body,
            lease: Some(lease),
        };
        // An empty body (HEAD, 204, 304) is never read.
        if http_body::Body::is_end_stream(&returning.body) {
            returning.give_back();
        }
        returning
    }

    /// The body alone: its connection is not given back (an upgraded one, say).
    pub fn into_inner(self) -> Incoming {
        self.body
    }

    fn give_back(&mut self) {
        if let Some(Lease {
            pool,
            sender,
            timer,
        }) = self.lease.take()
        {
            pool.put_back(sender, timer);
        }
    }
}

impl http_body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The passive health and the pools of the targets in use, by authority: every upstream
/// that reaches one authority gets the same [`Health`], and the same [`Pool`] if it is
/// restricted alike, while one is alive. Weak references only; [`Peers::prune`] forgets
/// the dead ones.
#[derive(Debug, Default)]
pub struct Peers {
    health: HashMap<String, Weak<Health>>,
    pools: HashMap<(String, bool), Weak<Pool>>,
}

impl Peers {
    /// The health and the pool of `authority` (restricted by `allow` if given), shared
    /// with every other holder of them.
    pub fn of(
        &mut self,
        authority: &Authority,
        allow: Option<&Arc<ProxyAllow>>,
    ) -> (Arc<Health>, Arc<Pool>) {
        let key = format!(
            "{}:{}",
            authority.host().to_ascii_lowercase(),
            authority.port_u16().unwrap_or(80)
        );
        let health = match self.health.get(&key).and_then(Weak::upgrade) {
            Some(live) => live,
            None => {
                let health = Arc::new(Health::new());
                self.health.insert(key.clone(), Arc::downgrade(&health));
                health
            }
        };
        let pool_key = (key, allow.is_some());
        let pool = match self.pools.get(&pool_key).and_then(Weak::upgrade) {
            Some(live) => live,
            None => {
                let pool = Arc::new(Pool::new(authority.clone(), allow.cloned()));
                self.pools.insert(pool_key, Arc::downgrade(&pool));
                pool
            }
        };
        (health, pool)
    }

    /// Forgets what no target holds any more.
    pub fn prune(&mut self) {
        self.health.retain(|_, health| health.strong_count() > 0);
        self.pools.retain(|_, pool| pool.strong_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::AtomicUsize;

    /// An upstream on the loopback that answers every request with `body`, closing each
    /// connection after its first answer when `close_after_one`; counts the connections.
    async fn upstream(body: &'static str, close_after_one: bool) -> (Authority, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| async move {
                        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from_static(body.as_bytes()),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close_after_one)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (address.to_string().parse().unwrap(), accepted)
    }

    fn get(authority: &Authority) -> Request<Outgoing> {
        Request::get("/")
            .header(http::header::HOST, authority.as_str())
            .body(Outgoing::Empty)
            .unwrap()
    }

    const SECOND: Duration = Duration::from_secs(5);

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn a_connection_read_to_its_end_is_used_again() {
        let (authority, accepted) = upstream("hello", false).await;
        let pool = Arc::new(Pool::new(authority.clone(), None));
        for _ in 0..5 {
            let response = pool.send(get(&authority), SECOND, soon()).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
            assert_eq!(pool.idle_count(), 1, "back in the pool once read");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_half_read_takes_its_connection_along() {
        let (authority, accepted) = upstream("hello", false).await;
        let pool = Arc::new(Pool::new(authority.clone(), None));
        let response = pool.send(get(&authority), SECOND, soon()).await.unwrap();
        drop(response);
        assert_eq!(pool.idle_count(), 0);
        let response = pool.send(get(&authority), SECOND, soon()).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_target_closed_is_not_used_again() {
        let (authority, accepted) = upstream("bye", true).await;
        let pool = Arc::new(Pool::new(authority.clone(), None));
        for _ in 0..3 {
            let response = pool.send(get(&authority), SECOND, soon()).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "bye");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_left_for_a_new_one() {
        use std::io::{Read, Write};
        // Answers keep-alive, then hangs up as soon as it has answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        let pool = Arc::new(Pool::new(authority.clone(), None));
        for _ in 0..3 {
            let response = pool.send(get(&authority), SECOND, soon()).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "ok");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // A port nobody listens on: bound, then closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let pool = Arc::new(Pool::new(authority.clone(), None));
        let error = pool
            .send(get(&authority), SECOND, soon())
            .await
            .err()
            .unwrap();
        assert_eq!(error.failure(), Failure::Unreachable, "{error}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_unreachable() {
        let authority: Authority = "no-such-host.invalid:80".parse().unwrap();
        let pool = Arc::new(Pool::new(authority.clone(), None));
        let error = pool
            .send(get(&authority), SECOND, soon())
            .await
            .err()
            .unwrap();
        assert_eq!(error.failure(), Failure::Unreachable, "{error}");
    }

    #[tokio::test]
    async fn a_restricted_pool_connects_only_where_it_may() {
        let (authority, accepted) = upstream("hello", false).await;
        let allow = Arc::new(ProxyAllow::parse(&["10.0.0.0/8"]).unwrap());
        let pool = Arc::new(Pool::new(authority.clone(), Some(Arc::clone(&allow))));
        let error = pool
            .send(get(&authority), SECOND, soon())
            .await
            .err()
            .unwrap();
        assert_eq!(error.failure(), Failure::Unreachable);
        assert!(error.to_string().contains("--proxy-allow"), "{error}");
        // A name is held to the same rule, on the addresses it resolves to.
        let named: Authority = format!("localhost:{}", authority.port_u16().unwrap())
            .parse()
            .unwrap();
        let pool = Arc::new(Pool::new(named.clone(), Some(allow)));
        assert!(pool.send(get(&named), SECOND, soon()).await.is_err());
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        let loopback = Arc::new(ProxyAllow::parse(&["127.0.0.0/8", "::1"]).unwrap());
        let pool = Arc::new(Pool::new(named.clone(), Some(loopback)));
        let response = pool.send(get(&named), SECOND, soon()).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn peers_share_health_and_pools_by_authority_and_restriction() {
        let mut peers = Peers::default();
        let allow = Arc::new(ProxyAllow::default());
        let a: Authority = "A:80".parse().unwrap();
        let b: Authority = "a".parse().unwrap();
        let (health_a, pool_a) = peers.of(&a, None);
        let (health_b, pool_b) = peers.of(&b, None);
        let (health_r, pool_r) = peers.of(&b, Some(&allow));
        assert!(Arc::ptr_eq(&health_a, &health_b) && Arc::ptr_eq(&health_a, &health_r));
        assert!(Arc::ptr_eq(&pool_a, &pool_b));
        assert!(!Arc::ptr_eq(&pool_a, &pool_r));
        drop((health_a, health_b, health_r, pool_a, pool_b, pool_r));
        peers.prune();
        assert!(peers.health.is_empty() && peers.pools.is_empty());
    }
}
