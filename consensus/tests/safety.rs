//! The safety rules, one table row per rule and per way to break it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::type_complexity)]

use ordo_consensus::messages::{timeout_message, vote_message};
use ordo_consensus::testing::Fixture;
use ordo_consensus::{Block, QuorumCert, Refusal, SafetyData, SafetyRules, Signed, TimeoutCert};

/// The chain every row draws from: genesis ← B1 ← B2, certified by QC1 and
/// QC2, plus blocks that break or use the TC rule.
struct Chain {
    f: Fixture,
    b1: Block,
    qc1: QuorumCert,
    b2: Block,
    b2_other: Block,
    qc2: QuorumCert,
    b3_stale: Block,
    b4_tc: Block,
    b4_tc_stale: Block,
    tc3: TimeoutCert,
}

fn chain() -> Chain {
    let f = Fixture::new(4);
    let g = f.genesis();
    let b1 = f.block(1, 1, &g, &f.genesis_qc(), None, vec![]);
    let qc1 = f.qc(&b1);
    let b2 = f.block(2, 2, &b1, &qc1, None, vec![b"a".to_vec()]);
    let b2_other = f.block(2, 2, &b1, &qc1, None, vec![b"b".to_vec()]);
    let qc2 = f.qc(&b2);
    // View 3 failed; its TC reports QC views 2 (highest) and 1.
    let tc3 = f.tc(3, &[2, 1], &qc2);
    let b3_stale = f.block(3, 3, &b1, &qc1, None, vec![]);
    let b4_tc = f.block(4, 0, &b2, &qc2, Some(tc3.clone()), vec![]);
    let b4_tc_stale = f.block(4, 0, &b1, &qc1, Some(tc3.clone()), vec![]);
    Chain {
        f,
        b1,
        qc1,
        b2,
        b2_other,
        qc2,
        b3_stale,
        b4_tc,
        b4_tc_stale,
        tc3,
    }
}

#[derive(Debug)]
enum Expect {
    Sign,
    Repeat,
    Refuse(Refusal),
}

fn rules(c: &Chain, data: SafetyData) -> SafetyRules {
    SafetyRules::new(3, c.f.keys[3].clone(), data)
}

fn voted(c: &Chain, block: &Block) -> SafetyData {
    let mut r = rules(c, SafetyData::default());
    match r.vote(block) {
        Ok(Signed::New { persist, .. }) => persist,
        other => panic!("setup vote failed: {other:?}"),
    }
}

#[test]
fn vote_rules() {
    let c = chain();
    let after_timeout_in_2 = SafetyData {
        last_voted_view: 2,
        highest_timeout_view: 2,
        ..SafetyData::default()
    };
    let table: Vec<(&str, SafetyData, &Block, Expect)> = vec![
        (
            "fresh vote for a block extending its QC directly",
            SafetyData::default(),
            &c.b1,
            Expect::Sign,
        ),
        (
            "double vote: another block in a view already voted",
            voted(&c, &c.b2),
            &c.b2_other,
            Expect::Refuse(Refusal::AlreadyVoted(2)),
        ),
        (
            "the same block again: the stored vote, re-sent",
            voted(&c, &c.b2),
            &c.b2,
            Expect::Repeat,
        ),
        (
            "view not above the last voted view",
            SafetyData {
                last_voted_view: 5,
                ..SafetyData::default()
            },
            &c.b2,
            Expect::Refuse(Refusal::NotAboveLastVoted {
                view: 2,
                last_voted: 5,
            }),
        ),
        (
            "stale QC without a TC",
            SafetyData::default(),
            &c.b3_stale,
            Expect::Refuse(Refusal::NotSafeToVote {
                view: 3,
                qc_view: 1,
            }),
        ),
        (
            "a TC for the previous view allows a gap",
            voted(&c, &c.b2),
            &c.b4_tc,
            Expect::Sign,
        ),
        (
            "QC below the highest QC reported in the TC",
            voted(&c, &c.b2),
            &c.b4_tc_stale,
            Expect::Refuse(Refusal::NotSafeToVote {
                view: 4,
                qc_view: 1,
            }),
        ),
        (
            "no vote in a view this node timed out in",
            after_timeout_in_2,
            &c.b2,
            Expect::Refuse(Refusal::NotAboveLastVoted {
                view: 2,
                last_voted: 2,
            }),
        ),
    ];
    for (name, data, block, expect) in table {
        let before = data.clone();
        let mut r = rules(&c, data);
        let got = r.vote(block);
        match (&expect, got) {
            (Expect::Sign, Ok(Signed::New { message, persist })) => {
                assert_eq!(message.view, block.view(), "{name}");
                assert_eq!(persist.last_voted_view, block.view(), "{name}");
                assert_eq!(persist.last_vote.as_ref(), Some(&message), "{name}");
                assert_eq!(
                    &persist,
                    r.data(),
                    "{name}: persisted data is the rules' state"
                );
                let msg = vote_message(message.view, &block.digest());
                c.f.committee.verify(3, &msg, &message.signature).unwrap();
            }
            (Expect::Repeat, Ok(Signed::Repeat(message))) => {
                assert_eq!(Some(&message), before.last_vote.as_ref(), "{name}");
                assert_eq!(r.data(), &before, "{name}: a repeat changes nothing");
            }
            (Expect::Refuse(want), Err(got)) => {
                assert_eq!(want, &got, "{name}");
                assert_eq!(r.data(), &before, "{name}: a refusal changes nothing");
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn timeout_rules() {
    let c = chain();
    let locked_at_2 = SafetyData {
        highest_qc_view: 2,
        ..SafetyData::default()
    };
    let mut timed_out_3 = rules(&c, SafetyData::default());
    let Ok(Signed::New {
        persist: after_timeout_3,
        ..
    }) = timed_out_3.timeout(3, &c.qc2, None)
    else {
        panic!("setup timeout failed");
    };
    // (name, state, view, high QC, high TC, expected)
    let table: Vec<(
        &str,
        SafetyData,
        u64,
        &QuorumCert,
        Option<&TimeoutCert>,
        Expect,
    )> = vec![
        (
            "the view right after the high QC",
            SafetyData::default(),
            3,
            &c.qc2,
            None,
            Expect::Sign,
        ),
        (
            "the view right after a TC",
            SafetyData::default(),
            4,
            &c.qc2,
            Some(&c.tc3),
            Expect::Sign,
        ),
        (
            "timeout below the lock",
            locked_at_2,
            2,
            &c.qc1,
            None,
            Expect::Refuse(Refusal::TimeoutBelowLock {
                qc_view: 1,
                lock: 2,
            }),
        ),
        (
            "timeout below the last voted view",
            SafetyData {
                last_voted_view: 5,
                ..SafetyData::default()
            },
            3,
            &c.qc2,
            None,
            Expect::Refuse(Refusal::TimeoutBelowLastVoted {
                view: 3,
                last_voted: 5,
            }),
        ),
        (
            "a view entered neither by QC nor TC",
            SafetyData::default(),
            5,
            &c.qc2,
            None,
            Expect::Refuse(Refusal::TimeoutNotJustified { view: 5 }),
        ),
        (
            "the same view again: the stored timeout",
            after_timeout_3,
            3,
            &c.qc2,
            None,
            Expect::Repeat,
        ),
    ];
    for (name, data, view, high_qc, high_tc, expect) in table {
        let before = data.clone();
        let mut r = rules(&c, data);
        let got = r.timeout(view, high_qc, high_tc);
        match (&expect, got) {
            (Expect::Sign, Ok(Signed::New { message, persist })) => {
                assert_eq!(message.view, view, "{name}");
                assert!(
                    persist.last_voted_view >= view,
                    "{name}: never vote in a timed-out view"
                );
                assert_eq!(persist.highest_timeout_view, view, "{name}");
                assert_eq!(&persist, r.data(), "{name}");
                let msg = timeout_message(view, high_qc.view);
                c.f.committee.verify(3, &msg, &message.signature).unwrap();
            }
            (Expect::Repeat, Ok(Signed::Repeat(message))) => {
                assert_eq!(Some(&message), before.last_timeout.as_ref(), "{name}");
            }
            (Expect::Refuse(want), Err(got)) => {
                assert_eq!(want, &got, "{name}");
                assert_eq!(r.data(), &before, "{name}");
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn observed_qc_raises_the_lock_only_upwards() {
    let c = chain();
    let mut r = rules(&c, SafetyData::default());
    assert_eq!(r.data().highest_qc, None);
    r.observe_qc(&c.qc1);
    assert_eq!(r.data().highest_qc_view, 1);
    assert_eq!(r.data().highest_qc.as_ref(), Some(&c.qc1));
    r.observe_qc(&c.qc2);
    r.observe_qc(&c.qc1);
    assert_eq!(r.data().highest_qc_view, 2);
    assert_eq!(
        r.data().highest_qc.as_ref(),
        Some(&c.qc2),
        "the lock's QC object follows its view"
    );
    assert_eq!(c.b1.view(), 1);
}

/// Signing keeps the lock's QC object with its view, in the data to
/// persist: a vote stores the block's QC, a timeout the QC it carries (and
/// the TC it follows).
#[test]
fn signatures_persist_the_lock_qc_object() {
    let c = chain();
    let after_vote = voted(&c, &c.b2);
    assert_eq!(after_vote.highest_qc_view, 1);
    assert_eq!(after_vote.highest_qc.as_ref(), Some(&c.qc1));
    let mut r = rules(&c, after_vote);
    let Ok(Signed::New { persist, .. }) = r.timeout(3, &c.qc2, None) else {
        panic!("timeout refused");
    };
    assert_eq!(persist.highest_qc_view, 2);
    assert_eq!(persist.highest_qc.as_ref(), Some(&c.qc2));
    assert_eq!(persist.highest_tc, None);
    // A timeout right after a TC keeps the TC, so that a restarted node can
    // resume in the view its stored timeout is for.
    let Ok(Signed::New { persist, .. }) = r.timeout(4, &c.qc2, Some(&c.tc3)) else {
        panic!("timeout after TC3 refused");
    };
    assert_eq!(persist.highest_tc.as_ref(), Some(&c.tc3));
    // Genesis (view 0) is the default lock and needs no object.
    assert_eq!(voted(&c, &c.b1).highest_qc, None);
}

/// The test-only switch used by the simulator's negative control: with it,
/// rule 1 is gone (a second block in a voted view gets a new vote) while
/// rule 2 still holds.
#[test]
fn test_only_break_vote_rule_skips_rule_one_only() {
    let c = chain();
    let mut r = rules(&c, voted(&c, &c.b2));
    r.test_only_break_vote_rule();
    assert!(matches!(r.vote(&c.b2_other), Ok(Signed::New { .. })));
    assert!(matches!(
        r.vote(&c.b3_stale),
        Err(Refusal::NotSafeToVote { .. })
    ));
}
