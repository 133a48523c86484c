//! ed25519 keys and signatures (ed25519-dalek), with batch verification.
//!
//! [`PublicKey`] and [`Signature`] are plain byte arrays so they hash, order
//! and encode cheaply; a [`crate::Committee`] keeps the decompressed keys it
//! verifies with.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// An ed25519 public key, 32 bytes (compressed Edwards point).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The decompressed key; fails for bytes that are not a valid point.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).map_err(|e| Error::InvalidKey(e.to_string()))
    }

    /// Verifies `signature` over `message` (strict: rejects weak keys and
    /// malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        verify_with(&self.verifying_key()?, message, signature)
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self> {
        let key = PublicKey(crate::hex::decode_array(text)?);
        key.verifying_key()?;
        Ok(key)
    }
}

/// Verifies one signature with an already decompressed key.
pub fn verify_with(key: &VerifyingKey, message: &[u8], signature: &Signature) -> Result<()> {
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &signature)
        .map_err(|_| Error::InvalidSignature)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        PublicKey::from_hex(text)
    }
}

/// An ed25519 signature, 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// An all-zero signature: never valid, handy as a placeholder in tests
    /// and for the genesis block, which nobody signs.
    pub const ZERO: Signature = Signature([0; 64]);
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &crate::hex::encode(&self.0[..6]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Signature;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }

            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> std::result::Result<Signature, E> {
                let bytes: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(bytes))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A node's signing key. Never serialized by serde: key files go through
/// [`Keypair::to_secret_hex`] so a secret is only written where asked.
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
    scheme: Scheme,
}

/// How signatures are made and checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheme {
    /// ed25519: what every real node uses.
    #[default]
    Ed25519,
    /// **Simulation only.** A "signature" is a keyed blake3 hash of the
    /// public key and the message: about a hundred times cheaper than
    /// ed25519 and detects any corrupted or misattributed signature, but
    /// anyone who knows the public key can forge it. The deterministic
    /// simulator uses it so thousands of views run per wall-second; no
    /// configuration of the node can select it.
    InsecureSimulated,
}

impl Scheme {
    pub(crate) fn simulated_signature(key: &PublicKey, message: &[u8]) -> Signature {
        let mut hasher = blake3::Hasher::new_keyed(&key.0);
        hasher.update(b"ordo-simulated-signature");
        hasher.update(message);
        let mut out = [0u8; 64];
        hasher.finalize_xof().fill(&mut out);
        Signature(out)
    }
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| Error::InvalidKey(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// A key from a 32-byte seed: deterministic, for tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        Keypair {
            signing,
            public,
            scheme: Scheme::Ed25519,
        }
    }

    /// The same key under the insecure simulated scheme (see
    /// [`Scheme::InsecureSimulated`]): for the simulator only.
    pub fn insecure_simulated(mut self) -> Self {
        self.scheme = Scheme::InsecureSimulated;
        self
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        match self.scheme {
            Scheme::Ed25519 => Signature(self.signing.sign(message).to_bytes()),
            Scheme::InsecureSimulated => Scheme::simulated_signature(&self.public, message),
        }
    }

    /// The 32-byte seed, for key files.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn to_secret_hex(&self) -> String {
        crate::hex::encode(&self.signing.to_bytes())
    }

    pub fn from_secret_hex(text: &str) -> Result<Self> {
        crate::hex::decode_array(text).map(Self::from_seed)
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair {
            scheme: self.scheme,
            ..Keypair::from_seed(self.seed())
        }
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public)
    }
}

/// Verifies many `(message, signature, key)` triples at once. Batch
/// verification is roughly twice as fast as one-by-one for large batches; on
/// failure it does not say which triple was bad, so callers that need to
/// blame a signer fall back to [`verify_with`] one by one.
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Result<()> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(Error::InvalidSignature);
    }
    match messages.len() {
        0 => Ok(()),
        1 => verify_with(&keys[0], messages[0], &signatures[0]),
        _ => {
            let sigs: Vec<ed25519_dalek::Signature> = signatures
                .iter()
                .map(|s| ed25519_dalek::Signature::from_bytes(&s.0))
                .collect();
            ed25519_dalek::verify_batch(messages, &sigs, keys).map_err(|_| Error::InvalidSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Keypair {
        Keypair::from_seed([i; 32])
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig).is_ok());
        assert!(k.public().verify(b"hellO", &sig).is_err());
        assert!(key(2).public().verify(b"hello", &sig).is_err());
    }

    #[test]
    fn batch_detects_one_bad_signature() {
        let keys: Vec<Keypair> = (0..8).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let vks: Vec<VerifyingKey> = keys
            .iter()
            .map(|k| k.public().verifying_key().unwrap())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        assert!(verify_batch(&refs, &sigs, &vks).is_ok());
        sigs[5] = keys[5].sign(b"other");
        assert!(verify_batch(&refs, &sigs, &vks).is_err());
        assert!(verify_batch(&refs[..3], &sigs, &vks).is_err());
    }

    #[test]
    fn secret_hex_round_trip() {
        let k = key(7);
        let back = Keypair::from_secret_hex(&k.to_secret_hex()).unwrap();
        assert_eq!(back.public(), k.public());
    }

    #[test]
    fn public_key_hex_rejects_non_points() {
        // Not every 32-byte string decompresses to a curve point.
        let bad = (0u8..=255)
            .map(|b| crate::hex::encode(&[b; 32]))
            .find(|h| PublicKey::from_hex(h).is_err());
        assert!(bad.is_some());
    }
}
