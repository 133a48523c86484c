//! The committed block as nodes serve it.

use ordo_consensus::{BlockHeader, CommitCert, InclusionAttachment, Payload};
use ordo_mempool::{Batch, Transaction};
use serde::{Deserialize, Serialize};

/// One committed block: its header and commit certificate, its payload (the
/// encoded batch certificates) and the batches they name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputBlock {
    pub header: BlockHeader,
    /// Proves `header` committed (see `ordo_consensus::CommitCert`).
    pub cert: CommitCert,
    /// The block's payload: encoded batch certificates.
    pub payload: Payload,
    /// The signed inclusion lists the proposal attached (censorship
    /// resistance); the header's payload digest covers them.
    pub inclusion: Vec<InclusionAttachment>,
    /// The batches the certificates name, in order. A batch committed in an
    /// earlier block is not repeated; with a namespace filter, batches
    /// holding nothing of that namespace are left out too.
    pub batches: Vec<Batch>,
    /// `(batch, position)` of transactions skipped as repeats, sorted.
    pub skipped: Vec<(u32, u32)>,
}

impl OutputBlock {
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The block's transactions in order: by batch, then position, repeats
    /// skipped.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        let mut skipped = self.skipped.iter().peekable();
        self.batches.iter().enumerate().flat_map(move |(b, batch)| {
            let keep: Vec<bool> = (0..batch.txs.len())
                .map(|t| {
                    let here = (b as u32, t as u32);
                    if skipped.peek() == Some(&&here) {
                        skipped.next();
                        false
                    } else {
                        true
                    }
                })
                .collect();
            batch
                .txs
                .iter()
                .zip(keep)
                .filter_map(|(tx, keep)| keep.then_some(tx))
        })
    }
}
