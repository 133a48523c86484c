//! The mempool in the loop: client transactions go through real intakes
//! and mempool cores, consensus orders batch certificates, commits deliver
//! batches, and the checker follows each transaction to its commit. The
//! checker's mempool-side invariants catch what they exist to catch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use ordo_consensus::messages::{CommitCert, CommittedBlock};
use ordo_consensus::testing::Fixture;
use ordo_mempool::{Batch, BatchAck, BatchCert, Transaction};
use ordo_sim::checker::Checker;
use ordo_sim::load::{make_tx, ItemId};
use ordo_sim::scenario::SubmitTo;
use ordo_sim::{run_seed, RunOptions, Scenario, ViolationKind};
use ordo_types::{codec, NodeIndex};

fn short_run(name: &str) -> Scenario {
    let mut scenario = common::load(name);
    scenario.duration_ms = 12_000;
    scenario.checks.drain_ms = 4_000;
    scenario
}

#[test]
fn transactions_commit_through_batches_and_certificates() {
    let scenario = short_run("happy-n4-wan");
    let report = run_seed(&scenario, 0, &RunOptions::default());
    assert!(report.ok, "{:?}", report.violation);
    assert!(report.items_submitted > 500, "{}", report.items_submitted);
    // No crash: every transaction is committed, in exactly one batch.
    assert_eq!(report.items_committed, report.items_submitted);
    assert_eq!((report.duplicate_commits, report.redundant_copies), (0, 0));
    // Batches carry several transactions each; a commit waits for the
    // batch to seal (50 ms) and be certified before a leader proposes it.
    assert!(report.batches_committed > 50);
    assert!(report.batches_committed < report.items_committed);
    assert!(report.latency_ms.p50 > 50.0, "{:?}", report.latency_ms);
}

/// `submit_to = "all"`: every node seals its own copy, so each transaction
/// is committed in up to n batches of different authors: copies, not
/// duplicates (the ordered output keeps the first).
#[test]
fn copies_from_every_node_are_not_duplicates() {
    let mut scenario = short_run("happy-n4-wan");
    scenario.load.submit_to = SubmitTo::All;
    let report = run_seed(&scenario, 1, &RunOptions::default());
    assert!(report.ok, "{:?}", report.violation);
    assert_eq!(report.items_committed, report.items_submitted);
    assert_eq!(report.duplicate_commits, 0);
    assert!(
        report.redundant_copies >= 2 * report.items_committed,
        "{} copies of {} transactions",
        report.redundant_copies,
        report.items_committed
    );
}

/// A node that was down while blocks committed catches up, then fetches
/// the batches of those blocks from their certificates' signers and
/// delivers every height in order (the delivery check would stop the run
/// otherwise). Transactions that were only in its intake or open batch at
/// the crash are lost with it, and only those.
#[test]
fn a_restarted_node_fetches_the_batches_it_missed() {
    let scenario = common::load("leader-crash-n4");
    let report = run_seed(&scenario, 0, &RunOptions::default());
    assert!(report.ok, "{:?}", report.violation);
    assert_eq!(report.restarts, 1);
    assert!(report.batch_fetches > 0, "no batch fetched");
    // Node 2 is down for the last 18 s: what clients send it is refused.
    assert!(report.txs_not_accepted > 100, "{}", report.txs_not_accepted);
    assert!(
        report.items_lost_to_crashes < 50,
        "{}",
        report.items_lost_to_crashes
    );
}

// ----- the checker on hand-made blocks ------------------------------------

const N: usize = 4;

struct Chain {
    fx: Fixture,
    checker: Checker,
    blocks: Vec<ordo_consensus::Block>,
}

impl Chain {
    fn new(extra: &str) -> Self {
        let fx = Fixture::new(N);
        let text = format!("name = \"t\"\nnodes = {N}\n{extra}");
        let scenario = Scenario::parse(&text, "t").unwrap();
        let checker = Checker::new(&scenario, Arc::clone(&fx.committee));
        Chain {
            fx,
            checker,
            blocks: Vec::new(),
        }
    }

    /// A batch certificate signed by `signers`.
    fn cert(&self, batch: &Batch, signers: &[NodeIndex]) -> BatchCert {
        let header = batch.header();
        let acks = signers
            .iter()
            .map(|i| {
                let ack = BatchAck::sign(&header, *i, &self.fx.keys[usize::from(*i)]);
                (ack.signer, ack.signature)
            })
            .collect();
        BatchCert::new(&header, acks)
    }

    /// Node 0 commits the next height carrying `certs`.
    fn commit(&mut self, certs: &[BatchCert]) {
        let items = certs.iter().map(|c| codec::encode(c).unwrap()).collect();
        let view = self.blocks.len() as u64 + 1;
        let (parent, qc) = match self.blocks.last() {
            Some(b) => (b.clone(), self.fx.qc(b)),
            None => (self.fx.genesis(), self.fx.genesis_qc()),
        };
        let block = self.fx.block(view, 0, &parent, &qc, None, items);
        let child = self
            .fx
            .block(view + 1, 1, &block, &self.fx.qc(&block), None, vec![]);
        let committed = CommittedBlock {
            block: block.clone(),
            cert: CommitCert {
                chain: vec![child.header.clone()],
                qc: self.fx.qc(&child),
            },
        };
        self.blocks.push(block);
        self.checker.on_commit(0, &committed, view * 1_000);
    }

    fn kind(&self) -> Option<ViolationKind> {
        self.checker.violation.as_ref().map(|v| v.kind)
    }
}

fn batch(author: NodeIndex, seq: u64, txs: &[Transaction]) -> Batch {
    Batch {
        author,
        seq,
        txs: txs.to_vec(),
    }
}

fn submitted(chain: &mut Chain, id: ItemId, node: NodeIndex) -> Transaction {
    chain.checker.on_submit(id, Some(node), 0);
    chain.checker.on_accept(id, node);
    make_tx(id, 64)
}

#[test]
fn a_transaction_in_two_batches_of_one_honest_author_is_a_duplicate() {
    let mut chain = Chain::new("");
    let id = ItemId { client: 1, seq: 7 };
    let tx = submitted(&mut chain, id, 0);
    let (a, b) = (batch(0, 0, std::slice::from_ref(&tx)), batch(0, 1, &[tx]));
    for x in [&a, &b] {
        chain.checker.on_batch(x, x.digest());
    }
    let (ca, cb) = (chain.cert(&a, &[0, 1, 2]), chain.cert(&b, &[0, 1, 2]));
    chain.commit(std::slice::from_ref(&ca));
    assert_eq!(chain.kind(), None);
    assert!(chain.checker.items[&id].committed_us.is_some());
    // The same certificate again (its batch formed twice) is delivered once:
    // no duplicate.
    chain.commit(&[ca]);
    assert_eq!(chain.kind(), None);
    chain.commit(&[cb]);
    assert_eq!(chain.kind(), Some(ViolationKind::ItemCommittedTwice));
    assert_eq!(chain.checker.duplicate_commits, 1);
}

#[test]
fn copies_in_other_authors_batches_are_counted_not_failed() {
    let mut chain = Chain::new("");
    let id = ItemId { client: 1, seq: 1 };
    let tx = submitted(&mut chain, id, 0);
    let batches: Vec<Batch> = (0..3)
        .map(|a| batch(a, 0, std::slice::from_ref(&tx)))
        .collect();
    for b in &batches {
        chain.checker.on_batch(b, b.digest());
    }
    let certs: Vec<BatchCert> = batches.iter().map(|b| chain.cert(b, &[0, 1, 2])).collect();
    chain.commit(&certs[..1]);
    chain.commit(&certs[1..]);
    assert_eq!(chain.kind(), None);
    assert_eq!(chain.checker.redundant_copies, 2);
    assert_eq!(chain.checker.items[&id].commits, 3);
}

#[test]
fn a_committed_certificate_without_a_quorum_is_caught() {
    let mut chain = Chain::new("");
    let b = batch(2, 0, &[Transaction::new(0, &b"x"[..])]);
    let good = chain.cert(&b, &[0, 1, 2]);
    chain.commit(&[good]);
    assert_eq!(chain.kind(), None);
    let b2 = batch(2, 1, &[Transaction::new(0, &b"y"[..])]);
    let short = chain.cert(&b2, &[1, 2]);
    chain.commit(&[short]);
    assert_eq!(chain.kind(), Some(ViolationKind::BadBatchCert));
}

#[test]
fn deliveries_out_of_order_or_of_uncertified_batches_are_caught() {
    let mut chain = Chain::new("");
    let b = batch(1, 0, &[Transaction::new(0, &b"x"[..])]);
    let cert = chain.cert(&b, &[0, 1, 2]);
    chain.commit(&[cert]);
    chain.checker.on_deliver(0, 1, &[b.digest()], 2_000);
    assert_eq!(chain.kind(), None);
    // Height 3 before height 2.
    let mut gap = Chain::new("");
    gap.commit(&[]);
    gap.commit(&[]);
    gap.checker.on_deliver(0, 2, &[], 3_000);
    assert_eq!(gap.kind(), Some(ViolationKind::BadDelivery));
    // A batch height 1 does not certify.
    let mut stranger = Chain::new("");
    stranger.commit(&[]);
    stranger.checker.on_deliver(2, 1, &[b.digest()], 2_000);
    assert_eq!(stranger.kind(), Some(ViolationKind::BadDelivery));
}

#[test]
fn a_censored_transaction_past_the_bound_stops_the_run() {
    let censor = "[[byzantine]]\nnode = 1\nbehaviour = \"censor\"\nvictim = 0\n\
                  [checks]\ncensorship_bound_views = 3\n";
    let mut chain = Chain::new(censor);
    let victim = ItemId { client: 0, seq: 0 };
    let other = ItemId { client: 2, seq: 0 };
    submitted(&mut chain, other, 0);
    let tx = submitted(&mut chain, victim, 0);
    let b = batch(0, 0, &[tx]);
    chain.checker.on_batch(&b, b.digest());
    assert!(chain.checker.batch_has_victim(&b.digest()));
    chain.checker.on_view(0, 3, 1_000);
    assert_eq!(chain.kind(), None, "3 views is within the bound");
    chain.checker.on_view(0, 4, 1_500);
    assert_eq!(chain.kind(), Some(ViolationKind::CensorshipBound));
    // Committed in time instead: no violation.
    let mut chain = Chain::new(censor);
    let tx = submitted(&mut chain, victim, 0);
    let b = batch(0, 0, &[tx]);
    chain.checker.on_batch(&b, b.digest());
    let cert = chain.cert(&b, &[0, 1, 2]);
    chain.commit(&[cert]);
    chain.checker.on_view(0, 9, 9_000);
    assert_eq!(chain.kind(), None);
    // An honest holder that crashed takes the bound with it.
    let mut chain = Chain::new(censor);
    submitted(&mut chain, victim, 2);
    chain.checker.on_crash(2);
    chain.checker.on_view(0, 9, 9_000);
    assert_eq!(chain.kind(), None);
}
