//! Life cycles as explicit state machines: the statuses of a basic channel, a virtual channel
//! ([`VirtualBook`]), a collateral top-up, a dispute and an outbox entry of the hub, the events that move them, and one transition function each.
//! The hub's handlers, its watcher and its store ask these functions what an event does
//! instead of deciding it themselves; the store executes a move as a compare-and-set from the
//! statuses [`Move::from`] lists to [`Move::to`].
//!
//! Every machine only moves forward along its order (`rank`), and an event that does not
//! apply in a status is refused without a change ([`Refused`]). Events that can be seen twice
//! (a replayed chain event) are idempotent where the life cycle allows it.

use serde::{Deserialize, Serialize};

mod dispute;
mod outbox;
mod virtuals;
pub use dispute::*;
pub use outbox::*;
pub use virtuals::*;

/// An event that does not apply in the current status: nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not possible in status {status}")]
pub struct Refused {
    /// The status the machine is in (its wire name).
    pub status: &'static str,
    /// The refused event (its name).
    pub event: &'static str,
}

/// What an event does to a status column: from which statuses it moves, and to which one.
/// Statuses outside `from` are left alone (a stored move is a compare-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move<S: 'static> {
    /// The statuses the event moves from.
    pub from: &'static [S],
    /// The status it moves to.
    pub to: S,
}

/// Where a basic channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    /// Signed; waiting for both deposits to be confirmed on chain.
    Funding,
    /// Funded: updates are accepted.
    Open,
    /// A final state is signed, or a state is registered on chain: no more off-chain updates;
    /// the channel is being concluded.
    Closing,
    /// Concluded on chain; the outcome is recorded.
    Closed,
}

impl ChannelStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 4] = [Self::Funding, Self::Open, Self::Closing, Self::Closed];

    /// The wire (and database) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Funding => "funding",
            Self::Open => "open",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }
}

impl std::fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a basic channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelEvent {
    /// Every deposit the opening state needs is confirmed on chain.
    Funded,
    /// Both sign the next state (a payment, a lock or a settlement of a virtual channel).
    Update,
    /// Both sign the state with the hub's collateral top-up.
    TopUp,
    /// Both sign a final state (a cooperative close).
    Close,
    /// A state of the channel is registered on chain (a dispute).
    Registered,
    /// The channel is concluded on chain.
    Concluded,
    /// A deposit counted for the channel's funding is no longer on the chain (a
    /// reorganisation replaced its block) and the deposits that remain do not cover the
    /// opening state: an open channel waits for its funding again, so no more coins are
    /// locked in it (virtual channels need an `open` parent) until `Funded`.
    FundingUndone,
}

impl ChannelEvent {
    /// Its name, for refusals and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Funded => "funded",
            Self::Update => "update",
            Self::TopUp => "top-up",
            Self::Close => "close",
            Self::Registered => "registered",
            Self::Concluded => "concluded",
            Self::FundingUndone => "funding undone",
        }
    }

    /// What the event does to a stored status.
    pub fn moves(self) -> Move<ChannelStatus> {
        use ChannelStatus::*;
        match self {
            Self::Funded => Move { from: &[Funding], to: Open },
            Self::Update | Self::TopUp => Move { from: &[Open], to: Open },
            Self::Close => Move { from: &[Funding, Open], to: Closing },
            Self::Registered => Move { from: &[Funding, Open], to: Closing },
            Self::Concluded => Move { from: &[Funding, Open, Closing], to: Closed },
            Self::FundingUndone => Move { from: &[Open], to: Funding },
        }
    }
}

/// The basic channel's transition function: the status after `event`, or a refusal.
/// Chain events seen again (funded when open, registered while closing, concluded when
/// closed) leave the status as it is. The only move back is `FundingUndone` (open to
/// funding); in any other status it changes nothing: a channel still funding waits anyway,
/// and one closing or closed takes no more updates.
pub fn channel(status: ChannelStatus, event: ChannelEvent) -> Result<ChannelStatus, Refused> {
    use ChannelEvent::*;
    use ChannelStatus::*;
    let m = event.moves();
    if m.from.contains(&status) {
        return Ok(m.to);
    }
    match (event, status) {
        (Funded, Open | Closing | Closed)
        | (Registered, Closing | Closed)
        | (Concluded, Closed)
        | (FundingUndone, Funding | Closing | Closed) => Ok(status),
        _ => Err(Refused { status: status.as_str(), event: event.name() }),
    }
}

/// Where a collateral top-up is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStatus {
    /// The hub's coins are being put on standby (in the outbox).
    Depositing,
    /// The standby is confirmed on chain; the raised state is offered to the client.
    Confirmed,
    /// Both signed the raised state.
    Applied,
}

impl TopUpStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 3] = [Self::Depositing, Self::Confirmed, Self::Applied];

    /// The database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depositing => "depositing",
            Self::Confirmed => "confirmed",
            Self::Applied => "applied",
        }
    }
}

/// What happens to a top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopUpEvent {
    /// The hub's standby reached the top-up's target on chain.
    StandbyConfirmed,
    /// The client countersigned the raised state.
    Countersigned,
    /// The standby that confirmed the top-up is no longer on the chain (a reorganisation
    /// replaced its block): the top-up waits for its deposit again. An applied top-up stays
    /// applied (both signed the raised state); the hub puts its standby in again.
    StandbyUndone,
}

impl TopUpEvent {
    /// Its name, for refusals and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::StandbyConfirmed => "standby confirmed",
            Self::Countersigned => "countersigned",
            Self::StandbyUndone => "standby undone",
        }
    }

    /// What the event does to a stored status.
    pub fn moves(self) -> Move<TopUpStatus> {
        use TopUpStatus::*;
        match self {
            Self::StandbyConfirmed => Move { from: &[Depositing], to: Confirmed },
            Self::Countersigned => Move { from: &[Confirmed], to: Applied },
            Self::StandbyUndone => Move { from: &[Confirmed], to: Depositing },
        }
    }
}

/// The top-up's transition function: the status after `event`, or a refusal.
pub fn top_up(status: TopUpStatus, event: TopUpEvent) -> Result<TopUpStatus, Refused> {
    let m = event.moves();
    if m.from.contains(&status) {
        Ok(m.to)
    } else if (event == TopUpEvent::StandbyConfirmed && status != TopUpStatus::Depositing)
        || (event == TopUpEvent::StandbyUndone && status != TopUpStatus::Confirmed)
    {
        Ok(status) // seen again, or an applied top-up (signed: only its standby is put in again)
    } else {
        Err(Refused { status: status.as_str(), event: event.name() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn channel_event() -> impl Strategy<Value = ChannelEvent> {
        use ChannelEvent::*;
        prop::sample::select(vec![Funded, Update, TopUp, Close, Registered, Concluded, FundingUndone])
    }

    fn virtual_event() -> impl Strategy<Value = VirtualEvent> {
        use VirtualEvent::*;
        prop::sample::select(vec![
            Accept,
            Reject,
            Expire,
            CloseRequest,
            Settled { both: false },
            Settled { both: true },
        ])
    }

    fn virtual_rank(s: VirtualStatus) -> u8 {
        match s {
            VirtualStatus::Proposed => 0,
            VirtualStatus::Open => 1,
            VirtualStatus::Closing => 2,
            VirtualStatus::Closed | VirtualStatus::Rejected | VirtualStatus::Expired => 3,
        }
    }

    proptest! {
        /// No sequence of events moves a basic channel back, except a funding undone by a
        /// reorganisation (open to funding, never from closing or closed); updates are
        /// taken only when open, so none after the funding is undone until it is funded
        /// again; once closed, only a repeated chain event is accepted; a refusal changes
        /// nothing.
        #[test]
        fn a_basic_channel_only_moves_forward(events in prop::collection::vec(channel_event(), 0..40)) {
            let mut status = ChannelStatus::Funding;
            for event in events {
                match channel(status, event) {
                    Ok(next) => {
                        if event == ChannelEvent::FundingUndone {
                            prop_assert!(
                                next == status || (status, next) == (ChannelStatus::Open, ChannelStatus::Funding),
                                "{status} -> {next} on {event:?}"
                            );
                            prop_assert_ne!(next, ChannelStatus::Open, "no longer funded: not open");
                        } else {
                            prop_assert!(next >= status, "{status} -> {next} on {event:?}");
                        }
                        if matches!(event, ChannelEvent::Update | ChannelEvent::TopUp) {
                            prop_assert_eq!(status, ChannelStatus::Open);
                        }
                        if status == ChannelStatus::Closed {
                            prop_assert!(matches!(
                                event,
                                ChannelEvent::Concluded | ChannelEvent::Registered | ChannelEvent::Funded | ChannelEvent::FundingUndone
                            ));
                            prop_assert_eq!(next, ChannelStatus::Closed);
                        }
                        status = next;
                    }
                    Err(refused) => prop_assert_eq!(refused.status, status.as_str()),
                }
            }
        }

        /// A virtual channel never moves back, leaves a terminal status never, and opens
        /// only from a proposal.
        #[test]
        fn a_virtual_channel_only_moves_forward(events in prop::collection::vec(virtual_event(), 0..40)) {
            let mut status = VirtualStatus::Proposed;
            for event in events {
                if let Ok(next) = virtual_channel(status, event) {
                    prop_assert!(virtual_rank(next) >= virtual_rank(status), "{status} -> {next} on {event:?}");
                    if status.is_terminal() {
                        prop_assert_eq!(next, status);
                    }
                    if next == VirtualStatus::Open && status != VirtualStatus::Open {
                        prop_assert_eq!(status, VirtualStatus::Proposed);
                    }
                    status = next;
                }
            }
        }
    }

    /// Each machine's move table and its transition function agree: an event applies from
    /// exactly the statuses its move lists (besides repeated chain events, which change
    /// nothing), and leads where the move says.
    #[test]
    fn moves_and_transitions_agree() {
        use ChannelEvent::*;
        for event in [Funded, Update, TopUp, Close, Registered, Concluded, FundingUndone] {
            let m = event.moves();
            for s in ChannelStatus::ALL {
                match channel(s, event) {
                    Ok(next) if m.from.contains(&s) => assert_eq!(next, m.to, "{event:?} from {s}"),
                    Ok(next) => assert_eq!(next, s, "{event:?} from {s} is a repeat"),
                    Err(_) => assert!(!m.from.contains(&s)),
                }
            }
        }
        for event in [TopUpEvent::StandbyConfirmed, TopUpEvent::Countersigned, TopUpEvent::StandbyUndone] {
            let m = event.moves();
            for s in TopUpStatus::ALL {
                if m.from.contains(&s) {
                    assert_eq!(top_up(s, event), Ok(m.to));
                }
            }
        }
        assert!(top_up(TopUpStatus::Depositing, TopUpEvent::Countersigned).is_err(), "not before the standby");
        assert_eq!(top_up(TopUpStatus::Applied, TopUpEvent::StandbyUndone), Ok(TopUpStatus::Applied), "signed stays");
        assert_eq!(top_up(TopUpStatus::Depositing, TopUpEvent::StandbyUndone), Ok(TopUpStatus::Depositing));
        assert_eq!(virtual_channel(VirtualStatus::Closing, VirtualEvent::CloseRequest), Ok(VirtualStatus::Closing));
        assert!(virtual_channel(VirtualStatus::Proposed, VirtualEvent::CloseRequest).is_err());
        assert!(channel(ChannelStatus::Funding, ChannelEvent::Update).is_err(), "no update before funding");
    }

    /// A reorganisation that takes away an open channel's funding sends it back to
    /// `funding`: updates (virtual-channel locks among them) are refused until its deposits
    /// are confirmed again, and then it opens as before. A closing or closed channel stays.
    #[test]
    fn an_undone_funding_stops_updates_until_funded_again() {
        use ChannelEvent::*;
        use ChannelStatus::*;
        let undone = channel(Open, FundingUndone).expect("open channels lose their funding");
        assert_eq!(undone, Funding);
        assert!(channel(undone, Update).is_err(), "no lock against a deposit that disappeared");
        assert!(channel(undone, TopUp).is_err());
        assert_eq!(channel(undone, FundingUndone), Ok(Funding), "seen again");
        assert_eq!(channel(undone, Funded), Ok(Open), "funded again");
        assert_eq!(channel(Closing, FundingUndone), Ok(Closing));
        assert_eq!(channel(Closed, FundingUndone), Ok(Closed));
    }
}
