//! Opens a basic channel with a hub, pays the hub, closes the channel and withdraws: what a
//! new user does first. With `ingrid dev` running:
//!
//! ```sh
//! cargo run -p ingrid-client-sdk --example basic_channel -- \
//!     http://127.0.0.1:8547 <anvil RPC URL printed by ingrid dev> [client key, hex]
//! ```
//!
//! The client key defaults to anvil's dev account 1 (funded with ETH and test tokens).

use std::time::Duration;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::alloy;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::{Deposit, Wallet};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(hub_url), Some(rpc_url)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: basic_channel <hub url> <rpc url> [client key hex]");
    };
    let key: PrivateKeySigner = match args.get(3) {
        Some(hex) => hex.parse()?,
        None => Devnet::dev_key(1).ok_or_else(|| anyhow::anyhow!("no dev key"))?,
    };
    let provider = Devnet::provider_at(rpc_url.parse()?, &key);
    let store = ChannelStore::open(&std::env::temp_dir().join(format!("ingrid-client-{}", key.address())))?;
    let wallet = Wallet::connect(hub_url, key, store, provider).await?;
    let eth = wallet.hub_info().assets.iter().find(|a| a.token.is_none()).map(|a| a.holder);
    let eth = eth.ok_or_else(|| anyhow::anyhow!("the hub does not accept ETH"))?;
    let milli = U256::from(10u64).pow(U256::from(15));

    let id = wallet
        .open_channel(
            &[Deposit { asset: eth, mine: U256::from(100u64) * milli, hub: U256::from(100u64) * milli }],
            3600,
        )
        .await?;
    println!("opened channel {id}; waiting for both deposits to be confirmed");
    wallet.wait_until_open(id, Duration::from_secs(60)).await?;
    wallet.pay_hub(id, eth, U256::from(5u64) * milli).await?;
    println!("paid the hub 0.005 ETH off-chain");
    wallet.close(id).await?;
    println!("closed; waiting for the hub to conclude on chain");
    let withdrawn = wallet.withdraw(id, Duration::from_secs(120)).await?;
    println!("withdrew {} wei", withdrawn[0]);
    Ok(())
}
