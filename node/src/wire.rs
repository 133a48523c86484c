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

    use ordo_consensus::{
        Block, BlockHeader, CommitCert, CommittedBlock, Payload, QuorumCert, TimeoutCert,
    };
    use ordo_types::codec::{check_arbitrary_bytes, check_round_trip, encode};
    use ordo_types::{Digest, Signature};
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn digest() -> impl Strategy<Value = Digest> {
        any::<[u8; 32]>().prop_map(Digest)
    }

    fn signature() -> impl Strategy<Value = Signature> {
        any::<([u8; 32], [u8; 32])>().prop_map(|(r, s)| {
            let mut bytes = [0u8; 64];
            bytes[..32].copy_from_slice(&r);
            bytes[32..].copy_from_slice(&s);
            Signature(bytes)
        })
    }

    fn header() -> impl Strategy<Value = BlockHeader> {
        (
            any::<u64>(),
            any::<u64>(),
            digest(),
            any::<u64>(),
            digest(),
            any::<u16>(),
        )
            .prop_map(
                |(view, height, parent, parent_view, payload, author)| BlockHeader {
                    view,
                    height,
                    parent,
                    parent_view,
                    payload,
                    author,
                },
            )
    }

    fn qc() -> impl Strategy<Value = QuorumCert> {
        (
            any::<u64>(),
            digest(),
            vec((any::<u16>(), signature()), 0..6),
        )
            .prop_map(|(view, block, votes)| QuorumCert { view, block, votes })
    }

    fn tc() -> impl Strategy<Value = TimeoutCert> {
        (
            any::<u64>(),
            qc(),
            vec((any::<u16>(), any::<u64>(), signature()), 0..6),
        )
            .prop_map(|(view, high_qc, signers)| TimeoutCert {
                view,
                high_qc,
                signers,
            })
    }

    fn committed_block() -> impl Strategy<Value = CommittedBlock> {
        let bytes = |max| vec(any::<u8>(), 0..max);
        (
            (header(), qc(), proptest::option::of(tc()), signature()),
            vec(bytes(48), 0..4),
            vec(bytes(32), 0..3),
            (vec(header(), 0..3), qc()),
        )
            .prop_map(
                |((header, parent_qc, tc, signature), items, inclusion, (chain, qc))| {
                    CommittedBlock {
                        block: Block {
                            header,
                            parent_qc,
                            tc,
                            payload: Payload { items },
                            inclusion,
                            signature,
                        },
                        cert: CommitCert { chain, qc },
                    }
                },
            )
    }

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

    fn ok(check: Result<(), String>) -> Result<(), TestCaseError> {
        check.map_err(TestCaseError::fail)
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
