//! Channel ids, state digests and signatures, computed exactly as the contracts do.
//!
//! A state is signed as EIP-712 typed data `ChannelState` in the domain
//! `("Ingrid", "1", chain id, adjudicator)`, so a signature is never valid for another
//! channel, version, chain or deployment. Withdrawals are signed as `Withdrawal` in the
//! domain `("IngridAssetHolder", "1", chain id, asset holder)`, with the exact amount to pay
//! and the funding id's next nonce, so an authorisation is used at most once.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain};
use serde::{Deserialize, Serialize};

use crate::bindings::Channel::{Params, State};

mod typed {
    alloy::sol! {
        /// The EIP-712 type of a signed channel state (see `Channel.sol`).
        struct ChannelState {
            bytes32 channelId;
            uint64 version;
            bytes32 outcomeHash;
            bytes32 appDataHash;
            bool isFinal;
        }

        /// The EIP-712 type of a withdrawal authorisation (see `IAssetHolder.sol`):
        /// `Withdrawal(bytes32 channelId,address participant,address receiver,uint256 amount,uint256 nonce)`.
        struct Withdrawal {
            bytes32 channelId;
            address participant;
            address receiver;
            uint256 amount;
            uint256 nonce;
        }
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 65 bytes of r, s, v.
    #[error("signature is not 65 bytes of r||s||v")]
    Malformed,
    /// s is in the upper half of the curve order; the contracts refuse such signatures.
    #[error("signature has a high s value")]
    HighS,
    /// Recovery failed.
    #[error("signature does not recover to any address")]
    Unrecoverable,
    /// Recovered a signer other than the one expected.
    #[error("signed by {actual}, expected {expected}")]
    WrongSigner {
        /// Who should have signed.
        expected: Address,
        /// Who did sign.
        actual: Address,
    },
    /// The local key could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The deployment signatures are bound to: a chain and an adjudicator on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Address of the adjudicator contract.
    pub adjudicator: Address,
}

impl Deployment {
    /// The EIP-712 domain of channel states.
    pub fn state_domain(&self) -> Eip712Domain {
        eip712_domain! {
            name: "Ingrid",
            version: "1",
            chain_id: self.chain_id,
            verifying_contract: self.adjudicator,
        }
    }

    /// The EIP-712 domain of withdrawals from the asset holder at `holder`.
    pub fn withdrawal_domain(&self, holder: Address) -> Eip712Domain {
        eip712_domain! {
            name: "IngridAssetHolder",
            version: "1",
            chain_id: self.chain_id,
            verifying_contract: holder,
        }
    }

    /// The digest both participants sign for `state`; equals `Adjudicator.hashState(state)`.
    pub fn state_digest(&self, state: &State) -> B256 {
        typed::ChannelState {
            channelId: state.channelId,
            version: state.version,
            outcomeHash: keccak256(state.outcome.abi_encode()),
            appDataHash: keccak256(&state.appData),
            isFinal: state.isFinal,
        }
        .eip712_signing_hash(&self.state_domain())
    }

    /// Signs `state` with `key`, returning the 65-byte signature the contracts expect.
    pub fn sign_state(&self, key: &PrivateKeySigner, state: &State) -> Result<Bytes, SignatureError> {
        sign_digest(key, &self.state_digest(state))
    }

    /// Checks that `sig` is `expected`'s signature on `state`.
    pub fn verify_state(&self, state: &State, sig: &[u8], expected: Address) -> Result<(), SignatureError> {
        verify_digest(&self.state_digest(state), sig, expected)
    }

    /// The digest `participant` signs to withdraw exactly `amount` from `holder` to `receiver`
    /// with the authorisation numbered `nonce` (the holder's `nonces(fundingId)` at the time
    /// of withdrawal); equals `AssetHolder.withdrawalDigest`.
    pub fn withdrawal_digest(
        &self,
        holder: Address,
        channel_id: B256,
        participant: Address,
        receiver: Address,
        amount: U256,
        nonce: U256,
    ) -> B256 {
        typed::Withdrawal { channelId: channel_id, participant, receiver, amount, nonce }
            .eip712_signing_hash(&self.withdrawal_domain(holder))
    }
}

/// The channel id of `params`: `keccak256(abi.encode(params))`.
pub fn channel_id(params: &Params) -> B256 {
    keccak256(params.abi_encode())
}

/// The funding id of `participant` in `channel` at an asset holder:
/// `keccak256(abi.encode(channelId, participant))` (`AssetHolder.fundingId`).
pub fn funding_id(channel: B256, participant: Address) -> B256 {
    keccak256((channel, participant).abi_encode())
}

/// Half the order of secp256k1: a signature's s must not exceed it (EIP-2, OpenZeppelin).
const HALF_ORDER: U256 =
    U256::from_be_slice(&alloy::hex!("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"));

/// Signs a 32-byte digest, returning r||s||v with v in {27, 28} and a low s: the same bytes
/// as alloy's local signer (both use RFC 6979 nonces). Natively made by libsecp256k1, which
/// is about three times faster on the hub's hot path; on wasm32 by alloy's k256 signer.
pub fn sign_digest(key: &PrivateKeySigner, digest: &B256) -> Result<Bytes, SignatureError> {
    ecdsa::sign(key, digest)
}

/// Recovers the signer of `digest` from a 65-byte signature, refusing what the contracts
/// refuse: another length, v other than 27 or 28, a high s.
pub fn recover_digest(digest: &B256, sig: &[u8]) -> Result<Address, SignatureError> {
    let [rs @ .., v] = sig else { return Err(SignatureError::Malformed) };
    if rs.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let odd = match v {
        27 | 28 => *v == 28,
        _ => return Err(SignatureError::Malformed),
    };
    if U256::from_be_slice(&rs[32..]) > HALF_ORDER {
        return Err(SignatureError::HighS);
    }
    ecdsa::recover(digest, rs, odd)
}

#[cfg(target_arch = "wasm32")]
use k256_ecdsa as ecdsa;

/// libsecp256k1 (native targets).
#[cfg(not(target_arch = "wasm32"))]
mod ecdsa {
    use alloy::primitives::{Address, B256, Bytes, keccak256};
    use alloy::signers::local::PrivateKeySigner;

    use super::SignatureError;

    /// libsecp256k1's context, made once (making one costs milliseconds).
    static SECP: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::All>> =
        std::sync::LazyLock::new(secp256k1::Secp256k1::new);

    pub fn sign(key: &PrivateKeySigner, digest: &B256) -> Result<Bytes, SignatureError> {
        let secret = secp256k1::SecretKey::from_byte_array(&key.to_bytes().0)
            .map_err(|e| SignatureError::Signing(e.to_string()))?;
        let (id, rs) =
            SECP.sign_ecdsa_recoverable(&secp256k1::Message::from_digest(digest.0), &secret).serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        out[64] = 27 + i32::from(id) as u8;
        Ok(Bytes::copy_from_slice(&out))
    }

    pub fn recover(digest: &B256, rs: &[u8], odd: bool) -> Result<Address, SignatureError> {
        let id = secp256k1::ecdsa::RecoveryId::try_from(i32::from(odd)).map_err(|_| SignatureError::Malformed)?;
        let sig =
            secp256k1::ecdsa::RecoverableSignature::from_compact(rs, id).map_err(|_| SignatureError::Malformed)?;
        let key = SECP
            .recover_ecdsa(&secp256k1::Message::from_digest(digest.0), &sig)
            .map_err(|_| SignatureError::Unrecoverable)?;
        let hash = keccak256(&key.serialize_uncompressed()[1..]);
        Ok(Address::from_slice(&hash[12..]))
    }
}

/// alloy's k256 signer and recovery (wasm32, where libsecp256k1's C code does not build
/// without clang; natively built for the test that both backends agree).
#[cfg(any(target_arch = "wasm32", test))]
mod k256_ecdsa {
    use alloy::primitives::{Address, B256, Bytes, Signature};
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    use super::SignatureError;

    pub fn sign(key: &PrivateKeySigner, digest: &B256) -> Result<Bytes, SignatureError> {
        let sig = key.sign_hash_sync(digest).map_err(|e| SignatureError::Signing(e.to_string()))?;
        Ok(Bytes::from(sig.as_bytes().to_vec()))
    }

    pub fn recover(digest: &B256, rs: &[u8], odd: bool) -> Result<Address, SignatureError> {
        Signature::from_bytes_and_parity(rs, odd)
            .recover_address_from_prehash(digest)
            .map_err(|_| SignatureError::Unrecoverable)
    }
}

/// Checks that `sig` is `expected`'s signature on `digest`.
pub fn verify_digest(digest: &B256, sig: &[u8], expected: Address) -> Result<(), SignatureError> {
    let actual = recover_digest(digest, sig)?;
    if actual == expected { Ok(()) } else { Err(SignatureError::WrongSigner { expected, actual }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::Channel::Allocation;

    fn deployment() -> Deployment {
        Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) }
    }

    fn state(version: u64) -> State {
        State {
            channelId: B256::repeat_byte(1),
            version,
            outcome: Allocation {
                assets: vec![Address::ZERO],
                balances: vec![[U256::from(3), U256::from(3)]],
                locked: vec![],
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    #[test]
    fn signature_round_trip() {
        let key = PrivateKeySigner::random();
        let d = deployment();
        let sig = d.sign_state(&key, &state(1)).expect("sign");
        assert_eq!(sig.len(), 65);
        assert!(d.verify_state(&state(1), &sig, key.address()).is_ok());
    }

    #[test]
    fn signature_is_bound_to_version_chain_and_deployment() {
        let key = PrivateKeySigner::random();
        let d = deployment();
        let sig = d.sign_state(&key, &state(1)).expect("sign");
        assert!(matches!(d.verify_state(&state(2), &sig, key.address()), Err(SignatureError::WrongSigner { .. })));
        let other_chain = Deployment { chain_id: 1, ..d };
        assert!(other_chain.verify_state(&state(1), &sig, key.address()).is_err());
        let other_adjudicator = Deployment { adjudicator: Address::repeat_byte(0xae), ..d };
        assert!(other_adjudicator.verify_state(&state(1), &sig, key.address()).is_err());
    }

    proptest::proptest! {
        /// libsecp256k1 makes the same signature bytes as alloy's k256 signer, and recovers
        /// the same address as alloy.
        #[test]
        fn libsecp256k1_agrees_with_alloy(key in proptest::array::uniform32(1u8..), digest in proptest::array::uniform32(proptest::num::u8::ANY)) {
            use alloy::signers::SignerSync;
            let key = PrivateKeySigner::from_slice(&key).expect("key");
            let digest = B256::from(digest);
            let ours = sign_digest(&key, &digest).expect("sign");
            let alloys = key.sign_hash_sync(&digest).expect("sign");
            proptest::prop_assert_eq!(ours.to_vec(), alloys.as_bytes().to_vec());
            proptest::prop_assert_eq!(recover_digest(&digest, &ours), Ok(key.address()));
            proptest::prop_assert_eq!(alloys.recover_address_from_prehash(&digest).expect("recover"), key.address());
        }
    }

    proptest::proptest! {
        /// The wasm32 backend (k256) makes and recovers exactly what the native one does.
        #[test]
        fn both_ecdsa_backends_agree(key in proptest::array::uniform32(1u8..), digest in proptest::array::uniform32(proptest::num::u8::ANY), odd: bool) {
            let key = PrivateKeySigner::from_slice(&key).expect("key");
            let digest = B256::from(digest);
            let native = ecdsa::sign(&key, &digest).expect("sign");
            proptest::prop_assert_eq!(&native, &k256_ecdsa::sign(&key, &digest).expect("sign"));
            let odd_native = native[64] == 28;
            proptest::prop_assert_eq!(k256_ecdsa::recover(&digest, &native[..64], odd_native), Ok(key.address()));
            // Either parity: the same verdict from both (another key, or an error).
            proptest::prop_assert_eq!(
                ecdsa::recover(&digest, &native[..64], odd).ok(),
                k256_ecdsa::recover(&digest, &native[..64], odd).ok()
            );
        }
    }

    #[test]
    fn malformed_and_high_s_signatures_are_refused() {
        let key = PrivateKeySigner::random();
        let d = deployment();
        let digest = d.state_digest(&state(1));
        let sig = sign_digest(&key, &digest).expect("sign");
        assert_eq!(recover_digest(&digest, &sig[..64]), Err(SignatureError::Malformed));
        // The same signature with s' = n - s and the parity flipped recovers the same key,
        // but the contracts (OpenZeppelin ECDSA) refuse it, so must we.
        let parsed = alloy::primitives::Signature::from_raw(&sig).expect("parse");
        let n = U256::from_be_slice(&alloy::hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"));
        let high = alloy::primitives::Signature::new(parsed.r(), n - parsed.s(), !parsed.v());
        assert_eq!(recover_digest(&digest, &high.as_bytes()), Err(SignatureError::HighS));
    }
}
