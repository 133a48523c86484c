//! The node's votes: its safety data and the blocks it voted for, in one
//! append-only file, `<data_dir>/votes.log`.
//!
//! Every vote must be on disk before it leaves the node, so this write sits
//! on the path of every consensus round. One record per vote (the voted
//! block and the new safety data together), one `pwrite` and one
//! `fdatasync`. The file is extended with real zeros ahead of the records
//! ([`EXTEND_BYTES`] at a time), so a record never changes the file's length
//! and the `fdatasync` writes no metadata. A redb transaction for the same
//! vote wrote several copy-on-write pages and a header, and took about 10 %
//! of the bench machine's CPU at 50,000 tx/s (docs/performance.md).
//!
//! Each vote is one checksummed record ([`crate::record`]) whose body is
//! the pair `(Option<Block>, Option<SafetyData>)`. Reading the file back,
//! the last safety data wins and the
//! blocks are collected. The valid records run from the start of the file
//! to the first invalid one: a torn last record (a crash during the write)
//! is ignored and overwritten. A valid record *after* an invalid one means
//! the file was damaged, and opening it fails: a node that forgot its votes
//! could vote twice.
//!
//! When the records pass [`COMPACT_BYTES`] (and a random part of it) the
//! file is rewritten with only the current safety data and the blocks still
//! kept, into a new file that replaces the old one by rename: a few KiB,
//! one `fdatasync`, a rename and a directory sync — 20–35 ms on the bench
//! machine, so it is rare (every few minutes at 300 votes a second) and
//! the nodes do it at different times. Blocks the committed chain holds are
//! dropped from memory as the chain is made durable
//! ([`VoteLog::forget_through`]), so memory holds only the uncommitted ones.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ordo_consensus::{Block, SafetyData, View};
use ordo_types::codec::{decode_local, encode_local};
use ordo_types::Digest;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::record::{io_error, HEADER};

const MAGIC: u32 = 0x4f56_4c31; // "OVL1"
/// The file grows by this many zero bytes at a time.
pub const EXTEND_BYTES: u64 = 1024 * 1024;
/// Records past this (plus a random part of as much again, so the nodes of
/// a committee, which write the same records, do not all compact in the
/// same view) are compacted.
pub const COMPACT_BYTES: u64 = 64 * 1024 * 1024;
/// Zeros are written in pieces of this size.
const ZERO_CHUNK: usize = 64 * 1024;
/// The file's length is always a multiple of this (a crash while it is
/// extended leaves whole pages).
const PAGE: usize = 4096;
/// How far past the last record a torn one can reach: more than any record
/// this log writes (a voted block came in one network message).
const TORN_MAX: usize = HEADER + 2 * ordo_types::codec::MAX_MESSAGE_BYTES;

struct Inner {
    file: File,
    /// Where the next record goes.
    end: u64,
    /// The file's length: zeros from `end` to here.
    allocated: u64,
    safety: Option<SafetyData>,
    blocks: HashMap<Digest, Block>,
    /// Records past this many bytes call for compaction.
    compact_at: u64,
}

/// Where compaction is next due, for records ending at `end`.
fn next_compaction(end: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    end + COMPACT_BYTES + nanos % COMPACT_BYTES
}

pub struct VoteLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn record(body: &[u8]) -> Result<Vec<u8>> {
    crate::record::encode(MAGIC, body)
}

/// The body of the vote record starting at `at`, if there is a valid one.
fn parse(bytes: &[u8], at: usize) -> Option<&[u8]> {
    crate::record::parse(bytes, at)
        .filter(|(magic, _)| *magic == MAGIC)
        .map(|(_, body)| body)
}

/// Why the file cannot be what this log wrote and a crash left, if so:
/// `bytes` is the whole file, its valid records end at `end`. A crash can
/// leave one torn record after them, inside the zeros the file was
/// extended with; anything else is damage.
fn damage(bytes: &[u8], end: usize) -> Option<String> {
    if !bytes.len().is_multiple_of(PAGE) {
        return Some(format!(
            "its length {} is not a whole number of {PAGE}-byte pages (a damaged or appended tail)",
            bytes.len()
        ));
    }
    let last = bytes.iter().rposition(|b| *b != 0)?;
    if last < end {
        return None;
    }
    if last >= end + TORN_MAX {
        return Some(format!(
            "bytes at {last} lie past what one torn record after the last one (at {end}) can reach"
        ));
    }
    // Search past what the torn record claims to span (its own bytes are a
    // block's, which may hold anything), for a record this log could have
    // written: a body that decodes.
    let claimed = bytes
        .get(end..end + HEADER)
        .filter(|h| h[..4] == MAGIC.to_le_bytes())
        .and_then(|h| h[4..8].try_into().ok())
        .map(|len| u32::from_le_bytes(len) as usize)
        .filter(|len| HEADER + len <= TORN_MAX)
        .map_or(1, |len| HEADER + len);
    let later = (end + claimed..bytes.len().saturating_sub(HEADER)).find(|i| {
        parse(bytes, *i).is_some_and(|body| {
            !body.is_empty() && decode_local::<(Option<Block>, Option<SafetyData>)>(body).is_ok()
        })
    });
    later.map(|at| format!("the record at {end} is damaged and a later one (at {at}) is intact"))
}

/// Writes `len` zero bytes at `at`.
fn write_zeros(file: &File, at: u64, len: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

impl VoteLog {
    /// Opens (creating if needed) the vote log at `path`. `advice` ends the
    /// error if the file is damaged.
    pub fn open(path: &Path, advice: &str) -> Result<VoteLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error("cannot open", path, e))?;
        let bytes = std::fs::read(path).map_err(|e| io_error("cannot read", path, e))?;
        let mut safety = None;
        let mut blocks = HashMap::new();
        let mut at = 0;
        while let Some(body) = parse(&bytes, at) {
            let entry: (Option<Block>, Option<SafetyData>) = decode_local(body).map_err(|e| {
                Error::Storage(format!(
                    "cannot open {}: record at {at} does not decode: {e}{advice}",
                    path.display()
                ))
            })?;
            if let Some(block) = entry.0 {
                blocks.insert(block.digest(), block);
            }
            if entry.1.is_some() {
                safety = entry.1;
            }
            at += HEADER + body.len();
        }
        let end = at;
        if let Some(why) = damage(&bytes, end) {
            return Err(Error::Storage(format!(
                "cannot open {}: {why}{advice}",
                path.display()
            )));
        }
        if let Some(last) = bytes.iter().rposition(|b| *b != 0).filter(|l| *l >= end) {
            // A torn write: zeroed, so the next record is the end again.
            write_zeros(&file, end as u64, (last + 1 - end) as u64)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_error("cannot write", path, e))?;
            tracing::info!(
                path = %path.display(),
                offset = end,
                "a torn vote record (a crash during its write) was dropped"
            );
        }
        Ok(VoteLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                end: end as u64,
                allocated: bytes.len() as u64,
                safety,
                blocks,
                compact_at: next_compaction(end as u64),
            }),
        })
    }

    /// The last safety data written.
    pub fn safety(&self) -> Option<SafetyData> {
        self.inner.lock().safety.clone()
    }

    /// A voted block still kept.
    pub fn block(&self, digest: &Digest) -> Option<Block> {
        self.inner.lock().blocks.get(digest).cloned()
    }

    /// Every voted block still kept.
    pub fn blocks(&self) -> Vec<Block> {
        self.inner.lock().blocks.values().cloned().collect()
    }

    /// Bytes of records.
    pub fn record_bytes(&self) -> u64 {
        self.inner.lock().end
    }

    /// Forgets (in memory; the file keeps them until compaction) the voted
    /// blocks at `view` or below.
    pub fn forget_through(&self, view: View) {
        self.inner
            .lock()
            .blocks
            .retain(|_, block| block.view() > view);
    }

    /// Whether the records have grown enough to compact.
    pub fn needs_compaction(&self) -> bool {
        let inner = self.inner.lock();
        inner.end > inner.compact_at
    }

    /// Makes a vote durable: the block voted for and the safety data of the
    /// vote, in one record. When this returns, both survive a crash.
    pub fn append(&self, block: Option<&Block>, safety: Option<&SafetyData>) -> Result<()> {
        let body = encode_local(&(block, safety))?;
        let bytes = record(&body)?;
        let mut inner = self.inner.lock();
        let at = inner.end;
        let needed = at + bytes.len() as u64;
        if needed > inner.allocated {
            let grow = (needed - inner.allocated).div_ceil(EXTEND_BYTES) * EXTEND_BYTES;
            write_zeros(&inner.file, inner.allocated, grow)
                .map_err(|e| io_error("cannot extend", &self.path, e))?;
            inner.allocated += grow;
        }
        inner
            .file
            .write_all_at(&bytes, at)
            .and_then(|()| inner.file.sync_data())
            .map_err(|e| io_error("cannot write", &self.path, e))?;
        inner.end = needed;
        if let Some(block) = block {
            inner.blocks.insert(block.digest(), block.clone());
        }
        if let Some(safety) = safety {
            inner.safety = Some(safety.clone());
        }
        Ok(())
    }

    /// Rewrites the file with the safety data and the kept blocks whose
    /// view is above `view`; the others are forgotten. A failure before the
    /// new file takes the old one's name leaves the old file in use: it is
    /// logged, and compaction is tried again later. Only a failure to make
    /// the new name durable is an error.
    pub fn compact(&self, view: View) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.blocks.retain(|_, block| block.view() > view);
        let fresh = self.path.with_extension("log.new");
        let (file, end, allocated) = match self.write_compacted(&inner, &fresh) {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(
                    "cannot compact {}: {e}; trying again later",
                    self.path.display()
                );
                let _ = std::fs::remove_file(&fresh);
                inner.compact_at = next_compaction(inner.end);
                return Ok(());
            }
        };
        // From here on appends go to the new file.
        inner.file = file;
        inner.end = end;
        inner.allocated = allocated;
        inner.compact_at = next_compaction(end);
        if let Some(dir) = self.path.parent() {
            crate::record::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Writes the compacted records to `fresh`, syncs it and renames it over
    /// the log; returns the new file, its end and its length.
    fn write_compacted(&self, inner: &Inner, fresh: &Path) -> Result<(File, u64, u64)> {
        let mut bytes = record(&encode_local(&(None::<&Block>, inner.safety.as_ref()))?)?;
        for block in inner.blocks.values() {
            bytes.extend(record(&encode_local(&(Some(block), None::<&SafetyData>))?)?);
        }
        // Whole pages; the next vote extends the file with zeros.
        let end = bytes.len() as u64;
        let allocated = end.div_ceil(PAGE as u64) * PAGE as u64;
        bytes.resize(allocated as usize, 0);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(fresh)
            .map_err(|e| io_error("cannot create", fresh, e))?;
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error("cannot write", fresh, e))?;
        std::fs::rename(fresh, &self.path)
            .map_err(|e| io_error("cannot replace", &self.path, e))?;
        Ok((file, end, allocated))
    }
}

/// Crash simulations for tests.
pub mod testing {
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    /// Writes the first half of a copy of the last record right after it:
    /// what a crash in the middle of the next vote's write leaves.
    pub fn tear_last_vote(path: &Path) -> std::io::Result<()> {
        let bytes = std::fs::read(path)?;
        let (mut at, mut last) = (0, None);
        while let Some(body) = super::parse(&bytes, at) {
            last = Some(at..at + super::HEADER + body.len());
            at += super::HEADER + body.len();
        }
        let last = last.ok_or_else(|| std::io::Error::other("no vote record"))?;
        let half = &bytes[last.start..last.start + last.len() / 2];
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.write_all_at(half, at as u64)?;
        file.sync_all()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ordo_consensus::testing::Cluster;
    use ordo_consensus::Config;

    fn blocks(n: u64) -> Vec<Block> {
        let mut cluster = Cluster::new(4, Config::default(), 5, 0, 1);
        cluster.submit(0, vec![b"tx".to_vec()]);
        assert!(cluster.run_until_height(n, 600_000));
        cluster.committed(0)[..n as usize]
            .iter()
            .map(|c| c.block.clone())
            .collect()
    }

    fn safety(view: View) -> SafetyData {
        SafetyData {
            last_voted_view: view,
            ..SafetyData::default()
        }
    }

    #[test]
    fn votes_survive_reopen_and_a_torn_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.log");
        let blocks = blocks(3);
        {
            let log = VoteLog::open(&path, "").unwrap();
            assert_eq!(log.safety(), None);
            for (i, block) in blocks.iter().enumerate() {
                log.append(Some(block), Some(&safety(10 + i as u64)))
                    .unwrap();
            }
            log.append(None, Some(&safety(20))).unwrap();
            // A record never changes the file's length.
            assert_eq!(std::fs::metadata(&path).unwrap().len(), EXTEND_BYTES);
        }
        let end = {
            let log = VoteLog::open(&path, "").unwrap();
            assert_eq!(log.safety(), Some(safety(20)));
            assert_eq!(log.blocks().len(), 3);
            assert_eq!(log.block(&blocks[1].digest()), Some(blocks[1].clone()));
            log.record_bytes()
        };
        // A crash in the middle of the next record: its first half only.
        testing::tear_last_vote(&path).unwrap();
        let log = VoteLog::open(&path, "").unwrap();
        assert_eq!(log.safety(), Some(safety(20)));
        assert_eq!(log.record_bytes(), end);
        // The next record takes its place, shorter than the torn one.
        log.append(None, None).unwrap();
        drop(log);
        let log = VoteLog::open(&path, "").unwrap();
        assert_eq!(log.safety(), Some(safety(20)));
        assert_eq!(log.blocks().len(), 3);
    }

    #[test]
    fn a_damaged_record_before_intact_ones_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.log");
        {
            let log = VoteLog::open(&path, "").unwrap();
            for view in 1..=3 {
                log.append(None, Some(&safety(view))).unwrap();
            }
        }
        // A flipped byte in the first record's body.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], HEADER as u64 + 2).unwrap();
        drop(file);
        let err = VoteLog::open(&path, " (restore it)")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("damaged") && err.contains("restore it"),
            "{err}"
        );
    }

    /// A torn record's body may hold anything, even an intact record (a
    /// block can carry arbitrary bytes): that is not damage.
    #[test]
    fn a_record_inside_a_torn_one_is_not_taken_for_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.log");
        let end = {
            let log = VoteLog::open(&path, "").unwrap();
            log.append(None, Some(&safety(5))).unwrap();
            log.record_bytes()
        };
        let inner = record(&encode_local(&(None::<&Block>, Some(&safety(9)))).unwrap()).unwrap();
        let mut body = vec![1u8; 100];
        body.extend(&inner);
        body.extend(vec![2u8; 100]);
        let outer = record(&body).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&outer[..outer.len() - 50], end).unwrap();
        drop(file);
        let log = VoteLog::open(&path, "").unwrap();
        assert_eq!(log.safety(), Some(safety(5)));
    }

    #[test]
    fn a_garbage_tail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.log");
        VoteLog::open(&path, "")
            .unwrap()
            .append(None, Some(&safety(1)))
            .unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, &[7u8; 3000]).unwrap();
        drop(file);
        let err = VoteLog::open(&path, "").err().unwrap().to_string();
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn compaction_keeps_the_safety_data_and_the_blocks_above_a_view() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.log");
        let blocks = blocks(4);
        let log = VoteLog::open(&path, "").unwrap();
        for block in &blocks {
            log.append(Some(block), Some(&safety(block.view())))
                .unwrap();
        }
        let keep_above = blocks[1].view();
        let before = log.record_bytes();
        log.compact(keep_above).unwrap();
        assert!(log.record_bytes() < before);
        assert!(log.block(&blocks[1].digest()).is_none());
        log.append(None, Some(&safety(99))).unwrap();
        drop(log);
        let log = VoteLog::open(&path, "").unwrap();
        assert_eq!(log.safety(), Some(safety(99)));
        let mut kept: Vec<Digest> = log.blocks().iter().map(Block::digest).collect();
        kept.sort();
        let mut expected = vec![blocks[2].digest(), blocks[3].digest()];
        expected.sort();
        assert_eq!(kept, expected);
        assert!(!path.with_extension("log.new").exists());
    }
}
