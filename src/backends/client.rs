//! The HTTP client proxied requests go out on, the body it sends, and what its errors mean.
//!
//! One hyper-util legacy `Client` (HTTP/1.1, keep-alive, pooled per target authority) for
//! each connect timeout the node's backends use: the connect timeout is a setting of the
//! connector, so backends with the same timeout share a client and its pool of connections
//! (`Registry` hands the clients out). Bodies are streamed both ways, never buffered.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use std::net::SocketAddr;
use std::sync::Arc;

use super::allow::ProxyAllow;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// How long an idle pooled connection is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(90);
/// The most idle connections kept to one target authority (by one client); more than that
/// in use at once are closed when they are done rather than pooled.
pub const MAX_IDLE_PER_TARGET: usize = 256;
/// The most an upstream connection buffers of what it reads: the largest response head
/// accepted (a larger one is a 502), and so the largest body frame read at once. hyper's
/// default, about 400 KiB, would be kept by every pooled connection that once read fast.
pub const READ_BUFFER: usize = 64 * 1024;
/// TCP keep-alive probes on upstream connections, so that a pooled connection whose peer
/// vanished is found out.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The client proxied requests go out on.
pub type Client = hyper_util::client::legacy::Client<HttpConnector<Resolver>, Outgoing>;

/// The connector's name resolution: the system's (`getaddrinfo` on a blocking thread), with,
/// for a restricted backend (`--proxy-allow`), every address it may not reach left out. A
/// name left with no address fails like one that does not resolve.
#[derive(Debug, Clone)]
pub struct Resolver {
    allow: Option<Arc<ProxyAllow>>,
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow.clone();
        let mut system = GaiResolver::new();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tower::Service::call(&mut system, name).await?.collect();
            let Some(allow) = allow else {
                return Ok(found.into_iter());
            };
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| allow.permits_address(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "`{host}` resolves to no address --proxy-allow permits ({})",
                        allow.describe()
                    ),
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

/// A client that connects within `connect_timeout`, speaks HTTP/1.1 only, keeps idle
/// connections for [`POOL_IDLE`] and buffers at most [`READ_BUFFER`] per connection.
/// Building one starts no task (the pool's reaper starts with its first pooled connection),
/// so this may run off the runtime.
pub fn build(connect_timeout: Duration, allow: Option<Arc<ProxyAllow>>) -> Client {
    let mut connector = HttpConnector::new_with_resolver(Resolver { allow });
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(MAX_IDLE_PER_TARGET)
        .pool_timer(TokioTimer::new())
        .http1_max_buf_size(READ_BUFFER)
        // The proxy always sets `host` itself: the target's authority.
        .set_host(false)
        .build(connector)
}

/// A request body on its way upstream: none, or the caller's, streamed as it arrives.
#[derive(Debug, Default)]
pub enum Outgoing {
    #[default]
    Empty,
    Stream(Incoming),
}

impl From<Option<Incoming>> for Outgoing {
    fn from(body: Option<Incoming>) -> Outgoing {
        body.map_or(Outgoing::Empty, Outgoing::Stream)
    }
}

impl http_body::Body for Outgoing {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Outgoing::Empty => Poll::Ready(None),
            Outgoing::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Empty => true,
            Outgoing::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Empty => SizeHint::with_exact(0),
            Outgoing::Stream(body) => body.size_hint(),
        }
    }
}

/// What went wrong with a request sent to a target, as far as the target's health and the
/// answer to the caller are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The target cannot be reached: it refused the connection, no route leads to it, or its
    /// name does not resolve. The target is marked down.
    Unreachable,
    /// Connecting took longer than the backend's connect timeout. The target is marked down.
    ConnectTimeout,
    /// Connecting failed on this side (out of sockets, say): not the target's fault.
    Connect,
    /// The exchange failed once connected: reset, closed early, or not valid HTTP.
    Exchange,
}

impl Failure {
    /// What a client error means.
    pub fn of(error: &hyper_util::client::legacy::Error) -> Failure {
        Failure::classify(error.is_connect(), error)
    }

    /// What an error means, from whether it happened while connecting and its causes: the
    /// connector reports a failed name lookup as `dns error` and a failed connect as the OS's
    /// I/O error (`TimedOut` for its own timeout).
    pub fn classify(connecting: bool, error: &(dyn StdError + 'static)) -> Failure {
        if !connecting {
            return Failure::Exchange;
        }
        let mut cause = Some(error);
        while let Some(error) = cause {
            // The connector's own error names the step that failed; only its message says
            // that it was the name lookup (its type is private).
            if error.to_string() == "dns error" {
                return Failure::Unreachable;
            }
            if let Some(io) = error.downcast_ref::<io::Error>() {
                return match io.kind() {
                    io::ErrorKind::TimedOut => Failure::ConnectTimeout,
                    io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::NetworkDown
                    | io::ErrorKind::NotConnected => Failure::Unreachable,
                    _ => Failure::Connect,
                };
            }
            cause = error.source();
        }
        Failure::Connect
    }

    /// Whether the target is to blame, and so is marked down (and another one may be tried).
    pub fn marks_down(self) -> bool {
        matches!(self, Failure::Unreachable | Failure::ConnectTimeout)
    }
}

/// Formats an error with its causes, `a: b: c`, for the logs.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error like the connector's: a step's name, and the OS error under it.
    #[derive(Debug)]
    struct Step(&'static str, Option<io::Error>);

    impl std::fmt::Display for Step {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Step {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    fn connect(step: &'static str, kind: io::ErrorKind) -> Failure {
        Failure::classify(true, &Step(step, Some(io::Error::new(kind, "os error"))))
    }

    #[test]
    fn connect_errors_are_told_apart() {
        use io::ErrorKind::*;
        for (step, kind, failure) in [
            ("tcp connect error", ConnectionRefused, Failure::Unreachable),
            ("tcp connect error", HostUnreachable, Failure::Unreachable),
            (
                "tcp connect error",
                NetworkUnreachable,
                Failure::Unreachable,
            ),
            ("tcp connect error", NotConnected, Failure::Unreachable),
            ("dns error", Other, Failure::Unreachable),
            ("tcp connect error", TimedOut, Failure::ConnectTimeout),
            ("tcp open error", Other, Failure::Connect),
        ] {
            assert_eq!(connect(step, kind), failure, "{step}: {kind:?}");
        }
        let dns = Step("dns error", None);
        assert_eq!(Failure::classify(true, &dns), Failure::Unreachable);
        assert_eq!(
            Failure::classify(true, &Step("what", None)),
            Failure::Connect
        );
        let reset = Step("tcp connect error", Some(io::Error::from(ConnectionReset)));
        assert_eq!(Failure::classify(false, &reset), Failure::Exchange);
        assert!(Failure::Unreachable.marks_down() && Failure::ConnectTimeout.marks_down());
        assert!(!Failure::Connect.marks_down() && !Failure::Exchange.marks_down());
    }

    #[test]
    fn a_chain_names_every_cause() {
        let error = Step("tcp connect error", Some(io::Error::other("refused")));
        assert_eq!(Chain(&error).to_string(), "tcp connect error: refused");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // A port nobody listens on: bound, then closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = build(Duration::from_secs(5), None);
        let uri: http::Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let request = http::Request::builder()
            .uri(uri)
            .body(Outgoing::Empty)
            .unwrap();
        let error = client.request(request).await.unwrap_err();
        assert_eq!(
            Failure::of(&error),
            Failure::Unreachable,
            "{}",
            Chain(&error)
        );
    }
}
