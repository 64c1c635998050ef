//! Projects' scripts on this node: compiling a project's script (`script`, the QuickJS
//! engine) with the node's limits and a key-value store kept in the project's store rows.
//!
//! [`ScriptHost`] is what the change path and the loaders (start, reload) compile scripts
//! with. A script's `kv` calls run on the script's own thread, never on a runtime worker,
//! so [`StoreKv`] may wait for the store there (`Handle::block_on`).

use std::sync::Arc;

use crate::config::ScriptSettings;
use crate::model::Project;
use crate::script::{CompileError, Kv, KvError, Limits, Script};
use crate::store::{KvLimits, Store, StoreError};

/// The longest key a script may use, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The largest value (as JSON) a script may store under one key, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Compiles projects' scripts: the node's limits and store.
#[derive(Clone)]
pub struct ScriptHost {
    store: Arc<dyn Store>,
    limits: Limits,
    kv: KvLimits,
}

impl std::fmt::Debug for ScriptHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHost")
            .field("limits", &self.limits)
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

impl ScriptHost {
    pub fn new(store: Arc<dyn Store>, limits: Limits, kv: KvLimits) -> ScriptHost {
        ScriptHost { store, limits, kv }
    }

    /// A host with the node's settings.
    pub fn from_settings(store: Arc<dyn Store>, settings: &ScriptSettings) -> ScriptHost {
        ScriptHost::new(
            store,
            Limits {
                memory_bytes: settings.memory_bytes,
                cpu_time: settings.cpu_time,
                queue: settings.queue,
            },
            KvLimits {
                max_keys: settings.kv_max_keys,
                max_bytes: settings.kv_max_bytes,
            },
        )
    }

    /// The script `source` of `project` (stored with id `project_id`; 0 while the project
    /// is not stored yet, when kv calls fail until it is), compiled on a thread of its own
    /// with the project's environment values as its `env`.
    pub async fn compile(
        &self,
        project: &Project,
        source: &str,
    ) -> Result<Arc<Script>, CompileError> {
        let kv = Arc::new(StoreKv {
            store: self.store.clone(),
            project_id: project.id,
            limits: self.kv,
            runtime: tokio::runtime::Handle::current(),
        });
        Script::compile(
            &project.mount_key(),
            source,
            self.limits.clone(),
            kv,
            project.env.clone(),
        )
        .await
    }

    /// The project's script, if it has one, compiled; an error as text (for a project
    /// loaded from the store, which then answers 503 until its script is fixed).
    pub async fn compile_stored(&self, project: &Project) -> Option<Result<Arc<Script>, String>> {
        let source = project.script.as_deref()?;
        Some(
            self.compile(project, source)
                .await
                .map_err(|error| format!("its script does not compile: {error}")),
        )
    }
}

/// A project's `kv`, in the store.
struct StoreKv {
    store: Arc<dyn Store>,
    project_id: i64,
    limits: KvLimits,
    runtime: tokio::runtime::Handle,
}

impl StoreKv {
    fn wait<T>(&self, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, KvError> {
        if self.project_id == 0 {
            return Err(KvError::Store(
                "kv is not available while the project is being created".into(),
            ));
        }
        self.runtime.block_on(work).map_err(|error| match error {
            StoreError::KvFull(message) => KvError::Limit(message),
            StoreError::NotFound => KvError::Store("the project no longer exists".into()),
            other => {
                tracing::warn!(project_id = self.project_id, error = %other, "a kv call failed");
                KvError::Store("the key-value store is not available; try again".into())
            }
        })
    }
}

impl Kv for StoreKv {
    fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        self.wait(self.store.kv_get(self.project_id, key))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::Limit(format!(
                "a kv key may be at most {MAX_KEY_BYTES} bytes"
            )));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::Limit(format!(
                "a kv value may be at most {MAX_VALUE_BYTES} bytes as JSON"
            )));
        }
        self.wait(self.store.kv_set(self.project_id, key, value, self.limits))
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.wait(self.store.kv_delete(self.project_id, key))
    }

    fn list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, KvError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.wait(self.store.kv_list(self.project_id, prefix, limit))
    }
}
