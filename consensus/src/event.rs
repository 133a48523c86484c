//! The core's inputs and outputs.

use ordo_types::{Digest, NodeIndex};

use crate::messages::{Block, CommittedBlock, Message, PayloadItem, View};
use crate::safety::SafetyData;
use crate::Fault;

/// The core's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The view's timeout (and, once timed out, re-broadcast of the timeout).
    View(View),
    /// An idle leader's heartbeat: propose even without payload.
    Propose(View),
}

/// Something that happened to this node.
#[derive(Clone, Debug)]
pub enum Event {
    /// A message from an authenticated peer.
    Message { from: NodeIndex, message: Message },
    /// A timer scheduled by [`Action::ScheduleTimer`] is due.
    TimerFired(Timer),
    /// Payload items (e.g. batch certificates) ready to be proposed.
    PayloadAvailable(Vec<PayloadItem>),
}

/// Something the host must do, in order. A [`Action::Persist`] or
/// [`Action::PersistBlock`] must be durable before any later action of the
/// same batch is executed.
///
/// `Persist` carries the safety data inline (with the lock's QC and the
/// last TC it is larger than the other variants); one per signature, so
/// the size difference does not matter.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Send {
        to: NodeIndex,
        message: Message,
    },
    /// Send to every other member.
    Broadcast {
        message: Message,
    },
    /// Deliver `Event::TimerFired(timer)` at (or after) `at_ms`. Timers are
    /// never cancelled: a stale one is ignored when it fires.
    ScheduleTimer {
        timer: Timer,
        at_ms: u64,
    },
    /// Make this safety data durable before executing the next action.
    Persist(SafetyData),
    /// Make this block durable before executing the next action, like
    /// [`Action::Persist`]. The core emits it for every block it is about to
    /// vote for (its own proposals included), just before the `Persist` of
    /// that vote, so one fsync can cover both. On restart the host passes
    /// the stored blocks above the committed root back in
    /// [`crate::Recovery::blocks`] (any order): they may be the only copies
    /// of certified blocks if more than f nodes crashed together. The host
    /// may delete stored blocks at or below the committed root's view.
    PersistBlock(Box<Block>),
    /// Ask `from` for a block this node misses (sent as a
    /// `Message::BlockRequest`; listed separately so hosts can also serve
    /// it from storage or count it).
    FetchBlock {
        digest: Digest,
        from: NodeIndex,
    },
    /// The next committed block, in strict height order with no gap.
    Commit(Box<CommittedBlock>),
    /// A peer sent something invalid; the host may score or penalise it.
    Misbehaviour {
        peer: NodeIndex,
        fault: Fault,
    },
}
