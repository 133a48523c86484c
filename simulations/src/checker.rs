//! The invariants checked while a run goes. The first violation stops the
//! run; its seed reproduces it exactly.
//!
//! Safety (only honest nodes' outputs count):
//! - **agreement**: no two different blocks committed at one height;
//! - **no rollback**: each node commits heights 1, 2, 3, … with no gap or
//!   repeat, across restarts (a restarted node continues its prefix);
//! - **certificates**: every commit certificate verifies
//!   (`CommitCert::verify`: 2f+1 distinct valid signers), every batch
//!   certificate in a committed block verifies (`BatchCert::verify`: a
//!   quorum of distinct members' valid acks), and every QC and TC an honest
//!   node sends verifies;
//! - **delivery**: each honest mempool delivers heights 1, 2, 3, … in order
//!   across restarts, and only batches certified in the block committed at
//!   that height;
//! - **one QC per view**: no two valid QCs for different blocks in a view,
//!   among all QCs seen on the wire;
//! - **no honest equivocation**: an honest node never signs two different
//!   votes in one view (a safety-rule invariant; optional);
//! - **no view jump**: an honest node's view stays below a physical bound
//!   (bogus high certificates must not move it).
//!
//! Liveness: after the liveness start, some honest node commits a new block
//! at least every `liveness_bound_ms`, and within `liveness_bound_views`
//! views (the highest honest view never runs more than that many views past
//! the highest honest view at the last new commit); every transaction
//! accepted by an honest node's intake is committed by the end of the run
//! (exactly once, if required: no honest author's two committed batches
//! hold it; copies in different authors' batches, as `submit_to = "all"`
//! makes, are the output's to skip); with a censorship bound set, a
//! censored client's transaction commits within `K` views or `T` ms of its
//! submission (or GST, if later).
//!
//! Items are transactions: a committed block carries batch certificates,
//! and the checker knows every batch's transactions from the moment its
//! author stores it ([`Checker::on_batch`]).
//!
//! Also counted, not checked (they show that a faulty node's misbehaviour
//! really happened): two different proposals signed by one author in one
//! view (`conflicting_proposals`, e.g. both Twins leading a view), and two
//! different votes by one faulty node in one view (`faulty_double_votes`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use ordo_consensus::{CommittedBlock, Message, QuorumCert, View};
use ordo_mempool::{Batch, BatchCert};
use ordo_types::{codec, Committee, Digest, DigestMap, DigestSet, NodeIndex};
use serde::Serialize;

use crate::load::{item_id, ItemId};
use crate::scenario::{Behaviour, Scenario};

/// Which invariant broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    ConflictingCommit,
    CommitGap,
    BadCommitCert,
    BadCertificate,
    TwoQcsInView,
    HonestEquivocation,
    ViewJump,
    Liveness,
    ItemNotCommitted,
    ItemCommittedTwice,
    /// A committed block carries a batch certificate that does not verify.
    BadBatchCert,
    /// A mempool delivered a height out of order or a batch its block does
    /// not certify.
    BadDelivery,
    /// A censored client's transaction was not committed within the bound.
    CensorshipBound,
}

/// A broken invariant, with the virtual time it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub at_ms: u64,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} at {} ms: {}", self.kind, self.at_ms, self.message)
    }
}

/// What is known about one generated transaction.
#[derive(Clone, Debug)]
pub struct ItemState {
    pub submitted_us: u64,
    /// The one node it was given to (`submit_to = "one"` or `"home"`);
    /// `None` = all.
    pub recipient: Option<NodeIndex>,
    pub committed_us: Option<u64>,
    /// Distinct committed batches holding it.
    pub commits: u32,
    /// The highest view any honest node was in at submission.
    pub submitted_view: View,
    /// The view of the block that first committed it.
    pub committed_view: Option<View>,
    /// Honest nodes whose intake accepted it.
    pub accepted_by: Vec<NodeIndex>,
    /// Honest nodes that stored it in one of their own batches (it then
    /// survives their crash: a restart disseminates the batch again).
    pub sealed_by: Vec<NodeIndex>,
    /// Authors of the committed batches holding it.
    pub committed_authors: Vec<NodeIndex>,
}

/// A batch as the checker knows it: its author and transactions.
struct BatchInfo {
    author: NodeIndex,
    txs: Vec<ItemId>,
}

pub struct Checker {
    committee: Arc<Committee>,
    honest: Vec<bool>,
    check_equivocation: bool,
    items_exactly_once: bool,
    liveness_after_us: u64,
    liveness_bound_us: u64,
    liveness_bound_views: u64,
    view_bound: View,
    /// Canonical chain: digest and first commit time per height (index h-1).
    pub chain: Vec<(Digest, u64)>,
    /// Heights committed per node (persisted across restarts).
    pub node_height: Vec<u64>,
    qc_views: HashMap<View, Digest>,
    valid_qcs: HashSet<(View, Digest)>,
    votes: HashMap<(NodeIndex, View), Digest>,
    proposals: HashMap<(NodeIndex, View), Digest>,
    pub honest_double_votes: u64,
    /// Per node: views in which it (a faulty node) sent two different votes.
    pub faulty_double_votes: Vec<u64>,
    /// Per node: views in which two different proposals it signed were sent.
    pub conflicting_proposals: Vec<u64>,
    pub items: HashMap<ItemId, ItemState>,
    /// The highest view seen at an honest node so far.
    pub max_honest_view: View,
    pub duplicate_commits: u64,
    last_progress_us: u64,
    pub max_commit_gap_us: u64,
    /// The highest honest view at the last new commit after the liveness
    /// start (set at the first view seen after it).
    progress_view: Option<View>,
    pub max_commit_gap_views: u64,
    pub violation: Option<Violation>,
    /// Every batch stored by its author, by digest.
    batches: DigestMap<BatchInfo>,
    /// Batches committed on the canonical chain (a batch delivers once).
    committed_batches: DigestSet,
    /// Batch digests certified at each canonical height (index h-1).
    chain_batches: Vec<Vec<Digest>>,
    /// Heights delivered per honest node's mempool (kept across restarts).
    pub delivered_height: Vec<u64>,
    /// Committed copies of transactions in other authors' batches.
    pub redundant_copies: u64,
    /// Uncommitted transactions no honest intake accepted (counted by
    /// `finish`).
    pub not_accepted: u64,
    /// Censored clients and the censorship bound.
    victims: Vec<u16>,
    bound_views: Option<u64>,
    bound_us: Option<u64>,
    gst_us: u64,
    view_at_gst: Option<View>,
    /// Censored transactions accepted by an honest node, not yet committed,
    /// by submission time.
    victim_pending: BTreeSet<(u64, ItemId)>,
}

impl Checker {
    pub fn new(scenario: &Scenario, committee: Arc<Committee>) -> Self {
        let faulty = scenario.faulty_nodes();
        let honest = (0..scenario.nodes)
            .map(|i| !faulty.contains(&(i as NodeIndex)))
            .collect();
        let liveness_after_us = scenario.liveness_after_ms() * 1_000;
        Checker {
            committee,
            honest,
            check_equivocation: scenario.checks.honest_equivocation_is_violation,
            items_exactly_once: scenario.checks.items_exactly_once,
            liveness_after_us,
            liveness_bound_us: scenario.checks.liveness_bound_ms * 1_000,
            liveness_bound_views: scenario.checks.liveness_bound_views,
            view_bound: scenario.duration_ms + 10_000,
            chain: Vec::new(),
            node_height: vec![0; scenario.nodes],
            qc_views: HashMap::new(),
            valid_qcs: HashSet::new(),
            votes: HashMap::new(),
            proposals: HashMap::new(),
            honest_double_votes: 0,
            faulty_double_votes: vec![0; scenario.nodes],
            conflicting_proposals: vec![0; scenario.nodes],
            items: HashMap::new(),
            max_honest_view: 0,
            duplicate_commits: 0,
            last_progress_us: liveness_after_us,
            max_commit_gap_us: 0,
            progress_view: None,
            max_commit_gap_views: 0,
            violation: None,
            batches: DigestMap::default(),
            committed_batches: DigestSet::default(),
            chain_batches: Vec::new(),
            delivered_height: vec![0; scenario.nodes],
            redundant_copies: 0,
            not_accepted: 0,
            victims: scenario
                .byzantine
                .iter()
                .filter(|b| b.behaviour == Behaviour::Censor)
                .filter_map(|b| b.victim)
                .collect(),
            bound_views: scenario.checks.censorship_bound_views,
            bound_us: scenario.checks.censorship_bound_ms.map(|ms| ms * 1_000),
            gst_us: scenario.network.gst_ms * 1_000,
            view_at_gst: None,
            victim_pending: BTreeSet::new(),
        }
    }

    /// Whether `client`'s transactions are censored in this run.
    pub fn is_victim(&self, client: u16) -> bool {
        self.victims.contains(&client)
    }

    /// Whether batch `digest` holds a transaction of a censored client (the
    /// censors' test: they know every batch, the strongest censor there is).
    pub fn batch_has_victim(&self, digest: &Digest) -> bool {
        self.batches
            .get(digest)
            .is_some_and(|b| b.txs.iter().any(|id| self.victims.contains(&id.client)))
    }

    /// Batches committed on the canonical chain.
    pub fn batches_committed(&self) -> u64 {
        self.committed_batches.len() as u64
    }

    pub fn is_honest(&self, node: NodeIndex) -> bool {
        self.honest.get(usize::from(node)).copied().unwrap_or(false)
    }

    fn fail(&mut self, kind: ViolationKind, now_us: u64, message: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                kind,
                at_ms: now_us / 1_000,
                message,
            });
        }
    }

    /// An honest node output a commit.
    pub fn on_commit(&mut self, node: NodeIndex, committed: &CommittedBlock, now_us: u64) {
        let header = &committed.block.header;
        let i = usize::from(node);
        if header.height != self.node_height[i] + 1 {
            return self.fail(
                ViolationKind::CommitGap,
                now_us,
                format!(
                    "node {node} committed height {} after height {} (a gap or a rollback)",
                    header.height, self.node_height[i]
                ),
            );
        }
        if let Err(e) = committed.cert.verify(header, &self.committee) {
            return self.fail(
                ViolationKind::BadCommitCert,
                now_us,
                format!("node {node}, height {}: {e}", header.height),
            );
        }
        self.node_height[i] = header.height;
        let digest = committed.block.digest();
        let h = header.height as usize;
        if h <= self.chain.len() {
            let (canonical, _) = self.chain[h - 1];
            if canonical != digest {
                self.fail(
                    ViolationKind::ConflictingCommit,
                    now_us,
                    format!(
                        "node {node} committed {} at height {h}, others committed {}",
                        short(&digest),
                        short(&canonical)
                    ),
                );
            }
            return;
        }
        // A new height (heights arrive in order per node, so h == len + 1).
        self.chain.push((digest, now_us));
        if now_us >= self.liveness_after_us {
            let gap = now_us - self.last_progress_us.min(now_us);
            self.max_commit_gap_us = self.max_commit_gap_us.max(gap);
            self.last_progress_us = now_us;
            self.progress_view = Some(self.max_honest_view);
            if gap > self.liveness_bound_us {
                self.fail(
                    ViolationKind::Liveness,
                    now_us,
                    format!(
                        "no new commit for {} ms after the liveness start; bound {} ms",
                        gap / 1_000,
                        self.liveness_bound_us / 1_000
                    ),
                );
            }
        }
        let mut digests = Vec::new();
        for item in &committed.block.payload.items {
            // Anything that is not a batch certificate (a Byzantine marker)
            // is not a transaction; the payload rule keeps it out of
            // honest votes.
            let Ok(cert) = codec::decode::<BatchCert>(item) else {
                continue;
            };
            if let Err(e) = cert.verify(&self.committee) {
                self.fail(
                    ViolationKind::BadBatchCert,
                    now_us,
                    format!(
                        "height {h}: certificate of batch {} by n{}: {e}",
                        short(&cert.batch),
                        cert.author
                    ),
                );
                continue;
            }
            digests.push(cert.batch);
            self.commit_batch(&cert, h, header.view, now_us);
        }
        self.chain_batches.push(digests);
        self.check_censorship(now_us);
    }

    /// The transactions of a batch certified in canonical height `h`; a
    /// batch committed again (its certificate formed twice) adds nothing:
    /// the mempool delivers it once.
    fn commit_batch(&mut self, cert: &BatchCert, h: usize, view: View, now_us: u64) {
        if !self.committed_batches.insert(cert.batch) {
            return;
        }
        let Some(batch) = self.batches.get(&cert.batch) else {
            return;
        };
        let author = batch.author;
        let author_honest = self.is_honest(author);
        for id in &batch.txs {
            let Some(state) = self.items.get_mut(id) else {
                continue;
            };
            state.commits += 1;
            let again = state.committed_authors.contains(&author);
            state.committed_authors.push(author);
            if state.committed_us.is_none() {
                state.committed_us = Some(now_us);
                state.committed_view = Some(view);
                self.victim_pending.remove(&(state.submitted_us, *id));
            } else if again && author_honest {
                self.duplicate_commits += 1;
                if self.items_exactly_once && self.violation.is_none() {
                    self.violation = Some(Violation {
                        kind: ViolationKind::ItemCommittedTwice,
                        at_ms: now_us / 1_000,
                        message: format!(
                            "transaction {id:?} committed again at height {h}, in another \
                             batch of n{author}"
                        ),
                    });
                }
            } else {
                self.redundant_copies += 1;
            }
        }
    }

    /// An author stored its own batch: from now on the checker knows what
    /// it holds. `author_honest`: count it as sealed by an honest node.
    pub fn on_batch(&mut self, batch: &Batch, digest: Digest) {
        if self.batches.contains_key(&digest) {
            return;
        }
        let honest = self.is_honest(batch.author);
        let mut txs = Vec::with_capacity(batch.txs.len());
        for tx in &batch.txs {
            let Some(id) = item_id(&tx.payload) else {
                continue;
            };
            if honest {
                if let Some(state) = self.items.get_mut(&id) {
                    if !state.sealed_by.contains(&batch.author) {
                        state.sealed_by.push(batch.author);
                    }
                }
            }
            txs.push(id);
        }
        self.batches.insert(
            digest,
            BatchInfo {
                author: batch.author,
                txs,
            },
        );
    }

    /// An honest node's mempool delivered committed `height` with these
    /// batches.
    pub fn on_deliver(&mut self, node: NodeIndex, height: u64, batches: &[Digest], now_us: u64) {
        let i = usize::from(node);
        if height != self.delivered_height[i] + 1 {
            return self.fail(
                ViolationKind::BadDelivery,
                now_us,
                format!(
                    "node {node} delivered height {height} after height {}",
                    self.delivered_height[i]
                ),
            );
        }
        self.delivered_height[i] = height;
        let certified = self.chain_batches.get(height as usize - 1);
        if let Some(d) = batches
            .iter()
            .find(|d| certified.is_none_or(|c| !c.contains(d)))
        {
            self.fail(
                ViolationKind::BadDelivery,
                now_us,
                format!(
                    "node {node} delivered batch {} at height {height}, which its block does not certify",
                    short(d)
                ),
            );
        }
    }

    /// An honest node's intake accepted transaction `id`.
    pub fn on_accept(&mut self, id: ItemId, node: NodeIndex) {
        let Some(state) = self.items.get_mut(&id) else {
            return;
        };
        if state.accepted_by.is_empty() && self.victims.contains(&id.client) {
            self.victim_pending.insert((state.submitted_us, id));
        }
        if !state.accepted_by.contains(&node) {
            state.accepted_by.push(node);
        }
    }

    /// An honest node crashed: the censorship bound no longer holds for
    /// the censored transactions it accepted (they may be lost with it).
    pub fn on_crash(&mut self, node: NodeIndex) {
        let items = &self.items;
        self.victim_pending
            .retain(|(_, id)| items.get(id).is_none_or(|s| !s.accepted_by.contains(&node)));
    }

    /// Checks the oldest pending censored transaction against the bound.
    fn check_censorship(&mut self, now_us: u64) {
        if self.bound_views.is_none() && self.bound_us.is_none() {
            return;
        }
        if self.view_at_gst.is_none() && now_us >= self.gst_us {
            self.view_at_gst = Some(self.max_honest_view);
        }
        let Some(&(submitted_us, id)) = self.victim_pending.first() else {
            return;
        };
        let start_us = submitted_us.max(self.gst_us);
        if now_us < start_us {
            return;
        }
        let start_view = match self.items.get(&id) {
            Some(s) if submitted_us >= self.gst_us => s.submitted_view,
            Some(s) => self.view_at_gst.unwrap_or(s.submitted_view),
            None => return,
        };
        let views = self.max_honest_view.saturating_sub(start_view);
        let waited_us = now_us - start_us;
        let over_views = self.bound_views.is_some_and(|k| views > k);
        let over_time = self.bound_us.is_some_and(|t| waited_us > t);
        if over_views || over_time {
            self.fail(
                ViolationKind::CensorshipBound,
                now_us,
                format!(
                    "censored transaction {id:?} uncommitted {views} views and {} ms after \
                     its submission (or GST); bound {} views, {} ms",
                    waited_us / 1_000,
                    self.bound_views.map_or("no".to_string(), |k| k.to_string()),
                    self.bound_us
                        .map_or("no".to_string(), |t| (t / 1_000).to_string()),
                ),
            );
        }
    }

    /// A message is about to leave `from` (checked once per send action).
    pub fn on_send(&mut self, from: NodeIndex, message: &Message, now_us: u64) {
        let honest = self.is_honest(from);
        match message {
            Message::Proposal(block) | Message::BlockResponse(block) => {
                if matches!(message, Message::Proposal(_)) && block.author() == from {
                    let digest = block.digest();
                    match self.proposals.insert((from, block.view()), digest) {
                        Some(previous) if previous != digest => {
                            bump(&mut self.conflicting_proposals, from)
                        }
                        _ => {}
                    }
                    if self.proposals.len() > 200_000 {
                        let floor = block.view().saturating_sub(10_000);
                        self.proposals.retain(|(_, v), _| *v >= floor);
                    }
                }
                self.check_qc(&block.parent_qc, honest, now_us);
                if let Some(tc) = &block.tc {
                    self.check_tc(tc, honest, now_us);
                }
            }
            Message::Qc(qc) => self.check_qc(qc, honest, now_us),
            Message::Tc(tc) => self.check_tc(tc, honest, now_us),
            Message::Timeout(t) => self.check_qc(&t.high_qc, honest, now_us),
            Message::Vote(vote) if !honest && vote.author == from => {
                match self.votes.insert((from, vote.view), vote.block) {
                    Some(previous) if previous != vote.block => {
                        bump(&mut self.faulty_double_votes, from)
                    }
                    _ => {}
                }
            }
            Message::Vote(vote) if honest => {
                match self.votes.insert((from, vote.view), vote.block) {
                    Some(previous) if previous != vote.block => {
                        self.honest_double_votes += 1;
                        if self.check_equivocation {
                            self.fail(
                                ViolationKind::HonestEquivocation,
                                now_us,
                                format!(
                                    "honest node {from} voted for {} and {} in view {}",
                                    short(&previous),
                                    short(&vote.block),
                                    vote.view
                                ),
                            );
                        }
                    }
                    _ => {}
                }
                if self.votes.len() > 200_000 {
                    let floor = vote.view.saturating_sub(10_000);
                    self.votes.retain(|(_, v), _| *v >= floor);
                }
            }
            _ => {}
        }
    }

    fn check_tc(&mut self, tc: &ordo_consensus::TimeoutCert, honest: bool, now_us: u64) {
        if !honest {
            // Byzantine TCs may be bogus; only their QC can matter.
            if tc.verify(&self.committee).is_ok() {
                self.check_qc(&tc.high_qc, false, now_us);
            }
            return;
        }
        if let Err(e) = tc.verify(&self.committee) {
            return self.fail(
                ViolationKind::BadCertificate,
                now_us,
                format!("honest node sent an invalid TC for view {}: {e}", tc.view),
            );
        }
        self.check_qc(&tc.high_qc, true, now_us);
    }

    fn check_qc(&mut self, qc: &QuorumCert, honest: bool, now_us: u64) {
        if qc.view == 0 || self.valid_qcs.contains(&(qc.view, qc.block)) {
            return;
        }
        if let Err(e) = qc.verify(&self.committee) {
            if honest {
                self.fail(
                    ViolationKind::BadCertificate,
                    now_us,
                    format!("honest node sent an invalid QC for view {}: {e}", qc.view),
                );
            }
            return;
        }
        self.valid_qcs.insert((qc.view, qc.block));
        match self.qc_views.insert(qc.view, qc.block) {
            Some(other) if other != qc.block => self.fail(
                ViolationKind::TwoQcsInView,
                now_us,
                format!(
                    "two QCs in view {}: for {} and for {}",
                    qc.view,
                    short(&other),
                    short(&qc.block)
                ),
            ),
            _ => {}
        }
    }

    /// An honest node is in `view` now.
    pub fn on_view(&mut self, node: NodeIndex, view: View, now_us: u64) {
        let higher = view > self.max_honest_view;
        self.max_honest_view = self.max_honest_view.max(view);
        if higher {
            self.check_censorship(now_us);
        }
        if view > self.view_bound {
            return self.fail(
                ViolationKind::ViewJump,
                now_us,
                format!("honest node {node} jumped to view {view}"),
            );
        }
        if now_us < self.liveness_after_us {
            return;
        }
        let since = *self.progress_view.get_or_insert(self.max_honest_view);
        let views = self.max_honest_view - since;
        self.max_commit_gap_views = self.max_commit_gap_views.max(views);
        if self.liveness_bound_views > 0 && views > self.liveness_bound_views {
            self.fail(
                ViolationKind::Liveness,
                now_us,
                format!(
                    "honest nodes went from view {since} to view {} after the liveness start \
                     without a new commit; bound {} views",
                    self.max_honest_view, self.liveness_bound_views
                ),
            );
        }
    }

    pub fn on_submit(&mut self, id: ItemId, recipient: Option<NodeIndex>, now_us: u64) {
        self.items.insert(
            id,
            ItemState {
                submitted_us: now_us,
                recipient,
                committed_us: None,
                commits: 0,
                submitted_view: self.max_honest_view,
                committed_view: None,
                accepted_by: Vec::new(),
                sealed_by: Vec::new(),
                committed_authors: Vec::new(),
            },
        );
        self.check_censorship(now_us);
    }

    /// End of the run. `kept(item)` says whether an honest node that was
    /// given the item still held it (was not crashed since the submission).
    pub fn finish(
        &mut self,
        end_us: u64,
        load_stop_us: u64,
        kept: impl Fn(&ItemState) -> bool,
    ) -> u64 {
        self.check_censorship(end_us);
        if end_us > self.liveness_after_us {
            let gap = end_us - self.last_progress_us.min(end_us);
            self.max_commit_gap_us = self.max_commit_gap_us.max(gap);
            if self.max_commit_gap_us > self.liveness_bound_us {
                self.fail(
                    ViolationKind::Liveness,
                    end_us,
                    format!(
                        "no new commit for {} ms after the liveness start ({} ms); bound {} ms",
                        self.max_commit_gap_us / 1_000,
                        self.liveness_after_us / 1_000,
                        self.liveness_bound_us / 1_000
                    ),
                );
            }
        }
        let mut lost = 0;
        let mut missing: Vec<(ItemId, u64)> = Vec::new();
        for (id, state) in &self.items {
            if state.committed_us.is_some() || state.submitted_us > load_stop_us {
                continue;
            }
            if kept(state) {
                missing.push((*id, state.submitted_us));
            } else if state.accepted_by.is_empty() {
                self.not_accepted += 1;
            } else {
                lost += 1;
            }
        }
        missing.sort_unstable();
        if let Some((id, at)) = missing.first() {
            let n = missing.len();
            self.fail(
                ViolationKind::ItemNotCommitted,
                end_us,
                format!(
                    "{n} accepted items never committed, e.g. {id:?} submitted at {} ms",
                    at / 1_000
                ),
            );
        }
        lost
    }
}

fn bump(counts: &mut [u64], node: NodeIndex) {
    if let Some(c) = counts.get_mut(usize::from(node)) {
        *c += 1;
    }
}

pub fn short(d: &Digest) -> String {
    d.to_hex()[..8].to_string()
}

#[cfg(test)]
mod tests {
    //! Each invariant fires on a hand-built input that breaks it, and not on
    //! the same input without the break. Blocks and certificates are really
    //! signed (`ordo_consensus::testing::Fixture`, ed25519, n = 4).
    use ordo_consensus::messages::vote_message;
    use ordo_consensus::testing::Fixture;
    use ordo_consensus::{Block, CommitCert, PayloadItem, Vote};

    use super::*;

    const MS: u64 = 1_000;

    /// A 4-node scenario; `checks` is the `[checks]` table's body.
    fn checker(fx: &Fixture, extra: &str) -> Checker {
        let text = format!("name = \"t\"\nnodes = 4\nduration_ms = 20_000\n{extra}");
        let scenario = Scenario::parse(&text, "test").unwrap();
        Checker::new(&scenario, fx.committee.clone())
    }

    /// `len` committed blocks in views 1, 2, …, each certified by the next
    /// block's QC (the 2-chain rule); block `k` (from 0) carries `items(k)`
    /// plus `marker`, so two chains with different markers conflict.
    fn chain(
        fx: &Fixture,
        len: usize,
        marker: &[u8],
        items: impl Fn(usize) -> Vec<PayloadItem>,
    ) -> Vec<CommittedBlock> {
        let mut blocks: Vec<Block> = Vec::new();
        let mut parent = fx.genesis();
        let mut qc = fx.genesis_qc();
        for k in 0..=len {
            let view = k as View + 1;
            let mut payload = items(k);
            payload.push(marker.to_vec());
            let block = fx.block(view, (view % 4) as NodeIndex, &parent, &qc, None, payload);
            qc = fx.qc(&block);
            parent = block.clone();
            blocks.push(block);
        }
        (0..len)
            .map(|k| CommittedBlock {
                block: blocks[k].clone(),
                cert: CommitCert {
                    chain: vec![blocks[k + 1].header.clone()],
                    qc: fx.qc(&blocks[k + 1]),
                },
            })
            .collect()
    }

    fn kind(c: &Checker) -> Option<ViolationKind> {
        c.violation.as_ref().map(|v| v.kind)
    }

    #[test]
    fn agreeing_commits_pass_and_a_conflicting_commit_fails() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 3, b"a", |_| Vec::new());
        let b = chain(&fx, 3, b"b", |_| Vec::new());
        let mut c = checker(&fx, "");
        for node in 0..4 {
            for block in &a {
                c.on_commit(node, block, 100 * MS);
            }
        }
        assert_eq!(kind(&c), None);
        assert_eq!(c.chain.len(), 3);
        let mut c = checker(&fx, "");
        c.on_commit(0, &a[0], 100 * MS);
        c.on_commit(1, &b[0], 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::ConflictingCommit));
    }

    #[test]
    fn a_height_gap_fails() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 3, b"a", |_| Vec::new());
        let mut c = checker(&fx, "");
        c.on_commit(0, &a[0], 100 * MS);
        c.on_commit(0, &a[2], 200 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::CommitGap));
    }

    /// The checker keeps each node's height across the node's restarts, so a
    /// restarted node that commits a height again has rolled back.
    #[test]
    fn a_rollback_after_a_restart_fails() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 3, b"a", |_| Vec::new());
        let mut c = checker(&fx, "");
        c.on_commit(2, &a[0], 100 * MS);
        c.on_commit(2, &a[1], 200 * MS);
        // (node 2 crashes and restarts from storage that lost height 2)
        c.on_commit(2, &a[0], 300 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::CommitGap));
        assert!(c
            .violation
            .unwrap()
            .message
            .contains("height 1 after height 2"));
    }

    #[test]
    fn a_commit_with_a_bad_certificate_fails() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 2, b"a", |_| Vec::new());
        // Two signers of four: below the quorum of three.
        let mut short = a[0].clone();
        short.cert.qc.votes.truncate(2);
        let mut c = checker(&fx, "");
        c.on_commit(0, &short, 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::BadCommitCert));
        // A certificate for another block (the 2-chain does not link).
        let mut other = a[0].clone();
        other.cert = a[1].cert.clone();
        let mut c = checker(&fx, "");
        c.on_commit(0, &other, 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::BadCommitCert));
    }

    #[test]
    fn an_invalid_qc_or_tc_from_an_honest_node_fails_but_not_from_a_byzantine_one() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 2, b"a", |_| Vec::new());
        let mut bad_qc = a[0].cert.qc.clone();
        bad_qc.votes.truncate(2);
        let byzantine = "[[byzantine]]\nnode = 3\nbehaviour = \"flood\"\n";
        let mut c = checker(&fx, byzantine);
        c.on_send(3, &Message::Qc(Box::new(bad_qc.clone())), 100 * MS);
        assert_eq!(kind(&c), None);
        c.on_send(1, &Message::Qc(Box::new(bad_qc.clone())), 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::BadCertificate));

        let good_tc = fx.tc(3, &[1], &fx.qc(&a[0].block));
        let mut c = checker(&fx, byzantine);
        c.on_send(1, &Message::Tc(Box::new(good_tc.clone())), 100 * MS);
        assert_eq!(kind(&c), None);
        let mut bad_tc = good_tc;
        bad_tc.signers.truncate(2);
        c.on_send(3, &Message::Tc(Box::new(bad_tc.clone())), 100 * MS);
        assert_eq!(kind(&c), None);
        c.on_send(1, &Message::Tc(Box::new(bad_tc)), 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::BadCertificate));
    }

    #[test]
    fn two_valid_qcs_in_one_view_fail() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 1, b"a", |_| Vec::new());
        let b = chain(&fx, 1, b"b", |_| Vec::new());
        let mut c = checker(&fx, "");
        c.on_send(0, &Message::Qc(Box::new(a[0].cert.qc.clone())), 100 * MS);
        c.on_send(1, &Message::Qc(Box::new(a[0].cert.qc.clone())), 100 * MS);
        assert_eq!(kind(&c), None);
        c.on_send(2, &Message::Qc(Box::new(b[0].cert.qc.clone())), 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::TwoQcsInView));
    }

    #[test]
    fn an_honest_double_vote_fails_and_a_faulty_one_is_counted() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 1, b"a", |_| Vec::new());
        let b = chain(&fx, 1, b"b", |_| Vec::new());
        let vote = |node: NodeIndex, block: &Block| {
            let digest = block.digest();
            Message::Vote(Vote {
                view: block.view(),
                block: digest,
                author: node,
                signature: fx.keys[usize::from(node)].sign(&vote_message(block.view(), &digest)),
                inclusion: None,
            })
        };
        let mut c = checker(
            &fx,
            "[[byzantine]]\nnode = 3\nbehaviour = \"double_vote\"\n",
        );
        c.on_send(3, &vote(3, &a[0].block), 100 * MS);
        c.on_send(3, &vote(3, &b[0].block), 100 * MS);
        assert_eq!(kind(&c), None);
        assert_eq!(c.faulty_double_votes, vec![0, 0, 0, 1]);
        c.on_send(1, &vote(1, &a[0].block), 100 * MS);
        c.on_send(1, &vote(1, &a[0].block), 100 * MS);
        assert_eq!(kind(&c), None, "the same vote twice is no equivocation");
        c.on_send(1, &vote(1, &b[0].block), 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::HonestEquivocation));
    }

    #[test]
    fn conflicting_proposals_are_counted_per_author() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 1, b"a", |_| Vec::new());
        let b = chain(&fx, 1, b"b", |_| Vec::new());
        let (pa, pb) = (&a[0].block, &b[0].block);
        let author = pa.author();
        let mut c = checker(&fx, "");
        c.on_send(author, &Message::Proposal(Box::new(pa.clone())), 100 * MS);
        c.on_send(author, &Message::Proposal(Box::new(pa.clone())), 100 * MS);
        // Relayed by someone else: not the author's proposal.
        c.on_send(2, &Message::Proposal(Box::new(pb.clone())), 100 * MS);
        assert_eq!(c.conflicting_proposals, vec![0; 4]);
        c.on_send(author, &Message::Proposal(Box::new(pb.clone())), 100 * MS);
        let mut expected = vec![0; 4];
        expected[usize::from(author)] = 1;
        assert_eq!(c.conflicting_proposals, expected);
    }

    #[test]
    fn a_view_jump_fails() {
        let fx = Fixture::new(4);
        let mut c = checker(&fx, "");
        c.on_view(1, 29_000, 100 * MS);
        assert_eq!(kind(&c), None);
        c.on_view(1, 1 << 40, 100 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::ViewJump));
    }

    const LIVENESS_MS: &str =
        "[checks]\nliveness_after_ms = 1_000\nliveness_bound_ms = 2_000\nliveness_bound_views = 0\n";

    #[test]
    fn a_commit_stall_after_the_liveness_start_fails() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 3, b"a", |_| Vec::new());
        // Before the liveness start any stall is allowed.
        let mut c = checker(&fx, LIVENESS_MS);
        c.on_commit(0, &a[0], 100 * MS);
        c.on_commit(0, &a[1], 2_900 * MS);
        c.on_commit(0, &a[2], 4_800 * MS);
        c.finish(6_000 * MS, 0, |_| true);
        assert_eq!(kind(&c), None);
        assert_eq!(c.max_commit_gap_us, 1_900 * MS);
        // 2.5 s between commits after it.
        let mut c = checker(&fx, LIVENESS_MS);
        c.on_commit(0, &a[0], 1_500 * MS);
        c.on_commit(0, &a[1], 4_000 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::Liveness));
        // No commit at all from 1.5 s to the end of the run.
        let mut c = checker(&fx, LIVENESS_MS);
        c.on_commit(0, &a[0], 1_500 * MS);
        c.finish(3_600 * MS, 0, |_| true);
        assert_eq!(kind(&c), Some(ViolationKind::Liveness));
    }

    #[test]
    fn views_without_a_commit_after_the_liveness_start_fail() {
        let fx = Fixture::new(4);
        let a = chain(&fx, 2, b"a", |_| Vec::new());
        let bound = "[checks]\nliveness_after_ms = 1_000\nliveness_bound_views = 5\n";
        let mut c = checker(&fx, bound);
        // Before the liveness start views may pass without commits.
        c.on_view(0, 40, 900 * MS);
        c.on_view(0, 41, 1_000 * MS);
        c.on_view(0, 46, 1_100 * MS);
        assert_eq!(kind(&c), None);
        c.on_commit(0, &a[0], 1_200 * MS);
        c.on_view(1, 51, 1_300 * MS);
        assert_eq!(kind(&c), None);
        assert_eq!(c.max_commit_gap_views, 5);
        c.on_view(1, 52, 1_400 * MS);
        assert_eq!(kind(&c), Some(ViolationKind::Liveness));
        assert!(c.violation.unwrap().message.contains("bound 5 views"));
    }

    #[test]
    fn an_item_never_committed_fails_unless_its_holders_crashed() {
        let fx = Fixture::new(4);
        let mut c = checker(&fx, "");
        let id = ItemId { client: 0, seq: 7 };
        c.on_submit(id, None, 100 * MS);
        c.on_accept(id, 1);
        // Submitted after the load stopped: not required.
        c.on_submit(ItemId { client: 0, seq: 8 }, None, 16_000 * MS);
        assert_eq!(c.finish(20_000 * MS, 15_000 * MS, |_| false), 1);
        assert_eq!(kind(&c), None, "lost with every holder: no violation");
        let mut c = checker(&fx, "");
        c.on_submit(id, Some(2), 100 * MS);
        c.finish(20_000 * MS, 15_000 * MS, |s| s.recipient == Some(2));
        assert_eq!(kind(&c), Some(ViolationKind::ItemNotCommitted));
    }

    // Committed twice (and copies that are not duplicates): tests/mempool.rs,
    // where items are transactions in certified batches.
}
