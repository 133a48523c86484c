//! The HTTP transaction bodies: the chunk splitter and the JSON body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(txs) = ordo_node::api::split_chunk(&body) {
        assert_eq!(txs.iter().map(|t| t.len() + 4).sum::<usize>(), data.len());
        assert!(txs.iter().all(|t| !t.is_empty()));
    }
    let _ = serde_json::from_slice::<serde_json::Value>(data);
});
