//! Pay on delivery: the conditional payment app ([`crate::app::conditional_payment`]) between a
//! buyer (the payer) and a seller (the payee) of a virtual channel. The buyer wants content
//! whose keccak-256 it knows (a chunk of a file it has the manifest of, a response it can
//! predict); it offers the price against that hash ([`Wallet::offer`]). The seller checks the
//! offer before doing the work ([`Wallet::check_offer`]), then countersigns it and claims it by
//! revealing the content ([`Wallet::deliver`]): the claim is the delivery itself, so the buyer
//! pays if and only if it gets what it asked for, and neither side trusts the other for more
//! than the gas of a dispute. The buyer checks the claim exactly as the chain would force it
//! and countersigns it ([`Wallet::take_delivery`]); its countersignature rides to the seller
//! with its next offer ([`Offer::ack`]). The last claim stays unacknowledged until one side
//! asks to close with the claim made final: the buyer's latest state, or the seller's
//! pending move ([`Wallet::close_request`]), which the buyer signs only once it holds the
//! claim. A buyer that vanishes leaves the seller its countersigned offer and its own claim:
//! it registers its parent and forces the claim on chain ([`Wallet::force_move`]), which the
//! rule lets it do alone.
//!
//! Three messages per delivery: the offer, the delivery (the seller's receipt of the offer and
//! its claim), and the acknowledgement in the next offer. The content must fit the claim's
//! app data ([`crate::app::conditional_payment::MAX_PREIMAGE`] bytes), as the adjudicator
//! would otherwise refuse the claim. The seller checks the buyer's signature before it says
//! anything about the channel, and countersigns no offer once its watcher saw the channel's
//! record on chain ([`PaymentRefusal::OnChain`]; [`Wallet::sync_from_chain`]): a state older
//! than the record's may be the one fixed there. A buyer drops an offer only on the
//! seller's word that it signed nothing; an offer whose answer was lost is sent again and
//! delivered again, never charged twice. Note that an offer stays signed by the buyer: a
//! seller that refused it may still claim it on chain, where the content becomes public.
//!
//! ```no_run
//! # async fn sale(buyer: &ingrid_client_sdk::wallet::Wallet, seller: &ingrid_client_sdk::wallet::Wallet,
//! #               id: alloy::primitives::B256, eth: alloy::primitives::Address)
//! #               -> Result<(), Box<dyn std::error::Error>> {
//! use alloy::primitives::{Bytes, U256, keccak256};
//! use ingrid_client_sdk::p2p::OfferCheck;
//! let chunk = Bytes::from_static(b"chunk 7 of the file");
//! let offer = buyer.offer(id, eth, U256::from(10), keccak256(&chunk)).await?;
//! // The seller, before the work:
//! if let OfferCheck::Deliver { lock } = seller.check_offer(&offer, eth, U256::from(10)).await? {
//!     assert_eq!(lock, keccak256(&chunk));
//! }
//! let delivery = seller.deliver(&offer, eth, U256::from(10), chunk.clone()).await?;
//! assert_eq!(buyer.take_delivery(&offer, &delivery).await?, chunk);
//! # Ok(()) }
//! ```

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use serde::{Deserialize, Serialize};

use super::{Payment, PaymentRefusal, Receipt, internal};
use crate::api::FullySignedState;
use crate::app::conditional_payment::{self, ConditionalPayment, MAX_PREIMAGE, pending_offer};
use crate::app::{App, AppKind, check_move};
use crate::virtual_channel::VirtualRecord;
use crate::wallet::{Wallet, WalletError};

/// A buyer's conditional payment for one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The buyer's signature on its latest state signed by both, which may be the seller's
    /// last claim the seller has no countersignature of yet.
    #[serde(default)]
    pub ack: Option<Receipt>,
    /// The buyer's move offering the price against the lock.
    pub offer: Payment,
}

/// The seller's answer to an [`Offer`]: its countersignature of the offer, and its claim,
/// whose preimage is the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The seller's signature on the offer's state.
    pub receipt: Receipt,
    /// The seller's move claiming the offer with the content, signed by the seller.
    pub claim: Payment,
}

/// A [`Delivery`] sent beside its content (the HTTP header): the claim's state is the one
/// the rule makes from the offer with the content, so only its signature travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryNote {
    /// The seller's signature on the offer's state.
    pub receipt: Receipt,
    /// The seller's signature on its claim.
    pub claim_signature: Bytes,
}

impl Delivery {
    /// The note to send beside the content.
    pub fn note(&self) -> DeliveryNote {
        DeliveryNote { receipt: self.receipt.clone(), claim_signature: self.claim.signature.clone() }
    }

    /// The content the claim reveals.
    pub fn content(&self) -> Result<Bytes, crate::app::AppError> {
        Ok(conditional_payment::data(&self.claim.state)?.preimage)
    }
}

/// What a seller makes of an [`Offer`] before doing the work ([`Wallet::check_offer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferCheck {
    /// A valid offer (or the retry of one countersigned without a claim): deliver the content
    /// whose keccak-256 is `lock` with [`Wallet::deliver`].
    Deliver {
        /// The hash of the content the buyer pays for.
        lock: B256,
    },
    /// The retry of an offer already delivered (the buyer lost the answer): send this
    /// delivery again ([`Delivery::content`] is what it delivered). Nothing is to be done or
    /// stored.
    Delivered(Box<Delivery>),
}

impl Wallet {
    /// Buyer: offers `price` of `asset` in conditional-payment channel `id` to whoever reveals
    /// content whose keccak-256 is `lock`. The offer is signed and stored as pending (durably)
    /// before it is returned; an offer for `lock` already pending (its delivery was lost) is
    /// returned again unchanged, so the seller can deliver it again. Refused while another
    /// move is pending, and when the channel does not run conditional payments with this
    /// client as the payer.
    pub async fn offer(&self, id: B256, asset: Address, price: U256, lock: B256) -> Result<Offer, WalletError> {
        let record = self.virtual_record(id)?;
        if !self.rule_for(&record).is_ok_and(|rule| rule.kind() == AppKind::ConditionalPayment) {
            return Err(WalletError::Invalid(format!("virtual channel {id} does not run conditional payments")));
        }
        let me = record.my_index;
        // An offer the seller countersigned whose claim this client does not have (adopted
        // from the seller's latest state in a refusal): sent again, the seller delivers it.
        let unclaimed = pending_offer(&record.latest.state).filter(|_| record.pending.is_none());
        if let Some((waiting, _)) = unclaimed {
            if waiting != lock {
                return Err(WalletError::Invalid(format!(
                    "the offer for {waiting} (version {}) in virtual channel {id} waits for its delivery: retry its request",
                    record.latest.state.version
                )));
            }
            let latest = &record.latest;
            let offer =
                Payment { channel: id, state: latest.state.clone(), signature: latest.sigs[me.index()].clone() };
            return Ok(Offer { ack: None, offer });
        }
        let offer = match self.pending_payment(id).await? {
            Some(p) if pending_offer(&p.state).is_some_and(|(l, _)| l == lock) => p,
            Some(p) => {
                return Err(WalletError::Invalid(format!(
                    "another move (version {}) is pending in virtual channel {id}: retry its request, or drop it",
                    p.state.version
                )));
            }
            None => {
                let base = record.base();
                let a = base.outcome.assets.iter().position(|x| *x == asset).ok_or(WalletError::UnknownAsset(asset))?;
                let mut amounts = vec![U256::ZERO; base.outcome.assets.len()];
                amounts[a] = price;
                self.play(id, conditional_payment::offer(base, lock, amounts)?).await?
            }
        };
        let latest = &record.latest;
        let ack = (latest.state.version > 0).then(|| Receipt {
            channel: id,
            version: latest.state.version,
            signature: latest.sigs[me.index()].clone(),
        });
        Ok(Offer { ack, offer })
    }

    /// Buyer: takes the seller's delivery of `offer`: checks the seller's signature on the
    /// offer and the claim exactly as the adjudicator would force it (the content opens the
    /// lock, the price moves to the seller and nothing else changes), countersigns the claim
    /// and stores it as the latest state in one durable write. Returns the content. The
    /// countersignature goes to the seller with the next [`Wallet::offer`]. The offer must be
    /// this client's pending move, or its latest state (countersigned, its claim lost).
    pub async fn take_delivery(&self, offer: &Offer, delivery: &Delivery) -> Result<Bytes, WalletError> {
        let (id, o) = (offer.offer.channel, &offer.offer.state);
        if delivery.receipt.channel != id || delivery.receipt.version != o.version || delivery.claim.channel != id {
            return Err(WalletError::Invalid(format!(
                "the delivery is not for the offer of version {} in {id}",
                o.version
            )));
        }
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if record.pending.as_ref() != Some(o) && &record.latest.state != o {
            return Err(WalletError::Invalid(format!(
                "the offer of version {} is neither pending nor the latest state of {id}",
                o.version
            )));
        }
        let d = self.deployment();
        d.verify_state(o, &delivery.receipt.signature, record.peer())?;
        let rule = self.rule_for(&record)?;
        let claim = &delivery.claim;
        check_move(rule.as_ref(), &d, &record.params, o, &claim.state, record.my_index.peer(), &claim.signature)?;
        let content = conditional_payment::data(&claim.state)?.preimage;
        let mine = d.sign_state(&self.key, &claim.state)?;
        record.latest =
            FullySignedState { state: claim.state.clone(), sigs: record.my_index.pair(mine, claim.signature.clone()) };
        record.pending = None;
        record.pending_sig = None;
        self.store.save_virtual(&record)?;
        Ok(content)
    }

    /// Buyer: [`Wallet::take_delivery`] of a delivery sent as `note` with its `content` (the
    /// claim's state is the one the rule makes from the offer with that content).
    pub async fn take_delivered(
        &self,
        offer: &Offer,
        content: Bytes,
        note: &DeliveryNote,
    ) -> Result<Bytes, WalletError> {
        let record = self.virtual_record(offer.offer.channel)?;
        let data = conditional_payment::claim(&offer.offer.state, content)?;
        let claim = ConditionalPayment.apply(&record.params, &offer.offer.state, record.my_index.peer(), data)?;
        let delivery = Delivery {
            receipt: note.receipt.clone(),
            claim: Payment { channel: offer.offer.channel, state: claim, signature: note.claim_signature.clone() },
        };
        self.take_delivery(offer, &delivery).await
    }

    /// Seller: checks `offer` for `price` of `asset` without storing anything, before doing
    /// the work: the buyer's countersignature of this client's last claim (if it has none
    /// yet), then the offer exactly as the adjudicator would force it, and that it offers at
    /// least the price in `asset`. A retry of an offer already delivered is recognised.
    pub async fn check_offer(&self, offer: &Offer, asset: Address, price: U256) -> Result<OfferCheck, PaymentRefusal> {
        let record = self.load_for_offer(offer)?;
        Ok(self.judge_offer(record, offer, asset, price)?.1)
    }

    /// Seller: delivers `content` for `offer` (checked again as [`Wallet::check_offer`] does):
    /// it must open the offer's lock and fit a claim. Countersigns the offer, makes the claim
    /// and stores both (durably) before returning them to send. Refused, with nothing stored,
    /// when the content does not open the lock ([`PaymentRefusal::Undeliverable`]).
    pub async fn deliver(
        &self,
        offer: &Offer,
        asset: Address,
        price: U256,
        content: Bytes,
    ) -> Result<Delivery, PaymentRefusal> {
        let _guard = self.lock.lock().await;
        let record = self.load_for_offer(offer)?;
        let (mut record, check) = self.judge_offer(record, offer, asset, price)?;
        let lock = match check {
            OfferCheck::Delivered(delivery) => return Ok(*delivery),
            OfferCheck::Deliver { lock } => lock,
        };
        if content.len() > MAX_PREIMAGE {
            return Err(PaymentRefusal::Undeliverable(format!(
                "the content has {} bytes; a claim reveals at most {MAX_PREIMAGE}",
                content.len()
            )));
        }
        if keccak256(&content) != lock {
            return Err(PaymentRefusal::Undeliverable(format!(
                "the content's keccak-256 {} is not the offer's lock {lock}",
                keccak256(&content)
            )));
        }
        let (id, me) = (offer.offer.channel, record.my_index);
        let d = self.deployment();
        if record.latest.state != offer.offer.state {
            let mine = d.sign_state(&self.key, &offer.offer.state).map_err(internal)?;
            record.latest = FullySignedState {
                state: offer.offer.state.clone(),
                sigs: me.pair(mine, offer.offer.signature.clone()),
            };
        }
        let receipt = Receipt {
            channel: id,
            version: record.latest.state.version,
            signature: record.latest.sigs[me.index()].clone(),
        };
        let data = conditional_payment::claim(&record.latest.state, content).map_err(PaymentRefusal::Move)?;
        let state =
            ConditionalPayment.apply(&record.params, &record.latest.state, me, data).map_err(PaymentRefusal::Move)?;
        let signature = d.sign_state(&self.key, &state).map_err(internal)?;
        record.pending = Some(state.clone());
        record.pending_sig = Some(signature.clone());
        // Durable before the claim leaves: this client never signs two claims at one version.
        self.store.save_virtual(&record).map_err(internal)?;
        Ok(Delivery { receipt, claim: Payment { channel: id, state, signature } })
    }

    fn load_for_offer(&self, offer: &Offer) -> Result<VirtualRecord, PaymentRefusal> {
        let id = offer.offer.channel;
        self.store.load_virtual(id).map_err(internal)?.ok_or(PaymentRefusal::UnknownChannel(id))
    }

    /// The seller's verdict on `offer` given its stored `record`, and the record as it stands
    /// once the offer's acknowledgement is taken (in memory only).
    fn judge_offer(
        &self,
        mut record: VirtualRecord,
        offer: &Offer,
        asset: Address,
        price: U256,
    ) -> Result<(VirtualRecord, OfferCheck), PaymentRefusal> {
        let o = &offer.offer;
        let id = o.channel;
        if o.state.channelId != id {
            return Err(PaymentRefusal::Malformed(format!("the state is for channel {}", o.state.channelId)));
        }
        let rule = match self.rule_for(&record) {
            Ok(rule) if rule.kind() == AppKind::ConditionalPayment => rule,
            _ => {
                return Err(PaymentRefusal::Malformed(format!(
                    "virtual channel {id} does not run conditional payments"
                )));
            }
        };
        if record.base().isFinal {
            return Err(PaymentRefusal::ChannelFinal(id));
        }
        if record.on_chain.is_some() {
            return Err(PaymentRefusal::OnChain(id));
        }
        let (me, d) = (record.my_index, self.deployment());
        // Nothing is said about the channel to whoever did not sign the offer.
        d.verify_state(&o.state, &o.signature, record.peer()).map_err(PaymentRefusal::BadSignature)?;
        // The buyer's countersignature of this client's pending claim.
        if let (Some(ack), Some(claim)) = (&offer.ack, &record.pending)
            && ack.channel == id
            && ack.version == claim.version
        {
            d.verify_state(claim, &ack.signature, record.peer()).map_err(PaymentRefusal::BadSignature)?;
            let mine = match &record.pending_sig {
                Some(sig) => sig.clone(),
                None => d.sign_state(&self.key, claim).map_err(internal)?,
            };
            record.latest = FullySignedState { state: claim.clone(), sigs: me.pair(mine, ack.signature.clone()) };
            record.pending = None;
            record.pending_sig = None;
        }
        // The retry of the offer countersigned last.
        if o.state == record.latest.state {
            let Some((lock, _)) = pending_offer(&o.state) else {
                return Err(PaymentRefusal::Malformed("the move is not an offer".into()));
            };
            let check = match (&record.pending, &record.pending_sig) {
                (Some(claim), Some(signature)) if !claim.isFinal && claim.version == o.state.version + 1 => {
                    OfferCheck::Delivered(Box::new(Delivery {
                        receipt: Receipt {
                            channel: id,
                            version: o.state.version,
                            signature: record.latest.sigs[me.index()].clone(),
                        },
                        claim: Payment { channel: id, state: claim.clone(), signature: signature.clone() },
                    }))
                }
                (None, _) => OfferCheck::Deliver { lock },
                _ => return Err(PaymentRefusal::Busy { latest: Box::new(record.latest.clone()) }),
            };
            return Ok((record, check));
        }
        self.check_peer_move(&record, rule.as_ref(), o)?;
        let Some((lock, amounts)) = pending_offer(&o.state) else {
            return Err(PaymentRefusal::Malformed("the move is not an offer".into()));
        };
        let a = o.state.outcome.assets.iter().position(|x| *x == asset).ok_or(PaymentRefusal::WrongAsset(asset))?;
        if amounts[a] < price {
            return Err(PaymentRefusal::Short { price, paid: amounts[a], latest: Box::new(record.latest.clone()) });
        }
        Ok((record, OfferCheck::Deliver { lock }))
    }
}
