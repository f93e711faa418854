//! One rule, two implementations, no drift: each app's Rust rule (`ingrid_protocol::app`) and
//! its deployed contract judge the same generated moves, and must give the same verdict.
//!
//! Moves start from states reached by random games (and from mutations of them); a move is
//! one the game could make, made by the right or the wrong participant, then often mutated
//! (finality flipped, coins moved, a field set to a random value, a byte of the app data
//! changed, the data cut or extended). `APP_CASES` sets the number of moves per app
//! (default 34,000: 102,000 in all), `APP_SEED` the seed.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolValue;
use ingrid_client_sdk::app::{self, AppKind, coin_flip, conditional_payment, tic_tac_toe};
use ingrid_client_sdk::bindings::apps::{AppChecker, app_checker};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::state::channel_id;
use ingrid_client_sdk::{Allocation, Params, Role, State};
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
