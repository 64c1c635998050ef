//! Connection limits: no slow or stuck client holds a connection past a limit (slowloris,
//! idle keep-alive, half-sent bodies), open connections are capped, oversized heads are
//! refused, and keep-alive really reuses one socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::helpers::{TestApp, read_raw_answer, spawn_app_with, wait_for_close};

/// Creates `alice/p` with `GET /ok` answering `"ok"` and `POST /in` answering 202.
async fn mock_project(app: &TestApp) {
    let alice = app.user("alice").await;
    app.create_project(&alice, "p").await;
    app.add_json_endpoint(&alice, "alice/p", "/ok", json!("ok"))
        .await;
    let response = app
        .post_endpoint(
            &alice,
            "alice/p",
            &json!({"method": "POST", "path": "/in", "response": {"status": 202, "json": 1}}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

/// The JSON body of a raw answer.
fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// What a slow connection did, and how the server ended it.
enum Slow {
    /// Sends its head one byte every 200 ms.
    Trickle,
    /// Sends nothing.
    Silent,
    /// Sends a head announcing 100 body bytes, then 10.
    HalfBody,
}

/// Plays one slow client; returns how long the server took to close it and what it sent.
async fn slow_client(
    app_addr: std::net::SocketAddr,
    kind: Slow,
    connecting: Arc<Semaphore>,
) -> (Duration, Vec<u8>) {
    // Connects are let through a few hundred at a time: a burst over the kernel's listen
    // backlog has the handshake's last ACK dropped, and a client that then sends nothing
    // would think itself connected while the server never sees it.
    let permit = connecting.acquire().await.expect("semaphore");
    let mut stream = TcpStream::connect(app_addr).await.expect("connect");
    drop(permit);
    let kind_name = match kind {
        Slow::Trickle => "trickling",
        Slow::Silent => "silent",
        Slow::HalfBody => "half-body",
    };
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    match kind {
        Slow::Trickle => {
            let head =
                b"GET /alice/p/ok HTTP/1.1\r\nhost: t\r\nx-slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
            for byte in head.iter().cycle() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::select! {
                    read = stream.read(&mut buffer) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buffer[..n]),
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "a trickling connection is still open after 20 s"
                );
            }
        }
        Slow::Silent => {}
        Slow::HalfBody => {
            let request =
                b"POST /alice/p/in HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n0123456789";
            stream.write_all(request).await.expect("write");
        }
    }
    let Some(rest) = wait_for_close(&mut stream, Duration::from_secs(20)).await else {
        panic!(
            "the server did not close a {} connection within 20 s",
            kind_name
        );
    };
    seen.extend_from_slice(&rest);
    (started.elapsed(), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected_while_others_are_served() {
    let timeout = Duration::from_millis(500);
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = timeout;
        c.limits.idle_timeout = timeout;
        c.limits.body_read_timeout = timeout;
    })
    .await;
    mock_project(&app).await;

    let mut slow = JoinSet::new();
    let connecting = Arc::new(Semaphore::new(200));
    for i in 0..1500 {
        let kind = match i % 3 {
            0 => Slow::Trickle,
            1 => Slow::Silent,
            _ => Slow::HalfBody,
        };
        let tag = i % 3;
        let (addr, connecting) = (app.addr, connecting.clone());
        slow.spawn(async move { (tag, slow_client(addr, kind, connecting).await) });
    }

    // A normal client, on a fresh connection each time, is served throughout.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = app.url("/alice/p/ok");
    let mut served = 0;
    let mut results = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !slow.is_empty() {
        assert!(
            Instant::now() < deadline,
            "slow clients still open after 60 s"
        );
        tokio::select! {
            done = slow.join_next() => {
                results.push(done.expect("a task").expect("a slow client panicked"));
            }
            response = client.get(&url).send() => {
                let response = response.expect("the normal client is answered");
                assert_eq!(response.status(), 200);
                assert_eq!(response.json::<Value>().await.expect("body"), json!("ok"));
                served += 1;
            }
        }
    }
    assert!(served > 0, "the normal client was never answered");

    // Each was closed within its timeout plus a margin for a loaded 2-core machine; the
    // trickle's clock starts at its first byte, which it sends at once.
    let margin = Duration::from_secs(5);
    for (tag, (elapsed, seen)) in &results {
        assert!(
            *elapsed < timeout + margin,
            "kind {tag} closed only after {elapsed:?}"
        );
        let text = String::from_utf8_lossy(seen);
        match tag {
            // A head that never completes, or nothing at all, gets no answer.
            0 | 1 => assert!(seen.is_empty(), "kind {tag} got an answer: {text}"),
            _ => {
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                assert!(text.contains("connection: close"), "{text}");
                assert!(text.contains(r#""code":"request_timeout""#), "{text}");
            }
        }
    }
    assert_eq!(results.len(), 1500);
}

#[tokio::test]
async fn a_half_sent_platform_body_gets_408_and_the_connection_is_closed() {
    let app = spawn_app_with(|c| c.limits.body_read_timeout = Duration::from_millis(300)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"username\":",
        )
        .await
        .expect("write");
    let mut pending = Vec::new();
    let answer = read_raw_answer(&mut stream, &mut pending)
        .await
        .expect("a 408 answer before the close");
    assert_eq!(answer.status(), 408, "{}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
    let body = json_of(&answer.body);
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert_eq!(
        body["error"]["request_id"],
        answer.header("x-request-id").expect("request id")
    );
    wait_for_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection is closed after the 408");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The idle timeout is the longer one: idle time must not count as header time.
    let idle = Duration::from_millis(1500);
    let app = spawn_app_with(|c| {
        c.limits.idle_timeout = idle;
        c.limits.header_read_timeout = Duration::from_millis(200);
    })
    .await;
    let mut stream = connect(&app).await;
    let mut pending = Vec::new();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let answer = read_raw_answer(&mut stream, &mut pending)
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let idle_since = Instant::now();
    // Still open well past the header read timeout: a second request on it is answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let answer = read_raw_answer(&mut stream, &mut pending)
        .await
        .expect("the connection outlives the header read timeout while idle");
    assert_eq!(answer.status(), 200);
    let idle_since_second = Instant::now();
    assert!(
        idle_since.elapsed() < idle,
        "the machine is too slow to tell"
    );
    let rest = wait_for_close(&mut stream, idle + Duration::from_secs(5))
        .await
        .expect("the idle connection is closed");
    assert!(
        rest.is_empty() && pending.is_empty(),
        "no answer to nothing"
    );
    let waited = idle_since_second.elapsed();
    assert!(
        waited >= idle - Duration::from_millis(100),
        "closed after only {waited:?}"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| c.limits.idle_timeout = Duration::from_millis(300)).await;
    let mut stream = connect(&app).await;
    let seen = wait_for_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("closed within the idle timeout and a margin");
    assert!(seen.is_empty());
}

#[tokio::test]
async fn a_head_trickling_in_is_cut_off_after_the_header_read_timeout() {
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = Duration::from_millis(300);
        c.limits.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /hea").await.expect("write");
    let started = Instant::now();
    let seen = wait_for_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("closed within the header read timeout and a margin");
    assert!(seen.is_empty(), "{}", String::from_utf8_lossy(&seen));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_new_clients_wait_until_one_closes() {
    let app = spawn_app_with(|c| c.limits.max_connections = 5).await;
    let request = b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n";
    // Five connections, each answered once, so each is certainly accepted, then left open.
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut stream = connect(&app).await;
        stream.write_all(request).await.expect("write");
        let mut pending = Vec::new();
        let answer = read_raw_answer(&mut stream, &mut pending)
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200);
        open.push(stream);
    }
    let mut sixth = connect(&app).await;
    sixth.write_all(request).await.expect("write");
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), sixth.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "the sixth client was served while five were open"
    );
    // Existing clients keep being served meanwhile.
    let mut pending = Vec::new();
    open[0].write_all(request).await.expect("write");
    let answer = read_raw_answer(&mut open[0], &mut pending)
        .await
        .expect("an open connection is still served");
    assert_eq!(answer.status(), 200);

    drop(open.pop());
    let mut pending = Vec::new();
    let answer = read_raw_answer(&mut sixth, &mut pending)
        .await
        .expect("the sixth client is served once a connection closes");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_head_over_max_header_size_gets_431_and_the_connection_is_closed() {
    let app = spawn_app_with(|c| c.limits.max_header_size = 8 * 1024).await;
    let mut stream = connect(&app).await;
    let big = "x".repeat(16 * 1024);
    // The server may close before reading it all; the write may then fail.
    let _ = stream
        .write_all(format!("GET /health HTTP/1.1\r\nhost: t\r\nx-big: {big}\r\n\r\n").as_bytes())
        .await;
    let seen = wait_for_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection is closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
}

#[tokio::test]
async fn a_head_under_max_header_size_is_served() {
    let app = spawn_app_with(|c| c.limits.max_header_size = 8 * 1024).await;
    let mut stream = connect(&app).await;
    let header = "x".repeat(6 * 1024);
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nhost: t\r\nx-big: {header}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let answer = read_raw_answer(&mut stream, &mut Vec::new())
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn keep_alive_serves_sequential_and_pipelined_requests_on_one_socket() {
    let app = spawn_app_with(|_| {}).await;
    mock_project(&app).await;
    let request = b"GET /alice/p/ok HTTP/1.1\r\nhost: t\r\n\r\n";
    let mut stream = connect(&app).await;
    let mut pending = Vec::new();
    // One after the other: the second request goes out only after the first answer.
    for _ in 0..2 {
        stream.write_all(request).await.expect("write");
        let answer = read_raw_answer(&mut stream, &mut pending)
            .await
            .expect("answered on the same socket");
        assert_eq!(answer.status(), 200);
        assert_eq!(json_of(&answer.body), json!("ok"));
    }
    // Pipelined: two requests in one write, two answers in order.
    stream
        .write_all(&[&request[..], &request[..]].concat())
        .await
        .expect("write");
    for _ in 0..2 {
        let answer = read_raw_answer(&mut stream, &mut pending)
            .await
            .expect("a pipelined answer on the same socket");
        assert_eq!(answer.status(), 200);
    }
}
