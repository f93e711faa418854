//! The hub's seams to the chain, run by the leader process only:
//! - [`watcher`]: the event watcher (durable cursor, confirmation depth, idempotent on replay,
//!   no single event stops it), which records what events change in the books and hands
//!   registrations to [`disputes`];
//! - [`disputes`]: what the hub answers when a channel it is party to is registered on chain,
//!   planned as outbox actions;
//! - [`outbox`]: the hub's own transactions ([`Action`]), performed in priority order,
//!   retried, replaced with a higher fee when they do not confirm, and correct after a
//!   restart because every action first checks what the chain already shows.
//!
//! Dependencies run one way: `watcher` -> `disputes` -> `outbox` -> `context` (what they
//! all share).

mod context;
pub mod disputes;
pub mod outbox;
mod reorg;
mod watcher;

pub use context::Chain;
pub use outbox::{Action, bumped_fees};
