//! The HTTP server inside the Docker test containers (`tests/api/docker.rs` builds it into
//! the image `switchyard-test-echo`). Standard library only, compiled on its own with
//! `rustc -O -C target-feature=+crt-static`, so it runs in a `FROM scratch` image.
//!
//! It listens on `0.0.0.0:$PORT` (8080 unless set) and answers every request with 200
//! `application/json` `{"container": "$NAME", "path": "<request target>"}`, one thread per
//! connection. Connections are kept alive: requests are read in a loop until the client
//! closes (or asks to with `Connection: close`, or speaks HTTP/1.0), since the proxy pools
//! its connections. A request body (by `content-length`, or chunked) is read and dropped
//! before the answer. Bad input closes the connection, never the server. SIGTERM exits at
//! once, so `docker stop` does not wait for its timeout.
//!
//! `echo probe` is a health check: it exits 0 when it can connect to `127.0.0.1:$PORT` and
//! the file `/unhealthy` is absent or empty (a test makes the container unhealthy by copying
//! a non-empty `/unhealthy` into it, and healthy again with an empty one). The image also
//! holds this binary as `/bin/sh`, so that `docker run --health-cmd probe` (which runs
//! `/bin/sh -c probe`) works in an image without a shell.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The most a request head may take; past it, the connection is closed.
const HEAD_LIMIT: u64 = 64 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE: Duration = Duration::from_mins(5);

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(status: i32) -> !;
}

extern "C" fn exit_now(_: i32) {
    // SAFETY: `_exit` is async-signal-safe.
    unsafe { _exit(0) }
}

fn main() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // SAFETY: the handler only calls `_exit`.
    unsafe {
        signal(SIGINT, exit_now);
        signal(SIGTERM, exit_now);
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .unwrap_or_else(|_| fail("PORT is not a port number")),
        Err(_) => 8080,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.as_slice() {
        [] => None,
        [command] => Some(command.as_str()),
        [shell_c, command] if shell_c == "-c" => Some(command.as_str()),
        _ => fail(&format!("unknown arguments {args:?}")),
    };
    match command.map(str::trim) {
        None => {}
        Some("probe") => std::process::exit(i32::from(!healthy(port))),
        Some(other) => fail(&format!("unknown command {other:?}")),
    }
    let name = std::env::var("NAME").unwrap_or_default();
    let listener = TcpListener::bind(("0.0.0.0", port))
        .unwrap_or_else(|e| fail(&format!("cannot listen on 0.0.0.0:{port}: {e}")));
    println!("echo {name:?} listening on 0.0.0.0:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let name = name.clone();
        // A thread that cannot be started drops its connection; the server goes on.
        let _ = std::thread::Builder::new().spawn(move || serve(stream, &name));
    }
}

/// Whether the server answers on `port` and no non-empty `/unhealthy` says otherwise.
fn healthy(port: u16) -> bool {
    let marked = std::fs::metadata("/unhealthy").is_ok_and(|m| m.len() > 0);
    !marked && TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn fail(message: &str) -> ! {
    eprintln!("echo: {message}");
    std::process::exit(2)
}

/// Answers the requests of one connection until it closes or goes wrong.
fn serve(stream: TcpStream, name: &str) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_head(&mut reader) {
        let body = format!(
            "{{\"container\": \"{}\", \"path\": \"{}\"}}",
            escape(name),
            escape(&request.target)
        );
        let read = if request.chunked {
            skip_chunked(&mut reader)
        } else {
            skip(&mut reader, request.length)
        };
        let keep = request.keep_alive && read.is_some();
        if writer.write_all(answer(&body, keep).as_bytes()).is_err() || !keep {
            return;
        }
    }
}

fn answer(body: &str, keep_alive: bool) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: {}\r\n\r\n{body}",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )
}

/// What the server needs of a request head.
struct Head {
    target: String,
    length: u64,
    chunked: bool,
    keep_alive: bool,
}

/// Reads one request head; `None` at the end of the connection or on a malformed head.
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut limited = reader.take(HEAD_LIMIT);
    let mut line: Vec<u8> = Vec::new();
    // Empty lines before a request line are allowed (RFC 9112 §2.2).
    while line.iter().all(u8::is_ascii_whitespace) {
        line.clear();
        if limited.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
    }
    let request_line = String::from_utf8_lossy(&line).into_owned();
    let mut parts = request_line.split_whitespace();
    let (_method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut head = Head {
        target: target.to_owned(),
        length: 0,
        chunked: false,
        keep_alive: version == "HTTP/1.1",
    };
    loop {
        line.clear();
        if limited.read_until(b'\n', &mut line).ok()? == 0 || !line.ends_with(b"\n") {
            return None;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Some(head);
        }
        let (field, value) = text.split_once(':')?;
        let value = value.trim().to_ascii_lowercase();
        match field.trim().to_ascii_lowercase().as_str() {
            "content-length" => head.length = value.parse().ok()?,
            "transfer-encoding" => head.chunked = value.contains("chunked"),
            "connection" if value.contains("close") => head.keep_alive = false,
            "connection" if value.contains("keep-alive") => head.keep_alive = true,
            _ => {}
        }
    }
}

/// Reads and drops `length` bytes of body; `None` when the connection ends first.
fn skip(reader: &mut BufReader<TcpStream>, length: u64) -> Option<()> {
    let copied = std::io::copy(&mut reader.take(length), &mut std::io::sink()).ok()?;
    (copied == length).then_some(())
}

/// Reads and drops a chunked body; `None` when it is malformed or the connection ends first.
fn skip_chunked(reader: &mut BufReader<TcpStream>) -> Option<()> {
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next()?.trim();
        let size = u64::from_str_radix(size, 16).ok()?;
        if size == 0 {
            // Trailer fields, up to an empty line.
            while !read_line(reader)?.is_empty() {}
            return Some(());
        }
        skip(reader, size)?;
        if !read_line(reader)?.is_empty() {
            return None;
        }
    }
}

/// One line, without its line end; `None` past [`HEAD_LIMIT`] or at the end.
fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    let read = reader.take(HEAD_LIMIT).read_until(b'\n', &mut line).ok()?;
    if read == 0 || !line.ends_with(b"\n") {
        return None;
    }
    let text = String::from_utf8_lossy(&line);
    Some(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// `text` as the inside of a JSON string.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
