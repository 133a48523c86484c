//! State shared by the endpoint's tasks: the endpoint, the peers, the
//! counters, the inbound channels and the shutdown signal.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ordo_types::{Committee, NodeIndex};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::peer::{code, Peer};
use crate::{Class, Incoming};

pub(crate) struct Shared {
    pub me: NodeIndex,
    pub committee: Arc<Committee>,
    pub config: Config,
    pub endpoint: quinn::Endpoint,
    /// Indexed by [`NodeIndex`]; `None` at our own index.
    pub peers: Vec<Option<Arc<Peer>>>,
    /// Dial configs, `Some` only for the peers we dial.
    pub clients: Vec<Option<quinn::ClientConfig>>,
    pub metrics: Arc<Metrics>,
    /// One sender per class, indexed by [`Class::index`]; taken (dropped)
    /// at shutdown so the node's [`crate::Inbox`] sees the end.
    incoming: Mutex<Option<[mpsc::Sender<Incoming>; 3]>>,
    /// Set once `send` must refuse new frames.
    pub closing: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// Per-class writer tasks, awaited on shutdown so queues drain.
    pub writers: Mutex<JoinSet<()>>,
    /// Everything else: acceptor, dialers, readers.
    pub tasks: Mutex<JoinSet<()>>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: NodeIndex,
        committee: Arc<Committee>,
        config: Config,
        endpoint: quinn::Endpoint,
        peers: Vec<Option<Arc<Peer>>>,
        clients: Vec<Option<quinn::ClientConfig>>,
        metrics: Arc<Metrics>,
        incoming: [mpsc::Sender<Incoming>; 3],
    ) -> Self {
        Shared {
            me,
            committee,
            config,
            endpoint,
            peers,
            clients,
            metrics,
            incoming: Mutex::new(Some(incoming)),
            closing: AtomicBool::new(false),
            shutdown: watch::Sender::new(false),
            writers: Mutex::new(JoinSet::new()),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    pub fn peer(&self, index: NodeIndex) -> Option<&Arc<Peer>> {
        self.peers.get(usize::from(index))?.as_ref()
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub fn incoming_sender(&self, class: Class) -> Option<mpsc::Sender<Incoming>> {
        Some(self.incoming.lock().as_ref()?[class.index()].clone())
    }

    pub fn drop_incoming_sender(&self) {
        self.incoming.lock().take();
    }

    /// Tells every task to stop (writers drain first).
    pub fn signal_shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Completes once shutdown has been signalled.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            // The sender lives in `Shared`, which outlives every waiter.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Starts using `connection` for `peer`.
    pub fn connected(&self, peer: &Peer, connection: quinn::Connection) {
        tracing::info!(me = self.me, peer = peer.index, remote = %connection.remote_address(), "connected");
        self.metrics.peers[usize::from(peer.index)].connected_once_more();
        peer.install(connection);
    }

    /// Notes that a connection to `peer` ended.
    pub fn disconnected(&self, peer: &Peer) {
        if peer.live().is_none() {
            self.metrics.peers[usize::from(peer.index)]
                .connected
                .store(false, Ordering::Relaxed);
        }
    }

    /// Counts a bad frame from `peer` (seen on `connection`, if known); on
    /// one too many, closes that and its current connection and bans it for
    /// [`Config::ban_ms`]. Returns whether the peer was banned.
    pub fn bad_frame(
        &self,
        peer: &Peer,
        connection: Option<&quinn::Connection>,
        reason: &str,
    ) -> bool {
        let counters = &self.metrics.peers[usize::from(peer.index)];
        counters.bad_frames.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(me = self.me, peer = peer.index, reason, "bad frame");
        if !peer.strike(
            self.config.max_bad_frames,
            Instant::now(),
            self.config.ban(),
        ) {
            return false;
        }
        counters.bans.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            me = self.me,
            peer = peer.index,
            ban_ms = self.config.ban_ms,
            "too many bad frames: disconnecting and banning peer"
        );
        for connection in connection.cloned().into_iter().chain(peer.live()) {
            connection.close(code::BANNED, b"too many bad frames");
        }
        true
    }
}
