//! Swagger UI in a real browser. Headless Chromium loads a project's `/docs` page from the
//! real server and runs Swagger UI's script (embedded in the binary), which fetches the
//! project's document and renders it. The page it leaves (`--dump-dom`) must hold one
//! operation block per endpoint, with its method, path and summary, under its tag, and the
//! project's title; a screenshot of it (`--screenshot`) must be a real picture showing the
//! operations' coloured method badges, which the page of a project without endpoints does
//! not have; it is kept for people to look at in `target/tmp/swagger-ui-screenshot.png`
//! (`CARGO_TARGET_TMPDIR`). The platform's `/docs` is checked the same way against
//! `/openapi.json`.
//!
//! The browser is `SWITCHYARD_CHROMIUM`, else the first of `chromium` (Debian's package),
//! `chromium-browser`, `google-chrome` on the `PATH`; `scripts/test` installs Debian's
//! package when there is none, and sets `SWITCHYARD_CHROMIUM`. Without a browser these tests
//! fail, saying how to install one, as the Docker and Python tests do; only outside CI (`CI`
//! unset, empty, `false` or `0`), `SWITCHYARD_SKIP_BROWSER=1` turns that failure into a
//! skip, printed as such.
//!
//! Every Chromium run has a profile and `HOME` of its own in a temporary directory, runs in
//! a process group of its own, and is killed (the whole group) when it takes longer than
//! `RUN_WITHIN`; a failed run fails the test with the end of Chromium's stderr.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::helpers::{TestApp, User, json_body, spawn_app};

/// Browsers looked for on the `PATH` when `SWITCHYARD_CHROMIUM` is not set, in this order.
const BROWSERS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];
/// The longest one Chromium run may take before it is killed.
const RUN_WITHIN: Duration = Duration::from_secs(60);
/// The virtual time a page is given to load, run its scripts and fetch the document.
/// Virtual time stands still while a fetch is pending and runs fast while the page is idle,
/// so this is generous at almost no cost in real time.
const VIRTUAL_TIME_MS: u64 = 30_000;
/// How many times a page is loaded again when it has not rendered what is looked for (a
/// slow machine), each time with twice the virtual time.
const ATTEMPTS: u32 = 3;
/// The screenshot's size in CSS pixels (the PNG's size in pixels, at a scale of 1).
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 1600;

/// Swagger UI's method badges (swagger-ui.css, `.opblock-{method} .opblock-summary-method`).
const BADGES: &[(&str, [u8; 3])] = &[
    ("GET", [0x61, 0xaf, 0xfe]),
    ("POST", [0x49, 0xcc, 0x90]),
    ("PUT", [0xfc, 0xa1, 0x30]),
    ("DELETE", [0xf9, 0x3e, 0x3e]),
];

// The browser.

/// The browser, or `None` when it is missing and the tests may be skipped (printed).
/// Fails the test when it is missing otherwise.
fn browser() -> Option<&'static Path> {
    static BROWSER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let missing = match BROWSER.get_or_init(find_browser) {
        Ok(path) => return Some(path),
        Err(missing) => missing,
    };
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let skip = std::env::var("SWITCHYARD_SKIP_BROWSER").is_ok_and(|v| v == "1");
    if skip && !ci {
        eprintln!("skipped: {missing} (SWITCHYARD_SKIP_BROWSER=1)");
        return None;
    }
    panic!(
        "{missing}. The Swagger UI tests need headless Chromium: install Debian's package \
         (`apt-get install chromium`), or set SWITCHYARD_CHROMIUM to a Chromium or Chrome \
         binary; scripts/test installs it. {}",
        if ci {
            "CI is set: these tests cannot be skipped."
        } else {
            "To skip them instead, set SWITCHYARD_SKIP_BROWSER=1 (never in CI)."
        }
    );
}

fn find_browser() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SWITCHYARD_CHROMIUM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "SWITCHYARD_CHROMIUM={} is not an executable file",
                path.display()
            ))
        };
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    BROWSERS
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|path| executable(path))
        .ok_or_else(|| {
            format!(
                "no Chromium: SWITCHYARD_CHROMIUM is not set and none of {} is on the PATH",
                BROWSERS.join(", ")
            )
        })
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`) and
/// `budget` ms of virtual time, and returns its stdout. Fails the test, with the end of
/// Chromium's stderr, when it fails or takes longer than `RUN_WITHIN` (then it is killed,
/// with every process it started).
async fn chromium(browser: &Path, args: &[String], budget: u64, url: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut child = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--virtual-time-budget={budget}"))
        .args(args)
        .arg(url)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", browser.display()));
    let group = child.id().expect("a pid");
    let read = |mut pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>| {
        tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes).await;
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = tokio::time::timeout(RUN_WITHIN, child.wait()).await;
    // The whole group goes, whether the browser finished or not: no renderer is left behind
    // holding the pipes open.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let collect = |task: tokio::task::JoinHandle<Vec<u8>>| async {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let (stdout, stderr) = (collect(stdout).await, collect(stderr).await);
    // Its last 40 lines, less the D-Bus complaints of a machine without a session bus.
    let stderr = String::from_utf8_lossy(&stderr);
    let tail: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.contains(":ERROR:dbus/"))
        .rev()
        .take(40)
        .collect();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    match status {
        Err(_) => panic!(
            "Chromium did not finish within {RUN_WITHIN:?} on {url} (killed); its stderr:\n{tail}"
        ),
        Ok(Err(error)) => panic!("waiting for Chromium on {url}: {error}"),
        Ok(Ok(status)) if !status.success() => panic!(
            "Chromium failed ({status}) on {url} after {:?}; its stderr:\n{tail}",
            started.elapsed()
        ),
        Ok(Ok(_)) => stdout,
    }
}

/// The page at `url` as the browser leaves it after running its scripts, loaded again with
/// more virtual time while `done` does not accept it (`ATTEMPTS` times at most); the last
/// one is returned either way, for the caller's assertions to explain.
async fn rendered(browser: &Path, url: &str, done: impl Fn(&str) -> bool) -> String {
    let mut budget = VIRTUAL_TIME_MS;
    let mut dom = String::new();
    for attempt in 1..=ATTEMPTS {
        let out = chromium(browser, &["--dump-dom".to_owned()], budget, url).await;
        dom = String::from_utf8(out).expect("the DOM is UTF-8");
        if done(&dom) {
            break;
        }
        eprintln!("attempt {attempt}: {url} not rendered yet with {budget} ms of virtual time");
        budget *= 2;
    }
    dom
}

/// A screenshot of the page at `url` in `file`, decoded; taken again with more virtual time
/// while `done` does not accept it.
async fn screenshot(
    browser: &Path,
    url: &str,
    file: &Path,
    done: impl Fn(&Picture) -> bool,
) -> Picture {
    let args = [
        format!("--screenshot={}", file.display()),
        format!("--window-size={WIDTH},{HEIGHT}"),
    ];
    let mut budget = VIRTUAL_TIME_MS;
    let mut attempt = 1;
    loop {
        let _ = std::fs::remove_file(file);
        chromium(browser, &args, budget, url).await;
        let picture = Picture::read(file);
        if done(&picture) || attempt == ATTEMPTS {
            return picture;
        }
        eprintln!("attempt {attempt}: the screenshot of {url} does not show it yet");
        attempt += 1;
        budget *= 2;
    }
}

// What Swagger UI rendered.

/// One operation block of Swagger UI (`div.opblock`): its element id
/// (`operations-{tag}-{operationId}`), method, path and summary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    method: String,
    path: String,
    summary: String,
    id: String,
}

/// The operation blocks in a DOM dump, in page order. Each is
/// `<div class="opblock opblock-get" id="operations-pets-listPets">` holding
/// `<span class="opblock-summary-method">GET</span>`, `<span class="opblock-summary-path"
/// data-path="/pets">` (its text has `<wbr>`s) and `<div
/// class="opblock-summary-description">` with the summary, when there is one.
fn blocks(dom: &str) -> Vec<Block> {
    dom.split(r#"<div class="opblock opblock-"#)
        .skip(1)
        .map(|block| Block {
            method: between(block, r#"class="opblock-summary-method">"#, "<"),
            path: between(block, r#"class="opblock-summary-path" data-path=""#, "\""),
            summary: between(block, r#"class="opblock-summary-description">"#, "<"),
            id: between(block, r#"id=""#, "\""),
        })
        .collect()
}

/// The text from after `start` to before `end` in `text` (HTML entities decoded), or empty.
fn between(text: &str, start: &str, end: &str) -> String {
    text.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inner, _)| unescape(inner))
        .unwrap_or_default()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The rendered page for a failure message: the body from Swagger UI's own markup on (its
/// icon definitions left out), at most 8,000 characters.
fn page(dom: &str) -> String {
    let from = dom
        .find(r#"<div class="information-container"#)
        .unwrap_or(0);
    let shown: String = dom[from..].chars().take(8000).collect();
    format!("the page Chromium left:\n{shown}")
}

/// The operations a document gives: (method in capitals, path, summary).
fn operations(document: &Value) -> BTreeSet<(String, String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation.get("responses").is_some() {
                let summary = operation["summary"].as_str().unwrap_or("").to_owned();
                found.insert((method.to_uppercase(), path.clone(), summary));
            }
        }
    }
    found
}

fn seen(blocks: &[Block]) -> BTreeSet<(String, String, String)> {
    blocks
        .iter()
        .map(|b| (b.method.clone(), b.path.clone(), b.summary.clone()))
        .collect()
}

// The screenshot.

/// A decoded screenshot: its size and RGB pixels.
struct Picture {
    width: u32,
    height: u32,
    pixels: Vec<[u8; 3]>,
}

impl Picture {
    fn read(file: &Path) -> Picture {
        let bytes = std::fs::read(file)
            .unwrap_or_else(|error| panic!("no screenshot at {}: {error}", file.display()));
        let mut decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder
            .read_info()
            .unwrap_or_else(|error| panic!("{} is not a PNG: {error}", file.display()));
        let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
        let frame = reader.next_frame(&mut buffer).expect("the PNG's image");
        let samples = frame.color_type.samples();
        let pixels = buffer[..frame.buffer_size()]
            .chunks_exact(samples)
            .map(|p| match samples {
                1 | 2 => [p[0]; 3],
                _ => [p[0], p[1], p[2]],
            })
            .collect();
        Picture {
            width: frame.width,
            height: frame.height,
            pixels,
        }
    }

    fn colours(&self) -> usize {
        self.pixels.iter().collect::<BTreeSet<_>>().len()
    }

    /// How many pixels are `colour`, give or take a little (colour conversion, blending).
    fn count(&self, colour: [u8; 3]) -> usize {
        let near = |a: u8, b: u8| a.abs_diff(b) <= 4;
        self.pixels
            .iter()
            .filter(|p| (0..3).all(|i| near(p[i], colour[i])))
            .count()
    }

    /// The methods of `blocks` whose badges this picture does not show: fewer pixels of the
    /// method's badge colour than `BADGE_PIXELS` for each block of that method (and its
    /// count). With no blocks: the badge colours seen at all.
    fn badges_short(&self, blocks: &[Block]) -> Vec<(&'static str, usize)> {
        BADGES
            .iter()
            .map(|(method, colour)| (*method, self.count(*colour)))
            .filter(|(method, count)| {
                let wanted = blocks.iter().filter(|b| b.method == *method).count();
                if blocks.is_empty() {
                    *count > 0
                } else {
                    *count < wanted * BADGE_PIXELS
                }
            })
            .collect()
    }
}

/// Pixels one method badge shows at least: a badge is some 80 × 30 CSS pixels of its
/// colour (about 4,500 of them at this size, once its white text is taken out).
const BADGE_PIXELS: usize = 2000;

// The project.

/// A project `alice/pets` with a title, a tag description and endpoints of four methods
/// (one without an operation id, one without a summary), and `alice/empty` with none.
async fn projects() -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let body = json!({
        "description": "Pets for the browser test",
        "openapi": {
            "info": {"title": "Pet shop"},
            "tags": [{"name": "pets", "description": "Everything about pets"}]
        },
        "endpoints": [
            {"method": "GET", "path": "/pets", "summary": "List the pets", "tags": ["pets"],
             "operation_id": "listPets", "response": {"json": [{"id": 1, "name": "Rex"}]}},
            {"method": "POST", "path": "/pets", "summary": "Add a pet", "tags": ["pets"],
             "operation_id": "addPet",
             "response": {"status": 201, "json": {"id": 2, "name": "Tom"}}},
            {"method": "GET", "path": "/pets/{id}", "summary": "One pet", "tags": ["pets"],
             "operation_id": "getPet", "response": {"json": {"id": 1, "name": "Rex"}}},
            {"method": "DELETE", "path": "/pets/{id}", "summary": "Remove a pet",
             "tags": ["pets"], "operation_id": "deletePet", "response": {"status": 204}},
            {"method": "PUT", "path": "/orders/{order}", "summary": "Replace an order",
             "tags": ["store"], "response": {"json": {"order": 7, "status": "placed"}}},
            {"method": "GET", "path": "/health", "response": {"json": {"ok": true}}}
        ]
    });
    app.create_project_from(&alice, "pets", body).await;
    app.project(&alice, "empty").await;
    (app, alice)
}

fn triple(method: &str, path: &str, summary: &str) -> (String, String, String) {
    (method.to_owned(), path.to_owned(), summary.to_owned())
}

#[tokio::test]
async fn swagger_ui_renders_a_projects_operations() {
    let Some(browser) = browser() else { return };
    let (app, _alice) = projects().await;
    let document = json_body(app.get("/alice/pets/openapi.json").await).await;
    let url = app.url("/alice/pets/docs");

    // Swagger UI's script ran and fetched the document: the page as served has no
    // operation block, the page the browser leaves has one per endpoint.
    let (status, served) = app.fetch("/alice/pets/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!served.contains("opblock"), "{served}");
    let dom = rendered(browser, &url, |dom| blocks(dom).len() >= 6).await;
    let found = blocks(&dom);
    assert_eq!(
        found.len(),
        6,
        "operation blocks: {found:#?}\n{}",
        page(&dom)
    );
    let expected = BTreeSet::from([
        triple("GET", "/pets", "List the pets"),
        triple("POST", "/pets", "Add a pet"),
        triple("GET", "/pets/{id}", "One pet"),
        triple("DELETE", "/pets/{id}", "Remove a pet"),
        triple("PUT", "/orders/{order}", "Replace an order"),
        triple("GET", "/health", ""),
    ]);
    assert_eq!(seen(&found), expected, "{found:#?}");
    assert_eq!(seen(&found), operations(&document));

    // Each under its tag, by its operation id (made from the method and path without one);
    // an operation without tags under `default`.
    let ids: BTreeSet<&str> = found.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "operations-pets-listPets",
            "operations-pets-addPet",
            "operations-pets-getPet",
            "operations-pets-deletePet",
            "operations-store-put_orders_order",
            "operations-default-get_health",
        ]),
        "{found:#?}"
    );
    for block in &found {
        let class = format!(
            r#"<div class="opblock opblock-{}" id="{}""#,
            block.method.to_lowercase(),
            block.id
        );
        assert!(dom.contains(&class), "{class} in {}", page(&dom));
    }

    // The project's title (its `openapi.info`), description, and the tag's description.
    assert_eq!(
        between(&dom, r#"<h1 class="title">"#, "<"),
        "Pet shop",
        "the title: {}",
        page(&dom)
    );
    assert!(dom.contains("Pets for the browser test"), "{}", page(&dom));
    assert!(dom.contains("Everything about pets"), "{}", page(&dom));
    assert!(
        dom.contains(r#"<option value="/alice/pets">/alice/pets</option>"#),
        "the project as the server: {}",
        page(&dom)
    );

    // The screenshot, kept where a person can look at it: target/tmp/swagger-ui-screenshot.png
    // (CARGO_TARGET_TMPDIR, under CARGO_TARGET_DIR when that is set).
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("swagger-ui-screenshot.png");
    let picture = screenshot(browser, &url, &kept, |p| p.badges_short(&found).is_empty()).await;
    eprintln!("screenshot: {}", kept.display());
    assert_eq!((picture.width, picture.height), (WIDTH, HEIGHT));
    let colours = picture.colours();
    assert!(
        colours >= 200,
        "{}: {colours} colours, not a rendered page",
        kept.display()
    );
    assert_eq!(
        picture.badges_short(&found),
        [],
        "{}: method badges missing (the pixels of their colour)",
        kept.display()
    );

    // The page of a project without endpoints says so, and shows no badge at all.
    let empty_url = app.url("/alice/empty/docs");
    let empty_dom = rendered(browser, &empty_url, |dom| {
        dom.contains("No operations defined in spec!")
    })
    .await;
    assert!(
        empty_dom.contains("No operations defined in spec!"),
        "{}",
        page(&empty_dom)
    );
    assert_eq!(blocks(&empty_dom), []);
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = screenshot(browser, &empty_url, &dir.path().join("empty.png"), |_| true).await;
    assert_eq!((empty.width, empty.height), (WIDTH, HEIGHT));
    assert!(empty.colours() >= 50, "{} colours", empty.colours());
    assert_eq!(
        empty.badges_short(&[]),
        [],
        "a badge's colour on the empty project's page"
    );
    let differing = picture
        .pixels
        .iter()
        .zip(&empty.pixels)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > picture.pixels.len() / 20,
        "only {differing} pixels differ from the empty project's page"
    );
}

#[tokio::test]
async fn swagger_ui_renders_the_platforms_operations() {
    let Some(browser) = browser() else { return };
    let app = spawn_app().await;
    let document = json_body(app.get("/openapi.json").await).await;
    let expected = operations(&document);
    assert!(
        expected.contains(&triple(
            "POST",
            "/admin/projects",
            "Create a project, with its first endpoints and backends if given."
        )),
        "{expected:#?}"
    );
    let url = app.url("/docs");
    let dom = rendered(browser, &url, |dom| blocks(dom).len() >= expected.len()).await;
    let found = blocks(&dom);
    assert_eq!(seen(&found), expected, "{}", page(&dom));
    assert_eq!(
        between(&dom, r#"<h1 class="title">"#, "<"),
        document["info"]["title"].as_str().expect("title")
    );
    for path in ["/admin/projects", "/auth/login", "/health", "/openapi.json"] {
        assert!(found.iter().any(|b| b.path == path), "{path} in {found:#?}");
    }
}
