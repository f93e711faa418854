//! Virtual channels: the protocol's pure arithmetic (re-exported from
//! [`ingrid_protocol::virtual_channel`]) and what a client keeps about one.

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

use crate::api::FullySignedState;
use crate::{Params, State};

pub use ingrid_protocol::virtual_channel::*;

/// What a client keeps about one virtual channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRecord {
    /// Params (participants `[proposer, acceptor]`).
    pub params: Params,
    /// The parents: proposer's basic channel, acceptor's basic channel.
    pub parents: [B256; 2],
    /// This client's index in the virtual channel.
    pub my_index: u8,
    /// The latest state signed by both.
    pub latest: FullySignedState,
    /// A newer state this client signed and sent (a payment) whose countersignature it has
    /// not received yet.
    pub pending: Option<State>,
    /// This client's signature on `pending`.
    #[serde(default)]
    pub pending_sig: Option<alloy::primitives::Bytes>,
}

impl VirtualRecord {
    /// The channel id.
    pub fn id(&self) -> B256 {
        self.latest.state.channelId
    }

    /// The parent of this client.
    pub fn my_parent(&self) -> B256 {
        self.parents[self.my_index as usize]
    }

    /// This client's side.
    pub fn side(&self) -> Side {
        if self.my_index == 0 { Side::Proposer } else { Side::Acceptor }
    }
}
