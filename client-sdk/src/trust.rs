//! The deployment a client trusts, and the checks that a hub and a chain node agree with it.
//!
//! A hub describes its contracts at `/v1/hub`. A client that believed it could be told to
//! sign states for another adjudicator, or to deposit into a contract the hub controls. So a
//! client is configured with a [`TrustedDeployment`] (chain id, adjudicator, asset holders and
//! their tokens) and, before it deposits:
//! - [`TrustedDeployment::check_hub_info`] (pure): `/v1/hub` names the same chain and
//!   adjudicator, and lists no trusted holder with another token;
//! - [`TrustedDeployment::asset`] (pure): every asset of the channel is a trusted holder;
//! - [`verify_adjudicator`] and [`verify_holder`] (the chain): the node is on the trusted
//!   chain, the adjudicator has code and the EIP-712 domain Ingrid's adjudicator has there,
//!   and each holder has code, the asset holders' domain, is bound to that adjudicator and
//!   holds the trusted token (none for ETH).
//!
//! A refusal is a [`TrustError`], before anything is signed for or sent to the chain.

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::api::HubInfo;
use crate::bindings::adjudicator::Adjudicator;
use crate::bindings::erc20_holder::Erc20AssetHolder;
use crate::bindings::eth_holder::EthAssetHolder;
use crate::chain::{Asset, ChainError, Contracts};
use crate::state::Deployment;

/// Why the client does not trust what a hub or a chain node says about the deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// An app the hub announces does not run the rule this SDK ships for it (another
    /// contract's code at that address).
    #[error("the hub announces {kind:?} at {address}, whose code is not the shipped rule's")]
    AppCode {
        /// The app.
        kind: ingrid_protocol::app::AppKind,
        /// Its announced address.
        address: Address,
    },
    /// `/v1/hub` names another chain.
    #[error("the hub names chain {claimed}, the client trusts chain {trusted}")]
    HubChainId {
        /// The trusted chain.
        trusted: u64,
        /// What the hub says.
        claimed: u64,
    },
    /// `/v1/hub` names another adjudicator.
    #[error("the hub names adjudicator {claimed}, the client trusts {trusted}")]
    HubAdjudicator {
        /// The trusted adjudicator.
        trusted: Address,
        /// What the hub says.
        claimed: Address,
    },
    /// `/v1/hub` names another hub address than the pinned one.
    #[error("the hub's address is {claimed}, the client trusts {trusted}")]
    HubAddress {
        /// The pinned hub address.
        trusted: Address,
        /// What the hub says.
        claimed: Address,
    },
    /// `/v1/hub` lists a trusted holder with another token.
    #[error("the hub lists asset holder {holder} with token {claimed:?}, the client trusts token {trusted:?}")]
    HubAssetToken {
        /// The holder.
        holder: Address,
        /// The trusted token (`None`: ETH).
        trusted: Option<Address>,
        /// What the hub says.
        claimed: Option<Address>,
    },
    /// The asset holder is not part of the trusted deployment.
    #[error("asset holder {0} is not in the trusted deployment")]
    UntrustedAsset(Address),
    /// The chain node is on another chain.
    #[error("the chain node is on chain {rpc}, the client trusts chain {trusted}")]
    RpcChainId {
        /// The trusted chain.
        trusted: u64,
        /// The node's chain id.
        rpc: u64,
    },
    /// No contract at a trusted address.
    #[error("no contract at {0}")]
    NoCode(Address),
    /// The contract at a trusted address does not answer as Ingrid's contract of that kind.
    #[error("{address} is not Ingrid's {contract}: {reason}")]
    NotIngrid {
        /// The address.
        address: Address,
        /// `adjudicator` or `asset holder`.
        contract: &'static str,
        /// What differs.
        reason: String,
    },
    /// The asset holder lets another adjudicator set its outcomes.
    #[error("asset holder {holder} is bound to adjudicator {bound}, not to {trusted}")]
    HolderAdjudicator {
        /// The holder.
        holder: Address,
        /// The adjudicator it names.
        bound: Address,
        /// The trusted adjudicator.
        trusted: Address,
    },
    /// The asset holder holds another token (or a token where ETH is trusted).
    #[error("asset holder {holder} holds token {on_chain:?}, the client trusts {trusted:?}")]
    HolderToken {
        /// The holder.
        holder: Address,
        /// The trusted token (`None`: ETH).
        trusted: Option<Address>,
        /// The token it holds on chain (`None`: not an ERC20 holder).
        on_chain: Option<Address>,
    },
}

/// Why a check against the chain did not pass: a lie, or the node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain contradicts the trusted deployment.
    #[error(transparent)]
    Untrusted(#[from] TrustError),
    /// The node could not be asked.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The deployment a client trusts: the chain, the adjudicator its signatures are bound to,
/// and the asset holders it deposits into (with their tokens); optionally the hub's address.
/// It comes from the client's own configuration, never from the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedDeployment {
    /// Chain id and adjudicator.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The trusted asset holders and their tokens (`None`: ETH).
    pub assets: Vec<Asset>,
    /// The hub's channel key address, if pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<Address>,
}

impl TrustedDeployment {
    /// Trusts `deployment` with `assets`.
    pub fn new(deployment: Deployment, assets: impl IntoIterator<Item = Asset>) -> Self {
        Self { deployment, assets: assets.into_iter().collect(), hub: None }
    }

    /// Trusts the deployment `contracts` with its ETH holder (add tokens with
    /// [`TrustedDeployment::with_asset`]).
    pub fn from_contracts(contracts: &Contracts) -> Self {
        Self::new(contracts.deployment, [contracts.eth()])
    }

    /// Also trusts `asset`.
    pub fn with_asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Pins the hub's channel key address.
    pub fn with_hub(mut self, hub: Address) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The deployment the hub names, trusted as it is: what a client falls back to without a
    /// configuration of its own (see [`crate::wallet::Trust::UnpinnedHubDeployment`]).
    pub fn from_hub_info(info: &HubInfo) -> Self {
        Self::new(
            Deployment { chain_id: info.chain_id, adjudicator: info.adjudicator },
            info.assets.iter().map(|a| Asset { holder: a.holder, token: a.token }),
        )
    }

    /// Checks that `/v1/hub` agrees: the same chain and adjudicator (and hub address, if
    /// pinned), and every trusted holder it lists with the trusted token. Holders it lists
    /// that are not trusted are allowed here, and refused when used ([`Self::asset`]).
    pub fn check_hub_info(&self, info: &HubInfo) -> Result<(), TrustError> {
        let trusted = self.deployment;
        if info.chain_id != trusted.chain_id {
            return Err(TrustError::HubChainId { trusted: trusted.chain_id, claimed: info.chain_id });
        }
        if info.adjudicator != trusted.adjudicator {
            return Err(TrustError::HubAdjudicator { trusted: trusted.adjudicator, claimed: info.adjudicator });
        }
        if let Some(hub) = self.hub.filter(|h| *h != info.address) {
            return Err(TrustError::HubAddress { trusted: hub, claimed: info.address });
        }
        for listed in &info.assets {
            if let Some(asset) = self.assets.iter().find(|a| a.holder == listed.holder)
                && asset.token != listed.token
            {
                return Err(TrustError::HubAssetToken {
                    holder: listed.holder,
                    trusted: asset.token,
                    claimed: listed.token,
                });
            }
        }
        Ok(())
    }

    /// The trusted asset with holder `holder`.
    pub fn asset(&self, holder: Address) -> Result<Asset, TrustError> {
        self.assets.iter().find(|a| a.holder == holder).copied().ok_or(TrustError::UntrustedAsset(holder))
    }
}

/// Whether a failed contract call means the contract did not answer as expected (a revert,
/// no data, data of another shape) rather than that the node could not be asked.
fn refused(e: &alloy::contract::Error) -> bool {
    match e {
        alloy::contract::Error::ZeroData(..) | alloy::contract::Error::AbiError(_) => true,
        alloy::contract::Error::TransportError(t) => t.as_error_resp().is_some(),
        _ => false,
    }
}

/// A contract call's answer; a refusal is `not_ingrid(reason)`.
fn answer<T>(
    result: Result<T, alloy::contract::Error>,
    not_ingrid: impl FnOnce(String) -> TrustError,
) -> Result<T, VerifyError> {
    match result {
        Ok(v) => Ok(v),
        Err(e) if refused(&e) => Err(not_ingrid(e.to_string()).into()),
        Err(e) => Err(ChainError::from(e).into()),
    }
}

async fn has_code<P: Provider>(provider: &P, address: Address) -> Result<(), VerifyError> {
    let code = provider.get_code_at(address).await.map_err(ChainError::from)?;
    if code.is_empty() { Err(TrustError::NoCode(address).into()) } else { Ok(()) }
}

fn domain_mismatch(address: Address, contract: &'static str, on_chain: B256, expected: B256) -> VerifyError {
    TrustError::NotIngrid {
        address,
        contract,
        reason: format!("its EIP-712 domain separator is {on_chain}, expected {expected}"),
    }
    .into()
}

/// Checks the chain against `deployment`: the node's chain id, and that the adjudicator has
/// code and Ingrid's adjudicator's EIP-712 domain for this chain and address (so states the
/// client signs are the ones it checks).
pub async fn verify_adjudicator<P: Provider>(provider: &P, deployment: &Deployment) -> Result<(), VerifyError> {
    let rpc = provider.get_chain_id().await.map_err(ChainError::from)?;
    if rpc != deployment.chain_id {
        return Err(TrustError::RpcChainId { trusted: deployment.chain_id, rpc }.into());
    }
    let address = deployment.adjudicator;
    has_code(provider, address).await?;
    let not_ingrid = |reason| TrustError::NotIngrid { address, contract: "adjudicator", reason };
    let separator = answer(Adjudicator::new(address, provider).domainSeparator().call().await, not_ingrid)?;
    let expected = deployment.state_domain().separator();
    if separator != expected {
        return Err(domain_mismatch(address, "adjudicator", separator, expected));
    }
    Ok(())
}

/// Checks the chain against the trusted `asset` of `deployment`: the holder has code and the
/// asset holders' EIP-712 domain, is bound to the adjudicator, and holds the trusted token
/// (an ETH holder answers no `token()`). Assumes [`verify_adjudicator`] passed.
pub async fn verify_holder<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    asset: &Asset,
) -> Result<(), VerifyError> {
    let holder = asset.holder;
    has_code(provider, holder).await?;
    let not_ingrid = |reason| TrustError::NotIngrid { address: holder, contract: "asset holder", reason };
    let contract = EthAssetHolder::new(holder, provider);
    let separator = answer(contract.domainSeparator().call().await, not_ingrid)?;
    let expected = deployment.withdrawal_domain(holder).separator();
    if separator != expected {
        return Err(domain_mismatch(holder, "asset holder", separator, expected));
    }
    let bound = answer(contract.adjudicator().call().await, not_ingrid)?;
    if bound != deployment.adjudicator {
        return Err(TrustError::HolderAdjudicator { holder, bound, trusted: deployment.adjudicator }.into());
    }
    let token = match Erc20AssetHolder::new(holder, provider).token().call().await {
        Ok(token) => Some(token),
        // An ETH holder has no `token()`.
        Err(e) if refused(&e) => None,
        Err(e) => return Err(ChainError::from(e).into()),
    };
    if token != asset.token {
        return Err(TrustError::HolderToken { holder, trusted: asset.token, on_chain: token }.into());
    }
    Ok(())
}

/// Checks the chain against the whole trusted deployment: [`verify_adjudicator`], then
/// [`verify_holder`] for every trusted asset.
pub async fn verify_on_chain<P: Provider>(provider: &P, trusted: &TrustedDeployment) -> Result<(), VerifyError> {
    verify_adjudicator(provider, &trusted.deployment).await?;
    for asset in &trusted.assets {
        verify_holder(provider, &trusted.deployment, asset).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AssetInfo;

    fn eth() -> Asset {
        Asset { holder: Address::repeat_byte(0xee), token: None }
    }

    fn usd() -> Asset {
        Asset { holder: Address::repeat_byte(0x70), token: Some(Address::repeat_byte(0x71)) }
    }

    fn trusted() -> TrustedDeployment {
        TrustedDeployment::new(Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) }, [eth(), usd()])
    }

    fn info() -> HubInfo {
        HubInfo {
            address: Address::repeat_byte(0x42),
            chain_id: 31337,
            adjudicator: Address::repeat_byte(0xad),
            assets: vec![
                AssetInfo { symbol: "ETH".into(), holder: eth().holder, token: None },
                AssetInfo { symbol: "USD".into(), holder: usd().holder, token: usd().token },
            ],
            challenge_duration: [60, 86_400],
            confirmations: 1,
            virtual_fees: false,
            apps: Default::default(),
            app_challenge_duration: None,
        }
    }

    #[test]
    fn an_honest_hub_info_passes() {
        assert_eq!(trusted().check_hub_info(&info()), Ok(()));
        assert_eq!(trusted().with_hub(info().address).check_hub_info(&info()), Ok(()));
        // The hub's own description, trusted as it is, agrees with itself.
        assert_eq!(TrustedDeployment::from_hub_info(&info()), trusted());
        // An extra asset the client does not trust is no lie; using it is refused.
        let mut more = info();
        let other = Address::repeat_byte(0x99);
        more.assets.push(AssetInfo { symbol: "X".into(), holder: other, token: None });
        assert_eq!(trusted().check_hub_info(&more), Ok(()));
        assert_eq!(trusted().asset(other), Err(TrustError::UntrustedAsset(other)));
        assert_eq!(trusted().asset(usd().holder), Ok(usd()));
    }

    #[test]
    fn every_lie_in_hub_info_is_refused() {
        let t = trusted();
        let lie = |f: &dyn Fn(&mut HubInfo)| {
            let mut i = info();
            f(&mut i);
            t.clone().with_hub(info().address).check_hub_info(&i)
        };
        assert_eq!(lie(&|i| i.chain_id = 1), Err(TrustError::HubChainId { trusted: 31337, claimed: 1 }));
        let fake = Address::repeat_byte(0xfa);
        assert_eq!(
            lie(&|i| i.adjudicator = fake),
            Err(TrustError::HubAdjudicator { trusted: Address::repeat_byte(0xad), claimed: fake })
        );
        assert_eq!(
            lie(&|i| i.address = fake),
            Err(TrustError::HubAddress { trusted: Address::repeat_byte(0x42), claimed: fake })
        );
        assert_eq!(
            lie(&|i| i.assets[1].token = Some(fake)),
            Err(TrustError::HubAssetToken { holder: usd().holder, trusted: usd().token, claimed: Some(fake) })
        );
        assert_eq!(
            lie(&|i| i.assets[0].token = Some(fake)),
            Err(TrustError::HubAssetToken { holder: eth().holder, trusted: None, claimed: Some(fake) })
        );
    }

    #[test]
    fn the_configuration_reads_from_json() {
        let json = serde_json::json!({
            "chainId": 31337,
            "adjudicator": Address::repeat_byte(0xad),
            "assets": [{"holder": eth().holder, "token": null}, {"holder": usd().holder, "token": usd().token}],
        });
        assert_eq!(serde_json::from_value::<TrustedDeployment>(json).expect("parse"), trusted());
    }
}
