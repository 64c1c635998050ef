//! Script handlers: a project's JavaScript module, run sandboxed in an embedded QuickJS.
//!
//! A user uploads one ES module (named `app.js`) that defines routes the way Express does
//! (`app.get("/items/{id}", (req) => ({ id: req.params.id }))`). [`Script::compile`] turns
//! it into a [`Script`]: its routes, and a thread that answers [`Script::call`]s. This module
//! knows nothing of the store, the route table or HTTP serving: the caller hands it a
//! [`Kv`] for the project's state, matches requests to [`Route`]s itself, and turns a
//! [`Response`] or a [`CallError`] into an answer.
//!
//! **Threads.** QuickJS values are not `Send`, so each `Script` owns one OS thread
//! (`script-{project}`) holding one QuickJS runtime and context, created on that thread and
//! never leaving it. The module is compiled and evaluated there, and its handler functions
//! stay there. Requests reach the thread over a bounded channel of `Limits::queue` places,
//! filled with `try_send` (a full queue is [`CallError::Busy`] at once, never a wait), and
//! answers come back on a oneshot channel, so no async worker ever blocks on a script. When
//! the last `Arc<Script>` is dropped the channel closes: the thread answers what is already
//! queued, then ends and frees its runtime. One project's slow script therefore only delays
//! that project's own queue.
//!
//! **Sandbox.** The context has the standard ECMAScript built-ins only (no `std`/`os`
//! modules, no timers, no module loader: an `import` is a compile error naming it) plus four
//! globals: `app`, `kv`, `console` and `env` (the project's environment values, given to
//! [`Script::compile`]: a frozen object of strings, fixed for the script's life; other values
//! need a new compile). Nothing reaches files, the network, processes or the process's
//! environment. Limits, per script:
//! - memory: QuickJS's allocator refuses to go past `Limits::memory_bytes`
//!   ([`CallError::OutOfMemory`]);
//! - CPU time: an interrupt handler, polled by the interpreter every few thousand
//!   operations, stops a handler (and the promise jobs it started) once `Limits::cpu_time`
//!   has passed since the call began ([`CallError::Timeout`]); the error is uncatchable;
//! - stack: the thread has an 8 MiB stack and QuickJS stops at 4 MiB, so runaway recursion
//!   is a `RangeError`, never a crash.
//!
//! After a timeout, an out-of-memory error or a stack overflow the thread collects garbage and
//! checks the context still works; if it does not, or if the script's live data still fills
//! most of its memory, the module is evaluated again in a fresh runtime (its top-level code
//! runs again and its in-memory state starts over; `kv` is untouched). The next request is
//! served either way. Promise jobs a handler leaves behind run after its answer is sent, under
//! a fresh CPU-time budget; if they do not finish within it the runtime is rebuilt too.
//!
//! **Conversions.** `req` is built in Rust from [`Request`]: `params`, `query` (form-decoded,
//! a repeated key becomes an array), `headers` (repeated ones joined with `", "`), `body`
//! (parsed JSON for a JSON content type, else UTF-8 text, else `null`). A handler's result
//! (awaited if it is a promise) becomes a [`Response`]: `undefined` is 204, a response object
//! (`{status, headers, json | body}`, no other keys) is taken as such, anything else is sent
//! as JSON with status 200. `kv` stores JSON text through [`Kv`]; `console` writes to
//! `tracing` with the project and the request id.

mod engine;
mod globals;
mod kv;
mod values;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub use crate::model::Env;
pub use kv::{Kv, KvError, MemoryKv};

/// The OS stack of a script's thread. QuickJS's own limit (`engine::JS_STACK_BYTES`) stays
/// well below it, so that Rust and C frames above the last checked JavaScript frame fit.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// What one script may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most memory the script's QuickJS runtime may allocate (0: no limit).
    pub memory_bytes: usize,
    /// The longest one request's handler (with the promise jobs it starts) may run; the
    /// module's top-level code gets the same budget when it loads. Measured as time elapsed
    /// on the script's own thread, which runs nothing else: a runaway script never holds
    /// the thread past it.
    pub cpu_time: Duration,
    /// How many requests may wait for the script's thread (at least 1); more are `Busy`.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * 1024 * 1024,
            cpu_time: Duration::from_secs(1),
            queue: 256,
        }
    }
}

/// One route a script defined with `app.get(path, …)` and the like.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// `None` for `app.all`: every method.
    pub method: Option<http::Method>,
    /// As the script wrote it (Switchyard template syntax, e.g. `/items/{id}`).
    pub path: String,
    /// What its options say of it (`summary`, `description`, `tags` and the OpenAPI
    /// operation fields an endpoint takes), if they say anything.
    pub docs: Option<Box<crate::model::Docs>>,
}

impl Route {
    pub fn summary(&self) -> Option<&str> {
        self.docs.as_deref().and_then(|d| d.summary.as_deref())
    }

    pub fn description(&self) -> Option<&str> {
        self.docs.as_deref().and_then(|d| d.description.as_deref())
    }
}

/// A request as a script handler sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path inside the project.
    pub path: String,
    /// The route's path parameters, by name.
    pub params: Vec<(String, String)>,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The request id (`req.id`, and the `request_id` of `console` logs).
    pub id: String,
    /// The caller the project's policy verified (`req.auth`); `None` without one.
    pub auth: Option<crate::auth::Identity>,
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; always includes `content-type` unless there is no body.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Why a script did not compile. `line` and `column` are in `app.js`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", located(.message, *.line, *.column))]
pub struct CompileError {
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl CompileError {
    fn message(message: impl Into<String>) -> Self {
        CompileError {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Why a call gave no [`Response`]. The messages are meant for the API's user.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The script's queue is full (answer 503).
    #[error("the script is busy: its request queue is full, try again shortly")]
    Busy,
    /// The handler ran past the CPU-time limit (answer 504).
    #[error("the handler ran longer than its CPU-time limit of {} ms", .limit.as_millis())]
    Timeout { limit: Duration },
    /// The script hit its memory limit (answer 500).
    #[error("the script ran out of its {} memory limit", human_bytes(*.limit))]
    OutOfMemory { limit: usize },
    /// The handler threw, or its promise rejected (answer 500).
    #[error("{}", exception_text(.message, *.line, *.column))]
    Exception {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
        stack: Option<String>,
    },
    /// The request cannot be given to the handler, e.g. a JSON body that is not JSON (400).
    #[error("{0}")]
    BadRequest(String),
    /// The handler's result cannot be an HTTP answer (answer 500).
    #[error("{0}")]
    BadResponse(String),
    /// The script's thread is gone (answer 503).
    #[error("the script is not running (it was replaced or has stopped)")]
    Stopped,
}

/// `message` with its place in `app.js`, for compile errors: "line 3, column 7: …".
fn located(message: &str, line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: {message}"),
        (Some(line), None) => format!("line {line}: {message}"),
        _ => message.to_owned(),
    }
}

/// An exception's message followed by where it was thrown: "… (app.js line 3, column 7)".
fn exception_text(message: &str, line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{message} (app.js line {line}, column {column})"),
        (Some(line), None) => format!("{message} (app.js line {line})"),
        _ => message.to_owned(),
    }
}

/// "64 MiB", "512 KiB", "1000 bytes".
fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A request on its way to the script's thread.
struct Job {
    route: usize,
    request: Request,
    reply: oneshot::Sender<Result<Response, CallError>>,
}

/// A compiled script: its routes, and the thread that runs their handlers.
pub struct Script {
    project: String,
    routes: Vec<Route>,
    limits: Limits,
    /// The environment values its `env` holds.
    env: Env,
    jobs: SyncSender<Job>,
    /// Alive while the script's thread runs (tests check that dropping the script ends it).
    #[cfg(test)]
    thread_alive: std::sync::Weak<()>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("project", &self.project)
            .field("routes", &self.routes)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Script {
    /// Compiles `source` (an ES module named "app.js") for `project` (used in logs) on the
    /// script's own new thread, evaluates it with `app`, `kv`, `console` and `env` (these
    /// values) available, and collects its routes.
    pub async fn compile(
        project: &str,
        source: &str,
        limits: Limits,
        kv: Arc<dyn Kv>,
        env: Env,
    ) -> Result<Arc<Script>, CompileError> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(limits.queue.max(1));
        let (compiled_tx, compiled_rx) = oneshot::channel();
        let alive = Arc::new(());
        #[cfg(test)]
        let thread_alive = Arc::downgrade(&alive);

        let thread_project = project.to_owned();
        let thread_source = source.to_owned();
        let thread_limits = limits.clone();
        let thread_env = env.clone();
        std::thread::Builder::new()
            .name(format!("script-{}", project.replace('\0', "")))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let _alive = alive;
                engine::run_thread(
                    thread_project,
                    thread_source,
                    thread_limits,
                    kv,
                    thread_env,
                    compiled_tx,
                    queue,
                );
            })
            .map_err(|error| {
                CompileError::message(format!("could not start the script's thread: {error}"))
            })?;

        let routes = compiled_rx.await.map_err(|_| {
            CompileError::message("the script engine stopped while compiling the script")
        })??;
        Ok(Arc::new(Script {
            project: project.to_owned(),
            routes,
            limits,
            env,
            jobs,
            #[cfg(test)]
            thread_alive,
        }))
    }

    /// The routes the script defined, in the order it defined them.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The environment values the script's `env` holds (it was compiled with them).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Runs the handler of route `route` (an index into routes()) for `request`; queued to
    /// the script's thread with try_send: a full queue is CallError::Busy at once.
    pub fn call(
        &self,
        route: usize,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Response, CallError>> + Send + 'static {
        let queued = if route >= self.routes.len() {
            Err(CallError::BadResponse(format!(
                "the script has no route number {route} (it has {})",
                self.routes.len()
            )))
        } else {
            let (reply, answer) = oneshot::channel();
            match self.jobs.try_send(Job {
                route,
                request,
                reply,
            }) {
                Ok(()) => Ok(answer),
                Err(TrySendError::Full(_)) => Err(CallError::Busy),
                Err(TrySendError::Disconnected(_)) => Err(CallError::Stopped),
            }
        };
        async move {
            match queued {
                Ok(answer) => answer.await.unwrap_or(Err(CallError::Stopped)),
                Err(error) => Err(error),
            }
        }
    }
}
