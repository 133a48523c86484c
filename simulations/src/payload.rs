//! Consensus payload items are encoded batch certificates, as in the node
//! (`node/src/payload.rs`): the same encoding, the same inclusion-list key
//! and the same payload rule (valid certificates of this committee, each at
//! most once per proposal).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ordo_consensus::{Payload, PayloadItem, PayloadRules};
use ordo_mempool::BatchCert;
use ordo_types::codec::{decode, encode};
use ordo_types::{Committee, Digest, DigestSet};

/// Names a payload item for inclusion lists: the digest of the batch its
/// certificate certifies (an undecodable item by its own digest).
pub fn cert_key(item: &[u8]) -> Digest {
    decode::<BatchCert>(item).map_or_else(|_| Digest::of(item), |cert| cert.batch)
}

pub fn encode_cert(cert: &BatchCert) -> Option<PayloadItem> {
    encode(cert).ok()
}

/// The certificates of a payload, in order.
pub fn decode_certs(payload: &Payload) -> Result<Vec<BatchCert>, String> {
    payload
        .items
        .iter()
        .map(|item| decode::<BatchCert>(item).map_err(|e| format!("payload item: {e}")))
        .collect()
}

/// Most certificates remembered as verified.
const MAX_VERIFIED: usize = 65_536;

/// Encoded certificates known to verify, by the digest of their bytes
/// (bounded, oldest forgotten first). One memo serves every host of a run:
/// whether a certificate verifies is a pure function of its bytes and the
/// committee, so sharing it changes no outcome, only the time spent.
#[derive(Default)]
pub struct VerifiedCerts {
    inner: Mutex<(DigestSet, VecDeque<Digest>)>,
}

impl VerifiedCerts {
    pub fn insert(&self, item: &[u8]) {
        let digest = Digest::of(item);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.0.insert(digest) {
            inner.1.push_back(digest);
            if inner.1.len() > MAX_VERIFIED {
                if let Some(old) = inner.1.pop_front() {
                    inner.0.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, item: &[u8]) -> bool {
        self.inner
            .lock()
            .is_ok_and(|inner| inner.0.contains(&Digest::of(item)))
    }
}

/// A proposal's payload must be valid batch certificates of this committee,
/// each at most once (the node's `CertRules`).
pub struct CertRules {
    committee: Arc<Committee>,
    verified: Arc<VerifiedCerts>,
}

impl CertRules {
    pub fn new(committee: Arc<Committee>, verified: Arc<VerifiedCerts>) -> Self {
        CertRules {
            committee,
            verified,
        }
    }
}

impl PayloadRules for CertRules {
    fn check(&self, payload: &Payload) -> Result<(), String> {
        let certs = decode_certs(payload)?;
        let mut seen = DigestSet::default();
        for (cert, item) in certs.iter().zip(&payload.items) {
            if !seen.insert(cert.batch) {
                return Err(format!("certificate {} twice", cert.batch));
            }
            if !self.verified.contains(item) {
                cert.verify(&self.committee).map_err(|e| e.to_string())?;
                self.verified.insert(item);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ordo_mempool::{Batch, BatchAck, Transaction};

    use super::*;

    #[test]
    fn forged_or_repeated_certificates_are_refused() {
        let (committee, keys) = Committee::for_testing(4);
        let committee = Arc::new(committee);
        let batch = Batch {
            author: 0,
            seq: 1,
            txs: vec![Transaction::new(0, &b"tx"[..])],
        };
        let header = batch.header();
        let acks: Vec<_> = (0..3u16)
            .map(|i| {
                let ack = BatchAck::sign(&header, i, &keys[usize::from(i)]);
                (ack.signer, ack.signature)
            })
            .collect();
        let good = BatchCert::new(&header, acks);
        let mut forged = good.clone();
        forged.signatures[0].1 = ordo_types::Signature([3; 64]);
        let mut short = good.clone();
        short.signatures.pop();
        let rules = CertRules::new(committee, Arc::new(VerifiedCerts::default()));
        let payload = |certs: &[&BatchCert]| Payload {
            items: certs.iter().map(|c| encode_cert(c).unwrap()).collect(),
        };
        assert!(rules.check(&payload(&[&good])).is_ok());
        assert!(rules.check(&payload(&[&forged])).is_err());
        assert!(rules.check(&payload(&[&short])).is_err());
        assert!(rules.check(&payload(&[&good, &good])).is_err());
        let junk = Payload {
            items: vec![b"not a certificate".to_vec()],
        };
        assert!(rules.check(&junk).is_err());
        assert_eq!(cert_key(&encode_cert(&good).unwrap()), batch.digest());
    }
}
