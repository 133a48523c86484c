//! What the node sends on each traffic class: consensus messages on
//! `Consensus`, mempool messages on `Batches`, and catch-up on `Sync`.

use ordo_consensus::CommittedBlock;
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

/// A committed block with its certificate. Its batches are not included
/// (one block's batches can exceed a frame): the receiver fetches them from
/// the batch certificates' signers, unless the peer says the height is
/// `pruned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedBlock {
    pub committed: CommittedBlock,
    pub pruned: bool,
}

/// Most bytes of blocks in one sync response (well under a frame).
pub const MAX_SYNC_BYTES: usize = 4 * 1024 * 1024;
