//! Collecting votes into QCs and timeouts into TCs.
//!
//! Votes are checked lazily: the sender is authenticated by the transport and
//! must be the vote's author, so only a voter can lie about its own vote.
//! An unverified vote waits in a pending set that decides nothing: it only
//! counts towards *trying* a batch verification. When a block gathers a
//! quorum, all its votes are batch-verified at once; on failure each is
//! checked alone and the bad ones are dropped and blamed. A QC is built
//! only from verified votes, and a vote becomes evidence ([`Fault::DoubleVote`])
//! only after both conflicting votes verified.
//!
//! The pending set is bounded: one vote per author per view (a second,
//! different vote is verified at once, see [`VoteAggregator::add`]), for
//! the views the core admits (`view - 1 ..= view + max_view_ahead`), pruned
//! as the view advances; the core strips a vote's inclusion list before
//! adding it, so each pending vote has a fixed size.
//!
//! Timeouts are rare and are verified one by one on arrival by the core.

use std::collections::{BTreeMap, HashMap, HashSet};

use ordo_types::{Committee, Digest, NodeIndex};

use crate::messages::{vote_message, QuorumCert, Timeout, TimeoutCert, View, Vote};
use crate::Fault;

/// Votes of views that have not produced a QC yet.
#[derive(Default)]
pub struct VoteAggregator {
    views: BTreeMap<View, ViewVotes>,
}

#[derive(Default)]
struct ViewVotes {
    by_author: HashMap<NodeIndex, Digest>,
    by_block: HashMap<Digest, Vec<Vote>>,
    /// Authors proven to have voted twice in this view; their further
    /// votes are dropped unread.
    double_voters: HashSet<NodeIndex>,
    certified: bool,
}

/// What adding a vote produced.
#[derive(Debug, Default)]
pub struct VoteOutcome {
    pub qc: Option<QuorumCert>,
    pub faults: Vec<(NodeIndex, Fault)>,
}

impl VoteAggregator {
    /// Adds a vote whose author is a member and is the authenticated sender.
    ///
    /// A vote for another block than the author's pending one is checked at
    /// once: a bad signature is blamed and dropped; a good one makes the
    /// pending vote checked too, and only if both verify is the author
    /// reported for a [`Fault::DoubleVote`] (if the pending one was forged,
    /// it is blamed and the new vote takes its place).
    pub fn add(&mut self, vote: Vote, committee: &Committee) -> VoteOutcome {
        let mut outcome = VoteOutcome::default();
        let view = self.views.entry(vote.view).or_default();
        if view.certified || view.double_voters.contains(&vote.author) {
            return outcome;
        }
        match view.by_author.get(&vote.author).copied() {
            Some(block) if block == vote.block => return outcome,
            Some(first_block) => {
                let second = vote_message(vote.view, &vote.block);
                if committee
                    .verify(vote.author, &second, &vote.signature)
                    .is_err()
                {
                    outcome
                        .faults
                        .push((vote.author, Fault::BadSignature("vote")));
                    return outcome;
                }
                let first = vote_message(vote.view, &first_block);
                let pending = view.by_block.entry(first_block).or_default();
                let position = pending.iter().position(|v| v.author == vote.author);
                let first_valid = position.is_some_and(|i| {
                    committee
                        .verify(vote.author, &first, &pending[i].signature)
                        .is_ok()
                });
                if first_valid {
                    view.double_voters.insert(vote.author);
                    outcome
                        .faults
                        .push((vote.author, Fault::DoubleVote(vote.view)));
                    return outcome;
                }
                if let Some(i) = position {
                    pending.swap_remove(i);
                    outcome
                        .faults
                        .push((vote.author, Fault::BadSignature("vote")));
                }
            }
            None => {}
        }
        view.by_author.insert(vote.author, vote.block);
        let block = vote.block;
        let votes = view.by_block.entry(block).or_default();
        votes.push(vote);
        if votes.len() < committee.quorum() {
            return outcome;
        }
        votes.sort_by_key(|v| v.author);
        let message = vote_message(votes[0].view, &block);
        let items: Vec<(NodeIndex, &[u8], ordo_types::Signature)> = votes
            .iter()
            .map(|v| (v.author, message.as_slice(), v.signature))
            .collect();
        if committee.verify_many(&items).is_err() {
            // Find the liars one by one and forget their votes.
            let (good, bad): (Vec<Vote>, Vec<Vote>) = votes
                .drain(..)
                .partition(|v| committee.verify(v.author, &message, &v.signature).is_ok());
            *votes = good;
            for v in bad {
                view.by_author.remove(&v.author);
                outcome.faults.push((v.author, Fault::BadSignature("vote")));
            }
            if votes.len() < committee.quorum() {
                return outcome;
            }
        }
        view.certified = true;
        outcome.qc = Some(QuorumCert {
            view: votes[0].view,
            block,
            votes: votes.iter().map(|v| (v.author, v.signature)).collect(),
        });
        view.by_block.clear();
        outcome
    }

    /// Forgets every view below `view`.
    pub fn prune_below(&mut self, view: View) {
        self.views = self.views.split_off(&view);
    }

    /// Views currently held (for bounds checks in tests).
    pub fn views_held(&self) -> usize {
        self.views.len()
    }
}

/// Verified timeouts of views that have not produced a TC yet.
#[derive(Default)]
pub struct TimeoutAggregator {
    views: BTreeMap<View, HashMap<NodeIndex, View>>,
    timeouts: BTreeMap<View, Vec<(NodeIndex, View, ordo_types::Signature)>>,
}

impl TimeoutAggregator {
    /// Adds a verified timeout; returns how many distinct members have timed
    /// out in its view, and a TC when that reaches a quorum. `high_qc` is the
    /// node's highest verified QC, already at least as high as the QC of
    /// every timeout added.
    pub fn add(
        &mut self,
        timeout: &Timeout,
        high_qc: &QuorumCert,
        committee: &Committee,
    ) -> (usize, Option<TimeoutCert>) {
        let authors = self.views.entry(timeout.view).or_default();
        if authors.contains_key(&timeout.author) {
            return (authors.len(), None);
        }
        authors.insert(timeout.author, timeout.high_qc.view);
        let signers = self.timeouts.entry(timeout.view).or_default();
        signers.push((timeout.author, timeout.high_qc.view, timeout.signature));
        let count = signers.len();
        if count != committee.quorum() {
            return (count, None);
        }
        let mut signers = signers.clone();
        signers.sort_by_key(|(author, _, _)| *author);
        let tc = TimeoutCert {
            view: timeout.view,
            high_qc: high_qc.clone(),
            signers,
        };
        (count, Some(tc))
    }

    /// How many distinct members timed out in `view` (as added).
    pub fn count(&self, view: View) -> usize {
        self.views.get(&view).map_or(0, HashMap::len)
    }

    /// Forgets every view below `view`.
    pub fn prune_below(&mut self, view: View) {
        self.views = self.views.split_off(&view);
        self.timeouts = self.timeouts.split_off(&view);
    }
}
