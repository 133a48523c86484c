//! `GET /metrics` in the Prometheus text format (prometheus-client). Values
//! are read from the node's shared state, intake and transport at scrape
//! time.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

use crate::api::ApiState;

type Labels = Vec<(String, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge<i64, std::sync::atomic::AtomicI64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Renders every metric; `docs/metrics.md` lists them.
pub fn render(state: &ApiState) -> String {
    let s = &state.shared;
    let mut r = Registry::with_prefix("ordo");
    gauge(
        &mut r,
        "committed_height",
        "Height of the last block consensus committed and stored",
        as_i64(s.committed()),
    );
    gauge(
        &mut r,
        "delivered_height",
        "Height of the last block delivered with all its batches",
        as_i64(s.delivered()),
    );
    gauge(&mut r, "view", "Current consensus view", as_i64(s.view()));
    gauge(
        &mut r,
        "view_timeouts",
        "Views this node timed out in since it started",
        as_i64(s.timeouts.load(Ordering::Relaxed)),
    );
    gauge(
        &mut r,
        "misbehaviour_reports",
        "Invalid messages received from peers since start",
        as_i64(s.misbehaviour.load(Ordering::Relaxed)),
    );
    gauge(
        &mut r,
        "storage_ok",
        "1 while the data dir accepts writes",
        i64::from(!s.storage_failed()),
    );
    gauge(
        &mut r,
        "lag_heights",
        "Heights behind the highest committed height f+1 peers claim",
        as_i64(s.lag()),
    );
    let delivered_txs: prometheus_client::metrics::counter::Counter = Default::default();
    delivered_txs.inc_by(s.delivered_transactions.load(Ordering::Relaxed));
    r.register(
        "delivered_transactions",
        "Transactions delivered since start (rate() gives TPS)",
        delivered_txs,
    );
    let delivered_batches: prometheus_client::metrics::counter::Counter = Default::default();
    delivered_batches.inc_by(s.delivered_batches.load(Ordering::Relaxed));
    r.register(
        "delivered_batches",
        "Batches delivered since start",
        delivered_batches,
    );
    gauge(
        &mut r,
        "pending_certificates",
        "Batch certificates waiting for a block",
        as_i64(s.pending_certificates.load(Ordering::Relaxed)),
    );
    r.register(
        "own_batch_commit_latency_seconds",
        "From sealing one of this node's batches to delivering the block that holds it",
        s.commit_latency.clone(),
    );
    r.register(
        "own_batch_certify_latency_seconds",
        "From sealing one of this node's batches to sending its certificate",
        s.certify_latency.clone(),
    );
    r.register(
        "accept_to_commit_seconds",
        "From this node's intake accepting a transaction to this node delivering it",
        s.accept_to_commit.clone(),
    );
    r.register(
        "consensus_latency_seconds",
        "From voting for a block (its proposal accepted) to committing it",
        s.consensus_latency.clone(),
    );
    gauge(
        &mut r,
        "intake_transactions",
        "Transactions waiting in the intake",
        state.intake.len() as i64,
    );
    gauge(
        &mut r,
        "intake_bytes",
        "Bytes waiting in the intake",
        state.intake.bytes() as i64,
    );
    gauge(
        &mut r,
        "storage_bytes",
        "Size of the node's database file",
        as_i64(state.storage.size_bytes()),
    );
    gauge(
        &mut r,
        "pruned_below_height",
        "Heights below this have had their batches pruned",
        as_i64(state.storage.pruned_below().unwrap_or(0)),
    );
    crate::backends::api::register_metrics(&mut r, s);
    let net = state.network.metrics();
    let peers: Family<Labels, Gauge> = Family::default();
    let rtt: Family<Labels, Gauge> = Family::default();
    let mtu: Family<Labels, Gauge> = Family::default();
    let sent_packets: Family<Labels, Gauge> = Family::default();
    let lost_packets: Family<Labels, Gauge> = Family::default();
    let reconnects: Family<Labels, Gauge> = Family::default();
    let bad_frames: Family<Labels, Gauge> = Family::default();
    let bans: Family<Labels, Gauge> = Family::default();
    for peer in &net.peers {
        let labels = vec![("peer".to_string(), peer.index.to_string())];
        peers.get_or_create(&labels).set(i64::from(peer.connected));
        rtt.get_or_create(&labels)
            .set(peer.rtt.map_or(0, |d| d.as_micros() as i64));
        let path = peer.path.unwrap_or_default();
        mtu.get_or_create(&labels).set(i64::from(path.mtu));
        sent_packets
            .get_or_create(&labels)
            .set(as_i64(path.sent_packets));
        lost_packets
            .get_or_create(&labels)
            .set(as_i64(path.lost_packets));
        reconnects
            .get_or_create(&labels)
            .set(as_i64(peer.reconnects));
        bad_frames
            .get_or_create(&labels)
            .set(as_i64(peer.bad_frames));
        bans.get_or_create(&labels).set(as_i64(peer.bans));
    }
    r.register(
        "peer_connected",
        "1 while the QUIC connection to the peer is up",
        peers,
    );
    r.register(
        "peer_rtt_microseconds",
        "Round-trip time to the peer (QUIC estimate)",
        rtt,
    );
    r.register(
        "peer_udp_payload_bytes",
        "Largest UDP payload of the connection to the peer (MTU discovery)",
        mtu,
    );
    r.register(
        "peer_sent_packets",
        "QUIC packets sent on the current connection to the peer",
        sent_packets,
    );
    r.register(
        "peer_lost_packets",
        "QUIC packets the current connection to the peer declared lost",
        lost_packets,
    );
    r.register(
        "peer_reconnects",
        "Connections to the peer made again",
        reconnects,
    );
    r.register(
        "peer_bad_frames",
        "Malformed or undecodable frames received from the peer",
        bad_frames,
    );
    r.register(
        "peer_bans",
        "Times the peer was disconnected and banned for bad frames",
        bans,
    );
    gauge(
        &mut r,
        "network_refused_handshakes",
        "QUIC handshakes refused: certificate key not a member (or not the one dialed)",
        as_i64(net.refused_handshakes),
    );
    gauge(
        &mut r,
        "network_refused_connections",
        "Authenticated connections closed at once: banned peer or wrong dial direction",
        as_i64(net.refused_connections),
    );
    let families: Vec<(&str, &str, Family<Labels, Gauge>)> = vec![
        (
            "network_queue_frames",
            "Frames queued to send, by class",
            Family::default(),
        ),
        (
            "network_dropped_frames",
            "Frames dropped or refused by a full queue, by class",
            Family::default(),
        ),
        (
            "network_refused_frames",
            "Frames refused at send by a full queue (batches, sync), by class",
            Family::default(),
        ),
        (
            "network_frames_in",
            "Frames received, by class",
            Family::default(),
        ),
        (
            "network_frames_out",
            "Frames sent, by class",
            Family::default(),
        ),
        (
            "network_bytes_in",
            "Bytes received, by class",
            Family::default(),
        ),
        (
            "network_bytes_out",
            "Bytes sent, by class",
            Family::default(),
        ),
    ];
    for class in ordo_network::Class::ALL {
        let total = net.total(class);
        let labels = vec![("class".to_string(), format!("{class:?}").to_lowercase())];
        let values = [
            total.queue_depth as u64,
            total.dropped,
            total.refused,
            total.frames_in,
            total.frames_out,
            total.bytes_in,
            total.bytes_out,
        ];
        for ((_, _, family), value) in families.iter().zip(values) {
            family.get_or_create(&labels).set(as_i64(value));
        }
    }
    for (name, help, family) in families {
        r.register(name, help, family);
    }
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    out
}
