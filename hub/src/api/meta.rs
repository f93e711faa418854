//! Service routes: liveness, readiness, metrics, the OpenAPI document, and the hub's public info.

use super::*;

/// Liveness
///
/// Answers `ok` while the process serves requests; it does not check the database or the chain.
#[utoipa::path(get, path = "/healthz", tag = "meta", operation_id = "healthz",
    responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain",
        example = json!("ok"))))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// This document
///
/// The OpenAPI 3.1 document of this API (the same as `hub/openapi.json` in the repository).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document.", body = Object,
        content_type = "application/json")))]
pub(super) async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document_json())
}

/// Readiness
///
/// Ready when the last probe (every `metrics_refresh_ms`, 5 s by default; each waits at most
/// 2 s) found the database and the chain node answering, and is recent. Answers from that
/// probe: a request costs no query.
#[utoipa::path(get, path = "/readyz", tag = "meta", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: `{\"database\": \"ok\", \"chain\": \"ok\", \"block\": <head>, \
            \"checkedAt\": <unix time of the probe>}`.", body = Object),
        (status = 503, description = "`not_ready`: the message names what is unreachable, or that the last \
            probe is too old.", body = ErrorBody),
    ))]
pub(super) async fn readyz(State(app): State<AppState>) -> Response {
    let r = *app.hub.readiness.read().unwrap_or_else(|p| p.into_inner());
    let stale_after = 3 * app.hub.refresh.as_secs().max(1) + 2;
    let mut failing: Vec<&str> = [(r.database, "database"), (r.chain, "chain")]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect();
    if r.at == 0 || now_secs().saturating_sub(r.at) > stale_after {
        failing = vec!["no recent probe"];
    }
    if failing.is_empty() {
        return Json(serde_json::json!({ "database": "ok", "chain": "ok", "block": r.block, "checkedAt": r.at }))
            .into_response();
    }
    let body = ErrorBody { error: "not_ready".into(), message: format!("unreachable: {}", failing.join(", ")) };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Prometheus metrics
///
/// The hub's metrics in the Prometheus text format, for an operator dashboard: the hub's coins
/// locked in virtual channels and free in basic channels per asset, channels by status, HTTP
/// requests, the database pool, the chain watcher and the outbox (see `hub/src/metrics.rs`).
/// The gauges of collateral, channels, chain cursor and outbox are read from the database
/// every `metrics_refresh_ms` (5 s by default; `ingrid_metrics_refreshed_at_seconds` tells
/// when), not per scrape. Aggregates only: no client, channel or key appears.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
    responses((status = 200, description = "Every metric, with its help text.", body = String,
        content_type = "text/plain; version=0.0.4",
        example = json!("# HELP ingrid_hub_locked The hub's own coins locked in virtual channels, per asset ...\n# TYPE ingrid_hub_locked gauge\ningrid_hub_locked{asset=\"ETH\"} 5000000000000000000\n"))))]
pub(super) async fn metrics(State(app): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], app.hub.metrics.render()).into_response()
}

// ------------------------------------------------------------------ handlers

/// The hub's identity and terms
///
/// The hub's participant address, the chain and adjudicator signatures are bound to, the
/// accepted assets and challenge durations: what a client needs to open a channel.
#[utoipa::path(get, path = "/v1/hub", tag = "hub", operation_id = "hub_info",
    responses((status = 200, description = "The hub's description.", body = HubInfo)))]
pub(super) async fn hub_info(State(app): State<AppState>) -> Json<HubInfo> {
    let virtual_fees = app.hub.rules().assets.iter().any(|a| a.charges_fees());
    Json(HubInfo { virtual_fees, ..app.hub.info.clone() })
}
