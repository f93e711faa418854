//! Postgres access: the hub's books (see `migrations/`). Every function takes the executor
//! it runs on, so callers group writes into one transaction. One module per part of the
//! books; status changes are the protocol machines' moves, executed as compare-and-sets.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use ingrid_client_sdk::api::{
    ChannelStatus, ChannelView, FullySignedState, Funding, StateRequest, VirtualProposal, VirtualStatus, VirtualView,
};
use ingrid_client_sdk::{Params, State};
use ingrid_protocol::Role;
use ingrid_protocol::machine::dispute;
use ingrid_protocol::machine::{
    ChannelEvent, DisputeEvent, DisputeResult, Move, OutboxStatus, TopUpEvent, TopUpStatus, VirtualBook, VirtualEvent,
};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Row, migrate::Migrator};

use crate::core::Requirement;

/// The schema migrations in `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens a pool of at most `max` connections.
pub async fn connect(url: &str, max: u32) -> sqlx::Result<PgPool> {
    PgPoolOptions::new().max_connections(max).acquire_timeout(std::time::Duration::from_secs(10)).connect(url).await
}

fn address(bytes: &[u8]) -> sqlx::Result<Address> {
    Address::try_from(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn b256(bytes: &[u8]) -> sqlx::Result<B256> {
    B256::try_from(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A participant role stored as its index (`SMALLINT`).
fn role(index: i16) -> sqlx::Result<Role> {
    Role::from_index(index as usize).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn u256(text: &str) -> sqlx::Result<U256> {
    text.parse::<U256>().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn status_name(status: ChannelStatus) -> &'static str {
    status.as_str()
}

fn parse_status(name: &str) -> sqlx::Result<ChannelStatus> {
    ChannelStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown channel status {name}").into()))
}

/// An event's move (decided by the protocol's machine) as the database names its statuses:
/// the source statuses and the target, for a compare-and-set.
fn sql_move<S: Copy + 'static>(m: Move<S>, name: fn(S) -> &'static str) -> (Vec<&'static str>, &'static str) {
    (m.from.iter().map(|s| name(*s)).collect(), name(m.to))
}

fn channel_move(event: ChannelEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), ChannelStatus::as_str)
}

fn virtual_move(event: VirtualEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), VirtualStatus::as_str)
}

fn top_up_move(event: TopUpEvent) -> (Vec<&'static str>, &'static str) {
    sql_move(event.moves(), TopUpStatus::as_str)
}

mod auth;
mod blocks;
mod books;
mod channels;
mod disputes;
mod effects;
mod gauges;
mod idempotency;
mod operator;
mod outbox;
mod paging;
mod top_ups;
mod virtuals;

pub use auth::*;
pub use blocks::*;
pub use books::*;
pub use channels::*;
pub use disputes::*;
pub use effects::*;
pub use gauges::*;
pub use idempotency::*;
pub use operator::*;
pub use outbox::*;
pub use paging::*;
pub use top_ups::*;
pub use virtuals::*;
