//! The hub's outbox of on-chain actions: an entry is pending until an attempt finds it done,
//! or until it has failed too often and waits for the operator.

use serde::{Deserialize, Serialize};

use super::Refused;

/// Sending status of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Not sent yet, or to be retried.
    Pending,
    /// Sent and mined (or the chain shows it needs nothing more).
    Done,
    /// Given up after too many failed attempts: for the operator.
    Failed,
}

impl OutboxStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Done, Self::Failed];

    /// The database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// How an attempt at an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// The chain shows the action done.
    Done,
    /// Not possible yet (waiting for the chain): retried soon, not counted as a failure.
    NotYet,
    /// It failed (a revert, a node error).
    Failed,
}

/// The outbox's retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Failed attempts after which an entry is given up.
    pub max_attempts: u32,
    /// Seconds before an entry that was not possible yet is tried again.
    pub not_yet_secs: f64,
}

/// What an attempt does to an entry: its next status, and when it is tried again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AfterAttempt {
    /// The status after the attempt.
    pub status: OutboxStatus,
    /// Seconds before the next attempt (pending entries).
    pub retry_after_secs: f64,
}

impl Attempt {
    /// What the attempt does to a stored status: the statuses it moves from, and the one it
    /// moves to when it is the `attempts`-th attempt.
    pub fn moves(self, attempts: u32, policy: RetryPolicy) -> super::Move<OutboxStatus> {
        let to = match self {
            Self::Done => OutboxStatus::Done,
            Self::NotYet => OutboxStatus::Pending,
            Self::Failed if attempts >= policy.max_attempts => OutboxStatus::Failed,
            Self::Failed => OutboxStatus::Pending,
        };
        super::Move { from: &[OutboxStatus::Pending], to }
    }
}

/// The outbox entry's transition function: after the `attempts`-th attempt (this one
/// counted) ended with `attempt`. Failures back off exponentially, up to a minute.
pub fn outbox(
    status: OutboxStatus,
    attempts: u32,
    attempt: Attempt,
    policy: RetryPolicy,
) -> Result<AfterAttempt, Refused> {
    let m = attempt.moves(attempts, policy);
    if !m.from.contains(&status) {
        return Err(Refused { status: status.as_str(), event: "attempt" });
    }
    let retry_after_secs = match attempt {
        Attempt::Done => 0.0,
        Attempt::NotYet => policy.not_yet_secs,
        Attempt::Failed => 2f64.powi(attempts.min(6) as i32).min(60.0),
    };
    Ok(AfterAttempt { status: m.to, retry_after_secs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: RetryPolicy = RetryPolicy { max_attempts: 25, not_yet_secs: 1.0 };

    #[test]
    fn failures_back_off_and_give_up_at_the_limit() {
        let after = |n, a| outbox(OutboxStatus::Pending, n, a, POLICY).expect("pending");
        assert_eq!(after(1, Attempt::Failed), AfterAttempt { status: OutboxStatus::Pending, retry_after_secs: 2.0 });
        assert_eq!(after(6, Attempt::Failed).retry_after_secs, 60.0);
        assert_eq!(after(24, Attempt::Failed).status, OutboxStatus::Pending);
        assert_eq!(after(25, Attempt::Failed).status, OutboxStatus::Failed);
        assert_eq!(after(99, Attempt::NotYet), AfterAttempt { status: OutboxStatus::Pending, retry_after_secs: 1.0 });
        assert_eq!(after(3, Attempt::Done).status, OutboxStatus::Done);
        assert!(outbox(OutboxStatus::Done, 1, Attempt::Failed, POLICY).is_err(), "a done entry is not attempted");
    }

    proptest! {
        /// Whatever the attempts, an entry leaves `pending` once and for good, is given up
        /// only after `max_attempts`, and waits at most a minute between attempts.
        #[test]
        fn an_entry_ends_once(attempts in prop::collection::vec(prop::sample::select(vec![Attempt::Done, Attempt::NotYet, Attempt::Failed]), 0..40)) {
            let mut status = OutboxStatus::Pending;
            for (n, attempt) in attempts.into_iter().enumerate() {
                let n = n as u32 + 1;
                match outbox(status, n, attempt, POLICY) {
                    Ok(after) => {
                        prop_assert_eq!(status, OutboxStatus::Pending);
                        prop_assert!(after.retry_after_secs <= 60.0);
                        if after.status == OutboxStatus::Failed {
                            prop_assert!(n >= POLICY.max_attempts);
                        }
                        status = after.status;
                    }
                    Err(_) => prop_assert_ne!(status, OutboxStatus::Pending),
                }
            }
        }
    }
}
