//! The embedded SQLite store: one file, WAL journal, versioned migrations.
//!
//! Durability: WAL with `synchronous=NORMAL` makes every committed transaction survive a
//! crash of the process (`kill -9`); `?sync=full` in the URL also survives power loss, at
//! the cost of an fsync per commit. Queries are parameterised; nothing is string-built.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync of each) do not
//! run inside a commit: SQLite's automatic checkpoint is off on every connection, and a
//! background task ([`Checkpointer`]) runs a `PASSIVE` checkpoint on a connection of its own
//! after every [`CHECKPOINT_EVERY_WRITES`] writes or [`CHECKPOINT_INTERVAL`], whichever comes
//! first. A `PASSIVE` checkpoint neither waits for nor blocks a writer. But SQLite rewinds the
//! WAL to its start only when a write begins while the WAL is wholly checkpointed, which a
//! steady stream of writes never lets happen; so once the WAL holds [`RESTART_FROM_FRAMES`]
//! frames, the task holds new write transactions back for one `RESTART` checkpoint (it copies
//! the few frames written since the `PASSIVE` one). Once the store has been idle for
//! [`TRUNCATE_WHEN_IDLE_FOR`], the WAL file is truncated.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite, Transaction};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::{
    ApiKeyRecord, ChangeRecord, Commit, DatasetOps, DatasetRecord, EndpointOps, KeyOps, KvLimits,
    LoadedProject, NewProject, Store, StoreError, TokenKind, TokenRecord, UserRecord,
};
use crate::model::{
    AuthPolicy, Backend, CorsPolicy, Endpoint, EndpointList, EndpointSpec, Env, Mode, Project,
    ProjectDocs, RateLimit, Role,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    checkpointer: Checkpointer,
}

/// A checkpoint is asked for after this many write transactions (a change to one endpoint
/// writes 6–8 pages, so about 700 pages, ~3 MB of WAL)...
const CHECKPOINT_EVERY_WRITES: u64 = 100;
/// ...or this long after the first write since the last checkpoint, whichever comes first.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// A WAL of this many frames (pages; 16 MiB of 4 KiB pages) is rewound by a `RESTART`
/// checkpoint that holds writes back while it runs: one change in ~600 waits for it.
const RESTART_FROM_FRAMES: i64 = 4096;
/// After this long without writes the WAL file is truncated to zero bytes (a `TRUNCATE`
/// checkpoint briefly blocks writers, so it waits for a quiet store).
const TRUNCATE_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

/// The background WAL checkpoint task and what the store tells it.
struct Checkpointer {
    writes: Arc<Writes>,
    /// Set to `true` (or dropped with the store) to stop the task.
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Write transactions committed so far; the task is woken every `CHECKPOINT_EVERY_WRITES`.
#[derive(Default)]
struct Writes {
    count: AtomicU64,
    wake: Notify,
    /// Shared by the change path's write transactions, taken alone by a checkpoint that must
    /// not run beside one. An async lock: a held-back change wakes as soon as it is free,
    /// where SQLite's busy handler would sleep in steps of 1, 2, 5, 10… ms.
    gate: tokio::sync::RwLock<()>,
}

impl Checkpointer {
    /// Starts the task on its own connection, so that a checkpoint never takes a pool
    /// connection from a change.
    async fn start(options: &SqliteConnectOptions) -> Result<Checkpointer, StoreError> {
        let connection = options.connect().await?;
        let writes = Arc::new(Writes::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(checkpoint_loop(connection, writes.clone(), stopped));
        Ok(Checkpointer {
            writes,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Held by a write transaction of the change path while it runs.
    async fn writing(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writes.gate.read().await
    }

    /// Notes one committed write transaction.
    fn wrote(&self) {
        let count = self.writes.count.fetch_add(1, Ordering::Relaxed) + 1;
        if count.is_multiple_of(CHECKPOINT_EVERY_WRITES) {
            self.writes.wake.notify_one();
        }
    }

    /// Stops the task and waits for it (and its connection) to finish.
    async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Checkpoints after writes, truncates when idle, until told to stop or the store is gone.
async fn checkpoint_loop(
    mut connection: SqliteConnection,
    writes: Arc<Writes>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut checkpointed = writes.count.load(Ordering::Relaxed);
    let mut last_write = Instant::now();
    let mut truncated = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
            _ = writes.wake.notified() => {}
            changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { break },
        }
        let count = writes.count.load(Ordering::Relaxed);
        let mode = if count != checkpointed {
            last_write = Instant::now();
            truncated = false;
            "PASSIVE"
        } else if !truncated && last_write.elapsed() >= TRUNCATE_WHEN_IDLE_FOR {
            truncated = true;
            "TRUNCATE"
        } else {
            continue;
        };
        checkpointed = count;
        if mode == "TRUNCATE" {
            let _alone = writes.gate.write().await;
            checkpoint(&mut connection, mode).await;
            continue;
        }
        let frames = checkpoint(&mut connection, mode).await;
        if frames.is_some_and(|frames| frames >= RESTART_FROM_FRAMES) {
            let _alone = writes.gate.write().await;
            checkpoint(&mut connection, "RESTART").await;
        }
    }
    let _ = connection.close().await;
}

/// Runs one checkpoint and returns how many frames the WAL held, if it could.
async fn checkpoint(connection: &mut SqliteConnection, mode: &'static str) -> Option<i64> {
    let sql = match mode {
        "PASSIVE" => "PRAGMA wal_checkpoint(PASSIVE)",
        "RESTART" => "PRAGMA wal_checkpoint(RESTART)",
        _ => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let started = Instant::now();
    match sqlx::query_as::<_, (i64, i64, i64)>(sql)
        .fetch_one(&mut *connection)
        .await
    {
        Ok((busy, wal_frames, copied)) => {
            tracing::debug!(
                mode,
                busy,
                wal_frames,
                copied,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "WAL checkpoint"
            );
            Some(wal_frames)
        }
        Err(error) => {
            tracing::warn!(%error, mode, "WAL checkpoint failed");
            None
        }
    }
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`: `sqlite://PATH`,
    /// `sqlite:PATH` or a plain file path; `?sync=full` asks for an fsync per commit.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let (base, full_sync) = match url.split_once('?') {
            Some((base, "sync=full")) => (base, true),
            Some((base, "sync=normal")) => (base, false),
            Some(_) => {
                return Err(StoreError::UnsupportedUrl(format!(
                    "{url}: the only option is ?sync=full|normal"
                )));
            }
            None => (url, false),
        };
        let url = if base.starts_with("sqlite:") {
            base.to_owned()
        } else {
            format!("sqlite://{base}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::UnsupportedUrl(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // The node reads the store at start and writes single rows after: a small page
            // cache per connection (the OS caches the file anyway) keeps idle memory low.
            .pragma("cache_size", "-512")
            // Every ~1000 pages SQLite would checkpoint inside the commit that crossed the
            // line, two fsyncs and a copy of the WAL: milliseconds on one unlucky change.
            // The checkpointer does it in the background instead.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let checkpointer = Checkpointer::start(&options).await?;
        Ok(SqliteStore { pool, checkpointer })
    }
}

impl SqliteStore {
    /// Every project (`None`) or one, with its endpoints, read in one transaction so that a
    /// project and its endpoint rows are of the same revision.
    async fn load(&self, only: Option<i64>) -> Result<Vec<LoadedProject>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT p.id, u.username, p.name, p.description, p.mode, p.journal_size, p.revision, p.created_at, p.updated_at,
                    p.backends, p.script, p.auth, p.cors, p.rate_limit, p.openapi, p.env, u.role
             FROM projects p JOIN users u ON u.id = p.owner_id
             WHERE ?1 IS NULL OR p.id = ?1 ORDER BY p.id",
        )
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        let mut projects = Vec::with_capacity(rows.len());
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let mode: String = row.try_get("mode")?;
            let backends: &str = row.try_get("backends")?;
            let (backends, mut problem) = match serde_json::from_str::<Vec<Backend>>(backends) {
                Ok(backends) => (backends, None),
                Err(error) => (
                    Vec::new(),
                    Some(format!("its backends cannot be read: {error}")),
                ),
            };
            // NULL is `none`; one that cannot be read is never served (the project is 503).
            let auth = read_json::<AuthPolicy>(&row, "auth", "auth policy", &mut problem)?
                .unwrap_or_default();
            let cors = read_json::<CorsPolicy>(&row, "cors", "CORS policy", &mut problem)?;
            let rate_limit =
                read_json::<RateLimit>(&row, "rate_limit", "rate limit", &mut problem)?;
            let openapi =
                read_json::<ProjectDocs>(&row, "openapi", "OpenAPI settings", &mut problem)?
                    .map(Arc::new);
            let env = read_env(&row, &mut problem)?;
            let project = Project {
                id: row.try_get("id")?,
                owner: row.try_get("username")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                mode: Mode::parse(&mode)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown mode `{mode}`")))?,
                journal_size: row
                    .try_get::<Option<i64>, _>("journal_size")?
                    .map(|size| u32::try_from(size).unwrap_or(u32::MAX)),
                revision: row.try_get("revision")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                endpoints: EndpointList::new(),
                backends: backends.into(),
                script: row.try_get::<Option<String>, _>("script")?.map(Arc::from),
                auth,
                cors,
                rate_limit,
                openapi,
                env,
                layout: crate::model::Layout::Owner,
            };
            let role: String = row.try_get("role")?;
            by_id.insert(project.id, projects.len());
            projects.push(LoadedProject {
                project,
                owner_admin: role_from(&role)? == Role::Admin,
                problem,
                keys: Vec::new(),
            });
        }
        let keys = sqlx::query(
            "SELECT project_id, id, name, hash, scopes, created_at, expires_at FROM api_keys
             WHERE ?1 IS NULL OR project_id = ?1 ORDER BY project_id, created_at, id",
        )
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        for row in keys {
            let project_id: i64 = row.try_get("project_id")?;
            let Some(loaded) = by_id.get(&project_id).and_then(|i| projects.get_mut(*i)) else {
                continue;
            };
            let scopes: &str = row.try_get("scopes")?;
            loaded.keys.push(ApiKeyRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                hash: row.try_get("hash")?,
                scopes: serde_json::from_str(scopes)
                    .map_err(|e| StoreError::Corrupt(format!("an API key's scopes: {e}")))?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            });
        }
        // Streamed, not fetched whole: a row is parsed and dropped before the next one is
        // read, so the rows of a large project never all sit in memory at once beside the
        // endpoints built from them (which left the heap fragmented after a restart).
        let mut rows = sqlx::query(
            "SELECT project_id, id, definition FROM endpoints
             WHERE ?1 IS NULL OR project_id = ?1 ORDER BY project_id, position",
        )
        .bind(only)
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let project_id: i64 = row.try_get("project_id")?;
            let Some(loaded) = by_id.get(&project_id).and_then(|i| projects.get_mut(*i)) else {
                continue;
            };
            let id: String = row.try_get("id")?;
            let definition: &str = row.try_get("definition")?;
            let parsed = serde_json::from_str::<EndpointSpec>(definition)
                .map_err(|e| e.to_string())
                .and_then(|spec| Endpoint::new(id, spec).map_err(|e| e.to_string()));
            match parsed {
                Ok(endpoint) => loaded.project.endpoints.push_back(Arc::new(endpoint)),
                Err(error) => {
                    let id: &str = row.try_get("id")?;
                    let note = format!("endpoint `{id}` cannot be read: {error}");
                    loaded.problem = Some(match loaded.problem.take() {
                        Some(before) => format!("{before}; {note}"),
                        None => note,
                    });
                }
            }
        }
        drop(rows);
        tx.commit().await?;
        Ok(projects)
    }
}

/// An optional JSON column of a project row: `None` for NULL; one that cannot be read is
/// `None` too, with the reason in `problem` (the project is then served as broken: 503).
fn read_json<T: serde::de::DeserializeOwned>(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
    what: &str,
    problem: &mut Option<String>,
) -> Result<Option<T>, StoreError> {
    let Some(text) = row.try_get::<Option<&str>, _>(column)? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(text)
        .map_err(|error| *problem = Some(format!("its {what} cannot be read: {error}")))
        .ok())
}

/// A project's environment values: NULL for none. Ones that cannot be read are none, with
/// the reason in `problem` (the project is then broken), where no value is quoted.
fn read_env(
    row: &sqlx::sqlite::SqliteRow,
    problem: &mut Option<String>,
) -> Result<Env, StoreError> {
    let Some(text) = row.try_get::<Option<&str>, _>("env")? else {
        return Ok(Env::default());
    };
    Ok(serde_json::from_str(text)
        .map_err(|error| {
            *problem = Some(format!(
                "its environment values cannot be read (line {}, column {})",
                error.line(),
                error.column()
            ))
        })
        .unwrap_or_default())
}

/// A project's environment values as stored: NULL for none, else a JSON object of strings.
fn env_json(env: &Env) -> Result<Option<String>, StoreError> {
    optional_json((!env.is_empty()).then_some(env))
}

/// An optional policy as stored: NULL for none, else the JSON the admin API takes.
fn optional_json<T: serde::Serialize>(value: Option<&T>) -> Result<Option<String>, StoreError> {
    value
        .map(|v| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// A project's auth policy as stored: NULL for `none`, else the JSON the admin API takes.
fn auth_json(auth: &AuthPolicy) -> Result<Option<String>, StoreError> {
    optional_json((!auth.is_none()).then_some(auth))
}

/// A project's backends as stored: the JSON array the admin API takes.
fn backends_json(backends: &[Backend]) -> Result<String, StoreError> {
    serde_json::to_string(backends).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn role_from(value: &str) -> Result<Role, StoreError> {
    Role::parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown role `{value}`")))
}

fn user_from(row: &sqlx::sqlite::SqliteRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: role_from(row.try_get("role")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from(row: &sqlx::sqlite::SqliteRow) -> Result<TokenRecord, StoreError> {
    let kind = match row.try_get::<&str, _>("kind")? {
        "session" => TokenKind::Session,
        "api" => TokenKind::Api,
        other => return Err(StoreError::Corrupt(format!("unknown token kind `{other}`"))),
    };
    Ok(TokenRecord {
        id: row.try_get("token_id")?,
        user_id: row.try_get("user_id")?,
        kind,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("token_created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// The stored form of a definition: the spec without its id (the id is its own column).
/// A prepared endpoint carries no id in its spec, so this serialises it in place; JSON
/// bodies are written as the raw text they hold.
fn definition_json(endpoint: &Endpoint) -> Result<String, StoreError> {
    let written = if endpoint.spec.id.is_none() {
        serde_json::to_string(&endpoint.spec)
    } else {
        let mut spec = endpoint.spec.clone();
        spec.id = None;
        serde_json::to_string(&spec)
    };
    written.map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn insert_endpoint(
    tx: &mut Transaction<'_, Sqlite>,
    project_id: i64,
    endpoint: &Endpoint,
    position: Option<i64>,
) -> Result<(), StoreError> {
    let definition = definition_json(endpoint)?;
    sqlx::query(
        "INSERT INTO endpoints (project_id, id, position, definition)
         VALUES (?1, ?2,
                 COALESCE(?3, (SELECT COALESCE(MAX(position), 0) + 1 FROM endpoints WHERE project_id = ?1)),
                 ?4)
         ON CONFLICT (project_id, id) DO UPDATE SET definition = excluded.definition",
    )
    .bind(project_id)
    .bind(&endpoint.id)
    .bind(position)
    .bind(definition)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const TOKEN_COLUMNS: &str = "t.id AS token_id, t.user_id, t.kind, t.name, t.hash, t.created_at AS token_created_at, t.expires_at";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.checkpointer.stop().await;
        self.pool.close().await;
    }

    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Option<Role>,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (username, password_hash, role, created_at)
             VALUES (?1, ?2,
                     COALESCE(?3, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'user' ELSE 'admin' END),
                     ?4)
             RETURNING id, username, password_hash, role, created_at",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.map(Role::as_str))
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        self.checkpointer.wrote();
        match result {
            Ok(row) => user_from(&row),
            Err(e) if is_unique_violation(&e) => Err(StoreError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, role, created_at FROM users WHERE username = ?1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, user_id, kind, name, hash, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&token.id)
        .bind(token.user_id)
        .bind(token.kind.as_str())
        .bind(&token.name)
        .bind(&token.hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        self.checkpointer.wrote();
        Ok(())
    }

    async fn token_owner(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<(UserRecord, TokenRecord)>, StoreError> {
        let sql = format!(
            "SELECT u.id, u.username, u.password_hash, u.role, u.created_at, {TOKEN_COLUMNS}
             FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.hash = ?1 AND (t.expires_at IS NULL OR t.expires_at > ?2)"
        );
        let row = sqlx::query(&sql)
            .bind(hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some((user_from(&row)?, token_from(&row)?))),
            None => Ok(None),
        }
    }

    async fn list_tokens(
        &self,
        user_id: i64,
        kind: TokenKind,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.user_id = ?1 AND t.kind = ?2 ORDER BY t.created_at, t.id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from).collect()
    }

    async fn delete_token(&self, user_id: i64, token_id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM tokens WHERE user_id = ?1 AND id = ?2 AND kind = 'api'")
                .bind(user_id)
                .bind(token_id)
                .execute(&self.pool)
                .await?;
        self.checkpointer.wrote();
        Ok(done.rows_affected() > 0)
    }

    async fn delete_token_by_hash(&self, hash: &[u8]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE hash = ?1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        self.checkpointer.wrote();
        Ok(done.rows_affected())
    }

    async fn load_projects(&self) -> Result<Vec<LoadedProject>, StoreError> {
        let projects = self.load(None).await?;
        // Reading every row filled this connection's page cache; the node does not read
        // them again, so give that memory back rather than carry it while idle.
        if let Ok(mut connection) = self.pool.acquire().await {
            let _ = sqlx::query("PRAGMA shrink_memory")
                .execute(&mut *connection)
                .await;
        }
        Ok(projects)
    }

    async fn load_project(&self, project_id: i64) -> Result<Option<LoadedProject>, StoreError> {
        Ok(self.load(Some(project_id)).await?.pop())
    }

    async fn create_project(
        &self,
        project: &NewProject<'_>,
        actor_id: Option<i64>,
    ) -> Result<i64, StoreError> {
        let _writing = self.checkpointer.writing().await;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO projects (owner_id, name, description, mode, revision, created_at, updated_at, journal_size, backends, script, auth, cors, rate_limit, openapi, env)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
        )
        .bind(project.owner_id)
        .bind(project.name)
        .bind(project.description)
        .bind(project.mode.as_str())
        .bind(project.now)
        .bind(project.journal_size.map(i64::from))
        .bind(backends_json(project.backends)?)
        .bind(project.script)
        .bind(auth_json(project.auth)?)
        .bind(optional_json(project.cors)?)
        .bind(optional_json(project.rate_limit)?)
        .bind(optional_json(project.openapi)?)
        .bind(env_json(project.env)?)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if is_unique_violation(&e) => return Err(StoreError::ProjectExists),
            Err(e) => return Err(e.into()),
        };
        for (position, endpoint) in project.endpoints.iter().enumerate() {
            insert_endpoint(&mut tx, id, endpoint, Some(position as i64 + 1)).await?;
        }
        sqlx::query("INSERT INTO changes (project_id, revision, at, actor_id, summary) VALUES (?1, 1, ?2, ?3, 'create project')")
            .bind(id)
            .bind(project.now)
            .bind(actor_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.checkpointer.wrote();
        Ok(id)
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<i64, StoreError> {
        let _writing = self.checkpointer.writing().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE projects SET revision = revision + 1, name = ?3, description = ?4, mode = ?5, updated_at = ?6,
                 journal_size = ?7, backends = ?8, script = ?9, auth = ?10, cors = ?11, rate_limit = ?12, openapi = ?13,
                 env = ?14
             WHERE id = ?1 AND revision = ?2 RETURNING revision",
        )
        .bind(commit.project_id)
        .bind(commit.base_revision)
        .bind(commit.name)
        .bind(commit.description)
        .bind(commit.mode.as_str())
        .bind(commit.now)
        .bind(commit.journal_size.map(i64::from))
        .bind(backends_json(commit.backends)?)
        .bind(commit.script)
        .bind(auth_json(commit.auth)?)
        .bind(optional_json(commit.cors)?)
        .bind(optional_json(commit.rate_limit)?)
        .bind(optional_json(commit.openapi)?)
        .bind(env_json(commit.env)?)
        .fetch_optional(&mut *tx)
        .await;
        let revision: i64 = match updated {
            Ok(Some(row)) => row.try_get("revision")?,
            Ok(None) => {
                return Err(StoreError::RevisionConflict {
                    expected: commit.base_revision,
                });
            }
            Err(e) if is_unique_violation(&e) => return Err(StoreError::ProjectExists),
            Err(e) => return Err(e.into()),
        };
        match commit.endpoints {
            EndpointOps::None => {}
            EndpointOps::Upsert(endpoint) => {
                insert_endpoint(&mut tx, commit.project_id, endpoint, None).await?
            }
            EndpointOps::Delete(id) => {
                sqlx::query("DELETE FROM endpoints WHERE project_id = ?1 AND id = ?2")
                    .bind(commit.project_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            EndpointOps::ReplaceAll(endpoints) => {
                sqlx::query("DELETE FROM endpoints WHERE project_id = ?1")
                    .bind(commit.project_id)
                    .execute(&mut *tx)
                    .await?;
                for (position, endpoint) in endpoints.iter().enumerate() {
                    insert_endpoint(
                        &mut tx,
                        commit.project_id,
                        endpoint,
                        Some(position as i64 + 1),
                    )
                    .await?;
                }
            }
        }
        match commit.keys {
            KeyOps::None => {}
            KeyOps::Add(key) => {
                let scopes = serde_json::to_string(&key.scopes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO api_keys (id, project_id, name, hash, scopes, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .bind(&key.id)
                .bind(commit.project_id)
                .bind(&key.name)
                .bind(&key.hash)
                .bind(scopes)
                .bind(key.created_at)
                .bind(key.expires_at)
                .execute(&mut *tx)
                .await?;
            }
            KeyOps::Delete(id) => {
                sqlx::query("DELETE FROM api_keys WHERE project_id = ?1 AND id = ?2")
                    .bind(commit.project_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let ops = match &commit.datasets {
            DatasetOps::Many(ops) => *ops,
            one => std::slice::from_ref(one),
        };
        for op in ops {
            match op {
                DatasetOps::None => {}
                DatasetOps::Put {
                    name,
                    version,
                    rows,
                    bytes,
                } => {
                    sqlx::query(
                        "DELETE FROM datasets WHERE project_id = ?1 AND name = ?2 AND current = 1",
                    )
                    .bind(commit.project_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                    let made = sqlx::query(
                        "UPDATE datasets SET current = 1, rows = ?3, bytes = ?4
                         WHERE id = ?1 AND project_id = ?2 AND name = ?5 AND current = 0",
                    )
                    .bind(version)
                    .bind(commit.project_id)
                    .bind(rows)
                    .bind(bytes)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                    if made.rows_affected() != 1 {
                        return Err(StoreError::Corrupt(format!(
                            "dataset version {version} of `{name}` is not an upload in progress"
                        )));
                    }
                }
                DatasetOps::Many(_) => {
                    return Err(StoreError::Corrupt(
                        "a list of dataset changes inside a list".into(),
                    ));
                }
                DatasetOps::Delete(name) => {
                    sqlx::query(
                        "DELETE FROM datasets WHERE project_id = ?1 AND name = ?2 AND current = 1",
                    )
                    .bind(commit.project_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        sqlx::query("INSERT INTO changes (project_id, revision, at, actor_id, summary) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(commit.project_id)
            .bind(revision)
            .bind(commit.now)
            .bind(commit.actor_id)
            .bind(commit.summary)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.checkpointer.wrote();
        Ok(revision)
    }

    async fn delete_project(&self, project_id: i64) -> Result<(), StoreError> {
        let _writing = self.checkpointer.writing().await;
        let done = sqlx::query("DELETE FROM projects WHERE id = ?1")
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn kv_get(&self, project_id: i64, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM kv WHERE project_id = ?1 AND key = ?2")
                .bind(project_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn kv_set(
        &self,
        project_id: i64,
        key: &str,
        value: &str,
        limits: KvLimits,
    ) -> Result<(), StoreError> {
        let _writing = self.checkpointer.writing().await;
        let mut tx = self.pool.begin().await?;
        // What the store holds besides `key`: the limits count what it would hold after.
        let (keys, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0)
             FROM kv WHERE project_id = ?1 AND key <> ?2",
        )
        .bind(project_id)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let keys = u64::try_from(keys).unwrap_or(0) + 1;
        let bytes = u64::try_from(bytes).unwrap_or(0) + (key.len() + value.len()) as u64;
        if keys > limits.max_keys {
            return Err(StoreError::KvFull(format!(
                "the project's kv store is full: at most {} keys",
                limits.max_keys
            )));
        }
        if bytes > limits.max_bytes {
            return Err(StoreError::KvFull(format!(
                "the project's kv store is full: at most {} bytes of keys and values",
                limits.max_bytes
            )));
        }
        sqlx::query(
            "INSERT INTO kv (project_id, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(project_id)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(|error| match error {
            // The project is gone (its row, which the key refers to).
            sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => StoreError::NotFound,
            other => other.into(),
        })?;
        tx.commit().await?;
        self.checkpointer.wrote();
        Ok(())
    }

    async fn kv_delete(&self, project_id: i64, key: &str) -> Result<bool, StoreError> {
        let _writing = self.checkpointer.writing().await;
        let done = sqlx::query("DELETE FROM kv WHERE project_id = ?1 AND key = ?2")
            .bind(project_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        Ok(done.rows_affected() > 0)
    }

    async fn kv_list(
        &self,
        project_id: i64,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // The keys with a prefix are the ones from the prefix on, up to the first without
        // it (keys compare as bytes).
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM kv WHERE project_id = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
        )
        .bind(project_id)
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .take_while(|(key, _)| key.starts_with(prefix))
            .collect())
    }

    async fn dataset_begin(
        &self,
        project_id: i64,
        name: &str,
        format: &str,
        types: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let _writing = self.checkpointer.writing().await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO datasets (project_id, name, format, types, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .bind(project_id)
        .bind(name)
        .bind(format)
        .bind(types)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        self.checkpointer.wrote();
        Ok(id)
    }

    async fn dataset_append(&self, version: i64, seq: i64, data: &[u8]) -> Result<(), StoreError> {
        let _writing = self.checkpointer.writing().await;
        sqlx::query("INSERT INTO dataset_chunks (dataset_id, seq, data) VALUES (?1, ?2, ?3)")
            .bind(version)
            .bind(seq)
            .bind(data)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        Ok(())
    }

    async fn dataset_digest(&self, version: i64, sha256: &str) -> Result<(), StoreError> {
        let _writing = self.checkpointer.writing().await;
        let done = sqlx::query("UPDATE datasets SET sha256 = ?2 WHERE id = ?1 AND current = 0")
            .bind(version)
            .bind(sha256)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn dataset_abandon(&self, version: i64) -> Result<(), StoreError> {
        let _writing = self.checkpointer.writing().await;
        sqlx::query("DELETE FROM datasets WHERE id = ?1 AND current = 0")
            .bind(version)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        Ok(())
    }

    async fn list_datasets(
        &self,
        project_id: Option<i64>,
    ) -> Result<Vec<DatasetRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, project_id, name, format, types, bytes, rows, created_at, sha256 FROM datasets
             WHERE current = 1 AND (?1 IS NULL OR project_id = ?1) ORDER BY project_id, name",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DatasetRecord {
                    version: row.try_get("id")?,
                    project_id: row.try_get("project_id")?,
                    name: row.try_get("name")?,
                    format: row.try_get("format")?,
                    types: row.try_get("types")?,
                    bytes: row.try_get("bytes")?,
                    rows: row.try_get("rows")?,
                    created_at: row.try_get("created_at")?,
                    sha256: row.try_get("sha256")?,
                })
            })
            .collect()
    }

    async fn dataset_chunk(&self, version: i64, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT data FROM dataset_chunks WHERE dataset_id = ?1 AND seq = ?2",
            )
            .bind(version)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    async fn purge_abandoned_datasets(&self) -> Result<u64, StoreError> {
        let _writing = self.checkpointer.writing().await;
        let done = sqlx::query("DELETE FROM datasets WHERE current = 0")
            .execute(&self.pool)
            .await?;
        self.checkpointer.wrote();
        Ok(done.rows_affected())
    }

    async fn list_changes(
        &self,
        project_id: i64,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.revision, c.at, u.username, c.summary
             FROM changes c LEFT JOIN users u ON u.id = c.actor_id
             WHERE c.project_id = ?1 ORDER BY c.revision DESC LIMIT ?2",
        )
        .bind(project_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ChangeRecord {
                    revision: row.try_get("revision")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("username")?,
                    summary: row.try_get("summary")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        (dir, store)
    }

    fn endpoint(id: &str, path: &str) -> Arc<Endpoint> {
        let spec: EndpointSpec = serde_json::from_value(
            serde_json::json!({"method": "GET", "path": path, "response": {}}),
        )
        .unwrap();
        Arc::new(Endpoint::new(id.into(), spec).unwrap())
    }

    /// Project `p` of user `a`, created at time 1.
    fn project_p(owner_id: i64, endpoints: &EndpointList) -> NewProject<'_> {
        NewProject {
            owner_id,
            owner: "a",
            name: "p",
            description: "",
            mode: Mode::Development,
            journal_size: None,
            backends: &[],
            script: None,
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &Env::EMPTY,
            endpoints,
            now: 1,
        }
    }

    #[tokio::test]
    async fn commits_leave_checkpoints_to_the_background_and_close_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .unwrap();
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!((autocheckpoint, journal.as_str()), (0, "wal"));
        assert_eq!(synchronous, 1, "NORMAL");
        for i in 0..CHECKPOINT_EVERY_WRITES {
            store
                .create_user(&format!("u{i}"), "h", None, 1)
                .await
                .unwrap();
        }
        // Closing waits for the checkpoint task (and so for its connection) to end. Whether
        // the WAL file is gone afterwards is SQLite's business: it removes it only when the
        // connection closing is the last one, and the pool closes its connections side by
        // side, so under load none of them may find itself last (a WAL left behind is
        // replayed at the next open).
        tokio::time::timeout(Duration::from_secs(10), store.close())
            .await
            .expect("close returns");
        assert!(
            store
                .checkpointer
                .task
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_none(),
            "the checkpoint task was waited for"
        );
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .unwrap();
        assert!(store.user_by_name("u99").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_first_user_is_admin_and_names_are_unique() {
        let (_dir, store) = store().await;
        let first = store.create_user("a", "h", None, 1).await.unwrap();
        let second = store.create_user("b", "h", None, 1).await.unwrap();
        assert_eq!((first.role, second.role), (Role::Admin, Role::User));
        assert!(matches!(
            store.create_user("a", "h", None, 1).await,
            Err(StoreError::UsernameTaken)
        ));
    }

    #[tokio::test]
    async fn a_commit_on_a_stale_revision_is_refused_and_writes_nothing() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::from(vec![endpoint("one", "/one")]);
        let project = project_p(owner.id, &endpoints);
        let id = store
            .create_project(&project, Some(owner.id))
            .await
            .unwrap();
        let added = endpoint("two", "/two");
        let commit = Commit {
            project_id: id,
            base_revision: 1,
            name: "p",
            description: "",
            mode: Mode::Development,
            journal_size: None,
            backends: &[],
            script: None,
            endpoints: EndpointOps::Upsert(&added),
            datasets: DatasetOps::None,
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &Env::EMPTY,
            keys: KeyOps::None,
            actor_id: Some(owner.id),
            summary: "add two",
            now: 2,
        };
        assert_eq!(store.commit(&commit).await.unwrap(), 2);
        // A second writer that also started from revision 1 must not apply.
        let stale = Commit {
            endpoints: EndpointOps::Delete("one"),
            ..commit
        };
        assert!(matches!(
            store.commit(&stale).await,
            Err(StoreError::RevisionConflict { expected: 1 })
        ));
        let loaded = store.load_projects().await.unwrap();
        let ids: Vec<&str> = loaded[0]
            .project
            .endpoints
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(ids, ["one", "two"], "in insertion order, nothing deleted");
        assert_eq!(loaded[0].project.revision, 2);
        let history = store.list_changes(id, 10).await.unwrap();
        let summaries: Vec<&str> = history.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["add two", "create project"]);
    }

    #[tokio::test]
    async fn a_script_is_stored_with_its_project() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::new();
        let project = NewProject {
            script: Some("app.get('/', () => 1);"),
            ..project_p(owner.id, &endpoints)
        };
        let id = store.create_project(&project, None).await.unwrap();
        let loaded = store.load_projects().await.unwrap();
        assert_eq!(
            loaded[0].project.script.as_deref(),
            Some("app.get('/', () => 1);")
        );
        let commit = Commit {
            project_id: id,
            base_revision: 1,
            name: "p",
            description: "",
            mode: Mode::Development,
            journal_size: None,
            backends: &[],
            script: None,
            endpoints: EndpointOps::None,
            datasets: DatasetOps::None,
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &Env::EMPTY,
            keys: KeyOps::None,
            actor_id: None,
            summary: "remove the script",
            now: 2,
        };
        store.commit(&commit).await.unwrap();
        let loaded = store.load_projects().await.unwrap();
        assert_eq!(loaded[0].project.script, None);
    }

    #[tokio::test]
    async fn a_kv_store_sets_lists_deletes_and_keeps_to_its_limits() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::new();
        let id = store
            .create_project(&project_p(owner.id, &endpoints), None)
            .await
            .unwrap();
        let roomy = KvLimits {
            max_keys: 100,
            max_bytes: 10_000,
        };
        for (key, value) in [
            ("todo:2", "\"b\""),
            ("todo:1", "\"a\""),
            ("other", "1"),
            ("todo;", "2"),
        ] {
            store.kv_set(id, key, value, roomy).await.unwrap();
        }
        assert_eq!(
            store.kv_get(id, "todo:1").await.unwrap().as_deref(),
            Some("\"a\"")
        );
        assert_eq!(store.kv_get(id, "nope").await.unwrap(), None);
        store.kv_set(id, "todo:1", "\"A\"", roomy).await.unwrap();
        let listed = store.kv_list(id, "todo:", 10).await.unwrap();
        assert_eq!(
            listed,
            [
                ("todo:1".to_owned(), "\"A\"".to_owned()),
                ("todo:2".to_owned(), "\"b\"".to_owned())
            ]
        );
        assert_eq!(store.kv_list(id, "todo:", 1).await.unwrap().len(), 1);
        assert_eq!(store.kv_list(id, "", 10).await.unwrap().len(), 4);
        assert!(store.kv_delete(id, "other").await.unwrap());
        assert!(!store.kv_delete(id, "other").await.unwrap());
        // Limits count what the store would hold after the write; a refused write changes
        // nothing, and replacing a key does not count it twice.
        let two = KvLimits {
            max_keys: 3,
            max_bytes: 10_000,
        };
        assert!(matches!(
            store.kv_set(id, "fourth", "1", two).await,
            Err(StoreError::KvFull(message)) if message.contains("3 keys")
        ));
        store.kv_set(id, "todo:2", "\"B\"", two).await.unwrap();
        let small = KvLimits {
            max_keys: 100,
            max_bytes: 40,
        };
        assert!(matches!(
            store.kv_set(id, "big", &"x".repeat(40), small).await,
            Err(StoreError::KvFull(message)) if message.contains("40 bytes")
        ));
        assert_eq!(store.kv_get(id, "big").await.unwrap(), None);
        // Gone with the project; a write for a project that is gone is refused.
        store.delete_project(id).await.unwrap();
        assert_eq!(store.kv_get(id, "todo:1").await.unwrap(), None);
        assert!(matches!(
            store.kv_set(id, "k", "1", roomy).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn replacing_an_endpoint_keeps_its_place() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::from(vec![endpoint("x", "/x"), endpoint("y", "/y")]);
        let project = project_p(owner.id, &endpoints);
        let id = store.create_project(&project, None).await.unwrap();
        let changed = endpoint("x", "/x-changed");
        let commit = Commit {
            project_id: id,
            base_revision: 1,
            name: "p",
            description: "",
            mode: Mode::Development,
            journal_size: None,
            backends: &[],
            script: None,
            endpoints: EndpointOps::Upsert(&changed),
            datasets: DatasetOps::None,
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &Env::EMPTY,
            keys: KeyOps::None,
            actor_id: None,
            summary: "change x",
            now: 2,
        };
        store.commit(&commit).await.unwrap();
        let loaded = store.load_projects().await.unwrap();
        let paths: Vec<&str> = loaded[0]
            .project
            .endpoints
            .iter()
            .map(|e| &*e.spec.path)
            .collect();
        assert_eq!(paths, ["/x-changed", "/y"]);
    }

    #[tokio::test]
    async fn a_dataset_version_becomes_current_in_its_commit_and_replaces_the_old_one() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::new();
        let id = store
            .create_project(&project_p(owner.id, &endpoints), None)
            .await
            .unwrap();
        let put = |version, base_revision| Commit {
            project_id: id,
            base_revision,
            name: "p",
            description: "",
            mode: Mode::Development,
            journal_size: None,
            backends: &[],
            script: None,
            endpoints: EndpointOps::None,
            datasets: DatasetOps::Put {
                name: "iris",
                version,
                rows: 1,
                bytes: 6,
            },
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &Env::EMPTY,
            keys: KeyOps::None,
            actor_id: None,
            summary: "put iris",
            now: 2,
        };
        let first = store
            .dataset_begin(id, "iris", "csv", "[]", 1)
            .await
            .unwrap();
        store.dataset_append(first, 0, b"a\n").await.unwrap();
        store.dataset_append(first, 1, b"1\n").await.unwrap();
        let digest = "ab".repeat(32);
        store.dataset_digest(first, &digest).await.unwrap();
        // Not current until committed.
        assert!(store.list_datasets(Some(id)).await.unwrap().is_empty());
        store.commit(&put(first, 1)).await.unwrap();
        let listed = store.list_datasets(Some(id)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].version, listed[0].rows), (first, 1));
        assert_eq!(
            listed[0].sha256.as_deref(),
            Some(&*digest),
            "the commit keeps the digest"
        );
        // Only an upload in progress takes one, and only 64 lowercase hex digits.
        assert!(matches!(
            store.dataset_digest(first, &digest).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store.dataset_chunk(first, 1).await.unwrap().unwrap(),
            b"1\n"
        );
        assert!(store.dataset_chunk(first, 2).await.unwrap().is_none());
        // A second version replaces the first in one commit; its chunks go with it.
        let second = store
            .dataset_begin(id, "iris", "csv", "[]", 3)
            .await
            .unwrap();
        store.dataset_append(second, 0, b"a\n2\n").await.unwrap();
        for bad in ["AB".repeat(32), "ab".repeat(31), "xy".repeat(32)] {
            assert!(store.dataset_digest(second, &bad).await.is_err(), "{bad}");
        }
        assert_eq!(
            store.list_datasets(None).await.unwrap()[0].version,
            first,
            "the old version stays current while the new one is written"
        );
        store.commit(&put(second, 2)).await.unwrap();
        let listed = store.list_datasets(None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].version, second);
        assert!(store.dataset_chunk(first, 0).await.unwrap().is_none());
        // Making a version current twice is refused, and nothing changes.
        assert!(store.commit(&put(second, 3)).await.is_err());
        // An abandoned upload is dropped, and so is one left over from a stop.
        let third = store
            .dataset_begin(id, "iris", "csv", "[]", 4)
            .await
            .unwrap();
        store.dataset_abandon(third).await.unwrap();
        let _left = store
            .dataset_begin(id, "other", "csv", "[]", 4)
            .await
            .unwrap();
        assert_eq!(store.purge_abandoned_datasets().await.unwrap(), 1);
        // Deleting drops the current version.
        let delete = Commit {
            datasets: DatasetOps::Delete("iris"),
            summary: "delete iris",
            ..put(second, 3)
        };
        store.commit(&delete).await.unwrap();
        assert!(store.list_datasets(None).await.unwrap().is_empty());
    }

    fn env_of(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn every_mode_and_the_env_round_trip() {
        let (dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::new();
        let env = env_of(&[("GREETING", "hello"), ("TOKEN", "s3cret")]);
        let id = store
            .create_project(
                &NewProject {
                    mode: Mode::Staging,
                    env: &env,
                    ..project_p(owner.id, &endpoints)
                },
                None,
            )
            .await
            .unwrap();
        let loaded = store.load_project(id).await.unwrap().unwrap();
        assert_eq!(loaded.project.mode, Mode::Staging);
        assert_eq!(loaded.project.env, env);
        assert_eq!(loaded.problem, None);
        let mut revision = 1;
        for (mode, env) in [
            (Mode::Production, env_of(&[("GREETING", "bonjour")])),
            (Mode::Development, Env::EMPTY),
            (Mode::Staging, env_of(&[("A", "")])),
        ] {
            let commit = Commit {
                project_id: id,
                base_revision: revision,
                name: "p",
                description: "",
                mode,
                journal_size: None,
                backends: &[],
                script: None,
                endpoints: EndpointOps::None,
                datasets: DatasetOps::None,
                auth: &AuthPolicy::None,
                cors: None,
                rate_limit: None,
                openapi: None,
                env: &env,
                keys: KeyOps::None,
                actor_id: None,
                summary: "change mode",
                now: 2,
            };
            revision = store.commit(&commit).await.unwrap();
            let stored: Option<String> =
                sqlx::query_scalar("SELECT env FROM projects WHERE id = ?1")
                    .bind(id)
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
            assert_eq!(stored.is_none(), env.is_empty(), "NULL when empty");
            let loaded = store.load_project(id).await.unwrap().unwrap();
            assert_eq!((loaded.project.mode, &loaded.project.env), (mode, &env));
        }
        // What the store holds is read back after a restart too.
        store.close().await;
        let store = SqliteStore::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        let loaded = store.load_project(id).await.unwrap().unwrap();
        assert_eq!(loaded.project.mode, Mode::Staging);
        assert_eq!(loaded.project.env.get("A"), Some(""));
        // The column refuses a mode it does not know.
        let refused = sqlx::query("UPDATE projects SET mode = 'testing' WHERE id = ?1")
            .bind(id)
            .execute(&store.pool)
            .await;
        assert!(refused.is_err());
    }

    #[tokio::test]
    async fn unreadable_env_breaks_the_project_without_quoting_a_value() {
        let (_dir, store) = store().await;
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = EndpointList::new();
        let id = store
            .create_project(&project_p(owner.id, &endpoints), None)
            .await
            .unwrap();
        sqlx::query(r#"UPDATE projects SET env = '{"TOKEN": ["s3cret"]}' WHERE id = ?1"#)
            .bind(id)
            .execute(&store.pool)
            .await
            .unwrap();
        let loaded = store.load_project(id).await.unwrap().unwrap();
        let problem = loaded.problem.expect("a problem");
        assert!(problem.contains("environment values"), "{problem}");
        assert!(!problem.contains("s3cret"), "{problem}");
    }

    /// A database made by migrations 0001 to 0008 (the schema before `staging` and `env`),
    /// with rows in every table that references `projects`, opened by this version: 0009
    /// replaces the `mode` column in place, and no row goes (and 0010 leaves the stored
    /// dataset version's digest NULL).
    #[tokio::test]
    async fn migration_0009_keeps_every_project_and_the_rows_that_reference_it() {
        let dir = tempfile::tempdir().unwrap();
        let before = dir.path().join("migrations");
        std::fs::create_dir(&before).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(&all).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.as_str() < "0009" {
                std::fs::copy(&path, before.join(&name)).unwrap();
            }
        }
        let path = dir.path().join("t.db");
        {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                .unwrap()
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            let migrator = sqlx::migrate::Migrator::new(before.as_path())
                .await
                .unwrap();
            assert_eq!(migrator.iter().count(), 8);
            migrator.run(&pool).await.unwrap();
            for sql in [
                "INSERT INTO users VALUES (1, 'a', 'h', 'admin', 1)",
                "INSERT INTO projects (id, owner_id, name, description, mode, revision, created_at,
                     updated_at, script, openapi)
                 VALUES (1, 1, 'p', 'd', 'production', 4, 1, 2, 'app.get(\"/\", () => 1);', '{}'),
                        (2, 1, 'q', '', 'development', 1, 1, 1, NULL, NULL)",
                r#"INSERT INTO endpoints VALUES (1, 'e', 1, '{"method": "GET", "path": "/e", "response": {}}')"#,
                "INSERT INTO changes VALUES (1, 1, 1, 1, 'create project'), (1, 4, 2, 1, 'add e')",
                "INSERT INTO kv VALUES (1, 'k', '1')",
                "INSERT INTO api_keys VALUES ('key_1', 1, 'ci', x'01', '[]', 1, NULL)",
                "INSERT INTO datasets VALUES (7, 1, 'iris', 'csv', '[]', 4, 1, 1, 1)",
                "INSERT INTO dataset_chunks VALUES (7, 0, x'612c620a')",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .unwrap();
        let loaded = store.load_projects().await.unwrap();
        assert_eq!(loaded.len(), 2);
        let (p, q) = (&loaded[0], &loaded[1]);
        assert_eq!((p.problem.as_deref(), q.problem.as_deref()), (None, None));
        assert_eq!(
            (p.project.mode, q.project.mode),
            (Mode::Production, Mode::Development)
        );
        assert_eq!(
            (p.project.revision, p.project.description.as_str()),
            (4, "d")
        );
        assert!(p.project.env.is_empty() && q.project.env.is_empty());
        assert!(p.project.script.is_some() && p.project.openapi.is_some());
        assert_eq!(p.project.endpoints.len(), 1);
        assert_eq!(p.keys.len(), 1);
        assert_eq!(store.list_changes(1, 10).await.unwrap().len(), 2);
        assert_eq!(store.kv_get(1, "k").await.unwrap().as_deref(), Some("1"));
        let datasets = store.list_datasets(Some(1)).await.unwrap();
        assert_eq!(datasets.len(), 1);
        assert_eq!(
            datasets[0].sha256, None,
            "0010 leaves the digest of a stored version to the loader"
        );
        assert_eq!(
            store.dataset_chunk(7, 0).await.unwrap().as_deref(),
            Some(&b"a,b\n"[..])
        );
        // And the new column takes the new mode and the env.
        let env = env_of(&[("GREETING", "hi")]);
        let commit = Commit {
            project_id: 2,
            base_revision: 1,
            name: "q",
            description: "",
            mode: Mode::Staging,
            journal_size: None,
            backends: &[],
            script: None,
            endpoints: EndpointOps::None,
            datasets: DatasetOps::None,
            auth: &AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &env,
            keys: KeyOps::None,
            actor_id: None,
            summary: "change mode staging",
            now: 3,
        };
        store.commit(&commit).await.unwrap();
        let q = store.load_project(2).await.unwrap().unwrap();
        assert_eq!((q.project.mode, q.project.env), (Mode::Staging, env));
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
}
