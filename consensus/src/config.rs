//! Consensus parameters.

use serde::{Deserialize, Serialize};

/// Tunables of the consensus core. Defaults suit a LAN or a single machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Timeout of a view right after a QC; doubles per failed view.
    pub base_timeout_ms: u64,
    /// Cap of the doubling view timeout.
    pub max_timeout_ms: u64,
    /// An idle leader (no payload to propose or to push to commit) waits
    /// this long before proposing an empty block, so an idle chain neither
    /// spins nor times out. Clamped to a quarter of `base_timeout_ms`.
    pub idle_block_interval_ms: u64,
    /// Most payload items in one block.
    pub max_payload_items: usize,
    /// Largest payload item accepted.
    pub max_item_bytes: usize,
    /// Most payload items queued at this node waiting for a proposal.
    pub max_pending_items: usize,
    /// Votes and timeouts further than this above the current view are
    /// dropped (they cannot help and would cost memory).
    pub max_view_ahead: u64,
    /// Wait before asking another peer for a block already requested.
    pub fetch_retry_ms: u64,
    /// Committed blocks kept in memory to serve peers' fetches.
    pub recent_blocks: usize,
    /// Leader election hosts build with [`crate::election`]: `T > 1` is
    /// stable leaders with terms of `T` views ([`crate::StableLeaders`]);
    /// 0 or 1 (the default) rotates leaders every view, as set by
    /// `leader_reputation`. Every member must use the same.
    pub leader_term_views: u64,
    /// With `leader_term_views` 0 or 1: leader reputation (the default,
    /// [`crate::Reputation`]: round-robin that skips members absent from
    /// the recent chain, so a crashed node costs no view) if true, plain
    /// round-robin ([`crate::RoundRobin`]) if false. Every member must use
    /// the same.
    pub leader_reputation: bool,
    /// **Test only: breaks safety.** Makes [`crate::SafetyRules::vote`] skip
    /// rule 1 (at most one vote per view, views above the last voted one),
    /// so the simulator can show that its checker catches a broken rule.
    /// Never read from a file (`serde(skip)`): only code can set it.
    #[serde(skip)]
    pub test_only_break_vote_rule: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_timeout_ms: 1_000,
            max_timeout_ms: 30_000,
            idle_block_interval_ms: 250,
            max_payload_items: 256,
            max_item_bytes: 64 * 1024,
            max_pending_items: 16_384,
            max_view_ahead: 1_000,
            fetch_retry_ms: 200,
            recent_blocks: 1_024,
            leader_term_views: 1,
            leader_reputation: true,
            test_only_break_vote_rule: false,
        }
    }
}
