//! `ordo bench`: the end-to-end harness whose numbers we quote.
//!
//! Starts n nodes as processes on loopback from fresh data dirs, drives a
//! fixed open-loop rate of fixed-size transactions through each node's
//! high-rate path (one load task per node, rate split evenly), follows node
//! 0's verified stream, and reports, over a measurement window after a
//! warm-up: held TPS (transactions committed inside the window ÷ window
//! length), committed bytes/s, end-to-end latency (client send → client sees
//! it committed on the stream) over a stated sample, view timeouts, refused
//! transactions, CPU seconds and peak RSS per node, and the harness's own CPU.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ordo_types::Committee;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::watch;

use super::localnet::{spawn_node, wait_healthy, Children, Interrupt};
use crate::http_client::HttpClient;
use crate::load::{self, Ledger};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Offered load, transactions per second (all nodes together).
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    #[arg(long, default_value_t = 512)]
    tx_size: usize,
    /// Measurement window in seconds (after the warm-up).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Warm-up seconds, excluded from the figures.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Time one transaction in this many for latency.
    #[arg(long, default_value_t = 8)]
    sample_every: u64,
    /// Write the JSON report here (with --sweep: a folder for JSON, CSV, SVG).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Several rates, comma separated: one fresh cluster per rate; writes a
    /// CSV and an SVG chart of latency against held throughput.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<u64>,
    /// Data-availability backend of the nodes (`local`, the node default,
    /// publishes every block to files under the data dir; `none` measures the
    /// sequencer alone).
    #[arg(long, default_value = "local")]
    da: String,
    /// Override a node config value for every node, as a dotted TOML path:
    /// `--set mempool.batch_delay_ms=20` (repeatable; the value is parsed
    /// as TOML, else taken as a string).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// The nodes' log filter (`RUST_LOG` syntax). Quieter than `info`
    /// by default so that logging never costs throughput; `info` (or a
    /// per-module filter) to see what the nodes did, with `--keep`.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    log: String,
    /// Keep each run's cluster folder (configs, keys, node logs, data)
    /// instead of deleting it, and print where it is.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 32 {
        bail!("--nodes must be between 1 and 32");
    }
    if args.tx_size < 8 || args.tx_size > 128 * 1024 {
        bail!("--tx-size must be between 8 and 131072 bytes");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    let rates = if args.sweep.is_empty() {
        vec![args.rate]
    } else {
        args.sweep.clone()
    };
    let mut reports = Vec::new();
    for rate in &rates {
        eprintln!(
            "bench: {} nodes, {rate} tx/s offered, {} B transactions, {} s warm-up + {} s window",
            args.nodes, args.tx_size, args.warmup, args.duration
        );
        let report = one_run(&args, *rate)?;
        print_table(&report);
        reports.push(report);
    }
    match (&args.out, args.sweep.is_empty()) {
        (Some(path), true) => {
            std::fs::write(path, serde_json::to_string_pretty(&reports[0])?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        (Some(dir), false) => {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join("sweep.json"),
                serde_json::to_string_pretty(&reports)?,
            )?;
            std::fs::write(dir.join("sweep.csv"), sweep_csv(&reports))?;
            std::fs::write(dir.join("sweep.svg"), sweep_svg(&reports))?;
            eprintln!(
                "wrote sweep.json, sweep.csv and sweep.svg to {}",
                dir.display()
            );
        }
        (None, _) => println!(
            "{}",
            serde_json::to_string_pretty(&if reports.len() == 1 {
                reports[0].clone()
            } else {
                json!(reports)
            })?
        ),
    }
    Ok(())
}

fn one_run(args: &Args, rate: u64) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::Builder::new().prefix("ordo-bench-").tempdir()?;
    let configs = super::testnet::write(dir.path(), args.nodes, 0, false)?;
    if !matches!(args.da.as_str(), "local" | "none") {
        bail!("--da must be local or none");
    }
    for path in &configs {
        let text = std::fs::read_to_string(path)?;
        let text = text.replace("da = \"local\"", &format!("da = \"{}\"", args.da));
        std::fs::write(path, apply_overrides(&text, &args.set)?)?;
    }
    let committee = Arc::new(Committee::load(&dir.path().join("committee.toml"))?);
    let apis: Vec<SocketAddr> = committee.members().iter().map(|m| m.api_address).collect();
    let exe = std::env::current_exe()?;
    // The nodes inherit it.
    std::env::set_var("RUST_LOG", &args.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The nodes run in their own process groups (see `localnet`): a
    // Ctrl-C reaches only this process, which stops them.
    let mut interrupt = {
        let _context = runtime.enter();
        Interrupt::install()?
    };
    let mut children = Children(Vec::new());
    for i in 0..committee.size() {
        children.0.push(spawn_node(&exe, dir.path(), i)?);
    }
    let pids: Vec<u32> = children.0.iter().map(|c| c.id()).collect();
    let result = runtime.block_on(async {
        tokio::select! {
            report = async {
                wait_healthy(&apis, dir.path(), &mut children).await?;
                measure(args, rate, &apis, committee.clone(), &pids).await
            } => report,
            _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    children.stop();
    if args.keep {
        let kept = dir.keep();
        eprintln!(
            "kept the cluster folder (node logs: node-*.log): {}",
            kept.display()
        );
    }
    let mut report = result?;
    report["config"] = json!({
        "nodes": args.nodes, "offered_tx_per_s": rate, "tx_bytes": args.tx_size,
        "warmup_s": args.warmup, "window_s": args.duration, "latency_sample": format!("1 in {}", args.sample_every),
        "submission": "POST /v1/transactions/batch, one open-loop task per node, 5 ms ticks",
        "node_config": "ordo testnet defaults (QUIC+TLS, redb with fsync, durable acks)",
        "da_backend": args.da,
        "overrides": args.set,
        "node_log": args.log,
    });
    report["git_commit"] = json!(git_commit());
    Ok(report)
}

async fn measure(
    args: &Args,
    rate: u64,
    apis: &[SocketAddr],
    committee: Arc<Committee>,
    pids: &[u32],
) -> anyhow::Result<serde_json::Value> {
    let ledger = Arc::new(Ledger::default());
    let height = Arc::new(AtomicU64::new(0));
    let committed_at = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let n = apis.len() as u64;
    let harness_cpu_start = cpu_seconds(std::process::id());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        tasks.push(tokio::spawn(load::drive_chunks(
            *api,
            rate as f64 / n as f64,
            args.tx_size,
            i as u64,
            n,
            args.sample_every,
            ledger.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(load::observe_stream(
        apis[0],
        committee,
        ledger.clone(),
        height.clone(),
        Some(committed_at.clone()),
        stop_rx.clone(),
    )));
    let window_start = start + Duration::from_secs(args.warmup);
    let window_end = window_start + Duration::from_secs(args.duration);
    let mut sampled_before_window = 0usize;
    let mut timeouts_before_window = None;
    let mut consensus_before_window = Vec::new();
    let mut accept_before_window = Vec::new();
    while Instant::now() < window_end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if Instant::now() < window_start {
            sampled_before_window = ledger.observed();
        } else if timeouts_before_window.is_none() {
            timeouts_before_window = Some(total_timeouts(apis).await);
            consensus_before_window = histogram(apis[0], CONSENSUS_LATENCY).await;
            accept_before_window = histogram_all(apis, ACCEPT_TO_COMMIT).await;
        }
        eprintln!(
            "  t={:>3}s height {:>6} refused {:>8}",
            start.elapsed().as_secs(),
            height.load(Ordering::Relaxed),
            ledger.refused.load(Ordering::Relaxed)
        );
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let committed: u64 = committed_at
        .lock()
        .iter()
        .filter(|(at, _)| *at >= window_start && *at < window_end)
        .map(|(_, c)| c)
        .sum();
    let held = committed as f64 / args.duration as f64;
    let p = ledger.percentiles(sampled_before_window, &[0.5, 0.9, 0.99, 1.0]);
    let consensus_at_end = histogram(apis[0], CONSENSUS_LATENCY).await;
    let consensus = bucket_percentiles(
        &consensus_before_window,
        &consensus_at_end,
        &[0.5, 0.9, 0.99],
    );
    let accept_at_end = histogram_all(apis, ACCEPT_TO_COMMIT).await;
    let commit = bucket_percentiles(&accept_before_window, &accept_at_end, &[0.5, 0.9, 0.99]);
    let timeouts = total_timeouts(apis).await;
    let window_timeouts = timeouts - timeouts_before_window.unwrap_or(0).min(timeouts);
    let nodes: Vec<serde_json::Value> = pids.iter().enumerate().map(|(i, pid)| json!({"node": i, "cpu_s": cpu_seconds(*pid), "peak_rss_mib": peak_rss_mib(*pid)})).collect();
    Ok(json!({
        "offered_tx_per_s": rate,
        "held_tx_per_s": held.round(),
        "committed_mib_per_s": (held * args.tx_size as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0,
        "latency_ms": {"p50": p[0], "p90": p[1], "p99": p[2], "max": p[3], "measured_as": "client send -> block seen on node 0's verified stream", "samples": ledger.observed() - sampled_before_window},
        "commit_latency_ms": {"p50": commit[0], "p90": commit[1], "p99": commit[2], "measured_as": "a node's API accepting a transaction -> that node committing (delivering) it, every node, inside the window (upper bound of the histogram bucket)"},
        "consensus_latency_ms": {"p50": consensus[0], "p90": consensus[1], "p99": consensus[2], "measured_as": "node 0: voting for a block -> committing it, inside the window (upper bound of the histogram bucket)"},
        "view_timeouts": window_timeouts,
        "view_timeouts_including_warmup": timeouts,
        "refused": ledger.refused.load(Ordering::Relaxed),
        "failed_requests": ledger.errors.load(Ordering::Relaxed),
        "final_height": height.load(Ordering::Relaxed),
        "nodes": nodes,
        "harness_cpu_s": cpu_seconds(std::process::id()) - harness_cpu_start,
    }))
}

/// Sets each `a.b.c=value` of `sets` in a TOML document.
fn apply_overrides(text: &str, sets: &[String]) -> anyhow::Result<String> {
    if sets.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc: toml::Value = toml::from_str(text)?;
    for set in sets {
        let (path, value) = set
            .split_once('=')
            .with_context(|| format!("--set {set}: expected PATH=VALUE"))?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        let mut keys: Vec<&str> = path.split('.').collect();
        let last = keys.pop().context("--set: empty path")?;
        let mut table = doc.as_table_mut().context("config is not a TOML table")?;
        for key in keys {
            table = table
                .entry(key)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .with_context(|| format!("--set {set}: {key} is not a table"))?;
        }
        table.insert(last.to_string(), value);
    }
    Ok(toml::to_string(&doc)?)
}

const CONSENSUS_LATENCY: &str = "ordo_consensus_latency_seconds_bucket";
const ACCEPT_TO_COMMIT: &str = "ordo_accept_to_commit_seconds_bucket";

/// Histogram `name` summed over every node (bucket by bucket).
async fn histogram_all(apis: &[SocketAddr], name: &str) -> Vec<(f64, u64)> {
    let mut sum: Vec<(f64, u64)> = Vec::new();
    for api in apis {
        for (le, count) in histogram(*api, name).await {
            match sum.iter_mut().find(|(b, _)| *b == le) {
                Some((_, total)) => *total += count,
                None => sum.push((le, count)),
            }
        }
    }
    sum
}

/// The cumulative buckets `(upper bound in seconds, count)` of histogram
/// `name` on one node's `/metrics`; empty if it cannot be read.
async fn histogram(api: SocketAddr, name: &str) -> Vec<(f64, u64)> {
    let mut client = HttpClient::new(api);
    let Ok((200, body)) = client.request("GET", "/metrics", b"").await else {
        return Vec::new();
    };
    parse_histogram(&String::from_utf8_lossy(&body), name)
}

fn parse_histogram(text: &str, name: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix("{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// Percentiles in ms (bucket upper bounds) of what a histogram counted
/// between two readings.
fn bucket_percentiles(before: &[(f64, u64)], after: &[(f64, u64)], qs: &[f64]) -> Vec<Option<f64>> {
    let counts: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            let earlier = before.iter().find(|(b, _)| b == le).map_or(0, |(_, m)| *m);
            (*le, n.saturating_sub(earlier))
        })
        .collect();
    let total = counts.last().map_or(0, |(_, n)| *n);
    qs.iter()
        .map(|q| {
            if total == 0 {
                return None;
            }
            let rank = (q * total as f64).ceil() as u64;
            counts
                .iter()
                .find(|(_, n)| *n >= rank)
                .map(|(le, _)| (le * 1000.0 * 10.0).round() / 10.0)
        })
        .collect()
}

/// View timeouts summed over all nodes.
async fn total_timeouts(apis: &[SocketAddr]) -> u64 {
    let mut timeouts = 0u64;
    for api in apis {
        let mut client = HttpClient::new(*api);
        if let Ok((200, body)) = client.request("GET", "/v1/status", b"").await {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            timeouts += v["timeouts"].as_u64().unwrap_or(0);
        }
    }
    timeouts
}

fn print_table(r: &serde_json::Value) {
    let ms = |k: &str| {
        r["latency_ms"][k]
            .as_u64()
            .map_or("-".into(), |v| format!("{v} ms"))
    };
    let consensus = |k: &str| {
        r["consensus_latency_ms"][k]
            .as_f64()
            .map_or("-".into(), |v| format!("≤{v} ms"))
    };
    let commit = |k: &str| {
        r["commit_latency_ms"][k]
            .as_f64()
            .map_or("-".into(), |v| format!("≤{v} ms"))
    };
    println!("offered {:>8} tx/s | held {:>8} tx/s ({} MiB/s) | p50 {:>7} p90 {:>7} p99 {:>7} max {:>7} | commit p50 {} p99 {} | consensus p50 {} p99 {} | timeouts {} | refused {}",
        r["offered_tx_per_s"], r["held_tx_per_s"], r["committed_mib_per_s"], ms("p50"), ms("p90"), ms("p99"), ms("max"), commit("p50"), commit("p99"), consensus("p50"), consensus("p99"), r["view_timeouts"], r["refused"]);
}

/// utime + stime of a process, in seconds (Linux; 0 elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Peak resident set (VmHWM) of a process in MiB (Linux; 0 elsewhere).
fn peak_rss_mib(pid: u32) -> f64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0.0;
    };
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// The commit the binary was built from (recorded at build time), else
/// the one of the working directory.
fn git_commit() -> Option<String> {
    if let Some(commit) = option_env!("ORDO_GIT_COMMIT") {
        return Some(commit.to_string());
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn sweep_csv(reports: &[serde_json::Value]) -> String {
    let mut out = String::from(
        "offered_tx_per_s,held_tx_per_s,p50_ms,p90_ms,p99_ms,max_ms,view_timeouts,refused\n",
    );
    for r in reports {
        let l = &r["latency_ms"];
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r["offered_tx_per_s"],
            r["held_tx_per_s"],
            l["p50"],
            l["p90"],
            l["p99"],
            l["max"],
            r["view_timeouts"],
            r["refused"]
        ));
    }
    out
}

/// Latency (p50 and p99) against held throughput, one point per rate.
fn sweep_svg(reports: &[serde_json::Value]) -> String {
    let points: Vec<(f64, f64, f64)> = reports
        .iter()
        .map(|r| {
            (
                r["held_tx_per_s"].as_f64().unwrap_or(0.0),
                r["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                r["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let max_y = points.iter().map(|p| p.2).fold(1.0, f64::max) * 1.1;
    let (w, h, m) = (640.0, 400.0, 60.0);
    let x = |v: f64| m + v / max_x * (w - 2.0 * m);
    let y = |v: f64| h - m - v / max_y * (h - 2.0 * m);
    let line = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(f(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
<rect width='100%' height='100%' fill='white'/>\
<line x1='{m}' y1='{b}' x2='{r}' y2='{b}' stroke='black'/><line x1='{m}' y1='{m}' x2='{m}' y2='{b}' stroke='black'/>\
<text x='{cx}' y='{lx}' text-anchor='middle'>held throughput (tx/s), max {max_x:.0}</text>\
<text x='14' y='{cy}' transform='rotate(-90 14 {cy})' text-anchor='middle'>latency (ms), max {max_y:.0}</text>\
<polyline fill='none' stroke='steelblue' stroke-width='2' points='{p50}'/><polyline fill='none' stroke='firebrick' stroke-width='2' points='{p99}'/>\
<text x='{r}' y='{t}' text-anchor='end' fill='steelblue'>p50</text><text x='{r}' y='{t2}' text-anchor='end' fill='firebrick'>p99</text></svg>\n",
        b = h - m, r = w - m, cx = w / 2.0, lx = h - 20.0, cy = h / 2.0, t = m, t2 = m + 16.0,
        p50 = line(&|p| p.1), p99 = line(&|p| p.2)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_dotted_paths() {
        let text = "[mempool]\nbatch_delay_ms = 50\n[network]\nx = \"a\"\n";
        let out = apply_overrides(
            text,
            &["mempool.batch_delay_ms=20".into(), "network.y=word".into()],
        )
        .unwrap();
        let doc: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(doc["mempool"]["batch_delay_ms"].as_integer(), Some(20));
        assert_eq!(doc["network"]["y"].as_str(), Some("word"));
        assert_eq!(doc["network"]["x"].as_str(), Some("a"));
        assert!(apply_overrides(text, &["nothing".into()]).is_err());
    }

    #[test]
    fn histogram_percentiles_count_only_the_window() {
        let text = "# HELP x\n\
            ordo_consensus_latency_seconds_bucket{le=\"0.01\"} 5\n\
            ordo_consensus_latency_seconds_bucket{le=\"0.02\"} 10\n\
            ordo_consensus_latency_seconds_bucket{le=\"+Inf\"} 10\n\
            ordo_consensus_latency_seconds_sum 0.1\n";
        let before = parse_histogram(text, CONSENSUS_LATENCY);
        assert_eq!(before.len(), 3);
        assert_eq!(before[1], (0.02, 10));
        // In the window: none more ≤ 10 ms, 90 more ≤ 20 ms, 10 above.
        let after = vec![(0.01, 5), (0.02, 100), (f64::INFINITY, 110)];
        let p = bucket_percentiles(&before, &after, &[0.5, 0.9, 0.99]);
        assert_eq!(p, vec![Some(20.0), Some(20.0), Some(f64::INFINITY)]);
        assert_eq!(bucket_percentiles(&before, &before, &[0.5]), vec![None]);
    }
}
