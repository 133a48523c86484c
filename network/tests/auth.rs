//! Mutual authentication: only committee keys get through the handshake,
//! and a dialer only accepts the member it meant to reach.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ordo_network::{Class, Network};
use ordo_types::Keypair;

/// Real committee {0, 1}. An intruder with key X (not a member) believes the
/// committee is {X, 1}, so as index 0 it dials member 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_key_is_refused_at_handshake() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        let mut c = cluster(2, &[test_config()]);
        assert!(all_connected(&c.nets, Duration::from_secs(5)).await);

        let intruder_key = Keypair::from_seed([0xEE; 32]);
        let bound = Network::bind(LOOPBACK.parse().unwrap()).unwrap();
        let fake = committee(
            &[intruder_key.clone(), keypair(1)],
            &[bound.local_addr(), c.addresses[1]],
        );
        let (intruder, mut intruder_inbox) =
            bound.start(test_config(), &intruder_key, fake).unwrap();
        intruder
            .send(1, Class::Consensus, Bytes::from_static(b"let me in"))
            .unwrap();

        let victim = &c.nets[1];
        assert!(
            eventually(Duration::from_secs(5), || victim
                .metrics()
                .refused_handshakes
                >= 1)
            .await,
            "refusal not counted"
        );
        // Give the intruder time to retry; it must never get a connection.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // TLS 1.3 clients finish before the server judges their certificate,
        // so the intruder may briefly think it is connected; the server's
        // refusal closes that connection before any frame is accepted.
        assert!(eventually(Duration::from_secs(3), || !intruder.is_connected(1)).await);
        assert_eq!(victim.metrics().total(Class::Consensus).frames_in, 0);
        assert!(
            c.inboxes[1].try_recv().is_err(),
            "victim received something"
        );
        assert!(intruder_inbox.try_recv().is_err());
        // The real members still talk.
        c.nets[0]
            .send(1, Class::Consensus, Bytes::from_static(b"hi"))
            .unwrap();
        let m = c.inboxes[1].recv().await.unwrap();
        assert_eq!((m.from, &m.bytes[..]), (0, &b"hi"[..]));

        intruder.shutdown().await;
        for net in &c.nets {
            net.shutdown().await;
        }
    })
    .await;
}

/// Member 0 dials member 1's address, but an impostor holding member 2's
/// key answers there: the dialer refuses it although 2 is a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_refuses_a_member_other_than_the_one_dialed() {
    init_tracing();
    bounded(Duration::from_secs(20), async {
        let keys: Vec<Keypair> = (0..3).map(keypair).collect();
        let b0 = Network::bind(LOOPBACK.parse().unwrap()).unwrap();
        let b_impostor = Network::bind(LOOPBACK.parse().unwrap()).unwrap();
        let unused = released_udp_address();
        // Member 1's address is where the impostor (key 2) listens.
        let real = committee(&keys, &[b0.local_addr(), b_impostor.local_addr(), unused]);
        let (n0, mut inbox0) = b0.start(test_config(), &keys[0], real.clone()).unwrap();
        let (impostor, mut impostor_inbox) =
            b_impostor.start(test_config(), &keys[2], real).unwrap();
        n0.send(1, Class::Consensus, Bytes::from_static(b"for 1 only"))
            .unwrap();

        assert!(
            eventually(Duration::from_secs(5), || n0.metrics().refused_handshakes
                >= 1)
            .await,
            "dialer did not refuse the impostor"
        );
        assert!(!n0.is_connected(1));
        assert!(impostor_inbox.try_recv().is_err());
        assert!(inbox0.try_recv().is_err());
        n0.shutdown().await;
        impostor.shutdown().await;
    })
    .await;
}
