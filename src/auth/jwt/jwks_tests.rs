//! Keys by URL, against a real HTTP server on a loopback port (a few lines of HTTP/1.1 on
//! a tokio listener): first fetch, rotation, the refetch floor, timeouts, bad answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::tests::{ED25519, NOW, P256, RSA, claims, p256, policy};
use super::*;

/// A JWKS server: answers every request with `status` and `body`, counting requests;
/// `silent` ones accept and never answer.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: Value, silent: bool) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let server = JwksServer {
            url,
            body: Arc::new(Mutex::new(body.to_string())),
            status: Arc::new(AtomicU16::new(200)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let (body, status, hits) = (
            server.body.clone(),
            server.status.clone(),
            server.hits.clone(),
        );
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                hits.fetch_add(1, Ordering::SeqCst);
                if silent {
                    held.push(socket);
                    continue;
                }
                let (body, status) = (body.lock().clone(), status.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        server
    }

    fn serve(&self, body: Value) {
        *self.body.lock() = body.to_string();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn policy(&self, algorithms: Value) -> JwtPolicy {
        let mut policy = policy(algorithms, json!({"jwks_url": self.url}));
        policy.jwks_refresh_min_secs = 1;
        policy
    }
}

/// Waits past the 1 s refetch floor of [`JwksServer::policy`].
async fn past_the_floor() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

fn keys(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

#[tokio::test]
async fn first_fetch_then_verify() {
    let server = JwksServer::start(keys(&[RSA.jwk("rsa"), P256.jwk("ec")]), false).await;
    let client = reqwest::Client::new();
    let policy = server.policy(json!(["RS256", "ES256"]));
    assert!(
        Verifier::new(&policy).expect("new").jwks_due(),
        "never fetched"
    );
    let verifier = Verifier::load(&policy, &client).await.expect("load");
    assert_eq!(server.hits(), 1);
    assert!(!verifier.jwks_due());
    assert_eq!(verifier.last_jwks_error(), None);
    for token in [
        RSA.token("RS256", Some("rsa"), &claims()),
        P256.token("ES256", Some("ec"), &claims()),
    ] {
        verifier.verify(&token, NOW).expect("valid");
    }
    // Keys of other kinds in the fetched set are skipped, not an error.
    server.serve(keys(&[ED25519.jwk("ed"), RSA.jwk("rsa")]));
    past_the_floor().await;
    verifier.refresh(&client).await.expect("refresh");
    let token = ED25519.token("EdDSA", Some("ed"), &claims());
    assert_eq!(
        verifier.verify(&token, NOW).err(),
        Some(Rejection::Invalid(Reason::DisallowedAlgorithm(
            "EdDSA".into()
        )))
    );
    verifier
        .verify(&RSA.token("RS256", Some("rsa"), &claims()), NOW)
        .expect("valid");
}

#[tokio::test]
async fn kid_rotation() {
    let old = p256();
    let new = p256();
    let server = JwksServer::start(keys(&[old.jwk("2024")]), false).await;
    let client = reqwest::Client::new();
    let verifier = Verifier::load(&server.policy(json!(["ES256"])), &client)
        .await
        .expect("load");
    let old_token = old.token("ES256", Some("2024"), &claims());
    verifier.verify(&old_token, NOW).expect("old key");

    // The provider starts signing with a new key and publishes it.
    server.serve(keys(&[old.jwk("2024"), new.jwk("2025")]));
    let new_token = new.token("ES256", Some("2025"), &claims());
    let rejection = verifier.verify(&new_token, NOW).expect_err("unknown kid");
    assert!(rejection.needs_refresh(), "{rejection:?}");
    past_the_floor().await;
    verifier.refresh(&client).await.expect("refresh");
    assert_eq!(server.hits(), 2);
    verifier.verify(&new_token, NOW).expect("new key");
    verifier
        .verify(&old_token, NOW)
        .expect("old key still published");

    // The old key is withdrawn: its token, although cached, is refused after the swap.
    server.serve(keys(&[new.jwk("2025")]));
    past_the_floor().await;
    verifier.refresh(&client).await.expect("refresh");
    assert!(
        verifier
            .verify(&old_token, NOW)
            .expect_err("withdrawn")
            .needs_refresh()
    );
    verifier.verify(&new_token, NOW).expect("new key");
}

#[tokio::test]
async fn refresh_floor() {
    let server = JwksServer::start(keys(&[RSA.jwk("rsa")]), false).await;
    let client = reqwest::Client::new();
    let verifier = Verifier::load(&server.policy(json!(["RS256"])), &client)
        .await
        .expect("load");
    assert_eq!(server.hits(), 1);
    // Within the floor: no fetch, the last outcome.
    verifier.refresh(&client).await.expect("within the floor");
    verifier.refresh(&client).await.expect("within the floor");
    assert_eq!(server.hits(), 1);
    // Past it, concurrent callers share one fetch.
    past_the_floor().await;
    let (a, b, c) = tokio::join!(
        verifier.refresh(&client),
        verifier.refresh(&client),
        verifier.refresh(&client)
    );
    assert_eq!((a, b, c), (Ok(()), Ok(()), Ok(())));
    assert_eq!(server.hits(), 2);

    // The default floor is 30 s.
    let mut policy = server.policy(json!(["RS256"]));
    policy.jwks_refresh_min_secs = DEFAULT_JWKS_REFRESH_MIN_SECS;
    let verifier = Verifier::load(&policy, &client).await.expect("load");
    past_the_floor().await;
    verifier.refresh(&client).await.expect("within the floor");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let server = JwksServer::start(keys(&[RSA.jwk("rsa")]), true).await;
    let mut policy = server.policy(json!(["RS256"]));
    policy.jwks_timeout_ms = 300;
    let started = Instant::now();
    let error = Verifier::load(&policy, &reqwest::Client::new())
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    assert_eq!(error, JwtError::Jwks(JwksError::Timeout(300)));
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn bad_answers_are_errors_and_keep_the_old_set() {
    let server = JwksServer::start(json!("not a key set"), false).await;
    let client = reqwest::Client::new();
    let policy = server.policy(json!(["RS256"]));
    let error = Verifier::load(&policy, &client)
        .await
        .expect_err("malformed");
    assert!(
        matches!(error, JwtError::Jwks(JwksError::Invalid(_))),
        "{error:?}"
    );

    let verifier = Verifier::new(&policy).expect("new");
    for (body, status) in [
        (json!({"keys": []}), 200),
        (json!({"keys": [P256.jwk("ec")]}), 200),
        (json!({"keys": [RSA.jwk("rsa")]}), 500),
    ] {
        server.serve(body);
        server.status.store(status, Ordering::SeqCst);
        let error = verifier.refresh(&client).await.expect_err("refused");
        assert_eq!(verifier.last_jwks_error(), Some(error.clone()));
        if status == 500 {
            assert_eq!(error, JwksError::Status(500));
        } else {
            assert!(error.to_string().contains("no key usable"), "{error}");
        }
        past_the_floor().await;
    }

    // A good set, then a bad one: the good keys stay.
    server.status.store(200, Ordering::SeqCst);
    server.serve(keys(&[RSA.jwk("rsa")]));
    verifier.refresh(&client).await.expect("good");
    assert_eq!(verifier.last_jwks_error(), None);
    server.serve(json!({"keys": "nope"}));
    past_the_floor().await;
    assert!(verifier.refresh(&client).await.is_err());
    assert!(verifier.last_jwks_error().is_some());
    let token = RSA.token("RS256", Some("rsa"), &claims());
    verifier.verify(&token, NOW).expect("the old set is kept");
}

#[tokio::test]
async fn nothing_listening_is_a_fetch_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    drop(listener);
    let mut policy = policy(json!(["RS256"]), json!({ "jwks_url": url }));
    policy.jwks_timeout_ms = 2000;
    let error = Verifier::load(&policy, &reqwest::Client::new())
        .await
        .expect_err("refused");
    assert!(
        matches!(error, JwtError::Jwks(JwksError::Fetch(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn refresh_without_a_url_does_nothing() {
    let verifier = Verifier::new(&policy(
        json!(["HS256"]),
        json!({"secret": super::tests::SECRET}),
    ))
    .expect("new");
    verifier
        .refresh(&reqwest::Client::new())
        .await
        .expect("nothing to do");
    assert!(!verifier.jwks_due());
    assert_eq!(verifier.last_jwks_error(), None);
}

#[tokio::test]
async fn a_shared_verifier_refreshes_from_a_task() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let server = JwksServer::start(keys(&[RSA.jwk("rsa")]), false).await;
    let verifier = Arc::new(Verifier::new(&server.policy(json!(["RS256"]))).expect("new"));
    send_sync(&verifier);
    let task = {
        let verifier = verifier.clone();
        tokio::spawn(async move { verifier.refresh(&reqwest::Client::new()).await })
    };
    task.await.expect("joined").expect("refresh");
    let token = RSA.token("RS256", Some("rsa"), &claims());
    std::thread::spawn(move || verifier.verify(&token, NOW).map(|_| ()))
        .join()
        .expect("joined")
        .expect("valid");
}

#[tokio::test]
async fn a_project_fetches_a_key_set_past_its_max_age_again_in_the_background() {
    use crate::auth::{Checked, ProjectAuth};
    let server = JwksServer::start(keys(&[RSA.jwk("rsa")]), false).await;
    let policy = server.policy(json!(["RS256"]));
    let auth = Arc::new(ProjectAuth::compile(
        &crate::model::AuthPolicy::Jwt(policy.clone()),
        "/o/p",
        Arc::default(),
    ));
    let token = RSA.token("RS256", Some("rsa"), &claims());
    let head = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let now_ms = i64::try_from(NOW).expect("now") * 1000;
    // The first request waits for the first fetch.
    match auth.check(None, &head, now_ms).expect("checked") {
        Checked::Later(pending) => assert!(pending.await.expect("verified").is_some()),
        Checked::Now(_) => panic!("the first check must wait for the key set"),
    }
    assert_eq!(server.hits(), 1);
    // A fresh set is used as it is.
    past_the_floor().await;
    assert!(matches!(
        auth.check(None, &head, now_ms),
        Ok(Checked::Now(Some(_)))
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.hits(), 1);
    // Past its max age: the request is answered at once, and the set fetched behind it.
    let verifier = auth.verifier().expect("a jwt policy");
    verifier.age_keys(Duration::from_secs(policy.jwks_max_age_secs + 1));
    assert!(matches!(
        auth.check(None, &head, now_ms),
        Ok(Checked::Now(Some(_)))
    ));
    let started = Instant::now();
    while server.hits() < 2 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.hits(), 2);
    assert!(!verifier.jwks_due());
}
