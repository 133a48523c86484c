//! The ordered output: committed blocks with their batches, in strict height
//! order, each transaction's first occurrence only.
//!
//! A transaction committed again within `dedupe_window_heights` of its first
//! commit is skipped. The window is a pure function of the committed
//! sequence, so every node skips the same ones; it is rebuilt from storage
//! on restart.

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

/// Fill, in 64ths of what a map holds before it must reallocate, at which
/// map `i` is swept of expired entries (and doubled if the sweep freed too
/// little) ahead of need: from [`GROW_FROM`] for map 0 to [`GROW_TO`] for
/// the last. Uniform keys fill all maps at one pace, so with one threshold
/// they would all double within a few deliveries of each other; staggered,
/// their doublings spread over about half of each doubling period. Growing
/// a set of 30,000 entries costs ~2 ms on an idle bench machine and ~20 ms
/// with four nodes on its two cores: 64 of them back to back had put a
/// second of work into half a second of deliveries.
const GROW_FROM: usize = 28;
const GROW_TO: usize = 54;

/// A remembered transaction: the first 16 bytes of its digest.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // A digest prefix is uniform already: `DigestState` mixes one word.
        state.write_u64(self.0);
    }
}

/// Recent transactions, with the height each was first committed at. Each
/// is remembered by the first 16 bytes of its digest (a collision needs
/// 2^64 work even for transactions an attacker picks both of, and only
/// makes the attacker's own second one look repeated): at a hundred
/// thousand transactions a second over a window of minutes, the window is
/// tens of millions of entries, so their size is the node's memory.
///
/// Expiry is lazy: an entry whose height left the window counts as absent
/// (a repeat of it is fresh again and takes the new height), and expired
/// entries are dropped in bulk when their map fills up, instead of one
/// removal per transaction when its height leaves the window (a cache miss
/// each, and a list of every height's keys to find them by).
///
/// The keys are spread over [`SHARDS`] maps by their top bits, so a map
/// that outgrows its table rehashes a 64th of the window at a time: one
/// set of millions of entries stalled delivery for hundreds of
/// milliseconds each time it doubled (at 50,000 tx/s over 60 s the p99
/// went from 95 ms with a 1,000-height window to 307–500 ms with 10,000).
/// Each delivery looks at one map, in turn: once it reaches its own
/// threshold (between [`GROW_FROM`] and [`GROW_TO`]) it is swept, and
/// doubled if the sweep freed less than an eighth of that threshold, so a
/// delivery sweeps or rehashes at most one map and the work is spread out.
pub struct Dedupe {
    window: u64,
    seen: Vec<std::collections::HashMap<Key, u64, ordo_types::DigestState>>,
    /// The map the next delivery looks at for sweeping or growing.
    next_grow: usize,
}

impl Dedupe {
    pub fn new(window: u64) -> Self {
        Dedupe {
            window,
            seen: (0..SHARDS).map(|_| Default::default()).collect(),
            next_grow: 0,
        }
    }

    fn key(digest: &Digest) -> Key {
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest.0[..8]);
        let low = u64::from_le_bytes(word);
        word.copy_from_slice(&digest.0[8..16]);
        Key(low, u64::from_le_bytes(word))
    }

    /// Records the transactions of `height` and returns the positions of
    /// repeats (already seen within the window, or earlier in this block).
    pub fn apply(&mut self, height: u64, batches: &[Batch]) -> Vec<(u32, u32)> {
        use std::collections::hash_map::Entry;
        let mut skipped = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            Transaction::compute_digests(&batch.txs);
            for (t, tx) in batch.txs.iter().enumerate() {
                let key = Self::key(&tx.digest());
                let shard = &mut self.seen[(key.1 >> (64 - SHARD_BITS)) as usize];
                match shard.entry(key) {
                    Entry::Vacant(entry) => {
                        entry.insert(height);
                    }
                    Entry::Occupied(mut entry) => {
                        if *entry.get() + self.window > height {
                            skipped.push((b as u32, t as u32));
                        } else {
                            entry.insert(height);
                        }
                    }
                }
            }
        }
        self.sweep_one(height);
        skipped
    }

    /// Sweeps the next map in turn of what left the window if it reached
    /// its threshold, and doubles it if that freed too little.
    fn sweep_one(&mut self, height: u64) {
        let i = self.next_grow;
        self.next_grow = (i + 1) % SHARDS;
        let threshold = GROW_FROM + (GROW_TO - GROW_FROM) * i / (SHARDS - 1);
        let window = self.window;
        let map = &mut self.seen[i];
        if map.len() * 64 < map.capacity() * threshold {
            return;
        }
        map.retain(|_, first| *first + window > height);
        // Freed less than an eighth of the threshold: sweeps would come too
        // often (each reads the whole map), so double it.
        if map.len() * 64 * 8 >= map.capacity() * threshold * 7 {
            map.reserve(map.len().max(64));
        }
    }

    /// Transactions remembered, expired ones not yet swept included.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.seen.iter().map(|s| s.len()).sum()
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
pub(crate) mod tests {
    use bytes::Bytes;
    use ordo_consensus::{CommitCert, Payload};

    use super::*;

    pub(crate) fn batch(author: u16, payloads: &[&[u8]]) -> Batch {
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
        // "a" counts from height 3 now; "b" (height 1) and "c" (height 2)
        // have left the window.
        assert_eq!(d.apply(4, &[batch(0, &[b"a", b"b", b"c"])]), vec![(0, 0)]);
    }

    /// Entries that left the window are dropped in bulk as their maps fill:
    /// memory follows the window, not the whole history.
    #[test]
    fn expired_entries_are_swept() {
        let window = 50;
        let per_height = 400;
        let mut d = Dedupe::new(window);
        let mut n = 0u64;
        let mut most = 0;
        for height in 1..=3_000u64 {
            let payloads: Vec<Vec<u8>> = (0..per_height)
                .map(|_| {
                    n += 1;
                    n.to_le_bytes().to_vec()
                })
                .collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            assert!(d.apply(height, &[batch(0, &refs)]).is_empty());
            most = most.max(d.remembered());
        }
        let live = window as usize * per_height;
        assert!(
            most <= 4 * live,
            "{most} remembered for {live} in the window"
        );
        let capacity: usize = d.seen.iter().map(|s| s.capacity()).sum();
        assert!(capacity <= 8 * live, "capacity {capacity} for {live}");
        // What is in the window is still caught.
        let last = n.to_le_bytes().to_vec();
        assert_eq!(d.apply(3_001, &[batch(0, &[&last])]), vec![(0, 0)]);
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
        assert_eq!(d.remembered(), 800_000);
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

    /// Shared state of member 0 of a one-member committee.
    pub(crate) fn shared() -> Shared {
        let key = ordo_types::Keypair::from_seed([1; 32]).public();
        let member = ordo_types::Member {
            key,
            address: "127.0.0.1:1".parse().unwrap(),
            api_address: "127.0.0.1:2".parse().unwrap(),
        };
        let committee = ordo_types::Committee::new(vec![member]).unwrap();
        Shared::new(0, Arc::new(committee))
    }

    /// A block at `height` holding `batches` (no certificate: not verified).
    pub(crate) fn output(
        height: u64,
        batches: Vec<Batch>,
        skipped: Vec<(u32, u32)>,
    ) -> OutputBlock {
        let mut header = ordo_consensus::Block::genesis(Digest::ZERO).header;
        header.height = height;
        OutputBlock {
            header,
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
            batches,
            skipped,
        }
    }

    #[test]
    fn transactions_iterate_in_order_without_skipped() {
        let batches = vec![batch(0, &[b"a", b"b"]), batch(1, &[b"c", b"d"])];
        let block = output(0, batches, vec![(0, 1), (1, 0)]);
        let got: Vec<&[u8]> = block.transactions().map(|t| t.payload.as_ref()).collect();
        assert_eq!(got, vec![b"a".as_slice(), b"d".as_slice()]);
    }

    #[test]
    fn subscribers_get_small_blocks_and_only_the_height_of_large_ones() {
        let shared = shared();
        let mut rx = shared.subscribe();
        let block = |height: u64, bytes: usize| {
            Arc::new(output(height, vec![batch(0, &[&vec![7u8; bytes]])], vec![]))
        };
        // Exactly the limit goes live; one byte more does not.
        let limit = crate::shared::LIVE_BLOCK_BYTES;
        assert_eq!(block(1, limit).batches[0].byte_size(), limit);
        shared.publish(block(1, limit));
        shared.publish(block(2, limit + 1));
        let small = rx.try_recv().unwrap();
        assert_eq!(small.height, 1);
        assert!(small.block.is_some_and(|b| b.height() == 1));
        let large = rx.try_recv().unwrap();
        assert_eq!(large.height, 2);
        assert!(
            large.block.is_none(),
            "a large block was kept in the buffer"
        );
        assert_eq!(shared.delivered(), 2);
    }
}
