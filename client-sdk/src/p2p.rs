//! Direct payments between the two participants of a virtual channel. The hub is never
//! contacted: the payer signs the next version of the virtual channel ([`Payment`]), the payee
//! checks and countersigns it ([`Receipt`]), and each side stores the state signed by both
//! before it answers. Closing is direct too: one side asks for the final state
//! ([`P2pClose`]), the other countersigns it and signs its own parent's settlement
//! ([`CloseAnswer`]), and the first side settles both parents with one request to the hub.
//!
//! A payer has at most one payment in flight per channel: [`Wallet::pay`] stores the signed
//! state as `pending` and refuses another until the receipt arrives
//! ([`Wallet::accept_receipt`]) or the payer adopts the payee's latest state
//! ([`Wallet::resync`], e.g. from a [`PaymentRefusal::WrongVersion`]). A payment whose
//! receipt was lost can be sent again unchanged with [`Wallet::pending_payment`].

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::api::{FullySignedState, HubInfo, StateRequest};
use crate::bindings::Channel::State;
use crate::client::HubClient;
use crate::state::SignatureError;
use crate::store::ChannelStore;
use crate::validate::{UpdateError, UpdateKind, validate_update};
use crate::virtual_channel::{VirtualRecord, finalize, settle_in_parent, transfer};
use crate::wallet::{Wallet, WalletError};

/// A payment: the payer's next state of the virtual channel and the payer's signature on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The virtual channel.
    pub channel: B256,
    /// The next state (latest version + 1), moving the amount to the payee.
    pub state: State,
    /// The payer's signature on `state`.
    pub signature: Bytes,
}

/// The payee's countersignature on a payment's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The virtual channel.
    pub channel: B256,
    /// The version countersigned.
    pub version: u64,
    /// The payee's signature on the payment's state.
    pub signature: Bytes,
}

/// A request to close a virtual channel directly: the final state and the requester's
/// signature on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct P2pClose {
    /// The virtual channel.
    pub channel: B256,
    /// The final state: the latest balances, version + 1, `isFinal`.
    pub state: State,
    /// The requester's signature on `state`.
    pub signature: Bytes,
}

/// The answer to a [`P2pClose`]: the answerer's signature on the final state, and the
/// answerer's signed update of its own parent settling the virtual channel, which the
/// requester hands to the hub together with its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseAnswer {
    /// The answerer's signature on the final state.
    pub signature: Bytes,
    /// The answerer's parent update (lock removed, final balances credited), signed by it.
    pub parent: StateRequest,
}

/// Why a payee refused a payment. Nothing is stored when a payment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    /// The payee has no virtual channel with this id.
    #[error("unknown virtual channel {0}")]
    UnknownChannel(B256),
    /// The payment is not a payment (e.g. its state is for another channel, or final).
    #[error("malformed payment: {0}")]
    Malformed(String),
    /// The channel is closed: its latest state is final.
    #[error("virtual channel {0} is final")]
    ChannelFinal(B256),
    /// The payment is not signed by the payer.
    #[error("bad payment signature: {0}")]
    BadSignature(SignatureError),
    /// The payment's version is not the payee's latest + 1 (a replay, or the payer is out
    /// of sync): `latest` is the payee's latest state signed by both, to resync with.
    #[error("payment has version {actual}, expected {expected}")]
    WrongVersion {
        /// The version the payee expects.
        expected: u64,
        /// The payment's version.
        actual: u64,
        /// The payee's latest state signed by both.
        latest: Box<FullySignedState>,
    },
    /// The payment's state is not a valid transfer after the payee's latest.
    #[error("invalid payment: {0}")]
    Invalid(UpdateError),
    /// The payment pays less than the price in the asset asked for.
    #[error("payment of {paid} is short of the price {price}")]
    Short {
        /// The price.
        price: U256,
        /// What the payment moves to the payee in the asset asked for.
        paid: U256,
        /// The payee's latest state signed by both (the payer may have to drop its payment).
        latest: Box<FullySignedState>,
    },
    /// The channel does not hold the asset asked for, or the payment pays in another asset.
    #[error("the price is in asset {0}, which the payment does not pay")]
    WrongAsset(Address),
    /// The payment lowers one of the payee's balances.
    #[error("the payment takes asset {0} from the payee")]
    TakesFromPayee(Address),
    /// The payee has a payment of its own in flight in this channel; the payer should resync.
    #[error("the payee's own payment in this channel is waiting for its receipt")]
    Busy {
        /// The payee's latest state signed by both.
        latest: Box<FullySignedState>,
    },
    /// The payee could not sign or store the state (its fault, not the payer's).
    #[error("the payee failed: {0}")]
    Internal(String),
}

impl PaymentRefusal {
    /// Machine-readable reason, e.g. `payment_out_of_sync`, `payment_short`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownChannel(_) => "unknown_channel",
            Self::Malformed(_) => "malformed_payment",
            Self::ChannelFinal(_) => "channel_final",
            Self::BadSignature(_) => "bad_signature",
            Self::WrongVersion { .. } => "payment_out_of_sync",
            Self::Invalid(_) => "invalid_payment",
            Self::Short { .. } => "payment_short",
            Self::WrongAsset(_) => "wrong_asset",
            Self::TakesFromPayee(_) => "takes_from_payee",
            Self::Busy { .. } => "payee_busy",
            Self::Internal(_) => "internal",
        }
    }

    /// The payee's latest state signed by both, when the refusal carries it.
    pub fn latest(&self) -> Option<&FullySignedState> {
        match self {
            Self::WrongVersion { latest, .. } | Self::Short { latest, .. } | Self::Busy { latest } => Some(latest),
            _ => None,
        }
    }
}

fn internal(error: impl std::fmt::Display) -> PaymentRefusal {
    PaymentRefusal::Internal(error.to_string())
}

/// `sigs` in participant order from this client's and the peer's signature.
fn ordered(my_index: usize, mine: Bytes, peer: Bytes) -> [Bytes; 2] {
    if my_index == 0 { [mine, peer] } else { [peer, mine] }
}

impl Wallet {
    /// A wallet from its parts, without contacting the hub (`hub` should be logged in for
    /// the operations that use it; direct payments never do).
    pub fn from_parts(
        key: PrivateKeySigner,
        hub: HubClient,
        info: HubInfo,
        store: ChannelStore,
        provider: DynProvider,
    ) -> Wallet {
        Wallet { key, hub, info, store, provider, poll: Duration::from_millis(100), lock: tokio::sync::Mutex::new(()) }
    }

    /// Pays the peer `amount` of asset `asset` in virtual channel `id`: signs the next state
    /// and stores it as pending (durably) before returning the payment to send. Refused while
    /// another payment is pending: accept its receipt, or [`Wallet::resync`].
    pub async fn pay(&self, id: B256, asset: Address, amount: U256) -> Result<Payment, WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if record.pending.is_some() {
            return Err(WalletError::Invalid(format!(
                "a payment in virtual channel {id} is waiting for its receipt; resync first"
            )));
        }
        let latest = &record.latest.state;
        if latest.isFinal {
            return Err(WalletError::Invalid(format!("virtual channel {id} is final")));
        }
        let me = record.my_index as usize;
        let a = latest.outcome.assets.iter().position(|x| *x == asset).ok_or(WalletError::UnknownAsset(asset))?;
        let balance = latest.outcome.balances[a][me];
        if balance < amount {
            return Err(WalletError::Invalid(format!("balance {balance} is below the payment {amount}")));
        }
        let state = transfer(latest, me, asset, amount)?;
        let signature = self.deployment().sign_state(&self.key, &state)?;
        record.pending = Some(state.clone());
        record.pending_sig = Some(signature.clone());
        self.store.save_virtual(&record)?;
        Ok(Payment { channel: id, state, signature })
    }

    /// The pending payment of virtual channel `id`, if any, signed again (signatures are
    /// deterministic: the same bytes as when it was first sent). Sending it again is safe:
    /// a payee that already countersigned it answers [`PaymentRefusal::WrongVersion`] with
    /// its latest state, which includes the payment.
    pub async fn pending_payment(&self, id: B256) -> Result<Option<Payment>, WalletError> {
        let record = self.virtual_record(id)?;
        let Some(state) = record.pending else { return Ok(None) };
        let signature = match record.pending_sig {
            Some(sig) => sig,
            None => self.deployment().sign_state(&self.key, &state)?,
        };
        Ok(Some(Payment { channel: id, state, signature }))
    }

    /// Takes the payee's receipt of the pending payment: checks the payee's signature and
    /// stores the state signed by both as the latest. A receipt of the latest state already
    /// stored is accepted again.
    pub async fn accept_receipt(&self, receipt: &Receipt) -> Result<(), WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(receipt.channel)?;
        let me = record.my_index as usize;
        let peer = record.params.participants[1 - me];
        let d = self.deployment();
        let pending_sig = record.pending_sig.take();
        match record.pending.take() {
            Some(state) if state.version == receipt.version && !state.isFinal => {
                d.verify_state(&state, &receipt.signature, peer)?;
                let mine = match pending_sig {
                    Some(sig) => sig,
                    None => d.sign_state(&self.key, &state)?,
                };
                record.latest = FullySignedState { state, sigs: ordered(me, mine, receipt.signature.clone()) };
                self.store.save_virtual(&record)?;
                Ok(())
            }
            _ if record.latest.state.version == receipt.version => {
                d.verify_state(&record.latest.state, &receipt.signature, peer)?;
                Ok(())
            }
            _ => Err(WalletError::Invalid(format!(
                "no pending payment of version {} in virtual channel {}",
                receipt.version, receipt.channel
            ))),
        }
    }

    /// Checks a payment for `price` of `asset` and countersigns it: the channel is known
    /// and open, the state is a valid transfer after the latest one signed by the payer,
    /// this client's balance of `asset` rises by at least `price` and none of its other
    /// balances falls. Stores the state signed by both before returning the receipt.
    pub async fn receive_payment(
        &self,
        payment: &Payment,
        asset: Address,
        price: U256,
    ) -> Result<Receipt, PaymentRefusal> {
        let _guard = self.lock.lock().await;
        let id = payment.channel;
        let mut record = self.store.load_virtual(id).map_err(internal)?.ok_or(PaymentRefusal::UnknownChannel(id))?;
        let proposed = &payment.state;
        if proposed.channelId != id {
            return Err(PaymentRefusal::Malformed(format!("the state is for channel {}", proposed.channelId)));
        }
        if record.latest.state.isFinal {
            return Err(PaymentRefusal::ChannelFinal(id));
        }
        if proposed.isFinal {
            return Err(PaymentRefusal::Malformed("a payment's state is not final".into()));
        }
        let me = record.my_index as usize;
        let d = self.deployment();
        d.verify_state(proposed, &payment.signature, record.params.participants[1 - me])
            .map_err(PaymentRefusal::BadSignature)?;
        let current = &record.latest.state;
        validate_update(current, proposed, UpdateKind::Transfer).map_err(|e| match e {
            UpdateError::WrongVersion { expected, actual } => {
                PaymentRefusal::WrongVersion { expected, actual, latest: Box::new(record.latest.clone()) }
            }
            e => PaymentRefusal::Invalid(e),
        })?;
        if record.pending.is_some() {
            return Err(PaymentRefusal::Busy { latest: Box::new(record.latest.clone()) });
        }
        let assets = &current.outcome.assets;
        let a = assets.iter().position(|x| *x == asset).ok_or(PaymentRefusal::WrongAsset(asset))?;
        let (before, after) = (&current.outcome.balances, &proposed.outcome.balances);
        let mut other_rose = false;
        for (b, (old, new)) in before.iter().zip(after).enumerate() {
            if new[me] < old[me] {
                return Err(PaymentRefusal::TakesFromPayee(assets[b]));
            }
            other_rose |= b != a && new[me] > old[me];
        }
        let paid = after[a][me].saturating_sub(before[a][me]);
        if paid < price {
            if other_rose && paid.is_zero() {
                return Err(PaymentRefusal::WrongAsset(asset));
            }
            return Err(PaymentRefusal::Short { price, paid, latest: Box::new(record.latest.clone()) });
        }
        let mine = d.sign_state(&self.key, proposed).map_err(internal)?;
        let version = proposed.version;
        record.latest = FullySignedState {
            state: payment.state.clone(),
            sigs: ordered(me, mine.clone(), payment.signature.clone()),
        };
        self.store.save_virtual(&record).map_err(internal)?;
        Ok(Receipt { channel: id, version, signature: mine })
    }

    /// Adopts `latest`, a state of virtual channel `id` signed by both (both signatures are
    /// checked), if its version is at least the stored one, and drops the pending payment.
    /// Used after a payee answered [`PaymentRefusal::WrongVersion`] (e.g. a lost receipt).
    /// Note: a dropped payment stays signed; a new payment reuses its version.
    pub async fn resync(&self, id: B256, latest: &FullySignedState) -> Result<VirtualRecord, WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if latest.state.channelId != id {
            return Err(WalletError::Invalid(format!("the state is for channel {}", latest.state.channelId)));
        }
        let d = self.deployment();
        for (sig, participant) in latest.sigs.iter().zip(record.params.participants) {
            d.verify_state(&latest.state, sig, participant)?;
        }
        let stored = record.latest.state.version;
        if latest.state.version < stored {
            return Err(WalletError::Invalid(format!(
                "version {} is older than the stored version {stored}",
                latest.state.version
            )));
        }
        record.latest = latest.clone();
        record.pending = None;
        record.pending_sig = None;
        self.store.save_virtual(&record)?;
        Ok(record)
    }

    /// Asks the peer to close virtual channel `id` at its latest balances: signs the final
    /// state and keeps it as pending (no payment can follow it). Asking again returns the
    /// same final state. Refused while a payment is pending. To give up on a close the peer
    /// never answers, [`Wallet::resync`] with the latest state.
    pub async fn close_request(&self, id: B256) -> Result<P2pClose, WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        let state = match &record.pending {
            Some(pending) if pending.isFinal => pending.clone(),
            Some(_) => {
                return Err(WalletError::Invalid(format!(
                    "a payment in virtual channel {id} is waiting for its receipt; resync first"
                )));
            }
            None if record.latest.state.isFinal => {
                return Err(WalletError::Invalid(format!(
                    "virtual channel {id} is already final; settle it with settle_virtual"
                )));
            }
            None => finalize(&record.latest.state)?,
        };
        let signature = self.deployment().sign_state(&self.key, &state)?;
        if record.pending.is_none() {
            record.pending = Some(state.clone());
            record.pending_sig = Some(signature.clone());
            self.store.save_virtual(&record)?;
        }
        Ok(P2pClose { channel: id, state, signature })
    }

    /// Answers the peer's [`P2pClose`]: checks that it is exactly the final state of the
    /// latest balances (or of this client's own pending payment, which the peer evidently
    /// received) and signed by the peer, countersigns it, and signs this client's parent
    /// update settling the virtual channel. Stores the final state signed by both; the
    /// parent update becomes the parent's latest only once the hub countersigned it (fetch
    /// it with [`Wallet::sync_channel`]).
    pub async fn answer_close(&self, close: &P2pClose) -> Result<CloseAnswer, WalletError> {
        let _guard = self.lock.lock().await;
        let mut vrecord = self.virtual_record(close.channel)?;
        if close.state.channelId != close.channel {
            return Err(WalletError::Invalid(format!("the state is for channel {}", close.state.channelId)));
        }
        let latest = &vrecord.latest.state;
        let expected = if latest.isFinal {
            latest == &close.state
        } else {
            finalize(latest)? == close.state
                || vrecord.pending.as_ref().is_some_and(|p| !p.isFinal && finalize(p).is_ok_and(|f| f == close.state))
        };
        if !expected {
            return Err(WalletError::Invalid(
                "the close is not the final state of the channel's latest balances".into(),
            ));
        }
        let me = vrecord.my_index as usize;
        let d = self.deployment();
        d.verify_state(&close.state, &close.signature, vrecord.params.participants[1 - me])?;
        let mine = d.sign_state(&self.key, &close.state)?;
        let parent = self.record(vrecord.my_parent())?;
        let update = settle_in_parent(&parent.latest.state, &close.state)?;
        let parent_sig = d.sign_state(&self.key, &update)?;
        if !vrecord.latest.state.isFinal {
            vrecord.latest = FullySignedState {
                state: close.state.clone(),
                sigs: ordered(me, mine.clone(), close.signature.clone()),
            };
            vrecord.pending = None;
            vrecord.pending_sig = None;
            self.store.save_virtual(&vrecord)?;
        }
        Ok(CloseAnswer { signature: mine, parent: StateRequest { state: update, signature: parent_sig } })
    }

    /// Finishes a direct close: checks the peer's signature on the final state, stores the
    /// final state signed by both, then settles both parents with one request to the hub
    /// ([`Wallet::settle_virtual`] with the peer's parent update).
    pub async fn finish_close(&self, id: B256, close: &P2pClose, answer: CloseAnswer) -> Result<(), WalletError> {
        let sigs = {
            let _guard = self.lock.lock().await;
            let mut vrecord = self.virtual_record(id)?;
            if close.channel != id || close.state.channelId != id || !close.state.isFinal {
                return Err(WalletError::Invalid(format!("the close is not a final state of channel {id}")));
            }
            let me = vrecord.my_index as usize;
            if answer.parent.state.channelId != vrecord.parents[1 - me] {
                return Err(WalletError::Invalid("the answer's parent update is not for the peer's parent".into()));
            }
            let d = self.deployment();
            d.verify_state(&close.state, &answer.signature, vrecord.params.participants[1 - me])?;
            d.verify_state(&close.state, &close.signature, self.key.address())?;
            let sigs = ordered(me, close.signature.clone(), answer.signature.clone());
            if vrecord.latest.state.version < close.state.version {
                vrecord.latest = FullySignedState { state: close.state.clone(), sigs: sigs.clone() };
                vrecord.pending = None;
                vrecord.pending_sig = None;
                vrecord.pending_sig = None;
                self.store.save_virtual(&vrecord)?;
            }
            sigs
        };
        if self.settle_virtual(id, &close.state, sigs, Some(answer.parent)).await? {
            Ok(())
        } else {
            Err(WalletError::Invalid(format!("the hub did not settle virtual channel {id} with both updates")))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use alloy::primitives::{Address, B256, Bytes, U256};
    use alloy::signers::local::PrivateKeySigner;

    use super::*;
    use crate::api::{AssetInfo, FullySignedState, HubInfo};
    use crate::bindings::Channel::{Allocation, Params, State};
    use crate::devnet::Devnet;
    use crate::state::{Deployment, channel_id};
    use crate::store::{ChannelRecord, ChannelStore};
    use crate::virtual_channel::{Side, VirtualRecord, lock_in_parent, settle_in_parent};

    pub(crate) fn eth() -> Address {
        Address::repeat_byte(0xee)
    }

    pub(crate) fn token() -> Address {
        Address::repeat_byte(0x70)
    }

    pub(crate) fn u(x: u64) -> U256 {
        U256::from(x)
    }

    /// Two wallets holding the same open virtual channel: Alice (participant 0, the buyer)
    /// deposited `deposit` ETH and 50 tokens, Bob (participant 1, the seller) 0 ETH and 50
    /// tokens. Both parents are stored, locking it, signed by their client and the hub.
    pub(crate) struct Pair {
        pub alice: Arc<Wallet>,
        pub bob: Arc<Wallet>,
        pub hub_key: PrivateKeySigner,
        pub id: B256,
        pub parents: [ChannelRecord; 2],
        pub deployment: Deployment,
        _dirs: [tempfile::TempDir; 2],
    }

    /// A TCP listener standing in for the hub and the chain node: counts the connections it
    /// accepts and drops them.
    pub(crate) async fn unreachable_hub() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        (url, hits)
    }

    fn params(participants: [Address; 2], ledger: bool) -> Params {
        Params {
            challengeDuration: 3600,
            nonce: U256::from_be_bytes(rand::random::<[u8; 32]>()),
            participants,
            ledger,
            isVirtual: !ledger,
            app: Address::ZERO,
        }
    }

    pub(crate) fn opening(params: &Params, balances: Vec<[U256; 2]>) -> State {
        State {
            channelId: channel_id(params),
            version: 0,
            outcome: Allocation { assets: vec![eth(), token()], balances, locked: vec![] },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    pub(crate) fn sign_both(d: &Deployment, keys: [&PrivateKeySigner; 2], state: State) -> FullySignedState {
        let sigs = keys.map(|k| d.sign_state(k, &state).expect("sign"));
        FullySignedState { state, sigs }
    }

    pub(crate) fn pair(hub_url: &str, deposit: u64) -> Pair {
        let (alice_key, bob_key, hub_key) =
            (PrivateKeySigner::random(), PrivateKeySigner::random(), PrivateKeySigner::random());
        let info = HubInfo {
            address: hub_key.address(),
            chain_id: 31337,
            adjudicator: Address::repeat_byte(0xad),
            assets: vec![
                AssetInfo { symbol: "ETH".into(), holder: eth(), token: None },
                AssetInfo { symbol: "TOK".into(), holder: token(), token: Some(Address::repeat_byte(0x71)) },
            ],
            challenge_duration: [60, 86_400],
            confirmations: 1,
            virtual_fees: false,
        };
        let d = Deployment { chain_id: info.chain_id, adjudicator: info.adjudicator };
        let vparams = params([alice_key.address(), bob_key.address()], false);
        let v0 = opening(&vparams, vec![[u(deposit), u(0)], [u(50), u(50)]]);
        // Alice's parent X (Alice 0, hub 1) and Bob's parent Y (Bob 0, hub 1), both locking V.
        let xparams = params([alice_key.address(), hub_key.address()], true);
        let yparams = params([bob_key.address(), hub_key.address()], true);
        let x0 = opening(&xparams, vec![[u(2 * deposit), u(2 * deposit)], [u(100), u(100)]]);
        let y0 = opening(&yparams, vec![[u(10), u(2 * deposit)], [u(100), u(100)]]);
        let x1 = lock_in_parent(&x0, 1, Side::Proposer, &v0).expect("lock X");
        let y1 = lock_in_parent(&y0, 1, Side::Acceptor, &v0).expect("lock Y");
        let x = ChannelRecord { params: xparams, hub_index: 1, latest: sign_both(&d, [&alice_key, &hub_key], x1) };
        let y = ChannelRecord { params: yparams, hub_index: 1, latest: sign_both(&d, [&bob_key, &hub_key], y1) };
        let opened = sign_both(&d, [&alice_key, &bob_key], v0);
        let mut dirs = Vec::new();
        let mut wallets = Vec::new();
        for (i, (key, parent)) in [(alice_key, &x), (bob_key, &y)].into_iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = ChannelStore::open(dir.path()).expect("store");
            store.save(parent).expect("save parent");
            store
                .save_virtual(&VirtualRecord {
                    params: vparams.clone(),
                    parents: [x.id(), y.id()],
                    my_index: i as u8,
                    latest: opened.clone(),
                    pending: None,
                    pending_sig: None,
                })
                .expect("save virtual");
            let provider = Devnet::provider_at(hub_url.parse().expect("url"), &key);
            wallets.push(Arc::new(Wallet::from_parts(key, HubClient::new(hub_url), info.clone(), store, provider)));
            dirs.push(dir);
        }
        let [alice, bob]: [Arc<Wallet>; 2] = wallets.try_into().ok().expect("two wallets");
        let dirs: [tempfile::TempDir; 2] = dirs.try_into().expect("two dirs");
        Pair { alice, bob, hub_key, id: opened.state.channelId, parents: [x, y], deployment: d, _dirs: dirs }
    }

    fn balances(wallet: &Wallet, id: B256) -> Vec<[U256; 2]> {
        wallet.virtual_record(id).expect("record").latest.state.outcome.balances
    }

    #[tokio::test]
    async fn a_hundred_payments_in_a_row_leave_exact_balances() {
        let (hub, hits) = unreachable_hub().await;
        let p = pair(&hub, 10_000);
        for i in 1..=100u64 {
            let payment = p.alice.pay(p.id, eth(), u(i)).await.expect("pay");
            let receipt = p.bob.receive_payment(&payment, eth(), u(i)).await.expect("receive");
            assert_eq!(receipt.version, i);
            p.alice.accept_receipt(&receipt).await.expect("receipt");
        }
        let (a, b) = (p.alice.virtual_record(p.id).expect("a"), p.bob.virtual_record(p.id).expect("b"));
        assert_eq!(a.latest, b.latest, "both stores hold the same fully signed state");
        assert_eq!(a.latest.state.version, 100);
        assert!(a.pending.is_none() && b.pending.is_none());
        assert_eq!(a.latest.state.outcome.balances, vec![[u(10_000 - 5050), u(5050)], [u(50), u(50)]]);
        for (sig, key) in a.latest.sigs.iter().zip([p.alice.address(), p.bob.address()]) {
            p.deployment.verify_state(&a.latest.state, sig, key).expect("signed by both");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    #[tokio::test]
    async fn a_replayed_payment_is_refused_with_the_payees_latest() {
        let (hub, _) = unreachable_hub().await;
        let p = pair(&hub, 100);
        let payment = p.alice.pay(p.id, eth(), u(5)).await.expect("pay");
        let receipt = p.bob.receive_payment(&payment, eth(), u(5)).await.expect("receive");
        p.alice.accept_receipt(&receipt).await.expect("receipt");
        let before = p.bob.virtual_record(p.id).expect("record");
        let refusal = p.bob.receive_payment(&payment, eth(), u(5)).await.expect_err("replay");
        match &refusal {
            PaymentRefusal::WrongVersion { expected: 2, actual: 1, latest } => assert_eq!(**latest, before.latest),
            other => panic!("unexpected refusal {other:?}"),
        }
        assert_eq!(refusal.code(), "payment_out_of_sync");
        assert_eq!(p.bob.virtual_record(p.id).expect("record"), before, "nothing stored");
        assert_eq!(balances(&p.bob, p.id)[0], [u(95), u(5)], "paid once");
    }

    #[tokio::test]
    async fn forged_short_and_malformed_payments_are_refused_and_nothing_is_stored() {
        let (hub, _) = unreachable_hub().await;
        let p = pair(&hub, 100);
        let before = p.bob.virtual_record(p.id).expect("record");
        let next = |from: usize, asset: Address, amount: u64| {
            transfer(&before.latest.state, from, asset, u(amount)).expect("transfer")
        };
        let sign = |state: &State| p.deployment.sign_state(&p.alice.key, state).expect("sign");
        let payment = |state: State| Payment { channel: p.id, signature: sign(&state), state };

        // Signed by someone else (Mallory), or the state altered after Alice signed.
        let mallory = PrivateKeySigner::random();
        let state = next(0, eth(), 5);
        let forged =
            Payment { channel: p.id, signature: p.deployment.sign_state(&mallory, &state).expect("sign"), state };
        assert!(matches!(
            p.bob.receive_payment(&forged, eth(), u(5)).await,
            Err(PaymentRefusal::BadSignature(SignatureError::WrongSigner { .. }))
        ));
        let mut altered = payment(next(0, eth(), 1));
        altered.state.outcome.balances[0] = [u(90), u(10)];
        assert!(matches!(p.bob.receive_payment(&altered, eth(), u(5)).await, Err(PaymentRefusal::BadSignature(_))));
        let mut truncated = payment(next(0, eth(), 5));
        truncated.signature = truncated.signature.slice(..64);
        assert!(matches!(
            p.bob.receive_payment(&truncated, eth(), u(5)).await,
            Err(PaymentRefusal::BadSignature(SignatureError::Malformed))
        ));

        // Short, in another asset, taking from the payee, minting money, final, elsewhere.
        assert_eq!(
            p.bob.receive_payment(&payment(next(0, eth(), 3)), eth(), u(5)).await,
            Err(PaymentRefusal::Short { price: u(5), paid: u(3), latest: Box::new(before.latest.clone()) })
        );
        assert_eq!(
            p.bob.receive_payment(&payment(next(0, token(), 5)), eth(), u(5)).await,
            Err(PaymentRefusal::WrongAsset(eth()))
        );
        assert_eq!(
            p.bob.receive_payment(&payment(next(0, eth(), 5)), Address::repeat_byte(1), u(5)).await,
            Err(PaymentRefusal::WrongAsset(Address::repeat_byte(1)))
        );
        let mut taking = next(0, eth(), 5);
        taking.outcome.balances[1] = [u(51), u(49)];
        assert_eq!(
            p.bob.receive_payment(&payment(taking), eth(), u(5)).await,
            Err(PaymentRefusal::TakesFromPayee(token()))
        );
        assert_eq!(
            p.bob.receive_payment(&payment(next(1, token(), 5)), eth(), u(0)).await,
            Err(PaymentRefusal::TakesFromPayee(token()))
        );
        let mut minting = next(0, eth(), 5);
        minting.outcome.balances[0][1] = u(500);
        assert!(matches!(
            p.bob.receive_payment(&payment(minting), eth(), u(5)).await,
            Err(PaymentRefusal::Invalid(UpdateError::TotalChanged { .. }))
        ));
        let mut last = next(0, eth(), 5);
        last.isFinal = true;
        assert!(matches!(p.bob.receive_payment(&payment(last), eth(), u(5)).await, Err(PaymentRefusal::Malformed(_))));
        let mut elsewhere = payment(next(0, eth(), 5));
        elsewhere.channel = B256::repeat_byte(3);
        assert_eq!(
            p.bob.receive_payment(&elsewhere, eth(), u(5)).await,
            Err(PaymentRefusal::UnknownChannel(B256::repeat_byte(3)))
        );
        let mut mismatched = payment(next(0, eth(), 5));
        mismatched.state.channelId = B256::repeat_byte(3);
        mismatched.signature = sign(&mismatched.state);
        assert!(matches!(p.bob.receive_payment(&mismatched, eth(), u(5)).await, Err(PaymentRefusal::Malformed(_))));

        assert_eq!(p.bob.virtual_record(p.id).expect("record"), before, "nothing stored");
        // A good payment still goes through at version 1.
        let receipt = p.bob.receive_payment(&payment(next(0, eth(), 5)), eth(), u(5)).await.expect("good");
        assert_eq!(receipt.version, 1);
    }

    #[tokio::test]
    async fn a_lost_receipt_is_recovered_by_resync() {
        let (hub, hits) = unreachable_hub().await;
        let p = pair(&hub, 100);
        let first = p.alice.pay(p.id, eth(), u(7)).await.expect("pay");
        let _lost = p.bob.receive_payment(&first, eth(), u(7)).await.expect("receive");
        // Alice never got the receipt: another payment is refused until she resyncs.
        assert!(p.alice.pay(p.id, eth(), u(1)).await.is_err());
        let stored = p.alice.virtual_record(p.id).expect("record");
        assert_eq!(stored.pending.as_ref(), Some(&first.state), "the payment was stored before it left");
        // Sending the pending payment again returns the same bytes; Bob refuses it with his latest.
        let again = p.alice.pending_payment(p.id).await.expect("pending").expect("some");
        assert_eq!(again, first);
        let latest = match p.bob.receive_payment(&again, eth(), u(7)).await {
            Err(PaymentRefusal::WrongVersion { latest, .. }) => *latest,
            other => panic!("expected a wrong version, got {other:?}"),
        };
        // A state not signed by both, or older than the stored one, is not adopted.
        let mut forged = latest.clone();
        forged.sigs[1] = forged.sigs[0].clone();
        assert!(p.alice.resync(p.id, &forged).await.is_err());
        let record = p.alice.resync(p.id, &latest).await.expect("resync");
        assert_eq!((record.latest.state.version, record.pending), (1, None));
        assert!(p.alice.resync(p.id, &stored.latest).await.is_err(), "version 0 is older");
        // Paying continues from version 2.
        let second = p.alice.pay(p.id, eth(), u(3)).await.expect("pay");
        let receipt = p.bob.receive_payment(&second, eth(), u(3)).await.expect("receive");
        p.alice.accept_receipt(&receipt).await.expect("receipt");
        assert_eq!(balances(&p.alice, p.id)[0], [u(90), u(10)]);
        assert_eq!(p.alice.virtual_record(p.id).expect("a").latest, p.bob.virtual_record(p.id).expect("b").latest);

        // A payment that never arrived: resync with the payee's (unchanged) latest drops it.
        let _never_sent = p.alice.pay(p.id, eth(), u(50)).await.expect("pay");
        let bobs = p.bob.virtual_record(p.id).expect("b").latest;
        let record = p.alice.resync(p.id, &bobs).await.expect("resync");
        assert_eq!((record.latest.state.version, record.pending), (2, None));
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    #[tokio::test]
    async fn close_request_and_answer_give_a_final_state_and_the_answerers_parent_settlement() {
        let (hub, hits) = unreachable_hub().await;
        let p = pair(&hub, 100);
        for amount in [10, 20] {
            let payment = p.alice.pay(p.id, eth(), u(amount)).await.expect("pay");
            let receipt = p.bob.receive_payment(&payment, eth(), u(amount)).await.expect("receive");
            p.alice.accept_receipt(&receipt).await.expect("receipt");
        }
        let close = p.alice.close_request(p.id).await.expect("close request");
        let latest = p.alice.virtual_record(p.id).expect("record").latest.state;
        assert_eq!(close.state, finalize(&latest).expect("final"));
        assert!(p.alice.pay(p.id, eth(), u(1)).await.is_err(), "no payment after the final state");
        assert_eq!(p.alice.close_request(p.id).await.expect("again"), close, "asking again is the same");

        // Bob refuses a close that is not the final state of the latest balances.
        let mut greedy = close.clone();
        greedy.state.outcome.balances[0] = [u(100), u(0)];
        greedy.signature = p.deployment.sign_state(&p.alice.key, &greedy.state).expect("sign");
        assert!(p.bob.answer_close(&greedy).await.is_err());
        let mut unsigned = close.clone();
        unsigned.signature = p.deployment.sign_state(&PrivateKeySigner::random(), &close.state).expect("sign");
        assert!(p.bob.answer_close(&unsigned).await.is_err());

        let answer = p.bob.answer_close(&close).await.expect("answer");
        p.deployment.verify_state(&close.state, &close.signature, p.alice.address()).expect("Alice signed");
        p.deployment.verify_state(&close.state, &answer.signature, p.bob.address()).expect("Bob signed");
        let y = &p.parents[1];
        assert_eq!(answer.parent.state, settle_in_parent(&y.latest.state, &close.state).expect("settle"));
        assert_eq!(
            answer.parent.state.outcome.balances[0],
            [u(10 + 30), u(200 - 100 + 70)],
            "Bob 10 + 30, hub 100 + 70"
        );
        assert!(answer.parent.state.outcome.locked.is_empty());
        p.deployment.verify_state(&answer.parent.state, &answer.parent.signature, p.bob.address()).expect("parent");
        let bob_v = p.bob.virtual_record(p.id).expect("record");
        assert_eq!(bob_v.latest.state, close.state);
        assert_eq!(bob_v.latest.sigs, [close.signature.clone(), answer.signature.clone()]);
        assert_eq!(p.bob.record(y.id()).expect("parent"), *y, "the parent waits for the hub's countersignature");
        assert_eq!(p.bob.answer_close(&close).await.expect("answer again"), answer, "answering again is the same");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the hub was never contacted");
    }

    /// A stand-in for the hub's close endpoint: countersigns every parent update it is given.
    async fn countersigning_hub(
        hub_key: PrivateKeySigner,
        d: Deployment,
    ) -> (String, Arc<std::sync::Mutex<Vec<crate::api::VirtualClose>>>) {
        use axum::routing::post;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/v1/virtual-channels/{id}/close",
            post(move |axum::Json(close): axum::Json<crate::api::VirtualClose>| {
                let (hub_key, log) = (hub_key.clone(), log.clone());
                async move {
                    let signatures = close
                        .parents
                        .iter()
                        .map(|p| crate::api::SignatureResponse {
                            channel_id: p.state.channelId,
                            version: p.state.version,
                            signature: d.sign_state(&hub_key, &p.state).expect("sign"),
                        })
                        .collect();
                    log.lock().expect("log").push(close);
                    axum::Json(crate::api::VirtualCloseResponse { signatures })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    #[tokio::test]
    async fn finish_close_settles_both_parents_in_one_hub_request() {
        let (placeholder, _) = unreachable_hub().await;
        let mut p = pair(&placeholder, 100);
        let (hub, seen) = countersigning_hub(p.hub_key.clone(), p.deployment).await;
        let alice = Arc::get_mut(&mut p.alice).expect("sole owner");
        alice.hub = HubClient::new(&hub);
        let payment = p.alice.pay(p.id, eth(), u(30)).await.expect("pay");
        let receipt = p.bob.receive_payment(&payment, eth(), u(30)).await.expect("receive");
        p.alice.accept_receipt(&receipt).await.expect("receipt");

        let close = p.alice.close_request(p.id).await.expect("close request");
        let answer = p.bob.answer_close(&close).await.expect("answer");
        let bobs_parent = answer.parent.clone();
        p.alice.finish_close(p.id, &close, answer).await.expect("finish");

        let requests = seen.lock().expect("log").clone();
        assert_eq!(requests.len(), 1, "one hub request");
        assert_eq!(requests[0].parents.len(), 2, "settling both parents");
        assert_eq!(requests[0].parents[1], bobs_parent);
        let x = p.alice.record(p.parents[0].id()).expect("X");
        assert_eq!(x.latest.state, settle_in_parent(&p.parents[0].latest.state, &close.state).expect("settle"));
        assert_eq!(x.latest.state.outcome.balances[0], [u(200 - 100 + 70), u(200 + 30)]);
        let v = p.alice.virtual_record(p.id).expect("V");
        assert!(v.latest.state.isFinal && v.pending.is_none());
        assert_eq!(v.latest, p.bob.virtual_record(p.id).expect("V").latest);
    }
}
