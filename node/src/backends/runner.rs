//! Runs one backend: takes delivered blocks from its bounded queue, or from
//! storage when the queue dropped them, hands them to the backend strictly in
//! height order from its durable cursor, and retries failures with capped
//! exponential back-off. Never blocks the node's loops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::db::BackendDb;
use super::{BackendStatus, DataAvailability, ExecutionBackend};
use crate::error::{Error, Result};
use crate::output::OutputBlock;
use crate::shared::{Delivered, Shared};
use crate::storage::Storage;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often an idle runner checks the delivered height (in case the queue
/// dropped blocks).
const POLL: Duration = Duration::from_millis(500);

/// A backend as the runner drives it.
pub trait Stage: Send + 'static {
    fn name(&self) -> &'static str;
    fn kind(&self) -> &'static str;
    /// Last height finished (durable).
    fn cursor(&self) -> u64;
    /// Finishes block `cursor() + 1` durably; refuses any other height.
    fn process(&mut self, block: &OutputBlock) -> Result<()>;
}

fn check_next(name: &str, cursor: u64, block: &OutputBlock) -> Result<()> {
    if block.height() != cursor + 1 {
        return Err(Error::Backend(format!(
            "{name}: block {} does not follow the cursor {cursor}",
            block.height()
        )));
    }
    Ok(())
}

/// A data-availability backend with its receipts and cursor.
pub struct DaStage {
    da: Box<dyn DataAvailability>,
    db: Arc<BackendDb>,
    cursor: u64,
}

impl DaStage {
    pub fn new(da: Box<dyn DataAvailability>, db: Arc<BackendDb>) -> Result<Self> {
        let cursor = db.cursor(super::db::DA_CURSOR)?;
        Ok(DaStage { da, db, cursor })
    }
}

impl Stage for DaStage {
    fn name(&self) -> &'static str {
        "da"
    }

    fn kind(&self) -> &'static str {
        self.da.kind()
    }

    fn cursor(&self) -> u64 {
        self.cursor
    }

    fn process(&mut self, block: &OutputBlock) -> Result<()> {
        check_next("da", self.cursor, block)?;
        let receipt = self.da.publish(block)?;
        self.db.save_receipt(&receipt)?;
        self.cursor = block.height();
        Ok(())
    }
}

/// An execution backend.
pub struct ExecStage(pub Box<dyn ExecutionBackend>);

impl Stage for ExecStage {
    fn name(&self) -> &'static str {
        "execution"
    }

    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn cursor(&self) -> u64 {
        self.0.cursor()
    }

    fn process(&mut self, block: &OutputBlock) -> Result<()> {
        check_next("execution", self.0.cursor(), block)?;
        self.0.apply(block).map(|_| ())
    }
}

/// Copies published blocks into every backend's queue without waiting: a
/// full queue drops the block (its backend reads it from storage later).
pub async fn forward(
    mut blocks: broadcast::Receiver<Delivered>,
    queues: Vec<mpsc::Sender<Delivered>>,
) {
    loop {
        match blocks.recv().await {
            Ok(delivered) => {
                for queue in &queues {
                    let _ = queue.try_send(delivered.clone());
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Where the next block comes from.
enum Next {
    Block(Arc<OutputBlock>),
    /// Not delivered yet.
    Wait,
    /// Delivered, but its output is gone (pruned, or synced without it).
    Pruned,
}

pub async fn run(
    mut stage: Box<dyn Stage>,
    status: Arc<BackendStatus>,
    mut queue: mpsc::Receiver<Delivered>,
    storage: Arc<Storage>,
    shared: Arc<Shared>,
) {
    let mut pending: Option<Arc<OutputBlock>> = None;
    let mut backoff = BACKOFF_MIN;
    let name = stage.name();
    loop {
        let next = stage.cursor() + 1;
        let found = match take_queued(&mut pending, &mut queue, next) {
            Some(block) => Ok(Next::Block(block)),
            None if shared.delivered() >= next => match shared.latest(next) {
                // A large block came as its height only: still in memory.
                Some(block) => Ok(Next::Block(block)),
                None => read(&storage, next).await,
            },
            None => Ok(Next::Wait),
        };
        let block = match found {
            Ok(Next::Block(block)) => block,
            Ok(Next::Wait) => {
                tokio::select! {
                    // A large block comes as its height only: the loop then
                    // takes it from the last delivered block or storage.
                    delivered = queue.recv() => match delivered {
                        Some(delivered) => pending = delivered.block,
                        None => tokio::time::sleep(POLL).await,
                    },
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            Ok(Next::Pruned) => {
                let message = format!(
                    "height {next} was pruned before the {name} backend reached it; it \
                     cannot continue (raise storage.retention_heights, or restore the \
                     backend's state from another node)"
                );
                tracing::error!(backend = name, height = next, "{message}");
                status.halt(message);
                return;
            }
            Err(e) => {
                fail(&status, name, next, &e, &mut backoff).await;
                continue;
            }
        };
        let result = tokio::task::spawn_blocking(move || {
            let result = stage.process(&block);
            (stage, block, result)
        })
        .await;
        match result {
            Ok((back, block, result)) => {
                stage = back;
                match result {
                    Ok(()) => {
                        status.set_height(next);
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        pending = Some(block);
                        fail(&status, name, next, &e, &mut backoff).await;
                    }
                }
            }
            Err(e) => {
                let message = format!("{name} backend task failed: {e}");
                tracing::error!(backend = name, height = next, "{message}");
                status.halt(message);
                return;
            }
        }
    }
}

/// The queued block of height `next`, dropping older ones; a newer one is
/// kept for later (the blocks between are read from storage).
fn take_queued(
    pending: &mut Option<Arc<OutputBlock>>,
    queue: &mut mpsc::Receiver<Delivered>,
    next: u64,
) -> Option<Arc<OutputBlock>> {
    loop {
        let block = match pending.take() {
            Some(block) => block,
            None => match queue.try_recv().ok()?.block {
                Some(block) => block,
                None => continue, // a large block's height: see `run`
            },
        };
        if block.height() == next {
            return Some(block);
        }
        if block.height() > next {
            *pending = Some(block);
            return None;
        }
    }
}

async fn read(storage: &Arc<Storage>, height: u64) -> Result<Next> {
    let storage = storage.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Next> {
        match storage.output(height)? {
            Some(block) => Ok(Next::Block(Arc::new(block))),
            None if storage.pruned_below()? > height => Ok(Next::Pruned),
            None => Err(Error::Backend(format!(
                "delivered height {height} has no stored output"
            ))),
        }
    })
    .await;
    result.map_err(|e| Error::Backend(e.to_string()))?
}

async fn fail(
    status: &BackendStatus,
    name: &str,
    height: u64,
    error: &Error,
    backoff: &mut Duration,
) {
    let message = format!("height {height}: {error}");
    tracing::warn!(
        backend = name,
        height,
        retry_in_ms = backoff.as_millis() as u64,
        "backend failed: {error}"
    );
    status.record_error(message);
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backends::BackendStatus;
    use crate::output::tests::output;

    /// Records the heights it processes.
    struct Recorder {
        cursor: u64,
        seen: Arc<parking_lot::Mutex<Vec<u64>>>,
    }

    impl Stage for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn cursor(&self) -> u64 {
            self.cursor
        }
        fn process(&mut self, block: &OutputBlock) -> Result<()> {
            check_next("recorder", self.cursor, block)?;
            self.cursor = block.height();
            self.seen.lock().push(block.height());
            Ok(())
        }
    }

    /// A large block arrives as its height only. Storage does not have it
    /// (this test never stores it), so the stage can only have taken it
    /// from the node's last delivered block, and at once, not after POLL.
    #[tokio::test]
    async fn a_bare_height_is_processed_from_the_last_delivered_block_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shared = Arc::new(crate::output::tests::shared());
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let stage = Recorder {
            cursor: 0,
            seen: seen.clone(),
        };
        let status = Arc::new(BackendStatus::new("recorder", "test", 0));
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(run(
            Box::new(stage),
            status.clone(),
            rx,
            storage,
            shared.clone(),
        ));
        let bytes = crate::shared::LIVE_BLOCK_BYTES + 1;
        let payload = vec![1u8; bytes];
        let block = output(1, vec![crate::output::tests::batch(0, &[&payload])], vec![]);
        let mut subscriber = shared.subscribe();
        shared.publish(Arc::new(block));
        let delivered = subscriber.try_recv().unwrap();
        assert!(delivered.block.is_none(), "not sent as a bare height");
        tx.send(delivered).await.unwrap();
        let started = tokio::time::Instant::now();
        while status.height() < 1 {
            assert!(
                started.elapsed() < POLL / 2,
                "the bare height waited for the poll"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*seen.lock(), vec![1]);
        task.abort();
    }
}
