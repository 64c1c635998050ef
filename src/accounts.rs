//! Accounts: password hashing (argon2id), bearer tokens, and who a request is.
//!
//! Tokens are 256 random bits shown once as `sy_…` and stored only as their SHA-256 (a
//! random secret of that size needs no slow hash). Passwords are argon2id, hashed off the
//! async threads with bounded concurrency and queue ([`hasher`]). Unknown users and wrong
//! passwords take the same time and get the same answer. Failed logins are counted per
//! client address and per user name ([`failures`]), and a caller over a limit is refused
//! before any hashing. This module decides identity only; what an identity may touch is
//! `platform`'s.

mod failures;
mod hasher;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use self::failures::LoginFailures;
use self::hasher::Hasher;
use crate::config::Config;
use crate::model::Role;
use crate::store::{Store, StoreError, TokenKind, TokenRecord, UserRecord};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    #[error("hashing the password: {0}")]
    Hash(String),
    /// Too many password hashes are already waiting; try again after this long.
    #[error("too many logins and registrations are waiting; try again shortly")]
    Busy(Duration),
    /// The client address or the user name has no login attempts left for now.
    #[error("too many failed logins from this address or for this user; try again later")]
    TooManyAttempts(Duration),
    /// The user holds as many live API tokens as the quota allows.
    #[error(
        "you already hold {0} live API tokens, the most allowed (SWITCHYARD_MAX_TOKENS_PER_USER); \
         delete one first"
    )]
    TokenQuota(usize),
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

/// Accounts over a store.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    session_ttl_ms: i64,
    hasher: Hasher,
    failures: Arc<LoginFailures>,
    tokens_per_user: usize,
    /// Held from counting a user's API tokens until the new one is stored, so that
    /// concurrent requests cannot all pass the quota. Token creation is rare; one lock for
    /// the node is enough.
    token_issue: Arc<tokio::sync::Mutex<()>>,
}

impl Accounts {
    /// Accounts over `store` with the session lifetime, login bounds and token quota of
    /// `config`.
    pub fn new(store: Arc<dyn Store>, config: &Config) -> Accounts {
        let login = &config.login;
        Accounts {
            store,
            session_ttl_ms: i64::try_from(config.session_ttl.as_millis()).unwrap_or(i64::MAX),
            hasher: Hasher::new(login.hash_concurrency, login.hash_queue),
            failures: Arc::new(LoginFailures::new(login)),
            tokens_per_user: config.quotas.tokens_per_user,
            token_issue: Arc::new(tokio::sync::Mutex::new(())),
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
        let hash = self.hasher.hash(password.to_owned()).await?;
        Ok(self
            .store
            .create_user(username, &hash, role, now_ms())
            .await?)
    }

    /// Checks a login from `client`: refused at once when the address or the name has
    /// failed too often lately, else the password is checked, with the same error after the
    /// same work for an unknown user and a wrong password.
    pub async fn check_login(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, AccountError> {
        self.failures
            .begin(client, username, Instant::now())
            .map_err(AccountError::TooManyAttempts)?;
        let checked = self.check_password(username, password).await;
        match &checked {
            Ok(_) => self.failures.succeeded(client, username, Instant::now()),
            Err(AccountError::InvalidCredentials) => {}
            // Nothing was learnt about the password: the attempt does not count.
            Err(_) => self.failures.refund(client, username, Instant::now()),
        }
        checked
    }

    async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, AccountError> {
        let user = self.store.user_by_name(username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password.to_owned(), hash).await?;
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

    /// Issues an API token unless the user already holds `tokens_per_user` live ones.
    pub async fn issue_api_token(
        &self,
        user_id: i64,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<IssuedToken, AccountError> {
        let _issuing = self.token_issue.lock().await;
        let now = now_ms();
        let live = self
            .store
            .list_tokens(user_id, TokenKind::Api)
            .await?
            .iter()
            .filter(|t| t.expires_at.is_none_or(|at| at > now))
            .count();
        if live >= self.tokens_per_user {
            return Err(AccountError::TokenQuota(self.tokens_per_user));
        }
        self.issue_token(user_id, TokenKind::Api, name, expires_at)
            .await
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

    /// Hashes a password (argon2id, on the hashing threads) into its PHC string: how a
    /// project's `basic` policy stores its users' passwords.
    pub async fn hash_password(&self, password: String) -> Result<String, AccountError> {
        self.hasher.hash(password).await
    }

    /// Hashes the passwords a `basic` policy was given, so that only hashes are stored or
    /// shown (the admin API, a push and a folder node all seal a policy before a change).
    pub async fn seal_passwords(
        &self,
        policy: &mut crate::model::AuthPolicy,
    ) -> Result<(), AccountError> {
        if let crate::model::AuthPolicy::Basic { users, .. } = policy {
            for user in users.iter_mut() {
                if let Some(password) = user.password.take() {
                    user.password_hash = Some(self.hash_password(password).await?);
                }
            }
        }
        Ok(())
    }

    /// Checks a password of a project's `basic` policy from `client`, with the login's
    /// failure counters: `name` is the user as the counters know it (`owner/project/user`,
    /// apart from platform users), `hash` its stored hash (`None`: an unknown user, checked
    /// against a decoy at the same cost).
    pub async fn check_project_password(
        &self,
        client: IpAddr,
        name: &str,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, AccountError> {
        self.failures
            .begin(client, name, Instant::now())
            .map_err(AccountError::TooManyAttempts)?;
        let checked = self.hasher.verify(password, hash).await;
        match &checked {
            Ok(true) => self.failures.succeeded(client, name, Instant::now()),
            Ok(false) => {}
            Err(_) => self.failures.refund(client, name, Instant::now()),
        }
        checked
    }

    /// Password hashes waiting for a hashing thread now.
    pub fn hashes_queued(&self) -> usize {
        self.hasher.queued()
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
}
