//! Login challenges, pure: the hub issues a challenge text bound to the client's address,
//! a nonce and an expiry, authenticated with a MAC under a key derived from the hub's key,
//! so issuing one writes nothing. The client signs it (EIP-191); the hub checks the MAC,
//! the expiry and the signature, and only then records the nonce as used (single use).
//! Time is an argument.

use alloy::primitives::{Address, B256, Signature, keccak256};

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The text is not a challenge this hub issued, or it was altered.
    #[error("the challenge was not issued by this hub or was altered")]
    NotIssued,
    /// The challenge expired.
    #[error("the challenge expired")]
    Expired,
    /// The signature is malformed or not by the address the challenge names.
    #[error("the challenge is not signed by {0}")]
    BadSignature(Address),
}

/// Issues and checks challenges for one hub.
#[derive(Clone)]
pub struct Challenges {
    mac_key: B256,
    hub: Address,
    chain_id: u64,
}

impl Challenges {
    /// Challenges of the hub `hub` on `chain_id`, MACed with a key derived from `secret`
    /// (the hub's private key bytes, so every replica with that key agrees).
    pub fn new(secret: &[u8], hub: Address, chain_id: u64) -> Self {
        Self { mac_key: keccak256([b"ingrid-login-challenge:".as_slice(), secret].concat()), hub, chain_id }
    }

    fn body(&self, address: Address, nonce: &[u8; 16], expires_at: u64) -> String {
        format!(
            "Ingrid login\nhub: {}\nchain: {}\naddress: {address}\nnonce: 0x{}\nexpires: {expires_at}",
            self.hub,
            self.chain_id,
            hex::encode(nonce)
        )
    }

    fn text(&self, address: Address, nonce: &[u8; 16], expires_at: u64) -> String {
        let body = self.body(address, nonce, expires_at);
        let mac = keccak256([self.mac_key.as_slice(), body.as_bytes()].concat());
        format!("{body}\nmac: {mac}")
    }

    /// The challenge text for `address`, valid until `expires_at` (unix seconds).
    pub fn issue(&self, address: Address, nonce: [u8; 16], expires_at: u64) -> String {
        self.text(address, &nonce, expires_at)
    }

    /// Checks that `text` is a live challenge of this hub for `address`, signed by it.
    /// Returns the nonce and the expiry, for the caller to record as used.
    pub fn check(
        &self,
        address: Address,
        text: &str,
        signature: &[u8],
        now: u64,
    ) -> Result<([u8; 16], u64), LoginError> {
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
        let nonce: [u8; 16] = field("nonce: 0x")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or(LoginError::NotIssued)?;
        let expires_at: u64 = field("expires: ").and_then(|e| e.parse().ok()).ok_or(LoginError::NotIssued)?;
        if self.text(address, &nonce, expires_at) != text {
            return Err(LoginError::NotIssued);
        }
        if now >= expires_at {
            return Err(LoginError::Expired);
        }
        let signer = Signature::from_raw(signature)
            .ok()
            .filter(|s| s.normalize_s().is_none())
            .and_then(|s| s.recover_address_from_msg(text.as_bytes()).ok());
        if signer != Some(address) {
            return Err(LoginError::BadSignature(address));
        }
        Ok((nonce, expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    fn sign(key: &PrivateKeySigner, text: &str) -> Vec<u8> {
        key.sign_message_sync(text.as_bytes()).expect("sign").as_bytes().to_vec()
    }

    #[test]
    fn a_signed_live_challenge_is_accepted_and_everything_else_refused() {
        let c = Challenges::new(b"secret", Address::repeat_byte(1), 31337);
        let (alice, bob) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let text = c.issue(alice.address(), [7; 16], 1_000);
        assert_eq!(c.check(alice.address(), &text, &sign(&alice, &text), 999), Ok(([7; 16], 1_000)));
        assert_eq!(c.check(alice.address(), &text, &sign(&alice, &text), 1_000), Err(LoginError::Expired));
        assert_eq!(
            c.check(alice.address(), &text, &sign(&bob, &text), 999),
            Err(LoginError::BadSignature(alice.address()))
        );
        // Bob cannot use Alice's challenge for himself, nor move its expiry.
        assert_eq!(c.check(bob.address(), &text, &sign(&bob, &text), 999), Err(LoginError::NotIssued));
        let later = text.replace("expires: 1000", "expires: 9000");
        assert_eq!(c.check(alice.address(), &later, &sign(&alice, &later), 999), Err(LoginError::NotIssued));
        // Another hub (another key) did not issue it.
        let other = Challenges::new(b"other", Address::repeat_byte(1), 31337);
        assert_eq!(other.check(alice.address(), &text, &sign(&alice, &text), 999), Err(LoginError::NotIssued));
    }
}
