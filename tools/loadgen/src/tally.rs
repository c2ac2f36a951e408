//! What one connection saw: its deliveries per sender (for loss, duplicates and order) and the
//! latency of each, plus what it sent if it is a sender. One `ConnTally` per connection behind
//! its own mutex: the connection's task is the only writer, so the lock is uncontended except
//! when the coordinator harvests a finished step.

use std::collections::{BTreeMap, HashMap};

use crate::tag::Tag;

/// Sequence numbers above this are treated as garbage (a bit set per sender grows with the
/// highest seq seen; 2^24 bits is 2 MiB, far beyond any step's message count).
pub const MAX_SEQ: u64 = 1 << 24;

/// Delivery bookkeeping for one (receiver, sender) pair within one step.
#[derive(Debug, Default, Clone)]
pub struct SenderTrack {
    seen: Vec<u64>,
    max_seq: Option<u64>,
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First time this seq arrived, after every lower seq that arrived.
    InOrder,
    /// First time, but a higher seq from the same sender arrived before it.
    OutOfOrder,
    Duplicate,
    /// Seq beyond `MAX_SEQ`: not counted as a delivery.
    Invalid,
}

impl SenderTrack {
    pub fn record(&mut self, seq: u64) -> Outcome {
        if seq > MAX_SEQ {
            return Outcome::Invalid;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.seen[word] & mask != 0 {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        self.seen[word] |= mask;
        self.unique += 1;
        match self.max_seq {
            Some(max) if seq < max => {
                self.out_of_order += 1;
                Outcome::OutOfOrder
            }
            _ => {
                self.max_seq = Some(seq);
                Outcome::InOrder
            }
        }
    }
}

/// One connection's record of one step.
#[derive(Debug, Default, Clone)]
pub struct StepTally {
    pub by_sender: HashMap<u32, SenderTrack>,
    /// Latency of every unique delivery, in nanoseconds.
    pub latencies: Vec<u64>,
    pub sent: u64,
    pub send_errors: u64,
    pub max_send_lag_ns: u64,
    pub first_send_ns: u64,
    pub last_send_ns: u64,
    pub last_recv_ns: u64,
}

/// Everything one connection recorded, by step.
#[derive(Debug, Clone)]
pub struct ConnTally {
    pub room: u32,
    pub sender: Option<u32>,
    pub alive: bool,
    /// Set when the connection died while a step was running.
    pub died_in_step: Option<u32>,
    steps: BTreeMap<u32, StepTally>,
    /// Steps up to and including this one were harvested; deliveries for them are late.
    harvested: Option<u32>,
    pub late: u64,
    pub foreign: u64,
}

impl ConnTally {
    pub fn new(room: u32, sender: Option<u32>) -> Self {
        Self {
            room,
            sender,
            alive: true,
            died_in_step: None,
            steps: BTreeMap::new(),
            harvested: None,
            late: 0,
            foreign: 0,
        }
    }

    fn is_harvested(&self, step: u32) -> bool {
        self.harvested.is_some_and(|h| step <= h)
    }

    /// A received frame: `tag` is what `Tag::find` made of it, `now_ns` the receive time.
    /// `senders` is the number of sender ids in play (ids at or above it are foreign).
    /// True when it was a new delivery of the running step.
    pub fn record_frame(&mut self, tag: Option<Tag>, now_ns: u64, senders: u32) -> bool {
        let Some(tag) = tag.filter(|t| t.sender < senders) else {
            self.foreign += 1;
            return false;
        };
        if self.is_harvested(tag.step) {
            self.late += 1;
            return false;
        }
        let step = self.steps.entry(tag.step).or_default();
        let outcome = step
            .by_sender
            .entry(tag.sender)
            .or_default()
            .record(tag.seq);
        match outcome {
            Outcome::InOrder | Outcome::OutOfOrder => {
                step.latencies.push(now_ns.saturating_sub(tag.sent_nanos));
                step.last_recv_ns = step.last_recv_ns.max(now_ns);
                true
            }
            Outcome::Duplicate => false,
            Outcome::Invalid => {
                self.foreign += 1;
                false
            }
        }
    }

    /// A message this connection sent (or failed to send) in `step`.
    pub fn record_send(&mut self, step: u32, ok: bool, lag_ns: u64, now_ns: u64) {
        if self.is_harvested(step) {
            return;
        }
        let s = self.steps.entry(step).or_default();
        if !ok {
            s.send_errors += 1;
            return;
        }
        s.sent += 1;
        s.max_send_lag_ns = s.max_send_lag_ns.max(lag_ns);
        if s.first_send_ns == 0 || now_ns < s.first_send_ns {
            s.first_send_ns = now_ns;
        }
        s.last_send_ns = s.last_send_ns.max(now_ns);
    }

    /// Takes the record of `step` (and drops anything older), marking it harvested.
    pub fn harvest(&mut self, step: u32) -> StepTally {
        self.harvested = Some(self.harvested.map_or(step, |h| h.max(step)));
        let taken = self.steps.remove(&step).unwrap_or_default();
        self.steps.retain(|&s, _| s > step);
        taken
    }

    /// Takes the late and foreign counters.
    pub fn take_strays(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.late),
            std::mem::take(&mut self.foreign),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(step: u32, sender: u32, seq: u64, sent: u64) -> Option<Tag> {
        Some(Tag {
            step,
            sender,
            seq,
            sent_nanos: sent,
        })
    }

    #[test]
    fn in_order_duplicate_and_reordered() {
        let mut t = SenderTrack::default();
        assert_eq!(t.record(0), Outcome::InOrder);
        assert_eq!(t.record(1), Outcome::InOrder);
        assert_eq!(t.record(3), Outcome::InOrder); // 2 is missing for now
        assert_eq!(t.record(1), Outcome::Duplicate);
        assert_eq!(t.record(2), Outcome::OutOfOrder); // late, but not lost
        assert_eq!(t.record(2), Outcome::Duplicate);
        assert_eq!(t.record(200), Outcome::InOrder); // crosses bit-set words
        assert_eq!(t.record(MAX_SEQ + 1), Outcome::Invalid);
        assert_eq!((t.unique, t.duplicates, t.out_of_order), (5, 2, 1));
    }

    #[test]
    fn connection_tally_separates_steps_senders_and_strays() {
        let mut c = ConnTally::new(0, Some(0));
        c.record_frame(tag(0, 0, 0, 1_000), 3_000, 2);
        c.record_frame(tag(0, 1, 0, 1_000), 5_000, 2);
        c.record_frame(tag(0, 1, 0, 1_000), 6_000, 2); // duplicate: no latency sample
        c.record_frame(tag(1, 0, 0, 9_000), 9_500, 2); // next step already running
        c.record_frame(tag(0, 7, 0, 1_000), 5_000, 2); // unknown sender
        c.record_frame(None, 5_000, 2);
        c.record_send(0, true, 10, 1_000);
        c.record_send(0, true, 30, 2_000);
        c.record_send(0, false, 0, 2_500);

        let s0 = c.harvest(0);
        assert_eq!(s0.latencies, vec![2_000, 4_000]);
        assert_eq!(s0.by_sender[&1].duplicates, 1);
        assert_eq!(s0.by_sender[&0].unique, 1);
        assert_eq!((s0.sent, s0.send_errors, s0.max_send_lag_ns), (2, 1, 30));
        assert_eq!(
            (s0.first_send_ns, s0.last_send_ns, s0.last_recv_ns),
            (1_000, 2_000, 5_000)
        );

        // A step-0 delivery after its harvest is late, not counted in step 0 or 1.
        c.record_frame(tag(0, 0, 1, 1_000), 99_000, 2);
        c.record_send(0, true, 0, 99_000);
        let s1 = c.harvest(1);
        assert_eq!(s1.latencies, vec![500]);
        assert_eq!(c.take_strays(), (1, 2));
        assert_eq!(c.take_strays(), (0, 0));
        assert!(c.harvest(1).latencies.is_empty());
    }
}
