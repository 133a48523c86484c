//! The `object-store` data-availability backend (the `object_store` crate):
//! `file:///abs/path` (local filesystem), `memory://` (tests), and with the
//! `s3` cargo feature `s3://bucket/prefix` (credentials and endpoint from
//! the usual `AWS_*` environment variables). Objects are named like the
//! `local` backend's files, under the URL's path; a put of the same height
//! overwrites the same bytes (idempotent).
//!
//! The trait is synchronous: the runner calls it on a blocking thread, where
//! this waits for the object store's futures on the node's runtime.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use ordo_types::Digest;

use super::local_da::LocalDa;
use super::{DataAvailability, Receipt};
use crate::error::{Error, Result};
use crate::output::OutputBlock;

pub struct ObjectStoreDa {
    store: Box<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: tokio::runtime::Handle,
}

fn backend_error(e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("object-store DA: {e}"))
}

/// Checks that `url` names a store this build supports.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("backends: object_store_url {url}: {e}"))?;
    match parsed.scheme() {
        "file" | "memory" => Ok(()),
        "s3" | "s3a" if cfg!(feature = "s3") => Ok(()),
        "s3" | "s3a" => Err(format!(
            "backends: object_store_url {url}: S3 needs an ordo built with the `s3` cargo feature"
        )),
        other => Err(format!(
            "backends: object_store_url {url}: unsupported scheme {other} (file, memory, s3)"
        )),
    }
}

impl ObjectStoreDa {
    /// Must be called inside the node's tokio runtime.
    pub fn new(url: &str) -> Result<Self> {
        check_url(url).map_err(Error::Backend)?;
        let parsed = url::Url::parse(url).map_err(backend_error)?;
        let (store, prefix): (Box<dyn ObjectStore>, ObjectPath) = match parsed.scheme() {
            #[cfg(feature = "s3")]
            "s3" | "s3a" => {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(backend_error)?;
                let prefix = ObjectPath::from_url_path(parsed.path()).map_err(backend_error)?;
                (Box::new(store), prefix)
            }
            _ => object_store::parse_url(&parsed).map_err(backend_error)?,
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(backend_error)?;
        Ok(ObjectStoreDa {
            store,
            prefix,
            runtime,
        })
    }

    fn path(&self, location: &str) -> ObjectPath {
        location
            .split('/')
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }
}

impl DataAvailability for ObjectStoreDa {
    fn kind(&self) -> &'static str {
        "object-store"
    }

    fn publish(&self, block: &OutputBlock) -> Result<Receipt> {
        let bytes = ordo_types::codec::encode_local(block)?;
        let height = block.height();
        let location = LocalDa::location(height);
        let receipt = Receipt {
            height,
            block: block.header.digest(),
            digest: Digest::of(&bytes),
            len: bytes.len() as u64,
            location: location.clone(),
        };
        let path = self.path(&location);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map_err(backend_error)?;
        Ok(receipt)
    }

    fn fetch(&self, receipt: &Receipt) -> Result<OutputBlock> {
        let path = self.path(&receipt.location);
        let bytes = self
            .runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map_err(backend_error)?;
        if bytes.len() as u64 != receipt.len || Digest::of(&bytes) != receipt.digest {
            return Err(backend_error(format!("{path} does not match its receipt")));
        }
        let block: OutputBlock = ordo_types::codec::decode_local(&bytes)?;
        if block.height() != receipt.height || block.header.digest() != receipt.block {
            return Err(backend_error(format!("{path} holds another block")));
        }
        Ok(block)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backends::local_da::tests::blocks;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_and_fetch_on_the_local_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/objects", dir.path().display());
        std::fs::create_dir_all(dir.path().join("objects")).unwrap();
        let da = ObjectStoreDa::new(&url).unwrap();
        let chain = blocks(2);
        let (receipt, fetched, file) = tokio::task::spawn_blocking(move || {
            let receipt = da.publish(&chain[1]).unwrap();
            let fetched = da.fetch(&receipt).unwrap();
            assert_eq!(fetched, chain[1]);
            let mut wrong = receipt.clone();
            wrong.digest = Digest::ZERO;
            assert!(da.fetch(&wrong).is_err());
            (receipt, fetched, LocalDa::location(2))
        })
        .await
        .unwrap();
        assert_eq!(receipt.height, 2);
        assert_eq!(fetched.height(), 2);
        assert!(dir.path().join("objects").join(file).exists());
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("file:///tmp/x").is_ok());
        assert!(check_url("memory://").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("not a url").is_err());
        assert_eq!(check_url("s3://bucket/p").is_ok(), cfg!(feature = "s3"));
    }
}
