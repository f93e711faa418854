use alloy::primitives::{Address, B256, Bytes, U256, address};
use alloy::signers::local::PrivateKeySigner;

use super::*;
use crate::bindings::Channel::Allocation;

const COIN_FLIP: Address = address!("00000000000000000000000000000000000c0117");

fn params(app: Address, first: Address, second: Address) -> Params {
    Params {
        challengeDuration: 60,
        nonce: U256::from(7),
        participants: [first, second],
        ledger: false,
        isVirtual: true,
        app,
    }
}

fn opening(params: &Params, stakes: [u64; 2], app_data: Bytes) -> State {
    State {
        channelId: channel_id(params),
        version: 0,
        outcome: Allocation {
            assets: vec![address!("00000000000000000000000000000000000000e7")],
            balances: vec![[U256::from(stakes[0]), U256::from(stakes[1])]],
            locked: vec![],
        },
        appData: app_data,
        isFinal: false,
    }
}

fn balances(s: &State) -> [u64; 2] {
    [s.outcome.balances[0][0].to::<u64>(), s.outcome.balances[0][1].to::<u64>()]
}

/// Plays `moves` (mover, app data from the current state) through `apply`, checking each
/// result with `valid_transition` and the turn.
/// A move: its mover and the app data it makes from the current state.
type Move<'a> = (Role, &'a dyn Fn(&State) -> Bytes);

fn play(app: &dyn App, p: &Params, mut s: State, moves: &[Move<'_>]) -> State {
    for (actor, data) in moves {
        assert_eq!(app.turn(&s), Some(*actor), "turn before v{}", s.version + 1);
        let next = app.apply(p, &s, *actor, data(&s)).expect("valid move");
        app.valid_transition(p, &s, &next, *actor).expect("apply's result is valid");
        assert_eq!(app.valid_transition(p, &s, &next, actor.peer()), Err(AppError::NotYourTurn));
        s = next;
    }
    s
}

#[test]
fn a_coin_flip_gives_the_pot_to_the_staller_s_peer_and_then_to_the_winner() {
    let p = params(COIN_FLIP, Address::repeat_byte(1), Address::repeat_byte(2));
    let app = coin_flip::CoinFlip;
    let s0 = opening(&p, [5, 3], coin_flip::opening());
    app.check_opening(&s0).expect("opening");
    let salt = B256::repeat_byte(9);
    let committed = play(&app, &p, s0.clone(), &[(Role::First, &|_| coin_flip::commit(salt, true))]);
    assert_eq!(balances(&committed), [8, 0], "if the second stalls, the first takes the pot");
    let guessed = play(&app, &p, committed.clone(), &[(Role::Second, &|s| coin_flip::guess(s, false).expect("guess"))]);
    assert_eq!(balances(&guessed), [0, 8], "if the first does not reveal, the second takes the pot");
    let revealed =
        play(&app, &p, guessed.clone(), &[(Role::First, &|s| coin_flip::reveal(s, salt, true).expect("reveal"))]);
    assert!(revealed.isFinal);
    assert_eq!(coin_flip::winner(&revealed), Some(Role::First));
    assert_eq!(balances(&revealed), [8, 0]);
    assert_eq!(app.turn(&revealed), None);
    // A reveal that does not open the commitment, and a move after the end.
    let lie = coin_flip::reveal(&guessed, salt, false).expect("data");
    assert_eq!(app.apply(&p, &guessed, Role::First, lie), Err(AppError::InvalidMove));
    let again = coin_flip::reveal(&revealed, salt, true).expect("data");
    assert_eq!(app.apply(&p, &revealed, Role::First, again), Err(AppError::GameOver));
    // The right data with another allocation or finality.
    let mut wrong = committed.clone();
    wrong.outcome.balances[0] = [U256::from(4), U256::from(4)];
    assert_eq!(app.valid_transition(&p, &s0, &wrong, Role::First), Err(AppError::WrongAllocation));
    wrong = committed.clone();
    wrong.isFinal = true;
    assert_eq!(app.valid_transition(&p, &s0, &wrong, Role::First), Err(AppError::WrongFinality));
    // Data with a trailing byte is not canonical.
    let mut long = committed.appData.to_vec();
    long.push(0);
    assert_eq!(app.apply(&p, &s0, Role::First, long.into()), Err(AppError::NonCanonicalData));
    let mut bad_opening = s0.clone();
    bad_opening.appData = coin_flip::commit(salt, true);
    assert!(app.check_opening(&bad_opening).is_err());
}

#[test]
fn tic_tac_toe_wins_draws_and_refuses_what_no_game_does() {
    let p = params(Address::repeat_byte(0x77), Address::repeat_byte(1), Address::repeat_byte(2));
    let app = tic_tac_toe::TicTacToe;
    let s0 = opening(&p, [5, 3], Bytes::new());
    let s0 = State { appData: tic_tac_toe::opening(&s0.outcome.balances), ..s0 };
    app.check_opening(&s0).expect("opening");
    let at = |role: Role, cell: usize| move |s: &State| tic_tac_toe::place(s, role, cell).expect("place");
    use Role::{First as X, Second as O};
    // X wins on the first row.
    let won =
        play(&app, &p, s0.clone(), &[(X, &at(X, 0)), (O, &at(O, 3)), (X, &at(X, 1)), (O, &at(O, 4)), (X, &at(X, 2))]);
    assert!(won.isFinal);
    assert_eq!(balances(&won), [8, 0]);
    assert_eq!(app.turn(&won), None);
    // A draw returns the stakes.
    let cells = [(X, 0), (O, 1), (X, 2), (O, 4), (X, 3), (O, 5), (X, 7), (O, 6), (X, 8)];
    let mut s = s0.clone();
    for (i, (r, c)) in cells.iter().enumerate() {
        s = play(&app, &p, s, &[(*r, &at(*r, *c))]);
        assert_eq!(s.isFinal, i == 8);
        if i < 8 {
            assert_eq!(balances(&s), r.pair(8, 0), "the mover holds the pot until the other answers");
        }
    }
    assert_eq!(balances(&s), [5, 3]);
    // Out of turn, on a taken cell, two marks at once.
    assert_eq!(app.apply(&p, &s0, O, tic_tac_toe::place(&s0, O, 0).expect("d")), Err(AppError::NotYourTurn));
    let one = play(&app, &p, s0.clone(), &[(X, &at(X, 4))]);
    assert_eq!(app.apply(&p, &one, O, tic_tac_toe::place(&one, O, 4).expect("d")), Err(AppError::InvalidMove));
    let two = tic_tac_toe::place(&State { appData: tic_tac_toe::place(&s0, X, 0).expect("d"), ..s0.clone() }, X, 1);
    assert_eq!(app.apply(&p, &s0, X, two.expect("d")), Err(AppError::InvalidMove));
    // A board with a mark above 2 is no game's.
    let mut board = tic_tac_toe::data(&s0).expect("data");
    board.board[0] = 3;
    assert_eq!(app.apply(&p, &s0, X, board.abi_encode().into()), Err(AppError::InvalidMove));
}

#[test]
fn a_conditional_payment_is_the_payee_s_only_with_the_preimage() {
    let p = params(Address::repeat_byte(0x99), Address::repeat_byte(1), Address::repeat_byte(2));
    let app = conditional_payment::ConditionalPayment;
    let s0 = opening(&p, [10, 0], conditional_payment::opening(Role::First));
    app.check_opening(&s0).expect("opening");
    let body = Bytes::from_static(b"the response body");
    let lock = conditional_payment::lock_of(&body);
    let offer = |s: &State| conditional_payment::offer(s, lock, vec![U256::from(4)]).expect("offer");
    let offered = play(&app, &p, s0.clone(), &[(Role::First, &offer)]);
    assert_eq!(balances(&offered), [10, 0], "the offer stays the payer's until delivery");
    let wrong = conditional_payment::claim(&offered, Bytes::from_static(b"something else")).expect("d");
    assert_eq!(app.apply(&p, &offered, Role::Second, wrong), Err(AppError::InvalidMove));
    let by_payer = conditional_payment::claim(&offered, body.clone()).expect("d");
    assert_eq!(app.apply(&p, &offered, Role::First, by_payer), Err(AppError::NotYourTurn));
    let claim = |s: &State| conditional_payment::claim(s, body.clone()).expect("claim");
    let paid = play(&app, &p, offered, &[(Role::Second, &claim)]);
    assert_eq!(balances(&paid), [6, 4]);
    assert!(!paid.isFinal);
    // The payee cannot offer; the payer cannot offer more than it holds.
    assert_eq!(app.apply(&p, &paid, Role::Second, offer(&paid)), Err(AppError::NotYourTurn));
    let too_much = conditional_payment::offer(&paid, lock, vec![U256::from(7)]).expect("d");
    assert_eq!(app.apply(&p, &paid, Role::First, too_much), Err(AppError::InvalidMove));
    // Closing costs the payer nothing while no offer is pending; the payee, a pending offer.
    assert!(app.optional_move(&s0) && app.optional_move(&paid));
    assert_eq!(conditional_payment::pending_offer(&paid), None);
    let offered = play(&app, &p, paid, &[(Role::First, &offer)]);
    assert!(!app.optional_move(&offered));
    assert_eq!(conditional_payment::pending_offer(&offered), Some((lock, vec![U256::from(4)])));
    assert!(!coin_flip::CoinFlip.optional_move(&opening(&p, [1, 1], coin_flip::opening())), "a game's move may win");
}

#[test]
fn a_claim_reveals_at_most_max_preimage_bytes_within_the_app_data_bound() {
    let p = params(Address::repeat_byte(0x99), Address::repeat_byte(1), Address::repeat_byte(2));
    let s0 = opening(&p, [10, 0], conditional_payment::opening(Role::Second));
    let offered =
        State { appData: conditional_payment::offer(&s0, B256::ZERO, vec![U256::from(1)]).expect("offer"), ..s0 };
    let size = |n: usize| conditional_payment::claim(&offered, vec![7u8; n].into()).expect("claim").len();
    assert_eq!(size(conditional_payment::MAX_PREIMAGE), MAX_APP_DATA);
    assert!(size(conditional_payment::MAX_PREIMAGE + 1) > MAX_APP_DATA);
}

#[test]
fn check_move_adds_the_adjudicator_s_checks_and_the_registry_knows_only_its_apps() {
    let alice = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11)).expect("key");
    let bob = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x22)).expect("key");
    let p = params(COIN_FLIP, alice.address(), bob.address());
    let deployment = Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) };
    let registry = AppRegistry::new().with(COIN_FLIP, AppKind::CoinFlip);
    let s0 = opening(&p, [5, 3], coin_flip::opening());
    let app = registry.rule_of(&p).expect("known").expect("an app");
    let s1 = app.apply(&p, &s0, Role::First, coin_flip::commit(B256::ZERO, false)).expect("commit");
    let by_alice = deployment.sign_state(&alice, &s1).expect("sign");
    let by_bob = deployment.sign_state(&bob, &s1).expect("sign");
    check_move(app, &deployment, &p, &s0, &s1, Role::First, &by_alice).expect("valid");
    assert!(matches!(check_move(app, &deployment, &p, &s0, &s1, Role::First, &by_bob), Err(AppError::BadSignature(_))));
    let mut skip = s1.clone();
    skip.version = 2;
    let sig = deployment.sign_state(&alice, &skip).expect("sign");
    assert_eq!(check_move(app, &deployment, &p, &s0, &skip, Role::First, &sig), Err(AppError::VersionNotNext));
    let mut more = s1.clone();
    more.outcome.balances[0][0] = U256::from(9);
    let sig = deployment.sign_state(&alice, &more).expect("sign");
    assert_eq!(check_move(app, &deployment, &p, &s0, &more, Role::First, &sig), Err(AppError::ValueNotPreserved));
    let unknown = params(Address::repeat_byte(0x55), alice.address(), bob.address());
    assert_eq!(registry.rule_of(&unknown).err(), Some(AppError::NoApp(unknown.app)));
    let payments = params(Address::ZERO, alice.address(), bob.address());
    assert!(registry.rule_of(&payments).expect("payments").is_none());
    let ledger = Params { ledger: true, isVirtual: false, ..p.clone() };
    assert!(registry.rule_of(&ledger).is_err(), "ledger channels run no app");
}

#[test]
fn an_app_channel_s_challenge_duration_is_capped_and_a_payment_channel_s_is_not() {
    let registry = AppRegistry::new().with(COIN_FLIP, AppKind::CoinFlip);
    let mut game = params(COIN_FLIP, Address::repeat_byte(1), Address::repeat_byte(2));
    game.challengeDuration = 600;
    let payments = Params { app: Address::ZERO, ..game.clone() };
    assert!(validate_virtual_params(&game, (60, 3600), 600, &registry).is_ok_and(|r| r.is_some()));
    let err = validate_virtual_params(&game, (60, 3600), 599, &registry).expect_err("over the cap");
    assert_eq!(err.code, "challenge_too_long");
    assert!(validate_virtual_params(&payments, (60, 3600), 599, &registry).is_ok_and(|r| r.is_none()));
}
