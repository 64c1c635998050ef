//! The store: the durable home of users, tokens, projects, endpoints and change history.
//!
//! [`Store`] is the one interface every caller uses; [`sqlite::SqliteStore`] is the embedded
//! implementation (PostgreSQL follows in a later issue behind the same trait, so callers
//! never name a backend). This module is the only home of SQL. It validates nothing: callers
//! hand it definitions `model` has already checked. It is never called on the request path.

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    AuthPolicy, Backend, CorsPolicy, Endpoint, EndpointList, Env, Mode, Project, ProjectDocs,
    RateLimit, Role,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with this name exists")]
    UsernameTaken,
    #[error("the owner already has a project with this name")]
    ProjectExists,
    #[error("the project changed since revision {expected}")]
    RevisionConflict { expected: i64 },
    #[error("no such record")]
    NotFound,
    #[error("unsupported database url `{0}`")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A script's key-value store would grow past its limits.
    #[error("{0}")]
    KvFull(String),
}

/// How much one project's key-value store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    pub max_keys: u64,
    /// Keys and values together, in bytes of UTF-8.
    pub max_bytes: u64,
}

impl StoreError {
    /// Is this a failure to reach the database at all (as opposed to a refused operation)?
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}

/// A stored user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: i64,
}

/// Login sessions and long-lived API tokens share one table and one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Api,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

/// A stored token: never the secret itself, only its SHA-256.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: i64,
    pub kind: TokenKind,
    pub name: String,
    pub hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A project as created: everything but the store's id and revision.
#[derive(Debug, Clone)]
pub struct NewProject<'a> {
    pub owner_id: i64,
    pub owner: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub mode: Mode,
    pub journal_size: Option<u32>,
    pub endpoints: &'a EndpointList,
    pub backends: &'a [Backend],
    pub script: Option<&'a str>,
    pub auth: &'a AuthPolicy,
    pub cors: Option<&'a CorsPolicy>,
    pub rate_limit: Option<&'a RateLimit>,
    pub openapi: Option<&'a ProjectDocs>,
    pub env: &'a Env,
    pub now: i64,
}

/// What one change does to a project's endpoints.
#[derive(Debug, Clone, Copy)]
pub enum EndpointOps<'a> {
    /// Settings only.
    None,
    /// Add this endpoint at the end, or replace the one with its id in place.
    Upsert(&'a Endpoint),
    Delete(&'a str),
    /// Replace every endpoint by these, in this order.
    ReplaceAll(&'a EndpointList),
}

/// One change to one project, committed in one transaction as revision `base_revision + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    pub project_id: i64,
    /// The revision the change was made against; the commit fails if it is not current.
    pub base_revision: i64,
    /// The project's settings after the change.
    pub name: &'a str,
    pub description: &'a str,
    pub mode: Mode,
    pub journal_size: Option<u32>,
    pub endpoints: EndpointOps<'a>,
    /// The project's backends after the change (few: always written whole).
    pub backends: &'a [Backend],
    /// The project's script after the change (written whole).
    pub script: Option<&'a str>,
    /// What the change does to the project's datasets.
    pub datasets: DatasetOps<'a>,
    /// The project's auth policy after the change.
    pub auth: &'a AuthPolicy,
    pub cors: Option<&'a CorsPolicy>,
    pub rate_limit: Option<&'a RateLimit>,
    /// The project's own parts of its OpenAPI document.
    pub openapi: Option<&'a ProjectDocs>,
    /// The project's environment values after the change (written whole).
    pub env: &'a Env,
    /// What the change does to the project's API keys.
    pub keys: KeyOps<'a>,
    /// Who made the change, for the change history.
    pub actor_id: Option<i64>,
    /// One line for the change history (`add GET /hello`).
    pub summary: &'a str,
    pub now: i64,
}

/// What one change does to a project's datasets.
#[derive(Debug, Clone, Copy)]
pub enum DatasetOps<'a> {
    None,
    /// Make the uploaded version `version` (see [`Store::dataset_begin`]) the current one of
    /// `name`, replacing the current one if any, with its final size.
    Put {
        name: &'a str,
        version: i64,
        rows: i64,
        bytes: i64,
    },
    /// Drop the current version of this dataset.
    Delete(&'a str),
    /// Each of these, in order (none of them `Many`).
    Many(&'a [DatasetOps<'a>]),
}

/// What one change does to a project's API keys.
#[derive(Debug, Clone, Copy)]
pub enum KeyOps<'a> {
    None,
    Add(&'a ApiKeyRecord),
    /// Revoke the key with this id.
    Delete(&'a str),
}

/// A project's API key as stored: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub hash: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A dataset version as stored: what it was uploaded as. Its bytes are read back chunk by
/// chunk with [`Store::dataset_chunk`].
#[derive(Debug, Clone)]
pub struct DatasetRecord {
    pub version: i64,
    pub project_id: i64,
    pub name: String,
    /// `csv`, `json` or `jsonl`.
    pub format: String,
    /// The declared column types, JSON: `[["zip", "text"], …]`.
    pub types: String,
    pub bytes: i64,
    pub rows: i64,
    pub created_at: i64,
    /// The SHA-256 of its bytes, 64 lowercase hex digits (see [`Store::dataset_digest`]);
    /// `None` for a version stored before digests were recorded.
    pub sha256: Option<String>,
}

/// One line of a project's change history.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub revision: i64,
    pub at: i64,
    /// The user name of who made it, if the user still exists.
    pub actor: Option<String>,
    pub summary: String,
}

/// A project read back at start: its definition, and what was wrong with it if anything.
/// Endpoints that cannot be read are left out and named in `problem`; the project then
/// answers 503 until a change fixes it, and the rows are kept, never dropped.
#[derive(Debug)]
pub struct LoadedProject {
    pub project: Project,
    /// Whether its owner is an admin (whose backends `--proxy-allow` does not bound).
    pub owner_admin: bool,
    pub problem: Option<String>,
    /// Its API keys.
    pub keys: Vec<ApiKeyRecord>,
}

/// The durable store. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Waits for open work and closes the connections.
    async fn close(&self);

    /// Creates a user. With `role: None` the first user of the instance becomes admin and
    /// every later one a user, decided inside the same transaction.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Option<Role>,
        now: i64,
    ) -> Result<UserRecord, StoreError>;
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The user and token for a token hash, if the token exists and has not expired.
    async fn token_owner(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<(UserRecord, TokenRecord)>, StoreError>;
    async fn list_tokens(
        &self,
        user_id: i64,
        kind: TokenKind,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    /// Deletes one of the user's tokens; false if there was none with that id.
    async fn delete_token(&self, user_id: i64, token_id: &str) -> Result<bool, StoreError>;
    async fn delete_token_by_hash(&self, hash: &[u8]) -> Result<bool, StoreError>;
    /// Drops expired tokens (housekeeping; expired ones are refused anyway).
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError>;

    /// Every project with its endpoints, as at start.
    async fn load_projects(&self) -> Result<Vec<LoadedProject>, StoreError>;
    /// One project with its endpoints, as it is stored now; `None` if it does not exist.
    /// The node reloads a project this way when it finds its copy disagrees with the store.
    async fn load_project(&self, project_id: i64) -> Result<Option<LoadedProject>, StoreError>;
    /// Creates a project at revision 1 and returns its id.
    async fn create_project(
        &self,
        project: &NewProject<'_>,
        actor_id: Option<i64>,
    ) -> Result<i64, StoreError>;
    /// Applies one change and returns the new revision.
    async fn commit(&self, commit: &Commit<'_>) -> Result<i64, StoreError>;
    async fn delete_project(&self, project_id: i64) -> Result<(), StoreError>;
    /// The value (JSON text) of `key` in project `project_id`'s key-value store.
    async fn kv_get(&self, project_id: i64, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets `key` to `value` (JSON text); refused with [`StoreError::KvFull`], nothing
    /// written, when the project's store would then hold more than `limits`.
    async fn kv_set(
        &self,
        project_id: i64,
        key: &str,
        value: &str,
        limits: KvLimits,
    ) -> Result<(), StoreError>;
    /// Removes `key`; whether it was there.
    async fn kv_delete(&self, project_id: i64, key: &str) -> Result<bool, StoreError>;
    /// The first `limit` keys starting with `prefix`, in key order, with their values.
    async fn kv_list(
        &self,
        project_id: i64,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Starts storing a new version of a dataset, beside the current one (which stays
    /// current until a commit with [`DatasetOps::Put`] swaps them); returns its version id.
    async fn dataset_begin(
        &self,
        project_id: i64,
        name: &str,
        format: &str,
        types: &str,
        now: i64,
    ) -> Result<i64, StoreError>;
    /// Adds the next chunk (`seq` counting from 0) of an upload's bytes.
    async fn dataset_append(&self, version: i64, seq: i64, data: &[u8]) -> Result<(), StoreError>;
    /// Records the SHA-256 of an upload's bytes (64 lowercase hex digits) once every chunk
    /// is appended, before the commit that makes the version current; the commit keeps it.
    /// [`StoreError::NotFound`] when `version` is not an upload in progress.
    async fn dataset_digest(&self, version: i64, sha256: &str) -> Result<(), StoreError>;
    /// Drops a version that will not be made current (its upload failed).
    async fn dataset_abandon(&self, version: i64) -> Result<(), StoreError>;
    /// The current version of every dataset of `project_id`, or of every project, by name.
    async fn list_datasets(
        &self,
        project_id: Option<i64>,
    ) -> Result<Vec<DatasetRecord>, StoreError>;
    /// Chunk `seq` of a version's bytes; `None` past the last.
    async fn dataset_chunk(&self, version: i64, seq: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Drops every version no commit made current (uploads cut short by a stop); at start.
    async fn purge_abandoned_datasets(&self) -> Result<u64, StoreError>;

    /// The newest `limit` changes of a project, newest first.
    async fn list_changes(
        &self,
        project_id: i64,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
}

/// Opens the store a `--db` URL names, creating and migrating it as needed.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::UnsupportedUrl(format!(
            "{url}: this build stores in SQLite only (PostgreSQL support is planned)"
        )));
    }
    let store = sqlite::SqliteStore::open(url).await?;
    Ok(Arc::new(store))
}
