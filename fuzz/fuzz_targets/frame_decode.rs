//! Every frame a peer can make a node decode, by class.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_types::codec::decode;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<ordo_consensus::Message>(data);
    let _ = decode::<ordo_mempool::Message>(data);
    let _ = decode::<ordo_node::wire::SyncMessage>(data);
    let _ = decode::<ordo_client::OutputBlock>(data);
    if let Ok(ordo_consensus::Message::Proposal(block)) = decode::<ordo_consensus::Message>(data) {
        let _ = ordo_node::payload::decode_certs(&block.payload);
    }
});
