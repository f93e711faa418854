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
//! let (salt, bit) = (B256::from(rand::random::<[u8; 32]>()), true);
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

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::Provider;

use super::{Payment, PaymentRefusal, Receipt, internal};
use crate::api::FullySignedState;
use crate::app::{App, AppDeployment, AppError, AppRegistry, check_move};
use crate::bindings::Channel::{Params, State};
use crate::bindings::adjudicator::Adjudicator;
use crate::chain;
use crate::dispute::record_key;
use crate::trust::TrustError;
use crate::virtual_channel::{VirtualRecord, finalize};
use crate::wallet::{Wallet, WalletError};

impl From<AppError> for WalletError {
    fn from(e: AppError) -> Self {
        WalletError::Invalid(format!("{} ({})", e, e.code()))
    }
}

impl Wallet {
    /// Whether this client may sign `close` as the final state of app channel `record`
    /// without giving up what the game gives it: the game's own final state; or the latest
    /// state made final when nothing of this client is pending and it is the peer's move
    /// (the latest allocation is then what this client gets if the peer stalls); or this
    /// client's own pending, not final, move made final (the peer evidently received it).
    /// "The peer's move" includes this client's own optional move (a payer with no offer
    /// pending).
    /// Never a close that drops a move of this client (a reveal, a claim) or concedes while
    /// it is this client's move.
    pub(crate) fn app_close_acceptable(&self, record: &VirtualRecord, close: &State) -> bool {
        let latest = &record.latest.state;
        if latest.isFinal {
            return latest == close;
        }
        if record.on_chain.as_ref().is_some_and(|s| s.version > latest.version) {
            return false;
        }
        let Ok(rule) = self.rule_for(record) else { return false };
        match &record.pending {
            None => {
                (rule.turn(latest) == Some(record.my_index.peer()) || rule.optional_move(latest))
                    && finalize(latest).is_ok_and(|f| &f == close)
            }
            Some(p) if !p.isFinal => rule.turn(p) != Some(record.my_index) && finalize(p).is_ok_and(|f| &f == close),
            Some(_) => false,
        }
    }

    /// Checks that the app at `address`, as the hub announces it, holds on chain exactly the
    /// code of the rule this SDK ships for it: a hub cannot make a client play by a rule its
    /// Rust twin does not mirror (a contract that lets the other player take the pot).
    pub async fn check_app_code(&self, address: Address) -> Result<(), WalletError> {
        let registry = self.app_registry();
        let Some(rule) = registry.get(&address) else { return Err(AppError::NoApp(address).into()) };
        let code = self.provider.get_code_at(address).await.map_err(chain::ChainError::from)?;
        if code.as_ref() != rule.kind().runtime_code() {
            return Err(TrustError::AppCode { kind: rule.kind(), address }.into());
        }
        Ok(())
    }

    /// Notes that the chain holds a record of virtual channel `id` (of an app or of
    /// payments), whatever its version: from then on this client takes no payment or offer in
    /// it off chain ([`PaymentRefusal::OnChain`]), since a state older than the record's can
    /// be fixed there once its refutation period is over. (Game moves are still countersigned:
    /// each state only gives a player what it gets if the other stalls.) When the record is
    /// newer than this client's latest state (a move forced on chain, by the peer or this
    /// client), this client's pending move is dropped if the record holds it or something
    /// newer, and the next [`Wallet::play`] and [`Wallet::force_move`] build on the record's
    /// state. Returns the record's version (0: not registered). The watcher
    /// ([`Wallet::watch_once`]) runs it for every registered virtual channel.
    pub async fn sync_from_chain(&self, id: B256) -> Result<u64, WalletError> {
        let record = self.virtual_record(id)?;
        let d = self.deployment();
        let key = record_key(&record.params, &record.latest.state)?;
        let on_chain = chain::dispute(&self.provider, &d, key).await?;
        if on_chain.phase == chain::phase::NONE
            || (on_chain.version <= record.base().version && record.on_chain.is_some())
        {
            return Ok(on_chain.version);
        }
        let registered = crate::dispute::registered_states(&self.provider, &d, &[id], 0).await?;
        let Some(reg) = registered.get(&key) else {
            return Err(WalletError::Invalid(format!("the record of {id} has no event yet")));
        };
        if d.state_digest(&reg.state) != on_chain.state_hash || reg.state.version != on_chain.version {
            return Err(WalletError::Invalid(format!("the events of {id} do not match its record yet")));
        }
        let _guard = self.lock.lock().await;
        let mut record = self.virtual_record(id)?;
        if record.pending.as_ref().is_some_and(|p| p.version <= reg.state.version) {
            record.pending = None;
            record.pending_sig = None;
        }
        record.on_chain = Some(reg.state.clone());
        self.store.save_virtual(&record)?;
        Ok(on_chain.version)
    }

    /// The apps the hub allows, as it announced them (`/v1/hub`).
    pub fn apps(&self) -> AppDeployment {
        self.hub_info().apps
    }

    /// The rules of the apps this wallet plays: those the hub allows.
    pub fn app_registry(&self) -> AppRegistry {
        self.apps().registry()
    }

    /// The kind of `params`' app as the hub announces it now (`None` for payments).
    pub(crate) fn app_kind(&self, params: &Params) -> Option<crate::app::AppKind> {
        self.app_registry().get(&params.app).map(|r| r.kind())
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

    /// The rule of app channel `record`: the kind stored with the channel when it opened
    /// (so a hub that stops announcing the app cannot make this client lose by stalling),
    /// else the app the hub announces at that address.
    pub(super) fn rule_for(&self, record: &VirtualRecord) -> Result<Arc<dyn App>, AppError> {
        if let Some(kind) = record.app {
            return Ok(kind.rule());
        }
        let registry = self.app_registry();
        let rule = registry.rule_of(&record.params)?.ok_or(AppError::NoApp(record.params.app))?;
        Ok(rule.kind().rule())
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
        let base = record.base();
        if base.isFinal {
            return Err(WalletError::Invalid(format!("virtual channel {id} is final")));
        }
        let rule = self.rule_for(&record)?;
        let state = rule.apply(&record.params, base, record.my_index, app_data)?;
        if state.appData.len() > crate::app::MAX_APP_DATA {
            return Err(AppError::AppDataTooLong.into());
        }
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
        if record.base().isFinal {
            return Err(PaymentRefusal::ChannelFinal(id));
        }
        let rule = self.rule_for(&record).map_err(PaymentRefusal::Move)?;
        self.check_peer_move(&record, rule.as_ref(), mv)?;
        let d = self.deployment();
        let mine = d.sign_state(&self.key, &mv.state).map_err(internal)?;
        record.latest = FullySignedState {
            state: mv.state.clone(),
            sigs: record.my_index.pair(mine.clone(), mv.signature.clone()),
        };
        self.store.save_virtual(&record).map_err(internal)?;
        Ok(Receipt { channel: id, version: mv.state.version, signature: mine })
    }

    /// Checks the peer's move `mv` in channel `record` running `rule`: the next version after
    /// the base (else [`PaymentRefusal::WrongVersion`] with the latest state), nothing of
    /// this client's pending ([`PaymentRefusal::Busy`]), and the move exactly as the
    /// adjudicator would force it ([`check_move`]).
    pub(super) fn check_peer_move(
        &self,
        record: &VirtualRecord,
        rule: &dyn App,
        mv: &Payment,
    ) -> Result<(), PaymentRefusal> {
        let expected = record.base().version.saturating_add(1);
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
        let peer = record.my_index.peer();
        check_move(rule, &self.deployment(), &record.params, record.base(), &mv.state, peer, &mv.signature)
            .map_err(PaymentRefusal::Move)
    }

    /// Forces this client's pending move of app channel `id` on chain, for a peer that
    /// stopped answering: the channel's record must hold the state the move builds on (the
    /// latest signed by both: register a parent first, e.g. with
    /// [`Wallet::register_channel`]; or a move the peer forced, adopted with
    /// [`Wallet::sync_from_chain`] before [`Wallet::play`]) and its refutation period be over. The peer then has
    /// the channel's challenge duration to answer on chain; a final state ends it at once.
    /// Returns the record's new timeout.
    pub async fn force_move(&self, id: B256) -> Result<u64, WalletError> {
        let record = self.virtual_record(id)?;
        let (Some(to), Some(sig)) = (record.pending.clone(), record.pending_sig.clone()) else {
            return Err(WalletError::Invalid(format!("no pending move in virtual channel {id}")));
        };
        let from = record.base().clone();
        let rule = self.rule_for(&record)?;
        let d = self.deployment();
        check_move(rule.as_ref(), &d, &record.params, &from, &to, record.my_index, &sig)?;
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
