//! `FERROCHAT_MAX_CONNECTIONS` and `FERROCHAT_MAX_CONNECTIONS_PER_USER`: open WebSockets of
//! this process, in total and per user. A handshake beyond either is answered 503 (and counted
//! as `ferrochat_ws_rejected_total{reason="limit"}`); a socket's slot is released when its task
//! ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which limit a handshake hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("FERROCHAT_MAX_CONNECTIONS ({0}) reached")]
    Process(usize),
    #[error("FERROCHAT_MAX_CONNECTIONS_PER_USER ({0}) reached")]
    User(usize),
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_user: HashMap<i64, usize>,
}

/// The open sockets, counted (also without limits: the `ferrochat_ws_connections` gauge).
#[derive(Clone, Default)]
pub struct Connections {
    counts: Arc<Mutex<Counts>>,
    max: Option<usize>,
    max_per_user: Option<usize>,
}

impl Connections {
    pub fn new(max: Option<usize>, max_per_user: Option<usize>) -> Connections {
        Connections {
            counts: Arc::default(),
            max,
            max_per_user,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Two integer updates under the lock: consistent whatever panicked.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for one more socket of `user_id`, or the limit it would cross.
    pub fn acquire(&self, user_id: i64) -> Result<Slot, LimitHit> {
        let mut counts = self.counts();
        if let Some(max) = self.max
            && counts.total >= max
        {
            return Err(LimitHit::Process(max));
        }
        let mine = counts.per_user.get(&user_id).copied().unwrap_or(0);
        if let Some(max) = self.max_per_user
            && mine >= max
        {
            return Err(LimitHit::User(max));
        }
        counts.total += 1;
        counts.per_user.insert(user_id, mine + 1);
        Ok(Slot {
            connections: self.clone(),
            user_id,
        })
    }

    /// Open sockets now.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

/// One socket's place; released when dropped.
pub struct Slot {
    connections: Connections,
    user_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_user.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                counts.per_user.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_slots_come_back() {
        let c = Connections::new(Some(3), Some(2));
        let a1 = c.acquire(1).expect("first");
        let _a2 = c.acquire(1).expect("second of user 1");
        assert_eq!(c.acquire(1).err(), Some(LimitHit::User(2)));
        let _b1 = c.acquire(2).expect("user 2");
        assert_eq!(c.acquire(3).err(), Some(LimitHit::Process(3)));
        assert_eq!(c.open(), 3);
        drop(a1);
        assert_eq!(c.open(), 2);
        let _a3 = c.acquire(1).expect("a slot came back");
        let unlimited = Connections::default();
        let held: Vec<_> = (0..100)
            .map(|_| unlimited.acquire(7).expect("no limit"))
            .collect();
        assert_eq!(unlimited.open(), 100);
        drop(held);
        assert_eq!(unlimited.open(), 0);
    }
}
