//! Speed guard (release builds only): `speed-n4` seed 0, about 10,000
//! views of 4 nodes, must take well under a second of wall time; n = 100
//! over WAN latencies must keep about one simulated second per CPU second
//! (at least 0.4). Both speeds
//! (simulated seconds per wall second) are printed
//! (`cargo test --release -p ordo-sim --test speed -- --nocapture`).
//! One test, so the two runs never compete for a core. On a shared machine
//! a run can wait for a core longer than it runs: if every attempt's wall
//! time is over the limit, the thread's own CPU time (from /proc, Linux)
//! must then be under a second instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use ordo_sim::{run_seed, RunOptions, SeedReport};

/// "Well under a second", with room for a loaded shared machine (measured
/// 0.4-0.6 s).
const N4_LIMIT: Duration = Duration::from_millis(1_500);

/// "Well under a second" of the simulator's own work.
const N4_CPU_LIMIT: Duration = Duration::from_millis(1_000);

fn timed(scenario: &ordo_sim::Scenario, seed: u64) -> (SeedReport, Duration) {
    let start = Instant::now();
    let report = run_seed(scenario, seed, &RunOptions::default());
    (report, start.elapsed())
}

/// User + system CPU time of this thread, in 10 ms ticks (Linux's USER_HZ
/// is 100); `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, from field 3 (state): utime is field
    // 14, stime field 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "speed is only meaningful in release builds"
)]
fn n4_runs_10k_views_well_under_a_second_and_n100_keeps_pace() {
    let scenario = common::load("speed-n4");
    // Best of up to three runs: load on the machine only ever slows a run.
    let mut best = Duration::MAX;
    let mut best_cpu = Duration::MAX;
    for attempt in 1..=3 {
        let cpu_before = thread_cpu();
        let (report, wall) = timed(&scenario, 0);
        let cpu = cpu_before.zip(thread_cpu()).map(|(a, b)| b - a);
        assert!(report.ok, "{:?}", report.violation);
        assert!(report.max_view >= 10_000, "only {} views", report.max_view);
        println!(
            "speed-n4 seed 0, run {attempt}: {} views, {:.1} simulated s in {:.3} wall s \
             ({cpu:?} on the CPU): {:.0} simulated s per wall s",
            report.max_view,
            report.sim_ms as f64 / 1e3,
            wall.as_secs_f64(),
            report.sim_ms as f64 / 1e3 / wall.as_secs_f64()
        );
        best = best.min(wall);
        best_cpu = best_cpu.min(cpu.unwrap_or(Duration::MAX));
        if best < N4_LIMIT {
            break;
        }
    }
    assert!(
        best < N4_LIMIT || best_cpu < N4_CPU_LIMIT,
        "10,000 views took {best:?} of wall time, {best_cpu:?} on the CPU"
    );

    let mut n100 = common::load("happy-n100-wan");
    n100.duration_ms = 6_000;
    n100.checks.drain_ms = 3_000;
    let cpu_before = thread_cpu();
    let (report, wall) = timed(&n100, 0);
    let cpu = cpu_before.zip(thread_cpu()).map(|(a, b)| b - a);
    assert!(report.ok, "{:?}", report.violation);
    let speed = report.sim_ms as f64 / 1e3 / wall.as_secs_f64();
    println!(
        "happy-n100-wan seed 0: {} views, {:.1} simulated s in {:.3} wall s \
         ({cpu:?} on the CPU): {speed:.1} simulated s per wall s",
        report.max_view,
        report.sim_ms as f64 / 1e3,
        wall.as_secs_f64()
    );
    // With the mempool in the loop a batch costs 3 (n - 1) messages, so
    // 100 nodes run at about one simulated second per CPU second (measured
    // 1.0 on this machine); the guard catches a several-fold slowdown.
    let per_cpu = report.sim_ms as f64 / 1e3 / cpu.unwrap_or(wall).as_secs_f64();
    assert!(
        per_cpu > 0.4,
        "n = 100: {per_cpu:.2} simulated s per CPU s (measured about 1.0)"
    );
}
