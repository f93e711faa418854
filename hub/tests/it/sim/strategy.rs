//! The action space: every strategy the simulation can pick, by name, with its default
//! weight. `INGRID_SIM_WEIGHTS="name=w,name=w"` overrides weights (0 switches a strategy off).

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The colluding clients.
    Coalition,
    /// The honest clients (through the SDK).
    Honest,
    /// Time, blocks, and the hub's process.
    Environment,
}

macro_rules! strategies {
    ($($variant:ident = $name:literal, $actor:ident, $weight:literal, $doc:literal;)*) => {
        /// A strategy: an action, or a structured macro-action, with random parameters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Strategy { $(#[doc = $doc] $variant,)* }

        impl Strategy {
            /// Every strategy.
            pub const ALL: &'static [Strategy] = &[$(Strategy::$variant,)*];

            /// Its name in logs and in `INGRID_SIM_WEIGHTS`.
            pub fn name(self) -> &'static str {
                match self { $(Strategy::$variant => $name,)* }
            }

            /// Who acts.
            pub fn actor(self) -> Actor {
                match self { $(Strategy::$variant => Actor::$actor,)* }
            }

            fn default_weight(self) -> u32 {
                match self { $(Strategy::$variant => $weight,)* }
            }

            /// What it does.
            pub fn doc(self) -> &'static str {
                match self { $(Strategy::$variant => $doc,)* }
            }
        }
    };
}

strategies! {
    OpenChannel = "open_channel", Coalition, 5, "open a basic channel (hub deposit 0 or up to the client's) and fund it";
    OpenUnfunded = "open_unfunded_channel", Coalition, 1, "open a basic channel and never fund it";
    FundChannel = "fund_channel", Coalition, 1, "deposit the client's share late, or deposit more than the state says";
    Standby = "standby", Coalition, 1, "put coins on standby in a coalition basic channel, for the member or for the hub";
    PayHub = "pay_hub", Coalition, 2, "pay the hub in a basic channel";
    PlanVirtual = "plan_virtual", Coalition, 5, "choose a virtual channel between two coalition accounts (params, deposits) without telling the hub";
    OpenVirtual = "open_virtual", Coalition, 5, "propose a planned virtual channel (with the hub's quote) and accept it";
    AcceptVirtual = "accept_virtual", Coalition, 1, "accept a proposed coalition virtual channel";
    PayVirtual = "pay_virtual", Coalition, 2, "co-sign the next payment state of a coalition virtual channel";
    RegisterParent = "register_parent", Coalition, 1, "register a coalition basic channel with its latest state and any co-signed states of its locks";
    RegisterParentStale = "register_parent_stale", Coalition, 2, "register a parent of a coalition virtual channel with an older state, or an older co-signed state of the virtual channel";
    RegisterOwnLedger = "register_own_ledger", Coalition, 4, "register a co-signed state of a coalition virtual channel (any status, even planned) through a ledger channel of the coalition's own";
    PreregisterVirtual = "preregister_virtual", Coalition, 3, "put a co-signed non-final state of a planned virtual channel on chain (through an own ledger channel) before the hub knows the channel: the hub ignores the record, which stays refutable after the open";
    RefuteVirtualFinal = "refute_virtual_final", Coalition, 5, "refute V's record with a fresh co-signed final state";
    RefuteVirtual = "refute_virtual", Coalition, 2, "refute V's record with a fresh or older co-signed non-final state of higher version";
    ForceMove = "force_move", Coalition, 4, "force one move of a coalition app channel on chain, signed by its mover alone (sometimes out of turn, invalid, or signed by the other)";
    RefuteParent = "refute_parent", Coalition, 1, "refute a registered coalition basic channel with a newer state";
    HugeVersion = "huge_version", Coalition, 1, "register (or refute with) a co-signed state of a virtual channel with version >= 2^63";
    CloseVirtualAtHub = "close_virtual_at_hub", Coalition, 6, "ask the hub to close V with a co-signed final state (the one on chain, an older one or a fresh one), settling one or both parents";
    CloseChannel = "close_channel", Coalition, 1, "close a basic channel at the hub (final state of the latest balances)";
    CloseIgnoringTopUp = "close_ignoring_top_up", Coalition, 3, "ignore the hub's top-up deposit and close with the last state";
    AcceptTopUp = "accept_top_up", Coalition, 1, "countersign the hub's top-up";
    Conclude = "conclude", Coalition, 2, "conclude a registered basic channel (a parent) or own ledger channel once its timeouts passed";
    ConcludeFinal = "conclude_final", Coalition, 1, "conclude a basic channel on chain with a final state the hub signed";
    Withdraw = "withdraw", Coalition, 1, "withdraw the coalition's holdings of a concluded channel";
    BadRequest = "bad_request", Coalition, 2, "a request the hub must refuse: stale version, foreign parent, replayed or altered state";
    Silence = "silence", Coalition, 1, "do nothing";
    TimePasses = "time_passes", Environment, 4, "move the chain's clock forward (anvil_increaseTime, at most MAX_JUMP) and mine";
    MineBlock = "mine_block", Environment, 1, "mine an empty block (evm_mine)";
    KillHub = "kill_hub", Environment, 1, "SIGKILL the hub; it stays down until restarted";
    RestartHub = "restart_hub", Environment, 3, "start the hub again after a kill";
    CrashDuringNext = "crash_during_next", Environment, 1, "SIGKILL the hub a random moment into the next action, then start it again";
    HOpenChannel = "h_open_channel", Honest, 3, "an honest client opens and funds a basic channel (SDK)";
    HPayHub = "h_pay_hub", Honest, 2, "an honest client pays the hub (SDK)";
    HOpenVirtual = "h_open_virtual", Honest, 3, "two honest clients open a virtual channel (SDK: quote, propose, accept)";
    HPayVirtual = "h_pay_virtual", Honest, 3, "an honest payment in a virtual channel (SDK, peer to peer)";
    HCloseVirtual = "h_close_virtual", Honest, 2, "two honest clients close their virtual channel (SDK, both parents)";
    HAcceptTopUp = "h_accept_top_up", Honest, 1, "an honest client takes the hub's top-up (SDK)";
    HCloseChannel = "h_close_channel", Honest, 1, "an honest client closes a basic channel without locks (SDK)";
    HSync = "h_sync", Honest, 1, "an honest client syncs its basic channels from the hub (SDK)";
    HWatch = "h_watch", Honest, 1, "an honest client runs its watcher (SDK)";
    HWithdraw = "h_withdraw", Honest, 1, "an honest client withdraws from its concluded channels (SDK)";
}

/// The weight of every strategy.
#[derive(Debug, Clone)]
pub struct Weights(pub BTreeMap<Strategy, u32>);

impl Weights {
    /// Defaults, overridden by `INGRID_SIM_WEIGHTS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut w: BTreeMap<Strategy, u32> = Strategy::ALL.iter().map(|s| (*s, s.default_weight())).collect();
        if let Ok(spec) = std::env::var("INGRID_SIM_WEIGHTS") {
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, weight) =
                    part.split_once('=').ok_or_else(|| anyhow::anyhow!("{part:?}: expected name=weight"))?;
                let s = Strategy::ALL
                    .iter()
                    .find(|s| s.name() == name.trim())
                    .ok_or_else(|| anyhow::anyhow!("INGRID_SIM_WEIGHTS: no strategy {name:?}"))?;
                w.insert(*s, weight.trim().parse()?);
            }
        }
        Ok(Self(w))
    }

    /// Picks a strategy by weight.
    pub fn pick(&self, rng: &mut StdRng) -> Strategy {
        let total: u32 = self.0.values().sum();
        let mut x = rng.random_range(0..total.max(1));
        for (s, w) in &self.0 {
            if x < *w {
                return *s;
            }
            x -= w;
        }
        Strategy::Silence
    }

    /// The non-default weights, for the report.
    pub fn overrides(&self) -> String {
        let changed: Vec<String> = self
            .0
            .iter()
            .filter(|(s, w)| s.default_weight() != **w)
            .map(|(s, w)| format!("{}={w}", s.name()))
            .collect();
        if changed.is_empty() { "defaults".into() } else { changed.join(",") }
    }
}
