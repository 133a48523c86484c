//! Running many seeds (optionally on several threads; each run stays on
//! one), writing results, and replaying one seed.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::plot;
use crate::report::{SeedReport, Summary};
use crate::scenario::{Scenario, Signatures};
use crate::sim::{RunOptions, Sim};

/// How to run a scenario's seeds.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seeds: Range<u64>,
    /// Threads; each seed runs on one.
    pub jobs: usize,
    /// Write per-seed JSON, CSVs and (with `plot`) SVG charts here.
    pub out_dir: Option<PathBuf>,
    pub plot: bool,
    /// Print a progress line on stderr.
    pub progress: bool,
    pub options: RunOptions,
}

impl RunConfig {
    pub fn seeds(seeds: Range<u64>) -> Self {
        RunConfig {
            seeds,
            jobs: 1,
            out_dir: None,
            plot: false,
            progress: false,
            options: RunOptions::default(),
        }
    }
}

/// The shell command that replays `seed` of `scenario` run with `options`:
/// every input of a run that the command line can set is in it (the file,
/// the seed, the duration, which may have been overridden, and the
/// signature scheme). What no command line can set (the test-only broken
/// vote rule, or simulated signatures over an ed25519 file) is noted after
/// the command.
pub fn reproduce_command(scenario: &Scenario, seed: u64, options: &RunOptions) -> String {
    let path = scenario
        .path
        .as_deref()
        .map_or_else(|| format!("<scenario {}>", scenario.name), shell_quote);
    let mut command = format!(
        "cargo run --release -p ordo-sim -- replay {path} --seed {seed} --duration-ms {}",
        scenario.duration_ms
    );
    let scheme = options.signatures.unwrap_or(scenario.signatures);
    if scheme == Signatures::Ed25519 && scenario.signatures != Signatures::Ed25519 {
        command.push_str(" --ed25519");
    }
    command.push_str(" --trace");
    if scheme == Signatures::Simulated && scenario.signatures != Signatures::Simulated {
        command.push_str("  (with simulated signatures: not settable from the command line)");
    }
    if options.test_only_break_vote_rule {
        command.push_str("  (with the test-only broken vote rule)");
    }
    command
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Runs one seed.
pub fn run_seed(scenario: &Scenario, seed: u64, options: &RunOptions) -> SeedReport {
    let mut report = Sim::new(scenario, seed, options.clone()).run();
    report.reproduce = reproduce_command(scenario, seed, options);
    report
}

/// Runs one seed, printing every processed event to `out` if `trace`.
pub fn replay(
    scenario: &Scenario,
    seed: u64,
    trace: bool,
    options: &RunOptions,
    out: &mut dyn Write,
) -> SeedReport {
    let sim = Sim::new(scenario, seed, options.clone());
    let mut report = if trace {
        sim.with_trace(out).run()
    } else {
        sim.run()
    };
    report.reproduce = reproduce_command(scenario, seed, options);
    report
}

/// Runs every seed of `config` and returns the summary (reports in seed
/// order); writes the output files if asked.
pub fn run_scenario(scenario: &Scenario, config: &RunConfig) -> Result<Summary> {
    let next = AtomicU64::new(config.seeds.start);
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let total = config.seeds.end - config.seeds.start;
    let reports = Mutex::new(Vec::with_capacity(total as usize));
    let jobs = config.jobs.clamp(1, 256);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= config.seeds.end {
                    break;
                }
                let report = run_seed(scenario, seed, &config.options);
                if !report.ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if config.progress {
                    eprint!(
                        "\r{}: {d}/{total} seeds, {} failed, last seed {seed}: {:.0} views/s simulated, {:.0}x real time   ",
                        scenario.name,
                        failed.load(Ordering::Relaxed),
                        report.views_per_s,
                        report.speed()
                    );
                }
                if let Ok(mut r) = reports.lock() {
                    r.push(report);
                }
            });
        }
    });
    if config.progress {
        eprintln!();
    }
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    let summary = Summary::from_reports(&scenario.name, scenario.nodes, reports);
    if let Some(dir) = &config.out_dir {
        write_outputs(&summary, dir, config.plot)?;
    }
    Ok(summary)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })
}

fn chart(path: &Path, svg: std::result::Result<String, String>) -> Result<String> {
    svg.map_err(|message| Error::Plot {
        path: path.display().to_string(),
        message,
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `summary.json`, `seed-S.json` per seed, `seeds.csv` (one row per seed),
/// `latency.csv` (one row per committed item) and, with `plot`,
/// `latency-over-time.svg` and `latency-cdf.svg`.
pub fn write_outputs(summary: &Summary, dir: &Path, plot: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    write(&dir.join("summary.json"), &json(summary))?;
    for r in &summary.reports {
        write(&dir.join(format!("seed-{}.json", r.seed)), &json(r))?;
    }
    write(&dir.join("seeds.csv"), &summary.csv())?;
    let mut latency = String::from("seed,commit_ms,latency_ms\n");
    for r in &summary.reports {
        for (at, l) in &r.samples {
            latency.push_str(&format!("{},{at:.3},{l:.3}\n", r.seed));
        }
    }
    write(&dir.join("latency.csv"), &latency)?;
    if plot {
        let samples: Vec<(f64, f64)> = summary
            .reports
            .iter()
            .flat_map(|r| r.samples.iter().copied())
            .collect();
        let title = format!(
            "{}: commit latency over time ({} seeds)",
            summary.scenario, summary.seeds
        );
        let path = dir.join("latency-over-time.svg");
        write(
            &path,
            &chart(&path, plot::latency_over_time(&title, &samples))?,
        )?;
        let latencies: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let title = format!(
            "{}: commit latency CDF ({} items)",
            summary.scenario,
            latencies.len()
        );
        let path = dir.join("latency-cdf.svg");
        write(&path, &chart(&path, plot::latency_cdf(&title, &latencies))?)?;
    }
    Ok(())
}
