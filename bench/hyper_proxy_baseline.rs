//! The baseline Switchyard's gateway is compared with: the smallest honest reverse proxy
//! built on hyper 1, the floor any hyper-based proxy can reach. HTTP/1.1 only, keep-alive,
//! `TCP_NODELAY` on both sides (as Switchyard sets it), and every request forwarded to one
//! upstream (`--upstream HOST:PORT`). No routing, no request id, no logging, no stats.
//!
//! Each client connection gets one upstream connection of its own, opened on its first
//! request (`hyper::client::conn::http1`, no pool) and kept for the requests that follow,
//! one after another; if it fails or closes, the next request opens a new one. A request
//! that cannot be forwarded is answered 502 with an empty body.
//!
//! What is forwarded: the method, the path and query (origin-form), HTTP/1.1, and the
//! caller's headers but the hop-by-hop ones (`connection`, `keep-alive`, `proxy-connection`,
//! `te`, `trailer`, `transfer-encoding`, `upgrade`, and any header `Connection` names);
//! `host` is the upstream's authority, and the headers bench/nginx-proxy.conf has nginx add
//! (Switchyard adds them too) are added: `x-forwarded-for` (the caller's list, if any, then
//! the caller's address), `x-forwarded-proto: http` and `x-forwarded-host` (the caller's
//! `host`). Both bodies are streamed as they arrive, never buffered; the answer is the
//! upstream's status and headers (minus hop-by-hop ones) and its body.
//!
//! It runs on a current-thread tokio runtime (one thread does everything; pin it with
//! `taskset -c 0`), the shape `switchyard gateway --workers 1` has. `--multi-thread` uses a
//! multi-thread runtime with one worker instead, to see what the runtime kind costs.
//!
//! ```text
//! cargo run --release --example hyper_proxy_baseline -- --port 8082 --upstream 127.0.0.1:8081
//! ```
//! Prints `listening on http://ADDR` once bound.

use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The hop-by-hop headers every message loses on its way through (RFC 9110, 7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8082)]
    port: u16,
    /// The upstream every request is forwarded to, HOST:PORT.
    #[arg(long)]
    upstream: String,
    /// Use a multi-thread runtime with one worker instead of a current-thread runtime.
    #[arg(long)]
    multi_thread: bool,
}

/// Where requests go: the upstream's addresses (resolved once, at start) and its authority,
/// the `host` of every forwarded request.
struct Upstream {
    addrs: Vec<SocketAddr>,
    authority: HeaderValue,
}

/// One client connection: the caller's address as `x-forwarded-for` ends it, and the
/// connection's own upstream connection, between two requests (none before the first one,
/// or after one failed).
struct Client {
    upstream: &'static Upstream,
    peer: HeaderValue,
    sender: Mutex<Option<SendRequest<Incoming>>>,
}

type Body = Either<Incoming, Empty<Bytes>>;

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// Removes the hop-by-hop headers, and those the `Connection` headers name.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
            .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// `x-forwarded-for` as nginx's `$proxy_add_x_forwarded_for` writes it: the caller's list
/// (several headers joined with `, `), then the caller's address.
fn forwarded_for(headers: &HeaderMap, peer: &HeaderValue) -> HeaderValue {
    let mut list = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        list.extend_from_slice(value.as_bytes());
        list.extend_from_slice(b", ");
    }
    if list.is_empty() {
        return peer.clone();
    }
    list.extend_from_slice(peer.as_bytes());
    // Valid header values joined by `, ` and an address are a valid header value.
    HeaderValue::from_maybe_shared(Bytes::from(list)).unwrap_or_else(|_| peer.clone())
}

/// A new connection to the upstream, ready for a request; its `Connection` runs as a task.
async fn connect(upstream: &Upstream) -> anyhow::Result<SendRequest<Incoming>> {
    let stream = TcpStream::connect(&upstream.addrs[..]).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.ready().await?;
    Ok(sender)
}

async fn proxy(
    client: Arc<Client>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |path| Uri::from(path.clone()));
    }
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    let forwarded = forwarded_for(headers, &client.peer);
    headers.insert(X_FORWARDED_FOR, forwarded);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match headers.get(header::HOST).cloned() {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    headers.insert(header::HOST, client.upstream.authority.clone());

    // The connection's upstream connection once the previous answer's body is through, or a
    // new one if it has none or that one is gone.
    let mut kept = client
        .sender
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(sender) = &mut kept
        && sender.ready().await.is_err()
    {
        kept = None;
    }
    let mut sender = match kept {
        Some(sender) => sender,
        None => match connect(client.upstream).await {
            Ok(sender) => sender,
            Err(_) => return Ok(bad_gateway()),
        },
    };
    let Ok(mut response) = sender.send_request(Request::from_parts(parts, body)).await else {
        return Ok(bad_gateway());
    };
    *client.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
    strip_hop_by_hop(response.headers_mut());
    Ok(response.map(Either::Left))
}

async fn serve(addr: SocketAddr, upstream: &'static Upstream) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = Arc::new(Client {
            upstream,
            // An address written out is a valid header value.
            peer: HeaderValue::from_str(&peer.ip().to_canonical().to_string())
                .unwrap_or(HeaderValue::from_static("")),
            sender: Mutex::new(None),
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |request| proxy(client.clone(), request)),
                )
                .await;
        });
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addrs: Vec<SocketAddr> = args
        .upstream
        .to_socket_addrs()
        .with_context(|| format!("--upstream {}: expected HOST:PORT", args.upstream))?
        .collect();
    anyhow::ensure!(
        !addrs.is_empty(),
        "--upstream {}: no address",
        args.upstream
    );
    let upstream: &'static Upstream = Box::leak(Box::new(Upstream {
        addrs,
        authority: HeaderValue::from_str(&args.upstream)
            .with_context(|| format!("--upstream {}: not a header value", args.upstream))?,
    }));
    let runtime = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(SocketAddr::new(args.listen, args.port), upstream))
}
