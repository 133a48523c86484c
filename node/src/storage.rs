//! Durable state of a node under the data dir: its votes in `votes.log`
//! ([`crate::vote_log`]: safety data and the blocks it voted for, one
//! record and one `fdatasync` per vote), batch bytes in `batches/`
//! ([`crate::batch_log`]), and everything else in `ordo.redb`.
//!
//! Every write to `ordo.redb` is one redb transaction. What a crash must
//! not lose (pruning, segment compaction) is committed with fsync
//! (`Durability::Immediate`, redb's default), so when such a method returns,
//! what it wrote survives a crash. Committed blocks and output rows are
//! *relaxed*: their commits skip the fsync (`Durability::None`) while a
//! durable commit of the same file happened in the last
//! [`RELAXED_FOR`]; the next durable commit (under load the next batch
//! group, milliseconds later) persists them with it, in commit order. A crash
//! can lose only the last few of them, and those are what peers send again:
//! the restarted node resumes from the last durable tip and catches up. That
//! takes two fsyncs per block off the path from commit to delivery
//! (docs/performance.md). Batch locations are relaxed too: the batch log is
//! fsynced before a batch is acknowledged, and a restart indexes what it
//! holds past the last durable location commit ([`Storage::reindex`]).
//!
//! Committed blocks, batch locations and output rows are not even given a
//! transaction each: they are *staged* in memory, where readers find them
//! at once, and stored together once [`STAGE_MAX_WAIT`] (or
//! [`STAGE_MAX_WRITES`]) is reached — by the node's background writer
//! ([`Storage::start_background_writes`]), else by the first staging write
//! to find them due — or by any other write transaction, which stores them
//! first. A redb write transaction costs a
//! few hundred microseconds of CPU even without fsync (it rewrites a path
//! of pages in every table it touches), and there had been three a view
//! (the committed block, the batch group, the output row); now there is
//! about one every 25 ms. A process crash loses what is staged, which is
//! what a machine crash could already lose of a relaxed commit, and is
//! recovered the same way: the lost heights are committed again (or caught
//! up) and delivered again, identically.
//! Tables of `ordo.redb`:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | name | pruning mark, delivered height, next own seq, batch log end |
//! | `committed` | height | committed block with its certificate |
//! | `committed_by_digest` | digest | committed blocks (to serve fetches) |
//! | `batch_locations` | digest | where the batch's bytes are in `batches/` |
//! | `batches` | digest | batch bytes (data dirs of earlier versions; read, pruned, no longer written) |
//! | `output` | height | the delivered block, naming its batches by digest |
//! | `batch_last_height` | digest | the last delivered height naming the batch |
//! | `own_undelivered` | digest | seq of this node's batches not yet delivered |
//!
//! Batch bytes themselves go to append-only segment files under
//! `batches/` ([`crate::batch_log`]), written and synced before their
//! locations are committed here.

use std::path::Path;

use ordo_consensus::{Block, CommittedBlock, Height, Recovery, SafetyData};
use ordo_types::codec::{decode, encode};
use ordo_types::{Committee, Digest};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::batch_log::{BatchLog, Kind, Location, Position};
use crate::error::{Error, Result};
use crate::output::OutputBlock;
use crate::vote_log::VoteLog;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COMMITTED: TableDefinition<u64, &[u8]> = TableDefinition::new("committed");
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
const COMMITTED_BY_DIGEST: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("committed_by_digest");

/// Page cache of the bulk database (batches, output).
const DATA_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// What an error about the votes file ends with.
const VOTES_ADVICE: &str = " (this file holds the node's votes: do not delete it, a node that \
     forgets its votes can vote twice; restore it from a backup)";
const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");
const BATCH_LOCATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batch_locations");
/// A segment at least two behind the active one that still holds this few
/// batches (long pending, or never committed) has them copied forward and
/// is deleted, so such stragglers never keep whole segments on disk.
const COMPACT_MAX_LIVE: u64 = 64;
const OUTPUT: TableDefinition<u64, &[u8]> = TableDefinition::new("output");
/// The last delivered height whose output names each batch. A Byzantine
/// leader can commit a certificate again at a later height (the payload
/// rules check a proposal, not the whole chain), and a node that no longer
/// remembers the first commit delivers the batch there too; pruning the
/// first height must then keep the batch for the later one.
const BATCH_LAST_HEIGHT: TableDefinition<&[u8], u64> = TableDefinition::new("batch_last_height");
/// This node's own batches not yet delivered (digest → seq): what a
/// restarted node disseminates again, so a batch it stored is not lost
/// with its certificate.
const OWN_UNDELIVERED: TableDefinition<&[u8], u64> = TableDefinition::new("own_undelivered");

/// How long committed blocks and output rows may wait for a durable commit
/// of `ordo.redb` (see the module doc).
pub const RELAXED_FOR: std::time::Duration = std::time::Duration::from_millis(200);

const SAFETY_KEY: &str = "safety";
const PRUNED_KEY: &str = "batches_pruned_below";
const DELIVERED_KEY: &str = "delivered";
const NEXT_SEQ_KEY: &str = "next_own_batch_seq";
/// Where the batch log ended after the last group whose locations are
/// committed: a restarted node indexes the log from there
/// ([`Storage::reindex`]).
const LOG_END_KEY: &str = "batch_log_end";

/// An output row: the delivered block, naming its batches by digest.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredOutput {
    header: ordo_consensus::BlockHeader,
    cert: ordo_consensus::CommitCert,
    payload: ordo_consensus::Payload,
    inclusion: Vec<ordo_consensus::InclusionAttachment>,
    batches: Vec<Digest>,
    skipped: Vec<(u32, u32)>,
}

/// The highest height in `committed` (0 if empty).
fn last_height(committed: &impl ReadableTable<u64, &'static [u8]>) -> Result<Height> {
    let last = committed.last()?;
    Ok(last.map_or(0, |(k, _)| k.value()))
}

/// Refuses committed blocks that do not continue `tip` without a gap.
fn continue_tip(tip: Height, blocks: &[CommittedBlock]) -> Result<()> {
    for (expected, block) in (tip + 1..).zip(blocks) {
        let height = block.block.height();
        if height != expected {
            return Err(Error::Storage(format!(
                "commit of height {height} does not continue the tip {}",
                expected - 1
            )));
        }
    }
    Ok(())
}

/// Most writes staged before the next one writes them itself.
const STAGE_MAX_WRITES: usize = 1_024;
/// Longest a write stays staged before the next one writes them all.
const STAGE_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(25);
/// With a background writer ([`Storage::write_staged_if_due`]), the staging
/// writes store the stage themselves only once it is this many times past
/// the limits above: the writer has fallen behind, or is failing (then
/// they return its error).
const STAGE_OVERDUE: u32 = 4;

/// Writes to `ordo.redb` that wait in memory for its next write transaction
/// (see the module doc). Readers see them as if they were stored.
#[derive(Clone, Default)]
struct Staged {
    /// Committed blocks continuing the stored tip, in height order.
    commits: Vec<CommittedBlock>,
    /// Locations of batches appended to the log.
    locations: ordo_types::DigestMap<Location>,
    /// This node's own batches among them (digest, seq), undelivered.
    own: Vec<(Digest, u64)>,
    /// The seq after this node's highest own batch among them.
    next_seq: Option<u64>,
    /// Where the log ends after the last of them.
    log_end: Option<Position>,
    /// Delivered blocks, in height order.
    outputs: Vec<std::sync::Arc<OutputBlock>>,
    /// When the oldest of them was staged.
    since: Option<std::time::Instant>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.commits.is_empty()
            && self.locations.is_empty()
            && self.own.is_empty()
            && self.next_seq.is_none()
            && self.log_end.is_none()
            && self.outputs.is_empty()
    }

    /// Whether the next write should store them rather than add to them.
    fn due(&self) -> bool {
        self.full() || self.since.is_some_and(|at| at.elapsed() >= STAGE_MAX_WAIT)
    }

    /// Whether they are [`STAGE_OVERDUE`] times past the limits.
    fn overdue(&self) -> bool {
        self.writes() >= STAGE_MAX_WRITES * STAGE_OVERDUE as usize
            || self
                .since
                .is_some_and(|at| at.elapsed() >= STAGE_MAX_WAIT * STAGE_OVERDUE)
    }

    fn writes(&self) -> usize {
        self.commits.len() + self.locations.len() + self.outputs.len()
    }

    /// Whether they reached [`STAGE_MAX_WRITES`].
    fn full(&self) -> bool {
        self.writes() >= STAGE_MAX_WRITES
    }

    fn touch(&mut self) {
        self.since.get_or_insert_with(std::time::Instant::now);
    }

    fn committed(&self, height: Height) -> Option<&CommittedBlock> {
        let first = self.commits.first()?.block.height();
        self.commits
            .get(usize::try_from(height.checked_sub(first)?).ok()?)
    }

    /// Puts `older` (taken for a transaction that failed) back before
    /// these.
    fn restore(&mut self, older: Staged) {
        let newer = std::mem::replace(self, older);
        self.commits.extend(newer.commits);
        self.locations.extend(newer.locations);
        self.own.extend(newer.own);
        self.outputs.extend(newer.outputs);
        self.next_seq = newer.next_seq.or(self.next_seq);
        self.log_end = newer.log_end.or(self.log_end);
        self.since = self.since.or(newer.since);
    }
}

/// The staged writes, and those being written by the open write
/// transaction (still visible to readers until it commits).
#[derive(Default)]
struct Stage {
    current: Staged,
    writing: Option<std::sync::Arc<Staged>>,
}

impl Stage {
    /// Looks through the staged writes, newest first.
    fn find<T>(&self, f: impl Fn(&Staged) -> Option<T>) -> Option<T> {
        f(&self.current).or_else(|| self.writing.as_deref().and_then(f))
    }
}

/// The node's database.
pub struct Storage {
    db: Database,
    votes: VoteLog,
    path: std::path::PathBuf,
    log: BatchLog,
    /// Batches each segment holds that `batch_locations` points to.
    live: parking_lot::Mutex<std::collections::BTreeMap<u32, u64>>,
    /// When `db` last had a durable commit.
    durable_at: parking_lot::Mutex<std::time::Instant>,
    /// The committed tip as of the last durable commit of `db`.
    durable_tip: std::sync::atomic::AtomicU64,
    /// Held while a batch group is appended and its locations staged, so
    /// the log end stored with them covers exactly what they index.
    appending: parking_lot::Mutex<()>,
    /// Writes waiting for the next write transaction.
    stage: parking_lot::Mutex<Stage>,
    /// Whether a background writer stores the stage when due.
    background: std::sync::atomic::AtomicBool,
}

impl Storage {
    /// Opens (creating if needed) `dir/ordo.redb`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("ordo.redb");
        let open = |path: &Path, cache: usize, if_corrupt: &str| {
            Database::builder()
                .set_cache_size(cache)
                .create(path)
                .map_err(|e| {
                    let advice = match e {
                        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => {
                            if_corrupt
                        }
                        _ => "",
                    };
                    Error::Storage(format!("cannot open {}: {e}{advice}", path.display()))
                })
        };
        let db = open(
            &path,
            DATA_CACHE_BYTES,
            " (this file holds only what peers can send again: move it aside \
             and restart, and the node catches up from its peers)",
        )?;
        let votes = Self::open_votes(dir)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(COMMITTED)?;
            txn.open_table(COMMITTED_BY_DIGEST)?;
            txn.open_table(BATCHES)?;
            txn.open_table(BATCH_LOCATIONS)?;
            txn.open_table(OUTPUT)?;
            txn.open_table(BATCH_LAST_HEIGHT)?;
            txn.open_table(OWN_UNDELIVERED)?;
        }
        txn.commit()?;
        let log = BatchLog::open(&dir.join("batches"))?;
        let reindexed = Self::reindex(&db, &log)?;
        if reindexed > 0 {
            tracing::info!(
                batches = reindexed,
                "indexed batches stored just before the last stop"
            );
        }
        let mut live = std::collections::BTreeMap::new();
        {
            let txn = db.begin_read()?;
            for entry in txn.open_table(BATCH_LOCATIONS)?.iter()? {
                let (_, value) = entry?;
                if let Some(location) = Location::from_bytes(value.value()) {
                    *live.entry(location.segment).or_insert(0) += 1;
                }
            }
        }
        // What is on disk at open is durable.
        let durable_tip = last_height(&db.begin_read()?.open_table(COMMITTED)?)?;
        Ok(Storage {
            db,
            votes,
            path,
            log,
            live: parking_lot::Mutex::new(live),
            durable_at: parking_lot::Mutex::new(std::time::Instant::now()),
            durable_tip: std::sync::atomic::AtomicU64::new(durable_tip),
            appending: parking_lot::Mutex::new(()),
            stage: Default::default(),
            background: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Opens `dir/votes.log`. A data dir of an earlier version has its
    /// votes in `votes.redb` instead: they are copied into a new log first
    /// (written aside and renamed into place, so a crash during the copy
    /// leaves the old file in charge), and `votes.redb` is renamed
    /// `votes.redb.migrated`.
    fn open_votes(dir: &Path) -> Result<VoteLog> {
        let path = dir.join("votes.log");
        let legacy = dir.join("votes.redb");
        if path.exists() || !legacy.exists() {
            return VoteLog::open(&path, VOTES_ADVICE);
        }
        let db = Database::builder().create(&legacy).map_err(|e| {
            Error::Storage(format!(
                "cannot open {}: {e}{VOTES_ADVICE}",
                legacy.display()
            ))
        })?;
        let aside = dir.join("votes.log.migrating");
        let _ = std::fs::remove_file(&aside);
        {
            let log = VoteLog::open(&aside, VOTES_ADVICE)?;
            let txn = db.begin_read()?;
            // A table that does not exist is empty; any other error stops
            // the migration (a node that lost its safety data could vote
            // twice).
            match txn.open_table(BLOCKS) {
                Ok(blocks) => {
                    for entry in blocks.iter()? {
                        let (_, value) = entry?;
                        let block: Block = decode(value.value())?;
                        log.append(Some(&block), None)?;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let safety: Option<SafetyData> = match txn.open_table(META) {
                Ok(meta) => meta
                    .get(SAFETY_KEY)?
                    .map(|v| decode(v.value()))
                    .transpose()?,
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            };
            log.append(None, safety.as_ref())?;
        }
        drop(db);
        let io = |what: &str, e: std::io::Error| {
            Error::Storage(format!("cannot {what} in {}: {e}", dir.display()))
        };
        std::fs::rename(&aside, &path).map_err(|e| io("move votes.log into place", e))?;
        crate::record::sync_dir(dir)?;
        std::fs::rename(&legacy, dir.join("votes.redb.migrated"))
            .map_err(|e| io("rename votes.redb", e))?;
        tracing::info!(dir = %dir.display(), "votes copied from votes.redb to votes.log");
        VoteLog::open(&path, VOTES_ADVICE)
    }

    /// Indexes what the batch log holds past the stored log end: batches
    /// appended (and acknowledged) whose location commit had not reached
    /// the disk when the node stopped. This node's own ones not delivered
    /// are remembered as undelivered again, and the next own seq moves past
    /// them. Returns how many batches were indexed.
    fn reindex(db: &Database, log: &BatchLog) -> Result<usize> {
        let from = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let end = meta.get(LOG_END_KEY)?;
            end.map(|v| Position::from_bytes(v.value()))
        };
        // The log opened a fresh (or empty) segment: everything before it
        // is scanned below, so the next start begins there.
        let fresh = Position {
            segment: log.active_segment(),
            offset: 0,
        };
        let from = match from {
            Some(Some(from)) => from,
            // None stored: a new data dir (whose first locations may be
            // committed relaxed before any durable commit stores an end),
            // or one of an earlier version (which committed every location
            // durably). Nothing before the fresh segment needs a scan.
            None => fresh,
            Some(None) => {
                tracing::warn!("the stored batch log end does not parse; indexing the whole log");
                Position {
                    segment: 0,
                    offset: 0,
                }
            }
        };
        let records = log.scan(from)?;
        let txn = db.begin_write()?;
        let mut indexed = 0;
        {
            let mut locations = txn.open_table(BATCH_LOCATIONS)?;
            let mut undelivered = txn.open_table(OWN_UNDELIVERED)?;
            let last = txn.open_table(BATCH_LAST_HEIGHT)?;
            let mut meta = txn.open_table(META)?;
            let mut next_seq = meta
                .get(NEXT_SEQ_KEY)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(0);
            for (kind, location, body) in &records {
                let batch: ordo_mempool::Batch = match decode(body) {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(?location, "batch log record does not decode: {e}");
                        continue;
                    }
                };
                let digest = batch.digest();
                let key = digest.as_bytes().as_slice();
                if locations.get(key)?.is_some() {
                    continue;
                }
                locations.insert(key, location.to_bytes().as_slice())?;
                indexed += 1;
                if *kind == Kind::Own && last.get(key)?.is_none() {
                    undelivered.insert(key, batch.seq)?;
                    next_seq = next_seq.max(batch.seq.saturating_add(1));
                }
            }
            meta.insert(LOG_END_KEY, fresh.to_bytes().as_slice())?;
            meta.insert(NEXT_SEQ_KEY, next_seq.to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(indexed)
    }

    /// Runs `f` in a write transaction that first stores every staged
    /// write, and commits it: with fsync if `durable`, else relaxed (without
    /// fsync if a durable commit happened in the last [`RELAXED_FOR`]). If
    /// anything fails the staged writes stay staged.
    fn write<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T>,
    ) -> Result<T> {
        let mut txn = self.db.begin_write()?;
        // Only one write transaction is open at a time: nothing else is
        // being written.
        let staged = {
            let mut stage = self.stage.lock();
            let staged = std::sync::Arc::new(std::mem::take(&mut stage.current));
            stage.writing = Some(staged.clone());
            staged
        };
        let durable = durable || self.durable_at.lock().elapsed() >= RELAXED_FOR;
        let written = (|| {
            let replaced = Self::write_staged(&txn, &staged)?;
            let value = f(&txn)?;
            // What this transaction sees is what its commit makes durable.
            let tip = last_height(&txn.open_table(COMMITTED)?)?;
            if !durable {
                txn.set_durability(redb::Durability::None)
                    .map_err(|e| Error::Storage(e.to_string()))?;
            }
            txn.commit()?;
            Ok((value, replaced, tip))
        })();
        let mut stage = self.stage.lock();
        let writing = stage.writing.take();
        let (value, replaced, tip) = match written {
            Ok(done) => done,
            Err(e) => {
                drop(staged);
                if let Some(writing) = writing {
                    let older =
                        std::sync::Arc::try_unwrap(writing).unwrap_or_else(|a| (*a).clone());
                    stage.current.restore(older);
                }
                return Err(e);
            }
        };
        drop(stage);
        {
            let mut live = self.live.lock();
            for segment in replaced {
                if let Some(count) = live.get_mut(&segment) {
                    *count = count.saturating_sub(1);
                }
            }
        }
        if durable {
            self.after_durable(tip);
        }
        Ok(value)
    }

    /// Stores `staged` in `txn`; returns the segments of locations it
    /// replaced.
    fn write_staged(txn: &redb::WriteTransaction, staged: &Staged) -> Result<Vec<u32>> {
        if !staged.commits.is_empty() {
            let mut committed = txn.open_table(COMMITTED)?;
            let mut by_digest = txn.open_table(COMMITTED_BY_DIGEST)?;
            continue_tip(last_height(&committed)?, &staged.commits)?;
            for block in &staged.commits {
                committed.insert(block.block.height(), encode(block)?.as_slice())?;
                by_digest.insert(
                    block.block.digest().as_bytes().as_slice(),
                    encode(&block.block)?.as_slice(),
                )?;
            }
        }
        let mut replaced = Vec::new();
        if !staged.locations.is_empty() {
            let mut table = txn.open_table(BATCH_LOCATIONS)?;
            for (digest, location) in &staged.locations {
                let old =
                    table.insert(digest.as_bytes().as_slice(), location.to_bytes().as_slice())?;
                if let Some(old) = old.and_then(|v| Location::from_bytes(v.value())) {
                    replaced.push(old.segment);
                }
            }
        }
        if !staged.own.is_empty() {
            let mut undelivered = txn.open_table(OWN_UNDELIVERED)?;
            for (digest, seq) in &staged.own {
                undelivered.insert(digest.as_bytes().as_slice(), seq)?;
            }
        }
        if staged.next_seq.is_some() || staged.log_end.is_some() {
            let mut meta = txn.open_table(META)?;
            if let Some(seq) = staged.next_seq {
                meta.insert(NEXT_SEQ_KEY, seq.to_le_bytes().as_slice())?;
            }
            if let Some(end) = staged.log_end {
                meta.insert(LOG_END_KEY, end.to_bytes().as_slice())?;
            }
        }
        // After the own batches they may name as delivered.
        Self::write_outputs(txn, &staged.outputs)?;
        Ok(replaced)
    }

    /// After a durable commit that stored the chain up to `tip`.
    fn after_durable(&self, tip: Height) {
        *self.durable_at.lock() = std::time::Instant::now();
        // Two durable commits may return out of order: keep the higher.
        let before = self
            .durable_tip
            .fetch_max(tip, std::sync::atomic::Ordering::AcqRel);
        if tip > before {
            // Voted blocks the durable chain holds are served from it. (The
            // commit succeeded: a failure here is not the caller's error.)
            match self.committed(tip) {
                Ok(Some(last)) => self.votes.forget_through(last.block.view()),
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot read committed block {tip}: {e}"),
            }
        }
    }

    /// Called by the staging writes: stores the staged writes now if they
    /// are due, or, with a background writer, overdue.
    fn write_if_due(&self) -> Result<()> {
        let due = {
            let stage = self.stage.lock();
            if self.background.load(std::sync::atomic::Ordering::Relaxed) {
                stage.current.overdue()
            } else {
                stage.current.due()
            }
        };
        if due {
            self.write(false, |_| Ok(()))?;
        }
        Ok(())
    }

    /// Hands the storing of staged writes to a background writer that calls
    /// [`Storage::write_staged_if_due`] every few milliseconds: the batch
    /// group or the delivery that happens to find the stage due no longer
    /// carries its write (1.5 ms on average at 50,000 tx/s, 5 ms at p99)
    /// on its way to an acknowledgement or the stream.
    pub fn start_background_writes(&self) {
        self.background
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the staged writes are due to be stored.
    pub fn stage_due(&self) -> bool {
        self.stage.lock().current.due()
    }

    /// For the background writer: stores the staged writes if they are due.
    pub fn write_staged_if_due(&self) -> Result<()> {
        if self.stage_due() {
            self.write(false, |_| Ok(()))?;
        }
        Ok(())
    }

    /// Makes every staged and relaxed write durable (on shutdown).
    pub fn flush(&self) -> Result<()> {
        self.write(true, |_| Ok(()))
    }

    /// Size on disk of the database file and the batch segments.
    pub fn size_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len()) + self.log.size_bytes()
    }

    /// The bytes of batch `digest` if stored, read through `txn`.
    fn batch_in(&self, txn: &redb::ReadTransaction, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let staged = self.stage.lock().find(|s| s.locations.get(digest).copied());
        if let Some(location) = staged {
            return self.log.read(location).map(Some);
        }
        let key = digest.as_bytes().as_slice();
        if let Some(value) = txn.open_table(BATCH_LOCATIONS)?.get(key)? {
            let location = Location::from_bytes(value.value())
                .ok_or_else(|| Error::Storage(format!("batch {digest}: bad location")))?;
            return self.log.read(location).map(Some);
        }
        let legacy = txn.open_table(BATCHES)?;
        let value = legacy.get(key)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Makes a block this node is about to vote for durable, and with it
    /// the safety data of that vote, in one transaction.
    pub fn save_vote(&self, block: Option<&Block>, data: Option<&SafetyData>) -> Result<()> {
        self.votes.append(block, data)?;
        if self.votes.needs_compaction() {
            self.compact_votes()?;
        }
        Ok(())
    }

    /// Rewrites `votes.log` with the safety data and the voted blocks above
    /// the last durably committed tip (those up to it are kept with the
    /// committed chain).
    fn compact_votes(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let tip = self.durable_tip.load(std::sync::atomic::Ordering::Acquire);
        let view = self.committed(tip)?.map_or(0, |c| c.block.view());
        self.votes.compact(view)?;
        tracing::debug!(
            kept = self.votes.blocks().len(),
            bytes = self.votes.record_bytes(),
            took = ?started.elapsed(),
            "compacted votes.log"
        );
        Ok(())
    }

    /// A stored block by digest: one this node voted for (`votes.log`), or
    /// a committed one not yet pruned.
    pub fn block(&self, digest: &Digest) -> Result<Option<Block>> {
        if let Some(block) = self.votes.block(digest) {
            return Ok(Some(block));
        }
        let staged = self.stage.lock().find(|s| {
            s.commits
                .iter()
                .find(|c| c.block.digest() == *digest)
                .map(|c| c.block.clone())
        });
        if staged.is_some() {
            return Ok(staged);
        }
        let key = digest.as_bytes().as_slice();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COMMITTED_BY_DIGEST)?;
        let value = table.get(key)?;
        value
            .map(|v| decode(v.value()).map_err(Error::from))
            .transpose()
    }

    pub fn load_safety(&self) -> Result<Option<SafetyData>> {
        Ok(self.votes.safety())
    }

    /// Appends committed blocks (in height order, continuing the tip).
    /// Refuses a gap or a rewrite. They are staged: readers see them at
    /// once, and they are stored with the rest of the stage (module doc).
    pub fn save_commits(&self, blocks: &[CommittedBlock]) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        continue_tip(self.tip()?, blocks)?;
        let full = {
            let mut stage = self.stage.lock();
            stage.current.commits.extend_from_slice(blocks);
            stage.current.touch();
            stage.current.full()
        };
        // Not by age: this is on the consensus task (whose next vote would
        // wait), and the other writes store them soon enough.
        if full {
            self.write(false, |_| Ok(()))?;
        }
        Ok(())
    }

    /// The height of the last committed block (0 before any).
    pub fn tip(&self) -> Result<Height> {
        let staged = self
            .stage
            .lock()
            .find(|s| s.commits.last().map(|c| c.block.height()));
        match staged {
            Some(height) => Ok(height),
            None => last_height(&self.db.begin_read()?.open_table(COMMITTED)?),
        }
    }

    pub fn committed(&self, height: Height) -> Result<Option<CommittedBlock>> {
        let staged = self.stage.lock().find(|s| s.committed(height).cloned());
        if staged.is_some() {
            return Ok(staged);
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COMMITTED)?;
        let value = table.get(height)?;
        value
            .map(|v| decode(v.value()).map_err(Error::from))
            .transpose()
    }

    /// What the consensus core resumes from: safety data, the last committed
    /// block as root with the QC that committed it, and the stored blocks
    /// above the root (those this node voted for).
    pub fn recovery(&self, committee: &Committee) -> Result<Recovery> {
        let genesis = Recovery::genesis(committee);
        let safety = self.load_safety()?.unwrap_or_default();
        let tip = self.tip()?;
        let (root, high_qc) = match self.committed(tip)? {
            Some(last) if tip > 0 => (last.block, last.cert.qc),
            _ => (genesis.root, genesis.high_qc),
        };
        let root_view = root.view();
        let blocks: Vec<Block> = self
            .votes
            .blocks()
            .into_iter()
            .filter(|b| b.view() > root_view)
            .collect();
        let below = (1..tip)
            .rev()
            .take(Recovery::ANCESTORS)
            .map(|h| self.committed(h))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .map(|c| c.block);
        Ok(Recovery {
            safety,
            root,
            high_qc,
            high_tc: None,
            blocks,
            ancestors: Vec::new(),
        }
        .with_ancestors(below, committee))
    }

    /// Stores a delivered block and advances the delivered height (the
    /// block must follow the delivered height). Staged: readers see it at
    /// once, and it is stored with the next write transaction after
    /// [`STAGE_MAX_WAIT`].
    pub fn save_output(&self, block: std::sync::Arc<OutputBlock>) -> Result<()> {
        {
            let mut stage = self.stage.lock();
            stage.current.outputs.push(block);
            stage.current.touch();
        }
        self.write_if_due()
    }

    /// Stores output rows in `txn`, in height order, and advances the
    /// delivered height to the last.
    fn write_outputs(
        txn: &redb::WriteTransaction,
        blocks: &[std::sync::Arc<OutputBlock>],
    ) -> Result<()> {
        let Some(last) = blocks.last() else {
            return Ok(());
        };
        let mut output = txn.open_table(OUTPUT)?;
        let mut own = txn.open_table(OWN_UNDELIVERED)?;
        let mut last_height = txn.open_table(BATCH_LAST_HEIGHT)?;
        for block in blocks {
            // The batches are stored already (they were persisted before
            // they were acknowledged or once fetched); the row only names
            // them.
            let stored = StoredOutput {
                header: block.header.clone(),
                cert: block.cert.clone(),
                payload: block.payload.clone(),
                inclusion: block.inclusion.clone(),
                batches: block.batches.iter().map(|b| b.digest()).collect(),
                skipped: block.skipped.clone(),
            };
            let height = block.height();
            output.insert(height, encode(&stored)?.as_slice())?;
            for digest in &stored.batches {
                own.remove(digest.as_bytes().as_slice())?;
                last_height.insert(digest.as_bytes().as_slice(), height)?;
            }
        }
        let mark = last.height().to_le_bytes();
        txn.open_table(META)?
            .insert(DELIVERED_KEY, mark.as_slice())?;
        Ok(())
    }

    /// The delivered block at `height` with its batches; `None` if it is not
    /// delivered yet or was pruned.
    pub fn output(&self, height: Height) -> Result<Option<OutputBlock>> {
        let staged = self.stage.lock().find(|s| {
            s.outputs
                .iter()
                .find(|b| b.height() == height)
                .map(|b| OutputBlock::clone(b))
        });
        if staged.is_some() {
            return Ok(staged);
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTPUT)?;
        let Some(value) = table.get(height)? else {
            return Ok(None);
        };
        let stored: StoredOutput = decode(value.value())?;
        let mut batches = Vec::with_capacity(stored.batches.len());
        for digest in &stored.batches {
            let Some(bytes) = self.batch_in(&txn, digest)? else {
                // Pruned (a data dir of an earlier version could prune a
                // batch with an earlier height that carried it too).
                return Ok(None);
            };
            batches.push(decode(&bytes)?);
        }
        Ok(Some(OutputBlock {
            header: stored.header,
            cert: stored.cert,
            payload: stored.payload,
            inclusion: stored.inclusion,
            batches,
            skipped: stored.skipped,
        }))
    }

    /// Seq of this node's next own batch (0 on a fresh node).
    pub fn next_own_seq(&self) -> Result<u64> {
        let staged = self.stage.lock().find(|s| s.next_seq);
        match staged {
            Some(seq) => Ok(seq),
            None => self.meta_u64(NEXT_SEQ_KEY),
        }
    }

    /// Forgets the staged writes, as a crash would (tests).
    #[cfg(test)]
    fn lose_staged(&self) {
        self.stage.lock().current = Staged::default();
    }

    /// Height of the last delivered block (0 before any).
    pub fn delivered_height(&self) -> Result<Height> {
        let staged = self
            .stage
            .lock()
            .find(|s| s.outputs.last().map(|b| b.height()));
        match staged {
            Some(height) => Ok(height),
            None => self.meta_u64(DELIVERED_KEY),
        }
    }

    #[cfg(test)]
    fn meta_bytes(&self, key: &str) -> Result<Vec<u8>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        let value = table.get(key)?;
        Ok(value.map(|v| v.value().to_vec()).unwrap_or_default())
    }

    fn meta_u64(&self, key: &str) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        let value = table.get(key)?;
        Ok(value
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0))
    }

    /// Stores peers' batches in one transaction (group commit for durable
    /// acks).
    pub fn save_batches<'a>(
        &self,
        batches: impl IntoIterator<Item = (Digest, &'a [u8])>,
    ) -> Result<()> {
        self.save_batches_and_own(batches, &[])
    }

    /// Stores batches, `own` of them (digest, seq) this node's, in one
    /// transaction. The own ones are remembered as undelivered, and the seq
    /// after the highest is stored as the next own seq: a restarted node
    /// never reuses a seq and disseminates its undelivered batches again.
    ///
    /// The bytes are durable when this returns (one `fdatasync` of the
    /// batch log); the locations are committed relaxed, with the log end
    /// they reach, and a restart indexes whatever the log holds past the
    /// last durable log end ([`Storage::reindex`]).
    pub fn save_batches_and_own<'a>(
        &self,
        batches: impl IntoIterator<Item = (Digest, &'a [u8])>,
        own: &[(Digest, u64)],
    ) -> Result<()> {
        let _appending = self.appending.lock();
        // A batch stored already (received twice, fetched again) is not
        // written again.
        let fresh: Vec<(Digest, &[u8])> = {
            let txn = self.db.begin_read()?;
            let locations = txn.open_table(BATCH_LOCATIONS)?;
            let legacy = txn.open_table(BATCHES)?;
            let mut fresh = Vec::new();
            for (digest, bytes) in batches {
                let staged = self
                    .stage
                    .lock()
                    .find(|s| s.locations.get(&digest).copied())
                    .is_some();
                let key = digest.as_bytes().as_slice();
                if !staged && locations.get(key)?.is_none() && legacy.get(key)?.is_none() {
                    fresh.push((digest, bytes));
                }
            }
            fresh
        };
        let kind = |digest: &Digest| {
            if own.iter().any(|(d, _)| d == digest) {
                Kind::Own
            } else {
                Kind::Batch
            }
        };
        let appended = self
            .log
            .append(fresh.iter().map(|(digest, bytes)| (kind(digest), *bytes)))?;
        let written = appended.locations;
        {
            let mut live = self.live.lock();
            for location in &written {
                *live.entry(location.segment).or_insert(0) += 1;
            }
        }
        {
            let mut stage = self.stage.lock();
            let staged = &mut stage.current;
            for ((digest, _), location) in fresh.iter().zip(&written) {
                staged.locations.insert(*digest, *location);
            }
            staged.own.extend_from_slice(own);
            if let Some(seq) = own.iter().map(|(_, seq)| seq + 1).max() {
                staged.next_seq = Some(staged.next_seq.map_or(seq, |s| s.max(seq)));
            }
            staged.log_end = Some(appended.end);
            staged.touch();
        }
        self.write_if_due()
    }

    /// This node's own stored batches not yet delivered, by seq.
    pub fn own_undelivered(&self) -> Result<Vec<Vec<u8>>> {
        // Read at start-up, when nothing is staged; the staged own batches
        // are undelivered too, so they are stored first.
        if !self.stage.lock().current.is_empty() {
            self.write(false, |_| Ok(()))?;
        }
        let txn = self.db.begin_read()?;
        let own = txn.open_table(OWN_UNDELIVERED)?;
        let mut found = Vec::new();
        for entry in own.iter()? {
            let (digest, seq) = entry?;
            let Ok(digest) = <[u8; 32]>::try_from(digest.value()) else {
                continue;
            };
            if let Some(bytes) = self.batch_in(&txn, &Digest(digest))? {
                found.push((seq.value(), bytes));
            }
        }
        found.sort_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, bytes)| bytes).collect())
    }

    pub fn batch(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        self.batch_in(&txn, digest)
    }

    /// Deletes segments nothing points into, and copies the few batches
    /// left in old segments forward so those can go too.
    fn reclaim_segments(&self) -> Result<()> {
        let active = self.log.active_segment();
        let on_disk = self.log.segments()?;
        let (empty, sparse): (Vec<u32>, Vec<u32>) = {
            let live = self.live.lock();
            let count = |s: &u32| live.get(s).copied().unwrap_or(0);
            let old = on_disk.iter().filter(|s| **s < active);
            (
                old.clone().filter(|s| count(s) == 0).copied().collect(),
                old.filter(|s| **s + 1 < active && (1..=COMPACT_MAX_LIVE).contains(&count(s)))
                    .copied()
                    .collect(),
            )
        };
        for segment in empty {
            self.log.delete(segment)?;
            self.live.lock().remove(&segment);
        }
        for segment in sparse {
            // The moved copies and the log end past them are committed
            // together, like a batch group.
            let _appending = self.appending.lock();
            let mut moved = Vec::new();
            {
                let txn = self.db.begin_read()?;
                for entry in txn.open_table(BATCH_LOCATIONS)?.iter()? {
                    let (key, value) = entry?;
                    match Location::from_bytes(value.value()) {
                        Some(location) if location.segment == segment => {
                            moved.push((key.value().to_vec(), self.log.read(location)?));
                        }
                        _ => {}
                    }
                }
            }
            let appended = self
                .log
                .append(moved.iter().map(|(_, body)| (Kind::Batch, body.as_slice())))?;
            let written = appended.locations;
            self.write(true, |txn| {
                let mut table = txn.open_table(BATCH_LOCATIONS)?;
                for ((key, _), location) in moved.iter().zip(&written) {
                    table.insert(key.as_slice(), location.to_bytes().as_slice())?;
                }
                txn.open_table(META)?
                    .insert(LOG_END_KEY, appended.end.to_bytes().as_slice())?;
                Ok(())
            })?;
            {
                let mut live = self.live.lock();
                live.remove(&segment);
                for location in &written {
                    *live.entry(location.segment).or_insert(0) += 1;
                }
            }
            self.log.delete(segment)?;
            tracing::debug!(segment, moved = moved.len(), "compacted batch segment");
        }
        Ok(())
    }

    /// Prunes heights below `below`: deletes their batches and output rows
    /// in one transaction and remembers the mark. Committed blocks (headers,
    /// certificates, payload) stay, so the chain can always be verified
    /// from genesis; `below` never passes the delivered height. A batch a
    /// retained height also names (committed again, see
    /// [`BATCH_LAST_HEIGHT`]) is kept.
    pub fn prune_below(&self, below: Height) -> Result<()> {
        let from = self.pruned_below()?.max(1);
        let delivered = self.delivered_height()?;
        let below = below.min(delivered + 1);
        if below <= from {
            return Ok(());
        }
        let certified = |block: &CommittedBlock| -> Vec<Digest> {
            block
                .block
                .payload
                .items
                .iter()
                .filter_map(|item| decode::<ordo_mempool::BatchCert>(item).ok())
                .map(|cert| cert.batch)
                .collect()
        };
        let mut digests = Vec::new();
        let mut block_digests = Vec::new();
        for height in from..below {
            if let Some(block) = self.committed(height)? {
                block_digests.push(block.block.digest());
                digests.extend(certified(&block));
            }
        }
        // Committed heights not delivered yet need their batches too.
        let mut pending = std::collections::HashSet::new();
        for height in delivered + 1..=self.tip()? {
            if let Some(block) = self.committed(height)? {
                pending.extend(certified(&block));
            }
        }
        let freed = self.write(true, |txn| {
            let mut freed = Vec::new();
            let mut batches = txn.open_table(BATCHES)?;
            let mut locations = txn.open_table(BATCH_LOCATIONS)?;
            let mut last = txn.open_table(BATCH_LAST_HEIGHT)?;
            for digest in &digests {
                let key = digest.as_bytes().as_slice();
                let named_later = last.get(key)?.is_some_and(|h| h.value() >= below);
                if named_later || pending.contains(digest) {
                    continue;
                }
                last.remove(key)?;
                batches.remove(digest.as_bytes().as_slice())?;
                let old = locations.remove(digest.as_bytes().as_slice())?;
                if let Some(old) = old.and_then(|v| Location::from_bytes(v.value())) {
                    freed.push(old.segment);
                }
            }
            let mut output = txn.open_table(OUTPUT)?;
            for height in from..below {
                output.remove(height)?;
            }
            let mut blocks = txn.open_table(COMMITTED_BY_DIGEST)?;
            for digest in &block_digests {
                blocks.remove(digest.as_bytes().as_slice())?;
            }
            let bytes = below.to_le_bytes();
            txn.open_table(META)?.insert(PRUNED_KEY, bytes.as_slice())?;
            Ok(freed)
        })?;
        {
            let mut live = self.live.lock();
            for segment in freed {
                if let Some(count) = live.get_mut(&segment) {
                    *count = count.saturating_sub(1);
                }
            }
        }
        self.reclaim_segments()?;
        Ok(())
    }

    /// Marks `height` delivered without output: its batches were pruned on
    /// the peer it was synced from.
    pub fn skip_pruned(&self, height: Height) -> Result<()> {
        self.write(false, |txn| {
            let mark = height.to_le_bytes();
            let mut meta = txn.open_table(META)?;
            meta.insert(DELIVERED_KEY, mark.as_slice())?;
            let next = (height + 1).to_le_bytes();
            meta.insert(PRUNED_KEY, next.as_slice())?;
            Ok(())
        })
    }

    /// Heights below this have had their batches pruned.
    pub fn pruned_below(&self) -> Result<Height> {
        self.meta_u64(PRUNED_KEY)
    }
}

impl Drop for Storage {
    /// Stores what is staged (as a relaxed commit: what a stop without
    /// [`Storage::flush`] may lose is what peers can send again).
    fn drop(&mut self) {
        if !self.stage.get_mut().current.is_empty() {
            if let Err(e) = self.write(false, |_| Ok(())) {
                tracing::warn!("cannot store staged writes on close: {e}");
            }
        }
    }
}

/// Fault injection for tests (not used by the node).
#[doc(hidden)]
pub mod testing {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;

    /// Which commit slot of a redb file's header to tear. redb commits in
    /// two phases: it writes the next commit record into the secondary slot
    /// after the data is durable, then flips the primary bit. A crash while
    /// it writes leaves a torn secondary; a torn primary is damage no crash
    /// can cause.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Slot {
        /// The record being written when the power went: a torn last write.
        Secondary,
        /// The committed record: a damaged disk.
        Primary,
    }

    pub use crate::vote_log::testing::tear_last_vote;

    /// Garbles the checksum of a commit slot of a redb file's header
    /// (redb 4 layout: god byte at offset 9, bit 0 the primary slot;
    /// 128-byte slots at 64 and 192, each ending in a 16-byte checksum).
    pub fn tear_commit_slot(path: &Path, slot: Slot) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let mut header = [0u8; 320];
        f.read_exact(&mut header)?;
        if &header[..4] != b"redb" {
            return Err(std::io::Error::other("not a redb file"));
        }
        let primary = usize::from(header[9] & 1);
        let torn = match slot {
            Slot::Primary => primary,
            Slot::Secondary => 1 - primary,
        };
        let at = 64 + 128 * torn + 112;
        let garbled: Vec<u8> = header[at..at + 16].iter().map(|b| b ^ 0x5A).collect();
        f.seek(SeekFrom::Start(at as u64))?;
        f.write_all(&garbled)?;
        f.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use ordo_consensus::testing::Cluster;
    use ordo_consensus::Config;

    use super::*;

    fn committed_blocks(n: u64) -> (Cluster, Vec<CommittedBlock>) {
        let mut cluster = Cluster::new(4, Config::default(), 5, 0, 1);
        cluster.submit(0, vec![b"tx".to_vec()]);
        assert!(cluster.run_until_height(n, 600_000));
        let blocks = cluster.committed(0)[..n as usize].to_vec();
        (cluster, blocks)
    }

    #[test]
    fn safety_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let data = SafetyData {
            last_voted_view: 42,
            ..SafetyData::default()
        };
        {
            let s = Storage::open(dir.path()).unwrap();
            assert_eq!(s.load_safety().unwrap(), None);
            s.save_vote(None, Some(&data)).unwrap();
        }
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.load_safety().unwrap(), Some(data));
    }

    #[test]
    fn commits_continue_the_tip_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let (cluster, blocks) = committed_blocks(6);
        let s = Storage::open(dir.path()).unwrap();
        s.save_commits(&blocks[..3]).unwrap();
        assert_eq!(s.tip().unwrap(), 3);
        assert!(s.save_commits(&blocks[4..]).is_err(), "gap refused");
        assert!(s.save_commits(&blocks[1..2]).is_err(), "rewrite refused");
        s.save_commits(&blocks[3..]).unwrap();
        assert_eq!(s.tip().unwrap(), 6);
        assert_eq!(s.committed(4).unwrap().unwrap(), blocks[3]);
        let recovery = s.recovery(&cluster.committee).unwrap();
        assert_eq!(recovery.root, blocks[5].block);
        assert_eq!(recovery.high_qc, blocks[5].cert.qc);
    }

    fn test_batch(author: ordo_types::NodeIndex, seq: u64) -> ordo_mempool::Batch {
        ordo_mempool::Batch {
            author,
            seq,
            txs: vec![ordo_mempool::Transaction::new(1, vec![seq as u8; 700])],
        }
    }

    /// Batches are acknowledged once their bytes are in the log; their
    /// locations are committed relaxed. A crash that loses the location
    /// commit loses nothing: the reopened storage indexes the log past the
    /// last durable log end, and this node's own undelivered batches are
    /// disseminated again.
    #[test]
    fn batches_whose_location_commit_was_lost_are_indexed_again() {
        let dir = tempfile::tempdir().unwrap();
        let early = test_batch(1, 1);
        let peer = test_batch(2, 5);
        let own = test_batch(0, 77);
        let delivered_own = test_batch(0, 76);
        let bytes = |b: &ordo_mempool::Batch| encode(b).unwrap();
        {
            let s = Storage::open(dir.path()).unwrap();
            s.save_batches([(early.digest(), bytes(&early).as_slice())])
                .unwrap();
            s.flush().unwrap();
            let durable_end = s.meta_bytes(LOG_END_KEY).unwrap();
            s.save_batches([(peer.digest(), bytes(&peer).as_slice())])
                .unwrap();
            s.save_batches_and_own(
                [
                    (delivered_own.digest(), bytes(&delivered_own).as_slice()),
                    (own.digest(), bytes(&own).as_slice()),
                ],
                &[(delivered_own.digest(), 76), (own.digest(), 77)],
            )
            .unwrap();
            assert_eq!(s.next_own_seq().unwrap(), 78);
            // The durable state as it was before the staged and relaxed
            // writes, except that one own batch was delivered (and that
            // reached the disk).
            s.lose_staged();
            let txn = s.db.begin_write().unwrap();
            {
                let mut locations = txn.open_table(BATCH_LOCATIONS).unwrap();
                let mut undelivered = txn.open_table(OWN_UNDELIVERED).unwrap();
                for b in [&peer, &own, &delivered_own] {
                    locations.remove(b.digest().as_bytes().as_slice()).unwrap();
                    undelivered
                        .remove(b.digest().as_bytes().as_slice())
                        .unwrap();
                }
                let mut last = txn.open_table(BATCH_LAST_HEIGHT).unwrap();
                last.insert(delivered_own.digest().as_bytes().as_slice(), 9)
                    .unwrap();
                let mut meta = txn.open_table(META).unwrap();
                meta.remove(NEXT_SEQ_KEY).unwrap();
                meta.insert(LOG_END_KEY, durable_end.as_slice()).unwrap();
            }
            txn.commit().unwrap();
            assert!(s.batch(&peer.digest()).unwrap().is_none());
        }
        for _ in 0..2 {
            let s = Storage::open(dir.path()).unwrap();
            // The stored log end is past everything indexed.
            let end = Position::from_bytes(&s.meta_bytes(LOG_END_KEY).unwrap()).unwrap();
            assert!(s.log.scan(end).unwrap().is_empty());
            for b in [&early, &peer, &own, &delivered_own] {
                assert_eq!(s.batch(&b.digest()).unwrap(), Some(bytes(b)));
            }
            assert_eq!(s.own_undelivered().unwrap(), vec![bytes(&own)]);
            assert_eq!(s.next_own_seq().unwrap(), 78);
            assert_eq!(s.live.lock().values().sum::<u64>(), 4);
        }
    }

    /// A new data dir stores its log end when it opens: batches whose
    /// (relaxed) location commit is lost before any durable commit are
    /// still found by the next start.
    #[test]
    fn first_batches_of_a_new_data_dir_are_indexed_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = test_batch(1, 1);
        let bytes = encode(&first).unwrap();
        {
            let s = Storage::open(dir.path()).unwrap();
            let end = Position::from_bytes(&s.meta_bytes(LOG_END_KEY).unwrap()).unwrap();
            assert_eq!(
                end,
                Position {
                    segment: s.log.active_segment(),
                    offset: 0
                }
            );
            s.save_batches([(first.digest(), bytes.as_slice())])
                .unwrap();
            // As the disk was before the location was stored.
            s.lose_staged();
            let txn = s.db.begin_write().unwrap();
            {
                let mut locations = txn.open_table(BATCH_LOCATIONS).unwrap();
                locations
                    .remove(first.digest().as_bytes().as_slice())
                    .unwrap();
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(LOG_END_KEY, end.to_bytes().as_slice()).unwrap();
            }
            txn.commit().unwrap();
            assert!(s.batch(&first.digest()).unwrap().is_none());
        }
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.batch(&first.digest()).unwrap(), Some(bytes));
    }

    /// The output row of committed block `b` holding one batch.
    fn output_of(b: &CommittedBlock, batch: &ordo_mempool::Batch) -> OutputBlock {
        OutputBlock {
            header: b.block.header.clone(),
            cert: b.cert.clone(),
            payload: b.block.payload.clone(),
            inclusion: b.block.inclusion.clone(),
            batches: vec![batch.clone()],
            skipped: vec![],
        }
    }

    /// With a background writer, a staging write that finds the stage due
    /// leaves it to the writer (which stores it), and stores it itself only
    /// once it is overdue.
    #[test]
    fn a_background_writer_takes_the_due_stage_off_the_staging_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (_, blocks) = committed_blocks(3);
        let batches: Vec<_> = (0..3).map(|seq| test_batch(0, seq)).collect();
        let store = |s: &Storage, i: usize| {
            s.save_commits(&blocks[i..=i]).unwrap();
            let bytes = encode(&batches[i]).unwrap();
            s.save_batches_and_own([(batches[i].digest(), bytes.as_slice())], &[])
                .unwrap();
        };
        let on_file = |s: &Storage| {
            let txn = s.db.begin_read().unwrap();
            last_height(&txn.open_table(COMMITTED).unwrap()).unwrap()
        };
        let s = Storage::open(dir.path()).unwrap();
        s.start_background_writes();
        store(&s, 0);
        assert!(!s.stage_due());
        std::thread::sleep(STAGE_MAX_WAIT);
        assert!(s.stage_due());
        store(&s, 1);
        assert_eq!(on_file(&s), 0, "a due stage is the writer's");
        s.write_staged_if_due().unwrap();
        assert_eq!(on_file(&s), 2);
        assert!(!s.stage_due());
        // The writer fell behind: the batch group stores an overdue stage.
        s.save_commits(&blocks[2..3]).unwrap();
        std::thread::sleep(STAGE_MAX_WAIT * STAGE_OVERDUE);
        let bytes = encode(&batches[2]).unwrap();
        s.save_batches_and_own([(batches[2].digest(), bytes.as_slice())], &[])
            .unwrap();
        assert_eq!(on_file(&s), 3);
        assert_eq!(s.tip().unwrap(), 3);
    }

    /// Staged writes are read back at once, reach the file with the first
    /// write after `STAGE_MAX_WAIT` (or on close), and a crash loses them
    /// all together: the reopened node is at the stored heights.
    #[test]
    fn staged_writes_are_read_at_once_and_stored_together() {
        let dir = tempfile::tempdir().unwrap();
        let (_, blocks) = committed_blocks(3);
        let batches: Vec<_> = (0..3).map(|seq| test_batch(0, seq)).collect();
        let store = |s: &Storage, i: usize| {
            s.save_commits(&blocks[i..=i]).unwrap();
            let bytes = encode(&batches[i]).unwrap();
            s.save_batches_and_own([(batches[i].digest(), bytes.as_slice())], &[])
                .unwrap();
            s.save_output(std::sync::Arc::new(output_of(&blocks[i], &batches[i])))
                .unwrap();
        };
        let on_file = |s: &Storage| {
            let txn = s.db.begin_read().unwrap();
            last_height(&txn.open_table(COMMITTED).unwrap()).unwrap()
        };
        {
            let s = Storage::open(dir.path()).unwrap();
            store(&s, 0);
            assert_eq!((s.tip().unwrap(), s.delivered_height().unwrap()), (1, 1));
            assert_eq!(s.committed(1).unwrap().unwrap(), blocks[0]);
            assert_eq!(
                s.block(&blocks[0].block.digest()).unwrap(),
                Some(blocks[0].block.clone())
            );
            assert_eq!(
                s.output(1).unwrap().unwrap().batches,
                vec![batches[0].clone()]
            );
            assert_eq!(on_file(&s), 0, "stored before STAGE_MAX_WAIT");
            std::thread::sleep(STAGE_MAX_WAIT);
            // The batch group wrote what was staged, up to its own block
            // (its output row is staged after it).
            store(&s, 1);
            assert_eq!(on_file(&s), 2);
            assert_eq!(s.meta_bytes(DELIVERED_KEY).unwrap(), 1u64.to_le_bytes());
            store(&s, 2);
            assert_eq!(on_file(&s), 2);
            s.lose_staged();
        }
        {
            let s = Storage::open(dir.path()).unwrap();
            assert_eq!((s.tip().unwrap(), s.delivered_height().unwrap()), (2, 1));
            assert!(s.output(2).unwrap().is_none());
            s.save_output(std::sync::Arc::new(output_of(&blocks[1], &batches[1])))
                .unwrap();
            assert!(s.output(3).unwrap().is_none());
            // The lost batch is in the log: the restart indexed it again.
            let bytes = encode(&batches[2]).unwrap();
            assert_eq!(s.batch(&batches[2].digest()).unwrap(), Some(bytes));
            store(&s, 2);
        }
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!((s.tip().unwrap(), s.delivered_height().unwrap()), (3, 3));
        assert_eq!(
            s.output(3).unwrap().unwrap().batches,
            vec![batches[2].clone()]
        );
    }

    #[test]
    fn pruning_removes_old_batches_and_output_but_keeps_the_chain() {
        use ordo_mempool::{Batch, BatchCert, Transaction};
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let (_, mut blocks) = committed_blocks(4);
        // Give each block one batch certificate and store the batch.
        let mut batches = Vec::new();
        for (i, b) in blocks.iter_mut().enumerate() {
            let batch = Batch {
                author: 0,
                seq: i as u64,
                txs: vec![Transaction::new(1, vec![i as u8])],
            };
            let cert = BatchCert::new(&batch.header(), vec![]);
            b.block.payload.items = vec![encode(&cert).unwrap()];
            batches.push(batch);
        }
        s.save_commits(&blocks).unwrap();
        for (b, batch) in blocks.iter().zip(&batches) {
            let bytes = encode(batch).unwrap();
            s.save_batches([(batch.digest(), bytes.as_slice())])
                .unwrap();
            s.save_output(std::sync::Arc::new(output_of(b, batch)))
                .unwrap();
        }
        s.prune_below(3).unwrap();
        assert_eq!(s.pruned_below().unwrap(), 3);
        assert!(s.batch(&batches[0].digest()).unwrap().is_none());
        assert!(s.batch(&batches[1].digest()).unwrap().is_none());
        assert!(s.batch(&batches[2].digest()).unwrap().is_some());
        assert!(s.output(2).unwrap().is_none());
        assert!(s.output(3).unwrap().is_some());
        // Headers and certificates stay.
        assert_eq!(s.committed(1).unwrap().unwrap(), blocks[0]);
        // Never past the delivered height.
        s.prune_below(100).unwrap();
        assert_eq!(s.pruned_below().unwrap(), 5);
        assert!(s.output(4).unwrap().is_none());
    }

    /// A batch committed again at a later height (a Byzantine leader can
    /// re-include a certificate) stays while a retained height names it:
    /// delivered there, or committed and not yet delivered.
    #[test]
    fn pruning_keeps_a_batch_a_retained_height_also_names() {
        use ordo_mempool::{Batch, BatchCert, Transaction};
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let (_, mut blocks) = committed_blocks(5);
        let batches: Vec<Batch> = (0..4)
            .map(|seq| Batch {
                author: 0,
                seq,
                txs: vec![Transaction::new(1, vec![seq as u8])],
            })
            .collect();
        let item = |b: &Batch| encode(&BatchCert::new(&b.header(), vec![])).unwrap();
        // Heights 1..=3 carry batches 0..=2; height 4 carries batch 0 again
        // and batch 3; height 5 (committed, not delivered) batch 1 again.
        for (i, b) in blocks.iter_mut().enumerate().take(3) {
            b.block.payload.items = vec![item(&batches[i])];
        }
        blocks[3].block.payload.items = vec![item(&batches[0]), item(&batches[3])];
        blocks[4].block.payload.items = vec![item(&batches[1])];
        s.save_commits(&blocks).unwrap();
        for batch in &batches {
            let bytes = encode(batch).unwrap();
            s.save_batches([(batch.digest(), bytes.as_slice())])
                .unwrap();
        }
        for (i, b) in blocks.iter().enumerate().take(3) {
            s.save_output(std::sync::Arc::new(output_of(b, &batches[i])))
                .unwrap();
        }
        let mut fourth = output_of(&blocks[3], &batches[0]);
        fourth.batches.push(batches[3].clone());
        s.save_output(std::sync::Arc::new(fourth.clone())).unwrap();

        s.prune_below(4).unwrap();
        let stored = |i: usize| s.batch(&batches[i].digest()).unwrap().is_some();
        assert!(stored(0), "named by delivered height 4");
        assert!(stored(1), "named by committed height 5");
        assert!(!stored(2));
        assert_eq!(s.output(4).unwrap().unwrap(), fourth);
        drop(s);
        // Once height 4 is pruned too, batch 0 goes.
        let s = Storage::open(dir.path()).unwrap();
        s.prune_below(5).unwrap();
        assert!(s.batch(&batches[0].digest()).unwrap().is_none());
        assert!(s.batch(&batches[3].digest()).unwrap().is_none());
        assert!(s.batch(&batches[1].digest()).unwrap().is_some());
    }

    /// Blocks are served by digest from the voted blocks (`votes.log`) and
    /// the committed ones (`ordo.redb`) until those are pruned.
    #[test]
    fn blocks_are_found_by_digest_whether_voted_or_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, blocks) = committed_blocks(4);
        let digest = |i: usize| blocks[i].block.digest();
        {
            let s = Storage::open(dir.path()).unwrap();
            assert_eq!(s.block(&digest(0)).unwrap(), None);
            s.save_vote(Some(&blocks[3].block), None).unwrap();
            s.save_commits(&blocks[..2]).unwrap();
        }
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(
            s.block(&digest(0)).unwrap().as_ref(),
            Some(&blocks[0].block)
        );
        assert_eq!(
            s.block(&digest(1)).unwrap().as_ref(),
            Some(&blocks[1].block)
        );
        assert_eq!(s.block(&digest(2)).unwrap(), None);
        assert_eq!(
            s.block(&digest(3)).unwrap().as_ref(),
            Some(&blocks[3].block)
        );
    }

    /// Compacting the votes keeps the safety data and the voted blocks above
    /// the durably committed tip; the ones below are still served, from the
    /// chain.
    #[test]
    fn compacted_votes_keep_what_recovery_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (cluster, blocks) = committed_blocks(4);
        let data = SafetyData {
            last_voted_view: blocks[3].block.view(),
            ..SafetyData::default()
        };
        {
            let s = Storage::open(dir.path()).unwrap();
            for b in &blocks {
                s.save_vote(Some(&b.block), Some(&data)).unwrap();
            }
            s.save_commits(&blocks[..2]).unwrap();
            // Unless they are durable (a relaxed commit becomes durable
            // 200 ms after the last durable one), a crash could lose those
            // commits, so the votes keep every block.
            let durable = s.durable_tip.load(std::sync::atomic::Ordering::Acquire);
            s.compact_votes().unwrap();
            assert_eq!(s.votes.blocks().len(), if durable == 2 { 2 } else { 4 });
            // Once durable, the chain serves them.
            s.flush().unwrap();
            assert_eq!(s.votes.blocks().len(), 2);
            let before = s.votes.record_bytes();
            s.compact_votes().unwrap();
            assert!(s.votes.record_bytes() < before);
            assert_eq!(s.votes.blocks().len(), 2);
        }
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.load_safety().unwrap(), Some(data));
        for b in &blocks {
            assert_eq!(s.block(&b.block.digest()).unwrap(), Some(b.block.clone()));
        }
        let recovery = s.recovery(&cluster.committee).unwrap();
        assert_eq!(recovery.root, blocks[1].block);
        let mut above: Vec<Digest> = recovery.blocks.iter().map(Block::digest).collect();
        above.sort();
        let mut expected = vec![blocks[2].block.digest(), blocks[3].block.digest()];
        expected.sort();
        assert_eq!(above, expected);
    }

    /// A data dir of the previous version keeps its votes in `votes.redb`;
    /// they are copied into `votes.log` on the first open.
    #[test]
    fn votes_of_an_earlier_version_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let (_, blocks) = committed_blocks(3);
        let data = SafetyData {
            last_voted_view: 77,
            ..SafetyData::default()
        };
        {
            let db = Database::create(dir.path().join("votes.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut voted = txn.open_table(BLOCKS).unwrap();
                for b in &blocks[1..] {
                    let bytes = encode(&b.block).unwrap();
                    voted
                        .insert(b.block.digest().as_bytes().as_slice(), bytes.as_slice())
                        .unwrap();
                }
                let bytes = encode(&data).unwrap();
                txn.open_table(META)
                    .unwrap()
                    .insert(SAFETY_KEY, bytes.as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        for _ in 0..2 {
            let s = Storage::open(dir.path()).unwrap();
            assert_eq!(s.load_safety().unwrap(), Some(data.clone()));
            for b in &blocks[1..] {
                assert_eq!(s.block(&b.block.digest()).unwrap(), Some(b.block.clone()));
            }
            assert_eq!(s.block(&blocks[0].block.digest()).unwrap(), None);
        }
        assert!(!dir.path().join("votes.redb").exists());
        assert!(dir.path().join("votes.redb.migrated").exists());
        assert!(!dir.path().join("votes.log.migrating").exists());
    }

    /// Batches live in segment files: a batch stored twice is written once;
    /// pruning deletes segments nothing points into and copies the few
    /// batches left in old segments (here a never-committed one) forward.
    #[test]
    fn pruned_segments_are_deleted_and_stragglers_copied_forward() {
        use ordo_mempool::{Batch, BatchCert, Transaction};
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let (_, mut blocks) = committed_blocks(4);
        let batch = |seq: u64| Batch {
            author: 1,
            seq,
            txs: vec![Transaction::new(1, vec![seq as u8; 1000])],
        };
        let straggler = batch(99);
        let bytes = encode(&straggler).unwrap();
        s.save_batches([(straggler.digest(), bytes.as_slice())])
            .unwrap();
        let size = s.log.size_bytes();
        s.save_batches([(straggler.digest(), bytes.as_slice())])
            .unwrap();
        assert_eq!(s.log.size_bytes(), size, "stored twice, written once");
        let mut batches = Vec::new();
        for (i, b) in blocks.iter_mut().enumerate() {
            let batch = batch(i as u64);
            b.block.payload.items = vec![encode(&BatchCert::new(&batch.header(), vec![])).unwrap()];
            let bytes = encode(&batch).unwrap();
            s.save_batches([(batch.digest(), bytes.as_slice())])
                .unwrap();
            s.log.rotate().unwrap();
            batches.push(batch);
        }
        s.save_commits(&blocks).unwrap();
        for (b, batch) in blocks.iter().zip(&batches) {
            s.save_output(std::sync::Arc::new(output_of(b, batch)))
                .unwrap();
        }
        let segments = || BatchLog::list(&dir.path().join("batches")).unwrap();
        assert_eq!(segments(), vec![0, 1, 2, 3, 4]);
        s.prune_below(3).unwrap();
        // 0 (straggler + batch 0) and 2 (batch 2, still retained) were
        // copied forward, 1 deleted, 3 is only one behind the active 4.
        assert_eq!(segments(), vec![3, 4]);
        assert!(s.batch(&batches[0].digest()).unwrap().is_none());
        assert!(s.batch(&batches[1].digest()).unwrap().is_none());
        assert_eq!(s.batch(&straggler.digest()).unwrap().unwrap(), bytes);
        assert!(s.output(3).unwrap().is_some());
        drop(s);
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.batch(&straggler.digest()).unwrap().unwrap(), bytes);
        assert_eq!(
            s.output(4).unwrap().unwrap().batches,
            vec![batches[3].clone()]
        );
        assert_eq!(s.live.lock().values().sum::<u64>(), 3);
    }

    /// A commit record torn while it was written (the secondary slot) does
    /// not stop the node or lose a completed commit; a damaged committed
    /// record (the primary) is refused with an error naming the file.
    #[test]
    fn torn_last_commit_record_is_recovered_damaged_one_refused() {
        use super::testing::{tear_commit_slot, Slot};
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (test_batch(1, 1), test_batch(1, 2));
        let (one_bytes, two_bytes) = (encode(&one).unwrap(), encode(&two).unwrap());
        let vote = |view| SafetyData {
            last_voted_view: view,
            ..SafetyData::default()
        };
        {
            let s = Storage::open(dir.path()).unwrap();
            s.save_batches([(one.digest(), one_bytes.as_slice())])
                .unwrap();
            s.save_batches([(two.digest(), two_bytes.as_slice())])
                .unwrap();
            s.save_vote(None, Some(&vote(7))).unwrap();
        }
        tear_commit_slot(&dir.path().join("ordo.redb"), Slot::Secondary).unwrap();
        super::testing::tear_last_vote(&dir.path().join("votes.log")).unwrap();
        {
            let s = Storage::open(dir.path()).unwrap();
            assert_eq!(s.batch(&one.digest()).unwrap(), Some(one_bytes));
            assert_eq!(s.batch(&two.digest()).unwrap(), Some(two_bytes));
            assert_eq!(s.load_safety().unwrap(), Some(vote(7)));
        }
        tear_commit_slot(&dir.path().join("ordo.redb"), Slot::Primary).unwrap();
        let err = Storage::open(dir.path())
            .err()
            .expect("damaged record")
            .to_string();
        assert!(
            err.contains("ordo.redb") && err.contains("move it aside"),
            "{err}"
        );
    }
}
