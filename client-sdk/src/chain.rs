//! On-chain actions of a channel participant: deploy the contracts (local stacks and tests),
//! deposit, register, refute, conclude, withdraw, and read holdings and dispute records.
//!
//! Every function waits for the transaction's receipt and turns a revert into a
//! [`ChainError`] whose adjudicator or asset-holder error can be decoded.

use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{PendingTransactionBuilder, PendingTransactionError, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::bindings::Channel::{Params, SignedState, State};
use crate::bindings::adjudicator::Adjudicator::{self, AdjudicatorErrors};
use crate::bindings::erc20_holder::{Erc20AssetHolder, IAssetHolder as Erc20Auth};
use crate::bindings::eth_holder::{EthAssetHolder, IAssetHolder as EthAuth};
use crate::bindings::test_token::TestToken;
use crate::state::{Deployment, SignatureError, channel_id, sign_digest};

/// Why an on-chain action failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused the call or transaction (a revert shows up here, at gas estimation).
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
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

    /// The raw revert data, if the failure was a revert with data.
    pub fn revert_data(&self) -> Option<alloy::primitives::Bytes> {
        match self {
            Self::Contract(e) => e.as_revert_data(),
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
}

/// An ERC20 token and the asset holder that holds it for channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAsset {
    /// The ERC20 token.
    pub token: Address,
    /// Its asset holder.
    pub holder: Address,
}

async fn confirm(
    pending: PendingTransactionBuilder<alloy::network::Ethereum>,
) -> ChainResult<TransactionReceipt> {
    let receipt = pending.get_receipt().await?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(ChainError::Reverted(receipt.transaction_hash))
    }
}

/// Deploys the adjudicator and the ETH asset holder from the provider's wallet.
pub async fn deploy<P: Provider>(provider: &P) -> ChainResult<Contracts> {
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(alloy::contract::Error::from)?;
    let adjudicator = Adjudicator::deploy(provider).await?;
    let eth_holder = EthAssetHolder::deploy(provider, *adjudicator.address()).await?;
    Ok(Contracts {
        deployment: Deployment {
            chain_id,
            adjudicator: *adjudicator.address(),
        },
        eth_holder: *eth_holder.address(),
    })
}

/// Deploys a mintable test token and its asset holder (local stacks and tests only).
pub async fn deploy_test_token<P: Provider>(
    provider: &P,
    contracts: &Contracts,
) -> ChainResult<TokenAsset> {
    let token = TestToken::deploy(provider).await?;
    let holder =
        Erc20AssetHolder::deploy(provider, contracts.deployment.adjudicator, *token.address())
            .await?;
    Ok(TokenAsset {
        token: *token.address(),
        holder: *holder.address(),
    })
}

/// Mints test tokens (local stacks and tests only).
pub async fn mint_test_token<P: Provider>(
    provider: &P,
    token: Address,
    to: Address,
    amount: U256,
) -> ChainResult<TransactionReceipt> {
    confirm(
        TestToken::new(token, provider)
            .mint(to, amount)
            .send()
            .await?,
    )
    .await
}

/// Deposits `amount` wei for `participant` in the channel `channel`.
pub async fn deposit_eth<P: Provider>(
    provider: &P,
    holder: Address,
    channel: B256,
    participant: Address,
    amount: U256,
) -> ChainResult<TransactionReceipt> {
    let holder = EthAssetHolder::new(holder, provider);
    confirm(
        holder
            .deposit(channel, participant, amount)
            .value(amount)
            .send()
            .await?,
    )
    .await
}

/// Approves the asset holder and deposits `amount` tokens for `participant` in `channel`.
pub async fn deposit_erc20<P: Provider>(
    provider: &P,
    asset: &TokenAsset,
    channel: B256,
    participant: Address,
    amount: U256,
) -> ChainResult<TransactionReceipt> {
    let token = TestToken::new(asset.token, provider);
    confirm(token.approve(asset.holder, amount).send().await?).await?;
    confirm(
        Erc20AssetHolder::new(asset.holder, provider)
            .deposit(channel, participant, amount)
            .send()
            .await?,
    )
    .await
}

/// Registers a ledger channel's state with the states of all its locks (depth-first).
pub async fn register<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    ledger: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(contracts.deployment.adjudicator, provider);
    confirm(adjudicator.register(ledger, subs).send().await?).await
}

/// Replaces a registered state with a newer one before the timeout.
pub async fn refute<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    channel: SignedState,
    subs: Vec<SignedState>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(contracts.deployment.adjudicator, provider);
    confirm(adjudicator.refute(channel, subs).send().await?).await
}

/// Concludes a registered ledger channel after the timeout and pushes its outcome.
pub async fn conclude<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    params: Params,
    state: State,
    sub_states: Vec<State>,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(contracts.deployment.adjudicator, provider);
    confirm(
        adjudicator
            .conclude(params, state, sub_states)
            .send()
            .await?,
    )
    .await
}

/// Concludes a ledger channel at once from a final state signed by both.
pub async fn conclude_final<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    ledger: SignedState,
) -> ChainResult<TransactionReceipt> {
    let adjudicator = Adjudicator::new(contracts.deployment.adjudicator, provider);
    confirm(adjudicator.concludeFinal(ledger).send().await?).await
}

/// The dispute record of a channel: `(timeout, version, phase, state hash)`.
pub async fn dispute<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    channel: B256,
) -> ChainResult<(u64, u64, u8, B256)> {
    let record = Adjudicator::new(contracts.deployment.adjudicator, provider)
        .disputes(channel)
        .call()
        .await?;
    Ok((
        record.timeout,
        record.version,
        record.phase,
        record.stateHash,
    ))
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

/// Withdraws `key`'s whole holding in a settled channel from the ETH holder to `receiver`.
pub async fn withdraw_eth<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    key: &PrivateKeySigner,
    channel: B256,
    receiver: Address,
) -> ChainResult<U256> {
    let holder = contracts.eth_holder;
    let amount = holdings(provider, holder, channel, key.address()).await?;
    let digest =
        contracts
            .deployment
            .withdrawal_digest(holder, channel, key.address(), receiver, amount);
    let sig = sign_digest(key, &digest)?;
    let auth = EthAuth::Withdrawal {
        channelId: channel,
        participant: key.address(),
        receiver,
        amount,
    };
    confirm(
        EthAssetHolder::new(holder, provider)
            .withdraw(auth, sig)
            .send()
            .await?,
    )
    .await?;
    Ok(amount)
}

/// Withdraws `key`'s whole holding in a settled channel from an ERC20 holder to `receiver`.
pub async fn withdraw_erc20<P: Provider>(
    provider: &P,
    contracts: &Contracts,
    asset: &TokenAsset,
    key: &PrivateKeySigner,
    channel: B256,
    receiver: Address,
) -> ChainResult<U256> {
    let amount = holdings(provider, asset.holder, channel, key.address()).await?;
    let digest = contracts.deployment.withdrawal_digest(
        asset.holder,
        channel,
        key.address(),
        receiver,
        amount,
    );
    let sig = sign_digest(key, &digest)?;
    let auth = Erc20Auth::Withdrawal {
        channelId: channel,
        participant: key.address(),
        receiver,
        amount,
    };
    confirm(
        Erc20AssetHolder::new(asset.holder, provider)
            .withdraw(auth, sig)
            .send()
            .await?,
    )
    .await?;
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
        sigs: [
            deployment.sign_state(keys[0], state)?,
            deployment.sign_state(keys[1], state)?,
        ],
    })
}
