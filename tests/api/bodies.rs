//! Request bodies sent to project endpoints: read (so connections are reused) and bounded.

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_error, spawn_app_with};

#[tokio::test]
async fn a_body_sent_to_a_mock_is_read_and_the_connection_reused() {
    let app = spawn_app_with(|c| c.body_limit = 64 * 1024).await;
    let alice = app.user("alice").await;
    app.create_project(&alice, "p").await;
    app.post_endpoint(
        &alice,
        "alice/p",
        &json!({"method": "POST", "path": "/in", "response": {"status": 202, "json": {"ok": true}}}),
    )
    .await;
    // Two requests with bodies on one raw connection: the second is answered only if the
    // server read the first body through instead of closing the connection.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let body = vec![b'x'; 60_000];
    let mut wire = Vec::new();
    for _ in 0..2 {
        wire.extend_from_slice(
            format!(
                "POST /alice/p/in HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        wire.extend_from_slice(&body);
    }
    stream.write_all(&wire).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while count(&seen, b"HTTP/1.1 202") < 2 {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("the second answer arrives")
                .unwrap();
        assert!(
            read > 0,
            "the connection was closed after {} answers",
            count(&seen, b"HTTP/1.1 202")
        );
        seen.extend_from_slice(&buffer[..read]);
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let app = spawn_app_with(|c| c.body_limit = 1024).await;
    let alice = app.user("alice").await;
    app.create_project(&alice, "p").await;
    app.post_endpoint(
        &alice,
        "alice/p",
        &json!({"method": "POST", "path": "/in", "response": {"json": 1}}),
    )
    .await;
    let response = app
        .client
        .post(app.url("/alice/p/in"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn large_answers_arrive_byte_for_byte_on_a_reused_connection() {
    use base64::Engine;
    let app = spawn_app_with(|c| c.admin_body_limit = 4 * 1024 * 1024).await;
    let alice = app.user("alice").await;
    app.create_project(&alice, "big").await;
    // Larger than a connection's write buffer and than one frame, and not a multiple of
    // either: the answer goes out in pieces and must arrive whole.
    let text: String = (0..300_001)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let binary: Vec<u8> = (0..150_003u32).map(|i| (i * 7 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&binary);
    for endpoint in [
        json!({"method": "GET", "path": "/text", "response": {"body": text}}),
        json!({"method": "GET", "path": "/binary", "response": {"body_base64": encoded}}),
        json!({"method": "GET", "path": "/small", "response": {"json": {"ok": true}}}),
    ] {
        let response = app.post_endpoint(&alice, "alice/big", &endpoint).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..3 {
        for (path, expected) in [
            ("/alice/big/text", text.as_bytes()),
            ("/alice/big/binary", &binary[..]),
            ("/alice/big/small", &br#"{"ok":true}"#[..]),
        ] {
            let response = client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let length = response.content_length();
            let body = response.bytes().await.unwrap();
            assert_eq!(length, Some(expected.len() as u64), "{path}");
            assert!(body[..] == *expected, "{path}: {} bytes differ", body.len());
        }
    }
}
