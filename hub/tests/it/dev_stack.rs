//! `ingrid dev` as a new user runs it from the README: the embedded stack starts with a random
//! operator token, the operator reloads its policy, a client opens, pays into and closes a
//! basic channel through it with the SDK, and Ctrl-C (SIGTERM) stops everything cleanly.

use std::process::Stdio;
use std::time::Duration;

use alloy::primitives::U256;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::wallet::{Deposit, Wallet};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::ingrid_binary;

#[tokio::test]
async fn ingrid_dev_serves_a_client_end_to_end_and_stops_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut dev = Command::new(ingrid_binary())
        .args(["dev", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(dev.stdout.take().expect("stdout")).lines();
    let mut rpc = None;
    let mut operator_token = None;
    let banner = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.trim().strip_prefix("chain") {
                rpc = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.trim().strip_prefix("operator token:") {
                operator_token = Some(rest.trim().to_string());
            }
            if line.starts_with("Ctrl-C stops") {
                return anyhow::Ok(());
            }
        }
        anyhow::bail!("ingrid dev exited before serving")
    };
    tokio::time::timeout(Duration::from_secs(120), banner).await??;
    let rpc = rpc.ok_or_else(|| anyhow::anyhow!("ingrid dev printed no chain URL"))?;
    let operator_token = operator_token.ok_or_else(|| anyhow::anyhow!("ingrid dev printed no operator token"))?;
    ingrid_hub::config::check_operator_token(&operator_token)?;
    // The operator reloads the policy from the file `ingrid dev` wrote.
    let reload = ingrid_client_sdk::tls::http_client()
        .post(format!("http://127.0.0.1:{port}/v1/admin/reload"))
        .bearer_auth(&operator_token)
        .send()
        .await?;
    anyhow::ensure!(reload.status() == 200, "reload under ingrid dev: {}", reload.text().await?);

    // A client with anvil's dev account 1, as the README suggests.
    let key = Devnet::dev_key(1).expect("dev key 1");
    let provider = Devnet::provider_at(rpc.parse()?, &key);
    let store = ChannelStore::open(&dir.path().join("client"))?;
    let wallet = Wallet::connect(&format!("http://127.0.0.1:{port}"), key, store, provider).await?;
    let token = wallet.hub_info().assets.iter().find(|a| a.token.is_some()).expect("a test token").holder;
    let id = wallet
        .open_channel(&[Deposit { asset: token, mine: U256::from(1_000_000u64), hub: U256::from(500_000u64) }], 600)
        .await?;
    wallet.wait_until_open(id, Duration::from_secs(60)).await?;
    wallet.pay_hub(id, token, U256::from(250_000u64)).await?;
    wallet.close(id).await?;
    let withdrawn = wallet.withdraw(id, Duration::from_secs(60)).await?;
    assert_eq!(withdrawn, vec![U256::from(750_000u64)]);

    let pid = dev.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status()?;
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), dev.wait()).await??;
    assert!(exit.success(), "ingrid dev exited with {exit}");
    Ok(())
}
