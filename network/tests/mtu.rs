//! Datagram size: on loopback MTU discovery climbs to the configured
//! bound (64 KiB without segmentation offload; 6,500 bytes with it), and
//! the default 1,452 is kept to. Large frames arrive intact and nothing is
//! lost either way: a GSO send over 64 KiB would be dropped silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ordo_network::{Class, Config, Error, Network};

/// Sends frames of 1 MiB from 0 to 1 until the path from 0 has carried 8
/// of them at an MTU above `above` (or 40 in all), checking each frame and
/// that no packet was lost; returns the MTU seen.
async fn bulk_until_mtu(config: Config, above: u16) -> u16 {
    let mut c = cluster(2, &[config]);
    assert!(all_connected(&c.nets, Duration::from_secs(5)).await);
    let mtu = |net: &Network| {
        net.metrics()
            .peer(1)
            .and_then(|p| p.path)
            .map_or(0, |p| p.mtu)
    };
    let mut past = 0;
    for i in 0u8..40 {
        let frame = Bytes::from(vec![i; 1024 * 1024]);
        c.nets[0].send(1, Class::Batches, frame.clone()).unwrap();
        let got = c.inboxes[1].recv().await.expect("inbox closed");
        assert_eq!((got.from, got.class), (0, Class::Batches));
        assert!(got.bytes == frame, "frame {i} arrived changed");
        if mtu(&c.nets[0]) > above {
            past += 1;
            if past == 8 {
                break;
            }
        }
    }
    let path = c.nets[0].metrics().peer(1).and_then(|p| p.path).unwrap();
    assert_eq!(path.lost_packets, 0, "loopback lost packets: {path:?}");
    path.mtu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_loopback_paths_discover_large_datagrams() {
    init_tracing();
    bounded(Duration::from_secs(30), async {
        let config = Config {
            max_udp_payload_bytes: 65_527,
            ..test_config()
        };
        let mtu = bulk_until_mtu(config, 60_000).await;
        assert!(mtu > 60_000, "MTU discovery stopped at {mtu} bytes");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_the_largest_bound_with_segmentation_offload_loses_nothing() {
    init_tracing();
    bounded(Duration::from_secs(30), async {
        let config = Config {
            max_udp_payload_bytes: 6_500,
            ..test_config()
        };
        let mtu = bulk_until_mtu(config, 6_000).await;
        assert!(
            (6_000..=6_500).contains(&mtu),
            "MTU discovery at a 6,500 bound: {mtu}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_the_default_bound_is_kept() {
    init_tracing();
    bounded(Duration::from_secs(30), async {
        let mtu = bulk_until_mtu(test_config(), 1452).await;
        assert!(
            (1200..=1452).contains(&mtu),
            "MTU discovery went past its bound: {mtu}"
        );
    })
    .await;
}

#[test]
fn datagram_bounds_outside_quic_limits_are_refused() {
    for bad in [0, 1199, 65_528] {
        let config = Config {
            max_udp_payload_bytes: bad,
            ..Config::default()
        };
        assert!(
            matches!(config.validate(), Err(Error::Config(_))),
            "{bad} accepted"
        );
    }
    let config = Config {
        max_udp_payload_bytes: 1200,
        ..Config::default()
    };
    assert!(config.validate().is_ok());
}
