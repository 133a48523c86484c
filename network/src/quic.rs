//! quinn configuration: transport limits shared by both sides, and the
//! rustls configs from [`crate::tls`] wrapped for QUIC.

use std::sync::Arc;
use std::time::Duration;

use ordo_types::{Committee, Keypair, NodeIndex};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::crypto::{CryptoError, HmacKey};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use quinn_proto::RandomConnectionIdGenerator;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls::{self, Identity};
use crate::{Error, Result};

/// Uni streams a peer may have open at once: one per class, plus room for
/// streams reopened after a refused frame while the old one winds down.
const MAX_UNI_STREAMS: u32 = 8;

/// Bytes of a connection ID (quinn's default length).
const CID_LEN: usize = 8;

/// Largest UDP payload sent with segmentation offload (GSO). quinn hands
/// the kernel up to 10 datagrams in one GSO send (its private
/// `MAX_TRANSMIT_SEGMENTS`), and Linux refuses a send over 64 KiB in all
/// with `EMSGSIZE`, which quinn-udp takes for a failed MTU probe and
/// drops without a word: 10 × 6,500 bytes fits. Above it each datagram is
/// its own send, which at 64 KiB datagrams costs fewer syscalls than GSO
/// at 1.4 KiB. `tests/mtu.rs` sends bulk at this bound and checks nothing
/// is lost, in case a quinn upgrade sends more per GSO call.
pub(crate) const GSO_MAX_PAYLOAD: u16 = 6_500;

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
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(config.max_udp_payload_bytes);
    t.mtu_discovery_config(Some(mtu))
        .enable_segmentation_offload(config.max_udp_payload_bytes <= GSO_MAX_PAYLOAD);
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

/// The endpoint config, with a stateless-reset key derived from the
/// member's secret key, so it is the same in every run of this member.
///
/// That is what makes a crash visible at once: when a member restarts, its
/// peers still hold connections to the old process and would otherwise
/// write into them until the idle timeout. The new process does not know
/// those connections, answers their next packet (a keep-alive at the
/// latest) with a stateless reset, and the peer, which can check the reset
/// token because the key is the same, closes the connection and redials.
pub(crate) fn endpoint_config(config: &Config, keypair: &Keypair) -> Result<quinn::EndpointConfig> {
    let key = blake3::derive_key(
        "ordo-network 2026 quic stateless reset key",
        &keypair.seed(),
    );
    let mut endpoint = quinn::EndpointConfig::new(Arc::new(ResetKey(key)));
    // quinn's default IDs carry a check keyed per process, so a new process
    // would drop the old connections' packets unanswered. Plain random IDs
    // let it answer them with the reset.
    endpoint.cid_generator(|| Box::new(RandomConnectionIdGenerator::new(CID_LEN)));
    endpoint
        .max_udp_payload_size(config.max_udp_payload_bytes)
        .map_err(|e| Error::Config(format!("max_udp_payload_bytes: {e}")))?;
    Ok(endpoint)
}

/// Keyed blake3 as the HMAC behind QUIC stateless-reset tokens.
struct ResetKey([u8; 32]);

impl HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let tag = blake3::keyed_hash(&self.0, data);
        let n = signature_out.len().min(tag.as_bytes().len());
        signature_out[..n].copy_from_slice(&tag.as_bytes()[..n]);
    }

    fn signature_len(&self) -> usize {
        blake3::OUT_LEN
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let Ok(tag) = <[u8; blake3::OUT_LEN]>::try_from(signature) else {
            return Err(CryptoError);
        };
        // `Hash` compares in constant time.
        if blake3::keyed_hash(&self.0, data) == blake3::Hash::from(tag) {
            Ok(())
        } else {
            Err(CryptoError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_key_is_stable_per_member_and_differs_between_members() {
        let a = Keypair::from_seed([1; 32]);
        let b = Keypair::from_seed([2; 32]);
        let token = |k: &Keypair| {
            let key = blake3::derive_key("ordo-network 2026 quic stateless reset key", &k.seed());
            let mut out = [0u8; 32];
            ResetKey(key).sign(b"connection id", &mut out);
            out
        };
        assert_eq!(token(&a), token(&a.clone()));
        assert_ne!(token(&a), token(&b));
        let key = ResetKey([7; 32]);
        let mut sig = [0u8; 32];
        key.sign(b"cid", &mut sig);
        assert!(key.verify(b"cid", &sig).is_ok());
        assert!(key.verify(b"other", &sig).is_err());
        assert!(key.verify(b"cid", &sig[..16]).is_err());
    }
}
