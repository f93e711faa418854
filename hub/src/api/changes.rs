//! Wake-ups for long polls, per virtual channel: a change of one channel wakes only the long
//! polls of that channel, so a busy hub does not make every waiting poll read the database
//! again at each change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use tokio::sync::Notify;

/// The long polls waiting per virtual channel, and how to wake them.
#[derive(Default)]
pub struct Changes {
    waiting: Mutex<HashMap<B256, (usize, Arc<Notify>)>>,
}

/// One long poll's registration for changes of its channel; removed on drop.
pub struct Watch<'a> {
    changes: &'a Changes,
    id: B256,
    /// Woken at every change of the channel.
    pub notify: Arc<Notify>,
}

impl Changes {
    /// Registers a long poll of channel `id`.
    pub fn watch(&self, id: B256) -> Watch<'_> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let entry = waiting.entry(id).or_insert_with(|| (0, Arc::new(Notify::new())));
        entry.0 += 1;
        Watch { changes: self, id, notify: entry.1.clone() }
    }

    /// Wakes the long polls of channel `id` (after its change is committed).
    pub fn changed(&self, id: B256) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, notify)) = waiting.get(&id) {
            notify.notify_waiters();
        }
    }

    /// Wakes every long poll (after changes of many channels at once).
    pub fn changed_all(&self) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for (_, notify) in waiting.values() {
            notify.notify_waiters();
        }
    }

    /// Channels with long polls waiting.
    pub fn watched(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut waiting = self.changes.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = waiting.get_mut(&self.id) {
            entry.0 -= 1;
            if entry.0 == 0 {
                waiting.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn woken(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(50), notify.notified()).await.is_ok()
    }

    #[tokio::test]
    async fn a_change_wakes_the_long_polls_of_its_channel_only() {
        let changes = Changes::default();
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let (wa, wb) = (changes.watch(a), changes.watch(b));
        let (na, nb) = (wa.notify.clone(), wb.notify.clone());
        let (woke_a, woke_b, ()) = tokio::join!(woken(&na), woken(&nb), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            changes.changed(a);
        });
        assert!(woke_a && !woke_b);
        let (woke_a, woke_b, ()) = tokio::join!(woken(&na), woken(&nb), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            changes.changed_all();
        });
        assert!(woke_a && woke_b);
        let second = changes.watch(a);
        drop((wa, wb));
        assert_eq!(changes.watched(), 1, "a's second poll still waits");
        drop(second);
        assert_eq!(changes.watched(), 0, "no entry left for channels nobody polls");
    }
}
