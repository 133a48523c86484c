//! Consensus payload items are encoded batch certificates: their encoding,
//! their inclusion-list key and the payload rule, shared by the node and the
//! simulator so both judge proposals alike.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use ordo_consensus::{Payload, PayloadItem, PayloadRules};
use ordo_types::codec::{decode, encode};
use ordo_types::{Committee, DigestSet};

use crate::BatchCert;

/// Names a payload item for inclusion lists: the digest of the batch its
/// certificate certifies (an undecodable item by its own digest).
pub fn cert_key(item: &[u8]) -> ordo_types::Digest {
    decode::<BatchCert>(item).map_or_else(|_| ordo_types::Digest::of(item), |cert| cert.batch)
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

/// Encoded certificates this node has already verified (by the mempool on
/// receipt, or by [`CertRules`] in an earlier proposal), named by the digest
/// of their bytes. Bounded: the oldest are forgotten first.
#[derive(Default)]
pub struct VerifiedCerts {
    inner: Mutex<(DigestSet, VecDeque<ordo_types::Digest>)>,
}

impl VerifiedCerts {
    pub fn insert(&self, item: &[u8]) {
        let digest = ordo_types::Digest::of(item);
        let mut inner = self.inner.lock();
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
        self.inner.lock().0.contains(&ordo_types::Digest::of(item))
    }
}

/// A proposal's payload must be valid batch certificates of this committee,
/// each at most once. Certificates already verified are not checked again.
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
    use crate::{Batch, BatchAck, BatchCert, Transaction};
    use ordo_types::Committee;

    use super::*;

    #[test]
    fn forged_short_repeated_or_junk_certificates_are_refused_and_only_good_ones_remembered() {
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
        let verified = Arc::new(VerifiedCerts::default());
        let rules = CertRules::new(committee, verified.clone());
        let payload = |certs: &[&BatchCert]| Payload {
            items: certs.iter().map(|c| encode_cert(c).unwrap()).collect(),
        };
        assert!(rules.check(&payload(&[&forged])).is_err());
        assert!(rules.check(&payload(&[&good])).is_ok());
        assert!(verified.contains(&encode_cert(&good).unwrap()));
        // The forged one was never remembered, so it stays refused.
        assert!(rules.check(&payload(&[&forged])).is_err());
        assert!(!verified.contains(&encode_cert(&forged).unwrap()));
        assert!(rules.check(&payload(&[&short])).is_err());
        assert!(rules.check(&payload(&[&good, &good])).is_err());
        let junk = Payload {
            items: vec![b"not a certificate".to_vec()],
        };
        assert!(rules.check(&junk).is_err());
        assert_eq!(cert_key(&encode_cert(&good).unwrap()), batch.digest());
    }
}
