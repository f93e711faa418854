//! Apps: the seed's nanocontracts, state machines played inside a channel (a virtual channel
//! through the hub) without the hub, with the chain as the referee when a player stalls.
//!
//! An app is a contract with a pure rule (`IApp.validTransition(params, from, to, actor)`)
//! and its twin here, an [`App`]: it judges a move exactly as the contract does
//! ([`App::valid_transition`]), makes one ([`App::apply`]: a move is the new app data; the
//! rule prescribes the allocation and whether the state is final), tells whose turn it is
//! ([`App::turn`]) and which opening states are games ([`App::check_opening`]). A property
//! test runs both rules on generated moves and demands the same verdict.
//!
//! Every state's allocation is what each participant gets if the next mover stalls: a player
//! who stops answering loses what the game gives the other, so aborting never pays off.
//!
//! [`check_move`] adds what the adjudicator's `progress` checks for every app (the next
//! version of the same channel, same assets and totals, no locks, the mover's signature), so
//! a participant can judge a move it receives exactly as the chain would force it.
//! [`AppRegistry`] maps app addresses (a deployment's) to rules; the hub allows only the apps
//! its operator lists.
//!
//! Shipped: [`coin_flip`] (the seed's fair game), [`tic_tac_toe`], [`conditional_payment`]
//! (pay on delivery of a hash's preimage, for nanoservices).

pub mod coin_flip;
pub mod conditional_payment;
pub mod tic_tac_toe;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};

use crate::Role;
use crate::bindings::Channel::{Params, State};
use crate::error::ProtocolError;
use crate::state::{Deployment, SignatureError, channel_id};

/// Why a move (or an opening state) is refused. The first six are the errors of the
/// contracts' `AppRules`; the rest are the adjudicator's checks shared by every app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The app data is not the canonical ABI encoding of the app's data.
    #[error("app data is not the canonical encoding of the app's data")]
    NonCanonicalData,
    /// The mover is not the participant whose turn it is.
    #[error("not the mover's turn")]
    NotYourTurn,
    /// The move changes what it may not change, or is not a move of this app.
    #[error("not a valid move of this app")]
    InvalidMove,
    /// No move is possible from this state.
    #[error("the game is over")]
    GameOver,
    /// The allocation is not the one the rule prescribes.
    #[error("the allocation is not the one the app prescribes")]
    WrongAllocation,
    /// `isFinal` is not the one the rule prescribes.
    #[error("isFinal is not the one the app prescribes")]
    WrongFinality,
    /// The channel has no app, is a ledger channel, or names an app this registry lacks.
    #[error("no known app for this channel: {0}")]
    NoApp(Address),
    /// A state of another channel.
    #[error("the state is not of this channel")]
    ChannelIdMismatch,
    /// A state with locks: apps run in sub-channels, which hold none.
    #[error("an app channel's state holds no locks")]
    NestedLocks,
    /// The assets or the total per asset changed, or an outcome is malformed.
    #[error("the move changes the assets or the total value")]
    ValueNotPreserved,
    /// The new state is not the next version.
    #[error("the move's version is not the next one")]
    VersionNotNext,
    /// The move starts from a final state.
    #[error("no move starts from a final state")]
    FinalState,
    /// The move is not signed by its mover.
    #[error("the move is not signed by its mover: {0}")]
    BadSignature(#[from] SignatureError),
    /// The opening state is not a game's start.
    #[error("not an opening state of this app: {0}")]
    InvalidOpening(&'static str),
    /// The app data is longer than the adjudicator accepts ([`MAX_APP_DATA`]).
    #[error("the app data is longer than {MAX_APP_DATA} bytes")]
    AppDataTooLong,
}

/// The longest app data the adjudicator accepts in a sub-channel state (`MAX_APP_DATA`): a
/// longer move could never be forced on chain.
pub const MAX_APP_DATA: usize = 1024;

impl AppError {
    /// The stable reason code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NonCanonicalData => "app_data_not_canonical",
            Self::NotYourTurn => "not_your_turn",
            Self::InvalidMove => "invalid_move",
            Self::GameOver => "game_over",
            Self::WrongAllocation => "wrong_allocation",
            Self::WrongFinality => "wrong_finality",
            Self::NoApp(_) => "app_not_allowed",
            Self::ChannelIdMismatch => "channel_id_mismatch",
            Self::NestedLocks => "nested_locks",
            Self::ValueNotPreserved => "total_changed",
            Self::VersionNotNext => "wrong_version",
            Self::FinalState => "channel_final",
            Self::BadSignature(_) => "bad_signature",
            Self::InvalidOpening(_) => "invalid_app_opening",
            Self::AppDataTooLong => "app_data_too_long",
        }
    }
}

impl From<AppError> for ProtocolError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::VersionNotNext | AppError::FinalState => Self::conflict(e.code(), e.to_string()),
            _ => Self::invalid(e.code(), e.to_string()),
        }
    }
}

/// The rule of an app, twin of its contract's `validTransition`. Pure.
pub trait App: fmt::Debug + Send + Sync {
    /// Which app this is.
    fn kind(&self) -> AppKind;

    /// Whether `actor` may move the channel from `from` to `to`: exactly the contract's
    /// `validTransition` verdict (the adjudicator's own checks are [`check_move`]'s).
    fn valid_transition(&self, params: &Params, from: &State, to: &State, actor: Role) -> Result<(), AppError>;

    /// The state after `actor` moves `from` to the app data `app_data`: the next version,
    /// with the allocation and finality the rule prescribes. Refused as
    /// [`App::valid_transition`] would refuse it.
    fn apply(&self, params: &Params, from: &State, actor: Role, app_data: Bytes) -> Result<State, AppError>;

    /// Who must move next in `state`, or `None` when the game is over.
    fn turn(&self, state: &State) -> Option<Role>;

    /// Whether `state` is a valid opening state of this app (its first state, signed by both
    /// when the channel opens): the app's initial data for the allocation the players put in.
    fn check_opening(&self, state: &State) -> Result<(), AppError>;

    /// Whether the participant whose turn it is in `state` gives nothing up if the channel
    /// closes there: its move is optional (a conditional payment with no offer pending; the
    /// payer need not offer). False by default: in a game the next move may win.
    fn optional_move(&self, state: &State) -> bool {
        let _ = state;
        false
    }
}

/// The apps Ingrid ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// [`coin_flip::CoinFlip`].
    CoinFlip,
    /// [`tic_tac_toe::TicTacToe`].
    TicTacToe,
    /// [`conditional_payment::ConditionalPayment`].
    ConditionalPayment,
}

impl AppKind {
    /// Every app Ingrid ships.
    pub const ALL: [Self; 3] = [Self::CoinFlip, Self::TicTacToe, Self::ConditionalPayment];

    /// The rule of this app.
    pub fn rule(self) -> Arc<dyn App> {
        match self {
            Self::CoinFlip => Arc::new(coin_flip::CoinFlip),
            Self::TicTacToe => Arc::new(tic_tac_toe::TicTacToe),
            Self::ConditionalPayment => Arc::new(conditional_payment::ConditionalPayment),
        }
    }

    /// The runtime code of its contract as shipped (the artifact's `deployedBytecode`): an
    /// address that claims to run this app must hold exactly this code.
    pub fn runtime_code(self) -> &'static [u8] {
        use crate::bindings::apps;
        match self {
            Self::CoinFlip => &apps::coin_flip::CoinFlip::DEPLOYED_BYTECODE,
            Self::TicTacToe => &apps::tic_tac_toe::TicTacToe::DEPLOYED_BYTECODE,
            Self::ConditionalPayment => &apps::conditional_payment::ConditionalPayment::DEPLOYED_BYTECODE,
        }
    }

    /// The name of its contract (and of its artifact).
    pub const fn contract(self) -> &'static str {
        match self {
            Self::CoinFlip => "CoinFlip",
            Self::TicTacToe => "TicTacToe",
            Self::ConditionalPayment => "ConditionalPayment",
        }
    }
}

/// Where one deployment's apps live (the zero address: not deployed). In a hub's
/// configuration (`[apps]`) and `/v1/hub`: the apps the hub allows in virtual channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDeployment {
    /// The coin flip's contract.
    #[serde(default)]
    pub coin_flip: Address,
    /// Tic-tac-toe's contract.
    #[serde(default)]
    pub tic_tac_toe: Address,
    /// The conditional payment's contract.
    #[serde(default)]
    pub conditional_payment: Address,
}

impl AppDeployment {
    /// The address of `kind`'s contract (zero if not deployed).
    pub const fn address(&self, kind: AppKind) -> Address {
        match kind {
            AppKind::CoinFlip => self.coin_flip,
            AppKind::TicTacToe => self.tic_tac_toe,
            AppKind::ConditionalPayment => self.conditional_payment,
        }
    }

    /// Whether no app is deployed.
    pub fn is_empty(&self) -> bool {
        AppKind::ALL.iter().all(|k| self.address(*k).is_zero())
    }

    /// The registry of the deployed apps.
    pub fn registry(&self) -> AppRegistry {
        let mut r = AppRegistry::new();
        for kind in AppKind::ALL {
            let address = self.address(kind);
            if !address.is_zero() {
                r.insert(address, kind);
            }
        }
        r
    }
}

/// The apps a party knows, by the address of their contract (a deployment's).
#[derive(Debug, Clone, Default)]
pub struct AppRegistry {
    apps: BTreeMap<Address, Arc<dyn App>>,
}

impl AppRegistry {
    /// A registry without apps (payment channels only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the rule of `kind` at `address`.
    pub fn with(mut self, address: Address, kind: AppKind) -> Self {
        self.insert(address, kind);
        self
    }

    /// Adds the rule of `kind` at `address`.
    pub fn insert(&mut self, address: Address, kind: AppKind) {
        self.apps.insert(address, kind.rule());
    }

    /// The rule of the app at `address`.
    pub fn get(&self, address: &Address) -> Option<&dyn App> {
        self.apps.get(address).map(|a| a.as_ref())
    }

    /// The addresses and kinds of the known apps.
    pub fn entries(&self) -> impl Iterator<Item = (Address, AppKind)> + '_ {
        self.apps.iter().map(|(a, r)| (*a, r.kind()))
    }

    /// Whether the registry has no app.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The rule of `params`' app: `None` for a payment channel (app zero); refused for a
    /// ledger channel with an app (the adjudicator refuses it) or an app not in the registry.
    pub fn rule_of(&self, params: &Params) -> Result<Option<&dyn App>, AppError> {
        if params.app.is_zero() {
            return Ok(None);
        }
        if params.ledger {
            return Err(AppError::NoApp(params.app));
        }
        self.get(&params.app).map(Some).ok_or(AppError::NoApp(params.app))
    }
}

/// Checks the params of a virtual channel that may run an app of `apps`: as
/// [`crate::validate::validate_params`], except that `app` may name an app of the registry (a payment
/// channel's is zero), whose challenge duration is at most `app_max` ([`check_app_challenge`]).
/// Returns the app's rule, if any.
pub fn validate_virtual_params<'a>(
    params: &Params,
    bounds: (u64, u64),
    app_max: u64,
    apps: &'a AppRegistry,
) -> Result<Option<&'a dyn App>, ProtocolError> {
    let rule = apps.rule_of(params)?;
    if rule.is_some() {
        check_app_challenge(params.challengeDuration, app_max)?;
    }
    let payment = Params { app: Address::ZERO, ..params.clone() };
    crate::validate::validate_params(&payment, bounds)?;
    Ok(rule)
}

/// Checks an app channel's challenge duration against the hub's cap `max`
/// (`challenge_too_long`): a disputed app channel's record can stay open for
/// `2 + MAX_FORCED_MOVES` (18) of them, and its parents with it.
pub fn check_app_challenge(challenge_duration: u64, max: u64) -> Result<(), ProtocolError> {
    if challenge_duration > max {
        return Err(ProtocolError::invalid(
            "challenge_too_long",
            format!(
                "an app channel's challenge duration is at most {max} s, not {challenge_duration} (its record can stay open 18 times as long)"
            ),
        ));
    }
    Ok(())
}

/// Checks the opening state of a channel whose app is `rule` (`None`: a payment channel):
/// as [`crate::validate::validate_initial`], with the app's opening data instead of empty app data.
pub fn validate_opening(params: &Params, state: &State, rule: Option<&dyn App>) -> Result<(), ProtocolError> {
    let Some(rule) = rule else { return Ok(crate::validate::validate_initial(params, state)?) };
    crate::validate::validate_initial(params, &State { appData: Bytes::new(), ..state.clone() })?;
    Ok(rule.check_opening(state)?)
}

/// Checks a move of `actor` from `from` to `to` signed `sig` exactly as the adjudicator's
/// `progress` does, but for the record: same channel, no locks, same assets and the same
/// total per asset, `from` not final, `to` its next version, `to` signed by the mover, and the
/// app's rule.
pub fn check_move(
    app: &dyn App,
    deployment: &Deployment,
    params: &Params,
    from: &State,
    to: &State,
    actor: Role,
    sig: &[u8],
) -> Result<(), AppError> {
    check_shape(params, from, to)?;
    if from.isFinal {
        return Err(AppError::FinalState);
    }
    if u128::from(to.version) != u128::from(from.version) + 1 {
        return Err(AppError::VersionNotNext);
    }
    if to.appData.len() > MAX_APP_DATA {
        return Err(AppError::AppDataTooLong);
    }
    deployment.verify_state(to, sig, params.participants[actor.index()])?;
    app.valid_transition(params, from, to, actor)
}

/// The adjudicator's checks of a move's two states that do not depend on the app.
fn check_shape(params: &Params, from: &State, to: &State) -> Result<(), AppError> {
    if params.ledger || params.app.is_zero() {
        return Err(AppError::NoApp(params.app));
    }
    let id = channel_id(params);
    if from.channelId != id || to.channelId != id {
        return Err(AppError::ChannelIdMismatch);
    }
    if !from.outcome.locked.is_empty() || !to.outcome.locked.is_empty() {
        return Err(AppError::NestedLocks);
    }
    let (f, t) = (&from.outcome, &to.outcome);
    let shaped = |o: &crate::Allocation| {
        o.balances.len() == o.assets.len() && o.assets.iter().enumerate().all(|(i, a)| !o.assets[..i].contains(a))
    };
    if !shaped(f) || !shaped(t) || f.assets != t.assets {
        return Err(AppError::ValueNotPreserved);
    }
    for (x, y) in f.balances.iter().zip(&t.balances) {
        match (x[0].checked_add(x[1]), y[0].checked_add(y[1])) {
            (Some(a), Some(b)) if a == b => {}
            _ => return Err(AppError::ValueNotPreserved),
        }
    }
    Ok(())
}

/// The same ABI value as another generated type: the bindings of each contract carry their
/// own copy of the channel types (`Channel::State` of the adjudicator's, of an app's).
/// Fails only if the two types do not have the same ABI.
pub fn convert<T: SolValue, U: SolValue + From<<U::SolType as alloy::sol_types::SolType>::RustType>>(
    value: &T,
) -> Result<U, alloy::sol_types::Error> {
    U::abi_decode(&value.abi_encode())
}

/// Decodes `data`, which must be the canonical ABI encoding (`abi.encode`) of a `T`.
pub(crate) fn decode<T: SolValue + From<<T::SolType as alloy::sol_types::SolType>::RustType>>(
    data: &[u8],
) -> Result<T, AppError> {
    let value = T::abi_decode(data).map_err(|_| AppError::NonCanonicalData)?;
    if value.abi_encode() != data {
        return Err(AppError::NonCanonicalData);
    }
    Ok(value)
}

/// The allocation that gives the whole of `from`'s value per asset to `to` (the contracts'
/// `AppRules.requirePotTo`).
pub(crate) fn pot_to(from: &State, to: Role) -> Result<Vec<[U256; 2]>, AppError> {
    from.outcome
        .balances
        .iter()
        .map(|b| {
            let total = b[0].checked_add(b[1]).ok_or(AppError::WrongAllocation)?;
            Ok(to.pair(total, U256::ZERO))
        })
        .collect()
}

/// Checks `to`'s allocation and finality against the prescribed ones, in the contracts'
/// order (finality first).
pub(crate) fn require_outcome(to: &State, balances: &[[U256; 2]], is_final: bool) -> Result<(), AppError> {
    if to.isFinal != is_final {
        return Err(AppError::WrongFinality);
    }
    if to.outcome.balances != balances {
        return Err(AppError::WrongAllocation);
    }
    Ok(())
}

/// The rule of an app as the contracts write it: from the decoded data of the two states and
/// the mover, every check but the last two, and the allocation and finality the move must
/// have. [`judge`] and [`make`] build [`App::valid_transition`] and [`App::apply`] from it.
pub(crate) trait Prescribe {
    /// The app's data (`abi.encode`d in `appData`).
    type Data: SolValue + From<<<Self::Data as SolValue>::SolType as alloy::sol_types::SolType>::RustType>;

    /// The allocation and finality `actor`'s move from `from` (data `f`) to data `t` must
    /// have, or why it is no move.
    fn prescribe(from: &State, f: &Self::Data, t: &Self::Data, actor: Role)
    -> Result<(Vec<[U256; 2]>, bool), AppError>;
}

/// [`App::valid_transition`] of a [`Prescribe`] rule.
pub(crate) fn judge<P: Prescribe>(from: &State, to: &State, actor: Role) -> Result<(), AppError> {
    let (f, t) = (decode::<P::Data>(&from.appData)?, decode::<P::Data>(&to.appData)?);
    let (balances, is_final) = P::prescribe(from, &f, &t, actor)?;
    require_outcome(to, &balances, is_final)
}

/// [`App::apply`] of a [`Prescribe`] rule.
pub(crate) fn make<P: Prescribe>(from: &State, actor: Role, app_data: Bytes) -> Result<State, AppError> {
    let (f, t) = (decode::<P::Data>(&from.appData)?, decode::<P::Data>(&app_data)?);
    let (balances, is_final) = P::prescribe(from, &f, &t, actor)?;
    Ok(next_state(from, app_data, balances, is_final))
}

/// The next state: `from` at the next version with `app_data`, `balances` and `is_final`.
pub(crate) fn next_state(from: &State, app_data: Bytes, balances: Vec<[U256; 2]>, is_final: bool) -> State {
    let mut to = from.clone();
    to.version = from.version.saturating_add(1);
    to.appData = app_data;
    to.outcome.balances = balances;
    to.isFinal = is_final;
    to
}

#[cfg(test)]
mod tests;
