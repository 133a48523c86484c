//! Single-node tables: (event -> expected actions).

use std::collections::HashSet;

use ordo_types::{Digest, Signature};

use super::support::{batch, cert, config, nodes, tx};
use crate::{Action, BatchAck, Error, Event, Message, Timer};

fn from(peer: u16, message: Message) -> Event {
    Event::Message {
        from: peer,
        message,
    }
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::Persist(_) => "persist",
            Action::Send {
                message: Message::Ack(_),
                ..
            } => "send-ack",
            Action::Send {
                message: Message::BatchResponse(_),
                ..
            } => "send-batch",
            Action::Send { .. } => "send",
            Action::Broadcast(Message::Batch(_)) => "broadcast-batch",
            Action::Broadcast(Message::Cert(_)) => "broadcast-cert",
            Action::Broadcast(_) => "broadcast",
            Action::ScheduleTimer { .. } => "timer",
            Action::FetchBatch { .. } => "fetch",
            Action::ServeFromStore { .. } => "serve-from-store",
            Action::Deliver { .. } => "deliver",
            Action::Misbehaviour { .. } => "misbehaviour",
        })
        .collect()
}

#[test]
fn seal_by_size_persists_then_broadcasts() {
    let (_, _, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let big = "x".repeat(50);
    let actions = node.handle(0, Event::Transactions(vec![tx(1, &big), tx(2, &big)]));
    // Persist, broadcast, and arm the retransmit timer until it is certified.
    assert_eq!(kinds(&actions), ["persist", "broadcast-batch", "timer"]);
    let Action::Persist(sealed) = &actions[0] else {
        unreachable!()
    };
    assert_eq!((sealed.author, sealed.seq, sealed.txs.len()), (0, 0, 2));
    assert_eq!(node.next_seq(), 1);
}

#[test]
fn seal_by_delay_uses_the_timer() {
    let (_, _, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let actions = node.handle(1000, Event::Transactions(vec![tx(1, "a")]));
    assert_eq!(
        actions,
        vec![Action::ScheduleTimer {
            timer: Timer::SealBatch,
            at_ms: 1000 + config().batch_delay_ms,
        }]
    );
    assert!(node
        .handle(1005, Event::TimerFired(Timer::SealBatch))
        .is_empty());
    let actions = node.handle(1010, Event::TimerFired(Timer::SealBatch));
    assert_eq!(kinds(&actions), ["persist", "broadcast-batch", "timer"]);
}

/// Regression (B1, found by the crash-storm and partition tests): a batch
/// whose broadcast or acks were lost used to stay uncertified forever, and
/// after `max_inflight_batches` of them the intake stopped draining.
#[test]
fn lost_broadcast_is_retransmitted_to_silent_peers_until_certified() {
    let (_, keys, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let actions = node.handle(0, Event::Transactions(vec![tx(1, &"x".repeat(100))]));
    let Action::Persist(own) = &actions[0] else {
        unreachable!()
    };
    let own = own.clone();
    let digest = own.digest();
    let retransmit_at = actions
        .iter()
        .find_map(|a| match a {
            Action::ScheduleTimer {
                timer: Timer::Retransmit(d),
                at_ms,
            } if *d == digest => Some(*at_ms),
            _ => None,
        })
        .expect("retransmit timer armed");
    // The broadcast was lost. Peer 1 acknowledges a first retransmission.
    let actions = node.handle(retransmit_at, Event::TimerFired(Timer::Retransmit(digest)));
    let resent: Vec<u16> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                message: Message::Batch(b),
            } if *b == own => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![1, 2, 3]);
    let next_at = actions
        .iter()
        .find_map(|a| match a {
            Action::ScheduleTimer {
                timer: Timer::Retransmit(_),
                at_ms,
            } => Some(*at_ms),
            _ => None,
        })
        .expect("re-armed");
    assert!(
        next_at - retransmit_at > config().retransmit_ms,
        "backs off"
    );
    let header = own.header();
    node.handle(
        next_at,
        from(1, Message::Ack(BatchAck::sign(&header, 1, &keys[1]))),
    );
    // Only the silent peers get it again.
    let actions = node.handle(next_at, Event::TimerFired(Timer::Retransmit(digest)));
    let resent: Vec<u16> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message: Message::Batch(_),
                to,
            } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![2, 3]);
    // Certified: retransmission stops, and the node takes transactions.
    node.handle(
        next_at,
        from(2, Message::Ack(BatchAck::sign(&header, 2, &keys[2]))),
    );
    assert!(node
        .handle(
            next_at + 60_000,
            Event::TimerFired(Timer::Retransmit(digest))
        )
        .is_empty());
    assert_eq!(node.pending().len(), 1);
}

#[test]
fn peer_batch_is_persisted_before_the_ack() {
    let (committee, _, mut nodes) = nodes(4);
    let b = batch(1, 0, &["a", "b"]);
    let actions = nodes[2].handle(0, from(1, Message::Batch(b.clone())));
    assert_eq!(kinds(&actions), ["persist", "send-ack"]);
    assert_eq!(actions[0], Action::Persist(b.clone()));
    let Action::Send {
        to: 1,
        message: Message::Ack(ack),
    } = &actions[1]
    else {
        panic!("ack goes to the author: {actions:?}")
    };
    assert_eq!(ack.signer, 2);
    assert_eq!(ack.verify(&b.header(), &committee), Ok(()));
    // A retransmission is acked again but not stored twice.
    let again = nodes[2].handle(1, from(1, Message::Batch(b)));
    assert_eq!(kinds(&again), ["send-ack"]);
}

#[test]
fn acks_form_a_certificate_at_quorum() {
    let (committee, keys, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let big = "x".repeat(100);
    let actions = node.handle(0, Event::Transactions(vec![tx(1, &big)]));
    let Action::Persist(own) = &actions[0] else {
        unreachable!()
    };
    let header = own.header();
    let ack = |i: u16| {
        from(
            i,
            Message::Ack(BatchAck::sign(&header, i, &keys[usize::from(i)])),
        )
    };

    // (event, expected action kinds): own ack counted already, quorum = 3.
    let table = vec![
        (ack(1), vec![]),
        (ack(1), vec![]), // duplicate: ignored
        (ack(2), vec!["broadcast-cert"]),
        (ack(3), vec![]), // late: harmless
    ];
    for (i, (event, expected)) in table.into_iter().enumerate() {
        let actions = node.handle(1, event);
        assert_eq!(kinds(&actions), expected, "row {i}");
        if let [Action::Broadcast(Message::Cert(cert))] = actions.as_slice() {
            assert_eq!(cert.verify(&committee), Ok(()));
            assert_eq!(cert.signers().collect::<Vec<_>>(), vec![0, 1, 2]);
        }
    }
    assert_eq!(node.pending().len(), 1);
    assert!(node.accepts_transactions());
}

#[test]
fn invalid_peer_input_is_reported_never_applied() {
    let (_, keys, _) = nodes(4);
    let good = batch(1, 0, &["a"]);
    let header = good.header();
    let too_big = batch(1, 0, &[&"x".repeat(60), &"y".repeat(50)]);
    let mut dup_cert = cert(&keys, &good, &[0, 1, 2]);
    dup_cert.signatures[2] = dup_cert.signatures[1];
    let mut bad_sig_cert = cert(&keys, &good, &[0, 1, 2]);
    bad_sig_cert.signatures[0].1 = keys[0].sign(b"other");

    // (sender, message, expected reason) at node 0, whose own batch 0 is
    // in flight (for the ack rows).
    let table: Vec<(u16, Message, Error)> = vec![
        (
            2,
            Message::Batch(good.clone()),
            Error::WrongSender {
                claimed: 1,
                sender: 2,
            },
        ),
        (
            1,
            Message::Batch(too_big),
            Error::TxTooLarge { size: 60, max: 50 },
        ),
        (1, Message::Batch(batch(1, 0, &[])), Error::EmptyBatch),
        (
            3,
            Message::Ack(BatchAck::sign(&header, 2, &keys[2])),
            Error::WrongSender {
                claimed: 2,
                sender: 3,
            },
        ),
        (
            1,
            Message::Cert(cert(&keys, &good, &[0, 1])),
            Error::TooFewSigners { got: 2, needed: 3 },
        ),
        (1, Message::Cert(dup_cert), Error::UnsortedSigners(1)),
        (1, Message::Cert(bad_sig_cert), Error::BadSignatures),
        (
            1,
            Message::Cert(cert(&keys, &good, &[0, 1, 7])),
            Error::NotAMember(7),
        ),
        (9, Message::Batch(good.clone()), Error::NotAMember(9)),
    ];
    for (sender, message, reason) in table {
        let (_, _, mut nodes) = nodes(4);
        let row = format!("{message:?}");
        let actions = nodes[0].handle(0, from(sender, message));
        assert_eq!(
            actions,
            vec![Action::Misbehaviour {
                peer: sender,
                reason
            }],
            "{row}"
        );
        assert!(nodes[0].pending().is_empty());
    }
}

#[test]
fn bad_ack_signature_is_reported() {
    let (_, _, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let actions = node.handle(0, Event::Transactions(vec![tx(1, &"x".repeat(100))]));
    let Action::Persist(own) = &actions[0] else {
        unreachable!()
    };
    let mut ack = BatchAck::sign(&own.header(), 2, &nodes_key(2));
    ack.signature = Signature::ZERO;
    let actions = node.handle(1, from(2, Message::Ack(ack)));
    assert_eq!(
        actions,
        vec![Action::Misbehaviour {
            peer: 2,
            reason: Error::BadSignature(2)
        }]
    );
}

fn nodes_key(i: usize) -> ordo_types::Keypair {
    nodes(4).1[i].clone()
}

#[test]
fn equivocating_author_is_reported() {
    let (_, _, mut nodes) = nodes(4);
    nodes[0].handle(0, from(1, Message::Batch(batch(1, 5, &["a"]))));
    let actions = nodes[0].handle(1, from(1, Message::Batch(batch(1, 5, &["b"]))));
    assert_eq!(
        actions,
        vec![Action::Misbehaviour {
            peer: 1,
            reason: Error::Equivocation { author: 1, seq: 5 }
        }]
    );
}

#[test]
fn missing_batch_is_fetched_retrying_the_next_signer() {
    let (_, keys, mut nodes) = nodes(4);
    let node = &mut nodes[3];
    let b = batch(0, 0, &["a", "b"]);
    let c = cert(&keys, &b, &[0, 1, 2]);
    let retry = config().fetch_retry_ms;
    let fetch = |from: u16, at_ms: u64| {
        vec![
            Action::FetchBatch {
                digest: c.batch,
                from,
            },
            Action::ScheduleTimer {
                timer: Timer::Fetch(c.batch),
                at_ms,
            },
        ]
    };
    let timer = Event::TimerFired(Timer::Fetch(c.batch));

    let committed = Event::Committed {
        height: 1,
        certs: vec![c.clone()],
    };
    assert_eq!(node.handle(100, committed), fetch(0, 100 + retry));
    assert!(node.handle(150, timer.clone()).is_empty(), "not yet due");
    assert_eq!(node.handle(200, timer.clone()), fetch(1, 200 + retry));
    // Signer 1 answers with another batch: reported, still missing.
    let wrong = batch(1, 0, &["z"]);
    assert_eq!(
        node.handle(210, from(1, Message::BatchResponse(wrong.clone()))),
        vec![Action::Misbehaviour {
            peer: 1,
            reason: Error::DigestMismatch {
                expected: c.batch,
                got: wrong.digest(),
            }
        }]
    );
    assert_eq!(node.handle(300, timer.clone()), fetch(2, 300 + retry));
    assert_eq!(
        node.handle(400, timer.clone()),
        fetch(0, 400 + retry),
        "cycles"
    );
    // The right batch from anyone: persisted, then the block is delivered.
    assert_eq!(
        node.handle(410, from(2, Message::BatchResponse(b.clone()))),
        vec![
            Action::Persist(b.clone()),
            Action::Deliver {
                height: 1,
                batches: vec![b],
            }
        ]
    );
    assert!(node.handle(500, timer).is_empty(), "resolved");
    assert_eq!(node.missing_batches(), 0);
}

#[test]
fn blocks_are_delivered_in_commit_order() {
    let (_, keys, mut nodes) = nodes(4);
    let node = &mut nodes[3];
    let missing = batch(0, 0, &["a"]);
    let held = batch(1, 0, &["b"]);
    node.handle(0, from(1, Message::Batch(held.clone())));
    let first = Event::Committed {
        height: 1,
        certs: vec![cert(&keys, &missing, &[0, 1, 2])],
    };
    assert_eq!(kinds(&node.handle(1, first)), ["fetch", "timer"]);
    let second = Event::Committed {
        height: 2,
        certs: vec![cert(&keys, &held, &[0, 1, 3])],
    };
    assert!(node.handle(2, second).is_empty(), "waits for height 1");
    let actions = node.handle(3, from(0, Message::BatchResponse(missing.clone())));
    assert_eq!(
        actions,
        vec![
            Action::Persist(missing.clone()),
            Action::Deliver {
                height: 1,
                batches: vec![missing]
            },
            Action::Deliver {
                height: 2,
                batches: vec![held]
            },
        ]
    );
}

#[test]
fn committed_certificates_leave_the_queue_and_stay_out() {
    let (_, keys, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let b1 = batch(1, 0, &["a"]);
    let b2 = batch(2, 0, &["b"]);
    let c1 = cert(&keys, &b1, &[1, 2, 3]);
    let c2 = cert(&keys, &b2, &[1, 2, 3]);
    node.handle(0, from(1, Message::Cert(c1.clone())));
    node.handle(0, from(2, Message::Cert(c2.clone())));
    assert_eq!(
        node.payload(10, &HashSet::new()),
        vec![c1.clone(), c2.clone()]
    );
    let exclude: HashSet<Digest> = [c1.batch].into();
    assert_eq!(node.payload(10, &exclude), vec![c2.clone()]);

    node.handle(
        1,
        Event::Committed {
            height: 1,
            certs: vec![c1.clone()],
        },
    );
    node.handle(2, from(3, Message::Cert(c1)));
    assert_eq!(node.payload(10, &HashSet::new()), vec![c2]);
}

#[test]
fn inclusion_list_names_old_certificates() {
    let (committee, keys, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let b1 = batch(1, 0, &["a"]);
    let c1 = cert(&keys, &b1, &[1, 2, 3]);
    node.handle(1000, from(1, Message::Cert(c1.clone())));
    assert!(node.due_for_inclusion(1400).is_empty());
    assert_eq!(node.due_for_inclusion(1500), vec![c1.batch]);
    let list = node.inclusion_list(1500, 7);
    assert_eq!((list.author, list.view), (0, 7));
    assert_eq!(list.verify(&committee, 64), Ok(()));
}

#[test]
fn batch_requests_are_served_from_memory_or_store() {
    let (_, _, mut nodes) = nodes(4);
    let node = &mut nodes[0];
    let b = batch(1, 0, &["a"]);
    node.handle(0, from(1, Message::Batch(b.clone())));
    let asked = node.handle(1, from(2, Message::BatchRequest { digest: b.digest() }));
    assert_eq!(
        asked,
        vec![Action::Send {
            to: 2,
            message: Message::BatchResponse(b)
        }]
    );
    let unknown = Digest::of(b"unknown");
    assert_eq!(
        node.handle(1, from(2, Message::BatchRequest { digest: unknown })),
        vec![Action::ServeFromStore {
            digest: unknown,
            to: 2
        }]
    );
}

#[test]
fn same_events_same_actions() {
    let run = || {
        let (_, keys, mut nodes) = nodes(4);
        let node = &mut nodes[1];
        let b = batch(0, 0, &["a"]);
        let events = vec![
            Event::Transactions((0..30).map(|i| tx(i % 3, &format!("tx{i}"))).collect()),
            Event::Message {
                from: 0,
                message: Message::Batch(b.clone()),
            },
            Event::TimerFired(Timer::SealBatch),
            Event::Committed {
                height: 1,
                certs: vec![cert(&keys, &b, &[0, 2, 3])],
            },
        ];
        events
            .into_iter()
            .enumerate()
            .flat_map(|(t, e)| node.handle(t as u64 * 10, e))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn n1_certifies_alone() {
    let (committee, _, mut nodes) = nodes(1);
    let actions = nodes[0].handle(0, Event::Transactions(vec![tx(1, &"x".repeat(100))]));
    assert_eq!(
        kinds(&actions),
        ["persist", "broadcast-batch", "broadcast-cert"]
    );
    let cert = nodes[0].payload(1, &HashSet::new());
    assert_eq!(cert.len(), 1);
    assert_eq!(cert[0].verify(&committee), Ok(()));
}

/// Certified own batches that consensus has not committed yet pause
/// dissemination at `max_uncommitted_batches`. Batches sealed meanwhile are
/// stored (so what the intake answered 202 for is durable) but held back,
/// up to `max_inflight_batches`; then the intake stops. A commit sends the
/// held ones, oldest first, without storing them again.
#[test]
fn uncommitted_own_batches_pause_dissemination_and_hold_stored_batches() {
    let (committee, keys) = ordo_types::Committee::for_testing(1);
    let config = crate::Config {
        max_uncommitted_batches: 2,
        max_inflight_batches: 2,
        ..config()
    };
    let mut node = crate::Mempool::new(0, keys[0].clone(), committee, config, 0).unwrap();
    for i in 0..2 {
        assert!(node.disseminates(), "batch {i}");
        node.handle(0, Event::Transactions(vec![tx(1, &"x".repeat(100))]));
    }
    assert_eq!(node.pending().len(), 2);
    assert!(!node.disseminates());
    let mut held = Vec::new();
    for i in 0..2 {
        assert!(node.accepts_transactions(), "held batch {i}");
        let actions = node.handle(1, Event::Transactions(vec![tx(1, &"y".repeat(100 + i))]));
        assert_eq!(kinds(&actions), ["persist"], "held batch {i}");
        if let [Action::Persist(batch)] = actions.as_slice() {
            held.push(batch.digest());
        }
    }
    assert_eq!(node.held(), 2);
    assert!(!node.accepts_transactions());
    let both = node.payload(2, &HashSet::new());
    let actions = node.handle(
        2,
        Event::Committed {
            height: 1,
            certs: both,
        },
    );
    // Room for two again: both held batches go, in order (after the
    // committed block's delivery), certified at once in a committee of one.
    assert_eq!(
        kinds(&actions),
        [
            "deliver",
            "broadcast-batch",
            "broadcast-cert",
            "broadcast-batch",
            "broadcast-cert"
        ]
    );
    let sent: Vec<Digest> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Batch(b)) => Some(b.digest()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, held);
    assert_eq!(node.held(), 0);
    assert!(!node.disseminates());
    assert!(node.accepts_transactions());
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever bytes a peer sends, decoding and handling never panic.
        #[test]
        fn garbage_from_peers_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            sender in 0u16..6,
        ) {
            let (_, _, mut nodes) = nodes(4);
            if let Ok(message) = ordo_types::codec::decode::<Message>(&bytes) {
                let _ = nodes[0].handle(0, from(sender, message));
            }
        }

        /// Structured but arbitrary batches and certificates never panic
        /// and never enter the queue unless valid.
        #[test]
        fn arbitrary_batches_and_certs_never_panic(
            author in 0u16..6,
            seq in any::<u64>(),
            payloads in proptest::collection::vec("[a-z]{0,80}", 0..4),
            signers in proptest::collection::vec(0u16..6, 0..5),
        ) {
            let (_, keys, mut nodes) = nodes(4);
            let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
            let b = batch(author, seq, &refs);
            let _ = nodes[0].handle(0, from(author, Message::Batch(b.clone())));
            let _ = nodes[0].handle(0, from(1, Message::Cert(cert(&keys, &b, &signers))));
            for c in nodes[0].pending().iter() {
                prop_assert!(c.verify(nodes[0].committee()).is_ok());
            }
        }
    }
}

/// The author restarts (a fresh core) after storing its batch: resuming
/// disseminates it again without a second persist, peers ack it again, and
/// it is certified.
#[test]
fn restarted_author_recertifies_its_stored_undelivered_batch() {
    let (committee, keys, mut nodes) = nodes(4);
    let own = batch(0, 7, &["a", "b"]);
    let digest = own.digest();
    // Peers 1 and 2 stored it (and acked) before the crash.
    for peer in [1, 2] {
        let actions = nodes[peer].handle(0, from(0, Message::Batch(own.clone())));
        assert_eq!(kinds(&actions), ["persist", "send-ack"]);
    }
    let mut restarted = crate::Mempool::new(0, keys[0].clone(), committee, config(), 8).unwrap();
    let actions = restarted.resume_own(100, vec![own.clone()]);
    assert_eq!(kinds(&actions), ["send", "send", "send", "timer"]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Persist(_))));
    // A retransmission to a peer that stored it already: ack again, no persist.
    for peer in [1, 2] {
        let actions = nodes[peer].handle(200, from(0, Message::Batch(own.clone())));
        assert_eq!(kinds(&actions), ["send-ack"]);
        let Action::Send {
            message: Message::Ack(ack),
            ..
        } = &actions[0]
        else {
            unreachable!()
        };
        restarted.handle(200, from(peer as u16, Message::Ack(ack.clone())));
    }
    assert!(restarted.pending().contains(&digest), "certified again");
    // Resuming twice, or a batch of another author, does nothing.
    assert!(restarted.resume_own(300, vec![own]).is_empty());
    assert!(restarted
        .resume_own(300, vec![batch(1, 0, &["c"])])
        .is_empty());
}

/// After a restart, resumed batches that peers do not answer for (they
/// committed them already) do not hold up new transactions: the in-flight
/// limit counts only batches sealed since the restart, and a resumed batch
/// leaves the count when it is certified.
#[test]
fn resumed_batches_do_not_pause_the_intake() {
    let (committee, keys, _) = nodes(4);
    let config = crate::Config {
        max_inflight_batches: 2,
        ..config()
    };
    let mut restarted = crate::Mempool::new(0, keys[0].clone(), committee, config, 10).unwrap();
    let resumed: Vec<_> = (0..5)
        .map(|seq| batch(0, seq, &[&format!("old{seq}")]))
        .collect();
    restarted.resume_own(0, resumed.clone());
    assert_eq!(restarted.own_in_flight(), 5);
    assert!(
        restarted.disseminates(),
        "resumed batches are not in flight"
    );
    // New batches still count: two in flight pause sending.
    for i in 0..2 {
        assert!(restarted.disseminates(), "new batch {i}");
        restarted.handle(1, Event::Transactions(vec![tx(1, &"n".repeat(100 + i))]));
        restarted.handle(30, Event::TimerFired(Timer::SealBatch));
    }
    assert_eq!(restarted.own_in_flight(), 7);
    assert!(!restarted.disseminates());
    // A resumed batch certified (its old certificate handed back) leaves
    // the count without resuming sending; the limit is on new batches.
    let old = cert(&keys, &resumed[0], &[0, 1, 2]);
    restarted.handle(40, from(1, Message::Cert(old)));
    assert_eq!(restarted.own_in_flight(), 6);
    assert!(!restarted.disseminates());
}

/// A committed batch still being fetched is taken from a plain re-send.
#[test]
fn committed_batch_being_fetched_is_taken_from_a_resend() {
    let (_, keys, mut nodes) = nodes(4);
    let own = batch(0, 1, &["z"]);
    let committed = cert(&keys, &own, &[0, 1, 2]);
    let actions = nodes[3].handle(
        0,
        Event::Committed {
            height: 1,
            certs: vec![committed],
        },
    );
    assert!(kinds(&actions).contains(&"fetch"));
    // What the node's stall warning reports: the height, the batch and
    // the signer being asked.
    let wait = nodes[3].delivery_wait().expect("waiting");
    assert_eq!(wait.height, 1);
    assert_eq!(wait.missing, vec![(own.digest(), Some(0))]);
    let actions = nodes[3].handle(10, from(0, Message::Batch(own)));
    assert!(
        kinds(&actions).contains(&"deliver"),
        "{:?}",
        kinds(&actions)
    );
    assert_eq!(nodes[3].delivery_wait(), None);
}

/// A peer that holds the certificate answers a re-sent batch with it, and
/// the author takes it instead of collecting acks for a second one.
#[test]
fn peer_holding_the_certificate_hands_it_back_to_a_restarted_author() {
    let (committee, keys, mut nodes) = nodes(4);
    let own = batch(0, 3, &["x"]);
    let digest = own.digest();
    let old = cert(&keys, &own, &[0, 1, 2]);
    nodes[1].handle(0, from(0, Message::Cert(old.clone())));
    let actions = nodes[1].handle(10, from(0, Message::Batch(own.clone())));
    assert_eq!(
        actions,
        vec![Action::Send {
            to: 0,
            message: Message::Cert(old.clone()),
        }]
    );
    let mut restarted = crate::Mempool::new(0, keys[0].clone(), committee, config(), 4).unwrap();
    restarted.resume_own(20, vec![own]);
    assert!(!restarted.pending().contains(&digest));
    restarted.handle(30, from(1, Message::Cert(old)));
    assert!(restarted.pending().contains(&digest));
    // No more retransmissions: the batch is certified.
    let actions = restarted.handle(10_000, Event::TimerFired(Timer::Retransmit(digest)));
    assert!(actions.is_empty());
}

/// Once a batch is known committed, a re-sent copy gets no ack (a second
/// certificate would only be committed and skipped), and a resumed own
/// batch known committed is not disseminated at all.
#[test]
fn committed_batch_is_neither_acked_nor_resumed() {
    let (_, keys, mut nodes) = nodes(4);
    let own = batch(0, 1, &["y"]);
    let committed = cert(&keys, &own, &[0, 1, 2]);
    nodes[1].handle(0, from(0, Message::Batch(own.clone())));
    nodes[1].handle(
        0,
        Event::Committed {
            height: 1,
            certs: vec![committed.clone()],
        },
    );
    let actions = nodes[1].handle(10, from(0, Message::Batch(own.clone())));
    assert!(
        actions.iter().all(|a| !matches!(
            a,
            Action::Send {
                message: Message::Ack(_),
                ..
            }
        )),
        "{actions:?}"
    );
    nodes[0].handle(
        0,
        Event::Committed {
            height: 1,
            certs: vec![committed],
        },
    );
    assert!(nodes[0].resume_own(20, vec![own]).is_empty());
}
