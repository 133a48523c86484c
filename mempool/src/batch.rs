//! Batches: an author's sealed, sequenced list of transactions.

use ordo_types::{Digest, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Transaction};

/// A batch sealed by `author` with its own sequence number `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub author: NodeIndex,
    pub seq: u64,
    pub txs: Vec<Transaction>,
}

/// What a certificate says about a batch without carrying its bytes; this is
/// what an acknowledgement signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchHeader {
    pub digest: Digest,
    pub author: NodeIndex,
    pub seq: u64,
    pub tx_count: u32,
    pub byte_size: u64,
}

/// Size limits a received batch must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_batch_bytes: usize,
    pub max_batch_txs: usize,
    pub max_tx_bytes: usize,
}

impl Batch {
    /// blake3 in the `ordo-batch` domain over author, seq, the number of
    /// transactions and each transaction's digest, in order.
    pub fn digest(&self) -> Digest {
        let mut hasher = Digest::hasher("ordo-batch");
        hasher
            .update_u64(u64::from(self.author))
            .update_u64(self.seq)
            .update_u64(self.txs.len() as u64);
        Transaction::compute_digests(&self.txs);
        for tx in &self.txs {
            hasher.update(tx.digest().as_bytes());
        }
        hasher.finalize()
    }

    /// Sum of the transactions' sizes.
    pub fn byte_size(&self) -> usize {
        self.txs.iter().map(Transaction::size).sum()
    }

    pub fn header(&self) -> BatchHeader {
        self.header_with(self.digest())
    }

    /// The header, reusing an already computed digest.
    pub fn header_with(&self, digest: Digest) -> BatchHeader {
        BatchHeader {
            digest,
            author: self.author,
            seq: self.seq,
            tx_count: u32::try_from(self.txs.len()).unwrap_or(u32::MAX),
            byte_size: self.byte_size() as u64,
        }
    }

    /// Checks the size limits: not empty, not too many transactions, no
    /// transaction and not the whole batch over its byte limit.
    pub fn check_limits(&self, limits: &BatchLimits) -> Result<()> {
        if self.txs.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if self.txs.len() > limits.max_batch_txs {
            return Err(Error::TooManyTxs {
                count: self.txs.len(),
                max: limits.max_batch_txs,
            });
        }
        if let Some(tx) = self.txs.iter().find(|tx| tx.size() > limits.max_tx_bytes) {
            return Err(Error::TxTooLarge {
                size: tx.size(),
                max: limits.max_tx_bytes,
            });
        }
        let bytes = self.byte_size();
        if bytes > limits.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                bytes,
                max: limits.max_batch_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(author: NodeIndex, seq: u64, payloads: &[&[u8]]) -> Batch {
        Batch {
            author,
            seq,
            txs: payloads
                .iter()
                .map(|p| Transaction::new(0, p.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn digest_binds_author_seq_and_order() {
        let b = batch(0, 1, &[b"a", b"b"]);
        assert_ne!(b.digest(), batch(1, 1, &[b"a", b"b"]).digest());
        assert_ne!(b.digest(), batch(0, 2, &[b"a", b"b"]).digest());
        assert_ne!(b.digest(), batch(0, 1, &[b"b", b"a"]).digest());
        assert_eq!(b.digest(), batch(0, 1, &[b"a", b"b"]).digest());
    }

    #[test]
    fn limits_table() {
        let limits = BatchLimits {
            max_batch_bytes: 10,
            max_batch_txs: 3,
            max_tx_bytes: 4,
        };
        let table: Vec<(Batch, Result<()>)> = vec![
            (batch(0, 0, &[b"abcd", b"ef"]), Ok(())),
            (batch(0, 0, &[]), Err(Error::EmptyBatch)),
            (
                batch(0, 0, &[b"a", b"b", b"c", b"d"]),
                Err(Error::TooManyTxs { count: 4, max: 3 }),
            ),
            (
                batch(0, 0, &[b"abcde"]),
                Err(Error::TxTooLarge { size: 5, max: 4 }),
            ),
            (
                batch(0, 0, &[b"abcd", b"abcd", b"abc"]),
                Err(Error::BatchTooLarge { bytes: 11, max: 10 }),
            ),
        ];
        for (b, expected) in table {
            assert_eq!(b.check_limits(&limits), expected, "{b:?}");
        }
    }
}
