//! Catch-up: whom a node that is behind asks for committed blocks, and
//! checking what it gets back. Pure: the consensus driver feeds it peers'
//! answers and the time, and sends what it returns.
//!
//! Peers' committed heights come from their `Tip` answers and are claims, not
//! facts: a Byzantine peer may claim any height. So
//! - each peer's claim is its latest one, replaced (never maxed) by the next;
//! - the lag this node reports is measured against [`CatchUp::target`], the
//!   (f+1)-th highest claim: at least one honest peer vouches for it, so f
//!   liars cannot inflate it;
//! - a peer is asked for blocks when its own claim is ahead by more than
//!   [`SYNC_LAG`], one request at a time. A peer that does not back its
//!   claim (no answer within [`SYNC_TIMEOUT_MS`], or an answer that fails
//!   verification) is benched: its claims neither trigger requests nor count
//!   toward the target, for [`BENCH_MS`], doubling with each failure in a
//!   row. A liar therefore costs at most one timeout per bench period, never
//!   a spin of requests, and honest peers' claims drive catch-up meanwhile;
//! - every block received is verified ([`verify_synced`]) against this
//!   node's chain and the committee before it is stored.

use ordo_consensus::CommittedBlock;
use ordo_mempool::BatchCert;
use ordo_types::codec::encode;
use ordo_types::{Committee, Digest, NodeIndex};

use crate::payload::decode_certs;
use crate::storage::Storage;
use crate::wire::{SyncedBlock, MAX_SYNC_BLOCKS, MAX_SYNC_BYTES};

/// A peer this many heights ahead triggers catch-up; smaller lags are normal
/// and closed by consensus itself.
pub const SYNC_LAG: u64 = 8;
/// A sync request not answered within this long may go to another peer.
pub const SYNC_TIMEOUT_MS: u64 = 2_000;
/// How long a peer that did not back its claimed height is benched, the
/// first time in a row; each further failure doubles it, up to
/// `BENCH_MS << MAX_STRIKES`.
pub const BENCH_MS: u64 = 10_000;
const MAX_STRIKES: u32 = 5;

/// Ask `peer` for committed blocks from height `from` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlocksRequest {
    pub peer: NodeIndex,
    pub from: u64,
}

impl BlocksRequest {
    pub fn count(&self) -> u64 {
        MAX_SYNC_BLOCKS
    }
}

/// What a node knows about its peers' heights and its catch-up in flight.
#[derive(Debug)]
pub struct CatchUp {
    me: NodeIndex,
    /// Byzantine members tolerated.
    f: usize,
    /// Each peer's latest claimed committed height.
    claims: Vec<u64>,
    /// Until when each peer is benched (ms).
    benched_until_ms: Vec<u64>,
    /// Failures of each peer to back its claim, in a row.
    strikes: Vec<u32>,
    /// The request in flight: the peer and when it was sent.
    in_flight: Option<(NodeIndex, u64)>,
}

impl CatchUp {
    pub fn new(committee: &Committee, me: NodeIndex) -> Self {
        let n = committee.size();
        CatchUp {
            me,
            f: committee.f(),
            claims: vec![0; n],
            benched_until_ms: vec![0; n],
            strikes: vec![0; n],
            in_flight: None,
        }
    }

    fn is_peer(&self, peer: NodeIndex) -> bool {
        peer != self.me && usize::from(peer) < self.claims.len()
    }

    fn benched(&self, now_ms: u64, peer: NodeIndex) -> bool {
        self.benched_until_ms
            .get(usize::from(peer))
            .is_some_and(|until| now_ms < *until)
    }

    /// `peer` claims its committed height is `height`; this node's is
    /// `committed`. Returns the request to send if catch-up starts.
    pub fn on_tip(
        &mut self,
        now_ms: u64,
        peer: NodeIndex,
        height: u64,
        committed: u64,
    ) -> Option<BlocksRequest> {
        if !self.is_peer(peer) {
            return None;
        }
        self.claims[usize::from(peer)] = height;
        if self.in_flight.is_some()
            || self.benched(now_ms, peer)
            || height <= committed.saturating_add(SYNC_LAG)
        {
            return None;
        }
        Some(self.send(now_ms, peer, committed + 1))
    }

    fn send(&mut self, now_ms: u64, peer: NodeIndex, from: u64) -> BlocksRequest {
        self.in_flight = Some((peer, now_ms));
        BlocksRequest { peer, from }
    }

    /// The periodic tick: a request unanswered for [`SYNC_TIMEOUT_MS`] is
    /// given up and its peer benched.
    pub fn on_tick(&mut self, now_ms: u64) {
        if let Some((peer, sent_ms)) = self.in_flight {
            if now_ms >= sent_ms.saturating_add(SYNC_TIMEOUT_MS) {
                self.in_flight = None;
                self.bench(now_ms, peer);
            }
        }
    }

    fn bench(&mut self, now_ms: u64, peer: NodeIndex) {
        let i = usize::from(peer);
        let strikes = self.strikes[i].min(MAX_STRIKES);
        self.benched_until_ms[i] = now_ms.saturating_add(BENCH_MS << strikes);
        self.strikes[i] = self.strikes[i].saturating_add(1);
    }

    /// Whether blocks from `peer` answer the request in flight (which is
    /// then closed). Unasked-for blocks are ignored.
    pub fn take_answer(&mut self, peer: NodeIndex) -> bool {
        if self.in_flight.map(|(p, _)| p) != Some(peer) {
            return false;
        }
        self.in_flight = None;
        true
    }

    /// After an answer from `peer` was verified: `accepted` blocks of it
    /// were stored (this node's height is now `committed`), `refused`
    /// whether the rest failed verification. A peer that sent nothing
    /// valid, or anything invalid, is benched; one that served valid blocks
    /// and claims more is asked for the next ones.
    pub fn after_answer(
        &mut self,
        now_ms: u64,
        peer: NodeIndex,
        accepted: usize,
        refused: bool,
        committed: u64,
    ) -> Option<BlocksRequest> {
        if !self.is_peer(peer) {
            return None;
        }
        if refused || accepted == 0 {
            self.bench(now_ms, peer);
            return None;
        }
        self.strikes[usize::from(peer)] = 0;
        if self.claims[usize::from(peer)] > committed.saturating_add(SYNC_LAG) {
            return Some(self.send(now_ms, peer, committed + 1));
        }
        None
    }

    /// The height this node measures its lag against: the (f+1)-th highest
    /// latest claim of peers not benched (0 if fewer claim anything), so at
    /// least one honest peer claims as much.
    pub fn target(&self, now_ms: u64) -> u64 {
        let mut claims: Vec<u64> = (0..self.claims.len())
            .filter(|i| {
                let peer = *i as NodeIndex;
                self.is_peer(peer) && !self.benched(now_ms, peer)
            })
            .map(|i| self.claims[i])
            .collect();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        claims.get(self.f).copied().unwrap_or(0)
    }
}

/// Reads committed blocks `start..start+count` (at most [`MAX_SYNC_BYTES`]
/// of them, at least one), marking heights this node has pruned.
pub fn read_synced(storage: &Storage, start: u64, count: u64) -> crate::Result<Vec<SyncedBlock>> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let pruned_below = storage.pruned_below()?;
    for height in start..start.saturating_add(count.min(MAX_SYNC_BLOCKS)) {
        let Some(committed) = storage.committed(height)? else {
            break;
        };
        bytes += encode(&committed).map_or(usize::MAX / 2, |b| b.len());
        if !out.is_empty() && bytes > MAX_SYNC_BYTES {
            break;
        }
        out.push(SyncedBlock {
            committed,
            pruned: height < pruned_below,
        });
    }
    Ok(out)
}

/// Synced blocks that passed [`verify_synced`].
#[derive(Debug, Default)]
pub struct Verified {
    /// The valid prefix, in height order.
    pub blocks: Vec<CommittedBlock>,
    /// The batch certificates of each (`None`: the peer pruned its batches).
    pub certs: Vec<Option<Vec<BatchCert>>>,
    /// Why the rest was refused.
    pub fault: Option<String>,
}

/// Checks synced blocks one by one: contiguous heights from `tip + 1`,
/// parent links from `parent` (the digest of this node's block at `tip`),
/// the payload matching its header, a valid commit certificate, and valid
/// batch certificates. Returns the valid prefix and why the rest was
/// refused.
pub fn verify_synced(
    committee: &Committee,
    tip: u64,
    mut parent: Digest,
    blocks: Vec<SyncedBlock>,
) -> Verified {
    let mut verified = Verified::default();
    for (i, synced) in blocks.into_iter().enumerate() {
        let block = &synced.committed.block;
        let expected = tip + 1 + i as u64;
        let fault = if block.height() != expected {
            Some(format!(
                "height {} where {expected} was asked",
                block.height()
            ))
        } else if block.header.parent != parent {
            Some(format!("height {expected} does not extend our chain"))
        } else if ordo_consensus::messages::payload_digest(&block.payload, &block.inclusion)
            != block.header.payload
        {
            Some(format!(
                "height {expected}: payload does not match its header"
            ))
        } else if let Err(e) = synced.committed.cert.verify(&block.header, committee) {
            Some(format!("height {expected}: {e}"))
        } else {
            None
        };
        if fault.is_some() {
            verified.fault = fault;
            return verified;
        }
        let certs = if synced.pruned {
            // The peer no longer has the batches; the chain is still verified.
            None
        } else {
            let certs = match decode_certs(&block.payload) {
                Ok(certs) => certs,
                Err(e) => {
                    verified.fault = Some(format!("height {expected}: {e}"));
                    return verified;
                }
            };
            if let Some(e) = certs.iter().find_map(|c| c.verify(committee).err()) {
                verified.fault = Some(format!("height {expected}: batch certificate: {e}"));
                return verified;
            }
            Some(certs)
        };
        parent = block.digest();
        verified.certs.push(certs);
        verified.blocks.push(synced.committed);
    }
    verified
}

#[cfg(test)]
mod tests {
    use ordo_consensus::testing::Cluster;
    use ordo_consensus::{Block, Config};
    use ordo_mempool::{Batch, BatchAck};
    use ordo_types::{Keypair, Signature};

    use super::*;

    /// A certificate of a one-transaction batch, signed by `signers` (a
    /// forged one if `forge`).
    fn cert(keys: &[Keypair], seq: u64, signers: &[NodeIndex], forge: bool) -> BatchCert {
        let batch = Batch {
            author: 0,
            seq,
            txs: vec![ordo_mempool::Transaction::new(1, vec![seq as u8])],
        };
        let header = batch.header();
        let acks = signers
            .iter()
            .map(|i| {
                let ack = BatchAck::sign(&header, *i, &keys[usize::from(*i)]);
                (ack.signer, ack.signature)
            })
            .collect();
        let mut cert = BatchCert::new(&header, acks);
        if forge {
            cert.signatures[0].1 = Signature([7; 64]);
        }
        cert
    }

    /// `n` blocks committed by a 4-node cluster whose payload is batch
    /// certificates, the one of seq 3 forged if `forge`; and the committee.
    fn chain(n: u64, forge: bool) -> (Committee, Vec<SyncedBlock>) {
        let (committee, keys) = Committee::for_testing(4);
        let mut cluster = Cluster::new(4, Config::default(), 5, 0, 7);
        for seq in 0..6 {
            let item = ordo_types::codec::encode(&cert(&keys, seq, &[0, 1, 2], forge && seq == 3))
                .unwrap();
            for node in 0..4 {
                cluster.submit(node, vec![item.clone()]);
            }
        }
        assert!(cluster.run_until_height(n, 600_000));
        let blocks = cluster.committed(0)[..n as usize]
            .iter()
            .map(|committed| SyncedBlock {
                committed: committed.clone(),
                pruned: false,
            })
            .collect();
        (committee, blocks)
    }

    fn genesis(committee: &Committee) -> Digest {
        Block::genesis(committee.digest()).digest()
    }

    #[test]
    fn a_valid_chain_is_accepted_whole_with_its_certificates() {
        let (committee, blocks) = chain(6, false);
        let v = verify_synced(&committee, 0, genesis(&committee), blocks.clone());
        assert_eq!(v.fault, None);
        assert_eq!(v.blocks.len(), 6);
        let certs: usize = v.certs.iter().map(|c| c.as_ref().unwrap().len()).sum();
        assert!(certs >= 6, "the payload certificates came out: {certs}");
        // From the middle of the chain, linked to this node's block there.
        let parent = blocks[2].committed.block.digest();
        let v = verify_synced(&committee, 3, parent, blocks[3..].to_vec());
        assert_eq!((v.blocks.len(), v.fault), (3, None));
    }

    /// (what the forger changed → which block is refused); the valid prefix
    /// before it is kept.
    #[test]
    fn forged_responses_are_refused_from_the_first_bad_block() {
        let (committee, blocks) = chain(5, false);
        let genesis = genesis(&committee);
        type Forge = fn(&mut Vec<SyncedBlock>);
        let cases: Vec<(&str, Forge, usize, &str)> = vec![
            (
                "a height skipped",
                |b| drop(b.remove(2)),
                2,
                "where 3 was asked",
            ),
            (
                "wrong height in a block",
                |b| b[0].committed.block.header.height = 7,
                0,
                "where 1 was asked",
            ),
            (
                "broken parent link",
                |b| b[3].committed.block.header.parent = Digest::of(b"elsewhere"),
                3,
                "does not extend our chain",
            ),
            (
                "a block from another chain",
                |b| b[1] = b[0].clone(),
                1,
                "where 2 was asked",
            ),
            (
                "payload not matching the header",
                |b| {
                    b[2].committed.block.payload.items.push(vec![1, 2, 3]);
                },
                2,
                "payload does not match its header",
            ),
            (
                "bad commit-certificate signature",
                |b| b[1].committed.cert.qc.votes[0].1 = Signature([9; 64]),
                1,
                "height 2:",
            ),
            (
                "commit certificate of another block",
                |b| b[4].committed.cert = b[3].committed.cert.clone(),
                4,
                "height 5:",
            ),
        ];
        for (name, forge, refused_at, why) in cases {
            let mut forged = blocks.clone();
            forge(&mut forged);
            let v = verify_synced(&committee, 0, genesis, forged);
            assert_eq!(v.blocks.len(), refused_at, "{name}: {:?}", v.fault);
            assert_eq!(v.certs.len(), refused_at, "{name}");
            let fault = v.fault.unwrap_or_else(|| panic!("{name}: accepted"));
            assert!(fault.contains(why), "{name}: {fault}");
        }
        // Not linked to this node's chain at all.
        let v = verify_synced(&committee, 0, Digest::of(b"other"), blocks);
        assert!(v.blocks.is_empty() && v.fault.is_some());
    }

    #[test]
    fn a_committed_block_with_a_forged_batch_certificate_is_refused() {
        let (committee, blocks) = chain(6, true);
        let bad = blocks
            .iter()
            .position(|b| {
                decode_certs(&b.committed.block.payload)
                    .unwrap()
                    .iter()
                    .any(|c| c.verify(&committee).is_err())
            })
            .expect("the forged certificate was committed");
        let v = verify_synced(&committee, 0, genesis(&committee), blocks.clone());
        assert_eq!(v.blocks.len(), bad);
        let fault = v.fault.unwrap();
        assert!(
            fault.contains(&format!("height {}: batch certificate", bad + 1)),
            "{fault}"
        );
        // A peer that says it pruned the batches is not asked to show them:
        // the chain is still verified, and no certificates come out.
        let mut pruned = blocks;
        pruned[bad].pruned = true;
        let v = verify_synced(&committee, 0, genesis(&committee), pruned);
        assert_eq!(v.fault, None);
        assert_eq!(v.certs[bad], None);
    }

    fn committee4() -> Committee {
        Committee::for_testing(4).0
    }

    #[test]
    fn a_peers_claim_is_replaced_and_the_target_needs_f_plus_1_peers() {
        let mut c = CatchUp::new(&committee4(), 0);
        assert_eq!(c.target(0), 0);
        c.on_tip(0, 1, 500, 0);
        // One claim is not vouched for by an honest peer (f = 1).
        assert_eq!(c.target(0), 0);
        c.take_answer(1);
        c.on_tip(0, 2, 100, 0);
        assert_eq!(c.target(0), 100);
        // Fresher claims replace older ones, even lower ones.
        c.on_tip(0, 1, 90, 0);
        assert_eq!(c.target(0), 90);
        // A claim from outside the committee, or from itself, is ignored.
        assert_eq!(c.on_tip(0, 9, u64::MAX, 0), None);
        assert_eq!(c.on_tip(0, 0, u64::MAX, 0), None);
        assert_eq!(c.target(0), 90);
    }

    /// A peer claiming `u64::MAX` (and serving nothing) cannot inflate the
    /// lag, is benched after one timeout, and honest peers drive catch-up
    /// meanwhile; it gets one more try per (doubling) bench period.
    #[test]
    fn a_lying_peer_cannot_inflate_the_lag_or_stall_catch_up() {
        let mut c = CatchUp::new(&committee4(), 0);
        let liar = 3;
        let ask = |peer, from| Some(BlocksRequest { peer, from });
        assert_eq!(c.on_tip(0, liar, u64::MAX, 10), ask(liar, 11));
        c.on_tip(100, 1, 200, 10);
        c.on_tip(100, 2, 200, 10);
        assert_eq!(c.target(100), 200, "the lie does not count");
        // One request at a time: the honest claims wait for the liar's
        // answer...
        assert_eq!(c.on_tip(500, 1, 200, 10), None);
        // ...which never comes: benched, its claims ignored.
        c.on_tick(SYNC_TIMEOUT_MS);
        assert_eq!(c.on_tip(2_100, liar, u64::MAX, 10), None);
        assert_eq!(c.on_tip(2_200, 1, 200, 10), ask(1, 11));
        assert!(!c.take_answer(liar), "unasked-for blocks are ignored");
        assert!(c.take_answer(1));
        // Node 1 served 64 valid blocks and claims more: ask it again.
        assert_eq!(c.after_answer(2_300, 1, 64, false, 74), ask(1, 75));
        assert!(c.take_answer(1));
        assert_eq!(c.after_answer(2_400, 1, 64, false, 138), ask(1, 139));
        assert!(c.take_answer(1));
        // Caught up to within SYNC_LAG of every claim: done, no more requests.
        assert_eq!(c.after_answer(2_500, 1, 62, false, 200), None);
        assert_eq!(c.on_tip(2_600, 2, 205, 200), None);
        // After its bench the liar gets one more try, then a longer bench.
        let free = SYNC_TIMEOUT_MS + BENCH_MS;
        assert_eq!(c.on_tip(free, liar, u64::MAX, 200), ask(liar, 201));
        c.on_tick(free + SYNC_TIMEOUT_MS);
        let twice = free + SYNC_TIMEOUT_MS + 2 * BENCH_MS;
        assert_eq!(c.on_tip(twice - 1, liar, u64::MAX, 200), None);
        assert_eq!(c.on_tip(twice, liar, u64::MAX, 200), ask(liar, 201));
        assert_eq!(c.target(twice), 205);
    }

    #[test]
    fn a_peer_sending_forged_blocks_is_benched() {
        let mut c = CatchUp::new(&committee4(), 0);
        assert!(c.on_tip(0, 2, 1_000, 0).is_some());
        assert!(c.take_answer(2));
        // A valid prefix then a forgery: the prefix is kept, the peer benched.
        assert_eq!(c.after_answer(10, 2, 5, true, 5), None);
        assert_eq!(c.on_tip(20, 2, 1_000, 5), None);
        assert_eq!(c.target(20), 0);
        // An honest peer takes over.
        assert_eq!(
            c.on_tip(30, 1, 1_000, 5),
            Some(BlocksRequest { peer: 1, from: 6 })
        );
        // Nothing valid at all is a failure too.
        assert!(c.take_answer(1));
        assert_eq!(c.after_answer(40, 1, 0, false, 5), None);
        assert_eq!(c.on_tip(50, 1, 1_000, 5), None);
    }
}
