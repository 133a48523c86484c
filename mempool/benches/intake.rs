//! Intake throughput: 512-byte transactions submitted and drained.
//!
//! `cargo bench -p ordo-mempool --bench intake`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ordo_mempool::{Intake, IntakeConfig, Transaction};

const TX_BYTES: usize = 512;
const TXS: usize = 10_000;

fn transactions(count: usize, salt: u64) -> Vec<Transaction> {
    (0..count as u64)
        .map(|i| {
            let mut payload = vec![0u8; TX_BYTES];
            payload[..8].copy_from_slice(&i.to_le_bytes());
            payload[8..16].copy_from_slice(&salt.to_le_bytes());
            Transaction::new(i % 16, payload)
        })
        .collect()
}

fn roomy() -> IntakeConfig {
    IntakeConfig {
        max_bytes: 2 * TXS * TX_BYTES,
        max_count: 2 * TXS,
        max_per_namespace: 2 * TXS,
        max_tx_bytes: TX_BYTES,
        recent_digests: 4 * TXS,
    }
}

/// Submits every transaction, then drains in 512 KiB batches.
fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("intake");
    group.throughput(Throughput::Elements(TXS as u64));
    group.bench_function("submit_drain_512B_1_thread", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for iter in 0..iters {
                let txs = transactions(TXS, iter);
                let intake = Intake::new(roomy());
                let start = Instant::now();
                for tx in txs {
                    intake.submit(tx).unwrap();
                }
                while !intake.drain(512 * 1024, 10_000).is_empty() {}
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// Two producer threads submit half each while the caller drains.
fn two_producers(c: &mut Criterion) {
    let mut group = c.benchmark_group("intake");
    group.throughput(Throughput::Elements(TXS as u64));
    group.bench_function("submit_drain_512B_2_producers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for iter in 0..iters {
                let mut halves = transactions(TXS, iter);
                let second = halves.split_off(TXS / 2);
                let intake = Arc::new(Intake::new(roomy()));
                let start = Instant::now();
                let producers: Vec<_> = [halves, second]
                    .into_iter()
                    .map(|txs| {
                        let intake = Arc::clone(&intake);
                        std::thread::spawn(move || {
                            for tx in txs {
                                intake.submit(tx).unwrap();
                            }
                        })
                    })
                    .collect();
                let mut drained = 0;
                while drained < TXS {
                    drained += intake.drain(512 * 1024, 10_000).len();
                }
                for p in producers {
                    p.join().unwrap();
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, two_producers);
criterion_main!(benches);
