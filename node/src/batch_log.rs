//! Batch bytes in append-only segment files, `<data_dir>/batches/NNNNNNNN.seg`.
//!
//! A batch is written once, as it arrives, at the end of the active segment
//! and made durable with one `fdatasync` per group; `ordo.redb` keeps only
//! its location. A B-tree holding the bytes themselves wrote each batch about
//! three times over (copy-on-write pages rounded up to powers of two), and on
//! the 2-core bench machine copying those bytes into the page cache was the
//! largest single cost (docs/performance.md).
//!
//! Appends bypass the page cache (`O_DIRECT`, where the file system has it):
//! on the bench machine copying written bytes into the page cache, and
//! zeroing the pages for it, cost more CPU than anything but hashing. Each
//! group is padded to a 4 KiB boundary for that; reads go through the page
//! cache as usual.
//!
//! Each batch is one checksummed record ([`crate::record`]), so a torn or
//! overwritten record is an error on read, never wrong bytes. The magic tells this
//! node's own batches from peers' ([`Kind`]). Segments are deleted whole by
//! [`crate::storage::Storage`] once nothing it keeps points into them.
//!
//! The log is also the durable record of *which* batches are stored:
//! `ordo.redb` commits their locations without waiting for an fsync, and a
//! restarted node indexes again what the log holds past the last location
//! commit that reached the disk ([`BatchLog::scan`]). For that, a segment's
//! valid records run from its start to the first invalid one: a node starts
//! a new segment when it opens the log, and after a failed append, so a torn
//! tail (a crash or a write error in the middle of an append) is always the
//! end of its segment.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::record::{check, io_error, sync_dir, HEADER};

const MAGIC: u32 = 0x4f42_4c31; // "OBL1"
const MAGIC_OWN: u32 = 0x4f42_4c32; // "OBL2"

/// Whose batch a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A peer's batch (or one copied forward by compaction).
    Batch,
    /// This node's own batch, as first stored.
    Own,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Batch => MAGIC,
            Kind::Own => MAGIC_OWN,
        }
    }

    fn of_magic(magic: u32) -> Option<Kind> {
        match magic {
            MAGIC => Some(Kind::Batch),
            MAGIC_OWN => Some(Kind::Own),
            _ => None,
        }
    }
}

/// A point in the log: a segment and an offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u32,
    pub offset: u64,
}

impl Position {
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.segment.to_le_bytes());
        out[4..].copy_from_slice(&self.offset.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Position> {
        let bytes: &[u8; 12] = bytes.try_into().ok()?;
        Some(Position {
            segment: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[4..].try_into().ok()?),
        })
    }
}

/// What an append wrote: where each body went, and where the log ends
/// after it.
pub struct Appended {
    pub locations: Vec<Location>,
    pub end: Position,
}

/// A new segment is started once the active one holds this much.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Where a record is: segment number, offset of its header, body length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

impl Location {
    /// Where the record starts.
    pub fn position(self) -> Position {
        Position {
            segment: self.segment,
            offset: self.offset,
        }
    }

    /// Just past the record.
    pub fn end(self) -> Position {
        Position {
            segment: self.segment,
            offset: self.offset + (HEADER as u64) + u64::from(self.len),
        }
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..12].copy_from_slice(&self.position().to_bytes());
        out[12..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Location> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        let start = Position::from_bytes(&bytes[..12])?;
        Some(Location {
            segment: start.segment,
            offset: start.offset,
            len: u32::from_le_bytes(bytes[12..].try_into().ok()?),
        })
    }
}

/// `O_DIRECT` wants buffers, offsets and lengths aligned to this.
const ALIGN: usize = 4096;

struct Active {
    segment: u32,
    file: File,
    /// Where the next group goes (aligned when `direct`).
    len: u64,
    /// The file was opened with `O_DIRECT`.
    direct: bool,
    /// The write buffer, kept between appends (fresh pages cost a fault
    /// and zeroing each).
    scratch: Vec<u8>,
    /// An append failed: whatever part of it reached the file is a torn
    /// record, so the next append starts a new segment.
    torn: bool,
}

pub struct BatchLog {
    dir: PathBuf,
    active: Mutex<Active>,
    /// Read handles, by segment.
    readers: Mutex<BTreeMap<u32, Arc<File>>>,
}

impl BatchLog {
    /// Opens `dir` (creating it). Appends go to a new segment (or to the
    /// newest one if it is empty), so a torn tail ends its segment.
    pub fn open(dir: &Path) -> Result<BatchLog> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        let newest = Self::list(dir)?.last().copied();
        let segment = match newest {
            None => 0,
            Some(n) => {
                let len = std::fs::metadata(Self::path(dir, n))
                    .map_err(|e| io_error("cannot stat", &Self::path(dir, n), e))?
                    .len();
                if len == 0 {
                    n
                } else {
                    n + 1
                }
            }
        };
        let active = Self::open_segment(dir, segment)?;
        if newest != Some(segment) {
            sync_dir(dir)?;
        }
        Ok(BatchLog {
            dir: dir.to_path_buf(),
            active: Mutex::new(active),
            readers: Mutex::new(BTreeMap::new()),
        })
    }

    fn path(dir: &Path, segment: u32) -> PathBuf {
        dir.join(format!("{segment:08}.seg"))
    }

    /// This log's segment numbers on disk, ascending.
    pub fn segments(&self) -> Result<Vec<u32>> {
        Self::list(&self.dir)
    }

    /// Segment numbers on disk in `dir`, ascending.
    pub fn list(dir: &Path) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| io_error("cannot list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list", dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(n) = stem.parse() {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn open_segment(dir: &Path, segment: u32) -> Result<Active> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path(dir, segment);
        let open = |flags: i32| {
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .custom_flags(flags)
                .open(&path)
        };
        // tmpfs and some others refuse O_DIRECT: write through the cache.
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(file) => (file, true),
            Err(_) => (
                open(0).map_err(|e| io_error("cannot open", &path, e))?,
                false,
            ),
        };
        let len = file
            .metadata()
            .map_err(|e| io_error("cannot stat", &path, e))?
            .len();
        // After a torn or unaligned tail, start at the next boundary.
        let len = if direct { align_up(len) } else { len };
        Ok(Active {
            segment,
            file,
            len,
            direct,
            scratch: Vec::new(),
            torn: false,
        })
    }

    /// Whether appends bypass the page cache (`O_DIRECT`).
    pub fn is_direct(&self) -> bool {
        self.active.lock().direct
    }

    /// The segment appends go to.
    pub fn active_segment(&self) -> u32 {
        self.active.lock().segment
    }

    /// Appends the records (one write, one `fdatasync`) and returns where
    /// each went. When this returns, they survive a crash.
    pub fn append<'a>(
        &self,
        records: impl IntoIterator<Item = (Kind, &'a [u8])>,
    ) -> Result<Appended> {
        let mut active = self.active.lock();
        if active.len >= SEGMENT_BYTES || active.torn {
            let next = active.segment + 1;
            *active = Self::open_segment(&self.dir, next)?;
            sync_dir(&self.dir)?;
        }
        let records: Vec<(Kind, &[u8])> = records.into_iter().collect();
        let total: usize = records.iter().map(|(_, b)| HEADER + b.len()).sum();
        if total == 0 {
            return Ok(Appended {
                locations: Vec::new(),
                end: Position {
                    segment: active.segment,
                    offset: active.len,
                },
            });
        }
        // One buffer, aligned and padded to whole blocks for O_DIRECT.
        let padded = if active.direct {
            align_up(total as u64) as usize
        } else {
            total
        };
        let mut buffer = std::mem::take(&mut active.scratch);
        let block = aligned(&mut buffer, padded);
        block[total..].fill(0);
        let mut locations = Vec::with_capacity(records.len());
        let mut at = 0;
        for (kind, body) in &records {
            let len = u32::try_from(body.len())
                .map_err(|_| Error::Storage(format!("batch of {} bytes", body.len())))?;
            locations.push(Location {
                segment: active.segment,
                offset: active.len + at as u64,
                len,
            });
            crate::record::write_header(&mut block[at..at + HEADER], kind.magic(), body)?;
            block[at + HEADER..at + HEADER + body.len()].copy_from_slice(body);
            at += HEADER + body.len();
        }
        let path = Self::path(&self.dir, active.segment);
        let at = active.len;
        let written = active
            .file
            .write_all_at(block, at)
            .and_then(|()| active.file.sync_data())
            .map(|()| padded as u64);
        // Kept unless a huge group grew it.
        if buffer.len() <= 4 * 1024 * 1024 {
            active.scratch = buffer;
        }
        match written {
            Ok(n) => {
                active.len += n;
                Ok(Appended {
                    locations,
                    end: Position {
                        segment: active.segment,
                        offset: active.len,
                    },
                })
            }
            Err(e) => {
                // Whatever part was written is a tail no location points
                // to; the next append starts a new segment.
                active.torn = true;
                Err(io_error("cannot write", &path, e))
            }
        }
    }

    fn reader(&self, segment: u32) -> Result<Arc<File>> {
        let mut readers = self.readers.lock();
        if let Some(file) = readers.get(&segment) {
            return Ok(file.clone());
        }
        let path = Self::path(&self.dir, segment);
        let file = Arc::new(File::open(&path).map_err(|e| io_error("cannot open", &path, e))?);
        readers.insert(segment, file.clone());
        Ok(file)
    }

    /// The body at `location`, checked.
    pub fn read(&self, location: Location) -> Result<Vec<u8>> {
        let file = self.reader(location.segment)?;
        let path = Self::path(&self.dir, location.segment);
        let mut record = vec![0; HEADER + location.len as usize];
        file.read_exact_at(&mut record, location.offset)
            .map_err(|e| io_error("cannot read", &path, e))?;
        let bad = |what: &str| {
            Error::Storage(format!(
                "{}: record at {} {what}",
                path.display(),
                location.offset
            ))
        };
        let (header, body) = record.split_at(HEADER);
        let magic = header[..4].try_into().map(u32::from_le_bytes);
        if magic.ok().and_then(Kind::of_magic).is_none() {
            return Err(bad("has no record header"));
        }
        if header[4..8] != location.len.to_le_bytes() {
            return Err(bad("has another length"));
        }
        if header[8..] != check(body) {
            return Err(bad("does not match its checksum"));
        }
        Ok(body.to_vec())
    }

    /// Every valid record from `from` to the end of the log, in order:
    /// what a restarted node indexes again. A segment's records end at its
    /// first invalid one (a torn tail); an append's zero padding is skipped.
    pub fn scan(&self, from: Position) -> Result<Vec<(Kind, Location, Vec<u8>)>> {
        let mut found = Vec::new();
        for segment in self.segments()? {
            if segment < from.segment {
                continue;
            }
            let path = Self::path(&self.dir, segment);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("cannot read", &path, e)),
            };
            let mut at = if segment == from.segment {
                from.offset as usize
            } else {
                0
            };
            while at + HEADER <= bytes.len() {
                let record = crate::record::parse(&bytes, at)
                    .and_then(|(magic, body)| Some((Kind::of_magic(magic)?, body)));
                match record {
                    Some((kind, body)) => {
                        let location = Location {
                            segment,
                            offset: at as u64,
                            len: body.len() as u32,
                        };
                        found.push((kind, location, body.to_vec()));
                        at += HEADER + body.len();
                    }
                    // The zero padding after a group: the next one starts
                    // on a block boundary. Anything else is a torn group
                    // (the segment's last): what follows is not a record,
                    // even where its bytes (a client's) parse as one.
                    None if at % ALIGN != 0 && is_padding(&bytes, at) => {
                        at = align_up(at as u64) as usize
                    }
                    None => break,
                }
            }
        }
        Ok(found)
    }

    /// Deletes a segment that is not the active one.
    pub fn delete(&self, segment: u32) -> Result<()> {
        if segment == self.active_segment() {
            return Ok(());
        }
        self.readers.lock().remove(&segment);
        let path = Self::path(&self.dir, segment);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot delete", &path, e)),
        }
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| std::fs::metadata(Self::path(&self.dir, *s)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Starts a new segment now (tests; the log rotates by itself by size).
    #[doc(hidden)]
    pub fn rotate(&self) -> Result<()> {
        let mut active = self.active.lock();
        let next = active.segment + 1;
        *active = Self::open_segment(&self.dir, next)?;
        Ok(())
    }
}

/// Writes `bytes` as the whole content of a new file at `path` and syncs
/// it, bypassing the page cache where the file system allows (`scratch` is
/// a reusable buffer); for files written once and rarely read back.
pub fn write_file_direct(path: &Path, bytes: &[u8], scratch: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |flags: i32| {
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .custom_flags(flags)
            .open(path)
    };
    match open(libc::O_DIRECT) {
        Ok(file) => {
            let padded = align_up(bytes.len() as u64) as usize;
            let block = aligned(scratch, padded);
            block[..bytes.len()].copy_from_slice(bytes);
            block[bytes.len()..].fill(0);
            file.write_all_at(block, 0)?;
            file.set_len(bytes.len() as u64)?;
            file.sync_data()?;
            if scratch.len() > 8 * 1024 * 1024 {
                *scratch = Vec::new();
            }
            Ok(())
        }
        Err(_) => {
            let file = open(0)?;
            file.write_all_at(bytes, 0)?;
            file.sync_data()
        }
    }
}

/// `len` bytes of `buffer` starting at an `ALIGN` boundary (the buffer
/// grows as needed and is reused; the contents are whatever was there).
fn aligned(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len + ALIGN {
        buffer.resize(len + ALIGN, 0);
    }
    let start = buffer.as_ptr().align_offset(ALIGN);
    &mut buffer[start..start + len]
}

fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

/// Whether `bytes` are zeros from `at` to the next block boundary (or
/// their end).
fn is_padding(bytes: &[u8], at: usize) -> bool {
    let end = (align_up(at as u64) as usize).min(bytes.len());
    bytes[at..end].iter().all(|b| *b == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Appends `parts` to segment `segment` behind the log's back (a torn
    /// write); returns the segment's path.
    fn append_raw(dir: &Path, segment: u32, parts: &[&[u8]]) -> PathBuf {
        let path = BatchLog::path(dir, segment);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for part in parts {
            file.write_all(part).unwrap();
        }
        path
    }

    #[test]
    fn append_read_reopen_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let log = BatchLog::open(dir.path()).unwrap();
        let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 * usize::from(i)]).collect();
        let locs = log
            .append(bodies.iter().map(|b| (Kind::Batch, b.as_slice())))
            .unwrap()
            .locations;
        for (loc, body) in locs.iter().zip(&bodies) {
            assert_eq!(&log.read(*loc).unwrap(), body);
            assert_eq!(Location::from_bytes(&loc.to_bytes()), Some(*loc));
        }
        log.rotate().unwrap();
        let later = log
            .append([(Kind::Own, &b"after rotation"[..])])
            .unwrap()
            .locations;
        assert_eq!(later[0].segment, 1);
        if log.is_direct() {
            // Groups start on block boundaries.
            let len = std::fs::metadata(BatchLog::path(dir.path(), 0))
                .unwrap()
                .len();
            assert_eq!(len % ALIGN as u64, 0);
            assert_eq!(later[0].offset % ALIGN as u64, 0);
        }
        drop(log);
        // Reopened, the log appends to a new segment.
        let log = BatchLog::open(dir.path()).unwrap();
        assert_eq!(log.active_segment(), 2);
        assert_eq!(log.read(locs[3]).unwrap(), bodies[3]);
        assert_eq!(log.read(later[0]).unwrap(), b"after rotation");
        log.delete(0).unwrap();
        assert!(log.read(locs[3]).is_err());
        log.delete(1).unwrap();
        assert!(log.read(later[0]).is_err());
        log.delete(2).unwrap(); // the active segment stays
        assert_eq!(BatchLog::list(dir.path()).unwrap(), vec![2]);
        // Reopening with an empty newest segment keeps appending to it.
        drop(log);
        assert_eq!(BatchLog::open(dir.path()).unwrap().active_segment(), 2);
    }

    #[test]
    fn whole_files_written_direct_have_exact_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        for len in [0usize, 1, 4095, 4096, 4097, 100_000] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            write_file_direct(&path, &bytes, &mut scratch).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        // Overwriting a longer file leaves only the new bytes.
        let path = dir.path().join("f100000");
        write_file_direct(&path, b"short", &mut scratch).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn torn_tail_and_corruption_are_errors_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let log = BatchLog::open(dir.path()).unwrap();
        let first = log
            .append([(Kind::Batch, &[7u8; 300][..])])
            .unwrap()
            .locations[0];
        drop(log);
        // A crash in the middle of the next append: half a record.
        let path = append_raw(dir.path(), 0, &[&MAGIC.to_le_bytes(), &[1, 2, 3]]);
        let log = BatchLog::open(dir.path()).unwrap();
        let next = log.append([(Kind::Batch, &b"next"[..])]).unwrap().locations[0];
        assert_eq!(log.read(next).unwrap(), b"next");
        assert_eq!(log.read(first).unwrap(), vec![7u8; 300]);
        // A flipped byte in a body.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0], first.offset + HEADER as u64 + 10)
            .unwrap();
        let err = log.read(first).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        let wrong = Location { len: 5, ..next };
        assert!(log.read(wrong).is_err());
    }

    #[test]
    fn scan_finds_every_record_after_a_position_and_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = BatchLog::open(dir.path()).unwrap();
        let body = |i: u8| vec![i; 50 + 700 * usize::from(i)];
        let first = log
            .append([(Kind::Batch, &body(0)[..]), (Kind::Own, &body(1)[..])])
            .unwrap();
        let second = log
            .append([(Kind::Own, &body(2)[..]), (Kind::Batch, &body(3)[..])])
            .unwrap();
        let start = Position {
            segment: 0,
            offset: 0,
        };
        let all = log.scan(start).unwrap();
        let kinds: Vec<Kind> = all.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(kinds, [Kind::Batch, Kind::Own, Kind::Own, Kind::Batch]);
        for (i, (_, location, bytes)) in all.iter().enumerate() {
            assert_eq!(bytes, &body(i as u8));
            assert_eq!(log.read(*location).unwrap(), body(i as u8));
        }
        assert_eq!(all[2].1, second.locations[0]);
        // From the end of the first append: only the second.
        let later = log.scan(first.end).unwrap();
        assert_eq!(later.len(), 2);
        assert_eq!(later[0].1, second.locations[0]);
        assert!(log.scan(second.end).unwrap().is_empty());
        drop(log);
        // A torn append at the end of segment 0; the reopened log goes on
        // in segment 1, and the scan crosses to it.
        append_raw(
            dir.path(),
            0,
            &[&MAGIC_OWN.to_le_bytes(), &[200, 0, 0, 0, 9, 9, 9]],
        );
        let log = BatchLog::open(dir.path()).unwrap();
        let third = log.append([(Kind::Own, &body(4)[..])]).unwrap();
        assert_eq!(third.locations[0].segment, 1);
        let rest = log.scan(second.end).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, Kind::Own);
        assert_eq!(rest[0].2, body(4));
        assert_eq!(log.scan(start).unwrap().len(), 5);
    }

    /// A torn record's body is a client's bytes: a record that parses inside
    /// it (here at the next block boundary) is not indexed.
    #[test]
    fn scan_stops_at_a_torn_record_even_if_its_body_holds_a_valid_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = BatchLog::open(dir.path()).unwrap();
        let good = log.append([(Kind::Batch, &[5u8; 100][..])]).unwrap();
        drop(log);
        let len = std::fs::metadata(BatchLog::path(dir.path(), 0))
            .unwrap()
            .len() as usize;
        let forged = crate::record::encode(MAGIC_OWN, &[9u8; 64]).unwrap();
        // A group torn in its second record: an intact record, then one
        // claiming a long body, its bytes up to the next block boundary,
        // then the forged record.
        let claimed = u32::try_from(ALIGN + forged.len()).unwrap();
        let mut torn = crate::record::encode(MAGIC, &[6u8; 40]).unwrap();
        torn.extend_from_slice(&MAGIC.to_le_bytes());
        torn.extend_from_slice(&claimed.to_le_bytes());
        let gap = align_up((len + torn.len()) as u64) as usize - len - torn.len();
        torn.extend(std::iter::repeat_n(1u8, gap));
        append_raw(dir.path(), 0, &[&torn, &forged]);
        let log = BatchLog::open(dir.path()).unwrap();
        let found = log
            .scan(Position {
                segment: 0,
                offset: 0,
            })
            .unwrap();
        let bodies: Vec<&[u8]> = found.iter().map(|f| f.2.as_slice()).collect();
        assert_eq!(bodies, [&[5u8; 100][..], &[6u8; 40][..]]);
        assert_eq!(found[0].1, good.locations[0]);
    }
}
