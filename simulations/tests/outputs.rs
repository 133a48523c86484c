//! `--out DIR --plot`: what `write_outputs` leaves in the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordo_sim::runner::write_outputs;
use ordo_sim::{run_scenario, RunConfig};

#[test]
fn out_dir_holds_json_csvs_and_both_charts() {
    let mut scenario = common::load("happy-n4-wan");
    scenario.duration_ms = 8_000;
    scenario.checks.drain_ms = 3_000;
    let summary = run_scenario(&scenario, &RunConfig::seeds(0..2)).unwrap();
    assert!(summary.ok(), "{}", summary.table());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sim-outputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(&summary, &dir, true).unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();

    let json: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    assert_eq!(json["scenario"], "happy-n4-wan");
    assert_eq!(json["seeds"], 2);
    for seed in 0..2 {
        let r: serde_json::Value =
            serde_json::from_str(&read(&format!("seed-{seed}.json"))).unwrap();
        assert_eq!(r["seed"], seed);
        assert_eq!(r["ok"], true);
        assert!(r["trace_hash"].as_str().unwrap().len() == 64);
    }

    let seeds = read("seeds.csv");
    let mut rows = seeds.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    for column in [
        "seed",
        "ok",
        "views_per_s",
        "timeouts",
        "latency_p50_ms",
        "latency_p99_ms",
        "items_per_s",
        "trace_hash",
    ] {
        assert!(
            header.contains(&column),
            "seeds.csv lacks {column}: {header:?}"
        );
    }
    assert_eq!(rows.count(), 2);
    for row in seeds.lines().skip(1) {
        assert_eq!(row.split(',').count(), header.len(), "{row}");
    }

    let latency = read("latency.csv");
    let mut rows = latency.lines();
    assert_eq!(rows.next(), Some("seed,commit_ms,latency_ms"));
    let samples: usize = summary.reports.iter().map(|r| r.samples.len()).sum();
    assert!(samples > 100);
    assert_eq!(rows.count(), samples);

    for chart in ["latency-over-time.svg", "latency-cdf.svg"] {
        let svg = read(chart);
        assert!(svg.starts_with("<svg"), "{chart}");
        assert!(svg.trim_end().ends_with("</svg>"), "{chart}");
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{chart}"
        );
        assert!(svg.contains("happy-n4-wan"), "{chart}: no title");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
