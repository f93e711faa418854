//! The Rust protocol types against the deployed contracts: signatures made in Rust are
//! accepted, tampered ones refused, and ids and digests equal the contract's.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::bindings::Adjudicator;
use ingrid_client_sdk::bindings::adjudicator::Adjudicator::AdjudicatorErrors;
use ingrid_client_sdk::bindings::eth_holder::{EthAssetHolder, IAssetHolder};
use ingrid_client_sdk::chain::{self, ChainError, Contracts};
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::state::{channel_id, funding_id};
use ingrid_client_sdk::{Allocation, Params, State, SubAlloc};
use proptest::prelude::*;

struct Setup {
    devnet: Devnet,
    alice: PrivateKeySigner,
    ingrid: PrivateKeySigner,
    provider: DynProvider,
    contracts: Contracts,
}

async fn setup() -> anyhow::Result<Setup> {
    let devnet = Devnet::start()?;
    let (alice, ingrid) = (devnet.key(0), devnet.key(1));
    let provider = devnet.provider(&ingrid);
    let contracts = chain::deploy(&provider).await?;
    Ok(Setup { devnet, alice, ingrid, provider, contracts })
}

/// Fails unless `result` is the adjudicator's `InvalidSignature` revert.
fn expect_invalid_signature<T>(result: Result<T, ChainError>) -> anyhow::Result<()> {
    match result {
        Err(err) if matches!(err.adjudicator_error(), Some(AdjudicatorErrors::InvalidSignature(_))) => Ok(()),
        Err(err) => anyhow::bail!("expected InvalidSignature, got {err}"),
        Ok(_) => anyhow::bail!("expected InvalidSignature, the call succeeded"),
    }
}

fn params(a: Address, b: Address, nonce: u64) -> Params {
    Params {
        challengeDuration: 60,
        nonce: U256::from(nonce),
        participants: [a, b],
        ledger: true,
        isVirtual: false,
        app: Address::ZERO,
    }
}

fn state(channel: B256, version: u64, asset: Address, balances: [u64; 2], is_final: bool) -> State {
    State {
        channelId: channel,
        version,
        outcome: Allocation {
            assets: vec![asset],
            balances: vec![[U256::from(balances[0]), U256::from(balances[1])]],
            locked: vec![],
        },
        appData: Bytes::new(),
        isFinal: is_final,
    }
}

#[tokio::test]
async fn state_signed_in_rust_is_accepted_by_the_adjudicator() -> anyhow::Result<()> {
    let s = setup().await?;
    let d = s.contracts.deployment;
    let p = params(s.alice.address(), s.ingrid.address(), 1);
    let st = state(channel_id(&p), 3, s.contracts.eth_holder, [10, 20], false);
    let signed = chain::sign_both(&d, &p, &st, [&s.alice, &s.ingrid])?;
    chain::register(&s.provider, &s.contracts.deployment, signed, vec![]).await?;

    let record = chain::dispute(&s.provider, &s.contracts.deployment, st.channelId).await?;
    assert_eq!(record.version, 3);
    assert_eq!(record.phase, chain::phase::DISPUTE);
    assert!(record.timeout > 0);
    assert_eq!(record.state_hash, d.state_digest(&st), "the record holds the digest Rust computed");
    Ok(())
}

#[tokio::test]
async fn tampered_or_misattributed_states_are_rejected() -> anyhow::Result<()> {
    let s = setup().await?;
    let d = s.contracts.deployment;
    let p = params(s.alice.address(), s.ingrid.address(), 2);
    let st = state(channel_id(&p), 1, s.contracts.eth_holder, [10, 20], false);

    // Balances changed after signing.
    let mut tampered = chain::sign_both(&d, &p, &st, [&s.alice, &s.ingrid])?;
    tampered.state.outcome.balances[0] = [U256::from(30), U256::from(0)];
    expect_invalid_signature(chain::register(&s.provider, &s.contracts.deployment, tampered, vec![]).await)?;

    // Version changed after signing.
    let mut bumped = chain::sign_both(&d, &p, &st, [&s.alice, &s.ingrid])?;
    bumped.state.version = 2;
    expect_invalid_signature(chain::register(&s.provider, &s.contracts.deployment, bumped, vec![]).await)?;

    // Signatures in the wrong order, and a stranger's signature.
    let swapped = chain::sign_both(&d, &p, &st, [&s.ingrid, &s.alice])?;
    expect_invalid_signature(chain::register(&s.provider, &s.contracts.deployment, swapped, vec![]).await)?;
    let stranger = PrivateKeySigner::random();
    let forged = chain::sign_both(&d, &p, &st, [&s.alice, &stranger])?;
    expect_invalid_signature(chain::register(&s.provider, &s.contracts.deployment, forged, vec![]).await)?;

    // Signed for another chain id or another adjudicator deployment.
    for other in [
        ingrid_client_sdk::Deployment { chain_id: d.chain_id + 1, ..d },
        ingrid_client_sdk::Deployment { adjudicator: Address::repeat_byte(1), ..d },
    ] {
        let replayed = chain::sign_both(&other, &p, &st, [&s.alice, &s.ingrid])?;
        expect_invalid_signature(chain::register(&s.provider, &s.contracts.deployment, replayed, vec![]).await)?;
    }

    // Nothing was registered by any of the attempts.
    let record = chain::dispute(&s.provider, &s.contracts.deployment, st.channelId).await?;
    assert_eq!(record.phase, chain::phase::NONE);

    // The refused sends left the provider's nonce where it was: a valid one is mined (with a
    // cached nonce manager, each refusal at gas estimation moved the nonce one ahead and the
    // next transaction waited for ever).
    let valid = chain::sign_both(&d, &p, &st, [&s.alice, &s.ingrid])?;
    let mined = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        chain::register(&s.provider, &s.contracts.deployment, valid, vec![]),
    )
    .await;
    assert!(matches!(mined, Ok(Ok(_))), "a valid registration after refused ones is mined: {mined:?}");
    Ok(())
}

#[tokio::test]
async fn erc20_channel_settles_and_withdraws_in_rust() -> anyhow::Result<()> {
    let s = setup().await?;
    let d = s.contracts.deployment;
    let token = chain::deploy_test_token(&s.provider, &s.contracts).await?;
    let token_address = token.token.expect("an ERC20 asset");
    let pa = s.devnet.provider(&s.alice);
    chain::mint_test_token(&s.provider, token_address, s.alice.address(), U256::from(1_000)).await?;
    chain::mint_test_token(&s.provider, token_address, s.ingrid.address(), U256::from(1_000)).await?;

    let p = params(s.alice.address(), s.ingrid.address(), 3);
    let ch = channel_id(&p);
    chain::deposit(&pa, &token, ch, s.alice.address(), U256::from(300)).await?;
    chain::deposit(&s.provider, &token, ch, s.ingrid.address(), U256::from(200)).await?;
    let last = state(ch, 7, token.holder, [120, 380], true);
    chain::conclude_final(&s.provider, &d, chain::sign_both(&d, &p, &last, [&s.alice, &s.ingrid])?).await?;

    let receiver = Address::repeat_byte(0x42);
    let got = chain::withdraw(&pa, &d, token.holder, &s.alice, ch, receiver).await?;
    assert_eq!(got, U256::from(120));
    let got = chain::withdraw(&s.provider, &d, token.holder, &s.ingrid, ch, s.ingrid.address()).await?;
    assert_eq!(got, U256::from(380));
    let tok = ingrid_client_sdk::bindings::TestToken::new(token_address, &s.provider);
    assert_eq!(tok.balanceOf(receiver).call().await?, U256::from(120));
    assert_eq!(tok.balanceOf(token.holder).call().await?, U256::ZERO);
    Ok(())
}

/// A withdrawal authorisation signed in Rust pays exactly its amount once: a 1-wei deposit
/// made first by someone else does not block it, and it cannot be replayed (issue 11, flaw 6).
#[tokio::test]
async fn withdrawal_signed_in_rust_pays_its_amount_once() -> anyhow::Result<()> {
    let s = setup().await?;
    let d = s.contracts.deployment;
    let eth = s.contracts.eth();
    let pa = s.devnet.provider(&s.alice);
    let p = params(s.alice.address(), s.ingrid.address(), 4);
    let ch = channel_id(&p);
    chain::deposit(&pa, &eth, ch, s.alice.address(), U256::from(500)).await?;
    let last = state(ch, 1, eth.holder, [500, 0], true);
    chain::conclude_final(&s.provider, &d, chain::sign_both(&d, &p, &last, [&s.alice, &s.ingrid])?).await?;

    let receiver = Address::repeat_byte(0x43);
    let nonce = chain::withdrawal_nonce(&s.provider, eth.holder, ch, s.alice.address()).await?;
    assert_eq!(nonce, U256::ZERO);
    let (auth, sig) = chain::sign_withdrawal(&d, eth.holder, &s.alice, ch, receiver, U256::from(500), nonce)?;
    // Someone deposits 1 wei to Alice's funding id first.
    chain::deposit(&s.provider, &eth, ch, s.alice.address(), U256::from(1)).await?;
    let holder = EthAssetHolder::new(eth.holder, &s.provider);
    chain::confirm(holder.withdraw(auth.clone(), sig.clone()).send().await?).await?;
    assert_eq!(s.provider.get_balance(receiver).await?, U256::from(500));
    assert_eq!(chain::holdings(&s.provider, eth.holder, ch, s.alice.address()).await?, U256::from(1));
    assert_eq!(chain::withdrawal_nonce(&s.provider, eth.holder, ch, s.alice.address()).await?, U256::from(1));
    // The same authorisation again is refused.
    chain::deposit(&s.provider, &eth, ch, s.alice.address(), U256::from(499)).await?;
    assert!(holder.withdraw(auth, sig).send().await.is_err(), "a replayed authorisation must revert");
    assert_eq!(chain::withdraw(&pa, &d, eth.holder, &s.alice, ch, receiver).await?, U256::from(500));
    assert_eq!(s.provider.get_balance(receiver).await?, U256::from(1_000));
    Ok(())
}

fn arb_address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn arb_u256() -> impl Strategy<Value = U256> {
    any::<[u8; 32]>().prop_map(U256::from_be_bytes)
}

fn arb_params() -> impl Strategy<Value = Params> {
    (any::<u64>(), arb_u256(), arb_address(), arb_address(), any::<bool>(), any::<bool>(), arb_address()).prop_map(
        |(challenge_duration, nonce, a, b, ledger, is_virtual, app)| Params {
            challengeDuration: challenge_duration,
            nonce,
            participants: [a, b],
            ledger,
            isVirtual: is_virtual,
            app,
        },
    )
}

fn arb_state() -> impl Strategy<Value = State> {
    (1usize..4).prop_flat_map(|assets| {
        let lock = (any::<[u8; 32]>(), prop::collection::vec(arb_u256(), assets), any::<[u16; 2]>())
            .prop_map(|(id, balances, index_map)| SubAlloc { id: B256::from(id), balances, indexMap: index_map });
        (
            any::<[u8; 32]>(),
            any::<u64>(),
            prop::collection::vec(arb_address(), assets),
            prop::collection::vec((arb_u256(), arb_u256()).prop_map(|(a, b)| [a, b]), assets),
            prop::collection::vec(lock, 0..3),
            prop::collection::vec(any::<u8>(), 0..70),
            any::<bool>(),
        )
            .prop_map(|(id, version, assets, balances, locked, app, is_final)| State {
                channelId: B256::from(id),
                version,
                outcome: Allocation { assets, balances, locked },
                appData: Bytes::from(app),
                isFinal: is_final,
            })
    })
}

#[test]
fn ids_and_digests_equal_the_contracts_for_random_params_and_states() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let s = rt.block_on(setup())?;
    let adjudicator = Adjudicator::new(s.contracts.deployment.adjudicator, &s.provider);
    let d = s.contracts.deployment;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 64, ..ProptestConfig::default() });
    runner
        .run(&(arb_params(), arb_state()), |(p, st)| {
            let (id, digest) = rt
                .block_on(async {
                    Ok::<_, anyhow::Error>((
                        adjudicator.channelId(p.clone()).call().await?,
                        adjudicator.hashState(st.clone()).call().await?,
                    ))
                })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(id, channel_id(&p));
            prop_assert_eq!(digest, d.state_digest(&st));
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[test]
fn withdrawal_digests_and_funding_ids_equal_the_contracts() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let s = rt.block_on(setup())?;
    let d = s.contracts.deployment;
    let holder = EthAssetHolder::new(s.contracts.eth_holder, &s.provider);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 32, ..ProptestConfig::default() });
    runner
        .run(
            &(any::<[u8; 32]>(), arb_address(), arb_address(), arb_u256(), arb_u256()),
            |(ch, participant, receiver, amount, nonce)| {
                let ch = B256::from(ch);
                let auth = IAssetHolder::Withdrawal { channelId: ch, participant, receiver, amount, nonce };
                let (digest, fid) = rt
                    .block_on(async {
                        Ok::<_, anyhow::Error>((
                            holder.withdrawalDigest(auth).call().await?,
                            holder.fundingId(ch, participant).call().await?,
                        ))
                    })
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    digest,
                    d.withdrawal_digest(s.contracts.eth_holder, ch, participant, receiver, amount, nonce)
                );
                prop_assert_eq!(fid, funding_id(ch, participant));
                Ok(())
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[test]
fn dev_keys_are_anvils_default_accounts() -> anyhow::Result<()> {
    let devnet = Devnet::start()?;
    for i in 0..4 {
        assert_eq!(Devnet::dev_key(i).expect("key").address(), devnet.key(i).address());
    }
    assert!(Devnet::dev_key(4).is_none());
    Ok(())
}
