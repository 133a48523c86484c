//! Every mempool message handler: (sender, length, frame) records fed to
//! one mempool.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_consensus::testing::Fixture;
use ordo_mempool::{Config, Event, Mempool};
use ordo_types::codec::decode;

fuzz_target!(|data: &[u8]| {
    let fx = Fixture::new(4);
    let mut mempool = Mempool::new(1, fx.keys[1].clone(), (*fx.committee).clone(), Config::default(), 0)
        .expect("valid mempool");
    let mut now = 0;
    let mut rest = data;
    while rest.len() >= 3 {
        let from = u16::from(rest[0] % 4);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += 10;
        if let Ok(message) = decode::<ordo_mempool::Message>(frame) {
            let _ = mempool.handle(now, Event::Message { from, message });
        }
    }
});
