//! Shared vocabulary of Ordo: digests, ed25519 keys and signatures, the
//! committee, and the wire codec.
//!
//! Every other crate depends on this one and on nothing of ours below it.
//! Invariants kept here:
//! - a [`Digest`] is always blake3 over a domain-separated encoding;
//! - a [`Committee`] is never empty and never holds a key twice, so its
//!   thresholds (`f`, quorum `n - f`, validity `f + 1`) are always meaningful;
//! - [`codec::decode`] never panics and never allocates more than
//!   [`codec::MAX_MESSAGE_BYTES`] whatever bytes it is handed.

pub mod codec;
pub mod committee;
pub mod crypto;
pub mod digest;
mod error;
mod hex;
pub mod many;
#[cfg(feature = "strategies")]
pub mod strategies;

pub use committee::{Committee, Member, NodeIndex};
pub use crypto::{verify_batch, Keypair, PublicKey, Scheme, Signature};
pub use digest::{Digest, DigestMap, DigestSet, DigestState};
pub use error::{Error, Result};
