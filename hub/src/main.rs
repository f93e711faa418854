//! The `ingrid` binary.

use clap::{Parser, Subcommand};

/// Ingrid, a payment hub for Perun virtual payment channels over Ethereum.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local anvil chain, deploy the contracts and settle the seed's worked example
    /// (Alice, Ingrid, Bob and one virtual channel) through them, printing the balances.
    Demo,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo => {
            let report = ingrid_hub::demo::run_on_fresh_devnet(&mut std::io::stdout()).await?;
            report.check()?;
            Ok(())
        }
    }
}
