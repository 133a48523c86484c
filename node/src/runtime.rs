//! Starting a node: storage, transport, the two driver loops, the network
//! dispatcher and the API; and stopping it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use ordo_mempool::{Intake, Mempool};
use ordo_network::{Incoming, Network};
use ordo_types::codec::decode;
use ordo_types::NodeIndex;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::api::{self, ApiState};
use crate::config::Validated;
use crate::consensus_actor::{build_core, ConsensusActor, ConsensusInput, CoreSettings};
use crate::mempool_actor::{MempoolActor, MempoolInput};
use crate::output::Output;
use crate::payload::VerifiedCerts;
use crate::shared::Shared;
use crate::storage::Storage;
use crate::timers::Clock;
use crate::wire::SyncMessage;

/// Inputs queued per driver loop before the network dispatcher waits.
const INBOX: usize = 16_384;

/// A started node.
pub struct RunningNode {
    pub shared: Arc<Shared>,
    pub api_address: SocketAddr,
    pub network: Arc<Network>,
    storage: Arc<Storage>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Stops the node: drains the transport and ends every task.
    pub async fn shutdown(self) {
        self.network.shutdown().await;
        for task in &self.tasks {
            task.abort();
        }
        // Committed blocks and output rows of the last moments may be
        // relaxed (not yet fsynced): a clean stop persists them.
        let storage = self.storage;
        let flushed = tokio::task::spawn_blocking(move || storage.flush()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!("cannot flush storage on shutdown: {e}");
        }
    }
}

/// Starts every part of the node; returns once it is serving.
pub async fn start(node: Validated) -> anyhow::Result<RunningNode> {
    let Validated {
        config,
        keypair,
        committee,
        me,
        listen,
        api_listen,
    } = node;
    let storage = Arc::new(
        Storage::open(&config.data_dir)
            .with_context(|| format!("data dir {}", config.data_dir.display()))?,
    );
    let shared = Arc::new(Shared::new(me, committee.clone()));
    shared.set_committed(storage.tip()?);
    let clock = Clock::new();

    let bound = Network::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let (network, incoming) =
        bound.start(config.transport.network(), &keypair, committee.clone())?;
    let network = Arc::new(network);

    let intake = Arc::new(Intake::new(config.intake.clone()));
    let intake_ready = Arc::new(Notify::new());
    let (consensus_tx, consensus_rx) = mpsc::channel(INBOX);
    let (mempool_tx, mempool_rx) = mpsc::channel(INBOX);

    let verified = Arc::new(VerifiedCerts::default());
    let settings = CoreSettings {
        verified: verified.clone(),
        config: config.consensus.clone(),
        committee: committee.clone(),
        me,
        keypair: keypair.clone(),
        inclusion_lists: config.inclusion_lists,
        inclusion_delay_ms: config.mempool.inclusion_delay_ms,
        max_inclusion_len: config.mempool.max_inclusion_len,
    };
    let core = build_core(&settings, &storage)?;
    let consensus = ConsensusActor::new(
        core,
        settings,
        committee.clone(),
        storage.clone(),
        network.clone(),
        mempool_tx.clone(),
        shared.clone(),
        clock,
        consensus_rx,
    );

    let mempool_core = Mempool::new(
        me,
        keypair.clone(),
        (*committee).clone(),
        config.mempool.clone(),
        next_own_seq(&storage)?,
    )?;
    let output = Output::open(
        storage.clone(),
        shared.clone(),
        config.storage.dedupe_window_heights,
        config.storage.dedupe_window_txs,
    )?;
    let mempool = MempoolActor::new(
        mempool_core,
        intake.clone(),
        intake_ready.clone(),
        storage.clone(),
        network.clone(),
        consensus_tx.clone(),
        output,
        shared.clone(),
        clock,
        mempool_rx,
        mempool_tx.clone(),
        config.storage.retention_heights,
        verified,
    );
    // Blocks consensus stored but the output did not deliver before a
    // restart: hand them to the mempool again so their batches are found.
    let delivered = storage.delivered_height()?;
    let tip = storage.tip()?;
    for height in delivered + 1..=tip {
        if let Some(block) = storage.committed(height)? {
            let certs =
                crate::payload::decode_certs(&block.block.payload).map_err(anyhow::Error::msg)?;
            mempool_tx
                .send(MempoolInput::Committed { height, certs })
                .await?;
        }
    }
    // Own batches stored but not delivered: their certificates may have died
    // with the old process, so they are disseminated again.
    let own: Vec<ordo_mempool::Batch> = storage
        .own_undelivered()?
        .iter()
        .filter_map(|bytes| ordo_types::codec::decode(bytes).ok())
        .collect();
    if !own.is_empty() {
        tracing::info!(batches = own.len(), "resuming own undelivered batches");
        mempool_tx.send(MempoolInput::ResumeOwn(own)).await?;
    }

    let listener = tokio::net::TcpListener::bind(api_listen)
        .await
        .with_context(|| format!("cannot serve the API on {api_listen}"))?;
    let api_address = listener.local_addr()?;
    let router = api::router(ApiState {
        shared: shared.clone(),
        storage: storage.clone(),
        intake,
        intake_ready,
        network: network.clone(),
    });

    // Backends subscribe to delivered blocks before anything is delivered.
    let mut tasks = crate::backends::start(
        &config.backends,
        &config.data_dir,
        storage.clone(),
        shared.clone(),
    )?;
    storage.start_background_writes();
    tasks.push(tokio::spawn(write_staged(storage.clone())));
    tasks.push(tokio::spawn(consensus.run()));
    tasks.push(tokio::spawn(mempool.run()));
    // One dispatcher per class: a full mempool inbox holds up only Batches
    // frames (and, through QUIC flow control, only the peers' Batches
    // streams), never votes.
    let [consensus_in, batches_in, sync_in] = incoming.into_classes();
    let route = Route {
        network: network.clone(),
        shared: shared.clone(),
    };
    tasks.push(tokio::spawn(route.clone().dispatch(
        consensus_in,
        consensus_tx.clone(),
        |from, bytes| decode(bytes).map(|message| ConsensusInput::Message { from, message }),
    )));
    // Batches without copying their transactions.
    tasks.push(tokio::spawn(route.clone().dispatch(
        batches_in,
        mempool_tx,
        |from, bytes| {
            ordo_mempool::wire::decode_message(bytes).map(|decoded| MempoolInput::Received {
                from,
                message: decoded.message,
                raw_batch: decoded.raw_batch,
            })
        },
    )));
    tasks.push(tokio::spawn(route.dispatch(
        sync_in,
        consensus_tx,
        |from, bytes| {
            decode::<SyncMessage>(bytes).map(|message| ConsensusInput::Sync { from, message })
        },
    )));
    // Stream frames and answers are small: without TCP_NODELAY a follower
    // at low load waited on Nagle's algorithm (~15 ms per block).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an API connection: {e}");
        }
    });
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("API server stopped: {e}");
        }
    }));
    tracing::info!(node = me, %listen, api = %api_address, height = tip, "node started");
    Ok(RunningNode {
        shared,
        api_address,
        network,
        storage,
        tasks,
    })
}

/// How often the background writer looks whether the staged writes are due.
const STAGE_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Stores the staged writes when they are due, on a blocking thread, off
/// the paths of the writes that stage them ([`Storage::start_background_writes`]).
/// A failing write is logged once until one succeeds; the stage keeps its
/// writes, and the staging writes return the error once it is overdue.
async fn write_staged(storage: Arc<Storage>) {
    let mut poll = tokio::time::interval(STAGE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        poll.tick().await;
        if !storage.stage_due() {
            continue;
        }
        let writer = storage.clone();
        match tokio::task::spawn_blocking(move || writer.write_staged_if_due()).await {
            Ok(Ok(())) => failing = false,
            Ok(Err(e)) if !failing => {
                tracing::warn!("cannot store staged writes: {e}");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::warn!("staged write task failed: {e}"),
        }
    }
}

/// The seq of this node's next own batch: what storage remembers, but never
/// below the wall clock in microseconds. A node that lost its disk must not
/// reuse a seq its peers saw before: they would take the new batch for
/// equivocation and refuse to acknowledge it.
fn next_own_seq(storage: &Storage) -> anyhow::Result<u64> {
    let clock_floor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    Ok(storage.next_own_seq()?.max(clock_floor))
}

/// Where one class's incoming frames go, and who hears of bad ones.
#[derive(Clone)]
struct Route {
    network: Arc<Network>,
    shared: Arc<Shared>,
}

impl Route {
    /// Decodes one class's frames and hands them to a driver loop, waiting
    /// while its inbox is full. A frame that does not decode is counted as
    /// misbehaviour, dropped, and reported to the transport, which bans a
    /// peer that keeps sending them.
    async fn dispatch<T>(
        self,
        mut incoming: mpsc::Receiver<Incoming>,
        inbox: mpsc::Sender<T>,
        decode: impl Fn(NodeIndex, &Bytes) -> Result<T, ordo_types::Error>,
    ) {
        while let Some(frame) = incoming.recv().await {
            match decode(frame.from, &frame.bytes) {
                Ok(input) => {
                    if inbox.send(input).await.is_err() {
                        break;
                    }
                }
                Err(error) => self.bad_frame(&frame, error),
            }
        }
    }

    fn bad_frame(&self, frame: &Incoming, error: ordo_types::Error) {
        self.shared
            .misbehaviour
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reason = format!("undecodable {:?} frame: {error}", frame.class);
        let _ = self.network.report_bad_frame(frame.from, &reason);
    }
}
