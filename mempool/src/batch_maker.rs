//! The batch maker: turns this node's transactions into sequenced batches.
//!
//! A batch is sealed as soon as it holds `batch_bytes` (or `max_batch_txs`)
//! worth of transactions, or `batch_delay_ms` after its first transaction,
//! whichever comes first. A transaction that would push the open batch past
//! `batch_bytes` seals it and opens the next one, so no batch exceeds the
//! limit. Sequence numbers are consecutive from the `next_seq` the host
//! restored from storage.

use ordo_types::NodeIndex;

use crate::{Batch, Config, Transaction};

#[derive(Debug)]
pub struct BatchMaker {
    author: NodeIndex,
    next_seq: u64,
    batch_bytes: usize,
    max_batch_txs: usize,
    batch_delay_ms: u64,
    open: Vec<Transaction>,
    open_bytes: usize,
    /// When the open batch must be sealed; `Some` iff it is non-empty.
    deadline_ms: Option<u64>,
}

/// What adding transactions produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    /// Batches sealed by size, in seq order.
    pub batches: Vec<Batch>,
    /// A new open batch started: fire the seal timer at this time.
    pub timer_at_ms: Option<u64>,
}

impl BatchMaker {
    pub fn new(author: NodeIndex, next_seq: u64, config: &Config) -> Self {
        BatchMaker {
            author,
            next_seq,
            batch_bytes: config.batch_bytes,
            max_batch_txs: config.max_batch_txs,
            batch_delay_ms: config.batch_delay_ms,
            open: Vec::new(),
            open_bytes: 0,
            deadline_ms: None,
        }
    }

    /// The seq the next sealed batch gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes in the open batch.
    pub fn open_bytes(&self) -> usize {
        self.open_bytes
    }

    pub fn deadline_ms(&self) -> Option<u64> {
        self.deadline_ms
    }

    /// Adds transactions, sealing every batch that fills up.
    pub fn add(&mut self, now_ms: u64, txs: Vec<Transaction>) -> Sealed {
        let mut sealed = Sealed::default();
        for tx in txs {
            if !self.open.is_empty() && self.open_bytes + tx.size() > self.batch_bytes {
                sealed.batches.extend(self.seal());
            }
            if self.open.is_empty() {
                let deadline = now_ms.saturating_add(self.batch_delay_ms);
                self.deadline_ms = Some(deadline);
                sealed.timer_at_ms = Some(deadline);
            }
            self.open_bytes += tx.size();
            self.open.push(tx);
            if self.open_bytes >= self.batch_bytes || self.open.len() >= self.max_batch_txs {
                sealed.batches.extend(self.seal());
            }
        }
        if self.open.is_empty() {
            sealed.timer_at_ms = None;
        }
        sealed
    }

    /// The seal timer fired: seals the open batch if its deadline passed
    /// (a stale timer from an already sealed batch does nothing).
    pub fn on_timer(&mut self, now_ms: u64) -> Option<Batch> {
        match self.deadline_ms {
            Some(deadline) if deadline <= now_ms => self.seal(),
            _ => None,
        }
    }

    fn seal(&mut self) -> Option<Batch> {
        if self.open.is_empty() {
            return None;
        }
        let batch = Batch {
            author: self.author,
            seq: self.next_seq,
            txs: std::mem::take(&mut self.open),
        };
        self.next_seq += 1;
        self.open_bytes = 0;
        self.deadline_ms = None;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maker() -> BatchMaker {
        let config = Config {
            batch_bytes: 10,
            batch_delay_ms: 50,
            max_batch_txs: 3,
            max_tx_bytes: 10,
            ..Config::default()
        };
        BatchMaker::new(2, 7, &config)
    }

    fn txs(sizes: &[usize]) -> Vec<Transaction> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Transaction::new(i as u64, vec![0u8; n]))
            .collect()
    }

    fn shape(batches: &[Batch]) -> Vec<(u64, Vec<usize>)> {
        batches
            .iter()
            .map(|b| (b.seq, b.txs.iter().map(Transaction::size).collect()))
            .collect()
    }

    #[test]
    fn seal_by_size_table() {
        // (tx sizes added at t=0) -> (sealed batches as (seq, sizes), open bytes)
        type Row = (Vec<usize>, Vec<(u64, Vec<usize>)>, usize);
        let table: Vec<Row> = vec![
            (vec![4, 4], vec![], 8),
            (vec![4, 6], vec![(7, vec![4, 6])], 0),
            (vec![4, 4, 4], vec![(7, vec![4, 4])], 4),
            (vec![1, 1, 1, 1], vec![(7, vec![1, 1, 1])], 1),
            (vec![10, 10], vec![(7, vec![10]), (8, vec![10])], 0),
        ];
        for (sizes, expected, open) in table {
            let mut m = maker();
            let sealed = m.add(0, txs(&sizes));
            assert_eq!(shape(&sealed.batches), expected, "{sizes:?}");
            assert_eq!(m.open_bytes(), open, "{sizes:?}");
            assert_eq!(sealed.timer_at_ms.is_some(), open > 0, "{sizes:?}");
        }
    }

    #[test]
    fn seal_by_delay() {
        let mut m = maker();
        let sealed = m.add(100, txs(&[3]));
        assert_eq!(sealed.timer_at_ms, Some(150));
        // More transactions do not push the deadline back.
        assert_eq!(m.add(120, txs(&[2])).timer_at_ms, None);
        assert_eq!(m.on_timer(149), None);
        let batch = m.on_timer(150).unwrap();
        assert_eq!((batch.author, batch.seq, batch.txs.len()), (2, 7, 2));
        // Nothing open: a late duplicate timer does nothing.
        assert_eq!(m.on_timer(200), None);
        assert_eq!(m.next_seq(), 8);
    }

    #[test]
    fn stale_timer_after_size_seal_is_ignored() {
        let mut m = maker();
        assert_eq!(m.add(0, txs(&[6])).timer_at_ms, Some(50));
        let sealed = m.add(40, txs(&[6]));
        assert_eq!(sealed.batches.len(), 1);
        assert_eq!(sealed.timer_at_ms, Some(90));
        assert_eq!(m.on_timer(50), None);
        assert!(m.on_timer(90).is_some());
    }
}
