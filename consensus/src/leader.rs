//! Who leads a view. Behind a trait so stable leaders or reputation-based
//! election can replace round-robin without touching the core.

use ordo_types::NodeIndex;

use crate::messages::View;

/// A deterministic map from view to leader; every honest node must compute
/// the same answer from the same inputs.
pub trait LeaderElection: Send {
    fn leader(&self, view: View) -> NodeIndex;
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
