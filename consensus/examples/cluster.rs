//! Runs an in-process cluster of real consensus cores over virtual time and
//! reports what it committed. The interim "main job" until the `ordo` node
//! binary exists.
//!
//! ```sh
//! cargo run --release --example cluster -p ordo-consensus -- --nodes 4 --blocks 1000
//! ```
//! Flags: `--nodes N` (4), `--blocks B` (1000), `--latency-ms L` (10),
//! `--jitter-ms J` (5), `--seed S` (1), `--crash I` (crash node I halfway).

use std::time::Instant;

use ordo_consensus::testing::Cluster;
use ordo_consensus::Config;

struct Args {
    nodes: usize,
    blocks: u64,
    latency_ms: u64,
    jitter_ms: u64,
    seed: u64,
    crash: Option<u16>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 4,
        blocks: 1_000,
        latency_ms: 10,
        jitter_ms: 5,
        seed: 1,
        crash: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--nodes" => args.nodes = number(&value)? as usize,
            "--blocks" => args.blocks = number(&value)?,
            "--latency-ms" => args.latency_ms = number(&value)?,
            "--jitter-ms" => args.jitter_ms = number(&value)?,
            "--seed" => args.seed = number(&value)?,
            "--crash" => args.crash = Some(number(&value)? as u16),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.nodes == 0 || args.nodes > 200 {
        return Err("--nodes must be 1..=200".into());
    }
    if args.crash.is_some_and(|c| usize::from(c) >= args.nodes) {
        return Err("--crash names a node outside the committee".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: cluster [--nodes N] [--blocks B] [--latency-ms L] [--jitter-ms J] [--seed S] [--crash I]"
            );
            std::process::exit(2);
        }
    };
    let config = Config {
        base_timeout_ms: 1_000,
        ..Config::default()
    };
    let wall = Instant::now();
    let mut cluster = Cluster::new(
        args.nodes,
        config,
        args.latency_ms,
        args.jitter_ms,
        args.seed,
    );
    cluster.set_verify_certs(false);
    let mut item = 0u64;
    let mut crashed = false;
    let mut next_report = args.blocks / 10;
    loop {
        let height = cluster.committed(0).len() as u64;
        if height >= args.blocks {
            break;
        }
        if let Some(node) = args.crash.filter(|_| !crashed && height >= args.blocks / 2) {
            cluster.crash(node);
            crashed = true;
            println!("crashed node {node} at height {height}");
        }
        for node in 0..args.nodes as u16 {
            item += 1;
            cluster.submit(node, vec![item.to_le_bytes().to_vec()]);
        }
        let until = cluster.now_ms() + 5;
        cluster.run_until(until);
        if height >= next_report {
            println!(
                "height {height:>6}  view {:>6}  virtual {:>7.1} s  wall {:>5.2} s",
                cluster.core(0).view(),
                cluster.now_ms() as f64 / 1e3,
                wall.elapsed().as_secs_f64()
            );
            next_report += args.blocks / 10;
        }
        if cluster.now_ms() > 3_600_000 {
            eprintln!("no progress after an hour of virtual time");
            std::process::exit(1);
        }
    }
    if let Err(e) = cluster.check_agreement() {
        eprintln!("SAFETY VIOLATION: {e}");
        std::process::exit(1);
    }
    let live: Vec<u16> = (0..args.nodes as u16)
        .filter(|n| Some(*n) != args.crash)
        .collect();
    let items: usize = cluster
        .committed(live[0])
        .iter()
        .map(|b| b.block.payload.items.len())
        .sum();
    let timeouts: u64 = live.iter().map(|n| cluster.core(*n).stats().timeouts).sum();
    let secs = cluster.now_ms() as f64 / 1e3;
    println!(
        "done: {} nodes agree on {} blocks ({} payload items) in {:.1} s virtual / {:.2} s wall; \
         {:.1} blocks/s virtual; views {}; timeouts {}; misbehaviour reports {}",
        args.nodes,
        cluster.committed(live[0]).len(),
        items,
        secs,
        wall.elapsed().as_secs_f64(),
        cluster.committed(live[0]).len() as f64 / secs,
        cluster.core(live[0]).view(),
        timeouts,
        cluster.faults().len()
    );
}
