//! Committed blocks waiting for their batches, and fetching the missing ones.
//!
//! Consensus orders certificates, not bytes, so a node can commit a block
//! whose batches it never received. Each missing batch is requested from one
//! signer of its certificate (a quorum signed, so at least `f + 1` honest
//! signers hold it); if no answer comes within `fetch_retry_ms`, the next
//! signer is asked, cycling through all of them. A response counts only if
//! it hashes to the requested digest. Blocks are released strictly in commit
//! order, each batch once.

use std::collections::{BTreeMap, VecDeque};

use ordo_types::{Digest, NodeIndex};

use crate::bounded::BoundedSet;
use crate::BatchCert;

/// A committed block, by its certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBlock {
    pub height: u64,
    pub certs: Vec<BatchCert>,
}

/// The oldest committed block still waiting for batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryWait {
    pub height: u64,
    /// Each missing batch, with the signer it is being asked of.
    pub missing: Vec<(Digest, Option<NodeIndex>)>,
}

/// Ask `from` for `digest`; if unanswered, retry at `retry_at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub digest: Digest,
    pub from: NodeIndex,
    pub retry_at_ms: u64,
}

#[derive(Debug)]
struct Wanted {
    cert: BatchCert,
    candidates: Vec<NodeIndex>,
    next: usize,
    deadline_ms: u64,
}

impl Wanted {
    fn asked(&self) -> Option<NodeIndex> {
        self.candidates.get(self.next).copied()
    }
}

#[derive(Debug)]
pub struct Fetcher {
    retry_ms: u64,
    wanted: BTreeMap<Digest, Wanted>,
    blocks: VecDeque<CommittedBlock>,
    scheduled: BoundedSet<Digest>,
}

impl Fetcher {
    pub fn new(retry_ms: u64, memory: usize) -> Self {
        Fetcher {
            retry_ms,
            wanted: BTreeMap::new(),
            blocks: VecDeque::new(),
            scheduled: BoundedSet::new(memory),
        }
    }

    /// Queues a committed block for delivery, dropping certificates already
    /// queued by an earlier block. Returns the certificates kept.
    pub fn commit(&mut self, height: u64, certs: Vec<BatchCert>) -> &[BatchCert] {
        let certs: Vec<BatchCert> = certs
            .into_iter()
            .filter(|c| self.scheduled.insert(c.batch))
            .collect();
        self.blocks.push_back(CommittedBlock { height, certs });
        self.blocks.back().map_or(&[], |b| b.certs.as_slice())
    }

    /// Starts fetching the batch of `cert` from its signers other than `me`.
    /// `None` if it is being fetched already or nobody else can serve it.
    pub fn want(&mut self, now_ms: u64, cert: &BatchCert, me: NodeIndex) -> Option<Request> {
        if self.wanted.contains_key(&cert.batch) {
            return None;
        }
        let candidates: Vec<NodeIndex> = cert.signers().filter(|s| *s != me).collect();
        let from = *candidates.first()?;
        let deadline_ms = now_ms.saturating_add(self.retry_ms);
        self.wanted.insert(
            cert.batch,
            Wanted {
                cert: cert.clone(),
                candidates,
                next: 0,
                deadline_ms,
            },
        );
        Some(Request {
            digest: cert.batch,
            from,
            retry_at_ms: deadline_ms,
        })
    }

    /// The retry timer for `digest` fired: ask the next signer if the batch
    /// is still missing and the deadline passed.
    pub fn on_timer(&mut self, now_ms: u64, digest: &Digest) -> Option<Request> {
        let wanted = self.wanted.get_mut(digest)?;
        if wanted.deadline_ms > now_ms {
            return None;
        }
        wanted.next = (wanted.next + 1) % wanted.candidates.len().max(1);
        wanted.deadline_ms = now_ms.saturating_add(self.retry_ms);
        Some(Request {
            digest: *digest,
            from: wanted.asked()?,
            retry_at_ms: wanted.deadline_ms,
        })
    }

    /// The certificate of a batch being fetched.
    pub fn wanted_cert(&self, digest: &Digest) -> Option<&BatchCert> {
        self.wanted.get(digest).map(|w| &w.cert)
    }

    /// Stops fetching `digest` (it arrived).
    pub fn resolve(&mut self, digest: &Digest) {
        self.wanted.remove(digest);
    }

    /// Whether `digest` is a batch of a committed block seen here (wanted
    /// now or earlier): an answer for it that is no longer wanted is late
    /// or a network duplicate, not a wrong answer.
    pub fn known(&self, digest: &Digest) -> bool {
        self.scheduled.contains(digest)
    }

    /// A batch currently requested from `peer`, if any (lowest digest first).
    pub fn requested_from(&self, peer: NodeIndex) -> Option<Digest> {
        self.wanted
            .iter()
            .find(|(_, w)| w.asked() == Some(peer))
            .map(|(d, _)| *d)
    }

    pub fn missing(&self) -> usize {
        self.wanted.len()
    }

    /// The oldest queued block if some of its batches are not `present`.
    pub fn waiting(&self, present: impl Fn(&Digest) -> bool) -> Option<DeliveryWait> {
        let block = self.blocks.front()?;
        let missing: Vec<(Digest, Option<NodeIndex>)> = block
            .certs
            .iter()
            .filter(|c| !present(&c.batch))
            .map(|c| (c.batch, self.wanted.get(&c.batch).and_then(Wanted::asked)))
            .collect();
        (!missing.is_empty()).then_some(DeliveryWait {
            height: block.height,
            missing,
        })
    }

    /// Pops the oldest committed block if `present` holds for all its batches.
    pub fn next_ready(&mut self, present: impl Fn(&Digest) -> bool) -> Option<CommittedBlock> {
        let ready = self
            .blocks
            .front()
            .is_some_and(|b| b.certs.iter().all(|c| present(&c.batch)));
        if ready {
            self.blocks.pop_front()
        } else {
            None
        }
    }
}
