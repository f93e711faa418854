//! The honest clients: they only use the SDK (open, pay the hub, open/pay/close virtual
//! channels with each other peer to peer, take top-ups, close, watch, withdraw) and keep
//! their states in the SDK's store. What they must get back is computed from those states.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use ingrid_client_sdk::api::{ChannelStatus, VirtualStatus};
use ingrid_client_sdk::chain;
use ingrid_client_sdk::wallet::{Deposit, Wallet, WalletError};
use rand::Rng;

use super::world::{HONEST_CHALLENGE, HONEST_V_CHALLENGE, Outcome, World, fmt_units, now, units};

/// One honest client.
pub struct Honest {
    /// `H0`, ...
    pub name: String,
    /// Its SDK wallet (its own store).
    pub wallet: Wallet,
    /// Its basic channels (ids as the SDK returned them).
    pub channels: Vec<B256>,
    /// States it signed and sent whose answer it did not get (`pay_hub` cut off by a crash):
    /// the hub may hold them: (channel, version, the amount it moved to the hub).
    pub risks: Vec<(B256, u64, U256)>,
    /// What it asked the hub to deposit when opening each channel.
    pub opening_hub: std::collections::HashMap<B256, U256>,
}

impl Honest {
    /// A client with no channels yet.
    pub fn new(name: String, wallet: Wallet) -> Self {
        Self { name, wallet, channels: Vec::new(), risks: Vec::new(), opening_hub: Default::default() }
    }
}

/// A virtual channel between two honest clients.
pub struct HVirtual {
    /// `W0`, ...
    pub name: String,
    /// Its id.
    pub id: B256,
    /// Proposer and acceptor (honest indices).
    pub members: [usize; 2],
    /// Their parents.
    pub parents: [B256; 2],
    /// Open (both parents lock it, both stored it).
    pub open: bool,
    /// Closed peer to peer.
    pub closed: bool,
}

fn wallet_refusal(e: WalletError) -> Outcome {
    Outcome::Refused(e.to_string().chars().take(220).collect())
}

impl World {
    fn honest_pick(&mut self) -> usize {
        self.rng.random_range(0..self.honest.len())
    }

    /// The hub's status of an honest client's channel (`None`: unreachable).
    async fn h_status(&self, h: usize, id: B256) -> Option<ChannelStatus> {
        self.honest[h].wallet.hub().channel(id).await.ok().map(|v| v.status)
    }

    /// The client's and the hub's balance in the stored latest state of `id`.
    fn h_balances(&self, h: usize, id: B256) -> Option<(U256, U256, bool)> {
        let r = self.honest[h].wallet.store().load(id).ok()??;
        let (hub, client) = (r.hub_index.index(), r.hub_index.peer().index());
        let s = &r.latest.state;
        Some((s.outcome.balances[0][client], s.outcome.balances[0][hub], s.outcome.locked.is_empty() && !s.isFinal))
    }

    /// The client's channels the hub reports open.
    async fn h_open_channels(&self, h: usize) -> Vec<B256> {
        let mut out = Vec::new();
        for id in &self.honest[h].channels {
            if self.h_status(h, *id).await == Some(ChannelStatus::Open) {
                out.push(*id);
            }
        }
        out
    }

    /// `h_open_channel`.
    pub async fn h_open_channel(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        let mine = self.rng.random_range(20..=60u64);
        let hub = if self.rng.random_bool(0.2) { 0 } else { self.rng.random_range(5..=mine) };
        let deposit = Deposit { asset: self.eth, mine: units(mine), hub: units(hub) };
        let w = &self.honest[h].wallet;
        let id = match w.open_channel(&[deposit], HONEST_CHALLENGE).await {
            Ok(id) => id,
            Err(e) => return Ok(wallet_refusal(e)),
        };
        self.honest[h].channels.push(id);
        self.honest[h].opening_hub.insert(id, units(hub));
        let name = format!("{}.{}", self.honest[h].name, self.honest[h].channels.len() - 1);
        let open = self.honest[h].wallet.wait_until_open(id, Duration::from_secs(8)).await.is_ok();
        Ok(Outcome::Done(format!(
            "{name} = {} + hub {}{} ({id})",
            fmt_units(units(mine)),
            fmt_units(units(hub)),
            if open { ", open" } else { ", not open yet" }
        )))
    }

    /// `h_pay_hub`.
    pub async fn h_pay_hub(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        let open = self.h_open_channels(h).await;
        let Some(id) = self.pick_id(&open) else { return Ok(Outcome::Skipped) };
        let Some((mine, _, _)) = self.h_balances(h, id) else { return Ok(Outcome::Skipped) };
        let amount = self.fraction(mine, 20);
        if amount.is_zero() {
            return Ok(Outcome::Skipped);
        }
        let version = self.honest[h].wallet.store().load(id)?.map_or(0, |r| r.latest.state.version) + 1;
        match self.honest[h].wallet.pay_hub(id, self.eth, amount).await {
            Ok(()) => {
                self.paid_to_hub += amount;
                Ok(Outcome::Done(format!("{} pays the hub {} in {id}", self.honest[h].name, fmt_units(amount))))
            }
            Err(WalletError::Hub(e)) if ingrid_client_sdk::client::is_retryable(&e) => {
                // Signed and sent, answer lost: the hub may hold it.
                self.honest[h].risks.push((id, version, amount));
                Ok(Outcome::Refused(format!("pay_hub cut off: {e}")))
            }
            Err(e) => Ok(wallet_refusal(e)),
        }
    }

    fn pick_id(&mut self, ids: &[B256]) -> Option<B256> {
        if ids.is_empty() { None } else { Some(ids[self.rng.random_range(0..ids.len())]) }
    }

    /// `h_open_virtual`: the proposer asks for a quote and proposes, the acceptor accepts,
    /// the proposer waits for the hub's countersignature (all SDK).
    pub async fn h_open_virtual(&mut self) -> anyhow::Result<Outcome> {
        let a = self.honest_pick();
        let b = (a + self.rng.random_range(1..self.honest.len())) % self.honest.len();
        let (xs, ys) = (self.h_open_channels(a).await, self.h_open_channels(b).await);
        let (Some(x), Some(y)) = (self.pick_id(&xs), self.pick_id(&ys)) else { return Ok(Outcome::Skipped) };
        let (Some((xc, xh, _)), Some((yc, yh, _))) = (self.h_balances(a, x), self.h_balances(b, y)) else {
            return Ok(Outcome::Skipped);
        };
        // The proposer keeps room for the fee (flat 1 unit + 1% of the hub's lock).
        let da = self.fraction(xc.saturating_sub(units(3)), 60).min(yh);
        let db = self.fraction(yc, 60).min(xh);
        if (da + db).is_zero() {
            return Ok(Outcome::Skipped);
        }
        let valid = self.rng.random_range(30..=600u64);
        let peer = self.honest[b].wallet.address();
        let id = match self.honest[a]
            .wallet
            .propose_virtual(peer, x, &[[da, db]], HONEST_V_CHALLENGE, now() + valid)
            .await
        {
            Ok(id) => id,
            Err(e) => return Ok(wallet_refusal(e)),
        };
        let proposal = match self.honest[b].wallet.proposals().await {
            Ok(list) => list.into_iter().find(|p| p.id == id),
            Err(e) => return Ok(wallet_refusal(e)),
        };
        let Some(proposal) = proposal else { return Ok(Outcome::Refused("the proposal is not listed".into())) };
        if let Err(e) = self.honest[b].wallet.accept_virtual(&proposal, y).await {
            return Ok(wallet_refusal(e));
        }
        let name = format!("W{}", self.hv.len());
        self.hv.push(super::honest::HVirtual {
            name: name.clone(),
            id,
            members: [a, b],
            parents: [x, y],
            open: false,
            closed: false,
        });
        let i = self.hv.len() - 1;
        match self.honest[a].wallet.wait_virtual_open(id, Duration::from_secs(10)).await {
            Ok(_) => {
                self.hv[i].open = true;
                let fee =
                    self.honest[a].wallet.hub().virtual_channel(id).await.ok().and_then(|v| v.fees.first().copied());
                self.fees += fee.unwrap_or_default();
                Ok(Outcome::Done(format!(
                    "{name} = {} -> {}: [{}, {}], valid {valid}s, fee {} ({id})",
                    self.honest[a].name,
                    self.honest[b].name,
                    fmt_units(da),
                    fmt_units(db),
                    fmt_units(fee.unwrap_or_default())
                )))
            }
            Err(e) => Ok(Outcome::Refused(format!("{name} accepted, but the proposer did not see it open: {e}"))),
        }
    }

    /// Makes sure both ends of every honest virtual channel stored it (the proposer's
    /// `wait_virtual_open`), so their watchers and registrations have its states.
    pub async fn h_finish_opens(&mut self) {
        for i in 0..self.hv.len() {
            if self.hv[i].open {
                continue;
            }
            let (a, id) = (self.hv[i].members[0], self.hv[i].id);
            let view = self.honest[a].wallet.hub().virtual_channel(id).await;
            if view.is_ok_and(|v| v.status != VirtualStatus::Proposed && v.status != VirtualStatus::Rejected)
                && self.honest[a].wallet.wait_virtual_open(id, Duration::from_secs(5)).await.is_ok()
            {
                self.hv[i].open = true;
                let fee =
                    self.honest[a].wallet.hub().virtual_channel(id).await.ok().and_then(|v| v.fees.first().copied());
                self.fees += fee.unwrap_or_default();
            }
        }
    }

    /// `h_pay_virtual`.
    pub async fn h_pay_virtual(&mut self) -> anyhow::Result<Outcome> {
        let open: Vec<usize> = (0..self.hv.len()).filter(|i| self.hv[*i].open && !self.hv[*i].closed).collect();
        if open.is_empty() {
            return Ok(Outcome::Skipped);
        }
        let i = open[self.rng.random_range(0..open.len())];
        let side = self.rng.random_range(0..2);
        let (payer, payee) = (self.hv[i].members[side], self.hv[i].members[1 - side]);
        let id = self.hv[i].id;
        let record = self.honest[payer].wallet.virtual_record(id)?;
        if record.latest.state.isFinal || record.pending.is_some() {
            return Ok(Outcome::Skipped);
        }
        let mine = record.latest.state.outcome.balances[0][record.my_index.index()];
        let amount = self.fraction(mine, 40);
        if amount.is_zero() {
            return Ok(Outcome::Skipped);
        }
        let payment = match self.honest[payer].wallet.pay(id, self.eth, amount).await {
            Ok(p) => p,
            Err(e) => return Ok(wallet_refusal(e)),
        };
        let receipt = match self.honest[payee].wallet.receive_payment(&payment, self.eth, amount).await {
            Ok(r) => r,
            Err(e) => return Ok(Outcome::Refused(format!("payment refused: {e}"))),
        };
        self.honest[payer].wallet.accept_receipt(&receipt).await?;
        Ok(Outcome::Done(format!(
            "{} pays {} {} in {} (v{})",
            self.honest[payer].name,
            self.honest[payee].name,
            fmt_units(amount),
            self.hv[i].name,
            payment.state.version
        )))
    }

    /// `h_close_virtual`: a peer-to-peer close settling both parents in one request.
    pub async fn h_close_virtual(&mut self) -> anyhow::Result<Outcome> {
        let open: Vec<usize> = (0..self.hv.len()).filter(|i| self.hv[*i].open && !self.hv[*i].closed).collect();
        if open.is_empty() {
            return Ok(Outcome::Skipped);
        }
        let i = open[self.rng.random_range(0..open.len())];
        self.h_close_one(i).await
    }

    /// Closes honest virtual channel `i` peer to peer (the requester is random).
    pub async fn h_close_one(&mut self, i: usize) -> anyhow::Result<Outcome> {
        let side = self.rng.random_range(0..2);
        let (asker, answerer) = (self.hv[i].members[side], self.hv[i].members[1 - side]);
        let id = self.hv[i].id;
        let request = match self.honest[asker].wallet.close_request(id).await {
            Ok(r) => r,
            Err(e) => return Ok(wallet_refusal(e)),
        };
        let answer = match self.honest[answerer].wallet.answer_close(&request).await {
            Ok(a) => a,
            Err(e) => return Ok(wallet_refusal(e)),
        };
        if let Err(e) = self.honest[asker].wallet.finish_close(id, &request, answer).await {
            return Ok(wallet_refusal(e));
        }
        self.hv[i].closed = true;
        let parent = self.hv[i].parents[1 - side];
        let synced = self.honest[answerer].wallet.sync_channel(parent).await.is_ok();
        Ok(Outcome::Done(format!(
            "{} closes {} at v{} {:?}{}",
            self.honest[asker].name,
            self.hv[i].name,
            request.state.version,
            request.state.outcome.balances[0].map(fmt_units),
            if synced { "" } else { " (the peer's sync failed)" }
        )))
    }

    /// `h_accept_top_up`.
    pub async fn h_accept_top_up(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        for id in self.honest[h].channels.clone() {
            let Ok(view) = self.honest[h].wallet.hub().channel(id).await else { continue };
            if view.top_up.is_none() || view.status != ChannelStatus::Open {
                continue;
            }
            let _ = self.honest[h].wallet.sync_channel(id).await;
            return match self.honest[h].wallet.accept_top_up(id).await {
                Ok(true) => Ok(Outcome::Done(format!("{} takes the top-up in {id}", self.honest[h].name))),
                Ok(false) => Ok(Outcome::Skipped),
                Err(e) => Ok(wallet_refusal(e)),
            };
        }
        Ok(Outcome::Skipped)
    }

    /// `h_close_channel`.
    pub async fn h_close_channel(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        let open = self.h_open_channels(h).await;
        let free: Vec<B256> =
            open.into_iter().filter(|id| self.h_balances(h, *id).is_some_and(|(_, _, free)| free)).collect();
        let Some(id) = self.pick_id(&free) else { return Ok(Outcome::Skipped) };
        match self.honest[h].wallet.close(id).await {
            Ok(()) => Ok(Outcome::Done(format!("{} closes {id}", self.honest[h].name))),
            Err(e) => Ok(wallet_refusal(e)),
        }
    }

    /// `h_sync`.
    pub async fn h_sync(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        let mut synced = 0;
        for id in self.honest[h].channels.clone() {
            if self.honest[h].wallet.sync_channel(id).await.is_ok() {
                synced += 1;
            }
        }
        Ok(Outcome::Done(format!("{} synced {synced} channels", self.honest[h].name)))
    }

    /// `h_watch`.
    pub async fn h_watch(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        match self.honest[h].wallet.watch_once().await {
            Ok(r) => Ok(Outcome::Done(format!(
                "{} watches: refuted {:?}, too late {:?}",
                self.honest[h].name, r.refuted, r.too_late
            ))),
            Err(e) => Ok(wallet_refusal(e)),
        }
    }

    /// `h_withdraw`.
    pub async fn h_withdraw(&mut self) -> anyhow::Result<Outcome> {
        let h = self.honest_pick();
        let mut total = U256::ZERO;
        for id in self.honest[h].channels.clone() {
            let me = self.honest[h].wallet.address();
            if !self.concluded(id).await? || chain::holdings(&self.reader(), self.eth, id, me).await?.is_zero() {
                continue;
            }
            match self.honest[h].wallet.withdraw(id, Duration::from_secs(5)).await {
                Ok(amounts) => total += amounts.iter().copied().sum::<U256>(),
                Err(e) => return Ok(wallet_refusal(e)),
            }
        }
        if total.is_zero() {
            return Ok(Outcome::Skipped);
        }
        Ok(Outcome::Done(format!("{} withdraws {}", self.honest[h].name, fmt_units(total))))
    }
}
