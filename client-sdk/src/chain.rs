//! On-chain actions of a channel participant: deploy the contracts (local stacks and tests),
//! deposit, register, refute, conclude, withdraw, and read holdings and dispute records.
//!
//! `send_*` functions return once the node accepted the transaction (so a caller can record
//! its hash first); the others wait for the receipt. A revert becomes a [`ChainError`] whose
//! adjudicator error can be decoded.

use alloy::network::{Ethereum, EthereumWallet};
use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, PendingTransactionError, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::bindings::Channel::{Params, SignedState, State};
use crate::bindings::adjudicator::Adjudicator::{self, AdjudicatorErrors};
use crate::bindings::erc20_holder::Erc20AssetHolder;
use crate::bindings::eth_holder::{EthAssetHolder, IAssetHolder};
use crate::bindings::test_token::TestToken;
use crate::state::{Deployment, SignatureError, channel_id, funding_id, sign_digest};
use ingrid_protocol::app::AppDeployment;
use ingrid_protocol::bindings::apps::{CoinFlip, ConditionalPayment, TicTacToe};

/// Why an on-chain action failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused the call or transaction (a revert shows up here, at gas estimation).
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// The node could not be reached or answered an error.
    #[error("rpc failed: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// The transaction could not be followed to its receipt.
    #[error("transaction not confirmed: {0}")]
    Pending(#[from] PendingTransactionError),
    /// The transaction was mined but reverted.
    #[error("transaction {0} reverted")]
    Reverted(TxHash),
    /// A signature could not be made.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl ChainError {
    /// The adjudicator's custom error behind a revert, if that is what it was.
    pub fn adjudicator_error(&self) -> Option<AdjudicatorErrors> {
        match self {
            Self::Contract(e) => e.as_decoded_interface_error::<AdjudicatorErrors>(),
            _ => None,
        }
    }
}

/// Result of an on-chain action.
pub type ChainResult<T> = Result<T, ChainError>;

/// Where the contracts of one deployment live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contracts {
    /// Chain id and adjudicator: what signatures are bound to.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The ETH asset holder.
    pub eth_holder: Address,
    /// The apps deployed with them (none in a deployment from before apps).
    #[serde(default, skip_serializing_if = "AppDeployment::is_empty")]
    pub apps: AppDeployment,
}

impl Contracts {
    /// ETH as an asset.
    pub fn eth(&self) -> Asset {
        Asset { holder: self.eth_holder, token: None }
    }
}

/// An asset: its holder contract, and its ERC20 token (none for ETH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// The asset holder (the asset's id in outcomes).
    pub holder: Address,
    /// The ERC20 token, `None` for ETH.
    pub token: Option<Address>,
}

/// A provider for the node at `url` (`http://` or `https://`) that signs transactions with
/// `key` and sends its requests with `http`: e.g. [`crate::tls::tls_client`], trusting a
/// private root certificate. (`Devnet::provider_at` uses the platform's roots.)
pub fn provider_with_client(http: reqwest::Client, url: reqwest::Url, key: &PrivateKeySigner) -> DynProvider {
    crate::tls::install_crypto_provider();
    ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_reqwest(http, url)
        .erased()
}

/// A provider for the node at `url` (`http://`, `https://`, `ws://` or `wss://`; TLS with
/// rustls and the platform's roots) that signs transactions with `key`.
pub async fn connect(url: &str, key: &PrivateKeySigner) -> ChainResult<DynProvider> {
    crate::tls::install_crypto_provider();
    Ok(ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key.clone()))
        .connect(url)
        .await?
        .erased())
}

/// Waits for a transaction's receipt; a reverted transaction is an error.
pub async fn confirm(pending: PendingTransactionBuilder<Ethereum>) -> ChainResult<TransactionReceipt> {
    let receipt = pending.get_receipt().await?;
    if receipt.status() { Ok(receipt) } else { Err(ChainError::Reverted(receipt.transaction_hash)) }
}

/// Deploys the adjudicator, the ETH asset holder and the apps from the provider's wallet.
pub async fn deploy<P: Provider>(provider: &P) -> ChainResult<Contracts> {
    let chain_id = provider.get_chain_id().await?;
    let adjudicator = Adjudicator::deploy(provider).await?;
    let eth_holder = EthAssetHolder::deploy(provider, *adjudicator.address()).await?;
    Ok(Contracts {
        deployment: Deployment { chain_id, adjudicator: *adjudicator.address() },
        eth_holder: *eth_holder.address(),
        apps: deploy_apps(provider).await?,
    })
}

/// Deploys the apps Ingrid ships (their rules are pure: one deployment serves every
/// adjudicator).
pub async fn deploy_apps<P: Provider>(provider: &P) -> ChainResult<AppDeployment> {
    Ok(AppDeployment {
        coin_flip: *CoinFlip::deploy(provider).await?.address(),
        tic_tac_toe: *TicTacToe::deploy(provider).await?.address(),
        conditional_payment: *ConditionalPayment::deploy(provider).await?.address(),
    })
}

/// Deploys a mintable test token and its asset holder (local stacks and tests only).
pub async fn deploy_test_token<P: Provider>(provider: &P, contracts: &Contracts) -> ChainResult<Asset> {
    let token = TestToken::deploy(provider).await?;
    let holder = Erc20AssetHolder::deploy(provider, contracts.deployment.adjudicator, *token.address()).await?;
    Ok(Asset { holder: *holder.address(), token: Some(*token.address()) })
}

/// Mints test tokens (local stacks and tests only).
pub async fn mint_test_token<P: Provider>(
    provider: &P,
    token: Address,
    to: Address,
    amount: U256,
) -> ChainResult<TransactionReceipt> {
    confirm(TestToken::new(token, provider).mint(to, amount).send().await?).await
}

/// Sends a deposit of `amount` for `participant` in `channel` (for an ERC20, after an
/// approval that is awaited first).
pub async fn send_deposit<P: Provider>(
    provider: &P,
    asset: &Asset,
    channel: B256,
    participant: Address,
    amount: U256,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    send_to_holder(provider, asset, channel, participant, amount, false).await
}

/// Sends a deposit of `amount` on standby for `participant` in `channel`: coins that fund
/// only a raised total both participants signed, and otherwise go back to `participant` at
/// settlement (a collateral top-up; see `AssetHolder`). For an ERC20, after an approval that
/// is awaited first.
pub async fn send_standby<P: Provider>(
    provider: &P,
    asset: &Asset,
    channel: B256,
    participant: Address,
    amount: U256,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    send_to_holder(provider, asset, channel, participant, amount, true).await
}

async fn send_to_holder<P: Provider>(
    provider: &P,
    asset: &Asset,
    channel: B256,
    participant: Address,
    amount: U256,
    standby: bool,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    match asset.token {
        None => {
            let holder = EthAssetHolder::new(asset.holder, provider);
            Ok(if standby {
                holder.depositStandby(channel, participant, amount).value(amount).send().await?
            } else {
                holder.deposit(channel, participant, amount).value(amount).send().await?
            })
        }
        Some(token) => {
            confirm(TestToken::new(token, provider).approve(asset.holder, amount).send().await?).await?;
            let holder = Erc20AssetHolder::new(asset.holder, provider);
            Ok(if standby {
                holder.depositStandby(channel, participant, amount).send().await?
            } else {
                holder.deposit(channel, participant, amount).send().await?
            })
        }
    }
}

/// Deposits `amount` for `participant` in `channel` and waits for it.
pub async fn deposit<P: Provider>(
    provider: &P,
    asset: &Asset,
    channel: B256,
    participant: Address,
    amount: U256,
) -> ChainResult<TransactionReceipt> {
    confirm(send_deposit(provider, asset, channel, participant, amount).await?).await
}

/// Registers a ledger channel's state with the states of all its locks (depth-first).
pub async fn register<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    ledger: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(deployment.adjudicator, provider);
    confirm(adjudicator.register(ledger, subs).send().await?).await
}

/// Replaces a registered state with a newer one before the timeout.
pub async fn refute<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    channel: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(deployment.adjudicator, provider);
    confirm(adjudicator.refute(channel, subs).send().await?).await
}

/// Concludes a registered ledger channel after the timeout and pushes its outcome.
pub async fn conclude<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    params: Params,
    state: State,
    sub_states: Vec<State>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(deployment.adjudicator, provider);
    confirm(adjudicator.conclude(params, state, sub_states).send().await?).await
}

/// Sends the conclusion of a ledger channel from a final state signed by both.
pub async fn send_conclude_final<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    ledger: SignedState,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    Ok(Adjudicator::new(deployment.adjudicator, provider).concludeFinal(ledger).send().await?)
}

/// Concludes a ledger channel at once from a final state signed by both.
pub async fn conclude_final<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    ledger: SignedState,
) -> ChainResult<TransactionReceipt> {
    confirm(send_conclude_final(provider, deployment, ledger).await?).await
}

/// Phase of a dispute record, as the adjudicator numbers it.
pub mod phase {
    /// No record.
    pub const NONE: u8 = 0;
    /// Registered, refutable until the timeout.
    pub const DISPUTE: u8 = 1;
    /// Outcome pushed to the asset holders.
    pub const CONCLUDED: u8 = 2;
    /// An app channel's record advanced by a forced move; the other may answer until the
    /// timeout.
    pub const FORCE_EXEC: u8 = 3;
}

/// A dispute record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisputeRecord {
    /// Unix time from which the record is fixed: no longer refuted nor advanced (an app
    /// channel's record stops being refutable one challenge duration earlier).
    pub timeout: u64,
    /// Registered version.
    pub version: u64,
    /// See [`phase`].
    pub phase: u8,
    /// Digest of the registered state.
    pub state_hash: B256,
    /// An app channel's record in phase `DISPUTE`: the last part before `timeout` in which it
    /// can no longer be refuted, only advanced by a forced move. Zero otherwise.
    pub window: u64,
}

impl DisputeRecord {
    /// Whether a newer state signed by both can still replace the registered one at `now`.
    pub fn refutable(&self, now: u64) -> bool {
        self.phase == phase::DISPUTE && u128::from(now) + u128::from(self.window) < u128::from(self.timeout)
    }
}

impl DisputeRecord {
    /// What this record (of a virtual channel, read by its record key) means for a close
    /// whose final state has digest `digest`, at chain time `now`.
    pub fn on_chain(&self, now: u64, digest: B256) -> ingrid_protocol::machine::OnChain {
        let registered = self.phase != phase::NONE;
        ingrid_protocol::machine::OnChain::of(registered, self.version, self.state_hash, self.timeout, now, digest)
    }
}

/// The dispute record of a channel.
pub async fn dispute<P: Provider>(provider: &P, deployment: &Deployment, channel: B256) -> ChainResult<DisputeRecord> {
    let r = Adjudicator::new(deployment.adjudicator, provider).disputes(channel).call().await?;
    // The window matters only while the record may still be refuted: read it only then.
    let window = if r.phase == phase::DISPUTE {
        Adjudicator::new(deployment.adjudicator, provider).forceExecution(channel).call().await?.window
    } else {
        0
    };
    Ok(DisputeRecord { timeout: r.timeout, version: r.version, phase: r.phase, state_hash: r.stateHash, window })
}

/// What `participant` holds in `channel` at the asset holder `holder` (any asset).
pub async fn holdings<P: Provider>(
    provider: &P,
    holder: Address,
    channel: B256,
    participant: Address,
) -> ChainResult<U256> {
    let holder = EthAssetHolder::new(holder, provider);
    let funding_id = holder.fundingId(channel, participant).call().await?;
    Ok(holder.holdings(funding_id).call().await?)
}

/// What is on standby for `participant` in `channel` at the asset holder `holder` (any asset;
/// zero once the channel is settled, which credits it).
pub async fn standby<P: Provider>(
    provider: &P,
    holder: Address,
    channel: B256,
    participant: Address,
) -> ChainResult<U256> {
    Ok(EthAssetHolder::new(holder, provider).standby(funding_id(channel, participant)).call().await?)
}

/// Whether the asset holder has the outcome of `channel`.
pub async fn settled<P: Provider>(provider: &P, holder: Address, channel: B256) -> ChainResult<bool> {
    Ok(EthAssetHolder::new(holder, provider).settled(channel).call().await?)
}

/// The nonce the next withdrawal authorisation of `participant` in `channel` at the asset
/// holder `holder` (any asset) must carry.
pub async fn withdrawal_nonce<P: Provider>(
    provider: &P,
    holder: Address,
    channel: B256,
    participant: Address,
) -> ChainResult<U256> {
    Ok(EthAssetHolder::new(holder, provider).nonces(funding_id(channel, participant)).call().await?)
}

/// `key`'s authorisation to pay exactly `amount` of its holding in `channel` at the asset
/// holder `holder` to `receiver`, numbered `nonce`, with its signature. It can be used once,
/// and only while `nonce` is the holder's next nonce for the funding id.
pub fn sign_withdrawal(
    deployment: &Deployment,
    holder: Address,
    key: &PrivateKeySigner,
    channel: B256,
    receiver: Address,
    amount: U256,
    nonce: U256,
) -> Result<(IAssetHolder::Withdrawal, Bytes), SignatureError> {
    let participant = key.address();
    let digest = deployment.withdrawal_digest(holder, channel, participant, receiver, amount, nonce);
    let sig = sign_digest(key, &digest)?;
    Ok((IAssetHolder::Withdrawal { channelId: channel, participant, receiver, amount, nonce }, sig))
}

/// Sends the withdrawal of exactly `amount` of `key`'s holding in a settled channel from the
/// asset holder `holder` (any asset) to `receiver`, signed with the funding id's next nonce
/// (read from the chain first). Whatever else is held stays for a later withdrawal.
pub async fn send_withdraw<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    holder: Address,
    key: &PrivateKeySigner,
    channel: B256,
    receiver: Address,
    amount: U256,
) -> ChainResult<PendingTransactionBuilder<Ethereum>> {
    let nonce = withdrawal_nonce(provider, holder, channel, key.address()).await?;
    let (auth, sig) = sign_withdrawal(deployment, holder, key, channel, receiver, amount, nonce)?;
    Ok(EthAssetHolder::new(holder, provider).withdraw(auth, sig).send().await?)
}

/// Withdraws `key`'s whole holding in a settled channel to `receiver`; returns the amount.
pub async fn withdraw<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    holder: Address,
    key: &PrivateKeySigner,
    channel: B256,
    receiver: Address,
) -> ChainResult<U256> {
    let amount = holdings(provider, holder, channel, key.address()).await?;
    confirm(send_withdraw(provider, deployment, holder, key, channel, receiver, amount).await?).await?;
    Ok(amount)
}

/// Signs `state` with both keys (in participant order) and bundles it with its params.
pub fn sign_both(
    deployment: &Deployment,
    params: &Params,
    state: &State,
    keys: [&PrivateKeySigner; 2],
) -> Result<SignedState, SignatureError> {
    debug_assert_eq!(channel_id(params), state.channelId);
    Ok(SignedState {
        params: params.clone(),
        state: state.clone(),
        sigs: [deployment.sign_state(keys[0], state)?, deployment.sign_state(keys[1], state)?],
    })
}
