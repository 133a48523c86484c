//! The `local` data-availability backend: each block, `encode_local`
//! bincode, in its own file under a folder (default `<data_dir>/da`),
//! sharded by height: `<height / 10000, 8 digits>/<height, 20 digits>.block`.
//! A file is written to a temporary name, synced, then renamed, so a
//! published file is always whole; publishing the same height again
//! rewrites the same bytes (idempotent).

use std::path::PathBuf;

use ordo_types::Digest;

use super::{DataAvailability, Receipt};
use crate::error::{Error, Result};
use crate::output::OutputBlock;

/// Blocks per shard folder.
const SHARD: u64 = 10_000;

pub struct LocalDa {
    root: PathBuf,
    /// The aligned write buffer, reused.
    scratch: parking_lot::Mutex<Vec<u8>>,
}

impl LocalDa {
    /// The folder is created on the first publish (so a node whose DA
    /// folder cannot be written still starts; the backend reports it).
    pub fn new(root: PathBuf) -> Self {
        LocalDa {
            root,
            scratch: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The location of `height`, relative to the root.
    pub fn location(height: u64) -> String {
        format!("{:08}/{:020}.block", height / SHARD, height)
    }
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Backend(format!("local DA: cannot {what} {}: {e}", path.display()))
}

impl DataAvailability for LocalDa {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn publish(&self, block: &OutputBlock) -> Result<Receipt> {
        let bytes = ordo_types::codec::encode_local(block)?;
        let height = block.height();
        let location = Self::location(height);
        let path = self.root.join(&location);
        let dir = path
            .parent()
            .ok_or_else(|| Error::Backend("local DA: path without a folder".into()))?;
        std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
        let tmp = path.with_extension("tmp");
        // Written past the page cache (O_DIRECT where possible): a block
        // file is read back only by a fetch.
        crate::batch_log::write_file_direct(&tmp, &bytes, &mut self.scratch.lock())
            .map_err(|e| io_error("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error("rename", &path, e))?;
        Ok(Receipt {
            height,
            block: block.header.digest(),
            digest: Digest::of(&bytes),
            len: bytes.len() as u64,
            location,
        })
    }

    fn fetch(&self, receipt: &Receipt) -> Result<OutputBlock> {
        let path = self.root.join(&receipt.location);
        let bytes = std::fs::read(&path).map_err(|e| io_error("read", &path, e))?;
        if bytes.len() as u64 != receipt.len || Digest::of(&bytes) != receipt.digest {
            return Err(Error::Backend(format!(
                "local DA: {} does not match its receipt",
                path.display()
            )));
        }
        let block: OutputBlock = ordo_types::codec::decode_local(&bytes)?;
        if block.height() != receipt.height || block.header.digest() != receipt.block {
            return Err(Error::Backend(format!(
                "local DA: {} holds another block",
                path.display()
            )));
        }
        Ok(block)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::backends::db::BackendDb;
    use crate::backends::runner::{DaStage, Stage};

    /// A chain of `n` output blocks (real headers and certificates).
    pub fn blocks(n: u64) -> Vec<OutputBlock> {
        use ordo_consensus::testing::Cluster;
        let mut cluster = Cluster::new(4, ordo_consensus::Config::default(), 5, 0, 1);
        cluster.submit(0, vec![b"tx".to_vec()]);
        assert!(cluster.run_until_height(n, 600_000));
        cluster.committed(0)[..n as usize]
            .iter()
            .map(|c| OutputBlock {
                header: c.block.header.clone(),
                cert: c.cert.clone(),
                payload: c.block.payload.clone(),
                inclusion: c.block.inclusion.clone(),
                batches: vec![],
                skipped: vec![],
            })
            .collect()
    }

    #[test]
    fn publish_fetch_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let da = LocalDa::new(dir.path().join("da"));
        let chain = blocks(2);
        let receipt = da.publish(&chain[0]).unwrap();
        assert_eq!(receipt.height, 1);
        assert_eq!(da.fetch(&receipt).unwrap(), chain[0]);
        // Publishing again is idempotent.
        assert_eq!(da.publish(&chain[0]).unwrap(), receipt);
        // Tampered bytes are refused.
        let path = dir.path().join("da").join(&receipt.location);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(da.fetch(&receipt).is_err());
        // A receipt for another block is refused.
        let other = da.publish(&chain[1]).unwrap();
        let wrong = Receipt {
            block: receipt.block,
            ..other
        };
        assert!(da.fetch(&wrong).is_err());
    }

    #[test]
    fn an_unwritable_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let da = LocalDa::new(file.join("da"));
        assert!(da.publish(&blocks(1)[0]).is_err());
    }

    #[test]
    fn publishing_resumes_after_a_restart_at_the_first_unpublished_height() {
        let dir = tempfile::tempdir().unwrap();
        let chain = blocks(3);
        {
            let db = std::sync::Arc::new(BackendDb::open(dir.path()).unwrap());
            let mut stage =
                DaStage::new(Box::new(LocalDa::new(dir.path().join("da"))), db).unwrap();
            assert_eq!(stage.cursor(), 0);
            stage.process(&chain[0]).unwrap();
            stage.process(&chain[1]).unwrap();
        }
        let db = std::sync::Arc::new(BackendDb::open(dir.path()).unwrap());
        let mut stage =
            DaStage::new(Box::new(LocalDa::new(dir.path().join("da"))), db.clone()).unwrap();
        assert_eq!(stage.cursor(), 2);
        // A height already published is not published again.
        assert!(stage.process(&chain[1]).is_err());
        stage.process(&chain[2]).unwrap();
        let da = LocalDa::new(dir.path().join("da"));
        for (h, block) in (1..=3).zip(&chain) {
            let receipt = db.receipt(h).unwrap().unwrap();
            assert_eq!(&da.fetch(&receipt).unwrap(), block);
        }
    }
}
