//! The hub's pure decisions: what it accepts to open, update and close a basic channel
//! (here) and to quote, propose, accept and close a virtual channel ([`virtuals`]). No I/O
//! and no clock; the caller stores and signs what these functions accept, and a refusal is a
//! [`ProtocolError`].

use alloy::primitives::{Address, B256, U256};
use ingrid_client_sdk::api::{QuoteTerms, StateRequest, VirtualClose, VirtualProposal};
use ingrid_client_sdk::app::{validate_opening, validate_virtual_params};
use ingrid_client_sdk::state::verify_digest;
use ingrid_client_sdk::validate::{UpdateKind, asset_totals, validate_initial, validate_params, validate_update};
use ingrid_client_sdk::virtual_channel::{Link, lock_in_parent, pay_fees, settle_in_parent};
use ingrid_client_sdk::{Deployment, Params, State, UpdateError};

use crate::config::{AssetConfig, ChannelConfig};
use ingrid_protocol::{ProtocolError, Role};

/// What the hub's decisions depend on.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The hub's participant address.
    pub hub: Address,
    /// Where signatures are valid.
    pub deployment: Deployment,
    /// Accepted assets and the hub's collateral policy per asset.
    pub assets: Vec<AssetConfig>,
    /// Basic channel rules.
    pub channels: ChannelConfig,
    /// The apps allowed in virtual channels.
    pub apps: ingrid_client_sdk::app::AppRegistry,
}

/// A deposit a basic channel needs before it is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Asset holder.
    pub asset: Address,
    /// Participant to credit.
    pub participant: Address,
    /// Amount required.
    pub amount: U256,
}

/// An accepted basic-channel opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPlan {
    /// Channel id.
    pub id: B256,
    /// The hub's participant index.
    pub hub_index: Role,
    /// Every non-zero deposit the opening state calls for.
    pub requirements: Vec<Requirement>,
    /// The digest of the opening state, checked against the client's signature.
    pub digest: B256,
}

impl OpenPlan {
    /// The deposits the hub itself must make.
    pub fn hub_deposits(&self, hub: Address) -> impl Iterator<Item = &Requirement> {
        self.requirements.iter().filter(move |r| r.participant == hub)
    }
}

impl Rules {
    fn asset(&self, holder: &Address) -> Option<&AssetConfig> {
        self.assets.iter().find(|a| a.holder == *holder)
    }

    /// Decides on a client's proposal to open a basic channel with `params` and `state`
    /// (version 0), signed by the client with `client_sig`.
    pub fn check_open(
        &self,
        client: Address,
        params: &Params,
        state: &State,
        client_sig: &[u8],
    ) -> Result<OpenPlan, ProtocolError> {
        let bounds = (self.channels.min_challenge_duration, self.channels.max_challenge_duration);
        validate_params(params, bounds)?;
        if !params.ledger {
            return Err(ProtocolError::invalid("invalid_params", "a basic channel must have ledger = true"));
        }
        let hub_index = Role::of(&params.participants, &self.hub).ok_or_else(|| {
            ProtocolError::invalid("hub_not_participant", format!("the hub {} is not a participant", self.hub))
        })?;
        if params.participants[hub_index.peer().index()] != client {
            return Err(ProtocolError::invalid(
                "client_not_participant",
                format!("the authenticated client {client} is not the other participant"),
            ));
        }
        validate_initial(params, state).map_err(|e| match e {
            // Nothing conflicts at opening: a version other than 0 is just invalid.
            UpdateError::WrongVersion { .. } => ProtocolError::invalid("wrong_version", e.to_string()),
            e => e.into(),
        })?;
        if state.isFinal {
            return Err(ProtocolError::invalid("final_state", "an opening state cannot be final"));
        }
        if state.outcome.assets.is_empty() {
            return Err(ProtocolError::invalid("no_assets", "the opening state holds no asset"));
        }
        let mut requirements = Vec::new();
        for (holder, balances) in state.outcome.assets.iter().zip(&state.outcome.balances) {
            let asset = self.asset(holder).ok_or_else(|| {
                ProtocolError::invalid("unknown_asset", format!("asset holder {holder} is not accepted by this hub"))
            })?;
            let (hub_amount, client_amount) = (balances[hub_index.index()], balances[hub_index.peer().index()]);
            if hub_amount > asset.max_hub_deposit {
                return Err(ProtocolError::invalid(
                    "hub_deposit_above_maximum",
                    format!(
                        "hub deposit {hub_amount} of {} exceeds the maximum {}",
                        asset.symbol, asset.max_hub_deposit
                    ),
                ));
            }
            if !hub_amount.is_zero() && hub_amount < asset.min_hub_deposit {
                return Err(ProtocolError::invalid(
                    "hub_deposit_below_minimum",
                    format!(
                        "hub deposit {hub_amount} of {} is below the minimum {} (ask for 0 or at least that)",
                        asset.symbol, asset.min_hub_deposit
                    ),
                ));
            }
            let allowed = client_amount
                .checked_mul(U256::from(asset.collateral_ratio_bps))
                .map(|x| x / U256::from(10_000u32))
                .unwrap_or(U256::MAX);
            if hub_amount > allowed {
                return Err(ProtocolError::invalid(
                    "hub_deposit_above_ratio",
                    format!(
                        "hub deposit {hub_amount} of {} exceeds {} basis points of the client's deposit {client_amount}",
                        asset.symbol, asset.collateral_ratio_bps
                    ),
                ));
            }
            for (index, amount) in balances.iter().enumerate() {
                if !amount.is_zero() {
                    requirements.push(Requirement {
                        asset: *holder,
                        participant: params.participants[index],
                        amount: *amount,
                    });
                }
            }
        }
        let digest = self.verified_digest(state, client_sig, client)?;
        Ok(OpenPlan { id: state.channelId, hub_index, requirements, digest })
    }

    /// The digest of `state` if `signer` signed it.
    fn verified_digest(&self, state: &State, sig: &[u8], signer: Address) -> Result<B256, ProtocolError> {
        let digest = self.deployment.state_digest(state);
        verify_digest(&digest, sig, signer)?;
        Ok(digest)
    }

    /// Decides on a client's off-chain update of an open basic channel. The hub only
    /// countersigns updates that move coins from the client to the hub (or none).
    /// Returns the digest of the accepted state.
    pub fn check_update(
        &self,
        hub: Role,
        client: Address,
        current: &State,
        proposed: &State,
        client_sig: &[u8],
    ) -> Result<B256, ProtocolError> {
        if proposed.isFinal {
            return Err(ProtocolError::invalid("final_state", "final states go through the close endpoint"));
        }
        validate_update(current, proposed, UpdateKind::Transfer)?;
        for (asset, (before, after)) in current.outcome.balances.iter().zip(&proposed.outcome.balances).enumerate() {
            let (before, after) = (before[hub.index()], after[hub.index()]);
            if after < before {
                return Err(ProtocolError::invalid(
                    "hub_balance_decreased",
                    format!("the update lowers the hub's balance of asset {asset} from {before} to {after}"),
                ));
            }
        }
        self.verified_digest(proposed, client_sig, client)
    }

    /// Decides on a client's signature on the hub's collateral top-up of `asset` by `amount`
    /// (deposited and confirmed): exactly the current state with the hub's balance raised.
    /// Returns the digest of the accepted state.
    pub fn check_top_up(
        &self,
        hub: Role,
        client: Address,
        current: &State,
        proposed: &State,
        client_sig: &[u8],
        (asset, amount): (Address, U256),
    ) -> Result<B256, ProtocolError> {
        let expected = ingrid_client_sdk::virtual_channel::top_up(current, hub, asset, amount)?;
        if proposed.version != expected.version {
            return Err(ProtocolError::conflict(
                "wrong_version",
                format!("the top-up state has version {}, the channel is at {}", proposed.version, current.version),
            ));
        }
        if *proposed != expected {
            return Err(ProtocolError::invalid(
                "top_up_mismatch",
                format!(
                    "the top-up state is not the latest state with the hub's balance of {asset} raised by {amount}"
                ),
            ));
        }
        self.verified_digest(proposed, client_sig, client)
    }

    /// Decides on a client's final state closing a basic channel: the latest balances
    /// unchanged, no locks held, final. Returns the digest of the accepted state.
    pub fn check_close(
        &self,
        client: Address,
        current: &State,
        proposed: &State,
        client_sig: &[u8],
    ) -> Result<B256, ProtocolError> {
        if !proposed.isFinal {
            return Err(ProtocolError::invalid("not_final", "a closing state must be final"));
        }
        if !current.outcome.locked.is_empty() {
            return Err(ProtocolError::conflict(
                "locks_held",
                format!("the channel holds {} locks; close its virtual channels first", current.outcome.locked.len()),
            ));
        }
        validate_update(current, proposed, UpdateKind::Transfer)?;
        if proposed.outcome.balances != current.outcome.balances {
            return Err(ProtocolError::invalid("balances_changed", "a closing state keeps the latest balances"));
        }
        self.verified_digest(proposed, client_sig, client)
    }
}

pub mod books;
mod virtuals;
pub use books::ChannelBooks;
pub use virtuals::{Parent, ParentUpdate};

#[cfg(test)]
mod tests;
