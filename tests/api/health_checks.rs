//! Active health checks of backends (`health_check`): a target whose health endpoint fails
//! gets no traffic after `unhealthy_after` probes while the others serve, and gets traffic
//! again after `healthy_after` good ones; probes carry the target's `host` and
//! `user-agent: switchyard-health-check`; the state survives a project edit that keeps the
//! backend; when every target fails, requests still go to one; a gateway file with a
//! `health_check` does the same and logs each transition once; bad settings are 422
//! naming the field (the admin API) or a start error naming the line (a gateway file).
//!
//! The upstreams are [`Flippable`]: small hyper servers in the test process whose
//! `/healthz` answers the status the test sets, and whose other paths answer
//! `{"upstream": NAME}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{Process, TestApp, User, assert_invalid, json_body, spawn_app};
use crate::upstream::refused_url;

/// How long a test waits for a target to go down or come back: probes every 100 ms and
/// thresholds of 2 take some 300 ms; the rest is slack for a loaded machine.
const WITHIN: Duration = Duration::from_secs(5);
/// The pause between two polls.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// An upstream whose health endpoint answers what the test says.
struct Flippable {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

struct State {
    /// What `/healthz` answers.
    health: AtomicU16,
    /// Requests to `/healthz`.
    probes: AtomicUsize,
    /// Requests to any other path.
    served: AtomicUsize,
    /// The `host` and `user-agent` of the last probe.
    last_probe: Mutex<Option<(String, String)>>,
}

impl Flippable {
    async fn start(name: &str) -> Flippable {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State {
            health: AtomicU16::new(200),
            probes: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            last_probe: Mutex::new(None),
        });
        let (shared, upstream) = (state.clone(), name.to_owned());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, upstream) = (shared.clone(), upstream.clone());
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    let upstream = upstream.clone();
                    async move { Ok::<_, Infallible>(answer(&state, &upstream, &request)) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Flippable {
            addr,
            state,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes `/healthz` answer `status` from now on.
    fn set_health(&self, status: u16) {
        self.state.health.store(status, Ordering::SeqCst);
    }

    fn probes(&self) -> usize {
        self.state.probes.load(Ordering::SeqCst)
    }

    fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }
}

impl Drop for Flippable {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn answer(
    state: &State,
    upstream: &str,
    request: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if request.uri().path() == "/healthz" {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        *state.last_probe.lock().expect("last probe") =
            Some((header("host"), header("user-agent")));
        state.probes.fetch_add(1, Ordering::SeqCst);
        let status = state.health.load(Ordering::SeqCst);
        return Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(format!("health {status}"))))
            .expect("response");
    }
    state.served.fetch_add(1, Ordering::SeqCst);
    let body = json!({ "upstream": upstream }).to_string();
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// A fast health check: every 100 ms, 2 failures down, 2 successes up.
fn fast_check() -> Value {
    json!({"path": "/healthz", "interval_ms": 100, "timeout_ms": 500,
           "unhealthy_after": 2, "healthy_after": 2})
}

async fn put_backend(app: &TestApp, user: &User, name: &str, body: &Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        &format!("/admin/projects/alice/shop/backends/{name}"),
        Some(&user.token),
        Some(body),
    )
    .await
}

/// Alice's `shop` forwarding `/api` to backend `api` of `backend`.
async fn shop(backend: &Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;
    let response = put_backend(&app, &alice, "api", backend).await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    let endpoint = json!({"method": "ANY", "path": "/api", "proxy": {"backend": "api"}});
    let response = app.post_endpoint(&alice, "alice/shop", &endpoint).await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    (app, alice)
}

/// The upstream that answered `GET url` (`None` for an answer that is not an echo).
async fn answered_by(client: &reqwest::Client, url: &str) -> Option<String> {
    let response = client.get(url).send().await.expect("request");
    if response.status() != StatusCode::OK {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["upstream"].as_str().map(str::to_owned)
}

/// Polls `GET url` until `only` answered `run` requests in a row; fails after [`WITHIN`].
async fn wait_only(client: &reqwest::Client, url: &str, only: &str, run: usize) {
    let start = Instant::now();
    let mut streak = 0;
    while streak < run {
        assert!(
            start.elapsed() < WITHIN,
            "{only} was not the only one to answer {url} within {WITHIN:?}"
        );
        if answered_by(client, url).await.as_deref() == Some(only) {
            streak += 1;
        } else {
            streak = 0;
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Polls `GET url` until `upstream` answers; fails after [`WITHIN`].
async fn wait_served_by(client: &reqwest::Client, url: &str, upstream: &str) {
    let start = Instant::now();
    while answered_by(client, url).await.as_deref() != Some(upstream) {
        assert!(
            start.elapsed() < WITHIN,
            "{upstream} did not answer {url} within {WITHIN:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls until `done`; fails with `what` after [`WITHIN`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WITHIN, "waited in vain: {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[tokio::test]
async fn a_target_failing_its_check_gets_no_traffic_until_it_passes_again() {
    let (a, b) = (Flippable::start("a").await, Flippable::start("b").await);
    let (app, _alice) = shop(&json!({"urls": [a.url(), b.url()], "policy": "round_robin",
        "health_check": fast_check()}))
    .await;
    let client = reqwest::Client::new();
    let url = app.url("/alice/shop/api/orders");
    wait_served_by(&client, &url, "a").await;
    wait_served_by(&client, &url, "b").await;
    // Probes reach each target at its root with its own host and our user agent.
    wait_until("b is probed", || b.probes() > 0).await;
    let (host, agent) = b.state.last_probe.lock().unwrap().clone().unwrap();
    assert_eq!(host, b.addr.to_string());
    assert_eq!(agent, "switchyard-health-check");

    b.set_health(503);
    wait_only(&client, &url, "a", 10).await;
    let served = b.served();
    for _ in 0..30 {
        assert_eq!(answered_by(&client, &url).await.as_deref(), Some("a"));
    }
    assert_eq!(
        b.served(),
        served,
        "a target failing its check gets no traffic"
    );
    assert!(b.probes() > 2, "and is still probed");

    b.set_health(200);
    wait_served_by(&client, &url, "b").await;
    // Both share the traffic again.
    let mut seen = std::collections::HashMap::new();
    for _ in 0..20 {
        *seen
            .entry(answered_by(&client, &url).await.expect("an echo"))
            .or_insert(0) += 1;
    }
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&10), "{seen:?}");
}

#[tokio::test]
async fn timeouts_and_refused_connections_fail_the_check_and_redirects_pass_it() {
    let a = Flippable::start("a").await;
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("address"));
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    // Answers its health check with a redirect: a success.
    let redirects = Flippable::start("redirects").await;
    redirects.set_health(302);
    let check = json!({"path": "/healthz", "interval_ms": 100, "timeout_ms": 200,
        "unhealthy_after": 1});
    let (app, _alice) = shop(
        &json!({"urls": [a.url(), silent_url, redirects.url(), refused_url()],
        "health_check": check, "timeout_ms": 300}),
    )
    .await;
    let client = reqwest::Client::new();
    let url = app.url("/alice/shop/api");
    // Once the silent and the refusing targets are down, no request waits for either:
    // every one is answered.
    let start = Instant::now();
    let mut answered = 0;
    while answered < 30 {
        assert!(
            start.elapsed() < WITHIN,
            "the silent target was not left out"
        );
        if answered_by(&client, &url).await.is_some() {
            answered += 1;
        } else {
            answered = 0;
        }
    }
    assert!(a.served() > 0 && redirects.served() > 0);
    hold.abort();
}

#[tokio::test]
async fn the_state_survives_an_edit_that_keeps_the_backend() {
    let (a, b) = (Flippable::start("a").await, Flippable::start("b").await);
    b.set_health(503);
    // Slow probes: one at once, the next in 10 s, after the test.
    let check = json!({"path": "/healthz", "interval_ms": 10_000, "unhealthy_after": 1});
    let backend = json!({"urls": [a.url(), b.url()], "health_check": check});
    let (app, alice) = shop(&backend).await;
    wait_until("b's first probe", || b.probes() == 1).await;
    let client = reqwest::Client::new();
    let url = app.url("/alice/shop/api");
    wait_only(&client, &url, "a", 10).await;

    // Another backend, and the same one written again: every backend is handed out anew.
    let other = json!({"urls": [a.url()]});
    assert_eq!(
        put_backend(&app, &alice, "other", &other).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put_backend(&app, &alice, "api", &backend).await.status(),
        StatusCode::OK
    );
    for _ in 0..20 {
        assert_eq!(answered_by(&client, &url).await.as_deref(), Some("a"));
    }
    assert_eq!(b.served(), 0, "b is still down after the edits");
    assert_eq!(
        b.probes(),
        1,
        "the same probe task goes on: no new first probe"
    );

    // A change of the health check is another backend, with state of its own.
    let mut changed = backend.clone();
    changed["health_check"]["interval_ms"] = json!(100);
    changed["health_check"]["unhealthy_after"] = json!(3);
    b.set_health(200);
    assert_eq!(
        put_backend(&app, &alice, "api", &changed).await.status(),
        StatusCode::OK
    );
    wait_served_by(&client, &url, "b").await;
}

#[tokio::test]
async fn when_every_target_fails_its_check_requests_still_go_to_one() {
    let (a, b) = (Flippable::start("a").await, Flippable::start("b").await);
    a.set_health(500);
    b.set_health(404);
    let (app, alice) =
        shop(&json!({"urls": [a.url(), b.url()], "health_check": fast_check()})).await;
    wait_until("both probed twice", || a.probes() >= 2 && b.probes() >= 2).await;
    let client = reqwest::Client::new();
    let url = app.url("/alice/shop/api");
    for _ in 0..10 {
        assert!(answered_by(&client, &url).await.is_some());
    }
    // The health check shows with its defaults filled in.
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/shop/backends/api",
            Some(&alice.token),
            None,
        )
        .await;
    let shown = json_body(response).await;
    assert_eq!(shown["health_check"], fast_check(), "{shown}");
    let response = put_backend(
        &app,
        &alice,
        "defaults",
        &json!({"urls": [a.url()], "health_check": {"path": "/ready"}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let shown = json_body(response).await;
    assert_eq!(
        shown["health_check"],
        json!({"path": "/ready", "interval_ms": 5000, "timeout_ms": 1000,
               "unhealthy_after": 3, "healthy_after": 1}),
        "{shown}"
    );
}

#[tokio::test]
async fn bad_health_checks_are_422_naming_the_field() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "shop").await;
    let urls = ["http://127.0.0.1:9"];
    for (check, field) in [
        (json!({"path": "healthz"}), "health_check.path"),
        (json!({"path": "/a b"}), "health_check.path"),
        (
            json!({"path": "/h", "interval_ms": 99}),
            "health_check.interval_ms",
        ),
        (
            json!({"path": "/h", "interval_ms": 600_001}),
            "health_check.interval_ms",
        ),
        (
            json!({"path": "/h", "timeout_ms": 50}),
            "health_check.timeout_ms",
        ),
        (
            json!({"path": "/h", "unhealthy_after": 0}),
            "health_check.unhealthy_after",
        ),
        (
            json!({"path": "/h", "healthy_after": 11}),
            "health_check.healthy_after",
        ),
    ] {
        let body = json!({"urls": urls, "health_check": check});
        assert_invalid(put_backend(&app, &alice, "api", &body).await, field).await;
    }
    // Shape errors name the field too.
    let body = json!({"urls": urls, "health_check": {"interval_ms": 1000}});
    let response = put_backend(&app, &alice, "api", &body).await;
    let error = json_body(response).await;
    assert!(
        error["error"]["details"][0]["field"]
            .as_str()
            .is_some_and(|field| field.starts_with("health_check")),
        "{error}"
    );
    // In a whole project, under its backend.
    let project = json!({
        "backends": [{"name": "api", "urls": urls,
                      "health_check": {"path": "/h", "healthy_after": 0}}],
        "endpoints": [],
    });
    let response = app
        .call(
            Method::PUT,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&project),
        )
        .await;
    assert_invalid(response, "backends[0].health_check.healthy_after").await;
}

fn gateway_file(a: &Flippable, b: &Flippable, check: &str) -> String {
    format!(
        "routes:\n  - path_prefix: /api\n    backend: api\nbackends:\n  - name: api\n    urls: [\"{}\", \"{}\"]\n    policy: round_robin\n{check}",
        a.url(),
        b.url()
    )
}

#[tokio::test]
async fn a_gateway_file_with_a_health_check_leaves_a_failing_target_out_and_logs_it_once() {
    let (a, b) = (Flippable::start("a").await, Flippable::start("b").await);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("routes.yml");
    let check = "    health_check:\n      path: /healthz\n      interval_ms: 100\n      timeout_ms: 500\n      unhealthy_after: 2\n      healthy_after: 2\n";
    std::fs::write(&file, gateway_file(&a, &b, check)).expect("write");
    let (process, stderr) = Process::gateway(&file, &["--log-level", "info"], &[]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/x", process.base);
    wait_served_by(&client, &url, "b").await;

    b.set_health(503);
    wait_only(&client, &url, "a", 10).await;
    b.set_health(200);
    wait_served_by(&client, &url, "b").await;

    let lines = |text: &str| -> Vec<String> {
        stderr
            .lock()
            .expect("stderr")
            .iter()
            .filter(|line| line.contains(text))
            .cloned()
            .collect()
    };
    wait_until("the way back is logged", || {
        !lines("passes its health check again").is_empty()
    })
    .await;
    // A few more rounds: nothing more is logged.
    let rounds = b.probes();
    wait_until("more probes", || b.probes() >= rounds + 3).await;
    let down = lines("failed its health check");
    let up = lines("passes its health check again");
    assert_eq!(down.len(), 1, "{down:#?}");
    assert_eq!(up.len(), 1, "{up:#?}");
    let target = b.addr.to_string();
    for line in down.iter().chain(&up) {
        assert!(line.contains("api") && line.contains(&target), "{line}");
    }
    assert!(
        down[0].contains("WARN") && down[0].contains("503"),
        "{}",
        down[0]
    );
    assert!(up[0].contains("INFO"), "{}", up[0]);
    assert!(lines(&a.addr.to_string()).is_empty(), "a never changed");
    process.terminate().await;
}

#[tokio::test]
async fn a_bad_health_check_in_a_gateway_file_names_its_line() {
    let (a, b) = (Flippable::start("a").await, Flippable::start("b").await);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("routes.yml");
    let check = "    health_check: {path: /healthz, interval_ms: 50}\n";
    std::fs::write(&file, gateway_file(&a, &b, check)).expect("write");
    let mut config = switchyard::config::Config::new(String::new());
    config.port = 0;
    let error = switchyard::server::start_gateway(config, file.clone())
        .await
        .err()
        .expect("the gateway refuses the file");
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    assert!(
        message.contains("line 5: backend `api`: health_check.interval_ms"),
        "{message}"
    );
    assert_eq!(a.probes() + b.probes(), 0, "nothing was probed");
}
