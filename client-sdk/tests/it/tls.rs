//! TLS: the SDK reaches a hub and a chain node over `https://` when their certificate chains
//! to a root it trusts (here a test authority added as an extra root), and refuses them
//! otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::Address;
use alloy::providers::Provider;
use axum::Router;
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
use ingrid_client_sdk::api::{AssetInfo, HubInfo};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::client::{ClientError, HubClient, RetryPolicy};
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::tls::tls_client;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A test certificate authority and a server certificate it issued for `localhost` and
/// `127.0.0.1`.
struct TestPki {
    root_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn test_pki(name: &str) -> anyhow::Result<TestPki> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?.signed_by(&key, &ca)?;
    Ok(TestPki { root_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Serves `app` over TLS with the server certificate of `pki` on a free loopback port.
async fn serve_tls(app: Router, pki: &TestPki) -> anyhow::Result<SocketAddr> {
    let config = RustlsConfig::from_pem(pki.cert_pem.clone().into_bytes(), pki.key_pem.clone().into_bytes()).await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = axum_server::from_tcp_rustls(listener, config)?;
    tokio::spawn(server.serve(app.into_make_service()));
    Ok(addr)
}

fn sample_info() -> HubInfo {
    HubInfo {
        address: Address::repeat_byte(0x42),
        chain_id: 31337,
        adjudicator: Address::repeat_byte(0xad),
        assets: vec![AssetInfo { symbol: "ETH".into(), holder: Address::repeat_byte(0xee), token: None }],
        challenge_duration: [60, 86_400],
        confirmations: 1,
        virtual_fees: false,
        apps: Default::default(),
        app_challenge_duration: None,
    }
}

fn once() -> RetryPolicy {
    RetryPolicy { attempts: 1, first_delay: std::time::Duration::from_millis(1) }
}

/// The whole chain of an error's causes, for assertions on the reason.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[tokio::test]
async fn hub_client_reaches_an_https_hub_only_through_a_trusted_root() -> anyhow::Result<()> {
    let pki = test_pki("Ingrid test CA")?;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/v1/hub",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(sample_info()) }
        }),
    );
    let addr = serve_tls(app, &pki).await?;

    for url in [format!("https://127.0.0.1:{}", addr.port()), format!("https://localhost:{}/", addr.port())] {
        let client = HubClient::new(&url).with_root_certificate(pki.root_pem.as_bytes())?;
        assert_eq!(client.hub_info().await?, sample_info(), "{url}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Without the root, or with another authority's, the handshake fails: no request is served.
    let url = format!("https://127.0.0.1:{}", addr.port());
    let other = test_pki("Another CA")?;
    for client in [
        HubClient::new(&url).with_retry(once()),
        HubClient::new(&url).with_root_certificate(other.root_pem.as_bytes())?.with_retry(once()),
    ] {
        let err = client.hub_info().await.expect_err("an untrusted certificate must be refused");
        assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
        let reason = causes(&err);
        assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Plain HTTP to the TLS port is no way around it, and a root must be a certificate.
    let plain = HubClient::new(&format!("http://127.0.0.1:{}", addr.port())).with_retry(once());
    assert!(plain.hub_info().await.is_err());
    assert!(matches!(HubClient::new(&url).with_root_certificate(b"not a certificate"), Err(ClientError::Tls(_))));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_connection_speaks_https() -> anyhow::Result<()> {
    let devnet = Devnet::start()?;
    let node = devnet.anvil.endpoint_url();
    let pki = test_pki("Ingrid test CA")?;
    // A TLS front of the node, as an operator's RPC endpoint would be.
    let forward = ingrid_client_sdk::tls::http_client();
    let app = Router::new().route(
        "/",
        post(move |body: axum::body::Bytes| {
            let (forward, node) = (forward.clone(), node.clone());
            async move {
                let answer = forward
                    .post(node)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("anvil answers");
                let bytes = answer.bytes().await.expect("anvil's answer");
                ([("content-type", "application/json")], bytes)
            }
        }),
    );
    let addr = serve_tls(app, &pki).await?;
    let url: reqwest::Url = format!("https://localhost:{}", addr.port()).parse()?;
    let key = devnet.key(1);

    let provider = chain::provider_with_client(tls_client(&[pki.root_pem.as_bytes()])?, url.clone(), &key);
    assert_eq!(provider.get_chain_id().await?, 31337);
    // A transaction signed with the client's key goes through too.
    let contracts = chain::deploy(&provider).await?;
    assert!(!provider.get_code_at(contracts.deployment.adjudicator).await?.is_empty());

    // The platform's roots do not include the test authority.
    let untrusted = Devnet::provider_at(url, &key);
    let err = untrusted.get_chain_id().await.expect_err("an untrusted certificate must be refused");
    assert!(causes(&err).to_lowercase().contains("certificate"), "{}", causes(&err));
    Ok(())
}
