//! A participant's role in a two-party channel, parsed once at the edge: the code names the
//! first and second participant and a participant's peer instead of computing indices.
//! On the wire and in storage a role is its index, `0` or `1`.

use serde::{Deserialize, Serialize};

/// Participant 0 or participant 1 of a two-party channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Role {
    /// Participant 0 (of a virtual channel: its proposer).
    First,
    /// Participant 1 (of a virtual channel: the peer it was proposed to).
    Second,
}

/// An index that is no participant of a two-party channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("participant index {0} is neither 0 nor 1")]
pub struct NotARole(pub usize);

impl Role {
    /// Both roles, in index order.
    pub const ALL: [Self; 2] = [Self::First, Self::Second];

    /// The participant index.
    pub const fn index(self) -> usize {
        match self {
            Self::First => 0,
            Self::Second => 1,
        }
    }

    /// The other participant.
    pub const fn peer(self) -> Self {
        match self {
            Self::First => Self::Second,
            Self::Second => Self::First,
        }
    }

    /// The role of participant index `index`.
    pub fn from_index(index: usize) -> Result<Self, NotARole> {
        match index {
            0 => Ok(Self::First),
            1 => Ok(Self::Second),
            other => Err(NotARole(other)),
        }
    }

    /// The role of `who` among `participants`, if it is one.
    pub fn of<T: PartialEq>(participants: &[T; 2], who: &T) -> Option<Self> {
        Self::ALL.into_iter().find(|r| &participants[r.index()] == who)
    }

    /// The pair in participant order of `own` (this role's) and `peer` (its peer's).
    pub fn pair<T>(self, own: T, peer: T) -> [T; 2] {
        match self {
            Self::First => [own, peer],
            Self::Second => [peer, own],
        }
    }

    /// The lock's index-map entry of this role (its index as the contracts store it).
    pub const fn as_u16(self) -> u16 {
        self.index() as u16
    }
}

impl TryFrom<u8> for Role {
    type Error = NotARole;
    fn try_from(index: u8) -> Result<Self, NotARole> {
        Self::from_index(index as usize)
    }
}

impl From<Role> for u8 {
    fn from(role: Role) -> u8 {
        role.index() as u8
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.index())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Role {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(1))
            .description(Some("A participant's index in a two-party channel: 0 or 1."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Role {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_its_index_on_the_wire_and_nothing_else_parses() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).expect("encode");
            assert_eq!(json, role.index().to_string());
            assert_eq!(serde_json::from_str::<Role>(&json).expect("decode"), role);
            assert_eq!(Role::try_from(role.index() as u8), Ok(role));
            assert_eq!(role.peer().peer(), role);
            assert_ne!(role.peer(), role);
        }
        assert_eq!(Role::from_index(2), Err(NotARole(2)));
        assert!(serde_json::from_str::<Role>("2").is_err(), "only 0 and 1 parse");
        assert_eq!(Role::of(&["a", "b"], &"b"), Some(Role::Second));
        assert_eq!(Role::of(&["a", "b"], &"c"), None);
        assert_eq!(Role::Second.pair("own", "peer"), ["peer", "own"]);
    }
}
