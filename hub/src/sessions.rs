//! The sessions cache: which client a bearer token belongs to, without a database round trip
//! per request. Bounded in entries and in age; a session that ends before it expires (the
//! per-client cap ended it) is revoked in every hub process: the database notifies
//! `ingrid_sessions` with the token's hash (see the migration `running_books`), each
//! process listens and forgets it, and a process that lost the notifications (its listening
//! connection dropped) forgets everything.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use lru::LruCache;
use tokio::sync::watch;

/// The channel the database notifies ended sessions on.
pub const CHANNEL: &str = "ingrid_sessions";

#[derive(Debug, Clone, Copy)]
struct Entry {
    client: Address,
    /// Unix seconds: the session's own expiry.
    expires_at: u64,
    /// Unix seconds: when the entry stops being trusted without asking the database.
    fresh_until: u64,
}

/// Token hash → client, for live sessions. Time is an argument.
pub struct Sessions {
    entries: Mutex<LruCache<B256, Entry>>,
    max_age: u64,
    /// Counts revocations: a session read from the database before a revocation is not
    /// cached after it (it may be the one revoked).
    generation: std::sync::atomic::AtomicU64,
}

impl Sessions {
    /// A cache of at most `capacity` sessions, each trusted for at most `max_age` before it
    /// is read again (a bound on a revocation whose notification was lost).
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            max_age: max_age.as_secs(),
            generation: Default::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, LruCache<B256, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client of the session `token_hash`, if cached, live at `now` and fresh.
    pub fn get(&self, token_hash: &B256, now: u64) -> Option<Address> {
        let mut entries = self.entries();
        match entries.get(token_hash) {
            Some(e) if now < e.expires_at && now < e.fresh_until => Some(e.client),
            Some(_) => {
                entries.pop(token_hash);
                None
            }
            None => None,
        }
    }

    /// The revocations so far: read before a session is read from the database, and given
    /// to [`Sessions::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Remembers a live session read from the database at `now`, unless a session was
    /// revoked since `generation` (the read may predate the revocation of this very one).
    pub fn put(&self, token_hash: B256, client: Address, expires_at: u64, now: u64, generation: u64) {
        let fresh_until = now.saturating_add(self.max_age);
        let mut entries = self.entries();
        if self.generation() == generation {
            entries.put(token_hash, Entry { client, expires_at, fresh_until });
        }
    }

    /// Forgets one session (it ended).
    pub fn revoke(&self, token_hash: &B256) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.pop(token_hash);
    }

    /// Forgets every session (revocations may have been missed).
    pub fn clear(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.clear();
    }

    /// Sessions cached.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Listens for ended sessions and forgets them in `sessions` until `stop`.
pub async fn listen(pool: sqlx::PgPool, sessions: std::sync::Arc<Sessions>, mut stop: watch::Receiver<bool>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = ?e, "sessions: cannot listen for ended sessions; retrying");
                sessions.clear();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = ?e, "sessions: LISTEN failed; retrying");
            sessions.clear();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        // Anything cached before listening may have ended unseen.
        sessions.clear();
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match received {
                Ok(Some(note)) => match note.payload().parse::<B256>() {
                    Ok(hash) => sessions.revoke(&hash),
                    Err(_) => sessions.clear(),
                },
                // The connection dropped: notifications may be lost.
                Ok(None) => sessions.clear(),
                Err(e) => {
                    tracing::warn!(error = ?e, "sessions: listening failed; forgetting every cached session");
                    sessions.clear();
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_session_lives_until_it_expires_goes_stale_or_is_revoked() {
        let sessions = Sessions::new(2, Duration::from_secs(60));
        let (a, b, c) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
        let alice = Address::repeat_byte(0xa);
        sessions.put(a, alice, 1_000, 100, sessions.generation());
        assert_eq!(sessions.get(&a, 150), Some(alice));
        assert_eq!(sessions.get(&a, 160), None, "stale after max_age: read again from the database");
        sessions.put(a, alice, 1_000, 950, sessions.generation());
        assert_eq!(sessions.get(&a, 1_000), None, "expired");
        sessions.put(a, alice, 1_000, 100, sessions.generation());
        sessions.revoke(&a);
        assert_eq!(sessions.get(&a, 101), None, "revoked");
        // Bounded: the least recently used goes first.
        sessions.put(a, alice, 1_000, 100, sessions.generation());
        sessions.put(b, alice, 1_000, 100, sessions.generation());
        assert!(sessions.get(&a, 101).is_some());
        sessions.put(c, alice, 1_000, 100, sessions.generation());
        assert_eq!((sessions.get(&b, 101), sessions.len()), (None, 2));
        sessions.clear();
        assert!(sessions.is_empty());
        // A read that began before a revocation is not cached after it.
        let before = sessions.generation();
        sessions.revoke(&b);
        sessions.put(b, alice, 1_000, 100, before);
        assert_eq!(sessions.get(&b, 101), None, "the revoked session came back");
    }
}
