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

#[cfg(test)]
mod tests {
    //! `SyncMessage` (what the runtime decodes from every `Sync` frame)
    //! round-trips with generated values of any shape; random bytes and
    //! mutated encodings decode to an error or a value that re-encodes.

    use ordo_consensus::strategies::committed_block;
    use ordo_types::codec::{check_arbitrary_bytes, check_round_trip, encode};
    use ordo_types::strategies::ok;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn sync_message() -> impl Strategy<Value = SyncMessage> {
        prop_oneof![
            Just(SyncMessage::TipRequest),
            any::<u64>().prop_map(|height| SyncMessage::Tip { height }),
            any::<(u64, u64)>()
                .prop_map(|(from, count)| SyncMessage::BlocksRequest { from, count }),
            vec(
                (committed_block(), any::<bool>())
                    .prop_map(|(committed, pruned)| SyncedBlock { committed, pruned }),
                0..4
            )
            .prop_map(SyncMessage::Blocks),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn sync_message_round_trips(message in sync_message()) {
            ok(check_round_trip(&message))?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn sync_message_random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
            ok(check_arbitrary_bytes::<SyncMessage>(&bytes))?;
        }

        #[test]
        fn synced_block_random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
            ok(check_arbitrary_bytes::<SyncedBlock>(&bytes))?;
        }

        #[test]
        fn sync_message_mutated_encodings_never_panic(
            message in sync_message(),
            flips in vec((any::<usize>(), 1u8..=255), 1..8),
        ) {
            let mut bytes = encode(&message).unwrap();
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            ok(check_arbitrary_bytes::<SyncMessage>(&bytes))?;
        }
    }
}
