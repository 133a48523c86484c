//! The inclusion rule as consensus sees it: [`MempoolInclusion`] implements
//! `ordo_consensus::InclusionRules` with this crate's [`InclusionList`]
//! format and [`check_inclusion`]. (`ordo-mempool` depends on
//! `ordo-consensus` for the trait; consensus never depends on the mempool.)
//!
//! It tracks what the core tells it: items becoming available and items
//! committed. An item held uncommitted for `delay_ms` or longer goes on this
//! node's list, oldest first, at most `max_list_len`. Lists travel as
//! `codec`-encoded [`InclusionList`]s; an attachment that does not decode
//! counts as no list.
//!
//! Items are named by `key(item)`: in the node an item is an encoded
//! [`crate::BatchCert`] and its key the certificate digest; the simulator's
//! items are named by their blake3 digest.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ordo_consensus::{InclusionAttachment, InclusionRules, PayloadItem, View};
use ordo_types::{codec, Committee, Digest, Keypair, NodeIndex};

use crate::inclusion::{check_inclusion, required_certs, InclusionList, InclusionRule, Proposal};

/// Committed keys remembered so a late copy is not listed again.
const COMMITTED_MEMORY: usize = 65_536;

/// The mempool's inclusion rule, installed with
/// `Core::with_inclusion_rules(Box::new(MempoolInclusion::new(..)))`.
pub struct MempoolInclusion {
    me: NodeIndex,
    keypair: Keypair,
    committee: Arc<Committee>,
    delay_ms: u64,
    max_list_len: usize,
    key: fn(&[u8]) -> Digest,
    /// key -> (since_ms, arrival number)
    pending: HashMap<Digest, (u64, u64)>,
    by_age: BTreeSet<(u64, u64, Digest)>,
    arrivals: u64,
    committed: HashSet<Digest>,
    committed_order: VecDeque<Digest>,
}

impl MempoolInclusion {
    pub fn new(
        me: NodeIndex,
        keypair: Keypair,
        committee: Arc<Committee>,
        delay_ms: u64,
        max_list_len: usize,
        key: fn(&[u8]) -> Digest,
    ) -> Self {
        MempoolInclusion {
            me,
            keypair,
            committee,
            delay_ms,
            max_list_len,
            key,
            pending: HashMap::new(),
            by_age: BTreeSet::new(),
            arrivals: 0,
            committed: HashSet::new(),
            committed_order: VecDeque::new(),
        }
    }

    /// Names an item by its blake3 digest (the simulator's items).
    pub fn digest_key(item: &[u8]) -> Digest {
        Digest::of(item)
    }

    fn decode(lists: &[InclusionAttachment]) -> Vec<InclusionList> {
        lists
            .iter()
            .filter_map(|bytes| codec::decode::<InclusionList>(bytes).ok())
            .collect()
    }

    fn rule(&self, max_items: usize) -> InclusionRule {
        InclusionRule {
            max_certs: max_items,
            max_list_len: self.max_list_len,
        }
    }
}

impl InclusionRules for MempoolInclusion {
    fn on_available(&mut self, now_ms: u64, items: &[PayloadItem]) {
        for item in items {
            let key = (self.key)(item);
            if self.committed.contains(&key) || self.pending.contains_key(&key) {
                continue;
            }
            self.arrivals += 1;
            self.pending.insert(key, (now_ms, self.arrivals));
            self.by_age.insert((now_ms, self.arrivals, key));
        }
    }

    fn on_committed(&mut self, items: &[PayloadItem]) {
        for item in items {
            let key = (self.key)(item);
            if let Some((since, n)) = self.pending.remove(&key) {
                self.by_age.remove(&(since, n, key));
            }
            if self.committed.insert(key) {
                self.committed_order.push_back(key);
            }
        }
        while self.committed_order.len() > COMMITTED_MEMORY {
            if let Some(old) = self.committed_order.pop_front() {
                self.committed.remove(&old);
            }
        }
    }

    fn list_for(&mut self, now_ms: u64, view: View) -> Option<InclusionAttachment> {
        let due: Vec<Digest> = self
            .by_age
            .iter()
            .take_while(|(since, _, _)| since.saturating_add(self.delay_ms) <= now_ms)
            .take(self.max_list_len)
            .map(|(_, _, key)| *key)
            .collect();
        let list = InclusionList::sign(&self.keypair, self.me, view, due);
        codec::encode(&list).ok()
    }

    fn item_key(&self, item: &[u8]) -> Digest {
        (self.key)(item)
    }

    fn required(
        &self,
        list_view: View,
        lists: &[InclusionAttachment],
    ) -> Result<Vec<Digest>, String> {
        required_certs(
            &Self::decode(lists),
            list_view,
            &self.committee,
            self.max_list_len,
        )
        .map_err(|e| e.to_string())
    }

    fn check(
        &self,
        list_view: View,
        items: &[Digest],
        ancestors: &dyn Fn(&Digest) -> bool,
        lists: &[InclusionAttachment],
        max_items: usize,
    ) -> Result<(), String> {
        let lists = Self::decode(lists);
        let proposal = Proposal {
            list_view,
            certs: items,
            ancestors,
            lists: &lists,
        };
        check_inclusion(&proposal, &self.committee, &self.rule(max_items))
            .map_err(|e| e.to_string())
    }
}
