//! Tests of the live upstreams: picking, health, the registry's sharing, upstream URIs.

use super::*;

fn backend(name: &str, urls: &[&str], policy: Balance) -> Backend {
    Backend {
        name: name.into(),
        urls: urls.iter().map(|url| (*url).to_owned()).collect(),
        docker: None,
        policy,
        connect_timeout_ms: 5_000,
        timeout_ms: 60_000,
        health_check: None,
    }
}

fn live(urls: &[&str], policy: Balance) -> (Registry, Arc<Upstream>) {
    let registry = Registry::new();
    let upstreams = registry.upstreams(&[backend("b", urls, policy)], false);
    let upstream = Arc::clone(upstreams.get("b").unwrap());
    (registry, upstream)
}

const THREE: &[&str] = &["http://a:1", "http://b:2", "http://c:3"];

#[test]
fn round_robin_cycles_in_order() {
    let (_registry, upstream) = live(THREE, Balance::RoundRobin);
    let picks: Vec<_> = (0..7)
        .map(|_| upstream.pick(&upstream.targets(), 0).unwrap())
        .collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn random_spreads_over_every_target() {
    let (_registry, upstream) = live(THREE, Balance::Random);
    let mut counts = [0; 3];
    for _ in 0..3_000 {
        counts[upstream.pick(&upstream.targets(), 0).unwrap()] += 1;
    }
    assert!(counts.iter().all(|&n| n > 700), "{counts:?}");
}

#[test]
fn down_targets_are_skipped() {
    for policy in [Balance::Random, Balance::RoundRobin] {
        let (_registry, upstream) = live(THREE, policy);
        upstream.target(1).unwrap().health().failed(100);
        let picks: Vec<_> = (0..200)
            .map(|_| upstream.pick(&upstream.targets(), 200).unwrap())
            .collect();
        assert!(!picks.contains(&1), "{policy:?}");
        assert!(picks.contains(&0) && picks.contains(&2), "{policy:?}");
        if policy == Balance::RoundRobin {
            assert!(
                picks.windows(2).all(|pair| pair[0] != pair[1]),
                "alternates"
            );
        }
        // Once its back-off is over, it is picked again.
        let later: Vec<_> = (0..200)
            .map(|_| upstream.pick(&upstream.targets(), 1_100).unwrap())
            .collect();
        assert!(later.contains(&1), "{policy:?}");
    }
}

#[test]
fn when_every_target_is_down_the_first_back_comes_first() {
    let (_registry, upstream) = live(THREE, Balance::RoundRobin);
    upstream.target(0).unwrap().health().failed(300);
    upstream.target(1).unwrap().health().failed(100);
    upstream.target(2).unwrap().health().failed(200);
    for _ in 0..5 {
        assert_eq!(upstream.pick(&upstream.targets(), 250), Some(1));
    }
    // No healthy target but the one tried: no second attempt.
    assert_eq!(upstream.pick_other(&upstream.targets(), 250, 1), None);
}

#[test]
fn a_second_attempt_goes_to_another_healthy_target() {
    let (_registry, upstream) = live(THREE, Balance::Random);
    for _ in 0..100 {
        assert_ne!(upstream.pick_other(&upstream.targets(), 0, 1), Some(1));
    }
    upstream.target(2).unwrap().health().failed(0);
    for _ in 0..20 {
        assert_eq!(upstream.pick_other(&upstream.targets(), 10, 1), Some(0));
    }
    let (_registry, single) = live(&["http://a:1"], Balance::Random);
    assert_eq!(single.pick_other(&single.targets(), 0, 0), None);
    single.target(0).unwrap().health().failed(0);
    assert_eq!(
        single.pick(&single.targets(), 10),
        Some(0),
        "the only target is tried even when down"
    );
}

#[test]
fn a_backend_without_a_valid_target_has_nothing_to_pick() {
    let (_registry, upstream) = live(&["not a url", "ftp://x"], Balance::Random);
    assert!(upstream.targets().is_empty());
    assert_eq!(upstream.pick(&upstream.targets(), 0), None);
    let (_registry, none) = live(&[], Balance::RoundRobin);
    assert_eq!(none.pick(&none.targets(), 0), None);
}

#[test]
fn the_same_definition_gives_the_same_upstream() {
    let registry = Registry::new();
    let first = registry.upstreams(&[backend("pay", THREE, Balance::RoundRobin)], false);
    let pay = first.get("pay").unwrap();
    // Another revision, another name, another project: the same definition.
    let second = registry.upstreams(
        &[
            backend("other", &["http://x:9"], Balance::Random),
            backend("renamed", THREE, Balance::RoundRobin),
        ],
        false,
    );
    assert!(Arc::ptr_eq(pay, second.get("renamed").unwrap()));
    assert!(second.get("pay").is_none());
    // The round-robin position is kept.
    assert_eq!(pay.pick(&pay.targets(), 0), Some(0));
    assert_eq!(
        second
            .get("renamed")
            .unwrap()
            .pick(&second.get("renamed").unwrap().targets(), 0),
        Some(1)
    );
    // Once nothing holds it, a definition starts afresh.
    let weak = Arc::downgrade(pay);
    drop((first, second));
    assert!(weak.upgrade().is_none());
    let third = registry.upstreams(&[backend("pay", THREE, Balance::RoundRobin)], false);
    assert_eq!(
        third
            .get("pay")
            .unwrap()
            .pick(&third.get("pay").unwrap().targets(), 0),
        Some(0)
    );
}

#[test]
fn other_timeouts_make_another_upstream_with_the_same_health() {
    let registry = Registry::new();
    let mut slow = backend("slow", &["http://A:80/x", "http://b:2"], Balance::Random);
    slow.timeout_ms = 1_000;
    let mut careful = slow.clone();
    careful.name = "careful".into();
    careful.connect_timeout_ms = 100;
    let plain = backend("plain", &["http://a"], Balance::Random);
    let all = registry.upstreams(&[slow, careful, plain], false);
    let slow = all.get("slow").unwrap();
    let careful = all.get("careful").unwrap();
    let plain = all.get("plain").unwrap();
    assert!(!Arc::ptr_eq(slow, careful));
    assert!(!Arc::ptr_eq(slow, plain));
    assert_eq!(slow.timeout(), Duration::from_secs(1));
    assert_eq!(careful.connect_timeout(), Duration::from_millis(100));
    // `http://A:80` and `http://a` are one authority: one health.
    let health = |upstream: &Upstream, index: usize| -> *const Health {
        upstream.target(index).unwrap().health()
    };
    assert_eq!(health(slow, 0), health(careful, 0));
    assert_eq!(health(slow, 0), health(plain, 0));
    assert_eq!(health(slow, 1), health(careful, 1));
    assert_ne!(health(slow, 0), health(slow, 1));
    slow.target(0).unwrap().health().failed(0);
    assert!(plain.target(0).unwrap().health().is_down(1));
    // One authority, one pool of connections, whatever the timeouts.
    let pool =
        |upstream: &Upstream, index: usize| Arc::clone(upstream.target(index).unwrap().pool());
    assert!(Arc::ptr_eq(&pool(slow, 0), &pool(careful, 0)));
    assert!(Arc::ptr_eq(&pool(slow, 0), &pool(plain, 0)));
    assert!(!Arc::ptr_eq(&pool(slow, 0), &pool(slow, 1)));
    // The host header is the authority as written.
    assert_eq!(slow.target(0).unwrap().host(), "A:80");
    assert_eq!(plain.target(0).unwrap().host(), "a");
}

#[test]
fn upstream_uris_put_the_base_path_in_front() {
    let (_registry, upstream) = live(
        &["http://a:1", "http://b:2/base/", "http://c:3/v1/api"],
        Balance::Random,
    );
    let uri = |index: usize, tail: Tail<'_>, query: Option<&str>| {
        upstream
            .target(index)
            .unwrap()
            .uri(tail, query)
            .unwrap()
            .to_string()
    };
    // The whole path inside the project.
    assert_eq!(uri(0, Tail::Path("/"), None), "/");
    assert_eq!(uri(0, Tail::Path("/api/pay/x"), None), "/api/pay/x");
    assert_eq!(uri(1, Tail::Path("/api/pay"), None), "/base/api/pay");
    assert_eq!(uri(1, Tail::Path("/"), None), "/base/");
    assert_eq!(uri(2, Tail::Path("/x/"), Some("q=1&r")), "/v1/api/x/?q=1&r");
    // Stripped of the endpoint's prefix.
    assert_eq!(uri(0, Tail::Rest(Some("x/y")), None), "/x/y");
    assert_eq!(uri(0, Tail::Rest(None), None), "/");
    assert_eq!(uri(0, Tail::Rest(Some("")), Some("a=b")), "/?a=b");
    assert_eq!(uri(1, Tail::Rest(None), None), "/base/");
    assert_eq!(uri(1, Tail::Rest(Some("x")), None), "/base/x");
    // Raw bytes: percent-encoding and empty queries are kept as they came.
    assert_eq!(
        uri(0, Tail::Path("/a%2Fb/%20c"), Some("x=%41&y=a+b")),
        "/a%2Fb/%20c?x=%41&y=a+b"
    );
    assert_eq!(uri(0, Tail::Path("/a"), Some("")), "/a?");
    assert_eq!(uri(0, Tail::Path("//double"), None), "//double");
    // Bytes that cannot be in a URI are refused, not sent.
    let target = upstream.target(0).unwrap();
    assert!(target.uri(Tail::Path("/a b"), None).is_none());
}

#[test]
fn a_second_attempt_keeps_the_path_below_the_base() {
    let (_registry, upstream) = live(&["http://a:1/base", "http://b:2"], Balance::Random);
    let (a, b) = (upstream.target(0).unwrap(), upstream.target(1).unwrap());
    let first = a.uri(Tail::Path("/x%20y"), Some("q")).unwrap();
    assert_eq!(b.rebase(&first, &a).unwrap().to_string(), "/x%20y?q");
    let back = b.rebase(&first, &a).unwrap();
    assert_eq!(a.rebase(&back, &b).unwrap().to_string(), "/base/x%20y?q");
}

proptest::proptest! {
    #[test]
    fn uris_never_panic(path in "\\PC{0,40}", query in proptest::option::of("\\PC{0,20}")) {
        let (_registry, upstream) = live(&["http://a:1/base"], Balance::Random);
        let target = upstream.target(0).unwrap();
        let _ = target.uri(Tail::Path(&path), query.as_deref());
        let _ = target.uri(Tail::Rest(Some(&path)), query.as_deref());
    }
}

#[test]
fn the_live_state_is_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Registry>();
    shared::<Upstreams>();
    shared::<Upstream>();
}

// Active health checks.

fn checked(name: &str, urls: &[&str], check: HealthCheck) -> Backend {
    Backend {
        health_check: Some(check),
        ..backend(name, urls, Balance::RoundRobin)
    }
}

/// Records `results` (`+` a success, `-` a failure) for target `index` of `upstream`.
fn record(upstream: &Upstream, index: usize, results: &str) {
    let target = upstream.target(index).unwrap();
    let thresholds = probe::Thresholds {
        unhealthy_after: 2,
        healthy_after: 2,
    };
    for result in results.chars() {
        target.active().unwrap().record(result == '+', thresholds);
    }
}

#[test]
fn a_target_failing_its_check_is_skipped_until_it_passes_again() {
    let registry = Registry::new();
    let all = registry.upstreams(
        &[checked("b", THREE, HealthCheck::of_path("/healthz"))],
        false,
    );
    let upstream = all.get("b").unwrap();
    let picks = |upstream: &Upstream| -> Vec<usize> {
        (0..30)
            .map(|_| upstream.pick(&upstream.targets(), 0).unwrap())
            .collect()
    };
    assert!(picks(upstream).contains(&1), "every target starts up");
    record(upstream, 1, "--");
    assert!(upstream.target(1).unwrap().failing_check());
    assert!(!picks(upstream).contains(&1));
    // An answer to a proxied request does not bring it back; only its check does.
    upstream.target(1).unwrap().health().succeeded();
    assert!(!picks(upstream).contains(&1));
    record(upstream, 1, "+");
    assert!(!picks(upstream).contains(&1), "one success of two");
    record(upstream, 1, "+");
    assert!(picks(upstream).contains(&1));
    // A second attempt never goes to a target failing its check.
    record(upstream, 2, "--");
    for _ in 0..20 {
        assert_eq!(upstream.pick_other(&upstream.targets(), 0, 1), Some(0));
    }
}

#[test]
fn when_every_target_is_down_one_in_a_back_off_comes_before_one_failing_its_check() {
    let registry = Registry::new();
    let all = registry.upstreams(
        &[checked("b", THREE, HealthCheck::of_path("/healthz"))],
        false,
    );
    let upstream = all.get("b").unwrap();
    record(upstream, 0, "--");
    record(upstream, 1, "--");
    upstream.target(2).unwrap().health().failed(1_000);
    for _ in 0..5 {
        assert_eq!(upstream.pick(&upstream.targets(), 1_500), Some(2));
    }
    // Every target failing its check: still one is tried, the one whose back-off ends
    // first.
    record(upstream, 2, "--");
    upstream.target(0).unwrap().health().failed(1_000);
    assert_eq!(upstream.pick(&upstream.targets(), 1_500), Some(1));
    assert_eq!(upstream.pick_other(&upstream.targets(), 1_500, 1), None);
}

#[test]
fn the_health_check_is_part_of_the_definition() {
    let registry = Registry::new();
    let check = HealthCheck::of_path("/healthz");
    let first = registry.upstreams(&[checked("a", THREE, check.clone())], false);
    let a = first.get("a").unwrap();
    record(a, 0, "--");
    // Same definition, another name: the same upstream, its targets' state kept.
    let again = registry.upstreams(&[checked("renamed", THREE, check.clone())], false);
    assert!(Arc::ptr_eq(a, again.get("renamed").unwrap()));
    assert!(a.target(0).unwrap().failing_check());
    assert_eq!(&*a.name(), "renamed", "logs name the backend it now serves");
    // Another check, or none: another upstream, with its own active state (passive health
    // stays shared by authority).
    let mut slower = check.clone();
    slower.interval_ms = 10_000;
    let other = registry.upstreams(
        &[
            checked("slower", THREE, slower),
            backend("plain", THREE, Balance::RoundRobin),
        ],
        false,
    );
    let slower = other.get("slower").unwrap();
    let plain = other.get("plain").unwrap();
    assert!(!Arc::ptr_eq(a, slower) && !Arc::ptr_eq(a, plain));
    assert!(!slower.target(0).unwrap().failing_check());
    assert!(plain.target(0).unwrap().active().is_none());
    assert!(!plain.target(0).unwrap().failing_check());
    let health = |upstream: &Upstream| -> *const Health { upstream.target(0).unwrap().health() };
    assert_eq!(health(a), health(plain));
}

#[test]
fn a_new_target_set_keeps_the_state_of_the_targets_it_still_has() {
    let registry = Registry::new();
    let upstream = registry.inner.lock().unwrap().upstream(
        &checked(
            "b",
            &["http://a:1", "http://b:2"],
            HealthCheck::of_path("/h"),
        ),
        None,
    );
    record(&upstream, 1, "--");
    let parse = |url: &str| {
        Target::parse(url, |authority| {
            (
                Arc::new(Health::new()),
                Arc::new(Pool::new(authority.clone(), None)),
            )
        })
        .unwrap()
    };
    upstream.set_targets(Targets::new(vec![parse("http://b:2"), parse("http://c:3")]));
    assert!(
        upstream.target(0).unwrap().failing_check(),
        "b:2 is still down"
    );
    assert!(
        !upstream.target(1).unwrap().failing_check(),
        "c:3 starts up"
    );
    assert!(upstream.target(1).unwrap().active().is_some());
    // Without a health check, targets get no active state.
    let (_registry, plain) = live(THREE, Balance::Random);
    plain.set_targets(Targets::new(vec![parse("http://b:2")]));
    assert!(plain.target(0).unwrap().active().is_none());
}

/// A local HTTP server for probes: answers every request with `status`, and records what
/// it was asked.
struct Probed {
    addr: std::net::SocketAddr,
    status: Arc<std::sync::atomic::AtomicU16>,
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Probed {
    async fn start() -> Probed {
        use std::sync::atomic::AtomicU16;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (Arc::clone(&status), Arc::clone(&seen));
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let header = |name| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v: &HeaderValue| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    log.lock().unwrap().push((
                        request.uri().to_string(),
                        header(http::header::HOST),
                        header(http::header::USER_AGENT),
                    ));
                    let status = answer.load(Ordering::SeqCst);
                    let response = http::Response::builder()
                        .status(status)
                        .body(http_body_util::Full::new(Bytes::from_static(b"ok")))
                        .unwrap();
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Probed {
            addr,
            status,
            seen,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Probed {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits (up to 5 s) for `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fast(path: &str) -> HealthCheck {
    HealthCheck {
        interval_ms: 100,
        timeout_ms: 500,
        unhealthy_after: 2,
        healthy_after: 2,
        ..HealthCheck::of_path(path)
    }
}

#[tokio::test]
async fn the_probe_task_follows_the_answers_and_stops_with_its_upstream() {
    let server = Probed::start().await;
    let registry = Registry::new();
    let base = format!("{}/base", server.url());
    let all = registry.upstreams(&[checked("b", &[&base], fast("/healthz?deep=1"))], false);
    let upstream = Arc::clone(all.get("b").unwrap());
    let target = upstream.target(0).unwrap();
    until("a first probe", || server.count() > 0).await;
    let (uri, host, agent) = server.seen.lock().unwrap()[0].clone();
    assert_eq!(uri, "/healthz?deep=1", "at the root: no base path");
    assert_eq!(host, server.addr.to_string());
    assert_eq!(agent, probe::USER_AGENT);
    server.status.store(503, Ordering::SeqCst);
    until("down after two failures", || target.failing_check()).await;
    server.status.store(302, Ordering::SeqCst);
    until("up after two successes", || !target.failing_check()).await;
    drop((all, upstream));
    let after = server.count();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        server.count() <= after + 1,
        "the probes stop with the upstream: {after} then {}",
        server.count()
    );
}

#[tokio::test]
async fn unreachable_and_slow_targets_fail_their_check() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let registry = Registry::new();
    let mut check = fast("/healthz");
    check.timeout_ms = 100;
    let all = registry.upstreams(&[checked("b", &[&refused, &silent_url], check)], false);
    let upstream = all.get("b").unwrap();
    let (a, b) = (upstream.target(0).unwrap(), upstream.target(1).unwrap());
    until("both down", || a.failing_check() && b.failing_check()).await;
    hold.abort();
}

#[tokio::test]
async fn a_docker_upstream_probes_its_current_targets() {
    let (first, second) = (Probed::start().await, Probed::start().await);
    let registry = Registry::new();
    let mut definition = checked("d", &[], fast("/healthz"));
    definition.docker = Some(crate::model::DockerSelector {
        match_labels: vec!["app=x".into()],
    });
    // Not registered with discovery: the test sets the targets itself.
    let upstream = registry.inner.lock().unwrap().upstream(&definition, None);
    probe::start(&upstream);
    let parse = |url: &str| {
        Target::parse(url, |authority| {
            (
                Arc::new(Health::new()),
                Arc::new(Pool::new(authority.clone(), None)),
            )
        })
        .unwrap()
    };
    upstream.set_targets(Targets::new(vec![parse(&first.url())]));
    until("the first target is probed", || first.count() > 0).await;
    upstream.set_targets(Targets::new(vec![parse(&second.url())]));
    until("the new target is probed", || second.count() > 0).await;
    second.status.store(500, Ordering::SeqCst);
    let target = upstream.target(0).unwrap();
    until("the new target goes down", || target.failing_check()).await;
    let before = first.count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        first.count() <= before + 1,
        "a target that left is not probed"
    );
}
