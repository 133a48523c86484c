//! Traffic classes: each gets its own long-lived QUIC stream per peer, so a
//! large batch never sits in front of a vote.

/// What a frame is for; decides its stream, queue policy and priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Votes, proposals, timeouts: small, latency-critical, retransmitted by
    /// consensus, so the oldest queued frame is dropped on overflow.
    Consensus,
    /// Transaction batches: large, throughput-bound; overflow refuses the new
    /// frame with [`crate::Error::QueueFull`].
    Batches,
    /// Catch-up requests and replies; overflow refuses the new frame.
    Sync,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Consensus, Class::Batches, Class::Sync];

    /// Position in per-class arrays.
    pub fn index(self) -> usize {
        match self {
            Class::Consensus => 0,
            Class::Batches => 1,
            Class::Sync => 2,
        }
    }

    /// The first byte of every stream names its class.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Class::Consensus => 0xC0,
            Class::Batches => 0xBA,
            Class::Sync => 0x5C,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.tag() == tag)
    }

    /// QUIC send priority: higher is sent first when streams compete.
    pub(crate) fn priority(self) -> i32 {
        match self {
            Class::Consensus => 2,
            Class::Sync => 1,
            Class::Batches => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_are_distinct() {
        for class in Class::ALL {
            assert_eq!(Class::from_tag(class.tag()), Some(class));
            assert_eq!(Class::ALL[class.index()], class);
        }
        assert_eq!(Class::from_tag(0), None);
    }
}
