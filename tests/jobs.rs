//! The documented one-command jobs run end to end: `ordo localnet` (the
//! README's main job, shortened) and `ordo bench` (a short run with its
//! JSON report).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

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
    assert_eq!(r["refused"], 0, "{r}");
    // A bad override is refused before anything runs long.
    let bad = Command::new(support::ordo())
        .args(["bench", "--duration", "1", "--set", "no-equals-sign"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
