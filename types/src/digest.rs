//! 32-byte blake3 digests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A blake3 digest. Everything content-addressed in Ordo (transactions,
/// batches, blocks) is named by one.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// A hasher that starts with a domain tag, so digests of different kinds
    /// of object can never collide by construction.
    pub fn hasher(domain: &str) -> Hasher {
        let mut inner = blake3::Hasher::new();
        inner.update(domain.as_bytes());
        inner.update(&[0]);
        Hasher(inner)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> crate::Result<Self> {
        crate::hex::decode_array(text).map(Digest)
    }
}

/// Incremental, domain-separated hashing; see [`Digest::hasher`].
pub struct Hasher(blake3::Hasher);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    pub fn update_u64(&mut self, value: u64) -> &mut Self {
        self.0.update(&value.to_le_bytes());
        self
    }

    pub fn finalize(&self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate() {
        let a = Digest::hasher("a").update(b"x").finalize();
        let b = Digest::hasher("b").update(b"x").finalize();
        assert_ne!(a, b);
        assert_ne!(a, Digest::of(b"x"));
    }

    #[test]
    fn hex_round_trip() {
        let d = Digest::of(b"ordo");
        assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
    }
}
