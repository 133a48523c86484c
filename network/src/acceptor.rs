//! Inbound connections: TLS has already refused non-members; here an
//! authenticated member is admitted only if it is the side that should
//! dial us (a lower index) and is not banned. An admitted connection
//! replaces any older one from the same peer (a restarted peer).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ordo_types::NodeIndex;
use rustls::pki_types::CertificateDer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::peer::code;
use crate::reader;
use crate::shared::Shared;
use crate::tls;

pub(crate) async fn run(shared: Arc<Shared>) {
    // Unauthenticated handshakes in flight are bounded.
    let handshakes = Arc::new(Semaphore::new(2 * shared.committee.size() + 8));
    loop {
        let incoming = tokio::select! {
            incoming = shared.endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
            () = shared.stopping() => return,
        };
        match handshakes.clone().try_acquire_owned() {
            Ok(permit) => shared.spawn(admit(shared.clone(), incoming, permit)),
            Err(_) => {
                tracing::warn!(remote = %incoming.remote_address(), "too many handshakes in flight");
                incoming.refuse();
            }
        }
    }
}

async fn admit(shared: Arc<Shared>, incoming: quinn::Incoming, permit: OwnedSemaphorePermit) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(reason) => {
            tracing::debug!(me = shared.me, %remote, %reason, "inbound handshake failed");
            return;
        }
    };
    drop(permit);
    let refuse = |code, reason: &str| {
        shared
            .metrics
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(me = shared.me, %remote, reason, "refusing connection");
        connection.close(code, reason.as_bytes());
    };
    let Some(index) = peer_index(&shared, &connection) else {
        return refuse(code::BANNED, "no committee identity");
    };
    let Some(peer) = shared.peer(index).cloned() else {
        return refuse(code::WRONG_DIRECTION, "connection from ourselves");
    };
    if index > shared.me {
        return refuse(
            code::WRONG_DIRECTION,
            "higher index must be dialed, not dial",
        );
    }
    if peer.banned_for(Instant::now()).is_some() {
        return refuse(code::BANNED, "peer is banned");
    }
    shared.connected(&peer, connection.clone());
    reader::serve(shared, peer, connection).await;
}

/// The committee index of the key in the peer's (already verified)
/// certificate.
fn peer_index(shared: &Shared, connection: &quinn::Connection) -> Option<NodeIndex> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let key = tls::cert_key(certs.first()?).ok()?;
    shared.committee.index_of(&key)
}
