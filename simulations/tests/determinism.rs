//! Same scenario and seed ⇒ the same trace, byte for byte (compared by the
//! blake3 trace hash); different seeds ⇒ different traces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordo_sim::{replay, run_seed, RunOptions};

/// 8 seeds of scenarios that exercise every random choice (loss,
/// duplication, reordering, drift, crashes, Byzantine injections), each
/// run twice.
#[test]
fn eight_seeds_twice_give_equal_trace_hashes() {
    for name in [
        "byzantine-mix-n10",
        "crash-restart-storm-n7",
        "twins-n7",
        "censorship-stable-n7",
    ] {
        let mut scenario = common::load(name);
        scenario.duration_ms = 12_000;
        let mut hashes = Vec::new();
        for seed in 0..8 {
            let a = run_seed(&scenario, seed, &RunOptions::default());
            let b = run_seed(&scenario, seed, &RunOptions::default());
            assert_eq!(a.trace_hash, b.trace_hash, "{name} seed {seed}");
            assert_eq!(a.events, b.events, "{name} seed {seed}");
            hashes.push(a.trace_hash);
        }
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), 8, "{name}: seeds must give different traces");
    }
}

/// Running seeds on threads does not change them, and a replay with the
/// printed trace has the same hash as the run.
#[test]
fn threads_and_tracing_do_not_change_a_run() {
    let mut scenario = common::load("partition-heal-n7");
    scenario.duration_ms = 8_000;
    let alone = run_seed(&scenario, 5, &RunOptions::default());
    let summary = ordo_sim::run_scenario(
        &scenario,
        &ordo_sim::RunConfig {
            jobs: 3,
            ..ordo_sim::RunConfig::seeds(0..8)
        },
    )
    .unwrap();
    assert_eq!(summary.reports[5].trace_hash, alone.trace_hash);
    let mut trace = Vec::new();
    let traced = replay(&scenario, 5, true, &RunOptions::default(), &mut trace);
    assert_eq!(traced.trace_hash, alone.trace_hash);
    let text = String::from_utf8(trace).unwrap();
    assert!(text.lines().count() as u64 >= alone.events / 2);
    assert!(text.contains("proposal v1 h1"));
}
