//! The hub client against a scripted HTTP server: it waits as long as a 429's `Retry-After`
//! asks before asking again (any request: a 429 means the hub did nothing), repeats no other
//! refusal of a request that is not safe to repeat, and pages lists with the hub's cursor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ingrid_client_sdk::api::VirtualStatus;
use ingrid_client_sdk::client::{ClientError, HubClient, RetryPolicy};

/// What the server answers, in order, and what it was asked.
#[derive(Default)]
struct Script {
    answers: Mutex<Vec<Response>>,
    asked: Mutex<Vec<HashMap<String, String>>>,
}

fn refusal(status: StatusCode, code: &str, retry_after: Option<&str>) -> Response {
    let body = axum::Json(serde_json::json!({ "error": code, "message": code }));
    match retry_after {
        Some(secs) => (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response(),
        None => (status, body).into_response(),
    }
}

async fn answer(State(script): State<Arc<Script>>, Query(query): Query<HashMap<String, String>>) -> Response {
    script.asked.lock().expect("lock").push(query);
    let mut answers = script.answers.lock().expect("lock");
    if answers.is_empty() { StatusCode::GONE.into_response() } else { answers.remove(0) }
}

async fn serve(answers: Vec<Response>) -> anyhow::Result<(SocketAddr, Arc<Script>)> {
    let script = Arc::new(Script { answers: Mutex::new(answers), ..Default::default() });
    let app = Router::new()
        .route("/v1/virtual-channels", get(answer))
        .route("/v1/virtual-channels/{id}/reject", post(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, script))
}

fn client(addr: SocketAddr) -> HubClient {
    HubClient::new(&format!("http://{addr}"))
        .with_token("t")
        .with_retry(RetryPolicy { attempts: 3, first_delay: Duration::from_millis(1) })
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_names_even_for_a_write() -> anyhow::Result<()> {
    let (addr, script) = serve(vec![
        refusal(StatusCode::TOO_MANY_REQUESTS, "client_rate_limited", Some("1")),
        refusal(StatusCode::CONFLICT, "not_proposed", None),
    ])
    .await?;
    let started = Instant::now();
    // A reject carries no idempotency key: only a 429 makes it safe to send again.
    let err = client(addr).reject_virtual(Default::default()).await.expect_err("the second answer is a 409");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}, Retry-After asked 1 s", started.elapsed());
    assert!(matches!(&err, ClientError::Refused { status: 409, .. }), "{err:?}");
    assert_eq!(script.asked.lock().expect("lock").len(), 2);
    Ok(())
}

#[tokio::test]
async fn other_refusals_of_a_write_are_not_repeated() -> anyhow::Result<()> {
    let (addr, script) = serve(vec![refusal(StatusCode::SERVICE_UNAVAILABLE, "paused", Some("1"))]).await?;
    let err = client(addr).reject_virtual(Default::default()).await.expect_err("503");
    assert!(
        matches!(&err, ClientError::Refused { status: 503, retry_after: Some(1), .. }),
        "the wait is passed on: {err:?}"
    );
    assert_eq!(script.asked.lock().expect("lock").len(), 1, "a write without a key is sent once");
    Ok(())
}

#[tokio::test]
async fn a_429_that_persists_ends_after_the_policys_attempts() -> anyhow::Result<()> {
    let limited = || refusal(StatusCode::TOO_MANY_REQUESTS, "ip_rate_limited", Some("0"));
    let (addr, script) = serve(vec![limited(), limited(), limited(), limited()]).await?;
    let err = client(addr).virtual_channels().await.expect_err("limited throughout");
    assert!(matches!(&err, ClientError::Refused { status: 429, .. }), "{err:?}");
    assert_eq!(script.asked.lock().expect("lock").len(), 3, "RetryPolicy::attempts");
    Ok(())
}

#[tokio::test]
async fn lists_page_with_the_hubs_cursor() -> anyhow::Result<()> {
    let page = |next: Option<&str>| {
        let mut body = serde_json::json!({ "channels": [] });
        if let Some(next) = next {
            body["next"] = next.into();
        }
        axum::Json(body).into_response()
    };
    let (addr, script) = serve(vec![page(Some("1764547200000000.ab+c/")), page(None)]).await?;
    let hub = client(addr);
    let first = hub.virtual_channels().await?;
    let cursor = first.next.expect("a next page");
    let filtered = hub.virtual_channels_page(Some(&cursor), Some(VirtualStatus::Proposed)).await?;
    assert!(filtered.next.is_none());
    let asked = script.asked.lock().expect("lock");
    assert_eq!(asked[0].get("cursor"), None);
    assert_eq!(asked[1].get("cursor").map(String::as_str), Some("1764547200000000.ab+c/"), "sent back as given");
    assert_eq!((asked[0].get("status"), asked[1].get("status").map(String::as_str)), (None, Some("proposed")));
    assert!(asked.iter().all(|q| q.get("limit").map(String::as_str) == Some("1000")));
    Ok(())
}
