//! Gateway mode: routes, backends and a default response from a YAML file (the format of
//! existing label-routing gateways), kept live while the file changes.
//!
//! The file becomes one project mounted at `/` (`routing::Publish::Root`): each route is an
//! `ANY` proxy endpoint whose path is the route's prefix (so the longest prefix wins on
//! segment boundaries, whatever the order of the file), the default response is a mock at
//! `/{*rest}`, and the backends are the project's backends. Serving is then the ordinary
//! request pipeline.
//!
//! [`Gateway::load`] reads, validates and compiles the file off to the side; nothing is
//! published unless all of it is good, and then all of it is published in one swap, so a
//! request sees the old configuration or the new one, never a mix. [`Gateway::watch`]
//! polls the file and reloads it when it changes; a file that is bad, unreadable, missing or
//! not a file any more is logged (once per distinct problem) and the last good
//! configuration keeps serving.

mod file;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

pub use file::GatewayFile;

use crate::backends::Registry;
use crate::changes::prepare_endpoint;
use crate::handlers::Handler;
use crate::model::{Mode, Project};
use crate::routing::{CompiledEndpoint, CompiledProject, HandlerList, Publish, Routes, retire};

/// The names the gateway's routes go by in stats, metrics and logs: project
/// `gateway/routes`.
pub const GATEWAY_OWNER: &str = "gateway";
pub const GATEWAY_PROJECT: &str = "routes";

/// How often the file is looked at: edits are applied within this plus the time to
/// compile them, well under a second.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Why a configuration could not be used. The message names the file, and the line where
/// the problem is when it is inside the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct GatewayError {
    pub path: String,
    pub message: String,
}

/// The live gateway: its file, and where it publishes what it reads from it.
pub struct Gateway {
    path: PathBuf,
    routes: Arc<Routes>,
    registry: Arc<Registry>,
    /// What the file looked like when it was last read, to notice a change cheaply.
    seen: Option<Seen>,
    /// The text last applied, so that a touched but unchanged file is not recompiled.
    applied: String,
    /// The revision of the configuration served; each applied change adds one.
    revision: i64,
    /// The problem last logged, so that a file that stays bad is logged once.
    problem: Option<GatewayError>,
}

/// A file's identity and age, as polling compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Seen {
    fn of(metadata: &std::fs::Metadata) -> Seen {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Seen {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            #[cfg(unix)]
            inode: metadata.ino(),
        }
    }
}

impl Gateway {
    /// Reads, checks and publishes the file for the first time: an error here (a missing,
    /// unreadable or bad file) is the caller's to report; nothing was published.
    pub fn load(
        path: PathBuf,
        routes: Arc<Routes>,
        registry: Arc<Registry>,
    ) -> Result<Gateway, GatewayError> {
        let mut gateway = Gateway {
            path,
            routes,
            registry,
            seen: None,
            applied: String::new(),
            revision: 0,
            problem: None,
        };
        let (text, seen) = gateway.read()?;
        gateway.apply(text)?;
        gateway.seen = Some(seen);
        Ok(gateway)
    }

    /// Polls the file until `stop` says so, applying each good change and logging each bad
    /// one.
    pub async fn watch(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            // Reading and compiling are synchronous and small; a huge file is compiled on
            // a blocking thread so that it never stalls the workers.
            let polled = tokio::task::spawn_blocking(move || {
                let applied = self.poll();
                (self, applied)
            })
            .await;
            self = match polled {
                Ok((gateway, applied)) => {
                    if applied {
                        // The replaced configuration (a large one is many small
                        // allocations) is freed off to the side; give that memory back.
                        crate::server::release_memory_soon();
                    }
                    gateway
                }
                Err(error) => {
                    tracing::error!(%error, "the gateway's file watcher stopped");
                    return;
                }
            };
        }
    }

    /// One look at the file: reloads it if it changed since it was last looked at. Says
    /// whether a new configuration was applied.
    fn poll(&mut self) -> bool {
        let seen = match std::fs::metadata(&self.path) {
            Ok(metadata) => Seen::of(&metadata),
            Err(error) => {
                self.seen = None;
                let error = self.error(format!("cannot be read: {error}"));
                self.report(error);
                return false;
            }
        };
        if self.seen.as_ref() == Some(&seen) {
            return false;
        }
        // Looked at once per change, good or bad: a bad file is not parsed again until it
        // changes.
        self.seen = Some(seen);
        let result = self.read().and_then(|(text, _)| {
            if text == self.applied {
                return Ok(false);
            }
            self.apply(text).map(|()| true)
        });
        match result {
            Ok(applied) => {
                if self.problem.take().is_some() && !applied {
                    tracing::info!(
                        path = %self.path.display(),
                        "the gateway configuration file is back, unchanged"
                    );
                }
                applied
            }
            Err(error) => {
                self.report(error);
                false
            }
        }
    }

    /// Logs a problem, unless it is the one logged last.
    fn report(&mut self, error: GatewayError) {
        if self.problem.as_ref() != Some(&error) {
            tracing::error!(
                problem = %error,
                "gateway configuration rejected; the last good one keeps serving"
            );
            self.problem = Some(error);
        }
    }

    fn error(&self, message: String) -> GatewayError {
        GatewayError {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// The file's text and what it looked like when read.
    fn read(&self) -> Result<(String, Seen), GatewayError> {
        let metadata = std::fs::metadata(&self.path)
            .map_err(|e| self.error(format!("cannot be read: {e}")))?;
        if !metadata.is_file() {
            return Err(self.error("is not a file".into()));
        }
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| self.error(format!("cannot be read: {e}")))?;
        Ok((text, Seen::of(&metadata)))
    }

    /// Checks and compiles `text` and, if all of it is good, publishes it in one swap.
    fn apply(&mut self, text: String) -> Result<(), GatewayError> {
        let path = self.path.display().to_string();
        let parsed = GatewayFile::parse(&text).map_err(|message| GatewayError {
            path: path.clone(),
            message,
        })?;
        let revision = self.revision + 1;
        let compiled = compile(&parsed, revision, &self.registry)
            .map_err(|message| GatewayError { path, message })?;
        let compiled = match self.routes.load().root() {
            // Routes that stay keep counting where they were.
            Some(previous) => compiled.counting_as(previous),
            None => compiled,
        };
        retire(self.routes.publish(Publish::Root(Arc::new(compiled))));
        tracing::info!(
            path = %self.path.display(),
            routes = parsed.routes.len(),
            backends = parsed.backends.len(),
            revision,
            "gateway configuration applied"
        );
        self.revision = revision;
        self.applied = text;
        Ok(())
    }
}

/// Compiles a checked file into the project mounted at `/`. Fails with a message naming the
/// line of the route or backend at fault.
fn compile(
    parsed: &GatewayFile,
    revision: i64,
    registry: &Registry,
) -> Result<CompiledProject, String> {
    let (endpoints, backends) = parsed.definition()?;
    let mut handlers = HandlerList::new();
    let mut list = crate::model::EndpointList::new();
    for (spec, line) in endpoints {
        // Validated and given its id (the route's) as the admin API does it.
        let endpoint = prepare_endpoint(spec, "", None).map_err(|errors| match errors.first() {
            Some(error) => format!("line {line}: {}: {}", error.field, error.message),
            None => format!("line {line}: the route is not valid"),
        })?;
        let handler = Handler::compile(&endpoint.spec).map_err(|e| format!("line {line}: {e}"))?;
        handlers.push_back(CompiledEndpoint::new(handler, None));
        list.push_back(Arc::new(endpoint));
    }
    let project = Project {
        id: 0,
        owner: GATEWAY_OWNER.into(),
        name: GATEWAY_PROJECT.into(),
        description: "gateway configuration".into(),
        mode: Mode::Production,
        // No journal: gateway mode has no admin API to read one.
        journal_size: Some(0),
        revision,
        created_at: 0,
        updated_at: 0,
        endpoints: list,
        backends: backends.into(),
        script: None,
        auth: crate::model::AuthPolicy::None,
        cors: None,
        rate_limit: None,
        openapi: None,
        env: crate::model::Env::EMPTY,
        layout: crate::model::Layout::Owner,
    };
    CompiledProject::build(Arc::new(project), handlers)
        .map(|compiled| compiled.with_upstreams(registry))
        .map_err(|e| e.to_string())
}
