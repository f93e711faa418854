//! OpenAPI schemas (`utoipa`) of what the derive cannot describe: the hex encodings of alloy's
//! primitives ([`HexAddress`], [`HexB256`], [`HexU256`], [`HexBytes`], [`BalancePair`]) and
//! the `sol!`-generated channel types ([`Params`], [`State`], [`Allocation`], [`SubAlloc`]),
//! written by hand to match their serde JSON (Solidity field names).
//!
//! Built with the `openapi` feature (the hub's OpenAPI document); not part of a wasm build.

use std::borrow::Cow;

use serde_json::Value;

use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{RefOr, schema::RefBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::{Allocation, Params, State, SubAlloc};

/// The list [`ToSchema::schemas`] fills: (component name, schema).
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// The pattern of `0x` followed by `min..=max` hex digits.
fn hex_pattern(min: usize, max: usize) -> String {
    if min == max { format!("^0x[0-9a-fA-F]{{{min}}}$") } else { format!("^0x[0-9a-fA-F]{{{min},{max}}}$") }
}

/// A hex string schema.
fn hex_string(description: &str, pattern: String, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([Value::from(example)])
        .into()
}

/// A reference to the component of `T`, with a description of the use.
fn reference<T: ToSchema>(description: &str) -> RefOr<Schema> {
    RefBuilder::new().ref_location_from_schema_name(T::name()).description(Some(description)).into()
}

/// Adds the component of `T` and the ones it refers to.
pub fn collect<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// An unsigned 64-bit integer (a JSON number).
fn uint64(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(description))
}

/// A boolean.
fn boolean(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean).description(Some(description))
}

/// An array of exactly two `items`.
fn pair(items: impl Into<RefOr<Schema>>, description: &str) -> ArrayBuilder {
    ArrayBuilder::new().items(items.into()).min_items(Some(2)).max_items(Some(2)).description(Some(description))
}

/// An array of `items`.
fn list(items: impl Into<RefOr<Schema>>, description: &str) -> ArrayBuilder {
    ArrayBuilder::new().items(items.into()).description(Some(description))
}

/// Schema of an alloy `Address` (component `Address`): 20 bytes as `0x` and 40 hex digits.
pub struct HexAddress;

impl PartialSchema for HexAddress {
    fn schema() -> RefOr<Schema> {
        hex_string(
            "An Ethereum address: 20 bytes as `0x` and 40 hex digits (any case).",
            hex_pattern(40, 40),
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        )
    }
}

impl ToSchema for HexAddress {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Address")
    }
}

/// Schema of an alloy `B256` (component `Bytes32`): 32 bytes as `0x` and 64 hex digits.
pub struct HexB256;

impl PartialSchema for HexB256 {
    fn schema() -> RefOr<Schema> {
        hex_string(
            "32 bytes (a channel id or a hash) as `0x` and 64 hex digits.",
            hex_pattern(64, 64),
            "0x5f8e2dd2a2a2f2e3a96bd2b0e0f3e6fbd6e2d4a7a1c8f0b9e3d2c1b0a9f8e7d6",
        )
    }
}

impl ToSchema for HexB256 {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Bytes32")
    }
}

/// Schema of an alloy `U256` (component `Uint256`): an amount as a `0x` hex string.
pub struct HexU256;

impl PartialSchema for HexU256 {
    fn schema() -> RefOr<Schema> {
        hex_string(
            "An unsigned 256-bit integer (an amount in the asset's smallest unit) as `0x` and 1 to 64 hex \
             digits. The hub writes lowercase digits without leading zeros (`0x0` for zero).",
            hex_pattern(1, 64),
            "0xde0b6b3a7640000",
        )
    }
}

impl ToSchema for HexU256 {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Uint256")
    }
}

/// Schema of alloy `Bytes` (component `HexBytes`): a byte string as `0x` and an even number of
/// hex digits.
pub struct HexBytes;

impl PartialSchema for HexBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A byte string (e.g. a 65-byte signature r||s||v) as `0x` and two hex digits per byte; `0x` is \
                 empty.",
            ))
            .pattern(Some("^0x([0-9a-fA-F]{2})*$"))
            .examples([Value::from("0x")])
            .into()
    }
}

impl ToSchema for HexBytes {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("HexBytes")
    }
}

/// Schema of `[U256; 2]` (component `BalancePair`): one asset's amounts of participant 0 and
/// participant 1.
pub struct BalancePair;

impl PartialSchema for BalancePair {
    fn schema() -> RefOr<Schema> {
        pair(
            RefBuilder::new().ref_location_from_schema_name(HexU256::name()),
            "One asset's amounts of participant 0 and participant 1.",
        )
        .into()
    }
}

impl ToSchema for BalancePair {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BalancePair")
    }

    fn schemas(schemas: &mut Schemas) {
        collect::<HexU256>(schemas);
    }
}

impl PartialSchema for Params {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "A channel's fixed parameters (Solidity `Channel.Params`); the channel id is derived from them.",
            ))
            .property("challengeDuration", uint64("Seconds a disputed state stays open to refutation on chain."))
            .required("challengeDuration")
            .property("nonce", reference::<HexU256>("Makes the channel id unique."))
            .required("nonce")
            .property(
                "participants",
                pair(reference::<HexAddress>("A participant."), "The channel keys of participant 0 and 1."),
            )
            .required("participants")
            .property("ledger", boolean("Whether this is a ledger (basic) channel; `true` for channels with the hub."))
            .required("ledger")
            .property("isVirtual", boolean("Whether this is a virtual channel; `false` for channels with the hub."))
            .required("isVirtual")
            .property("app", reference::<HexAddress>("The app contract; the zero address (no app)."))
            .required("app")
            .into()
    }
}

impl ToSchema for Params {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Params")
    }

    fn schemas(schemas: &mut Schemas) {
        collect::<HexU256>(schemas);
        collect::<HexAddress>(schemas);
    }
}

impl PartialSchema for State {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("A state of a channel (Solidity `Channel.State`)."))
            .property("channelId", reference::<HexB256>("The channel this state belongs to."))
            .required("channelId")
            .property("version", uint64("Version number; 0 opens the channel, each update adds 1."))
            .required("version")
            .property("outcome", reference::<Allocation>("Who gets what if the channel concludes in this state."))
            .required("outcome")
            .property("appData", reference::<HexBytes>("App data; empty (`0x`) in the hub's channels."))
            .required("appData")
            .property("isFinal", boolean("Whether this is the final state (closing the channel)."))
            .required("isFinal")
            .into()
    }
}

impl ToSchema for State {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("State")
    }

    fn schemas(schemas: &mut Schemas) {
        collect::<HexB256>(schemas);
        collect::<Allocation>(schemas);
        collect::<HexBytes>(schemas);
    }
}

impl PartialSchema for Allocation {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("The outcome of a state (Solidity `Channel.Allocation`)."))
            .property("assets", list(reference::<HexAddress>("An asset holder."), "The asset holders, one per asset."))
            .required("assets")
            .property(
                "balances",
                list(
                    reference::<BalancePair>("The asset's balances."),
                    "Per asset (in `assets` order), the balances of participant 0 and 1.",
                ),
            )
            .required("balances")
            .property(
                "locked",
                list(reference::<SubAlloc>("A lock."), "Funds locked in sub-channels (virtual channels)."),
            )
            .required("locked")
            .into()
    }
}

impl ToSchema for Allocation {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Allocation")
    }

    fn schemas(schemas: &mut Schemas) {
        collect::<HexAddress>(schemas);
        collect::<BalancePair>(schemas);
        collect::<SubAlloc>(schemas);
    }
}

impl PartialSchema for SubAlloc {
    fn schema() -> RefOr<Schema> {
        let index = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(0))
            .maximum(Some(u16::MAX))
            .description(Some("A participant index (uint16)."));
        ObjectBuilder::new()
            .description(Some("Funds locked in a sub-channel (Solidity `Channel.SubAlloc`)."))
            .property("id", reference::<HexB256>("The sub-channel's id."))
            .required("id")
            .property(
                "balances",
                list(reference::<HexU256>("An asset's locked amount."), "Per asset, the amount locked."),
            )
            .required("balances")
            .property("indexMap", pair(index, "For each sub-channel participant, its index in this channel."))
            .required("indexMap")
            .into()
    }
}

impl ToSchema for SubAlloc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SubAlloc")
    }

    fn schemas(schemas: &mut Schemas) {
        collect::<HexB256>(schemas);
        collect::<HexU256>(schemas);
    }
}
