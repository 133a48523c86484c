//! Every consensus message handler: the input is a sequence of records fed
//! to one core at genesis, interleaved with the timers the core asks for.
//!
//! Random bytes never carry a valid signature, so raw frames alone only
//! reach the checks before signature verification. Besides raw frames
//! (decoded as a peer's would be), a record can therefore ask for a
//! correctly signed message whose fields the fuzzer chooses: proposals
//! extending any known block (the core's own included), votes, timeouts,
//! QCs and TCs with any signer set, block requests and responses, and
//! payload. That drives the core past verification into the pacemaker,
//! voting, locking and commit logic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordo_consensus::messages::{timeout_message, vote_message};
use ordo_consensus::testing::Fixture;
use ordo_consensus::{
    Action, Block, Config, Core, Event, Message, QuorumCert, Timeout, Timer, Vote,
};
use ordo_fuzz::{fixture, Input, N};
use ordo_types::codec::decode;

const MAX_BLOCKS: usize = 64;

struct Run<'a> {
    fx: &'a Fixture,
    core: Core,
    now: u64,
    timers: Vec<Timer>,
    /// Genesis, every proposal sent to or by the core.
    blocks: Vec<Block>,
}

impl Run<'_> {
    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::ScheduleTimer { timer, .. } => self.timers.push(timer),
                Action::Broadcast {
                    message: Message::Proposal(block),
                } => self.remember(*block),
                _ => {}
            }
        }
    }
    fn remember(&mut self, block: Block) {
        if self.blocks.len() < MAX_BLOCKS
            && !self.blocks.iter().any(|b| b.digest() == block.digest())
        {
            self.blocks.push(block);
        }
    }
    fn handle(&mut self, event: Event) {
        self.now += 10;
        let actions = self.core.handle(self.now, event);
        self.apply(actions);
    }
    fn block(&self, pick: u8) -> &Block {
        &self.blocks[usize::from(pick) % self.blocks.len()]
    }
    /// A QC for a known block by the members set in `mask` (the genesis QC
    /// for genesis); a mask of 0 means the first quorum.
    fn qc(&self, pick: u8, mask: u8) -> QuorumCert {
        let block = self.block(pick);
        if block.height() == 0 {
            return self.fx.genesis_qc();
        }
        let signers: Vec<u16> = (0..N as u16).filter(|i| mask & (1 << i) != 0).collect();
        if signers.is_empty() {
            self.fx.qc(block)
        } else {
            self.fx.qc_by(block, &signers)
        }
    }
    fn message(&mut self, from: u8, message: Message) {
        let from = u16::from(from) % N as u16;
        self.handle(Event::Message { from, message });
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let mut input = Input::new(data);
    let me = u16::from(input.byte().unwrap_or(1)) % N as u16;
    let mut run = Run {
        fx,
        core: fx.core(me, Config::default()),
        now: 0,
        timers: Vec::new(),
        blocks: vec![fx.genesis()],
    };
    let actions = run.core.start(0);
    run.apply(actions);
    while let Some(op) = input.byte() {
        let (Some(a), Some(b)) = (input.byte(), input.byte()) else {
            break;
        };
        match op % 10 {
            // A raw frame, decoded as a peer's would be; an undecodable one
            // lets the next timer fire instead.
            0 | 1 => {
                let (frame, from) = input.frame(a, b);
                if let Ok(message) = decode::<Message>(frame) {
                    run.message(from, message);
                } else if let Some(timer) = run.timers.pop() {
                    run.now += 5_000;
                    run.handle(Event::TimerFired(timer));
                }
            }
            // A timer: the last one scheduled, or any view's.
            2 => {
                let timer = match a % 3 {
                    0 => run.timers.pop().unwrap_or(Timer::View(u64::from(b))),
                    1 => Timer::View(u64::from(b % 16)),
                    _ => Timer::Propose(u64::from(b % 16)),
                };
                run.now += u64::from(a) * 100;
                run.handle(Event::TimerFired(timer));
            }
            // Payload ready to propose.
            3 => {
                let items = (0..a % 4)
                    .map(|_| input.bytes(usize::from(b % 64)).to_vec())
                    .collect();
                run.handle(Event::PayloadAvailable(items));
            }
            // A proposal by member `a % N` extending a known block, in a
            // view 1..=4 past it, optionally with a TC for the view before.
            4 => {
                let author = u16::from(a) % N as u16;
                let parent = run.block(b).clone();
                let qc = run.qc(b, 0);
                let flags = input.byte().unwrap_or(0);
                let view = parent.view() + 1 + u64::from(flags & 3);
                let tc = (flags & 4 != 0).then(|| fx.tc(view - 1, &[qc.view], &qc));
                let items = if flags & 8 != 0 {
                    vec![input.bytes(usize::from(flags >> 4)).to_vec()]
                } else {
                    Vec::new()
                };
                let block = fx.block(view, author, &parent, &qc, tc, items);
                run.remember(block.clone());
                run.message(a >> 2, Message::Proposal(Box::new(block)));
            }
            // A vote by member `a % N` for a known block, in its view or
            // (high bit of `a`) another.
            5 => {
                let block = run.block(b).clone();
                let view = if a & 0x80 != 0 {
                    u64::from(a >> 4 & 7)
                } else {
                    block.view()
                };
                let author = u16::from(a) % N as u16;
                let vote = Vote {
                    view,
                    block: block.digest(),
                    author,
                    signature: fx.keys[usize::from(author)]
                        .sign(&vote_message(view, &block.digest())),
                    inclusion: None,
                };
                run.message(a >> 2, Message::Vote(vote));
            }
            // A timeout by member `a % N` for view `b % 16` carrying the QC
            // of a known block.
            6 => {
                let pick = input.byte().unwrap_or(0);
                let high_qc = run.qc(pick, 0);
                let author = u16::from(a) % N as u16;
                let view = u64::from(b % 16);
                let timeout = Timeout {
                    view,
                    signature: fx.keys[usize::from(author)]
                        .sign(&timeout_message(view, high_qc.view)),
                    high_qc,
                    author,
                    inclusion: None,
                };
                run.message(a >> 2, Message::Timeout(Box::new(timeout)));
            }
            // A QC for a known block signed by the members in `a`.
            7 => {
                let qc = run.qc(b, a & 0x0f);
                run.message(a >> 4, Message::Qc(Box::new(qc)));
            }
            // A TC for view `a % 16` carrying the QC of a known block.
            8 => {
                let high_qc = run.qc(b, 0);
                let tc = fx.tc(u64::from(a % 16), &[high_qc.view], &high_qc);
                run.message(a >> 4, Message::Tc(Box::new(tc)));
            }
            // A block request or response for a known block.
            _ => {
                let block = run.block(b).clone();
                let message = if a & 1 == 0 {
                    Message::BlockRequest(block.digest())
                } else {
                    Message::BlockResponse(Box::new(block))
                };
                run.message(a >> 1, message);
            }
        }
    }
});
