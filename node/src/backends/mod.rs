//! Pluggable backends fed by the committed output: data availability
//! (`local`, `object-store`, `none`) and execution (`none`, `ledger`).
//!
//! Each backend runs on its own task ([`runner`]) behind a bounded queue of
//! delivered blocks. The delivery path never waits for a backend: when a
//! queue is full the block is dropped from it and the backend reads it from
//! storage later. A backend's progress is its durable cursor (in
//! `backends.redb`), so after a restart it resumes at cursor + 1. A failing
//! backend retries the same height with capped exponential back-off; its
//! height, lag, error count and last error show in `/v1/status` and
//! `/metrics`. See `docs/backends.md`.

pub mod api;
pub mod db;
pub mod ledger;
pub mod local_da;
pub mod object_store_da;
pub mod runner;
#[doc(hidden)]
pub mod s3_test_server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ordo_types::{Digest, PublicKey};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::output::OutputBlock;
use crate::shared::Shared;
use crate::storage::Storage;
use db::BackendDb;

/// A state root of an execution backend.
pub type StateRoot = Digest;

/// Proof that a block was published to a data-availability backend, and
/// what is needed to fetch it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub height: u64,
    /// Digest of the block's header.
    pub block: Digest,
    /// blake3 of the published bytes (the block, `encode_local`).
    pub digest: Digest,
    pub len: u64,
    /// Where the backend put it (a path relative to its root, or an object
    /// key).
    pub location: String,
}

/// Publishes committed blocks somewhere they can be fetched back from.
/// `publish` must be idempotent: after a crash between publishing a block
/// and storing its receipt, the same block is published again.
pub trait DataAvailability: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    fn publish(&self, block: &OutputBlock) -> Result<Receipt>;
    /// Fetches a published block and checks it against the receipt.
    fn fetch(&self, receipt: &Receipt) -> Result<OutputBlock>;
}

/// Applies committed blocks in height order, exactly once across restarts.
pub trait ExecutionBackend: Send + 'static {
    fn kind(&self) -> &'static str;
    /// Last height applied (durable).
    fn cursor(&self) -> u64;
    /// Applies block `cursor() + 1` and makes the result and the new cursor
    /// durable together.
    fn apply(&mut self, block: &OutputBlock) -> Result<StateRoot>;
}

/// `[backends]` of the node config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendsConfig {
    /// `"local"`, `"object-store"` or `"none"`.
    pub da: String,
    /// Folder of the `local` DA; default `<data_dir>/da`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub da_path: Option<PathBuf>,
    /// Where the `object-store` DA writes: `file:///abs/path` (or
    /// `s3://bucket/prefix` when built with the `s3` feature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store_url: Option<String>,
    /// `[backends.object_store_options]`: S3 settings that override the
    /// `AWS_*` environment, keyed as `object_store` names them (`endpoint`,
    /// `region`, `allow_http`, `virtual_hosted_style_request`, ...). Keep
    /// secrets in the environment.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub object_store_options: std::collections::BTreeMap<String, String>,
    /// `"none"` or `"ledger"`.
    pub execution: String,
    /// Delivered blocks queued per backend before they are dropped from the
    /// queue (the backend then reads them from storage).
    pub queue_blocks: usize,
    pub ledger: LedgerConfig,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        BackendsConfig {
            da: "local".into(),
            da_path: None,
            object_store_url: None,
            object_store_options: Default::default(),
            execution: "none".into(),
            queue_blocks: 256,
            ledger: LedgerConfig::default(),
        }
    }
}

/// `[backends.ledger]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Namespace of the ledger's transactions; others are ignored.
    pub namespace: u64,
    /// Funds the deterministic test keys `ordo_ledger::dev_keypair(0..n)`.
    pub dev_accounts: u64,
    pub dev_balance: u64,
    /// Funded accounts: `{ key = "<hex public key>", balance = N }`.
    pub genesis: Vec<GenesisAccount>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            namespace: 1000,
            dev_accounts: 0,
            dev_balance: 1_000_000,
            genesis: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub key: String,
    pub balance: u64,
}

impl LedgerConfig {
    /// The genesis balances: the dev accounts, then the listed ones.
    pub fn genesis_balances(&self) -> Result<Vec<(PublicKey, u64)>> {
        let mut out: Vec<(PublicKey, u64)> = (0..self.dev_accounts)
            .map(|i| (ordo_ledger::dev_keypair(i).public(), self.dev_balance))
            .collect();
        for account in &self.genesis {
            let key = PublicKey::from_hex(&account.key)
                .map_err(|e| Error::Backend(format!("ledger genesis key {}: {e}", account.key)))?;
            out.push((key, account.balance));
        }
        Ok(out)
    }
}

impl BackendsConfig {
    /// Makes relative paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &mut self.da_path {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks names and values; a one-line message on failure.
    pub fn check(&self) -> std::result::Result<(), String> {
        match self.da.as_str() {
            "local" | "none" => {}
            "object-store" => {
                if self.object_store_url.is_none() {
                    return Err("backends: da = \"object-store\" needs object_store_url".into());
                }
                if let Some(url) = &self.object_store_url {
                    object_store_da::check_url(url, &self.object_store_options)?;
                }
            }
            other => {
                return Err(format!(
                    "backends: unknown da \"{other}\" (local, object-store, none)"
                ))
            }
        }
        match self.execution.as_str() {
            "none" | "ledger" => {}
            other => {
                return Err(format!(
                    "backends: unknown execution \"{other}\" (none, ledger)"
                ))
            }
        }
        if self.queue_blocks == 0 {
            return Err("backends: queue_blocks must be at least 1".into());
        }
        if self.execution == "ledger" {
            self.ledger.genesis_balances().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// What one backend reports.
pub struct BackendStatus {
    /// `"da"` or `"execution"`.
    pub name: &'static str,
    /// `"local"`, `"ledger"`, ...
    pub kind: &'static str,
    height: AtomicU64,
    errors: AtomicU64,
    halted: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl BackendStatus {
    pub fn new(name: &'static str, kind: &'static str, height: u64) -> Self {
        BackendStatus {
            name,
            kind,
            height: AtomicU64::new(height),
            errors: AtomicU64::new(0),
            halted: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// Last height the backend finished.
    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }

    pub fn set_height(&self, height: u64) {
        self.height.store(height, Ordering::Relaxed);
    }

    /// Failures since start (each retry that failed counts).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn record_error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(message);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Set when the backend cannot go on (a block it needs was pruned).
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    pub fn halt(&self, message: String) {
        self.record_error(message);
        self.halted.store(true, Ordering::Relaxed);
    }

    pub fn json(&self, delivered: u64) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "height": self.height(),
            "lag": delivered.saturating_sub(self.height()),
            "errors": self.errors(),
            "halted": self.halted(),
            "last_error": self.last_error(),
        })
    }
}

/// The running backends, for the API and metrics.
#[derive(Default)]
pub struct Registry {
    statuses: RwLock<Vec<Arc<BackendStatus>>>,
    ledger: RwLock<Option<Arc<BackendDb>>>,
}

impl Registry {
    pub fn statuses(&self) -> Vec<Arc<BackendStatus>> {
        self.statuses.read().clone()
    }

    /// The database of the `ledger` backend, when it runs.
    pub fn ledger(&self) -> Option<Arc<BackendDb>> {
        self.ledger.read().clone()
    }
}

/// Opens the configured backends and starts their tasks.
pub fn start(
    config: &BackendsConfig,
    data_dir: &Path,
    storage: Arc<Storage>,
    shared: Arc<Shared>,
) -> Result<Vec<JoinHandle<()>>> {
    config.check().map_err(Error::Backend)?;
    if config.da == "none" && config.execution == "none" {
        return Ok(Vec::new());
    }
    let db = Arc::new(BackendDb::open(data_dir)?);
    let mut stages: Vec<Box<dyn runner::Stage>> = Vec::new();
    let da: Option<Box<dyn DataAvailability>> = match config.da.as_str() {
        "local" => {
            let dir = config
                .da_path
                .clone()
                .unwrap_or_else(|| data_dir.join("da"));
            Some(Box::new(local_da::LocalDa::new(dir)))
        }
        "object-store" => {
            let url = config.object_store_url.clone().unwrap_or_default();
            Some(Box::new(object_store_da::ObjectStoreDa::new(
                &url,
                &config.object_store_options,
            )?))
        }
        _ => None,
    };
    if let Some(da) = da {
        stages.push(Box::new(runner::DaStage::new(da, db.clone())?));
    }
    if config.execution == "ledger" {
        let genesis = config.ledger.genesis_balances()?;
        let backend = ledger::LedgerBackend::open(db.clone(), config.ledger.namespace, &genesis)?;
        stages.push(Box::new(runner::ExecStage(Box::new(backend))));
        *shared.backends.ledger.write() = Some(db.clone());
    }
    let blocks = shared.subscribe();
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for stage in stages {
        let status = Arc::new(BackendStatus::new(
            stage.name(),
            stage.kind(),
            stage.cursor(),
        ));
        shared.backends.statuses.write().push(status.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(config.queue_blocks);
        queues.push(tx);
        tracing::info!(
            backend = stage.name(),
            kind = stage.kind(),
            cursor = stage.cursor(),
            "backend started"
        );
        tasks.push(tokio::spawn(runner::run(
            stage,
            status,
            rx,
            storage.clone(),
            shared.clone(),
        )));
    }
    tasks.push(tokio::spawn(runner::forward(blocks, queues)));
    Ok(tasks)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BackendsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = BackendsConfig::default();
        assert_eq!((c.da.as_str(), c.execution.as_str()), ("local", "none"));
        assert!(c.check().is_ok());
        assert!(parse("da = \"s4\"")
            .check()
            .unwrap_err()
            .contains("unknown da"));
        assert!(parse("execution = \"evm\"").check().is_err());
        assert!(parse("queue_blocks = 0").check().is_err());
        assert!(parse("da = \"object-store\"").check().is_err());
        assert!(
            parse("da = \"object-store\"\nobject_store_url = \"file:///tmp/x\"")
                .check()
                .is_ok()
        );
        assert!(toml::from_str::<BackendsConfig>("colour = 1").is_err());
        let ledger = parse(
            "execution = \"ledger\"\n[ledger]\ndev_accounts = 2\ngenesis = [{ key = \"00\", balance = 1 }]",
        );
        assert!(ledger.check().unwrap_err().contains("genesis key"));
        let key = ordo_ledger::dev_keypair(7).public().to_hex();
        let ledger = parse(&format!(
            "execution = \"ledger\"\n[ledger]\ndev_accounts = 2\ngenesis = [{{ key = \"{key}\", balance = 5 }}]"
        ));
        let balances = ledger.ledger.genesis_balances().unwrap();
        assert_eq!(balances.len(), 3);
        assert_eq!(balances[2].1, 5);
    }
}
