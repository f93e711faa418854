//! One rule, two implementations, no drift: each app's Rust rule (`ingrid_protocol::app`) and
//! its deployed contract judge the same generated moves, and must give the same verdict.
//!
//! Moves start from states reached by random games (and from mutations of them); a move is
//! one the game could make, made by the right or the wrong participant, then often mutated
//! (finality flipped, coins moved, a field set to a random value, a byte of the app data
//! changed, the data cut or extended). `APP_CASES` sets the number of moves per app
//! (default 34,000: 102,000 in all), `APP_SEED` the seed.
//!
//! The adjudicator's own checks around the rule get the same treatment: `check_move` and
//! `progress` (on a `ProgressChecker`, which plants a record of `from` where force-execution
//! may begin) judge moves signed for real, mutated to break one check each: the version, the
//! channel, the params, the assets, the totals, locks, a final `from`, the signature, the
//! actor, the app data's length. `PROGRESS_CASES` sets the number of moves per app (default
//! 10,000: 30,000 in all).

use std::collections::BTreeMap;
use std::time::Instant;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use ingrid_client_sdk::app::{self, AppDeployment, AppKind, coin_flip, conditional_payment, tic_tac_toe};
use ingrid_client_sdk::bindings::apps::{AppChecker, CoinFlip, ProgressChecker, app_checker, progress_checker};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::{Allocation, Deployment, Params, Role, State, SubAlloc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Moves judged per call of the checker.
const BATCH: usize = 200;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn params(app: Address) -> Params {
    Params {
        challengeDuration: 60,
        nonce: U256::from(1),
        participants: [Address::repeat_byte(0xa1), Address::repeat_byte(0xb0)],
        ledger: false,
        isVirtual: true,
        app,
    }
}

fn b256(rng: &mut StdRng) -> B256 {
    B256::from(rng.random::<[u8; 32]>())
}

fn role(rng: &mut StdRng) -> Role {
    if rng.random_bool(0.5) { Role::First } else { Role::Second }
}

/// An amount: mostly small, sometimes zero, sometimes near the top of `uint256` (to reach
/// the overflow checks).
fn amount(rng: &mut StdRng) -> U256 {
    match rng.random_range(0..10) {
        0 => U256::ZERO,
        1 => U256::MAX - U256::from(rng.random_range(0..3u64)),
        _ => U256::from(rng.random_range(1..1_000u64)),
    }
}

/// The opening state of `kind` with random stakes in one or two assets.
fn opening(kind: AppKind, p: &Params, rng: &mut StdRng) -> State {
    let assets = rng.random_range(1..=2);
    let balances: Vec<[U256; 2]> = (0..assets)
        .map(|_| {
            if rng.random_bool(0.05) {
                [amount(rng), amount(rng)]
            } else {
                [U256::from(rng.random_range(0..500u64)), U256::from(rng.random_range(0..500u64))]
            }
        })
        .collect();
    let app_data = match kind {
        AppKind::CoinFlip => coin_flip::opening(),
        AppKind::TicTacToe => tic_tac_toe::opening(&balances),
        AppKind::ConditionalPayment => conditional_payment::opening(role(rng)),
    };
    State {
        channelId: channel_id(p),
        version: rng.random_range(0..5),
        outcome: Allocation {
            assets: (0..assets).map(|i| Address::repeat_byte(0xe0 + i as u8)).collect(),
            balances,
            locked: vec![],
        },
        appData: app_data,
        isFinal: false,
    }
}

/// The secrets a game needs to make its moves (the coin flip's salt and bit, the
/// conditional payment's preimage), kept with each state of the pool.
#[derive(Clone)]
struct Secrets {
    salt: B256,
    bit: bool,
    preimage: Bytes,
}

/// Which coin-flip move to make: mostly the one the stage calls for, sometimes any.
fn coin_flip_move(from: &State, rng: &mut StdRng) -> u8 {
    match coin_flip::data(from).map(|d| d.stage) {
        Ok(stage @ 0..=2) if rng.random_bool(0.7) => stage,
        _ => rng.random_range(0..3),
    }
}

/// App data of a move `kind`'s game could make from `from` (right or wrong).
fn candidate(kind: AppKind, from: &State, secrets: &mut Secrets, rng: &mut StdRng) -> Option<Bytes> {
    match kind {
        AppKind::CoinFlip => match coin_flip_move(from, rng) {
            0 => {
                secrets.salt = b256(rng);
                secrets.bit = rng.random_bool(0.5);
                Some(coin_flip::commit(secrets.salt, secrets.bit))
            }
            1 => coin_flip::guess(from, rng.random_bool(0.5)).ok(),
            _ => {
                let bit = if rng.random_bool(0.8) { secrets.bit } else { rng.random_bool(0.5) };
                let salt = if rng.random_bool(0.9) { secrets.salt } else { b256(rng) };
                coin_flip::reveal(from, salt, bit).ok()
            }
        },
        AppKind::TicTacToe => tic_tac_toe::place(from, role(rng), rng.random_range(0..9)).ok(),
        AppKind::ConditionalPayment => {
            if rng.random_bool(0.5) {
                let len = rng.random_range(0..80);
                secrets.preimage = (0..len).map(|_| rng.random::<u8>()).collect::<Vec<u8>>().into();
                let n = if rng.random_bool(0.95) { from.outcome.balances.len() } else { rng.random_range(0..3) };
                let amounts = (0..n)
                    .map(|a| match from.outcome.balances.get(a) {
                        Some(b) if rng.random_bool(0.8) => {
                            let held = b[0].max(b[1]);
                            if held.is_zero() {
                                U256::ZERO
                            } else {
                                U256::from(rng.random::<u64>()) % held.saturating_add(U256::from(1))
                            }
                        }
                        _ => amount(rng),
                    })
                    .collect();
                conditional_payment::offer(from, conditional_payment::lock_of(&secrets.preimage), amounts).ok()
            } else {
                let preimage = if rng.random_bool(0.85) {
                    secrets.preimage.clone()
                } else {
                    Bytes::from(rng.random::<[u8; 8]>().to_vec())
                };
                conditional_payment::claim(from, preimage).ok()
            }
        }
    }
}

/// A random change of `to`: its finality, its coins, its data (a field, a byte, the length).
fn mutate(kind: AppKind, to: &mut State, rng: &mut StdRng) {
    match rng.random_range(0..7) {
        0 => to.isFinal = !to.isFinal,
        1 => {
            let a = rng.random_range(0..to.outcome.balances.len());
            let p = rng.random_range(0..2);
            let b = &mut to.outcome.balances[a];
            let d = U256::from(rng.random_range(1..5u64));
            // Moves coins between the two (total kept) or changes one side (total changed).
            if rng.random_bool(0.7) && b[p] >= d {
                b[p] -= d;
                b[1 - p] = b[1 - p].saturating_add(d);
            } else {
                b[p] = b[p].saturating_add(d);
            }
        }
        2 => {
            to.outcome.balances.swap_remove(0);
        }
        3 if !to.appData.is_empty() => {
            let mut data = to.appData.to_vec();
            let i = rng.random_range(0..data.len());
            data[i] = data[i].wrapping_add(rng.random_range(1..=255));
            to.appData = data.into();
        }
        4 => {
            let mut data = to.appData.to_vec();
            if rng.random_bool(0.5) && !data.is_empty() {
                data.truncate(rng.random_range(0..data.len()));
            } else {
                data.extend((0..rng.random_range(1..40)).map(|_| rng.random::<u8>()));
            }
            to.appData = data.into();
        }
        _ => set_field(kind, to, rng),
    }
}

/// Sets one field of `state`'s app data to a random (often out-of-range) value.
fn set_field(kind: AppKind, state: &mut State, rng: &mut StdRng) {
    let data: Option<Vec<u8>> = match kind {
        AppKind::CoinFlip => coin_flip::data(state).ok().map(|mut d| {
            match rng.random_range(0..5) {
                0 => d.stage = rng.random_range(0..6),
                1 => d.guess = rng.random_range(0..4),
                2 => d.bit = rng.random_range(0..4),
                3 => d.salt = b256(rng),
                _ => d.commitment = b256(rng),
            }
            d.abi_encode()
        }),
        AppKind::TicTacToe => tic_tac_toe::data(state).ok().map(|mut d| {
            if rng.random_bool(0.8) {
                d.board[rng.random_range(0..9)] = rng.random_range(0..4);
            } else if let Some(s) = d.stakes.first_mut() {
                s[rng.random_range(0..2)] = amount(rng);
            } else {
                d.stakes.push([amount(rng), amount(rng)]);
            }
            d.abi_encode()
        }),
        AppKind::ConditionalPayment => conditional_payment::data(state).ok().map(|mut d| {
            match rng.random_range(0..4) {
                0 => d.payer = rng.random_range(0..3),
                1 => d.lock = b256(rng),
                2 => d.amounts.push(amount(rng)),
                _ => d.preimage = Bytes::from(rng.random::<[u8; 4]>().to_vec()),
            }
            d.abi_encode()
        }),
    };
    if let Some(data) = data {
        state.appData = data.into();
    }
}

/// One move to judge: from, to, actor, and the Rust verdict.
struct Case {
    from: State,
    to: State,
    actor: Role,
    valid: bool,
}

/// `n` moves of `kind`, from a pool of states its random games reach.
fn cases(kind: AppKind, p: &Params, n: usize, rng: &mut StdRng) -> Vec<Case> {
    let rule = kind.rule();
    let mut pool: Vec<(State, Secrets)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if pool.is_empty() || rng.random_bool(0.02) {
            let secrets = Secrets { salt: B256::ZERO, bit: false, preimage: Bytes::new() };
            pool.push((opening(kind, p, rng), secrets));
            if pool.len() > 400 {
                pool.swap_remove(rng.random_range(0..pool.len()));
            }
        }
        let (mut from, mut secrets) = pool[rng.random_range(0..pool.len())].clone();
        if rng.random_bool(0.03) {
            set_field(kind, &mut from, rng);
        }
        let Some(data) = candidate(kind, &from, &mut secrets, rng) else { continue };
        let actor = match rule.turn(&from) {
            Some(turn) if rng.random_bool(0.8) => turn,
            _ => role(rng),
        };
        let mut to = match rule.apply(p, &from, actor, data.clone()) {
            Ok(next) => {
                // A valid move extends the pool: games go on from it.
                pool.push((next.clone(), secrets.clone()));
                next
            }
            Err(_) => {
                let mut guess = from.clone();
                guess.version += 1;
                guess.appData = data;
                guess.isFinal = rng.random_bool(0.3);
                guess
            }
        };
        if rng.random_bool(0.4) {
            mutate(kind, &mut to, rng);
        }
        let valid = rule.valid_transition(p, &from, &to, actor).is_ok();
        out.push(Case { from, to, actor, valid });
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_rules_and_the_deployed_contracts_give_the_same_verdict() -> anyhow::Result<()> {
    let per_app = knob("APP_CASES", 34_000) as usize;
    let seed = knob("APP_SEED", rand::random());
    println!("APP_SEED={seed} APP_CASES={per_app}");
    let mut rng = StdRng::seed_from_u64(seed);

    let devnet = Devnet::start()?;
    let provider = devnet.provider(&devnet.key(0));
    let apps = chain::deploy_apps(&provider).await?;
    let checker = AppChecker::deploy(&provider).await?;

    let mut total = 0;
    for kind in AppKind::ALL {
        let p = params(apps.address(kind));
        let cases = cases(kind, &p, per_app, &mut rng);
        let valid = cases.iter().filter(|c| c.valid).count();
        // Both verdicts must be well represented for the comparison to mean something.
        assert!(valid * 10 >= cases.len(), "{kind:?}: only {valid} valid moves of {}", cases.len());
        assert!(valid * 10 <= cases.len() * 9, "{kind:?}: {valid} valid moves of {}", cases.len());
        let cp: app_checker::Channel::Params = app::convert(&p)?;
        for batch in cases.chunks(BATCH) {
            let moves = batch
                .iter()
                .map(|c| {
                    Ok(AppChecker::Move {
                        from: app::convert(&c.from)?,
                        to: app::convert(&c.to)?,
                        actor: U256::from(c.actor.index()),
                    })
                })
                .collect::<Result<Vec<_>, alloy::sol_types::Error>>()?;
            let verdicts = checker.verdicts(p.app, cp.clone(), moves).gas(1_000_000_000).call().await?;
            assert_eq!(verdicts.len(), batch.len());
            for (c, on_chain) in batch.iter().zip(verdicts) {
                if c.valid != on_chain {
                    let rust = kind.rule().valid_transition(&p, &c.from, &c.to, c.actor);
                    panic!(
                        "{kind:?} (APP_SEED={seed}): Rust says {rust:?}, the contract says valid = {on_chain}\n\
                         actor {:?}\nfrom {:?}\nto {:?}",
                        c.actor, c.from, c.to
                    );
                }
            }
        }
        println!("{kind:?}: {} moves, {valid} valid, same verdicts", cases.len());
        total += cases.len();
    }
    println!("{total} moves judged alike by Rust and the deployed contracts");
    Ok(())
}

// ---------------------------------------------------------------- progress and check_move

/// What the forced moves of one run share: the apps, the deployment signatures are bound to
/// (the checker's address on anvil), the two participants' keys and a stranger's.
struct World {
    apps: AppDeployment,
    deployment: Deployment,
    keys: [PrivateKeySigner; 2],
    stranger: PrivateKeySigner,
}

impl World {
    /// An app channel of the two participants.
    fn params(&self, app: Address) -> Params {
        Params {
            challengeDuration: 60,
            nonce: U256::from(7),
            participants: [self.keys[0].address(), self.keys[1].address()],
            ledger: false,
            isVirtual: true,
            app,
        }
    }

    /// The key of `who` (the stranger's if `who` is no participant).
    fn key_of(&self, who: Address) -> &PrivateKeySigner {
        self.keys.iter().find(|k| k.address() == who).unwrap_or(&self.stranger)
    }

    /// The key of the participant `actor` names in `params` (the stranger's past 1).
    fn mover(&self, params: &Params, actor: U256) -> &PrivateKeySigner {
        match usize::try_from(actor).ok().and_then(|i| params.participants.get(i)) {
            Some(who) => self.key_of(*who),
            None => &self.stranger,
        }
    }
}

/// One forced move to judge, `progress(params, from, to, actor, sig)`, and what was done to
/// it.
#[derive(Debug, Clone)]
struct Probe {
    what: &'static str,
    params: Params,
    from: State,
    to: State,
    actor: U256,
    sig: Bytes,
}

/// How a probe's `to` is signed.
enum Signing {
    /// By the participant `actor` names (the stranger for an actor past 1).
    Mover,
    /// By this key.
    Key(PrivateKeySigner),
    /// The mover's signature on this state instead of `to`.
    Other(State),
    /// The mover's signature on `to` for this deployment.
    Deployment(Deployment),
    /// The mover's signature made high-s: the same signer, a malleated encoding.
    HighS,
    /// The mover's signature with v as 0 or 1 instead of 27 or 28.
    RawV,
    /// These bytes.
    Raw(Bytes),
}

/// The order of secp256k1.
const SECP256K1_N: U256 =
    U256::from_be_slice(&alloy::hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"));

fn sign(w: &World, pr: &Probe, signing: Signing) -> Bytes {
    let mover = w.mover(&pr.params, pr.actor);
    let by = |key: &PrivateKeySigner, state: &State| w.deployment.sign_state(key, state).expect("signs");
    match signing {
        Signing::Mover => by(mover, &pr.to),
        Signing::Key(key) => by(&key, &pr.to),
        Signing::Other(state) => by(mover, &state),
        Signing::Deployment(d) => d.sign_state(mover, &pr.to).expect("signs"),
        Signing::HighS => {
            let mut sig = by(mover, &pr.to).to_vec();
            let s = SECP256K1_N - U256::from_be_slice(&sig[32..64]);
            sig[32..64].copy_from_slice(&s.to_be_bytes::<32>());
            sig[64] = 55 - sig[64];
            sig.into()
        }
        Signing::RawV => {
            let mut sig = by(mover, &pr.to).to_vec();
            sig[64] -= 27;
            sig.into()
        }
        Signing::Raw(sig) => sig,
    }
}

/// Sets `probe`'s params to `f` of them, with both states of the new channel (so only what
/// `f` changed differs).
fn reparam(pr: &mut Probe, f: impl FnOnce(&mut Params)) {
    f(&mut pr.params);
    let id = channel_id(&pr.params);
    pr.from.channelId = id;
    pr.to.channelId = id;
}

/// Some balance pair of `balances` (a new one if there is none).
fn some_pair<'a>(balances: &'a mut Vec<[U256; 2]>, rng: &mut StdRng) -> &'a mut [U256; 2] {
    if balances.is_empty() {
        balances.push([U256::ZERO; 2]);
    }
    let a = rng.random_range(0..balances.len());
    &mut balances[a]
}

/// A lock of a sub-channel, with one amount per asset of `outcome`.
fn lock(outcome: &Allocation, rng: &mut StdRng) -> SubAlloc {
    SubAlloc {
        id: b256(rng),
        balances: outcome.assets.iter().map(|_| U256::from(rng.random_range(0..3u64))).collect(),
        indexMap: [0, 1],
    }
}

/// A conditional payment's claim whose app data is about `MAX_APP_DATA` long (a preimage of
/// 780 to 840 bytes: 1024, 1056 or 1088 bytes of data), from an offer against it in place of
/// `from`'s data. `false` if `from` does not lend itself to one.
fn long_claim(pr: &mut Probe, rng: &mut StdRng) -> bool {
    let Ok(d) = conditional_payment::data(&pr.from) else { return false };
    let Ok(payer) = Role::from_index(usize::from(d.payer)) else { return false };
    let len = rng.random_range(780..=840);
    let preimage: Bytes = (0..len).map(|_| rng.random::<u8>()).collect::<Vec<u8>>().into();
    let amounts = pr.from.outcome.balances.iter().map(|b| b[payer.index()] / U256::from(2)).collect();
    let offer = conditional_payment::Data { lock: conditional_payment::lock_of(&preimage), amounts, ..d };
    pr.from.appData = offer.abi_encode().into();
    pr.from.isFinal = false;
    let Ok(data) = conditional_payment::claim(&pr.from, preimage) else { return false };
    let Ok(to) = AppKind::ConditionalPayment.rule().apply(&pr.params, &pr.from, payer.peer(), data) else {
        return false;
    };
    pr.to = to;
    pr.actor = U256::from(payer.peer().index());
    true
}

/// Changes `probe` to break (mostly) one of `progress`'s checks; returns what it did and
/// how to sign `to`.
fn break_check(kind: AppKind, w: &World, pr: &mut Probe, rng: &mut StdRng) -> (&'static str, Signing) {
    let actor = pr.actor;
    let mover = w.mover(&pr.params, actor).clone();
    match rng.random_range(0..44) {
        0 => {
            pr.to.version = pr.from.version;
            ("version: the same", Signing::Mover)
        }
        1 => {
            pr.to.version = pr.from.version.saturating_add(rng.random_range(2..4));
            ("version: skips one", Signing::Mover)
        }
        2 => {
            pr.to.version = pr.from.version.wrapping_sub(1);
            ("version: lower", Signing::Mover)
        }
        3 => {
            pr.from.version = u64::MAX - 1;
            pr.to.version = u64::MAX;
            ("version: the last two (kept next)", Signing::Mover)
        }
        4 => {
            pr.from.version = u64::MAX;
            pr.to.version = 0;
            ("version: past the last", Signing::Mover)
        }
        5 => {
            pr.to.channelId = b256(rng);
            ("channel: to's id", Signing::Mover)
        }
        6 => {
            pr.from.channelId = b256(rng);
            ("channel: from's id", Signing::Mover)
        }
        7 => {
            let id = channel_id(&Params { nonce: pr.params.nonce + U256::from(1), ..pr.params.clone() });
            pr.from.channelId = id;
            pr.to.channelId = id;
            ("channel: both states of another channel", Signing::Mover)
        }
        8 => {
            reparam(pr, |p| p.app = Address::ZERO);
            ("params: no app", Signing::Mover)
        }
        9 => {
            let virt = rng.random_bool(0.5);
            reparam(pr, |p| {
                p.ledger = true;
                p.isVirtual = virt;
            });
            ("params: a ledger channel", Signing::Mover)
        }
        10 => {
            let other =
                AppKind::ALL.into_iter().filter(|k| *k != kind).nth(rng.random_range(0..2)).expect("three apps");
            reparam(pr, |p| p.app = w.apps.address(other));
            ("params: another app's channel", Signing::Mover)
        }
        11 => {
            let duration = rng.random_range(1..1_000_000);
            reparam(pr, |p| {
                p.isVirtual = !p.isVirtual;
                p.challengeDuration = duration;
            });
            ("params: other flags and duration (kept valid)", Signing::Mover)
        }
        12 => {
            reparam(pr, |p| p.participants = [mover.address(); 2]);
            ("params: the mover twice (kept valid)", Signing::Mover)
        }
        13 => {
            let a = rng.random_range(0..pr.to.outcome.assets.len().max(1));
            match pr.to.outcome.assets.get_mut(a) {
                Some(asset) => *asset = Address::from(rng.random::<[u8; 20]>()),
                None => pr.to.outcome.assets.push(Address::from(rng.random::<[u8; 20]>())),
            }
            ("assets: one replaced in to", Signing::Mover)
        }
        14 => {
            let new = Address::from(rng.random::<[u8; 20]>());
            for s in [&mut pr.from, &mut pr.to] {
                if let Some(asset) = s.outcome.assets.first_mut() {
                    *asset = new;
                }
            }
            ("assets: one replaced in both (kept valid)", Signing::Mover)
        }
        15 => {
            let assets = &mut pr.to.outcome.assets;
            if assets.len() >= 2 {
                assets.swap(0, 1);
            } else {
                assets.insert(0, Address::repeat_byte(0xee));
            }
            ("assets: reordered in to", Signing::Mover)
        }
        16 => {
            pr.to.outcome.assets.push(Address::repeat_byte(0xef));
            pr.to.outcome.balances.push([U256::ZERO; 2]);
            ("assets: one added to to, with zero balances", Signing::Mover)
        }
        17 => {
            pr.to.outcome.assets.pop();
            pr.to.outcome.balances.pop();
            ("assets: one removed from to", Signing::Mover)
        }
        18 => {
            for s in [&mut pr.from, &mut pr.to] {
                let asset = s.outcome.assets.first().copied().unwrap_or(Address::repeat_byte(0xe0));
                s.outcome.assets.push(asset);
                s.outcome.balances.push([U256::ZERO; 2]);
            }
            ("assets: one listed twice in both", Signing::Mover)
        }
        19 => {
            pr.to.outcome.balances.push([U256::ZERO; 2]);
            ("balances: one too many in to", Signing::Mover)
        }
        20 => {
            pr.to.outcome.balances.pop();
            ("balances: one missing in to", Signing::Mover)
        }
        21 => {
            pr.from.outcome.balances.pop();
            ("balances: one missing in from", Signing::Mover)
        }
        22 => {
            let b = some_pair(&mut pr.to.outcome.balances, rng);
            let side = rng.random_range(0..2);
            b[side] = b[side].saturating_add(U256::from(rng.random_range(1..5u64)));
            ("totals: coins created in to", Signing::Mover)
        }
        23 => {
            let b = some_pair(&mut pr.to.outcome.balances, rng);
            let side = if b[0] > b[1] { 0 } else { 1 };
            b[side] = b[side].saturating_sub(U256::from(rng.random_range(1..5u64)));
            ("totals: coins destroyed in to", Signing::Mover)
        }
        24 => {
            let b = some_pair(&mut pr.from.outcome.balances, rng);
            let side = rng.random_range(0..2);
            b[side] = b[side].saturating_add(U256::from(rng.random_range(1..5u64)));
            ("totals: from's changed", Signing::Mover)
        }
        25 => {
            *some_pair(&mut pr.to.outcome.balances, rng) = [U256::MAX, U256::from(rng.random_range(1..3u64))];
            ("totals: overflow in to", Signing::Mover)
        }
        26 => {
            let pair = [U256::from(rng.random_range(1..3u64)), U256::MAX];
            if pr.from.outcome.balances.is_empty() {
                pr.from.outcome.balances.push(pair);
                pr.to.outcome.balances.push(pair);
            }
            pr.from.outcome.balances[0] = pair;
            if let Some(b) = pr.to.outcome.balances.first_mut() {
                *b = pair;
            }
            ("totals: overflow in both", Signing::Mover)
        }
        27 => {
            let l = lock(&pr.to.outcome, rng);
            pr.to.outcome.locked.push(l);
            ("locks: in to", Signing::Mover)
        }
        28 => {
            let l = lock(&pr.from.outcome, rng);
            pr.from.outcome.locked.push(l);
            ("locks: in from", Signing::Mover)
        }
        29 => {
            pr.from.isFinal = true;
            ("final: from", Signing::Mover)
        }
        30 => {
            let other = pr.params.participants.iter().find(|a| **a != mover.address()).copied();
            let key = other.map_or_else(|| w.stranger.clone(), |a| w.key_of(a).clone());
            ("sig: by the other participant", Signing::Key(key))
        }
        31 => ("sig: by a stranger", Signing::Key(w.stranger.clone())),
        32 => {
            let mut sig = rng.random::<[u8; 32]>().to_vec();
            sig.extend(rng.random::<[u8; 32]>());
            sig.push(if rng.random_bool(0.8) { rng.random_range(27..29) } else { rng.random() });
            ("sig: garbage", Signing::Raw(sig.into()))
        }
        33 => {
            let good = sign(w, pr, Signing::Mover);
            let sig = match rng.random_range(0..4) {
                0 => Bytes::new(),
                1 => good.slice(..64),
                2 => [&good[..], &[0u8]].concat().into(),
                _ => [&good[..], &good[..]].concat().into(),
            };
            ("sig: the mover's, wrong length", Signing::Raw(sig))
        }
        34 => ("sig: on from", Signing::Other(pr.from.clone())),
        35 => {
            let mut other = pr.to.clone();
            match rng.random_range(0..3) {
                0 => other.isFinal = !other.isFinal,
                1 => other.version = other.version.wrapping_add(1),
                _ => other.appData = [&other.appData[..], &[0u8; 32]].concat().into(),
            }
            ("sig: on another state", Signing::Other(other))
        }
        36 => {
            let d = if rng.random_bool(0.5) {
                Deployment { chain_id: w.deployment.chain_id + 1, ..w.deployment }
            } else {
                Deployment { adjudicator: w.apps.coin_flip, ..w.deployment }
            };
            ("sig: for another deployment", Signing::Deployment(d))
        }
        37 => ("sig: high s", Signing::HighS),
        38 => ("sig: v as 0 or 1", Signing::RawV),
        39 => {
            pr.actor = [U256::from(2), U256::from(3), U256::MAX, U256::from(1) << 128][rng.random_range(0..4)];
            ("actor: not 0 or 1", Signing::Key(mover))
        }
        40 => {
            pr.actor = U256::from(1) - actor.min(U256::from(1));
            ("actor: the other, signed by the mover", Signing::Key(mover))
        }
        41 => {
            pr.actor = U256::from(1) - actor.min(U256::from(1));
            ("actor: the other, who signs", Signing::Mover)
        }
        _ => {
            if kind == AppKind::ConditionalPayment && long_claim(pr, rng) {
                ("app data: a claim about 1024 bytes long", Signing::Mover)
            } else {
                let mut data = pr.to.appData.to_vec();
                data.resize(rng.random_range(1_000..1_100).max(data.len() + 1), 0);
                pr.to.appData = data.into();
                ("app data: padded to about 1024 bytes", Signing::Mover)
            }
        }
    }
}

/// `n` moves of `kind` (see [`cases`]), 60% of them valid by the rule (as far as the games
/// give that many).
fn balanced_cases(kind: AppKind, p: &Params, n: usize, rng: &mut StdRng) -> Vec<Case> {
    let (mut valid, mut invalid): (Vec<Case>, Vec<Case>) =
        cases(kind, p, 8 * n, rng).into_iter().partition(|c| c.valid);
    valid.truncate(n * 3 / 5);
    invalid.truncate(n - valid.len());
    valid.append(&mut invalid);
    valid
}

/// `n` forced moves of `kind`: moves of random games (right or wrong, see [`cases`]), many
/// of them changed to break one of the adjudicator's checks, signed for real.
fn probes(kind: AppKind, w: &World, n: usize, rng: &mut StdRng) -> Vec<Probe> {
    let p = w.params(w.apps.address(kind));
    balanced_cases(kind, &p, n, rng)
        .into_iter()
        .map(|c| {
            let mut pr = Probe {
                what: "move",
                params: p.clone(),
                from: c.from,
                to: c.to,
                actor: U256::from(c.actor.index()),
                sig: Bytes::new(),
            };
            let broken = if c.valid { rng.random_bool(0.5) } else { rng.random_bool(0.3) };
            let mut signing = Signing::Mover;
            if broken {
                let (what, how) = break_check(kind, w, &mut pr, rng);
                pr.what = what;
                signing = how;
            }
            pr.sig = sign(w, &pr, signing);
            pr
        })
        .collect()
}

/// `check_move`'s verdict on `probe`, with the rule of the app its params name (`kind`'s if
/// they name none; `check_move` refuses that). An actor past 1 is no `Role`: refused.
fn rust_verdict(kind: AppKind, w: &World, pr: &Probe) -> Result<(), String> {
    let actor = usize::try_from(pr.actor)
        .ok()
        .and_then(|i| Role::from_index(i).ok())
        .ok_or_else(|| format!("actor {} is no role", pr.actor))?;
    let fallback = kind.rule();
    let registry = w.apps.registry();
    let rule = registry.get(&pr.params.app).unwrap_or(fallback.as_ref());
    app::check_move(rule, &w.deployment, &pr.params, &pr.from, &pr.to, actor, &pr.sig).map_err(|e| format!("{e:?}"))
}

/// The name of the error whose selector `progress` reverted with.
fn error_name(selector: [u8; 4]) -> String {
    match selector {
        [0, 0, 0, 0] => "accepted".into(),
        [0x4e, 0x48, 0x7b, 0x71] => "Panic".into(),
        [0xff, 0xff, 0xff, 0xff] => "no revert data".into(),
        _ => progress_checker::ProgressChecker::ProgressCheckerErrors::name_by_selector(selector)
            .or_else(|| CoinFlip::CoinFlipErrors::name_by_selector(selector))
            .map_or_else(|| format!("0x{}", alloy::hex::encode(selector)), str::to_string),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_checks_match_check_move() -> anyhow::Result<()> {
    let per_app = knob("PROGRESS_CASES", 10_000) as usize;
    let seed = knob("APP_SEED", rand::random());
    println!("APP_SEED={seed} PROGRESS_CASES={per_app}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let devnet = Devnet::start()?;
    let provider = devnet.provider(&devnet.key(0));
    let apps = chain::deploy_apps(&provider).await?;
    let checker = ProgressChecker::deploy(&provider).await?;
    let deployment = Deployment { chain_id: provider.get_chain_id().await?, adjudicator: *checker.address() };
    let mut key = || PrivateKeySigner::from_bytes(&b256(&mut rng));
    let (k0, k1, stranger) = (key()?, key()?, key()?);
    let w = World { apps, deployment, keys: [k0, k1], stranger };

    // Per on-chain verdict and per change: how many probes got it.
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut changes: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
    let mut total = 0;
    for kind in AppKind::ALL {
        let probes = probes(kind, &w, per_app, &mut rng);
        let mut accepted = 0;
        for batch in probes.chunks(BATCH) {
            let calls = batch
                .iter()
                .map(|pr| {
                    Ok(ProgressChecker::Probe {
                        params: app::convert(&pr.params)?,
                        from: app::convert(&pr.from)?,
                        to: app::convert(&pr.to)?,
                        actor: pr.actor,
                        sig: pr.sig.clone(),
                    })
                })
                .collect::<Result<Vec<_>, alloy::sol_types::Error>>()?;
            let verdicts = checker.verdicts(calls).gas(1_000_000_000).call().await?;
            assert_eq!(verdicts.len(), batch.len());
            for (pr, on_chain) in batch.iter().zip(verdicts) {
                let rust = rust_verdict(kind, &w, pr);
                let error = error_name(on_chain.0);
                if rust.is_ok() != on_chain.is_zero() {
                    panic!(
                        "{kind:?} (APP_SEED={seed}), {}: check_move says {rust:?}, progress says {error}\n\
                         params {:?}\nactor {}\nsig {}\nfrom {:?}\nto {:?}",
                        pr.what, pr.params, pr.actor, pr.sig, pr.from, pr.to
                    );
                }
                accepted += usize::from(rust.is_ok());
                changes.entry(pr.what).or_default()[usize::from(rust.is_err())] += 1;
                *errors.entry(error).or_default() += 1;
            }
        }
        // Both verdicts must be well represented for the comparison to mean something.
        let n = probes.len();
        assert!(accepted * 5 >= n, "{kind:?}: only {accepted} of {n} moves accepted");
        assert!(accepted * 5 <= n * 4, "{kind:?}: {accepted} of {n} moves accepted");
        println!("{kind:?}: {n} forced moves, {accepted} accepted, same verdicts");
        total += n;
    }
    for (what, [ok, refused]) in &changes {
        println!("  {what}: {ok} accepted, {refused} refused");
    }
    println!("  progress's verdicts: {errors:?}");
    if per_app >= 1_000 {
        // Every check of `progress` refused some move, and none of the record's did: the
        // checker's records are where force-execution may begin, for every `from`. (Reverts
        // without data are the apps' `abi.decode` of malformed app data.)
        for check in [
            "NoApp",
            "InvalidActor",
            "ChannelIdMismatch",
            "NestedLocks",
            "BalancesLengthMismatch",
            "AssetMismatch",
            "ValueNotPreserved",
            "Panic",
            "FinalState",
            "VersionNotNext",
            "InvalidSignature",
            "AppDataTooLong",
            "NonCanonicalData",
            "NotYourTurn",
            "InvalidMove",
            "WrongAllocation",
            "WrongFinality",
        ] {
            assert!(errors.contains_key(check), "no move was refused with {check}");
        }
        for record in ["StateHashMismatch", "NotProgressable", "ForceExecutionOver", "TimeoutOverflow"] {
            assert!(!errors.contains_key(record), "{record}: the checker's record is not the one progress reads");
        }
    }
    println!("{total} forced moves judged alike by check_move and progress in {:.1?}", started.elapsed());
    Ok(())
}
