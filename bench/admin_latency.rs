//! Benchmark client for the admin API, used by `bench/run.sh`.
//!
//! Subcommands:
//!
//! - `setup`: register the user (409 is fine), log in, and `PUT` the project with one
//!   endpoint, `GET /hello` → `{"message":"hello"}`.
//! - `add`: add endpoints one at a time (`POST …/endpoints`, `GET /e{i}`), and for each time
//!   from sending the POST until the new URL first answers 200 ("add until served"), and the
//!   POST alone. One keep-alive connection, requests strictly one after another.
//! - `bulk`: replace the project with N endpoints (`/hello` plus `/e0`…) in ONE `PUT`.
//! - `coldstart`: start the server N times on a database, time exec → first 200 from
//!   `/health`, read `startup_ms` from its "listening" log line and VmRSS once idle.
//!
//! Results go to stdout as `key=value` lines (times in milliseconds) so that a shell script
//! can pick them up; everything else goes to stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Setup(Account),
    Add(AddArgs),
    Bulk(BulkArgs),
    Coldstart(ColdArgs),
}

#[derive(Args, Clone)]
struct Account {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long, default_value = "alice")]
    user: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value = "demo")]
    project: String,
}

#[derive(Args)]
struct AddArgs {
    #[command(flatten)]
    account: Account,
    /// How many endpoints to add.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Index of the first one (`/e{start}`).
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Give up on one endpoint if it is not served after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Also write every sample (`index total_ms post_ms`) to this file.
    #[arg(long)]
    samples: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct BulkArgs {
    #[command(flatten)]
    account: Account,
    /// Endpoints in the project after the PUT: `/hello` and `/e0` … `/e{count-2}`.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
}

#[derive(Args)]
struct ColdArgs {
    /// The switchyard binary.
    #[arg(long)]
    bin: String,
    /// `--db` for the server.
    #[arg(long)]
    db: String,
    #[arg(long)]
    port: u16,
    /// Repetitions.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Core to pin the server to (through `taskset -c`).
    #[arg(long, default_value = "0")]
    cpu: String,
    /// How long to let the server sit idle before reading its RSS.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Prefix of the result keys.
    #[arg(long, default_value = "cold")]
    key: String,
}

fn hello_response() -> Value {
    json!({"json": {"message": "hello"}})
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(key: &str, values: &[f64]) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    println!("{key}_n={}", sorted.len());
    println!("{key}_p50_ms={:.3}", pct(&sorted, 50.0));
    println!("{key}_p90_ms={:.3}", pct(&sorted, 90.0));
    println!("{key}_p99_ms={:.3}", pct(&sorted, 99.0));
    println!(
        "{key}_max_ms={:.3}",
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!("{key}_mean_ms={mean:.3}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
    owner: String,
    project: String,
}

impl Session {
    fn admin_url(&self, tail: &str) -> String {
        format!(
            "{}/admin/projects/{}/{}{tail}",
            self.base, self.owner, self.project
        )
    }
}

async fn login(account: &Account, register: bool) -> anyhow::Result<Session> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()?;
    let base = account.base.trim_end_matches('/').to_string();
    if register {
        let answer = http
            .post(format!("{base}/auth/register"))
            .json(&json!({"username": account.user, "password": account.password}))
            .send()
            .await
            .context("POST /auth/register")?;
        let status = answer.status();
        if status != 201 && status != 409 {
            bail!("register: {status}: {}", answer.text().await?);
        }
    }
    let answer = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": account.user, "password": account.password}))
        .send()
        .await
        .context("POST /auth/login")?;
    let status = answer.status();
    let body: Value = answer.json().await?;
    let token = body["access_token"]
        .as_str()
        .with_context(|| format!("login: {status}: {body}"))?
        .to_string();
    Ok(Session {
        http,
        base,
        token,
        owner: account.user.clone(),
        project: account.project.clone(),
    })
}

async fn get_status(session: &Session, url: &str) -> anyhow::Result<u16> {
    let answer = session.http.get(url).send().await?;
    let status = answer.status().as_u16();
    answer.bytes().await?;
    Ok(status)
}

async fn setup(account: Account) -> anyhow::Result<()> {
    let session = login(&account, true).await?;
    let definition = json!({"endpoints": [
        {"id": "hello", "method": "GET", "path": "/hello", "response": hello_response()}
    ]});
    let answer = session
        .http
        .put(session.admin_url(""))
        .bearer_auth(&session.token)
        .json(&definition)
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    if !status.is_success() {
        bail!("PUT project: {status}: {text}");
    }
    let url = format!(
        "{}/{}/{}/hello",
        session.base, session.owner, session.project
    );
    let served = get_status(&session, &url).await?;
    if served != 200 {
        bail!("{url} answers {served} after setup");
    }
    eprintln!("setup: {url} answers 200");
    println!("setup_ok=1");
    Ok(())
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    let session = login(&args.account, false).await?;
    let post_url = session.admin_url("/endpoints");
    let mut total = Vec::with_capacity(args.count);
    let mut post = Vec::with_capacity(args.count);
    let mut extra_polls = 0u64;
    let mut not_first_try = 0u64;
    let started = Instant::now();
    for i in args.start..args.start + args.count {
        let spec = json!({"method": "GET", "path": format!("/e{i}"), "response": hello_response()});
        let body = serde_json::to_vec(&spec)?;
        let t0 = Instant::now();
        let answer = session
            .http
            .post(&post_url)
            .bearer_auth(&session.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = answer.status();
        let bytes = answer.bytes().await?;
        let t_post = t0.elapsed();
        if status != 201 {
            bail!("POST /e{i}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let created: Value = serde_json::from_slice(&bytes)?;
        let path = created["url"]
            .as_str()
            .with_context(|| format!("POST /e{i} answer has no url: {created}"))?;
        let url = format!("{}{path}", session.base);
        let mut polls = 0u64;
        loop {
            let status = get_status(&session, &url).await?;
            polls += 1;
            if status == 200 {
                break;
            }
            if t0.elapsed() > args.timeout {
                bail!(
                    "{url} still answers {status} {:?} after the POST",
                    args.timeout
                );
            }
        }
        let t_total = t0.elapsed();
        if polls > 1 {
            not_first_try += 1;
            extra_polls += polls - 1;
        }
        post.push(ms(t_post));
        total.push(ms(t_total));
        let done = i + 1 - args.start;
        if done.is_multiple_of(1000) {
            let mut chunk = total[done - 1000..].to_vec();
            chunk.sort_by(f64::total_cmp);
            eprintln!(
                "add: {done:>6} endpoints added; last 1000: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                pct(&chunk, 50.0),
                pct(&chunk, 99.0),
                chunk[chunk.len() - 1]
            );
            println!(
                "add_chunk_{done}_p50_ms={:.3}\nadd_chunk_{done}_p99_ms={:.3}",
                pct(&chunk, 50.0),
                pct(&chunk, 99.0)
            );
        }
    }
    eprintln!(
        "add: {} endpoints in {:.1} s",
        args.count,
        started.elapsed().as_secs_f64()
    );
    if let Some(file) = &args.samples {
        let mut text = String::from("index total_ms post_ms\n");
        for (k, (t, p)) in total.iter().zip(&post).enumerate() {
            text.push_str(&format!("{} {t:.3} {p:.3}\n", args.start + k));
        }
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    report("add_total", &total);
    report("add_post", &post);
    // The last thousand (or fewer): the adds made with (nearly) all endpoints present.
    let tail = total.len().saturating_sub(1000);
    report("add_total_tail", &total[tail..]);
    report("add_post_tail", &post[tail..]);
    println!("add_tail_from={}", args.start + tail);
    println!("add_not_served_on_first_get={not_first_try}");
    println!("add_extra_gets={extra_polls}");
    println!(
        "add_first_path=/{}/{}/e{}",
        session.owner, session.project, args.start
    );
    println!(
        "add_last_path=/{}/{}/e{}",
        session.owner,
        session.project,
        args.start + args.count - 1
    );
    Ok(())
}

async fn bulk(args: BulkArgs) -> anyhow::Result<()> {
    let session = login(&args.account, false).await?;
    let count = args.count.max(1);
    let mut endpoints = Vec::with_capacity(count);
    endpoints.push(
        json!({"id": "hello", "method": "GET", "path": "/hello", "response": hello_response()}),
    );
    for i in 0..count - 1 {
        endpoints
            .push(json!({"method": "GET", "path": format!("/e{i}"), "response": hello_response()}));
    }
    let body = serde_json::to_vec(&json!({ "endpoints": endpoints }))?;
    eprintln!(
        "bulk: PUT of {count} endpoints, {:.1} MiB",
        body.len() as f64 / 1048576.0
    );
    let t0 = Instant::now();
    let answer = session
        .http
        .put(session.admin_url(""))
        .bearer_auth(&session.token)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await?;
    let status = answer.status();
    let bytes = answer.bytes().await?;
    let took = t0.elapsed();
    if !status.is_success() {
        bail!(
            "PUT project: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        );
    }
    let answer: Value = serde_json::from_slice(&bytes)?;
    let served = answer["endpoints_count"].as_u64().unwrap_or(0);
    if served != count as u64 {
        bail!("after the PUT the project has {served} endpoints, not {count}");
    }
    let prefix = format!("/{}/{}", session.owner, session.project);
    let first = format!("{prefix}/e0");
    let last = format!("{prefix}/e{}", count.saturating_sub(2));
    for path in [&first, &last, &format!("{prefix}/hello")] {
        let status = get_status(&session, &format!("{}{path}", session.base)).await?;
        if status != 200 {
            bail!("{path} answers {status} after the PUT");
        }
    }
    eprintln!("bulk: PUT answered {status} in {:.0} ms", ms(took));
    println!("bulk_put_ms={:.1}", ms(took));
    println!("bulk_endpoints={count}");
    println!("bulk_first_path={first}");
    println!("bulk_last_path={last}");
    Ok(())
}

/// One `GET /health` over a fresh connection; true on a 200.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn coldstart(args: ColdArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    if health_ok(addr) {
        bail!("something already answers on {addr}");
    }
    let mut start_ms = Vec::new();
    let mut logged_ms = Vec::new();
    let mut rss_mb = Vec::new();
    for rep in 0..args.reps {
        let t0 = Instant::now();
        let mut child = Command::new("taskset")
            .args(["-c", &args.cpu, &args.bin, "serve", "--db", &args.db])
            .args([
                "--port",
                &args.port.to_string(),
                "--workers",
                "1",
                "--log",
                "info",
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the server")?;
        let pid = child.id();
        let mut served = false;
        while t0.elapsed() < Duration::from_secs(30) {
            if health_ok(addr) {
                served = true;
                break;
            }
            if let Some(exit) = child.try_wait()? {
                bail!("the server exited with {exit} before answering /health");
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        let took = t0.elapsed();
        if !served {
            let _ = child.kill();
            bail!("/health did not answer within 30 s");
        }
        // The "listening" line carries the server's own startup_ms.
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if !sent && line.contains("listening") && line.contains("startup_ms=") {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        let logged = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("startup_ms="))
            .and_then(|v| v.parse::<f64>().ok());
        let endpoints = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("endpoints="))
            .unwrap_or("?")
            .to_string();
        std::thread::sleep(args.settle);
        let rss = vm_rss_kib(pid)? as f64 * 1024.0 / 1e6;
        eprintln!(
            "coldstart {rep}: /health after {:.1} ms (server logs startup_ms={}, endpoints={endpoints}), idle VmRSS {rss:.1} MB",
            ms(took),
            logged.map(|l| format!("{l:.1}")).unwrap_or("?".into()),
        );
        start_ms.push(ms(took));
        if let Some(l) = logged {
            logged_ms.push(l);
        }
        rss_mb.push(rss);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let stop = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if stop.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            f64::NAN
        } else {
            s[(s.len() - 1) / 2]
        }
    };
    let key = &args.key;
    println!("{key}_health_median_ms={:.1}", median(&start_ms));
    println!(
        "{key}_health_all_ms={}",
        start_ms
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("{key}_logged_median_ms={:.1}", median(&logged_ms));
    println!("{key}_rss_median_mb={:.1}", median(&rss_mb));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Coldstart(args) = cli.command {
        return coldstart(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Cmd::Setup(account) => setup(account).await,
            Cmd::Add(args) => add(args).await,
            Cmd::Bulk(args) => bulk(args).await,
            Cmd::Coldstart(_) => unreachable!(),
        }
    })
}
