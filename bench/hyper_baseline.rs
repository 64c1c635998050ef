//! The baseline Switchyard's literal-mock throughput is compared with: the smallest honest
//! hyper 1 server. HTTP/1.1 only, keep-alive, `TCP_NODELAY` (as Switchyard sets it), and every
//! request answered 200 with `content-type: application/json` and `{"message":"hello"}` —
//! the same body bytes as `GET /alice/demo/hello`. No routing, no request id, no logging.
//!
//! It runs on a current-thread tokio runtime (one thread does everything; pin it with
//! `taskset -c 0`). `--multi-thread` uses a multi-thread runtime with one worker instead,
//! the shape `switchyard serve --workers 1` has, to see what the runtime kind costs.
//!
//! ```text
//! cargo run --release --example hyper_baseline -- --port 8081
//! ```
//! Prints `listening on http://ADDR` once bound.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"message":"hello"}"#;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Use a multi-thread runtime with one worker instead of a current-thread runtime.
    #[arg(long)]
    multi_thread: bool,
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
    runtime.block_on(serve(SocketAddr::new(args.listen, args.port)))
}
