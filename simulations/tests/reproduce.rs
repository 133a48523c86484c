//! A failing seed's printed command reproduces it exactly: same violation,
//! same trace hash, even with options that differ from the file (a shorter
//! `--duration-ms`, `--ed25519`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clap::Parser;
use ordo_sim::cli::{run_replay, Cli};
use ordo_sim::scenario::Signatures;
use ordo_sim::{run_scenario, RunConfig, RunOptions, Scenario};

/// The shell words of the command, from `replay` on (notes after it
/// dropped), as `ordo-sim`'s arguments.
fn replay_args(reproduce: &str) -> Vec<String> {
    let command = reproduce.split("  (").next().unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    let start = words.iter().position(|w| *w == "replay").unwrap();
    assert_eq!(words[start - 1], "--", "{reproduce}");
    std::iter::once("ordo-sim")
        .chain(words[start..].iter().copied())
        .map(String::from)
        .collect()
}

fn replay(args: &[String]) -> ordo_sim::SeedReport {
    let cli = Cli::try_parse_from(args).unwrap();
    let mut out = Vec::new();
    run_replay(&cli.command, &mut out).unwrap()
}

/// Torn writes with the honest-equivocation check on fail on most seeds
/// (`torn-write-storm-n7` with the check switched on, in a scratch file).
/// Run at 12 s instead of the file's 40 s and with ed25519 instead of the
/// file's simulated signatures; the first failing seed of 0..8 replays
/// through the printed command to the same violation and trace hash, and
/// dropping either option from the command changes the trace.
#[test]
fn a_failing_seed_replays_exactly_from_its_printed_command() {
    let text = std::fs::read_to_string(common::scenario_path("torn-write-storm-n7"))
        .unwrap()
        .replace(
            "honest_equivocation_is_violation = false",
            "honest_equivocation_is_violation = true",
        );
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("torn-write-strict-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let mut scenario = Scenario::load(&path).unwrap();
    scenario.duration_ms = 12_000;
    let config = RunConfig {
        options: RunOptions {
            signatures: Some(Signatures::Ed25519),
            ..RunOptions::default()
        },
        ..RunConfig::seeds(0..8)
    };
    let summary = run_scenario(&scenario, &config).unwrap();
    let failed = summary
        .reports
        .iter()
        .find(|r| !r.ok)
        .unwrap_or_else(|| panic!("no failing seed\n{}", summary.table()));
    let reproduce = &failed.reproduce;
    assert!(
        reproduce.contains(&format!("--seed {}", failed.seed)),
        "{reproduce}"
    );
    assert!(reproduce.contains("--duration-ms 12000"), "{reproduce}");
    assert!(reproduce.contains("--ed25519"), "{reproduce}");

    let args = replay_args(reproduce);
    let again = replay(&args);
    assert_eq!(again.violation, failed.violation, "{reproduce}");
    assert!(again.violation.is_some());
    assert_eq!(again.trace_hash, failed.trace_hash, "{reproduce}");
    assert_eq!(again.events, failed.events);

    for dropped in ["--ed25519", "--duration-ms"] {
        let mut partial = args.clone();
        let k = partial.iter().position(|a| a == dropped).unwrap();
        let n = if dropped == "--ed25519" { 1 } else { 2 };
        partial.drain(k..k + n);
        let other = replay(&partial);
        assert_ne!(other.trace_hash, failed.trace_hash, "without {dropped}");
    }
    let _ = std::fs::remove_file(&path);
}

/// A path that is not one shell word is quoted.
#[test]
fn the_reproduce_command_quotes_the_path() {
    let mut scenario = common::load("happy-n4-wan");
    scenario.path = Some("my scenarios/it's.toml".into());
    let command = ordo_sim::reproduce_command(&scenario, 3, &RunOptions::default());
    assert_eq!(
        command,
        "cargo run --release -p ordo-sim -- replay 'my scenarios/it'\\''s.toml' --seed 3 \
         --duration-ms 30000 --trace"
    );
}
