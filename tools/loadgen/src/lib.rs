//! The load generator's pure parts: the message tag, the per-connection accounting, the latency
//! histogram and the reports. `main.rs` holds the network side (connecting, sending, receiving,
//! logging in, and the processes that run shards of one load).

pub mod hist;
pub mod procfs;
pub mod report;
pub mod tag;
pub mod tally;
