//! What the node sends on each traffic class: consensus messages on
//! `Consensus`, mempool messages on `Batches`, and catch-up on `Sync`.

use ordo_consensus::CommittedBlock;
use ordo_mempool::Batch;
use serde::{Deserialize, Serialize};

/// Most committed blocks in one sync response.
pub const MAX_SYNC_BLOCKS: u64 = 64;

/// Catch-up between nodes: a node behind asks peers for committed blocks
/// with their certificates and batches, verifies them and stores them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// "What is your committed height?"
    TipRequest,
    Tip {
        height: u64,
    },
    /// Committed blocks `from..from+count` (count capped at
    /// [`MAX_SYNC_BLOCKS`]).
    BlocksRequest {
        from: u64,
        count: u64,
    },
    Blocks(Vec<SyncedBlock>),
}

/// A committed block with the batches its certificates name, in order; or,
/// for a height the peer has pruned, the block alone (`pruned`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedBlock {
    pub committed: CommittedBlock,
    pub batches: Vec<Batch>,
    pub pruned: bool,
}
