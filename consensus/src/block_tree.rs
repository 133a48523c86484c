//! The tree of uncommitted blocks hanging off the last committed block.
//!
//! Invariants: every block in `blocks` has its parent in `blocks` or is a
//! child of `root`; heights increase by one along parent links; views
//! strictly increase along parent links. Blocks whose parent is unknown wait
//! in a bounded orphan pool until the parent arrives.

use std::collections::{HashMap, VecDeque};

use ordo_types::Digest;

use crate::messages::{Block, View};
use crate::Fault;

/// Most orphan blocks held while their ancestors are fetched.
const MAX_ORPHANS: usize = 256;

pub struct BlockTree {
    root: Block,
    root_digest: Digest,
    blocks: HashMap<Digest, Block>,
    /// Recently committed blocks, oldest first, kept to answer peers' fetches.
    recent: VecDeque<Digest>,
    recent_blocks: HashMap<Digest, Block>,
    recent_capacity: usize,
    /// Blocks waiting for their parent, keyed by the missing parent.
    orphans: HashMap<Digest, Vec<Block>>,
    orphan_count: usize,
}

/// What inserting a block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Added (or already present); carries orphans that are now connected
    /// and inserted too, in parent-before-child order.
    Added(Vec<Digest>),
    /// The parent is unknown; the block waits as an orphan (if there was room).
    MissingParent(Digest),
    /// The block extends a branch that can never commit (below the root).
    Stale,
}

impl BlockTree {
    pub fn new(root: Block, recent_capacity: usize) -> Self {
        let root_digest = root.digest();
        BlockTree {
            root,
            root_digest,
            blocks: HashMap::new(),
            recent: VecDeque::new(),
            recent_blocks: HashMap::new(),
            recent_capacity,
            orphans: HashMap::new(),
            orphan_count: 0,
        }
    }

    /// The last committed block.
    pub fn root(&self) -> &Block {
        &self.root
    }

    pub fn root_digest(&self) -> Digest {
        self.root_digest
    }

    /// A block we hold: uncommitted, the root, or recently committed.
    pub fn get(&self, digest: &Digest) -> Option<&Block> {
        if *digest == self.root_digest {
            return Some(&self.root);
        }
        self.blocks
            .get(digest)
            .or_else(|| self.recent_blocks.get(digest))
    }

    /// An uncommitted block or the root: something a new block may extend.
    pub fn get_extendable(&self, digest: &Digest) -> Option<&Block> {
        if *digest == self.root_digest {
            return Some(&self.root);
        }
        self.blocks.get(digest)
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.get(digest).is_some()
    }

    pub fn is_orphan(&self, digest: &Digest) -> bool {
        self.orphans
            .values()
            .any(|children| children.iter().any(|b| b.digest() == *digest))
    }

    /// Uncommitted block held for `view` by `author` other than `digest`, if
    /// any: evidence of equivocation.
    pub fn conflicting(&self, view: View, author: u16, digest: &Digest) -> bool {
        self.blocks
            .iter()
            .any(|(d, b)| b.view() == view && b.author() == author && d != digest)
    }

    /// Inserts a block already checked for everything but its parent link.
    pub fn insert(&mut self, block: Block) -> Result<Inserted, Fault> {
        let digest = block.digest();
        if self.contains(&digest) {
            return Ok(Inserted::Added(Vec::new()));
        }
        if block.view() <= self.root.view() {
            return Ok(Inserted::Stale);
        }
        let parent = block.header.parent;
        let Some(parent_block) = self.get_extendable(&parent) else {
            if self.recent_blocks.contains_key(&parent) {
                return Ok(Inserted::Stale);
            }
            if self.orphan_count < MAX_ORPHANS {
                let waiting = self.orphans.entry(parent).or_default();
                if !waiting.iter().any(|b| b.digest() == digest) {
                    waiting.push(block);
                    self.orphan_count += 1;
                }
            }
            return Ok(Inserted::MissingParent(parent));
        };
        check_link(parent_block, &block)?;
        self.blocks.insert(digest, block);
        let mut added = Vec::new();
        self.adopt_orphans(digest, &mut added);
        Ok(Inserted::Added(added))
    }

    fn adopt_orphans(&mut self, parent: Digest, added: &mut Vec<Digest>) {
        let mut queue = vec![parent];
        while let Some(parent) = queue.pop() {
            let Some(children) = self.orphans.remove(&parent) else {
                continue;
            };
            self.orphan_count -= children.len();
            for child in children {
                let ok = self
                    .blocks
                    .get(&parent)
                    .is_some_and(|p| check_link(p, &child).is_ok());
                if ok {
                    let d = child.digest();
                    self.blocks.insert(d, child);
                    added.push(d);
                    queue.push(d);
                }
            }
        }
    }

    /// The uncommitted ancestors of `digest` back to (excluding) the root,
    /// newest first, including `digest` itself; `None` if the path is broken.
    pub fn path_to_root(&self, digest: &Digest) -> Option<Vec<&Block>> {
        let mut path = Vec::new();
        let mut cursor = *digest;
        while cursor != self.root_digest {
            let block = self.blocks.get(&cursor)?;
            path.push(block);
            cursor = block.header.parent;
        }
        Some(path)
    }

    /// Makes `digest` the new root. Returns the newly committed blocks in
    /// height order, and prunes every branch that no longer extends the root.
    pub fn commit(&mut self, digest: &Digest) -> Vec<Block> {
        let Some(path) = self.path_to_root(digest) else {
            return Vec::new();
        };
        let digests: Vec<Digest> = path.iter().rev().map(|b| b.digest()).collect();
        let mut committed = Vec::with_capacity(digests.len());
        for d in digests {
            if let Some(block) = self.blocks.remove(&d) {
                committed.push(block);
            }
        }
        let Some(new_root) = committed.last().cloned() else {
            return committed;
        };
        let old_root = std::mem::replace(&mut self.root, new_root);
        self.remember(old_root);
        for block in &committed[..committed.len() - 1] {
            self.remember(block.clone());
        }
        self.root_digest = self.root.digest();
        self.prune();
        committed
    }

    /// Adds committed blocks below the root to the recent window (a
    /// restarted node's view of the chain behind its root).
    pub fn remember_ancestors(&mut self, ancestors: Vec<Block>) {
        for block in ancestors.into_iter().rev() {
            if block.view() < self.root.view() {
                self.remember(block);
            }
        }
    }

    fn remember(&mut self, block: Block) {
        if self.recent_capacity == 0 {
            return;
        }
        let digest = block.digest();
        self.recent.push_back(digest);
        self.recent_blocks.insert(digest, block);
        while self.recent.len() > self.recent_capacity {
            if let Some(old) = self.recent.pop_front() {
                self.recent_blocks.remove(&old);
            }
        }
    }

    /// Drops blocks that do not descend from the root, and orphans at or
    /// below the root's view.
    fn prune(&mut self) {
        let mut keep: Vec<(View, Digest)> =
            self.blocks.iter().map(|(d, b)| (b.view(), *d)).collect();
        keep.sort();
        let mut connected = std::collections::HashSet::new();
        connected.insert(self.root_digest);
        for (_, d) in keep {
            let parent = self.blocks.get(&d).map(|b| b.header.parent);
            if parent.is_some_and(|p| connected.contains(&p)) {
                connected.insert(d);
            } else {
                self.blocks.remove(&d);
            }
        }
        let root_view = self.root.view();
        self.orphans.retain(|_, children| {
            children.retain(|b| b.view() > root_view);
            !children.is_empty()
        });
        self.orphan_count = self.orphans.values().map(Vec::len).sum();
    }

    /// Number of uncommitted blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// A child must sit one height above its parent and in a later view.
fn check_link(parent: &Block, child: &Block) -> Result<(), Fault> {
    if child.height() != parent.height() + 1 {
        return Err(Fault::MalformedBlock("height is not parent height + 1"));
    }
    if child.view() <= parent.view() || child.header.parent_view != parent.view() {
        return Err(Fault::MalformedBlock("view does not follow the parent's"));
    }
    Ok(())
}
