//! The ordered output: committed blocks with their batches, in strict height
//! order, each transaction's first occurrence only.
//!
//! A transaction delivered within the last `dedupe_window_heights` heights
//! and, of those, the last `dedupe_window_txs` delivered transactions is
//! skipped when it is committed again. The window is a pure function of the
//! committed sequence, so every node (with the same two settings) skips the
//! same ones; it is rebuilt from storage on restart.

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

/// Recent transactions, each with the ordinal (its place in the sequence
/// of delivered transactions) of its last delivered occurrence. Each is
/// remembered by the first 16 bytes of its digest (a collision needs 2^64
/// work even for transactions an attacker picks both of, and only makes
/// the attacker's own second one look repeated): at a hundred thousand
/// transactions a second over a window of minutes, the window is tens of
/// millions of entries, so their size is the node's memory.
///
/// The window is the last `window` heights and, of those, the last `cap`
/// delivered transactions (counted from the start of the block being
/// delivered, so a repeat within one block is always caught). The cap
/// bounds memory when blocks are large: under overload a 10,000-height
/// window spans minutes and grew the node by hundreds of MiB a minute.
/// Both bounds are pure functions of the delivered sequence, so every
/// node that uses the same two values skips the same transactions.
///
/// Expiry is lazy: an entry whose ordinal is below the window's first
/// counts as absent (a repeat of it is delivered again and takes a new
/// ordinal), and expired entries are dropped in bulk when their map fills
/// up, instead of one removal per transaction when it leaves the window (a
/// cache miss each, and a list of every height's keys to find them by).
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
    cap: u64,
    seen: Vec<std::collections::HashMap<Key, u64, ordo_types::DigestState>>,
    /// The map the next delivery looks at for sweeping or growing.
    next_grow: usize,
    /// The heights in the window, oldest first, each with the ordinal of
    /// its first delivered transaction.
    starts: std::collections::VecDeque<(u64, u64)>,
    /// The ordinal the next delivered transaction gets.
    next: u64,
    /// Entries below this ordinal have left the window (it never falls).
    first: u64,
}

impl Dedupe {
    /// A window of `window` heights and at most `cap` transactions.
    pub fn new(window: u64, cap: u64) -> Self {
        Dedupe {
            window,
            cap,
            seen: (0..SHARDS).map(|_| Default::default()).collect(),
            next_grow: 0,
            starts: Default::default(),
            next: 0,
            first: 0,
        }
    }

    fn key(digest: &Digest) -> Key {
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest.0[..8]);
        let low = u64::from_le_bytes(word);
        word.copy_from_slice(&digest.0[8..16]);
        Key(low, u64::from_le_bytes(word))
    }

    /// Which map holds `key` (by its top bits).
    fn shard(key: &Key) -> usize {
        (key.1 >> (64 - SHARD_BITS)) as usize
    }

    /// Moves the window to block `height`: it starts at the first delivered
    /// transaction of the oldest height within `window` of it, or `cap`
    /// transactions before this block, whichever is later.
    fn open_block(&mut self, height: u64) {
        let start = self.next;
        self.starts.push_back((height, start));
        while let Some(&(oldest, _)) = self.starts.front() {
            if oldest + self.window > height {
                break;
            }
            self.starts.pop_front();
        }
        let by_height = self.starts.front().map_or(start, |&(_, s)| s);
        self.first = self
            .first
            .max(by_height)
            .max(start.saturating_sub(self.cap));
    }

    /// Records the transactions of `height` and returns the positions of
    /// repeats (delivered within the window, or earlier in this block).
    pub fn apply(&mut self, height: u64, batches: &[Batch]) -> Vec<(u32, u32)> {
        use std::collections::hash_map::Entry;
        self.open_block(height);
        let mut skipped = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            Transaction::compute_digests(&batch.txs);
            for (t, tx) in batch.txs.iter().enumerate() {
                let key = Self::key(&tx.digest());
                match self.seen[Self::shard(&key)].entry(key) {
                    Entry::Vacant(entry) => {
                        entry.insert(self.next);
                        self.next += 1;
                    }
                    Entry::Occupied(mut entry) => {
                        if *entry.get() >= self.first {
                            skipped.push((b as u32, t as u32));
                        } else {
                            entry.insert(self.next);
                            self.next += 1;
                        }
                    }
                }
            }
        }
        self.sweep_one();
        skipped
    }

    /// Records a block delivered before a restart with the repeats it was
    /// delivered with, which leaves the window as it was when the block was
    /// first delivered. (Judging the replayed blocks again would not: a
    /// repeat of a transaction from before the replayed heights would count
    /// as new and stay in the window longer than it did on the peers.)
    pub fn restore(&mut self, height: u64, batches: &[Batch], skipped: &[(u32, u32)]) {
        self.open_block(height);
        let mut skipped = skipped.iter().peekable();
        for (b, batch) in batches.iter().enumerate() {
            Transaction::compute_digests(&batch.txs);
            for (t, tx) in batch.txs.iter().enumerate() {
                if skipped.peek() == Some(&&(b as u32, t as u32)) {
                    skipped.next();
                    continue;
                }
                let key = Self::key(&tx.digest());
                self.seen[Self::shard(&key)].insert(key, self.next);
                self.next += 1;
            }
        }
        self.sweep_one();
    }

    /// Sweeps the next map in turn of what left the window if it reached
    /// its threshold, and doubles it if that freed too little.
    fn sweep_one(&mut self) {
        let i = self.next_grow;
        self.next_grow = (i + 1) % SHARDS;
        let threshold = GROW_FROM + (GROW_TO - GROW_FROM) * i / (SHARDS - 1);
        let first = self.first;
        let map = &mut self.seen[i];
        if map.len() * 64 < map.capacity() * threshold {
            return;
        }
        map.retain(|_, ordinal| *ordinal >= first);
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
    /// Rebuilds the dedupe window (of `window` heights and at most `cap`
    /// transactions) from the last stored output blocks.
    pub fn open(storage: Arc<Storage>, shared: Arc<Shared>, window: u64, cap: u64) -> Result<Self> {
        let mut dedupe = Dedupe::new(window, cap);
        let delivered = storage.delivered_height()?;
        for height in delivered.saturating_sub(window).max(1)..=delivered {
            if let Some(block) = storage.output(height)? {
                dedupe.restore(height, &block.batches, &block.skipped);
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
        let block = Arc::new(block);
        self.storage.save_output(block.clone())?;
        if started.elapsed() >= SLOW_DELIVERY {
            // Delivery is serial: every later block waits this long too.
            tracing::warn!(
                height,
                ?deduped,
                stored = ?(started.elapsed() - deduped),
                "slow delivery"
            );
        }
        self.shared.publish(block);
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

    /// One batch of `count` transactions never seen before (numbered on
    /// from `n`).
    fn fresh(n: &mut u64, count: usize) -> Batch {
        let payloads: Vec<[u8; 8]> = (0..count)
            .map(|_| {
                *n += 1;
                n.to_le_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        batch(0, &refs)
    }

    #[test]
    fn repeats_are_skipped_within_the_window_only() {
        let mut d = Dedupe::new(2, u64::MAX);
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

    /// The transaction cap: a repeat more than `cap` delivered transactions
    /// back (counted from the start of the block) is delivered again, one
    /// within it is not, and a repeat within one block always is skipped.
    #[test]
    fn repeats_are_skipped_within_the_transaction_cap_only() {
        let mut d = Dedupe::new(100, 3);
        assert!(d.apply(1, &[batch(0, &[b"a", b"b"])]).is_empty());
        assert!(d.apply(2, &[batch(0, &[b"c"])]).is_empty());
        // Three delivered before this block: "a" is the third back, in.
        assert_eq!(d.apply(3, &[batch(0, &[b"a", b"d"])]), vec![(0, 0)]);
        // Four now ("a", "b", "c", "d"): "a" is out, so delivered again;
        // "d" is in.
        assert_eq!(d.apply(4, &[batch(0, &[b"a", b"d"])]), vec![(0, 1)]);
        // A block larger than the cap still skips its own repeats.
        assert_eq!(
            d.apply(5, &[batch(0, &[b"w", b"x", b"y", b"z"]), batch(1, &[b"w"])]),
            vec![(1, 0)]
        );
    }

    /// Memory follows the cap when it is the tighter bound.
    #[test]
    fn the_transaction_cap_bounds_memory() {
        let cap = 20_000;
        let mut d = Dedupe::new(1_000_000, cap);
        let mut n = 0u64;
        let mut most = 0;
        for height in 1..=2_000u64 {
            let block = [fresh(&mut n, 400)];
            assert!(d.apply(height, &block).is_empty());
            most = most.max(d.remembered());
        }
        assert!(
            most <= 4 * cap as usize,
            "{most} remembered for a cap of {cap}"
        );
    }

    /// A node rebuilt from its stored output (blocks and the repeats they
    /// were delivered with) judges the next blocks as one that never
    /// restarted. Judging the replayed blocks afresh did not: "x" at height
    /// 4 (just before the replayed heights) and again at 7 (a repeat) made
    /// the rebuilt window remember "x" from 7, so it skipped "x" at 11,
    /// which the live node (remembering it from 4) delivered.
    #[test]
    fn a_window_rebuilt_from_stored_output_matches_one_that_never_restarted() {
        for (window, cap) in [(5, u64::MAX), (5, 6), (8, 4)] {
            let mut live = Dedupe::new(window, cap);
            let mut stored = Vec::new();
            let block = |h: u64| -> Vec<Batch> {
                let filler = h.to_le_bytes();
                match h {
                    4 | 7 | 11 => vec![batch(0, &[b"x", &filler])],
                    9 => vec![batch(0, &[&filler, b"y", b"y"])],
                    12 => vec![batch(0, &[b"y", &filler, b"x"])],
                    _ => vec![batch(0, &[&filler])],
                }
            };
            for h in 1..=10 {
                let skipped = live.apply(h, &block(h));
                stored.push((h, block(h), skipped));
            }
            let mut rebuilt = Dedupe::new(window, cap);
            let delivered = 10u64;
            for (h, batches, skipped) in &stored {
                if *h >= delivered.saturating_sub(window).max(1) {
                    rebuilt.restore(*h, batches, skipped);
                }
            }
            for h in 11..=16 {
                assert_eq!(
                    rebuilt.apply(h, &block(h)),
                    live.apply(h, &block(h)),
                    "window {window}, cap {cap}, height {h}"
                );
            }
        }
    }

    /// Entries that left the window are dropped in bulk as their maps fill:
    /// memory follows the window, not the whole history.
    #[test]
    fn expired_entries_are_swept() {
        let window = 50;
        let per_height = 400;
        let mut d = Dedupe::new(window, u64::MAX);
        let mut n = 0u64;
        let mut most = 0;
        for height in 1..=3_000u64 {
            let block = [fresh(&mut n, per_height)];
            assert!(d.apply(height, &block).is_empty());
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
        let mut d = Dedupe::new(1_000_000, u64::MAX);
        let mut n = 0u64;
        let mut growths = Vec::new();
        for height in 1..=2_000u64 {
            let block = [fresh(&mut n, 400)];
            let capacities: Vec<usize> = d.seen.iter().map(|s| s.capacity()).collect();
            assert!(d.apply(height, &block).is_empty());
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
