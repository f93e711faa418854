//! The README demo's fair game (the seed's section 4.3): after the nanoservice sale, Alice and
//! Bob flip a coin for 0.1 ETH each inside a virtual channel through the same hub. Alice
//! commits to a secret bit, Bob guesses, Alice reveals; every move is signed by the mover and
//! countersigned by the other, checked by the app's rule exactly as the chain would force it.
//! The hub sees no request during the game, and its coins are the same after the close:
//! it never depends on who wins.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, ensure};
use ingrid_client_sdk::Role;
use ingrid_client_sdk::app::coin_flip;
use ingrid_client_sdk::devnet::Devnet;
use ingrid_client_sdk::wallet::{Deposit, Wallet};

use crate::demo::{dev_wallet, ether_pair, ether_text, first_asset, milli};
use crate::server::Running;

/// What the game ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameReport {
    /// The winner (Alice is the first participant).
    pub winner: Role,
    /// Alice's and Bob's basic channels (client, hub) before the game.
    pub before: [[U256; 2]; 2],
    /// The same after the close.
    pub after: [[U256; 2]; 2],
    /// Requests the hub received while they played.
    pub requests_while_playing: u64,
}

impl GameReport {
    /// Checks the game: the winner's parent gained the loser's stake, the hub's coins did not
    /// move, and the hub saw no move.
    pub fn check(&self) -> anyhow::Result<()> {
        let stake = milli(100);
        let (w, l) = (self.winner.index(), self.winner.peer().index());
        ensure!(self.after[w][0] == self.before[w][0] + stake, "the winner gains the loser's stake: {self:?}");
        ensure!(self.after[l][0] + stake == self.before[l][0], "the loser pays its stake: {self:?}");
        ensure!(
            self.after[0][1] + self.after[1][1] == self.before[0][1] + self.before[1][1],
            "the hub's coins moved: {self:?}"
        );
        ensure!(self.requests_while_playing == 0, "the hub saw {} requests", self.requests_while_playing);
        Ok(())
    }
}

/// `mover` moves to `data`, `peer` checks and countersigns it.
async fn play(mover: &Wallet, peer: &Wallet, id: B256, data: Bytes) -> anyhow::Result<()> {
    let mv = mover.play(id, data).await?;
    let receipt = peer.receive_move(&mv).await.map_err(|e| anyhow::anyhow!("{} refused: {e}", e.code()))?;
    mover.accept_receipt(&receipt).await?;
    Ok(())
}

/// Plays the coin flip on the running `hub` (at `hub_url`) with dev accounts 3 (Alice) and 4
/// (Bob), their stores under `dir`, in asset `eth`; prints each step to `out`.
pub async fn run(
    out: &mut impl Write,
    hub: &Running,
    hub_url: &str,
    devnet: &Devnet,
    dir: &Path,
    eth: Address,
) -> anyhow::Result<GameReport> {
    let alice = dev_wallet(devnet, hub_url, dir, 3, "alice").await?;
    let bob = dev_wallet(devnet, hub_url, dir, 4, "bob").await?;
    let half = milli(500);
    let x = alice.open_channel(&[Deposit { asset: eth, mine: half, hub: half }], 3600).await?;
    let y = bob.open_channel(&[Deposit { asset: eth, mine: half, hub: half }], 3600).await?;
    alice.wait_until_open(x, Duration::from_secs(30)).await?;
    bob.wait_until_open(y, Duration::from_secs(30)).await?;
    let before = [first_asset(&alice, x)?, first_asset(&bob, y)?];
    let app = alice.apps().coin_flip;
    ensure!(!app.is_zero(), "the hub allows no coin flip");
    let stake = milli(100);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let v = alice.propose_app(bob.address(), x, &[[stake, stake]], 600, now + 3600, app, coin_flip::opening()).await?;
    let proposal = bob.proposals().await?.into_iter().find(|p| p.id == v).context("Bob sees the proposal")?;
    bob.accept_virtual(&proposal, y).await?;
    alice.wait_virtual_open(v, Duration::from_secs(30)).await?;
    writeln!(
        out,
        "Alice (Alice, hub) = {}   Bob (Bob, hub) = {}: a coin flip for {} ETH each in virtual channel {}… (app {app})",
        ether_pair(before[0]),
        ether_pair(before[1]),
        ether_text(stake),
        &v.to_string()[..10]
    )?;

    let requests = hub.requests();
    let (salt, bit) = (B256::from(rand::random::<[u8; 32]>()), rand::random::<bool>());
    play(&alice, &bob, v, coin_flip::commit(salt, bit)).await?;
    writeln!(out, "Alice commits to a secret bit (if Bob stalls now, the pot is Alice's)")?;
    let guess = rand::random::<bool>();
    let latest = bob.virtual_record(v)?.latest.state;
    play(&bob, &alice, v, coin_flip::guess(&latest, guess)?).await?;
    writeln!(out, "Bob guesses {} (if Alice does not reveal now, the pot is Bob's)", u8::from(guess))?;
    let latest = alice.virtual_record(v)?.latest.state;
    play(&alice, &bob, v, coin_flip::reveal(&latest, salt, bit)?).await?;
    let end = alice.virtual_record(v)?.latest.state;
    let winner = coin_flip::winner(&end).context("the game ended")?;
    let requests_while_playing = hub.requests() - requests;
    writeln!(
        out,
        "Alice reveals {}: {} wins the pot (final state, version {}); hub requests while playing: {requests_while_playing}",
        u8::from(bit),
        if winner == Role::First { "Alice" } else { "Bob" },
        end.version
    )?;

    let close = alice.close_request(v).await?;
    let answer = bob.answer_close(&close).await?;
    alice.finish_close(v, &close, answer).await?;
    bob.sync_channel(y).await?;
    let after = [first_asset(&alice, x)?, first_asset(&bob, y)?];
    writeln!(
        out,
        "closed into both parents: Alice = {}   Bob = {}   the hub holds {} ETH before and after",
        ether_pair(after[0]),
        ether_pair(after[1]),
        ether_text(after[0][1] + after[1][1])
    )?;
    Ok(GameReport { winner, before, after, requests_while_playing })
}
