//! A set that remembers at most `capacity` items, forgetting the oldest.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use ordo_types::DigestState;

/// Insertion-ordered set with a hard size bound (FIFO eviction).
#[derive(Clone, Debug)]
pub struct BoundedSet<T> {
    set: HashSet<T, DigestState>,
    order: VecDeque<T>,
    capacity: usize,
}

impl<T: Copy + Eq + Hash> BoundedSet<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            set: HashSet::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts `item`; false if it was already present. Evicts the oldest
    /// item when full.
    pub fn insert(&mut self, item: T) -> bool {
        if !self.set.insert(item) {
            return false;
        }
        self.order.push_back(item);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest() {
        let mut set = BoundedSet::new(2);
        assert!(set.insert(1));
        assert!(!set.insert(1));
        assert!(set.insert(2));
        assert!(set.insert(3));
        assert_eq!(set.len(), 2);
        assert!(!set.contains(&1));
        assert!(set.contains(&2) && set.contains(&3));
    }
}
