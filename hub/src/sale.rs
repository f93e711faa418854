//! The seed's application (section 4.1) as the README demo: a Buyer buys 100 nanoservices
//! at 0.01 ETH from a Seller, as 10 sequential microtransactions through a real hub (Postgres
//! and anvil). Each opens a virtual channel with 0.1 ETH from the Buyer and nothing from the
//! Seller, pays 10 × 0.01 ETH over the Seller's paid HTTP endpoint (no hub request), and
//! closes back into both basic channels. Finally both basic channels close on chain.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, U256, keccak256};
use anyhow::{Context, ensure};
use axum::Router;
use axum::routing::get;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::p2p::CloseAnswer;
use ingrid_client_sdk::paid_http::{PayingClient, PaymentLayer, ProposalNotice, SellerConfig, seller_routes};
use ingrid_client_sdk::wallet::Deposit;

use crate::demo::{dev_wallet, ether_pair, ether_text, first_asset, milli};
use crate::dev::{deploy_stack, fresh_database, local_config, postgres_server};
use crate::server;

/// Microtransactions, and nanoservices bought in each.
const ROUNDS: usize = 10;
const PER_ROUND: usize = 10;

/// What the sale ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleReport {
    /// The Buyer's basic channel (Buyer, hub) after the last microtransaction.
    pub buyer_channel: [U256; 2],
    /// The Seller's basic channel (Seller, hub) after the last microtransaction.
    pub seller_channel: [U256; 2],
    /// Requests the hub received in all.
    pub hub_requests: u64,
    /// Requests the hub received while the Buyer paid.
    pub hub_requests_while_paying: u64,
    /// Paid through each basic channel on chain (Buyer's and Seller's): (client, hub).
    pub on_chain: [[U256; 2]; 2],
    /// The fair game played after the sale.
    pub game: crate::fair_game::GameReport,
    /// The pay-on-delivery sale after the game.
    pub delivery: crate::on_delivery::DeliveryReport,
}

impl SaleReport {
    /// Checks the sale's figures: the Buyer paid 1 ETH, the Seller got it, the hub is neutral
    /// and saw no payment.
    pub fn check(&self) -> anyhow::Result<()> {
        let ether = milli(1000);
        ensure!(self.buyer_channel == [U256::ZERO, ether], "buyer channel {:?}", self.buyer_channel);
        ensure!(self.seller_channel == [ether * U256::from(2), U256::ZERO], "seller channel {:?}", self.seller_channel);
        ensure!(
            self.hub_requests_while_paying == 0,
            "the hub saw {} requests during payments",
            self.hub_requests_while_paying
        );
        ensure!(
            self.on_chain == [[U256::ZERO, ether], [ether * U256::from(2), U256::ZERO]],
            "on chain {:?}",
            self.on_chain
        );
        self.game.check()?;
        self.delivery.check()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Runs the sale on a fresh database (on `$DATABASE_URL`'s server, or a private cluster) and
/// a fresh anvil, printing each step to `out`.
pub async fn run(out: &mut impl Write) -> anyhow::Result<SaleReport> {
    let scratch = tempfile::tempdir()?;
    let (_cluster, server_url) = postgres_server("demo")?;
    let devnet = Devnet::start().context("starting anvil (run scripts/setup.sh first)")?;
    let hub_key = devnet.key(0);
    let stack = deploy_stack(&devnet, &hub_key, scratch.path()).await?;
    let database = fresh_database(&server_url, "demo").await?;
    let hub = server::start(local_config(database, &devnet, &stack, "127.0.0.1:0".parse()?, 0, 100)).await?;
    let hub_url = format!("http://{}", hub.addr);
    let eth = stack.assets[0].holder;
    writeln!(
        out,
        "hub {} serving on {hub_url} (Postgres, anvil at {})",
        hub_key.address(),
        devnet.anvil.endpoint_url()
    )?;

    let buyer = Arc::new(dev_wallet(&devnet, &hub_url, scratch.path(), 1, "buyer").await?);
    let seller = Arc::new(dev_wallet(&devnet, &hub_url, scratch.path(), 2, "seller").await?);
    let one = milli(1000);
    let b = buyer.open_channel(&[Deposit { asset: eth, mine: one, hub: U256::ZERO }], 3600).await?;
    let s = seller.open_channel(&[Deposit { asset: eth, mine: one, hub: one }], 3600).await?;
    buyer.wait_until_open(b, Duration::from_secs(30)).await?;
    seller.wait_until_open(s, Duration::from_secs(30)).await?;
    writeln!(
        out,
        "basic channels funded on chain: Buyer (Buyer, hub) = {}   Seller (Seller, hub) = {}",
        ether_pair(first_asset(&buyer, b)?),
        ether_pair(first_asset(&seller, s)?)
    )?;

    // The Seller's nanoservice: 0.01 ETH a request, paid in a virtual channel with the Buyer.
    let price = milli(10);
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = served.clone();
    let app = Router::new()
        .route(
            "/nanoservice",
            get(move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move { format!("nanoservice answer #{n}: {}", keccak256(n.to_be_bytes())) }
            }),
        )
        .route_layer(PaymentLayer::new(seller.clone(), price, eth))
        .merge(seller_routes(seller.clone(), SellerConfig { parent: s, max_buyer_deposit: milli(100) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let seller_url = format!("http://{}", listener.local_addr()?);
    let seller_server = tokio::spawn(async move { axum::serve(listener, app).await });
    writeln!(out, "Seller sells nanoservices at {} ETH on {seller_url}/nanoservice", ether_text(price))?;

    let http = ingrid_client_sdk::tls::http_client();
    let mut while_paying = 0;
    for round in 1..=ROUNDS {
        let v = buyer.propose_virtual(seller.address(), b, &[[milli(100), U256::ZERO]], 600, now() + 3600).await?;
        let notice = http.post(format!("{seller_url}/ingrid/proposals")).json(&ProposalNotice { id: v }).send().await?;
        ensure!(notice.status().is_success(), "the Seller refused the virtual channel: {}", notice.text().await?);
        buyer.wait_virtual_open(v, Duration::from_secs(30)).await?;

        let before = hub.requests();
        let paying = PayingClient::new(http.clone(), buyer.clone(), v, eth, price);
        for _ in 0..PER_ROUND {
            let answer = paying.get(&format!("{seller_url}/nanoservice")).await?;
            ensure!(answer.status == 200, "nanoservice answered {}", answer.status);
        }
        while_paying += hub.requests() - before;

        let close = buyer.close_request(v).await?;
        let answer: CloseAnswer = http
            .post(format!("{seller_url}/ingrid/close"))
            .json(&close)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        buyer.finish_close(v, &close, answer).await?;
        seller.sync_channel(s).await?;
        writeln!(
            out,
            "microtransaction {round:>2}: {PER_ROUND} nanoservices paid in virtual channel {}…   Buyer = {}   Seller = {}",
            &v.to_string()[..10],
            ether_pair(first_asset(&buyer, b)?),
            ether_pair(first_asset(&seller, s)?)
        )?;
    }
    let (buyer_channel, seller_channel) = (first_asset(&buyer, b)?, first_asset(&seller, s)?);
    let hub_requests = hub.requests();
    writeln!(
        out,
        "after {} nanoservices: Buyer (Buyer, hub) = {}   Seller (Seller, hub) = {}",
        served.load(std::sync::atomic::Ordering::Relaxed),
        ether_pair(buyer_channel),
        ether_pair(seller_channel)
    )?;
    writeln!(
        out,
        "hub requests: {hub_requests} in all (logins, opens, funding waits, virtual channel opens and closes), {while_paying} while paying"
    )?;

    // Both basic channels close on chain.
    buyer.close(b).await?;
    seller.close(s).await?;
    let paid_b = buyer.withdraw(b, Duration::from_secs(60)).await?;
    let paid_s = seller.withdraw(s, Duration::from_secs(60)).await?;
    let provider = devnet.provider(&hub_key);
    let hub_b = settled_hub_share(&provider, eth, b).await?;
    let hub_s = settled_hub_share(&provider, eth, s).await?;
    let on_chain = [[paid_b[0], hub_b], [paid_s[0], hub_s]];
    writeln!(
        out,
        "settled on chain: Buyer's channel pays (Buyer, hub) = {}   Seller's pays (Seller, hub) = {}",
        ether_pair(on_chain[0]),
        ether_pair(on_chain[1])
    )?;
    writeln!(out, "the hub put {} ETH in and takes {} ETH out: neutral", ether_text(one), ether_text(hub_b + hub_s))?;
    seller_server.abort();

    writeln!(out, "\n== A fair game (section 4.3): a coin flip inside a virtual channel, through the same hub")?;
    let game = crate::fair_game::run(out, &hub, &hub_url, &devnet, scratch.path(), eth).await?;
    writeln!(
        out,
        "\n== Pay on delivery: a file's chunks named by hash, each paid only by revealing it, through the same hub"
    )?;
    let delivery = crate::on_delivery::run(out, &hub, &hub_url, &devnet, scratch.path(), eth).await?;
    hub.stop().await;
    Ok(SaleReport {
        buyer_channel,
        seller_channel,
        hub_requests,
        hub_requests_while_paying: while_paying,
        on_chain,
        game,
        delivery,
    })
}

/// The hub's payout from a concluded channel, from the `OutcomeSet` event of its asset holder
/// (the holding itself may already be withdrawn by the hub's outbox). Wallets open basic
/// channels as `[client, hub]`, so the hub is participant 1.
async fn settled_hub_share(
    provider: &alloy::providers::DynProvider,
    asset: alloy::primitives::Address,
    channel: B256,
) -> anyhow::Result<U256> {
    use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let holder = EthAssetHolder::new(asset, provider);
    loop {
        let events = holder.OutcomeSet_filter().topic1(channel).from_block(0).query().await?;
        if let Some((event, _)) = events.into_iter().next() {
            return Ok(event.balances[1]);
        }
        ensure!(tokio::time::Instant::now() < deadline, "channel {channel} not settled on chain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
