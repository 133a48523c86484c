//! The node's TOML configuration, and validating it before anything starts.
//!
//! ```toml
//! key_file = "node-0.key"          # relative paths are relative to this file
//! committee_file = "committee.toml"
//! data_dir = "data/node-0"
//! # listen = "0.0.0.0:7000"        # QUIC; default: this node's committee address
//! # api_listen = "0.0.0.0:8000"    # HTTP; default: this node's committee api_address
//!
//! [consensus]                       # all optional, see ordo_consensus::Config
//! base_timeout_ms = 1000
//!
//! [storage]
//! retention_heights = 100000
//!
//! [transport]                       # QUIC datagrams and UDP socket buffers
//! max_udp_payload_bytes = 1452      # 65527 on loopback / jumbo frames
//!
//! [backends]                        # see docs/backends.md
//! da = "local"                      # "local" | "object-store" | "none"
//! execution = "none"                # "none" | "ledger"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ordo_types::{Committee, Keypair, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keyfile;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub key_file: PathBuf,
    pub committee_file: PathBuf,
    pub data_dir: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_listen: Option<SocketAddr>,
    /// Votes carry inclusion lists and proposals must honour them
    /// (censorship resistance); off only for experiments.
    #[serde(default = "default_true")]
    pub inclusion_lists: bool,
    #[serde(default)]
    pub consensus: ordo_consensus::Config,
    #[serde(default)]
    pub mempool: ordo_mempool::Config,
    #[serde(default)]
    pub intake: ordo_mempool::IntakeConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub transport: TransportConfig,
    /// Data availability and execution backends (`docs/backends.md`).
    #[serde(default)]
    pub backends: crate::backends::BackendsConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Committed heights whose batches are kept; older batches are pruned
    /// (block headers and certificates are kept).
    pub retention_heights: u64,
    /// A transaction committed again within this many heights of its last
    /// delivery is left out of the output...
    pub dedupe_window_heights: u64,
    /// ...if it is also among the last this many delivered transactions
    /// (which bounds the window's memory, ~50 bytes a transaction, when
    /// blocks are large). Both must be the same on every node of a
    /// committee, or their outputs differ.
    pub dedupe_window_txs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            retention_heights: 100_000,
            dedupe_window_heights: 10_000,
            dedupe_window_txs: 4_000_000,
        }
    }
}

impl StorageConfig {
    /// The output's dedupe window is rebuilt on restart from the retained
    /// output rows, so pruning must keep at least the window: else a node
    /// that restarted would forget repeats its peers still skip, and their
    /// outputs would differ.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.dedupe_window_txs == 0 {
            return Err("storage: dedupe_window_txs must be at least 1".into());
        }
        if self.retention_heights < self.dedupe_window_heights {
            return Err(format!(
                "storage: retention_heights ({}) must be at least dedupe_window_heights ({}): \
                 the dedupe window is rebuilt from retained output on restart",
                self.retention_heights, self.dedupe_window_heights
            ));
        }
        Ok(())
    }
}

/// The QUIC transport settings an operator may need to change; the rest
/// of [`ordo_network::Config`] keeps its defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Largest UDP payload sent or accepted (1200..=65527); MTU discovery
    /// finds what each path carries up to this. The default, 1,452, fits a
    /// 1500-byte path and keeps segmentation offload (GSO). On loopback and
    /// jumbo-frame links a higher bound pays (`ordo testnet` writes 65,527);
    /// above 6,500 bytes each datagram is its own send (no GSO).
    pub max_udp_payload_bytes: u16,
    /// UDP send and receive buffers asked of the OS (capped by
    /// `net.core.rmem_max` / `wmem_max`); 0 keeps the OS default.
    pub socket_buffer_bytes: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        let network = ordo_network::Config::default();
        TransportConfig {
            max_udp_payload_bytes: network.max_udp_payload_bytes,
            socket_buffer_bytes: network.socket_buffer_bytes,
        }
    }
}

impl TransportConfig {
    /// The endpoint's settings: the defaults with these two applied.
    pub fn network(&self) -> ordo_network::Config {
        ordo_network::Config {
            max_udp_payload_bytes: self.max_udp_payload_bytes,
            socket_buffer_bytes: self.socket_buffer_bytes,
            ..ordo_network::Config::default()
        }
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        self.network().validate().map_err(|e| match e {
            ordo_network::Error::Config(problem) => format!("transport: {problem}"),
            other => format!("transport: {other}"),
        })
    }
}

fn default_true() -> bool {
    true
}

/// A TOML error as one line: where it is, what is wrong, and the line.
pub fn one_line_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {message}: `{source}`")
        }
        None => message,
    }
}

/// A configuration whose files were read and whose addresses were checked.
pub struct Validated {
    pub config: NodeConfig,
    pub keypair: Keypair,
    pub committee: Arc<Committee>,
    pub me: NodeIndex,
    pub listen: SocketAddr,
    pub api_listen: SocketAddr,
}

impl NodeConfig {
    /// Reads a config file; relative paths in it become relative to its
    /// folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: one_line_toml_error(&text, &e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.key_file,
            &mut config.committee_file,
            &mut config.data_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.backends.resolve_paths(base);
        Ok(config)
    }

    /// Checks everything that can be checked before starting: the key file,
    /// the committee, that this key is a member, the addresses, and that the
    /// ports are free. Each failure is one line naming the problem.
    pub fn validate(self, origin: &Path) -> Result<Validated> {
        let err = |message: String| Error::Config {
            path: origin.to_path_buf(),
            message,
        };
        let keypair = keyfile::read(&self.key_file)?;
        let committee = Committee::load(&self.committee_file)?;
        let me = committee.index_of(&keypair.public()).ok_or_else(|| {
            err(format!(
                "this node's key {} (from {}) is not a member of the committee in {}",
                keypair.public(),
                self.key_file.display(),
                self.committee_file.display()
            ))
        })?;
        let member = committee
            .member(me)
            .ok_or_else(|| err("committee member vanished".into()))?;
        let listen = self.listen.unwrap_or(member.address);
        let api_listen = self.api_listen.unwrap_or(member.api_address);
        if self.consensus.base_timeout_ms == 0
            || self.consensus.max_timeout_ms < self.consensus.base_timeout_ms
        {
            return Err(err(
                "consensus: need 0 < base_timeout_ms <= max_timeout_ms".into()
            ));
        }
        self.storage.check().map_err(err)?;
        self.transport.check().map_err(err)?;
        self.backends.check().map_err(err)?;
        std::net::UdpSocket::bind(listen)
            .map_err(|e| err(format!("cannot listen for peers on {listen} (UDP): {e}")))?;
        std::net::TcpListener::bind(api_listen)
            .map_err(|e| err(format!("cannot serve the API on {api_listen} (TCP): {e}")))?;
        Ok(Validated {
            config: self,
            keypair,
            committee: Arc::new(committee),
            me,
            listen,
            api_listen,
        })
    }
}
