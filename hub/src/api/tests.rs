//! Handler tests that need no database.

use super::*;
use axum::body::Body as HttpBody;
use axum::http::Request;
use tower::ServiceExt;

/// A hub whose database pool never connects: enough for what is answered before any query.
pub(crate) fn offline_state() -> AppState {
    offline_state_with(crate::config::LimitsConfig::default())
}

/// [`offline_state`] with `limits`.
pub(crate) fn offline_state_with(limits: crate::config::LimitsConfig) -> AppState {
    let key = PrivateKeySigner::random();
    let deployment = ingrid_client_sdk::Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) };
    let hub = Hub {
        rules: std::sync::RwLock::new(Arc::new(Rules {
            hub: key.address(),
            deployment,
            assets: Vec::new(),
            channels: Default::default(),
            apps: Default::default(),
        })),
        info: HubInfo {
            address: key.address(),
            chain_id: 31337,
            adjudicator: deployment.adjudicator,
            assets: Vec::new(),
            challenge_duration: [60, 600],
            confirmations: 1,
            virtual_fees: false,
            apps: Default::default(),
            app_challenge_duration: None,
        },
        challenges: Challenges::new(&[1], key.address(), 31337),
        requests: Default::default(),
        virtual_changed: Default::default(),
        metrics: crate::metrics::Metrics::new(&[]),
        key,
        auth: AuthConfig::default(),
        operator_token: None,
        paused: Default::default(),
        config_source: None,
        limits: limits::Limits::new(&limits),
        readiness: Default::default(),
        refresh: Duration::from_secs(1),
        sessions: Arc::new(crate::sessions::Sessions::new(16, Duration::from_secs(60))),
        provider: alloy::providers::Provider::erased({
            ingrid_client_sdk::tls::install_crypto_provider();
            alloy::providers::ProviderBuilder::new().connect_http("http://127.0.0.1:1".parse().expect("url"))
        }),
    };
    let pool = sqlx::PgPool::connect_lazy("postgres://localhost:1/unused").expect("lazy pool");
    AppState { pool, hub: Arc::new(hub) }
}

async fn error_of(response: Response) -> (StatusCode, ErrorBody) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("an ErrorBody"))
}

#[tokio::test]
async fn layer_refusals_carry_an_error_body() {
    let router = router(offline_state());
    let huge = Request::post("/v1/channels")
        .header(header::CONTENT_LENGTH, (2 << 20).to_string())
        .body(HttpBody::from(vec![b' '; 2 << 20]))
        .expect("request");
    let (status, body) = error_of(router.clone().oneshot(huge).await.expect("response")).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));

    let malformed = Request::post("/v1/auth/challenge").body(HttpBody::from("{")).expect("request");
    let (status, body) = error_of(router.clone().oneshot(malformed).await.expect("response")).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::BAD_REQUEST, "malformed_json"));

    let wrong_method = Request::delete("/v1/hub").body(HttpBody::empty()).expect("request");
    let (status, body) = error_of(router.oneshot(wrong_method).await.expect("response")).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn a_challenge_is_issued_without_the_database() {
    let state = offline_state();
    let hub = state.hub.info.address;
    let request = Request::post("/v1/auth/challenge")
        .body(HttpBody::from(format!("{{\"address\":\"{hub}\"}}")))
        .expect("request");
    let response = router(state).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_with_retry_after_before_any_work() {
    let limits = crate::config::LimitsConfig { ip_per_second: 1, ip_burst: 2, ..Default::default() };
    let router = router(offline_state_with(limits));
    let from = |ip: &str| {
        let mut request = Request::get("/v1/hub").body(HttpBody::empty()).expect("request");
        let peer: std::net::SocketAddr = format!("{ip}:4000").parse().expect("address");
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        request
    };
    for _ in 0..2 {
        assert_eq!(router.clone().oneshot(from("10.1.1.1")).await.expect("response").status(), StatusCode::OK);
    }
    let refused = router.clone().oneshot(from("10.1.1.1")).await.expect("response");
    assert_eq!(refused.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
    let (status, body) = error_of(refused).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::TOO_MANY_REQUESTS, "ip_rate_limited"));
    assert_eq!(router.clone().oneshot(from("10.1.1.2")).await.expect("response").status(), StatusCode::OK);
    // A refused request is refused before its body or bearer token is looked at: this hub's
    // database is unreachable, and the answer is still a 429, not a 500.
    let mut with_token = from("10.1.1.1");
    with_token.headers_mut().insert(header::AUTHORIZATION, "Bearer x".parse().expect("header"));
    let (status, _) = error_of(router.oneshot(with_token).await.expect("response")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn logins_from_one_address_are_rated_apart_from_its_other_requests() {
    let limits = crate::config::LimitsConfig { logins_per_minute: 2, ..crate::config::LimitsConfig::generous() };
    let router = router(offline_state_with(limits));
    let request = |path: &str| {
        let mut request = if path == "/v1/hub" {
            Request::get(path).body(HttpBody::empty()).expect("request")
        } else {
            let body = format!(r#"{{"address":"{}"}}"#, Address::repeat_byte(7));
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(HttpBody::from(body))
                .expect("request")
        };
        let peer: std::net::SocketAddr = "10.2.2.2:4000".parse().expect("address");
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        request
    };
    for _ in 0..2 {
        let answer = router.clone().oneshot(request("/v1/auth/challenge")).await.expect("response");
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let (status, body) = error_of(router.clone().oneshot(request("/v1/auth/challenge")).await.expect("response")).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::TOO_MANY_REQUESTS, "login_rate_limited"));
    let other = router.oneshot(request("/v1/hub")).await.expect("response");
    assert_eq!(other.status(), StatusCode::OK, "the address's other requests are not touched");
}

#[test]
fn each_listener_serves_its_routes() {
    let public = Listener::Public { operator_apart: true, metrics_apart: true };
    assert!(public.serves("/v1/channels") && public.serves("/readyz") && public.serves("/healthz"));
    assert!(!public.serves("/v1/admin/channels") && !public.serves("/metrics"));
    let together = Listener::Public { operator_apart: false, metrics_apart: false };
    assert!(together.serves("/v1/admin/channels") && together.serves("/metrics"));
    assert!(Listener::Operator.serves("/v1/admin/reload") && !Listener::Operator.serves("/v1/channels"));
    assert!(Listener::Metrics.serves("/metrics") && Listener::Metrics.serves("/readyz"));
    assert!(!Listener::Metrics.serves("/v1/hub") && !Listener::Metrics.serves("/v1/admin/channels"));
}

#[tokio::test]
async fn readiness_answers_from_the_last_probe_and_refuses_a_stale_one() {
    let state = offline_state();
    let get = || Request::get("/readyz").body(HttpBody::empty()).expect("request");
    let (status, body) = error_of(router(state.clone()).oneshot(get()).await.expect("response")).await;
    assert_eq!((status, body.error.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "not_ready"), "no probe yet");
    *state.hub.readiness.write().expect("lock") = Readiness { database: true, chain: true, block: 7, at: now_secs() };
    assert_eq!(router(state.clone()).oneshot(get()).await.expect("response").status(), StatusCode::OK);
    *state.hub.readiness.write().expect("lock") = Readiness { database: true, chain: false, block: 7, at: now_secs() };
    let (status, body) = error_of(router(state.clone()).oneshot(get()).await.expect("response")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.message.contains("chain"), "{}", body.message);
    *state.hub.readiness.write().expect("lock") =
        Readiness { database: true, chain: true, block: 7, at: now_secs() - 60 };
    let (status, body) = error_of(router(state).oneshot(get()).await.expect("response")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.message.contains("no recent probe"), "{}", body.message);
}

#[test]
fn an_integral_float_is_the_integer_it_is_and_a_fraction_is_refused() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct T {
        n: u64,
        list: Vec<u16>,
    }
    assert_eq!(parse::<T>(br#"{"n": 1.0, "list": [2e0, 3]}"#).ok(), Some(T { n: 1, list: vec![2, 3] }));
    assert!(parse::<T>(br#"{"n": 1.5, "list": []}"#).is_err());
    assert!(parse::<T>(br#"{"n": -1.0, "list": []}"#).is_err(), "negative stays refused");
    assert!(parse::<T>(br#"{"n": 1e300, "list": []}"#).is_err(), "beyond exact integers stays refused");
}
