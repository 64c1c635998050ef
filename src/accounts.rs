//! Accounts: password hashing (argon2id), bearer tokens, and who a request is.
//!
//! Tokens are 256 random bits shown once as `sy_…` and stored only as their SHA-256 (a
//! random secret of that size needs no slow hash). Passwords are argon2id, hashed off the
//! async threads. Unknown users and wrong passwords take the same time and get the same
//! answer. This module decides identity only; what an identity may touch is `platform`'s.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::model::Role;
use crate::store::{Store, StoreError, TokenKind, TokenRecord, UserRecord};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a request is, as established from its bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A token as handed to its owner: the secret, shown once, and its record.
pub struct IssuedToken {
    pub secret: String,
    pub record: TokenRecord,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// SHA-256 of a token secret: what the store keeps and looks up.
pub fn token_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "sy_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn hash_password_blocking(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// A hash of a password nobody knows, verified against when the user does not exist so
/// that both failures cost the same time.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password_blocking("decoy password for unknown users").unwrap_or_default()
    })
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hashes a password with argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// Accounts over a store.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    session_ttl_ms: i64,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, session_ttl_secs: u64) -> Accounts {
        Accounts {
            store,
            session_ttl_ms: i64::try_from(session_ttl_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    pub fn session_ttl_secs(&self) -> i64 {
        self.session_ttl_ms / 1000
    }

    /// Creates a user; `role: None` makes the instance's first user its admin.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        role: Option<Role>,
    ) -> Result<UserRecord, AccountError> {
        let hash = hash_password(password.to_owned()).await?;
        Ok(self
            .store
            .create_user(username, &hash, role, now_ms())
            .await?)
    }

    /// Checks a user name and password; the same error, after the same work, for an
    /// unknown user and a wrong password.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, AccountError> {
        let user = self.store.user_by_name(username).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| decoy_hash().to_owned());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        match user {
            Some(user) if ok => Ok(user),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// Issues a login session (expiring after the configured time) or an API token.
    pub async fn issue_token(
        &self,
        user_id: i64,
        kind: TokenKind,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<IssuedToken, AccountError> {
        let secret = random_secret();
        let now = now_ms();
        let expires_at = match kind {
            TokenKind::Session => Some(now.saturating_add(self.session_ttl_ms)),
            TokenKind::Api => expires_at,
        };
        let record = TokenRecord {
            id: format!("tok_{}", uuid::Uuid::now_v7().simple()),
            user_id,
            kind,
            name: name.to_owned(),
            hash: token_hash(&secret),
            created_at: now,
            expires_at,
        };
        self.store.insert_token(&record).await?;
        if kind == TokenKind::Session {
            // Housekeeping on login keeps the table from growing with dead sessions.
            if let Err(error) = self.store.purge_expired_tokens(now).await {
                tracing::warn!(%error, "could not purge expired tokens");
            }
        }
        Ok(IssuedToken { secret, record })
    }

    /// Who holds this bearer secret, if it is a live token.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, AccountError> {
        let found = self
            .store
            .token_owner(&token_hash(secret), now_ms())
            .await?;
        Ok(found.map(|(user, _token)| Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
        }))
    }

    pub async fn revoke_secret(&self, secret: &str) -> Result<bool, AccountError> {
        Ok(self.store.delete_token_by_hash(&token_hash(secret)).await?)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = random_secret();
        let b = random_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("sy_"));
        assert_eq!(a.len(), 3 + 43, "32 bytes in unpadded base64url");
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("wrong horse", &hash));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }
}
