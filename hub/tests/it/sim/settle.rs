//! The end of a run: everything is settled on chain. Honest clients close what they can
//! cooperatively (SDK) and go to chain with the rest; the coalition goes to chain with
//! states of its choosing; time passes (the honest watchers and the hub refute); every
//! registered channel is concluded once its timeouts passed; every party withdraws; the
//! hub's watcher and outbox get time to finish.

use std::time::Duration;

use alloy::primitives::B256;
use alloy::providers::Provider;
use ingrid_client_sdk::SignedState;
use ingrid_client_sdk::api::ChannelStatus;
use ingrid_client_sdk::chain::{self, phase};
use ingrid_client_sdk::dispute;
use rand::Rng;

use super::hubproc::metrics;
use super::strategy::Strategy;
use super::world::{MAX_JUMP, Outcome, World};

/// Most rounds of "register, wait, conclude" before giving up (an app channel's record may
/// take (2 + 16) challenge durations of up to 600 s, in jumps of at most `MAX_JUMP`).
const ROUNDS: usize = 40;

/// Who holds a basic channel of the hub.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Honest(usize),
    Coalition(usize),
}

impl World {
    /// Every basic channel of the hub the simulation opened, with its holder.
    fn hub_channels(&self) -> Vec<(String, B256, Holder)> {
        let mut out = Vec::new();
        for (h, honest) in self.honest.iter().enumerate() {
            for (i, id) in honest.channels.iter().enumerate() {
                out.push((format!("{}.{i}", honest.name), *id, Holder::Honest(h)));
            }
        }
        for (c, ch) in self.co.channels.iter().enumerate() {
            out.push((ch.name.clone(), ch.id(), Holder::Coalition(c)));
        }
        out
    }

    /// The final state signed by both that the holder of `id` keeps, if any.
    fn final_state(&self, id: B256, holder: Holder) -> Option<SignedState> {
        match holder {
            Holder::Honest(h) => {
                let r = self.honest[h].wallet.store().load(id).ok()??;
                r.latest.state.isFinal.then(|| SignedState {
                    params: r.params,
                    state: r.latest.state,
                    sigs: r.latest.sigs,
                })
            }
            Holder::Coalition(c) => {
                let ch = &self.co.channels[c];
                let l = ch.latest();
                l.state.isFinal.then(|| SignedState {
                    params: ch.params.clone(),
                    state: l.state.clone(),
                    sigs: l.sigs.clone(),
                })
            }
        }
    }

    /// Drives every basic channel of the hub to its conclusion on chain and withdraws every
    /// party's holdings. Returns the channels that could not be concluded.
    pub async fn settle(&mut self) -> anyhow::Result<Vec<String>> {
        self.crash_next = None;
        if !self.hub.is_up() {
            self.hub.start().await?;
            self.note("settle: the hub is started again".into());
        }
        self.wait_ingested(Duration::from_secs(5)).await?;

        // Honest clients: finish opens, close their virtual channels and their basic channels
        // cooperatively, taking the hub's top-ups first (as the SDK offers).
        self.h_finish_opens().await;
        for i in 0..self.hv.len() {
            if self.hv[i].open && !self.hv[i].closed {
                let outcome = self.h_close_one(i).await?;
                self.log_outcome("settle: h_close_virtual", outcome);
            }
        }
        for h in 0..self.honest.len() {
            for id in self.honest[h].channels.clone() {
                let _ = self.honest[h].wallet.sync_channel(id).await;
                let open = self.honest[h].wallet.hub().channel(id).await.is_ok_and(|v| v.status == ChannelStatus::Open);
                if !open {
                    continue;
                }
                if let Ok(true) = self.honest[h].wallet.accept_top_up(id).await {
                    self.note(format!("settle: {} takes the top-up in {id}", self.honest[h].name));
                }
                let free =
                    self.honest[h].wallet.store().load(id)?.is_some_and(|r| r.latest.state.outcome.locked.is_empty());
                if free {
                    let result = self.honest[h].wallet.close(id).await;
                    self.note(format!(
                        "settle: {} closes {id}: {}",
                        self.honest[h].name,
                        result.map_or_else(|e| e.to_string(), |_| "ok".into())
                    ));
                }
            }
        }
        // The coalition takes the hub's top-ups before going to chain, or ignores them, as often
        // as the weights of `accept_top_up` and `close_ignoring_top_up` say.
        let take = self.weights.0.get(&Strategy::AcceptTopUp).copied().unwrap_or(1);
        let ignore = self.weights.0.get(&Strategy::CloseIgnoringTopUp).copied().unwrap_or(1);
        for c in 0..self.co.channels.len() {
            let ch = &self.co.channels[c];
            if !ch.funded
                || ch.latest().state.isFinal
                || take + ignore == 0
                || self.rng.random_range(0..take + ignore) >= take
            {
                continue;
            }
            if let Some(outcome) = self.co_accept_top_up_in(c).await? {
                self.log_outcome("settle: accept_top_up", outcome);
            }
        }
        self.wait_ingested(Duration::from_secs(3)).await?;
        self.collect_honest_sigs();

        let mut waiting = Vec::new();
        for round in 0..ROUNDS {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.wait_ingested(Duration::from_secs(3)).await?;
            let now = self.chain_time().await?;
            waiting.clear();
            let mut next_timeout: Option<u64> = None;
            for (name, id, holder) in self.hub_channels() {
                let record = self.record(id).await?;
                match record.phase {
                    phase::CONCLUDED => continue,
                    phase::DISPUTE => {
                        let registered = dispute::registered_tree(&self.reader(), &self.d, id, 0).await?;
                        match dispute::conclusion_time(id, &registered) {
                            Some(t) if t <= now => {
                                let sent = dispute::send_conclude(&self.outsider, &self.d, id, &registered).await;
                                let result = match sent {
                                    Ok(Some(p)) => chain::confirm(p)
                                        .await
                                        .map(|_| "concluded".to_string())
                                        .unwrap_or_else(|e| e.to_string()),
                                    Ok(None) => "registered states not found".into(),
                                    Err(e) => e.to_string(),
                                };
                                self.note(format!("settle: conclude {name}: {result}"));
                            }
                            Some(t) => next_timeout = Some(next_timeout.map_or(t, |n| n.min(t))),
                            None => {}
                        }
                    }
                    _ => {
                        // Not on chain: a final state concludes at once (the hub's outbox does it;
                        // its holder after a while), anything else is registered by its holder.
                        if let Some(signed) = self.final_state(id, holder) {
                            if round >= 3 {
                                let result = chain::conclude_final(&self.outsider, &self.d, signed).await;
                                self.note(format!(
                                    "settle: conclude_final {name}: {}",
                                    result.map_or_else(|e| e.to_string(), |_| "ok".into())
                                ));
                            }
                        } else {
                            let outcome = match holder {
                                Holder::Honest(h) => match self.honest[h].wallet.register_channel(id).await {
                                    Ok(()) => Outcome::Done(format!("{} registers {name}", self.honest[h].name)),
                                    Err(e) => Outcome::Refused(e.to_string()),
                                },
                                Holder::Coalition(c) => {
                                    let stale = self.rng.random_bool(0.3);
                                    self.co_register_at_settlement(c, stale).await?
                                }
                            };
                            self.log_outcome("settle: register", outcome);
                        }
                    }
                }
                if !self.concluded(id).await? {
                    waiting.push(name);
                }
            }
            if waiting.is_empty() {
                break;
            }
            match next_timeout {
                Some(t) if round > 0 => {
                    let secs = t.saturating_sub(self.chain_time().await?).clamp(1, MAX_JUMP);
                    let notes = self.pass_time(secs).await?;
                    self.note(format!("settle: {secs}s pass {}", notes.join("; ")));
                }
                _ => tokio::time::sleep(Duration::from_millis(700)).await,
            }
        }

        // Everyone withdraws; the hub's outbox withdraws its own.
        for h in 0..self.honest.len() {
            let me = self.honest[h].wallet.address();
            for id in self.honest[h].channels.clone() {
                if chain::settled(&self.reader(), self.eth, id).await?
                    && !chain::holdings(&self.reader(), self.eth, id, me).await?.is_zero()
                {
                    let result = self.honest[h].wallet.withdraw(id, Duration::from_secs(10)).await;
                    if let Err(e) = result {
                        self.note(format!("settle: {} cannot withdraw from {id}: {e}", self.honest[h].name));
                    }
                }
            }
        }
        for c in 0..self.co.channels.len() {
            if let Some(outcome) = self.co_withdraw_one(c).await? {
                self.log_outcome("settle: withdraw", outcome);
            }
        }
        self.wait_for_hub_to_finish().await?;
        Ok(waiting)
    }

    /// The coalition's registration at the end: its latest state (or an older one) with any
    /// co-signed states of its locks.
    async fn co_register_at_settlement(&mut self, c: usize, stale: bool) -> anyhow::Result<Outcome> {
        let outcome = self.co_register_with(c, stale, None).await?;
        Ok(match outcome {
            Outcome::Skipped => Outcome::Refused(format!("{} cannot be registered", self.co.channels[c].name)),
            other => other,
        })
    }

    /// Waits (bounded) until the hub withdrew from every settled channel, its outbox is empty
    /// and its watcher is at the head.
    async fn wait_for_hub_to_finish(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
        loop {
            let mut left = 0;
            for (_, id, _) in self.hub_channels() {
                if chain::settled(&self.reader(), self.eth, id).await?
                    && !chain::holdings(&self.reader(), self.eth, id, self.hub_addr).await?.is_zero()
                {
                    left += 1;
                }
            }
            let m = metrics(&self.hub.url).await.unwrap_or_default();
            let pending = m.get("ingrid_outbox_pending").copied().unwrap_or(0.0);
            let caught_up = self.wait_ingested(Duration::from_millis(500)).await?;
            if left == 0 && pending == 0.0 && caught_up {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let outbox = self.pending_outbox().await.unwrap_or_else(|e| e.to_string());
                let queued: serde_json::Value =
                    self.reader().raw_request("txpool_inspect".into(), ()).await.unwrap_or_default();
                let hub_queued = queued["queued"]
                    .as_object()
                    .map(|q| {
                        q.iter()
                            .filter(|(a, _)| a.eq_ignore_ascii_case(&self.hub_addr.to_string()))
                            .map(|(_, v)| v.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let outbox = if hub_queued.is_empty() {
                    outbox
                } else {
                    format!("{outbox}; the hub's transactions queued behind a nonce gap: {hub_queued}")
                };
                self.note(format!(
                    "settle: stopped waiting for the hub: {left} channels with its holdings, {pending} outbox entries pending ({outbox}), watcher caught up: {caught_up}"
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// The hub's pending outbox entries, from its operator API (kind, attempts, last error).
    async fn pending_outbox(&self) -> anyhow::Result<String> {
        let list: serde_json::Value = ingrid_client_sdk::tls::http_client()
            .get(format!("{}/v1/admin/outbox", self.hub.url))
            .bearer_auth(crate::harness::OPERATOR_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let entries = list["entries"].as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .filter(|e| e["status"] == "pending")
            .map(|e| format!("{} x{}: {}", e["kind"], e["attempts"], e["lastError"].as_str().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Logs an outcome of a settlement action.
    pub fn log_outcome(&mut self, what: &str, outcome: Outcome) {
        let text = match outcome {
            Outcome::Done(t) => format!("{what}: {t}"),
            Outcome::Refused(t) => format!("{what}: refused: {t}"),
            Outcome::Skipped => return,
        };
        self.note(text);
    }
}
