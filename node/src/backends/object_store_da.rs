//! The `object-store` data-availability backend (the `object_store` crate):
//! `file:///abs/path` (local filesystem), `memory://` (tests), and with the
//! `s3` cargo feature (on by default) `s3://bucket/prefix` on any
//! S3-compatible store (credentials, region and endpoint from the usual
//! `AWS_*` environment variables). Objects are named like the `local`
//! backend's files, under the URL's path; a put of the same height
//! overwrites the same bytes (idempotent).
//!
//! One call gives up after a few quick retries (about 10 s in all) instead of
//! `object_store`'s default three minutes, so a store that is down shows in
//! `/v1/status` soon; the backend runner then retries the height with its
//! own back-off.
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

type Options = std::collections::BTreeMap<String, String>;

/// Checks that `url` names a store this build supports, and that the
/// options are S3 settings `object_store` knows (and given only for S3).
pub fn check_url(url: &str, options: &Options) -> std::result::Result<(), String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("backends: object_store_url {url}: {e}"))?;
    match parsed.scheme() {
        "file" | "memory" if options.is_empty() => Ok(()),
        "file" | "memory" => Err(format!(
            "backends: object_store_options are S3 settings; {url} takes none"
        )),
        #[cfg(feature = "s3")]
        "s3" | "s3a" => options.keys().try_for_each(|key| {
            key.parse::<object_store::aws::AmazonS3ConfigKey>()
                .map(|_| ())
                .map_err(|_| format!("backends: object_store_options: unknown S3 setting {key}"))
        }),
        #[cfg(not(feature = "s3"))]
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
    pub fn new(url: &str, options: &Options) -> Result<Self> {
        check_url(url, options).map_err(Error::Backend)?;
        let parsed = url::Url::parse(url).map_err(backend_error)?;
        let (store, prefix): (Box<dyn ObjectStore>, ObjectPath) = match parsed.scheme() {
            #[cfg(feature = "s3")]
            "s3" | "s3a" => {
                // reqwest is built without a TLS crypto provider of its own
                // (the default one is a C build); use ring, as quinn does.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let retry = object_store::RetryConfig {
                    backoff: object_store::BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: std::time::Duration::from_secs(10),
                };
                let client = object_store::ClientOptions::new()
                    .with_connect_timeout(std::time::Duration::from_secs(5))
                    .with_timeout(std::time::Duration::from_secs(30));
                // Options last: an operator's timeout or `allow_http` wins.
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_retry(retry)
                    .with_client_options(client);
                for (key, value) in options {
                    let key = key.parse().map_err(backend_error)?;
                    builder = builder.with_config(key, value);
                }
                let store = builder.build().map_err(backend_error)?;
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
        let da = ObjectStoreDa::new(&url, &Options::new()).unwrap();
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

    /// Publishes and fetches through the S3 client against the signed
    /// S3-compatible test server; then the store goes down and comes back.
    #[cfg(feature = "s3")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_publish_fetch_and_outage() {
        use crate::backends::s3_test_server::S3TestServer;
        let server = S3TestServer::start().unwrap();
        let da = ObjectStoreDa::new("s3://chain/ordo/da", &server.options()).unwrap();
        let mut wrong_secret = server.options();
        wrong_secret.insert("secret_access_key".into(), "not-it".into());
        let forged = ObjectStoreDa::new("s3://chain/ordo/da", &wrong_secret).unwrap();
        let chain = blocks(3);
        let server = std::sync::Arc::new(server);
        let s = server.clone();
        tokio::task::spawn_blocking(move || {
            let r2 = da.publish(&chain[1]).unwrap();
            let r3 = da.publish(&chain[2]).unwrap();
            assert_eq!(da.fetch(&r2).unwrap(), chain[1]);
            assert_eq!(da.fetch(&r3).unwrap(), chain[2]);
            let objects = s.objects();
            let key = format!("/chain/ordo/da/{}", LocalDa::location(3));
            assert_eq!(objects.len(), 2, "{objects:?}");
            assert_eq!(objects[&key].len() as u64, r3.len);
            // The same height again is the same object, overwritten.
            assert_eq!(da.publish(&chain[2]).unwrap(), r3);
            assert_eq!(s.objects().len(), 2);
            assert_eq!(s.puts()[&key], 2);
            assert!(s.rejected().is_empty(), "{:?}", s.rejected());

            let err = forged.publish(&chain[0]).unwrap_err().to_string();
            assert!(s.rejected()[0].contains("signature mismatch"), "{err}");
            assert_eq!(s.objects().len(), 2);

            s.set_down(true);
            let started = std::time::Instant::now();
            assert!(da.publish(&chain[0]).is_err());
            assert!(da.fetch(&r2).is_err());
            // Gives up in seconds, not object_store's default minutes.
            assert!(started.elapsed() < std::time::Duration::from_secs(25));
            s.set_down(false);
            da.publish(&chain[0]).unwrap();
            assert_eq!(s.objects().len(), 3);
        })
        .await
        .unwrap();
    }

    /// The same client against an S3 implementation of someone else's, e.g.
    /// moto (see docs/backends.md): `ORDO_TEST_S3_ENDPOINT=http://127.0.0.1:5000
    /// ORDO_TEST_S3_BUCKET=ordo cargo test --release -p ordo-node --lib
    /// external_s3 -- --ignored`. The bucket must exist.
    #[cfg(feature = "s3")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs an S3 endpoint in ORDO_TEST_S3_ENDPOINT"]
    async fn external_s3_publish_and_fetch() {
        let endpoint = std::env::var("ORDO_TEST_S3_ENDPOINT").unwrap();
        let bucket = std::env::var("ORDO_TEST_S3_BUCKET").unwrap_or_else(|_| "ordo".into());
        let options = Options::from([
            ("endpoint".into(), endpoint),
            ("allow_http".into(), "true".into()),
            ("region".into(), "us-east-1".into()),
            ("access_key_id".into(), "testing".into()),
            ("secret_access_key".into(), "testing".into()),
        ]);
        let url = format!("s3://{bucket}/ordo-test/{}", std::process::id());
        let da = ObjectStoreDa::new(&url, &options).unwrap();
        let chain = blocks(3);
        tokio::task::spawn_blocking(move || {
            for block in &chain {
                let receipt = da.publish(block).unwrap();
                assert_eq!(&da.fetch(&receipt).unwrap(), block);
                let mut wrong = receipt.clone();
                wrong.len += 1;
                assert!(da.fetch(&wrong).is_err());
            }
        })
        .await
        .unwrap();
    }

    #[test]
    fn urls_are_checked() {
        let none = Options::new();
        assert!(check_url("file:///tmp/x", &none).is_ok());
        assert!(check_url("memory://", &none).is_ok());
        assert!(check_url("ftp://x", &none).is_err());
        assert!(check_url("not a url", &none).is_err());
        assert_eq!(
            check_url("s3://bucket/p", &none).is_ok(),
            cfg!(feature = "s3")
        );
        let endpoint = Options::from([("endpoint".into(), "http://127.0.0.1:9".into())]);
        assert_eq!(
            check_url("s3://b/p", &endpoint).is_ok(),
            cfg!(feature = "s3")
        );
        let err = check_url("file:///tmp/x", &endpoint).unwrap_err();
        assert!(err.contains("takes none"), "{err}");
        let typo = Options::from([("endpiont".into(), "x".into())]);
        assert!(check_url("s3://b/p", &typo).is_err());
    }
}
