//! Why a peer's message was refused. Every refusal of peer input that is not
//! simply stale becomes an `Action::Misbehaviour` carrying one of these.

use ordo_types::NodeIndex;

use crate::messages::View;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    #[error("malformed QC: {0}")]
    MalformedQc(&'static str),
    #[error("malformed TC: {0}")]
    MalformedTc(&'static str),
    #[error("malformed commit certificate: {0}")]
    MalformedCommitCert(&'static str),
    #[error("malformed block: {0}")]
    MalformedBlock(&'static str),
    #[error("proposal for view {view} by {author}, but its leader is {leader}")]
    WrongLeader {
        view: View,
        author: NodeIndex,
        leader: NodeIndex,
    },
    #[error("message authored by {author} relayed by {from}")]
    WrongSender { from: NodeIndex, author: NodeIndex },
    #[error("two proposals in view {0}")]
    Equivocation(View),
    #[error("two different votes in view {0}")]
    DoubleVote(View),
    #[error("proposal breaks the vote rule: {0}")]
    UnsafeProposal(&'static str),
    #[error("payload refused: {0}")]
    BadPayload(String),
}
