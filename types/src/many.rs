//! Many short domain-separated digests at once, across SIMD lanes.
//!
//! A transaction's digest is blake3 over `domain || 0 || u64 || payload`.
//! Hashed one by one, a 512-byte transaction is nine compressions in a row
//! on one lane: blake3 only spreads work across SIMD lanes for inputs longer
//! than one 1 KiB chunk. A batch holds hundreds of transactions of a few
//! sizes, so [`prefixed_u64`] hashes them the way blake3 hashes the chunks
//! of one long input: every message of at most one chunk has all its blocks
//! but the last compressed in lock step with up to 16 others of the same
//! block count (`hash_many`), then its last block finishes it alone with
//! the `ROOT` flag. The result is bit-for-bit [`crate::Digest::hasher`]'s
//! (a proptest checks it against the one-by-one path).
//!
//! `hash_many` and `compress_in_place` are blake3's own kernels, reached
//! through its `platform` module, which blake3 keeps public but
//! undocumented; the workspace pins the exact blake3 version for that
//! reason. Longer messages take the ordinary path.

use blake3::platform::Platform;
use blake3::IncrementCounter;

use crate::Digest;

const BLOCK: usize = 64;
const CHUNK: usize = 1024;
const CHUNK_START: u8 = 1;
const CHUNK_END: u8 = 2;
const ROOT: u8 = 8;
/// blake3's initial chaining value (the SHA-256 IV, from the specification).
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];

/// The digests of `domain || 0 || value.to_le_bytes() || bytes` for every
/// `(value, bytes)` of `items`, in order: what
/// `Digest::hasher(domain).update_u64(value).update(bytes).finalize()` gives
/// each one.
pub fn prefixed_u64(domain: &str, items: &[(u64, &[u8])]) -> Vec<Digest> {
    let prefix_len = domain.len() + 1 + 8;
    let mut out = vec![Digest::ZERO; items.len()];
    // Messages of one chunk, grouped by how many whole blocks come before
    // their last one (0..=15); the rest hashed one by one.
    let mut groups: [Vec<usize>; CHUNK / BLOCK] = Default::default();
    for (i, (value, bytes)) in items.iter().enumerate() {
        let len = prefix_len + bytes.len();
        if len > CHUNK {
            out[i] = crate::Digest::hasher(domain)
                .update_u64(*value)
                .update(bytes)
                .finalize();
        } else {
            groups[(len - 1) / BLOCK].push(i);
        }
    }
    let platform = Platform::detect();
    let mut messages = Vec::new();
    let mut cvs = Vec::new();
    for (head_blocks, members) in groups.iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        // Each message laid out whole and zero-padded to a block boundary:
        // `head_blocks` blocks for the lanes, then its last block.
        let stride = (head_blocks + 1) * BLOCK;
        messages.clear();
        messages.resize(members.len() * stride, 0);
        for (slot, &i) in messages.chunks_exact_mut(stride).zip(members) {
            let (value, bytes) = items[i];
            let (tag, rest) = slot.split_at_mut(domain.len());
            tag.copy_from_slice(domain.as_bytes());
            rest[1..9].copy_from_slice(&value.to_le_bytes());
            rest[9..9 + bytes.len()].copy_from_slice(bytes);
        }
        cvs.clear();
        cvs.resize(members.len() * 32, 0);
        if head_blocks > 0 {
            hash_heads(&platform, head_blocks, stride, &messages, &mut cvs);
        } else {
            for cv in cvs.chunks_exact_mut(32) {
                cv.copy_from_slice(&words_to_bytes(&IV));
            }
        }
        let head = head_blocks * BLOCK;
        let start = if head_blocks == 0 { CHUNK_START } else { 0 };
        for ((slot, cv), &i) in messages
            .chunks_exact(stride)
            .zip(cvs.chunks_exact(32))
            .zip(members)
        {
            let tail_len = prefix_len + items[i].1.len() - head;
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(&slot[head..]);
            let mut cv = bytes_to_words(cv);
            platform.compress_in_place(
                &mut cv,
                &block,
                tail_len as u8,
                0,
                start | CHUNK_END | ROOT,
            );
            out[i] = Digest(words_to_bytes(&cv));
        }
    }
    out
}

/// Chaining values after the first `blocks` blocks of each message laid
/// out every `stride` bytes in `messages`, 32 bytes each into `cvs`.
fn hash_heads(platform: &Platform, blocks: usize, stride: usize, messages: &[u8], cvs: &mut [u8]) {
    fn run<const N: usize>(platform: &Platform, stride: usize, messages: &[u8], cvs: &mut [u8]) {
        let inputs: Vec<&[u8; N]> = messages
            .chunks_exact(stride)
            .filter_map(|slot| slot.get(..N).and_then(|head| head.try_into().ok()))
            .collect();
        platform.hash_many(
            &inputs,
            &IV,
            0,
            IncrementCounter::No,
            0,
            CHUNK_START,
            0,
            cvs,
        );
    }
    match blocks {
        1 => run::<{ BLOCK }>(platform, stride, messages, cvs),
        2 => run::<{ 2 * BLOCK }>(platform, stride, messages, cvs),
        3 => run::<{ 3 * BLOCK }>(platform, stride, messages, cvs),
        4 => run::<{ 4 * BLOCK }>(platform, stride, messages, cvs),
        5 => run::<{ 5 * BLOCK }>(platform, stride, messages, cvs),
        6 => run::<{ 6 * BLOCK }>(platform, stride, messages, cvs),
        7 => run::<{ 7 * BLOCK }>(platform, stride, messages, cvs),
        8 => run::<{ 8 * BLOCK }>(platform, stride, messages, cvs),
        9 => run::<{ 9 * BLOCK }>(platform, stride, messages, cvs),
        10 => run::<{ 10 * BLOCK }>(platform, stride, messages, cvs),
        11 => run::<{ 11 * BLOCK }>(platform, stride, messages, cvs),
        12 => run::<{ 12 * BLOCK }>(platform, stride, messages, cvs),
        13 => run::<{ 13 * BLOCK }>(platform, stride, messages, cvs),
        14 => run::<{ 14 * BLOCK }>(platform, stride, messages, cvs),
        _ => run::<{ 15 * BLOCK }>(platform, stride, messages, cvs),
    }
}

fn words_to_bytes(words: &[u32; 8]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

fn bytes_to_words(bytes: &[u8]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    words
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn one_by_one(domain: &str, items: &[(u64, &[u8])]) -> Vec<Digest> {
        items
            .iter()
            .map(|(value, bytes)| {
                Digest::hasher(domain)
                    .update_u64(*value)
                    .update(bytes)
                    .finalize()
            })
            .collect()
    }

    #[test]
    fn every_length_around_the_block_and_chunk_edges_matches() {
        // Every payload length from empty to past one chunk, many of each
        // so the SIMD lanes fill, in one call.
        let payloads: Vec<Vec<u8>> = (0..1100usize)
            .flat_map(|len| (0..3u8).map(move |k| vec![k.wrapping_add(len as u8); len]))
            .collect();
        let items: Vec<(u64, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64, p.as_slice()))
            .collect();
        assert_eq!(
            prefixed_u64("ordo-tx", &items),
            one_by_one("ordo-tx", &items)
        );
        assert!(prefixed_u64("ordo-tx", &[]).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_the_one_by_one_hasher(
            domain in "[a-z-]{0,40}",
            payloads in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..1400)), 0..40),
        ) {
            let items: Vec<(u64, &[u8])> = payloads.iter().map(|(v, p)| (*v, p.as_slice())).collect();
            prop_assert_eq!(prefixed_u64(&domain, &items), one_by_one(&domain, &items));
        }
    }
}
