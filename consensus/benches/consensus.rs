//! Hot functions of the consensus core.
//!
//! `cargo bench -p ordo-consensus`

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ordo_consensus::messages::vote_message;
use ordo_consensus::testing::Fixture;
use ordo_consensus::{Action, Config, Event, Message, Vote};
use ordo_types::NodeIndex;

fn qc_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("qc_verify");
    for n in [4usize, 16, 64, 128] {
        let f = Fixture::new(n);
        let b1 = f.block(1, 1, &f.genesis(), &f.genesis_qc(), None, vec![]);
        let qc = f.qc(&b1);
        group.throughput(Throughput::Elements(qc.votes.len() as u64));
        group.bench_with_input(BenchmarkId::new("batch", n), &qc, |b, qc| {
            b.iter(|| qc.verify(&f.committee).unwrap())
        });
        let message = vote_message(qc.view, &qc.block);
        group.bench_with_input(BenchmarkId::new("one_by_one", n), &qc, |b, qc| {
            b.iter(|| {
                for (i, s) in &qc.votes {
                    f.committee.verify(*i, &message, s).unwrap();
                }
            })
        });
    }
    group.finish();
}

/// The next leader's cost per vote received, up to and including forming
/// the QC (batch verification at quorum) and proposing the next block, with
/// the default configuration (leader reputation). The setup checks that the
/// measured core is the leader of view 2 (its own vote stays with it), and
/// each run that the `2f` votes formed the QC and the core proposed, so the
/// figure cannot silently measure votes dropped at a non-leader.
fn handle_vote(c: &mut Criterion) {
    let mut group = c.benchmark_group("handle_vote");
    for n in [4usize, 64] {
        let f = Fixture::new(n);
        let b1 = f.block(
            1,
            1,
            &f.genesis(),
            &f.genesis_qc(),
            None,
            vec![b"tx".to_vec()],
        );
        let digest = b1.digest();
        let leader: NodeIndex = 2;
        let votes: Vec<Vote> = (0..n as NodeIndex)
            .filter(|i| *i != leader)
            .take(f.committee.quorum() - 1)
            .map(|i| Vote {
                view: 1,
                block: digest,
                author: i,
                signature: f.keys[usize::from(i)].sign(&vote_message(1, &digest)),
                inclusion: None,
            })
            .collect();
        group.throughput(Throughput::Elements(votes.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || {
                    let mut core = f.core(leader, Config::default());
                    core.start(0);
                    let actions = core.handle(
                        1,
                        Event::Message {
                            from: 1,
                            message: Message::Proposal(Box::new(b1.clone())),
                        },
                    );
                    assert_eq!(core.stats().votes, 1, "the core voted for B1");
                    assert!(
                        !actions.iter().any(|a| matches!(
                            a,
                            Action::Send {
                                message: Message::Vote(_),
                                ..
                            }
                        )),
                        "the core leads view 2: its vote stays with it"
                    );
                    core
                },
                |mut core| {
                    let mut last = Vec::new();
                    for vote in &votes {
                        last = core.handle(
                            2,
                            Event::Message {
                                from: vote.author,
                                message: Message::Vote(vote.clone()),
                            },
                        );
                    }
                    assert_eq!(core.view(), 2);
                    assert_eq!(core.stats().qcs_formed, 1);
                    assert!(last.iter().any(|a| matches!(
                        a,
                        Action::Broadcast {
                            message: Message::Proposal(_)
                        }
                    )));
                    (core, last)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, qc_verification, handle_vote);
criterion_main!(benches);
