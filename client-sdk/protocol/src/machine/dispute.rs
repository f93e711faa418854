//! A dispute: a registration on chain of a record the hub is party to, and how it ends.

use serde::{Deserialize, Serialize};

use super::Move;

/// How a dispute stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeResult {
    /// Registered; the hub answers (refutes a stale state, registers its parents, concludes).
    Open,
    /// A stale registration the hub answered with a newer state (still to be concluded).
    Refuted,
    /// The outcome was pushed (a virtual channel: a parent concluded with it).
    Concluded,
}

impl DisputeResult {
    /// Every result.
    pub const ALL: [Self; 3] = [Self::Open, Self::Refuted, Self::Concluded];

    /// The database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Refuted => "refuted",
            Self::Concluded => "concluded",
        }
    }

    /// The result of its database name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// What happens to a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeEvent {
    /// The record was registered again (a refutation), from version `before` to `after`;
    /// the hub held `hub_version` when the dispute began.
    Registered {
        /// The version registered before.
        before: u64,
        /// The version registered now.
        after: u64,
        /// The newest version the hub held.
        hub_version: u64,
        /// Whether the state registered now is the hub's own at `hub_version` (the same
        /// digest): a forced app move or another state at that version does not refute.
        hubs_state: bool,
    },
    /// The record's channel concluded on chain.
    Concluded,
}

impl DisputeEvent {
    /// What a conclusion does to a stored result (a refutation depends on the versions: see
    /// [`dispute`]).
    pub fn concluded_moves() -> Move<DisputeResult> {
        Move { from: &[DisputeResult::Open, DisputeResult::Refuted], to: DisputeResult::Concluded }
    }
}

/// The dispute's transition function. A registration that is not newer changes nothing (a
/// replayed event); one that reaches the hub's state (or passes its version) refutes an open
/// dispute that started below it; a conclusion ends any dispute.
pub fn dispute(result: DisputeResult, event: DisputeEvent) -> DisputeResult {
    match event {
        DisputeEvent::Registered { before, after, hub_version, hubs_state } => {
            let refutes = before < hub_version && (after > hub_version || (after == hub_version && hubs_state));
            if after > before && result == DisputeResult::Open && refutes { DisputeResult::Refuted } else { result }
        }
        DisputeEvent::Concluded => DisputeResult::Concluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_refutation_to_the_hubs_version_refutes_and_a_conclusion_ends() {
        let reg = |before, after| DisputeEvent::Registered { before, after, hub_version: 5, hubs_state: after == 5 };
        assert_eq!(dispute(DisputeResult::Open, reg(3, 5)), DisputeResult::Refuted);
        let other = DisputeEvent::Registered { before: 3, after: 5, hub_version: 5, hubs_state: false };
        assert_eq!(dispute(DisputeResult::Open, other), DisputeResult::Open, "a forced move to the hub's version");
        assert_eq!(dispute(DisputeResult::Open, reg(3, 6)), DisputeResult::Refuted, "newer than the hub's");
        assert_eq!(dispute(DisputeResult::Open, reg(3, 4)), DisputeResult::Open, "still stale");
        assert_eq!(dispute(DisputeResult::Open, reg(5, 6)), DisputeResult::Open, "the hub's own state, newer");
        assert_eq!(dispute(DisputeResult::Open, reg(5, 3)), DisputeResult::Open, "an older event seen again");
        assert_eq!(dispute(DisputeResult::Refuted, DisputeEvent::Concluded), DisputeResult::Concluded);
        assert_eq!(dispute(DisputeResult::Concluded, reg(3, 5)), DisputeResult::Concluded);
        for r in DisputeResult::ALL {
            assert_eq!(DisputeResult::parse(r.as_str()), Some(r));
        }
    }

    proptest! {
        /// A dispute never moves back (open, refuted, concluded).
        #[test]
        fn a_dispute_only_moves_forward(events in prop::collection::vec((0u64..8, 0u64..8, any::<bool>()), 0..30), hub_version in 0u64..8) {
            let mut result = DisputeResult::Open;
            let mut registered = 0;
            for (after, _, conclude) in events {
                let event = if conclude { DisputeEvent::Concluded } else { DisputeEvent::Registered { before: registered, after, hub_version, hubs_state: after % 2 == 0 } };
                let next = dispute(result, event);
                prop_assert!(next >= result);
                if let DisputeEvent::Registered { after, .. } = event {
                    registered = registered.max(after);
                }
                result = next;
            }
        }
    }
}
