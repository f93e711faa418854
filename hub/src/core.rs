//! The hub's pure decisions about basic channels: what it accepts to open, update and
//! close. No I/O and no clock; the caller stores and signs what these functions accept.

use alloy::primitives::{Address, B256, U256};
use ingrid_client_sdk::state::verify_digest;
use ingrid_client_sdk::validate::{UpdateKind, validate_initial, validate_params, validate_update};
use ingrid_client_sdk::{Deployment, Params, State, UpdateError};

use crate::config::{AssetConfig, ChannelConfig};
use crate::error::ApiError;

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
    pub hub_index: usize,
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
    ) -> Result<OpenPlan, ApiError> {
        let bounds = (self.channels.min_challenge_duration, self.channels.max_challenge_duration);
        validate_params(params, bounds)?;
        if !params.ledger {
            return Err(ApiError::unprocessable("invalid_params", "a basic channel must have ledger = true"));
        }
        let hub_index = params.participants.iter().position(|p| *p == self.hub).ok_or_else(|| {
            ApiError::unprocessable("hub_not_participant", format!("the hub {} is not a participant", self.hub))
        })?;
        let client_index = 1 - hub_index;
        if params.participants[client_index] != client {
            return Err(ApiError::unprocessable(
                "client_not_participant",
                format!("the authenticated client {client} is not the other participant"),
            ));
        }
        validate_initial(params, state).map_err(|e| match e {
            // Nothing conflicts at opening: a version other than 0 is just invalid.
            UpdateError::WrongVersion { .. } => ApiError::unprocessable("wrong_version", e.to_string()),
            e => e.into(),
        })?;
        if state.isFinal {
            return Err(ApiError::unprocessable("final_state", "an opening state cannot be final"));
        }
        if state.outcome.assets.is_empty() {
            return Err(ApiError::unprocessable("no_assets", "the opening state holds no asset"));
        }
        let mut requirements = Vec::new();
        for (holder, balances) in state.outcome.assets.iter().zip(&state.outcome.balances) {
            let asset = self.asset(holder).ok_or_else(|| {
                ApiError::unprocessable("unknown_asset", format!("asset holder {holder} is not accepted by this hub"))
            })?;
            let (hub_amount, client_amount) = (balances[hub_index], balances[client_index]);
            if hub_amount > asset.max_hub_deposit {
                return Err(ApiError::unprocessable(
                    "hub_deposit_above_maximum",
                    format!(
                        "hub deposit {hub_amount} of {} exceeds the maximum {}",
                        asset.symbol, asset.max_hub_deposit
                    ),
                ));
            }
            let allowed = client_amount
                .checked_mul(U256::from(asset.collateral_ratio_bps))
                .map(|x| x / U256::from(10_000u32))
                .unwrap_or(U256::MAX);
            if hub_amount > allowed {
                return Err(ApiError::unprocessable(
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
    fn verified_digest(&self, state: &State, sig: &[u8], signer: Address) -> Result<B256, ApiError> {
        let digest = self.deployment.state_digest(state);
        verify_digest(&digest, sig, signer)?;
        Ok(digest)
    }

    /// Decides on a client's off-chain update of an open basic channel. The hub only
    /// countersigns updates that move coins from the client to the hub (or none).
    /// Returns the digest of the accepted state.
    pub fn check_update(
        &self,
        hub_index: usize,
        client: Address,
        current: &State,
        proposed: &State,
        client_sig: &[u8],
    ) -> Result<B256, ApiError> {
        if proposed.isFinal {
            return Err(ApiError::unprocessable("final_state", "final states go through the close endpoint"));
        }
        validate_update(current, proposed, UpdateKind::Transfer)?;
        for (asset, (before, after)) in current.outcome.balances.iter().zip(&proposed.outcome.balances).enumerate() {
            if after[hub_index] < before[hub_index] {
                return Err(ApiError::unprocessable(
                    "hub_balance_decreased",
                    format!(
                        "the update lowers the hub's balance of asset {asset} from {} to {}",
                        before[hub_index], after[hub_index]
                    ),
                ));
            }
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
    ) -> Result<B256, ApiError> {
        if !proposed.isFinal {
            return Err(ApiError::unprocessable("not_final", "a closing state must be final"));
        }
        if !current.outcome.locked.is_empty() {
            return Err(ApiError::conflict(
                "locks_held",
                format!("the channel holds {} locks; close its virtual channels first", current.outcome.locked.len()),
            ));
        }
        validate_update(current, proposed, UpdateKind::Transfer)?;
        if proposed.outcome.balances != current.outcome.balances {
            return Err(ApiError::unprocessable("balances_changed", "a closing state keeps the latest balances"));
        }
        self.verified_digest(proposed, client_sig, client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;
    use alloy::signers::local::PrivateKeySigner;
    use ingrid_client_sdk::Allocation;
    use ingrid_client_sdk::state::channel_id;

    const ETH: Address = Address::repeat_byte(0xee);

    fn rules(hub: Address) -> Rules {
        Rules {
            hub,
            deployment: Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) },
            assets: vec![AssetConfig {
                symbol: "ETH".into(),
                holder: ETH,
                token: None,
                max_hub_deposit: U256::from(1000),
                collateral_ratio_bps: 10_000,
            }],
            channels: ChannelConfig::default(),
        }
    }

    fn params(client: Address, hub: Address) -> Params {
        Params {
            challengeDuration: 3600,
            nonce: U256::from(1),
            participants: [client, hub],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        }
    }

    fn state(p: &Params, version: u64, balances: [u64; 2]) -> State {
        State {
            channelId: channel_id(p),
            version,
            outcome: Allocation {
                assets: vec![ETH],
                balances: vec![[U256::from(balances[0]), U256::from(balances[1])]],
                locked: vec![],
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    #[test]
    fn open_matching_deposit_is_accepted_with_both_requirements() {
        let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
        let r = rules(hub);
        let p = params(client.address(), hub);
        let s = state(&p, 0, [500, 500]);
        let sig = r.deployment.sign_state(&client, &s).expect("sign");
        let plan = r.check_open(client.address(), &p, &s, &sig).expect("accepted");
        assert_eq!(plan.hub_index, 1);
        assert_eq!(plan.requirements.len(), 2);
        assert_eq!(plan.hub_deposits(hub).map(|r| r.amount).collect::<Vec<_>>(), vec![U256::from(500)]);
    }

    #[test]
    fn open_refusals_name_the_rule() {
        let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
        let r = rules(hub);
        let p = params(client.address(), hub);
        let code = |res: Result<OpenPlan, ApiError>| res.map(|_| ()).map_err(|e| e.parts().1.error).unwrap_err();

        let s = state(&p, 0, [500, 600]);
        let sig = r.deployment.sign_state(&client, &s).expect("sign");
        assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "hub_deposit_above_ratio");

        let s = state(&p, 0, [5000, 2000]);
        let sig = r.deployment.sign_state(&client, &s).expect("sign");
        assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "hub_deposit_above_maximum");

        let s = state(&p, 0, [500, 500]);
        let other = PrivateKeySigner::random();
        let sig = r.deployment.sign_state(&other, &s).expect("sign");
        assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "bad_signature");
        assert_eq!(code(r.check_open(other.address(), &p, &s, &sig)), "client_not_participant");

        let stranger = params(client.address(), Address::repeat_byte(0x22));
        let s = state(&stranger, 0, [1, 0]);
        let sig = r.deployment.sign_state(&client, &s).expect("sign");
        assert_eq!(code(r.check_open(client.address(), &stranger, &s, &sig)), "hub_not_participant");

        let mut short = params(client.address(), hub);
        short.challengeDuration = 1;
        let s = state(&short, 0, [1, 0]);
        let sig = r.deployment.sign_state(&client, &s).expect("sign");
        assert_eq!(code(r.check_open(client.address(), &short, &s, &sig)), "invalid_params");
    }

    #[test]
    fn updates_may_pay_the_hub_but_never_take_from_it() {
        let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
        let r = rules(hub);
        let p = params(client.address(), hub);
        let cur = state(&p, 3, [500, 500]);
        let pay_hub = state(&p, 4, [400, 600]);
        let sig = r.deployment.sign_state(&client, &pay_hub).expect("sign");
        assert!(r.check_update(1, client.address(), &cur, &pay_hub, &sig).is_ok());
        let take = state(&p, 4, [600, 400]);
        let sig = r.deployment.sign_state(&client, &take).expect("sign");
        let err = r.check_update(1, client.address(), &cur, &take, &sig).unwrap_err();
        assert_eq!(err.parts().1.error, "hub_balance_decreased");
        let stale = state(&p, 3, [400, 600]);
        let sig = r.deployment.sign_state(&client, &stale).expect("sign");
        assert_eq!(
            r.check_update(1, client.address(), &cur, &stale, &sig).unwrap_err().parts().0,
            axum::http::StatusCode::CONFLICT
        );
    }
}
