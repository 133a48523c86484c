//! Who leads a view. Behind a trait so stable leaders or reputation-based
//! election can replace round-robin without touching the core.
//!
//! Elections that look at the chain are judged from blocks every voter
//! holds: after a QC for `B`, from `B` and its ancestors; after a TC, from
//! the block of the TC's high QC and its ancestors. A node that lacks the
//! ancestors gets `None` and does not judge (see the core).

use ordo_types::NodeIndex;

use crate::config::Config;
use crate::messages::{Block, TimeoutCert, View};

/// A deterministic map from view to leader; every honest node must compute
/// the same answer from the same inputs.
pub trait LeaderElection: Send {
    /// The leader of `view` with no chain at hand: round-robin. Hosts use it
    /// as the fallback where the chain-based answer is `None`.
    fn leader(&self, view: View) -> NodeIndex;

    /// How many blocks the chain-based answers look at: the block, then its
    /// ancestors.
    fn history(&self) -> usize {
        1
    }

    /// The leader of `chain[0].view() + 1` entered through a QC for
    /// `chain[0]`: where votes for that block go, and who may propose a
    /// child of it in the next view. `chain` holds up to
    /// [`LeaderElection::history`] blocks, each the parent of the one
    /// before. `None` if the answer needs ancestors not given.
    fn leader_after(&self, chain: &[&Block]) -> Option<NodeIndex> {
        chain.first().map(|b| self.leader(b.view() + 1))
    }

    /// The leader of `view` entered through `tc` (for `view - 1`), whose
    /// high QC certifies `high[0]` (with its ancestors after it, as for
    /// [`LeaderElection::leader_after`]; empty if this node lacks it).
    /// `None` if it needs blocks not given.
    fn leader_after_tc(&self, view: View, tc: &TimeoutCert, high: &[&Block]) -> Option<NodeIndex> {
        let _ = (tc, high);
        Some(self.leader(view))
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

fn committee_len(committee_size: usize) -> u64 {
    committee_size.clamp(1, usize::from(u16::MAX)) as u64
}

/// Leader of view `v` is member `v mod n`.
#[derive(Clone, Debug)]
pub struct RoundRobin {
    size: u64,
}

impl RoundRobin {
    pub fn new(committee_size: usize) -> Self {
        RoundRobin {
            size: committee_len(committee_size),
        }
    }
}

impl LeaderElection for RoundRobin {
    fn leader(&self, view: View) -> NodeIndex {
        (view % self.size) as NodeIndex
    }
}

/// The longest stable-leader term that can be judged right after a
/// restart ([`crate::Recovery::ANCESTORS`] blocks below the root are kept).
pub const MAX_TERM_VIEWS: u64 = 64;

/// Stable leaders: one leader keeps proposing for a term of `term_views`
/// views while its views succeed; a timed-out view hands over to the next
/// member.
///
/// **Rule.** After a QC for `B` the leader is `B`'s author while it has led
/// fewer than `term_views` consecutive views (counted back along the chain
/// while each block is its parent's direct QC child by the same author),
/// else the next member. After a TC for `v - 1` whose high QC certifies
/// `H`: the views `H.view + 1 .. v - 1` all failed, each handing over to
/// the next member, so the leader of `v` is the leader after `H` plus
/// `v - 1 - H.view`.
///
/// - A leader that makes progress keeps its term to the end, then hands
///   over: nobody leads forever.
/// - A leader whose view times out (for instance because honest replicas
///   refuse a proposal that breaks the inclusion rule) is never the leader
///   of the view after it: the next member is.
/// - Judged from `B` (or `H`) and up to `term_views` ancestors, which a
///   voter holds; terms are capped at [`MAX_TERM_VIEWS`] so a restarted
///   node (handed that many committed blocks below its root) can judge at
///   once.
/// - `term_views = 1` is round-robin after QCs.
#[derive(Clone, Debug)]
pub struct StableLeaders {
    size: u64,
    term_views: u64,
}

impl StableLeaders {
    pub fn new(committee_size: usize, term_views: u64) -> Self {
        StableLeaders {
            size: committee_len(committee_size),
            term_views: term_views.clamp(1, MAX_TERM_VIEWS),
        }
    }

    fn next(&self, member: NodeIndex, steps: u64) -> NodeIndex {
        ((u64::from(member) + steps) % self.size) as NodeIndex
    }
}

impl LeaderElection for StableLeaders {
    fn leader(&self, view: View) -> NodeIndex {
        (view % self.size) as NodeIndex
    }

    fn history(&self) -> usize {
        self.term_views as usize + 1
    }

    fn leader_after(&self, chain: &[&Block]) -> Option<NodeIndex> {
        let first = chain.first()?;
        if first.view() == 0 {
            return Some(self.leader(1));
        }
        let author = first.author();
        let mut led = 0u64;
        for (i, block) in chain.iter().enumerate() {
            if block.view() == 0 || block.author() != author {
                break;
            }
            led += 1;
            if led >= self.term_views {
                return Some(self.next(author, 1));
            }
            // The run goes on only through a direct QC child.
            if block.header.parent_view + 1 != block.view() {
                break;
            }
            if i + 1 == chain.len() {
                return None; // the run may be longer than what is given
            }
        }
        Some(author)
    }

    fn leader_after_tc(&self, view: View, _tc: &TimeoutCert, high: &[&Block]) -> Option<NodeIndex> {
        let h = high.first()?;
        let first_failed = self.leader_after(high)?;
        let failed_views = view.checked_sub(1 + h.view())?;
        Some(self.next(first_failed, failed_views))
    }
}

/// Round-robin over the members that are active in the chain: the leader
/// after a certified block `B` is the first member, in round-robin order
/// from `B.view() + 1`, that signed the newest certificate `B` carries (the
/// TC it follows, else its parent's QC) or authored `B`. After a TC for
/// `v - 1` whose high QC certifies `H`: the views after `H` failed one
/// after the other, each handing over to the next member active in `H`, so
/// the leader of `v` is the `(v - 1 - H.view)`-th active member in
/// round-robin order from `H.view + 1`.
///
/// (A window of the last three blocks' QCs was tried first: a crashed
/// member then stayed "active" until three more blocks were certified, and
/// each of its turns before that cost a timeout; a real cluster stalled for
/// seconds.)
///
/// - A crashed or cut-off member signs no QC and no timeout, so it is
///   skipped as soon as one certificate formed without it: one node down
///   costs a view or two, where
///   plain round-robin loses two views (its own, and the one whose votes go
///   to it) per rotation, each after a timeout.
/// - The input is `B` or the TC, which every voter holds: all honest nodes
///   agree on where the votes for `B` go and who proposes next.
/// - When every member is live it is round-robin, except that the live
///   members left out of the QC (an aggregator takes the first `2f + 1`
///   votes) lose that turn to the next. An aggregator can steer a turn away
///   from at most `f` live members by leaving their votes out; it cannot
///   make a member lead that is not in its QC.
/// - A Byzantine leader that censors still signs QCs and keeps its turns;
///   the inclusion rule, not the election, deals with it.
#[derive(Clone, Debug)]
pub struct Reputation {
    size: u64,
}

impl Reputation {
    pub fn new(committee_size: usize) -> Self {
        Reputation {
            size: committee_len(committee_size),
        }
    }

    /// Members active in `block`: the signers of the newest certificate it
    /// carries (its TC if it follows one, else its parent's QC) and its
    /// author; everyone while the chain has no record yet (genesis).
    fn active(&self, block: &Block) -> Vec<bool> {
        let signers: Vec<NodeIndex> = match &block.tc {
            Some(tc) if tc.view + 1 == block.view() => tc.signers.iter().map(|s| s.0).collect(),
            _ => block.parent_qc.votes.iter().map(|(i, _)| *i).collect(),
        };
        if block.view() == 0 || signers.is_empty() {
            return vec![true; self.size as usize];
        }
        let mut active = vec![false; self.size as usize];
        for member in signers.into_iter().chain([block.author()]) {
            if let Some(slot) = active.get_mut(usize::from(member)) {
                *slot = true;
            }
        }
        active
    }

    /// The `skip`-th active member at or after `from`, in round-robin order.
    fn nth_active(&self, active: &[bool], from: u64, skip: u64) -> Option<NodeIndex> {
        let live: Vec<NodeIndex> = (0..self.size)
            .map(|k| ((from + k) % self.size) as NodeIndex)
            .filter(|m| active[usize::from(*m)])
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[(skip % live.len() as u64) as usize])
    }
}

impl LeaderElection for Reputation {
    fn leader(&self, view: View) -> NodeIndex {
        (view % self.size) as NodeIndex
    }

    fn leader_after(&self, chain: &[&Block]) -> Option<NodeIndex> {
        let block = chain.first()?;
        self.nth_active(&self.active(block), block.view() + 1, 0)
    }

    /// Judged from the block `H` of the TC's high QC (not from the TC's
    /// signers: every node forms its own TC from the first `2f + 1`
    /// timeouts it gets, so signer sets differ between nodes, while `H` is
    /// the same for all that hold it): the members active in `H`, counted
    /// from the view after it, one step per failed view. The block that
    /// follows the TC then takes its active set from the TC it carries,
    /// which leaves out a member that signed no timeout.
    fn leader_after_tc(&self, view: View, tc: &TimeoutCert, high: &[&Block]) -> Option<NodeIndex> {
        let h = high.first()?;
        if h.digest() != tc.high_qc.block {
            return None;
        }
        let from = h.view() + 1;
        let failed_views = view.checked_sub(from)?;
        self.nth_active(&self.active(h), from, failed_views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block in `view` by `author` whose parent is in `parent_view`
    /// (links are not checked by the elections).
    fn linked(view: View, author: NodeIndex, parent_view: View) -> Block {
        let mut b = block(view, author, &[0, 1, 2, 3]);
        b.header.parent_view = parent_view;
        b
    }

    fn refs(blocks: &[Block]) -> Vec<&Block> {
        blocks.iter().collect()
    }

    /// A TC for `view` whose high QC is for view `high`, signed by `signers`.
    fn tc(view: View, high: View, signers: &[NodeIndex]) -> TimeoutCert {
        let f = crate::testing::Fixture::new(4);
        let mut high_qc = f.genesis_qc();
        high_qc.view = high;
        TimeoutCert {
            view,
            high_qc,
            signers: signers
                .iter()
                .map(|i| (*i, high, ordo_types::Signature([0; 64])))
                .collect(),
        }
    }

    #[test]
    fn round_robin_ignores_the_chain() {
        let rr = RoundRobin::new(4);
        let b = linked(6, 2, 5);
        assert_eq!(rr.leader_after(&[&b]), Some(3));
        assert_eq!(rr.leader_after_tc(9, &tc(8, 7, &[0, 1, 2]), &[]), Some(1));
    }

    #[test]
    fn stable_leader_keeps_its_term_then_hands_over() {
        let s = StableLeaders::new(4, 3);
        // 2 led views 5 and 6 (direct QC children): it keeps view 7.
        let chain = [
            linked(6, 2, 5),
            linked(5, 2, 4),
            linked(4, 1, 3),
            linked(3, 1, 2),
        ];
        assert_eq!(s.leader_after(&refs(&chain)), Some(2));
        // A third view ends its term: 3 leads next.
        let chain = [
            linked(7, 2, 6),
            linked(6, 2, 5),
            linked(5, 2, 4),
            linked(4, 1, 3),
        ];
        assert_eq!(s.leader_after(&refs(&chain)), Some(3));
        // A run that began with a TC (parent not the view before) counts
        // from there.
        let chain = [
            linked(9, 0, 8),
            linked(8, 0, 5),
            linked(5, 3, 4),
            linked(4, 3, 3),
        ];
        assert_eq!(s.leader_after(&refs(&chain)), Some(0));
        // Too short a chain to know how long the run is: no answer.
        assert_eq!(s.leader_after(&refs(&chain[..1])), None);
        let chain = [linked(6, 2, 5), linked(5, 2, 4)];
        assert_eq!(s.leader_after(&refs(&chain)), None);
    }

    /// Regression (issue 3): after a timeout the failed leader was elected
    /// again when `t + 1 = s + k (mod n)`. Now the view after a failed one
    /// always goes to the next member.
    #[test]
    fn stable_leader_that_times_out_is_never_next() {
        let s = StableLeaders::new(4, 50);
        // 1 leads after H (view 10, its second view); view 11 fails: TC(11).
        let high = [linked(10, 1, 9), linked(9, 1, 8), linked(8, 0, 7)];
        assert_eq!(s.leader_after(&refs(&high)), Some(1));
        let any_tc = tc(11, 10, &[0, 1, 2]);
        assert_eq!(s.leader_after_tc(12, &any_tc, &refs(&high)), Some(2));
        // Views 11 and 12 fail (1, then 2): 3 leads view 13.
        assert_eq!(s.leader_after_tc(13, &any_tc, &refs(&high)), Some(3));
        // Whatever the views and members, the leader after a TC for t is
        // not the leader of t.
        for n in [4usize, 7] {
            let s = StableLeaders::new(n, 50);
            for failed in 1..20u64 {
                let view = 10 + failed;
                let leader_of = |v: View| {
                    if v == 11 {
                        s.leader_after(&refs(&high)).unwrap()
                    } else {
                        s.leader_after_tc(v, &any_tc, &refs(&high)).unwrap()
                    }
                };
                assert_ne!(leader_of(view), leader_of(view + 1), "n {n}, view {view}");
            }
        }
        // Without H: no answer.
        assert_eq!(s.leader_after_tc(12, &any_tc, &[]), None);
    }

    #[test]
    fn term_of_one_is_round_robin_after_qcs() {
        let s = StableLeaders::new(4, 1);
        for v in 1..20u64 {
            let b = linked(v, (v % 4) as NodeIndex, v - 1);
            assert_eq!(s.leader_after(&[&b]), Some(((v + 1) % 4) as NodeIndex));
        }
    }

    #[test]
    fn reputation_after_a_tc_moves_past_the_failed_leaders() {
        let r = Reputation::new(4);
        // H in view 6 certified without 3: from view 7 the leaders are 0,
        // 1, 2, 0, ... one per failed view.
        let h = block(6, 2, &[0, 1, 2]);
        let high_tc = |view| {
            let mut t = tc(view, 6, &[0, 1, 2]);
            t.high_qc.block = h.digest();
            t
        };
        assert_eq!(r.leader_after_tc(8, &high_tc(7), &[&h]), Some(1));
        assert_eq!(r.leader_after_tc(9, &high_tc(8), &[&h]), Some(2));
        assert_eq!(r.leader_after_tc(10, &high_tc(9), &[&h]), Some(0));
        // Without H, or with a block the TC does not name: no answer.
        assert_eq!(r.leader_after_tc(8, &high_tc(7), &[]), None);
        assert_eq!(r.leader_after_tc(8, &tc(7, 6, &[0, 1, 2]), &[&h]), None);
        // A block following a TC takes its active set from the TC.
        let f = crate::testing::Fixture::new(4);
        let mut b = f.block(10, 2, &f.genesis(), &f.genesis_qc(), None, Vec::new());
        b.tc = Some(tc(9, 6, &[0, 1, 2]));
        b.parent_qc.votes = vec![(3, ordo_types::Signature([0; 64]))];
        assert_eq!(
            r.leader_after(&[&b]),
            Some(0),
            "view 11 is 3's, in the stale QC only"
        );
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
    fn reputation_skips_members_missing_from_the_latest_qc() {
        let r = Reputation::new(4);
        let after = |blocks: &[Block]| r.leader_after(&blocks.iter().collect::<Vec<_>>());
        // Everyone active: round-robin.
        for v in 3..20 {
            let b = block(v, (v % 4) as NodeIndex, &[0, 1, 2, 3]);
            assert_eq!(after(&[b]), Some(((v + 1) % 4) as NodeIndex));
        }
        // Member 3 crashed: it signs nothing and authors nothing.
        assert_eq!(
            after(&[block(6, 2, &[0, 1, 2])]),
            Some(0),
            "view 7 would be 3's"
        );
        // In the QC, or the author: active.
        assert_eq!(after(&[block(6, 2, &[0, 1, 3])]), Some(3));
        assert_eq!(after(&[block(6, 3, &[0, 1, 2])]), Some(3));
        // No block: no answer.
        assert_eq!(after(&[]), None);
        // A block carrying the genesis QC: no record yet, round-robin.
        let genesis = crate::testing::Fixture::new(4).genesis();
        assert_eq!(after(&[block(1, 1, &[]), genesis]), Some(2));
        assert_eq!(after(&[block(2, 2, &[0, 1])]), Some(0));
    }
}
