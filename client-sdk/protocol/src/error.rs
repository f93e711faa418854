//! The one refusal type of the protocol's decisions ([`ProtocolError`]): what kind of refusal
//! it is, a stable machine-readable code and an explanation. The hub maps it to HTTP in one
//! place (the kind decides the status code); a wallet can show it as it is.

use crate::state::SignatureError;
use crate::validate::UpdateError;

/// What kind of refusal: decides, for the hub, the HTTP status (422, 409, 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Well-formed but refused: a bad signature, an invalid state, against policy.
    Invalid,
    /// In conflict with the current state: a stale version, a wrong status, a limit reached.
    Conflict,
    /// What the request names does not exist for its sender.
    NotFound,
}

/// A refused decision: nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// What kind of refusal.
    pub kind: Kind,
    /// The stable reason code (`snake_case`), e.g. `wrong_version`.
    pub code: &'static str,
    /// The explanation, with the numbers that matter.
    pub message: String,
}

impl ProtocolError {
    /// An invalid request (`code`).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self { kind: Kind::Invalid, code, message: message.into() }
    }

    /// A conflict with the current state (`code`).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self { kind: Kind::Conflict, code, message: message.into() }
    }

    /// Something that does not exist for the sender.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { kind: Kind::NotFound, code: "not_found", message: message.into() }
    }
}

impl From<UpdateError> for ProtocolError {
    fn from(e: UpdateError) -> Self {
        let code = match &e {
            UpdateError::WrongVersion { .. } => return Self::conflict("wrong_version", e.to_string()),
            UpdateError::AlreadyFinal => return Self::conflict("channel_final", e.to_string()),
            UpdateError::ChannelIdMismatch { .. } => "channel_id_mismatch",
            UpdateError::AppDataNotEmpty => "app_data_not_empty",
            UpdateError::AssetsChanged => "assets_changed",
            UpdateError::DuplicateAsset(_) => "duplicate_asset",
            UpdateError::BalanceShape { .. } => "balance_shape",
            UpdateError::InvalidIndexMap(_) => "invalid_index_map",
            UpdateError::DuplicateLock(_) => "duplicate_lock",
            UpdateError::Overflow => "overflow",
            UpdateError::TotalChanged { .. } => "total_changed",
            UpdateError::LocksChanged(_) => "locks_changed",
            UpdateError::InvalidParams(_) => "invalid_params",
        };
        Self::invalid(code, e.to_string())
    }
}

impl From<SignatureError> for ProtocolError {
    fn from(e: SignatureError) -> Self {
        Self::invalid("bad_signature", e.to_string())
    }
}
