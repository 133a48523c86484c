//! The transaction intake: where the HTTP API threads put client
//! transactions and the node drains them into batches.
//!
//! It is the one shared, concurrent structure of the crate (a mutex around
//! plain queues), and it is bounded on every axis:
//! - total queued bytes and count, and per-namespace count: a full queue
//!   answers [`Error::Busy`] instead of growing;
//! - transaction size: larger ones are refused with [`Error::TxTooLarge`];
//! - duplicates (same [`Transaction::digest`]) are accepted once, whether
//!   still queued or drained recently (a bounded memory of
//!   `recent_digests` digests).
//!
//! Draining is round-robin across namespaces, one transaction per namespace
//! per turn, and the turn order carries over between drains, so a namespace
//! flooding the queue cannot starve the others.

use std::collections::{HashMap, VecDeque};

use ordo_types::Digest;

use crate::bounded::BoundedSet;
use crate::sync::Mutex;
use crate::{Error, Result, Transaction};

/// Bounds of the intake.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// Total payload bytes queued.
    pub max_bytes: usize,
    /// Total transactions queued.
    pub max_count: usize,
    /// Transactions queued for one namespace.
    pub max_per_namespace: usize,
    /// Largest accepted payload.
    pub max_tx_bytes: usize,
    /// Digests of drained transactions remembered to refuse duplicates.
    pub recent_digests: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            // About a second or two of a node's share at saturation on the
            // bench machine: beyond it, waiting longer helps nobody; the
            // API refuses and the client backs off.
            max_bytes: 32 * 1024 * 1024,
            max_count: 32_768,
            max_per_namespace: 16_384,
            max_tx_bytes: 128 * 1024,
            recent_digests: 200_000,
        }
    }
}

/// How a submission was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Queued for the next batch.
    Accepted(Digest),
    /// Seen before (queued or recently drained); not queued again.
    Duplicate(Digest),
}

/// The shared intake; `&self` methods, safe to call from many threads.
#[derive(Debug)]
pub struct Intake {
    config: IntakeConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    queues: HashMap<u64, VecDeque<(Digest, Transaction)>>,
    /// Namespaces with a non-empty queue, in turn order.
    turns: VecDeque<u64>,
    queued: ordo_types::DigestSet,
    recent: BoundedSet<Digest>,
    bytes: usize,
    count: usize,
}

impl Intake {
    pub fn new(config: IntakeConfig) -> Self {
        let recent = BoundedSet::new(config.recent_digests);
        Intake {
            config,
            state: Mutex::new(State {
                queues: HashMap::new(),
                turns: VecDeque::new(),
                queued: Default::default(),
                recent,
                bytes: 0,
                count: 0,
            }),
        }
    }

    pub fn config(&self) -> &IntakeConfig {
        &self.config
    }

    /// Whether `count` more transactions of `bytes` in all would fit now
    /// (in total; per-namespace limits aside).
    pub fn has_room_for(&self, count: usize, bytes: usize) -> bool {
        let state = self.state.lock();
        state.count + count <= self.config.max_count && state.bytes + bytes <= self.config.max_bytes
    }

    /// Offers a transaction. The digest is computed before the lock is taken.
    pub fn submit(&self, mut tx: Transaction) -> Result<Admission> {
        let size = tx.size();
        if size > self.config.max_tx_bytes {
            return Err(Error::TxTooLarge {
                size,
                max: self.config.max_tx_bytes,
            });
        }
        let digest = tx.digest();
        let mut state = self.state.lock();
        if state.queued.contains(&digest) || state.recent.contains(&digest) {
            return Ok(Admission::Duplicate(digest));
        }
        if state.count >= self.config.max_count || state.bytes + size > self.config.max_bytes {
            return Err(Error::Busy);
        }
        let namespace = tx.namespace;
        let queued_here = state.queues.get(&namespace).map_or(0, VecDeque::len);
        if queued_here >= self.config.max_per_namespace {
            return Err(Error::Busy);
        }
        let queue = state.queues.entry(namespace).or_default();
        let was_empty = queue.is_empty();
        tx.mark_accepted();
        queue.push_back((digest, tx));
        if was_empty {
            state.turns.push_back(namespace);
        }
        state.queued.insert(digest);
        state.bytes += size;
        state.count += 1;
        Ok(Admission::Accepted(digest))
    }

    /// Takes transactions, round-robin across namespaces, while their total
    /// size stays within `max_bytes` and their number within `max_count`.
    /// Stops at the first transaction that does not fit (it keeps its turn).
    pub fn drain(&self, max_bytes: usize, max_count: usize) -> Vec<Transaction> {
        let mut out = Vec::new();
        let mut taken_bytes = 0usize;
        let mut state = self.state.lock();
        let state = &mut *state;
        while out.len() < max_count {
            let Some(namespace) = state.turns.front().copied() else {
                break;
            };
            let Some(queue) = state.queues.get_mut(&namespace) else {
                state.turns.pop_front();
                continue;
            };
            let Some(size) = queue.front().map(|(_, tx)| tx.size()) else {
                state.queues.remove(&namespace);
                state.turns.pop_front();
                continue;
            };
            if taken_bytes + size > max_bytes {
                break;
            }
            let Some((digest, tx)) = queue.pop_front() else {
                break;
            };
            state.turns.pop_front();
            if queue.is_empty() {
                state.queues.remove(&namespace);
            } else {
                state.turns.push_back(namespace);
            }
            state.queued.remove(&digest);
            state.recent.insert(digest);
            state.bytes -= size;
            state.count -= 1;
            taken_bytes += size;
            out.push(tx);
        }
        out
    }

    /// Whether a transaction with this digest waits in the queue.
    pub fn is_queued(&self, digest: &Digest) -> bool {
        self.state.lock().queued.contains(digest)
    }

    /// Queued transactions.
    pub fn len(&self) -> usize {
        self.state.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queued payload bytes.
    pub fn bytes(&self) -> usize {
        self.state.lock().bytes
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn config() -> IntakeConfig {
        IntakeConfig {
            max_bytes: 10,
            max_count: 3,
            max_per_namespace: 3,
            max_tx_bytes: 6,
            recent_digests: 2,
        }
    }

    fn tx(namespace: u64, payload: &[u8]) -> Transaction {
        Transaction::new(namespace, payload.to_vec())
    }

    #[test]
    fn submission_table() {
        // Each row: submissions in order, and the expected answer to the last.
        let table: Vec<(&str, Vec<Transaction>, Result<bool>)> = vec![
            ("accepted", vec![tx(0, b"a")], Ok(true)),
            (
                "too large",
                vec![tx(0, b"1234567")],
                Err(Error::TxTooLarge { size: 7, max: 6 }),
            ),
            ("duplicate once", vec![tx(0, b"a"), tx(0, b"a")], Ok(false)),
            (
                "busy by bytes",
                vec![tx(0, b"123456"), tx(1, b"12345")],
                Err(Error::Busy),
            ),
            (
                "busy by count",
                vec![tx(0, b"1"), tx(1, b"2"), tx(2, b"3"), tx(3, b"4")],
                Err(Error::Busy),
            ),
        ];
        for (name, submissions, expected) in table {
            let intake = Intake::new(config());
            let mut last = None;
            for t in submissions {
                last = Some(intake.submit(t));
            }
            let got = last.unwrap().map(|a| matches!(a, Admission::Accepted(_)));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn busy_per_namespace() {
        let intake = Intake::new(IntakeConfig {
            max_per_namespace: 1,
            ..config()
        });
        assert!(intake.submit(tx(0, b"a")).is_ok());
        assert_eq!(intake.submit(tx(0, b"b")), Err(Error::Busy));
        assert!(intake.submit(tx(1, b"b")).is_ok());
    }

    #[test]
    fn busy_frees_up_after_drain() {
        let intake = Intake::new(config());
        for p in [b"1", b"2", b"3"] {
            intake.submit(tx(0, p)).unwrap();
        }
        assert_eq!(intake.submit(tx(0, b"4")), Err(Error::Busy));
        assert_eq!(intake.drain(100, 100).len(), 3);
        assert_eq!((intake.len(), intake.bytes()), (0, 0));
        assert!(intake.submit(tx(0, b"4")).is_ok());
    }

    #[test]
    fn duplicate_after_drain_until_forgotten() {
        let intake = Intake::new(IntakeConfig {
            max_count: 10,
            ..config()
        });
        intake.submit(tx(0, b"a")).unwrap();
        intake.drain(100, 100);
        assert!(matches!(
            intake.submit(tx(0, b"a")),
            Ok(Admission::Duplicate(_))
        ));
        // recent_digests = 2: two newer drained digests push "a" out.
        intake.submit(tx(0, b"b")).unwrap();
        intake.submit(tx(0, b"c")).unwrap();
        intake.drain(100, 100);
        assert!(matches!(
            intake.submit(tx(0, b"a")),
            Ok(Admission::Accepted(_))
        ));
    }

    #[test]
    fn namespace_fairness() {
        let intake = Intake::new(IntakeConfig {
            max_count: 100,
            max_bytes: 1000,
            max_per_namespace: 100,
            ..config()
        });
        // Namespace 1 floods first, then 2 and 3 submit one each.
        for i in 0..20u8 {
            intake.submit(tx(1, &[i])).unwrap();
        }
        intake.submit(tx(2, b"two")).unwrap();
        intake.submit(tx(3, b"three")).unwrap();
        let first: Vec<u64> = intake.drain(100, 4).iter().map(|t| t.namespace).collect();
        assert_eq!(first, vec![1, 2, 3, 1]);
        // Turns carry over: a newcomer waits behind namespace 1's turn only.
        intake.submit(tx(4, b"four")).unwrap();
        let next: Vec<u64> = intake.drain(100, 2).iter().map(|t| t.namespace).collect();
        assert_eq!(next, vec![1, 4]);
    }

    #[test]
    fn drain_respects_bytes_and_stops_at_first_misfit() {
        let intake = Intake::new(IntakeConfig {
            max_count: 10,
            max_bytes: 100,
            ..config()
        });
        intake.submit(tx(0, b"1234")).unwrap();
        intake.submit(tx(0, b"12345")).unwrap();
        intake.submit(tx(0, b"1")).unwrap();
        let got = intake.drain(6, 10);
        assert_eq!(got.len(), 1);
        assert_eq!(intake.len(), 2);
        assert_eq!(intake.drain(0, 10).len(), 0);
        assert_eq!(intake.drain(6, 10).len(), 2);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    fn small() -> IntakeConfig {
        IntakeConfig {
            max_bytes: 4,
            max_count: 3,
            max_per_namespace: 3,
            max_tx_bytes: 2,
            recent_digests: 8,
        }
    }

    /// Two producers race a drain: nothing is lost or duplicated, and the
    /// counters match what is left.
    #[test]
    fn loom_push_drain_conserves_transactions() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(small()));
            let producers: Vec<_> = (0..2u64)
                .map(|ns| {
                    let intake = Arc::clone(&intake);
                    thread::spawn(move || {
                        let admitted = intake.submit(Transaction::new(ns, vec![ns as u8]));
                        matches!(admitted, Ok(Admission::Accepted(_)))
                    })
                })
                .collect();
            let mut drained = intake.drain(2, 2);
            let accepted = producers
                .into_iter()
                .map(|p| p.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(accepted, 2, "two 1-byte transactions always fit");
            assert_eq!(intake.bytes(), intake.len());
            drained.extend(intake.drain(100, 100));
            assert_eq!(drained.len(), 2);
            assert_ne!(drained[0], drained[1]);
            assert!(intake.is_empty());
        });
    }

    /// The same payload submitted twice concurrently, with a drain racing
    /// in between, is accepted exactly once.
    #[test]
    fn loom_duplicate_accepted_once() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(small()));
            let submitters: Vec<_> = (0..2)
                .map(|_| {
                    let intake = Arc::clone(&intake);
                    thread::spawn(move || intake.submit(Transaction::new(7, vec![1u8])))
                })
                .collect();
            let mut drained = intake.drain(4, 4).len();
            let results: Vec<_> = submitters.into_iter().map(|s| s.join().unwrap()).collect();
            drained += intake.drain(4, 4).len();
            let accepted = results
                .iter()
                .filter(|r| matches!(r, Ok(Admission::Accepted(_))))
                .count();
            assert_eq!(accepted, 1);
            assert_eq!(drained, 1);
        });
    }

    /// Racing producers against a full queue: the bound is never exceeded.
    #[test]
    fn loom_bound_holds_under_race() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(IntakeConfig {
                max_count: 1,
                ..small()
            }));
            let producers: Vec<_> = (0..2u8)
                .map(|i| {
                    let intake = Arc::clone(&intake);
                    thread::spawn(move || intake.submit(Transaction::new(0, vec![i])))
                })
                .collect();
            let results: Vec<_> = producers.into_iter().map(|p| p.join().unwrap()).collect();
            let busy = results.iter().filter(|r| **r == Err(Error::Busy)).count();
            assert_eq!(busy, 1);
            assert_eq!(intake.len(), 1);
        });
    }
}
