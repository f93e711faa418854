//! The invariants, checked from the chain after the settlement (not from the hub's books):
//! 1. the hub gets back at least what it deposited plus the fees and payments it earned;
//! 2. every honest client gets back at least its latest fully signed balance;
//! 3. the hub never signed two different states at one version of a channel;
//! 4. the hub's watcher reached the chain head and no outbox action failed.
//!
//! Money is followed through account balances: what an account received from the asset
//! holder is its balance change plus the gas it paid plus the value it sent (deposits).

use std::collections::HashMap;
use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use ingrid_client_sdk::bindings::eth_holder::EthAssetHolder;
use ingrid_client_sdk::chain;

use super::hubproc::metrics;
use super::world::{World, fmt_units};

/// A broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which: `hub_funds`, `virtual_neutrality`, `honest_funds`, `hub_signatures`, `watcher`,
    /// `outbox`, `settlement`, `running_books` (the hub's books, not the chain).
    pub invariant: &'static str,
    /// What the chain shows.
    pub message: String,
}

/// Money flows of every account since the simulation started.
#[derive(Default)]
struct Flows {
    gas: HashMap<Address, U256>,
    sent: HashMap<Address, U256>,
    /// Deposits and standby deposits by (depositor, channel).
    deposits: HashMap<(Address, B256), U256>,
}

/// A channel's outcome at the ETH holder.
#[derive(Debug, Clone)]
struct OutcomeSet {
    balances: [U256; 2],
    refunded: bool,
}

impl World {
    async fn flows(&self) -> anyhow::Result<Flows> {
        let p = self.reader();
        let head = p.get_block_number().await?;
        let mut f = Flows::default();
        for n in self.start_block + 1..=head {
            let Some(block) = p.get_block_by_number(n.into()).full().await? else { continue };
            let receipts = p.get_block_receipts(BlockId::number(n)).await?.unwrap_or_default();
            for (tx, receipt) in block.transactions.txns().zip(&receipts) {
                let from = receipt.from;
                *f.gas.entry(from).or_default() +=
                    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
                if !receipt.status() {
                    continue;
                }
                *f.sent.entry(from).or_default() += tx.value();
                if tx.to() == Some(self.eth) {
                    // Deposits and standby deposits (the hub's top-ups) alike.
                    let channel = EthAssetHolder::depositCall::abi_decode(tx.input())
                        .map(|c| c.channelId)
                        .or_else(|_| EthAssetHolder::depositStandbyCall::abi_decode(tx.input()).map(|c| c.channelId));
                    if let Ok(channel) = channel {
                        *f.deposits.entry((from, channel)).or_default() += tx.value();
                    }
                }
            }
        }
        Ok(f)
    }

    /// What `account` received from the asset holders since the start.
    async fn received(&self, f: &Flows, account: Address) -> anyhow::Result<U256> {
        let end = self.reader().get_balance(account).await?;
        let start = self.start_balances.get(&account).copied().unwrap_or_default();
        let gas = f.gas.get(&account).copied().unwrap_or_default();
        let sent = f.sent.get(&account).copied().unwrap_or_default();
        Ok((end + gas + sent).saturating_sub(start))
    }

    async fn outcomes(&self) -> anyhow::Result<HashMap<B256, OutcomeSet>> {
        let filter =
            Filter::new().address(self.eth).event_signature(EthAssetHolder::OutcomeSet::SIGNATURE_HASH).from_block(0);
        let mut out = HashMap::new();
        for log in self.reader().get_logs(&filter).await? {
            let e = log.log_decode::<EthAssetHolder::OutcomeSet>()?.inner.data;
            out.insert(e.channelId, OutcomeSet { balances: e.balances, refunded: e.refunded });
        }
        Ok(out)
    }

    async fn withdrawn_events(&self) -> anyhow::Result<HashMap<(B256, Address), U256>> {
        let filter =
            Filter::new().address(self.eth).event_signature(EthAssetHolder::Withdrawn::SIGNATURE_HASH).from_block(0);
        let mut out: HashMap<(B256, Address), U256> = HashMap::new();
        for log in self.reader().get_logs(&filter).await? {
            let e = log.log_decode::<EthAssetHolder::Withdrawn>()?.inner.data;
            *out.entry((e.channelId, e.participant)).or_default() += e.amount;
        }
        Ok(out)
    }

    /// The running books against a recount of every channel, and the counts by status
    /// against a count of the rows, read in one snapshot (the hub may be busy meanwhile).
    /// `when` names the moment in a violation.
    pub async fn books(&self, when: &str) -> anyhow::Result<Vec<Violation>> {
        let mut tx = self.env.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
        let running = ingrid_hub::metrics::collateral_of(&mut tx, None).await?;
        let recount = ingrid_hub::metrics::collateral_recount(&mut tx).await?;
        let drop_zero = |m: &std::collections::BTreeMap<Address, U256>| {
            m.iter().filter(|(_, v)| !v.is_zero()).map(|(a, v)| (*a, *v)).collect::<Vec<_>>()
        };
        let mut out = Vec::new();
        for (name, a, b) in [
            ("hub_locked", &running.hub_locked, &recount.hub_locked),
            ("locked_total", &running.locked_total, &recount.locked_total),
            ("hub_free", &running.hub_free, &recount.hub_free),
        ] {
            if drop_zero(a) != drop_zero(b) {
                out.push(Violation {
                    invariant: "running_books",
                    message: format!("{when}: {name} is {a:?} in the running books, {b:?} recounted"),
                });
            }
        }
        let differ: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "WITH running AS (SELECT kind, status, sum(n)::bigint AS n FROM status_counts GROUP BY 1, 2),
                  counted AS (SELECT 'basic' AS kind, status::text AS status, count(*) AS n FROM basic_channels GROUP BY 2
                              UNION ALL
                              SELECT 'virtual', status::text, count(*) FROM virtual_channels GROUP BY 2)
             SELECT kind, status, coalesce(r.n, 0), coalesce(c.n, 0) FROM running r FULL JOIN counted c USING (kind, status)
             WHERE coalesce(r.n, 0) <> coalesce(c.n, 0)",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (kind, status, running, counted) in differ {
            out.push(Violation {
                invariant: "running_books",
                message: format!("{when}: {running} {kind} channels {status} in the running counts, {counted} counted"),
            });
        }
        Ok(out)
    }

    /// Checks every invariant; `unsettled` are the channels the settlement could not conclude.
    pub async fn check(&mut self, unsettled: Vec<String>) -> anyhow::Result<Vec<Violation>> {
        let mut out = Vec::new();
        if !unsettled.is_empty() {
            out.push(Violation {
                invariant: "settlement",
                message: format!("not concluded on chain after the settlement: {}", unsettled.join(", ")),
            });
        }
        let f = self.flows().await?;
        let outcomes = self.outcomes().await?;
        let withdrawn = self.withdrawn_events().await?;
        // Every basic channel of the hub, with what the hub deposited at its opening.
        let channels: Vec<(String, B256, U256)> = {
            let mut v: Vec<(String, B256, U256)> = self
                .co
                .channels
                .iter()
                .map(|c| (c.name.clone(), c.id(), c.states[0].state.outcome.balances[0][c.hub_index.index()]))
                .collect();
            for h in &self.honest {
                for (i, id) in h.channels.iter().enumerate() {
                    v.push((format!("{}.{i}", h.name), *id, h.opening_hub.get(id).copied().unwrap_or_default()));
                }
            }
            v
        };
        let settled = |id: &B256| outcomes.contains_key(id);

        // 1. The hub.
        let hub = self.hub_addr;
        let received = self.received(&f, hub).await?;
        let deposited: U256 = f.deposits.iter().filter(|((who, _), _)| *who == hub).map(|(_, v)| *v).sum();
        let mut left = U256::ZERO;
        let mut locked = U256::ZERO;
        let mut table = Vec::new();
        let mut lost_top_ups = Vec::new();
        // Settled channels in which the hub still holds coins (withdrawable, but idle).
        let mut idle = Vec::new();
        for (name, id, opening) in &channels {
            let held = chain::holdings(&self.reader(), self.eth, *id, hub).await?
                + chain::standby(&self.reader(), self.eth, *id, hub).await?;
            if settled(id) {
                left += held;
                if !held.is_zero() {
                    idle.push(format!("{name} {}", fmt_units(held)));
                }
            } else {
                locked += held
            }
            let dep = f.deposits.get(&(hub, *id)).copied().unwrap_or_default();
            let out_w = withdrawn.get(&(*id, hub)).copied().unwrap_or_default();
            let all_in: U256 = f.deposits.iter().filter(|((_, c), _)| c == id).map(|(_, v)| *v).sum();
            let outcome = outcomes.get(id);
            let excess = outcome
                .filter(|o| !o.refunded)
                .map(|o| all_in.saturating_sub(o.balances[0] + o.balances[1]))
                .unwrap_or_default();
            let topped_up = dep.saturating_sub(*opening);
            if !excess.is_zero() && !topped_up.is_zero() {
                lost_top_ups.push(name.clone());
            }
            if out_w + held < dep || !excess.is_zero() {
                table.push(format!(
                    "    {name}: hub deposited {} ({} at the opening, {} top-ups), withdrew {}, holds {}; all deposits {}, outcome {}{}",
                    fmt_units(dep),
                    fmt_units(*opening),
                    fmt_units(topped_up),
                    fmt_units(out_w),
                    fmt_units(held),
                    fmt_units(all_in),
                    outcome.map_or("none".into(), |o| format!("{:?}{}", o.balances.map(fmt_units), if o.refunded { " refunded" } else { "" })),
                    if excess.is_zero() { String::new() } else { format!("; {} deposited beyond the outcome's total (in no signed state)", fmt_units(excess)) }
                ));
            }
        }
        let expected = self.fees + self.paid_to_hub;
        self.note(format!(
            "check: the hub deposited {}, got back {} (+{} withdrawable{}, {} in unconcluded channels); fees {}, payments {}",
            fmt_units(deposited),
            fmt_units(received),
            fmt_units(left),
            if idle.is_empty() { String::new() } else { format!(": {}", idle.join(", ")) },
            fmt_units(locked),
            fmt_units(self.fees),
            fmt_units(self.paid_to_hub)
        ));
        if received + left < deposited + expected {
            let lost = deposited + expected - received - left;
            if !lost_top_ups.is_empty() {
                self.diagnosis
                    .push(format!("flaw 3, a top-up deposit not in the outcome of {}", lost_top_ups.join(",")));
            }

            out.push(Violation {
                invariant: "hub_funds",
                message: format!(
                    "the hub got back {} (withdrawn {} + still withdrawable {}) but deposited {} and earned fees {} and payments {}: it lost {}{}\n  channels where the hub got back less than it deposited, or coins were lost:\n{}",
                    fmt_units(received + left),
                    fmt_units(received),
                    fmt_units(left),
                    fmt_units(deposited),
                    fmt_units(self.fees),
                    fmt_units(self.paid_to_hub),
                    fmt_units(lost),
                    if locked.is_zero() { String::new() } else { format!(" ({} still in unconcluded channels)", fmt_units(locked)) },
                    table.join("\n"),
                ),
            });
        }

        // 1b. A virtual channel settles both its parents with one state (the hub is neutral).
        for (name, message) in self.settled_twice().await? {
            let net = message.rsplit(' ').next().unwrap_or("").to_string();
            self.diagnosis.push(format!("flaw 1, {name} settled with two different states (the hub's net {net})"));
            out.push(Violation { invariant: "virtual_neutrality", message });
        }

        // 2. The honest clients.
        for h in 0..self.honest.len() {
            let me = self.honest[h].wallet.address();
            let received = self.received(&f, me).await?;
            let mut expected = U256::ZERO;
            let mut held_total = U256::ZERO;
            let mut lines = Vec::new();
            for id in self.honest[h].channels.clone() {
                let held = chain::holdings(&self.reader(), self.eth, id, me).await?;
                if settled(&id) {
                    held_total += held;
                }
                let value = match outcomes.get(&id) {
                    Some(o) if o.refunded => f.deposits.get(&(me, id)).copied().unwrap_or_default(),
                    _ => self.honest_value(h, id)?,
                };
                expected += value;
                lines.push(format!(
                    "    {id}: due {} (outcome {:?})",
                    fmt_units(value),
                    outcomes.get(&id).map(|o| o.balances.map(fmt_units))
                ));
            }
            if received + held_total < expected {
                out.push(Violation {
                    invariant: "honest_funds",
                    message: format!(
                        "{} got back {} (withdrawn {} + withdrawable {}) but its latest fully signed states give it {}:\n{}",
                        self.honest[h].name,
                        fmt_units(received + held_total),
                        fmt_units(received),
                        fmt_units(held_total),
                        fmt_units(expected),
                        lines.join("\n")
                    ),
                });
            }
        }

        // 3. One state per version.
        self.collect_honest_sigs();
        for v in &self.sigs.violations {
            out.push(Violation { invariant: "hub_signatures", message: v.clone() });
        }

        // 4. The watcher and the outbox.
        let head = self.head().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let m = loop {
            let m = metrics(&self.hub.url).await.unwrap_or_default();
            let ingested = m.get("ingrid_chain_ingested_block").copied().unwrap_or(0.0) as u64;
            if ingested >= head || tokio::time::Instant::now() >= deadline {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let ingested = m.get("ingrid_chain_ingested_block").copied().unwrap_or(0.0) as u64;
        if ingested < head {
            let why = self.hub.log_tail(400).lines().rfind(|l| l.contains("ingestion")).unwrap_or("").to_string();
            self.diagnosis.push(if why.contains("registered_version") {
                "flaw 2, the watcher stopped by a version >= 2^63".into()
            } else {
                "the watcher stopped".into()
            });
            out.push(Violation {
                invariant: "watcher",
                message: format!(
                    "the hub's watcher is stuck: it ingested up to block {ingested}, the chain is at {head}; its log says:\n{}",
                    self.hub.log_tail(400).lines().rfind(|l| l.contains("ingestion")).unwrap_or("(nothing)")
                ),
            });
        }
        let failed = m.get("ingrid_outbox_failed").copied().unwrap_or(0.0);
        if failed > 0.0 {
            out.push(Violation { invariant: "outbox", message: format!("{failed} outbox actions failed for good") });
        }
        // A transaction of the hub the node holds back (queued behind a nonce gap) is never
        // mined: the outbox waits on it for ever.
        let pool: serde_json::Value = self.reader().raw_request("txpool_inspect".into(), ()).await.unwrap_or_default();
        let hub = self.hub_addr.to_string();
        if let Some((_, queued)) =
            pool["queued"].as_object().and_then(|q| q.iter().find(|(a, _)| a.eq_ignore_ascii_case(&hub)))
        {
            self.diagnosis.push("the hub's transactions are stuck behind a nonce gap".into());
            out.push(Violation {
                invariant: "outbox",
                message: format!(
                    "the node holds back transactions of the hub behind a nonce gap (never mined): {queued}"
                ),
            });
        }
        Ok(out)
    }

    /// What honest client `h` is owed by channel `id`: its balance in the latest state it
    /// holds signed by both, plus its share of each lock from the latest state of that virtual
    /// channel it holds; where it signed a newer state that may have reached the hub without
    /// an answer (a payment cut off by a crash), or a payment its peer did not countersign
    /// yet, the lower of the two.
    fn honest_value(&self, h: usize, id: B256) -> anyhow::Result<U256> {
        let w = &self.honest[h].wallet;
        let Some(record) = w.store().load(id)? else { return Ok(U256::ZERO) };
        let me = record.hub_index.peer().index();
        let state = &record.latest.state;
        let mut value = state.outcome.balances[0][me];
        for lock in &state.outcome.locked {
            // An unknown virtual channel counts nothing: no false alarm, at worst a miss.
            let Ok(v) = w.virtual_record(lock.id) else { continue };
            let i = v.my_index.index();
            let mut share = v.latest.state.outcome.balances[0][i];
            if let Some(p) = &v.pending {
                share = share.min(p.outcome.balances[0][i]);
            }
            value += share;
        }
        for (channel, version, amount) in &self.honest[h].risks {
            if *channel == id && *version > state.version {
                value = value.saturating_sub(*amount);
            }
        }
        Ok(value)
    }

    /// Coalition virtual channels the hub settled off chain in one parent (it countersigned
    /// that parent's update with final state `F`) while the other parent concluded on chain
    /// with another state `R` of it: (name, parents, versions, the hub's net on the channel).
    /// The hub locked the acceptor's deposit in the proposer's parent and the proposer's in
    /// the acceptor's; it gets back V's acceptor share in the proposer's parent and V's
    /// proposer share in the acceptor's, so with one state both ways it is neutral.
    async fn settled_twice(&self) -> anyhow::Result<Vec<(String, String)>> {
        use alloy::sol_types::SolEvent;
        use ingrid_client_sdk::bindings::adjudicator::Adjudicator::Concluded;
        let mut out = Vec::new();
        for cv in &self.co.virtuals {
            let (side, off) = match cv.settled {
                [Some(v), None] => (0, v),
                [None, Some(v)] => (1, v),
                _ => continue,
            };
            let Some(f) = cv.states.iter().find(|s| s.version == off && s.isFinal) else { continue };
            let other = self.co.channels[cv.parents[1 - side]].id();
            let filter = Filter::new()
                .address(self.d.adjudicator)
                .event_signature(Concluded::SIGNATURE_HASH)
                .topic1(other)
                .from_block(0);
            let Some(log) = self.reader().get_logs(&filter).await?.pop() else { continue };
            let concluded = log.log_decode::<Concluded>()?.inner.data.version;
            let tree = ingrid_client_sdk::dispute::registered_tree(&self.reader(), &self.d, other, 0).await?;
            let Some(ledger) = tree.get(&other) else { continue };
            if ledger.state.version != concluded || !ledger.state.outcome.locked.iter().any(|l| l.id == cv.id()) {
                continue;
            }
            let Some(r) = tree.get(&cv.key()) else { continue };
            if r.state == *f {
                continue;
            }
            let total = cv.opening.outcome.balances[0][0] + cv.opening.outcome.balances[0][1];
            // Proposer's parent settled off chain: the hub gets F's acceptor share there and
            // R's proposer share in the acceptor's parent.
            let back = if side == 0 {
                f.outcome.balances[0][1] + r.state.outcome.balances[0][0]
            } else {
                f.outcome.balances[0][0] + r.state.outcome.balances[0][1]
            };
            let net = if back >= total {
                format!("+{}", fmt_units(back - total))
            } else {
                format!("-{}", fmt_units(total - back))
            };
            out.push((
                cv.name.clone(),
                format!(
                    "{}: the hub settled {} off chain with final v{} {:?} (it countersigned that update), and {} concluded on chain with v{} {:?} of it: the hub's net on {} is {net}",
                    cv.name,
                    self.co.channels[cv.parents[side]].name,
                    f.version,
                    f.outcome.balances[0].map(fmt_units),
                    self.co.channels[cv.parents[1 - side]].name,
                    r.state.version,
                    r.state.outcome.balances[0].map(fmt_units),
                    cv.name
                ),
            ));
        }
        Ok(out)
    }
}
