//! Checking a served block against the committee alone.

use ordo_mempool::BatchCert;
use ordo_types::codec::decode;
use ordo_types::{Committee, Digest};

use crate::block::OutputBlock;
use crate::error::{Error, Result};

/// Verifies `block`: its commit certificate, that the payload is the one the
/// header commits to, every batch certificate, that every batch present
/// matches a certificate (in order), that skipped positions exist, and, if
/// `parent` is given, that the block extends it.
pub fn verify(block: &OutputBlock, committee: &Committee, parent: Option<&Digest>) -> Result<()> {
    let height = block.height();
    let invalid = |reason: String| Error::Invalid { height, reason };
    block
        .cert
        .verify(&block.header, committee)
        .map_err(|e| invalid(e.to_string()))?;
    if ordo_consensus::messages::payload_digest(&block.payload, &block.inclusion)
        != block.header.payload
    {
        return Err(invalid("payload does not match the header".into()));
    }
    if let Some(parent) = parent {
        if block.header.parent != *parent {
            return Err(invalid("does not extend the previous block".into()));
        }
    }
    let certs: Vec<BatchCert> = block
        .payload
        .items
        .iter()
        .map(|item| decode(item).map_err(|e| invalid(format!("payload item: {e}"))))
        .collect::<Result<_>>()?;
    for cert in &certs {
        cert.verify(committee)
            .map_err(|e| invalid(format!("batch certificate: {e}")))?;
    }
    let mut next_cert = certs.iter();
    for batch in &block.batches {
        let digest = batch.digest();
        let cert = next_cert.find(|c| c.batch == digest).ok_or_else(|| {
            invalid(format!(
                "batch {digest} is not certified by the block (or out of order)"
            ))
        })?;
        cert.matches(batch)
            .map_err(|e| invalid(format!("batch {digest}: {e}")))?;
    }
    let mut previous: Option<(u32, u32)> = None;
    for &(b, t) in &block.skipped {
        let exists = block
            .batches
            .get(b as usize)
            .is_some_and(|batch| (t as usize) < batch.txs.len());
        if !exists || previous.is_some_and(|p| p >= (b, t)) {
            return Err(invalid("skipped positions out of range or unsorted".into()));
        }
        previous = Some((b, t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ordo_consensus::testing::Cluster;
    use ordo_consensus::Config;

    use super::*;

    fn blocks() -> (Cluster, Vec<OutputBlock>) {
        let mut cluster = Cluster::new(4, Config::default(), 5, 0, 9);
        assert!(cluster.run_until_height(3, 600_000));
        let out = cluster.committed(0)[..3]
            .iter()
            .map(|c| OutputBlock {
                header: c.block.header.clone(),
                cert: c.cert.clone(),
                payload: c.block.payload.clone(),
                inclusion: c.block.inclusion.clone(),
                batches: vec![],
                skipped: vec![],
            })
            .collect();
        (cluster, out)
    }

    #[test]
    fn genuine_blocks_verify_and_chain() {
        let (cluster, blocks) = blocks();
        let genesis = ordo_consensus::Block::genesis(cluster.committee.digest()).digest();
        verify(&blocks[0], &cluster.committee, Some(&genesis)).unwrap();
        verify(
            &blocks[1],
            &cluster.committee,
            Some(&blocks[0].header.digest()),
        )
        .unwrap();
        assert!(verify(
            &blocks[2],
            &cluster.committee,
            Some(&blocks[0].header.digest())
        )
        .is_err());
    }

    #[test]
    fn tampered_blocks_are_errors() {
        let (cluster, blocks) = blocks();
        let c = &cluster.committee;
        let b = &blocks[1];
        let mut forged = b.clone();
        forged.cert.qc.votes[0].1 = ordo_types::Signature([1; 64]);
        assert!(verify(&forged, c, None).is_err(), "forged signature");
        let mut short = b.clone();
        short.cert.qc.votes.truncate(c.quorum() - 1);
        assert!(verify(&short, c, None).is_err(), "short certificate");
        let mut duplicated = b.clone();
        let first = duplicated.cert.qc.votes[0];
        duplicated.cert.qc.votes[1] = first;
        assert!(verify(&duplicated, c, None).is_err(), "duplicate signer");
        let mut other_header = b.clone();
        other_header.header.author = (other_header.header.author + 1) % 4;
        assert!(
            verify(&other_header, c, None).is_err(),
            "header not certified"
        );
        let mut extra = b.clone();
        extra.payload.items.push(vec![1, 2, 3]);
        assert!(verify(&extra, c, None).is_err(), "payload not committed");
        let mut stray = b.clone();
        stray.batches.push(ordo_mempool::Batch {
            author: 0,
            seq: 0,
            txs: vec![],
        });
        assert!(verify(&stray, c, None).is_err(), "uncertified batch");
        // Another committee's keys do not verify it.
        let (other, _) = ordo_types::Committee::for_testing(7);
        assert!(verify(b, &other, None).is_err(), "wrong committee");
    }
}
