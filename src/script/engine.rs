//! The script thread: one QuickJS runtime and context, the module evaluated in it, and the
//! loop that runs handlers for the requests queued to it.
//!
//! Everything here runs on the script's own thread; nothing in this file is `Send` except
//! what crosses the channels (requests, answers, the compile result). This file decides
//! what a failure means (timeout, out of memory, exception…) and when the runtime must be
//! rebuilt; `values` does the conversions and `globals` the script's `app`, `kv`, `console`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use rquickjs::allocator::{Allocator, RustAllocator};
use rquickjs::context::intrinsic::{
    Date, Eval, Json, MapSet, Promise as PromiseIntrinsic, Proxy, RegExp, RegExpCompiler,
    TypedArrays, WeakRef,
};
use rquickjs::{Context, Ctx, Function, Module, Persistent, Runtime, Value};
use tokio::sync::oneshot;

use super::Env;
use super::globals::{self, Host};
use super::kv::Kv;
use super::values::{self, Failure, MODULE_NAME, Stage, Thrown};
use super::{CallError, CompileError, Job, Limits, Request, Response, Route};

/// QuickJS's own stack limit: deeper recursion is a `RangeError`. Half the thread's stack
/// (`THREAD_STACK_BYTES`), leaving room for the Rust and C frames QuickJS does not check.
pub(super) const JS_STACK_BYTES: usize = 4 * 1024 * 1024;

/// The standard ECMAScript built-ins (the base objects are always there); no web or host
/// APIs such as `performance`.
type Intrinsics = (
    Date,
    Eval,
    RegExpCompiler,
    RegExp,
    Json,
    Proxy,
    MapSet,
    TypedArrays,
    PromiseIntrinsic,
    WeakRef,
);

/// The CPU-time budget of what runs now, shared with the interrupt handler (which QuickJS
/// calls every few thousand operations, on this same thread; the handler type must be
/// `Send`, hence atomics).
struct Clock {
    base: Instant,
    /// Nanoseconds since `base` after which code is interrupted; 0 when nothing is timed.
    deadline: AtomicU64,
    /// Whether the handler interrupted something since the last `start`.
    fired: AtomicBool,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            fired: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn start(&self, budget: std::time::Duration) {
        self.fired.store(false, Ordering::Relaxed);
        let budget = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        let deadline = self.now().saturating_add(budget).max(1);
        self.deadline.store(deadline, Ordering::Relaxed);
    }

    fn stop(&self) {
        self.deadline.store(0, Ordering::Relaxed);
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    /// The interrupt handler: true (interrupt) once the deadline has passed.
    fn interrupt(&self) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline != 0 && self.now() >= deadline {
            self.fired.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// What a script's runtime holds, as its allocator sees it, and the most it held since the
/// last [`Meter::reset`]. QuickJS enforces the memory limit itself; when it cannot even make
/// its "out of memory" error it throws `null`, and by the time that reaches Rust the data of
/// the handler that threw is freed: the peak still tells that it was memory.
#[derive(Debug, Default)]
struct Meter {
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl Meter {
    fn grew(&self, bytes: usize) {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(used, Ordering::Relaxed);
    }

    fn shrank(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Starts a new peak from what is held now.
    fn reset(&self) {
        self.peak
            .store(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Rust's allocator (as rquickjs's `RustAllocator`), counting into a [`Meter`]. It limits
/// nothing: the runtime's memory limit stays QuickJS's.
struct Metered(Arc<Meter>);

// SAFETY: every call is passed to `RustAllocator` as it came, and a pointer it returns is
// given back unchanged; the sizes counted are read with `RustAllocator::usable_size` from
// pointers it made.
unsafe impl Allocator for Metered {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            // SAFETY: made by RustAllocator just now.
            self.0.grew(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let ptr = RustAllocator.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: made by RustAllocator just now.
            self.0.grew(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller hands back a pointer this allocator (RustAllocator) made.
        unsafe {
            self.0.shrank(RustAllocator::usable_size(ptr));
            RustAllocator.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: the caller hands back a pointer this allocator (RustAllocator) made; on
        // failure it is left as it was.
        unsafe {
            let before = RustAllocator::usable_size(ptr);
            let moved = RustAllocator.realloc(ptr, new_size);
            if !moved.is_null() {
                self.0.shrank(before);
                self.0.grew(RustAllocator::usable_size(moved));
            }
            moved
        }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: as the trait requires, `ptr` was made by this allocator (RustAllocator).
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

/// A loaded module and the runtime it lives in.
pub(super) struct Engine {
    // Fields drop in order: the handlers before the context, the context before the runtime
    // (QuickJS aborts if a runtime is freed while values of it are still referenced).
    handlers: Vec<Persistent<Function<'static>>>,
    context: Context,
    runtime: Runtime,
    host: Rc<Host>,
    clock: Arc<Clock>,
    meter: Arc<Meter>,
    routes: Vec<Route>,
    source: String,
    limits: Limits,
}

/// The thread's body: compile, report, then serve until every sender is gone.
pub(super) fn run_thread(
    project: String,
    source: String,
    limits: Limits,
    kv: Arc<dyn Kv>,
    env: Env,
    compiled: oneshot::Sender<Result<Vec<Route>, CompileError>>,
    queue: Receiver<Job>,
) {
    let built = catch_unwind(AssertUnwindSafe(|| {
        Engine::build(&project, &source, &limits, kv.clone(), env)
    }));
    let mut engine = match built {
        Ok(Ok(engine)) => engine,
        Ok(Err(error)) => {
            let _ = compiled.send(Err(error));
            return;
        }
        Err(_) => {
            let _ = compiled.send(Err(CompileError::message(
                "the script engine failed unexpectedly while compiling the script",
            )));
            return;
        }
    };
    if compiled.send(Ok(engine.routes.clone())).is_err() {
        // Whoever compiled it is gone: nobody can call the script.
        return;
    }

    while let Ok(job) = queue.recv() {
        if job.reply.is_closed() {
            // The caller gave up waiting; do not spend the script's time on it.
            continue;
        }
        let answered = catch_unwind(AssertUnwindSafe(|| engine.call(job.route, &job.request)));
        let (result, trouble) = match answered {
            Ok(result) => {
                let trouble = match &result {
                    Err(CallError::Timeout { .. } | CallError::OutOfMemory { .. }) => {
                        Trouble::Limit
                    }
                    Err(CallError::Exception { message, .. })
                        if message == values::STACK_OVERFLOW =>
                    {
                        Trouble::Limit
                    }
                    _ => Trouble::None,
                };
                (result, trouble)
            }
            Err(_) => (
                Err(CallError::Exception {
                    message: "the script engine failed unexpectedly; the script was restarted"
                        .into(),
                    line: None,
                    column: None,
                    stack: None,
                }),
                Trouble::Panic,
            ),
        };
        let _ = job.reply.send(result);
        if trouble == Trouble::Panic {
            engine = engine.restart_after_panic();
            continue;
        }
        if catch_unwind(AssertUnwindSafe(|| engine.recover(trouble))).is_err() {
            engine = engine.restart_after_panic();
        }
    }
    tracing::debug!(target: "switchyard::script", project = %project, "script thread ends");
}

/// What the last call left the runtime in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    None,
    /// It hit a limit (time, memory, stack): check the context still works.
    Limit,
    /// Rust code panicked while the runtime was in use.
    Panic,
}

impl Engine {
    /// Creates a runtime, evaluates the module in it and collects its routes.
    pub(super) fn build(
        project: &str,
        source: &str,
        limits: &Limits,
        kv: Arc<dyn Kv>,
        env: Env,
    ) -> Result<Engine, CompileError> {
        if let Some(at) = source.find('\0') {
            let (line, column) = line_column(source, at);
            return Err(CompileError {
                line: Some(line),
                column: Some(column),
                message: "the script contains a NUL character".into(),
            });
        }
        let meter = Arc::new(Meter::default());
        let runtime = Runtime::new_with_alloc(Metered(meter.clone())).map_err(|error| {
            CompileError::message(format!("could not start the script engine: {error}"))
        })?;
        if limits.memory_bytes > 0 {
            runtime.set_memory_limit(limits.memory_bytes);
        }
        runtime.set_max_stack_size(JS_STACK_BYTES);
        let clock = Arc::new(Clock::new());
        let interrupt_clock = clock.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || interrupt_clock.interrupt())));
        let context = Context::custom::<Intrinsics>(&runtime).map_err(|error| {
            CompileError::message(format!(
                "could not create the script's context (is the memory limit of {} too small?): \
                 {error}",
                super::human_bytes(limits.memory_bytes)
            ))
        })?;
        let host = Rc::new(Host::new(project, kv, env));

        clock.start(limits.cpu_time);
        meter.reset();
        let loaded = context.with(|ctx| load(&ctx, &host, source, &clock));
        clock.stop();
        // Always take the registered handlers out of the host, so that none of them outlives
        // the runtime inside a Rust closure.
        let registry = host.registry.borrow_mut().take().unwrap_or_default();

        match loaded {
            Ok(()) => Ok(Engine {
                handlers: registry.handlers,
                context,
                runtime,
                host,
                clock,
                meter,
                routes: registry.routes,
                source: source.to_owned(),
                limits: limits.clone(),
            }),
            Err(failure) => {
                drop(registry.handlers);
                let error = if clock.fired() {
                    CompileError::message(format!(
                        "the module's top-level code ran longer than the CPU-time limit of {} ms",
                        limits.cpu_time.as_millis()
                    ))
                } else {
                    match failure {
                        Load::Thrown(thrown)
                            if thrown.is_out_of_memory()
                                || (thrown.unexplained
                                    && memory_exhausted(&runtime, &meter, limits.memory_bytes)) =>
                        {
                            CompileError::message(format!(
                                "the module ran out of its {} memory limit while loading",
                                super::human_bytes(limits.memory_bytes)
                            ))
                        }
                        Load::Thrown(thrown) => compile_error(thrown, source),
                        Load::NeverSettled => CompileError::message(
                            "the module's top-level await never finished (scripts have no \
                             timers or I/O to wait for)",
                        ),
                    }
                };
                drop(context);
                drop(runtime);
                Err(error)
            }
        }
    }

    /// Runs the handler of `route` for `request`.
    fn call(&mut self, route: usize, request: &Request) -> Result<Response, CallError> {
        let Some(handler) = self.handlers.get(route).cloned() else {
            return Err(CallError::BadResponse(format!(
                "the script has no route number {route}"
            )));
        };
        *self.host.request_id.borrow_mut() = Some(request.id.clone());
        self.clock.start(self.limits.cpu_time);
        self.meter.reset();
        let clock = &self.clock;
        let outcome = self.context.with(|ctx| {
            let handler = handler
                .restore(&ctx)
                .map_err(|error| Failure::Thrown(values::thrown(&ctx, error), Stage::Handler))?;
            let req = values::request_object(&ctx, request)?;
            let result: Value = handler
                .call((req,))
                .map_err(|error| Failure::Thrown(values::thrown(&ctx, error), Stage::Handler))?;
            let result = match result.as_promise() {
                Some(promise) => match values::settle(&ctx, promise, &|| clock.fired()) {
                    Ok(value) => value,
                    Err(Some(thrown)) => return Err(Failure::Thrown(thrown, Stage::Handler)),
                    Err(None) => return Err(Failure::NeverSettled),
                },
                None => result,
            };
            values::response_from(&ctx, result)
        });
        self.clock.stop();
        self.host.request_id.borrow_mut().take();
        outcome.map_err(|failure| self.classify(failure))
    }

    /// What a failed call tells its caller.
    fn classify(&self, failure: Failure) -> CallError {
        if self.clock.fired() {
            return CallError::Timeout {
                limit: self.limits.cpu_time,
            };
        }
        match failure {
            Failure::BadRequest(message) => CallError::BadRequest(message),
            Failure::BadResponse(message) => CallError::BadResponse(message),
            Failure::NeverSettled => CallError::BadResponse(
                "the handler's promise never settled: it waits for something that cannot \
                 happen in a script (there are no timers or I/O)"
                    .into(),
            ),
            Failure::Thrown(thrown, stage) => {
                if thrown.is_out_of_memory()
                    || (thrown.unexplained
                        && memory_exhausted(&self.runtime, &self.meter, self.limits.memory_bytes))
                {
                    return CallError::OutOfMemory {
                        limit: self.limits.memory_bytes,
                    };
                }
                match stage {
                    Stage::Response => CallError::BadResponse(format!(
                        "the handler's result cannot be sent: {}",
                        thrown.message
                    )),
                    Stage::Request | Stage::Handler => CallError::Exception {
                        message: thrown.message,
                        line: thrown.line,
                        column: thrown.column,
                        stack: thrown.stack,
                    },
                }
            }
        }
    }

    /// After an answer is sent: runs the promise jobs the handler left behind, and makes sure
    /// the runtime can serve the next request, rebuilding it if not.
    fn recover(&mut self, trouble: Trouble) {
        let mut rebuild = false;
        self.clock.start(self.limits.cpu_time);
        let clock = &self.clock;
        let drained = self.context.with(|ctx| {
            while ctx.execute_pending_job() {
                if clock.fired() {
                    return false;
                }
            }
            true
        });
        self.clock.stop();
        if !drained || self.clock.fired() {
            tracing::warn!(
                target: "switchyard::script",
                project = %self.host.project,
                "promise jobs left by a handler ran past the CPU-time limit; restarting the script"
            );
            rebuild = true;
        }
        if trouble == Trouble::Limit && !rebuild {
            self.runtime.run_gc();
            if !self.healthy() {
                tracing::warn!(
                    target: "switchyard::script",
                    project = %self.host.project,
                    "the script's context is unusable after hitting a limit; restarting the script"
                );
                rebuild = true;
            } else if self.limits.memory_bytes > 0
                && usage(&self.runtime) > self.limits.memory_bytes / 2
            {
                tracing::warn!(
                    target: "switchyard::script",
                    project = %self.host.project,
                    "the script's live data fills most of its memory limit; restarting the script"
                );
                rebuild = true;
            }
        }
        if rebuild {
            self.rebuild();
        }
    }

    /// Whether the context still evaluates code.
    fn healthy(&self) -> bool {
        self.clock.start(self.limits.cpu_time);
        let healthy = self.context.with(|ctx| match ctx.eval::<i32, _>("1 + 1") {
            Ok(sum) => sum == 2,
            Err(error) => {
                values::clear(&ctx, &error);
                false
            }
        });
        self.clock.stop();
        healthy && !self.clock.fired()
    }

    /// Evaluates the module again in a fresh runtime, and uses it if it defines the same
    /// routes (the old runtime is freed). Keeps the old runtime if that fails.
    fn rebuild(&mut self) {
        match Engine::build(
            &self.host.project,
            &self.source,
            &self.limits,
            self.host.kv.clone(),
            self.host.env.clone(),
        ) {
            Ok(engine) if engine.routes == self.routes => *self = engine,
            Ok(_) => tracing::error!(
                target: "switchyard::script",
                project = %self.host.project,
                "the script defined other routes when evaluated again; keeping its old runtime"
            ),
            Err(error) => tracing::error!(
                target: "switchyard::script",
                project = %self.host.project,
                %error,
                "the script failed when evaluated again; keeping its old runtime"
            ),
        }
    }

    /// Replaces an engine in which Rust code panicked. The old runtime is leaked, not freed:
    /// after a panic its bookkeeping cannot be trusted, and QuickJS aborts the process when
    /// it frees a runtime whose values are still referenced.
    fn restart_after_panic(self) -> Engine {
        tracing::error!(
            target: "switchyard::script",
            project = %self.host.project,
            "the script engine panicked; restarting the script"
        );
        let rebuilt = catch_unwind(AssertUnwindSafe(|| {
            Engine::build(
                &self.host.project,
                &self.source,
                &self.limits,
                self.host.kv.clone(),
                self.host.env.clone(),
            )
        }));
        match rebuilt {
            Ok(Ok(engine)) if engine.routes == self.routes => {
                std::mem::forget(self);
                engine
            }
            _ => self,
        }
    }
}

/// Why the module did not load.
enum Load {
    Thrown(Thrown),
    NeverSettled,
}

/// Installs the globals, then compiles and evaluates the module (with its top-level await).
fn load<'js>(ctx: &Ctx<'js>, host: &Rc<Host>, source: &str, clock: &Clock) -> Result<(), Load> {
    let fail = |error| Load::Thrown(values::thrown(ctx, error));
    globals::install(ctx, host).map_err(fail)?;
    let module = Module::declare(ctx.clone(), MODULE_NAME, source).map_err(fail)?;
    let (_module, promise) = module.eval().map_err(fail)?;
    match values::settle(ctx, &promise, &|| clock.fired()) {
        Ok(_) => Ok(()),
        Err(Some(thrown)) => Err(Load::Thrown(thrown)),
        Err(None) => Err(Load::NeverSettled),
    }
}

/// A compile error from what loading the module threw.
fn compile_error(thrown: Thrown, source: &str) -> CompileError {
    // Without a module loader QuickJS reports an import as "could not load module 'x'",
    // without a place; say that scripts cannot import, and find the line.
    if let Some(specifier) = thrown
        .message
        .strip_prefix("ReferenceError: could not load module '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        let (line, column) = import_location(source, specifier);
        return CompileError {
            line: line.or(thrown.line),
            column: column.or(thrown.column),
            message: format!(
                "import of {specifier:?}: scripts cannot import modules; \
                 put all the code in app.js"
            ),
        };
    }
    CompileError {
        line: thrown.line,
        column: thrown.column,
        message: thrown.message,
    }
}

/// The line and column of the first place `specifier` appears quoted in `source`.
fn import_location(source: &str, specifier: &str) -> (Option<u32>, Option<u32>) {
    for quote in ['"', '\'', '`'] {
        let quoted = format!("{quote}{specifier}{quote}");
        if let Some(at) = source.find(&quoted) {
            let (line, column) = line_column(source, at);
            return (Some(line), Some(column));
        }
    }
    (None, None)
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(source: &str, at: usize) -> (u32, u32) {
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |text| text.chars().count())
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Bytes the runtime has allocated.
fn usage(runtime: &Runtime) -> usize {
    usize::try_from(runtime.memory_usage().malloc_size).unwrap_or(0)
}

/// Whether the runtime is, or was since its meter's last reset, at (or within a margin of)
/// its memory limit, for failures that do not say why they happened (QuickJS throws `null`
/// when it cannot even make its error object, and what filled the memory may be freed by
/// then). The meter counts what the allocator holds, QuickJS's limit what QuickJS asked for,
/// so the peak is given a wider margin: an eighth of the limit.
fn memory_exhausted(runtime: &Runtime, meter: &Meter, limit: usize) -> bool {
    limit > 0
        && (usage(runtime).saturating_add(64 * 1024) >= limit
            || meter.peak().saturating_add((limit / 8).max(64 * 1024)) >= limit)
}
