//! TLS for the SDK's HTTP clients (the hub's API and chain nodes): rustls on the `ring`
//! crypto provider, trusting the platform's roots and any extra ones given.

use std::sync::Once;

/// Makes `ring` rustls's process-wide crypto provider unless the application installed one
/// first (then that one is used). Every HTTP client of the SDK calls it before it is built;
/// an application that builds its own `reqwest` clients calls it once at start.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A TLS configuration (an extra root certificate) that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// A plain HTTP client (rustls, the platform's roots).
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// An HTTP client (rustls) that trusts the platform's roots and the certificates in
/// `root_pems` (each a PEM bundle of one or more certificates), for the hub
/// ([`HubClient::with_root_certificate`]) or a chain node
/// ([`crate::chain::provider_with_client`]) behind a private certificate authority.
pub fn tls_client(root_pems: &[&[u8]]) -> Result<reqwest::Client, TlsError> {
    let mut roots = Vec::new();
    for pem in root_pems {
        roots.extend(parse_roots(pem)?);
    }
    build_http(&roots)
}

pub(crate) fn parse_roots(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, TlsError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| TlsError(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

pub(crate) fn build_http(roots: &[reqwest::Certificate]) -> Result<reqwest::Client, TlsError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_merge(roots.iter().cloned())
        .build()
        .map_err(|e| TlsError(e.to_string()))
}
