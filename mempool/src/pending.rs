//! Certificates waiting to be proposed.
//!
//! Certificates wait here from the moment they are formed or received until
//! a block carrying them commits. Block payloads are drawn in rounds: each
//! round takes at most one certificate per author (the author's oldest not
//! yet excluded), and a round is ordered by arrival, so payloads are oldest
//! first yet no author can crowd out the others. Committed digests are
//! remembered (bounded) so a late copy of a certificate is not queued again.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use ordo_types::{Digest, NodeIndex};

use crate::bounded::BoundedSet;
use crate::BatchCert;

#[derive(Debug)]
struct Entry {
    cert: BatchCert,
    /// Arrival order, unique: the deterministic tie-breaker.
    arrival: u64,
    since_ms: u64,
}

/// The queue of certified, uncommitted batches.
#[derive(Debug)]
pub struct PendingCerts {
    by_author: BTreeMap<NodeIndex, VecDeque<Entry>>,
    queued: HashSet<Digest>,
    committed: BoundedSet<Digest>,
    next_arrival: u64,
    max_per_author: usize,
}

impl PendingCerts {
    pub fn new(max_per_author: usize, committed_memory: usize) -> Self {
        PendingCerts {
            by_author: BTreeMap::new(),
            queued: HashSet::new(),
            committed: BoundedSet::new(committed_memory),
            next_arrival: 0,
            max_per_author: max_per_author.max(1),
        }
    }

    /// Queues an (already verified) certificate. False if it is queued
    /// already, known committed, or its author's queue is full.
    pub fn insert(&mut self, now_ms: u64, cert: BatchCert) -> bool {
        if self.queued.contains(&cert.batch) || self.committed.contains(&cert.batch) {
            return false;
        }
        let queue = self.by_author.entry(cert.author).or_default();
        if queue.len() >= self.max_per_author {
            return false;
        }
        self.queued.insert(cert.batch);
        queue.push_back(Entry {
            cert,
            arrival: self.next_arrival,
            since_ms: now_ms,
        });
        self.next_arrival += 1;
        true
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.queued.contains(digest)
    }

    /// The queued certificate of `author`'s batch `digest`.
    pub fn get(&self, author: NodeIndex, digest: &Digest) -> Option<&BatchCert> {
        if !self.queued.contains(digest) {
            return None;
        }
        self.by_author
            .get(&author)?
            .iter()
            .map(|e| &e.cert)
            .find(|c| c.batch == *digest)
    }

    pub fn is_committed(&self, digest: &Digest) -> bool {
        self.committed.contains(digest)
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Certificates of `author` queued.
    pub fn author_len(&self, author: NodeIndex) -> usize {
        self.by_author.get(&author).map_or(0, VecDeque::len)
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// All queued certificates, per author then arrival.
    pub fn iter(&self) -> impl Iterator<Item = &BatchCert> {
        self.by_author.values().flatten().map(|e| &e.cert)
    }

    /// The next block payload: up to `max_certs` certificates not in
    /// `exclude` (those already in uncommitted ancestors), in fair rounds,
    /// oldest first within a round. Does not remove them.
    pub fn payload<S: BuildHasher>(
        &self,
        max_certs: usize,
        exclude: &HashSet<Digest, S>,
    ) -> Vec<BatchCert> {
        let mut cursors: Vec<_> = self
            .by_author
            .values()
            .map(|queue| {
                queue
                    .iter()
                    .filter(|e| !exclude.contains(&e.cert.batch))
                    .peekable()
            })
            .collect();
        let mut out = Vec::new();
        while out.len() < max_certs {
            let mut round: Vec<&Entry> = cursors.iter_mut().filter_map(Iterator::next).collect();
            if round.is_empty() {
                break;
            }
            round.sort_by_key(|e| e.arrival);
            out.extend(
                round
                    .into_iter()
                    .take(max_certs - out.len())
                    .map(|e| e.cert.clone()),
            );
        }
        out
    }

    /// Forgets committed certificates and remembers their digests.
    pub fn on_commit(&mut self, certs: &[BatchCert]) {
        let mut touched = HashSet::new();
        for cert in certs {
            self.committed.insert(cert.batch);
            if self.queued.remove(&cert.batch) {
                touched.insert(cert.author);
            }
        }
        for author in touched {
            if let Some(queue) = self.by_author.get_mut(&author) {
                queue.retain(|e| self.queued.contains(&e.cert.batch));
                if queue.is_empty() {
                    self.by_author.remove(&author);
                }
            }
        }
    }

    /// Digests held uncommitted for at least `delay_ms`, oldest first, at
    /// most `max_len`: this node's inclusion list.
    pub fn due_for_inclusion(&self, now_ms: u64, delay_ms: u64, max_len: usize) -> Vec<Digest> {
        let mut due: Vec<&Entry> = self
            .by_author
            .values()
            .flatten()
            .filter(|e| e.since_ms.saturating_add(delay_ms) <= now_ms)
            .collect();
        due.sort_by_key(|e| (e.since_ms, e.arrival));
        due.into_iter()
            .take(max_len)
            .map(|e| e.cert.batch)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchHeader;

    fn cert(author: NodeIndex, seq: u64) -> BatchCert {
        let header = BatchHeader {
            digest: Digest::hasher("test")
                .update_u64(u64::from(author))
                .update_u64(seq)
                .finalize(),
            author,
            seq,
            tx_count: 1,
            byte_size: 1,
        };
        BatchCert::new(&header, vec![])
    }

    fn names(certs: &[BatchCert]) -> Vec<(NodeIndex, u64)> {
        certs.iter().map(|c| (c.author, c.seq)).collect()
    }

    #[test]
    fn payload_is_fair_and_oldest_first() {
        let mut p = PendingCerts::new(10, 10);
        // Author 0 floods first; 1 and 2 arrive later.
        for seq in 0..4 {
            assert!(p.insert(0, cert(0, seq)));
        }
        p.insert(1, cert(2, 0));
        p.insert(2, cert(1, 0));
        p.insert(3, cert(1, 1));
        let got = p.payload(5, &HashSet::new());
        assert_eq!(names(&got), vec![(0, 0), (2, 0), (1, 0), (0, 1), (1, 1)]);
        // Excluded ones (in an uncommitted ancestor) are skipped.
        let exclude: HashSet<Digest> = got[..3].iter().map(|c| c.batch).collect();
        assert_eq!(names(&p.payload(3, &exclude)), vec![(0, 1), (1, 1), (0, 2)]);
    }

    #[test]
    fn commit_removes_and_late_copies_are_refused() {
        let mut p = PendingCerts::new(10, 10);
        p.insert(0, cert(0, 0));
        p.insert(0, cert(1, 0));
        assert!(!p.insert(0, cert(0, 0)), "duplicate");
        p.on_commit(&[cert(0, 0), cert(3, 3)]);
        assert_eq!(p.len(), 1);
        assert!(!p.insert(5, cert(0, 0)), "committed");
        assert!(!p.insert(5, cert(3, 3)), "committed before it arrived");
        assert_eq!(names(&p.payload(10, &HashSet::new())), vec![(1, 0)]);
    }

    #[test]
    fn per_author_bound() {
        let mut p = PendingCerts::new(2, 10);
        assert!(p.insert(0, cert(0, 0)));
        assert!(p.insert(0, cert(0, 1)));
        assert!(!p.insert(0, cert(0, 2)));
        assert!(p.insert(0, cert(1, 0)));
    }

    #[test]
    fn due_for_inclusion_oldest_first_bounded() {
        let mut p = PendingCerts::new(10, 10);
        p.insert(100, cert(1, 0));
        p.insert(50, cert(2, 0));
        p.insert(300, cert(0, 0));
        assert_eq!(p.due_for_inclusion(120, 100, 10), vec![]);
        assert_eq!(
            p.due_for_inclusion(200, 100, 10),
            vec![cert(2, 0).batch, cert(1, 0).batch]
        );
        assert_eq!(p.due_for_inclusion(1000, 100, 1), vec![cert(2, 0).batch]);
    }
}
