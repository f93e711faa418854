//! The OpenAPI 3.1 document of the HTTP API, generated with `utoipa`, served at
//! `GET /openapi.json` and kept in the repository as `hub/openapi.json`.
//!
//! Each operation is declared on its handler (`#[utoipa::path]` in [`crate::api`] and
//! [`crate::admin`]), and [`crate::api::routes`] builds the router and the document from one
//! list; this module holds what is not per operation ([`base`]: the description, the tags and
//! the security schemes) and the tests. They fail when the committed file differs from
//! [`crate::api::document_json`] (regenerate it with
//! `INGRID_WRITE_OPENAPI=1 cargo test -p ingrid-hub --lib openapi`), when the router does not
//! serve exactly the documented methods of a documented path, and when a wire type's JSON does
//! not conform to its schema.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

/// What the document says besides its operations.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ingrid hub API", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
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

/// The document without operations: info, description, tags and security schemes.
/// [`crate::api::routes`] adds every operation and the schemas they use.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Adds to every operation of `document` the answers any route may give, so that a client
/// generated from the document knows them: 429 (the limits of `[limits]`: `ip_rate_limited`,
/// `client_rate_limited`, `too_many_concurrent_requests`, with `Retry-After`) and 503
/// (`timeout`). An operation that documents its own 429 keeps it, extended by these reasons.
pub fn add_every_route_answers(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Type};
    let error_body = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let limited = |own: Option<&str>| {
        let reasons = "`ip_rate_limited` (requests per second from one address), `client_rate_limited` \
            (requests per second of one account), `too_many_concurrent_requests` (requests of one account at \
            once); try again after `Retry-After` seconds.";
        let description = match own {
            Some(own) => format!("{own} Also {reasons}"),
            None => format!("A limit against abuse: {reasons}"),
        };
        ResponseBuilder::new()
            .description(description)
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            )
            .content("application/json", error_body())
            .build()
    };
    let timeout = ResponseBuilder::new()
        .description("`timeout`: the request was not answered within 30 s.")
        .content("application/json", error_body())
        .build();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            let own = match responses.get("429") {
                Some(RefOr::T(r)) => Some(r.description.clone()),
                _ => None,
            };
            responses.insert("429".into(), RefOr::T(limited(own.as_deref())));
            responses.entry("503".into()).or_insert_with(|| RefOr::T(timeout.clone()));
        }
    }
}

/// `document` as pretty JSON with a trailing newline (what `hub/openapi.json` holds).
pub fn to_json(document: &utoipa::openapi::OpenApi) -> String {
    // Every map of the document has string keys, so serializing it cannot fail.
    let mut text = document.to_pretty_json().expect("the OpenAPI document serializes to JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use alloy::primitives::{Address, B256, Bytes, U256};
    use ingrid_client_sdk::api::{
        AssetInfo, ChallengeRequest, ChallengeResponse, ChannelList, ChannelStatus, ChannelView, ErrorBody,
        FullySignedState, Funding, HubInfo, OpenChannelRequest, Quote, QuoteRequest, SignatureResponse, StateRequest,
        TokenRequest, TokenResponse, VirtualAccept, VirtualClose, VirtualCloseResponse, VirtualList, VirtualProposal,
        VirtualStatus, VirtualView,
    };
    use ingrid_client_sdk::openapi::check_conforms;
    use serde_json::{Value, json};

    use crate::chain::Action;

    /// Client POSTs that read no body and take no `Idempotency-Key` (a repeat is refused).
    const BODYLESS_POSTS: &[&str] = &[
        "/v1/virtual-channels/{id}/reject",
        "/v1/admin/pause",
        "/v1/admin/resume",
        "/v1/admin/channels/{id}/close",
        "/v1/admin/reload",
    ];

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn document_json() -> Value {
        serde_json::from_str(&crate::api::document_json()).expect("the document is JSON")
    }

    /// Every (method, path) operation of the document, the method upper case.
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

    #[test]
    fn openapi_json_is_committed_and_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = crate::api::document_json();
        if std::env::var_os("INGRID_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("write hub/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "hub/openapi.json is stale or missing; regenerate it with \
             `INGRID_WRITE_OPENAPI=1 cargo test -p ingrid-hub --lib openapi` and commit it"
        );
    }

    /// The router and the document come from one list ([`crate::api::routes`]); this checks
    /// the router as served: every documented operation reaches a handler, and every other
    /// method of a documented path answers 405.
    #[tokio::test]
    async fn the_router_serves_exactly_the_documented_methods() {
        use axum::body::{Body, to_bytes};
        use axum::http::{Method, Request, StatusCode};
        use tower::ServiceExt;

        let router = crate::api::router(crate::api::tests::offline_state());
        let documented = documented();
        assert!(documented.len() >= 31, "only {} operations documented", documented.len());
        let id = format!("{}", B256::repeat_byte(0xc1));
        // What the fallback answers: an unknown path.
        let unknown = Request::get("/v1/nothing-here").body(Body::empty()).expect("request");
        let response = router.clone().oneshot(unknown).await.expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let fallback = to_bytes(response.into_body(), 1 << 16).await.expect("body");

        let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
        for path in paths {
            let uri = path.replace("{id}", &id);
            // HEAD is served by GET, CONNECT is not routable.
            for method in ["GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE"] {
                let request = Request::builder()
                    .method(Method::from_bytes(method.as_bytes()).expect("method"))
                    .uri(&uri)
                    .body(Body::empty())
                    .expect("request");
                let answer = tokio::time::timeout(Duration::from_millis(250), router.clone().oneshot(request)).await;
                if !documented.contains(&(method.to_string(), path.clone())) {
                    let response =
                        answer.unwrap_or_else(|_| panic!("{method} {path}: no quick answer")).expect("response");
                    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not documented");
                    continue;
                }
                // Still running after the wait: a handler is at work (on the database or the chain).
                let Ok(response) = answer else { continue };
                let response = response.expect("response");
                let status = response.status();
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
                let body = to_bytes(response.into_body(), usize::MAX).await.expect("body");
                assert!(
                    !(status == StatusCode::NOT_FOUND && body == fallback),
                    "{method} {path} is documented but answered by the fallback"
                );
            }
        }
    }

    #[test]
    fn operations_declare_their_auth_parameters_and_errors() {
        let doc = document_json();
        let schemes = &doc["components"]["securitySchemes"];
        for name in ["client", "operator"] {
            assert_eq!(schemes[name]["scheme"], json!("bearer"), "security scheme {name}");
        }
        let tags: BTreeSet<&str> =
            doc["tags"].as_array().expect("tags").iter().map(|t| t["name"].as_str().expect("tag name")).collect();
        let mut operation_ids = BTreeSet::new();
        for (method, path) in documented() {
            let (method, path) = (method.as_str(), path.as_str());
            let op = &doc["paths"][path][method.to_lowercase()];
            assert!(operation_ids.insert(op["operationId"].to_string()), "duplicate operationId at {method} {path}");
            let op_tags = op["tags"].as_array().cloned().unwrap_or_default();
            assert_eq!(op_tags.len(), 1, "{method} {path} has one tag");
            assert!(tags.contains(op_tags[0].as_str().unwrap_or_default()), "{method} {path}: undeclared tag");
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
            let bodyless = BODYLESS_POSTS.contains(&path);
            // A quote is a read with a body: nothing is stored, so a retry is safe without a key.
            let read = path == "/v1/virtual-channels/quote";
            let idempotent = method == "POST" && security == Some("client") && !bodyless && !read;
            assert_eq!(named("Idempotency-Key", "header"), idempotent, "{method} {path} Idempotency-Key");
            if bodyless {
                assert!(op.get("requestBody").is_none(), "{method} {path} reads no body");
            } else if method == "POST" {
                assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{method} {path} body");
                assert!(statuses.contains("400") && statuses.contains("413"), "{method} {path}: malformed bodies");
            }
            if path.starts_with("/v1/") && path != "/v1/hub" {
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
        assert_eq!(std::str::from_utf8(&body).expect("utf-8"), crate::api::document_json());

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
            hub_index: ingrid_protocol::Role::Second,
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
                apps: ingrid_client_sdk::app::AppDeployment {
                    coin_flip: Address::repeat_byte(0xc1),
                    ..Default::default()
                },
                app_challenge_duration: Some(3_600),
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
        conforms(
            "ChannelList",
            &ChannelList {
                channels: vec![sample_view(Some(vec![[U256::ZERO, U256::MAX]]))],
                next: Some("1.ab".into()),
            },
        );
    }

    fn sample_virtual_view(status: VirtualStatus, final_state: Option<FullySignedState>) -> VirtualView {
        let mut params = sample_params();
        params.ledger = false;
        params.isVirtual = true;
        let mut initial = sample_state();
        initial.version = 0;
        initial.outcome.locked.clear();
        let accepted = !matches!(status, VirtualStatus::Proposed | VirtualStatus::Rejected | VirtualStatus::Expired);
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
        for status in VirtualStatus::ALL {
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
                channels: VirtualStatus::ALL
                    .iter()
                    .map(|s| sample_virtual_view(*s, (*s == VirtualStatus::Closed).then(|| signed.clone())))
                    .collect(),
                next: None,
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
        let (channel, asset, amount) = (B256::repeat_byte(0xc1), Address::repeat_byte(0xee), U256::from(400u64));
        let actions = [
            Action::Deposit { channel, asset, amount },
            Action::ConcludeFinal { channel, version: 9 },
            Action::Withdraw { channel, asset },
            Action::Register { channel, because: Some(B256::repeat_byte(0x5b)) },
            Action::Register { channel, because: None },
            Action::Refute { channel, registered: 3 },
            Action::RefuteVirtual { id: B256::repeat_byte(0x5b), registered: 2 },
            Action::Conclude { channel },
            Action::TopUp { channel, asset, amount },
        ];
        // What `admin::outbox` answers, from the rows as `db::outbox_views` reads them.
        let entries: Vec<crate::admin::OutboxEntry> = actions
            .iter()
            .zip(["pending", "done", "failed"].into_iter().cycle())
            .enumerate()
            .map(|(id, (action, status))| {
                crate::admin::OutboxEntry::from(crate::db::OutboxView {
                    id: id as i64,
                    kind: action.kind().to_string(),
                    action: serde_json::to_value(action).expect("serialize"),
                    status: status.to_string(),
                    attempts: 1,
                    last_error: (status == "failed").then(|| "reverted".to_string()),
                })
            })
            .collect();
        conforms("OutboxList", &crate::admin::OutboxList { entries, next: Some("17".into()) });
        // The schema has one variant per kind of action, and this test tries every kind.
        let doc = document_json();
        let variants = doc["components"]["schemas"]["OutboxAction"]["oneOf"].as_array().expect("oneOf").len();
        let kinds: BTreeSet<&str> = actions.iter().map(Action::kind).collect();
        assert_eq!(variants, kinds.len(), "add the new kind of action to this test");
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
