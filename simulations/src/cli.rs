//! The command line, shared by the `ordo-sim` binary and (later) `ordo sim`:
//! embed [`SimCommand`] as a clap subcommand and call [`execute`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::report::{SeedReport, Summary};
use crate::runner::{replay, run_scenario, RunConfig};
use crate::scenario::{parse_seeds, Scenario, Signatures};
use crate::sim::RunOptions;

#[derive(Debug, Parser)]
#[command(
    name = "ordo-sim",
    about = "Deterministic simulator of Ordo's consensus and mempool: seeded scenarios with WAN latency, partitions, crashes and Byzantine nodes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run a scenario over a range of seeds; prints a summary table.
    Run {
        /// Scenario TOML file (see simulations/scenarios/).
        scenario: PathBuf,
        /// Seeds `A..B` (end exclusive), `A..=B` or `A`; default: the
        /// scenario's `seeds`.
        #[arg(long)]
        seeds: Option<String>,
        /// Threads (each seed runs on one).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Write per-seed JSON and CSVs (and charts with --plot) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write SVG charts (latency over time, latency CDF); needs --out.
        #[arg(long)]
        plot: bool,
        /// Use real ed25519 signatures instead of the simulated scheme.
        #[arg(long)]
        ed25519: bool,
        /// Override the scenario's duration.
        #[arg(long)]
        duration_ms: Option<u64>,
    },
    /// Run one seed again; with --trace print every processed event.
    Replay {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        trace: bool,
        /// Use real ed25519 signatures instead of the simulated scheme.
        #[arg(long)]
        ed25519: bool,
        /// Override the scenario's duration.
        #[arg(long)]
        duration_ms: Option<u64>,
    },
}

/// Parses `args` (including the program name) and runs the command.
/// Returns whether every seed passed.
pub fn run<I, T>(args: I) -> Result<bool>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            print!("{e}");
            return Ok(true);
        }
        Err(e) => return Err(Error::Usage(e.to_string())),
    };
    execute(cli.command)
}

fn options(ed25519: bool) -> RunOptions {
    RunOptions {
        signatures: ed25519.then_some(Signatures::Ed25519),
        ..RunOptions::default()
    }
}

fn override_duration(scenario: &mut Scenario, duration_ms: Option<u64>) -> Result<()> {
    if let Some(d) = duration_ms {
        scenario.duration_ms = d;
        scenario
            .validate()
            .map_err(|e| Error::Usage(format!("--duration-ms: {e}")))?;
    }
    Ok(())
}

/// Runs a parsed command, printing to stdout (progress to stderr).
pub fn execute(command: SimCommand) -> Result<bool> {
    match command {
        SimCommand::Run {
            scenario,
            seeds,
            jobs,
            out,
            plot,
            ed25519,
            duration_ms,
        } => {
            let mut scenario = Scenario::load(&scenario)?;
            override_duration(&mut scenario, duration_ms)?;
            let seeds = parse_seeds(seeds.as_deref().unwrap_or(&scenario.seeds))
                .map_err(|e| Error::Usage(format!("--seeds: {e}")))?;
            if plot && out.is_none() {
                return Err(Error::Usage("--plot needs --out DIR".into()));
            }
            if jobs == 0 {
                return Err(Error::Usage("--jobs must be at least 1".into()));
            }
            let config = RunConfig {
                seeds,
                jobs,
                out_dir: out.clone(),
                plot,
                progress: true,
                options: options(ed25519),
            };
            let summary = run_scenario(&scenario, &config)?;
            print!("{}", summary.table());
            if let Some(dir) = out {
                println!("wrote results to {}", dir.display());
            }
            Ok(summary.ok())
        }
        command @ SimCommand::Replay { .. } => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            let report = run_replay(&command, &mut lock)?;
            Ok(report.ok)
        }
    }
}

/// Runs a `replay` command, printing its trace (with `--trace`), table and
/// trace hash to `out`, and returns the seed's report. Not a `replay`: a
/// usage error.
pub fn run_replay(command: &SimCommand, out: &mut dyn Write) -> Result<SeedReport> {
    let SimCommand::Replay {
        scenario,
        seed,
        trace,
        ed25519,
        duration_ms,
    } = command
    else {
        return Err(Error::Usage("not a replay command".into()));
    };
    let mut scenario = Scenario::load(scenario)?;
    override_duration(&mut scenario, *duration_ms)?;
    let report = replay(&scenario, *seed, *trace, &options(*ed25519), out);
    let summary = Summary::from_reports(&scenario.name, scenario.nodes, vec![report.clone()]);
    let _ = write!(out, "{}", summary.table());
    let _ = writeln!(out, "trace hash {}", report.trace_hash);
    Ok(report)
}
