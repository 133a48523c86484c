//! proptest strategies for the shared types and helpers for wire property
//! tests, shared by every crate's tests (feature `strategies`).

use proptest::collection::vec;
use proptest::prelude::*;

use crate::{Digest, Signature};

pub fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

pub fn signature() -> impl Strategy<Value = Signature> {
    any::<([u8; 32], [u8; 32])>().prop_map(|(r, s)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature(bytes)
    })
}

/// Up to `max - 1` arbitrary bytes.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Byte flips at arbitrary positions of an encoding.
pub fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    vec((any::<usize>(), 1u8..=255), 1..8)
}

/// A codec check (`crate::codec::check_*`) as a proptest result.
pub fn ok(check: Result<(), String>) -> Result<(), TestCaseError> {
    check.map_err(TestCaseError::fail)
}
