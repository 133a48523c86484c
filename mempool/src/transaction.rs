//! Client transactions: an opaque payload tagged with a rollup namespace.

use bytes::Bytes;
use ordo_types::Digest;
use serde::{Deserialize, Serialize};

/// One client transaction. Ordo never looks inside `payload`; the
/// `namespace` names the rollup it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    pub namespace: u64,
    pub payload: Bytes,
}

impl Transaction {
    pub fn new(namespace: u64, payload: impl Into<Bytes>) -> Self {
        Transaction {
            namespace,
            payload: payload.into(),
        }
    }

    /// Names the transaction: blake3 over the namespace and payload, in the
    /// `ordo-tx` domain. Two submissions with equal digests are one.
    pub fn digest(&self) -> Digest {
        Digest::hasher("ordo-tx")
            .update_u64(self.namespace)
            .update(&self.payload)
            .finalize()
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
