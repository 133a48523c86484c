//! Who leads a view. Behind a trait so stable leaders or reputation-based
//! election can replace round-robin without touching the core.

use std::collections::BTreeSet;

use ordo_types::NodeIndex;

use crate::config::Config;
use crate::messages::{Block, View};

/// A deterministic map from view to leader; every honest node must compute
/// the same answer from the same inputs.
pub trait LeaderElection: Send {
    fn leader(&self, view: View) -> NodeIndex;

    /// The leader of `view` when `view` is entered through a TC for
    /// `view - 1` (a proposal carrying that TC is judged by this alone).
    fn leader_after_tc(&self, view: View) -> NodeIndex {
        self.leader(view)
    }

    /// A verified TC for `view` was seen (elections that react to failed
    /// views use it; round-robin does not).
    fn observe_tc(&mut self, _view: View) {}

    /// How many blocks [`LeaderElection::leader_after`] looks at: the
    /// certified block, then its ancestors.
    fn history(&self) -> usize {
        1
    }

    /// The leader of `chain[0].view() + 1` entered through a QC for
    /// `chain[0]`: where votes for that block go, and who may propose a
    /// child of it in the next view. `chain` holds up to
    /// [`LeaderElection::history`] blocks, each the parent of the one
    /// before. Every node that holds them computes the same; `None` if the
    /// answer needs ancestors not given (a node that just restarted from a
    /// root without its ancestors).
    fn leader_after(&self, chain: &[&Block]) -> Option<NodeIndex> {
        chain.first().map(|b| self.leader(b.view() + 1))
    }
}

/// The election a host builds from its [`Config`]: stable leaders for
/// `leader_term_views > 1`; otherwise reputation if `leader_reputation`
/// (the default), else plain round-robin.
pub fn election(committee_size: usize, config: &Config) -> Box<dyn LeaderElection> {
    if config.leader_term_views > 1 {
        Box::new(StableLeaders::new(committee_size, config.leader_term_views))
    } else if config.leader_reputation {
        Box::new(Reputation::new(committee_size))
    } else {
        Box::new(RoundRobin::new(committee_size))
    }
}

/// Blocks whose QCs and authors make up the active set of [`Reputation`].
const REPUTATION_WINDOW: usize = 3;

/// Round-robin over the members that are active in the chain: the leader
/// after a certified block `B` is the first member, in round-robin order
/// from `B.view() + 1`, that signed the QC carried by `B` or by one of its
/// two ancestors, or authored one of the three.
///
/// - A crashed or cut-off member signs no QC, so it is skipped within
///   three views: one node down costs (almost) no view at all, where plain
///   round-robin loses two views (its own, and the one whose votes go to
///   it) per rotation, each after a timeout.
/// - The input is `B` and its ancestors, which every voter for `B` holds:
///   all honest nodes agree on where the votes for `B` go and who proposes
///   next. A node that lacks the ancestors (it just restarted from `B`)
///   gets `None` and does not judge the leader for that one view. A view
///   entered through a TC falls back to round-robin
///   ([`LeaderElection::leader_after_tc`]), which needs nothing but the view.
/// - When every member is live it is round-robin, except that a live
///   member left out of three QCs in a row (an aggregator takes the first
///   `2f + 1` votes) loses that turn to the next. Aggregators can steer a
///   turn away from at most `f` live members by leaving their votes out;
///   they cannot make a member lead that is not in the window.
/// - A Byzantine leader that censors still signs QCs and keeps its turns;
///   the inclusion rule, not the election, deals with it.
#[derive(Clone, Debug)]
pub struct Reputation {
    size: u64,
}

impl Reputation {
    pub fn new(committee_size: usize) -> Self {
        Reputation {
            size: committee_size.clamp(1, usize::from(u16::MAX)) as u64,
        }
    }
}

impl LeaderElection for Reputation {
    fn leader(&self, view: View) -> NodeIndex {
        (view % self.size) as NodeIndex
    }

    fn history(&self) -> usize {
        REPUTATION_WINDOW
    }

    fn leader_after(&self, chain: &[&Block]) -> Option<NodeIndex> {
        let next = chain.first()?.view() + 1;
        let window = &chain[..chain.len().min(REPUTATION_WINDOW)];
        let reaches_genesis = window.last().is_some_and(|b| b.view() == 0);
        if window.len() < REPUTATION_WINDOW && !reaches_genesis {
            return None;
        }
        if window
            .iter()
            .any(|b| b.view() == 0 || b.parent_qc.votes.is_empty())
        {
            return Some(self.leader(next)); // no record of anyone before genesis
        }
        let mut active = vec![false; self.size as usize];
        for block in window {
            let signers = block.parent_qc.votes.iter().map(|(i, _)| *i);
            for member in signers.chain([block.author()]) {
                if let Some(slot) = active.get_mut(usize::from(member)) {
                    *slot = true;
                }
            }
        }
        (0..self.size)
            .map(|k| ((next + k) % self.size) as NodeIndex)
            .find(|m| active[usize::from(*m)])
    }
}

/// Leader of view `v` is member `v mod n`.
#[derive(Clone, Debug)]
pub struct RoundRobin {
    size: u16,
}

impl RoundRobin {
    pub fn new(committee_size: usize) -> Self {
        RoundRobin {
            size: committee_size.clamp(1, usize::from(u16::MAX)) as u16,
        }
    }
}

impl LeaderElection for RoundRobin {
    fn leader(&self, view: View) -> NodeIndex {
        (view % u64::from(self.size)) as NodeIndex
    }
}

/// TC views a [`StableLeaders`] remembers (older terms are long over).
const REMEMBERED_TCS: usize = 256;

/// Stable leaders: one leader per term of `term_views` views while views
/// succeed; a timed-out view ends the term.
///
/// **Rule.** Let `t` be the highest view below `v` for which a TC is known
/// (none: `t = 0`). The current run of successful views started at
/// `s = t + 1`; it is cut into terms of `term_views` views, and term `k`
/// (`k = (v - s) / term_views`) is led by member `(s + k) mod n`.
///
/// - A proposal that carries a TC for `v - 1` starts a run at `v`, so its
///   leader is `v mod n` whatever else a node knows: judging such proposals
///   needs nothing but the proposal ([`LeaderElection::leader_after_tc`]).
/// - A leader that makes progress keeps its term to the end, then hands
///   over to the next member: nobody leads forever.
/// - A leader whose view times out (for instance because honest replicas
///   refuse a proposal that breaks the inclusion rule) loses the term at
///   the TC: view `t + 1` is led by `(t + 1) mod n`. (That is the failed
///   leader again only if `t + 1 ≡ s + k (mod n)`; then its next proposal
///   must pass the same rule or time out too, and `t + 2` moves on.)
/// - Two honest nodes can disagree about `v` only if one knows a TC for a
///   view the other entered through a QC (both exist for the same view).
///   Their next proposal then fails at most once; the TC of that failure
///   is carried by the next proposal and both agree again.
/// - `term_views = 1` is exactly round-robin.
#[derive(Clone, Debug)]
pub struct StableLeaders {
    size: u64,
    term_views: u64,
    tcs: BTreeSet<View>,
}

impl StableLeaders {
    pub fn new(committee_size: usize, term_views: u64) -> Self {
        StableLeaders {
            size: committee_size.clamp(1, usize::from(u16::MAX)) as u64,
            term_views: term_views.max(1),
            tcs: BTreeSet::new(),
        }
    }

    fn leader_from(&self, start: View, view: View) -> NodeIndex {
        if view < start {
            return (view % self.size) as NodeIndex;
        }
        let term = (view - start) / self.term_views;
        ((start + term) % self.size) as NodeIndex
    }
}

impl LeaderElection for StableLeaders {
    fn leader(&self, view: View) -> NodeIndex {
        let start = self.tcs.range(..view).next_back().map_or(1, |t| t + 1);
        self.leader_from(start, view)
    }

    fn leader_after_tc(&self, view: View) -> NodeIndex {
        self.leader_from(view, view)
    }

    fn observe_tc(&mut self, view: View) {
        if self.tcs.insert(view) && self.tcs.len() > REMEMBERED_TCS {
            self.tcs.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_of_one_is_round_robin() {
        let rr = RoundRobin::new(4);
        let mut stable = StableLeaders::new(4, 1);
        stable.observe_tc(6);
        for v in 0..40 {
            assert_eq!(stable.leader(v), rr.leader(v), "view {v}");
        }
    }

    #[test]
    fn stable_leader_keeps_its_term_and_loses_it_on_a_tc() {
        let mut s = StableLeaders::new(4, 10);
        // Run from view 1: views 1..=10 led by 1, 11..=20 by 2, ...
        assert!((1..=10).all(|v| s.leader(v) == 1));
        assert!((11..=20).all(|v| s.leader(v) == 2));
        // View 13 times out: a new run starts at 14, led by 14 mod 4 = 2...
        s.observe_tc(13);
        assert_eq!(s.leader(13), 2, "views before the TC keep their leader");
        assert!((14..=23).all(|v| s.leader(v) == 2));
        assert_eq!(s.leader(24), 3);
        // ...and a TC for 14 hands over to 15 mod 4 = 3.
        s.observe_tc(14);
        assert_eq!(s.leader(15), 3);
        assert_eq!(s.leader_after_tc(15), 3);
        assert_eq!(s.leader_after_tc(15), s.leader(15));
    }

    fn block(view: View, author: NodeIndex, signers: &[NodeIndex]) -> Block {
        let f = crate::testing::Fixture::new(4);
        let mut block = f.block(
            view,
            author,
            &f.genesis(),
            &f.genesis_qc(),
            None,
            Vec::new(),
        );
        block.parent_qc.votes = signers
            .iter()
            .map(|i| (*i, ordo_types::Signature([0; 64])))
            .collect();
        block
    }

    #[test]
    fn reputation_skips_members_missing_from_the_window() {
        let r = Reputation::new(4);
        let after = |blocks: &[Block]| r.leader_after(&blocks.iter().collect::<Vec<_>>());
        // Everyone active: round-robin.
        for v in 3..20 {
            let chain: Vec<Block> = (0..3)
                .map(|k| block(v - k, ((v - k) % 4) as NodeIndex, &[0, 1, 2, 3]))
                .collect();
            assert_eq!(after(&chain), Some(((v + 1) % 4) as NodeIndex));
        }
        // Member 3 crashed: it signs nothing and authors nothing.
        let chain = [
            block(6, 2, &[0, 1, 2]),
            block(5, 1, &[0, 1, 2]),
            block(4, 0, &[0, 1, 2]),
        ];
        assert_eq!(after(&chain), Some(0), "view 7 would be 3's: skipped");
        // In one QC of the window, or an author in it: active.
        let chain = [
            block(6, 2, &[0, 1, 2]),
            block(5, 1, &[0, 1, 3]),
            block(4, 0, &[0, 1, 2]),
        ];
        assert_eq!(after(&chain), Some(3));
        let chain = [
            block(6, 2, &[0, 1, 2]),
            block(5, 1, &[0, 1, 2]),
            block(4, 3, &[0, 1, 2]),
        ];
        assert_eq!(after(&chain), Some(3));
        // Too short a window that does not reach genesis: no answer.
        assert_eq!(after(&chain[..2]), None);
        // A window reaching back to genesis: no record yet, round-robin.
        let genesis = crate::testing::Fixture::new(4).genesis();
        let first = block(1, 1, &[]);
        assert_eq!(after(&[first.clone(), genesis.clone()]), Some(2));
        assert_eq!(after(&[block(2, 2, &[0, 1]), first, genesis]), Some(3));
        // After a TC: plain round-robin, from the view alone.
        assert_eq!(r.leader_after_tc(7), 3);
    }

    #[test]
    fn leader_after_tc_needs_no_history() {
        let fresh = StableLeaders::new(7, 20);
        let mut seen = StableLeaders::new(7, 20);
        for t in [3, 9, 30, 31] {
            seen.observe_tc(t);
            assert_eq!(fresh.leader_after_tc(t + 1), seen.leader(t + 1));
        }
    }
}
