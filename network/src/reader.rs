//! Inbound side of a connection: accepts the peer's uni streams and turns
//! their frames into [`Incoming`] values. Anything malformed is counted
//! against the peer and its stream is stopped; nothing here panics.

use std::sync::Arc;

use quinn::RecvStream;

use crate::frame;
use crate::peer::{code, Peer};
use crate::shared::Shared;
use crate::{Class, Error, Incoming};

/// Serves `connection` until it ends.
pub(crate) async fn serve(shared: Arc<Shared>, peer: Arc<Peer>, connection: quinn::Connection) {
    loop {
        match connection.accept_uni().await {
            Ok(stream) => shared.spawn(read_stream(
                shared.clone(),
                peer.clone(),
                connection.clone(),
                stream,
            )),
            Err(reason) => {
                tracing::info!(me = shared.me, peer = peer.index, %reason, "connection ended");
                break;
            }
        }
    }
    shared.disconnected(&peer);
}

async fn read_stream(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    connection: quinn::Connection,
    mut stream: RecvStream,
) {
    let mut tag = [0u8; 1];
    if stream.read_exact(&mut tag).await.is_err() {
        return;
    }
    let Some(class) = Class::from_tag(tag[0]) else {
        let _ = stream.stop(code::BAD_FRAME);
        shared.bad_frame(&peer, &connection, "stream of unknown class");
        return;
    };
    let Some(sender) = shared.incoming_sender() else {
        return;
    };
    let counters = shared.metrics.peers[usize::from(peer.index)].class(class);
    let max = shared.config.max_frame_bytes;
    loop {
        match frame::read_frame(&mut stream, max).await {
            Ok(Some(bytes)) => {
                counters.received(bytes.len());
                let incoming = Incoming {
                    from: peer.index,
                    class,
                    bytes,
                };
                if sender.send(incoming).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e @ Error::FrameTooLarge { .. }) => {
                let _ = stream.stop(code::BAD_FRAME);
                shared.bad_frame(&peer, &connection, &e.to_string());
                return;
            }
            Err(e) => {
                tracing::debug!(peer = peer.index, ?class, error = %e, "stream ended");
                return;
            }
        }
    }
}
