//! The censorship-resistance hook: inclusion lists carried in votes and
//! timeouts, and the rule every replica applies before voting.
//!
//! Consensus stays payload-agnostic: a list is an opaque, separately signed
//! [`InclusionAttachment`]. The host installs an [`InclusionRules`] (the
//! mempool's adapter, `ordo_mempool::consensus::MempoolInclusion`, speaks
//! its `InclusionList` format) and the core:
//!
//! 1. tells it which items became available ([`Event::PayloadAvailable`])
//!    and which were committed, so it can name those held too long;
//! 2. attaches [`InclusionRules::list_for`]`(view)` to every vote and timeout
//!    it signs in `view`;
//! 3. as the leader of `v`, attaches every list it collected for `v - 1`
//!    (from the votes that formed its QC and from timeouts of `v - 1`),
//!    puts the items [`InclusionRules::required`] names first in its payload,
//!    and waits (until the next vote or its idle timer) while it has fewer
//!    lists than the rule needs;
//! 4. as a replica, refuses to vote for a proposal for which
//!    [`InclusionRules::check`] fails, judged on the block, its lists and
//!    the items of its uncommitted ancestors (plus the root and items this
//!    node saw committed recently, so an item committed a moment ago is
//!    never demanded twice).
//!
//! Blocks of view 1 (nothing before them) are exempt.
//!
//! [`Event::PayloadAvailable`]: crate::Event::PayloadAvailable

use ordo_types::Digest;

pub use crate::messages::InclusionAttachment;
use crate::messages::{PayloadItem, View};

/// The rule as seen by the core. Every method but the two notifications and
/// `list_for` must be a pure function of its arguments (and the committee),
/// so every honest replica judges a proposal the same way.
pub trait InclusionRules: Send {
    /// Items this node received for proposal at `now_ms`.
    fn on_available(&mut self, now_ms: u64, items: &[PayloadItem]);
    /// Items committed (in a block this node output).
    fn on_committed(&mut self, items: &[PayloadItem]);
    /// This node's signed list for `view`, attached to the vote or timeout
    /// it signs in `view`.
    fn list_for(&mut self, now_ms: u64, view: View) -> Option<InclusionAttachment>;
    /// The name of an item on a list (e.g. a batch certificate's digest).
    fn item_key(&self, item: &[u8]) -> Digest;
    /// The keys a proposal whose lists are for `list_view` must carry (or
    /// find in an ancestor), oldest first; an error if the lists are not
    /// enough for the rule (fewer than a quorum count).
    fn required(
        &self,
        list_view: View,
        lists: &[InclusionAttachment],
    ) -> Result<Vec<Digest>, String>;
    /// Whether a proposal carrying `items` (keys, in order), with `ancestors`
    /// (keys of items already in the chain) and `lists` (for `list_view`)
    /// honours the rule; `max_items` is the block capacity.
    fn check(
        &self,
        list_view: View,
        items: &[Digest],
        ancestors: &dyn Fn(&Digest) -> bool,
        lists: &[InclusionAttachment],
        max_items: usize,
    ) -> Result<(), String>;
}
