//! Apps played directly between the two participants of a virtual channel: the mover signs
//! the next state its move makes ([`Wallet::play`]), the other checks it exactly as the
//! adjudicator would force it ([`crate::app::check_move`]), countersigns and stores it
//! ([`Wallet::receive_move`]); the mover takes the countersignature with
//! [`Wallet::accept_receipt`], as for a payment. The hub is never contacted.
//!
//! A move is the app's new data; the app's rule ([`crate::app::App::apply`]) makes the rest of
//! the state (the allocation if the other stalls, finality). A player whose peer stalls
//! registers its parent (the virtual channel's latest state signed by both goes with it),
//! then forces its move on chain with [`Wallet::force_move`] once the refutation period is
//! over, and concludes its parent when the peer did not answer in time.
//!
//! ```no_run
//! # async fn game(alice: &ingrid_client_sdk::wallet::Wallet, bob: &ingrid_client_sdk::wallet::Wallet,
//! #               id: alloy::primitives::B256) -> Result<(), Box<dyn std::error::Error>> {
//! use alloy::primitives::B256;
//! use ingrid_client_sdk::app::coin_flip;
//! // Alice (participant 0) commits to a secret bit, Bob guesses, Alice reveals.
//! let (salt, bit) = (B256::random(), true);
//! let commit = alice.play(id, coin_flip::commit(salt, bit)).await?;
//! alice.accept_receipt(&bob.receive_move(&commit).await?).await?;
//! let latest = bob.virtual_record(id)?.latest.state;
//! let guess = bob.play(id, coin_flip::guess(&latest, false)?).await?;
//! bob.accept_receipt(&alice.receive_move(&guess).await?).await?;
//! let latest = alice.virtual_record(id)?.latest.state;
//! let reveal = alice.play(id, coin_flip::reveal(&latest, salt, bit)?).await?;
//! alice.accept_receipt(&bob.receive_move(&reveal).await?).await?;
//! // The revealed state is final: close as after payments (close_request, answer_close,
//! // finish_close), which settles both parents at the hub.
//! # Ok(()) }
//! ```

use alloy::primitives::{B256, Bytes};

use super::{Payment, PaymentRefusal, Receipt, internal};
use crate::api::FullySignedState;
use crate::app::{App, AppDeployment, AppError, AppRegistry, check_move};
use crate::bindings::Channel::{Params, State};
use crate::bindings::adjudicator::Adjudicator;
use crate::chain;
use crate::dispute::record_key;
use crate::wallet::{Wallet, WalletError};

impl From<AppError> for WalletError {
    fn from(e: AppError) -> Self {
        WalletError::Invalid(format!("{} ({})", e, e.code()))
    }
}

impl Wallet {
    /// The apps the hub allows, as it announced them (`/v1/hub`).
    pub fn apps(&self) -> AppDeployment {
        self.hub_info().apps
    }

    /// The rules of the apps this wallet plays: those the hub allows.
    pub fn app_registry(&self) -> AppRegistry {
        self.apps().registry()
    }

    /// Checks that a virtual channel's app (if any) is one this wallet knows and that its
    /// opening state is the app's start.
    pub(crate) fn check_app_opening(&self, params: &Params, opening: &State) -> Result<(), WalletError> {
        if params.app.is_zero() {
            return Ok(());
        }
        let registry = self.app_registry();
        let rule = registry.rule_of(params)?.ok_or(AppError::NoApp(params.app))?;
        rule.check_opening(opening)?;
        Ok(())
    }

    fn rule<'a>(registry: &'a AppRegistry, params: &Params) -> Result<&'a dyn App, AppError> {
        registry.rule_of(params)?.ok_or(AppError::NoApp(params.app))
    }

    /// Makes this client's move in app channel `id`: the state the app's rule makes from the
    /// latest one with the new app data `app_data`, signed and stored as pending (durably)
    /// before it is returned to send to the peer. Refused (nothing stored) when it is not a
    /// valid move of this client, or while another move or payment is pending.
    pub async fn play(&self, id: B256, app_data: Bytes) -> Result<Payment, WalletError> {
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if record.pending.is_some() {
            return Err(WalletError::Invalid(format!(
                "a move in virtual channel {id} is waiting for its countersignature; resync first"
            )));
        }
        let latest = &record.latest.state;
        if latest.isFinal {
            return Err(WalletError::Invalid(format!("virtual channel {id} is final")));
        }
        let registry = self.app_registry();
        let rule = Self::rule(&registry, &record.params)?;
        let state = rule.apply(&record.params, latest, record.my_index, app_data)?;
        let signature = self.deployment().sign_state(&self.key, &state)?;
        record.pending = Some(state.clone());
        record.pending_sig = Some(signature.clone());
        // Durable before it leaves, as a payment: this client never signs two moves at one
        // version.
        self.store.save_virtual(&record)?;
        Ok(Payment { channel: id, state, signature })
    }

    /// Checks the peer's move exactly as the adjudicator would force it (next version, same
    /// totals, the peer's signature, the app's rule: its turn, a valid move, the allocation
    /// and finality the rule prescribes), countersigns it and stores the state signed by both
    /// before returning the receipt. A refused move changes nothing.
    pub async fn receive_move(&self, mv: &Payment) -> Result<Receipt, PaymentRefusal> {
        let _guard = self.lock.lock().await;
        let id = mv.channel;
        let mut record = self.store.load_virtual(id).map_err(internal)?.ok_or(PaymentRefusal::UnknownChannel(id))?;
        if mv.state.channelId != id {
            return Err(PaymentRefusal::Malformed(format!("the state is for channel {}", mv.state.channelId)));
        }
        if record.latest.state.isFinal {
            return Err(PaymentRefusal::ChannelFinal(id));
        }
        let expected = record.latest.state.version.saturating_add(1);
        if mv.state.version != expected {
            return Err(PaymentRefusal::WrongVersion {
                expected,
                actual: mv.state.version,
                latest: Box::new(record.latest.clone()),
            });
        }
        if record.pending.is_some() {
            return Err(PaymentRefusal::Busy { latest: Box::new(record.latest.clone()) });
        }
        let registry = self.app_registry();
        let rule = Self::rule(&registry, &record.params).map_err(PaymentRefusal::Move)?;
        let d = self.deployment();
        let peer = record.my_index.peer();
        check_move(rule, &d, &record.params, &record.latest.state, &mv.state, peer, &mv.signature)
            .map_err(PaymentRefusal::Move)?;
        let mine = d.sign_state(&self.key, &mv.state).map_err(internal)?;
        record.latest = FullySignedState {
            state: mv.state.clone(),
            sigs: record.my_index.pair(mine.clone(), mv.signature.clone()),
        };
        self.store.save_virtual(&record).map_err(internal)?;
        Ok(Receipt { channel: id, version: mv.state.version, signature: mine })
    }

    /// Forces this client's pending move of app channel `id` on chain, for a peer that
    /// stopped answering: the channel's record must hold the latest state signed by both
    /// (register a parent first, e.g. with [`Wallet::register_channel`]) and its refutation
    /// period be over, or the peer have forced a move this one answers. The peer then has
    /// the channel's challenge duration to answer on chain; a final state ends it at once.
    /// Returns the record's new timeout.
    pub async fn force_move(&self, id: B256) -> Result<u64, WalletError> {
        let record = self.virtual_record(id)?;
        let (Some(to), Some(sig)) = (record.pending.clone(), record.pending_sig.clone()) else {
            return Err(WalletError::Invalid(format!("no pending move in virtual channel {id}")));
        };
        let from = record.latest.state.clone();
        let registry = self.app_registry();
        let rule = Self::rule(&registry, &record.params)?;
        let d = self.deployment();
        check_move(rule, &d, &record.params, &from, &to, record.my_index, &sig)?;
        let key = record_key(&record.params, &from)?;
        let adjudicator = Adjudicator::new(d.adjudicator, &self.provider);
        let actor = alloy::primitives::U256::from(record.my_index.index());
        let call = adjudicator.progress(record.params.clone(), from, to, actor, sig);
        // Simulated first: a move the chain refuses (too early, too late) is refused here
        // without sending anything (a send refused at gas estimation can leave the
        // provider's cached nonce one ahead, which stalls every later transaction).
        call.call().await.map_err(chain::ChainError::from)?;
        chain::confirm(call.send().await.map_err(chain::ChainError::from)?).await?;
        // The record now holds the forced state; the store keeps it as pending (signed by
        // this client alone), and the parents conclude from the chain's record.
        let on_chain = chain::dispute(&self.provider, &d, key).await?;
        Ok(on_chain.timeout)
    }
}
