//! One task per peer and class: pops the class queue and writes frames to
//! that class's long-lived uni stream, reopening it on the current
//! connection whenever the stream or connection is lost.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytes::Bytes;
use quinn::{SendStream, WriteError};

use crate::metrics::ClassCounters;
use crate::peer::{code, Peer};
use crate::shared::Shared;
use crate::Class;

pub(crate) async fn run(shared: Arc<Shared>, peer: Arc<Peer>, class: Class) {
    let counters = shared.metrics.peers[usize::from(peer.index)].class(class);
    let queue = peer.queue(class);
    let mut connections = peer.watch();
    // A frame whose write failed: retried on a fresh stream. `stopped` says
    // the peer stopped a stream under it once already.
    let mut pending: Option<(Bytes, bool)> = None;
    loop {
        let Some(connection) = next_connection(&shared, &mut connections).await else {
            return;
        };
        let mut stream = match open(&connection, class).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(peer = peer.index, ?class, error = %e, "cannot open stream");
                continue;
            }
        };
        loop {
            let (frame, stopped_before) = match pending.take() {
                Some(retry) => retry,
                None => tokio::select! {
                    biased;
                    () = shared.stopping() => {
                        drain(&shared, &peer, class, stream, counters).await;
                        return;
                    }
                    frame = queue.pop() => (frame, false),
                    _ = connection.closed() => break,
                },
            };
            match write(&mut stream, &frame).await {
                Ok(()) => counters.sent(frame.len()),
                Err(WriteError::Stopped(code)) if stopped_before => {
                    // Refused on two streams in a row: this frame is what
                    // the peer will not take. Drop it rather than loop.
                    tracing::debug!(peer = peer.index, ?class, %code, "frame refused twice");
                    counters.drop_one();
                    break;
                }
                Err(WriteError::Stopped(code)) => {
                    // The peer stopped the stream, most likely over an
                    // earlier frame: retry this one on a new stream.
                    tracing::debug!(peer = peer.index, ?class, %code, "stream stopped by peer");
                    pending = Some((frame, true));
                    break;
                }
                Err(e) => {
                    tracing::debug!(peer = peer.index, ?class, error = %e, "write failed");
                    pending = Some((frame, stopped_before));
                    break;
                }
            }
        }
    }
}

/// The current open connection, waiting for one if needed; `None` once
/// shutdown is signalled.
async fn next_connection(
    shared: &Shared,
    connections: &mut tokio::sync::watch::Receiver<Option<quinn::Connection>>,
) -> Option<quinn::Connection> {
    loop {
        if shared.is_stopping() {
            return None;
        }
        let current = connections
            .borrow_and_update()
            .as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned();
        if current.is_some() {
            return current;
        }
        tokio::select! {
            changed = connections.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            () = shared.stopping() => return None,
        }
    }
}

/// A class stream that is reset, not finished, when dropped unless
/// [`ClassStream::finish`] was called. quinn finishes a dropped stream, so
/// a writer aborted inside a frame (the `Network` dropped, or the shutdown
/// drain timed out) would leave the peer a stream that ends mid-frame,
/// which the peer counts as a bad frame; a reset it does not count.
struct ClassStream {
    stream: SendStream,
    finished: bool,
}

impl ClassStream {
    fn finish(&mut self) -> bool {
        self.finished = true;
        self.stream.finish().is_ok()
    }
}

impl Deref for ClassStream {
    type Target = SendStream;
    fn deref(&self) -> &SendStream {
        &self.stream
    }
}

impl DerefMut for ClassStream {
    fn deref_mut(&mut self) -> &mut SendStream {
        &mut self.stream
    }
}

impl Drop for ClassStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.stream.reset(code::ABORTED);
        }
    }
}

async fn open(connection: &quinn::Connection, class: Class) -> Result<ClassStream, WriteError> {
    let mut stream = ClassStream {
        stream: connection.open_uni().await?,
        finished: false,
    };
    stream.set_priority(class.priority())?;
    stream.write_all(&[class.tag()]).await?;
    Ok(stream)
}

async fn write(stream: &mut SendStream, frame: &Bytes) -> Result<(), WriteError> {
    // `send` already refused frames over the limit, so the prefix fits.
    let prefix = (frame.len() as u32).to_be_bytes();
    stream
        .write_all_chunks(&mut [Bytes::copy_from_slice(&prefix), frame.clone()])
        .await
}

/// On shutdown: writes what is queued, finishes the stream and waits for
/// the peer to acknowledge it. [`crate::Network::shutdown`] bounds the wait.
async fn drain(
    shared: &Shared,
    peer: &Peer,
    class: Class,
    mut stream: ClassStream,
    counters: &ClassCounters,
) {
    while let Some(frame) = peer.queue(class).try_pop() {
        if write(&mut stream, &frame).await.is_err() {
            counters.drop_one();
            return;
        }
        counters.sent(frame.len());
    }
    if stream.finish() {
        let _ = stream.stopped().await;
    }
    tracing::debug!(me = shared.me, peer = peer.index, ?class, "stream drained");
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_matches_frame_header() {
        let len = 513usize;
        assert_eq!(
            (len as u32).to_be_bytes(),
            crate::frame::header(len, 1024).unwrap()
        );
    }
}
