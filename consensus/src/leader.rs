//! Who leads a view. Behind a trait so stable leaders or reputation-based
//! election can replace round-robin without touching the core.

use std::collections::BTreeSet;

use ordo_types::NodeIndex;

use crate::messages::View;

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
}

/// The election a host builds from `Config::leader_term_views`: round-robin
/// for 0 or 1, stable leaders otherwise.
pub fn election(committee_size: usize, leader_term_views: u64) -> Box<dyn LeaderElection> {
    if leader_term_views <= 1 {
        Box::new(RoundRobin::new(committee_size))
    } else {
        Box::new(StableLeaders::new(committee_size, leader_term_views))
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
