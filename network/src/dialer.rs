//! Outbound connections. Only the lower index of a pair dials (see the
//! crate docs), so each pair has one connection. The dialer keeps it up:
//! it redials with exponential back-off and jitter whenever it drops.

use std::sync::Arc;
use std::time::Instant;

use crate::backoff::Backoff;
use crate::peer::Peer;
use crate::reader;
use crate::shared::Shared;
use crate::tls::SERVER_NAME;

pub(crate) async fn run(shared: Arc<Shared>, peer: Arc<Peer>, client: quinn::ClientConfig) {
    let seed = u64::from(shared.me) << 16 | u64::from(peer.index);
    let mut backoff = Backoff::new(
        shared.config.reconnect_min_ms,
        shared.config.reconnect_max_ms,
        seed ^ key_seed(&shared),
    );
    while !shared.is_stopping() {
        if let Some(wait) = peer.banned_for(Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep(wait) => continue,
                () = shared.stopping() => return,
            }
        }
        match dial(&shared, &peer, client.clone()).await {
            Ok(connection) => {
                backoff.reset();
                shared.connected(&peer, connection.clone());
                tokio::select! {
                    () = reader::serve(shared.clone(), peer.clone(), connection) => {}
                    () = shared.stopping() => return,
                }
            }
            Err(reason) => {
                tracing::debug!(me = shared.me, peer = peer.index, %reason, "dial failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shared.stopping() => return,
        }
    }
}

async fn dial(
    shared: &Shared,
    peer: &Peer,
    client: quinn::ClientConfig,
) -> Result<quinn::Connection, String> {
    let connecting = shared
        .endpoint
        .connect_with(client, peer.address, SERVER_NAME)
        .map_err(|e| e.to_string())?;
    connecting.await.map_err(|e| e.to_string())
}

/// Jitter differs between nodes even when their indices collide in tests.
fn key_seed(shared: &Shared) -> u64 {
    let key = shared
        .committee
        .key(shared.me)
        .map(|k| k.0)
        .unwrap_or_default();
    u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ])
}
