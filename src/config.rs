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
    /// Who may create accounts; `None` means open, which [`Config::validate`] refuses on a
    /// non-loopback address unless an admin is bootstrapped (see [`Config::registration`]).
    pub registration: Option<Registration>,
    pub admin: Option<AdminBootstrap>,
    /// The largest body the platform API reads.
    pub admin_body_limit: usize,
    /// The largest request body a project endpoint takes.
    pub body_limit: u64,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// What one client connection may hold, and for how long.
    pub limits: ConnectionLimits,
    /// Password hashing and failed-login limits.
    pub login: LoginLimits,
    /// How much one user may create.
    pub quotas: Quotas,
    /// One access-log line per request.
    pub access_log: bool,
    /// Requests each project's journal keeps; 0 turns journals off.
    pub journal_size: usize,
    /// Bytes of each request and response body a journal entry keeps.
    pub journal_body: usize,
    /// `--proxy-allow`: where non-admins' backends may send (`*`, IPs, CIDRs, host names);
    /// empty allows them none. Checked by `validate`.
    pub proxy_allow: Vec<String>,
    /// What projects' scripts may use.
    pub scripts: ScriptSettings,
    /// How large dataset uploads may be, and how long their bodies may pause.
    pub datasets: crate::datasets::UploadSettings,
    /// How the docs pages load their scripts (`--redoc-url`).
    pub pages: crate::openapi::PagesConfig,
    /// Test hook: hold every change between its commit and its publish.
    #[doc(hidden)]
    pub commit_gate: Option<std::sync::Arc<crate::changes::CommitGate>>,
}

/// What one project's script may use (`script`), and its key-value store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSettings {
    /// The most memory one script's JavaScript runtime may allocate.
    pub memory_bytes: usize,
    /// The longest one request's handler may run on the CPU.
    pub cpu_time: Duration,
    /// Requests that may wait for one script; more are answered 503.
    pub queue: usize,
    /// The most keys one project's kv store holds.
    pub kv_max_keys: u64,
    /// The most bytes (keys and values) one project's kv store holds.
    pub kv_max_bytes: u64,
}

impl Default for ScriptSettings {
    fn default() -> ScriptSettings {
        ScriptSettings {
            memory_bytes: 64 * 1024 * 1024,
            cpu_time: Duration::from_secs(1),
            queue: 256,
            kv_max_keys: 10_000,
            kv_max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Bounds on what a client connection may hold: no slow or stuck client keeps a server
/// resource past these.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// From the first byte of a request head until the whole head has arrived.
    pub header_read_timeout: Duration,
    /// How long a connection may sit idle: after connecting, or from an answer being ready
    /// until the first byte of the next request.
    pub idle_timeout: Duration,
    /// How long reading one request body may take, from its head to its last byte.
    pub body_read_timeout: Duration,
    /// Open connections at most; beyond it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// The largest request head (request line and headers) read.
    pub max_header_size: usize,
}

/// Bounds on password hashing, the most expensive thing an anonymous caller can ask for.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Password hashes (argon2id, 19 MiB each) computed at once; 0 means one per core.
    pub hash_concurrency: usize,
    /// Hash requests waiting for a slot at most; beyond it the caller gets 503.
    pub hash_queue: usize,
    /// Failed logins allowed per client address within `failure_window`.
    pub failures_per_address: u32,
    /// Failed logins allowed per user name within `failure_window`.
    pub failures_per_user: u32,
    /// The window failed logins are counted over.
    pub failure_window: Duration,
}

/// How much one user may create on a shared instance.
#[derive(Debug, Clone)]
pub struct Quotas {
    pub projects_per_user: usize,
    pub endpoints_per_project: usize,
    pub tokens_per_user: usize,
    /// Pattern children (`{id}.json`, `v{n}`) one router node may have: the matcher tries
    /// them in turn, so their number bounds a lookup's cost.
    pub pattern_siblings: usize,
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
    #[error(
        "listening on {0}, a non-loopback address, with open registration and no admin: whoever \
         registers first would become the admin. Set SWITCHYARD_ADMIN_USER and \
         SWITCHYARD_ADMIN_PASSWORD to create the admin at start, or pass --registration closed, \
         or --registration open to accept the risk"
    )]
    OpenToStrangers(IpAddr),
    #[error("{0}: must be at least {1}")]
    TooSmall(&'static str, &'static str),
    #[error("SWITCHYARD_MAX_ENDPOINTS_PER_PROJECT: at most {0}")]
    TooManyEndpoints(usize),
    #[error("SWITCHYARD_PROXY_ALLOW: {0}")]
    ProxyAllow(String),
}

impl Config {
    /// The parsed `--proxy-allow` list.
    pub(crate) fn proxy_allow(&self) -> Result<crate::backends::allow::ProxyAllow, ConfigError> {
        crate::backends::allow::ProxyAllow::parse(&self.proxy_allow)
            .map_err(ConfigError::ProxyAllow)
    }

    /// The defaults of `switchyard serve`, with the given database.
    pub fn new(db: impl Into<String>) -> Config {
        Config {
            listen: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            db: db.into(),
            demo: false,
            registration: None,
            admin: None,
            admin_body_limit: 1024 * 1024,
            body_limit: 16 * 1024 * 1024,
            session_ttl: Duration::from_secs(24 * 3600),
            shutdown_timeout: Duration::from_secs(10),
            limits: ConnectionLimits {
                header_read_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                body_read_timeout: Duration::from_secs(60),
                max_connections: 10_000,
                max_header_size: 64 * 1024,
            },
            login: LoginLimits {
                hash_concurrency: 0,
                hash_queue: 64,
                failures_per_address: 30,
                failures_per_user: 10,
                failure_window: Duration::from_secs(60),
            },
            quotas: Quotas {
                projects_per_user: 100,
                endpoints_per_project: 100_000,
                tokens_per_user: 100,
                pattern_siblings: 256,
            },
            access_log: true,
            journal_size: 1000,
            journal_body: 16 * 1024,
            proxy_allow: Vec::new(),
            scripts: ScriptSettings::default(),
            datasets: crate::datasets::UploadSettings::default(),
            pages: Default::default(),
            commit_gate: None,
        }
    }

    /// Who may register, once the default is resolved: open unless closed explicitly.
    pub fn registration(&self) -> Registration {
        self.registration.unwrap_or(Registration::Open)
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
        // Open registration makes the first account the admin: on an address strangers can
        // reach, that must be chosen, not fallen into.
        if self.registration.is_none() && self.admin.is_none() && !self.listen.is_loopback() {
            return Err(ConfigError::OpenToStrangers(self.listen));
        }
        if self.scripts.cpu_time.is_zero() {
            return Err(ConfigError::TooSmall("SWITCHYARD_SCRIPT_CPU_TIME", "1ms"));
        }
        if self.scripts.memory_bytes < 1024 * 1024 {
            return Err(ConfigError::TooSmall("SWITCHYARD_SCRIPT_MEMORY", "1MiB"));
        }
        if self.datasets.limits.max_rows == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_DATASET_MAX_ROWS", "1"));
        }
        if self.datasets.limits.max_columns == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_DATASET_MAX_COLUMNS", "1"));
        }
        if self.scripts.queue == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_SCRIPT_QUEUE", "1"));
        }
        if self.scripts.kv_max_keys == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_KV_MAX_KEYS", "1"));
        }
        let limits = &self.limits;
        for (value, name) in [
            (limits.header_read_timeout, "SWITCHYARD_HEADER_READ_TIMEOUT"),
            (limits.idle_timeout, "SWITCHYARD_IDLE_TIMEOUT"),
            (limits.body_read_timeout, "SWITCHYARD_BODY_READ_TIMEOUT"),
        ] {
            // Tests use sub-second timeouts; a zero would close every connection at once.
            if value.is_zero() {
                return Err(ConfigError::TooSmall(name, "1ms"));
            }
        }
        if limits.max_connections == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_MAX_CONNECTIONS", "1"));
        }
        if limits.max_header_size < 8 * 1024 {
            return Err(ConfigError::TooSmall("SWITCHYARD_MAX_HEADER_SIZE", "8KiB"));
        }
        self.proxy_allow()?;
        if self.login.hash_queue == 0 {
            return Err(ConfigError::TooSmall("SWITCHYARD_HASH_QUEUE", "1"));
        }
        if self.login.failure_window.is_zero() {
            return Err(ConfigError::TooSmall(
                "SWITCHYARD_LOGIN_FAILURE_WINDOW",
                "1ms",
            ));
        }
        let quotas = &self.quotas;
        for (value, name) in [
            (quotas.projects_per_user, "SWITCHYARD_MAX_PROJECTS_PER_USER"),
            (
                quotas.endpoints_per_project,
                "SWITCHYARD_MAX_ENDPOINTS_PER_PROJECT",
            ),
            (quotas.tokens_per_user, "SWITCHYARD_MAX_TOKENS_PER_USER"),
            (quotas.pattern_siblings, "SWITCHYARD_MAX_PATTERN_SIBLINGS"),
        ] {
            if value == 0 {
                return Err(ConfigError::TooSmall(name, "1"));
            }
        }
        if quotas.endpoints_per_project > crate::model::MAX_ENDPOINTS {
            return Err(ConfigError::TooManyEndpoints(crate::model::MAX_ENDPOINTS));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_registration_on_a_public_address_must_be_chosen() {
        let mut config = Config::new("sqlite://x.db");
        config.listen = IpAddr::from([0, 0, 0, 0]);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OpenToStrangers(_))
        ));
        config.registration = Some(Registration::Open);
        assert!(
            config.validate().is_ok(),
            "an explicit open accepts the risk"
        );
        config.registration = Some(Registration::Closed);
        assert!(config.validate().is_ok());
        config.registration = None;
        config.admin = Some(AdminBootstrap {
            username: "root".into(),
            password: "long enough password".into(),
        });
        assert!(
            config.validate().is_ok(),
            "a bootstrapped admin comes first"
        );
        config.admin = None;
        config.listen = IpAddr::from([127, 0, 0, 1]);
        assert!(config.validate().is_ok(), "loopback stays open by default");
        config.listen = "::1".parse().unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn limits_and_quotas_name_the_variable_when_they_are_zero() {
        let mut config = Config::new("sqlite://x.db");
        config.limits.header_read_timeout = Duration::ZERO;
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("SWITCHYARD_HEADER_READ_TIMEOUT"),
            "{message}"
        );
        let mut config = Config::new("sqlite://x.db");
        config.quotas.tokens_per_user = 0;
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("SWITCHYARD_MAX_TOKENS_PER_USER"),
            "{message}"
        );
        let mut config = Config::new("sqlite://x.db");
        config.quotas.endpoints_per_project = crate::model::MAX_ENDPOINTS + 1;
        assert!(config.validate().is_err());
        let mut config = Config::new("sqlite://x.db");
        config.limits.max_header_size = 1024;
        assert!(config.validate().is_err());
    }
}
