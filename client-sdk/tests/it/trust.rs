//! A hub that lies about its contracts is refused by the SDK before any coins move, and a
//! login challenge of another form is not signed. The hub here is a fake one (a tiny axum
//! server), since the point is a lying hub; the chain is a real anvil with the contracts.

use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ingrid_client_sdk::api::{AssetInfo, ChallengeRequest, ChallengeResponse, ErrorBody, HubInfo, TokenResponse};
use ingrid_client_sdk::chain::{self, Asset, Contracts};
use ingrid_client_sdk::client::{ClientError, HubClient};
use ingrid_client_sdk::devnet::{Devnet, anvil_binary};
use ingrid_client_sdk::login::{ChallengeError, LoginChallenge};
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::trust::{TrustError, TrustedDeployment};
use ingrid_client_sdk::wallet::{Deposit, Trust, Wallet, WalletError};

/// What the fake hub says, and the requests it saw.
#[derive(Default)]
struct Fake {
    info: Option<HubInfo>,
    /// A challenge text and declared expiry to answer instead of a well-formed one.
    challenge: Option<(String, u64)>,
    seen: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn lock(fake: &Shared) -> std::sync::MutexGuard<'_, Fake> {
    fake.lock().unwrap_or_else(|e| e.into_inner())
}

async fn hub_info(State(fake): State<Shared>) -> Response {
    let mut f = lock(&fake);
    f.seen.push("GET /v1/hub".into());
    axum::Json(f.info.clone()).into_response()
}

async fn challenge(State(fake): State<Shared>, axum::Json(req): axum::Json<ChallengeRequest>) -> Response {
    let mut f = lock(&fake);
    f.seen.push("POST /v1/auth/challenge".into());
    let info = f.info.clone().expect("info set");
    let (challenge, expires_at) = f.challenge.clone().unwrap_or_else(|| {
        let c = LoginChallenge {
            hub: info.address,
            chain_id: info.chain_id,
            address: req.address,
            nonce: rand::random(),
            expires_at: now() + 300,
            mac: B256::repeat_byte(0x11),
        };
        (c.text(), c.expires_at)
    });
    axum::Json(ChallengeResponse { challenge, expires_at }).into_response()
}

async fn token(State(fake): State<Shared>) -> Response {
    lock(&fake).seen.push("POST /v1/auth/token".into());
    axum::Json(TokenResponse { token: "fake".into(), expires_at: now() + 3600 }).into_response()
}

/// Any other request (a channel proposal, ...) is recorded and refused.
async fn other(State(fake): State<Shared>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    lock(&fake).seen.push(format!("{method} {}", uri.path()));
    let body = ErrorBody { error: "fake_hub".into(), message: "this hub only says things".into() };
    (StatusCode::IM_A_TEAPOT, axum::Json(body)).into_response()
}

/// Starts the fake hub; answers its URL and its state.
async fn fake_hub() -> anyhow::Result<(String, Shared)> {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/hub", get(hub_info))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/token", post(token))
        .fallback(other)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, fake))
}

/// The chain with the real deployment (trusted), a rogue one the hub controls, and a token.
struct World {
    devnet: Devnet,
    contracts: Contracts,
    token: Asset,
    rogue: Contracts,
    hub_key: PrivateKeySigner,
    url: String,
    fake: Shared,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> anyhow::Result<Self> {
        let devnet = Devnet::start()?;
        let hub_key = devnet.key(0);
        let deployer = devnet.provider(&hub_key);
        let contracts = chain::deploy(&deployer).await?;
        let token = chain::deploy_test_token(&deployer, &contracts).await?;
        let rogue = chain::deploy(&deployer).await?;
        let (url, fake) = fake_hub().await?;
        Ok(Self { devnet, contracts, token, rogue, hub_key, url, fake, dir: tempfile::tempdir()? })
    }

    fn trusted(&self) -> TrustedDeployment {
        TrustedDeployment::from_contracts(&self.contracts).with_asset(self.token)
    }

    /// What an honest hub on this deployment says.
    fn honest(&self) -> HubInfo {
        HubInfo {
            address: self.hub_key.address(),
            chain_id: self.contracts.deployment.chain_id,
            adjudicator: self.contracts.deployment.adjudicator,
            assets: vec![
                AssetInfo { symbol: "ETH".into(), holder: self.contracts.eth_holder, token: None },
                AssetInfo { symbol: "TOK".into(), holder: self.token.holder, token: self.token.token },
            ],
            challenge_duration: [60, 86_400],
            confirmations: 1,
            virtual_fees: false,
            apps: Default::default(),
            app_challenge_duration: None,
        }
    }

    /// Makes the hub say `info` and forget the requests it saw.
    fn says(&self, info: HubInfo) {
        let mut f = lock(&self.fake);
        f.info = Some(info);
        f.seen.clear();
    }

    fn seen(&self) -> Vec<String> {
        lock(&self.fake).seen.clone()
    }

    fn client(&self) -> (PrivateKeySigner, DynProvider) {
        let key = self.devnet.key(1);
        let provider = self.devnet.provider(&key);
        (key, provider)
    }

    async fn connect(&self, trust: Trust, provider: DynProvider) -> Result<Wallet, WalletError> {
        let (key, _) = self.client();
        let store = ChannelStore::open(&self.dir.path().join(format!("client-{}", rand::random::<u64>())))?;
        Wallet::connect_with(HubClient::new(&self.url), key, store, provider, trust).await
    }

    async fn balance(&self) -> anyhow::Result<U256> {
        let (key, provider) = self.client();
        Ok(provider.get_balance(key.address()).await?)
    }
}

fn eth_deposit(holder: Address) -> [Deposit; 1] {
    [Deposit { asset: holder, mine: U256::from(10u64).pow(U256::from(18)), hub: U256::ZERO }]
}

fn untrusted<T: std::fmt::Debug>(result: Result<T, WalletError>) -> TrustError {
    match result {
        Err(WalletError::Untrusted(e)) => e,
        other => panic!("expected an untrusted-deployment refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_lies_about_its_contracts_is_refused_before_any_coins_move() -> anyhow::Result<()> {
    let w = World::new().await?;
    let start = w.balance().await?;
    let (_, provider) = w.client();
    let pinned = || Trust::Pinned(w.trusted().with_hub(w.hub_key.address()));

    // Lies in `/v1/hub` are refused at connect, before the client signs a login challenge.
    let real = w.contracts.deployment;
    let lies: Vec<(HubInfo, TrustError)> = vec![
        (
            HubInfo { adjudicator: w.rogue.deployment.adjudicator, ..w.honest() },
            TrustError::HubAdjudicator { trusted: real.adjudicator, claimed: w.rogue.deployment.adjudicator },
        ),
        (HubInfo { chain_id: 1, ..w.honest() }, TrustError::HubChainId { trusted: real.chain_id, claimed: 1 }),
        (
            HubInfo { address: w.devnet.key(5).address(), ..w.honest() },
            TrustError::HubAddress { trusted: w.hub_key.address(), claimed: w.devnet.key(5).address() },
        ),
        {
            let mut info = w.honest();
            info.assets[1].token = Some(w.rogue.eth_holder);
            let lie = TrustError::HubAssetToken {
                holder: w.token.holder,
                trusted: w.token.token,
                claimed: Some(w.rogue.eth_holder),
            };
            (info, lie)
        },
    ];
    for (info, lie) in lies {
        w.says(info);
        assert_eq!(untrusted(w.connect(pinned(), provider.clone()).await.map(|_| ())), lie);
        assert_eq!(w.seen(), vec!["GET /v1/hub"], "{lie}");
    }

    // A holder the client does not trust (the hub's own, bound to its own adjudicator) is
    // refused when the client would deposit into it: no proposal reaches the hub.
    let mut info = w.honest();
    info.assets.push(AssetInfo { symbol: "ETH2".into(), holder: w.rogue.eth_holder, token: None });
    w.says(info);
    let wallet = w.connect(pinned(), provider.clone()).await?;
    assert_eq!(
        untrusted(wallet.open_channel(&eth_deposit(w.rogue.eth_holder), 3600).await),
        TrustError::UntrustedAsset(w.rogue.eth_holder)
    );
    assert!(!w.seen().iter().any(|r| r.contains("/v1/channels")), "{:?}", w.seen());

    // A chain node on another chain is refused too, with an honest hub.
    let other = alloy::node_bindings::Anvil::new()
        .path(anvil_binary())
        .arg("--host")
        .arg("127.0.0.1")
        .chain_id(5)
        .try_spawn()?;
    let (key, _) = w.client();
    w.says(w.honest());
    let wallet = w.connect(pinned(), Devnet::provider_at(other.endpoint_url(), &key)).await?;
    assert_eq!(
        untrusted(wallet.open_channel(&eth_deposit(w.contracts.eth_holder), 3600).await),
        TrustError::RpcChainId { trusted: real.chain_id, rpc: 5 }
    );
    assert!(!w.seen().iter().any(|r| r.contains("/v1/channels")), "{:?}", w.seen());

    // The honest hub passes every check: the proposal reaches it (the fake one refuses it).
    w.says(w.honest());
    let wallet = w.connect(pinned(), provider.clone()).await?;
    match wallet.open_channel(&eth_deposit(w.contracts.eth_holder), 3600).await {
        Err(WalletError::Hub(ClientError::Refused { status: 418, .. })) => {}
        other => panic!("expected the fake hub's refusal, got {other:?}"),
    }
    assert!(w.seen().contains(&"POST /v1/channels".to_string()), "{:?}", w.seen());

    // Not a wei moved (every call above was a read).
    assert_eq!(w.balance().await?, start);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pinning_the_chain_still_refuses_contracts_that_do_not_fit() -> anyhow::Result<()> {
    let w = World::new().await?;
    let start = w.balance().await?;
    let (_, provider) = w.client();
    let real = w.contracts.deployment;
    let eoa = w.devnet.key(7).address();
    let asset = |holder: Address, token: Option<Address>| vec![AssetInfo { symbol: "X".into(), holder, token }];

    let cases: Vec<(HubInfo, Address, TrustError)> = vec![
        // The hub's own holder, bound to the hub's own adjudicator, named beside the real one.
        (
            HubInfo { assets: asset(w.rogue.eth_holder, None), ..w.honest() },
            w.rogue.eth_holder,
            TrustError::HolderAdjudicator {
                holder: w.rogue.eth_holder,
                bound: w.rogue.deployment.adjudicator,
                trusted: real.adjudicator,
            },
        ),
        // The ERC20 holder called an ETH holder, and with another token.
        (
            HubInfo { assets: asset(w.token.holder, None), ..w.honest() },
            w.token.holder,
            TrustError::HolderToken { holder: w.token.holder, trusted: None, on_chain: w.token.token },
        ),
        (
            HubInfo { assets: asset(w.token.holder, Some(eoa)), ..w.honest() },
            w.token.holder,
            TrustError::HolderToken { holder: w.token.holder, trusted: Some(eoa), on_chain: w.token.token },
        ),
        // No contract at the holder.
        (HubInfo { assets: asset(eoa, None), ..w.honest() }, eoa, TrustError::NoCode(eoa)),
        // Another chain.
        (
            HubInfo { chain_id: 1, ..w.honest() },
            w.contracts.eth_holder,
            TrustError::RpcChainId { trusted: 1, rpc: real.chain_id },
        ),
        // No contract at the adjudicator.
        (HubInfo { adjudicator: eoa, ..w.honest() }, w.contracts.eth_holder, TrustError::NoCode(eoa)),
    ];
    for (info, holder, lie) in cases {
        w.says(info);
        let wallet = w.connect(Trust::UnpinnedHubDeployment, provider.clone()).await?;
        assert_eq!(untrusted(wallet.open_channel(&eth_deposit(holder), 3600).await), lie);
        assert!(!w.seen().iter().any(|r| r.contains("/v1/channels")), "{lie}: {:?}", w.seen());
    }

    // A contract that is not an adjudicator (an asset holder has another EIP-712 domain).
    w.says(HubInfo { adjudicator: w.contracts.eth_holder, ..w.honest() });
    let wallet = w.connect(Trust::UnpinnedHubDeployment, provider.clone()).await?;
    match untrusted(wallet.open_channel(&eth_deposit(w.contracts.eth_holder), 3600).await) {
        TrustError::NotIngrid { address, contract: "adjudicator", .. } => assert_eq!(address, w.contracts.eth_holder),
        other => panic!("expected NotIngrid, got {other}"),
    }

    // The honest description passes.
    w.says(w.honest());
    let wallet = w.connect(Trust::UnpinnedHubDeployment, provider.clone()).await?;
    let result = wallet.open_channel(&eth_deposit(w.contracts.eth_holder), 3600).await;
    assert!(matches!(result, Err(WalletError::Hub(ClientError::Refused { status: 418, .. }))), "{result:?}");

    assert_eq!(w.balance().await?, start);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_challenge_of_another_form_is_not_signed() -> anyhow::Result<()> {
    let (url, fake) = fake_hub().await?;
    let key = PrivateKeySigner::random();
    let hub = Address::repeat_byte(0x42);
    let info = HubInfo {
        address: hub,
        chain_id: 31337,
        adjudicator: Address::repeat_byte(0xad),
        assets: vec![],
        challenge_duration: [60, 86_400],
        confirmations: 1,
        virtual_fees: false,
        apps: Default::default(),
        app_challenge_duration: None,
    };
    lock(&fake).info = Some(info);
    let good = LoginChallenge {
        hub,
        chain_id: 31337,
        address: key.address(),
        nonce: [9; 16],
        expires_at: now() + 300,
        mac: B256::repeat_byte(0x11),
    };
    let with = |f: &dyn Fn(&mut LoginChallenge)| {
        let mut c = good.clone();
        f(&mut c);
        (c.text(), c.expires_at)
    };
    let digest = "0x1901".to_string() + &"ab".repeat(64);
    type Answer = (String, u64);
    type Expect = fn(&ChallengeError) -> bool;
    let cases: Vec<(Answer, Expect)> = vec![
        ((digest, good.expires_at), |e| matches!(e, ChallengeError::Malformed(_))),
        ((format!("{}\nvalue: 1 ETH", good.text()), good.expires_at), |e| matches!(e, ChallengeError::Malformed(_))),
        (with(&|c| c.chain_id = 1), |e| matches!(e, ChallengeError::WrongChain { expected: 31337, found: 1 })),
        (with(&|c| c.hub = Address::repeat_byte(1)), |e| matches!(e, ChallengeError::WrongHub { .. })),
        (with(&|c| c.address = Address::repeat_byte(2)), |e| matches!(e, ChallengeError::WrongAddress { .. })),
        (with(&|c| c.expires_at = now() - 1), |e| matches!(e, ChallengeError::Expired { .. })),
        (with(&|c| c.expires_at = now() + 30 * 86_400), |e| matches!(e, ChallengeError::TooLong { .. })),
        ((good.text(), good.expires_at + 60), |e| matches!(e, ChallengeError::ExpiryMismatch { .. })),
    ];
    for (answer, expected) in cases {
        {
            let mut f = lock(&fake);
            f.challenge = Some(answer.clone());
            f.seen.clear();
        }
        let mut client = HubClient::new(&url).expecting(hub, 31337);
        match client.login(&key).await {
            Err(ClientError::Challenge(e)) => assert!(expected(&e), "{e} for {answer:?}"),
            other => panic!("expected a refused challenge for {answer:?}, got {other:?}"),
        }
        assert_eq!(lock(&fake).seen, vec!["POST /v1/auth/challenge"], "signed {answer:?}");
        assert_eq!(client.token(), None);
    }

    // The hub's form, for this client, hub and chain, is signed.
    lock(&fake).challenge = Some((good.text(), good.expires_at));
    let mut client = HubClient::new(&url).expecting(hub, 31337);
    client.login(&key).await?;
    assert_eq!(client.token(), Some("fake"));
    assert!(lock(&fake).seen.contains(&"POST /v1/auth/token".to_string()));
    Ok(())
}
