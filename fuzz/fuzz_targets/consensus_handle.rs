//! Every consensus message handler: the input is a sequence of
//! (sender, length, frame) records fed to one core at genesis, interleaved
//! with the timers the core asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_consensus::testing::Fixture;
use ordo_consensus::{Action, Config, Event};
use ordo_types::codec::decode;

fuzz_target!(|data: &[u8]| {
    let fx = Fixture::new(4);
    let mut core = fx.core(1, Config::default());
    let mut now = 0;
    let mut timers = Vec::new();
    for a in core.start(now) {
        if let Action::ScheduleTimer { timer, .. } = a {
            timers.push(timer);
        }
    }
    let mut rest = data;
    while rest.len() >= 3 {
        let from = u16::from(rest[0] % 4);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += 10;
        if let Ok(message) = decode::<ordo_consensus::Message>(frame) {
            for a in core.handle(now, Event::Message { from, message }) {
                if let Action::ScheduleTimer { timer, .. } = a {
                    timers.push(timer);
                }
            }
        } else if let Some(timer) = timers.pop() {
            let _ = core.handle(now + 5_000, Event::TimerFired(timer));
        }
    }
});
