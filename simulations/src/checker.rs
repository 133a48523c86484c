//! The invariants checked while a run goes. The first violation stops the
//! run; its seed reproduces it exactly.
//!
//! Safety (only honest nodes' outputs count):
//! - **agreement**: no two different blocks committed at one height;
//! - **no rollback**: each node commits heights 1, 2, 3, … with no gap or
//!   repeat, across restarts (a restarted node continues its prefix);
//! - **certificates**: every commit certificate verifies
//!   (`CommitCert::verify`: 2f+1 distinct valid signers), and every QC and
//!   TC an honest node sends verifies;
//! - **one QC per view**: no two valid QCs for different blocks in a view,
//!   among all QCs seen on the wire;
//! - **no honest equivocation**: an honest node never signs two different
//!   votes in one view (a safety-rule invariant; optional);
//! - **no view jump**: an honest node's view stays below a physical bound
//!   (bogus high certificates must not move it).
//!
//! Liveness: after the liveness start, some honest node commits a new block
//! at least every `liveness_bound_ms`; every accepted item is committed by
//! the end of the run (exactly once, if required).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ordo_consensus::{CommittedBlock, Message, QuorumCert, View};
use ordo_types::{Committee, Digest, NodeIndex};
use serde::Serialize;

use crate::load::{item_id, ItemId};
use crate::scenario::Scenario;

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

/// What is known about one generated item.
#[derive(Clone, Debug)]
pub struct ItemState {
    pub submitted_us: u64,
    /// The one node it was given to (`submit_to = "one"`); `None` = all.
    pub recipient: Option<NodeIndex>,
    pub committed_us: Option<u64>,
    pub commits: u32,
    /// The highest view any honest node was in at submission.
    pub submitted_view: View,
    /// The view of the block that first committed it.
    pub committed_view: Option<View>,
}

pub struct Checker {
    committee: Arc<Committee>,
    honest: Vec<bool>,
    check_equivocation: bool,
    items_exactly_once: bool,
    liveness_after_us: u64,
    liveness_bound_us: u64,
    view_bound: View,
    /// Canonical chain: digest and first commit time per height (index h-1).
    pub chain: Vec<(Digest, u64)>,
    /// Heights committed per node (persisted across restarts).
    pub node_height: Vec<u64>,
    qc_views: HashMap<View, Digest>,
    valid_qcs: HashSet<(View, Digest)>,
    votes: HashMap<(NodeIndex, View), Digest>,
    pub honest_double_votes: u64,
    pub items: HashMap<ItemId, ItemState>,
    /// The highest view seen at an honest node so far.
    pub max_honest_view: View,
    pub duplicate_commits: u64,
    last_progress_us: u64,
    pub max_commit_gap_us: u64,
    pub violation: Option<Violation>,
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
            view_bound: scenario.duration_ms + 10_000,
            chain: Vec::new(),
            node_height: vec![0; scenario.nodes],
            qc_views: HashMap::new(),
            valid_qcs: HashSet::new(),
            votes: HashMap::new(),
            honest_double_votes: 0,
            items: HashMap::new(),
            max_honest_view: 0,
            duplicate_commits: 0,
            last_progress_us: liveness_after_us,
            max_commit_gap_us: 0,
            violation: None,
        }
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
        for item in &committed.block.payload.items {
            let Some(id) = item_id(item) else { continue };
            let Some(state) = self.items.get_mut(&id) else {
                continue;
            };
            state.commits += 1;
            if state.committed_us.is_none() {
                state.committed_us = Some(now_us);
                state.committed_view = Some(header.view);
            } else {
                self.duplicate_commits += 1;
                if self.items_exactly_once {
                    self.fail(
                        ViolationKind::ItemCommittedTwice,
                        now_us,
                        format!("item {id:?} committed again at height {h}"),
                    );
                }
            }
        }
    }

    /// A message is about to leave `from` (checked once per send action).
    pub fn on_send(&mut self, from: NodeIndex, message: &Message, now_us: u64) {
        let honest = self.is_honest(from);
        match message {
            Message::Proposal(block) | Message::BlockResponse(block) => {
                self.check_qc(&block.parent_qc, honest, now_us);
                if let Some(tc) = &block.tc {
                    self.check_tc(tc, honest, now_us);
                }
            }
            Message::Qc(qc) => self.check_qc(qc, honest, now_us),
            Message::Tc(tc) => self.check_tc(tc, honest, now_us),
            Message::Timeout(t) => self.check_qc(&t.high_qc, honest, now_us),
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
        self.max_honest_view = self.max_honest_view.max(view);
        if view > self.view_bound {
            self.fail(
                ViolationKind::ViewJump,
                now_us,
                format!("honest node {node} jumped to view {view}"),
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
            },
        );
    }

    /// End of the run. `kept(item)` says whether an honest node that was
    /// given the item still held it (was not crashed since the submission).
    pub fn finish(
        &mut self,
        end_us: u64,
        load_stop_us: u64,
        kept: impl Fn(&ItemState) -> bool,
    ) -> u64 {
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

pub fn short(d: &Digest) -> String {
    d.to_hex()[..8].to_string()
}
