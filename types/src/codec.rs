//! The wire codec: bincode 2 (serde) with an explicit size limit.
//!
//! [`decode`] is the only way bytes from outside become values. It never
//! panics, refuses trailing bytes, and never allocates more than the limit:
//! bincode charges every length prefix against the limit before allocating.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The largest encoded message accepted anywhere (a full batch plus framing).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// The largest encoded block a node stores or serves to clients (a block's
/// batches together). Peer messages stay bound by [`MAX_MESSAGE_BYTES`].
pub const MAX_LOCAL_BYTES: usize = 256 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

fn local_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_LOCAL_BYTES>()
}

/// Encodes into a buffer of exactly the encoded size: one sizing pass, then
/// one write, instead of growing a `Vec` by doubling (for a batch of
/// hundreds of KiB: a dozen reallocations, copies and fresh pages).
fn encode_exact<T: Serialize + ?Sized, C: bincode::config::Config>(
    value: &T,
    config: C,
) -> Result<Vec<u8>> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config)
        .map_err(|e| Error::Encode(e.to_string()))?;
    let mut bytes = Vec::with_capacity(size.bytes_written);
    bincode::serde::encode_into_std_write(value, &mut bytes, config)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(bytes)
}

/// Encodes a value the node produced itself (a stored or served block), up
/// to [`MAX_LOCAL_BYTES`].
pub fn encode_local<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    encode_exact(value, local_config())
}

/// Decodes exactly one `T` of at most [`MAX_LOCAL_BYTES`]: for blocks read
/// from storage or from a node's API. Never panics on bad bytes.
pub fn decode_local<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_LOCAL_BYTES {
        return Err(Error::Decode(format!(
            "{} bytes exceeds the {MAX_LOCAL_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, local_config())
        .map_err(|e| Error::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(Error::TrailingBytes {
            len: bytes.len() - read,
        });
    }
    Ok(value)
}

/// Encodes `value`. Fails only if it exceeds [`MAX_MESSAGE_BYTES`].
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let bytes = encode_exact(value, config())?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Error::Encode(format!(
            "{} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes exactly one `T` from `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Error::Decode(format!(
            "{} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| Error::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(Error::TrailingBytes {
            len: bytes.len() - read,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;
    use crate::{Digest, Keypair, PublicKey, Signature};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        digest: Digest,
        key: PublicKey,
        signature: Signature,
        items: Vec<Vec<u8>>,
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX bytes: varint 0xFF then 8 bytes.
        let mut bytes = vec![0xFFu8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<u8>>(&bytes).is_err());
        assert!(decode::<Vec<Vec<u8>>>(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u64).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u64>(&bytes),
            Err(Error::TrailingBytes { len: 1 })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sample_round_trips(seed in any::<[u8; 32]>(), items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let k = Keypair::from_seed(seed);
            let value = Sample {
                digest: Digest::of(&seed),
                key: k.public(),
                signature: k.sign(&seed),
                items,
            };
            let bytes = encode(&value).unwrap();
            prop_assert_eq!(decode::<Sample>(&bytes).unwrap(), value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Sample>(&bytes);
            let _ = decode::<Digest>(&bytes);
            let _ = decode::<PublicKey>(&bytes);
            let _ = decode::<Signature>(&bytes);
        }
    }
}
