//! Client load: transactions whose payload names their client and sequence
//! number, so the checkers can follow each one from submission through its
//! batch and certificate to the commit. The client is also the namespace.

use ordo_consensus::PayloadItem;
use ordo_mempool::Transaction;

/// Bytes at the start of every generated item: client (2), sequence (8).
pub const ITEM_HEADER_BYTES: usize = 10;

/// Identity of a generated item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    pub client: u16,
    pub seq: u64,
}

/// An item of exactly `size` bytes (at least the header).
pub fn make_item(id: ItemId, size: usize) -> PayloadItem {
    let mut item = vec![0u8; size.max(ITEM_HEADER_BYTES)];
    item[..2].copy_from_slice(&id.client.to_le_bytes());
    item[2..10].copy_from_slice(&id.seq.to_le_bytes());
    for (k, b) in item[ITEM_HEADER_BYTES..].iter_mut().enumerate() {
        *b = (id.seq as u8).wrapping_add(k as u8);
    }
    item
}

/// A transaction of client `id.client` (its namespace) whose payload is
/// [`make_item`]`(id, size)`.
pub fn make_tx(id: ItemId, size: usize) -> Transaction {
    Transaction::new(u64::from(id.client), make_item(id, size))
}

/// The identity of a generated item; `None` for anything else (e.g. the
/// marker a Byzantine node adds to make a second proposal).
pub fn item_id(item: &[u8]) -> Option<ItemId> {
    if item.len() < ITEM_HEADER_BYTES {
        return None;
    }
    let client = u16::from_le_bytes([item[0], item[1]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&item[2..10]);
    Some(ItemId {
        client,
        seq: u64::from_le_bytes(seq),
    })
}
