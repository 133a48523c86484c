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

/// For property tests of a wire type: `value` encodes, decodes to an equal
/// value, and that re-encodes to the same bytes. The error says which step
/// failed.
pub fn check_round_trip<T>(value: &T) -> std::result::Result<(), String>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = encode(value).map_err(|e| format!("encode: {e}"))?;
    let back: T = decode(&bytes).map_err(|e| format!("decode: {e}"))?;
    if back != *value {
        return Err(format!("decoded {back:?}, expected {value:?}"));
    }
    let again = encode(&back).map_err(|e| format!("re-encode: {e}"))?;
    if again != bytes {
        return Err("re-encoding gave other bytes".into());
    }
    Ok(())
}

/// For property tests of a wire type: decoding arbitrary `bytes` as `T`
/// returns an error, or a value that re-encodes (to at most as many bytes)
/// and decodes to itself. A panic anywhere fails the test by itself.
pub fn check_arbitrary_bytes<T>(bytes: &[u8]) -> std::result::Result<(), String>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = decode::<T>(bytes) else {
        return Ok(());
    };
    let again = encode(&value).map_err(|e| format!("re-encode of {value:?}: {e}"))?;
    if again.len() > bytes.len() {
        return Err(format!(
            "{} bytes decoded to a value whose encoding takes {}",
            bytes.len(),
            again.len()
        ));
    }
    check_round_trip(&value)
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

    fn signature(halves: ([u8; 32], [u8; 32])) -> Signature {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&halves.0);
        bytes[32..].copy_from_slice(&halves.1);
        Signature(bytes)
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<([u8; 32], [u8; 32])>(),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        )
            .prop_map(|(digest, key, halves, items)| Sample {
                digest: Digest(digest),
                key: PublicKey(key),
                signature: signature(halves),
                items,
            })
    }

    fn ok(check: std::result::Result<(), String>) -> std::result::Result<(), TestCaseError> {
        check.map_err(TestCaseError::fail)
    }

    /// Random bytes, mostly short, some exactly as long as a fixed-size
    /// type's encoding (so that those decode and get re-encoded).
    fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            proptest::collection::vec(any::<u8>(), 31..=33),
            proptest::collection::vec(any::<u8>(), 64..=66),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn digest_round_trips(bytes in any::<[u8; 32]>()) {
            ok(check_round_trip(&Digest(bytes)))?;
        }

        #[test]
        fn public_key_round_trips(bytes in any::<[u8; 32]>()) {
            ok(check_round_trip(&PublicKey(bytes)))?;
        }

        #[test]
        fn signature_round_trips(halves in any::<([u8; 32], [u8; 32])>()) {
            ok(check_round_trip(&signature(halves)))?;
        }

        #[test]
        fn sample_round_trips(value in sample()) {
            ok(check_round_trip(&value))?;
        }

        /// Real keys and signatures survive the trip and still verify.
        #[test]
        fn signed_sample_round_trips(seed in any::<[u8; 32]>()) {
            let k = Keypair::from_seed(seed);
            let value = Sample {
                digest: Digest::of(&seed),
                key: k.public(),
                signature: k.sign(&seed),
                items: vec![seed.to_vec()],
            };
            let back: Sample = decode(&encode(&value).unwrap()).unwrap();
            prop_assert!(back.key.verify(&seed, &back.signature).is_ok());
            prop_assert_eq!(back, value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn random_bytes_as_digest(bytes in arbitrary_bytes()) {
            ok(check_arbitrary_bytes::<Digest>(&bytes))?;
        }

        #[test]
        fn random_bytes_as_public_key(bytes in arbitrary_bytes()) {
            ok(check_arbitrary_bytes::<PublicKey>(&bytes))?;
        }

        #[test]
        fn random_bytes_as_signature(bytes in arbitrary_bytes()) {
            ok(check_arbitrary_bytes::<Signature>(&bytes))?;
        }

        #[test]
        fn random_bytes_as_sample(bytes in arbitrary_bytes()) {
            ok(check_arbitrary_bytes::<Sample>(&bytes))?;
        }
    }
}
