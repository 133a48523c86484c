//! 32-byte blake3 digests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A blake3 digest. Everything content-addressed in Ordo (transactions,
/// batches, blocks) is named by one.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// A `HashMap` keyed by digests, hashed with [`DigestState`].
pub type DigestMap<V> = std::collections::HashMap<Digest, V, DigestState>;
/// A `HashSet` of digests, hashed with [`DigestState`].
pub type DigestSet = std::collections::HashSet<Digest, DigestState>;

/// Hashes a digest by mixing its first eight bytes with a per-process
/// random key (one 64×64→128-bit multiply), instead of running SipHash over
/// all 32: a digest is already uniformly distributed, and the key keeps a
/// client who grinds digests from aiming at one bucket. For the maps that
/// see every transaction (intake, output dedupe).
#[derive(Clone, Copy, Debug, Default)]
pub struct DigestState;

impl std::hash::BuildHasher for DigestState {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let key = *KEY.get_or_init(|| {
            std::collections::hash_map::RandomState::new().hash_one(0x6f72_646fu64)
        });
        DigestHasher(key)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
        // Longer inputs than a digest's prefix still count (not used by
        // `Digest`, which writes once).
        for chunk in bytes.get(8..).unwrap_or_default().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15_u128;
        (product >> 64) as u64 ^ product as u64
    }
}

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
    fn digest_maps_spread_and_find() {
        use std::hash::BuildHasher;
        let digests: Vec<Digest> = (0u64..10_000)
            .map(|i| Digest::of(&i.to_le_bytes()))
            .collect();
        let set: DigestSet = digests.iter().copied().collect();
        assert_eq!(set.len(), digests.len());
        assert!(digests.iter().all(|d| set.contains(d)));
        assert!(!set.contains(&Digest::of(b"absent")));
        // Low bits (what picks a bucket) are spread: 10,000 digests hit
        // nearly all of 1,024 buckets.
        let buckets: std::collections::HashSet<u64> = digests
            .iter()
            .map(|d| DigestState.hash_one(d) & 1023)
            .collect();
        assert!(buckets.len() > 1000, "{}", buckets.len());
    }

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
