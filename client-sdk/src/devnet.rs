//! A local anvil chain with Ingrid's contracts, for the demo, the dev stack and tests.

use std::path::PathBuf;

use alloy::node_bindings::{Anvil, AnvilInstance, NodeError};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;

/// The anvil executable: `$INGRID_ANVIL` if set, else the one `scripts/setup.sh` installs
/// under `contracts/node_modules/.bin/`, else `anvil` on the `PATH`.
pub fn anvil_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("INGRID_ANVIL") {
        return PathBuf::from(path);
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/node_modules/.bin/anvil");
    if installed.exists() { installed } else { PathBuf::from("anvil") }
}

/// A running local chain (stopped on drop) with its funded dev accounts.
pub struct Devnet {
    /// The anvil process.
    pub anvil: AnvilInstance,
}

impl Devnet {
    /// Starts anvil on a free loopback port, mining a block per transaction.
    pub fn start() -> Result<Self, NodeError> {
        Self::spawn(Anvil::new())
    }

    /// Starts anvil on a free loopback port, mining a block every `seconds`.
    pub fn start_with_block_time(seconds: u64) -> Result<Self, NodeError> {
        Self::spawn(Anvil::new().block_time(seconds))
    }

    /// Starts anvil with `accounts` funded dev accounts (anvil's default is ten).
    pub fn start_with_accounts(accounts: usize) -> Result<Self, NodeError> {
        Self::spawn(Anvil::new().arg("--accounts").arg(accounts.to_string()))
    }

    fn spawn(anvil: Anvil) -> Result<Self, NodeError> {
        let anvil = anvil.path(anvil_binary()).arg("--host").arg("127.0.0.1").try_spawn()?;
        Ok(Self { anvil })
    }

    /// The `i`-th funded dev account's key (anvil has ten).
    pub fn key(&self, i: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(&self.anvil.keys()[i])
    }

    /// One of anvil's first four dev account keys (derived from its public test mnemonic),
    /// valid on any anvil started with its default accounts. `None` past index 3.
    pub fn dev_key(i: usize) -> Option<PrivateKeySigner> {
        const KEYS: [&str; 4] = [
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
            "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        ];
        KEYS.get(i).and_then(|k| k.parse().ok())
    }

    /// A provider for the node at `url` that signs with `key`.
    pub fn provider_at(url: reqwest::Url, key: &PrivateKeySigner) -> DynProvider {
        crate::chain::provider_with_client(crate::tls::http_client(), url, key)
    }

    /// A provider that signs transactions with `key`.
    pub fn provider(&self, key: &PrivateKeySigner) -> DynProvider {
        Self::provider_at(self.anvil.endpoint_url(), key)
    }
}
