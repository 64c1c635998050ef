//! Serving project folders: `switchyard run DIR` (one folder, mounted at `/`) and
//! `switchyard serve --projects DIR` (every folder of a directory, each at `/{name}`).
//!
//! A node of the `Root` or `Name` layout (`server::start_node`) is started on a store of
//! its own in a temporary directory, with one local owner. Each folder is read
//! ([`super::read_with`], the process environment overriding `.env`) and applied through
//! the node's change path as one revision ([`Changes::replace_whole`]): settings,
//! endpoints, backends, script and datasets together, compiled off to the side and swapped
//! in atomically, so a request sees the old project or the new one, never a mix, and none
//! is dropped. A dataset file is uploaded again only when it (or how it is read) changed.
//!
//! [`Host::watch`] looks at the folders every [`POLL_EVERY`]: a folder whose files changed
//! is applied again; one that no longer reads or applies is logged (every problem with its
//! file and line, once per distinct edit) and its last good revision keeps serving; under
//! `serve --projects`, a new folder is mounted and a removed one unmounted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use super::folder::Overrides;
use super::{DatasetFile, Folder, FolderError, MANIFEST};
use crate::changes::{
    Actor, ChangeError, Changes, SettingsEdit, StandardEndpoints, Target, Whole, WholeDataset,
    WholeScript,
};
use crate::config::Config;
use crate::dataset::Format;
use crate::datasets::{LoadedDataset, Upload, UploadError, UploadSettings};
use crate::model::{Layout, Role};
use crate::server::{Node, Server, ServerError};

/// How often the folders are looked at: an edit is served within this plus the time to
/// apply it, well under a second.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// The local owner of every project a folder node serves.
const OWNER: &str = "local";

/// Why a folder could not be served.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The folder does not read; every problem, with its file and line.
    #[error("{}", render(.0))]
    Folder(Vec<FolderError>),
    /// The change was refused: each line a problem, naming its file and line where known,
    /// else the folder.
    #[error("{0}")]
    Refused(String),
    #[error("{dir}: dataset `{name}` ({file}): {error}")]
    Dataset {
        dir: String,
        name: String,
        file: String,
        error: UploadError,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}")]
    Setup(String),
}

fn render(errors: &[FolderError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A folder node: the server, and the folders it serves.
pub struct Host {
    server: Server,
    changes: Arc<Changes>,
    owner_id: i64,
    accounts: crate::accounts::Accounts,
    uploads: UploadSettings,
    layout: Layout,
    overrides: Overrides,
    /// Folders by directory: what was last applied, and what was last looked at.
    served: BTreeMap<PathBuf, Served>,
    /// The store's directory, removed when the host is dropped.
    _store: tempfile::TempDir,
}

/// A folder the host knows.
#[derive(Default)]
struct Served {
    /// The project's name, if it was applied.
    name: Option<String>,
    /// The files as they were when they were last looked at (applied or not).
    seen: Fingerprint,
    /// The dataset files as they were uploaded, by dataset name.
    uploaded: HashMap<String, Stamp>,
}

/// A folder's files: path, size and modification time.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// A dataset file as it was uploaded, and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    file: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    format: Option<String>,
    types: Option<String>,
}

impl Host {
    /// Starts a node of `layout` (`Root`: one folder at `/`; `Name`: each at `/{name}`) on
    /// a store of its own, and `config`'s other settings (`config.db` is not used).
    pub async fn start(mut config: Config, layout: Layout) -> Result<Host, HostError> {
        let store = tempfile::Builder::new()
            .prefix("switchyard-")
            .tempdir()
            .map_err(|e| HostError::Setup(format!("cannot make a temporary store: {e}")))?;
        config.db = format!("sqlite://{}", store.path().join("switchyard.db").display());
        config.demo = false;
        config.admin = None;
        // No account API is served: registration has no meaning (and a public address
        // must not be refused for it).
        config.registration = Some(crate::config::Registration::Closed);
        let uploads = config.datasets;
        let Node {
            server,
            changes,
            accounts,
        } = crate::server::start_node(config, layout).await?;
        let password = uuid::Uuid::now_v7().simple().to_string();
        let owner = accounts
            .register(OWNER, &password, Some(Role::Admin))
            .await
            .map_err(|e| HostError::Setup(format!("cannot make the local owner: {e}")))?;
        Ok(Host {
            server,
            changes,
            owner_id: owner.id,
            accounts,
            uploads,
            layout,
            overrides: match layout {
                Layout::Name => Overrides::AllButName,
                _ => Overrides::All,
            },
            served: BTreeMap::new(),
            _store: store,
        })
    }

    /// Reads folders with these overrides of `.env` from now on (`validate` reads them as
    /// written).
    pub fn set_overrides(&mut self, overrides: Overrides) {
        self.overrides = overrides;
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The names of the projects served, in the order of their folders.
    pub fn names(&self) -> Vec<String> {
        self.served
            .values()
            .filter_map(|s| s.name.clone())
            .collect()
    }

    /// The route table's key of project `name`: its name in the `Name` layout, `` in the
    /// `Root` one.
    fn key(&self, name: &str) -> String {
        match self.layout {
            Layout::Name => name.to_owned(),
            _ => String::new(),
        }
    }

    fn actor(&self) -> Actor<'static> {
        Actor {
            user_id: self.owner_id,
            username: OWNER,
            admin: true,
        }
    }

    /// Reads the folder at `dir` and serves it as one revision (see the module's doc).
    pub async fn apply(&mut self, dir: &Path) -> Result<String, HostError> {
        let seen = fingerprint(dir);
        let entry = self.served.entry(dir.to_path_buf()).or_default();
        entry.seen = seen;
        let folder = super::read_with(dir, self.overrides).map_err(|errors| {
            HostError::Folder(errors.into_iter().map(|e| e.under(dir)).collect())
        })?;
        let shown = dir.display().to_string();
        let refused = |message: String| HostError::Refused(format!("{shown}: {message}"));
        if let Some((other, _)) = self
            .served
            .iter()
            .find(|(other, s)| *other != dir && s.name.as_deref() == Some(folder.name.as_str()))
        {
            return Err(refused(format!(
                "the name `{}` is served already, from {}",
                folder.name,
                other.display()
            )));
        }
        let key = self.key(&folder.name);
        // A new name is a new project: the old one goes.
        let before = self.served.get(dir).and_then(|s| s.name.clone());
        if let Some(old) = before.filter(|old| *old != folder.name) {
            self.remove_project(&old).await;
            if let Some(served) = self.served.get_mut(dir) {
                served.name = None;
                served.uploaded.clear();
            }
        }
        let created = if self.changes.routes().load().get(&key).is_none() {
            let settings = SettingsEdit {
                name: Some(folder.name.clone()),
                ..SettingsEdit::default()
            };
            self.changes
                .create_project(self.actor(), self.actor(), settings, vec![], vec![], false)
                .await
                .map_err(|e| HostError::Refused(describe(&e, &folder)))?;
            true
        } else {
            false
        };
        let result = self.replace(&folder, &key).await;
        match result {
            Ok(uploaded) => {
                let served = self.served.entry(dir.to_path_buf()).or_default();
                served.name = Some(folder.name.clone());
                served.uploaded = uploaded;
                Ok(folder.name)
            }
            Err(error) => {
                if created {
                    self.remove_project(&folder.name).await;
                }
                Err(error)
            }
        }
    }

    /// Uploads the folder's changed dataset files, then replaces the project whole.
    async fn replace(
        &mut self,
        folder: &Folder,
        key: &str,
    ) -> Result<HashMap<String, Stamp>, HostError> {
        let Some(project) = self.changes.routes().load().get(key).cloned() else {
            return Err(HostError::Refused(format!(
                "{}: the project went away while it was applied",
                folder.dir.display()
            )));
        };
        let mut definition = folder.definition.clone();
        // As the admin API does: only hashes of a `basic` policy's passwords are kept.
        self.accounts
            .seal_passwords(&mut definition.auth)
            .await
            .map_err(|e| HostError::Refused(format!("{}: auth: {e}", folder.dir.display())))?;
        let previous = self
            .served
            .get(&folder.dir)
            .map(|s| s.uploaded.clone())
            .unwrap_or_default();
        let mut stamps = HashMap::new();
        let mut datasets = Vec::new();
        let mut uploads: Vec<i64> = Vec::new();
        for file in &folder.datasets {
            let stamp = stamp(folder, file);
            let unchanged = previous.get(&file.name) == Some(&stamp)
                && project.datasets.get(&file.name).is_some();
            let upload = if unchanged {
                None
            } else {
                match self.upload(folder, file, project.def.id).await {
                    Ok(loaded) => {
                        uploads.push(loaded.version);
                        Some(Arc::new(loaded))
                    }
                    Err(error) => {
                        for version in uploads {
                            crate::datasets::abandon(&**self.changes.store(), version).await;
                        }
                        return Err(error);
                    }
                }
            };
            stamps.insert(file.name.clone(), stamp);
            datasets.push(WholeDataset {
                name: file.name.clone(),
                upload,
                endpoints: (file.endpoints.as_deref() == Some("default")).then(|| {
                    StandardEndpoints {
                        category: file.category.clone(),
                        prefix: file.prefix.clone(),
                    }
                }),
            });
        }
        let whole = Whole {
            definition,
            script: match &folder.script {
                Some(source) => WholeScript::Set(source.clone()),
                None => WholeScript::Remove,
            },
            datasets: Some(datasets),
        };
        let target = Target {
            key,
            expected: None,
            dry_run: false,
        };
        self.changes
            .replace_whole(self.actor(), target, whole)
            .await
            .map_err(|e| HostError::Refused(describe(&e, folder)))?;
        Ok(stamps)
    }

    /// Uploads one dataset file as a new version of project `project_id`'s dataset.
    async fn upload(
        &self,
        folder: &Folder,
        file: &DatasetFile,
        project_id: i64,
    ) -> Result<LoadedDataset, HostError> {
        let failed = |error: UploadError| HostError::Dataset {
            dir: folder.dir.display().to_string(),
            name: file.name.clone(),
            file: file.file.display().to_string(),
            error,
        };
        let refused = |message: String| {
            HostError::Refused(format!(
                "{}: dataset `{}`: {message}",
                folder.dir.display(),
                file.name
            ))
        };
        let format = match &file.format {
            Some(name) => Format::from_name(name)
                .ok_or_else(|| refused(format!("format `{name}`: use csv, json or jsonl")))?,
            None => Format::from_file_name(&file.file.to_string_lossy()).ok_or_else(|| {
                refused("its file's extension does not say its format: add `format: csv`, `json` or `jsonl`".into())
            })?,
        };
        let declared = crate::datasets::parse_types(file.types.as_deref()).map_err(|errors| {
            refused(
                errors
                    .into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let bytes = tokio::fs::read(folder.dir.join(&file.file))
            .await
            .map_err(|e| refused(format!("cannot read {}: {e}", file.file.display())))?;
        // In the store's chunk size (slices of one buffer): `receive` copies what it is
        // given into its pending chunk, so one whole piece would be held twice.
        let bytes = Bytes::from(bytes);
        let body = futures_util::stream::iter(
            (0..bytes.len())
                .step_by(crate::datasets::CHUNK_BYTES)
                .map(|at| {
                    let end = (at + crate::datasets::CHUNK_BYTES).min(bytes.len());
                    Ok::<_, std::io::Error>(bytes.slice(at..end))
                })
                .collect::<Vec<_>>(),
        );
        let upload = Upload {
            project_id,
            name: file.name.clone(),
            format,
            declared,
        };
        crate::datasets::receive(
            &**self.changes.store(),
            &upload,
            body,
            &self.uploads,
            crate::accounts::now_ms(),
        )
        .await
        .map_err(failed)
    }

    /// Unmounts the project of this name (a removed or renamed folder).
    async fn remove_project(&self, name: &str) {
        let key = self.key(name);
        let target = Target {
            key: &key,
            expected: None,
            dry_run: false,
        };
        if let Err(error) = self.changes.delete_project(target).await {
            tracing::warn!(project = name, %error, "could not unmount a project");
        }
    }

    /// Serves every folder of `root` (the directories holding a `switchyard.yaml`): each
    /// that reads and applies is mounted; the others are logged. Folders no longer there
    /// are unmounted.
    pub async fn sync(&mut self, root: &Path) {
        // A root that cannot be read holds no folders (any served are unmounted).
        let dirs = folders_of(root).unwrap_or_default();
        let gone: Vec<PathBuf> = self
            .served
            .keys()
            .filter(|dir| !dirs.contains(dir))
            .cloned()
            .collect();
        for dir in gone {
            if let Some(Served {
                name: Some(name), ..
            }) = self.served.remove(&dir)
            {
                self.remove_project(&name).await;
                tracing::info!(project = %name, dir = %dir.display(), "folder removed: unmounted");
            }
        }
        for dir in dirs {
            self.refresh(&dir).await;
        }
    }

    /// Applies the folder at `dir` again if its files changed since they were last looked
    /// at, logging the outcome.
    pub async fn refresh(&mut self, dir: &Path) {
        let now = fingerprint(dir);
        let known = self.served.get(dir);
        if known.is_some_and(|s| s.seen == now) {
            return;
        }
        let first = known.is_none_or(|s| s.name.is_none());
        match self.apply(dir).await {
            Ok(name) => {
                let mount = format!("/{}", self.key(&name));
                if first {
                    tracing::info!(project = %name, dir = %dir.display(), %mount, "serving");
                } else {
                    tracing::info!(project = %name, dir = %dir.display(), "edit applied");
                }
            }
            Err(error) => {
                for line in error.to_string().lines() {
                    tracing::error!(dir = %dir.display(), "{line}");
                }
                if !first {
                    tracing::warn!(dir = %dir.display(), "the last good version keeps serving");
                }
            }
        }
    }

    /// Follows the folders until `shutdown`: `root`'s folders (`Name` layout), or the one
    /// folder `root` is (`Root` layout).
    pub async fn watch(mut self, root: PathBuf, mut shutdown: watch::Receiver<bool>) -> Host {
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return self,
            }
            match self.layout {
                Layout::Name => self.sync(&root).await,
                _ => self.refresh(&root).await,
            }
        }
    }

    /// Stops the node (see [`Server::shutdown`]).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A folder's dataset file as it is now.
fn stamp(folder: &Folder, file: &DatasetFile) -> Stamp {
    let meta = std::fs::metadata(folder.dir.join(&file.file)).ok();
    Stamp {
        file: file.file.clone(),
        len: meta.as_ref().map_or(0, |m| m.len()),
        modified: meta.and_then(|m| m.modified().ok()),
        format: file.format.clone(),
        types: file.types.clone(),
    }
}

/// The directories of `root` that hold a manifest, in name order.
pub fn folders_of(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| path.join(MANIFEST).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Every file under `dir` (hidden ones too: `.env`), with its size and time, in order.
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                // Not a project's: version control and dependencies.
                let name = entry.file_name();
                if name != ".git" && name != "node_modules" {
                    pending.push(entry.path());
                }
            } else {
                files.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

/// A message naming endpoints by id (`endpoint `again` (GET /items/{n}) has the same method
/// and path as endpoint `GET-items-id``), placed at the first one's file and line, each
/// other one followed by its own; else at the folder.
fn placed(message: &str, folder: &Folder) -> String {
    let at = |id: &str| {
        let index = folder
            .definition
            .endpoints
            .iter()
            .position(|e| e.id.as_deref() == Some(id))?;
        let origin = folder.origins.get(index)?;
        Some(format!(
            "{}:{}:{}",
            folder.dir.join(&origin.file).display(),
            origin.line,
            origin.column
        ))
    };
    // The quoted names, in order: every other piece between backticks.
    let places: Vec<String> = message
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(at)
        .collect();
    match places.split_first() {
        Some((first, [])) => format!("{first}: {message}"),
        Some((first, others)) => format!("{first}: {message} (see {})", others.join(", ")),
        None => format!("{}: {message}", folder.dir.display()),
    }
}

/// `2:1: SyntaxError…` from a script error's `line 2, column 1: SyntaxError…`.
fn script_place(message: &str) -> Option<String> {
    let rest = message.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(", column ")?;
    let (column, rest) = rest.split_once(": ")?;
    let (line, column) = (line.parse::<u32>().ok()?, column.parse::<u32>().ok()?);
    Some(format!("{line}:{column}: {rest}"))
}

/// A refused change, its fields pointed at the files and lines they came from where the
/// folder knows them (`endpoints[3]` is `routers/orders.yaml:12:3`).
fn describe(error: &ChangeError, folder: &Folder) -> String {
    let ChangeError::Invalid(fields) = error else {
        return placed(&error.to_string(), folder);
    };
    fields
        .iter()
        .map(|field| {
            let place = field
                .field
                .strip_prefix("endpoints[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(index, rest)| {
                    let origin = folder.origins.get(index.parse::<usize>().ok()?)?;
                    Some((origin, rest.trim_start_matches('.')))
                });
            if field.field == "script"
                && let Some(at) = script_place(&field.message)
            {
                return format!("{}:{at}", folder.dir.join(super::SCRIPT).display());
            }
            match place {
                Some((origin, rest)) => format!(
                    "{}:{}:{}: {}{}",
                    folder.dir.join(&origin.file).display(),
                    origin.line,
                    origin.column,
                    if rest.is_empty() {
                        String::new()
                    } else {
                        format!("{rest}: ")
                    },
                    field.message
                ),
                None => format!(
                    "{}: {}: {}",
                    folder.dir.display(),
                    field.field,
                    field.message
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
