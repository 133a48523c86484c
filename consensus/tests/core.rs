//! The core as a table of (input → expected actions).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::type_complexity)]

use ordo_consensus::messages::vote_message;
use ordo_consensus::testing::Fixture;
use ordo_consensus::{Action, Block, Config, Core, Event, Fault, Message, Recovery, Timer, Vote};
use ordo_types::{NodeIndex, Signature};

fn deliver(core: &mut Core, from: NodeIndex, message: Message) -> Vec<Action> {
    core.handle(1, Event::Message { from, message })
}

fn proposal(block: &Block) -> Message {
    Message::Proposal(Box::new(block.clone()))
}

fn faults(actions: &[Action]) -> Vec<Fault> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Misbehaviour { fault, .. } => Some(fault.clone()),
            _ => None,
        })
        .collect()
}

fn votes(actions: &[Action]) -> Vec<(NodeIndex, Vote)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                message: Message::Vote(v),
            } => Some((*to, v.clone())),
            _ => None,
        })
        .collect()
}

fn persists(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Persist(_)))
        .count()
}

#[test]
fn invalid_proposals_are_refused_and_reported() {
    let f = Fixture::new(4);
    let g = f.genesis();
    let gqc = f.genesis_qc();
    let b1 = f.block(1, 1, &g, &gqc, None, vec![]);
    let qc1 = f.qc(&b1);

    let wrong_leader = f.block(1, 2, &g, &gqc, None, vec![]);
    let mut bad_signature = b1.clone();
    bad_signature.signature = Signature([7; 64]);
    let mut forged_qc = qc1.clone();
    forged_qc.votes[1].1 = f.keys[3].sign(&vote_message(1, &b1.digest()));
    let short_qc = f.qc_by(&b1, &[0, 1]);
    let duplicate_qc = f.qc_by(&b1, &[0, 0, 1]);
    let with_qc = |qc| f.block(2, 2, &b1, &qc, None, vec![]);
    let stale = f.block(3, 3, &b1, &qc1, None, vec![]);
    let mut wrong_payload = f.block(1, 1, &g, &gqc, None, vec![b"x".to_vec()]);
    wrong_payload.payload.items.push(b"smuggled".to_vec());
    let too_many = f.block(1, 1, &g, &gqc, None, vec![vec![1]; 3]);

    // (name, sender, block, the fault expected)
    let table: Vec<(&str, NodeIndex, Block, fn(&Fault) -> bool)> = vec![
        ("wrong leader", 2, wrong_leader, |f| {
            matches!(f, Fault::WrongLeader { leader: 1, .. })
        }),
        ("relayed by a non-author", 2, b1.clone(), |f| {
            matches!(f, Fault::WrongSender { .. })
        }),
        ("bad proposal signature", 1, bad_signature, |f| {
            matches!(f, Fault::BadSignature("proposal"))
        }),
        ("forged QC signature", 2, with_qc(forged_qc), |f| {
            matches!(f, Fault::BadSignature("quorum certificate"))
        }),
        ("short QC", 2, with_qc(short_qc), |f| {
            matches!(f, Fault::MalformedQc(_))
        }),
        ("duplicate QC signer", 2, with_qc(duplicate_qc), |f| {
            matches!(f, Fault::MalformedQc(_))
        }),
        ("stale QC without a TC", 3, stale, |f| {
            matches!(f, Fault::UnsafeProposal(_))
        }),
        ("payload does not match its digest", 1, wrong_payload, |f| {
            matches!(f, Fault::MalformedBlock("payload digest mismatch"))
        }),
        ("too many payload items", 1, too_many, |f| {
            matches!(f, Fault::BadPayload(_))
        }),
    ];
    for (name, from, block, expected) in table {
        let config = Config {
            max_payload_items: 2,
            ..Config::default()
        };
        let mut core = f.core(0, config);
        core.start(0);
        let actions = deliver(&mut core, from, proposal(&block));
        let got = faults(&actions);
        assert_eq!(got.len(), 1, "{name}: {actions:?}");
        assert!(expected(&got[0]), "{name}: got {:?}", got[0]);
        assert!(votes(&actions).is_empty(), "{name}: must not vote");
        assert_eq!(
            persists(&actions),
            0,
            "{name}: must not change safety state"
        );
        assert_eq!(core.view(), 1, "{name}: must not move the view");
    }
}

#[test]
fn valid_proposal_persists_before_voting_to_the_next_leader() {
    let f = Fixture::new(4);
    let b1 = f.block(
        1,
        1,
        &f.genesis(),
        &f.genesis_qc(),
        None,
        vec![b"tx".to_vec()],
    );
    let mut core = f.core(3, Config::default());
    core.start(0);
    let actions = deliver(&mut core, 1, proposal(&b1));
    let persist_at = actions.iter().position(|a| matches!(a, Action::Persist(_)));
    let vote_at = actions.iter().position(|a| {
        matches!(
            a,
            Action::Send {
                message: Message::Vote(_),
                ..
            }
        )
    });
    assert!(persist_at.is_some() && vote_at.is_some(), "{actions:?}");
    assert!(
        persist_at < vote_at,
        "safety data must be durable before the vote leaves"
    );
    let v = votes(&actions);
    assert_eq!(v[0].0, 2, "votes go to the leader of the next view");
    assert_eq!(v[0].1.block, b1.digest());
}

#[test]
fn restart_from_persisted_safety_data_never_votes_twice_in_a_view() {
    let f = Fixture::new(4);
    let g = f.genesis();
    let b1 = f.block(1, 1, &g, &f.genesis_qc(), None, vec![b"a".to_vec()]);
    let b1_conflict = f.block(1, 1, &g, &f.genesis_qc(), None, vec![b"b".to_vec()]);

    let mut core = f.core(3, Config::default());
    core.start(0);
    let actions = deliver(&mut core, 1, proposal(&b1));
    let persisted = actions
        .iter()
        .find_map(|a| match a {
            Action::Persist(data) => Some(data.clone()),
            _ => None,
        })
        .expect("vote persisted");
    let first_vote = votes(&actions)[0].1.clone();
    drop(core);

    // Crash mid-view 1; restart from what was on disk.
    let recovery = Recovery {
        safety: persisted,
        ..Recovery::genesis(&f.committee)
    };
    let mut core = f.core_from(3, Config::default(), recovery);
    core.start(5);
    assert_eq!(core.view(), 1);

    // The equivocating leader's other block for view 1 gets no vote.
    let actions = deliver(&mut core, 1, proposal(&b1_conflict));
    assert!(
        votes(&actions).is_empty(),
        "voted twice in view 1: {actions:?}"
    );
    assert_eq!(persists(&actions), 0);

    // The same block again gets the stored vote: same signature, no new state.
    let mut core = f.core_from(
        3,
        Config::default(),
        Recovery {
            safety: core.safety_data().clone(),
            ..Recovery::genesis(&f.committee)
        },
    );
    core.start(6);
    let actions = deliver(&mut core, 1, proposal(&b1));
    assert_eq!(votes(&actions), vec![(2, first_vote)]);
    assert_eq!(
        persists(&actions),
        0,
        "a re-sent vote is never a new signature"
    );
}

#[test]
fn timeout_persists_then_broadcasts_and_blocks_voting_in_that_view() {
    let f = Fixture::new(4);
    let b1 = f.block(1, 1, &f.genesis(), &f.genesis_qc(), None, vec![]);
    let mut core = f.core(3, Config::default());
    let start = core.start(0);
    let at = start
        .iter()
        .find_map(|a| match a {
            Action::ScheduleTimer {
                timer: Timer::View(1),
                at_ms,
            } => Some(*at_ms),
            _ => None,
        })
        .expect("view timer armed");
    // Early timers are ignored.
    assert!(core
        .handle(at - 1, Event::TimerFired(Timer::View(1)))
        .is_empty());
    let actions = core.handle(at, Event::TimerFired(Timer::View(1)));
    let persist_at = actions.iter().position(|a| matches!(a, Action::Persist(_)));
    let timeout_at = actions.iter().position(|a| {
        matches!(
            a,
            Action::Broadcast {
                message: Message::Timeout(_)
            }
        )
    });
    assert!(
        persist_at.is_some() && persist_at < timeout_at,
        "{actions:?}"
    );
    assert_eq!(core.stats().timeouts, 1);
    // The proposal arriving late gets no vote.
    let actions = deliver(&mut core, 1, proposal(&b1));
    assert!(votes(&actions).is_empty());
}

#[test]
fn leader_forms_qc_from_votes_and_blames_a_forged_one() {
    let f = Fixture::new(4);
    // With payload in B1 the new leader proposes at once instead of idling.
    let b1 = f.block(
        1,
        1,
        &f.genesis(),
        &f.genesis_qc(),
        None,
        vec![b"tx".to_vec()],
    );
    // Node 2 leads view 2 and collects votes for view 1.
    let mut core = f.core(2, Config::default());
    core.start(0);
    deliver(&mut core, 1, proposal(&b1));
    // Node 2 voted for itself; add a good vote from 0 and a forged one from 3.
    let good = |i: NodeIndex| Vote {
        view: 1,
        block: b1.digest(),
        author: i,
        signature: f.keys[usize::from(i)].sign(&vote_message(1, &b1.digest())),
        inclusion: None,
    };
    let mut forged = good(3);
    forged.signature = f.keys[0].sign(&vote_message(1, &b1.digest()));
    deliver(&mut core, 0, Message::Vote(good(0)));
    let actions = deliver(&mut core, 3, Message::Vote(forged));
    assert!(
        matches!(faults(&actions)[..], [Fault::BadSignature("vote")]),
        "{actions:?}"
    );
    assert_eq!(core.view(), 1, "no QC from a forged vote");
    let actions = deliver(&mut core, 1, Message::Vote(good(1)));
    assert_eq!(core.view(), 2, "QC formed from three valid votes");
    let proposed = actions.iter().find_map(|a| match a {
        Action::Broadcast {
            message: Message::Proposal(b),
        } => Some(b.clone()),
        _ => None,
    });
    let b2 = proposed.expect("the new leader proposes");
    assert_eq!(b2.parent_qc.view, 1);
    assert_eq!(
        b2.parent_qc
            .votes
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn absurd_views_and_bad_signatures_change_nothing() {
    let f = Fixture::new(4);
    let mut core = f.core(0, Config::default());
    core.start(0);
    let far = Vote {
        view: u64::MAX - 1,
        block: f.genesis().digest(),
        author: 1,
        signature: Signature([1; 64]),
        inclusion: None,
    };
    assert!(deliver(&mut core, 1, Message::Vote(far)).is_empty());
    let mut bad_tc = f.tc(1_000, &[0], &f.genesis_qc());
    bad_tc.signers[0].2 = Signature([9; 64]);
    let actions = deliver(&mut core, 1, Message::Tc(Box::new(bad_tc)));
    assert_eq!(faults(&actions).len(), 1);
    assert_eq!(core.view(), 1, "a forged TC must not move the view");
    // A real TC does move it.
    let tc = f.tc(1_000, &[0], &f.genesis_qc());
    deliver(&mut core, 1, Message::Tc(Box::new(tc)));
    assert_eq!(core.view(), 1_001);
}

#[test]
fn idle_leader_waits_for_payload_or_heartbeat() {
    let f = Fixture::new(4);
    // Node 1 leads view 1.
    let mut core = f.core(1, Config::default());
    let actions = core.start(0);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::ScheduleTimer {
                timer: Timer::Propose(1),
                ..
            }
        )),
        "idle leader arms its heartbeat: {actions:?}"
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Broadcast { .. })));
    // Payload arrives: it proposes at once, with the payload.
    let actions = core.handle(3, Event::PayloadAvailable(vec![b"tx".to_vec()]));
    let block = actions
        .iter()
        .find_map(|a| match a {
            Action::Broadcast {
                message: Message::Proposal(b),
            } => Some(b.clone()),
            _ => None,
        })
        .expect("proposal");
    assert_eq!(block.payload.items, vec![b"tx".to_vec()]);
    // The proposal leaves first; its own vote is persisted before the vote
    // leaves (the leader's store is off the replicas' path).
    let persist_at = actions.iter().position(|a| matches!(a, Action::Persist(_)));
    let proposal_at = actions
        .iter()
        .position(|a| matches!(a, Action::Broadcast { .. }));
    let vote_at = actions.iter().position(|a| {
        matches!(
            a,
            Action::Send {
                message: Message::Vote(_),
                ..
            }
        )
    });
    assert!(
        proposal_at.is_some() && proposal_at < persist_at && persist_at < vote_at,
        "{actions:?}"
    );
    // The heartbeat for view 1 no longer proposes twice.
    let again = core.handle(500, Event::TimerFired(Timer::Propose(1)));
    assert!(!again.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            message: Message::Proposal(_)
        }
    )));
}

struct OnlyEvenLengths;

impl ordo_consensus::PayloadRules for OnlyEvenLengths {
    fn check(&self, payload: &ordo_consensus::Payload) -> Result<(), String> {
        match payload.items.iter().find(|i| i.len() % 2 == 1) {
            Some(_) => Err("odd item".into()),
            None => Ok(()),
        }
    }
}

#[test]
fn payload_rules_refuse_a_proposal_before_any_vote() {
    let f = Fixture::new(4);
    let good = f.block(
        1,
        1,
        &f.genesis(),
        &f.genesis_qc(),
        None,
        vec![b"ab".to_vec()],
    );
    let bad = f.block(
        1,
        1,
        &f.genesis(),
        &f.genesis_qc(),
        None,
        vec![b"abc".to_vec()],
    );
    let mut core = f
        .core(3, Config::default())
        .with_payload_rules(Box::new(OnlyEvenLengths));
    core.start(0);
    let actions = deliver(&mut core, 1, proposal(&bad));
    assert!(matches!(&faults(&actions)[..], [Fault::BadPayload(r)] if r == "odd item"));
    assert!(votes(&actions).is_empty());
    let actions = deliver(&mut core, 1, proposal(&good));
    assert_eq!(votes(&actions).len(), 1);
}

/// Regression (found by `ordo-sim`, scenario `crash-restart-storm-n7`,
/// seed 3): a node that timed out in views 1..=3 crashes; it restarts from
/// its persisted safety data and its committed prefix (genesis) — so in
/// view 1, where the safety rules refuse to time out again (view below the
/// last voted view). Peers are in view 4 and only help nodes that send them
/// something old. The restarted node must ask (it shows its high QC) and
/// the peer must answer with the certificate that ended those views; then
/// the restarted node times out in view 4 like everyone else.
#[test]
fn restarted_node_behind_its_last_voted_view_catches_up() {
    let f = Fixture::new(4);
    let gqc = f.genesis_qc();
    let tc3 = f.tc(3, &[0], &gqc);
    let mut peer = f.core(0, Config::default());
    peer.start(0);
    deliver(&mut peer, 1, Message::Tc(Box::new(tc3.clone())));
    assert_eq!(peer.view(), 4);

    // Node 3 signed timeouts up to view 3 before crashing.
    let mut before = f.core(3, Config::default());
    before.start(0);
    let mut persisted = None;
    for view in 1..=3 {
        if view > 1 {
            let tc = f.tc(view - 1, &[0], &gqc);
            let message = Message::Tc(Box::new(tc));
            before.handle(view * 100_000, Event::Message { from: 1, message });
        }
        let due = view * 100_000 + 60_000;
        for a in before.handle(due, Event::TimerFired(Timer::View(view))) {
            if let Action::Persist(data) = a {
                persisted = Some(data);
            }
        }
    }
    let mut safety = persisted.expect("timed out");
    assert_eq!(safety.last_voted_view, 3);
    // Without the TC of its last timeout (data written before
    // `SafetyData::highest_tc`; with it, the node resumes in view 3).
    assert_eq!(safety.highest_tc.as_ref().map(|tc| tc.view), Some(2));
    safety.highest_tc = None;

    let mut restarted = f.core_from(
        3,
        Config::default(),
        Recovery {
            safety,
            ..Recovery::genesis(&f.committee)
        },
    );
    restarted.start(2_000_000);
    assert_eq!(restarted.view(), 1);
    // Route messages between the two until quiet, firing the restarted
    // node's view timer once.
    let mut to_peer: Vec<Message> = Vec::new();
    for a in restarted.handle(3_000_000, Event::TimerFired(Timer::View(1))) {
        match a {
            Action::Broadcast { message } | Action::Send { to: 0, message } => {
                to_peer.push(message)
            }
            _ => {}
        }
    }
    let mut to_restarted = Vec::new();
    for m in to_peer {
        for a in deliver(&mut peer, 3, m) {
            if let Action::Send { to: 3, message } = a {
                to_restarted.push(message);
            }
        }
    }
    for m in to_restarted {
        deliver(&mut restarted, 0, m);
    }
    assert_eq!(restarted.view(), 4, "the restarted node learned TC 3");
    let actions = restarted.handle(9_000_000, Event::TimerFired(Timer::View(4)));
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Broadcast { message: Message::Timeout(t) } if t.view == 4
        )),
        "it times out in view 4 with the others: {actions:?}"
    );
}

fn sends_to(actions: &[Action], peer: NodeIndex) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, message } if *to == peer => Some(message),
            _ => None,
        })
        .collect()
}

/// A vote for a second block is evidence only once its signature (and the
/// first vote's) verified: a forged second vote is blamed as a bad
/// signature, never reported as a double vote.
#[test]
fn double_vote_is_reported_only_after_both_votes_verify() {
    let f = Fixture::new(4);
    let b1 = f.block(1, 1, &f.genesis(), &f.genesis_qc(), None, vec![]);
    let other = ordo_types::Digest::of(b"another block in view 1");
    let vote = |author: NodeIndex, block, signer: usize| Vote {
        view: 1,
        block,
        author,
        signature: f.keys[signer].sign(&vote_message(1, &block)),
        inclusion: None,
    };
    // (name, pending vote of member 0, its second vote, faults expected)
    let table: Vec<(&str, Vote, Vote, Vec<Fault>)> = vec![
        (
            "forged second vote",
            vote(0, b1.digest(), 0),
            vote(0, other, 3),
            vec![Fault::BadSignature("vote")],
        ),
        (
            "garbage second signature",
            vote(0, b1.digest(), 0),
            Vote {
                signature: Signature([5; 64]),
                ..vote(0, other, 0)
            },
            vec![Fault::BadSignature("vote")],
        ),
        (
            "forged pending vote, genuine second one",
            vote(0, b1.digest(), 3),
            vote(0, other, 0),
            vec![Fault::BadSignature("vote")],
        ),
        (
            "two genuine votes",
            vote(0, b1.digest(), 0),
            vote(0, other, 0),
            vec![Fault::DoubleVote(1)],
        ),
    ];
    for (name, first, second, expected) in table {
        // Node 2 leads view 2 and collects the votes of view 1.
        let mut core = f.core(2, Config::default());
        core.start(0);
        deliver(&mut core, 1, proposal(&b1));
        assert!(faults(&deliver(&mut core, 0, Message::Vote(first))).is_empty());
        let actions = deliver(&mut core, 0, Message::Vote(second.clone()));
        assert_eq!(faults(&actions), expected, "{name}");
        // Evidence is reported once; repeats are dropped unread.
        let again = faults(&deliver(&mut core, 0, Message::Vote(second)));
        if expected == [Fault::DoubleVote(1)] {
            assert!(again.is_empty(), "{name}: reported twice: {again:?}");
        }
        assert_eq!(core.view(), 1, "{name}: no QC");
    }
}

/// A peer that shows an old QC or times out in an old view is answered
/// with the certificates that ended those views, but only once what it
/// showed verified: forged input neither moves the node nor makes it send.
#[test]
fn lagging_peers_are_helped_only_on_verified_input() {
    let f = Fixture::new(4);
    let b1 = f.block(1, 1, &f.genesis(), &f.genesis_qc(), None, vec![]);
    let qc1 = f.qc(&b1);
    let tc = f.tc(10, &[0], &f.genesis_qc());
    let stale_timeout = |signature: Option<Signature>| {
        let mut t = ordo_consensus::Timeout {
            view: 2,
            high_qc: f.genesis_qc(),
            author: 1,
            signature: f.keys[1].sign(&ordo_consensus::messages::timeout_message(2, 0)),
            inclusion: None,
        };
        if let Some(s) = signature {
            t.signature = s;
        }
        Message::Timeout(Box::new(t))
    };
    let mut forged_qc = qc1.clone();
    forged_qc.votes[1].1 = Signature([3; 64]);
    let short_qc = f.qc_by(&b1, &[0, 1]);
    // (name, message from member 1, whether it is answered with the TC)
    let table: Vec<(&str, Message, bool)> = vec![
        ("forged old QC", Message::Qc(Box::new(forged_qc)), false),
        ("short old QC", Message::Qc(Box::new(short_qc)), false),
        (
            "old timeout with a bad signature",
            stale_timeout(Some(f.keys[2].sign(b"not a timeout"))),
            false,
        ),
        ("genuine old QC", Message::Qc(Box::new(qc1.clone())), true),
        ("genuine old timeout", stale_timeout(None), true),
    ];
    for (name, message, answered) in table {
        let mut core = f.core(0, Config::default());
        core.start(0);
        deliver(&mut core, 2, Message::Tc(Box::new(tc.clone())));
        assert_eq!(core.view(), 11);
        let actions = deliver(&mut core, 1, message);
        let sent = sends_to(&actions, 1);
        if answered {
            assert!(faults(&actions).is_empty(), "{name}: {actions:?}");
            assert!(
                sent.iter()
                    .any(|m| matches!(m, Message::Tc(t) if t.view == 10)),
                "{name}: the TC that ended view 10 is sent: {actions:?}"
            );
        } else {
            assert_eq!(faults(&actions).len(), 1, "{name}: {actions:?}");
            assert!(sent.is_empty(), "{name}: answered forged input: {sent:?}");
        }
        assert_eq!(core.view(), 11, "{name}");
    }
}

/// A node behind in views (restarted, or it missed the TC that ended a
/// view) that sees a verified timeout from a higher view asks that peer for
/// what it missed, at most once per spacing; the peer answers with the TC;
/// once there, the node joins the `f + 1` timeouts it already holds for
/// that view, so the TC forms without waiting for its own (doubled) timer.
#[test]
fn a_node_behind_asks_a_peer_ahead_and_joins_its_timeouts() {
    let f = Fixture::new(4);
    let timeout = |author: NodeIndex, view: u64| {
        Message::Timeout(Box::new(ordo_consensus::Timeout {
            view,
            high_qc: f.genesis_qc(),
            author,
            signature: f.keys[author as usize]
                .sign(&ordo_consensus::messages::timeout_message(view, 0)),
            inclusion: None,
        }))
    };
    // Node 0 left views 1..=10 by a TC for view 10; node 1 did not see it.
    let tc = f.tc(10, &[0], &f.genesis_qc());
    let mut ahead = f.core(0, Config::default());
    ahead.start(0);
    deliver(&mut ahead, 2, Message::Tc(Box::new(tc.clone())));
    assert_eq!(ahead.view(), 11);
    let mut behind = f.core(1, Config::default());
    behind.start(0);
    assert_eq!(behind.view(), 1);

    // Timeouts of view 11 from nodes 0 and 2: node 1 asks node 0 only.
    let asked = deliver(&mut behind, 0, timeout(0, 11));
    let to_0 = sends_to(&asked, 0);
    assert!(
        matches!(to_0.as_slice(), [Message::Qc(q)] if q.view == 0),
        "asks node 0 by showing its high QC: {asked:?}"
    );
    let again = deliver(&mut behind, 2, timeout(2, 11));
    assert!(sends_to(&again, 2).is_empty(), "asked once: {again:?}");
    assert!(faults(&asked).is_empty() && faults(&again).is_empty());
    assert_eq!(behind.view(), 1, "a timeout alone does not move it");

    // Node 0 answers with the TC; node 1 enters view 11 and joins.
    let Message::Qc(shown) = to_0[0] else {
        unreachable!()
    };
    let answer = deliver(&mut ahead, 1, Message::Qc(shown.clone()));
    let tcs: Vec<&Message> = sends_to(&answer, 1)
        .into_iter()
        .filter(|m| matches!(m, Message::Tc(t) if t.view == 10))
        .collect();
    assert_eq!(tcs.len(), 1, "node 0 answers with the TC: {answer:?}");
    let joined = deliver(&mut behind, 0, tcs[0].clone());
    let own_timeouts = joined
        .iter()
        .filter(|a| {
            matches!(a, Action::Broadcast { message: Message::Timeout(t) }
                if t.view == 11 && t.author == 1)
        })
        .count();
    assert_eq!(own_timeouts, 1, "joins view 11's timeouts: {joined:?}");
    // With its own, the three timeouts of view 11 form a TC: view 12.
    assert_eq!(behind.view(), 12);
}
