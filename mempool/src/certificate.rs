//! Batch certificates: proof that a quorum stored a batch.
//!
//! With `n - f` (= `2f + 1` when `n = 3f + 1`) acks, at least `f + 1` honest
//! nodes hold the bytes, so a certified batch can always be fetched.

use ordo_types::{Committee, Digest, NodeIndex, Signature};
use serde::{Deserialize, Serialize};

use crate::ack::ack_message;
use crate::{Batch, BatchHeader, Error, Result};

/// A proof of availability for one batch: a quorum of acks over its header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCert {
    pub batch: Digest,
    pub author: NodeIndex,
    pub seq: u64,
    pub tx_count: u32,
    pub byte_size: u64,
    /// Strictly increasing signer indices, each with its ack signature.
    pub signatures: Vec<(NodeIndex, Signature)>,
}

impl BatchCert {
    /// A certificate from a header and acks; sorts the signatures. Does not
    /// verify them.
    pub fn new(header: &BatchHeader, mut signatures: Vec<(NodeIndex, Signature)>) -> Self {
        signatures.sort_by_key(|(index, _)| *index);
        signatures.dedup_by_key(|(index, _)| *index);
        BatchCert {
            batch: header.digest,
            author: header.author,
            seq: header.seq,
            tx_count: header.tx_count,
            byte_size: header.byte_size,
            signatures,
        }
    }

    pub fn header(&self) -> BatchHeader {
        BatchHeader {
            digest: self.batch,
            author: self.author,
            seq: self.seq,
            tx_count: self.tx_count,
            byte_size: self.byte_size,
        }
    }

    /// The signers, in order.
    pub fn signers(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.signatures.iter().map(|(index, _)| *index)
    }

    /// Checks the certificate: the author is a member, at least a quorum of
    /// distinct members signed (indices strictly increasing), and every
    /// signature verifies (one batch verification).
    pub fn verify(&self, committee: &Committee) -> Result<()> {
        if committee.member(self.author).is_none() {
            return Err(Error::NotAMember(self.author));
        }
        if self.signatures.len() < committee.quorum() {
            return Err(Error::TooFewSigners {
                got: self.signatures.len(),
                needed: committee.quorum(),
            });
        }
        let mut previous: Option<NodeIndex> = None;
        for (index, _) in &self.signatures {
            if previous.is_some_and(|p| p >= *index) {
                return Err(Error::UnsortedSigners(*index));
            }
            if committee.member(*index).is_none() {
                return Err(Error::NotAMember(*index));
            }
            previous = Some(*index);
        }
        let message = ack_message(&self.header());
        let items: Vec<(NodeIndex, &[u8], Signature)> = self
            .signatures
            .iter()
            .map(|(index, signature)| (*index, message.as_slice(), *signature))
            .collect();
        committee
            .verify_many(&items)
            .map_err(|_| Error::BadSignatures)
    }

    /// Checks that `batch` is the one this certificate is about.
    pub fn matches(&self, batch: &Batch) -> Result<()> {
        let digest = batch.digest();
        if digest != self.batch {
            return Err(Error::DigestMismatch {
                expected: self.batch,
                got: digest,
            });
        }
        if batch.header_with(digest) != self.header() {
            return Err(Error::CertMismatch(digest));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ordo_types::Keypair;

    use super::*;
    use crate::{BatchAck, Transaction};

    fn sample_batch() -> Batch {
        Batch {
            author: 1,
            seq: 5,
            txs: vec![Transaction::new(9, &b"hello"[..])],
        }
    }

    fn cert_by(signers: &[NodeIndex], keys: &[Keypair], header: &BatchHeader) -> BatchCert {
        let mut cert = BatchCert::new(header, vec![]);
        cert.signatures = signers
            .iter()
            .map(|&i| {
                let ack = BatchAck::sign(header, i, &keys[usize::from(i) % keys.len()]);
                (i, ack.signature)
            })
            .collect();
        cert
    }

    #[test]
    fn cert_validation_table() {
        let (committee, keys) = Committee::for_testing(4);
        let header = sample_batch().header();
        let good = cert_by(&[0, 1, 2], &keys, &header);

        let mut bad_signature = good.clone();
        bad_signature.signatures[1].1 = keys[1].sign(b"something else");
        let mut wrong_digest = good.clone();
        wrong_digest.batch = Digest::of(b"another batch");
        let mut wrong_count = good.clone();
        wrong_count.tx_count = 2;
        let mut non_member_author = good.clone();
        non_member_author.author = 9;

        let table: Vec<(&str, BatchCert, Result<()>)> = vec![
            ("good", good.clone(), Ok(())),
            ("all four", cert_by(&[0, 1, 2, 3], &keys, &header), Ok(())),
            (
                "too few signers",
                cert_by(&[0, 1], &keys, &header),
                Err(Error::TooFewSigners { got: 2, needed: 3 }),
            ),
            (
                "duplicate signer",
                cert_by(&[0, 1, 1], &keys, &header),
                Err(Error::UnsortedSigners(1)),
            ),
            (
                "unsorted",
                cert_by(&[2, 0, 1], &keys, &header),
                Err(Error::UnsortedSigners(0)),
            ),
            (
                "non-member signer",
                cert_by(&[0, 1, 7], &keys, &header),
                Err(Error::NotAMember(7)),
            ),
            (
                "non-member author",
                non_member_author,
                Err(Error::NotAMember(9)),
            ),
            ("bad signature", bad_signature, Err(Error::BadSignatures)),
            // Signatures are over the header: changing the digest or any
            // field breaks them.
            ("digest mismatch", wrong_digest, Err(Error::BadSignatures)),
            ("field mismatch", wrong_count, Err(Error::BadSignatures)),
        ];
        for (name, cert, expected) in table {
            assert_eq!(cert.verify(&committee), expected, "{name}");
        }
    }

    #[test]
    fn ack_validation_table() {
        let (committee, keys) = Committee::for_testing(4);
        let header = sample_batch().header();
        let other = Batch {
            seq: 6,
            ..sample_batch()
        }
        .header();
        let good = BatchAck::sign(&header, 2, &keys[2]);
        let mut forged = good.clone();
        forged.signer = 3;
        let table: Vec<(&str, BatchAck, Result<()>)> = vec![
            ("good", good.clone(), Ok(())),
            ("bad signature", forged, Err(Error::BadSignature(3))),
            (
                "non-member",
                BatchAck::sign(&header, 7, &keys[0]),
                Err(Error::NotAMember(7)),
            ),
            (
                "digest mismatch",
                BatchAck::sign(&other, 2, &keys[2]),
                Err(Error::DigestMismatch {
                    expected: header.digest,
                    got: other.digest,
                }),
            ),
        ];
        for (name, ack, expected) in table {
            assert_eq!(ack.verify(&header, &committee), expected, "{name}");
        }
    }

    #[test]
    fn matches_its_batch_only() {
        let (_, keys) = Committee::for_testing(4);
        let batch = sample_batch();
        let cert = cert_by(&[0, 1, 2], &keys, &batch.header());
        assert_eq!(cert.matches(&batch), Ok(()));
        let other = Batch {
            seq: 6,
            ..sample_batch()
        };
        assert!(matches!(
            cert.matches(&other),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn codec_round_trip() {
        let (_, keys) = Committee::for_testing(4);
        let cert = cert_by(&[0, 1, 2], &keys, &sample_batch().header());
        let bytes = ordo_types::codec::encode(&cert).unwrap();
        assert_eq!(
            ordo_types::codec::decode::<BatchCert>(&bytes).unwrap(),
            cert
        );
    }
}
