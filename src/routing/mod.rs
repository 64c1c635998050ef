//! The compiled, immutable route table and its atomic swap.
//!
//! A [`RouteTable`] maps mounts (`alice/demo`) to [`CompiledProject`]s; each compiled project
//! holds its definition, one compiled [`Handler`] per endpoint and a [`matcher::Router`] from
//! paths to endpoint indices. The whole table sits behind one `ArcSwap` in [`Routes`]: the
//! request path does one `load`, takes no lock and never awaits; the change path builds a new
//! project off to the side and publishes a new table with one `store`.
//!
//! `routing` knows nothing of the store or of HTTP servers: it is handed definitions and
//! answers lookups.

pub(crate) mod matcher;
pub(crate) mod template;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::handlers::Handler;
use crate::model::{Endpoint, MethodSpec, Project};
use crate::store::LoadedProject;
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
}

/// A project ready to serve: its definition, its handlers and its router.
pub struct CompiledProject {
    pub def: Arc<Project>,
    /// One handler per endpoint, parallel to `def.endpoints`.
    pub handlers: Vec<Arc<Handler>>,
    /// From project-relative path to an index into `handlers`; an error when the stored
    /// definition does not compile, in which case the project answers 503.
    /// Shared between revisions whose routes did not change (an edit of a response only).
    pub router: Result<Arc<Router<u32>>, Arc<str>>,
}

impl CompiledProject {
    /// Compiles `def` with the handlers already built for its endpoints (parallel vectors).
    pub fn build(
        def: Arc<Project>,
        handlers: Vec<Arc<Handler>>,
    ) -> Result<CompiledProject, CompileError> {
        let router = build_router(&def)?;
        Ok(CompiledProject {
            def,
            handlers,
            router: Ok(Arc::new(router)),
        })
    }

    /// Compiles the next revision `def` from this one, doing as little routing work as the
    /// edit needs: when every method and path stays where it was (a response or a setting
    /// changed) the router is shared as is; when one endpoint was added at the end, the
    /// router is extended with it (`Router::with_route`, a copy of flat buffers); anything
    /// else rebuilds it.
    pub fn next(
        &self,
        def: Arc<Project>,
        handlers: Vec<Arc<Handler>>,
    ) -> Result<CompiledProject, CompileError> {
        let Ok(router) = &self.router else {
            return CompiledProject::build(def, handlers);
        };
        let before = self.def.endpoints.len();
        let router = if def.endpoints.len() == before && self.same_routes(&def) {
            router.clone()
        } else if def.endpoints.len() == before + 1
            && self.same_routes(&def)
            && let Some(added) = def.endpoints.last()
        {
            let value = u32::try_from(before).unwrap_or(u32::MAX);
            let extended = router
                .with_route(route_method(&added.spec.method), &added.template, value)
                .map_err(|conflict| conflict_error(&def, added, conflict.existing))?;
            Arc::new(extended)
        } else {
            return CompiledProject::build(def, handlers);
        };
        Ok(CompiledProject {
            def,
            handlers,
            router: Ok(router),
        })
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

    /// A project whose definition could not be compiled: it is mounted and answers 503.
    pub fn broken(def: Arc<Project>, error: &dyn std::fmt::Display) -> CompiledProject {
        CompiledProject {
            def,
            handlers: Vec::new(),
            router: Err(error.to_string().into()),
        }
    }

    /// Compiles every handler and the router, as a project is loaded at start; a failure
    /// gives a broken project rather than an error, so one bad project never stops the node.
    pub fn load(def: Project) -> CompiledProject {
        let def = Arc::new(def);
        let handlers: Result<Vec<_>, _> = def
            .endpoints
            .iter()
            .map(|e| Handler::compile(&e.spec).map(Arc::new))
            .collect();
        let result = handlers.map_err(|e| e.to_string()).and_then(|handlers| {
            CompiledProject::build(def.clone(), handlers).map_err(|e| e.to_string())
        });
        match result {
            Ok(project) => project,
            Err(error) => {
                tracing::error!(project = %def.mount(), %error, "project does not compile; serving 503");
                CompiledProject::broken(def, &error)
            }
        }
    }

    /// Finds the endpoint for a project-relative path (`""` means `/`).
    pub fn lookup<'r, 'p>(&'r self, method: &http::Method, path: &'p str) -> ProjectLookup<'r, 'p> {
        let router = match &self.router {
            Ok(router) => router,
            Err(error) => return ProjectLookup::Unavailable(error),
        };
        let path = if path.is_empty() { "/" } else { path };
        match router.lookup(method, path) {
            Lookup::Found(found) => match self.handlers.get(*found.value as usize) {
                Some(handler) => ProjectLookup::Found {
                    handler,
                    params: found.params,
                },
                None => ProjectLookup::NotFound,
            },
            Lookup::MethodNotAllowed { allow } => ProjectLookup::MethodNotAllowed(allow),
            Lookup::NotFound => ProjectLookup::NotFound,
        }
    }
}

/// What a lookup inside one project found.
pub enum ProjectLookup<'r, 'p> {
    Found {
        handler: &'r Arc<Handler>,
        #[allow(dead_code)]
        params: matcher::Params<'r, 'p>,
    },
    MethodNotAllowed(&'r str),
    NotFound,
    Unavailable(&'r str),
}

fn build_router(def: &Project) -> Result<Router<u32>, CompileError> {
    let mut builder = RouterBuilder::with_capacity(def.endpoints.len());
    for (index, endpoint) in def.endpoints.iter().enumerate() {
        // Indices fit in u32: a project holds at most model::MAX_ENDPOINTS endpoints.
        let value = u32::try_from(index).unwrap_or(u32::MAX);
        builder
            .insert(
                route_method(&endpoint.spec.method),
                &endpoint.template,
                value,
            )
            .map_err(|conflict| conflict_error(def, endpoint, conflict.existing))?;
    }
    Ok(builder.build())
}

fn route_method(method: &MethodSpec) -> RouteMethod {
    match method {
        MethodSpec::Any => RouteMethod::Any,
        MethodSpec::One(method) => RouteMethod::Method(method.clone()),
    }
}

/// The conflict of `endpoint` with the route at index `existing`, named by endpoint ids.
fn conflict_error(def: &Project, endpoint: &Endpoint, existing: usize) -> CompileError {
    CompileError::Conflict {
        endpoint: endpoint.id.clone(),
        existing: def
            .endpoints
            .get(existing)
            .map(|e| e.id.clone())
            .unwrap_or_default(),
        method: endpoint.spec.method.as_str().to_owned(),
        path: endpoint.spec.path.clone(),
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
}

impl RouteTable {
    /// Splits `/owner/project/rest` into the project mounted there and the project-relative
    /// rest (`/rest`, or `""`). Costs one hash lookup, whatever the number of projects.
    pub fn resolve<'p>(&self, path: &'p str) -> Option<(&Arc<CompiledProject>, &'p str)> {
        let trimmed = path.strip_prefix('/')?;
        let (owner, after_owner) = split_segment(trimmed);
        let (project, _) = split_segment(after_owner?);
        let (key, rest) = trimmed.split_at(owner.len() + 1 + project.len());
        self.mounts.get(key).map(|project| (project, rest))
    }

    pub fn get(&self, key: &str) -> Option<&Arc<CompiledProject>> {
        self.mounts.get(key)
    }

    pub fn projects(&self) -> impl Iterator<Item = &Arc<CompiledProject>> {
        self.mounts.values()
    }
}

/// The live route table: read by every request, replaced by every change.
pub struct Routes {
    current: ArcSwap<RouteTable>,
}

impl Routes {
    pub fn new(table: RouteTable) -> Routes {
        Routes {
            current: ArcSwap::from_pointee(table),
        }
    }

    /// Builds the table from every stored project, as at start. A project the store could
    /// not read whole is mounted broken (503) rather than served partly.
    pub fn from_loaded(projects: Vec<LoadedProject>) -> Routes {
        let mounts = projects
            .into_iter()
            .map(|loaded| {
                let key = Arc::from(loaded.project.mount_key());
                let compiled = match loaded.problem {
                    None => CompiledProject::load(loaded.project),
                    Some(problem) => {
                        tracing::error!(project = %loaded.project.mount(), %problem, "project cannot be read; serving 503");
                        CompiledProject::broken(Arc::new(loaded.project), &problem)
                    }
                };
                (key, Arc::new(compiled))
            })
            .collect();
        Routes::new(RouteTable { mounts })
    }

    /// The table as it is now; hold the guard only for synchronous work.
    pub fn load(&self) -> arc_swap::Guard<Arc<RouteTable>> {
        self.current.load()
    }

    /// Publishes a table in which `remove` (if any) is unmounted and `insert` (if any) is
    /// mounted, in one atomic store, and returns the table it replaced (see [`retire`]).
    /// Callers serialise changes (see `changes`), so there is no lost update between the
    /// load and the store.
    #[must_use = "retire the old table so that freeing it happens off the change path"]
    pub fn publish(
        &self,
        remove: Option<&str>,
        insert: Option<Arc<CompiledProject>>,
    ) -> Arc<RouteTable> {
        let mut table = RouteTable::clone(&self.current.load());
        if let Some(key) = remove {
            table.mounts.remove(key);
        }
        if let Some(project) = insert {
            table
                .mounts
                .insert(Arc::from(project.def.mount_key()), project);
        }
        self.current.swap(Arc::new(table))
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
