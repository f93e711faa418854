//! An end user's channels with one hub, end to end: open a basic channel (propose, verify
//! the hub's signature, store, deposit on chain, wait until funded), pay the hub, close and
//! withdraw. Every hub signature is verified and every fully signed state is stored durably
//! before the wallet acts on it.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;

use crate::Role;
use crate::api::{
    ChannelStatus, FullySignedState, HubInfo, OpenChannelRequest, Quote, QuoteRequest, QuoteTerms, StateRequest,
    VirtualAccept, VirtualClose, VirtualProposal, VirtualStatus, VirtualView,
};
use crate::bindings::Channel::{Allocation, Params, State};
use crate::chain::{self, Asset, ChainError};
use crate::client::{ClientError, HubClient};
use crate::state::{Deployment, SignatureError, channel_id};
use crate::store::{ChannelRecord, ChannelStore, StoreError};
use crate::trust::{self, TrustError, TrustedDeployment, VerifyError};
use crate::validate::UpdateError;
use crate::virtual_channel::{
    Link, VirtualRecord, lock_in_parent, pay_fees, settle_in_parent, top_up, top_up_covered, transfer,
};

mod virtuals;

/// Why a wallet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The hub refused or could not be reached.
    #[error(transparent)]
    Hub(#[from] ClientError),
    /// A chain action failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signature could not be made, or the hub's signature is invalid.
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    /// The hub offers no such asset.
    #[error("the hub does not accept asset {0}")]
    UnknownAsset(Address),
    /// The wallet has no record of the channel.
    #[error("no local record of channel {0}")]
    UnknownChannel(B256),
    /// Waiting timed out.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The request makes no sense for this channel.
    #[error("{0}")]
    Invalid(String),
    /// A state could not be built or is not a valid next state.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The peer declined the virtual channel, or its proposal expired unaccepted.
    #[error("virtual channel {0} was rejected or expired unaccepted")]
    Rejected(B256),
    /// The hub or the chain node contradicts the trusted deployment (nothing was signed for
    /// it or sent to the chain).
    #[error("untrusted deployment: {0}")]
    Untrusted(#[from] TrustError),
}

impl From<VerifyError> for WalletError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Untrusted(e) => Self::Untrusted(e),
            VerifyError::Chain(e) => Self::Chain(e),
        }
    }
}

/// Which deployment a wallet trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Only this deployment, from the client's own configuration: `/v1/hub` must agree with
    /// it at connect, and the chain before the first deposit into each asset holder. The
    /// setting for anything that holds real value.
    Pinned(TrustedDeployment),
    /// An opt-out of pinning, for local stacks, demos and tests: whatever deployment
    /// `/v1/hub` names, checked only for agreement with the chain (the node's chain id, the
    /// contracts' code, domains and bindings). It does not detect a hub that deployed its own
    /// copies of the contracts.
    UnpinnedHubDeployment,
}

/// One asset's opening deposits.
#[derive(Debug, Clone, Copy)]
pub struct Deposit {
    /// The asset holder.
    pub asset: Address,
    /// What the client deposits.
    pub mine: U256,
    /// What the client asks the hub to deposit.
    pub hub: U256,
}

/// A client's channels with one hub.
pub struct Wallet {
    pub(crate) key: PrivateKeySigner,
    pub(crate) hub: HubClient,
    pub(crate) info: HubInfo,
    pub(crate) store: ChannelStore,
    pub(crate) provider: DynProvider,
    pub(crate) poll: Duration,
    /// Serializes read-modify-write of stored states.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// The deployment trusted: the pinned one, or the hub's (see [`Trust`]).
    pub(crate) trusted: TrustedDeployment,
    /// The contracts already checked on chain (the adjudicator and asset holders).
    pub(crate) verified: std::sync::Mutex<std::collections::HashSet<Address>>,
}

impl Wallet {
    /// Connects to the hub at `hub_url`, logs in with `key`, and uses `store` for its states
    /// and `provider` (with `key`'s wallet) for the chain, trusting the deployment the hub
    /// names ([`Trust::UnpinnedHubDeployment`]: local stacks, demos, tests). A client that
    /// holds real value uses [`Wallet::connect_with`] and [`Trust::Pinned`].
    pub async fn connect(
        hub_url: &str,
        key: PrivateKeySigner,
        store: ChannelStore,
        provider: DynProvider,
    ) -> Result<Self, WalletError> {
        Self::connect_with(HubClient::new(hub_url), key, store, provider, Trust::UnpinnedHubDeployment).await
    }

    /// Connects through `hub` (e.g. a [`HubClient`] trusting a private root certificate),
    /// trusting the deployment `trust`: reads `/v1/hub` and, with a pinned deployment, refuses
    /// a hub that contradicts it ([`WalletError::Untrusted`]) before logging in. Then logs in
    /// with `key`, signing only a challenge that names the hub and the trusted chain.
    pub async fn connect_with(
        hub: HubClient,
        key: PrivateKeySigner,
        store: ChannelStore,
        provider: DynProvider,
        trust: Trust,
    ) -> Result<Self, WalletError> {
        let info = hub.hub_info().await?;
        let trusted = match trust {
            Trust::Pinned(trusted) => {
                trusted.check_hub_info(&info)?;
                trusted
            }
            Trust::UnpinnedHubDeployment => TrustedDeployment::from_hub_info(&info),
        };
        let mut hub = hub.expecting(info.address, trusted.deployment.chain_id);
        hub.login(&key).await?;
        Ok(Self::assemble(key, hub, info, store, provider, trusted))
    }

    pub(crate) fn assemble(
        key: PrivateKeySigner,
        hub: HubClient,
        info: HubInfo,
        store: ChannelStore,
        provider: DynProvider,
        trusted: TrustedDeployment,
    ) -> Self {
        Self {
            key,
            hub,
            info,
            store,
            provider,
            poll: Duration::from_millis(100),
            lock: tokio::sync::Mutex::new(()),
            trusted,
            verified: Default::default(),
        }
    }

    /// The deployment this wallet trusts.
    pub fn trusted(&self) -> &TrustedDeployment {
        &self.trusted
    }

    /// Checks the chain against the trusted deployment for `assets` (the node's chain id, the
    /// adjudicator, each holder), once per contract and wallet.
    pub async fn verify_chain(&self, assets: &[Asset]) -> Result<(), WalletError> {
        let d = self.trusted.deployment;
        let done = |a: Address| self.verified.lock().map(|v| v.contains(&a)).unwrap_or(false);
        let mark = |a: Address| {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(a);
            }
        };
        if !done(d.adjudicator) {
            trust::verify_adjudicator(&self.provider, &d).await?;
            mark(d.adjudicator);
        }
        for asset in assets {
            if !done(asset.holder) {
                trust::verify_holder(&self.provider, &d, asset).await?;
                mark(asset.holder);
            }
        }
        Ok(())
    }

    /// The hub's description.
    pub fn hub_info(&self) -> &HubInfo {
        &self.info
    }

    /// The HTTP client (logged in).
    pub fn hub(&self) -> &HubClient {
        &self.hub
    }

    /// The local store.
    pub fn store(&self) -> &ChannelStore {
        &self.store
    }

    /// This client's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub(crate) fn deployment(&self) -> Deployment {
        Deployment { chain_id: self.info.chain_id, adjudicator: self.info.adjudicator }
    }

    /// The trusted asset with holder `holder`, which the hub must accept.
    fn asset(&self, holder: Address) -> Result<Asset, WalletError> {
        if !self.info.assets.iter().any(|a| a.holder == holder) {
            return Err(WalletError::UnknownAsset(holder));
        }
        Ok(self.trusted.asset(holder)?)
    }

    pub(crate) fn record(&self, id: B256) -> Result<ChannelRecord, WalletError> {
        self.store.load(id)?.ok_or(WalletError::UnknownChannel(id))
    }

    /// Signs `state`, checks the hub's countersignature, and stores the fully signed state.
    fn seal(
        &self,
        record: &ChannelRecord,
        state: State,
        mine: Bytes,
        hub_sig: Bytes,
    ) -> Result<ChannelRecord, WalletError> {
        self.deployment().verify_state(&state, &hub_sig, self.info.address)?;
        let sigs = record.hub_index.pair(hub_sig, mine);
        let record = ChannelRecord {
            params: record.params.clone(),
            hub_index: record.hub_index,
            latest: FullySignedState { state, sigs },
        };
        self.store.save(&record)?;
        Ok(record)
    }

    /// Proposes a basic channel with `deposits`, stores it once the hub signed, and deposits
    /// the client's share on chain. Returns the channel id; see [`Wallet::wait_until_open`].
    ///
    /// First, before anything is signed or sent: every asset must be a trusted holder the hub
    /// accepts, and the chain must agree with the trusted deployment
    /// ([`Wallet::verify_chain`]); otherwise [`WalletError::Untrusted`].
    pub async fn open_channel(&self, deposits: &[Deposit], challenge_duration: u64) -> Result<B256, WalletError> {
        let assets = deposits.iter().map(|d| self.asset(d.asset)).collect::<Result<Vec<_>, _>>()?;
        self.verify_chain(&assets).await?;
        let params = Params {
            challengeDuration: challenge_duration,
            nonce: U256::from_be_bytes(rand_nonce()),
            participants: [self.key.address(), self.info.address],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        };
        let id = channel_id(&params);
        let state = State {
            channelId: id,
            version: 0,
            outcome: Allocation {
                assets: deposits.iter().map(|d| d.asset).collect(),
                balances: deposits.iter().map(|d| [d.mine, d.hub]).collect(),
                locked: vec![],
            },
            appData: Bytes::new(),
            isFinal: false,
        };
        let mine = self.deployment().sign_state(&self.key, &state)?;
        let request = OpenChannelRequest { params: params.clone(), state: state.clone(), signature: mine.clone() };
        let answer = self.hub.open_channel(&request, Some(&format!("open-{id}"))).await?;
        let draft = ChannelRecord {
            params,
            hub_index: Role::Second,
            latest: FullySignedState { state: state.clone(), sigs: [mine.clone(), answer.signature.clone()] },
        };
        self.seal(&draft, state, mine, answer.signature)?;
        for (d, asset) in deposits.iter().zip(&assets).filter(|(d, _)| !d.mine.is_zero()) {
            chain::deposit(&self.provider, asset, id, self.key.address(), d.mine).await?;
        }
        Ok(id)
    }

    /// Waits until the hub reports the channel funded (both deposits confirmed).
    pub async fn wait_until_open(&self, id: B256, timeout: Duration) -> Result<(), WalletError> {
        self.wait_for_status(id, ChannelStatus::Open, timeout, "the channel to be funded").await
    }

    async fn wait_for_status(
        &self,
        id: B256,
        status: ChannelStatus,
        timeout: Duration,
        what: &'static str,
    ) -> Result<(), WalletError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.hub.channel(id).await?.status == status {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WalletError::Timeout(what));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Pays the hub `amount` of asset `asset` off-chain (version + 1).
    pub async fn pay_hub(&self, id: B256, asset: Address, amount: U256) -> Result<(), WalletError> {
        let record = self.record(id)?;
        let latest = &record.latest.state;
        let a = latest.outcome.assets.iter().position(|x| *x == asset).ok_or(WalletError::UnknownAsset(asset))?;
        let me = record.hub_index.peer();
        let balance = latest.outcome.balances[a][me.index()];
        if balance < amount {
            return Err(WalletError::Invalid(format!("balance {balance} is below {amount}")));
        }
        let state = transfer(latest, me, asset, amount)?;
        let mine = self.deployment().sign_state(&self.key, &state)?;
        let request = StateRequest { state: state.clone(), signature: mine.clone() };
        let answer = self.hub.update(id, &request, Some(&format!("update-{id}-{}", state.version))).await?;
        self.seal(&record, state, mine, answer.signature)?;
        Ok(())
    }

    /// Proposes the final state (latest balances) and stores it once the hub signed; the hub
    /// then concludes the channel on chain. See [`Wallet::withdraw`].
    pub async fn close(&self, id: B256) -> Result<(), WalletError> {
        let record = self.record(id)?;
        let mut state = record.latest.state.clone();
        state.version += 1;
        state.isFinal = true;
        let mine = self.deployment().sign_state(&self.key, &state)?;
        let request = StateRequest { state: state.clone(), signature: mine.clone() };
        let answer = self.hub.close(id, &request, Some(&format!("close-{id}-{}", state.version))).await?;
        self.seal(&record, state, mine, answer.signature)?;
        Ok(())
    }

    /// Waits until the channel is concluded on chain, then withdraws the client's payout of
    /// every asset to its own address. Returns the amounts, in the channel's asset order.
    pub async fn withdraw(&self, id: B256, timeout: Duration) -> Result<Vec<U256>, WalletError> {
        let record = self.record(id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        while chain::dispute(&self.provider, &self.deployment(), id).await?.phase != chain::phase::CONCLUDED {
            if tokio::time::Instant::now() >= deadline {
                return Err(WalletError::Timeout("the channel to be concluded on chain"));
            }
            tokio::time::sleep(self.poll).await;
        }
        let mut amounts = Vec::new();
        for asset in &record.latest.state.outcome.assets {
            let held = chain::holdings(&self.provider, *asset, id, self.key.address()).await?;
            if held.is_zero() {
                amounts.push(U256::ZERO);
            } else {
                amounts.push(
                    chain::withdraw(&self.provider, &self.deployment(), *asset, &self.key, id, self.key.address())
                        .await?,
                );
            }
        }
        Ok(amounts)
    }
}

impl Wallet {
    /// Takes the hub's collateral top-up of basic channel `id`, if it offers one: checks on
    /// chain that the participants' deposits and standbys cover the channel's new total (the
    /// hub's coins are on standby, where they fund the raised state and nothing else), then
    /// signs the state with the hub's balance raised, and stores it with the hub's
    /// countersignature. Returns whether a top-up was applied.
    pub async fn accept_top_up(&self, id: B256) -> Result<bool, WalletError> {
        let _guard = self.lock.lock().await;
        let record = self.record(id)?;
        let view = self.hub.channel(id).await?;
        let Some(offer) = view.top_up else { return Ok(false) };
        if view.latest.state.version != record.latest.state.version {
            return Err(WalletError::Invalid(format!("channel {id} is not in sync with the hub; sync it first")));
        }
        let next = top_up(&record.latest.state, record.hub_index, offer.asset, offer.amount)?;
        let mut held = U256::ZERO;
        for p in record.params.participants {
            held += chain::holdings(&self.provider, offer.asset, id, p).await?;
            held += chain::standby(&self.provider, offer.asset, id, p).await?;
        }
        if !top_up_covered(&next, offer.asset, held)? {
            return Err(WalletError::Invalid(format!(
                "the hub's top-up of {} is not on chain yet (holdings {held})",
                offer.amount
            )));
        }
        let mine = self.deployment().sign_state(&self.key, &next)?;
        let request = StateRequest { state: next.clone(), signature: mine.clone() };
        let answer = self.hub.top_up(id, &request, Some(&format!("top-up-{id}-{}", next.version))).await?;
        self.seal(&record, next, mine, answer.signature)?;
        Ok(true)
    }

    /// Fetches a basic channel's latest state signed by both from the hub (after the hub
    /// countersigned an update this client signed, e.g. a virtual channel's lock or
    /// settlement), checks both signatures, and stores it. Returns the stored record.
    pub async fn sync_channel(&self, id: B256) -> Result<ChannelRecord, WalletError> {
        let _guard = self.lock.lock().await;
        let record = self.record(id)?;
        let view = self.hub.channel(id).await?;
        let d = self.deployment();
        for (i, p) in record.params.participants.iter().enumerate() {
            d.verify_state(&view.latest.state, &view.latest.sigs[i], *p)?;
        }
        if view.latest.state.version < record.latest.state.version {
            return Err(WalletError::Invalid(format!("the hub's channel {id} is older than the stored one")));
        }
        let record = ChannelRecord { latest: view.latest, ..record };
        self.store.save(&record)?;
        Ok(record)
    }
}

fn rand_nonce() -> [u8; 32] {
    rand::random()
}
