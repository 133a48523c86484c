//! Shared fixtures for the core tests.

use ordo_types::{Committee, Keypair, NodeIndex};

use crate::{Batch, BatchAck, BatchCert, Config, Mempool, Transaction};

pub fn config() -> Config {
    Config {
        batch_bytes: 100,
        batch_delay_ms: 10,
        max_batch_txs: 50,
        max_tx_bytes: 50,
        fetch_retry_ms: 100,
        inclusion_delay_ms: 500,
        ..Config::default()
    }
}

pub fn nodes(n: usize) -> (Committee, Vec<Keypair>, Vec<Mempool>) {
    let (committee, keys) = Committee::for_testing(n);
    let nodes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Mempool::new(i as NodeIndex, k.clone(), committee.clone(), config(), 0).unwrap()
        })
        .collect();
    (committee, keys, nodes)
}

pub fn tx(namespace: u64, payload: &str) -> Transaction {
    Transaction::new(namespace, payload.as_bytes().to_vec())
}

pub fn batch(author: NodeIndex, seq: u64, payloads: &[&str]) -> Batch {
    Batch {
        author,
        seq,
        txs: payloads.iter().map(|p| tx(0, p)).collect(),
    }
}

/// A certificate for `batch` signed by `signers`.
pub fn cert(keys: &[Keypair], batch: &Batch, signers: &[NodeIndex]) -> BatchCert {
    let header = batch.header();
    let signatures = signers
        .iter()
        .map(|&i| {
            // Non-members (tests of forged certificates) sign with some key.
            let ack = BatchAck::sign(&header, i, &keys[usize::from(i) % keys.len()]);
            (i, ack.signature)
        })
        .collect();
    BatchCert::new(&header, signatures)
}
