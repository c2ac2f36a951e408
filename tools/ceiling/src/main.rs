//! `ceiling --addr 127.0.0.1:PORT`: the bare room fan-out server (see the library docs).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Bare WebSocket room fan-out server: the machine's ceiling"
)]
struct Args {
    /// Address to listen on (loopback only; port 0 picks a free one and prints it).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Messages a room keeps for a member that is behind before it starts dropping.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
    /// Most messages written to one socket before a flush.
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.addr.ip().is_loopback(),
        "ceiling listens on loopback addresses only"
    );
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        rt.worker_threads(threads.max(1));
    }
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    println!(
        "ceiling listening on ws://{}/ws/chat/<room>/",
        listener.local_addr()?
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let opts = ceiling::Options {
        queue: args.queue,
        batch: args.batch,
    };
    let s = ceiling::serve(listener, opts, shutdown).await;
    eprintln!(
        "ceiling: connections={} rejected={} frames_in={} frames_out={} lagged={}",
        s.connections, s.rejected, s.frames_in, s.frames_out, s.lagged
    );
    Ok(())
}
