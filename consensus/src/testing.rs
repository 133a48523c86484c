//! An in-process cluster of real cores over plain queues and virtual time:
//! no tokio, no sockets, no threads. Tests, benches and the `cluster`
//! example use it; the simulator (`ordo-sim`) is its grown-up sibling.
//!
//! Every message takes `latency_ms` plus a deterministic jitter drawn from
//! the seed, so a run is a pure function of its parameters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use ordo_types::{Committee, Keypair, NodeIndex};

use crate::core::{Core, Recovery};
use crate::event::{Action, Event, Timer};
use crate::messages::{Block, CommittedBlock, Message, PayloadItem};
use crate::safety::SafetyData;
use crate::{Config, Fault};

enum Delivery {
    Message {
        from: NodeIndex,
        to: NodeIndex,
        message: Message,
    },
    Timer {
        node: NodeIndex,
        timer: Timer,
    },
    Payload {
        node: NodeIndex,
        items: Vec<PayloadItem>,
    },
}

/// A cluster of `n` cores.
pub struct Cluster {
    pub committee: Arc<Committee>,
    keys: Vec<Keypair>,
    config: Config,
    cores: Vec<Core>,
    crashed: Vec<bool>,
    /// Nodes that receive but never send (a silent leader).
    muted: Vec<bool>,
    persisted: Vec<SafetyData>,
    /// Blocks each node persisted before voting (`Action::PersistBlock`),
    /// pruned at or below its committed root's view.
    persisted_blocks: Vec<Vec<Block>>,
    committed: Vec<Vec<CommittedBlock>>,
    faults: Vec<(NodeIndex, NodeIndex, Fault)>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Delivery>,
    next_seq: u64,
    now_ms: u64,
    latency_ms: u64,
    jitter_ms: u64,
    rng: u64,
    verify_certs: bool,
    delivered: u64,
}

impl Cluster {
    /// Starts `n` cores at time 0.
    pub fn new(n: usize, config: Config, latency_ms: u64, jitter_ms: u64, seed: u64) -> Self {
        let (committee, keys) = Committee::for_testing(n);
        let committee = Arc::new(committee);
        let mut cluster = Cluster {
            committee: committee.clone(),
            keys,
            config,
            cores: Vec::with_capacity(n),
            crashed: vec![false; n],
            muted: vec![false; n],
            persisted: vec![SafetyData::default(); n],
            persisted_blocks: vec![Vec::new(); n],
            committed: vec![Vec::new(); n],
            faults: Vec::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            next_seq: 0,
            now_ms: 0,
            latency_ms,
            jitter_ms,
            rng: seed | 1,
            verify_certs: true,
            delivered: 0,
        };
        for i in 0..n {
            let core = cluster.make_core(i as NodeIndex, Recovery::genesis(&committee));
            cluster.cores.push(core);
        }
        for i in 0..n {
            let actions = cluster.cores[i].start(0);
            cluster.execute(i as NodeIndex, actions);
        }
        cluster
    }

    fn make_core(&self, me: NodeIndex, recovery: Recovery) -> Core {
        Core::new(
            self.config.clone(),
            self.committee.clone(),
            me,
            self.keys[usize::from(me)].clone(),
            crate::election(self.committee.size(), &self.config),
            recovery,
        )
    }

    /// Whether every commit certificate is checked as it is output (on by
    /// default; benches turn it off).
    pub fn set_verify_certs(&mut self, on: bool) {
        self.verify_certs = on;
    }

    pub fn size(&self) -> usize {
        self.cores.len()
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn core(&self, node: NodeIndex) -> &Core {
        &self.cores[usize::from(node)]
    }

    pub fn committed(&self, node: NodeIndex) -> &[CommittedBlock] {
        &self.committed[usize::from(node)]
    }

    /// Misbehaviour reports as `(reporter, peer, fault)`.
    pub fn faults(&self) -> &[(NodeIndex, NodeIndex, Fault)] {
        &self.faults
    }

    /// Messages and timers delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The node stops: it neither receives nor sends, and its timers die.
    pub fn crash(&mut self, node: NodeIndex) {
        self.crashed[usize::from(node)] = true;
    }

    /// The node keeps receiving but everything it sends is lost.
    pub fn mute(&mut self, node: NodeIndex) {
        self.muted[usize::from(node)] = true;
    }

    /// Restarts a crashed node from what storage would hold: its persisted
    /// safety data (with the lock's QC), its committed prefix with the QC of
    /// the last commit, and the blocks it persisted before voting above that
    /// commit (in storage order; the core sorts them). It fetches the rest.
    pub fn restart(&mut self, node: NodeIndex) {
        let i = usize::from(node);
        let safety = self.persisted[i].clone();
        let recovery = match self.committed[i].last() {
            Some(last) => {
                let root_view = last.block.view();
                Recovery {
                    safety,
                    root: last.block.clone(),
                    high_qc: last.cert.qc.clone(),
                    high_tc: None,
                    blocks: self.persisted_blocks[i]
                        .iter()
                        .filter(|b| b.view() > root_view)
                        .cloned()
                        .collect(),
                    ancestors: Vec::new(),
                }
                .with_ancestors(
                    self.committed[i]
                        .iter()
                        .rev()
                        .skip(1)
                        .map(|c| c.block.clone()),
                    &self.committee,
                )
            }
            None => Recovery {
                safety,
                blocks: self.persisted_blocks[i].clone(),
                ..Recovery::genesis(&self.committee)
            },
        };
        self.cores[i] = self.make_core(node, recovery);
        self.crashed[i] = false;
        let actions = self.cores[i].start(self.now_ms);
        self.execute(node, actions);
    }

    /// Hands payload items to a node now.
    pub fn submit(&mut self, node: NodeIndex, items: Vec<PayloadItem>) {
        let at = self.now_ms;
        self.enqueue(at, Delivery::Payload { node, items });
    }

    /// Runs until virtual time `deadline_ms` or no more events.
    pub fn run_until(&mut self, deadline_ms: u64) {
        while self.step(deadline_ms) {}
        self.now_ms = self.now_ms.max(deadline_ms);
    }

    /// Runs until every live node has committed `height`, or `max_ms` of
    /// virtual time passes. Returns whether the height was reached.
    pub fn run_until_height(&mut self, height: u64, max_ms: u64) -> bool {
        loop {
            let done = (0..self.size()).filter(|i| !self.crashed[*i]).all(|i| {
                self.committed[i]
                    .last()
                    .is_some_and(|b| b.block.height() >= height)
            });
            if done {
                return true;
            }
            if !self.step(max_ms) {
                return false;
            }
        }
    }

    /// Checks that all nodes' committed sequences agree (one is a prefix of
    /// the other) and have no gaps.
    pub fn check_agreement(&self) -> Result<(), String> {
        for (i, seq) in self.committed.iter().enumerate() {
            for (k, block) in seq.iter().enumerate() {
                if block.block.height() != k as u64 + 1 {
                    return Err(format!("node {i}: height gap at index {k}"));
                }
            }
        }
        for i in 0..self.size() {
            for j in i + 1..self.size() {
                let (a, b) = (&self.committed[i], &self.committed[j]);
                for k in 0..a.len().min(b.len()) {
                    if a[k].block.digest() != b[k].block.digest() {
                        return Err(format!("nodes {i} and {j} disagree at height {}", k + 1));
                    }
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, deadline_ms: u64) -> bool {
        let Some(Reverse((at, seq))) = self.queue.peek().copied() else {
            return false;
        };
        if at > deadline_ms {
            return false;
        }
        self.queue.pop();
        self.now_ms = self.now_ms.max(at);
        let Some(delivery) = self.pending.remove(&seq) else {
            return true;
        };
        let (node, event) = match delivery {
            Delivery::Message { from, to, message } => (to, Event::Message { from, message }),
            Delivery::Timer { node, timer } => (node, Event::TimerFired(timer)),
            Delivery::Payload { node, items } => (node, Event::PayloadAvailable(items)),
        };
        if self.crashed[usize::from(node)] {
            return true;
        }
        self.delivered += 1;
        let actions = self.cores[usize::from(node)].handle(self.now_ms, event);
        self.execute(node, actions);
        true
    }

    fn execute(&mut self, node: NodeIndex, actions: Vec<Action>) {
        let i = usize::from(node);
        for action in actions {
            match action {
                Action::Send { to, message } => self.transmit(node, to, message),
                Action::Broadcast { message } => {
                    for to in 0..self.size() as NodeIndex {
                        if to != node {
                            self.transmit(node, to, message.clone());
                        }
                    }
                }
                Action::ScheduleTimer { timer, at_ms } => {
                    self.enqueue(at_ms, Delivery::Timer { node, timer });
                }
                Action::Persist(data) => self.persisted[i] = data,
                Action::PersistBlock(block) => self.persisted_blocks[i].push(*block),
                Action::FetchBlock { digest, from } => {
                    self.transmit(node, from, Message::BlockRequest(digest));
                }
                Action::Commit(block) => {
                    let expected = self.committed[i].len() as u64 + 1;
                    assert_eq!(
                        block.block.height(),
                        expected,
                        "node {i} committed out of order"
                    );
                    if self.verify_certs {
                        if let Err(e) = block.cert.verify(&block.block.header, &self.committee) {
                            panic!("node {i} output a bad commit certificate: {e}");
                        }
                    }
                    let root_view = block.block.view();
                    self.persisted_blocks[i].retain(|b| b.view() > root_view);
                    self.committed[i].push(*block);
                }
                Action::Misbehaviour { peer, fault } => self.faults.push((node, peer, fault)),
            }
        }
    }

    fn transmit(&mut self, from: NodeIndex, to: NodeIndex, message: Message) {
        if self.muted[usize::from(from)] || self.crashed[usize::from(from)] {
            return;
        }
        let at = self.now_ms + self.latency_ms + self.jitter();
        self.enqueue(at, Delivery::Message { from, to, message });
    }

    fn jitter(&mut self) -> u64 {
        if self.jitter_ms == 0 {
            return 0;
        }
        // xorshift64: deterministic from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % (self.jitter_ms + 1)
    }

    fn enqueue(&mut self, at_ms: u64, delivery: Delivery) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(seq, delivery);
        self.queue.push(Reverse((at_ms, seq)));
    }
}

/// Builds correctly (or deliberately wrongly) signed blocks and certificates
/// for table-driven tests.
pub struct Fixture {
    pub committee: Arc<Committee>,
    pub keys: Vec<Keypair>,
}

impl Fixture {
    pub fn new(n: usize) -> Self {
        let (committee, keys) = Committee::for_testing(n);
        Fixture {
            committee: Arc::new(committee),
            keys,
        }
    }

    pub fn genesis(&self) -> crate::Block {
        crate::Block::genesis(self.committee.digest())
    }

    pub fn genesis_qc(&self) -> crate::QuorumCert {
        crate::QuorumCert::genesis(&self.committee)
    }

    /// A QC for `block` signed by `signers`.
    pub fn qc_by(&self, block: &crate::Block, signers: &[NodeIndex]) -> crate::QuorumCert {
        let digest = block.digest();
        let message = crate::messages::vote_message(block.view(), &digest);
        crate::QuorumCert {
            view: block.view(),
            block: digest,
            votes: signers
                .iter()
                .map(|i| (*i, self.keys[usize::from(*i)].sign(&message)))
                .collect(),
        }
    }

    /// A QC for `block` signed by the first quorum of members.
    pub fn qc(&self, block: &crate::Block) -> crate::QuorumCert {
        let signers: Vec<NodeIndex> = (0..self.committee.quorum() as NodeIndex).collect();
        self.qc_by(block, &signers)
    }

    /// A TC for `view` from the first quorum of members, each reporting the
    /// QC view in `qc_views` (cycled), carrying `high_qc`.
    pub fn tc(
        &self,
        view: u64,
        qc_views: &[u64],
        high_qc: &crate::QuorumCert,
    ) -> crate::TimeoutCert {
        let signers = (0..self.committee.quorum() as NodeIndex)
            .map(|i| {
                let qc_view = qc_views[usize::from(i) % qc_views.len()];
                let message = crate::messages::timeout_message(view, qc_view);
                (i, qc_view, self.keys[usize::from(i)].sign(&message))
            })
            .collect();
        crate::TimeoutCert {
            view,
            high_qc: high_qc.clone(),
            signers,
        }
    }

    /// A block in `view` by `author` extending the block `qc` certifies
    /// (`parent` must be that block), with an optional TC and payload.
    pub fn block(
        &self,
        view: u64,
        author: NodeIndex,
        parent: &crate::Block,
        qc: &crate::QuorumCert,
        tc: Option<crate::TimeoutCert>,
        items: Vec<PayloadItem>,
    ) -> crate::Block {
        self.block_with_lists(view, author, parent, qc, tc, items, Vec::new())
    }

    /// [`Self::block`] with inclusion lists attached.
    #[allow(clippy::too_many_arguments)]
    pub fn block_with_lists(
        &self,
        view: u64,
        author: NodeIndex,
        parent: &crate::Block,
        qc: &crate::QuorumCert,
        tc: Option<crate::TimeoutCert>,
        items: Vec<PayloadItem>,
        inclusion: Vec<crate::InclusionAttachment>,
    ) -> crate::Block {
        let payload = crate::Payload { items };
        let header = crate::BlockHeader {
            view,
            height: parent.height() + 1,
            parent: qc.block,
            parent_view: qc.view,
            payload: crate::messages::payload_digest(&payload, &inclusion),
            author,
        };
        let signature = self.keys[usize::from(author)]
            .sign(&crate::messages::proposal_message(&header.digest()));
        crate::Block {
            header,
            parent_qc: qc.clone(),
            tc,
            payload,
            inclusion,
            signature,
        }
    }

    /// A fresh core for member `me` at genesis with the config's leaders.
    pub fn core(&self, me: NodeIndex, config: Config) -> Core {
        self.core_from(me, config, Recovery::genesis(&self.committee))
    }

    pub fn core_from(&self, me: NodeIndex, config: Config, recovery: Recovery) -> Core {
        let leaders = crate::election(self.committee.size(), &config);
        Core::new(
            config,
            self.committee.clone(),
            me,
            self.keys[usize::from(me)].clone(),
            leaders,
            recovery,
        )
    }
}
