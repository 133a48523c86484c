//! The checkers catch what they exist to catch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordo_sim::{run_scenario, run_seed, RunConfig, RunOptions, Scenario, ViolationKind};

/// n = 7, f = 2: node 0 equivocates (both proposals to everyone) and node
/// 1, the next leader, forms a QC for every block with a quorum of votes.
/// With the real rules an honest node votes once per view, so at most one
/// of the two blocks can reach 5 votes: safe.
const EQUIVOCATE_TO_ALL: &str = r#"
name = "equivocate-to-all-n7"
nodes = 7
duration_ms = 8_000
[consensus]
base_timeout_ms = 500
max_timeout_ms = 4_000
[network]
latency = { model = "uniform", min_ms = 10, max_ms = 40 }
[[byzantine]]
node = 0
behaviour = "equivocate"
to_all = true
[[byzantine]]
node = 1
behaviour = "equivocate"
to_all = true
[load]
rate_per_s = 50
[checks]
drain_ms = 3_000
honest_equivocation_is_violation = false
"#;

fn broken() -> RunOptions {
    RunOptions {
        test_only_break_vote_rule: true,
        ..RunOptions::default()
    }
}

#[test]
fn equivocation_to_all_is_safe_with_the_real_vote_rule() {
    let scenario = Scenario::parse(EQUIVOCATE_TO_ALL, "test").unwrap();
    let summary = run_scenario(&scenario, &RunConfig::seeds(0..8)).unwrap();
    assert!(summary.ok(), "{}", summary.table());
}

/// With `Config::test_only_break_vote_rule` (honest nodes may vote twice
/// in a view) the same scenario produces two QCs in one view, and the
/// checker stops the run on every CI seed.
#[test]
fn broken_vote_rule_is_caught_by_the_one_qc_per_view_check() {
    let scenario = Scenario::parse(EQUIVOCATE_TO_ALL, "test").unwrap();
    for seed in 0..8 {
        let report = run_seed(&scenario, seed, &broken());
        let violation = report
            .violation
            .unwrap_or_else(|| panic!("seed {seed}: broken vote rule not caught"));
        assert_eq!(violation.kind, ViolationKind::TwoQcsInView, "seed {seed}");
        assert!(report.reproduce.contains("--seed"), "{}", report.reproduce);
    }
}

/// With the default checks the broken rule is caught even earlier, at the
/// first honest double vote, and also in the shipped Twins scenario.
#[test]
fn broken_vote_rule_is_caught_as_honest_equivocation() {
    let text = EQUIVOCATE_TO_ALL.replace("honest_equivocation_is_violation = false", "");
    let scenario = Scenario::parse(&text, "test").unwrap();
    let report = run_seed(&scenario, 0, &broken());
    assert_eq!(
        report.violation.map(|v| v.kind),
        Some(ViolationKind::HonestEquivocation)
    );
    // The shipped Twins scenarios (round-robin leaders, so both twins lead
    // the same views) expose the broken rule as they are.
    for name in ["twins-n4", "twins-n7"] {
        let twins = common::load(name);
        assert!(!twins.consensus.leader_reputation);
        let caught = (0..8)
            .filter_map(|seed| run_seed(&twins, seed, &broken()).violation)
            .count();
        assert!(
            caught > 0,
            "{name} must expose the broken rule within 8 seeds"
        );
    }
}

/// The switch is runtime-only: a scenario (or node) config file cannot set
/// it.
#[test]
fn the_break_switch_cannot_be_set_from_a_file() {
    let text = EQUIVOCATE_TO_ALL.replace(
        "[consensus]\n",
        "[consensus]\ntest_only_break_vote_rule = true\n",
    );
    let err = Scenario::parse(&text, "test").unwrap_err().to_string();
    assert!(err.contains("test_only_break_vote_rule"), "{err}");
    let config: Result<ordo_consensus::Config, _> =
        toml::from_str("test_only_break_vote_rule = true");
    assert!(config.is_err());
}

/// Torn writes (a restart loses the last persisted safety data) make an
/// honest node vote twice in a view; the honest-equivocation check catches
/// it. With the check off, agreement and one-QC-per-view still hold: at
/// most f nodes are down (so torn) at once, and f equivocators are within
/// the fault model.
#[test]
fn torn_writes_are_caught_as_honest_equivocation_and_stay_within_f() {
    let scenario = common::load("torn-write-storm-n7");
    let mut strict = scenario.clone();
    strict.checks.honest_equivocation_is_violation = true;
    let caught = (0..8)
        .filter_map(|seed| run_seed(&strict, seed, &RunOptions::default()).violation)
        .filter(|v| v.kind == ViolationKind::HonestEquivocation)
        .count();
    assert!(
        caught >= 2,
        "torn writes caught in only {caught} of 8 seeds"
    );
    let summary = run_scenario(
        &scenario,
        &RunConfig {
            jobs: 2,
            ..RunConfig::seeds(0..16)
        },
    )
    .unwrap();
    assert!(summary.ok(), "{}", summary.table());
    let double_votes: u64 = summary.reports.iter().map(|r| r.honest_double_votes).sum();
    assert!(double_votes > 0);
}

/// The views-based liveness bound: with round-robin leaders node 2 of
/// `leader-crash-n4` is down for good, so some views fail and a commit
/// takes more than one view after them. A bound of 1 view is caught on
/// some seed; the scenario's default bound (20 views) holds on all (see
/// `tests/scenarios.rs`).
#[test]
fn a_tight_views_bound_is_caught_as_liveness() {
    let mut scenario = common::load("leader-crash-n4");
    scenario.consensus.leader_reputation = false;
    scenario.checks.liveness_bound_views = 1;
    let summary = run_scenario(&scenario, &RunConfig::seeds(0..4)).unwrap();
    let failure = summary.failures.first().expect("a 1-view bound must fail");
    let violation = failure.violation.as_ref().unwrap();
    assert_eq!(violation.kind, ViolationKind::Liveness, "{violation}");
    assert!(violation.message.contains("bound 1 views"), "{violation}");
}
