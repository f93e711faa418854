//! HTTPS end to end: the hub serves its API and its operator API with its own certificate
//! (`[tls]`), and two SDK wallets that trust the certificate's authority and pin the
//! deployment open basic channels and a virtual channel through it, pay and close.

use std::time::Duration;

use ingrid_client_sdk::Role;
use ingrid_client_sdk::api::{StateRequest, VirtualStatus};
use ingrid_client_sdk::client::{ClientError, HubClient, RetryPolicy};
use ingrid_client_sdk::store::ChannelStore;
use ingrid_client_sdk::trust::TrustedDeployment;
use ingrid_client_sdk::virtual_channel::{finalize, settle_in_parent, transfer};
use ingrid_client_sdk::wallet::{Trust, Wallet};
use ingrid_hub::config::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::harness::{Env, OPERATOR_TOKEN, ether, now, open_basic};

/// A test authority's root (PEM) and a server certificate and key it issued for `localhost`
/// and `127.0.0.1`, written to `dir` (the key with mode 600).
fn test_certificate(dir: &std::path::Path) -> anyhow::Result<(String, TlsConfig)> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Ingrid hub test authority");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?.signed_by(&key, &ca)?;
    let tls = TlsConfig { cert_file: dir.join("tls.crt"), key_file: dir.join("tls.key") };
    std::fs::write(&tls.cert_file, cert.pem())?;
    std::fs::write(&tls.key_file, key.serialize_pem())?;
    #[cfg(unix)]
    std::fs::set_permissions(&tls.key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok((ca.pem(), tls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_open_pay_and_close_a_virtual_channel_over_https() -> anyhow::Result<()> {
    let env = Env::new(3).await?;
    let (root, tls) = test_certificate(env.dir.path())?;

    // A key file that others may read is refused, like the hub's own key.
    let mut config = env.config();
    #[cfg(unix)]
    {
        std::fs::set_permissions(&tls.key_file, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        config.tls = Some(tls.clone());
        let refused = config.validate().expect_err("a world-readable TLS key must be refused");
        assert!(refused.to_string().contains("tls.key_file"), "{refused}");
        std::fs::set_permissions(&tls.key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    config.tls = Some(tls);
    let hub = ingrid_hub::server::start(config).await?;
    let url = format!("https://localhost:{}", hub.addr.port());

    // Plain HTTP and an untrusted certificate reach no handler.
    let once = RetryPolicy { attempts: 1, first_delay: Duration::from_millis(1) };
    let before = hub.requests();
    let plain = HubClient::new(&format!("http://127.0.0.1:{}", hub.addr.port())).with_retry(once);
    assert!(plain.hub_info().await.is_err(), "plain HTTP on the HTTPS port must fail");
    let untrusted = HubClient::new(&url).with_retry(once);
    let err = untrusted.hub_info().await.expect_err("a certificate of an unknown authority must be refused");
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(hub.requests(), before, "no request got through");

    // Wallets that trust the authority and pin the deployment and the hub's address.
    let trusted = TrustedDeployment::from_contracts(&env.stack.contracts).with_hub(env.hub_key.address());
    let mut wallets = Vec::new();
    for i in [1, 2] {
        let key = env.devnet.key(i);
        let client = HubClient::new(&url).with_root_certificate(root.as_bytes())?;
        let store = ChannelStore::open(&env.dir.path().join(format!("tls-client-{i}")))?;
        let provider = env.provider(&key);
        wallets.push(Wallet::connect_with(client, key, store, provider, Trust::Pinned(trusted.clone())).await?);
    }
    let (alice, bob) = (&wallets[0], &wallets[1]);
    let eth = env.eth().holder;
    let x = open_basic(alice, eth, 3, 3).await?;
    let y = open_basic(bob, eth, 5, 4).await?;

    let v = alice.propose_virtual(bob.address(), x, &[[ether(2), ether(3)]], 600, now() + 3600).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).expect("Bob sees the proposal");
    bob.accept_virtual(&proposal, y).await?;
    let opened = alice.wait_virtual_open(v, Duration::from_secs(10)).await?;

    // Bob pays Alice 2 inside V, then Alice closes V into both parents in one request.
    let keys = [env.devnet.key(1), env.devnet.key(2)];
    let d = env.stack.contracts.deployment;
    let last = finalize(&transfer(&opened.latest.state, Role::Second, eth, ether(2))?)?;
    let sigs = [d.sign_state(&keys[0], &last)?, d.sign_state(&keys[1], &last)?];
    let y_update = settle_in_parent(&bob.store().load(y)?.expect("Y").latest.state, &last)?;
    let bob_parent = StateRequest { signature: d.sign_state(&keys[1], &y_update)?, state: y_update };
    assert!(alice.settle_virtual(v, &last, sigs, Some(bob_parent)).await?, "both parents settle at once");
    assert_eq!(alice.hub().virtual_channel(v).await?.status, VirtualStatus::Closed);
    let x_balances = alice.store().load(x)?.expect("X").latest.state.outcome.balances[0];
    assert_eq!(x_balances, [ether(5), ether(1)], "X = (5, 1): Alice got her 2 back and Bob's 2");

    // The operator API is served over HTTPS too, with its token.
    let http = ingrid_client_sdk::tls::tls_client(&[root.as_bytes()])?;
    let channels: serde_json::Value = http
        .get(format!("{url}/v1/admin/channels"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(channels["channels"].as_array().map(Vec::len), Some(2), "{channels}");
    Ok(())
}

/// The hub and a wallet reach their chain node over a websocket (`ws://`; `wss://` is the same
/// transport with the rustls of the HTTPS tests): the client's deposit, the hub's view of it
/// and the hub's own deposit all go over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_and_a_wallet_use_a_websocket_chain_node() -> anyhow::Result<()> {
    let env = Env::new(2).await?;
    let ws = env.devnet.anvil.ws_endpoint();
    assert!(ws.starts_with("ws://"), "{ws}");
    let mut config = env.config();
    config.chain.rpc_url = ws.clone();
    let hub = ingrid_hub::server::start(config).await?;
    let key = env.devnet.key(1);
    let provider = ingrid_client_sdk::chain::connect(&ws, &key).await?;
    let store = ChannelStore::open(&env.dir.path().join("ws-client"))?;
    let alice = Wallet::connect(&format!("http://{}", hub.addr), key, store, provider.clone()).await?;
    let eth = env.eth().holder;
    let x = open_basic(&alice, eth, 2, 1).await?;
    let hub_holds = ingrid_client_sdk::chain::holdings(&provider, eth, x, env.hub_key.address()).await?;
    assert_eq!(hub_holds, ether(1), "the hub deposited its share over the websocket");
    hub.stop().await;
    Ok(())
}
