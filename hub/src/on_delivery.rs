//! The README demo's pay-on-delivery sale (the conditional payment app, after the fair game):
//! Carol downloads a file from Dave's HTTP server in chunks she names by hash (she holds the
//! file's manifest), paying 0.01 ETH a chunk in a conditional-payment virtual channel
//! through the same hub. Each payment is Carol's offer against the chunk's hash, and Dave is
//! paid only by revealing the chunk itself: neither trusts the other for a single chunk. A
//! chunk Dave cannot deliver (Carol asks by a hash his file does not have) costs nothing.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256, keccak256};
use anyhow::ensure;
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use ingrid_client_sdk::Role;
use ingrid_client_sdk::app::conditional_payment;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::p2p::CloseAnswer;
use ingrid_client_sdk::paid_http::{
    PayingClient, PayingError, PaymentLayer, ProposalNotice, SellerConfig, seller_routes,
};
use ingrid_client_sdk::wallet::Deposit;

use crate::demo::{dev_wallet, ether_pair, ether_text, first_asset, milli};
use crate::server::Running;

/// Chunks in Dave's file, and their size in bytes (a claim reveals at most 800).
const CHUNKS: usize = 8;
const CHUNK_SIZE: usize = 512;

/// What the sale ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Chunks delivered, each checked against the manifest.
    pub delivered: usize,
    /// Carol's and Dave's basic channels (client, hub) before and after.
    pub before: [[U256; 2]; 2],
    /// The same after the close.
    pub after: [[U256; 2]; 2],
    /// The price of a chunk.
    pub price: U256,
    /// Whether the undeliverable request was refused with nothing paid.
    pub undeliverable_refused: bool,
    /// Requests the hub received while Carol bought.
    pub requests_while_buying: u64,
}

impl DeliveryReport {
    /// Checks the sale: Carol paid exactly the chunks delivered, Dave got it, the hub's coins
    /// did not move and it saw no request while Carol bought.
    pub fn check(&self) -> anyhow::Result<()> {
        let paid = self.price * U256::from(self.delivered);
        ensure!(self.delivered == CHUNKS, "{} chunks delivered", self.delivered);
        ensure!(self.after[0][0] + paid == self.before[0][0], "Carol pays the chunks: {self:?}");
        ensure!(self.after[1][0] == self.before[1][0] + paid, "Dave is paid the chunks: {self:?}");
        ensure!(
            self.after[0][1] + self.after[1][1] == self.before[0][1] + self.before[1][1],
            "the hub's coins moved: {self:?}"
        );
        ensure!(self.undeliverable_refused, "an undeliverable chunk was not refused");
        ensure!(self.requests_while_buying == 0, "the hub saw {} requests", self.requests_while_buying);
        Ok(())
    }
}

/// Chunk `n` of Dave's file.
fn chunk(n: usize) -> Vec<u8> {
    let seed = keccak256(n.to_be_bytes());
    (0..CHUNK_SIZE).map(|i| seed[i % 32] ^ (i / 32) as u8).collect()
}

/// Runs the sale on the running `hub` (at `hub_url`) with dev accounts 5 (Carol) and 6
/// (Dave), their stores under `dir`, in asset `eth`; prints each step to `out`.
pub async fn run(
    out: &mut impl Write,
    hub: &Running,
    hub_url: &str,
    devnet: &Devnet,
    dir: &Path,
    eth: Address,
) -> anyhow::Result<DeliveryReport> {
    let carol = Arc::new(dev_wallet(devnet, hub_url, dir, 5, "carol").await?);
    let dave = Arc::new(dev_wallet(devnet, hub_url, dir, 6, "dave").await?);
    let half = milli(500);
    let x = carol.open_channel(&[Deposit { asset: eth, mine: half, hub: U256::ZERO }], 3600).await?;
    let y = dave.open_channel(&[Deposit { asset: eth, mine: half, hub: half }], 3600).await?;
    carol.wait_until_open(x, Duration::from_secs(30)).await?;
    dave.wait_until_open(y, Duration::from_secs(30)).await?;
    let before = [first_asset(&carol, x)?, first_asset(&dave, y)?];

    // Dave serves his file's chunks, each sold on delivery.
    let price = milli(10);
    let chunks = get(|UrlPath(n): UrlPath<usize>| async move {
        if n < CHUNKS { Ok(chunk(n)) } else { Err(StatusCode::NOT_FOUND) }
    });
    let router = Router::new()
        .route("/file/{n}", chunks)
        .route_layer(PaymentLayer::on_delivery(dave.clone(), price, eth))
        .merge(seller_routes(dave.clone(), SellerConfig { parent: y, max_buyer_deposit: milli(100) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let app = carol.apps().conditional_payment;
    ensure!(!app.is_zero(), "the hub allows no conditional payments");
    let deposit = milli(100);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let opening = conditional_payment::opening(Role::First);
    let v = carol.propose_app(dave.address(), x, &[[deposit, U256::ZERO]], 600, now + 3600, app, opening).await?;
    let http = ingrid_client_sdk::tls::http_client();
    let notice = http.post(format!("{url}/ingrid/proposals")).json(&ProposalNotice { id: v }).send().await?;
    ensure!(notice.status().is_success(), "Dave refused the channel: {}", notice.text().await?);
    carol.wait_virtual_open(v, Duration::from_secs(30)).await?;
    writeln!(
        out,
        "Carol (Carol, hub) = {}   Dave (Dave, hub) = {}: Carol buys Dave's file, {CHUNKS} chunks of {CHUNK_SIZE} bytes at {} ETH, each paid only on delivery, in virtual channel {}… (app {app})",
        ether_pair(before[0]),
        ether_pair(before[1]),
        ether_text(price),
        &v.to_string()[..10]
    )?;

    // Carol holds the file's manifest: the keccak-256 of each chunk.
    let manifest: Vec<B256> = (0..CHUNKS).map(|n| keccak256(chunk(n))).collect();
    let requests = hub.requests();
    let paying = PayingClient::new(http.clone(), carol.clone(), v, eth, price);
    let mut delivered = 0;
    for (n, lock) in manifest.iter().enumerate() {
        let answer = paying.get_on_delivery(&format!("{url}/file/{n}"), *lock).await?;
        ensure!(keccak256(&answer.body) == *lock, "chunk {n} does not match the manifest");
        delivered += 1;
    }
    let record = carol.virtual_record(v)?.latest.state;
    writeln!(
        out,
        "{delivered} chunks delivered and checked against the manifest; the channel holds (Carol, Dave) = {} at version {}",
        ether_pair(record.outcome.balances[0]),
        record.version
    )?;
    // A chunk named by a hash Dave's file does not have: his answer does not open it.
    let wrong = paying.get_on_delivery(&format!("{url}/file/0"), keccak256(b"not in the file")).await;
    let undeliverable_refused = matches!(&wrong, Err(PayingError::Refused { body, .. }) if body.error == "not_deliverable")
        && carol.virtual_record(v)?.latest.state == record;
    writeln!(
        out,
        "a chunk asked by a hash Dave cannot open: refused ({}), nothing paid",
        wrong.err().map_or_else(String::new, |e| e.to_string())
    )?;
    let requests_while_buying = hub.requests() - requests;

    let close = carol.close_request(v).await?;
    let answer: CloseAnswer =
        http.post(format!("{url}/ingrid/close")).json(&close).send().await?.error_for_status()?.json().await?;
    carol.finish_close(v, &close, answer).await?;
    dave.sync_channel(y).await?;
    server.abort();
    let after = [first_asset(&carol, x)?, first_asset(&dave, y)?];
    writeln!(
        out,
        "closed into both parents: Carol = {}   Dave = {}   hub requests while buying: {requests_while_buying}",
        ether_pair(after[0]),
        ether_pair(after[1])
    )?;
    Ok(DeliveryReport { delivered, before, after, price, undeliverable_refused, requests_while_buying })
}
