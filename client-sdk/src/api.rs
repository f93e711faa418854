//! Wire types of the hub's HTTP API (JSON), shared by the hub and the SDK.
//!
//! Amounts (`U256`) travel as `0x`-prefixed hex strings, addresses and hashes as hex, byte
//! strings (signatures) as `0x`-prefixed hex. Every error answer has an [`ErrorBody`].

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::Role;
use crate::bindings::Channel::{Params, State};

/// Header carrying the idempotency key of a state-changing request.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable reason, e.g. `wrong_version`, `bad_signature`, `unauthorized`.
    pub error: String,
    /// Human-readable explanation with the numbers involved.
    pub message: String,
}

/// Asks for a login challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRequest {
    /// The client's channel key address.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub address: Address,
}

/// A login challenge to sign (EIP-191 `personal_sign`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    /// The exact text to sign.
    pub challenge: String,
    /// Unix time after which the challenge is refused.
    pub expires_at: u64,
}

/// Exchanges a signed challenge for a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// The client's channel key address.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub address: Address,
    /// The challenge text, as received.
    pub challenge: String,
    /// EIP-191 signature of the challenge by `address`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
}

/// A bearer token for `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The token.
    pub token: String,
    /// Unix time at which it expires.
    pub expires_at: u64,
}

/// An asset the hub accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssetInfo {
    /// Short name, e.g. `ETH`, `USDC`.
    pub symbol: String,
    /// The asset holder contract; this is the asset's id in channel outcomes.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub holder: Address,
    /// The ERC20 token, `None` for ETH.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::HexAddress>))]
    pub token: Option<Address>,
}

/// What a client needs to know to open a channel with the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HubInfo {
    /// The hub's channel key address (its participant address in every channel).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub address: Address,
    /// Chain id signatures are bound to.
    pub chain_id: u64,
    /// Adjudicator signatures are bound to.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub adjudicator: Address,
    /// Accepted assets.
    pub assets: Vec<AssetInfo>,
    /// Accepted challenge durations of basic channels, seconds.
    #[cfg_attr(feature = "openapi", schema(min_items = 2, max_items = 2))]
    pub challenge_duration: [u64; 2],
    /// Blocks on top of a deposit before the hub counts it.
    pub confirmations: u64,
    /// Whether the hub charges fees for virtual channels (proposals then need a quote).
    #[serde(default)]
    pub virtual_fees: bool,
    /// The apps the hub allows in virtual channels, by contract address (`coin_flip`,
    /// `tic_tac_toe`, `conditional_payment`; the zero address or absent: not allowed).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, crate::openapi::HexAddress>))]
    pub apps: ingrid_protocol::app::AppDeployment,
    /// Longest challenge duration of a virtual channel running an app, seconds (a disputed
    /// app channel can stay open 18 times as long). Absent: `challenge_duration[1]`.
    #[serde(default)]
    pub app_challenge_duration: Option<u64>,
}

/// Opens a basic channel: params, the opening state (version 0) and the client's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenChannelRequest {
    /// The channel's params; the hub and the client are its participants.
    pub params: Params,
    /// Version 0 with both parties' deposits as balances.
    pub state: State,
    /// The client's signature on `state`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
}

/// A state proposed by the client (an update or the final state), with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateRequest {
    /// The proposed state.
    pub state: State,
    /// The client's signature on it.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
}

/// The hub's countersignature on a state it stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureResponse {
    /// The channel.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexB256))]
    pub channel_id: B256,
    /// The version signed.
    pub version: u64,
    /// The hub's signature on that state.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
}

pub use ingrid_protocol::machine::{ChannelStatus, VirtualStatus};

/// A state with both signatures (in participant order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FullySignedState {
    /// The state.
    pub state: State,
    /// Signatures of participant 0 and participant 1.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexBytes>, min_items = 2, max_items = 2))]
    pub sigs: [Bytes; 2],
}

/// What has been deposited for one asset and participant, as the hub has seen it on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Funding {
    /// The asset holder.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub asset: Address,
    /// The participant credited.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub participant: Address,
    /// Confirmed total deposited.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
    pub amount: U256,
}

/// A basic channel as the hub knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// Channel id.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexB256))]
    pub id: B256,
    /// Params.
    pub params: Params,
    /// Life-cycle status.
    pub status: ChannelStatus,
    /// The hub's participant index (0 or 1).
    pub hub_index: Role,
    /// The latest state signed by both.
    pub latest: FullySignedState,
    /// Confirmed deposits.
    pub funding: Vec<Funding>,
    /// Final balances pushed on chain, per asset, when concluded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<crate::openapi::BalancePair>>))]
    pub settled: Option<Vec<[U256; 2]>>,
    /// A collateral top-up the hub deposited (confirmed on chain) and offers to add to its
    /// balance: sign the latest state with the hub's balance of `asset` raised by `amount`
    /// (see `virtual_channel::top_up`) and send it to `POST /v1/channels/{id}/top-up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_up: Option<TopUp>,
}

/// A collateral top-up of the hub in a basic channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUp {
    /// The asset holder.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub asset: Address,
    /// What the hub deposited and adds to its balance, smallest unit.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexU256))]
    pub amount: U256,
}

/// A list of channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelList {
    /// The channels, newest first.
    pub channels: Vec<ChannelView>,
    /// When more follow: pass it as `cursor` to get the next page (opaque). Absent on the
    /// last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Proposes a virtual channel to another client of the hub. Sent by the proposer, who is
/// participant 0 of the virtual channel ("Alice"); the peer is participant 1 ("Bob").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VirtualProposal {
    /// The virtual channel's params: `isVirtual`, participants `[proposer, peer]`.
    pub params: Params,
    /// Its opening state (version 0): balances per asset `[proposer's deposit, peer's]`,
    /// with the same assets, in the same order, as both parents.
    pub state: State,
    /// The proposer's signature on `state`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
    /// The proposer's parent update (its basic channel with the hub, next version) locking
    /// the virtual channel, signed by the proposer.
    pub parent: StateRequest,
    /// Unix time after which the hub asks both ends to close the virtual channel.
    pub valid_until: u64,
    /// The hub's quote for exactly these terms, unexpired; required when the hub charges a
    /// fee. The parent update then also pays the quoted fees to the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<Quote>,
}

/// Asks the hub for the price and limits of a virtual channel before proposing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QuoteRequest {
    /// The peer (participant 1 of the virtual channel).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub peer: Address,
    /// The proposer's basic channel that will fund it.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexB256))]
    pub parent: B256,
    /// Deposits per asset of the parent (same order): `[proposer's, peer's]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::BalancePair>))]
    pub deposits: Vec<[U256; 2]>,
    /// The virtual channel's validity, Unix seconds.
    pub valid_until: u64,
}

/// The hub's signed price for a virtual channel with exactly these terms, valid until
/// `expiresAt`. The proposer pays `fees` (per asset) to the hub in its parent's opening update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The proposer (participant 0).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub proposer: Address,
    /// The peer (participant 1).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexAddress))]
    pub peer: Address,
    /// The proposer's parent.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexB256))]
    pub parent: B256,
    /// Deposits per asset, `[proposer's, peer's]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::BalancePair>))]
    pub deposits: Vec<[U256; 2]>,
    /// The virtual channel's validity, Unix seconds.
    pub valid_until: u64,
    /// Fee per asset, smallest unit.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexU256>))]
    pub fees: Vec<U256>,
    /// Unix time until which the quote may be used.
    pub expires_at: u64,
    /// The hub's signature on [`Quote::digest`].
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
}

impl Quote {
    /// What the hub signs: `keccak256(abi.encode("IngridQuote", chainId, hub, proposer, peer,
    /// parent, deposits, validUntil, fees, expiresAt))` (domain-separated from channel states).
    pub fn digest(&self, chain_id: u64, hub: Address) -> B256 {
        use alloy::sol_types::SolValue;
        let deposits: Vec<Vec<U256>> = self.deposits.iter().map(|d| d.to_vec()).collect();
        alloy::primitives::keccak256(
            (
                "IngridQuote".to_string(),
                chain_id,
                hub,
                self.proposer,
                self.peer,
                self.parent,
                deposits,
                self.valid_until,
                self.fees.clone(),
                self.expires_at,
            )
                .abi_encode_params(),
        )
    }

    /// The terms it is for.
    pub fn terms(&self) -> QuoteTerms<'_> {
        QuoteTerms {
            proposer: self.proposer,
            peer: self.peer,
            parent: self.parent,
            deposits: &self.deposits,
            valid_until: self.valid_until,
        }
    }

    /// Its fees, if it is `hub`'s quote (signed for chain `chain_id`) exactly as it is, for
    /// exactly `terms`, with one fee per deposited asset, and (given `now`) unexpired. The
    /// hub checks a quote it is handed, and a wallet the quote it is given, with this.
    pub fn check(
        &self,
        chain_id: u64,
        hub: Address,
        terms: &QuoteTerms<'_>,
        now: Option<u64>,
    ) -> Result<&[U256], QuoteError> {
        crate::state::verify_digest(&self.digest(chain_id, hub), &self.signature, hub)
            .map_err(|_| QuoteError::Altered)?;
        if let Some(now) = now
            && self.expires_at <= now
        {
            return Err(QuoteError::Expired { expires_at: self.expires_at, now });
        }
        if self.terms() != *terms {
            return Err(QuoteError::Mismatch(
                "the quote is for other terms (proposer, peer, parent, deposits or validity)",
            ));
        }
        if self.fees.len() != self.deposits.len() {
            return Err(QuoteError::Mismatch("the quote has one fee per asset"));
        }
        Ok(&self.fees)
    }
}

/// The terms of a virtual channel a [`Quote`] prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteTerms<'a> {
    /// The proposer (participant 0).
    pub proposer: Address,
    /// The peer (participant 1).
    pub peer: Address,
    /// The proposer's parent.
    pub parent: B256,
    /// Deposits per asset, `[proposer's, peer's]`.
    pub deposits: &'a [[U256; 2]],
    /// The virtual channel's validity, Unix seconds.
    pub valid_until: u64,
}

/// Why a quote does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// Not the hub's signature on the quote as it is.
    #[error("the quote is not signed by this hub as it is")]
    Altered,
    /// Past its expiry.
    #[error("the quote expired at {expires_at} (now {now}); ask for a new one")]
    Expired {
        /// When it expired.
        expires_at: u64,
        /// Now.
        now: u64,
    },
    /// For other terms, or of the wrong shape.
    #[error("{0}")]
    Mismatch(&'static str),
}

impl From<QuoteError> for ingrid_protocol::ProtocolError {
    fn from(e: QuoteError) -> Self {
        match e {
            QuoteError::Altered => Self::invalid("quote_altered", e.to_string()),
            QuoteError::Expired { .. } => Self::conflict("quote_expired", e.to_string()),
            QuoteError::Mismatch(_) => Self::invalid("quote_mismatch", e.to_string()),
        }
    }
}

/// Accepts a proposed virtual channel. Sent by its participant 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VirtualAccept {
    /// The acceptor's signature on the opening state.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexBytes))]
    pub signature: Bytes,
    /// The acceptor's parent update locking the virtual channel, signed by the acceptor.
    pub parent: StateRequest,
}

/// A virtual channel as the hub knows it (shown to its two participants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VirtualView {
    /// Channel id.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HexB256))]
    pub id: B256,
    /// Params.
    pub params: Params,
    /// Status.
    pub status: VirtualStatus,
    /// Unix time of its validity's end.
    pub valid_until: u64,
    /// True once past its validity while still open: the hub asks for the final state.
    pub close_requested: bool,
    /// The parents: the proposer's basic channel, then the acceptor's (zero until accepted).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexB256>, min_items = 2, max_items = 2))]
    pub parents: [B256; 2],
    /// The opening state.
    pub initial: State,
    /// Signatures on the opening state (participant order; empty until given).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexBytes>, min_items = 2, max_items = 2))]
    pub initial_sigs: [Bytes; 2],
    /// The proposer's parent update as proposed (signed by the proposer).
    pub proposed_parent: StateRequest,
    /// The final state signed by both, once recorded by a close.
    pub final_state: Option<FullySignedState>,
    /// Whether each parent (proposer's, acceptor's) has been settled after the close.
    #[cfg_attr(feature = "openapi", schema(min_items = 2, max_items = 2))]
    pub settled: [bool; 2],
    /// The fee per asset the proposer pays the hub in its parent's opening update.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexU256>))]
    pub fees: Vec<U256>,
}

/// A list of virtual channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VirtualList {
    /// The virtual channels, newest first.
    pub channels: Vec<VirtualView>,
    /// When more follow: pass it as `cursor` to get the next page (opaque). Absent on the
    /// last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Closes a virtual channel from its final state signed by both, settling one or both
/// parents: each parent update removes the lock and credits the final balances through the
/// lock's index map, and is signed by that parent's client. Sent by either participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VirtualClose {
    /// The final state (`isFinal`).
    pub state: State,
    /// Both participants' signatures on it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::HexBytes>, min_items = 2, max_items = 2))]
    pub sigs: [Bytes; 2],
    /// Parent updates, one or both.
    pub parents: Vec<StateRequest>,
}

/// The hub's countersignatures on the parent updates of a close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VirtualCloseResponse {
    /// One per parent update settled by the request.
    pub signatures: Vec<SignatureResponse>,
}
