//! The operator's business rules for virtual channels (the seed's section 2.4): how big a
//! virtual channel may be, how much of the hub's coins may be locked for one client and in
//! total, how many virtual channels a client may hold open, and what the hub charges for
//! lending its coins. Pure functions of the configuration and a snapshot of the hub's books;
//! every refusal names the rule, and the numbers that are the asker's own: never another
//! client's books nor the hub's (a refusal must not let a client read them).
//!
//! Fee of a virtual channel, per asset, on the hub's locked amount `L` (what the hub locks in
//! both parents: the acceptor's deposit in the proposer's parent plus the proposer's deposit
//! in the acceptor's parent) for `s` seconds of validity:
//!
//! `fee = fee_flat + ceil(L × (fee_bps × 100 × 3600 + fee_ppm_per_hour × s) / 3.6e9)`
//!
//! (one rounding, upwards: it never favours the payer). The proposer pays it inside its own
//! parent's opening update: its balance down, the hub's up by exactly the fee.

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use ingrid_protocol::{ProtocolError, Role};

/// Per-asset policy for virtual channels (part of an asset's configuration). Every limit is
/// in the asset's smallest unit; an unset limit does not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VirtualPolicy {
    /// Smallest total (both deposits) of a virtual channel. Default: none.
    pub min_virtual_amount: Option<U256>,
    /// Largest total (both deposits) of a virtual channel. Default: none.
    pub max_virtual_amount: Option<U256>,
    /// Most hub coins locked in virtual channels of one client (in that client's basic
    /// channels). Default: none.
    pub max_locked_per_client: Option<U256>,
    /// Most hub coins locked in virtual channels in total. Default: none.
    pub max_locked_total: Option<U256>,
    /// Most of the hub's coins in channels (locked + free) that may be locked, in basis
    /// points. Default: none.
    pub max_locked_fraction_bps: Option<u32>,
    /// Flat fee per virtual channel. Default 0.
    pub fee_flat: U256,
    /// Fee proportional to the hub's locked amount, basis points. Default 0.
    pub fee_bps: u32,
    /// Cost of credit: parts per million of the hub's locked amount per hour of validity.
    /// Default 0.
    pub fee_ppm_per_hour: u32,
}

/// A snapshot of the books for one asset, before the virtual channel is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssetBooks {
    /// The hub's coins locked in virtual channels, all clients.
    pub hub_locked: U256,
    /// The hub's free coins in open basic channels, all clients.
    pub hub_free: U256,
    /// The hub's coins locked in virtual channels of the proposer (in its basic channels).
    pub locked_proposer: U256,
    /// Same for the acceptor.
    pub locked_acceptor: U256,
}

/// What the hub locks for one asset of a virtual channel with deposits `[proposer, acceptor]`:
/// `(in the proposer's parent, in the acceptor's parent)`.
pub fn hub_locks(deposits: [U256; 2]) -> (U256, U256) {
    (deposits[1], deposits[0])
}

/// The fee of one asset (see the module documentation); `None` on overflow.
pub fn fee(policy: &VirtualPolicy, hub_locked: U256, seconds: u64) -> Option<U256> {
    let rate = U256::from(policy.fee_bps)
        .checked_mul(U256::from(100u64 * 3600))?
        .checked_add(U256::from(policy.fee_ppm_per_hour).checked_mul(U256::from(seconds))?)?;
    let numerator = hub_locked.checked_mul(rate)?;
    let denominator = U256::from(3_600_000_000u64);
    let variable = numerator.div_ceil(denominator);
    policy.fee_flat.checked_add(variable)
}

fn refuse(code: &'static str, message: String) -> ProtocolError {
    ProtocolError::conflict(code, message)
}

/// Decides whether the hub may open a virtual channel of `deposits` (`[proposer, acceptor]`)
/// in asset `symbol` under `policy` with the books `books`, for `seconds` of validity, asked
/// by the participant `asker` (the proposer is [`Role::First`]): a refusal names the asker's
/// own numbers only. Returns the fee.
pub fn check_asset(
    symbol: &str,
    policy: &VirtualPolicy,
    books: &AssetBooks,
    deposits: [U256; 2],
    seconds: u64,
    asker: Role,
) -> Result<U256, ProtocolError> {
    let overflow = || ProtocolError::invalid("overflow", format!("{symbol}: amounts overflow"));
    let total = deposits[0].checked_add(deposits[1]).ok_or_else(overflow)?;
    if let Some(min) = policy.min_virtual_amount
        && total < min
    {
        return Err(ProtocolError::invalid(
            "virtual_amount_below_minimum",
            format!("{symbol}: the virtual channel holds {total}, the minimum is {min}"),
        ));
    }
    if let Some(max) = policy.max_virtual_amount
        && total > max
    {
        return Err(ProtocolError::invalid(
            "virtual_amount_above_maximum",
            format!("{symbol}: the virtual channel holds {total}, the maximum is {max}"),
        ));
    }
    let (in_proposer, in_acceptor) = hub_locks(deposits);
    if let Some(max) = policy.max_locked_per_client {
        for (role, who, before, more) in [
            (Role::First, "proposer", books.locked_proposer, in_proposer),
            (Role::Second, "acceptor", books.locked_acceptor, in_acceptor),
        ] {
            // A proposer (quote, proposal) is not told about its peer's limit: probing with
            // quotes would find the peer's locked coins. The peer's limit is checked at the
            // acceptance, the peer's own request.
            if asker == Role::First && role == Role::Second {
                continue;
            }
            let after = before.checked_add(more).ok_or_else(overflow)?;
            if !more.is_zero() && after > max {
                let message = if role == asker {
                    format!(
                        "{symbol}: the hub would lock {after} for you, the {who} ({before} locked now + {more}), above \
                         the per-client limit {max}"
                    )
                } else {
                    format!("{symbol}: the hub cannot lock {more} more for the {who} (its per-client limit)")
                };
                return Err(refuse("client_limit_exceeded", message));
            }
        }
    }
    let hub_more = in_proposer.checked_add(in_acceptor).ok_or_else(overflow)?;
    let locked_after = books.hub_locked.checked_add(hub_more).ok_or_else(overflow)?;
    if let Some(max) = policy.max_locked_total
        && !hub_more.is_zero()
        && locked_after > max
    {
        return Err(refuse(
            "total_limit_exceeded",
            format!("{symbol}: the hub cannot lock {hub_more} more now (its limit on coins locked in total)"),
        ));
    }
    if let Some(bps) = policy.max_locked_fraction_bps {
        // The hub's coins in channels do not change by a lock: locked + free stays the same.
        let funds = books.hub_locked.checked_add(books.hub_free).ok_or_else(overflow)?;
        let allowed = funds.checked_mul(U256::from(bps)).ok_or_else(overflow)? / U256::from(10_000u32);
        if !hub_more.is_zero() && locked_after > allowed {
            return Err(refuse(
                "fraction_limit_exceeded",
                format!(
                    "{symbol}: the hub cannot lock {hub_more} more now (its limit on the share of its coins locked)"
                ),
            ));
        }
    }
    fee(policy, hub_more, seconds).ok_or_else(overflow)
}

/// The per-client count limit: `open` virtual channels held open or closing by a client, the
/// `who` of the request; `asker` when that is the client asking (a refusal names
/// the numbers to the client they are about only).
pub fn check_open_count(
    who: &str,
    client: Address,
    open: u64,
    max: Option<u64>,
    asker: bool,
) -> Result<(), ProtocolError> {
    match max {
        Some(max) if open >= max => Err(refuse(
            "too_many_virtual_channels",
            if asker {
                format!("you ({who}, {client}) hold {open} virtual channels open or closing, the limit is {max}")
            } else {
                format!("the {who} can hold no more virtual channels now")
            },
        )),
        _ => Ok(()),
    }
}

/// Whether the hub tops up a channel whose free balance in an asset is `free` and whose
/// deposits the hub must hold are `required`: when `free` is below `below`, by `amount`, if the
/// hub's deposits stay within `max`. Returns the hub's required holding after the top-up.
pub fn top_up_due(free: U256, required: U256, below: Option<U256>, amount: U256, max: U256) -> Option<U256> {
    let below = below?;
    if amount.is_zero() || free >= below {
        return None;
    }
    required.checked_add(amount).filter(|target| *target <= max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(n: u64) -> U256 {
        U256::from(n)
    }

    #[test]
    fn the_fee_adds_flat_proportional_and_time_parts_rounded_up_once() {
        let p = VirtualPolicy { fee_flat: u(7), fee_bps: 30, fee_ppm_per_hour: 100, ..Default::default() };
        // 1e6 locked for 2 hours: 7 + 1e6 × 0.003 + 1e6 × 100e-6 × 2 = 7 + 3000 + 200.
        assert_eq!(fee(&p, u(1_000_000), 7200), Some(u(3207)));
        // 1 unit for 1 second: a fraction of a unit, rounded up to 1.
        assert_eq!(fee(&p, u(1), 1), Some(u(8)));
        assert_eq!(fee(&VirtualPolicy::default(), u(1_000_000), 7200), Some(U256::ZERO));
        assert_eq!(fee(&p, U256::MAX, 1), None, "overflow is reported, not wrapped");
    }

    #[test]
    fn each_limit_refuses_with_its_rule_and_numbers() {
        let books = AssetBooks { hub_locked: u(50), hub_free: u(50), locked_proposer: u(10), locked_acceptor: u(0) };
        let code =
            |p: VirtualPolicy, d: [u64; 2]| match check_asset("ETH", &p, &books, [u(d[0]), u(d[1])], 60, Role::First) {
                Err(ProtocolError { code, message, .. }) => format!("{code}: {message}"),
                other => format!("{other:?}"),
            };
        let p = VirtualPolicy { min_virtual_amount: Some(u(5)), ..Default::default() };
        assert!(code(p, [2, 2]).starts_with("virtual_amount_below_minimum: ETH: the virtual channel holds 4"));
        let p = VirtualPolicy { max_virtual_amount: Some(u(5)), ..Default::default() };
        assert!(code(p, [3, 3]).starts_with("virtual_amount_above_maximum"));
        let p = VirtualPolicy { max_locked_per_client: Some(u(12)), ..Default::default() };
        let refusal = code(p, [1, 3]);
        assert!(refusal.contains("lock 13 for you, the proposer (10 locked now + 3)"), "{refusal}");
        let p = VirtualPolicy { max_locked_total: Some(u(55)), ..Default::default() };
        assert!(code(p, [3, 3]).starts_with("total_limit_exceeded: ETH: the hub cannot lock 6 more"));
        let p = VirtualPolicy { max_locked_fraction_bps: Some(5500), ..Default::default() };
        assert!(code(p, [3, 3]).starts_with("fraction_limit_exceeded"));
        assert!(check_asset("ETH", &VirtualPolicy::default(), &books, [u(3), u(3)], 60, Role::First).is_ok());
    }

    #[test]
    fn a_refusal_names_no_other_clients_books_nor_the_hubs() {
        // The acceptor has 987654 locked; the hub 123456789 locked and 55555 free.
        let books = AssetBooks {
            hub_locked: u(123_456_789),
            hub_free: u(55_555),
            locked_proposer: u(0),
            locked_acceptor: u(987_654),
        };
        let secrets = ["987654", "987655", "123456789", "55555", "123512344"];
        let policies = [
            VirtualPolicy { max_locked_total: Some(u(123_456_789)), ..Default::default() },
            VirtualPolicy { max_locked_fraction_bps: Some(1), ..Default::default() },
        ];
        for policy in policies {
            let refusal = check_asset("ETH", &policy, &books, [u(1), u(1)], 60, Role::First).expect_err("refused");
            assert!(secrets.iter().all(|s| !refusal.message.contains(s)), "{}", refusal.message);
        }
        // The proposer (a quote, a proposal) is not even answered about its peer's limit: a
        // yes or no is an oracle for the peer's locked coins. The acceptance checks it.
        let per_client = VirtualPolicy { max_locked_per_client: Some(u(987_654)), ..Default::default() };
        assert!(check_asset("ETH", &per_client, &books, [u(1), u(1)], 60, Role::First).is_ok());
        // The acceptor asking learns its own figures.
        let own = check_asset(
            "ETH",
            &VirtualPolicy { max_locked_per_client: Some(u(987_654)), ..Default::default() },
            &books,
            [u(1), u(1)],
            60,
            Role::Second,
        )
        .expect_err("refused");
        assert!(own.message.contains("987654 locked now"), "{}", own.message);
        let other = check_open_count("peer", Address::repeat_byte(9), 41, Some(40), false).expect_err("refused");
        assert!(!other.message.contains("41") && !other.message.contains("40"), "{}", other.message);
        let mine = check_open_count("proposer", Address::repeat_byte(9), 41, Some(40), true).expect_err("refused");
        assert!(mine.message.contains("41") && mine.message.contains("40"), "{}", mine.message);
    }

    #[test]
    fn a_top_up_is_due_below_the_threshold_within_the_maximum() {
        assert_eq!(top_up_due(u(1), u(5), Some(u(2)), u(3), u(100)), Some(u(8)));
        assert_eq!(top_up_due(u(2), u(5), Some(u(2)), u(3), u(100)), None, "not below");
        assert_eq!(top_up_due(u(1), u(5), None, u(3), u(100)), None, "no threshold");
        assert_eq!(top_up_due(u(1), u(5), Some(u(2)), u(0), u(100)), None, "no amount");
        assert_eq!(top_up_due(u(1), u(98), Some(u(2)), u(3), u(100)), None, "above the maximum deposit");
    }

    /// A hub's books under a policy: opens are applied when accepted.
    fn apply(books: &mut AssetBooks, deposits: [U256; 2]) {
        let (p, a) = hub_locks(deposits);
        books.hub_locked += p + a;
        books.hub_free -= p + a;
        books.locked_proposer += p;
        books.locked_acceptor += a;
    }

    proptest! {
        /// No sequence of accepted opens exceeds any limit (one proposer and one acceptor, so
        /// the per-client figures are exact).
        #[test]
        fn accepted_opens_never_exceed_a_limit(
            opens in proptest::collection::vec((0u64..50, 0u64..50), 1..40),
            per_client in 1u64..300,
            total in 1u64..400,
            bps in 1u32..10_000,
        ) {
            let policy = VirtualPolicy {
                max_locked_per_client: Some(u(per_client)),
                max_locked_total: Some(u(total)),
                max_locked_fraction_bps: Some(bps),
                ..Default::default()
            };
            let mut books = AssetBooks { hub_free: u(1_000), ..Default::default() };
            for (a, b) in opens {
                let deposits = [u(a), u(b)];
                let (p, q) = hub_locks(deposits);
                if books.hub_free < p + q {
                    continue;
                }
                // Coins are locked at the acceptance, which checks every limit.
                if check_asset("T", &policy, &books, deposits, 3600, Role::Second).is_ok() {
                    apply(&mut books, deposits);
                }
                prop_assert!(books.hub_locked <= u(total));
                prop_assert!(books.locked_proposer <= u(per_client) && books.locked_acceptor <= u(per_client));
                prop_assert!(books.hub_locked * u(10_000) <= (books.hub_locked + books.hub_free) * U256::from(bps));
            }
        }

        /// Fees are never below the exact amount, and above it by less than one unit.
        #[test]
        fn rounding_never_favours_the_payer_beyond_one_unit(
            flat in 0u64..1_000, bps in 0u32..10_000, ppm in 0u32..100_000,
            locked in 0u64..u64::MAX / 4, seconds in 0u64..(30 * 24 * 3600),
        ) {
            let policy = VirtualPolicy { fee_flat: u(flat), fee_bps: bps, fee_ppm_per_hour: ppm, ..Default::default() };
            let f = fee(&policy, u(locked), seconds).expect("no overflow");
            let exact_times = u(locked) * (U256::from(bps) * u(360_000) + U256::from(ppm) * u(seconds));
            let d = u(3_600_000_000);
            prop_assert!(f >= u(flat));
            prop_assert!((f - u(flat)) * d >= exact_times, "not below the exact fee");
            prop_assert!((f - u(flat)) * d < exact_times + d, "less than one unit above it");
        }
    }
}
