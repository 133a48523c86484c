//! The documented one-command jobs run end to end: `ordo localnet` (the
//! README's main job, shortened) and `ordo bench` (a short run with its
//! JSON report).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn localnet_commits_load_and_all_nodes_agree() {
    let out = Command::new(support::ordo())
        .args([
            "localnet",
            "--nodes",
            "4",
            "--rate",
            "500",
            "--duration",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("all nodes hold the same block"), "{all}");
    let committed: u64 = all
        .lines()
        .find_map(|l| l.trim().strip_prefix("committed"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(committed >= 1000, "committed {committed} of ~1500\n{all}");
}

#[test]
fn bench_reports_held_throughput_latency_and_resources() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    let out = Command::new(support::ordo())
        .args([
            "bench",
            "--nodes",
            "4",
            "--rate",
            "2000",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--da",
            "none",
            "--set",
            "mempool.batch_delay_ms=20",
            "--log",
            "info",
            "--keep",
            "--out",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let held = r["held_tx_per_s"].as_f64().unwrap();
    assert!(held > 1000.0 && held < 3000.0, "{r}");
    assert!(r["latency_ms"]["p50"].as_u64().unwrap() > 0, "{r}");
    assert!(
        r["consensus_latency_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert_eq!(r["nodes"].as_array().unwrap().len(), 4);
    assert!(r["nodes"][0]["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert_eq!(r["config"]["overrides"][0], "mempool.batch_delay_ms=20");
    assert_eq!(r["config"]["node_log"], "info");
    assert_eq!(r["refused"], 0, "{r}");
    // `--keep` leaves the cluster folder with the nodes' logs, at `--log`.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kept the cluster folder (node logs: node-*.log): "))
        .unwrap_or_else(|| panic!("no kept folder named: {stderr}"));
    let kept = std::path::PathBuf::from(kept);
    let log = std::fs::read_to_string(kept.join("node-0.log")).unwrap();
    assert!(log.contains("INFO"), "node 0 logged no info line: {log}");
    std::fs::remove_dir_all(&kept).unwrap();
    // A bad override is refused before anything runs long.
    let bad = Command::new(support::ordo())
        .args(["bench", "--duration", "1", "--set", "no-equals-sign"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// `ordo localnet` started as a terminal would (its own foreground process
/// group), its output lines on a channel as (is_stdout, line).
fn localnet_in_foreground(args: &[&str]) -> (Foreground, mpsc::Receiver<(bool, String)>) {
    let mut child = Command::new(support::ordo())
        .arg("localnet")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = out.send((true, line));
        }
    });
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send((false, line));
        }
    });
    (Foreground(child), rx)
}

/// The localnet process; if a test fails while it runs, it gets a Ctrl-C
/// (and a SIGKILL if that does not end it) so no nodes are left behind.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            ctrl_c(&self.0);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a terminal's Ctrl-C does: SIGINT to the whole foreground group.
fn ctrl_c(child: &Child) {
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).unwrap();
}

/// Reads lines until `until` matches one (panics after `timeout`); returns
/// every line read.
fn read_until(
    rx: &mpsc::Receiver<(bool, String)>,
    timeout: Duration,
    mut until: impl FnMut(bool, &str) -> bool,
) -> Vec<(bool, String)> {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((is_stdout, line)) => {
                let done = until(is_stdout, &line);
                lines.push((is_stdout, line));
                if done {
                    return lines;
                }
            }
            Err(e) => panic!("{e:?} waiting; got so far: {lines:#?}"),
        }
    }
}

/// The localnet's folder, from its "started N nodes in DIR (logs: ..." line.
fn localnet_dir(lines: &[(bool, String)]) -> PathBuf {
    lines
        .iter()
        .find_map(|(_, l)| {
            let rest = l.strip_prefix("started 4 nodes in ")?;
            Some(PathBuf::from(rest.split(" (logs").next()?))
        })
        .unwrap_or_else(|| panic!("no start line in {lines:#?}"))
}

/// Processes whose command line mentions `text` (the nodes name their
/// config in the localnet's folder).
fn processes_mentioning(text: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push((name.parse().unwrap(), cmdline));
        }
    }
    found
}

/// The parent and the process group of process `pid` (`/proc/<pid>/stat`).
fn parent_and_group(pid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

/// Waits for the process to exit (bounded) and returns its exit code.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ordo localnet still running {timeout:?} after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C in the terminal while `ordo localnet` runs under load: the nodes
/// (in their own process groups) keep running until the parent has taken
/// its summary, which shows them agreeing; then they are stopped, the
/// temporary folder is removed and the exit code is 0.
#[test]
fn localnet_ctrl_c_prints_the_summary_then_stops_every_node() {
    let (mut localnet, rx) = localnet_in_foreground(&["--nodes", "4", "--rate", "200"]);
    let child = &mut localnet.0;
    // Two progress lines with a height: healthy, committing, under load.
    let mut progress = 0;
    let mut lines = read_until(&rx, Duration::from_secs(120), |is_stdout, line| {
        if is_stdout && line.starts_with("t=") && !line.contains("height      0") {
            progress += 1;
        }
        progress >= 2
    });
    let dir = localnet_dir(&lines);
    assert!(dir.exists());
    // The nodes are this localnet's children, each in its own process
    // group: the terminal's Ctrl-C is for the parent alone.
    let nodes = processes_mentioning(&dir.to_string_lossy());
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    for (pid, cmdline) in &nodes {
        let (parent, group) = parent_and_group(*pid);
        assert_eq!(parent, child.id(), "{cmdline}");
        assert_eq!(group, *pid, "{cmdline} is in group {group}");
    }
    ctrl_c(child);
    let code = wait_exit(child, Duration::from_secs(60));
    lines.extend(rx.iter());
    let all: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let all = all.join("\n");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("agreement      all nodes hold the same block"),
        "{all}"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    let left = processes_mentioning(&dir.to_string_lossy());
    assert!(left.is_empty(), "nodes left running: {left:?}");
}

/// Ctrl-C while the nodes are still starting: they are stopped, the
/// temporary folder is removed, and the exit code says it was interrupted.
#[test]
fn localnet_ctrl_c_during_start_up_stops_every_node() {
    let (mut localnet, rx) = localnet_in_foreground(&["--nodes", "4"]);
    let child = &mut localnet.0;
    let mut lines = read_until(&rx, Duration::from_secs(60), |_, line| {
        line.starts_with("started 4 nodes in ")
    });
    let dir = localnet_dir(&lines);
    ctrl_c(child);
    let code = wait_exit(child, Duration::from_secs(60));
    lines.extend(rx.iter());
    let all: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let all = all.join("\n");
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("error: interrupted while the nodes were starting"),
        "{all}"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    let left = processes_mentioning(&dir.to_string_lossy());
    assert!(left.is_empty(), "nodes left running: {left:?}");
}
