//! Logins under load: bounded password hashing (503 past the queue, memory bounded by the
//! hash concurrency), failed-login limits per name and per address (429 before any hash),
//! and the API token quota.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Process, TestApp, assert_error, db_url, header, json_body, spawn_app_with,
};

fn login_request(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": name, "password": password}))
}

/// argon2id's memory per hash, in KiB.
const HASH_KIB: u64 = 19 * 1024;

#[tokio::test]
async fn a_login_flood_is_bounded_by_the_hash_concurrency() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc to read the server's memory from");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("flood.db"));
    // Failure limits are set out of reach so that what is measured is the hashing bound;
    // the limits have their own tests below.
    let process = Process::start(
        &db,
        &[
            "--hash-concurrency",
            "2",
            "--hash-queue",
            "16",
            "--login-failures-per-address",
            "100000",
            "--login-failures-per-user",
            "100000",
        ],
    )
    .await;
    let base = process.base.clone();
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let token = json_body(
        login_request(&client, &base, "alice", PASSWORD)
            .send()
            .await
            .unwrap(),
    )
    .await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let created = client
        .post(format!("{base}/admin/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let endpoint = client
        .post(format!("{base}/admin/projects/alice/shop/endpoints"))
        .bearer_auth(&token)
        .json(&json!({"method": "GET", "path": "/items", "response": {"json": [1, 2]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), StatusCode::CREATED);

    let rss_before = process.memory_kib("VmRSS");
    let hwm_before = process.memory_kib("VmHWM");
    let flood: Vec<_> = (0..300)
        .map(|n| {
            let request = login_request(&client, &base, &format!("guest{n}"), "wrong password");
            tokio::spawn(async move {
                let response = request.send().await.expect("login answers");
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = json_body(response).await;
                (status, retry_after, body)
            })
        })
        .collect();
    // While the flood is waiting for hash slots, the rest of the server answers promptly.
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    while !flood.iter().all(|task| task.is_finished()) {
        for path in ["/health", "/alice/shop/items"] {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} during the flood");
            slowest = slowest.max(started.elapsed());
            probes += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hwm_during = process.memory_kib("VmHWM");
    let (mut refused, mut failed) = (0, 0);
    for task in flood {
        let (status, retry_after, body) = task.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {
                assert_eq!(body["error"]["code"], "invalid_credentials");
                failed += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "server_busy");
                let secs: u64 = retry_after.expect("Retry-After on 503").parse().unwrap();
                assert!(secs >= 1);
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // The last hashing thread hands memory back when it goes idle; give it a moment (the
    // machine may be busy with other tests).
    let settled = rss_before + HASH_KIB;
    let mut rss_after = process.memory_kib("VmRSS");
    for _ in 0..50 {
        if rss_after < settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rss_after = process.memory_kib("VmRSS");
    }
    eprintln!(
        "flood of 300 logins: {failed} checked (401), {refused} refused (503); \
         VmRSS before {rss_before} KiB, VmHWM before {hwm_before} KiB, peak {hwm_during} KiB, \
         VmRSS after {rss_after} KiB; {probes} probes, slowest {slowest:?}"
    );
    assert!(refused > 0, "a full queue refuses some logins");
    assert!(failed >= 18, "the slots and the queue were all used");
    // Two hashes at once: 38 MiB, plus room for 300 connections and allocator slack. Before
    // the bound, this flood took the server to about 4.9 GB.
    let growth = hwm_during.saturating_sub(rss_before);
    assert!(
        growth < 2 * HASH_KIB + 48 * 1024,
        "peak grew by {growth} KiB, more than two hashes' worth and slack"
    );
    assert!(
        rss_after < settled,
        "after the flood memory went back to the OS: {rss_before} KiB -> {rss_after} KiB"
    );
    // About 0.1 s on an idle two-core machine; the bound leaves room for a loaded one.
    assert!(
        slowest < Duration::from_secs(5),
        "slowest probe took {slowest:?}"
    );
    let after = login_request(&client, &base, "alice", PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "a correct login after the flood"
    );
}

#[tokio::test]
async fn registrations_past_the_hash_queue_get_503() {
    let app = spawn_app_with(|c| {
        c.login.hash_concurrency = 1;
        c.login.hash_queue = 1;
    })
    .await;
    let answers: Vec<_> = (0..30)
        .map(|n| {
            let request = app
                .client
                .post(app.url("/auth/register"))
                .json(&json!({"username": format!("user{n}"), "password": PASSWORD}));
            tokio::spawn(async move { request.send().await.expect("register answers") })
        })
        .collect();
    let mut busy = None;
    let mut created = 0;
    for answer in answers {
        let response = answer.await.unwrap();
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => busy = Some(response),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        created >= 2,
        "the running and the queued registration went through"
    );
    let busy = busy.expect("some registrations were turned away");
    assert_eq!(header(&busy, "retry-after"), "1");
    assert_error(busy, StatusCode::SERVICE_UNAVAILABLE, "server_busy").await;
}

/// A server with short windows and small limits; the registered user is `alice`.
async fn limited_app(per_address: u32, per_user: u32) -> TestApp {
    let app = spawn_app_with(|c| {
        c.login.failures_per_address = per_address;
        c.login.failures_per_user = per_user;
        c.login.failure_window = Duration::from_secs(1);
    })
    .await;
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app
}

async fn assert_too_many(response: reqwest::Response) {
    let secs: u64 = header(&response, "retry-after").parse().expect("seconds");
    assert_eq!(secs, 1, "the rest of a one-second window, rounded up");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
}

#[tokio::test]
async fn failed_logins_for_one_name_get_429_even_with_the_right_password() {
    let app = limited_app(100, 3).await;
    for _ in 0..3 {
        let response = app.login("alice", "wrong password").await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_too_many(app.login("alice", "wrong password").await).await;
    // Refused before the password is checked: the right one does not get through either,
    // so the 429 tells a guesser nothing.
    assert_too_many(app.login("alice", PASSWORD).await).await;
    // Another name from the same address is not affected.
    let other = app.login("bob", "wrong password").await;
    assert_error(other, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn failed_logins_from_one_address_get_429_across_names() {
    let app = limited_app(3, 100).await;
    for name in ["bob", "carol", "alice"] {
        let response = app.login(name, "wrong password").await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_too_many(app.login("dave", "wrong password").await).await;
    assert_too_many(app.login("alice", PASSWORD).await).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_successful_login_does_not_count_and_clears_the_name() {
    let app = limited_app(4, 3).await;
    for _ in 0..2 {
        assert_eq!(
            app.login("alice", "typo").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // The name starts over; the address keeps its two failures and gets two more.
    for _ in 0..2 {
        assert_eq!(
            app.login("alice", "typo").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_too_many(app.login("alice", "typo").await).await;
}

#[tokio::test]
async fn concurrent_guesses_cannot_overrun_the_limit() {
    let app = limited_app(1000, 5).await;
    let answers: Vec<_> = (0..40)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/auth/login"))
                .json(&json!({"username": "alice", "password": "guess"}));
            tokio::spawn(async move { request.send().await.expect("login answers").status() })
        })
        .collect();
    let mut checked = 0;
    for answer in answers {
        match answer.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        checked, 5,
        "only the limit's worth of guesses reach a password check"
    );
}

#[tokio::test]
async fn api_tokens_past_the_quota_get_403_until_one_is_deleted() {
    let app = spawn_app_with(|c| c.quotas.tokens_per_user = 2).await;
    let alice = app.user("alice").await;
    let create = |name: &'static str| {
        app.client
            .post(app.url("/auth/tokens"))
            .bearer_auth(&alice.token)
            .json(&json!({"name": name}))
            .send()
    };
    let create = |name| async move { create(name).await.expect("request") };
    let first: Value = json_body(create("ci").await).await;
    assert_eq!(create("laptop").await.status(), StatusCode::CREATED);
    let refused = assert_error(
        create("third").await,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2 live API tokens"),
        "the message names the limit: {message}"
    );
    let id = first["id"].as_str().expect("token id");
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(create("third").await.status(), StatusCode::CREATED);
}
