//! Durable state of the backends, in `backends.redb` under the data dir
//! (apart from `ordo.redb`, so a backend's writes never queue behind the
//! node's bulk writes, nor the node's behind a backend's).
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `cursors` | backend name | last height it finished (u64 LE) |
//! | `da_receipts` | height | the DA [`Receipt`] (bincode) |
//! | `ledger_accounts` | public key | [`ordo_ledger::Account`] (bincode) |
//! | `ledger_roots` | height | [`RootRecord`] (bincode) |
//! | `ledger_meta` | name | genesis root, totals |
//!
//! Each finished height is one transaction holding the backend's result and
//! its cursor: after a crash a height is either done with its result stored,
//! or not done at all.

use std::collections::BTreeMap;
use std::path::Path;

use ordo_ledger::{Account, BlockOutcome};
use ordo_types::codec::{decode, encode};
use ordo_types::{Digest, PublicKey};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Receipt;
use crate::error::{Error, Result};

const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("da_receipts");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ledger_accounts");
const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger_roots");
const LEDGER_META: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger_meta");

const GENESIS_KEY: &str = "genesis_root";
const TOTALS_KEY: &str = "totals";
/// Cursor name of the execution backend `ledger`.
pub const LEDGER_CURSOR: &str = "ledger";
/// Cursor name of the data-availability backend.
pub const DA_CURSOR: &str = "da";

const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The ledger's result at one height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecord {
    pub root: Digest,
    /// Ledger transactions applied / rejected in this block.
    pub applied: u64,
    pub rejected: u64,
}

/// A saved ledger: its accounts, its height and its genesis root.
pub type SavedLedger = (BTreeMap<PublicKey, Account>, u64, Digest);

/// Ledger transactions applied / rejected since genesis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub applied: u64,
    pub rejected: u64,
}

pub struct BackendDb {
    db: Database,
}

impl BackendDb {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("backends.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(CURSORS)?;
            txn.open_table(RECEIPTS)?;
            txn.open_table(ACCOUNTS)?;
            txn.open_table(ROOTS)?;
            txn.open_table(LEDGER_META)?;
        }
        txn.commit()?;
        Ok(BackendDb { db })
    }

    /// Last height backend `name` finished (0 before any).
    pub fn cursor(&self, name: &str) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CURSORS)?;
        let value = table.get(name)?;
        Ok(value.map_or(0, |v| v.value()))
    }

    /// Stores a DA receipt and advances the `da` cursor, in one transaction.
    pub fn save_receipt(&self, receipt: &Receipt) -> Result<()> {
        let bytes = encode(receipt)?;
        let txn = self.db.begin_write()?;
        {
            txn.open_table(RECEIPTS)?
                .insert(receipt.height, bytes.as_slice())?;
            txn.open_table(CURSORS)?.insert(DA_CURSOR, receipt.height)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn receipt(&self, height: u64) -> Result<Option<Receipt>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECEIPTS)?;
        let value = table.get(height)?;
        value
            .map(|v| decode(v.value()).map_err(Error::from))
            .transpose()
    }

    /// The ledger state as last saved, with its height; `None` on a data dir
    /// the ledger never ran on.
    pub fn load_ledger(&self) -> Result<Option<SavedLedger>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(LEDGER_META)?;
        let Some(genesis) = meta.get(GENESIS_KEY)? else {
            return Ok(None);
        };
        let genesis: Digest = decode(genesis.value())?;
        let mut accounts = BTreeMap::new();
        for entry in txn.open_table(ACCOUNTS)?.iter()? {
            let (key, value) = entry?;
            let key: [u8; 32] = key
                .value()
                .try_into()
                .map_err(|_| Error::Storage("ledger account key is not 32 bytes".into()))?;
            accounts.insert(PublicKey(key), decode(value.value())?);
        }
        let height = txn
            .open_table(CURSORS)?
            .get(LEDGER_CURSOR)?
            .map_or(0, |v| v.value());
        Ok(Some((accounts, height, genesis)))
    }

    /// Stores the genesis state (height 0) of a fresh ledger.
    pub fn save_ledger_genesis(
        &self,
        accounts: &BTreeMap<PublicKey, Account>,
        root: Digest,
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ACCOUNTS)?;
            for (key, account) in accounts {
                table.insert(key.0.as_slice(), encode(account)?.as_slice())?;
            }
            txn.open_table(LEDGER_META)?
                .insert(GENESIS_KEY, encode(&root)?.as_slice())?;
            txn.open_table(CURSORS)?.insert(LEDGER_CURSOR, 0)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores what block `outcome.height` changed, its root, the totals and
    /// the ledger cursor in one transaction: exactly once across restarts.
    pub fn save_ledger_block(&self, outcome: &BlockOutcome, totals: &Totals) -> Result<()> {
        let record = RootRecord {
            root: outcome.root,
            applied: outcome.applied,
            rejected: outcome.rejected.len() as u64,
        };
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ACCOUNTS)?;
            for (key, account) in &outcome.touched {
                table.insert(key.0.as_slice(), encode(account)?.as_slice())?;
            }
            txn.open_table(ROOTS)?
                .insert(outcome.height, encode(&record)?.as_slice())?;
            txn.open_table(LEDGER_META)?
                .insert(TOTALS_KEY, encode(totals)?.as_slice())?;
            txn.open_table(CURSORS)?
                .insert(LEDGER_CURSOR, outcome.height)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn ledger_root(&self, height: u64) -> Result<Option<RootRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ROOTS)?;
        let value = table.get(height)?;
        value
            .map(|v| decode(v.value()).map_err(Error::from))
            .transpose()
    }

    pub fn ledger_totals(&self) -> Result<Totals> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LEDGER_META)?;
        let value = table.get(TOTALS_KEY)?;
        Ok(value
            .map(|v| decode(v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// A ledger account as of the ledger cursor; `None` if never touched.
    pub fn ledger_account(&self, key: &PublicKey) -> Result<Option<Account>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ACCOUNTS)?;
        let value = table.get(key.0.as_slice())?;
        value
            .map(|v| decode(v.value()).map_err(Error::from))
            .transpose()
    }
}
