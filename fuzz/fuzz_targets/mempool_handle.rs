//! Every mempool message handler: a sequence of records fed to one
//! mempool.
//!
//! Besides raw frames (decoded as a peer's would be), a record can ask for
//! transactions, timers, batches from any author, correctly signed acks and
//! certificates (any signer set) for known batches, batch requests and
//! responses, and commits of certified batches: random bytes never carry a
//! valid signature, so without them the fuzzer would stop at verification.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ordo_consensus::testing::Fixture;
use ordo_fuzz::{fixture, Input, N};
use ordo_mempool::{
    Action, Batch, BatchAck, BatchCert, Config, Event, Mempool, Message, Timer, Transaction,
};
use ordo_types::codec::decode;

const MAX_BATCHES: usize = 64;

fn txs(input: &mut Input, count: u8) -> Vec<Transaction> {
    (0..count)
        .map(|_| {
            let len = usize::from(input.byte().unwrap_or(0) % 32);
            Transaction::new(u64::from(count), Bytes::copy_from_slice(input.bytes(len)))
        })
        .collect()
}

struct Run<'a> {
    fx: &'a Fixture,
    mempool: Mempool,
    now: u64,
    timers: Vec<Timer>,
    /// Every batch sent to or by the mempool.
    batches: Vec<Batch>,
}

impl Run<'_> {
    fn handle(&mut self, event: Event) {
        self.now += 10;
        for a in self.mempool.handle(self.now, event) {
            match a {
                Action::ScheduleTimer { timer, .. } => self.timers.push(timer),
                Action::Persist(batch) => self.remember(batch),
                _ => {}
            }
        }
    }
    fn remember(&mut self, batch: Batch) {
        if self.batches.len() < MAX_BATCHES && !self.batches.contains(&batch) {
            self.batches.push(batch);
        }
    }
    fn batch(&self, pick: u8) -> Option<&Batch> {
        (!self.batches.is_empty()).then(|| &self.batches[usize::from(pick) % self.batches.len()])
    }
    /// A certificate for a known batch signed by the members set in `mask`
    /// (0: the first quorum).
    fn cert(&self, pick: u8, mask: u8) -> Option<BatchCert> {
        let header = self.batch(pick)?.header();
        let signers: Vec<u16> = match (0..N as u16)
            .filter(|i| mask & (1 << i) != 0)
            .collect::<Vec<_>>()
        {
            s if s.is_empty() => (0..self.fx.committee.quorum() as u16).collect(),
            s => s,
        };
        let signatures = signers
            .iter()
            .map(|s| {
                (
                    *s,
                    BatchAck::sign(&header, *s, &self.fx.keys[usize::from(*s)]).signature,
                )
            })
            .collect();
        Some(BatchCert::new(&header, signatures))
    }
    fn message(&mut self, from: u8, message: Message) {
        let from = u16::from(from) % N as u16;
        self.handle(Event::Message { from, message });
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let mut input = Input::new(data);
    let me = u16::from(input.byte().unwrap_or(1)) % N as u16;
    let mempool = Mempool::new(
        me,
        fx.keys[usize::from(me)].clone(),
        (*fx.committee).clone(),
        Config::default(),
        0,
    )
    .expect("valid mempool");
    let mut run = Run {
        fx,
        mempool,
        now: 0,
        timers: Vec::new(),
        batches: Vec::new(),
    };
    let mut height = 0;
    while let Some(op) = input.byte() {
        let (Some(a), Some(b)) = (input.byte(), input.byte()) else {
            break;
        };
        match op % 10 {
            // A raw frame, decoded as a peer's would be.
            0 | 1 => {
                let (frame, from) = input.frame(a, b);
                if let Ok(message) = decode::<Message>(frame) {
                    run.message(from, message);
                }
            }
            // Client transactions.
            2 => {
                let txs = txs(&mut input, a % 8);
                run.handle(Event::Transactions(txs));
            }
            // A timer: the last one scheduled, or one for a known batch.
            3 => {
                let digest = run.batch(b).map(Batch::digest);
                let timer = match (a % 4, digest) {
                    (1, Some(d)) => Timer::Fetch(d),
                    (2, Some(d)) => Timer::Retransmit(d),
                    (3, _) => Timer::SealBatch,
                    _ => run.timers.pop().unwrap_or(Timer::SealBatch),
                };
                run.now += u64::from(b) * 100;
                run.handle(Event::TimerFired(timer));
            }
            // A batch by member `a % N` with seq `b`.
            4 => {
                let count = input.byte().unwrap_or(1) % 8;
                let batch = Batch {
                    author: u16::from(a) % N as u16,
                    seq: u64::from(b),
                    txs: txs(&mut input, count),
                };
                run.remember(batch.clone());
                run.message(a >> 2, Message::Batch(batch));
            }
            // An ack by member `a % N` for a known batch.
            5 => {
                if let Some(batch) = run.batch(b) {
                    let signer = u16::from(a) % N as u16;
                    let ack =
                        BatchAck::sign(&batch.header(), signer, &fx.keys[usize::from(signer)]);
                    run.message(a >> 2, Message::Ack(ack));
                }
            }
            // A certificate for a known batch signed by the members in `a`.
            6 => {
                if let Some(cert) = run.cert(b, a & 0x0f) {
                    run.message(a >> 4, Message::Cert(cert));
                }
            }
            // A batch request or response for a known batch.
            7 => {
                if let Some(batch) = run.batch(b).cloned() {
                    let message = if a & 1 == 0 {
                        Message::BatchRequest {
                            digest: batch.digest(),
                        }
                    } else {
                        Message::BatchResponse(batch)
                    };
                    run.message(a >> 1, message);
                }
            }
            // Consensus commits up to 3 certified known batches, at the next
            // height or (high bit of `a`) any.
            _ => {
                let certs = (0..a % 4)
                    .filter_map(|k| run.cert(b.wrapping_add(k), 0))
                    .collect();
                height = if a & 0x80 != 0 {
                    u64::from(b)
                } else {
                    height + 1
                };
                run.handle(Event::Committed { height, certs });
            }
        }
    }
});
