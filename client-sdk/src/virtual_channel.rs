//! Virtual channels: the protocol's pure arithmetic (re-exported from
//! [`ingrid_protocol::virtual_channel`]) and what a client keeps about one.

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::api::FullySignedState;
use crate::{Params, Role, State};

pub use ingrid_protocol::virtual_channel::*;

/// What a client keeps about one virtual channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRecord {
    /// Params (participants `[proposer, acceptor]`).
    pub params: Params,
    /// The parents, in participant order: the proposer's basic channel, the acceptor's.
    pub parents: Vec<B256>,
    /// This client's participant index in the virtual channel (`0` proposer, `1` peer).
    pub my_index: Role,
    /// The latest state signed by both.
    pub latest: FullySignedState,
    /// A newer state this client signed and sent (a payment) whose countersignature it has
    /// not received yet.
    pub pending: Option<State>,
    /// This client's signature on `pending`.
    #[serde(default)]
    pub pending_sig: Option<alloy::primitives::Bytes>,
    /// An app channel's state that the adjudicator's record holds, newer than `latest` (a
    /// forced move, signed by its mover alone): the next move builds on it
    /// ([`crate::wallet::Wallet::sync_from_chain`]).
    #[serde(default)]
    pub on_chain: Option<State>,
    /// The app it runs (kept from its opening: the rule does not depend on what a hub
    /// announces later); `None` for payments, and for records from before apps.
    #[serde(default)]
    pub app: Option<ingrid_protocol::app::AppKind>,
}

impl VirtualRecord {
    /// The channel id.
    pub fn id(&self) -> B256 {
        self.latest.state.channelId
    }

    /// The state the next move builds on: the record's forced state if it is newer than the
    /// latest state signed by both.
    pub fn base(&self) -> &State {
        match &self.on_chain {
            Some(s) if s.version > self.latest.state.version => s,
            _ => &self.latest.state,
        }
    }

    /// The parent of this client.
    pub fn my_parent(&self) -> B256 {
        self.parents[self.my_index.index()]
    }

    /// The parent of the peer.
    pub fn peer_parent(&self) -> B256 {
        self.parents[self.my_index.peer().index()]
    }

    /// The peer's address.
    pub fn peer(&self) -> Address {
        self.params.participants[self.my_index.peer().index()]
    }
}
