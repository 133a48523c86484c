//! The headline censorship result: with the inclusion rule on, every item of
//! the censored client commits within a few views whatever the leader
//! schedule; with it off and a Byzantine stable leader, the victim waits for
//! the censor's whole term (negative control). Full figures over 100 seeds:
//! `docs/censorship-resistance.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordo_sim::{run_scenario, RunConfig, Summary};

/// Bounds the rule must keep (measured maxima over 100 seeds are 9 views
/// and under 8 s; see the doc).
const MAX_VICTIM_VIEWS: f64 = 12.0;
const MAX_VICTIM_MS: f64 = 12_000.0;

fn run(name: &str, rule: bool) -> Summary {
    let mut scenario = common::load(name);
    scenario.checks.inclusion_rule = rule;
    let config = RunConfig {
        jobs: 2,
        ..RunConfig::seeds(0..16)
    };
    let summary = run_scenario(&scenario, &config).unwrap();
    assert!(summary.ok(), "{}", summary.table());
    summary
}

fn assert_bounded(name: &str) {
    let s = run(name, true);
    let k = s.victim_pooled_views.unwrap();
    let t = s.victim_pooled_ms.unwrap();
    assert!(k.count > 100, "{name}: too few victim items\n{}", s.table());
    assert_eq!(s.victims_uncommitted, 0, "{name}\n{}", s.table());
    assert!(
        k.max <= MAX_VICTIM_VIEWS,
        "{name}: K max {}\n{}",
        k.max,
        s.table()
    );
    assert!(
        t.max <= MAX_VICTIM_MS,
        "{name}: T max {}\n{}",
        t.max,
        s.table()
    );
}

#[test]
fn rule_on_bounds_censorship_stable_n4() {
    assert_bounded("censorship-stable-n4");
}

#[test]
fn rule_on_bounds_censorship_stable_n7() {
    assert_bounded("censorship-stable-n7");
}

#[test]
fn rule_on_bounds_censorship_round_robin_n4() {
    assert_bounded("censorship-rr-n4");
}

#[test]
fn rule_on_bounds_censorship_round_robin_n7() {
    assert_bounded("censorship-rr-n7");
}

/// Negative control: the same n = 7 stable-leader run with the rule off.
/// The censors (nodes 1 and 2) lead the first two 50-view terms and the
/// victim's items wait for both, far beyond the bound.
#[test]
fn rule_off_stable_censor_holds_victims_for_its_term() {
    let s = run("censorship-stable-n7", false);
    let k = s.victim_pooled_views.unwrap();
    assert!(
        k.max >= 50.0,
        "K max {} with the rule off\n{}",
        k.max,
        s.table()
    );
    let on = run("censorship-stable-n7", true);
    assert!(k.p99 > 2.0 * on.victim_pooled_views.unwrap().max);
}
