//! Batch acknowledgements: "I have durably stored this batch".

use ordo_types::{Committee, Digest, Keypair, NodeIndex, Signature};
use serde::{Deserialize, Serialize};

use crate::{BatchHeader, Error, Result};

/// A signed statement by `signer` that it stored the batch `batch`. The
/// signature covers the whole [`BatchHeader`] (see [`ack_message`]), so a
/// certificate's author, seq, count and size are vouched for too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    pub batch: Digest,
    pub signer: NodeIndex,
    pub signature: Signature,
}

/// The 32 bytes an ack signs: blake3 in the `ordo-batch-ack` domain over the
/// header fields. Domain separation keeps an ack from ever being read as a
/// vote or an inclusion list.
pub fn ack_message(header: &BatchHeader) -> [u8; 32] {
    Digest::hasher("ordo-batch-ack")
        .update(header.digest.as_bytes())
        .update_u64(u64::from(header.author))
        .update_u64(header.seq)
        .update_u64(u64::from(header.tx_count))
        .update_u64(header.byte_size)
        .finalize()
        .0
}

impl BatchAck {
    pub fn sign(header: &BatchHeader, signer: NodeIndex, keypair: &Keypair) -> Self {
        BatchAck {
            batch: header.digest,
            signer,
            signature: keypair.sign(&ack_message(header)),
        }
    }

    /// Checks that the ack is for `header` and signed by a member.
    pub fn verify(&self, header: &BatchHeader, committee: &Committee) -> Result<()> {
        if self.batch != header.digest {
            return Err(Error::DigestMismatch {
                expected: header.digest,
                got: self.batch,
            });
        }
        if committee.member(self.signer).is_none() {
            return Err(Error::NotAMember(self.signer));
        }
        committee
            .verify(self.signer, &ack_message(header), &self.signature)
            .map_err(|_| Error::BadSignature(self.signer))
    }
}
