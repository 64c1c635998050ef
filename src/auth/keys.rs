//! A project's API keys: made here, kept by the store as their SHA-256 only, and held by
//! each compiled revision as a [`KeySet`] that the policy stage looks keys up in.
//!
//! A key reads `syk_` + a 12-character id + a 43-character secret (base64url of 9 and 32
//! random bytes). The id is public (it names the key in listings and in `DELETE`); the
//! secret is shown once, when the key is made. A presented key is found by its id, then its
//! secret's SHA-256 is compared with the stored one in constant time.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::ApiKeyRecord;

/// What every key starts with.
pub const PREFIX: &str = "syk_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;
/// The length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + SECRET_LEN;

/// A key just made: the whole key (shown once) and what the store keeps.
pub struct NewKey {
    pub key: String,
    pub record: ApiKeyRecord,
}

/// Makes a key named `name` granting `scopes`, from the operating system's random source.
pub fn generate(
    name: &str,
    scopes: Vec<String>,
    created_at: i64,
    expires_at: Option<i64>,
) -> NewKey {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut id = [0u8; 9];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let id = b64.encode(id);
    let secret = b64.encode(secret);
    let hash = Sha256::digest(secret.as_bytes()).to_vec();
    NewKey {
        key: format!("{PREFIX}{id}{secret}"),
        record: ApiKeyRecord {
            id,
            name: name.to_owned(),
            hash,
            scopes,
            created_at,
            expires_at,
        },
    }
}

/// A presented key's id and secret, if it has a key's shape.
fn split(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    if rest.len() != ID_LEN + SECRET_LEN || !rest.is_ascii() {
        return None;
    }
    Some(rest.split_at(ID_LEN))
}

/// One live key, as the policy stage needs it.
#[derive(Debug)]
pub struct KeyEntry {
    pub id: Box<str>,
    /// The key's name: the subject of the requests it makes.
    pub name: Arc<str>,
    pub scopes: Arc<[Box<str>]>,
    hash: [u8; 32],
    pub created_at: i64,
    /// Unix milliseconds after which it no longer works.
    pub expires_at: Option<i64>,
}

/// Why a presented key is refused. The messages never repeat the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("the API key is not one of this project's (unknown, revoked or mistyped)")]
    Unknown,
    #[error("the API key expired")]
    Expired,
}

/// A project's keys by id. Immutable: a key made or revoked is a new revision with a new set.
#[derive(Debug, Default)]
pub struct KeySet {
    by_id: HashMap<Box<str>, KeyEntry>,
}

impl KeySet {
    pub fn from_records(records: &[ApiKeyRecord]) -> KeySet {
        let by_id = records
            .iter()
            .filter_map(|record| {
                let hash: [u8; 32] = record.hash.as_slice().try_into().ok()?;
                let entry = KeyEntry {
                    id: record.id.as_str().into(),
                    name: record.name.as_str().into(),
                    scopes: record.scopes.iter().map(|s| s.as_str().into()).collect(),
                    hash,
                    created_at: record.created_at,
                    expires_at: record.expires_at,
                };
                Some((entry.id.clone(), entry))
            })
            .collect();
        KeySet { by_id }
    }

    /// This set with `record` added (or replacing the key with its id).
    pub fn with(&self, record: &ApiKeyRecord) -> KeySet {
        let mut records = self.records();
        records.retain(|r| r.id != record.id);
        records.push(record.clone());
        KeySet::from_records(&records)
    }

    /// This set without the key `id`.
    pub fn without(&self, id: &str) -> KeySet {
        let mut records = self.records();
        records.retain(|r| r.id != id);
        KeySet::from_records(&records)
    }

    fn records(&self) -> Vec<ApiKeyRecord> {
        self.by_id
            .values()
            .map(|entry| ApiKeyRecord {
                id: entry.id.to_string(),
                name: entry.name.to_string(),
                hash: entry.hash.to_vec(),
                scopes: entry.scopes.iter().map(|s| s.to_string()).collect(),
                created_at: entry.created_at,
                expires_at: entry.expires_at,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&KeyEntry> {
        self.by_id.get(id)
    }

    /// The keys, oldest first (ties by id).
    pub fn sorted(&self) -> Vec<&KeyEntry> {
        let mut keys: Vec<&KeyEntry> = self.by_id.values().collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        keys
    }

    pub fn name_taken(&self, name: &str) -> bool {
        self.by_id.values().any(|entry| &*entry.name == name)
    }

    /// The live key `presented` is, at `now_ms`.
    pub fn check(&self, presented: &str, now_ms: i64) -> Result<&KeyEntry, KeyRefusal> {
        let (id, secret) = split(presented).ok_or(KeyRefusal::Unknown)?;
        let entry = self.by_id.get(id).ok_or(KeyRefusal::Unknown)?;
        let hash = Sha256::digest(secret.as_bytes());
        if !bool::from(hash.as_slice().ct_eq(&entry.hash)) {
            return Err(KeyRefusal::Unknown);
        }
        if entry.expires_at.is_some_and(|at| now_ms >= at) {
            return Err(KeyRefusal::Expired);
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(keys: &[&NewKey]) -> KeySet {
        let records: Vec<ApiKeyRecord> = keys.iter().map(|k| k.record.clone()).collect();
        KeySet::from_records(&records)
    }

    #[test]
    fn a_made_key_is_found_and_nothing_else() {
        let made = generate("ci", vec!["read".into()], 1, None);
        assert_eq!(made.key.len(), KEY_LEN);
        assert!(made.key.starts_with(PREFIX));
        assert_eq!(made.record.hash.len(), 32);
        assert!(!made.record.hash.is_empty());
        let keys = set_of(&[&made]);
        let entry = keys.check(&made.key, 2).unwrap();
        assert_eq!(&*entry.name, "ci");
        assert_eq!(&*entry.scopes, &["read".into()] as &[Box<str>]);
        // Same id, another secret; a cut key; garbage; the id alone.
        let mut forged = made.key.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(keys.check(&forged, 2).unwrap_err(), KeyRefusal::Unknown);
        assert_eq!(
            keys.check(&made.key[..KEY_LEN - 1], 2).unwrap_err(),
            KeyRefusal::Unknown
        );
        assert_eq!(keys.check("", 2).unwrap_err(), KeyRefusal::Unknown);
        assert_eq!(
            keys.check(&made.key[..PREFIX.len() + ID_LEN], 2)
                .unwrap_err(),
            KeyRefusal::Unknown
        );
        let other = generate("other", vec![], 1, None);
        assert_eq!(keys.check(&other.key, 2).unwrap_err(), KeyRefusal::Unknown);
    }

    #[test]
    fn keys_expire_and_are_revoked() {
        let made = generate("ci", vec![], 1, Some(100));
        let keys = set_of(&[&made]);
        assert!(keys.check(&made.key, 99).is_ok());
        assert_eq!(keys.check(&made.key, 100).unwrap_err(), KeyRefusal::Expired);
        let revoked = keys.without(&made.record.id);
        assert!(revoked.is_empty());
        assert_eq!(
            revoked.check(&made.key, 1).unwrap_err(),
            KeyRefusal::Unknown
        );
        let again = revoked.with(&made.record);
        assert!(again.check(&made.key, 1).is_ok());
        assert!(again.name_taken("ci"));
    }

    #[test]
    fn two_keys_never_collide() {
        let a = generate("a", vec![], 1, None);
        let b = generate("b", vec![], 2, None);
        assert_ne!(a.key, b.key);
        assert_ne!(a.record.id, b.record.id);
        let keys = set_of(&[&a, &b]);
        assert_eq!(&*keys.check(&b.key, 3).unwrap().name, "b");
        let names: Vec<&str> = keys.sorted().iter().map(|k| &*k.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    proptest::proptest! {
        #[test]
        fn any_presented_string_is_refused_without_panic(presented in "\\PC{0,80}") {
            let made = generate("ci", vec![], 1, None);
            let keys = set_of(&[&made]);
            proptest::prop_assert!(keys.check(&presented, 2).is_err());
        }
    }
}
