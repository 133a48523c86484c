//! Client transactions: an opaque payload tagged with a rollup namespace.

use std::sync::OnceLock;

use bytes::Bytes;
use ordo_types::Digest;
use serde::{Deserialize, Serialize};

/// One client transaction. Ordo never looks inside `payload`; the
/// `namespace` names the rollup it belongs to.
///
/// The digest is computed once and kept (every node needs it at intake,
/// in the batch digest, for storage and for the output's dedupe): change
/// neither field after [`Transaction::digest`] was called.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    pub namespace: u64,
    pub payload: Bytes,
    /// Computed on first use, then kept.
    #[serde(skip)]
    digest: Local<OnceLock<Digest>>,
    /// When this node's intake accepted it: for the accept → commit latency.
    #[serde(skip)]
    accepted: Local<Option<std::time::Instant>>,
}

/// Node-local state carried with a transaction that takes no part in
/// equality, hashing, `Debug` or the wire format.
#[derive(Clone, Default)]
struct Local<T>(T);

impl<T> PartialEq for Local<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Local<T> {}

impl<T> std::hash::Hash for Local<T> {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl<T> std::fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Transaction {
    pub fn new(namespace: u64, payload: impl Into<Bytes>) -> Self {
        Transaction {
            namespace,
            payload: payload.into(),
            digest: Local::default(),
            accepted: Local::default(),
        }
    }

    /// Notes that this node's intake accepted the transaction now.
    pub fn mark_accepted(&mut self) {
        self.accepted = Local(Some(std::time::Instant::now()));
    }

    /// When this node's intake accepted it, if it did.
    pub fn accepted_at(&self) -> Option<std::time::Instant> {
        self.accepted.0
    }

    /// Names the transaction: blake3 over the namespace and payload, in the
    /// `ordo-tx` domain. Two submissions with equal digests are one.
    /// Computed on the first call, then kept.
    pub fn digest(&self) -> Digest {
        *self.digest.0.get_or_init(|| {
            Digest::hasher("ordo-tx")
                .update_u64(self.namespace)
                .update(&self.payload)
                .finalize()
        })
    }

    /// Computes the digests of many transactions at once (across SIMD
    /// lanes: several times faster than one by one for short transactions)
    /// and keeps them; those already known are left alone. Call it where
    /// transactions arrive in bulk, before anything asks for a digest.
    pub fn compute_digests(txs: &[Transaction]) {
        let todo: Vec<&Transaction> = txs
            .iter()
            .filter(|tx| tx.digest.0.get().is_none())
            .collect();
        if todo.is_empty() {
            return;
        }
        let items: Vec<(u64, &[u8])> = todo
            .iter()
            .map(|tx| (tx.namespace, &tx.payload[..]))
            .collect();
        for (tx, digest) in todo
            .iter()
            .zip(ordo_types::many::prefixed_u64("ordo-tx", &items))
        {
            let _ = tx.digest.0.set(digest);
        }
    }

    /// The size charged against every byte limit: the payload length.
    pub fn size(&self) -> usize {
        self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_digest_is_invisible_to_equality_and_the_wire() {
        let a = Transaction::new(7, &b"payload"[..]);
        let fresh = Transaction::new(7, &b"payload"[..]);
        let d = a.digest();
        assert_eq!(a, fresh, "a computed digest does not change equality");
        assert_eq!(
            ordo_types::codec::encode(&a).unwrap(),
            ordo_types::codec::encode(&fresh).unwrap()
        );
        let back: Transaction =
            ordo_types::codec::decode(&ordo_types::codec::encode(&a).unwrap()).unwrap();
        assert_eq!(back.digest(), d);
        assert_eq!(fresh.digest(), d);
    }

    #[test]
    fn digests_computed_in_bulk_are_the_one_by_one_digests() {
        let txs: Vec<Transaction> = (0..300u64)
            .map(|i| Transaction::new(i % 3, vec![i as u8; (i as usize * 7) % 1500]))
            .collect();
        let known = txs[5].digest();
        Transaction::compute_digests(&txs);
        assert_eq!(txs[5].digest(), known);
        for tx in &txs {
            let fresh = Transaction::new(tx.namespace, tx.payload.clone());
            assert_eq!(tx.digest(), fresh.digest());
        }
    }

    #[test]
    fn digest_binds_namespace_and_payload() {
        let a = Transaction::new(1, &b"x"[..]);
        assert_eq!(a.digest(), Transaction::new(1, &b"x"[..]).digest());
        assert_ne!(a.digest(), Transaction::new(2, &b"x"[..]).digest());
        assert_ne!(a.digest(), Transaction::new(1, &b"y"[..]).digest());
    }

    #[test]
    fn codec_round_trip() {
        let tx = Transaction::new(7, vec![1u8, 2, 3]);
        let bytes = ordo_types::codec::encode(&tx).unwrap();
        assert_eq!(
            ordo_types::codec::decode::<Transaction>(&bytes).unwrap(),
            tx
        );
    }
}
