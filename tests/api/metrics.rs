//! `/metrics`: the Prometheus exposition, parsed by a Prometheus text-format parser.

use prometheus_parse::{Scrape, Value as Sample};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text format")
}

/// The value of the sample `name` whose labels include all of `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
            Sample::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Sample::Summary(_) => f64::NAN,
        })
}

async fn metrics(app: &TestApp, token: &str) -> (String, Scrape) {
    let response = app.call(Method::GET, "/metrics", Some(token), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = response.text().await.expect("body");
    let scrape = parse(&text);
    (text, scrape)
}

#[tokio::test]
async fn metrics_count_traffic_by_project_and_endpoint_and_show_the_node() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.create_project_with(
        &alice,
        "shop",
        json!([
            {"id": "ok", "method": "GET", "path": "/ok", "response": {"body": "ok"}},
            {"id": "boom", "method": "GET", "path": "/boom", "response": {"status": 500}},
            {"id": "idle", "method": "GET", "path": "/idle", "response": {"body": "idle"}},
        ]),
    )
    .await;
    for _ in 0..4 {
        app.get("/alice/shop/ok").await;
    }
    for _ in 0..2 {
        app.get("/alice/shop/boom").await;
    }
    app.get("/alice/shop/missing").await;

    let (text, scrape) = metrics(&app, &alice.token).await;
    let shop = ("project", "alice/shop");
    assert_eq!(
        value(
            &scrape,
            "switchyard_project_requests_total",
            &[shop, ("class", "2xx")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "switchyard_project_requests_total",
            &[shop, ("class", "4xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "switchyard_endpoint_requests_total",
            &[shop, ("endpoint", "boom"), ("class", "5xx")]
        ),
        Some(2.0)
    );
    // Series are labelled by endpoint id, never by request path, and an endpoint without
    // traffic has none.
    assert!(!text.contains("/alice/shop/missing"));
    assert!(!text.contains("endpoint=\"idle\""));
    assert_eq!(
        value(
            &scrape,
            "switchyard_endpoint_request_duration_seconds_count",
            &[shop, ("endpoint", "ok")]
        ),
        Some(4.0),
        "{text}"
    );
    assert!(value(&scrape, "switchyard_requests_total", &[("class", "2xx")]).unwrap() >= 4.0);
    assert_eq!(value(&scrape, "switchyard_projects", &[]), Some(1.0));
    assert_eq!(value(&scrape, "switchyard_endpoints", &[]), Some(3.0));
    assert_eq!(
        value(&scrape, "switchyard_project_revision", &[shop]),
        Some(1.0)
    );
    assert!(value(&scrape, "switchyard_connections_open", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(&scrape, "switchyard_password_hashes_queued", &[]),
        Some(0.0)
    );
    assert!(
        value(
            &scrape,
            "switchyard_store_commits_total",
            &[("class", "2xx")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        value(&scrape, "switchyard_process_resident_memory_bytes", &[])
            .unwrap_or_else(|| panic!("{text}"))
            > 1e6
    );
    assert!(value(&scrape, "switchyard_process_open_fds", &[]).unwrap() > 3.0);
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn metrics_are_for_admins() {
    let app = spawn_app().await;
    let _alice = app.user("alice").await; // the first user is the admin
    let bob = app.user("bob").await;
    assert_error(
        app.call(Method::GET, "/metrics", Some(&bob.token), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.call(Method::GET, "/metrics", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
