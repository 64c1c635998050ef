//! The compiled, immutable route table and its atomic swap.
//!
//! A [`RouteTable`] maps mounts (`alice/demo`) to [`CompiledProject`]s; each compiled project
//! holds its definition, one compiled [`Handler`] per endpoint, those of its script's
//! routes ([`ScriptRoutes`]) and a [`matcher::Router`] from paths to endpoint indices (a
//! script route's index has [`SCRIPT_ROUTE`] set). The whole table sits behind one `ArcSwap` in [`Routes`]: the
//! request path does one `load`, takes no lock and never awaits; the change path builds a new
//! project off to the side and publishes a new table with one `store`.
//!
//! `routing` knows nothing of the store or of HTTP servers: it is handed definitions and
//! answers lookups.

pub(crate) mod explain;
pub(crate) mod matcher;
pub(crate) mod template;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::auth::ProjectAuth;
use crate::auth::cors::CompiledCors;
use crate::auth::keys::KeySet;
use crate::auth::limit::Limiter;
use crate::backends::{Registry, Upstreams};
use crate::datasets::DatasetSet;
use crate::handlers::Handler;
use crate::handlers::script::ScriptHandler;
use crate::model::{Endpoint, Layout, MethodSpec, Project};
use crate::observe::journal::Journal;
use crate::observe::stats::{Stats, StatsCell};
use crate::script::Script;
use crate::store::LoadedProject;
pub use matcher::Params;
use matcher::{Lookup, RouteMethod, Router, RouterBuilder};

/// Why a project could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(
        "endpoint `{endpoint}` ({method} {path}) has the same method and path as endpoint `{existing}`"
    )]
    Conflict {
        endpoint: String,
        existing: String,
        method: String,
        path: String,
    },
    #[error("endpoint `{endpoint}`: {message}")]
    Template { endpoint: String, message: String },
    #[error("the script's route {route} has the same method and path as {existing}")]
    ScriptConflict { route: String, existing: String },
    #[error("the script's route {route}: {message}")]
    ScriptTemplate { route: String, message: String },
    #[error("the script's route {route}: {message}")]
    ScriptSchema { route: String, message: String },
}

/// The script route a handler index names, if it names one (`SCRIPT_ROUTE` set).
#[inline]
pub fn script_route(index: usize) -> Option<usize> {
    let bit = SCRIPT_ROUTE as usize;
    (index & bit != 0).then_some(index & !bit)
}

/// A stored project's script, compiled (`None` without one), or why it did not compile.
pub type LoadedScript = Option<Result<Arc<Script>, String>>;

/// A router value with this bit set is a route of the project's script (the other bits:
/// its index among the script's routes); without it, an index into the endpoints. A
/// project has far fewer than 2^31 endpoints.
pub const SCRIPT_ROUTE: u32 = 1 << 31;

/// The routes of a project's script, ready to serve beside its endpoints.
#[derive(Debug)]
pub struct ScriptRoutes {
    pub script: Arc<Script>,
    /// One per route of the script, in its order.
    pub handlers: Vec<Arc<CompiledEndpoint>>,
    /// The routes' ids in stats, logs and the journal: `script:GET /items/{id}`.
    pub ids: Vec<Box<str>>,
    templates: Vec<(RouteMethod, template::Template)>,
}

impl ScriptRoutes {
    /// The routes of `script`, each with its template; a route of the same id in
    /// `previous` hands its stats on. A path that is not a valid template is an error
    /// naming the route.
    pub fn compile(
        script: Arc<Script>,
        previous: Option<&ScriptRoutes>,
        docs: Option<&crate::model::ProjectDocs>,
        lint: bool,
    ) -> Result<ScriptRoutes, CompileError> {
        let count = script.routes().len();
        let (mut handlers, mut ids, mut templates) = (
            Vec::with_capacity(count),
            Vec::with_capacity(count),
            Vec::with_capacity(count),
        );
        for (index, route) in script.routes().iter().enumerate() {
            let method = route.method.as_ref().map_or("ANY", |m| m.as_str());
            let label = format!("{method} {}", route.path);
            let template = template::Template::parse(&route.path).map_err(|error| {
                CompileError::ScriptTemplate {
                    route: label.clone(),
                    message: error.to_string(),
                }
            })?;
            let id: Box<str> = format!("script:{label}").into();
            let before = previous.and_then(|previous| {
                let at = previous.ids.iter().position(|old| *old == id)?;
                previous.handlers.get(at)
            });
            let handler = Handler::Script(ScriptHandler::new(Arc::clone(&script), index));
            let schema =
                |error: crate::openapi::validate::SchemaError| CompileError::ScriptSchema {
                    route: label.clone(),
                    message: error.to_string(),
                };
            let described = route.docs.as_deref();
            // A script sent now has its schemas held to the lint.
            if lint {
                crate::openapi::validate::lint_docs(described, docs).map_err(schema)?;
            }
            let checks = crate::openapi::validate::Checks::of(described, docs).map_err(schema)?;
            handlers.push(CompiledEndpoint::checked(
                handler,
                checks.map(Box::new),
                before.map(|b| &**b),
            ));
            let method = match &route.method {
                Some(method) => RouteMethod::Method(method.clone()),
                None => RouteMethod::Any,
            };
            templates.push((method, template));
            ids.push(id);
        }
        Ok(ScriptRoutes {
            script,
            handlers,
            ids,
            templates,
        })
    }
}

/// Compiled endpoints parallel to a project's endpoints, persistent like
/// [`crate::model::EndpointList`].
pub type HandlerList = imbl::Vector<Arc<CompiledEndpoint>>;

/// An endpoint ready to serve: its handler, and its stats, which belong to the endpoint's id
/// rather than to this version of it.
#[derive(Debug)]
pub struct CompiledEndpoint {
    pub handler: Handler,
    pub stats: StatsCell,
    /// What it checks of a request before the handler runs (its OpenAPI schemas); `None`
    /// for most endpoints, which then pay one branch.
    pub checks: Option<Box<crate::openapi::validate::Checks>>,
}

impl CompiledEndpoint {
    /// `handler` for a new endpoint, or for a new version of `previous` (same id), whose
    /// stats it continues.
    pub fn new(handler: Handler, previous: Option<&CompiledEndpoint>) -> Arc<CompiledEndpoint> {
        CompiledEndpoint::checked(handler, None, previous)
    }

    /// [`CompiledEndpoint::new`] with the request checks of its schemas.
    pub fn checked(
        handler: Handler,
        checks: Option<Box<crate::openapi::validate::Checks>>,
        previous: Option<&CompiledEndpoint>,
    ) -> Arc<CompiledEndpoint> {
        let stats = match previous {
            Some(previous) => StatsCell::holding(previous.stats.get().clone()),
            None => StatsCell::new(),
        };
        Arc::new(CompiledEndpoint {
            handler,
            stats,
            checks,
        })
    }
}

/// What an edit did to a project's methods and paths, as the change path knows it, so that
/// [`CompiledProject::next`] need not compare every endpoint to find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEdit {
    /// Every endpoint keeps its method and path, in place: a response or a setting changed.
    Kept,
    /// One endpoint was added at the end; every other one is kept.
    Appended,
    /// Anything else, or not known.
    Unknown,
}

/// A project ready to serve: its definition, its handlers and its router.
pub struct CompiledProject {
    pub def: Arc<Project>,
    /// One handler per endpoint, parallel to `def.endpoints`.
    pub handlers: HandlerList,
    /// From project-relative path to an index into `handlers`. Shared between revisions
    /// whose routes did not change (an edit of a response only).
    pub router: Arc<Router<u32>>,
    /// The project's traffic, handed from each revision to the next.
    pub stats: Arc<Stats>,
    /// The project's recent requests, handed on like `stats`.
    pub journal: Arc<Journal>,
    /// The live upstreams of the project's backends (node state from `backends::Registry`,
    /// shared with every revision that keeps the same backends).
    pub upstreams: Upstreams,
    /// Whether its backends are bounded by `--proxy-allow` (its owner is not an admin).
    pub restricted: bool,
    /// Why the stored project could not be loaded whole, if it could not. Such a project
    /// answers 503 to every request and refuses every change but a whole replacement, so
    /// that what was read of it is never published as if it were all of it.
    pub problem: Option<Arc<Problem>>,
    /// The project's script, compiled, with its routes (in `router` too); `None` without.
    pub script: Option<Arc<ScriptRoutes>>,
    /// The project's datasets, which its dataset endpoints look up by name per request (a
    /// replaced dataset is a new revision with a new set; handlers stay as they are).
    pub datasets: DatasetSet,
    /// Its auth policy with its API keys, as the pipeline's policy stage checks them.
    pub auth: Arc<ProjectAuth>,
    /// Its CORS policy, compiled; `None` without one.
    pub cors: Option<Arc<CompiledCors>>,
    /// Its rate limit's live state, handed from revision to revision while the limit stays
    /// the same; `None` without one.
    pub limiter: Option<Arc<Limiter>>,
    /// Its OpenAPI document, made by the first request for it and kept for this revision.
    pub docs: crate::openapi::DocsCache,
}

/// What is wrong with a project that could not be loaded, and how often it was asked for.
pub struct Problem {
    message: Box<str>,
    /// Whether the project's script is all that is wrong (it did not compile).
    script: bool,
    /// Requests answered 503 since the last log line about them.
    unlogged: AtomicU64,
    /// When the last log line was written, in seconds since `EPOCH`; 0 for never.
    logged_at: AtomicU64,
}

/// Requests to a broken project are logged at most once per this many seconds, with the
/// number of requests since: hostile traffic must not grow the log without bound.
const PROBLEM_LOG_EVERY_SECS: u64 = 10;

impl Problem {
    pub fn new(message: impl std::fmt::Display) -> Problem {
        Problem {
            message: message.to_string().into_boxed_str(),
            script: false,
            unlogged: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the project's script is all that is wrong with it: the rest of it was read
    /// whole, and a new script (or none) repairs it.
    pub fn is_script(&self) -> bool {
        self.script
    }

    /// Counts one request answered 503, and says how many to log now, if it is time to.
    pub fn note_request(&self) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let now = seconds_since_epoch();
        let last = self.logged_at.load(Ordering::Relaxed);
        if last != 0 && now < last + PROBLEM_LOG_EVERY_SECS {
            return None;
        }
        // One thread wins the right to log this period; the others keep counting.
        self.logged_at
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

/// `def`'s CORS policy, compiled.
fn compile_cors(def: &Project) -> Option<Arc<CompiledCors>> {
    def.cors
        .as_ref()
        .map(|cors| Arc::new(CompiledCors::new(cors)))
}

/// A fresh limiter for `def`'s rate limit.
fn new_limiter(def: &Project) -> Option<Arc<Limiter>> {
    def.rate_limit
        .as_ref()
        .map(|limit| Arc::new(Limiter::new(limit)))
}

/// Seconds on a process-wide monotonic clock, starting at 1.
fn seconds_since_epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
        + 1
}

impl CompiledProject {
    /// Compiles `def` with the handlers already built for its endpoints (parallel vectors).
    pub fn build(
        def: Arc<Project>,
        handlers: HandlerList,
    ) -> Result<CompiledProject, CompileError> {
        CompiledProject::build_with(def, handlers, None)
    }

    /// [`CompiledProject::build`], with the routes of a script.
    pub fn build_with(
        def: Arc<Project>,
        handlers: HandlerList,
        script: Option<Arc<ScriptRoutes>>,
    ) -> Result<CompiledProject, CompileError> {
        let router = build_router(&def, script.as_deref())?;
        let auth = Arc::new(ProjectAuth::compile(
            &def.auth,
            &def.mount(),
            Arc::default(),
        ));
        let (cors, limiter) = (compile_cors(&def), new_limiter(&def));
        Ok(CompiledProject {
            def,
            handlers,
            router: Arc::new(router),
            stats: Arc::new(Stats::with_recent()),
            journal: Arc::new(Journal::new()),
            upstreams: Upstreams::default(),
            restricted: false,
            problem: None,
            script,
            datasets: DatasetSet::default(),
            cors,
            limiter,
            docs: Default::default(),
            auth,
        })
    }

    /// This project with `script`'s routes instead of its script's (none with `None`): the
    /// router is rebuilt; a script route with an endpoint's method and path is refused.
    pub fn with_script(
        self,
        script: Option<Arc<ScriptRoutes>>,
    ) -> Result<CompiledProject, CompileError> {
        let router = build_router(&self.def, script.as_deref())?;
        Ok(CompiledProject {
            router: Arc::new(router),
            script,
            ..self
        })
    }

    /// The handler at `index` (as `lookup` gives it: an endpoint's index, or a script
    /// route's with [`SCRIPT_ROUTE`] set).
    #[inline]
    pub fn handler(&self, index: usize) -> Option<&Arc<CompiledEndpoint>> {
        match script_route(index) {
            None => self.handlers.get(index),
            Some(route) => self.script.as_ref()?.handlers.get(route),
        }
    }

    /// The id of the endpoint at `index` (as `lookup` gives it); a script route's is
    /// `script:METHOD PATH`.
    pub fn endpoint_id(&self, index: usize) -> Option<&str> {
        route_id(&self.def, self.script.as_deref(), index)
    }

    /// This project with the live upstreams of its backends, from the node's registry.
    pub fn with_upstreams(mut self, registry: &Registry) -> CompiledProject {
        self.upstreams = registry.upstreams(&self.def.backends, self.restricted);
        self
    }

    /// This project, its backends bounded by `--proxy-allow` or not (see `restricted`).
    pub fn restricted(self, restricted: bool) -> CompiledProject {
        CompiledProject { restricted, ..self }
    }

    /// Compiles the next revision `def` from this one, doing as little routing work as the
    /// edit needs: when every method and path stays where it was (a response or a setting
    /// changed) the router is shared as is; when one endpoint was added at the end, the
    /// router is extended with it (`Router::with_route`, a copy of flat buffers); anything
    /// else rebuilds it. `edit` says which, when the caller knows; [`RouteEdit::Unknown`]
    /// finds out by comparing every endpoint. A broken project's router is never reused: it
    /// holds only what could be read.
    pub fn next(
        &self,
        def: Arc<Project>,
        handlers: HandlerList,
        edit: RouteEdit,
    ) -> Result<CompiledProject, CompileError> {
        if self.problem.is_some() {
            // Edits carry a changed endpoint's stats over themselves (`CompiledEndpoint::new`);
            // the project's are handed on here.
            return CompiledProject::build_with(def, handlers, self.script.clone()).map(|next| {
                CompiledProject {
                    stats: self.stats.clone(),
                    journal: self.journal_for(&next.def),
                    upstreams: self.upstreams.clone(),
                    restricted: self.restricted,
                    datasets: self.datasets.clone(),
                    auth: self.auth_for(&next.def),
                    cors: self.cors_for(&next.def),
                    limiter: self.limiter_for(&next.def),
                    docs: Default::default(),
                    ..next
                }
            });
        }
        let before = self.def.endpoints.len();
        let edit = match edit {
            RouteEdit::Unknown if def.endpoints.len() == before && self.same_routes(&def) => {
                RouteEdit::Kept
            }
            RouteEdit::Unknown if def.endpoints.len() == before + 1 && self.same_routes(&def) => {
                RouteEdit::Appended
            }
            known => known,
        };
        debug_assert!(
            edit == RouteEdit::Unknown || self.same_routes(&def),
            "a route edit hint that does not hold: {edit:?}"
        );
        let router = if edit == RouteEdit::Kept && def.endpoints.len() == before {
            self.router.clone()
        } else if edit == RouteEdit::Appended
            && def.endpoints.len() == before + 1
            && let Some(added) = def.endpoints.last()
        {
            let value = u32::try_from(before).unwrap_or(u32::MAX);
            let method = route_method(&added.spec.method);
            let conflict = |router: &Router<u32>, existing: usize| {
                conflict_error(
                    &def,
                    self.script.as_deref(),
                    added,
                    router.value_of(existing),
                )
            };
            let mut extended = self
                .router
                .with_route(method.clone(), &added.template, value)
                .map_err(|c| conflict(&self.router, c.existing))?;
            for second in added.tail().into_iter().chain(added.alias()) {
                let second = second.map_err(|e| template_error(added, e))?;
                extended = extended
                    .with_route(method.clone(), &second, value)
                    .map_err(|c| conflict(&extended, c.existing))?;
            }
            Arc::new(extended)
        } else {
            // Edits carry a changed endpoint's stats over themselves (`CompiledEndpoint::new`);
            // the project's are handed on here.
            return CompiledProject::build_with(def, handlers, self.script.clone()).map(|next| {
                CompiledProject {
                    stats: self.stats.clone(),
                    journal: self.journal_for(&next.def),
                    upstreams: self.upstreams.clone(),
                    restricted: self.restricted,
                    datasets: self.datasets.clone(),
                    auth: self.auth_for(&next.def),
                    cors: self.cors_for(&next.def),
                    limiter: self.limiter_for(&next.def),
                    docs: Default::default(),
                    ..next
                }
            });
        };
        let auth = self.auth_for(&def);
        let (cors, limiter) = (self.cors_for(&def), self.limiter_for(&def));
        Ok(CompiledProject {
            journal: self.journal_for(&def),
            def,
            handlers,
            router,
            stats: self.stats.clone(),
            upstreams: self.upstreams.clone(),
            restricted: self.restricted,
            problem: None,
            script: self.script.clone(),
            datasets: self.datasets.clone(),
            cors,
            limiter,
            docs: Default::default(),
            auth,
        })
    }

    /// This project counting on where `previous` left off: the project's stats, and those of
    /// every endpoint whose id is in both. For a project compiled apart from `previous` (one
    /// reloaded from the store); `O(endpoints)`.
    pub fn counting_as(mut self, previous: &CompiledProject) -> CompiledProject {
        self.stats = previous.stats.clone();
        self.journal = previous.journal.clone();
        if let (Some(limit), Some(live)) = (&self.def.rate_limit, &previous.limiter)
            && live.same_policy(limit)
        {
            self.limiter = Some(live.clone());
        }
        let old: std::collections::HashMap<&str, &StatsCell> = previous
            .def
            .endpoints
            .iter()
            .zip(previous.handlers.iter())
            .filter_map(|(e, h)| h.stats.peek().map(|_| (e.id.as_str(), &h.stats)))
            .collect();
        if old.is_empty() {
            return self;
        }
        for (endpoint, compiled) in self.def.endpoints.iter().zip(self.handlers.iter()) {
            if let Some(stats) = old.get(endpoint.id.as_str()).and_then(|cell| cell.peek())
                && compiled.stats.peek().is_none()
            {
                compiled.stats.adopt(stats.clone());
            }
        }
        self
    }

    /// The journal the next revision `def` keeps: this one, unless the journal's size
    /// changed, which starts an empty one (a ring's size is fixed).
    fn journal_for(&self, def: &Project) -> Arc<Journal> {
        if def.journal_size == self.def.journal_size {
            self.journal.clone()
        } else {
            Arc::new(Journal::new())
        }
    }

    /// How many requests this project's journal keeps, given the node's default.
    pub fn journal_size(&self, default: usize) -> usize {
        self.def.journal_size.map_or(default, |size| size as usize)
    }

    /// Do `def`'s first endpoints have the methods and paths of `self`'s, in order?
    fn same_routes(&self, def: &Project) -> bool {
        def.endpoints
            .iter()
            .zip(&self.def.endpoints)
            .all(|(new, old)| {
                // Unchanged endpoints are the very same allocation; only edited ones compare.
                Arc::ptr_eq(new, old)
                    || (new.spec.method == old.spec.method && new.spec.path == old.spec.path)
            })
    }

    /// A project that could not be loaded whole: it is mounted, answers 503, and keeps
    /// `def` (what could be read) only to show it.
    pub fn broken(def: Arc<Project>, problem: &dyn std::fmt::Display) -> CompiledProject {
        let auth = Arc::new(ProjectAuth::compile(
            &def.auth,
            &def.mount(),
            Arc::default(),
        ));
        CompiledProject {
            def,
            handlers: HandlerList::new(),
            router: Arc::new(RouterBuilder::with_capacity(0).build()),
            stats: Arc::new(Stats::with_recent()),
            journal: Arc::new(Journal::new()),
            upstreams: Upstreams::default(),
            restricted: false,
            problem: Some(Arc::new(Problem::new(problem))),
            script: None,
            datasets: DatasetSet::default(),
            auth,
            cors: None,
            limiter: None,
            docs: Default::default(),
        }
    }

    /// The auth the next revision `def` checks: this one's, unless its policy changed
    /// (recompiled with the same keys).
    fn auth_for(&self, def: &Project) -> Arc<ProjectAuth> {
        if def.auth == self.def.auth && def.name == self.def.name {
            self.auth.clone()
        } else {
            Arc::new(ProjectAuth::compile(
                &def.auth,
                &def.mount(),
                self.auth.keys().clone(),
            ))
        }
    }

    /// The CORS policy the next revision `def` applies: this one's while it is the same.
    fn cors_for(&self, def: &Project) -> Option<Arc<CompiledCors>> {
        if def.cors == self.def.cors {
            self.cors.clone()
        } else {
            compile_cors(def)
        }
    }

    /// The rate limiter of the next revision `def`: this one, counting on, while the limit
    /// is the same.
    fn limiter_for(&self, def: &Project) -> Option<Arc<Limiter>> {
        match (&def.rate_limit, &self.limiter) {
            (Some(limit), Some(live)) if live.same_policy(limit) => Some(live.clone()),
            _ => new_limiter(def),
        }
    }

    /// This project with another set of API keys.
    pub fn with_keys(self, keys: Arc<KeySet>) -> CompiledProject {
        let auth = Arc::new(self.auth.with_keys(keys));
        CompiledProject { auth, ..self }
    }

    /// This project serving `datasets`.
    pub fn with_datasets(self, datasets: DatasetSet) -> CompiledProject {
        CompiledProject { datasets, ..self }
    }

    /// Compiles a project read from the store, as at start or when the node reloads one; a
    /// failure gives a broken project rather than an error, so one bad project never stops
    /// the node.
    ///
    /// `script` is the project's script compiled (`None` without one), or why it did not
    /// compile: the project is then broken too. `datasets` are its stored datasets, read
    /// back (a broken project keeps them for the revision that repairs it), and so are its
    /// API keys.
    pub fn load(
        mut loaded: LoadedProject,
        registry: &Registry,
        script: LoadedScript,
        datasets: DatasetSet,
    ) -> CompiledProject {
        let keys = Arc::new(KeySet::from_records(&std::mem::take(&mut loaded.keys)));
        CompiledProject::load_definition(loaded, registry, script)
            .with_datasets(datasets)
            .with_keys(keys)
    }

    fn load_definition(
        loaded: LoadedProject,
        registry: &Registry,
        script: LoadedScript,
    ) -> CompiledProject {
        let restricted = !loaded.owner_admin;
        let def = Arc::new(loaded.project);
        if let Some(problem) = loaded.problem {
            tracing::error!(project = %def.mount(), %problem, "project cannot be read; serving 503");
            // Still its owner's: the whole PUT that repairs it is held to `--proxy-allow`.
            return CompiledProject::broken(def, &problem).restricted(restricted);
        }
        let handlers: Result<HandlerList, _> = def
            .endpoints
            .iter()
            .map(|e| {
                let handler = Handler::compile(&e.spec).map_err(|e| e.to_string())?;
                let checks =
                    crate::openapi::validate::Checks::compile(&e.spec, def.openapi.as_deref())
                        .map_err(|e| e.to_string())?;
                Ok(CompiledEndpoint::checked(
                    handler,
                    checks.map(Box::new),
                    None,
                ))
            })
            .collect();
        let result = handlers.and_then(|handlers| {
            CompiledProject::build(def.clone(), handlers).map_err(|e| e.to_string())
        });
        let project = match result {
            Ok(project) => project,
            Err(error) => {
                tracing::error!(project = %def.mount(), %error, "project does not compile; serving 503");
                return CompiledProject::broken(def, &error).restricted(restricted);
            }
        };
        let scripted = match script {
            None => Ok(project),
            Some(Err(error)) => Err(error),
            Some(Ok(script)) => ScriptRoutes::compile(script, None, def.openapi.as_deref(), false)
                .and_then(|routes| project.with_script(Some(Arc::new(routes))))
                .map_err(|error| format!("its script does not fit: {error}")),
        };
        match scripted {
            Ok(project) => project.restricted(restricted).with_upstreams(registry),
            Err(error) => {
                tracing::error!(project = %def.mount(), %error, "project's script does not compile; serving 503");
                let mut broken = CompiledProject::broken(def, &error).restricted(restricted);
                broken.problem = Some(Arc::new(Problem {
                    script: true,
                    ..Problem::new(&error)
                }));
                broken
            }
        }
    }

    /// Finds the endpoint for a project-relative path (`""` means `/`).
    pub fn lookup<'r, 'p>(&'r self, method: &http::Method, path: &'p str) -> ProjectLookup<'r, 'p> {
        if let Some(problem) = &self.problem {
            return ProjectLookup::Unavailable(problem);
        }
        let path = if path.is_empty() { "/" } else { path };
        match self.router.lookup(method, path) {
            Lookup::Found(found) => {
                // A router value is the index `handler` takes.
                let index = *found.value as usize;
                let endpoint = self.handler(index);
                match endpoint {
                    Some(endpoint) => ProjectLookup::Found {
                        endpoint,
                        index,
                        params: found.params,
                    },
                    None => ProjectLookup::NotFound,
                }
            }
            Lookup::MethodNotAllowed { allow } => ProjectLookup::MethodNotAllowed(allow),
            Lookup::NotFound => ProjectLookup::NotFound,
        }
    }
}

/// What a lookup inside one project found.
pub enum ProjectLookup<'r, 'p> {
    Found {
        endpoint: &'r Arc<CompiledEndpoint>,
        /// Its position in the project's endpoints, or for a script route its position
        /// among the script's routes with [`SCRIPT_ROUTE`] set (see
        /// [`CompiledProject::handler`]).
        index: usize,
        params: matcher::Params<'r, 'p>,
    },
    MethodNotAllowed(&'r str),
    NotFound,
    Unavailable(&'r Problem),
}

fn build_router(def: &Project, script: Option<&ScriptRoutes>) -> Result<Router<u32>, CompileError> {
    let routes = script.map_or(0, |s| s.templates.len());
    let mut builder = RouterBuilder::with_capacity(def.endpoints.len() + routes);
    for (index, endpoint) in def.endpoints.iter().enumerate() {
        // Indices fit in u32: a project holds at most model::MAX_ENDPOINTS endpoints.
        let value = u32::try_from(index).unwrap_or(u32::MAX);
        let tail = endpoint
            .tail()
            .transpose()
            .map_err(|e| template_error(endpoint, e))?;
        let alias = endpoint
            .alias()
            .transpose()
            .map_err(|e| template_error(endpoint, e))?;
        for template in std::iter::once(&endpoint.template)
            .chain(tail.as_ref())
            .chain(alias.as_ref())
        {
            if let Err(conflict) =
                builder.insert(route_method(&endpoint.spec.method), template, value)
            {
                return Err(conflict_error(
                    def,
                    None,
                    endpoint,
                    builder.value_of(conflict.existing),
                ));
            }
        }
    }
    if let Some(script) = script {
        for (index, (method, template)) in script.templates.iter().enumerate() {
            // A script has far fewer routes than 2^31.
            let value = SCRIPT_ROUTE | u32::try_from(index).unwrap_or(0);
            if let Err(conflict) = builder.insert(method.clone(), template, value) {
                let existing = builder.value_of(conflict.existing).copied();
                return Err(CompileError::ScriptConflict {
                    route: script_label(script, index),
                    existing: route_name(def, Some(script), existing),
                });
            }
        }
    }
    Ok(builder.build())
}

/// `GET /items/{id}`: a script route as its id names it.
fn script_label(script: &ScriptRoutes, index: usize) -> String {
    script
        .ids
        .get(index)
        .and_then(|id| id.strip_prefix("script:"))
        .unwrap_or_default()
        .to_owned()
}

/// The id of what a router value (a handler index) names: an endpoint's id, or a script
/// route's `script:GET /path`.
fn route_id<'a>(
    def: &'a Project,
    script: Option<&'a ScriptRoutes>,
    index: usize,
) -> Option<&'a str> {
    match script_route(index) {
        None => def.endpoints.get(index).map(|e| e.id.as_str()),
        Some(route) => script?.ids.get(route).map(|id| &**id),
    }
}

/// What answers router value `value`: "endpoint `id`" or "the script's route GET /x".
fn route_name(def: &Project, script: Option<&ScriptRoutes>, value: Option<u32>) -> String {
    let id = value.and_then(|value| route_id(def, script, value as usize));
    match id {
        Some(id) => match id.strip_prefix("script:") {
            Some(label) => format!("the script's route {label}"),
            None => format!("endpoint `{id}`"),
        },
        None => "another route".to_owned(),
    }
}

fn route_method(method: &MethodSpec) -> RouteMethod {
    match method {
        MethodSpec::Any => RouteMethod::Any,
        MethodSpec::One(method) => RouteMethod::Method(method.clone()),
    }
}

/// A prefix endpoint whose tail template does not parse (validation refuses such paths
/// first).
fn template_error(endpoint: &Endpoint, error: template::TemplateError) -> CompileError {
    CompileError::Template {
        endpoint: endpoint.id.clone(),
        message: error.to_string(),
    }
}

/// The conflict of `endpoint` with the route of router value `existing`, named by endpoint
/// ids (a script route's as `script:GET /path`).
fn conflict_error(
    def: &Project,
    script: Option<&ScriptRoutes>,
    endpoint: &Endpoint,
    existing: Option<&u32>,
) -> CompileError {
    CompileError::Conflict {
        endpoint: endpoint.id.clone(),
        existing: existing
            .and_then(|value| route_id(def, script, *value as usize))
            .unwrap_or_default()
            .to_owned(),
        method: endpoint.spec.method.as_str().to_owned(),
        path: endpoint.spec.path.to_string(),
    }
}

/// Splits a path at its first `/`: the segment before it, and what follows it if there is
/// a `/` at all. Segments are short, so a plain byte loop beats `memchr`'s set-up; `/` is
/// ASCII, so both sides are valid `str` slices.
#[inline]
pub(crate) fn split_segment(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'/') {
        Some(at) => (&path[..at], path.get(at + 1..)),
        None => (path, None),
    }
}

/// Mounts to compiled projects. Immutable: a change makes a new table.
#[derive(Default, Clone)]
pub struct RouteTable {
    /// foldhash with a per-process random seed, as the router's static table: several
    /// times cheaper than SipHash on short keys, and still not predictable by tenants.
    mounts: foldhash::HashMap<Arc<str>, Arc<CompiledProject>>,
    /// A project mounted at `/`, which takes every path (gateway mode, and the `Root`
    /// layout).
    root: Option<Arc<CompiledProject>>,
    /// How `mounts`' keys are made from a path: `owner/name` or `name`.
    by_name: bool,
}

impl RouteTable {
    /// Splits `/owner/project/rest` into the project mounted there and the project-relative
    /// rest (`/rest`, or `""`). Costs one hash lookup, whatever the number of projects. A
    /// project mounted at `/` takes the whole path.
    pub fn resolve<'p>(&self, path: &'p str) -> Option<(&Arc<CompiledProject>, &'p str)> {
        self.mounted(path)
            .or_else(|| self.root.as_ref().map(|root| (root, path)))
    }

    /// The project mounted at `/owner/project` (or `/project`, in the `Name` layout), and
    /// the rest of the path.
    #[inline]
    fn mounted<'p>(&self, path: &'p str) -> Option<(&Arc<CompiledProject>, &'p str)> {
        let trimmed = path.strip_prefix('/')?;
        let (first, after_first) = split_segment(trimmed);
        let length = if self.by_name {
            first.len()
        } else {
            let (project, _) = split_segment(after_first?);
            first.len() + 1 + project.len()
        };
        let (key, rest) = trimmed.split_at(length);
        self.mounts.get(key).map(|project| (project, rest))
    }

    /// The project of this mount key (`owner/name`, `name`, or `` for the `Root` layout's
    /// project).
    pub fn get(&self, key: &str) -> Option<&Arc<CompiledProject>> {
        match self.mounts.get(key) {
            Some(project) => Some(project),
            None if key.is_empty() => self.root.as_ref(),
            None => None,
        }
    }

    pub fn projects(&self) -> impl Iterator<Item = &Arc<CompiledProject>> {
        self.mounts.values().chain(self.root.as_ref())
    }

    /// The project mounted at `/`, if one is.
    pub fn root(&self) -> Option<&Arc<CompiledProject>> {
        self.root.as_ref()
    }
}

/// The live route table: read by every request, replaced by every change.
pub struct Routes {
    current: ArcSwap<RouteTable>,
    /// Serialises publishes, so that two changes to different projects (which hold
    /// different project locks) cannot lose each other's update between load and store.
    /// Held only to copy the table's map; the request path never takes it.
    publishing: std::sync::Mutex<()>,
    layout: Layout,
}

/// One change to the route table.
pub enum Publish {
    /// Mount this project at its key, unmounting it from any other key it had (a rename).
    /// Ignored when the table already holds this project at the same or a newer revision:
    /// the table never goes back in time, whoever publishes late.
    Mount(Arc<CompiledProject>),
    /// Unmount the project with this store id, wherever it is mounted.
    Unmount(i64),
    /// Mount this project at `/`, where it takes every path (gateway mode), replacing the
    /// one there unless that one is of the same or a newer revision.
    Root(Arc<CompiledProject>),
}

impl Routes {
    pub fn new(table: RouteTable) -> Routes {
        Routes {
            current: ArcSwap::from_pointee(table),
            publishing: std::sync::Mutex::new(()),
            layout: Layout::Owner,
        }
    }

    /// No projects yet, mounted as `layout` says.
    pub fn with_layout(layout: Layout) -> Routes {
        let table = RouteTable {
            by_name: layout == Layout::Name,
            ..RouteTable::default()
        };
        Routes {
            layout,
            ..Routes::new(table)
        }
    }

    /// How this node mounts its projects.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The table of every project read from the store, as at start, each with its script
    /// compiled (or why it did not compile) and its datasets, as [`CompiledProject::load`]
    /// takes them. A project the store could not read whole is mounted broken (503) rather
    /// than served partly.
    pub fn from_loaded(
        projects: Vec<(LoadedProject, LoadedScript, DatasetSet)>,
        registry: &Registry,
    ) -> Routes {
        let mounts = projects
            .into_iter()
            .map(|(loaded, script, datasets)| {
                let key = Arc::from(loaded.project.mount_key());
                (
                    key,
                    Arc::new(CompiledProject::load(loaded, registry, script, datasets)),
                )
            })
            .collect();
        Routes::new(RouteTable {
            mounts,
            root: None,
            by_name: false,
        })
    }

    /// The table as it is now; hold the guard only for synchronous work.
    pub fn load(&self) -> arc_swap::Guard<Arc<RouteTable>> {
        self.current.load()
    }

    /// Applies `change` in one atomic store and returns what it replaced, if anything (see
    /// [`retire`]).
    #[must_use = "retire the old table so that freeing it happens off the change path"]
    pub fn publish(&self, change: Publish) -> Option<Arc<RouteTable>> {
        // A poisoned lock only means another publish panicked; the table itself is whole.
        let _guard = self
            .publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = self.current.load_full();
        let change = match change {
            // The `Root` layout's one project.
            Publish::Mount(project) if project.def.layout == Layout::Root => Publish::Root(project),
            Publish::Unmount(id) if live.root.as_ref().is_some_and(|r| r.def.id == id) => {
                let table = RouteTable {
                    root: None,
                    ..RouteTable::clone(&live)
                };
                return Some(self.current.swap(Arc::new(table)));
            }
            other => other,
        };
        let id = match &change {
            Publish::Mount(project) => project.def.id,
            Publish::Unmount(id) => *id,
            Publish::Root(project) => {
                if live
                    .root
                    .as_ref()
                    .is_some_and(|root| root.def.revision >= project.def.revision)
                {
                    return None;
                }
                let table = RouteTable {
                    root: Some(project.clone()),
                    ..RouteTable::clone(&live)
                };
                return Some(self.current.swap(Arc::new(table)));
            }
        };
        let mounted = live
            .mounts
            .iter()
            .find(|(_, p)| p.def.id == id)
            .map(|(key, p)| (key.clone(), p.def.revision));
        let mut table = RouteTable::clone(&live);
        match change {
            Publish::Mount(project) => {
                if let Some((key, revision)) = mounted {
                    if revision >= project.def.revision {
                        return None;
                    }
                    table.mounts.remove(&key);
                }
                table
                    .mounts
                    .insert(Arc::from(project.def.mount_key()), project);
            }
            Publish::Unmount(_) => {
                let (key, _) = mounted?;
                table.mounts.remove(&key);
            }
            Publish::Root(_) => {}
        }
        Some(self.current.swap(Arc::new(table)))
    }
}

/// Frees a replaced table or project on a blocking thread. A large project is tens of
/// thousands of small allocations; freeing them inline would add milliseconds to the change
/// that replaced it. Requests still holding the old value keep it alive until they finish.
pub fn retire<T: Send + 'static>(old: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(old));
        }
        Err(_) => drop(old),
    }
}
