//! The `ledger` execution backend: [`ordo_ledger::Ledger`] applied to the
//! transactions of one namespace, its state and cursor in `backends.redb`
//! (one transaction per height: exactly once across restarts).

use std::sync::Arc;

use ordo_ledger::Ledger;
use ordo_types::PublicKey;

use super::db::{BackendDb, Totals};
use super::{ExecutionBackend, StateRoot};
use crate::error::{Error, Result};
use crate::output::OutputBlock;

pub struct LedgerBackend {
    db: Arc<BackendDb>,
    namespace: u64,
    ledger: Ledger,
    totals: Totals,
}

impl LedgerBackend {
    /// Resumes the ledger saved in `db`, or starts it from `genesis`. The
    /// genesis must be the one the saved ledger started from.
    pub fn open(db: Arc<BackendDb>, namespace: u64, genesis: &[(PublicKey, u64)]) -> Result<Self> {
        let fresh = Ledger::genesis(genesis).map_err(|e| Error::Backend(e.to_string()))?;
        let ledger = match db.load_ledger()? {
            Some((accounts, height, genesis_root)) => {
                if genesis_root != fresh.root() {
                    return Err(Error::Backend(format!(
                        "ledger: the configured genesis (root {}) is not the one this data dir \
                         started from (root {})",
                        fresh.root().to_hex(),
                        genesis_root.to_hex()
                    )));
                }
                Ledger::restore(accounts, height)
            }
            None => {
                db.save_ledger_genesis(fresh.accounts(), fresh.root())?;
                fresh
            }
        };
        let totals = db.ledger_totals()?;
        Ok(LedgerBackend {
            db,
            namespace,
            ledger,
            totals,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

impl ExecutionBackend for LedgerBackend {
    fn kind(&self) -> &'static str {
        "ledger"
    }

    fn cursor(&self) -> u64 {
        self.ledger.height()
    }

    fn apply(&mut self, block: &OutputBlock) -> Result<StateRoot> {
        let mut next = self.ledger.clone();
        let txs = block
            .transactions()
            .filter(|tx| tx.namespace == self.namespace)
            .map(|tx| tx.payload.as_ref());
        let outcome = next
            .apply_block(block.height(), txs)
            .map_err(|e| Error::Backend(format!("ledger: {e}")))?;
        let totals = Totals {
            applied: self.totals.applied + outcome.applied,
            rejected: self.totals.rejected + outcome.rejected.len() as u64,
        };
        // Durable first; the in-memory state follows only once it is.
        self.db.save_ledger_block(&outcome, &totals)?;
        self.ledger = next;
        self.totals = totals;
        Ok(outcome.root)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;
    use ordo_ledger::{dev_keypair, Transfer};
    use ordo_mempool::{Batch, Transaction};

    use super::*;
    use crate::backends::local_da::tests::blocks;

    fn with_txs(mut block: OutputBlock, txs: Vec<(u64, Vec<u8>)>) -> OutputBlock {
        block.batches = vec![Batch {
            author: 0,
            seq: block.height(),
            txs: txs
                .into_iter()
                .map(|(namespace, payload)| Transaction::new(namespace, Bytes::from(payload)))
                .collect(),
        }];
        block
    }

    #[test]
    fn applies_exactly_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dev_keypair(0), dev_keypair(1));
        let genesis = vec![(a.public(), 100), (b.public(), 0)];
        let chain = blocks(2);
        let t0 = Transfer::sign(&a, b.public(), 10, 0).encode().unwrap();
        let t1 = Transfer::sign(&a, b.public(), 5, 1).encode().unwrap();
        let b1 = with_txs(
            chain[0].clone(),
            vec![(7, t0.clone()), (9, b"other".to_vec())],
        );
        let b2 = with_txs(chain[1].clone(), vec![(7, t1), (7, t0)]);
        let root1 = {
            let db = Arc::new(BackendDb::open(dir.path()).unwrap());
            let mut l = LedgerBackend::open(db, 7, &genesis).unwrap();
            let root = l.apply(&b1).unwrap();
            // Out of order is refused, nothing changes.
            assert!(l.apply(&b1).is_err());
            assert_eq!(l.cursor(), 1);
            root
        };
        let db = Arc::new(BackendDb::open(dir.path()).unwrap());
        let mut l = LedgerBackend::open(db.clone(), 7, &genesis).unwrap();
        assert_eq!(l.cursor(), 1);
        assert_eq!(l.ledger().root(), root1);
        assert_eq!(l.ledger().account(&a.public()).balance, 90);
        l.apply(&b2).unwrap();
        assert_eq!(l.ledger().account(&b.public()).balance, 15);
        let record = db.ledger_root(2).unwrap().unwrap();
        assert_eq!((record.applied, record.rejected), (1, 1));
        assert_eq!(
            db.ledger_totals().unwrap(),
            Totals {
                applied: 2,
                rejected: 1
            }
        );
        assert_eq!(db.ledger_account(&b.public()).unwrap().unwrap().balance, 15);
        // Another genesis on the same data dir is refused.
        assert!(LedgerBackend::open(db, 7, &genesis[..1]).is_err());
    }
}
