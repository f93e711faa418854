//! The OpenAPI 3.1 document of the HTTP API ([`crate::api`]), generated with `utoipa`, served
//! at `GET /openapi.json` and kept in the repository as `hub/openapi.json`.
//!
//! The operations are declared here, on documentation-only stubs, so the handlers stay plain
//! axum functions. The tests fail when the committed file differs from [`json`] (regenerate
//! it with `INGRID_WRITE_OPENAPI=1 cargo test -p ingrid-hub openapi`), when a route of
//! [`crate::api::router`] is missing from the document, and when a wire type's JSON does not
//! conform to its schema.

use std::sync::LazyLock;

use ingrid_client_sdk::api::{
    AssetInfo, ChallengeRequest, ChallengeResponse, ChannelList, ChannelStatus, ChannelView, ErrorBody,
    FullySignedState, Funding, HubInfo, OpenChannelRequest, Quote, QuoteRequest, SignatureResponse, StateRequest,
    TokenRequest, TokenResponse, TopUp, VirtualAccept, VirtualClose, VirtualCloseResponse, VirtualList,
    VirtualProposal, VirtualStatus, VirtualView,
};
use ingrid_client_sdk::openapi::{BalancePair, HexAddress, HexB256, HexBytes, HexU256};
use ingrid_client_sdk::{Allocation, Params, State, SubAlloc};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use outbox::{OutboxAction, OutboxEntry, OutboxList, OutboxStatus};

/// The API's description (markdown): what applies to every operation.
const DESCRIPTION: &str = "\
The HTTP API of an Ingrid payment hub: log in with a channel key, open a basic (ledger) \
channel with the hub, update it off chain and close it; open virtual channels with other clients \
of the hub, funded by locks in both parties' basic channels, and close them. Every JSON answer of \
a refusal has an `ErrorBody`, whose `error` is a stable machine-readable reason.

Conventions:
- Addresses, hashes, amounts (`Uint256`) and byte strings travel as `0x`-prefixed hex strings; \
`Params` and `State` use the Solidity field names of the adjudicator's `Channel` library.
- Client routes need `Authorization: Bearer <token>` from `POST /v1/auth/token`; `/v1/admin/*` \
routes need the operator token and answer 404 when the operator API is disabled.
- The state-changing POSTs of `/v1/channels` and `/v1/virtual-channels` (all but \
`POST /v1/virtual-channels/{id}/reject`) accept an `Idempotency-Key` header: a retry with the \
same key and the same request replays the first answer (status and body) without acting again; \
the same key with a different request is refused with 422 `idempotency_key_reused`. Refused \
requests are not recorded, so a retry after a refusal is decided afresh.

Answers of every route, not repeated per operation: an unknown path answers 404 `not_found`, a \
known path with another method 405 `method_not_allowed` (both with an `ErrorBody`); a request \
that is not answered within 30 s gets 503 `timeout`, and a request body over 1 MiB gets 413 \
`body_too_large` (all with an `ErrorBody`).";

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ingrid hub API", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
    paths(
        paths::healthz,
        paths::openapi_json,
        paths::metrics,
        paths::hub_info,
        paths::challenge,
        paths::token,
        paths::list_channels,
        paths::open_channel,
        paths::get_channel,
        paths::update_channel,
        paths::close_channel,
        paths::list_virtual_channels,
        paths::propose_virtual_channel,
        paths::get_virtual_channel,
        paths::accept_virtual_channel,
        paths::reject_virtual_channel,
        paths::close_virtual_channel,
        paths::admin_channels,
        paths::admin_outbox,
        paths::readyz,
        paths::admin_clients,
        paths::admin_virtual_channels,
        paths::admin_collateral,
        paths::admin_disputes,
        paths::admin_status,
        paths::admin_pause,
        paths::admin_resume,
        paths::admin_close_channel,
        paths::quote_virtual_channel,
        paths::admin_reload,
        paths::top_up_channel,
    ),
    components(schemas(
        ErrorBody,
        ChallengeRequest,
        ChallengeResponse,
        TokenRequest,
        TokenResponse,
        AssetInfo,
        HubInfo,
        OpenChannelRequest,
        StateRequest,
        SignatureResponse,
        ChannelStatus,
        FullySignedState,
        Funding,
        ChannelView,
        ChannelList,
        VirtualProposal,
        Quote,
        QuoteRequest,
        TopUp,
        VirtualAccept,
        VirtualStatus,
        VirtualView,
        VirtualList,
        VirtualClose,
        VirtualCloseResponse,
        Params,
        State,
        Allocation,
        SubAlloc,
        HexAddress,
        HexB256,
        HexU256,
        HexBytes,
        BalancePair,
        OutboxList,
        OutboxEntry,
        OutboxStatus,
        OutboxAction,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "meta", description = "Liveness and this document."),
        (name = "hub", description = "What a client needs to know to open a channel with the hub."),
        (name = "auth", description = "Login with a channel key: challenge, signature, bearer token."),
        (name = "channels", description = "The authenticated client's basic channels with the hub."),
        (name = "virtual-channels", description = "Virtual channels between two clients of the hub, \
            funded by locks in both clients' basic channels: propose, accept or reject, close."),
        (name = "admin", description = "The operator's view (operator token)."),
    )
)]
struct ApiDoc;

/// Adds the bearer schemes `client` and `operator`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token from `POST /v1/auth/token` (64 hex digits)."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator token of the hub's configuration."))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline (what `hub/openapi.json` holds).
pub fn json() -> String {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        // Every map of the document has string keys, so serializing it cannot fail.
        let mut text = document().to_pretty_json().expect("the OpenAPI document serializes to JSON");
        text.push('\n');
        text
    });
    JSON.clone()
}

/// Schemas of `GET /v1/admin/outbox`, whose answer is built with `serde_json::json!` in the
/// handler; the tests check them against the JSON of [`crate::chain::Action`].
mod outbox {
    #![allow(dead_code)]

    use alloy::primitives::{Address, B256, U256};
    use ingrid_client_sdk::openapi::{HexAddress, HexB256, HexU256};
    use serde::Serialize;
    use utoipa::ToSchema;

    /// The newest entries of the outbox.
    #[derive(Serialize, ToSchema)]
    pub struct OutboxList {
        /// Entries, newest first.
        pub entries: Vec<OutboxEntry>,
    }

    /// A transaction the hub owes the chain, and how sending it went.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OutboxEntry {
        /// Entry id (increasing).
        pub id: i64,
        /// The action's kind (as in `action.kind`).
        pub kind: String,
        /// The action.
        pub action: OutboxAction,
        /// Sending status.
        pub status: OutboxStatus,
        /// Tries so far.
        pub attempts: i32,
        /// The last failure, if any.
        pub last_error: Option<String>,
    }

    /// Sending status of an outbox entry.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum OutboxStatus {
        /// Not sent yet, or to be retried.
        Pending,
        /// Sent and mined.
        Done,
        /// Given up.
        Failed,
    }

    /// A transaction the hub owes the chain.
    #[derive(Serialize, ToSchema)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum OutboxAction {
        /// Deposit the hub's share of a basic channel.
        Deposit {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
            /// Asset holder.
            #[schema(value_type = HexAddress)]
            asset: Address,
            /// The hub's required holding.
            #[schema(value_type = HexU256)]
            amount: U256,
        },
        /// Conclude a basic channel from its final state.
        ConcludeFinal {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
            /// Version of the final state.
            version: u64,
        },
        /// Withdraw the hub's payout of a concluded channel.
        Withdraw {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
            /// Asset holder.
            #[schema(value_type = HexAddress)]
            asset: Address,
        },
        /// Register a basic channel on chain with the hub's latest states.
        Register {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
            /// The virtual channel that makes it necessary; none when the operator closes it.
            #[schema(value_type = Option<HexB256>)]
            because: Option<B256>,
        },
        /// Refute a stale registration of a basic channel.
        Refute {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
            /// The stale version.
            registered: u64,
        },
        /// Refute a stale registration of a virtual channel's record.
        RefuteVirtual {
            /// The virtual channel.
            #[schema(value_type = HexB256)]
            id: B256,
            /// The stale version.
            registered: u64,
        },
        /// Conclude a registered basic channel once its timeouts passed.
        Conclude {
            /// Channel.
            #[schema(value_type = HexB256)]
            channel: B256,
        },
    }
}

/// Documentation-only stubs: one per operation, never called.
mod paths {
    #![allow(dead_code)]

    use ingrid_client_sdk::api::{
        ChallengeRequest, ChallengeResponse, ChannelList, ChannelView, ErrorBody, HubInfo, OpenChannelRequest, Quote,
        QuoteRequest, SignatureResponse, StateRequest, TokenRequest, TokenResponse, VirtualAccept, VirtualClose,
        VirtualCloseResponse, VirtualList, VirtualProposal, VirtualView,
    };
    use ingrid_client_sdk::openapi::HexB256;

    use super::outbox::OutboxList;

    /// Liveness
    ///
    /// Answers `ok` while the process serves requests; it does not check the database or the chain.
    #[utoipa::path(get, path = "/healthz", tag = "meta", operation_id = "healthz",
        responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain",
            example = json!("ok"))))]
    fn healthz() {}

    /// This document
    ///
    /// The OpenAPI 3.1 document of this API (the same as `hub/openapi.json` in the repository).
    #[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
        responses((status = 200, description = "The OpenAPI document.", body = Object,
            content_type = "application/json")))]
    fn openapi_json() {}

    /// Prometheus metrics
    ///
    /// The hub's metrics in the Prometheus text format, for an operator dashboard: the hub's coins
    /// locked in virtual channels and free in basic channels per asset, channels by status, HTTP
    /// requests, the database pool, the chain watcher and the outbox (see `hub/src/metrics.rs`).
    /// The gauges of collateral, channels, chain cursor and outbox are read from the database at
    /// every scrape. Aggregates only: no client, channel or key appears.
    #[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
        responses((status = 200, description = "Every metric, with its help text.", body = String,
            content_type = "text/plain; version=0.0.4",
            example = json!("# HELP ingrid_hub_locked The hub's own coins locked in virtual channels, per asset ...\n# TYPE ingrid_hub_locked gauge\ningrid_hub_locked{asset=\"ETH\"} 5000000000000000000\n"))))]
    fn metrics() {}

    /// The hub's identity and terms
    ///
    /// The hub's participant address, the chain and adjudicator signatures are bound to, the
    /// accepted assets and challenge durations: what a client needs to open a channel.
    #[utoipa::path(get, path = "/v1/hub", tag = "hub", operation_id = "hub_info",
        responses((status = 200, description = "The hub's description.", body = HubInfo)))]
    fn hub_info() {}

    /// Get a login challenge
    ///
    /// Returns a text for the client's channel key to sign with EIP-191 `personal_sign`;
    /// exchange the signature at `POST /v1/auth/token` before `expiresAt`. A challenge is good
    /// for one login; issuing one stores nothing.
    #[utoipa::path(post, path = "/v1/auth/challenge", tag = "auth", operation_id = "challenge",
        request_body = ChallengeRequest,
        responses(
            (status = 200, description = "The challenge to sign.", body = ChallengeResponse),
            (status = 400, description = "`malformed_json`: the body is not a `ChallengeRequest`.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 500, description = "`internal`: an unexpected failure; the cause is logged.", body = ErrorBody),
        ))]
    fn challenge() {}

    /// Log in
    ///
    /// Exchanges a challenge signed by `address` for a bearer token of the client routes.
    #[utoipa::path(post, path = "/v1/auth/token", tag = "auth", operation_id = "token",
        request_body = TokenRequest,
        responses(
            (status = 200, description = "The session token.", body = TokenResponse),
            (status = 400, description = "`malformed_json`: the body is not a `TokenRequest`.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: the challenge was not issued by this hub for `address` \
                or was altered, expired, was used already, or is not signed by `address`.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn token() {}

    /// List my channels
    ///
    /// The authenticated client's basic channels, newest first.
    #[utoipa::path(get, path = "/v1/channels", tag = "channels", operation_id = "list_channels",
        security(("client" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most channels to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The channels.", body = ChannelList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn list_channels() {}

    /// Open a channel
    ///
    /// Proposes a basic channel between the client and the hub: its params, the opening state
    /// (version 0, both parties' deposits as balances) and the client's signature on it. The
    /// hub checks it against its terms, stores it, countersigns and queues its own deposit;
    /// the channel is `funding` until both deposits are confirmed on chain.
    #[utoipa::path(post, path = "/v1/channels", tag = "channels", operation_id = "open_channel",
        security(("client" = [])),
        params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer.")),
        request_body = OpenChannelRequest,
        responses(
            (status = 201, description = "Accepted: the hub's signature on the opening state (version 0).",
                body = SignatureResponse),
            (status = 400, description = "`malformed_idempotency_key`: not 1 to 255 visible ASCII characters; \
                `malformed_json`: the body is not an `OpenChannelRequest`.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 409, description = "`channel_exists`: a channel with this id is already open.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused. Params: `invalid_params` (zero or equal participants, not \
                exactly a ledger channel, an app, challenge duration out of the hub's bounds), \
                `hub_not_participant`, `client_not_participant` (the token's address is not the other \
                participant). State: `channel_id_mismatch`, `app_data_not_empty`, `locks_changed` (an opening \
                state holds no locks), `duplicate_asset`, `balance_shape`, `overflow`, `final_state`, \
                `no_assets`, `wrong_version` (not version 0). Terms: `unknown_asset`, `hub_deposit_above_maximum`, `hub_deposit_above_ratio`. \
                `bad_signature`: not the client's signature on the state. `idempotency_key_reused`.",
                body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn open_channel() {}

    /// Get a channel
    ///
    /// One of the authenticated client's channels, with its latest fully signed state.
    #[utoipa::path(get, path = "/v1/channels/{id}", tag = "channels", operation_id = "get_channel",
        security(("client" = [])),
        params(("id" = HexB256, Path, description = "The channel id.")),
        responses(
            (status = 200, description = "The channel.", body = ChannelView),
            (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn get_channel() {}

    /// Update a channel
    ///
    /// Proposes the next state (version + 1) of an `open` channel, signed by the client. The hub
    /// countersigns transfers that keep each asset's total and locks and do not lower its own
    /// balance.
    #[utoipa::path(post, path = "/v1/channels/{id}/updates", tag = "channels", operation_id = "update_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The channel id."),
            ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
                description = "Makes retries safe: a retry with the same key and request replays the first answer."),
        ),
        request_body = StateRequest,
        responses(
            (status = 200, description = "Accepted: the hub's signature on the new state.", body = SignatureResponse),
            (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
                (the body is not a `StateRequest`).", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
            (status = 409, description = "`channel_not_open`: the channel is not `open`; `wrong_version`: not the \
                latest version + 1 (stale or ahead); `channel_final`: the latest state is final.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused: `final_state` (final states go to `/close`), \
                `channel_id_mismatch`, `app_data_not_empty`, `assets_changed`, `duplicate_asset`, `balance_shape`, \
                `invalid_index_map`, `duplicate_lock`, `overflow`, `total_changed`, `locks_changed`, \
                `hub_balance_decreased`, `bad_signature`, `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn update_channel() {}

    /// Close a channel
    ///
    /// Proposes the final state of a `funding` or `open` channel: the latest balances, no locks,
    /// `isFinal` set, signed by the client. The hub countersigns, marks the channel `closing`
    /// and queues the conclusion on chain and its withdrawals.
    #[utoipa::path(post, path = "/v1/channels/{id}/close", tag = "channels", operation_id = "close_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The channel id."),
            ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
                description = "Makes retries safe: a retry with the same key and request replays the first answer."),
        ),
        request_body = StateRequest,
        responses(
            (status = 200, description = "Accepted: the hub's signature on the final state.", body = SignatureResponse),
            (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
                (the body is not a `StateRequest`).", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
            (status = 409, description = "`channel_not_open`: the channel is neither `funding` nor `open` (e.g. \
                already closing); `locks_held`: close its virtual channels first; `wrong_version`: not the latest \
                version + 1; `channel_final`: the latest state is final.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused: `not_final`, `balances_changed`, `channel_id_mismatch`, \
                `app_data_not_empty`, `assets_changed`, `duplicate_asset`, `balance_shape`, `invalid_index_map`, \
                `duplicate_lock`, `overflow`, `total_changed`, `locks_changed`, `bad_signature`, \
                `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn close_channel() {}

    /// Take the hub's collateral top-up
    ///
    /// When the channel's view offers a `topUp` (the hub deposited more and the deposit is
    /// confirmed on chain), the client signs the latest state with the hub's balance of that
    /// asset raised by the amount (version + 1) after checking the deposit on chain; the hub
    /// countersigns it.
    #[utoipa::path(post, path = "/v1/channels/{id}/top-up", tag = "channels", operation_id = "top_up_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The channel id."),
            ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
                description = "Makes retries safe: a retry with the same key and request replays the first answer."),
        ),
        request_body = StateRequest,
        responses(
            (status = 200, description = "Applied: the hub's signature on the topped-up state.", body = SignatureResponse),
            (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json`.",
                body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such channel of this client.", body = ErrorBody),
            (status = 409, description = "`channel_not_open`; `no_top_up`: no confirmed top-up to apply; \
                `wrong_version`: not the latest version + 1.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "`top_up_mismatch`: not exactly the latest state with the hub's balance \
                raised by the top-up; `bad_signature`; `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn top_up_channel() {}

    /// List my virtual channels
    ///
    /// The virtual channels the authenticated client proposed or was proposed, in every status,
    /// newest first.
    #[utoipa::path(get, path = "/v1/virtual-channels", tag = "virtual-channels", operation_id = "list_virtual_channels",
        security(("client" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most virtual channels to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The virtual channels.", body = VirtualList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn list_virtual_channels() {}

    /// Propose a virtual channel
    ///
    /// Proposes a virtual channel to another client of the hub (the peer). The proposer is its
    /// participant 0 and sends its params (`isVirtual`, participants `[proposer, peer]`), its
    /// opening state (version 0, balances per asset `[proposer's deposit, peer's deposit]`, the
    /// parent's assets in their order) signed by the proposer, `validUntil`, and its parent
    /// update: the next version of the proposer's own `open` basic channel with the hub in which
    /// the proposer pays in its deposit and the hub the peer's, into a lock with the virtual
    /// channel's id appended to `locked` (exactly what the SDK's `virtual_channel::lock_in_parent`
    /// computes), signed by the proposer. The hub checks it all but signs nothing yet: it stores
    /// the proposal (`proposed`) for the peer to accept or reject.
    #[utoipa::path(post, path = "/v1/virtual-channels", tag = "virtual-channels",
        operation_id = "propose_virtual_channel",
        security(("client" = [])),
        params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
            description = "Makes retries safe: a retry with the same key and request replays the first answer.")),
        request_body = VirtualProposal,
        responses(
            (status = 201, description = "Stored: the proposal, `proposed`, as both participants see it.",
                body = VirtualView),
            (status = 400, description = "`malformed_idempotency_key`: not 1 to 255 visible ASCII characters; \
                `malformed_json`: the body is not a `VirtualProposal`.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: `parent.state.channelId` is not a basic channel of this \
                client.", body = ErrorBody),
            (status = 409, description = "`parent_not_open`: the parent is not `open`; `parent_in_dispute`: the \
                parent is registered on chain and not concluded; `wrong_version`: the parent update is not the \
                parent's latest version + 1; `insufficient_hub_balance`: the hub's balance in the parent is below \
                the peer's deposit, which the hub locks; `virtual_exists`: a virtual channel with this id exists. \
                Policy: `quote_required` (the hub charges a fee: propose with a quote), `quote_expired`, \
                `client_limit_exceeded`, `total_limit_exceeded`, `fraction_limit_exceeded` (the hub's locked coins \
                per client, in total, as a share of its coins), `too_many_virtual_channels`, \
                `virtual_channels_paused` (the operator paused new virtual channels); each message names the \
                numbers.",
                body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused. Params: `client_not_participant` (the client is not \
                participant 0), `invalid_params` (zero or equal participants, not exactly virtual, an app, the hub \
                as a participant, challenge duration out of the hub's bounds), `challenge_too_long` (longer than \
                the parent's). Opening state: `channel_id_mismatch`, `wrong_version` (not version 0), \
                `app_data_not_empty`, `locks_changed` (an opening state holds no locks), `duplicate_asset`, \
                `balance_shape`, `overflow`, `final_state`, `assets_mismatch` (not the parent's assets in their \
                order), `empty_virtual_channel` (nothing deposited), `virtual_amount_below_minimum`, \
                `virtual_amount_above_maximum`. Quote: `quote_altered` (not signed by this hub as it is), \
                `quote_mismatch` (other terms). `invalid_validity`: `validUntil` is not after \
                now or is further ahead than the hub allows. Parent update: `insufficient_balance` (the client's \
                balance in the parent is below the proposer's deposit), `parent_update_mismatch` (not exactly the \
                parent's latest state with this lock applied). `bad_signature`: not the client's signature on the \
                opening state or on the parent update. `unknown_peer`: participant 1 is not a client of this hub. \
                `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn propose_virtual_channel() {}

    /// Quote a virtual channel
    ///
    /// The fee per asset and the limits that apply to a virtual channel with these terms,
    /// signed by the hub and valid `channels.quote_ttl` seconds (60 by default). Propose with
    /// it: the parent update then also pays the fees to the hub (the client's balance down,
    /// the hub's up by exactly the fee). Stores nothing; limits are checked again when the
    /// virtual channel opens.
    #[utoipa::path(post, path = "/v1/virtual-channels/quote", tag = "virtual channels",
        operation_id = "quote_virtual_channel",
        security(("client" = [])),
        request_body = QuoteRequest,
        responses(
            (status = 200, description = "The signed quote.", body = Quote),
            (status = 400, description = "`malformed_json`: the body is not a `QuoteRequest`.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: `parent` is not a basic channel of this client.",
                body = ErrorBody),
            (status = 409, description = "A limit would be exceeded: `client_limit_exceeded`, \
                `total_limit_exceeded`, `fraction_limit_exceeded`; the message names the numbers.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "`balance_shape` (not one deposit pair per asset of the parent), \
                `invalid_validity`, `virtual_amount_below_minimum`, `virtual_amount_above_maximum`, `overflow`.",
                body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn quote_virtual_channel() {}

    /// Reload the policy
    ///
    /// Reads the configuration file and `INGRID_*` again and takes its policy (collateral on
    /// open, limits, fees, channel rules) for every new decision, without a restart; proposals
    /// keep their fees and quotes stay valid until they expire. `SIGHUP` does the same. Each
    /// process reloads on its own.
    #[utoipa::path(post, path = "/v1/admin/reload", tag = "admin", operation_id = "admin_reload",
        security(("operator" = [])),
        responses(
            (status = 200, description = "Reloaded: `{\"reloaded\": true, \"virtualFees\": bool}`.", body = Object),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 422, description = "`invalid_configuration`: the file does not load or validate, or changes \
                the assets; nothing changed.", body = ErrorBody),
            (status = 500, description = "`internal`: never expected.", body = ErrorBody),
        ))]
    fn admin_reload() {}

    /// Get a virtual channel
    ///
    /// One of the authenticated client's virtual channels (as proposer or peer). With
    /// `unlessStatus` and `waitMs` it is a long poll: the answer comes as soon as the status
    /// is not `unlessStatus` any more, or after `waitMs` (at most 30000), e.g. a proposer
    /// waiting for its peer to accept.
    #[utoipa::path(get, path = "/v1/virtual-channels/{id}", tag = "virtual-channels",
        operation_id = "get_virtual_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The virtual channel id."),
            ("unlessStatus" = Option<ingrid_client_sdk::api::VirtualStatus>, Query, description = "Wait while the status is this one."),
            ("waitMs" = Option<u64>, Query, description = "Longest wait, milliseconds (default 0, at most 30000)."),
        ),
        responses(
            (status = 200, description = "The virtual channel.", body = VirtualView),
            (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex; `bad_request`: \
                `unlessStatus` or `waitMs` is malformed.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn get_virtual_channel() {}

    /// Accept a virtual channel
    ///
    /// Accepts a `proposed` virtual channel; sent by its participant 1 (the peer) with its
    /// signature on the opening state and its parent update: the next version of its own `open`
    /// basic channel with the hub in which it pays in its deposit and the hub the proposer's,
    /// into the virtual channel's lock (the SDK's `virtual_channel::lock_in_parent`), signed by
    /// the peer. The hub checks both parent updates against both parents' latest states,
    /// countersigns both, stores them as the parents' latest states and marks the virtual
    /// channel `open`. It answers its signature on the peer's parent update; the proposer finds
    /// the hub's signature on its own in its parent's latest state (`GET /v1/channels/{id}`).
    #[utoipa::path(post, path = "/v1/virtual-channels/{id}/accept", tag = "virtual-channels",
        operation_id = "accept_virtual_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The virtual channel id."),
            ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
                description = "Makes retries safe: a retry with the same key and request replays the first answer."),
        ),
        request_body = VirtualAccept,
        responses(
            (status = 200, description = "Accepted: the hub's signature on the peer's parent update.",
                body = SignatureResponse),
            (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
                (the body is not a `VirtualAccept`).", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such virtual channel of this client, the client is not \
                its participant 1, or `parent.state.channelId` is no basic channel of this client.", body = ErrorBody),
            (status = 409, description = "`not_proposed`: the virtual channel is not `proposed` (accepted, \
                rejected or closed already); `proposal_expired`: its `validUntil` has passed; `parent_not_open`: a parent is not `open`; `parent_in_dispute`: a \
                parent is registered on chain and not concluded; `wrong_version`: the parent update is not its \
                parent's latest version + 1, or the proposer's parent has moved on since the proposal; \
                `insufficient_hub_balance`: the hub's balance in the peer's parent is below the proposer's \
                deposit, which the hub locks.", body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused: `wrong_parent` (the parent update is for the proposer's \
                parent), `assets_mismatch` (the parent does not hold the \
                virtual channel's assets in their order), `challenge_too_long` (the virtual channel's challenge \
                duration is longer than the parent's), `insufficient_balance` (the client's balance in the parent \
                is below its deposit), `parent_update_mismatch` (not exactly the parent's latest state with this \
                lock applied), `bad_signature` (not the client's signature on the opening state or on the parent \
                update), `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn accept_virtual_channel() {}

    /// Reject a virtual channel
    ///
    /// Declines a `proposed` virtual channel (its participant 1, the peer) or withdraws it (its
    /// participant 0, the proposer). Nothing was signed or locked for a proposal, so nothing
    /// else changes. No request body (a body is
    /// ignored) and no `Idempotency-Key`: repeating it answers 409 `not_proposed`.
    #[utoipa::path(post, path = "/v1/virtual-channels/{id}/reject", tag = "virtual-channels",
        operation_id = "reject_virtual_channel",
        security(("client" = [])),
        params(("id" = HexB256, Path, description = "The virtual channel id.")),
        responses(
            (status = 200, description = "Rejected: the virtual channel, now `rejected`.", body = VirtualView),
            (status = 400, description = "`malformed_channel_id`: `id` is not 32 bytes of hex.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
            (status = 409, description = "`not_proposed`: the virtual channel is not `proposed` (accepted, rejected \
                or closed already).", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn reject_virtual_channel() {}

    /// Close a virtual channel
    ///
    /// Closes an `open` virtual channel from its final state signed by both participants, and
    /// settles one or both parents; sent by either participant. Each parent update is the next
    /// version of a parent with the virtual channel's lock removed and the final balances
    /// credited through the lock's index map (the SDK's `virtual_channel::settle_in_parent`),
    /// signed by that parent's client. The first close records the final state; the virtual
    /// channel is `closed` once both parents are settled and `closing` until then, and a later
    /// close with the same final state settles the other parent. The hub countersigns each
    /// parent update and stores it as that parent's latest state.
    #[utoipa::path(post, path = "/v1/virtual-channels/{id}/close", tag = "virtual-channels",
        operation_id = "close_virtual_channel",
        security(("client" = [])),
        params(
            ("id" = HexB256, Path, description = "The virtual channel id."),
            ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
                description = "Makes retries safe: a retry with the same key and request replays the first answer."),
        ),
        request_body = VirtualClose,
        responses(
            (status = 200, description = "Accepted: the hub's signatures on the parent updates, in request order.",
                body = VirtualCloseResponse),
            (status = 202, description = "Pending (empty `signatures`): the request settles one parent while the \
                other is unsettled and the final state is not fixed on chain yet. The hub records the final state \
                and registers the other parent on chain with it (which fixes it: a final state cannot be \
                refuted); ask again once that registration is confirmed. Never replayed for its idempotency key.",
                body = VirtualCloseResponse),
            (status = 400, description = "`malformed_channel_id`, `malformed_idempotency_key`, `malformed_json` \
                (the body is not a `VirtualClose`).", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing, unknown or expired bearer token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such virtual channel of this client.", body = ErrorBody),
            (status = 409, description = "`not_open`: the virtual channel is neither `open` nor `closing`; \
                `final_state_differs`: another final state is recorded; `parent_settled_or_unknown`: a parent \
                update is for a parent settled already or for no parent of this virtual channel; \
                `parent_not_open`: a parent is not `open`; `parent_in_dispute`: a parent is registered on chain \
                and not concluded; `wrong_version`: a parent update is not its parent's latest version + 1; \
                `virtual_in_dispute`: the virtual channel is registered on chain with another state than this \
                final one (it settles through the chain).",
                body = ErrorBody),
            (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
            (status = 422, description = "Refused. Final state: `not_final`; on the first close also \
                `invalid_final_state` (another channel's id, app data or locks), `assets_changed`, \
                `balance_shape`, `overflow`, `total_changed` (the totals differ from the opening deposits), \
                `bad_signature` (not signed by both participants). Parent updates: `no_parent_update` (`parents` \
                is empty), `duplicate_parent_update` (two updates of one parent), `parent_update_mismatch` (not \
                exactly the parent's latest state with the lock settled), `bad_signature` (not signed by the \
                parent's client). `idempotency_key_reused`.", body = ErrorBody),
            (status = 500, description = "`internal`: the database or signing failed; the cause is logged.",
                body = ErrorBody),
        ))]
    fn close_virtual_channel() {}

    /// List all channels
    ///
    /// Every client's basic channels, newest first.
    #[utoipa::path(get, path = "/v1/admin/channels", tag = "admin", operation_id = "admin_channels",
        security(("operator" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most channels to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The channels.", body = ChannelList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_channels() {}

    /// List the outbox
    ///
    /// The hub's own chain transactions (deposits, conclusions, withdrawals), newest first.
    #[utoipa::path(get, path = "/v1/admin/outbox", tag = "admin", operation_id = "admin_outbox",
        security(("operator" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most entries to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The entries.", body = OutboxList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_outbox() {}

    /// Readiness
    ///
    /// Ready when the database and the chain node both answer within 2 seconds.
    #[utoipa::path(get, path = "/readyz", tag = "meta", operation_id = "readyz",
        responses(
            (status = 200, description = "Ready: `{\"database\": \"ok\", \"chain\": \"ok\", \"block\": <head>}`.",
                body = Object),
            (status = 503, description = "`not_ready`: the message names what is unreachable.", body = ErrorBody),
        ))]
    fn readyz() {}

    /// List clients
    ///
    /// Every client with its number of basic channels (all, and open), newest first.
    #[utoipa::path(get, path = "/v1/admin/clients", tag = "admin", operation_id = "admin_clients",
        security(("operator" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most clients to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The clients.", body = crate::admin::ClientList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_clients() {}

    /// List all virtual channels
    ///
    /// Every virtual channel, newest first.
    #[utoipa::path(get, path = "/v1/admin/virtual-channels", tag = "admin", operation_id = "admin_virtual_channels",
        security(("operator" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most channels to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The virtual channels.", body = VirtualList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_virtual_channels() {}

    /// The hub's collateral
    ///
    /// Per asset: the hub's coins locked in virtual channels and free in open basic channels,
    /// all coins locked, and the utilisation (the same figures as the metrics).
    #[utoipa::path(get, path = "/v1/admin/collateral", tag = "admin", operation_id = "admin_collateral",
        security(("operator" = [])),
        responses(
            (status = 200, description = "Collateral per asset.", body = crate::admin::CollateralList),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_collateral() {}

    /// List disputes
    ///
    /// Registrations on chain of the hub's basic channels and brokered virtual channels.
    #[utoipa::path(get, path = "/v1/admin/disputes", tag = "admin", operation_id = "admin_disputes",
        security(("operator" = [])),
        params(("limit" = Option<i64>, Query,
            description = "Most disputes to return; default 100, clamped to 1..=1000.", example = 100)),
        responses(
            (status = 200, description = "The disputes, newest first.", body = crate::admin::DisputeList),
            (status = 400, description = "`bad_request`: `limit` is not an integer.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_disputes() {}

    /// Operator status
    ///
    /// Whether new virtual channels are paused, and whether the answering process leads.
    #[utoipa::path(get, path = "/v1/admin/status", tag = "admin", operation_id = "admin_status",
        security(("operator" = [])),
        responses(
            (status = 200, description = "The status.", body = crate::admin::StatusView),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: never expected (no I/O).", body = ErrorBody),
        ))]
    fn admin_status() {}

    /// Pause new virtual channels
    ///
    /// Proposals and accepts are refused with `409 virtual_channels_paused` by every hub process
    /// (within a second); open and closing virtual channels and basic channels are served.
    #[utoipa::path(post, path = "/v1/admin/pause", tag = "admin", operation_id = "admin_pause",
        security(("operator" = [])),
        responses(
            (status = 200, description = "Paused.", body = crate::admin::StatusView),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_pause() {}

    /// Resume new virtual channels
    #[utoipa::path(post, path = "/v1/admin/resume", tag = "admin", operation_id = "admin_resume",
        security(("operator" = [])),
        responses(
            (status = 200, description = "Resumed.", body = crate::admin::StatusView),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: the operator API is disabled.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_resume() {}

    /// Close a client's basic channel on chain
    ///
    /// The leader registers the channel with the hub's latest state (and the newest states of
    /// its virtual channels), then concludes and withdraws after the challenge duration.
    #[utoipa::path(post, path = "/v1/admin/channels/{id}/close", tag = "admin", operation_id = "admin_close_channel",
        security(("operator" = [])),
        params(("id" = HexB256, Path, description = "The basic channel id.")),
        responses(
            (status = 202, description = "Enqueued.", body = crate::admin::ForceClose),
            (status = 400, description = "`malformed_channel_id`.", body = ErrorBody),
            (status = 401, description = "`unauthorized`: missing or wrong operator token.", body = ErrorBody),
            (status = 404, description = "`not_found`: no such channel, or the operator API is disabled.",
                body = ErrorBody),
            (status = 409, description = "`channel_closed`: the channel is closed already.", body = ErrorBody),
            (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
        ))]
    fn admin_close_channel() {}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use alloy::primitives::{Address, B256, Bytes, U256};
    use ingrid_client_sdk::openapi::check_conforms;
    use serde_json::{Value, json};

    use super::*;
    use crate::chain::Action;

    /// The routes of `api::router`, as (method, path). Keep in step with `router()`: the tests
    /// compare this list with the router's source and with the document.
    const ROUTES: &[(&str, &str)] = &[
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/v1/hub"),
        ("POST", "/v1/auth/challenge"),
        ("POST", "/v1/auth/token"),
        ("GET", "/v1/channels"),
        ("POST", "/v1/channels"),
        ("GET", "/v1/channels/{id}"),
        ("POST", "/v1/channels/{id}/updates"),
        ("POST", "/v1/channels/{id}/close"),
        ("GET", "/v1/virtual-channels"),
        ("POST", "/v1/virtual-channels"),
        ("GET", "/v1/virtual-channels/{id}"),
        ("POST", "/v1/virtual-channels/{id}/accept"),
        ("POST", "/v1/virtual-channels/{id}/reject"),
        ("POST", "/v1/virtual-channels/{id}/close"),
        ("GET", "/v1/admin/channels"),
        ("GET", "/v1/admin/outbox"),
        ("GET", "/readyz"),
        ("GET", "/v1/admin/clients"),
        ("GET", "/v1/admin/virtual-channels"),
        ("GET", "/v1/admin/collateral"),
        ("GET", "/v1/admin/disputes"),
        ("GET", "/v1/admin/status"),
        ("POST", "/v1/admin/pause"),
        ("POST", "/v1/admin/resume"),
        ("POST", "/v1/admin/channels/{id}/close"),
        ("POST", "/v1/virtual-channels/quote"),
        ("POST", "/v1/admin/reload"),
        ("POST", "/v1/channels/{id}/top-up"),
    ];

    /// Client POSTs that read no body and take no `Idempotency-Key` (a repeat is refused).
    const BODYLESS_POSTS: &[&str] = &[
        "/v1/virtual-channels/{id}/reject",
        "/v1/admin/pause",
        "/v1/admin/resume",
        "/v1/admin/channels/{id}/close",
        "/v1/admin/reload",
    ];

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn listed() -> BTreeSet<(String, String)> {
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    fn document_json() -> Value {
        serde_json::from_str(&json()).expect("the document is JSON")
    }

    /// Every (method, path) operation of the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document_json();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// The index just past the bracket that closes the one at `open`, skipping string literals.
    fn closing(text: &[u8], open: usize) -> usize {
        let mut depth = 0usize;
        let mut i = open;
        while i < text.len() {
            match text[i] {
                b'"' => {
                    i += 1;
                    while text[i] != b'"' {
                        i += if text[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        panic!("unbalanced brackets in api.rs from byte {open}");
    }

    /// The (method, path) pairs of every `.route("path", get(..).post(..))` in the source of
    /// `api::router`.
    fn routes_in_source(source: &str) -> BTreeSet<(String, String)> {
        let start = source.find("pub fn router(").expect("api.rs has `pub fn router(`");
        let body_open = start + source[start..].find('{').expect("router body");
        let body = &source[body_open..closing(source.as_bytes(), body_open)];
        for unsupported in [".nest(", ".nest_service(", ".merge(", ".route_service("] {
            assert!(!body.contains(unsupported), "router() uses {unsupported}: teach this test to read it");
        }
        let text = body.as_bytes();
        let mut out = BTreeSet::new();
        let mut from = 0;
        while let Some(found) = body[from..].find(".route(") {
            let open = from + found + ".route".len();
            let close = closing(text, open);
            let args = &body[open + 1..close - 1];
            from = close;
            // The path: the first string literal.
            let path_start = args.find('"').expect("route path literal") + 1;
            let path_len = args[path_start..].find('"').expect("end of route path");
            let path = &args[path_start..path_start + path_len];
            // The method router: calls like `get(..)` and `.post(..)` at the top level.
            let rest = args[path_start + path_len + 1..].trim_start().strip_prefix(',').expect("route arguments");
            let bytes = rest.as_bytes();
            let mut i = 0;
            let mut methods = Vec::new();
            while i < bytes.len() {
                let c = bytes[i];
                if c.is_ascii_alphabetic() || c == b'_' {
                    let word_end = i + rest[i..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .unwrap_or(rest.len() - i);
                    let word = &rest[i..word_end];
                    let after = rest[word_end..].trim_start();
                    assert!(after.starts_with('('), "unexpected `{word}` in the method router of {path}");
                    assert!(METHODS.contains(&word), "method router `{word}` of {path}: teach this test to read it");
                    methods.push(word.to_uppercase());
                    let open = word_end + (rest[word_end..].len() - after.len());
                    i = closing(bytes, open);
                    continue;
                }
                let trailing_comma = c == b',' && rest[i + 1..].trim().is_empty();
                assert!(
                    c.is_ascii_whitespace() || c == b'.' || trailing_comma,
                    "unexpected {:?} in the method router of {path}",
                    c as char
                );
                i += 1;
            }
            assert!(!methods.is_empty(), "no method in the route {path}");
            for method in methods {
                assert!(out.insert((method.clone(), path.to_string())), "{method} {path} is routed twice");
            }
        }
        out
    }

    #[test]
    fn openapi_json_is_committed_and_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = json();
        if std::env::var_os("INGRID_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("write hub/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "hub/openapi.json is stale or missing; regenerate it with \
             `INGRID_WRITE_OPENAPI=1 cargo test -p ingrid-hub openapi` and commit it"
        );
    }

    #[test]
    fn the_route_list_mirrors_the_router_source() {
        let in_source = routes_in_source(include_str!("api.rs"));
        let listed = listed();
        assert_eq!(
            in_source.difference(&listed).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routed in api::router but not in ROUTES of openapi.rs: add them there and document them"
        );
        assert_eq!(
            listed.difference(&in_source).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in ROUTES of openapi.rs but not routed in api::router"
        );
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let documented = documented();
        let listed = listed();
        assert_eq!(
            listed.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routes missing from the OpenAPI document"
        );
        assert_eq!(
            documented.difference(&listed).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented operations the router does not serve"
        );
    }

    #[test]
    fn the_route_parser_reads_multi_method_and_closure_routes() {
        let source = r#"
            pub fn router(state: AppState) -> Router {
                Router::new()
                    .route("/a", get(|| async { ([(header::CONTENT_TYPE, "x(")], f()) }))
                    .route(
                        "/b/{id}",
                        get(list).post(create),
                    )
                    .fallback(|| async { "no )" })
            }
        "#;
        let expected: BTreeSet<_> = [("GET", "/a"), ("GET", "/b/{id}"), ("POST", "/b/{id}")]
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(routes_in_source(source), expected);
    }

    #[test]
    fn operations_declare_their_auth_parameters_and_errors() {
        let doc = document_json();
        let schemes = &doc["components"]["securitySchemes"];
        for name in ["client", "operator"] {
            assert_eq!(schemes[name]["scheme"], json!("bearer"), "security scheme {name}");
        }
        let mut operation_ids = BTreeSet::new();
        for (method, path) in ROUTES {
            let op = &doc["paths"][path][method.to_lowercase()];
            assert!(operation_ids.insert(op["operationId"].to_string()), "duplicate operationId at {method} {path}");
            let security = if path.starts_with("/v1/admin/") {
                Some("operator")
            } else if path.starts_with("/v1/channels") || path.starts_with("/v1/virtual-channels") {
                Some("client")
            } else {
                None
            };
            let statuses: BTreeSet<&str> =
                op["responses"].as_object().expect("responses").keys().map(String::as_str).collect();
            match security {
                Some(scheme) => {
                    assert_eq!(op["security"], json!([{ scheme: [] }]), "{method} {path} security");
                    assert!(statuses.contains("401"), "{method} {path} documents no 401");
                }
                None => assert!(op.get("security").is_none(), "{method} {path} needs no auth"),
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named =
                |name: &str, place: &str| params.iter().any(|p| p["name"] == json!(name) && p["in"] == json!(place));
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_start_matches('{').trim_end_matches('}');
                assert!(named(name, "path"), "{method} {path} does not declare the path parameter {name}");
                assert!(
                    statuses.contains("400") && statuses.contains("404"),
                    "{method} {path}: malformed or unknown id"
                );
            }
            let bodyless = BODYLESS_POSTS.contains(path);
            // A quote is a read with a body: nothing is stored, so a retry is safe without a key.
            let read = *path == "/v1/virtual-channels/quote";
            let idempotent = *method == "POST" && security == Some("client") && !bodyless && !read;
            assert_eq!(named("Idempotency-Key", "header"), idempotent, "{method} {path} Idempotency-Key");
            if bodyless {
                assert!(op.get("requestBody").is_none(), "{method} {path} reads no body");
            } else if *method == "POST" {
                assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{method} {path} body");
                assert!(statuses.contains("400") && statuses.contains("413"), "{method} {path}: malformed bodies");
            }
            if path.starts_with("/v1/") && *path != "/v1/hub" {
                assert!(statuses.contains("500"), "{method} {path} documents no 500");
            }
            // Error answers of the hub's own making carry an ErrorBody.
            for (status, response) in op["responses"].as_object().expect("responses") {
                if let Some(schema) = response["content"].get("application/json").map(|c| &c["schema"])
                    && status.starts_with(['4', '5'])
                {
                    assert_eq!(schema["$ref"], json!("#/components/schemas/ErrorBody"), "{method} {path} {status}");
                }
            }
        }
    }

    #[tokio::test]
    async fn the_router_serves_the_document() {
        use axum::body::{Body, to_bytes};
        use axum::http::{Request, StatusCode, header};
        use tower::ServiceExt;

        let router = crate::api::router(crate::api::tests::offline_state());

        let request = Request::get("/openapi.json").body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = to_bytes(response.into_body(), usize::MAX).await.expect("body");
        assert_eq!(std::str::from_utf8(&body).expect("utf-8"), json());

        let request = Request::post("/openapi.json").body(Body::empty()).expect("request");
        let response = router.oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    // ------------------------------------------------------------------ wire JSON vs schemas

    fn sample_state() -> ingrid_client_sdk::State {
        ingrid_client_sdk::State {
            channelId: B256::repeat_byte(0xc1),
            version: 3,
            outcome: ingrid_client_sdk::Allocation {
                assets: vec![Address::repeat_byte(0xee)],
                balances: vec![[U256::from(600u64), U256::from(400u64)]],
                locked: vec![ingrid_client_sdk::SubAlloc {
                    id: B256::repeat_byte(0x5b),
                    balances: vec![U256::from(5u64)],
                    indexMap: [0, 1],
                }],
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    fn sample_params() -> ingrid_client_sdk::Params {
        ingrid_client_sdk::Params {
            challengeDuration: 3600,
            nonce: U256::from(42u64),
            participants: [Address::repeat_byte(0x11), Address::repeat_byte(0x22)],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        }
    }

    fn signature() -> Bytes {
        Bytes::from(vec![0xab; 65])
    }

    fn sample_view(settled: Option<Vec<[U256; 2]>>) -> ChannelView {
        ChannelView {
            id: B256::repeat_byte(0xc1),
            params: sample_params(),
            status: ChannelStatus::Open,
            hub_index: 1,
            latest: FullySignedState { state: sample_state(), sigs: [signature(), signature()] },
            funding: vec![Funding {
                asset: Address::repeat_byte(0xee),
                participant: Address::repeat_byte(0x22),
                amount: U256::from(400u64),
            }],
            top_up: settled
                .is_none()
                .then(|| ingrid_client_sdk::api::TopUp { asset: Address::repeat_byte(0xee), amount: U256::from(3u64) }),
            settled,
        }
    }

    /// Checks `value`'s JSON against the component `name` of the document.
    fn conforms(name: &str, value: &impl serde::Serialize) {
        let doc = document_json();
        let json = serde_json::to_value(value).expect("serialize");
        let schema = doc["components"]["schemas"].get(name).unwrap_or_else(|| panic!("no component {name}"));
        check_conforms(&json, schema, &doc).unwrap_or_else(|e| panic!("{name}: {e}\n{json:#}"));
    }

    #[test]
    fn wire_types_serialize_as_their_schemas_say() {
        conforms("ErrorBody", &ErrorBody { error: "wrong_version".into(), message: "version 3, expected 4".into() });
        conforms("ChallengeRequest", &ChallengeRequest { address: Address::repeat_byte(0x22) });
        conforms("ChallengeResponse", &ChallengeResponse { challenge: "Ingrid login\n...".into(), expires_at: 1_700 });
        conforms(
            "TokenRequest",
            &TokenRequest {
                address: Address::repeat_byte(0x22),
                challenge: "Ingrid login".into(),
                signature: signature(),
            },
        );
        conforms("TokenResponse", &TokenResponse { token: "ab".repeat(32), expires_at: 1_700 });
        conforms(
            "HubInfo",
            &HubInfo {
                address: Address::repeat_byte(0x11),
                chain_id: 31337,
                adjudicator: Address::repeat_byte(0xad),
                assets: vec![
                    AssetInfo { symbol: "ETH".into(), holder: Address::repeat_byte(0xee), token: None },
                    AssetInfo {
                        symbol: "USDC".into(),
                        holder: Address::repeat_byte(0xe2),
                        token: Some(Address::repeat_byte(0x7c)),
                    },
                ],
                challenge_duration: [60, 86_400],
                confirmations: 2,
                virtual_fees: true,
            },
        );
        conforms(
            "OpenChannelRequest",
            &OpenChannelRequest { params: sample_params(), state: sample_state(), signature: signature() },
        );
        conforms("StateRequest", &StateRequest { state: sample_state(), signature: signature() });
        conforms(
            "SignatureResponse",
            &SignatureResponse { channel_id: B256::repeat_byte(0xc1), version: 0, signature: signature() },
        );
        for status in [ChannelStatus::Funding, ChannelStatus::Open, ChannelStatus::Closing, ChannelStatus::Closed] {
            conforms("ChannelStatus", &status);
        }
        conforms("ChannelView", &sample_view(None));
        conforms("ChannelList", &ChannelList { channels: vec![sample_view(Some(vec![[U256::ZERO, U256::MAX]]))] });
    }

    fn sample_virtual_view(status: VirtualStatus, final_state: Option<FullySignedState>) -> VirtualView {
        let mut params = sample_params();
        params.ledger = false;
        params.isVirtual = true;
        let mut initial = sample_state();
        initial.version = 0;
        initial.outcome.locked.clear();
        let accepted = status != VirtualStatus::Proposed && status != VirtualStatus::Rejected;
        VirtualView {
            id: B256::repeat_byte(0x5b),
            params,
            status,
            valid_until: 1_700_000_000,
            close_requested: status == VirtualStatus::Open,
            parents: [B256::repeat_byte(0xc1), if accepted { B256::repeat_byte(0xc2) } else { B256::ZERO }],
            initial,
            initial_sigs: [signature(), if accepted { signature() } else { Bytes::new() }],
            proposed_parent: StateRequest { state: sample_state(), signature: signature() },
            settled: [final_state.is_some(), status == VirtualStatus::Closed],
            fees: vec![U256::from(7)],
            final_state,
        }
    }

    #[test]
    fn virtual_channel_wire_types_serialize_as_their_schemas_say() {
        let parent = StateRequest { state: sample_state(), signature: signature() };
        let view = sample_virtual_view(VirtualStatus::Proposed, None);
        conforms(
            "VirtualProposal",
            &VirtualProposal {
                params: view.params.clone(),
                state: view.initial.clone(),
                signature: signature(),
                parent: parent.clone(),
                valid_until: 1_700_000_000,
                quote: None,
            },
        );
        let quote = Quote {
            proposer: Address::repeat_byte(0x11),
            peer: Address::repeat_byte(0x22),
            parent: B256::repeat_byte(0x33),
            deposits: vec![[U256::from(2), U256::from(3)]],
            valid_until: 1_700_000_000,
            fees: vec![U256::from(9)],
            expires_at: 1_699_999_000,
            signature: signature(),
        };
        conforms("Quote", &quote);
        conforms(
            "QuoteRequest",
            &QuoteRequest {
                peer: quote.peer,
                parent: quote.parent,
                deposits: quote.deposits.clone(),
                valid_until: quote.valid_until,
            },
        );
        conforms("VirtualAccept", &VirtualAccept { signature: signature(), parent: parent.clone() });
        let statuses = [
            VirtualStatus::Proposed,
            VirtualStatus::Open,
            VirtualStatus::Closing,
            VirtualStatus::Closed,
            VirtualStatus::Rejected,
        ];
        for status in statuses {
            conforms("VirtualStatus", &status);
        }
        let mut last = sample_state();
        last.isFinal = true;
        last.outcome.locked.clear();
        let signed = FullySignedState { state: last.clone(), sigs: [signature(), signature()] };
        conforms("VirtualView", &view);
        conforms("VirtualView", &sample_virtual_view(VirtualStatus::Closing, Some(signed.clone())));
        conforms(
            "VirtualList",
            &VirtualList {
                channels: statuses
                    .iter()
                    .map(|s| sample_virtual_view(*s, (*s == VirtualStatus::Closed).then(|| signed.clone())))
                    .collect(),
            },
        );
        conforms(
            "VirtualClose",
            &VirtualClose { state: last, sigs: [signature(), signature()], parents: vec![parent.clone(), parent] },
        );
        conforms(
            "VirtualCloseResponse",
            &VirtualCloseResponse {
                signatures: vec![SignatureResponse {
                    channel_id: B256::repeat_byte(0xc1),
                    version: 4,
                    signature: signature(),
                }],
            },
        );
        // A wrong member name fails, here too.
        let mut json = serde_json::to_value(&view).expect("serialize");
        json["valid_until"] = json["validUntil"].take();
        json.as_object_mut().expect("object").remove("validUntil");
        let doc = document_json();
        assert!(check_conforms(&json, &doc["components"]["schemas"]["VirtualView"], &doc).is_err());
    }

    #[test]
    fn the_outbox_schema_matches_the_handlers_json() {
        let channel = B256::repeat_byte(0xc1);
        let asset = Address::repeat_byte(0xee);
        let actions = [
            Action::Deposit { channel, asset, amount: U256::from(400u64) },
            Action::ConcludeFinal { channel, version: 9 },
            Action::Withdraw { channel, asset },
        ];
        // What `admin_outbox` answers, one entry per kind of action.
        let entries: Vec<Value> = actions
            .iter()
            .zip(["pending", "done", "failed"])
            .enumerate()
            .map(|(id, (action, status))| {
                json!({
                    "id": id, "kind": action.kind(), "action": action, "status": status, "attempts": 1,
                    "lastError": if status == "failed" { json!("reverted") } else { Value::Null },
                })
            })
            .collect();
        conforms("OutboxList", &json!({ "entries": entries }));
    }

    #[test]
    fn a_wrong_field_name_fails_the_conformance_check() {
        let doc = document_json();
        let mut view = serde_json::to_value(sample_view(None)).expect("serialize");
        view["hub_index"] = view["hubIndex"].take();
        view.as_object_mut().expect("object").remove("hubIndex");
        assert!(check_conforms(&view, &doc["components"]["schemas"]["ChannelView"], &doc).is_err());
    }
}
