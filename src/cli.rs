//! The command line: every option is defined once here, with its help and its `SWITCHYARD_*`
//! variable, then resolved into a `config::Config` and handed to `server`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Registration};
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
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
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

    /// Who may create accounts: open (anyone; the first becomes admin) or closed (admins only).
    #[arg(long, env = "SWITCHYARD_REGISTRATION", hide_env_values = true, value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// Admin account to create at start if missing (with --admin-password).
    #[arg(long, env = "SWITCHYARD_ADMIN_USER", hide_env_values = true)]
    pub admin_user: Option<String>,

    /// Password of the admin account created at start.
    #[arg(long, env = "SWITCHYARD_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Largest request body the platform API reads (e.g. 1MiB, 512KiB).
    #[arg(long, env = "SWITCHYARD_ADMIN_BODY_LIMIT", hide_env_values = true, default_value = "1MiB", value_parser = parse_size)]
    pub admin_body_limit: usize,

    /// Largest request body a project endpoint takes (e.g. 16MiB); larger ones get 413.
    #[arg(long, env = "SWITCHYARD_BODY_LIMIT", hide_env_values = true, default_value = "16MiB", value_parser = parse_size)]
    pub body_limit: usize,

    /// How long a login session lasts (e.g. 24h, 30m).
    #[arg(long, env = "SWITCHYARD_SESSION_TTL", hide_env_values = true, default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// How long shutdown waits for in-flight requests.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Worker threads (default: one per core; 1 runs everything on one thread).
    #[arg(long, env = "SWITCHYARD_WORKERS", hide_env_values = true)]
    pub workers: Option<usize>,

    /// Log filter, as RUST_LOG takes it (e.g. info, switchyard=debug).
    #[arg(
        long,
        env = "SWITCHYARD_LOG",
        hide_env_values = true,
        default_value = "info"
    )]
    pub log: String,
}

fn parse_size(value: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = value.parse()?;
    usize::try_from(size.as_u64()).map_err(|_| format!("{value} is too large"))
}

impl ServeArgs {
    /// Resolves the parsed options into a validated configuration.
    pub fn config(&self) -> anyhow::Result<Config> {
        let config = Config {
            listen: self.listen,
            port: self.port,
            db: self.db.clone(),
            demo: self.demo,
            registration: self.registration,
            admin: Config::admin_from(self.admin_user.clone(), self.admin_password.clone())?,
            admin_body_limit: self.admin_body_limit,
            body_limit: self.body_limit as u64,
            session_ttl: self.session_ttl,
            shutdown_timeout: self.shutdown_timeout,
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
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("--log / SWITCHYARD_LOG")?,
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One worker means one core: a current-thread runtime serves it without the
    // work-stealing machinery a multi-thread runtime pays for on every wake-up.
    let mut runtime = match args.workers {
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
    runtime.block_on(async {
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
        }
        println!("Switchyard listening on http://{addr}");
        server.run_until_signal().await;
        Ok::<_, anyhow::Error>(())
    })
}
