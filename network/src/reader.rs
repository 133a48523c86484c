//! Inbound side of a connection: accepts the peer's uni streams and turns
//! their frames into [`Incoming`] values on their class's channel. Anything
//! malformed (unknown class, oversize length prefix, a stream finished
//! inside a frame) is counted against the peer and its stream is stopped;
//! nothing here panics. Our writers never finish a stream inside a frame:
//! one cut short is reset (see `writer`), which is not counted.

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
        shared.bad_frame(&peer, Some(&connection), "stream of unknown class");
        return;
    };
    let Some(sender) = shared.incoming_sender(class) else {
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
            Err(e @ (Error::FrameTooLarge { .. } | Error::TruncatedFrame { .. })) => {
                let _ = stream.stop(code::BAD_FRAME);
                shared.bad_frame(&peer, Some(&connection), &e.to_string());
                return;
            }
            Err(e) => {
                tracing::debug!(peer = peer.index, ?class, error = %e, "stream ended");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Member 0 is played by a raw quinn endpoint holding member 0's key,
    //! so it can write what no `Network` would: streams of unknown class
    //! and streams that end inside a frame. Member 1 is a real `Network`
    //! (it accepts the lower index).

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use ordo_types::{Committee, Keypair, Member};

    use super::*;
    use crate::metrics::Metrics;
    use crate::tls::{Identity, SERVER_NAME};
    use crate::{quic, Config, Network};

    fn member(key: &Keypair, address: SocketAddr) -> Member {
        Member {
            key: key.public(),
            address,
            api_address: address,
        }
    }

    async fn try_send_raw(connection: &quinn::Connection, bytes: &[u8]) -> Option<()> {
        let mut stream = connection.open_uni().await.ok()?;
        stream.write_all(bytes).await.ok()?;
        stream.finish().ok()
    }

    async fn send_raw(connection: &quinn::Connection, bytes: &[u8]) {
        try_send_raw(connection, bytes).await.unwrap();
    }

    async fn eventually(mut check: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        check()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_class_and_truncated_frames_strike_until_a_ban_then_readmit() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let keys = [Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32])];
            let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let raw_socket = std::net::UdpSocket::bind(loopback).unwrap();
            let bound = Network::bind(loopback).unwrap();
            let target = bound.local_addr();
            let committee = Arc::new(
                Committee::new(vec![
                    member(&keys[0], raw_socket.local_addr().unwrap()),
                    member(&keys[1], target),
                ])
                .unwrap(),
            );
            let config = Config {
                idle_timeout_ms: 2_000,
                keep_alive_ms: 400,
                ban_ms: 1_500,
                ..Config::default()
            };
            let (net, mut inbox) = bound
                .start(config.clone(), &keys[1], committee.clone())
                .unwrap();
            let identity = Identity::new(&keys[0]).unwrap();
            let metrics = Arc::new(Metrics::new(2));
            let client = quic::client_config(&config, &identity, &committee, 1, &metrics).unwrap();
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                raw_socket,
                Arc::new(quinn::TokioRuntime),
            )
            .unwrap();
            let connect = || async {
                endpoint
                    .connect_with(client.clone(), target, SERVER_NAME)
                    .unwrap()
                    .await
            };
            let peer0 = |net: &Network| net.metrics().peer(0).unwrap().clone();
            let good = |payload: &[u8]| {
                let mut wire = vec![Class::Consensus.tag()];
                wire.extend_from_slice(&crate::frame::header(payload.len(), 64).unwrap());
                wire.extend_from_slice(payload);
                wire
            };

            let connection = connect().await.unwrap();
            send_raw(&connection, &good(b"hello")).await;
            let m = inbox.recv().await.unwrap();
            assert_eq!((m.from, m.class, &m.bytes[..]), (0, Class::Consensus, &b"hello"[..]));
            assert_eq!(peer0(&net).bad_frames, 0, "a clean end of stream is not a bad frame");

            // Strike 1: a stream of unknown class.
            send_raw(&connection, &[0x77, 0, 0, 0, 1, 0]).await;
            assert!(eventually(|| peer0(&net).bad_frames == 1).await);
            // Strike 2: a payload cut short (100 bytes announced, 10 sent).
            let mut cut = vec![Class::Batches.tag(), 0, 0, 0, 100];
            cut.extend_from_slice(&[7; 10]);
            send_raw(&connection, &cut).await;
            assert!(eventually(|| peer0(&net).bad_frames == 2).await);
            assert_eq!(peer0(&net).bans, 0);
            assert!(connection.close_reason().is_none(), "closed before the limit");
            // Strike 3: a length prefix cut short. That is the limit.
            send_raw(&connection, &[Class::Sync.tag(), 0, 0]).await;
            let closed = tokio::time::timeout(Duration::from_secs(5), connection.closed())
                .await
                .unwrap();
            let banned_at = Instant::now();
            assert!(
                matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == code::BANNED),
                "{closed:?}"
            );
            assert_eq!((peer0(&net).bad_frames, peer0(&net).bans), (3, 1));
            assert!(inbox.try_recv().is_err(), "a bad frame was delivered");

            // During the ban a new connection is closed at once.
            if let Ok(again) = connect().await {
                let closed = tokio::time::timeout(Duration::from_secs(5), again.closed())
                    .await
                    .unwrap();
                assert!(
                    matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == code::BANNED),
                    "{closed:?}"
                );
            }
            assert!(net.metrics().refused_connections >= 1);

            // After the ban the same member is admitted and heard again.
            let readmitted = async {
                loop {
                    // A connection closed at once (still banned) fails here.
                    if let Ok(connection) = connect().await {
                        let _ = try_send_raw(&connection, &good(b"back")).await;
                        if let Ok(Some(m)) =
                            tokio::time::timeout(Duration::from_millis(200), inbox.recv()).await
                        {
                            return (m, connection);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let (m, connection) = tokio::time::timeout(Duration::from_secs(8), readmitted)
                .await
                .unwrap();
            assert_eq!(&m.bytes[..], b"back");
            assert!(
                banned_at.elapsed() >= Duration::from_millis(config.ban_ms - 200),
                "readmitted after only {:?}",
                banned_at.elapsed()
            );
            connection.close(code::SHUTDOWN, b"done");
            net.shutdown().await;
        })
        .await
        .unwrap();
    }
}
