//! Every frame a peer can make a node decode, by class; and the zero-copy
//! batch decoder must agree with bincode on every frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_types::codec::decode;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<ordo_consensus::Message>(data);
    let theirs = decode::<ordo_mempool::Message>(data);
    let ours = ordo_mempool::wire::decode_message(&bytes::Bytes::copy_from_slice(data));
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a.message, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("decoders disagree: {a:?} vs {b:?}"),
    }
    let _ = decode::<ordo_node::wire::SyncMessage>(data);
    let _ = decode::<ordo_client::OutputBlock>(data);
    if let Ok(ordo_consensus::Message::Proposal(block)) = decode::<ordo_consensus::Message>(data) {
        let _ = ordo_node::payload::decode_certs(&block.payload);
    }
});
