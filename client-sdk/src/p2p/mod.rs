//! Direct payments between the two participants of a virtual channel. The hub is never
//! contacted: the payer signs the next version of the virtual channel ([`Payment`]), the payee
//! checks and countersigns it ([`Receipt`]), and each side stores the state signed by both
//! before it answers. Closing is direct too: one side asks for the final state
//! ([`P2pClose`]), the other countersigns it and signs its own parent's settlement
//! ([`CloseAnswer`]), and the first side settles both parents with one request to the hub.
//!
//! Durable writes per payment: the payer's signed payment (pending) and the payee's
//! countersigned state, each before it leaves. The payer's record of the receipted state is
//! written without waiting for the disk ([`ChannelStore::save_virtual_unsynced`]): a crash
//! of its machine leaves it the older state with the payment pending, and it completes it
//! from the payee (sending the pending payment again is answered with
//! [`PaymentRefusal::WrongVersion`] and the payee's latest state, to [`Wallet::resync`]
//! with; a close built on the pending payment is answered as it is).

//! A payer has at most one payment in flight per channel: [`Wallet::pay`] stores the signed
//! state as `pending` and refuses another until the receipt arrives
//! ([`Wallet::accept_receipt`]) or the payer adopts the payee's latest state
//! ([`Wallet::resync`], e.g. from a [`PaymentRefusal::WrongVersion`]). A payment whose
//! receipt was lost can be sent again unchanged with [`Wallet::pending_payment`].

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
    /// The peer's app move is refused by the app's rule or the adjudicator's checks (not its
    /// turn, not a valid move, the wrong allocation, not signed by the mover, ...).
    #[error("invalid move: {0}")]
    Move(crate::app::AppError),
    /// A seller cannot deliver what an offer asks for (content that does not open its lock,
    /// or too long to reveal in a claim; a channel registered on chain): it countersigns
    /// nothing, and the buyer drops its offer.
    #[error("not deliverable: {0}")]
    Undeliverable(String),
    /// The channel is registered on chain (the payee's watcher saw its record): its outcome
    /// is settled there, and no state signed off chain from now on may count.
    #[error("virtual channel {0} is registered on chain")]
    OnChain(B256),
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
            Self::Move(e) => e.code(),
            Self::Undeliverable(_) => "not_deliverable",
            Self::OnChain(_) => "channel_on_chain",
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

pub(crate) fn internal(error: impl std::fmt::Display) -> PaymentRefusal {
    PaymentRefusal::Internal(error.to_string())
}

impl Wallet {
    /// A wallet from its parts, without contacting the hub (`hub` should be logged in for
    /// the operations that use it; direct payments never do). It trusts the deployment `info`
    /// names, as [`crate::wallet::Trust::UnpinnedHubDeployment`] does.
    pub fn from_parts(
        key: PrivateKeySigner,
        hub: HubClient,
        info: HubInfo,
        store: ChannelStore,
        provider: DynProvider,
    ) -> Wallet {
        let trusted = crate::trust::TrustedDeployment::from_hub_info(&info);
        Wallet::assemble(key, hub, info, store, provider, trusted)
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
        let me = record.my_index;
        let a = latest.outcome.assets.iter().position(|x| *x == asset).ok_or(WalletError::UnknownAsset(asset))?;
        let balance = latest.outcome.balances[a][me.index()];
        if balance < amount {
            return Err(WalletError::Invalid(format!("balance {balance} is below the payment {amount}")));
        }
        let state = transfer(latest, me, asset, amount)?;
        let signature = self.deployment().sign_state(&self.key, &state)?;
        record.pending = Some(state.clone());
        record.pending_sig = Some(signature.clone());
        // Durable before it leaves: a payer that forgot a payment it signed could sign another
        // state at the same version, and a payee that signs anything would keep the one it
        // prefers (a state at the same version cannot refute it).
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
        let me = record.my_index;
        let peer = record.peer();
        let d = self.deployment();
        let pending_sig = record.pending_sig.take();
        match record.pending.take() {
            // A payment, or an app move (which may end the game with a final state).
            Some(state) if state.version == receipt.version && (!state.isFinal || !record.params.app.is_zero()) => {
                d.verify_state(&state, &receipt.signature, peer)?;
                let mine = match pending_sig {
                    Some(sig) => sig,
                    None => d.sign_state(&self.key, &state)?,
                };
                record.latest = FullySignedState { state, sigs: me.pair(mine, receipt.signature.clone()) };
                // This client's own payment: losing it in a crash leaves it an older state in
                // which it holds more (the payee stored this one before answering).
                self.store.save_virtual_unsynced(&record)?;
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
        if record.on_chain.is_some() {
            return Err(PaymentRefusal::OnChain(id));
        }
        if proposed.isFinal {
            return Err(PaymentRefusal::Malformed("a payment's state is not final".into()));
        }
        let me = record.my_index.index();
        let d = self.deployment();
        d.verify_state(proposed, &payment.signature, record.peer()).map_err(PaymentRefusal::BadSignature)?;
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
            sigs: record.my_index.pair(mine.clone(), payment.signature.clone()),
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

    /// Drops this client's pending payment or move in virtual channel `id`, which the peer
    /// refused (did not countersign); the latest state signed by both stays. A dropped move
    /// stays signed: the next one reuses its version, and the peer, holding a newer state
    /// signed by both, can refute the old one.
    pub async fn drop_pending(&self, id: B256) -> Result<(), WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if record.pending.take().is_some() {
            record.pending_sig = None;
            self.store.save_virtual(&record)?;
        }
        Ok(())
    }

    /// Asks the peer to close virtual channel `id` at its latest balances: signs the final
    /// state and keeps it as pending (no payment can follow it). Asking again returns the
    /// same final state. Refused while a payment is pending; in an app channel, a pending
    /// move of this client's is closed as its final state (and stays pending). To give up on a close the peer
    /// never answers, [`Wallet::resync`] with the latest state.
    pub async fn close_request(&self, id: B256) -> Result<P2pClose, WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        let state = match &record.pending {
            Some(pending) if pending.isFinal => pending.clone(),
            // This client's app move waiting for its countersignature (a seller's last claim):
            // the close is its final state, which the peer signs only if it holds the move
            // and gives nothing up. The move stays pending, to force on chain otherwise.
            Some(pending) if !record.params.app.is_zero() => finalize(pending)?,
            Some(_) => {
                return Err(WalletError::Invalid(format!(
                    "a payment in virtual channel {id} is waiting for its receipt; resync first"
                )));
            }
            // A game that ended with a final state signed by both closes with it.
            None if record.latest.state.isFinal && !record.params.app.is_zero() => record.latest.state.clone(),
            None if record.latest.state.isFinal => {
                return Err(WalletError::Invalid(format!(
                    "virtual channel {id} is already final; settle it with settle_virtual"
                )));
            }
            None => finalize(&record.latest.state)?,
        };
        let signature = self.deployment().sign_state(&self.key, &state)?;
        if record.pending.is_none() && !record.latest.state.isFinal {
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
        let expected = if !vrecord.params.app.is_zero() {
            self.app_close_acceptable(&vrecord, &close.state)
        } else if latest.isFinal {
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
        let me = vrecord.my_index;
        let d = self.deployment();
        d.verify_state(&close.state, &close.signature, vrecord.peer())?;
        let mine = d.sign_state(&self.key, &close.state)?;
        let parent = self.record(vrecord.my_parent())?;
        let update = settle_in_parent(&parent.latest.state, &close.state)?;
        let parent_sig = d.sign_state(&self.key, &update)?;
        if !vrecord.latest.state.isFinal {
            vrecord.latest =
                FullySignedState { state: close.state.clone(), sigs: me.pair(mine.clone(), close.signature.clone()) };
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
            let me = vrecord.my_index;
            if answer.parent.state.channelId != vrecord.peer_parent() {
                return Err(WalletError::Invalid("the answer's parent update is not for the peer's parent".into()));
            }
            let d = self.deployment();
            d.verify_state(&close.state, &answer.signature, vrecord.peer())?;
            d.verify_state(&close.state, &close.signature, self.key.address())?;
            let sigs = me.pair(close.signature.clone(), answer.signature.clone());
            if vrecord.latest.state.version < close.state.version {
                vrecord.latest = FullySignedState { state: close.state.clone(), sigs: sigs.clone() };
                vrecord.pending = None;
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

mod apps;
mod delivery;

pub use delivery::{Delivery, DeliveryNote, Offer, OfferCheck};

#[cfg(test)]
pub(crate) mod tests;
