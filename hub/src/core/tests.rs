//! Unit tests of the basic-channel decisions.

use super::*;
use alloy::primitives::Bytes;
use alloy::signers::local::PrivateKeySigner;
use ingrid_client_sdk::Allocation;
use ingrid_client_sdk::state::channel_id;

const ETH: Address = Address::repeat_byte(0xee);

fn rules(hub: Address) -> Rules {
    Rules {
        hub,
        deployment: Deployment { chain_id: 31337, adjudicator: Address::repeat_byte(0xad) },
        assets: vec![AssetConfig {
            symbol: "ETH".into(),
            holder: ETH,
            token: None,
            max_hub_deposit: U256::from(1000),
            collateral_ratio_bps: 10_000,
            min_hub_deposit: U256::ZERO,
            top_up_below: None,
            top_up_amount: U256::ZERO,
            virtual_policy: Default::default(),
        }],
        // The tests' channels dispute for an hour (production floor: a day).
        channels: ChannelConfig { min_challenge_duration: 60, ..ChannelConfig::default() },
        apps: Default::default(),
    }
}

fn params(client: Address, hub: Address) -> Params {
    Params {
        challengeDuration: 3600,
        nonce: U256::from(1),
        participants: [client, hub],
        ledger: true,
        isVirtual: false,
        app: Address::ZERO,
    }
}

fn state(p: &Params, version: u64, balances: [u64; 2]) -> State {
    State {
        channelId: channel_id(p),
        version,
        outcome: Allocation {
            assets: vec![ETH],
            balances: vec![[U256::from(balances[0]), U256::from(balances[1])]],
            locked: vec![],
        },
        appData: Bytes::new(),
        isFinal: false,
    }
}

#[test]
fn open_matching_deposit_is_accepted_with_both_requirements() {
    let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
    let r = rules(hub);
    let p = params(client.address(), hub);
    let s = state(&p, 0, [500, 500]);
    let sig = r.deployment.sign_state(&client, &s).expect("sign");
    let plan = r.check_open(client.address(), &p, &s, &sig).expect("accepted");
    assert_eq!(plan.hub_index, Role::Second);
    assert_eq!(plan.requirements.len(), 2);
    assert_eq!(plan.hub_deposits(hub).map(|r| r.amount).collect::<Vec<_>>(), vec![U256::from(500)]);
}

#[test]
fn open_refusals_name_the_rule() {
    let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
    let r = rules(hub);
    let p = params(client.address(), hub);
    let code = |res: Result<OpenPlan, ProtocolError>| res.map(|_| ()).map_err(|e| e.code.to_string()).unwrap_err();

    let s = state(&p, 0, [500, 600]);
    let sig = r.deployment.sign_state(&client, &s).expect("sign");
    assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "hub_deposit_above_ratio");

    let s = state(&p, 0, [5000, 2000]);
    let sig = r.deployment.sign_state(&client, &s).expect("sign");
    assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "hub_deposit_above_maximum");

    let s = state(&p, 0, [500, 500]);
    let other = PrivateKeySigner::random();
    let sig = r.deployment.sign_state(&other, &s).expect("sign");
    assert_eq!(code(r.check_open(client.address(), &p, &s, &sig)), "bad_signature");
    assert_eq!(code(r.check_open(other.address(), &p, &s, &sig)), "client_not_participant");

    let stranger = params(client.address(), Address::repeat_byte(0x22));
    let s = state(&stranger, 0, [1, 0]);
    let sig = r.deployment.sign_state(&client, &s).expect("sign");
    assert_eq!(code(r.check_open(client.address(), &stranger, &s, &sig)), "hub_not_participant");

    let mut short = params(client.address(), hub);
    short.challengeDuration = 1;
    let s = state(&short, 0, [1, 0]);
    let sig = r.deployment.sign_state(&client, &s).expect("sign");
    assert_eq!(code(r.check_open(client.address(), &short, &s, &sig)), "invalid_params");
}

#[test]
fn updates_may_pay_the_hub_but_never_take_from_it() {
    let (client, hub) = (PrivateKeySigner::random(), Address::repeat_byte(0x11));
    let r = rules(hub);
    let p = params(client.address(), hub);
    let cur = state(&p, 3, [500, 500]);
    let pay_hub = state(&p, 4, [400, 600]);
    let sig = r.deployment.sign_state(&client, &pay_hub).expect("sign");
    assert!(r.check_update(Role::Second, client.address(), &cur, &pay_hub, &sig).is_ok());
    let take = state(&p, 4, [600, 400]);
    let sig = r.deployment.sign_state(&client, &take).expect("sign");
    let err = r.check_update(Role::Second, client.address(), &cur, &take, &sig).unwrap_err();
    assert_eq!(err.code, "hub_balance_decreased");
    let stale = state(&p, 3, [400, 600]);
    let sig = r.deployment.sign_state(&client, &stale).expect("sign");
    assert_eq!(
        r.check_update(Role::Second, client.address(), &cur, &stale, &sig).unwrap_err().kind,
        ingrid_protocol::error::Kind::Conflict
    );
}
