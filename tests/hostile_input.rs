//! Stable-toolchain fuzzing of the entry points hostile bytes reach, in
//! process and bounded (runs in CI): the same targets as `fuzz/` (run with
//! cargo-fuzz and `RUSTC_BOOTSTRAP=1`, see docs/reliability.md), driven by
//! a seeded generator that mixes random bytes with mutations (bit flips,
//! byte sets, truncation, duplication, splicing, length-field smashing) of
//! valid encodings.
//!
//! - frame decoding: every message type a peer or client can send
//!   (`codec::decode` of consensus, mempool and sync messages, committed
//!   blocks, batches, output blocks), plus `payload::decode_certs`;
//! - every consensus message handler: `Core::handle` with decoded mutants
//!   and valid messages from any member, interleaved with timers;
//! - every mempool message handler: `Mempool::handle` likewise;
//! - the HTTP transaction bodies: `api::split_chunk` and the JSON body
//!   shape (the live server is attacked in `tests/byzantine.rs`).
//!
//! `ORDO_FUZZ_ITERS` scales the iteration counts (default 200000 each).
//! Crashes found are kept as regression cases in `regressions()` below.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use ordo_consensus::messages::{timeout_message, vote_message, Message};
use ordo_consensus::testing::Fixture;
use ordo_consensus::{Config as CConfig, Event as CEvent, Timeout, Timer as CTimer, Vote};
use ordo_mempool::{Batch, BatchAck, BatchCert, Mempool, Transaction};
use ordo_node::wire::{SyncMessage, SyncedBlock};
use ordo_types::codec::{decode, encode};
use ordo_types::Digest;

fn iters() -> usize {
    std::env::var("ORDO_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A mutant of `seed` (or of another seed spliced in).
    fn mutate(&mut self, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(8) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = [0, 1, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xff][self.below(8)];
                }
                2 => {
                    let keep = self.below(v.len() + 1);
                    v.truncate(keep);
                }
                3 if !v.is_empty() => {
                    // bincode varint length markers: make a length huge.
                    let i = self.below(v.len());
                    let tail = [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
                    for (k, b) in tail.iter().enumerate() {
                        if i + k < v.len() {
                            v[i + k] = *b;
                        }
                    }
                }
                4 if !v.is_empty() => {
                    let a = self.below(v.len());
                    let b = a + self.below(v.len() - a);
                    let chunk = v[a..b].to_vec();
                    let at = self.below(v.len());
                    v.splice(at..at, chunk);
                }
                5 if !others.is_empty() => {
                    let other = &others[self.below(others.len())];
                    let cut = self.below(v.len() + 1);
                    let from = self.below(other.len() + 1);
                    v.truncate(cut);
                    v.extend_from_slice(&other[from..]);
                }
                6 => {
                    let at = self.below(v.len() + 1);
                    let len = 1 + self.below(16);
                    let extra = self.bytes(len);
                    v.splice(at..at, extra);
                }
                _ => {
                    if !v.is_empty() {
                        let i = self.below(v.len());
                        v[i] = self.next() as u8;
                    }
                }
            }
        }
        v
    }

    /// Random bytes or a mutant of a seed.
    fn input(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        if seeds.is_empty() || self.below(4) == 0 {
            let len = self.below(300);
            self.bytes(len)
        } else {
            let seed = &seeds[self.below(seeds.len())];
            self.mutate(seed, seeds)
        }
    }
}

/// Valid consensus messages of every kind, from a fixture committee.
fn consensus_seeds(fx: &Fixture) -> Vec<Message> {
    let genesis = fx.genesis();
    let gqc = fx.genesis_qc();
    let item = b"certificate bytes".to_vec();
    let b1 = fx.block(1, 1, &genesis, &gqc, None, vec![item.clone()]);
    let qc1 = fx.qc(&b1);
    let b2 = fx.block(2, 2, &b1, &qc1, None, vec![]);
    let qc2 = fx.qc(&b2);
    let tc3 = fx.tc(3, &[2, 1], &qc2);
    let b4 = fx.block(4, 0, &b2, &qc2, Some(tc3.clone()), vec![item]);
    let mut out = vec![
        Message::Proposal(Box::new(b1.clone())),
        Message::Proposal(Box::new(b2.clone())),
        Message::Proposal(Box::new(b4.clone())),
        Message::Qc(Box::new(qc1.clone())),
        Message::Qc(Box::new(qc2.clone())),
        Message::Tc(Box::new(tc3)),
        Message::BlockRequest(b1.digest()),
        Message::BlockResponse(Box::new(b2.clone())),
    ];
    for (i, key) in fx.keys.iter().enumerate() {
        for (view, block) in [(1, &b1), (2, &b2), (4, &b4)] {
            out.push(Message::Vote(Vote {
                view,
                block: block.digest(),
                author: i as u16,
                signature: key.sign(&vote_message(view, &block.digest())),
                inclusion: None,
            }));
        }
        out.push(Message::Timeout(Box::new(Timeout {
            view: 3,
            high_qc: qc2.clone(),
            author: i as u16,
            signature: key.sign(&timeout_message(3, 2)),
            inclusion: None,
        })));
    }
    out
}

/// Valid mempool messages of every kind.
fn mempool_seeds(fx: &Fixture) -> Vec<ordo_mempool::Message> {
    let mut out = Vec::new();
    for author in 0..4u16 {
        let batch = Batch {
            author,
            seq: 1,
            txs: vec![
                Transaction::new(1, Bytes::from_static(b"hello")),
                Transaction::new(2, Bytes::from_static(b"world")),
            ],
        };
        let header = batch.header();
        let acks: Vec<BatchAck> = (0..4u16)
            .map(|s| BatchAck::sign(&header, s, &fx.keys[usize::from(s)]))
            .collect();
        let cert = BatchCert::new(
            &header,
            acks.iter()
                .take(3)
                .map(|a| (a.signer, a.signature))
                .collect(),
        );
        out.push(ordo_mempool::Message::Batch(batch.clone()));
        out.extend(acks.into_iter().map(ordo_mempool::Message::Ack));
        out.push(ordo_mempool::Message::Cert(cert));
        out.push(ordo_mempool::Message::BatchRequest {
            digest: batch.digest(),
        });
        out.push(ordo_mempool::Message::BatchResponse(batch));
    }
    out
}

fn sync_seeds(fx: &Fixture) -> Vec<SyncMessage> {
    let genesis = fx.genesis();
    let gqc = fx.genesis_qc();
    let b1 = fx.block(1, 1, &genesis, &gqc, None, vec![]);
    let qc1 = fx.qc(&b1);
    let committed = ordo_consensus::CommittedBlock {
        block: b1,
        cert: ordo_consensus::CommitCert {
            chain: vec![],
            qc: qc1,
        },
    };
    vec![
        SyncMessage::TipRequest,
        SyncMessage::Tip { height: 7 },
        SyncMessage::BlocksRequest { from: 1, count: 64 },
        SyncMessage::Blocks(vec![SyncedBlock {
            committed,
            pruned: false,
        }]),
    ]
}

/// Frame decoding: every type a peer can make a node decode. Must return
/// `Ok` or `Err`, never panic, never allocate beyond the codec limit.
#[test]
fn fuzz_frame_decoding_of_every_message_type_never_panics() {
    let fx = Fixture::new(4);
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    seeds.extend(consensus_seeds(&fx).iter().map(|m| encode(m).unwrap()));
    seeds.extend(mempool_seeds(&fx).iter().map(|m| encode(m).unwrap()));
    seeds.extend(sync_seeds(&fx).iter().map(|m| encode(m).unwrap()));
    let mut rng = Rng(0x5eed_0001);
    let mut decoded = [0usize; 6];
    let n = iters() * 3;
    for _ in 0..n {
        let input = rng.input(&seeds);
        decoded[0] += usize::from(decode::<Message>(&input).is_ok());
        decoded[1] += usize::from(decode::<ordo_mempool::Message>(&input).is_ok());
        decoded[2] += usize::from(decode::<SyncMessage>(&input).is_ok());
        decoded[3] += usize::from(decode::<ordo_client::OutputBlock>(&input).is_ok());
        decoded[4] += usize::from(decode::<Batch>(&input).is_ok());
        if let Ok(Message::Proposal(block)) = decode::<Message>(&input) {
            decoded[5] += usize::from(ordo_node::payload::decode_certs(&block.payload).is_ok());
        }
    }
    for r in regressions() {
        let _ = decode::<Message>(&r);
        let _ = decode::<ordo_mempool::Message>(&r);
        let _ = decode::<SyncMessage>(&r);
    }
    eprintln!("frame decoding: {n} inputs; decoded (consensus, mempool, sync, output, batch, certs) {decoded:?}");
    assert!(
        decoded[0] > 0 && decoded[1] > 0 && decoded[2] > 0,
        "mutants never decode: the fuzzer is not reaching the handlers"
    );
}

/// Every consensus message handler: decoded mutants and valid messages,
/// from any member, interleaved with timer events and payload, into a
/// core at genesis (and one that has advanced). No panic.
#[test]
fn fuzz_consensus_core_handle_never_panics() {
    let fx = Fixture::new(4);
    let seeds: Vec<Message> = consensus_seeds(&fx);
    let encoded: Vec<Vec<u8>> = seeds.iter().map(|m| encode(m).unwrap()).collect();
    let mut rng = Rng(0x5eed_0002);
    let mut handled = 0usize;
    let mut misbehaviour = 0usize;
    for me in 0..4u16 {
        let mut core = fx.core(me, CConfig::default());
        let mut now = 0u64;
        core.start(now);
        for k in 0..iters() / 2 {
            now += rng.below(50) as u64;
            let event = match rng.below(10) {
                0 => CEvent::TimerFired(if rng.below(2) == 0 {
                    CTimer::View(rng.below(8) as u64)
                } else {
                    CTimer::Propose(rng.below(8) as u64)
                }),
                1 => CEvent::PayloadAvailable(vec![{
                    let len = rng.below(64);
                    rng.bytes(len)
                }]),
                2..=4 => CEvent::Message {
                    from: rng.below(4) as u16,
                    message: seeds[rng.below(seeds.len())].clone(),
                },
                _ => {
                    let input = rng.input(&encoded);
                    match decode::<Message>(&input) {
                        Ok(message) => CEvent::Message {
                            from: rng.below(4) as u16,
                            message,
                        },
                        Err(_) => continue,
                    }
                }
            };
            let actions = core.handle(now, event);
            handled += 1;
            misbehaviour += actions
                .iter()
                .filter(|a| matches!(a, ordo_consensus::Action::Misbehaviour { .. }))
                .count();
            let _ = k;
        }
    }
    eprintln!("consensus handlers: {handled} events, {misbehaviour} misbehaviour reports");
    assert!(misbehaviour > 0);
}

/// Every mempool message handler, likewise.
#[test]
fn fuzz_mempool_handle_never_panics() {
    let fx = Fixture::new(4);
    let seeds = mempool_seeds(&fx);
    let encoded: Vec<Vec<u8>> = seeds.iter().map(|m| encode(m).unwrap()).collect();
    let mut rng = Rng(0x5eed_0003);
    let mut handled = 0usize;
    let mut refused = 0usize;
    for me in 0..4u16 {
        let mut mempool = Mempool::new(
            me,
            fx.keys[usize::from(me)].clone(),
            (*fx.committee).clone(),
            ordo_mempool::Config::default(),
            0,
        )
        .unwrap();
        let mut now = 0u64;
        for _ in 0..iters() / 2 {
            now += rng.below(50) as u64;
            let event = match rng.below(10) {
                0 => ordo_mempool::Event::Transactions(vec![Transaction::new(
                    rng.below(4) as u64,
                    {
                        let len = 1 + rng.below(64);
                        Bytes::from(rng.bytes(len))
                    },
                )]),
                1 => {
                    let certs = seeds
                        .iter()
                        .filter_map(|m| match m {
                            ordo_mempool::Message::Cert(c) => Some(c.clone()),
                            _ => None,
                        })
                        .take(rng.below(3))
                        .collect();
                    ordo_mempool::Event::Committed {
                        height: rng.below(100) as u64,
                        certs,
                    }
                }
                2..=4 => ordo_mempool::Event::Message {
                    from: rng.below(4) as u16,
                    message: seeds[rng.below(seeds.len())].clone(),
                },
                _ => {
                    let input = rng.input(&encoded);
                    match decode::<ordo_mempool::Message>(&input) {
                        Ok(message) => ordo_mempool::Event::Message {
                            from: rng.below(4) as u16,
                            message,
                        },
                        Err(_) => {
                            refused += 1;
                            continue;
                        }
                    }
                }
            };
            let _ = mempool.handle(now, event);
            handled += 1;
        }
    }
    eprintln!("mempool handlers: {handled} events ({refused} mutants did not decode)");
}

/// The HTTP chunk body splitter and the JSON transaction body.
#[test]
fn fuzz_http_transaction_bodies_never_panic() {
    let mut rng = Rng(0x5eed_0004);
    let mut seeds: Vec<Vec<u8>> = vec![
        [
            &3u32.to_be_bytes()[..],
            b"abc",
            &1u32.to_be_bytes()[..],
            b"z",
        ]
        .concat(),
        br#"{"namespace": 9, "payload": "aGVsbG8="}"#.to_vec(),
        br#"{"namespace": 1, "payload": ""}"#.to_vec(),
    ];
    seeds.push(u32::MAX.to_be_bytes().to_vec());
    let mut ok = 0usize;
    let n = iters() * 3;
    for _ in 0..n {
        let input = rng.input(&seeds);
        if let Ok(txs) = ordo_node::api::split_chunk(&Bytes::from(input.clone())) {
            assert!(txs.iter().all(|t| !t.is_empty()));
            assert_eq!(
                txs.iter().map(|t| t.len() + 4).sum::<usize>(),
                input.len(),
                "split_chunk lost or invented bytes"
            );
            ok += 1;
        }
        let _ = serde_json::from_slice::<serde_json::Value>(&input);
    }
    eprintln!("http bodies: {n} inputs, {ok} split cleanly");
}

/// Inputs that once crashed or hung a target, kept as regression cases
/// (see docs/reliability.md). Empty: none of the runs so far found one.
/// Every crash input kept under `fuzz/regressions/` (in subfolders per
/// target too), except the README.
fn regressions() -> Vec<Vec<u8>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_none_or(|e| e != "md") {
                if let Ok(bytes) = std::fs::read(&path) {
                    out.push(bytes);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions"),
        &mut out,
    );
    out
}

#[allow(dead_code)]
fn _uses(_: Arc<()>, _: Digest) {}
