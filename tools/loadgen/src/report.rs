//! Results: the per-shard records that processes exchange as JSON, how they merge, and the
//! derived numbers (expected deliveries, loss, rates, percentiles) a person reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::hist::Histogram;
use crate::tally::StepTally;

const NS_PER_MS: f64 = 1e6;

fn ms(ns: u64) -> f64 {
    ns as f64 / NS_PER_MS
}

/// What a sender sent in one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderCount {
    pub room: u32,
    pub sent: u64,
}

/// What all receivers (of one shard, or merged) got from one sender in one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecvCount {
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

/// One step as one shard saw it (or several, merged).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepReport {
    pub step: u32,
    /// Offered messages per second, all senders together.
    pub rate: f64,
    /// Length of the send phase.
    pub secs: f64,
    /// Live connections per room when the step started.
    pub members: Vec<u32>,
    pub senders: BTreeMap<u32, SenderCount>,
    pub received: BTreeMap<u32, RecvCount>,
    /// Deliveries that arrived after their step was harvested.
    pub late: u64,
    /// Frames without a valid tag.
    pub foreign: u64,
    pub disconnects: u64,
    /// Connections still open when the step ended.
    pub alive_end: u64,
    pub send_errors: u64,
    pub max_send_lag_ns: u64,
    pub first_send_ns: u64,
    pub last_send_ns: u64,
    pub last_recv_ns: u64,
    pub latency: Histogram,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub login_latency: Histogram,
    /// CPU time the load generator's process(es) used during the step, and the step's wall time.
    pub cpu_secs: f64,
    pub wall_secs: f64,
}

impl StepReport {
    pub fn new(step: u32, rate: f64, secs: f64, members: Vec<u32>) -> Self {
        Self {
            step,
            rate,
            secs,
            members,
            ..Self::default()
        }
    }

    /// Adds one connection's record of the step.
    pub fn absorb(&mut self, sender: Option<(u32, u32)>, t: StepTally) {
        if let Some((id, room)) = sender {
            let s = self
                .senders
                .entry(id)
                .or_insert(SenderCount { room, sent: 0 });
            s.sent += t.sent;
        }
        for (id, track) in t.by_sender {
            let r = self.received.entry(id).or_default();
            r.unique += track.unique;
            r.duplicates += track.duplicates;
            r.out_of_order += track.out_of_order;
        }
        for v in t.latencies {
            self.latency.record(v);
        }
        self.send_errors += t.send_errors;
        self.max_send_lag_ns = self.max_send_lag_ns.max(t.max_send_lag_ns);
        self.first_send_ns = min_nonzero(self.first_send_ns, t.first_send_ns);
        self.last_send_ns = self.last_send_ns.max(t.last_send_ns);
        self.last_recv_ns = self.last_recv_ns.max(t.last_recv_ns);
    }

    /// Adds another shard's report of the same step.
    pub fn merge(&mut self, o: &StepReport) {
        if self.members.len() < o.members.len() {
            self.members.resize(o.members.len(), 0);
        }
        for (a, b) in self.members.iter_mut().zip(&o.members) {
            *a += b;
        }
        for (id, s) in &o.senders {
            let e = self.senders.entry(*id).or_insert(SenderCount {
                room: s.room,
                sent: 0,
            });
            e.sent += s.sent;
        }
        for (id, r) in &o.received {
            let e = self.received.entry(*id).or_default();
            e.unique += r.unique;
            e.duplicates += r.duplicates;
            e.out_of_order += r.out_of_order;
        }
        self.rate = self.rate.max(o.rate);
        self.secs = self.secs.max(o.secs);
        self.late += o.late;
        self.foreign += o.foreign;
        self.disconnects += o.disconnects;
        self.alive_end += o.alive_end;
        self.send_errors += o.send_errors;
        self.max_send_lag_ns = self.max_send_lag_ns.max(o.max_send_lag_ns);
        self.first_send_ns = min_nonzero(self.first_send_ns, o.first_send_ns);
        self.last_send_ns = self.last_send_ns.max(o.last_send_ns);
        self.last_recv_ns = self.last_recv_ns.max(o.last_recv_ns);
        self.latency.merge(&o.latency);
        self.logins_ok += o.logins_ok;
        self.logins_failed += o.logins_failed;
        self.login_latency.merge(&o.login_latency);
        self.cpu_secs += o.cpu_secs;
        self.wall_secs = self.wall_secs.max(o.wall_secs);
    }

    /// Deliveries that should have arrived: each sent message times the members of its room.
    pub fn expected(&self) -> u64 {
        self.senders
            .values()
            .map(|s| s.sent * u64::from(self.members.get(s.room as usize).copied().unwrap_or(0)))
            .sum()
    }

    pub fn summary(&self) -> StepSummary {
        let sent: u64 = self.senders.values().map(|s| s.sent).sum();
        let expected = self.expected();
        let received: u64 = self.received.values().map(|r| r.unique).sum();
        let duplicates = self.received.values().map(|r| r.duplicates).sum();
        let out_of_order = self.received.values().map(|r| r.out_of_order).sum();
        let room_size = if self.senders.is_empty() {
            0.0
        } else {
            self.senders
                .values()
                .map(|s| f64::from(self.members.get(s.room as usize).copied().unwrap_or(0)))
                .sum::<f64>()
                / self.senders.len() as f64
        };
        let span_ns = self.last_recv_ns.saturating_sub(self.first_send_ns);
        let per_s = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let login_secs = self.wall_secs;
        StepSummary {
            step: self.step,
            rate_msgs: self.rate,
            room_size,
            offered_deliveries_per_s: self.rate * room_size,
            secs: self.secs,
            sent,
            expected,
            received,
            lost: expected.saturating_sub(received),
            extra: received.saturating_sub(expected),
            duplicates,
            out_of_order,
            late: self.late,
            foreign: self.foreign,
            disconnects: self.disconnects,
            alive_end: self.alive_end,
            send_errors: self.send_errors,
            deliveries_per_s: per_s(received, span_ns as f64 / 1e9),
            p50_ms: ms(self.latency.quantile(0.50)),
            p90_ms: ms(self.latency.quantile(0.90)),
            p99_ms: ms(self.latency.quantile(0.99)),
            max_ms: ms(self.latency.max()),
            mean_ms: self.latency.mean() / NS_PER_MS,
            max_send_lag_ms: ms(self.max_send_lag_ns),
            loadgen_cpu_pct: if self.wall_secs > 0.0 {
                100.0 * self.cpu_secs / self.wall_secs
            } else {
                0.0
            },
            logins_ok: self.logins_ok,
            logins_failed: self.logins_failed,
            logins_per_s: per_s(self.logins_ok, login_secs),
            login_p50_ms: ms(self.login_latency.quantile(0.50)),
            login_p99_ms: ms(self.login_latency.quantile(0.99)),
            server_cpu_pct: None,
            server_cpu_us_per_delivery: None,
            server_rss_kib: None,
        }
    }
}

fn min_nonzero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

/// The numbers of one step, merged over all shards.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepSummary {
    pub step: u32,
    pub rate_msgs: f64,
    pub room_size: f64,
    pub offered_deliveries_per_s: f64,
    pub secs: f64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// Deliveries beyond the expected count (membership changed, or a server repeats itself).
    pub extra: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub late: u64,
    pub foreign: u64,
    pub disconnects: u64,
    pub alive_end: u64,
    pub send_errors: u64,
    pub deliveries_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub max_send_lag_ms: f64,
    pub loadgen_cpu_pct: f64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub logins_per_s: f64,
    pub login_p50_ms: f64,
    pub login_p99_ms: f64,
    pub server_cpu_pct: Option<f64>,
    /// CPU time of the server process(es) during the step per delivery received, in µs: what a
    /// delivery costs, comparable between runs on a busy machine where throughput is not.
    #[serde(default)]
    pub server_cpu_us_per_delivery: Option<f64>,
    pub server_rss_kib: Option<u64>,
}

impl StepSummary {
    /// Everything sent arrived exactly once and nobody dropped out.
    pub fn complete(&self) -> bool {
        self.sent > 0
            && self.lost == 0
            && self.duplicates == 0
            && self.disconnects == 0
            && self.send_errors == 0
    }
}

/// The connect phase as one shard saw it (or merged).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectReport {
    pub attempted: u64,
    pub made: u64,
    pub failed: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Error text (first line) → count; at most a few distinct texts are kept.
    pub errors: BTreeMap<String, u64>,
    pub handshake: Histogram,
    pub cpu_secs: f64,
    pub logins: u64,
}

impl ConnectReport {
    pub const MAX_ERROR_KINDS: usize = 8;

    pub fn error(&mut self, text: String) {
        self.failed += 1;
        if self.errors.len() < Self::MAX_ERROR_KINDS || self.errors.contains_key(&text) {
            *self.errors.entry(text).or_default() += 1;
        }
    }

    pub fn merge(&mut self, o: &ConnectReport) {
        self.attempted += o.attempted;
        self.made += o.made;
        self.failed += o.failed;
        self.first_ns = min_nonzero(self.first_ns, o.first_ns);
        self.last_ns = self.last_ns.max(o.last_ns);
        for (k, v) in &o.errors {
            if self.errors.len() < Self::MAX_ERROR_KINDS || self.errors.contains_key(k) {
                *self.errors.entry(k.clone()).or_default() += v;
            }
        }
        self.handshake.merge(&o.handshake);
        self.cpu_secs += o.cpu_secs;
        self.logins += o.logins;
    }

    pub fn summary(&self) -> ConnectSummary {
        let secs = self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9;
        ConnectSummary {
            attempted: self.attempted,
            made: self.made,
            failed: self.failed,
            secs,
            per_s: if secs > 0.0 {
                self.made as f64 / secs
            } else {
                0.0
            },
            handshake_p50_ms: ms(self.handshake.quantile(0.5)),
            handshake_p99_ms: ms(self.handshake.quantile(0.99)),
            handshake_max_ms: ms(self.handshake.max()),
            loadgen_cpu_secs: self.cpu_secs,
            errors: self.errors.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectSummary {
    pub attempted: u64,
    pub made: u64,
    pub failed: u64,
    pub secs: f64,
    /// Connections made per second, from the first attempt to the last completion.
    pub per_s: f64,
    pub handshake_p50_ms: f64,
    pub handshake_p99_ms: f64,
    pub handshake_max_ms: f64,
    pub loadgen_cpu_secs: f64,
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleSummary {
    pub connections: u64,
    pub hold_secs: f64,
    /// Still open at the end of the hold.
    pub alive_at_end: u64,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_bytes_per_conn: Option<f64>,
    pub loadgen_rss_kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sustained {
    pub step: u32,
    pub offered_deliveries_per_s: f64,
    pub deliveries_per_s: f64,
    pub p99_ms: f64,
}

/// What `loadgen --json` prints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub targets: Vec<String>,
    pub processes: u32,
    pub connections: u64,
    pub rooms: u32,
    pub senders: u32,
    pub connect: ConnectSummary,
    pub idle: Option<IdleSummary>,
    pub steps: Vec<StepSummary>,
    /// The highest step delivered completely with p99 at or under the sustain threshold.
    pub sustained: Option<Sustained>,
    pub stopped: Option<String>,
}

impl Report {
    /// Picks the sustained step: complete and p99 ≤ `p99_ms`.
    pub fn find_sustained(&mut self, p99_ms: f64) {
        self.sustained = self
            .steps
            .iter()
            .filter(|s| s.complete() && s.p99_ms <= p99_ms)
            .max_by(|a, b| {
                a.offered_deliveries_per_s
                    .total_cmp(&b.offered_deliveries_per_s)
            })
            .map(|s| Sustained {
                step: s.step,
                offered_deliveries_per_s: s.offered_deliveries_per_s,
                deliveries_per_s: s.deliveries_per_s,
                p99_ms: s.p99_ms,
            });
    }

    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let c = &self.connect;
        let _ = writeln!(
            o,
            "{} against {} ({} process{}): {} connections over {} room(s), {} sender(s)",
            self.scenario,
            self.targets.join(", "),
            self.processes,
            if self.processes == 1 { "" } else { "es" },
            self.connections,
            self.rooms,
            self.senders,
        );
        let _ = writeln!(
            o,
            "connect: {} made, {} failed in {:.2} s = {:.0}/s; handshake p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            c.made,
            c.failed,
            c.secs,
            c.per_s,
            c.handshake_p50_ms,
            c.handshake_p99_ms,
            c.handshake_max_ms
        );
        for (e, n) in &c.errors {
            let _ = writeln!(o, "  {n} × {e}");
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                o,
                "idle: {} connections held {:.1} s, {} alive at the end; server RSS {} → {} KiB = {} per connection; loadgen RSS {} KiB",
                i.connections,
                i.hold_secs,
                i.alive_at_end,
                opt(i.server_rss_before_kib),
                opt(i.server_rss_after_kib),
                i.server_bytes_per_conn.map_or("?".into(), |b| format!(
                    "{:.0} B ({:.1} KiB)",
                    b,
                    b / 1024.0
                )),
                i.loadgen_rss_kib,
            );
        }
        if !self.steps.is_empty() {
            let _ = writeln!(
                o,
                "{:>4} {:>9} {:>11} {:>9} {:>10} {:>10} {:>6} {:>4} {:>4} {:>11} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>7} {:>10}",
                "step",
                "msgs/s",
                "offered/s",
                "sent",
                "expected",
                "received",
                "lost",
                "dup",
                "ooo",
                "delivered/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "lg cpu",
                "srv cpu",
                "logins/s",
                "srv µs/dlv"
            );
            for s in &self.steps {
                let _ = writeln!(
                    o,
                    "{:>4} {:>9.0} {:>11.0} {:>9} {:>10} {:>10} {:>6} {:>4} {:>4} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>5.0}% {:>6} {:>7.1} {:>10}",
                    s.step,
                    s.rate_msgs,
                    s.offered_deliveries_per_s,
                    s.sent,
                    s.expected,
                    s.received,
                    s.lost,
                    s.duplicates,
                    s.out_of_order,
                    s.deliveries_per_s,
                    s.p50_ms,
                    s.p90_ms,
                    s.p99_ms,
                    s.max_ms,
                    s.loadgen_cpu_pct,
                    s.server_cpu_pct.map_or("-".into(), |p| format!("{p:.0}%")),
                    s.logins_per_s,
                    s.server_cpu_us_per_delivery
                        .map_or("-".into(), |u| format!("{u:.2}")),
                );
                if s.disconnects + s.send_errors + s.late + s.foreign + s.extra + s.logins_failed
                    > 0
                {
                    let _ = writeln!(
                        o,
                        "     disconnects {} send errors {} late {} foreign {} extra {} failed logins {}",
                        s.disconnects, s.send_errors, s.late, s.foreign, s.extra, s.logins_failed
                    );
                }
            }
        }
        match &self.sustained {
            Some(s) => {
                let _ = writeln!(
                    o,
                    "sustained: {:.0} deliveries/s offered ({:.0} delivered/s), p99 {:.2} ms",
                    s.offered_deliveries_per_s, s.deliveries_per_s, s.p99_ms
                );
            }
            None if !self.steps.is_empty() => {
                let _ = writeln!(o, "sustained: none of the steps");
            }
            None => {}
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(o, "stopped: {why}");
        }
        o
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Tag;
    use crate::tally::ConnTally;

    /// A synthetic room: `members` connections, the first `senders` of them sending `per_sender`
    /// messages each; `drop_for` receivers miss every message of sender 0, and receiver 1 gets
    /// every message of sender 1 twice.
    fn shard(members: u32, senders: u32, per_sender: u64, drop_for: u32) -> StepReport {
        let mut conns: Vec<ConnTally> = (0..members)
            .map(|i| ConnTally::new(0, (i < senders).then_some(i)))
            .collect();
        for s in 0..senders {
            for seq in 0..per_sender {
                let sent_at = 1_000_000 + seq * 1_000;
                conns[s as usize].record_send(0, true, 0, sent_at);
                let tag = Some(Tag {
                    step: 0,
                    sender: s,
                    seq,
                    sent_nanos: sent_at,
                });
                for (r, c) in conns.iter_mut().enumerate() {
                    if s == 0 && (r as u32) < drop_for {
                        continue;
                    }
                    // Latency 1..=members ms, so the distribution is known.
                    c.record_frame(tag, sent_at + (r as u64 + 1) * 1_000_000, senders);
                    if s == 1 && r == 1 {
                        c.record_frame(tag, sent_at + 5, senders);
                    }
                }
            }
        }
        let mut rep = StepReport::new(0, 100.0, 1.0, vec![members]);
        for mut c in conns {
            let sender = c.sender.map(|id| (id, c.room));
            rep.absorb(sender, c.harvest(0));
        }
        rep
    }

    #[test]
    fn nothing_lost() {
        let s = shard(100, 10, 20, 0).summary();
        assert_eq!(s.sent, 200);
        assert_eq!(s.expected, 200 * 100);
        assert_eq!(s.received, 20_000);
        assert_eq!((s.lost, s.extra, s.out_of_order), (0, 0, 0));
        assert_eq!(s.duplicates, 20); // receiver 1 × sender 1's 20 messages
        assert!(!s.complete()); // duplicates make a step incomplete
        assert_eq!(s.room_size, 100.0);
        assert_eq!(s.offered_deliveries_per_s, 10_000.0);
        // Latencies are 1..=100 ms, uniformly: p50 = 50 ms, p99 = 99 ms, max = 100 ms.
        assert!((s.p50_ms - 50.0).abs() < 0.5, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 1.0, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 100.0);
    }

    #[test]
    fn loss_is_counted_not_guessed() {
        let s = shard(50, 2, 30, 7).summary();
        assert_eq!(s.expected, 2 * 30 * 50);
        assert_eq!(s.lost, 7 * 30); // 7 receivers missed all 30 of sender 0's messages
        assert_eq!(s.received, s.expected - s.lost);
        assert!(!s.complete());
    }

    #[test]
    fn shards_merge_into_the_whole_room() {
        // One room split over two processes: members add up, so each sender's messages are
        // expected by both halves; loss in one half shows in the total.
        let mut a = shard(30, 3, 10, 0);
        let b_part = shard(20, 0, 0, 0);
        let mut b = b_part.clone();
        // Shard b's receivers got every message of shard a's senders except 4 of them.
        b.received.insert(
            0,
            RecvCount {
                unique: 20 * 10 - 4,
                ..RecvCount::default()
            },
        );
        b.received.insert(
            1,
            RecvCount {
                unique: 200,
                ..RecvCount::default()
            },
        );
        b.received.insert(
            2,
            RecvCount {
                unique: 200,
                out_of_order: 3,
                ..RecvCount::default()
            },
        );
        a.merge(&b);
        // Through JSON, as between processes.
        let a: StepReport =
            serde_json::from_str(&serde_json::to_string(&a).expect("ser")).expect("de");
        let s = a.summary();
        assert_eq!(a.members, vec![50]);
        assert_eq!(s.sent, 30);
        assert_eq!(s.expected, 30 * 50);
        assert_eq!(s.lost, 4);
        assert_eq!(s.out_of_order, 3);
        assert_eq!(s.duplicates, 10);
    }

    #[test]
    fn sustained_is_the_best_complete_step_under_the_threshold() {
        let step = |n: u32, offered: f64, p99: f64, lost: u64| StepSummary {
            step: n,
            offered_deliveries_per_s: offered,
            p99_ms: p99,
            sent: 1,
            lost,
            ..StepSummary::default()
        };
        let mut r = Report {
            steps: vec![
                step(0, 1000.0, 2.0, 0),
                step(1, 2000.0, 20.0, 0),
                step(2, 4000.0, 300.0, 0),
                step(3, 8000.0, 90.0, 5),
            ],
            ..Report::default()
        };
        r.find_sustained(250.0);
        assert_eq!(r.sustained.as_ref().map(|s| s.step), Some(1));
        assert!(r.to_text().contains("sustained: 2000"));
    }

    #[test]
    fn connect_errors_are_bounded() {
        let mut c = ConnectReport::default();
        for i in 0..100 {
            c.error(format!("error {}", i % 20));
        }
        assert_eq!(c.failed, 100);
        assert_eq!(c.errors.len(), ConnectReport::MAX_ERROR_KINDS);
    }
}
