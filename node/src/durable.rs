//! Clients waiting for their transaction to be durable on this node
//! (`POST /v1/transactions?durable=true`).
//!
//! A waiter is registered under the transaction's digest before the
//! transaction enters the intake, so it cannot miss the moment its batch is
//! stored; the executor wakes the waiters of every transaction in the own
//! batches it has just stored. With no waiter registered that costs one
//! atomic load per stored group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ordo_mempool::{Batch, Transaction};
use ordo_types::Digest;
use parking_lot::Mutex;
use tokio::sync::oneshot;

#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<Digest, Vec<oneshot::Sender<()>>>>,
    /// Digests in `waiting` (read without the lock).
    count: AtomicUsize,
}

impl Waiters {
    /// Registers a waiter for the transaction with `digest`.
    pub fn register(&self, digest: Digest) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock();
        waiting.entry(digest).or_default().push(tx);
        self.count.store(waiting.len(), Ordering::Relaxed);
        rx
    }

    /// Drops the waiters of `digest` whose receiver is gone (timed out, or
    /// the client left).
    pub fn forget(&self, digest: &Digest) {
        let mut waiting = self.waiting.lock();
        if let Some(list) = waiting.get_mut(digest) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiting.remove(digest);
            }
        }
        self.count.store(waiting.len(), Ordering::Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// This node's `batches` are stored: wakes their transactions' waiters.
    pub fn stored(&self, batches: &[Batch]) {
        if self.is_empty() {
            return;
        }
        let mut waiting = self.waiting.lock();
        for batch in batches {
            Transaction::compute_digests(&batch.txs);
            for tx in &batch.txs {
                if let Some(list) = waiting.remove(&tx.digest()) {
                    for waiter in list {
                        let _ = waiter.send(());
                    }
                }
            }
        }
        self.count.store(waiting.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn tx(payload: &'static [u8]) -> Transaction {
        Transaction::new(1, Bytes::from_static(payload))
    }

    #[test]
    fn stored_wakes_the_waiters_of_its_transactions_only() {
        let waiters = Waiters::default();
        assert!(waiters.is_empty());
        let (a, b) = (tx(b"a"), tx(b"b"));
        let mut first = waiters.register(a.digest());
        let mut second = waiters.register(a.digest());
        let mut other = waiters.register(b.digest());
        let batch = Batch {
            author: 0,
            seq: 0,
            txs: vec![tx(b"a"), tx(b"c")],
        };
        waiters.stored(&[batch]);
        assert_eq!(first.try_recv(), Ok(()));
        assert_eq!(second.try_recv(), Ok(()));
        assert!(other.try_recv().is_err(), "b is not stored");
        assert!(!waiters.is_empty());
        // A waiter that gave up is forgotten.
        drop(other);
        waiters.forget(&b.digest());
        assert!(waiters.is_empty());
    }
}
