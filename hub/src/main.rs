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
    #[command(subcommand)]
    command: Command,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
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
    }
    Ok(())
}
