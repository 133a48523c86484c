//! Parameters of the mempool core. Units are in the names.

use crate::{BatchLimits, Error, Result};

/// Knobs of [`crate::Mempool`]; every queue and cache it keeps is bounded by
/// one of them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seal a batch once its transactions reach this many bytes; also the
    /// largest batch accepted from a peer.
    pub batch_bytes: usize,
    /// Seal a non-empty batch this long after its first transaction.
    pub batch_delay_ms: u64,
    /// Seal (and accept from peers) at most this many transactions a batch.
    pub max_batch_txs: usize,
    /// Largest transaction payload; must not exceed `batch_bytes`.
    pub max_tx_bytes: usize,
    /// Own batches awaiting a certificate before [`crate::Mempool::accepts_transactions`]
    /// says no (back-pressure onto the intake).
    pub max_inflight_batches: usize,
    /// Own certified batches not yet committed before
    /// [`crate::Mempool::accepts_transactions`] says no: when consensus
    /// cannot order them as fast as they are certified, the excess is
    /// refused at the API instead of queueing here.
    pub max_uncommitted_batches: usize,
    /// Batches (and their seq numbers) remembered per peer author.
    pub max_batches_per_author: usize,
    /// Uncommitted certificates queued per author.
    pub max_pending_per_author: usize,
    /// Committed batch digests remembered so late certificates are dropped.
    pub committed_memory: usize,
    /// Wait this long for a fetched batch before asking the next signer.
    pub fetch_retry_ms: u64,
    /// Re-send an own batch not certified after this long (then doubling,
    /// capped at 16x) to the peers that have not acknowledged it.
    pub retransmit_ms: u64,
    /// A certificate held uncommitted this long goes on inclusion lists.
    pub inclusion_delay_ms: u64,
    /// Longest inclusion list.
    pub max_inclusion_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch_bytes: 512 * 1024,
            batch_delay_ms: 25,
            max_batch_txs: 10_000,
            max_tx_bytes: 128 * 1024,
            max_inflight_batches: 16,
            max_uncommitted_batches: 256,
            max_batches_per_author: 2_000,
            max_pending_per_author: 1_000,
            committed_memory: 100_000,
            fetch_retry_ms: 500,
            retransmit_ms: 500,
            inclusion_delay_ms: 1_000,
            max_inclusion_len: 64,
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        let problem = if self.max_tx_bytes == 0 || self.max_tx_bytes > self.batch_bytes {
            "need 0 < max_tx_bytes <= batch_bytes"
        } else if self.max_batch_txs == 0 {
            "max_batch_txs must be positive"
        } else if self.max_inflight_batches == 0 {
            "max_inflight_batches must be positive"
        } else if self.max_uncommitted_batches == 0 {
            "max_uncommitted_batches must be positive"
        } else if self.max_pending_per_author == 0 || self.max_batches_per_author == 0 {
            "per-author bounds must be positive"
        } else if self.retransmit_ms == 0 {
            "retransmit_ms must be positive"
        } else if self.fetch_retry_ms == 0 {
            "fetch_retry_ms must be positive"
        } else if self.max_inclusion_len == 0 {
            "max_inclusion_len must be positive"
        } else {
            return Ok(());
        };
        Err(Error::InvalidConfig(problem.to_string()))
    }

    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_batch_bytes: self.batch_bytes,
            max_batch_txs: self.max_batch_txs,
            max_tx_bytes: self.max_tx_bytes,
        }
    }
}
