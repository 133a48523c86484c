//! Four mempool cores wired with plain queues and a virtual clock: no
//! threads, no tokio. Every message is delivered in FIFO order; a silent
//! node receives nothing and sends nothing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ordo_types::{Digest, NodeIndex};

use super::support::{config, nodes, tx};
use crate::{Action, Batch, BatchCert, Event, Intake, IntakeConfig, Mempool, Message};

struct Cluster {
    nodes: Vec<Mempool>,
    intakes: Vec<Intake>,
    network: VecDeque<(NodeIndex, NodeIndex, Message)>,
    timers: BTreeMap<(u64, usize, u64), crate::Timer>,
    timer_seq: u64,
    now_ms: u64,
    silent: HashSet<usize>,
    /// Each node's durable store.
    persisted: Vec<HashMap<Digest, Batch>>,
    delivered: Vec<Vec<(u64, Vec<Batch>)>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let (_, _, nodes) = nodes(n);
        Cluster {
            nodes,
            intakes: (0..n)
                .map(|_| Intake::new(IntakeConfig::default()))
                .collect(),
            network: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            now_ms: 0,
            silent: HashSet::new(),
            persisted: vec![HashMap::new(); n],
            delivered: vec![Vec::new(); n],
        }
    }

    fn handle(&mut self, node: usize, event: Event) {
        if self.silent.contains(&node) {
            return;
        }
        let actions = self.nodes[node].handle(self.now_ms, event);
        let me = node as NodeIndex;
        for action in actions {
            match action {
                Action::Persist(batch) => {
                    self.persisted[node].insert(batch.digest(), batch);
                }
                Action::Send { to, message } => self.network.push_back((me, to, message)),
                Action::Broadcast(message) => {
                    for to in 0..self.nodes.len() as NodeIndex {
                        if to != me {
                            self.network.push_back((me, to, message.clone()));
                        }
                    }
                }
                Action::ScheduleTimer { timer, at_ms } => {
                    self.timer_seq += 1;
                    self.timers.insert((at_ms, node, self.timer_seq), timer);
                }
                Action::FetchBatch { digest, from } => {
                    self.network
                        .push_back((me, from, Message::BatchRequest { digest }))
                }
                Action::ServeFromStore { digest, to } => {
                    if let Some(batch) = self.persisted[node].get(&digest) {
                        let message = Message::BatchResponse(batch.clone());
                        self.network.push_back((me, to, message));
                    }
                }
                Action::Deliver { height, batches } => self.delivered[node].push((height, batches)),
                Action::Misbehaviour { peer, reason } => {
                    panic!("node {node} blames {peer}: {reason}")
                }
            }
        }
    }

    /// Runs until `until_ms` or until nothing is left to do.
    fn run(&mut self, until_ms: u64) {
        loop {
            for node in 0..self.nodes.len() {
                while self.nodes[node].accepts_transactions() && !self.intakes[node].is_empty() {
                    let cfg = config();
                    let txs = self.intakes[node].drain(cfg.batch_bytes, cfg.max_batch_txs);
                    self.handle(node, Event::Transactions(txs));
                }
            }
            if let Some((from, to, message)) = self.network.pop_front() {
                self.handle(usize::from(to), Event::Message { from, message });
                continue;
            }
            let Some((&(at_ms, node, seq), _)) = self.timers.iter().next() else {
                return;
            };
            if at_ms > until_ms {
                return;
            }
            let Some(timer) = self.timers.remove(&(at_ms, node, seq)) else {
                return;
            };
            self.now_ms = self.now_ms.max(at_ms);
            self.handle(node, Event::TimerFired(timer));
        }
    }

    fn commit(&mut self, height: u64, certs: &[BatchCert]) {
        for node in 0..self.nodes.len() {
            self.handle(
                node,
                Event::Committed {
                    height,
                    certs: certs.to_vec(),
                },
            );
        }
    }

    fn cert_digests(&self, node: usize) -> HashSet<Digest> {
        self.nodes[node].pending().iter().map(|c| c.batch).collect()
    }
}

/// Submits `count` transactions at each of `at`, namespaced by node.
fn submit(cluster: &Cluster, at: &[usize], count: usize) -> HashSet<Digest> {
    let mut digests = HashSet::new();
    for &node in at {
        for i in 0..count {
            let t = tx(
                node as u64,
                &format!("node{node}-tx{i}-{}", "p".repeat(i % 7)),
            );
            digests.insert(t.digest());
            cluster.intakes[node].submit(t).unwrap();
        }
    }
    digests
}

fn tx_digests(batches: &[Batch]) -> HashSet<Digest> {
    batches
        .iter()
        .flat_map(|b| b.txs.iter().map(|t| t.digest()))
        .collect()
}

#[test]
fn n4_all_transactions_end_up_certified_everywhere() {
    let mut cluster = Cluster::new(4);
    let submitted = submit(&cluster, &[0, 1, 2, 3], 40);
    cluster.run(1_000);

    let certs = cluster.cert_digests(0);
    assert!(certs.len() >= 4, "every node sealed at least one batch");
    for node in 0..4 {
        assert_eq!(cluster.cert_digests(node), certs, "node {node}");
        for digest in &certs {
            assert!(cluster.persisted[node].contains_key(digest), "node {node}");
            assert!(cluster.nodes[node].batch(digest).is_some(), "node {node}");
        }
    }
    let batches: Vec<Batch> = certs
        .iter()
        .filter_map(|d| cluster.nodes[0].batch(d).cloned())
        .collect();
    assert_eq!(tx_digests(&batches), submitted);

    // Commit node 0's payload everywhere: each node delivers every
    // transaction, and the queues empty.
    let payload = cluster.nodes[0].payload(usize::MAX, &HashSet::new());
    cluster.commit(1, &payload);
    cluster.run(2_000);
    for node in 0..4 {
        let [(1, batches)] = cluster.delivered[node].as_slice() else {
            panic!("node {node}: {:?}", cluster.delivered[node].len())
        };
        assert_eq!(tx_digests(batches), submitted, "node {node}");
        assert!(cluster.nodes[node].pending().is_empty());
    }
}

#[test]
fn n4_f1_silent_node_certificates_still_form_and_it_catches_up() {
    let mut cluster = Cluster::new(4);
    cluster.silent.insert(3);
    let submitted = submit(&cluster, &[0, 1, 2], 30);
    cluster.run(1_000);

    let certs = cluster.cert_digests(0);
    assert!(certs.len() >= 3);
    for node in 0..3 {
        assert_eq!(cluster.cert_digests(node), certs, "node {node}");
    }
    for cert in cluster.nodes[0].pending().iter() {
        assert!(
            !cert.signers().any(|s| s == 3),
            "the silent node signed nothing"
        );
    }
    assert!(cluster.cert_digests(3).is_empty());

    // The silent node comes back for the commit: it has none of the
    // batches, fetches them from the signers and delivers the same block.
    let payload = cluster.nodes[1].payload(usize::MAX, &HashSet::new());
    cluster.silent.clear();
    cluster.commit(1, &payload);
    cluster.run(5_000);
    for node in 0..4 {
        let [(1, batches)] = cluster.delivered[node].as_slice() else {
            panic!("node {node} delivered {:?}", cluster.delivered[node].len())
        };
        assert_eq!(tx_digests(batches), submitted, "node {node}");
    }
    assert_eq!(cluster.nodes[3].missing_batches(), 0);
}
