//! Whole-protocol runs of real cores in the in-process harness (plain
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! queues, virtual time). Named by size and fault; each states its seed.

use ordo_consensus::testing::Cluster;
use ordo_consensus::Config;

/// Plain round-robin (what these tests were written for); the reputation
/// tests below use [`reputation`].
fn config() -> Config {
    Config {
        base_timeout_ms: 500,
        max_timeout_ms: 4_000,
        leader_reputation: false,
        ..Config::default()
    }
}

/// Feeds one distinct payload item per node every `every_ms` until `until_ms`.
fn run_with_load(cluster: &mut Cluster, until_ms: u64, every_ms: u64) {
    let mut t = cluster.now_ms();
    let mut k = 0u64;
    while t < until_ms {
        for node in 0..cluster.size() as u16 {
            k += 1;
            cluster.submit(node, vec![k.to_le_bytes().to_vec()]);
        }
        t += every_ms;
        cluster.run_until(t);
    }
}

fn assert_all_committed(cluster: &Cluster, height: u64) {
    cluster.check_agreement().unwrap();
    for node in 0..cluster.size() as u16 {
        assert!(
            cluster.committed(node).len() as u64 >= height,
            "node {node} committed only {}",
            cluster.committed(node).len()
        );
    }
}

#[test]
fn n4_happy_path_commits_1000_blocks_in_one_order() {
    let mut cluster = Cluster::new(4, config(), 10, 5, 1);
    assert!(cluster.run_until_height(1_000, 600_000));
    assert_all_committed(&cluster, 1_000);
    assert!(cluster.faults().is_empty(), "{:?}", &cluster.faults()[..1]);
    for node in 0..4 {
        assert_eq!(
            cluster.core(node).stats().timeouts,
            0,
            "node {node} timed out"
        );
    }
}

#[test]
fn n7_happy_path_commits_1000_blocks_in_one_order() {
    let mut cluster = Cluster::new(7, config(), 10, 5, 2);
    assert!(cluster.run_until_height(1_000, 600_000));
    assert_all_committed(&cluster, 1_000);
    assert!(cluster.faults().is_empty());
}

#[test]
fn n4_payload_is_committed_exactly_once() {
    let mut cluster = Cluster::new(4, config(), 10, 5, 3);
    run_with_load(&mut cluster, 5_000, 7);
    let until = cluster.now_ms() + 3_000;
    cluster.run_until(until);
    cluster.check_agreement().unwrap();
    let blocks = cluster.committed(0);
    let mut seen = std::collections::HashSet::new();
    for block in blocks {
        for item in &block.block.payload.items {
            assert!(seen.insert(item.clone()), "item committed twice");
        }
    }
    // Every item submitted (4 per 7 ms over 5 s) is committed.
    assert_eq!(seen.len() as u64, 4 * 5_000u64.div_ceil(7));
}

#[test]
fn n4_f1_leader_crash_others_commit_by_timeouts() {
    let mut cluster = Cluster::new(4, config(), 10, 5, 4);
    assert!(cluster.run_until_height(20, 60_000));
    cluster.crash(1);
    let before = cluster.committed(0).len() as u64;
    let until = cluster.now_ms() + 20_000;
    run_with_load(&mut cluster, until, 50);
    cluster.check_agreement().unwrap();
    for node in [0u16, 2, 3] {
        let got = cluster.committed(node).len() as u64;
        assert!(
            got >= before + 20,
            "node {node} committed {got}, before crash {before}"
        );
    }
    let tcs: u64 = [0u16, 2, 3]
        .iter()
        .map(|n| cluster.core(*n).stats().tcs_formed)
        .sum();
    assert!(tcs > 0, "views of the crashed leader must end by TCs");
}

#[test]
fn n7_f2_silent_leaders_others_commit() {
    let mut cluster = Cluster::new(7, config(), 10, 5, 5);
    cluster.mute(3);
    cluster.mute(5);
    run_with_load(&mut cluster, 60_000, 50);
    // Each silent node costs its own view and the view whose votes go to
    // it: 4 consecutive views of every 7 fail, after doubling timeouts.
    assert_all_committed(&cluster, 15);
}

#[test]
fn n4_crashed_node_restarts_and_catches_up() {
    let mut cluster = Cluster::new(4, config(), 10, 5, 6);
    run_with_load(&mut cluster, 3_000, 20);
    cluster.crash(2);
    run_with_load(&mut cluster, 6_000, 20);
    cluster.restart(2);
    run_with_load(&mut cluster, 12_000, 20);
    cluster.check_agreement().unwrap();
    let ahead = cluster.committed(0).len();
    let restarted = cluster.committed(2).len();
    assert!(
        restarted + 10 >= ahead,
        "restarted node at {restarted}, others at {ahead}"
    );
}

fn reputation() -> Config {
    Config {
        leader_reputation: true,
        ..config()
    }
}

/// Commits of the live nodes in `secs` seconds after `down` crash, and
/// the view timeouts they took.
fn after_crash(config: Config, n: usize, down: &[u16], secs: u64, seed: u64) -> (u64, u64) {
    let mut cluster = Cluster::new(n, config, 10, 5, seed);
    assert!(cluster.run_until_height(20, 60_000));
    for node in down {
        cluster.crash(*node);
    }
    let live: Vec<u16> = (0..n as u16).filter(|i| !down.contains(i)).collect();
    let before = cluster.committed(live[0]).len() as u64;
    let timeouts_before: u64 = live.iter().map(|i| cluster.core(*i).stats().timeouts).sum();
    let until = cluster.now_ms() + secs * 1_000;
    run_with_load(&mut cluster, until, 50);
    cluster.check_agreement().unwrap();
    let gained = live
        .iter()
        .map(|i| cluster.committed(*i).len() as u64 - before)
        .min()
        .unwrap();
    let timeouts: u64 = live.iter().map(|i| cluster.core(*i).stats().timeouts).sum();
    (gained, timeouts - timeouts_before)
}

/// Leader reputation: a crashed member is skipped as soon as it is missing
/// from a QC, so the others commit at full speed with no view timeouts
/// after the first; round-robin (same seed) keeps losing two views per
/// rotation to timeouts.
#[test]
fn n4_reputation_skips_a_crashed_member_round_robin_keeps_timing_out() {
    let (rep, rep_timeouts) = after_crash(reputation(), 4, &[1], 20, 4);
    let (rr, rr_timeouts) = after_crash(config(), 4, &[1], 20, 4);
    eprintln!(
        "n=4, member 1 crashed, 20 s: reputation +{rep} blocks ({rep_timeouts} timeouts), \
         round-robin +{rr} blocks ({rr_timeouts} timeouts)"
    );
    assert!(
        rep >= 10 * rr.max(1),
        "reputation +{rep} vs round-robin +{rr}"
    );
    assert!(
        rep_timeouts <= 3 * 2,
        "{rep_timeouts} timeouts with reputation"
    );
}

#[test]
fn n7_reputation_skips_two_crashed_members() {
    let (rep, rep_timeouts) = after_crash(reputation(), 7, &[3, 4], 20, 5);
    let (rr, rr_timeouts) = after_crash(config(), 7, &[3, 4], 20, 5);
    eprintln!(
        "n=7, members 3 and 4 crashed, 20 s: reputation +{rep} blocks ({rep_timeouts} timeouts), \
         round-robin +{rr} blocks ({rr_timeouts} timeouts)"
    );
    assert!(
        rep >= 10 * rr.max(1),
        "reputation +{rep} vs round-robin +{rr}"
    );
}

/// With everyone live, reputation commits like round-robin, and a member
/// that comes back after a crash leads again.
#[test]
fn n4_reputation_happy_path_and_a_restarted_member_leads_again() {
    let mut cluster = Cluster::new(4, reputation(), 10, 5, 7);
    assert!(cluster.run_until_height(500, 600_000));
    assert_all_committed(&cluster, 500);
    assert!(cluster.faults().is_empty(), "{:?}", &cluster.faults()[..1]);
    // A short outage: the harness has no bulk sync (the node has), a
    // restarted core fetches missed blocks one by one.
    cluster.crash(2);
    let until = cluster.now_ms() + 300;
    run_with_load(&mut cluster, until, 50);
    cluster.restart(2);
    let until = cluster.now_ms() + 10_000;
    run_with_load(&mut cluster, until, 50);
    cluster.check_agreement().unwrap();
    let proposals_before = cluster.core(2).stats().proposals;
    let votes_before = cluster.core(2).stats().votes;
    let until = cluster.now_ms() + 5_000;
    run_with_load(&mut cluster, until, 50);
    eprintln!(
        "restarted: votes {} -> {}, committed {} vs {}, view {} vs {}",
        votes_before,
        cluster.core(2).stats().votes,
        cluster.committed(2).len(),
        cluster.committed(0).len(),
        cluster.core(2).view(),
        cluster.core(0).view()
    );
    assert!(
        cluster.core(2).stats().proposals > proposals_before,
        "the restarted member never leads again"
    );
}
