//! Follows one namespace of an Ordo cluster and prints verified blocks.
//!
//! ```sh
//! cargo run --release -p ordo-client --example follow -- \
//!     --committee net/committee.toml --namespace 7 --from 1
//! ```
//! Reads from every committee member's API in turn (`--api ADDR` to pick).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ordo_client::{Follower, FollowerConfig};
use ordo_types::Committee;

#[derive(Parser)]
#[command(about = "Follow an Ordo cluster's committed blocks, verifying every commit certificate")]
struct Args {
    /// The committee file (as written by `ordo testnet`).
    #[arg(long)]
    committee: PathBuf,
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<u64>,
    /// First height.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Node API addresses to read from (default: every member's).
    #[arg(long)]
    api: Vec<std::net::SocketAddr>,
    /// Stop after this many blocks (default: never).
    #[arg(long)]
    blocks: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let committee = match Committee::load(&args.committee) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let nodes = if args.api.is_empty() {
        committee.members().iter().map(|m| m.api_address).collect()
    } else {
        args.api
    };
    let mut follower = Follower::new(FollowerConfig {
        nodes,
        committee,
        from: args.from,
        namespace: args.namespace,
        retry: Duration::from_millis(500),
    });
    let mut seen = 0u64;
    loop {
        match follower.next().await {
            Ok(block) => {
                let txs: Vec<_> = block
                    .transactions()
                    .filter(|tx| args.namespace.is_none_or(|ns| tx.namespace == ns))
                    .collect();
                println!(
                    "height {:>6}  view {:>6}  {} tx  certified by {} signers  {}",
                    block.height(),
                    block.header.view,
                    txs.len(),
                    block.cert.qc.votes.len(),
                    block.header.digest()
                );
                seen += 1;
                if args.blocks.is_some_and(|b| seen >= b) {
                    return;
                }
            }
            Err(e) => eprintln!("refused: {e}"),
        }
    }
}
