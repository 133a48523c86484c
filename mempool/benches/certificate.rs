//! Certificate verification (one batch verification of `n - f` ed25519
//! signatures) for committees of 4, 16 and 64.
//!
//! `cargo bench -p ordo-mempool --bench certificate`
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ordo_mempool::{Batch, BatchAck, BatchCert, Transaction};
use ordo_types::{Committee, NodeIndex};

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("cert_verify");
    for n in [4usize, 16, 64] {
        let (committee, keys) = Committee::for_testing(n);
        let batch = Batch {
            author: 0,
            seq: 0,
            txs: vec![Transaction::new(1, vec![7u8; 512])],
        };
        let header = batch.header();
        let signatures = (0..committee.quorum())
            .map(|i| {
                let ack = BatchAck::sign(&header, i as NodeIndex, &keys[i]);
                (i as NodeIndex, ack.signature)
            })
            .collect();
        let cert = BatchCert::new(&header, signatures);
        cert.verify(&committee).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(n), &cert, |b, cert| {
            b.iter(|| cert.verify(&committee).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
