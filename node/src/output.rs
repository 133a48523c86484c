//! The ordered output: committed blocks with their batches, in strict height
//! order, each transaction's first occurrence only.
//!
//! A transaction committed again within `dedupe_window_heights` of its first
//! commit is skipped. The window is a pure function of the committed
//! sequence, so every node skips the same ones; it is rebuilt from storage
//! on restart.

use std::collections::VecDeque;
use std::sync::Arc;

use ordo_mempool::{Batch, Transaction};
use ordo_types::Digest;

use crate::error::{Error, Result};
use crate::shared::Shared;
use crate::storage::Storage;

pub use ordo_client::OutputBlock;

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// A delivery taking this long is logged (with what took the time).
const SLOW_DELIVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Fill, in 64ths of what a set holds before it must reallocate, at which
/// set `i` is doubled ahead of need: from [`GROW_FROM`] for set 0 to
/// [`GROW_TO`] for the last. Uniform keys fill all sets at one pace, so
/// with one threshold they would all double within a few deliveries of
/// each other; staggered, their doublings spread over about half of each
/// doubling period. Growing a set of 30,000 entries costs ~2 ms on an idle
/// bench machine and ~20 ms with four nodes on its two cores: 64 of them
/// back to back had put a second of work into half a second of deliveries.
const GROW_FROM: usize = 28;
const GROW_TO: usize = 54;
/// Recent transactions, by height. Each is remembered by the first 16
/// bytes of its digest (a collision needs 2^64 work even for transactions
/// an attacker picks both of, and only makes the attacker's own second one
/// look repeated): at a hundred thousand transactions a second over a
/// window of minutes, the window is tens of millions of entries, so their
/// size is the node's memory.
///
/// The keys are spread over [`SHARDS`] sets by their top bits, so a set
/// that outgrows its table rehashes a 64th of the window at a time: one
/// set of millions of entries stalled delivery for hundreds of
/// milliseconds each time it doubled (at 50,000 tx/s over 60 s the p99
/// went from 95 ms with a 1,000-height window to 307–500 ms with 10,000).
/// Uniform keys fill all sets at the same pace, though, so left alone they
/// would all double within a few deliveries of each other; instead each
/// delivery looks at one set, in turn, and grows it ahead of need once it
/// reaches its own threshold (between [`GROW_FROM`] and [`GROW_TO`]), so a
/// delivery rehashes at most one set and the rehashes are spread out.
pub struct Dedupe {
    window: u64,
    seen: Vec<std::collections::HashSet<u128, ordo_types::DigestState>>,
    /// The set the next delivery looks at for growing.
    next_grow: usize,
    /// What each height added to `seen` (never a repeat, so removing a
    /// height's list when it leaves the window removes exactly its entries).
    heights: VecDeque<(u64, Vec<u128>)>,
}

impl Dedupe {
    pub fn new(window: u64) -> Self {
        Dedupe {
            window,
            seen: (0..SHARDS).map(|_| Default::default()).collect(),
            next_grow: 0,
            heights: VecDeque::new(),
        }
    }

    fn shard(
        &mut self,
        key: u128,
    ) -> &mut std::collections::HashSet<u128, ordo_types::DigestState> {
        let index = (key >> (128 - SHARD_BITS)) as usize;
        &mut self.seen[index]
    }

    fn key(digest: &Digest) -> u128 {
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&digest.0[..16]);
        u128::from_le_bytes(prefix)
    }

    /// Records the transactions of `height` and returns the positions of
    /// repeats (already seen within the window, or earlier in this block).
    pub fn apply(&mut self, height: u64, batches: &[Batch]) -> Vec<(u32, u32)> {
        while self
            .heights
            .front()
            .is_some_and(|(h, _)| *h + self.window <= height)
        {
            if let Some((_, keys)) = self.heights.pop_front() {
                for key in keys {
                    self.shard(key).remove(&key);
                }
            }
        }
        let mut skipped = Vec::new();
        let mut fresh = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            Transaction::compute_digests(&batch.txs);
            for (t, tx) in batch.txs.iter().enumerate() {
                let key = Self::key(&tx.digest());
                if self.shard(key).insert(key) {
                    fresh.push(key);
                } else {
                    skipped.push((b as u32, t as u32));
                }
            }
        }
        self.heights.push_back((height, fresh));
        self.grow_one();
        skipped
    }

    /// Doubles the next set in turn if it reached its threshold.
    fn grow_one(&mut self) {
        let i = self.next_grow;
        self.next_grow = (i + 1) % SHARDS;
        let threshold = GROW_FROM + (GROW_TO - GROW_FROM) * i / (SHARDS - 1);
        let set = &mut self.seen[i];
        if set.len() * 64 >= set.capacity() * threshold {
            set.reserve(set.len().max(64));
        }
    }
}

/// Turns delivered blocks into stored, published [`OutputBlock`]s.
pub struct Output {
    storage: Arc<Storage>,
    shared: Arc<Shared>,
    dedupe: Dedupe,
}

impl Output {
    /// Rebuilds the dedupe window from the last stored output blocks.
    pub fn open(storage: Arc<Storage>, shared: Arc<Shared>, window: u64) -> Result<Self> {
        let mut dedupe = Dedupe::new(window);
        let delivered = storage.delivered_height()?;
        for height in delivered.saturating_sub(window).max(1)..=delivered {
            if let Some(block) = storage.output(height)? {
                dedupe.apply(height, &block.batches);
            }
        }
        shared.set_delivered(delivered);
        Ok(Output {
            storage,
            shared,
            dedupe,
        })
    }

    /// Stores and publishes committed block `height` with its batches. The
    /// consensus record of the block must already be stored.
    pub fn deliver(&mut self, height: u64, batches: Vec<Batch>) -> Result<()> {
        let delivered = self.storage.delivered_height()?;
        if height <= delivered {
            return Ok(());
        }
        if height != delivered + 1 {
            return Err(Error::Storage(format!(
                "delivery of height {height} does not follow {delivered}"
            )));
        }
        let committed = self.storage.committed(height)?.ok_or_else(|| {
            Error::Storage(format!("height {height} delivered before it was stored"))
        })?;
        let started = std::time::Instant::now();
        let skipped = self.dedupe.apply(height, &batches);
        let deduped = started.elapsed();
        let block = OutputBlock {
            header: committed.block.header,
            cert: committed.cert,
            payload: committed.block.payload,
            inclusion: committed.block.inclusion,
            batches,
            skipped,
        };
        self.storage.save_output(&block)?;
        if started.elapsed() >= SLOW_DELIVERY {
            // Delivery is serial: every later block waits this long too.
            tracing::warn!(
                height,
                ?deduped,
                stored = ?(started.elapsed() - deduped),
                "slow delivery"
            );
        }
        self.shared.publish(Arc::new(block));
        Ok(())
    }
}

impl Output {
    /// Marks a synced height whose batches the peer had pruned as delivered
    /// without output (the API answers 410 Gone for it).
    pub fn skip_pruned(&mut self, height: u64) -> Result<()> {
        let delivered = self.storage.delivered_height()?;
        if height != delivered + 1 {
            return Err(Error::Storage(format!(
                "pruned height {height} does not follow the delivered height {delivered}"
            )));
        }
        self.storage.skip_pruned(height)?;
        self.shared.set_delivered(height);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ordo_consensus::{CommitCert, Payload};

    use super::*;

    fn batch(author: u16, payloads: &[&[u8]]) -> Batch {
        Batch {
            author,
            seq: 0,
            txs: payloads
                .iter()
                .map(|p| Transaction::new(1, Bytes::copy_from_slice(p)))
                .collect(),
        }
    }

    #[test]
    fn repeats_are_skipped_within_the_window_only() {
        let mut d = Dedupe::new(2);
        assert!(d.apply(1, &[batch(0, &[b"a", b"b"])]).is_empty());
        // Same block repeats and an earlier height's repeat.
        assert_eq!(
            d.apply(2, &[batch(1, &[b"c", b"a"]), batch(2, &[b"c"])]),
            vec![(0, 1), (1, 0)]
        );
        // Height 1 left the window: "a" and "b" are new again; "c" is not.
        assert_eq!(d.apply(3, &[batch(0, &[b"a", b"c"])]), vec![(0, 1)]);
    }

    /// At a steady rate no set reaches the point where inserting forces it
    /// to reallocate (which would rehash it in the middle of a delivery):
    /// they are grown one per delivery at most, ahead of need, spread out.
    #[test]
    fn sets_grow_ahead_of_need_one_per_delivery() {
        let mut d = Dedupe::new(1_000_000);
        let mut n = 0u64;
        let mut growths = Vec::new();
        for height in 1..=2_000u64 {
            let payloads: Vec<Vec<u8>> = (0..400)
                .map(|_| {
                    n += 1;
                    n.to_le_bytes().to_vec()
                })
                .collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let capacities: Vec<usize> = d.seen.iter().map(|s| s.capacity()).collect();
            assert!(d.apply(height, &[batch(0, &refs)]).is_empty());
            let grown = d
                .seen
                .iter()
                .zip(&capacities)
                .filter(|(s, before)| s.capacity() != **before)
                .count();
            // While sets are small, 64 deliveries may add more than a
            // sixth of one; past a few thousand entries each, one at most.
            if height > 500 {
                assert!(grown <= 1, "height {height}: {grown} sets reallocated");
                if grown == 1 {
                    growths.push(height);
                }
            }
        }
        assert_eq!(d.seen.iter().map(|s| s.len()).sum::<usize>(), 800_000);
        // Spread out: no 64 deliveries in a row grow more than a quarter of
        // the sets (with one threshold for all, all 64 grew in a row).
        let most = growths
            .iter()
            .map(|h| {
                growths
                    .iter()
                    .filter(|g| (*h..*h + 64).contains(*g))
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(
            most <= 16,
            "{most} sets grew within 64 deliveries: {growths:?}"
        );
    }

    #[test]
    fn transactions_iterate_in_order_without_skipped() {
        let block = OutputBlock {
            header: ordo_consensus::Block::genesis(Digest::ZERO).header,
            cert: CommitCert {
                chain: vec![],
                qc: ordo_consensus::QuorumCert {
                    view: 0,
                    block: Digest::ZERO,
                    votes: vec![],
                },
            },
            payload: Payload::default(),
            inclusion: vec![],
            batches: vec![batch(0, &[b"a", b"b"]), batch(1, &[b"c", b"d"])],
            skipped: vec![(0, 1), (1, 0)],
        };
        let got: Vec<&[u8]> = block.transactions().map(|t| t.payload.as_ref()).collect();
        assert_eq!(got, vec![b"a".as_slice(), b"d".as_slice()]);
    }
}
