//! The checksummed record both append-only files use (`batches/*.seg`,
//! `votes.log`): `magic u32 | len u32 | check [u8; 16] | body`, little
//! endian, where `check` is the start of blake3 over the body. A torn or
//! overwritten record fails its check: an error or the end of the records,
//! never wrong bytes.

use std::path::Path;

use crate::error::{Error, Result};

/// Bytes before the body.
pub const HEADER: usize = 4 + 4 + 16;

/// The check of `body`.
pub fn check(body: &[u8]) -> [u8; 16] {
    let hash = ordo_types::Digest::of(body);
    let mut out = [0; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}

/// Writes the header of a record holding `body` into `header`
/// (`HEADER` bytes).
pub fn write_header(header: &mut [u8], magic: u32, body: &[u8]) -> Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| Error::Storage(format!("record of {} bytes", body.len())))?;
    header[..4].copy_from_slice(&magic.to_le_bytes());
    header[4..8].copy_from_slice(&len.to_le_bytes());
    header[8..HEADER].copy_from_slice(&check(body));
    Ok(())
}

/// The record holding `body`, header and all.
pub fn encode(magic: u32, body: &[u8]) -> Result<Vec<u8>> {
    let mut out = vec![0; HEADER + body.len()];
    write_header(&mut out, magic, body)?;
    out[HEADER..].copy_from_slice(body);
    Ok(out)
}

/// The record starting at `at` in `bytes` if it is whole and passes its
/// check: its magic and body.
pub fn parse(bytes: &[u8], at: usize) -> Option<(u32, &[u8])> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let magic = u32::from_le_bytes(header[..4].try_into().ok()?);
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let body = bytes.get(at + HEADER..(at + HEADER).checked_add(len)?)?;
    (header[8..] == check(body)).then_some((magic, body))
}

/// A storage error naming the file and what was being done to it.
pub fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

/// Makes a directory's entries (a created or renamed file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync", dir, e))
}
