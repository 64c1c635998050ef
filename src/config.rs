//! The validated configuration of a running node.
//!
//! `cli` parses flags and `SWITCHYARD_*` variables (clap, each option documented once);
//! this module holds the result as a [`Config`] and checks what clap cannot (options that
//! only make sense together). It does no IO. Tests build a [`Config`] directly.

use std::net::IpAddr;
use std::time::Duration;

/// Who may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone may register; the first account becomes the admin.
    Open,
    /// Only an admin may create accounts (through `POST /auth/register` with its token).
    Closed,
}

/// An admin account to create at start, for shared instances with closed registration.
#[derive(Debug, Clone)]
pub struct AdminBootstrap {
    pub username: String,
    pub password: String,
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// `sqlite://PATH` (or a plain path).
    pub db: String,
    /// Create the demo user and project if missing.
    pub demo: bool,
    pub registration: Registration,
    pub admin: Option<AdminBootstrap>,
    /// The largest body the platform API reads.
    pub admin_body_limit: usize,
    /// The largest request body a project endpoint takes.
    pub body_limit: u64,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
}

/// A setting that is wrong, named by its variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("SWITCHYARD_ADMIN_USER and SWITCHYARD_ADMIN_PASSWORD must be given together")]
    AdminHalfGiven,
    #[error("SWITCHYARD_ADMIN_USER: {0}")]
    AdminUser(String),
    #[error("SWITCHYARD_ADMIN_PASSWORD: {0}")]
    AdminPassword(String),
    #[error("SWITCHYARD_ADMIN_BODY_LIMIT: must be at least 1 KiB")]
    BodyLimit,
}

impl Config {
    /// The defaults of `switchyard serve`, with the given database.
    pub fn new(db: impl Into<String>) -> Config {
        Config {
            listen: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            db: db.into(),
            demo: false,
            registration: Registration::Open,
            admin: None,
            admin_body_limit: 1024 * 1024,
            body_limit: 16 * 1024 * 1024,
            session_ttl: Duration::from_secs(24 * 3600),
            shutdown_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(admin) = &self.admin {
            crate::model::check_username(&admin.username).map_err(ConfigError::AdminUser)?;
            crate::model::check_password(&admin.password).map_err(ConfigError::AdminPassword)?;
        }
        if self.admin_body_limit < 1024 {
            return Err(ConfigError::BodyLimit);
        }
        Ok(())
    }

    /// Pairs the two admin variables, refusing one without the other.
    pub fn admin_from(
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Option<AdminBootstrap>, ConfigError> {
        match (user, password) {
            (Some(username), Some(password)) => Ok(Some(AdminBootstrap { username, password })),
            (None, None) => Ok(None),
            _ => Err(ConfigError::AdminHalfGiven),
        }
    }
}
