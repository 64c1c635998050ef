//! The key-value store a script sees as `kv`: the trait the store implements, and an
//! in-memory implementation for tests and for scripts that have no store.
//!
//! Values cross this boundary as JSON text; the script thread parses and serialises them.
//! Implementations enforce their own size limits (answering [`KvError::Limit`]) and are
//! called synchronously from the script's thread, never from an async worker.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A project's persisted key-value store; values are JSON text.
pub trait Kv: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<String>, KvError>;
    fn set(&self, key: &str, value: &str) -> Result<(), KvError>;
    /// Whether the key was there.
    fn delete(&self, key: &str) -> Result<bool, KvError>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, KvError>;
}

/// A `kv` operation that failed. The message is shown to the script (as the message of the
/// exception it throws), so it should say what to do.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A size limit was hit, e.g. "kv is full: the project may store at most 1 MiB".
    #[error("{0}")]
    Limit(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// An in-memory [`Kv`], lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, String>>,
}

impl MemoryKv {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Kv for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self.entries().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), KvError> {
        self.entries().insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.entries().remove(key).is_some())
    }

    fn list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, KvError> {
        Ok(self
            .entries()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }
}
