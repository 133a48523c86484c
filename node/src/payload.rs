//! Consensus payload items are encoded batch certificates.

use std::sync::Arc;

use ordo_consensus::{Payload, PayloadItem, PayloadRules};
use ordo_mempool::BatchCert;
use ordo_types::codec::{decode, encode};
use ordo_types::Committee;

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

/// A proposal's payload must be valid batch certificates of this committee,
/// each at most once.
pub struct CertRules {
    committee: Arc<Committee>,
}

impl CertRules {
    pub fn new(committee: Arc<Committee>) -> Self {
        CertRules { committee }
    }
}

impl PayloadRules for CertRules {
    fn check(&self, payload: &Payload) -> Result<(), String> {
        let certs = decode_certs(payload)?;
        let mut seen = std::collections::HashSet::with_capacity(certs.len());
        for cert in &certs {
            if !seen.insert(cert.batch) {
                return Err(format!("certificate {} twice", cert.batch));
            }
            cert.verify(&self.committee).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
