//! The command line: every option is defined once here, with its help and, for a node's
//! settings and for the server and token of the client commands, its `SWITCHYARD_*`
//! variable. A node's options are resolved into a `config::Config` and handed to `server`;
//! the client commands (`dataset import`) hand theirs to `remote`.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConnectionLimits, LoginLimits, Quotas, Registration};
use crate::model::Layout;
use crate::observe::logs::{self, LogFormat, LogSettings};
use crate::projects::host::Host;
use crate::remote::{self, RemoteError};
use crate::server;

/// Switchyard hosts many small HTTP APIs in one binary and changes them at runtime.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, term_width = 100, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: accounts, projects and their endpoints, managed through /admin.
    Serve(Box<ServeArgs>),
    /// Run a gateway from a YAML file of routes and backends, reloaded when it changes.
    #[command(after_help = GATEWAY_EXAMPLE)]
    Gateway(GatewayArgs),
    /// Work with the datasets of a running server's projects: import a CSV or JSON file.
    Dataset(DatasetArgs),
    /// Create a project folder from a template (it is never written over an existing one).
    #[command(after_help = NEW_EXAMPLE)]
    New(NewArgs),
    /// Rename a project folder, and its name in switchyard.yaml and .env.
    #[command(after_help = RENAME_EXAMPLE)]
    Rename(RenameArgs),
    /// Add a router to a project folder: routers/NAME.yaml, endpoints under a prefix.
    #[command(after_help = ADD_ROUTER_EXAMPLE)]
    AddRouter(AddRouterArgs),
    /// Check a project folder, or a directory of them, without serving it.
    #[command(after_help = VALIDATE_EXAMPLE)]
    Validate(ValidateArgs),
    /// Serve one project folder alone at /, following its edits.
    #[command(after_help = RUN_EXAMPLE)]
    Run(RunArgs),
    /// Apply a project folder to a server as one revision.
    #[command(after_help = PUSH_EXAMPLE)]
    Push(PushArgs),
    /// Write a server's project as a new project folder.
    #[command(after_help = PULL_EXAMPLE)]
    Pull(PullArgs),
    /// Log in to a server and keep the token for push, pull and dataset import.
    #[command(after_help = LOGIN_EXAMPLE)]
    Login(LoginArgs),
    /// Print a shell's completion script for switchyard.
    #[command(after_help = COMPLETIONS_EXAMPLE)]
    Completions(CompletionsArgs),
    /// Print the JSON Schema of a project folder's manifest or router files, for editors.
    #[command(after_help = SCHEMA_EXAMPLE)]
    Schema(SchemaArgs),
}

const SCHEMA_EXAMPLE: &str = "\
Examples:
  switchyard schema manifest > switchyard.schema.json
  switchyard schema router > router.schema.json

Then, for editors that read the YAML language server's comment, as the first line of
switchyard.yaml:
  # yaml-language-server: $schema=./switchyard.schema.json
The same files are in docs/schema/ of the source tree.";

/// `switchyard schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum)]
    pub file: SchemaFile,
}

/// The files `switchyard schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFile {
    /// switchyard.yaml.
    Manifest,
    /// routers/NAME.yaml.
    Router,
}

const NEW_EXAMPLE: &str = "\
Examples:
  switchyard new shop                       # ./shop: mock endpoints (the default template)
  switchyard new todo --template script     # ./todo: app.js with routes kept in kv
  switchyard new iris --template dataset --dir projects

A new folder holds switchyard.yaml, .env (APP_NAME, MODE=development) and routers/;
the script template adds app.js, the dataset template data/iris.csv. See docs/projects.md.";

const RENAME_EXAMPLE: &str = "\
Example:
  switchyard rename shop store     # ./shop becomes ./store, named store in its files

OLD is the folder (a path); NEW is the project's new name, a sibling folder of OLD.";

const ADD_ROUTER_EXAMPLE: &str = "\
Examples:
  switchyard add-router shop orders                   # shop/routers/orders.yaml, under /orders
  switchyard add-router shop admin --prefix /internal/admin

The router's endpoints are served under its prefix as soon as the file exists; nothing
else is edited.";

const VALIDATE_EXAMPLE: &str = "\
Examples:
  switchyard validate shop          # one folder
  switchyard validate projects      # every folder in projects/ that has a switchyard.yaml

Each problem is one line, FILE:LINE:COLUMN: MESSAGE. The exit code is 0 when every folder
is good and 1 otherwise, for CI.";

const RUN_EXAMPLE: &str = "\
Examples:
  switchyard new shop && switchyard run shop      # from nothing to a served project
  switchyard run shop -p 9000
  MODE=production GREETING=hi switchyard run shop # the environment overrides .env

The project answers at /, with GET /health ({\"name\", \"mode\", \"debug\"}) and its docs at
/docs, /redoc and /openapi.json (not in production mode). Saved edits are served within a
second; an edit that does not read or apply is logged with its file and line, and the last
good version keeps serving. Scripts, datasets, auth and every endpoint kind work as under
`serve`. Script kv values and dataset versions live in a temporary store, removed at exit.";

const PUSH_EXAMPLE: &str = "\
Examples:
  switchyard login --server https://switchyard.example.com --username alice
  switchyard push shop --dry-run     # what would change, nothing changed
  switchyard push shop               # alice/shop: revision 4 → 5 (sent data/iris.csv)

The folder is read and checked as `validate` does, then sent in one request: the server
applies the definition, routers, script and datasets as one revision, or nothing of it. A
dataset file is sent only when the server's copy differs. The project is created if it does
not exist. Pushing a folder the server already has changes nothing.";

const PULL_EXAMPLE: &str = "\
Examples:
  switchyard pull alice/shop shop
  switchyard pull alice/shop shop && switchyard push shop    # no change

Writes switchyard.yaml (every endpoint, with its id), app.js, data/ and .env (APP_NAME,
MODE and the project's env values) into DIR, which must not exist. Pushing the folder back
changes nothing.";

const LOGIN_EXAMPLE: &str = "\
Examples:
  switchyard login --server http://127.0.0.1:8080 --username alice   # the password on stdin
  switchyard login --server http://127.0.0.1:8080 --token sy_…       # an API token

The token is kept in $XDG_CONFIG_HOME/switchyard/credentials.json (else
~/.config/switchyard/credentials.json, mode 0600), for that server; the server becomes the
default of push, pull and dataset import. --token and SWITCHYARD_TOKEN still win.";

const COMPLETIONS_EXAMPLE: &str = "\
Examples:
  switchyard completions bash > /etc/bash_completion.d/switchyard
  switchyard completions zsh > \"${fpath[1]}/_switchyard\"
  switchyard completions fish > ~/.config/fish/completions/switchyard.fish";

/// `switchyard new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's name (and its folder's): 1 to 64 of a-z, 0-9, `_` and `-`.
    pub name: String,
    /// What the project starts as.
    #[arg(long, short, value_enum, default_value = "mock")]
    pub template: TemplateArg,
    /// The directory the folder is made in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

/// The templates of `switchyard new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateArg {
    /// Mock endpoints, one with a validated request body.
    Mock,
    /// A script (app.js) with routes and kv.
    Script,
    /// A proxy to a backend.
    Gateway,
    /// The iris dataset with its query, stats and schema endpoints.
    Dataset,
}

/// `switchyard rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The project folder.
    pub old: PathBuf,
    /// Its new name.
    pub new: String,
}

/// `switchyard add-router`.
#[derive(Debug, Args)]
pub struct AddRouterArgs {
    /// The project folder.
    pub project: PathBuf,
    /// The router's name: its file is routers/NAME.yaml.
    pub name: String,
    /// The path its endpoints are served under (default: /NAME).
    #[arg(long, value_name = "/PREFIX")]
    pub prefix: Option<String>,
}

/// `switchyard run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project folder.
    pub dir: PathBuf,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// `switchyard push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The project folder.
    pub dir: PathBuf,

    /// The project's owner (default: the user the token is of).
    #[arg(long)]
    pub owner: Option<String>,

    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `switchyard pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The project, OWNER/PROJECT.
    pub project: String,

    /// The folder to write (it must not exist).
    pub dir: PathBuf,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `switchyard login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Log in as this user; the password is read from standard input (one line).
    #[arg(long, conflicts_with = "token")]
    pub username: Option<String>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `switchyard validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A project folder, or a directory of project folders.
    pub dir: PathBuf,
}

/// `switchyard completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

const GATEWAY_EXAMPLE: &str = "\
Example routes.yml (requests under /api/payment go to the payment backend; the longest
matching prefix wins; anything else gets the default response):

  routes:
    - path_prefix: /api/payment
      backend: payment
  default_response:
    body: \"This is not reachable\"
    status_code: 403
  backends:
    - name: payment
      urls: [\"http://127.0.0.1:9000\"]

  switchyard gateway -c routes.yml -p 8080";

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Store: sqlite://PATH (created if missing; add ?sync=full to fsync every commit).
    #[arg(
        long,
        env = "SWITCHYARD_DB",
        hide_env_values = true,
        default_value = "sqlite://switchyard.db"
    )]
    pub db: String,

    /// Create a demo user and project with mock endpoints (if missing) and print their URLs.
    #[arg(long, env = "SWITCHYARD_DEMO", hide_env_values = true)]
    pub demo: bool,

    /// Serve the project folders of DIR instead of the store's projects: each at /{name},
    /// followed as they change (--db, --demo and accounts are not used).
    #[arg(
        long,
        value_name = "DIR",
        env = "SWITCHYARD_PROJECTS",
        hide_env_values = true,
        conflicts_with = "demo"
    )]
    pub projects: Option<PathBuf>,

    /// Who may create accounts: open (anyone; the first becomes admin) or closed (admins
    /// only). Unset means open, refused at start on a non-loopback address with no
    /// --admin-user: pass `open` there to accept that the first stranger becomes admin.
    #[arg(
        long,
        env = "SWITCHYARD_REGISTRATION",
        hide_env_values = true,
        value_enum
    )]
    pub registration: Option<Registration>,

    /// Admin account to create at start if missing (with --admin-password).
    #[arg(long, env = "SWITCHYARD_ADMIN_USER", hide_env_values = true)]
    pub admin_user: Option<String>,

    /// Password of the admin account created at start.
    #[arg(long, env = "SWITCHYARD_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Largest request body the platform API reads (e.g. 1MiB, 512KiB).
    #[arg(long, env = "SWITCHYARD_ADMIN_BODY_LIMIT", hide_env_values = true, default_value = "1MiB", value_parser = parse_size)]
    pub admin_body_limit: usize,

    /// How long a login session lasts (e.g. 24h, 30m).
    #[arg(long, env = "SWITCHYARD_SESSION_TTL", hide_env_values = true, default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Password hashes computed at once (each takes 19 MiB; default: one per core).
    #[arg(long, env = "SWITCHYARD_HASH_CONCURRENCY", hide_env_values = true)]
    pub hash_concurrency: Option<usize>,

    /// Logins and registrations waiting for a hash slot at most; more get 503 and Retry-After.
    #[arg(
        long,
        env = "SWITCHYARD_HASH_QUEUE",
        hide_env_values = true,
        default_value_t = 64
    )]
    pub hash_queue: usize,

    /// Failed logins allowed per client address within the failure window; then 429.
    #[arg(
        long,
        env = "SWITCHYARD_LOGIN_FAILURES_PER_ADDRESS",
        hide_env_values = true,
        default_value_t = 30
    )]
    pub login_failures_per_address: u32,

    /// Failed logins allowed per user name within the failure window; then 429.
    #[arg(
        long,
        env = "SWITCHYARD_LOGIN_FAILURES_PER_USER",
        hide_env_values = true,
        default_value_t = 10
    )]
    pub login_failures_per_user: u32,

    /// The window failed logins are counted over.
    #[arg(long, env = "SWITCHYARD_LOGIN_FAILURE_WINDOW", hide_env_values = true, default_value = "1m", value_parser = humantime::parse_duration)]
    pub login_failure_window: Duration,

    /// Projects one user may own.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_PROJECTS_PER_USER",
        hide_env_values = true,
        default_value_t = 100
    )]
    pub max_projects_per_user: usize,

    /// Endpoints one project may hold (at most 200000).
    #[arg(
        long,
        env = "SWITCHYARD_MAX_ENDPOINTS_PER_PROJECT",
        hide_env_values = true,
        default_value_t = 100_000
    )]
    pub max_endpoints_per_project: usize,

    /// Live API tokens one user may hold.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_TOKENS_PER_USER",
        hide_env_values = true,
        default_value_t = 100
    )]
    pub max_tokens_per_user: usize,

    /// Pattern segments (`{id}.json`, `v{n}`) side by side at one place of a project's
    /// paths; the router tries them in turn.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_PATTERN_SIBLINGS",
        hide_env_values = true,
        default_value_t = 256
    )]
    pub max_pattern_siblings: usize,

    /// Requests each project's journal keeps (GET /admin/projects/{o}/{p}/journal); 0 turns
    /// journals off.
    #[arg(
        long,
        env = "SWITCHYARD_JOURNAL_SIZE",
        hide_env_values = true,
        default_value_t = 1000
    )]
    pub journal_size: usize,

    /// Bytes of each request and response body a journal entry keeps (e.g. 16KiB).
    #[arg(
        long,
        env = "SWITCHYARD_JOURNAL_BODY",
        hide_env_values = true,
        default_value = "16KiB",
        value_parser = parse_size
    )]
    pub journal_body: usize,

    /// Where the backends of non-admins' projects may send: a comma-separated list of `*`,
    /// IP addresses, CIDRs (10.0.0.0/8) and host names; empty (the default) allows them none.
    /// Link-local and cloud metadata addresses need an explicit network even under `*`.
    #[arg(
        long,
        env = "SWITCHYARD_PROXY_ALLOW",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub proxy_allow: Vec<String>,

    /// The most memory one project's script may allocate (e.g. 64MiB); past it the
    /// request fails with 500 `script_error`.
    #[arg(long, env = "SWITCHYARD_SCRIPT_MEMORY", hide_env_values = true, default_value = "64MiB", value_parser = parse_size)]
    pub script_memory: usize,

    /// The longest one script handler may run per request (e.g. 1s, 200ms), counted on the
    /// script's own thread; then it is stopped and the request answered 504 `script_timeout`.
    #[arg(long, env = "SWITCHYARD_SCRIPT_CPU_TIME", hide_env_values = true, default_value = "1s", value_parser = humantime::parse_duration)]
    pub script_cpu_time: Duration,

    /// Requests that may wait for one project's script; more are answered 503 `script_busy`.
    #[arg(
        long,
        env = "SWITCHYARD_SCRIPT_QUEUE",
        hide_env_values = true,
        default_value_t = 256
    )]
    pub script_queue: usize,

    /// The most keys one project's script `kv` store may hold.
    #[arg(
        long,
        env = "SWITCHYARD_KV_MAX_KEYS",
        hide_env_values = true,
        default_value_t = 10_000
    )]
    pub kv_max_keys: u64,

    /// The most bytes (keys and values) one project's script `kv` store may hold (e.g. 10MiB).
    #[arg(long, env = "SWITCHYARD_KV_MAX_BYTES", hide_env_values = true, default_value = "10MiB", value_parser = parse_size)]
    pub kv_max_bytes: usize,

    /// The largest dataset upload taken (e.g. 1GiB); a larger one is refused with 413.
    #[arg(long, env = "SWITCHYARD_DATASET_MAX_BYTES", hide_env_values = true, default_value = "1GiB", value_parser = parse_size)]
    pub dataset_max_bytes: usize,

    /// The most rows one dataset may hold.
    #[arg(
        long,
        env = "SWITCHYARD_DATASET_MAX_ROWS",
        hide_env_values = true,
        default_value_t = 10_000_000
    )]
    pub dataset_max_rows: usize,

    /// The most columns one dataset may hold.
    #[arg(
        long,
        env = "SWITCHYARD_DATASET_MAX_COLUMNS",
        hide_env_values = true,
        default_value_t = 256
    )]
    pub dataset_max_columns: usize,
}

/// `switchyard dataset`: the datasets of a running server's projects.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    pub command: DatasetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Upload a CSV, JSON or JSON-lines file to a running server as a project's dataset.
    ///
    /// A dataset of the same name is replaced, in one revision of the project.
    #[command(after_help = DATASET_IMPORT_EXAMPLE)]
    Import(DatasetImportArgs),
}

const DATASET_IMPORT_EXAMPLE: &str = "\
The file is streamed with its progress on stderr; once the server has read and checked it,
the dataset's rows, columns and endpoints are printed. A bad row is refused with its line
and column, and nothing changes.

Example (a token from POST /auth/login or /auth/tokens):

  export SWITCHYARD_TOKEN=...
  switchyard dataset import iris.csv --project alice/iris-demo \\
      --types species:text --endpoints default --category species

  dataset alice/iris-demo/iris: 150 rows, 5 columns (3.8 KiB), revision 7
    column        type    source    nullable
    sepal_length  number  inferred  no
    ...";

/// `switchyard dataset import`: a file uploaded as a project's dataset.
#[derive(Debug, Args)]
pub struct DatasetImportArgs {
    /// The file: .csv (a header row, then records), .json (an array of objects), .jsonl or
    /// .ndjson (one object per line).
    pub file: PathBuf,

    /// The project to import into.
    #[arg(long, value_name = "OWNER/PROJECT", value_parser = parse_project)]
    pub project: String,

    /// The dataset's name (default: the file's stem, lower-cased, each character other than
    /// a-z, 0-9, `_` and `-` made `-`, runs of `-` made one, and `-` and `_` dropped from
    /// both ends: `My Data (v2).csv` is `my-data-v2`).
    #[arg(long)]
    pub name: Option<String>,

    /// Declared column types, COLUMN:TYPE separated by commas, each type integer, number,
    /// text or boolean (e.g. zip:text,age:integer); the other columns' types are inferred.
    #[arg(long, value_name = "SPEC", value_parser = parse_types)]
    pub types: Option<String>,

    /// `default` also creates the dataset's standard query, stats and schema endpoints;
    /// `none` (the default) creates none.
    #[arg(long, value_enum, value_name = "SET")]
    pub endpoints: Option<EndpointSet>,

    /// The category column the dataset's endpoints filter and group by.
    #[arg(long, value_name = "COL")]
    pub category: Option<String>,

    /// The path inside the project under which the dataset's endpoints are made.
    #[arg(long, value_name = "/PATH", value_parser = parse_prefix)]
    pub prefix: Option<String>,

    /// The file's format, when its extension does not tell it (or tells it wrong).
    #[arg(long, value_enum)]
    pub format: Option<UploadFormat>,

    /// Check the file and show what the import would change, changing nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Where the client commands find the server, and who they are there.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The server's base URL (default: the one `switchyard login` logged in to last, else
    /// http://127.0.0.1:8080).
    #[arg(long, env = "SWITCHYARD_SERVER", hide_env_values = true)]
    pub server: Option<String>,

    /// A bearer token of the project's owner or of an admin: an API token, or the
    /// `access_token` of a login (default: the one `switchyard login` stored for the
    /// server).
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl RemoteArgs {
    /// A client of the server these arguments, or the stored login, name.
    fn client(self) -> anyhow::Result<remote::Client> {
        let stored = remote::Credentials::load()?;
        let (server, token) = stored.resolve(self.server, self.token);
        Ok(remote::Client::new(&server, token)?)
    }
}

/// A runtime for a client command.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The endpoints an import creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointSet {
    Default,
    None,
}

/// The format of an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadFormat {
    Csv,
    Json,
    Jsonl,
}

fn parse_project(value: &str) -> Result<String, String> {
    remote::ProjectRef::parse(value).map(|_| value.to_owned())
}

fn parse_types(value: &str) -> Result<String, String> {
    remote::parse_types(value)
}

fn parse_prefix(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_owned())
    } else {
        Err(format!("`{value}` does not start with `/`"))
    }
}

/// `switchyard gateway`: a gateway from a YAML file of routes and backends.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The YAML file of routes, backends and the default response; followed as it changes.
    #[arg(
        long,
        short = 'c',
        env = "SWITCHYARD_GATEWAY_CONFIG",
        hide_env_values = true
    )]
    pub config: PathBuf,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// Settings every kind of node takes: where it listens, connection limits, logs.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "SWITCHYARD_LISTEN",
        hide_env_values = true,
        default_value = "127.0.0.1"
    )]
    pub listen: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(
        long,
        short = 'p',
        env = "SWITCHYARD_PORT",
        hide_env_values = true,
        default_value_t = 8080
    )]
    pub port: u16,

    /// Largest request body a project endpoint takes (e.g. 16MiB); larger ones get 413.
    #[arg(long, env = "SWITCHYARD_BODY_LIMIT", hide_env_values = true, default_value = "16MiB", value_parser = parse_size)]
    pub body_limit: usize,

    /// How long shutdown waits for in-flight requests.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Longest wait for a request's head (request line and headers) to arrive.
    #[arg(long, env = "SWITCHYARD_HEADER_READ_TIMEOUT", hide_env_values = true, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest a keep-alive connection may sit idle between requests before it is closed.
    #[arg(long, env = "SWITCHYARD_IDLE_TIMEOUT", hide_env_values = true, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Longest reading one request body may take (project and platform alike); then 408.
    #[arg(long, env = "SWITCHYARD_BODY_READ_TIMEOUT", hide_env_values = true, default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// Open connections at most; beyond it new ones wait until others close.
    #[arg(
        long,
        env = "SWITCHYARD_MAX_CONNECTIONS",
        hide_env_values = true,
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Largest request head (request line and headers) read; larger ones get 431.
    #[arg(long, env = "SWITCHYARD_MAX_HEADER_SIZE", hide_env_values = true, default_value = "64KiB", value_parser = parse_size)]
    pub max_header_size: usize,

    /// Worker threads (default: one per core; 1 runs everything on one thread).
    #[arg(long, env = "SWITCHYARD_WORKERS", hide_env_values = true)]
    pub workers: Option<usize>,

    /// Log level or filter, as RUST_LOG takes it (e.g. info, warn,access=info,
    /// switchyard=debug).
    #[arg(
        long = "log-level",
        alias = "log",
        env = "SWITCHYARD_LOG",
        hide_env_values = true,
        default_value = "info"
    )]
    pub log: String,

    /// Log line format: text, or one JSON object per line.
    #[arg(
        long,
        env = "SWITCHYARD_LOG_FORMAT",
        hide_env_values = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Write logs to this file instead of standard error, rotated daily (PATH.YYYY-MM-DD).
    #[arg(long, env = "SWITCHYARD_LOG_FILE", hide_env_values = true)]
    pub log_file: Option<PathBuf>,

    /// Rotated log files kept, besides today's.
    #[arg(
        long,
        env = "SWITCHYARD_LOG_RETENTION",
        hide_env_values = true,
        default_value_t = 7
    )]
    pub log_retention: usize,

    /// One access-log line per request (target `access`, level info); /health and /ready
    /// are never logged.
    #[arg(
        long,
        env = "SWITCHYARD_ACCESS_LOG",
        hide_env_values = true,
        value_enum,
        default_value = "on"
    )]
    pub access_log: Switch,

    /// Load Redoc's script on the /redoc pages from this URL (a CDN, say) instead of the
    /// copy built into the binary.
    #[arg(long, env = "SWITCHYARD_REDOC_URL", hide_env_values = true)]
    pub redoc_url: Option<String>,
}

/// A feature switch on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

fn parse_size(value: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = value.parse()?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{value} is too large"))
}

impl NodeArgs {
    /// These settings over the defaults of a node with the store at `db`.
    fn config(&self, db: String) -> Config {
        let mut config = Config::new(db);
        config.listen = self.listen;
        config.port = self.port;
        config.body_limit = self.body_limit as u64;
        config.shutdown_timeout = self.shutdown_timeout;
        config.limits = ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
            max_connections: self.max_connections,
            max_header_size: self.max_header_size,
        };
        config.access_log = self.access_log == Switch::On;
        config.pages.redoc_url = self.redoc_url.clone();
        config
    }

    /// Starts logging and the async runtime these settings ask for, and runs `main` on it.
    fn run<F: std::future::Future<Output = anyhow::Result<()>>>(
        &self,
        main: impl FnOnce() -> F,
    ) -> anyhow::Result<()> {
        // Held to the end: dropping it flushes the log writer.
        let _logs = logs::init(&LogSettings {
            filter: self.log.clone(),
            format: self.log_format,
            file: self.log_file.clone(),
            retention: self.log_retention,
        })?;
        // One worker means one core: a current-thread runtime serves it without the
        // work-stealing machinery a multi-thread runtime pays for on every wake-up.
        let mut runtime = match self.workers {
            Some(1) => tokio::runtime::Builder::new_current_thread(),
            Some(workers) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(workers.max(1));
                builder
            }
            None => tokio::runtime::Builder::new_multi_thread(),
        };
        runtime.enable_all();
        let runtime = runtime.build().context("starting the async runtime")?;
        runtime.block_on(main())
    }
}

impl ServeArgs {
    /// Resolves the parsed options into a validated configuration.
    pub fn config(&self) -> anyhow::Result<Config> {
        let config = Config {
            demo: self.demo,
            // Project folders serve no account API: nothing to register for.
            registration: self
                .registration
                .or(self.projects.as_ref().map(|_| Registration::Closed)),
            admin: Config::admin_from(self.admin_user.clone(), self.admin_password.clone())?,
            admin_body_limit: self.admin_body_limit,
            session_ttl: self.session_ttl,
            login: LoginLimits {
                hash_concurrency: self.hash_concurrency.unwrap_or(0),
                hash_queue: self.hash_queue,
                failures_per_address: self.login_failures_per_address,
                failures_per_user: self.login_failures_per_user,
                failure_window: self.login_failure_window,
            },
            quotas: Quotas {
                projects_per_user: self.max_projects_per_user,
                endpoints_per_project: self.max_endpoints_per_project,
                tokens_per_user: self.max_tokens_per_user,
                pattern_siblings: self.max_pattern_siblings,
            },
            journal_size: self.journal_size,
            journal_body: self.journal_body,
            proxy_allow: self.proxy_allow.clone(),
            scripts: crate::config::ScriptSettings {
                memory_bytes: self.script_memory,
                cpu_time: self.script_cpu_time,
                queue: self.script_queue,
                kv_max_keys: self.kv_max_keys,
                kv_max_bytes: self.kv_max_bytes as u64,
            },
            datasets: crate::datasets::UploadSettings {
                limits: crate::dataset::Limits {
                    max_rows: self.dataset_max_rows,
                    max_columns: self.dataset_max_columns,
                    ..crate::dataset::Limits::default()
                },
                max_bytes: self.dataset_max_bytes as u64,
                idle_timeout: self.node.body_read_timeout,
            },
            commit_gate: None,
            ..self.node.config(self.db.clone())
        };
        config.validate()?;
        Ok(config)
    }
}

/// Runs the command line; the exit code is 0 on a clean stop and 1 on any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard: {error:#}");
            let hint = error
                .downcast_ref::<RemoteError>()
                .and_then(RemoteError::hint)
                .or_else(|| {
                    error
                        .downcast_ref::<crate::projects::scaffold::ScaffoldError>()
                        .and_then(|e| e.hint())
                        .map(str::to_owned)
                });
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Gateway(args) => gateway(args),
        Command::Dataset(DatasetArgs {
            command: DatasetCommand::Import(args),
        }) => import_dataset(args),
        Command::New(args) => new_project(args),
        Command::Rename(args) => rename_project(args),
        Command::AddRouter(args) => add_router(args),
        Command::Validate(args) => validate(args),
        Command::Run(args) => run_folder(args),
        Command::Push(args) => push(args),
        Command::Pull(args) => pull(args),
        Command::Login(args) => login(args),
        Command::Schema(args) => {
            let schema = match args.file {
                SchemaFile::Manifest => crate::projects::schema::manifest(),
                SchemaFile::Router => crate::projects::schema::router(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(())
        }
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "switchyard",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn new_project(args: NewArgs) -> anyhow::Result<()> {
    use crate::projects::scaffold::{self, Template};
    let template = match args.template {
        TemplateArg::Mock => Template::Mock,
        TemplateArg::Script => Template::Script,
        TemplateArg::Gateway => Template::Gateway,
        TemplateArg::Dataset => Template::Dataset,
    };
    let dir = scaffold::new_project(&args.dir, &args.name, template)?;
    println!(
        "created {} ({} template); check it with: switchyard validate {}",
        dir.display(),
        template.name(),
        dir.display()
    );
    Ok(())
}

fn rename_project(args: RenameArgs) -> anyhow::Result<()> {
    let dir = crate::projects::scaffold::rename(&args.old, &args.new)?;
    println!("renamed {} to {}", args.old.display(), dir.display());
    Ok(())
}

fn add_router(args: AddRouterArgs) -> anyhow::Result<()> {
    let file =
        crate::projects::scaffold::add_router(&args.project, &args.name, args.prefix.as_deref())?;
    println!("created {}", file.display());
    Ok(())
}

/// Checks one folder or each folder of a directory; each problem is a line on stderr.
fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let manifest = args.dir.join(crate::projects::MANIFEST);
    let folders: Vec<PathBuf> = if manifest.is_file() {
        vec![args.dir.clone()]
    } else {
        let found = crate::projects::host::folders_of(&args.dir)
            .with_context(|| format!("{} cannot be read", args.dir.display()))?;
        if found.is_empty() {
            anyhow::bail!(
                "{} is not a project folder and holds none (no {} in it or in its folders)",
                args.dir.display(),
                crate::projects::MANIFEST
            );
        }
        found
    };
    let mut bad = 0;
    let mut read = Vec::new();
    for dir in &folders {
        match read_reporting(dir) {
            Ok(folder) => read.push((dir, folder)),
            Err(_) => bad += 1,
        }
    }
    // What reads is compiled as a server would compile it (route conflicts, the script,
    // the datasets), on a node of its own that nothing can reach.
    if !read.is_empty() {
        let runtime = client_runtime()?;
        bad += runtime.block_on(async {
            let mut config = Config::new(String::new());
            config.port = 0;
            config.access_log = false;
            let mut host = Host::start(config, Layout::Name).await?;
            host.set_overrides(crate::projects::Overrides::None);
            let mut bad = 0;
            for (dir, folder) in &read {
                match host.apply(dir).await {
                    Ok(_) => println!("{}: ok, {}", dir.display(), summary(folder)),
                    Err(error) => {
                        bad += 1;
                        eprintln!("{error}");
                    }
                }
            }
            host.shutdown().await;
            anyhow::Ok(bad)
        })?;
    }
    if bad > 0 {
        anyhow::bail!("{bad} of {} project folders have problems", folders.len());
    }
    Ok(())
}

/// `project shop: 5 endpoints (2 in routers), a script, 1 dataset`.
fn summary(folder: &crate::projects::Folder) -> String {
    let routed: usize = folder.routers.iter().map(|r| r.endpoints).sum();
    let mut parts = vec![format!(
        "project {}: {} endpoints ({routed} in {} routers)",
        folder.name,
        folder.definition.endpoints.len(),
        folder.routers.len()
    )];
    if folder.script.is_some() {
        parts.push("a script".into());
    }
    if !folder.datasets.is_empty() {
        parts.push(format!("{} datasets", folder.datasets.len()));
    }
    parts.join(", ")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    if let Some(dir) = args.projects.clone() {
        return args.node.run(|| serve_folders(config, dir));
    }
    args.node.run(|| async {
        let server = server::start(config).await?;
        let addr = server.addr();
        if let Some(demo) = server.demo() {
            println!("Switchyard demo at http://{addr}");
            match &demo.password {
                Some(password) => println!("  user {} / password {password}", demo.username),
                None => println!(
                    "  user {} (exists; its password was printed when it was made)",
                    demo.username
                ),
            }
            for endpoint in &demo.endpoints {
                if let Some((method, path)) = endpoint.split_once(' ') {
                    println!("  {method:<6} http://{addr}{}{path}", demo.project_mount);
                }
            }
            println!("  a script (docs/scripts.md), a todo API kept in kv:");
            for route in &demo.script_routes {
                if let Some((method, path)) = route.split_once(' ') {
                    println!("  {method:<6} http://{addr}{}{path}", demo.script_mount);
                }
            }
            println!("  the iris dataset (docs/datasets.md), queried and summarised:");
            for endpoint in &demo.dataset_endpoints {
                if let Some((method, path)) = endpoint.split_once(' ') {
                    println!("  {method:<6} http://{addr}{}{path}", demo.dataset_mount);
                }
            }
        }
        println!("Switchyard listening on http://{addr}");
        server.run_until_signal().await;
        Ok(())
    })
}

/// `switchyard run DIR`: one folder at `/`.
fn run_folder(args: RunArgs) -> anyhow::Result<()> {
    let config = args.node.config(String::new());
    let dir = args.dir.clone();
    args.node.run(|| async move {
        let mut host = Host::start(config, Layout::Root).await?;
        let name = host.apply(&dir).await?;
        let addr = host.server().addr();
        println!(
            "Serving {name} from {} at http://{addr}/ (health: /health, docs: /docs)",
            dir.display()
        );
        follow(host, dir).await
    })
}

/// Reads the folder at `dir`; when it has problems, prints each on stderr (its file named
/// from where the command was run) and answers how many.
fn read_reporting(dir: &std::path::Path) -> Result<crate::projects::Folder, usize> {
    crate::projects::read(dir).map_err(|errors| {
        let problems = errors.len();
        for error in errors {
            eprintln!("{}", error.under(dir));
        }
        problems
    })
}

/// `switchyard push DIR`.
fn push(args: PushArgs) -> anyhow::Result<()> {
    let folder = match read_reporting(&args.dir) {
        Ok(folder) => folder,
        Err(problems) => anyhow::bail!(
            "{} has {problems} problem{}; nothing was sent",
            args.dir.display(),
            if problems == 1 { "" } else { "s" }
        ),
    };
    let client = args.remote.client()?;
    let runtime = client_runtime()?;
    let pushed = runtime.block_on(async {
        let owner = match args.owner {
            Some(owner) => owner,
            None => client.whoami().await?,
        };
        client.push(&folder, &owner, args.dry_run).await
    })?;
    print!("{pushed}");
    Ok(())
}

/// `switchyard pull OWNER/PROJECT DIR`.
fn pull(args: PullArgs) -> anyhow::Result<()> {
    let project = remote::ProjectRef::parse(&args.project).map_err(anyhow::Error::msg)?;
    if args.dir.exists() {
        anyhow::bail!(
            "{} already exists; a pull never writes over a folder",
            args.dir.display()
        );
    }
    let client = args.remote.client()?;
    let runtime = client_runtime()?;
    let pulled = runtime.block_on(client.pull(&project, &args.dir))?;
    print!("{pulled}");
    Ok(())
}

/// `switchyard login`.
fn login(args: LoginArgs) -> anyhow::Result<()> {
    let mut stored = remote::Credentials::load()?;
    let (server, _) = stored.resolve(args.remote.server.clone(), None);
    let runtime = client_runtime()?;
    let (username, token) = match (args.username, args.remote.token) {
        (Some(username), _) => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!(
                    "no password on standard input (echo \"$PASSWORD\" | switchyard login …)"
                );
            }
            let client = remote::Client::new(&server, None)?;
            let token = runtime.block_on(client.login(&username, password))?;
            (username, token)
        }
        (None, Some(token)) => {
            let client = remote::Client::new(&server, Some(token.clone()))?;
            let username = runtime.block_on(client.whoami())?;
            (username, token)
        }
        (None, None) => {
            anyhow::bail!("pass --username NAME (the password on stdin) or --token TOKEN")
        }
    };
    stored.remember(
        &server,
        remote::Login {
            username: username.clone(),
            token,
        },
    );
    let path = stored.save()?;
    println!(
        "logged in to {} as {username}; the token is kept in {}",
        server.trim_end_matches('/'),
        path.display()
    );
    Ok(())
}

/// `switchyard serve --projects DIR`: each folder of `dir` at `/{name}`.
async fn serve_folders(config: Config, dir: PathBuf) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut host = Host::start(config, Layout::Name).await?;
    host.sync(&dir).await;
    let addr = host.server().addr();
    println!(
        "Serving the project folders of {} at http://{addr}/ (health: /health, docs: /docs)",
        dir.display()
    );
    for project in host.names() {
        println!("  http://{addr}/{project}/");
    }
    follow(host, dir).await
}

/// Follows the folders until SIGINT or SIGTERM, then stops.
async fn follow(host: Host, dir: PathBuf) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(host.watch(dir, stopped));
    server::wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let host = watcher.await.context("the folder watcher failed")?;
    host.shutdown().await;
    Ok(())
}

fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let config = args.node.config(String::new());
    let file = args.config.clone();
    args.node.run(|| async {
        let server = server::start_gateway(config, file).await?;
        println!("Switchyard gateway listening on http://{}", server.addr());
        server.run_until_signal().await;
        Ok(())
    })
}

fn import_dataset(args: DatasetImportArgs) -> anyhow::Result<()> {
    let project = remote::ProjectRef::parse(&args.project).map_err(anyhow::Error::msg)?;
    let import = remote::Import {
        file: args.file,
        project,
        name: args.name,
        format: args.format.map(|format| match format {
            UploadFormat::Csv => remote::Format::Csv,
            UploadFormat::Json => remote::Format::Json,
            UploadFormat::Jsonl => remote::Format::JsonLines,
        }),
        types: args.types,
        endpoints: args.endpoints == Some(EndpointSet::Default),
        category: args.category,
        prefix: args.prefix,
        dry_run: args.dry_run,
    };
    let client = args.remote.client()?;
    let runtime = client_runtime()?;
    let terminal = std::io::stderr().is_terminal();
    let report = runtime.block_on(remote::import(&client, &import, terminal))?;
    print!("{report}");
    Ok(())
}
