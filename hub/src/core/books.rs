//! What one basic channel's state holds of the hub's coins, per asset: the running books
//! (see `migrations/20261203000001_running_books.sql`) add these up as channels move, so
//! no request and no scrape sums over every channel.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};
use ingrid_client_sdk::Allocation;
use ingrid_client_sdk::virtual_channel::Link;
use ingrid_protocol::Role;

/// One basic channel's state in the books, per asset of the channel (in its order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelBooks {
    /// The channel's assets.
    pub assets: Vec<Address>,
    /// The hub's balance.
    pub hub_free: Vec<U256>,
    /// The hub's own share of the locks: what it paid into each virtual channel's lock.
    pub hub_locked: Vec<U256>,
    /// Everything locked (both sides).
    pub locked_total: Vec<U256>,
}

impl ChannelBooks {
    /// The books of a state with `outcome`, in which the hub is participant `hub`;
    /// `openings` holds the opening allocation of every virtual channel whose lock it holds.
    /// Returns the id of a lock whose opening is missing.
    pub fn of(outcome: &Allocation, hub: Role, openings: &HashMap<B256, Allocation>) -> Result<Self, B256> {
        let n = outcome.assets.len();
        let mut books = Self {
            assets: outcome.assets.clone(),
            hub_free: outcome
                .balances
                .iter()
                .map(|b| b[hub.index()])
                .chain(std::iter::repeat(U256::ZERO))
                .take(n)
                .collect(),
            hub_locked: vec![U256::ZERO; n],
            locked_total: vec![U256::ZERO; n],
        };
        for lock in &outcome.locked {
            let opening = openings.get(&lock.id).ok_or(lock.id)?;
            let link = Link::from_index_map(lock.indexMap);
            for (k, asset) in outcome.assets.iter().enumerate() {
                let amount = lock.balances.get(k).copied().unwrap_or_default();
                books.locked_total[k] = books.locked_total[k].saturating_add(amount);
                // The hub's share: the opening deposits of the virtual channel's participants
                // that the lock maps to the hub.
                let share = opening
                    .assets
                    .iter()
                    .position(|a| a == asset)
                    .and_then(|vk| opening.balances.get(vk))
                    .zip(link)
                    .and_then(|(deposits, link)| link.pays(hub, deposits).ok())
                    .unwrap_or_default();
                books.hub_locked[k] = books.hub_locked[k].saturating_add(share);
            }
        }
        Ok(books)
    }

    /// The ids of the locks in `outcome` (whose openings [`ChannelBooks::of`] needs).
    pub fn lock_ids(outcome: &Allocation) -> impl Iterator<Item = B256> + '_ {
        outcome.locked.iter().map(|l| l.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;
    use ingrid_client_sdk::virtual_channel::lock_in_parent;
    use ingrid_client_sdk::{State, SubAlloc};

    fn u(n: u64) -> U256 {
        U256::from(n)
    }

    fn state(balances: [u64; 2], locked: Vec<SubAlloc>) -> State {
        State {
            channelId: B256::repeat_byte(1),
            version: 3,
            outcome: Allocation {
                assets: vec![Address::repeat_byte(0xee), Address::repeat_byte(0xdd)],
                balances: vec![[u(balances[0]), u(balances[1])], [u(7), u(9)]],
                locked,
            },
            appData: Bytes::new(),
            isFinal: false,
        }
    }

    #[test]
    fn the_hub_share_of_a_lock_is_what_it_paid_in_and_a_missing_opening_is_named() {
        // Client 0, hub 1 in the parent; the client is V's participant 0 (deposits 30 and 12
        // of the first asset, nothing of the second).
        let parent = state([100, 200], vec![]);
        let hub = Role::Second;
        let v = B256::repeat_byte(9);
        let opening = State {
            channelId: v,
            version: 0,
            outcome: Allocation {
                assets: parent.outcome.assets.clone(),
                balances: vec![[u(30), u(12)], [u(0), u(0)]],
                locked: vec![],
            },
            appData: Bytes::new(),
            isFinal: false,
        };
        let link = Link::client_parent(Role::First, hub);
        let locked = lock_in_parent(&parent, link, &opening).expect("lock");
        assert_eq!(ChannelBooks::of(&locked.outcome, hub, &HashMap::new()), Err(v));
        let openings = HashMap::from([(v, opening.outcome.clone())]);
        let books = ChannelBooks::of(&locked.outcome, hub, &openings).expect("books");
        assert_eq!(books.hub_free, vec![u(188), u(9)]);
        assert_eq!(books.hub_locked, vec![u(12), u(0)]);
        assert_eq!(books.locked_total, vec![u(42), u(0)]);
        // Seen from the client's side of the same lock, the "hub" would have paid 30.
        assert_eq!(
            ChannelBooks::of(&locked.outcome, Role::First, &openings).expect("books").hub_locked,
            vec![u(30), u(0)]
        );
        let plain = ChannelBooks::of(&parent.outcome, hub, &HashMap::new()).expect("books");
        assert_eq!((plain.hub_free, plain.hub_locked), (vec![u(200), u(9)], vec![u(0), u(0)]));
    }
}
