//! State the actors publish for the API, metrics and tests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ordo_types::{Committee, NodeIndex};
use tokio::sync::broadcast;

use crate::output::OutputBlock;

/// Deliveries buffered for slow subscribers (stream followers, backends)
/// before they must resume from storage. A broadcast channel keeps its
/// last this-many entries alive while a subscriber lags.
const PUBLISH_BUFFER: usize = 64;

/// Blocks whose batches hold more than this go to subscribers as a bare
/// height, to be read from storage: the buffer then holds at most
/// `PUBLISH_BUFFER` × 256 KiB of blocks. (At twice saturation blocks of
/// 4–8 MiB made a lagging stream follower pin 64 of them, 0.3–0.6 GiB.)
pub const LIVE_BLOCK_BYTES: usize = 256 * 1024;

/// One delivery as subscribers see it: the block itself when it is small
/// ([`LIVE_BLOCK_BYTES`]), else only its height.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub height: u64,
    pub block: Option<Arc<OutputBlock>>,
}

pub struct Shared {
    pub me: NodeIndex,
    pub committee: Arc<Committee>,
    view: AtomicU64,
    committed: AtomicU64,
    delivered: AtomicU64,
    /// Set when a write to storage failed: the node stops voting.
    storage_failed: AtomicBool,
    /// Set while the intake has been paused for a while (own batches not
    /// certified): the API refuses rather than queue transactions that
    /// would not be durable.
    intake_stalled: AtomicBool,
    pub timeouts: AtomicU64,
    pub misbehaviour: AtomicU64,
    /// Transactions and batches delivered since start (for rates).
    pub delivered_transactions: AtomicU64,
    pub delivered_batches: AtomicU64,
    /// Batch certificates waiting for a block, at the last mempool turn.
    pub pending_certificates: AtomicU64,
    /// The committed height peers vouch for ([`crate::sync::CatchUp::target`]).
    peer_height: AtomicU64,
    /// Seconds from sealing an own batch to delivering the block holding it.
    pub commit_latency: prometheus_client::metrics::histogram::Histogram,
    /// Seconds from sealing one of this node's batches to its certificate
    /// leaving this node (stored here, sent, two acks back).
    pub certify_latency: prometheus_client::metrics::histogram::Histogram,
    /// Seconds from this node's intake accepting a transaction to this
    /// node delivering the block that holds it.
    pub accept_to_commit: prometheus_client::metrics::histogram::Histogram,
    /// Seconds from this node voting for a block (it accepted the
    /// proposal) to committing it.
    pub consensus_latency: prometheus_client::metrics::histogram::Histogram,
    blocks: broadcast::Sender<Delivered>,
    /// The last block delivered, large or not: subscribers that keep up
    /// take a large block from here instead of storage, and only this one
    /// large block stays pinned.
    latest: parking_lot::Mutex<Option<Arc<OutputBlock>>>,
    /// The running backends (data availability, execution).
    pub backends: crate::backends::Registry,
    /// Clients waiting for their transactions to be stored.
    pub durable: crate::durable::Waiters,
}

impl Shared {
    pub fn new(me: NodeIndex, committee: Arc<Committee>) -> Self {
        Shared {
            me,
            committee,
            view: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            storage_failed: AtomicBool::new(false),
            intake_stalled: AtomicBool::new(false),
            timeouts: AtomicU64::new(0),
            misbehaviour: AtomicU64::new(0),
            delivered_transactions: AtomicU64::new(0),
            delivered_batches: AtomicU64::new(0),
            pending_certificates: AtomicU64::new(0),
            peer_height: AtomicU64::new(0),
            commit_latency: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 12),
            ),
            certify_latency: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0005, 1.5, 24),
            ),
            // Fine buckets (×1.25, 1 ms … ~18 s): the bench reads
            // percentiles off them.
            accept_to_commit: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 1.25, 45),
            ),
            consensus_latency: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 1.5, 24),
            ),
            blocks: broadcast::channel(PUBLISH_BUFFER).0,
            latest: parking_lot::Mutex::new(None),
            backends: crate::backends::Registry::default(),
            durable: Default::default(),
        }
    }

    pub fn view(&self) -> u64 {
        self.view.load(Ordering::Relaxed)
    }

    pub fn set_view(&self, view: u64) {
        self.view.store(view, Ordering::Relaxed);
    }

    /// Height of the last block consensus committed (and stored).
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    pub fn set_committed(&self, height: u64) {
        self.committed.fetch_max(height, Ordering::Relaxed);
    }

    /// Height of the last block delivered with all its batches.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn set_delivered(&self, height: u64) {
        self.delivered.fetch_max(height, Ordering::Relaxed);
    }

    pub fn set_peer_height(&self, height: u64) {
        self.peer_height.store(height, Ordering::Relaxed);
    }

    /// Heights this node is behind the height its peers vouch for.
    pub fn lag(&self) -> u64 {
        self.peer_height
            .load(Ordering::Relaxed)
            .saturating_sub(self.committed())
    }

    pub fn storage_failed(&self) -> bool {
        self.storage_failed.load(Ordering::Relaxed)
    }

    pub fn mark_storage_failed(&self) {
        self.storage_failed.store(true, Ordering::Relaxed);
    }

    pub fn intake_stalled(&self) -> bool {
        self.intake_stalled.load(Ordering::Relaxed)
    }

    pub fn set_intake_stalled(&self, stalled: bool) {
        self.intake_stalled.store(stalled, Ordering::Relaxed);
    }

    pub fn publish(&self, block: Arc<OutputBlock>) {
        let height = block.height();
        *self.latest.lock() = Some(block.clone());
        self.set_delivered(height);
        let bytes: usize = block.batches.iter().map(|b| b.byte_size()).sum();
        let block = (bytes <= LIVE_BLOCK_BYTES).then_some(block);
        let _ = self.blocks.send(Delivered { height, block });
    }

    /// The block at `height` if it is the last one delivered.
    pub fn latest(&self, height: u64) -> Option<Arc<OutputBlock>> {
        self.latest
            .lock()
            .as_ref()
            .filter(|block| block.height() == height)
            .cloned()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        self.blocks.subscribe()
    }
}
