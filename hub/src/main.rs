//! The `ingrid` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ingrid_hub::config::Config;
use ingrid_hub::{db, demo, dev, sale, server};

/// Ingrid, a payment hub for Perun virtual payment channels over Ethereum.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per line, with the
    /// request id of every HTTP request's span) for log collectors.
    #[arg(long, global = true, env = "INGRID_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The operator's commands (they call the operator API of a running hub).
#[derive(Subcommand)]
enum AdminCommand {
    /// Clients with their channel counts.
    Clients,
    /// Basic channels with their latest balances.
    Channels,
    /// Virtual channels.
    VirtualChannels,
    /// The hub's locked and free collateral per asset.
    Collateral,
    /// The hub's chain transactions.
    Outbox,
    /// Registrations on chain and how they ended.
    Disputes,
    /// Whether new virtual channels are paused, and whether this process leads.
    Status,
    /// Refuse new virtual channels (drain before maintenance); open ones are still served.
    Pause,
    /// Accept new virtual channels again.
    Resume,
    /// Read the configuration again and take its policy (limits, fees) for new decisions.
    Reload,
    /// Close a client's basic channel on chain (register, conclude, withdraw).
    Close {
        /// The channel id (0x…).
        channel: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Serve the hub: HTTP API, chain watcher and outbox (runs pending migrations first).
    Serve {
        /// Configuration file (TOML); `INGRID_*` environment variables override it.
        #[arg(long, short, env = "INGRID_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// Configuration file (TOML); only `database_url` is read.
        #[arg(long, short, env = "INGRID_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the local stack: a private Postgres, a local anvil with the contracts and a test
    /// token, and the hub; stops them all on Ctrl-C.
    Dev {
        /// Where the Postgres cluster and the generated config live.
        #[arg(long, default_value = ".ingrid/dev")]
        data_dir: PathBuf,
        /// Where the hub listens.
        #[arg(long, default_value = "127.0.0.1:8547")]
        listen: SocketAddr,
    },
    /// The README demo: the seed's nanoservice sale through a real hub (a private Postgres
    /// or `$DATABASE_URL`'s server, a local anvil): 10 virtual channels, 100 paid requests,
    /// balances after each; then the seed's worked example settled through the contracts.
    Demo,
    /// Operate a running hub through its operator API.
    Admin {
        /// The hub's URL.
        #[arg(long, env = "INGRID_URL", default_value = "http://127.0.0.1:8547")]
        url: String,
        /// The operator token (`operator_token` in the hub's configuration).
        #[arg(long, env = "INGRID_OPERATOR_TOKEN")]
        token: String,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // TLS (`https://` chain nodes, the admin commands' requests): rustls on ring.
    ingrid_client_sdk::tls::install_crypto_provider();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            server::start(config).await?.run_until_signal().await;
        }
        Command::Migrate { config } => {
            let url = match config {
                Some(path) => Config::load(Some(&path))?.database_url,
                None => std::env::var("INGRID_DATABASE_URL")
                    .map_err(|_| anyhow::anyhow!("set --config or INGRID_DATABASE_URL"))?,
            };
            let pool = db::connect(&url, 1).await?;
            db::MIGRATOR.run(&pool).await?;
            println!("migrations applied");
        }
        Command::Dev { data_dir, listen } => dev::run_dev(dev::DevOptions { data_dir, listen }).await?,
        Command::Demo => {
            let mut out = std::io::stdout();
            println!("== The seed's nanoservice sale (section 4.1) through the hub");
            sale::run(&mut out).await?.check()?;
            println!("\n== The seed's worked example (figures 4-9) settled through the contracts");
            demo::run_on_fresh_devnet(&mut out).await?.check()?;
        }
        Command::Admin { url, token, command } => {
            use reqwest::Method;
            let (method, path) = match &command {
                AdminCommand::Clients => (Method::GET, "/v1/admin/clients".to_string()),
                AdminCommand::Channels => (Method::GET, "/v1/admin/channels".into()),
                AdminCommand::VirtualChannels => (Method::GET, "/v1/admin/virtual-channels".into()),
                AdminCommand::Collateral => (Method::GET, "/v1/admin/collateral".into()),
                AdminCommand::Outbox => (Method::GET, "/v1/admin/outbox".into()),
                AdminCommand::Disputes => (Method::GET, "/v1/admin/disputes".into()),
                AdminCommand::Status => (Method::GET, "/v1/admin/status".into()),
                AdminCommand::Pause => (Method::POST, "/v1/admin/pause".into()),
                AdminCommand::Resume => (Method::POST, "/v1/admin/resume".into()),
                AdminCommand::Reload => (Method::POST, "/v1/admin/reload".into()),
                AdminCommand::Close { channel } => (Method::POST, format!("/v1/admin/channels/{channel}/close")),
            };
            println!("{}", ingrid_hub::admin::run_cli(&url, &token, method, &path).await?);
        }
    }
    Ok(())
}
