//! `ordo localnet`: n nodes on loopback as child processes, optional load,
//! a live progress line, and a summary. Needs nothing but this binary.
//!
//! The nodes run in their own process groups, so a terminal's Ctrl-C reaches
//! only this process: it takes the summary while the nodes still answer,
//! then stops them (SIGTERM, then SIGKILL after a grace period) and exits 0.
//! A Ctrl-C (or SIGTERM) before the nodes are healthy stops them and exits 1.
//! Either way a temporary folder is removed.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ordo_types::Committee;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::http_client::HttpClient;
use crate::load::{self, Ledger};

#[derive(clap::Args)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Offered load in transactions per second, split evenly across nodes
    /// (0: no load).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Size of each load transaction in bytes.
    #[arg(long, default_value_t = 512)]
    tx_size: usize,
    /// Seconds to run; 0 runs until Ctrl-C (which prints the summary too).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Folder for keys, configs, data and logs. Reused if it holds a
    /// localnet already (the nodes resume from their data). Default: a
    /// temporary folder, removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(super) struct Children(pub(super) Vec<Child>);

impl Children {
    /// SIGTERM, a grace period, then SIGKILL.
    pub(super) fn stop(&mut self) {
        for child in &mut self.0 {
            // Only a child not yet reaped: its pid is still its own.
            if !matches!(child.try_wait(), Ok(None)) {
                continue;
            }
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.0 {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from when this is made on: the
/// nodes run in their own process groups and only this process hears a
/// terminal's Ctrl-C, so it must stop them.
pub(super) struct Interrupt {
    int: Signal,
    term: Signal,
}

impl Interrupt {
    /// Installs the handlers; needs a tokio runtime context.
    pub(super) fn install() -> std::io::Result<Self> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    pub(super) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 100 {
        bail!("--nodes must be between 1 and 100");
    }
    if args.tx_size < 8 || args.tx_size > 128 * 1024 {
        bail!("--tx-size must be between 8 and 131072 bytes");
    }
    let temp;
    let dir: PathBuf = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("ordo-localnet-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let committee_path = dir.join("committee.toml");
    if committee_path.exists() {
        eprintln!("reusing the localnet in {}", dir.display());
    } else {
        super::testnet::write(&dir, args.nodes, 0, false)?;
    }
    let committee = Committee::load(&committee_path)?;
    let apis: Vec<SocketAddr> = committee.members().iter().map(|m| m.api_address).collect();
    let exe = std::env::current_exe().context("cannot find the ordo binary")?;
    let runtime = tokio::runtime::Runtime::new()?;
    // Before any child exists: from here on, Ctrl-C stops them cleanly.
    let mut interrupt = {
        let _context = runtime.enter();
        Interrupt::install()?
    };
    let mut children = Children(Vec::new());
    for i in 0..committee.size() {
        children.0.push(spawn_node(&exe, &dir, i)?);
    }
    eprintln!(
        "started {} nodes in {} (logs: node-<i>.log); APIs: {}",
        committee.size(),
        dir.display(),
        apis.iter()
            .map(|a| format!("http://{a}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let committee = Arc::new(committee);
    let result = runtime.block_on(async {
        tokio::select! {
            healthy = wait_healthy(&apis, &dir, &mut children) => healthy?,
            _ = interrupt.recv() => bail!("interrupted while the nodes were starting"),
        }
        drive(&args, &apis, committee, &dir, &mut children, &mut interrupt).await
    });
    // The summary was taken while the nodes still ran; now stop them.
    children.stop();
    if args.dir.is_some() {
        eprintln!("data kept in {}", dir.display());
    }
    result
}

pub(super) fn spawn_node(exe: &Path, dir: &Path, i: usize) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join(format!("node-{i}.log")))?;
    Command::new(exe)
        .args(["run", "--config"])
        .arg(dir.join(format!("node-{i}.toml")))
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a terminal's Ctrl-C is for the parent,
        // which stops the nodes after taking its summary.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start node {i}"))
}

pub(super) async fn wait_healthy(
    apis: &[SocketAddr],
    dir: &Path,
    children: &mut Children,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, api) in apis.iter().enumerate() {
        let mut client = HttpClient::new(*api);
        loop {
            if let Ok((200, _)) = client.request("GET", "/healthz", b"").await {
                break;
            }
            if let Ok(Some(status)) = children.0[i].try_wait() {
                let log =
                    std::fs::read_to_string(dir.join(format!("node-{i}.log"))).unwrap_or_default();
                let last = log.lines().last().unwrap_or("").to_string();
                bail!("node {i} exited ({status}): {last}");
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} did not become healthy within 30 s; see {}",
                    dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Load is offered once every node talks to every other and the chain
    // moves, so start-up (connections, the first views) is not measured
    // as latency. A cluster that does not get there soon runs anyway.
    let ready_by = Instant::now() + Duration::from_secs(10);
    for api in apis {
        let mut client = HttpClient::new(*api);
        while Instant::now() < ready_by {
            let status: serde_json::Value = match client.request("GET", "/v1/status", b"").await {
                Ok((200, body)) => serde_json::from_slice(&body).unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            let peers = status["peers_connected"].as_u64().unwrap_or(0);
            let height = status["committed_height"].as_u64().unwrap_or(0);
            if peers + 1 >= apis.len() as u64 && height >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn drive(
    args: &Args,
    apis: &[SocketAddr],
    committee: Arc<Committee>,
    dir: &Path,
    children: &mut Children,
    interrupt: &mut Interrupt,
) -> anyhow::Result<()> {
    let ledger = Arc::new(Ledger::default());
    let height = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let n = apis.len() as u64;
    for (i, api) in apis.iter().enumerate() {
        tasks.push(tokio::spawn(load::drive_chunks(
            *api,
            args.rate as f64 / n as f64,
            args.tx_size,
            i as u64,
            n,
            1,
            ledger.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(load::observe_stream(
        apis[0],
        committee,
        ledger.clone(),
        height.clone(),
        None,
        stop_rx.clone(),
    )));

    let start = Instant::now();
    let deadline = (args.duration > 0).then(|| start + Duration::from_secs(args.duration));
    let tty = std::io::stdout().is_terminal();
    let mut last_committed = 0u64;
    let mut last_observed = 0usize;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = interrupt.recv() => break,
        }
        let committed = ledger.committed.load(Ordering::Relaxed);
        let observed = ledger.observed();
        let p50 = ledger.percentiles(last_observed, &[0.5])[0];
        let up = children
            .0
            .iter_mut()
            .map(|c| c.try_wait())
            .filter(|s| matches!(s, Ok(None)))
            .count();
        let line = format!(
            "t={:>4}s  height {:>6}  committed {:>7} tx/s  p50 {:>6}  refused {:>6}  nodes up {}/{}",
            start.elapsed().as_secs(),
            height.load(Ordering::Relaxed),
            committed - last_committed,
            p50.map_or("-".to_string(), |ms| format!("{ms} ms")),
            ledger.refused.load(Ordering::Relaxed),
            up,
            apis.len()
        );
        if tty {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
        last_committed = committed;
        last_observed = observed;
        if up < apis.len() {
            println!();
            eprintln!("a node exited; see the logs in {}", dir.display());
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    if tty {
        println!();
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    summary(args, apis, &ledger, start.elapsed()).await
}

async fn summary(
    args: &Args,
    apis: &[SocketAddr],
    ledger: &Ledger,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let committed = ledger.committed.load(Ordering::Relaxed);
    let pct = ledger.percentiles(0, &[0.5, 0.99]);
    let show = |v: Option<u32>| v.map_or("-".to_string(), |ms| format!("{ms} ms"));
    let mut heights = Vec::new();
    for api in apis {
        let mut client = HttpClient::new(*api);
        let h = match client.request("GET", "/v1/status", b"").await {
            Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["delivered_height"].as_u64()),
            _ => None,
        };
        heights.push(h.unwrap_or(0));
    }
    let common = heights.iter().copied().min().unwrap_or(0);
    let mut digests = Vec::new();
    if common > 0 {
        for api in apis {
            let mut client = HttpClient::new(*api);
            let digest = match client
                .request("GET", &format!("/v1/blocks/{common}"), b"")
                .await
            {
                Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["digest"].as_str().map(str::to_string)),
                _ => None,
            };
            digests.push(digest);
        }
    }
    let agree = !digests.is_empty() && digests.windows(2).all(|w| w[0] == w[1] && w[0].is_some());
    println!("summary after {secs:.1} s, {} nodes:", apis.len());
    println!(
        "  offered        {} tx/s of {} bytes",
        args.rate, args.tx_size
    );
    println!(
        "  submitted      {} accepted, {} refused, {} failed",
        ledger.submitted.load(Ordering::Relaxed),
        ledger.refused.load(Ordering::Relaxed),
        ledger.errors.load(Ordering::Relaxed)
    );
    println!(
        "  committed      {committed} tx ({:.0} tx/s)",
        committed as f64 / secs
    );
    println!(
        "  latency        p50 {}  p99 {} (submit -> seen committed on node 0)",
        show(pct[0]),
        show(pct[1])
    );
    println!("  heights        {heights:?}");
    if common > 0 {
        println!(
            "  agreement      {} at height {common}",
            if agree {
                "all nodes hold the same block"
            } else {
                "NODES DISAGREE"
            }
        );
    }
    if common > 0 && !agree {
        bail!("nodes disagree at height {common}");
    }
    Ok(())
}
