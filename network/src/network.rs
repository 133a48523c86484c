//! The public handle: bind, start, send, broadcast, metrics, shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ordo_types::{Committee, Keypair, NodeIndex};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::metrics::{Metrics, MetricsSnapshot, PathSnapshot};
use crate::peer::{code, Peer};
use crate::queue::Pushed;
use crate::shared::Shared;
use crate::tls::Identity;
use crate::{acceptor, dialer, frame, quic, writer, Class, Error, Inbox, Result};

/// A frame received from an authenticated committee member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub from: NodeIndex,
    pub class: Class,
    pub bytes: Bytes,
}

/// A bound UDP socket not yet serving; lets callers learn an OS-assigned
/// port before building the committee.
#[derive(Debug)]
pub struct Bound {
    socket: std::net::UdpSocket,
    local: SocketAddr,
}

/// A running endpoint. Dropping it aborts everything at once (like a
/// crash); [`Network::shutdown`] drains queued frames first.
pub struct Network {
    shared: Arc<Shared>,
}

impl Network {
    /// Binds the UDP socket the endpoint will use.
    pub fn bind(addr: SocketAddr) -> Result<Bound> {
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        let local = socket
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Bound { socket, local })
    }

    /// Our committee index.
    pub fn me(&self) -> NodeIndex {
        self.shared.me
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.shared.endpoint.local_addr()?)
    }

    /// Queues `bytes` for `to` on `class`. Never blocks. A full Consensus
    /// queue drops its oldest frame; a full Batches or Sync queue refuses
    /// this one with [`Error::QueueFull`] (counted as `refused`): the caller
    /// owns the retry (the mempool retransmits and refetches batches, sync
    /// asks again).
    pub fn send(&self, to: NodeIndex, class: Class, bytes: Bytes) -> Result<()> {
        self.check(&bytes)?;
        let peer = self.shared.peer(to).ok_or(Error::UnknownPeer(to))?;
        if self.push(peer, class, bytes) {
            Ok(())
        } else {
            Err(Error::QueueFull {
                class,
                peers: vec![to],
            })
        }
    }

    /// Queues `bytes` for every other member. Members whose queue refused
    /// the frame are listed in [`Error::QueueFull`]; the others got it.
    pub fn broadcast(&self, class: Class, bytes: Bytes) -> Result<()> {
        self.check(&bytes)?;
        let refused: Vec<NodeIndex> = self
            .shared
            .peers
            .iter()
            .flatten()
            .filter(|peer| !self.push(peer, class, bytes.clone()))
            .map(|peer| peer.index)
            .collect();
        match refused.is_empty() {
            true => Ok(()),
            false => Err(Error::QueueFull {
                class,
                peers: refused,
            }),
        }
    }

    fn check(&self, bytes: &Bytes) -> Result<()> {
        if self.shared.closing.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        frame::header(bytes.len(), self.shared.config.max_frame_bytes).map(|_| ())
    }

    /// Returns false if the queue refused the frame.
    fn push(&self, peer: &Peer, class: Class, bytes: Bytes) -> bool {
        let counters = self.shared.metrics.peers[usize::from(peer.index)].class(class);
        match peer.queue(class).push(bytes) {
            Pushed::Queued => true,
            Pushed::EvictedOldest => {
                counters.drop_one();
                true
            }
            Pushed::Rejected => {
                counters.refuse_one();
                false
            }
        }
    }

    /// Counts a frame from `peer` that the consumer could not decode
    /// against it, exactly like a malformed frame seen by the transport:
    /// after [`Config::max_bad_frames`] of them the peer is disconnected and
    /// banned for [`Config::ban_ms`]. Returns whether this report banned it.
    pub fn report_bad_frame(&self, peer: NodeIndex, reason: &str) -> Result<bool> {
        let peer = self.shared.peer(peer).ok_or(Error::UnknownPeer(peer))?;
        Ok(self.shared.bad_frame(peer, None, reason))
    }

    /// Whether we have an open connection to `peer`.
    pub fn is_connected(&self, peer: NodeIndex) -> bool {
        self.shared.peer(peer).is_some_and(|p| p.live().is_some())
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let metrics = &self.shared.metrics;
        let peers = self
            .shared
            .peers
            .iter()
            .flatten()
            .map(|peer| {
                let depths = Class::ALL.map(|c| peer.queue(c).len());
                let live = peer.live();
                let rtt = live.as_ref().map(|c| c.rtt());
                let path = live.as_ref().map(PathSnapshot::of);
                metrics.peers[usize::from(peer.index)].snapshot(peer.index, depths, rtt, path)
            })
            .collect();
        MetricsSnapshot {
            refused_handshakes: metrics.refused_handshakes.load(Ordering::Relaxed),
            refused_connections: metrics.refused_connections.load(Ordering::Relaxed),
            peers,
        }
    }

    /// Stops accepting frames, writes out what is queued (waiting at most
    /// [`Config::shutdown_drain_ms`] for peers to acknowledge it), closes
    /// every connection and stops every task. The [`Inbox`] ends
    /// afterwards. Calling it again does nothing.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        if shared.closing.load(Ordering::SeqCst) && shared.is_stopping() {
            return;
        }
        shared.signal_shutdown();
        let drain = Duration::from_millis(shared.config.shutdown_drain_ms);
        let mut writers = std::mem::take(&mut *shared.writers.lock());
        let drained = tokio::time::timeout(drain, async {
            while writers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(me = shared.me, "shutdown: queues not drained in time");
            writers.shutdown().await;
        }
        shared.endpoint.close(code::SHUTDOWN, b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.endpoint.wait_idle()).await;
        // Tasks may spawn tasks until they see the signal: repeat until none.
        loop {
            let mut tasks = std::mem::take(&mut *shared.tasks.lock());
            if tasks.is_empty() {
                break;
            }
            tasks.shutdown().await;
        }
        shared.drop_incoming_sender();
        tracing::info!(me = shared.me, "network shut down");
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shared.signal_shutdown();
        self.shared.writers.lock().abort_all();
        self.shared.tasks.lock().abort_all();
        self.shared.endpoint.close(code::SHUTDOWN, b"dropped");
    }
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Starts serving as `keypair`'s member of `committee`: accepts members
    /// with a lower index, dials those with a higher one, and returns the
    /// handle and the [`Inbox`] of inbound frames. Must run inside a tokio
    /// runtime.
    pub fn start(
        self,
        config: Config,
        keypair: &Keypair,
        committee: Arc<Committee>,
    ) -> Result<(Network, Inbox)> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Quic(format!("start needs a tokio runtime: {e}")))?;
        let me = committee
            .index_of(&keypair.public())
            .ok_or_else(|| Error::NotInCommittee(keypair.public().to_hex()))?;
        let metrics = Arc::new(Metrics::new(committee.size()));
        let identity = Identity::new(keypair)?;
        let server = quic::server_config(&config, &identity, &committee, &metrics)?;
        size_socket_buffers(&self.socket, config.socket_buffer_bytes);
        let endpoint = {
            let _guard = runtime.enter();
            quinn::Endpoint::new(
                quic::endpoint_config(&config, keypair)?,
                Some(server),
                self.socket,
                Arc::new(quinn::TokioRuntime),
            )?
        };
        let mut peers = Vec::with_capacity(committee.size());
        let mut clients = Vec::with_capacity(committee.size());
        for member in committee.indices() {
            let Some(info) = committee.member(member).filter(|_| member != me) else {
                peers.push(None);
                clients.push(None);
                continue;
            };
            let address = config
                .peer_addresses
                .get(&member)
                .copied()
                .unwrap_or(info.address);
            peers.push(Some(Arc::new(Peer::new(member, address, &config))));
            clients.push(if member > me {
                Some(quic::client_config(
                    &config, &identity, &committee, member, &metrics,
                )?)
            } else {
                None
            });
        }
        let [(consensus_tx, consensus_rx), (batches_tx, batches_rx), (sync_tx, sync_rx)] =
            Class::ALL.map(|class| mpsc::channel(config.incoming_frames(class)));
        let shared = Arc::new(Shared::new(
            me,
            committee,
            config,
            endpoint,
            peers,
            clients,
            metrics,
            [consensus_tx, batches_tx, sync_tx],
        ));
        shared.spawn(acceptor::run(shared.clone()));
        for (peer, client) in shared.peers.iter().zip(&shared.clients) {
            let Some(peer) = peer else { continue };
            for class in Class::ALL {
                shared
                    .writers
                    .lock()
                    .spawn(writer::run(shared.clone(), peer.clone(), class));
            }
            if let Some(client) = client {
                shared.spawn(dialer::run(shared.clone(), peer.clone(), client.clone()));
            }
        }
        tracing::info!(me, addr = %self.local, "network started");
        Ok((
            Network { shared },
            Inbox::new([consensus_rx, batches_rx, sync_rx]),
        ))
    }
}

/// Asks the OS for `bytes` of send and receive buffer on `socket`. The
/// default (about 200 KiB) holds only a few large datagrams, and a burst
/// of batches to a busy node would be dropped and resent. The kernel caps
/// the size; less than asked is logged, not an error.
fn size_socket_buffers(socket: &std::net::UdpSocket, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let socket = socket2::SockRef::from(socket);
    if let Err(e) = socket.set_recv_buffer_size(bytes) {
        tracing::warn!(bytes, "cannot size the UDP receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(bytes) {
        tracing::warn!(bytes, "cannot size the UDP send buffer: {e}");
    }
    // Linux caps the size at net.core.{r,w}mem_max, then reports twice
    // what it granted (the rest is its bookkeeping).
    let granted = |reported: usize| {
        if cfg!(target_os = "linux") {
            reported / 2
        } else {
            reported
        }
    };
    if let (Ok(recv), Ok(send)) = (socket.recv_buffer_size(), socket.send_buffer_size()) {
        let (recv, send) = (granted(recv), granted(send));
        if recv < bytes || send < bytes {
            tracing::warn!(
                asked = bytes,
                recv,
                send,
                "the OS gave the UDP socket smaller buffers than asked; large \
                 datagrams may be dropped under load (raise net.core.rmem_max \
                 and net.core.wmem_max)"
            );
        }
    }
}
