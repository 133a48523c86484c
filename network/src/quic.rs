//! quinn configuration: transport limits shared by both sides, and the
//! rustls configs from [`crate::tls`] wrapped for QUIC.

use std::sync::Arc;
use std::time::Duration;

use ordo_types::{Committee, NodeIndex};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls::{self, Identity};
use crate::{Error, Result};

/// Uni streams a peer may have open at once: one per class, plus room for
/// streams reopened after a refused frame while the old one winds down.
const MAX_UNI_STREAMS: u32 = 8;

fn transport(config: &Config) -> Result<Arc<TransportConfig>> {
    let idle = IdleTimeout::try_from(Duration::from_millis(config.idle_timeout_ms))
        .map_err(|e| Error::Config(format!("idle_timeout_ms: {e}")))?;
    let stream_window = VarInt::from_u32(config.stream_window_bytes);
    // The connection window covers every class streaming at full speed.
    let connection_window = VarInt::from_u64(u64::from(config.stream_window_bytes) * 4)
        .map_err(|e| Error::Config(format!("stream_window_bytes: {e}")))?;
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(Duration::from_millis(config.keep_alive_ms)))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS))
        .stream_receive_window(stream_window)
        .receive_window(connection_window)
        .send_window(u64::from(config.stream_window_bytes) * 4);
    Ok(Arc::new(t))
}

pub(crate) fn server_config(
    config: &Config,
    identity: &Identity,
    committee: &Arc<Committee>,
    metrics: &Arc<Metrics>,
) -> Result<quinn::ServerConfig> {
    let tls = tls::server_config(identity, committee, metrics)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport(config)?);
    Ok(server)
}

pub(crate) fn client_config(
    config: &Config,
    identity: &Identity,
    committee: &Arc<Committee>,
    peer: NodeIndex,
    metrics: &Arc<Metrics>,
) -> Result<quinn::ClientConfig> {
    let tls = tls::client_config(identity, committee, peer, metrics)?;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport(config)?);
    Ok(client)
}
