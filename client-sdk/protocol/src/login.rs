//! The login challenge a hub issues, pure: its one exact form, and the checks a client makes
//! before signing it. A client signs the challenge text (EIP-191), so a hub that could make
//! it sign any text could make it sign something else (a text that reads like a transaction,
//! or a channel state's digest in disguise): the client signs only a text of exactly this
//! form, naming its own address, the hub and chain it expects, and a near expiry.
//!
//! ```text
//! Ingrid login
//! hub: <hub address, EIP-55>
//! chain: <chain id>
//! address: <client address, EIP-55>
//! nonce: 0x<32 lowercase hex digits>
//! expires: <unix seconds>
//! mac: 0x<64 lowercase hex digits>
//! ```
//!
//! Lines are separated by `\n`; there is nothing before, between or after them. Time is an
//! argument.

use alloy::primitives::{Address, B256, hex};

/// A challenge expiring later than this many seconds after the client's clock is refused
/// (hubs issue challenges for minutes; the default is 300 s).
pub const MAX_CHALLENGE_LIFETIME: u64 = 3600;

/// The longest text [`LoginChallenge::parse`] reads (a well-formed challenge has about 260
/// characters).
pub const MAX_CHALLENGE_LEN: usize = 512;

/// Why a client refuses to sign a login challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The text is not of the one form of a login challenge.
    #[error("not a login challenge: {0}")]
    Malformed(String),
    /// The challenge names another client.
    #[error("the challenge is for {found}, not for this client {expected}")]
    WrongAddress {
        /// This client's address.
        expected: Address,
        /// The address in the challenge.
        found: Address,
    },
    /// The challenge names another hub.
    #[error("the challenge names hub {found}, expected {expected}")]
    WrongHub {
        /// The hub the client expects.
        expected: Address,
        /// The hub in the challenge.
        found: Address,
    },
    /// The challenge names another chain.
    #[error("the challenge names chain {found}, expected {expected}")]
    WrongChain {
        /// The chain the client trusts.
        expected: u64,
        /// The chain in the challenge.
        found: u64,
    },
    /// The challenge has expired (by the client's clock).
    #[error("the challenge expired at {expires_at} (now {now})")]
    Expired {
        /// The challenge's expiry.
        expires_at: u64,
        /// The client's time.
        now: u64,
    },
    /// The challenge expires further in the future than [`MAX_CHALLENGE_LIFETIME`].
    #[error("the challenge expires at {expires_at}, more than {MAX_CHALLENGE_LIFETIME} s after now ({now})")]
    TooLong {
        /// The challenge's expiry.
        expires_at: u64,
        /// The client's time.
        now: u64,
    },
    /// The expiry the hub declared next to the text differs from the one in the text.
    #[error("the hub declared expiry {declared}, the text says {text}")]
    ExpiryMismatch {
        /// In the text.
        text: u64,
        /// Next to it.
        declared: u64,
    },
}

/// A login challenge, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    /// The hub's channel key address.
    pub hub: Address,
    /// The chain the hub is on.
    pub chain_id: u64,
    /// The client's address (the signer).
    pub address: Address,
    /// The challenge's single-use nonce.
    pub nonce: [u8; 16],
    /// Unix time after which the hub refuses it.
    pub expires_at: u64,
    /// The hub's authentication of the lines above.
    pub mac: B256,
}

/// What the client expects of a challenge besides its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedChallenge {
    /// The client's own address.
    pub address: Address,
    /// The hub's address, when known (from `/v1/hub` or the trusted configuration).
    pub hub: Option<Address>,
    /// The trusted chain, when known.
    pub chain_id: Option<u64>,
}

impl LoginChallenge {
    /// The challenge's text, in the one form a hub issues.
    pub fn text(&self) -> String {
        format!(
            "Ingrid login\nhub: {}\nchain: {}\naddress: {}\nnonce: 0x{}\nexpires: {}\nmac: {}",
            self.hub,
            self.chain_id,
            self.address,
            hex::encode(self.nonce),
            self.expires_at,
            self.mac
        )
    }

    /// Parses `text`, which must be exactly a challenge's text: the seven lines in order, the
    /// addresses EIP-55 checksummed, the numbers in plain decimal, the hex in lower case.
    pub fn parse(text: &str) -> Result<Self, ChallengeError> {
        let malformed = |what: &str| ChallengeError::Malformed(what.to_string());
        if text.len() > MAX_CHALLENGE_LEN {
            return Err(malformed("too long"));
        }
        let lines: Vec<&str> = text.split('\n').collect();
        let [title, hub, chain, address, nonce, expires, mac] = lines.as_slice() else {
            return Err(malformed("not seven lines"));
        };
        if *title != "Ingrid login" {
            return Err(malformed("the first line is not `Ingrid login`"));
        }
        let field = |line: &str, name: &str| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_string)
                .ok_or_else(|| malformed(&format!("expected the line `{name}: ...`")))
        };
        let address_of = |line: &str, name: &str| {
            field(line, name)?.parse::<Address>().map_err(|_| malformed(&format!("`{name}` is not an address")))
        };
        let number_of = |line: &str, name: &str| {
            field(line, name)?.parse::<u64>().map_err(|_| malformed(&format!("`{name}` is not a number")))
        };
        let nonce_hex = field(nonce, "nonce")?;
        let nonce = nonce_hex
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| malformed("`nonce` is not 16 bytes of hex"))?;
        let mac = field(mac, "mac")?
            .strip_prefix("0x")
            .and_then(|h| h.parse::<B256>().ok())
            .ok_or_else(|| malformed("`mac` is not 32 bytes of hex"))?;
        let challenge = Self {
            hub: address_of(hub, "hub")?,
            chain_id: number_of(chain, "chain")?,
            address: address_of(address, "address")?,
            nonce,
            expires_at: number_of(expires, "expires")?,
            mac,
        };
        // Anything the fields do not fix (case, signs, leading zeros, spacing) differs here.
        if challenge.text() != text {
            return Err(malformed("not in the exact form a hub issues"));
        }
        Ok(challenge)
    }

    /// Checks the challenge against what the client expects, at the client's time `now`.
    pub fn check(&self, expected: &ExpectedChallenge, now: u64) -> Result<(), ChallengeError> {
        if self.address != expected.address {
            return Err(ChallengeError::WrongAddress { expected: expected.address, found: self.address });
        }
        if let Some(hub) = expected.hub.filter(|h| *h != self.hub) {
            return Err(ChallengeError::WrongHub { expected: hub, found: self.hub });
        }
        if let Some(chain_id) = expected.chain_id.filter(|c| *c != self.chain_id) {
            return Err(ChallengeError::WrongChain { expected: chain_id, found: self.chain_id });
        }
        if self.expires_at <= now {
            return Err(ChallengeError::Expired { expires_at: self.expires_at, now });
        }
        if self.expires_at - now > MAX_CHALLENGE_LIFETIME {
            return Err(ChallengeError::TooLong { expires_at: self.expires_at, now });
        }
        Ok(())
    }
}

/// Parses and checks `text` (see [`LoginChallenge::parse`] and [`LoginChallenge::check`]):
/// a client signs it only if this answers `Ok`.
pub fn check_challenge(text: &str, expected: &ExpectedChallenge, now: u64) -> Result<LoginChallenge, ChallengeError> {
    let challenge = LoginChallenge::parse(text)?;
    challenge.check(expected, now)?;
    Ok(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn sample() -> LoginChallenge {
        LoginChallenge {
            hub: Address::repeat_byte(0xab),
            chain_id: 31337,
            address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().expect("address"),
            nonce: [0x5a; 16],
            expires_at: NOW + 300,
            mac: B256::repeat_byte(0xc3),
        }
    }

    fn expected() -> ExpectedChallenge {
        let c = sample();
        ExpectedChallenge { address: c.address, hub: Some(c.hub), chain_id: Some(c.chain_id) }
    }

    #[test]
    fn the_hubs_form_parses_back_and_passes() {
        let c = sample();
        let text = c.text();
        // The form the hub issues (hub/src/auth.rs), written out.
        assert_eq!(
            text,
            format!(
                "Ingrid login\nhub: {}\nchain: 31337\naddress: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8\nnonce: 0x{}\nexpires: {}\nmac: 0x{}",
                Address::repeat_byte(0xab),
                "5a".repeat(16),
                NOW + 300,
                "c3".repeat(32)
            )
        );
        assert_eq!(check_challenge(&text, &expected(), NOW), Ok(c.clone()));
        // Without a known hub or chain, the form and the address still suffice.
        let loose = ExpectedChallenge { hub: None, chain_id: None, ..expected() };
        assert_eq!(check_challenge(&text, &loose, NOW), Ok(c));
    }

    #[test]
    fn anything_but_the_exact_form_is_refused() {
        let text = sample().text();
        let lower_address =
            text.replace("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", &format!("{:x}", sample().address));
        let variants = [
            format!("{text}\n"),
            format!("\n{text}"),
            text.replace('\n', "\r\n"),
            format!("{text}\nvalue: 1000000000000000000"),
            text.replace("Ingrid login", "Ingrid Login"),
            text.replace("chain: 31337", "chain: 031337"),
            text.replace("chain: 31337", "chain: +31337"),
            text.replace("chain: 31337", "chain:  31337"),
            text.replace("nonce: 0x", "nonce: 0X"),
            text.replace(&"5a".repeat(16), &"5A".repeat(16)),
            text.replace(&"5a".repeat(16), &"5a".repeat(17)),
            text.replace(&format!("mac: 0x{}", "c3".repeat(32)), &format!("mac: 0x{}", "c3".repeat(31))),
            text.replace(&format!("expires: {}", NOW + 300), "expires: soon"),
            lower_address,
            text.lines().filter(|l| !l.starts_with("mac")).collect::<Vec<_>>().join("\n"),
            // Lines swapped.
            text.replace("hub: ", "HUB").replace("chain: ", "hub: ").replace("HUB", "chain: "),
            // What else a hub might want signed: an EIP-712 digest, a transaction.
            "0x19010000000000000000000000000000000000000000000000000000000000000000".into(),
            "transfer 1 ETH to 0xab".into(),
            String::new(),
            "x".repeat(MAX_CHALLENGE_LEN + 1),
        ];
        for v in variants {
            assert!(
                matches!(check_challenge(&v, &expected(), NOW), Err(ChallengeError::Malformed(_))),
                "accepted {v:?}"
            );
        }
    }

    #[test]
    fn a_challenge_for_someone_else_elsewhere_or_at_another_time_is_refused() {
        let c = sample();
        let e = expected();
        let other = Address::repeat_byte(0x01);
        let with = |f: &dyn Fn(&mut LoginChallenge)| {
            let mut x = c.clone();
            f(&mut x);
            check_challenge(&x.text(), &e, NOW)
        };
        assert_eq!(
            with(&|x| x.address = other),
            Err(ChallengeError::WrongAddress { expected: c.address, found: other })
        );
        assert_eq!(with(&|x| x.hub = other), Err(ChallengeError::WrongHub { expected: c.hub, found: other }));
        assert_eq!(with(&|x| x.chain_id = 1), Err(ChallengeError::WrongChain { expected: 31337, found: 1 }));
        assert_eq!(with(&|x| x.expires_at = NOW), Err(ChallengeError::Expired { expires_at: NOW, now: NOW }));
        let far = NOW + MAX_CHALLENGE_LIFETIME + 1;
        assert_eq!(with(&|x| x.expires_at = far), Err(ChallengeError::TooLong { expires_at: far, now: NOW }));
        assert!(with(&|x| x.expires_at = NOW + MAX_CHALLENGE_LIFETIME).is_ok());
    }
}
