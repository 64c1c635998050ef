//! The node side of datasets: uploads streamed into the store and parsed beside the live
//! version, versions read back from the store at start, and the set of a project's datasets
//! that its compiled revision serves from.
//!
//! `dataset` parses and queries tables and knows nothing of the store; this module moves
//! bytes between the request, the store and the importer. An upload's bytes go to the store
//! in chunks of [`CHUNK_BYTES`] as they arrive (a version beside the current one, not yet
//! current) while a blocking thread parses them; nothing is held whole in memory but the
//! parsed table. The change path then swaps the new version in as one project revision
//! (`changes::Changes::put_dataset`), and the store makes it current in that revision's
//! transaction. Queries hold an `Arc` of the version they started on, so a replacement
//! never waits for them, nor they for it.
//!
//! Every version knows the SHA-256 of its bytes: computed by the parsing thread as they
//! stream in, recorded with the version (`Store::dataset_digest`), checked (or, for a
//! version stored before digests were, computed) when it is read back at start, and checked
//! again as [`read_back`] streams the bytes out, so a download is the upload byte for byte or
//! is cut short.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::background::{self, BackgroundError};
use crate::dataset::{ColumnType, Dataset, Format, ImportError, Importer, Limits};
use crate::error::FieldError;
use crate::model::{DatasetAction, DatasetSpec, Docs, Endpoint, EndpointSpec, MethodSpec};
use crate::store::{DatasetRecord, Store, StoreError};

/// An upload's bytes are stored in chunks of this size (the last one smaller).
pub const CHUNK_BYTES: usize = 1 << 20;

/// One version of a dataset, parsed and ready to query.
#[derive(Debug)]
pub struct LoadedDataset {
    pub name: Box<str>,
    /// The store's id of this version.
    pub version: i64,
    pub format: Format,
    /// The size of the upload.
    pub bytes: u64,
    /// When it was uploaded (ms since the Unix epoch).
    pub uploaded_at: i64,
    /// The SHA-256 of the uploaded bytes (the stored chunks, in order).
    pub sha256: [u8; 32],
    pub data: Dataset,
}

impl LoadedDataset {
    pub fn rows(&self) -> usize {
        self.data.table().row_count()
    }

    /// The SHA-256 of the uploaded bytes as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// A digest as 64 lowercase hex digits, as it is stored and shown.
pub fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in digest {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The digest that 64 hex digits write; `None` for anything else.
fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |digit: u8| char::from(digit).to_digit(16);
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(digits.chunks_exact(2)) {
        let high = value(pair[0])?;
        let low = value(pair[1])?;
        *byte = u8::try_from(high << 4 | low).ok()?;
    }
    Some(digest)
}

/// A project's datasets by name, shared between revisions until one of them changes.
#[derive(Debug, Clone, Default)]
pub struct DatasetSet {
    /// Sorted by name.
    items: Arc<[Arc<LoadedDataset>]>,
}

impl DatasetSet {
    /// The datasets given, by name (a later one of a name wins).
    pub fn from_list(list: Vec<Arc<LoadedDataset>>) -> DatasetSet {
        list.into_iter()
            .fold(DatasetSet::default(), |set, dataset| set.with(dataset))
    }

    /// The dataset called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedDataset>> {
        self.items
            .binary_search_by(|d| (*d.name).cmp(name))
            .ok()
            .map(|i| &self.items[i])
    }

    /// This set with `dataset` added, or in place of the one of its name.
    pub fn with(&self, dataset: Arc<LoadedDataset>) -> DatasetSet {
        let mut items = self.items.to_vec();
        match items.binary_search_by(|d| d.name.cmp(&dataset.name)) {
            Ok(i) => items[i] = dataset,
            Err(i) => items.insert(i, dataset),
        }
        DatasetSet {
            items: items.into(),
        }
    }

    /// This set without the dataset called `name`.
    pub fn without(&self, name: &str) -> DatasetSet {
        DatasetSet {
            items: self
                .items
                .iter()
                .filter(|d| &*d.name != name)
                .cloned()
                .collect(),
        }
    }

    /// Every dataset, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedDataset>> {
        self.items.iter()
    }
}

/// The name a format is stored under.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::JsonLines => "jsonl",
    }
}

fn format_named(name: &str) -> Option<Format> {
    match name {
        "csv" => Some(Format::Csv),
        "json" => Some(Format::Json),
        "jsonl" => Some(Format::JsonLines),
        _ => None,
    }
}

/// Dataset names follow the project name rules: 1–64 of `[a-z0-9_-]`, starting with a
/// letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    crate::model::check_backend_name(name)
        .map_err(|_| "a dataset name is 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit".into())
}

/// How large an upload may be and how long its body may pause.
#[derive(Debug, Clone, Copy)]
pub struct UploadSettings {
    pub limits: Limits,
    /// Bytes of one upload.
    pub max_bytes: u64,
    /// The longest the body may stop arriving (the whole upload may take longer).
    pub idle_timeout: Duration,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            limits: Limits::default(),
            max_bytes: 1 << 30,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What is uploaded: its name, format and declared column types.
#[derive(Debug, Clone)]
pub struct Upload {
    pub project_id: i64,
    pub name: String,
    pub format: Format,
    pub declared: Vec<(String, ColumnType)>,
}

/// Why an upload was not taken. Nothing of it is kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Import(ImportError),
    #[error("the upload is larger than the {0} bytes this instance takes")]
    TooLarge(u64),
    #[error("the body stopped arriving for {}", humantime::format_duration(*.0))]
    Stalled(Duration),
    #[error("could not read the body: {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the import stopped unexpectedly")]
    Internal,
    #[error(transparent)]
    Background(#[from] BackgroundError),
}

/// Reads an upload's `body` to its end: stores its bytes as a new version (not current)
/// with their SHA-256, and parses them on a blocking thread. On any failure the version is
/// dropped again.
pub async fn receive<S, E>(
    store: &dyn Store,
    upload: &Upload,
    body: S,
    settings: &UploadSettings,
    now: i64,
) -> Result<LoadedDataset, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let types = serde_json::to_string(&upload.declared).map_err(|_| UploadError::Internal)?;
    let version = store
        .dataset_begin(
            upload.project_id,
            &upload.name,
            format_name(upload.format),
            &types,
            now,
        )
        .await?;
    let received = store_and_parse(Some((store, version)), upload, body, settings).await;
    match received {
        Ok((data, bytes, sha256)) => Ok(LoadedDataset {
            name: upload.name.clone().into(),
            version,
            format: upload.format,
            bytes,
            uploaded_at: now,
            sha256,
            data,
        }),
        Err(error) => {
            abandon(store, version).await;
            Err(error)
        }
    }
}

/// Reads an upload's `body` to its end and parses it (SHA-256 too) without storing a byte:
/// the dry run of a project that does not exist yet, which has nowhere to store a version.
/// The dataset's `version` is 0.
pub async fn parse<S, E>(
    upload: &Upload,
    body: S,
    settings: &UploadSettings,
    now: i64,
) -> Result<LoadedDataset, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (data, bytes, sha256) = store_and_parse(None, upload, body, settings).await?;
    Ok(LoadedDataset {
        name: upload.name.clone().into(),
        version: 0,
        format: upload.format,
        bytes,
        uploaded_at: now,
        sha256,
        data,
    })
}

/// Builds the category indexes of `columns` (those the project's endpoints group by) on a
/// background thread, so that the first query after the swap does not pay for them.
pub async fn warm(dataset: &Arc<LoadedDataset>, columns: Vec<String>) {
    let dataset = dataset.clone();
    let built = background::spawn("sy-dataset-index", move || {
        let table = dataset.data.table();
        for column in columns {
            if let Some(index) = table.column_index(&column) {
                dataset.data.category_index(index);
            }
        }
    });
    let built = match built {
        Ok(job) => job.join().await,
        Err(error) => Err(error),
    };
    if let Err(error) = built {
        tracing::warn!(%error, "building a dataset's category index failed");
    }
}

/// Drops an uploaded version that will not be made current.
pub async fn abandon(store: &dyn Store, version: i64) {
    if let Err(error) = store.dataset_abandon(version).await {
        // Dropped at the next start instead (`purge_abandoned_datasets`).
        tracing::warn!(%error, version, "could not drop an abandoned dataset upload");
    }
}

/// The importer on a background thread (idle priority: parsing a large file must take
/// neither an async worker nor CPU time that requests want), fed through a small channel.
/// The same thread hashes the bytes it is fed (SHA-256), in order.
struct Parser {
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    done: background::Job<Result<(Dataset, [u8; 32]), ImportError>>,
}

impl Parser {
    fn start(
        format: Format,
        declared: Vec<(String, ColumnType)>,
        limits: Limits,
    ) -> Result<Parser, BackgroundError> {
        let (chunks, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let done = background::spawn("sy-dataset-parse", move || {
            let mut importer = Importer::new(format, declared, limits);
            let mut hasher = Sha256::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                importer.feed(&chunk)?;
            }
            let table = importer.finish()?;
            Ok((Dataset::new(table), hasher.finalize().into()))
        })?;
        Ok(Parser { chunks, done })
    }

    /// Hands on a chunk; `false` if the parser stopped (on an error, which `finish` gives).
    async fn feed(&self, chunk: Bytes) -> bool {
        self.chunks.send(chunk).await.is_ok()
    }

    /// The parsed table and the SHA-256 of every byte fed.
    async fn finish(self) -> Result<(Dataset, [u8; 32]), UploadError> {
        drop(self.chunks);
        match self.done.join().await {
            Ok(result) => result.map_err(UploadError::Import),
            Err(error) => Err(UploadError::Background(error)),
        }
    }
}

/// Stores the body's bytes as chunks of `version` (in `sink`: a store and a version; `None`:
/// nowhere) while the parsing thread parses and hashes them, then records their digest: the
/// table, the size and the SHA-256.
async fn store_and_parse<S, E>(
    sink: Option<(&dyn Store, i64)>,
    upload: &Upload,
    mut body: S,
    settings: &UploadSettings,
) -> Result<(Dataset, u64, [u8; 32]), UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let parser = Parser::start(upload.format, upload.declared.clone(), settings.limits)?;
    let mut pending = BytesMut::new();
    let mut seq = 0i64;
    let mut total = 0u64;
    loop {
        let next = tokio::time::timeout(settings.idle_timeout, body.next())
            .await
            .map_err(|_| UploadError::Stalled(settings.idle_timeout))?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        total += chunk.len() as u64;
        if total > settings.max_bytes {
            return Err(UploadError::TooLarge(settings.max_bytes));
        }
        if sink.is_some() {
            pending.extend_from_slice(&chunk);
        }
        if !parser.feed(chunk).await {
            // The parser stopped at an error: that error is the answer.
            return Err(match parser.finish().await {
                Err(error) => error,
                Ok(_) => UploadError::Internal,
            });
        }
        if let Some((store, version)) = sink {
            while pending.len() >= CHUNK_BYTES {
                let piece = pending.split_to(CHUNK_BYTES);
                store.dataset_append(version, seq, &piece).await?;
                seq += 1;
            }
        }
    }
    if let Some((store, version)) = sink
        && !pending.is_empty()
    {
        store.dataset_append(version, seq, &pending).await?;
    }
    let (data, sha256) = parser.finish().await?;
    if let Some((store, version)) = sink {
        store.dataset_digest(version, &hex(&sha256)).await?;
    }
    Ok((data, total, sha256))
}

/// Why a stored version could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("stored dataset `{name}` has an unknown format `{format}`")]
    Format { name: String, format: String },
    #[error("stored dataset `{name}`: {message}")]
    Corrupt { name: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a stored version back: its chunks in order, parsed as at its upload (with limits
/// no lower than any it was taken under) and hashed. The digest recorded at the upload must
/// be theirs; a version stored before digests were recorded gets the one computed here (in
/// memory: the row is not written).
pub async fn load(store: &dyn Store, record: &DatasetRecord) -> Result<LoadedDataset, LoadError> {
    let format = format_named(&record.format).ok_or_else(|| LoadError::Format {
        name: record.name.clone(),
        format: record.format.clone(),
    })?;
    let corrupt = |message: String| LoadError::Corrupt {
        name: record.name.clone(),
        message,
    };
    let declared: Vec<(String, ColumnType)> =
        serde_json::from_str(&record.types).map_err(|e| corrupt(e.to_string()))?;
    let limits = Limits {
        max_rows: usize::MAX,
        max_columns: usize::MAX,
        max_field_bytes: usize::MAX / 4,
    };
    let parser = Parser::start(format, declared, limits).map_err(|e| corrupt(e.to_string()))?;
    let mut seq = 0;
    let mut bytes = 0u64;
    while let Some(chunk) = store.dataset_chunk(record.version, seq).await? {
        bytes += chunk.len() as u64;
        if !parser.feed(Bytes::from(chunk)).await {
            break;
        }
        seq += 1;
    }
    let (data, sha256) = parser.finish().await.map_err(|e| corrupt(e.to_string()))?;
    if let Some(recorded) = &record.sha256
        && parse_hex(recorded) != Some(sha256)
    {
        return Err(corrupt(format!(
            "its bytes hash to {}, not to the SHA-256 recorded at its upload ({recorded})",
            hex(&sha256)
        )));
    }
    Ok(LoadedDataset {
        name: record.name.clone().into(),
        version: record.version,
        format,
        bytes,
        uploaded_at: record.created_at,
        sha256,
        data,
    })
}

/// Why a version's bytes could not be streamed back whole. The stream stops at it: a
/// download cut short, never one with other bytes.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its chunks are gone, or are not the bytes of its upload: the version was replaced or
    /// deleted while it was read.
    #[error("dataset version {version} changed while it was read back")]
    Changed { version: i64 },
}

/// The bytes of `dataset` as they were uploaded: its chunks, read from `store` one at a
/// time as the stream is polled and handed on in pieces of at most `frame` bytes (sharing
/// the chunk, not copying it). One chunk is held at a time, whatever the dataset's size.
///
/// The bytes are counted and hashed as they are read, and the last chunk is handed on only
/// once the whole has the dataset's size and SHA-256; otherwise the stream ends with
/// [`ReadBackError::Changed`] (a replacement or deletion dropped the chunks, or the store
/// gave the version's id to a newer upload).
pub fn read_back(
    store: Arc<dyn Store>,
    dataset: &LoadedDataset,
    frame: usize,
) -> impl Stream<Item = Result<Bytes, ReadBackError>> + Send + 'static {
    let state = ReadBack {
        store,
        version: dataset.version,
        seq: 0,
        left: dataset.bytes,
        hasher: Sha256::new(),
        sha256: dataset.sha256,
        rest: Bytes::new(),
        frame: frame.max(1),
        done: false,
    };
    futures_util::stream::unfold(state, ReadBack::step)
}

/// Where [`read_back`] is.
struct ReadBack {
    store: Arc<dyn Store>,
    version: i64,
    /// The next chunk to read.
    seq: i64,
    /// Bytes not read yet.
    left: u64,
    /// Of the bytes read so far.
    hasher: Sha256,
    /// What the whole must hash to.
    sha256: [u8; 32],
    /// Read and checked, not handed on yet.
    rest: Bytes,
    frame: usize,
    /// Every chunk is read, or the stream failed.
    done: bool,
}

impl ReadBack {
    async fn step(mut self) -> Option<(Result<Bytes, ReadBackError>, ReadBack)> {
        if self.rest.is_empty() {
            if self.done {
                return None;
            }
            if let Err(error) = self.read().await {
                self.done = true;
                return Some((Err(error), self));
            }
            if self.rest.is_empty() {
                return None;
            }
        }
        let piece = self.rest.split_to(self.rest.len().min(self.frame));
        Some((Ok(piece), self))
    }

    /// Reads the next chunk into `rest`, checking the size and, at the end, the digest
    /// before any of the last chunk is handed on.
    async fn read(&mut self) -> Result<(), ReadBackError> {
        let changed = ReadBackError::Changed {
            version: self.version,
        };
        if self.left > 0 {
            let Some(chunk) = self.store.dataset_chunk(self.version, self.seq).await? else {
                return Err(changed);
            };
            let size = chunk.len() as u64;
            if size == 0 || size > self.left {
                return Err(changed);
            }
            self.seq += 1;
            self.left -= size;
            self.hasher.update(&chunk);
            self.rest = Bytes::from(chunk);
        }
        if self.left == 0 {
            self.done = true;
            let whole: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if whole != self.sha256 {
                self.rest = Bytes::new();
                return Err(changed);
            }
        }
        Ok(())
    }
}

/// Every current dataset of every project, read back (each parsed on a blocking thread,
/// side by side), by project id. One that cannot be read is left out and logged: the
/// endpoints that use it answer `409 dataset_missing` until it is uploaded again.
pub async fn load_all(
    store: &dyn Store,
) -> Result<std::collections::HashMap<i64, DatasetSet>, StoreError> {
    if let Err(error) = store.purge_abandoned_datasets().await {
        tracing::warn!(%error, "could not drop unfinished dataset uploads");
    }
    let records = store.list_datasets(None).await?;
    let loaded = futures_util::future::join_all(
        records
            .iter()
            .map(|record| async move { (record.project_id, load(store, record).await) }),
    )
    .await;
    let mut by_project: std::collections::HashMap<i64, Vec<Arc<LoadedDataset>>> =
        std::collections::HashMap::new();
    for (project_id, result) in loaded {
        match result {
            Ok(dataset) => by_project
                .entry(project_id)
                .or_default()
                .push(Arc::new(dataset)),
            Err(error) => {
                tracing::error!(%error, project_id, "a stored dataset cannot be read; its endpoints answer 409");
            }
        }
    }
    Ok(by_project
        .into_iter()
        .map(|(id, list)| (id, DatasetSet::from_list(list)))
        .collect())
}

/// The current datasets of one project as the store has them, taking each version the node
/// already holds from `served` rather than reading it again.
pub async fn load_project(
    store: &dyn Store,
    project_id: i64,
    served: Option<&DatasetSet>,
) -> Result<DatasetSet, StoreError> {
    let records = store.list_datasets(Some(project_id)).await?;
    let mut list = Vec::with_capacity(records.len());
    for record in &records {
        // The same version: the same row id, and (a deleted version's id may be given to the
        // next upload) the same upload time and digest.
        let held = served.and_then(|set| set.get(&record.name)).filter(|d| {
            d.version == record.version
                && d.uploaded_at == record.created_at
                && record.sha256.as_deref().is_none_or(|s| s == d.sha256_hex())
        });
        match held {
            Some(dataset) => list.push(dataset.clone()),
            None => match load(store, record).await {
                Ok(dataset) => list.push(Arc::new(dataset)),
                Err(error) => {
                    tracing::error!(%error, project_id, "a stored dataset cannot be read; its endpoints answer 409");
                }
            },
        }
    }
    Ok(DatasetSet::from_list(list))
}

/// The declared column types of an upload's `?types=zip:text,age:integer`.
pub fn parse_types(given: Option<&str>) -> Result<Vec<(String, ColumnType)>, Vec<FieldError>> {
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut declared: Vec<(String, ColumnType)> = Vec::new();
    for item in given.split(',') {
        let bad = |message: String| vec![FieldError::new("query.types", message)];
        let (column, ty) = item
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("`{item}` is not `column:type`")))?;
        let ty = match ty.trim() {
            "integer" => ColumnType::Integer,
            "number" => ColumnType::Number,
            "text" => ColumnType::Text,
            "boolean" => ColumnType::Boolean,
            other => {
                return Err(bad(format!(
                    "`{other}` is not a type: integer, number, text or boolean"
                )));
            }
        };
        let column = column.trim();
        if column.is_empty() {
            return Err(bad(format!("`{item}` names no column")));
        }
        if declared.iter().any(|(c, _)| c == column) {
            return Err(bad(format!("column `{column}` is declared twice")));
        }
        declared.push((column.to_owned(), ty));
    }
    Ok(declared)
}

/// The standard endpoints of `?endpoints=default`: `POST` and `GET /range`, `POST` and
/// `GET /stats/{op}`, `GET /schema`, under `prefix`, with ids `{dataset}-range` etc.
pub fn default_endpoints(
    dataset: &LoadedDataset,
    category: Option<&str>,
    prefix: Option<&str>,
) -> Result<Vec<Endpoint>, Vec<FieldError>> {
    let table = dataset.data.table();
    let category = match category {
        Some(column) => {
            if table.column_index(column).is_none() {
                return Err(vec![FieldError::new(
                    "query.category",
                    format!("the dataset has no column `{column}`"),
                )]);
            }
            Some(column.to_owned())
        }
        None => table
            .columns()
            .iter()
            .find(|c| c.ty == ColumnType::Text)
            .map(|c| c.name.clone()),
    };
    let prefix = prefix.unwrap_or("").trim_end_matches('/');
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(vec![FieldError::new(
            "query.prefix",
            "a path prefix starts with `/`",
        )]);
    }
    let name = &*dataset.name;
    let by = category
        .as_deref()
        .map(|c| format!(", filtered by `{c}`"))
        .unwrap_or_default();
    let grouped = category
        .as_deref()
        .map(|c| format!(", grouped by `{c}`"))
        .unwrap_or_default();
    let specs = [
        (
            "range",
            "POST",
            "/range",
            DatasetAction::Query,
            format!("Rows of `{name}`{by} and bounded by column (JSON body)"),
        ),
        (
            "range-get",
            "GET",
            "/range",
            DatasetAction::Query,
            format!("Rows of `{name}`{by} and bounded by column (query parameters)"),
        ),
        (
            "stats",
            "POST",
            "/stats/{op}",
            DatasetAction::Stats,
            format!("Statistics of `{name}`'s numeric columns{grouped} (JSON body)"),
        ),
        (
            "stats-get",
            "GET",
            "/stats/{op}",
            DatasetAction::Stats,
            format!("Statistics of `{name}`'s numeric columns{grouped} (query parameters)"),
        ),
        (
            "schema",
            "GET",
            "/schema",
            DatasetAction::Schema,
            format!("The columns of `{name}`, their types and the row count"),
        ),
    ];
    let mut endpoints = Vec::with_capacity(specs.len());
    for (suffix, method, path, action, summary) in specs {
        let spec = EndpointSpec {
            id: None,
            method: MethodSpec::parse(method).map_err(|m| vec![FieldError::new("method", m)])?,
            path: format!("{prefix}{path}").into(),
            handler: crate::model::HandlerSpec::Dataset(Box::new(DatasetSpec {
                name: name.to_owned(),
                action,
                category: if action == DatasetAction::Schema {
                    None
                } else {
                    category.clone()
                },
                label_key: None,
                op: None,
            })),
            docs: Some(Box::new(Docs {
                summary: Some(summary.into()),
                description: None,
                tags: vec![Box::<str>::from(name)].into(),
                operation: Default::default(),
            })),
            auth: None,
        };
        let id = format!("{name}-{suffix}");
        let endpoint = crate::changes::prepare_endpoint(spec, "", Some(&id))?;
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Dataset {
        let mut importer = Importer::new(Format::Csv, Vec::new(), Limits::default());
        importer.feed(b"a\n1\n").unwrap();
        Dataset::new(importer.finish().unwrap())
    }

    fn dataset(name: &str, version: i64) -> Arc<LoadedDataset> {
        Arc::new(LoadedDataset {
            name: name.into(),
            version,
            format: Format::Csv,
            bytes: 4,
            uploaded_at: 0,
            sha256: [0; 32],
            data: table(),
        })
    }

    #[test]
    fn a_set_finds_by_name_replaces_in_place_and_removes() {
        let set = DatasetSet::from_list(vec![dataset("b", 1), dataset("a", 2), dataset("c", 3)]);
        let names: Vec<&str> = set.iter().map(|d| &*d.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(set.get("b").map(|d| d.version), Some(1));
        let replaced = set.with(dataset("b", 9));
        assert_eq!(replaced.get("b").map(|d| d.version), Some(9));
        assert_eq!(
            set.get("b").map(|d| d.version),
            Some(1),
            "the old set is unchanged"
        );
        let removed = replaced.without("a");
        assert!(removed.get("a").is_none());
        assert_eq!(removed.iter().count(), 2);
        assert!(DatasetSet::default().get("a").is_none());
    }

    #[test]
    fn declared_types_parse_and_bad_ones_name_the_parameter() {
        assert_eq!(parse_types(None).unwrap(), vec![]);
        assert_eq!(parse_types(Some("")).unwrap(), vec![]);
        assert_eq!(
            parse_types(Some("zip:text, age : integer,a:b:boolean")).unwrap(),
            vec![
                ("zip".to_owned(), ColumnType::Text),
                ("age".to_owned(), ColumnType::Integer),
                ("a:b".to_owned(), ColumnType::Boolean),
            ]
        );
        for bad in ["zip", "zip:colour", ":text", "a:text,a:number"] {
            let errors = parse_types(Some(bad)).unwrap_err();
            assert_eq!(errors[0].field, "query.types", "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn declared_types_never_panic(spec in ".{0,64}") {
            let _ = parse_types(Some(&spec));
        }
    }

    #[test]
    fn default_endpoints_take_the_first_text_column_and_a_prefix() {
        let mut importer = Importer::new(Format::Csv, Vec::new(), Limits::default());
        importer.feed(b"n,kind,w\n1,x,2\n").unwrap();
        let loaded = LoadedDataset {
            name: "t".into(),
            version: 1,
            format: Format::Csv,
            bytes: 0,
            uploaded_at: 0,
            sha256: [0; 32],
            data: Dataset::new(importer.finish().unwrap()),
        };
        let endpoints = default_endpoints(&loaded, None, Some("/t/")).unwrap();
        let routes: Vec<String> = endpoints
            .iter()
            .map(|e| format!("{} {} {}", e.id, e.spec.method.as_str(), e.spec.path))
            .collect();
        assert_eq!(
            routes,
            [
                "t-range POST /t/range",
                "t-range-get GET /t/range",
                "t-stats POST /t/stats/{op}",
                "t-stats-get GET /t/stats/{op}",
                "t-schema GET /t/schema",
            ]
        );
        let category = endpoints[0]
            .spec
            .handler
            .dataset()
            .unwrap()
            .category
            .clone();
        assert_eq!(category.as_deref(), Some("kind"));
        assert_eq!(
            default_endpoints(&loaded, Some("nope"), None).unwrap_err()[0].field,
            "query.category"
        );
        assert_eq!(
            default_endpoints(&loaded, None, Some("t")).unwrap_err()[0].field,
            "query.prefix"
        );
    }

    #[test]
    fn digests_are_written_and_read_as_64_lowercase_hex_digits() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let text = hex(&digest);
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_hex(&text), Some(digest));
        assert_eq!(parse_hex(&text.to_uppercase()), Some(digest));
        for bad in ["", "ab", &text[1..], &format!("{text}0"), &"g".repeat(64)] {
            assert_eq!(parse_hex(bad), None, "{bad}");
        }
    }

    /// A store with one project, and a version of dataset `t` in it holding `chunks`.
    async fn stored(chunks: &[&[u8]]) -> (tempfile::TempDir, Arc<dyn Store>, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = crate::store::open(&path.display().to_string())
            .await
            .unwrap();
        let owner = store.create_user("a", "h", None, 1).await.unwrap();
        let endpoints = crate::model::EndpointList::new();
        let project = store
            .create_project(
                &crate::store::NewProject {
                    owner_id: owner.id,
                    owner: "a",
                    name: "p",
                    description: "",
                    mode: crate::model::Mode::Development,
                    journal_size: None,
                    endpoints: &endpoints,
                    backends: &[],
                    script: None,
                    auth: &crate::model::AuthPolicy::None,
                    cors: None,
                    rate_limit: None,
                    openapi: None,
                    env: &crate::model::Env::EMPTY,
                    now: 1,
                },
                None,
            )
            .await
            .unwrap();
        let version = store
            .dataset_begin(project, "t", "csv", "[]", 1)
            .await
            .unwrap();
        for (seq, chunk) in chunks.iter().enumerate() {
            store
                .dataset_append(version, seq as i64, chunk)
                .await
                .unwrap();
        }
        (dir, store, project, version)
    }

    fn record(project_id: i64, version: i64, sha256: Option<String>) -> DatasetRecord {
        DatasetRecord {
            version,
            project_id,
            name: "t".into(),
            format: "csv".into(),
            types: "[]".into(),
            bytes: 0,
            rows: 0,
            created_at: 1,
            sha256,
        }
    }

    async fn read_all(
        store: &Arc<dyn Store>,
        dataset: &LoadedDataset,
        frame: usize,
    ) -> (Vec<u8>, Vec<usize>, Option<ReadBackError>) {
        let mut stream = std::pin::pin!(read_back(store.clone(), dataset, frame));
        let (mut bytes, mut sizes) = (Vec::new(), Vec::new());
        while let Some(next) = stream.next().await {
            match next {
                Ok(piece) => {
                    sizes.push(piece.len());
                    bytes.extend_from_slice(&piece);
                }
                Err(error) => {
                    assert!(stream.next().await.is_none(), "nothing after an error");
                    return (bytes, sizes, Some(error));
                }
            }
        }
        (bytes, sizes, None)
    }

    #[tokio::test]
    async fn a_version_read_back_computes_or_checks_its_digest_and_streams_its_bytes() {
        let (_dir, store, project, version) = stored(&[b"a,b\n1,", b"2\n3,4", b"\n"]).await;
        let whole: [u8; 32] = Sha256::digest(b"a,b\n1,2\n3,4\n").into();
        // Stored before digests were recorded: computed from the chunks.
        let loaded = load(&*store, &record(project, version, None))
            .await
            .unwrap();
        assert_eq!((loaded.sha256, loaded.bytes, loaded.rows()), (whole, 12, 2));
        // Recorded: checked.
        let recorded = record(project, version, Some(hex(&whole)));
        assert_eq!(load(&*store, &recorded).await.unwrap().sha256, whole);
        let wrong = record(project, version, Some("0".repeat(64)));
        assert!(matches!(
            load(&*store, &wrong).await,
            Err(LoadError::Corrupt { .. })
        ));
        // Streamed back whole, in pieces no larger than asked, one chunk at a time.
        let (bytes, sizes, error) = read_all(&store, &loaded, 4).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(bytes, b"a,b\n1,2\n3,4\n");
        assert_eq!(sizes, [4, 2, 4, 1, 1]);
        // Other bytes than the digest says: cut short before the last chunk.
        let other = LoadedDataset {
            sha256: [7; 32],
            ..load(&*store, &record(project, version, None))
                .await
                .unwrap()
        };
        let (bytes, _, error) = read_all(&store, &other, 1 << 20).await;
        assert_eq!(bytes, b"a,b\n1,2\n3,4");
        assert!(matches!(error, Some(ReadBackError::Changed { .. })));
        // Fewer bytes than the size says (chunks gone): cut short too.
        let longer = LoadedDataset {
            bytes: 13,
            ..load(&*store, &record(project, version, None))
                .await
                .unwrap()
        };
        let (bytes, _, error) = read_all(&store, &longer, 1 << 20).await;
        assert_eq!(bytes.len(), 12);
        assert!(matches!(error, Some(ReadBackError::Changed { .. })));
        store.dataset_abandon(version).await.unwrap();
        let (bytes, _, error) = read_all(&store, &loaded, 1 << 20).await;
        assert!(bytes.is_empty());
        assert!(matches!(error, Some(ReadBackError::Changed { .. })));
    }

    #[tokio::test]
    async fn an_upload_records_the_digest_of_the_bytes_it_stored() {
        let (_dir, store, project, _) = stored(&[]).await;
        // The digest is of the bytes whatever pieces they came in, and it is on the
        // version's row, which the commit makes current.
        let loaded = put_or_drop(&store, project, 1, Some(&[b"x,y\n1,", b"2\n", b"3,4\n"]), 2)
            .await
            .unwrap();
        let whole: [u8; 32] = Sha256::digest(b"x,y\n1,2\n3,4\n").into();
        assert_eq!((loaded.sha256, loaded.bytes), (whole, 12));
        let listed = store.list_datasets(Some(project)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].sha256.as_deref(), Some(&*hex(&whole)));
        assert_eq!(load(&*store, &listed[0]).await.unwrap().sha256, whole);
    }

    /// Uploads `pieces` (one CSV) as dataset `u` of `project` and makes it current (or drops `u`, for
    /// `None`) in the commit on top of `base`.
    async fn put_or_drop(
        store: &Arc<dyn Store>,
        project: i64,
        base: i64,
        pieces: Option<&[&'static [u8]]>,
        now: i64,
    ) -> Option<LoadedDataset> {
        let loaded = match pieces {
            Some(pieces) => {
                let upload = Upload {
                    project_id: project,
                    name: "u".into(),
                    format: Format::Csv,
                    declared: Vec::new(),
                };
                let body = futures_util::stream::iter(
                    pieces
                        .iter()
                        .map(|p| Ok::<_, std::convert::Infallible>(Bytes::from_static(p)))
                        .collect::<Vec<_>>(),
                );
                Some(
                    receive(&**store, &upload, body, &UploadSettings::default(), now)
                        .await
                        .unwrap(),
                )
            }
            None => None,
        };
        let datasets = match &loaded {
            Some(loaded) => crate::store::DatasetOps::Put {
                name: "u",
                version: loaded.version,
                rows: loaded.rows() as i64,
                bytes: loaded.bytes as i64,
            },
            None => crate::store::DatasetOps::Delete("u"),
        };
        let commit = crate::store::Commit {
            project_id: project,
            base_revision: base,
            name: "p",
            description: "",
            mode: crate::model::Mode::Development,
            journal_size: None,
            endpoints: crate::store::EndpointOps::None,
            backends: &[],
            script: None,
            datasets,
            auth: &crate::model::AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: &crate::model::Env::EMPTY,
            keys: crate::store::KeyOps::None,
            actor_id: None,
            summary: "u",
            now,
        };
        store.commit(&commit).await.unwrap();
        loaded
    }

    #[tokio::test]
    async fn a_version_whose_id_was_reused_is_read_again_not_taken_from_the_served_set() {
        let (_dir, store, project, _) = stored(&[]).await;
        let first = put_or_drop(&store, project, 1, Some(&[b"x,y\n1,2\n"]), 10)
            .await
            .unwrap();
        let served = DatasetSet::from_list(vec![Arc::new(first)]);
        let first = served.get("u").unwrap().clone();
        put_or_drop(&store, project, 2, None, 11).await;
        let second = put_or_drop(&store, project, 3, Some(&[b"x,y\n3,4\n5,6\n"]), 12)
            .await
            .unwrap();
        // SQLite gives the dropped version's row id to the next upload.
        assert_eq!(second.version, first.version, "the id is reused");
        let loaded = load_project(&*store, project, Some(&served)).await.unwrap();
        let now = loaded.get("u").unwrap();
        assert_eq!((now.rows(), now.sha256), (2, second.sha256));
        // The version the node holds is still taken as it is.
        let again = load_project(&*store, project, Some(&loaded)).await.unwrap();
        assert!(Arc::ptr_eq(again.get("u").unwrap(), now));
    }
}
