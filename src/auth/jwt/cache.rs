//! The verified-token cache: a client that sends the same token again pays a hash, a short
//! shard lock and a byte comparison instead of a signature check.
//!
//! [`SHARDS`] × [`SLOTS`] direct-mapped slots, each shard behind its own `parking_lot`
//! mutex held only to compare and clone one `Arc` (or to store one entry). A token's
//! foldhash (random seed per cache) picks the shard and the slot; an entry keeps the
//! whole token and a hit compares it in full, so a hash collision is only a miss. A new
//! entry replaces whatever held its slot. Entries carry the generation of the key set
//! that verified them, so a key set swapped in by a refresh invalidates them all. The
//! caller still checks time (`exp`, `nbf`) on a hit. Memory: a shard's slots are
//! allocated by its first entry; tokens longer than [`MAX_CACHED_TOKEN`] are not cached.

use std::hash::BuildHasher as _;

use parking_lot::Mutex;

use super::Verified;

/// The number of shards (a power of two).
pub(super) const SHARDS: usize = 64;
/// The number of slots per shard (a power of two).
pub(super) const SLOTS: usize = 64;
/// The longest token kept in the cache, in bytes.
pub(super) const MAX_CACHED_TOKEN: usize = 4096;

struct Entry {
    hash: u64,
    generation: u64,
    token: Box<str>,
    verified: Verified,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Entry>>,
}

pub(super) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn place(&self, token: &str) -> (u64, usize, usize) {
        let hash = self.hasher.hash_one(token.as_bytes());
        let shard = (hash as usize) & (SHARDS - 1);
        let slot = ((hash >> 32) as usize) & (SLOTS - 1);
        (hash, shard, slot)
    }

    /// The cached result for exactly `token`, verified under key set `generation`.
    pub fn get(&self, token: &str, generation: u64) -> Option<Verified> {
        let (hash, shard, slot) = self.place(token);
        let shard = self.shards[shard].lock();
        let entry = shard.slots.get(slot)?.as_ref()?;
        (entry.hash == hash && entry.generation == generation && *entry.token == *token)
            .then(|| entry.verified.clone())
    }

    /// Remembers that `token` verified under key set `generation`.
    pub fn insert(&self, token: &str, generation: u64, verified: Verified) {
        if token.len() > MAX_CACHED_TOKEN {
            return;
        }
        let (hash, shard, slot) = self.place(token);
        let entry = Entry {
            hash,
            generation,
            token: token.into(),
            verified,
        };
        let old = {
            let mut shard = self.shards[shard].lock();
            if shard.slots.is_empty() {
                shard.slots.resize_with(SLOTS, || None);
            }
            shard.slots[slot].replace(entry)
        };
        // The replaced entry is freed outside the lock.
        drop(old);
    }

    /// The number of entries held (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().slots.iter().flatten().count())
            .sum()
    }
}
