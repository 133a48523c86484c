//! Bad input at every endpoint gets a 4xx with a JSON error code, and the
//! node keeps serving.

#![allow(clippy::type_complexity)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{http, Cluster};

fn code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or("").to_string()
}

#[test]
fn n1_every_endpoint_refuses_bad_input_and_keeps_serving() {
    let cluster = Cluster::start(1);
    let api = cluster.apis[0];
    let big = vec![7u8; 200 * 1024];
    // (name, method, path, headers, body, expected status, expected code)
    let table: Vec<(&str, &str, &str, Vec<(&str, &str)>, &[u8], u16, &str)> = vec![
        (
            "wrong method on transactions",
            "GET",
            "/v1/transactions",
            vec![],
            b"",
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on status",
            "POST",
            "/v1/status",
            vec![],
            b"x",
            405,
            "method_not_allowed",
        ),
        (
            "missing namespace",
            "POST",
            "/v1/transactions",
            vec![],
            b"tx",
            400,
            "bad_request",
        ),
        (
            "namespace not a number",
            "POST",
            "/v1/transactions?namespace=abc",
            vec![],
            b"tx",
            400,
            "bad_request",
        ),
        (
            "chunk namespace not a number",
            "POST",
            "/v1/transactions/batch?namespace=-1",
            vec![],
            b"\0\0\0\x01x",
            400,
            "bad_request",
        ),
        (
            "empty transaction",
            "POST",
            "/v1/transactions?namespace=1",
            vec![],
            b"",
            400,
            "bad_request",
        ),
        (
            "bad JSON",
            "POST",
            "/v1/transactions",
            vec![("content-type", "application/json")],
            b"{nope",
            400,
            "bad_request",
        ),
        (
            "JSON with bad base64",
            "POST",
            "/v1/transactions",
            vec![("content-type", "application/json")],
            br#"{"namespace":1,"payload":"***"}"#,
            400,
            "bad_request",
        ),
        (
            "JSON with unknown field",
            "POST",
            "/v1/transactions",
            vec![("content-type", "application/json")],
            br#"{"namespace":1,"payload":"aGk=","x":1}"#,
            400,
            "bad_request",
        ),
        (
            "oversize body",
            "POST",
            "/v1/transactions?namespace=1",
            vec![],
            &big,
            413,
            "too_large",
        ),
        (
            "stream without a WebSocket upgrade",
            "GET",
            "/v1/stream?from=1",
            vec![],
            b"",
            400,
            "bad_request",
        ),
        (
            "stream with a bad query",
            "GET",
            "/v1/stream?from=minus-one",
            vec![],
            b"",
            400,
            "bad_request",
        ),
        (
            "height not a number",
            "GET",
            "/v1/blocks/abc",
            vec![],
            b"",
            400,
            "bad_request",
        ),
        (
            "height zero",
            "GET",
            "/v1/blocks/0",
            vec![],
            b"",
            404,
            "not_found",
        ),
        (
            "height beyond the tip",
            "GET",
            "/v1/blocks/999999999",
            vec![],
            b"",
            404,
            "not_found",
        ),
        (
            "unknown path",
            "GET",
            "/v1/nothing",
            vec![],
            b"",
            404,
            "not_found",
        ),
    ];
    for (name, method, path, headers, body, status, expected_code) in table {
        let (got, response) = http(api, method, path, &headers, body).unwrap();
        assert_eq!(
            got,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&response)
        );
        // Every refusal is the API's JSON error, whatever refused it.
        assert_eq!(code(&response), expected_code, "{name}");
    }
    // Still serving, and a good transaction still goes through.
    let (status, _) = http(api, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert_eq!(cluster.submit(0, 1, b"good"), 202);
    let (status, body) = http(api, "POST", "/v1/transactions?namespace=1", &[], b"good").unwrap();
    assert_eq!(status, 202);
    assert!(String::from_utf8_lossy(&body).contains("\"duplicate\":true"));
    let (status, body) = http(api, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("ordo_committed_height"));
    // Per-peer series (`ordo_peer_bad_frames`, `ordo_peer_bans`) need a
    // peer: tests/byzantine.rs reads them.
    for series in [
        "ordo_network_refused_handshakes 0",
        "ordo_network_refused_connections 0",
        "ordo_network_refused_frames{class=\"batches\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == series),
            "/metrics lacks {series}:\n{body}"
        );
    }
}

#[test]
fn n4_full_intake_answers_busy_and_keeps_serving() {
    // Small batches, one in flight at a time, a tiny intake; with three of
    // four nodes down no batch can be certified, so back-pressure reaches
    // the API.
    let mut cluster = Cluster::start_with(4, |config| {
        *config = config.replace("batch_bytes = 524288", "batch_bytes = 1024");
        *config = config.replace("max_tx_bytes = 131072", "max_tx_bytes = 1024");
        *config = config.replace("max_inflight_batches = 16", "max_inflight_batches = 1");
        *config = config.replace("max_count = 32768", "max_count = 3");
    });
    for i in 1..4 {
        cluster.kill(i);
    }
    let mut statuses = Vec::new();
    for k in 0..50u32 {
        let payload = format!("{k:0>200}");
        let (status, body) = http(
            cluster.apis[0],
            "POST",
            "/v1/transactions?namespace=1",
            &[],
            payload.as_bytes(),
        )
        .unwrap();
        if status == 503 {
            // A second after its batch stopped being certified the node
            // refuses outright; before that the full intake does.
            let code = code(&body);
            assert!(code == "busy" || code == "stalled", "{code}");
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&503),
        "the intake never filled: {statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 202 || *s == 503));
    // Once the stall is seen (checked every second), nothing is queued.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, body) = http(
        cluster.apis[0],
        "POST",
        "/v1/transactions?namespace=1",
        &[],
        b"after the stall",
    )
    .unwrap();
    assert_eq!((status, code(&body).as_str()), (503, "stalled"));
    let (status, _) = http(cluster.apis[0], "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);
}

/// `?durable=true` answers once the transaction's batch is stored on the
/// node: `"durable": true`. A duplicate of one already drained says
/// `"durable": false` (not tracked); chunks refuse the flag.
#[test]
fn n1_durable_submission_answers_once_stored() {
    let cluster = Cluster::start(1);
    let api = cluster.apis[0];
    let submit = || {
        let (status, body) = http(
            api,
            "POST",
            "/v1/transactions?namespace=1&durable=true",
            &[],
            b"keep me",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 202, "{v}");
        v
    };
    let started = std::time::Instant::now();
    let v = submit();
    assert_eq!(v["durable"], true, "{v}");
    // Not before the batch could be sealed (25 ms delay by default).
    assert!(started.elapsed() >= std::time::Duration::from_millis(20));
    let v = submit();
    assert_eq!(
        (v["duplicate"].clone(), v["durable"].clone()),
        (true.into(), false.into())
    );
    let (status, body) = http(
        api,
        "POST",
        "/v1/transactions/batch?namespace=1&durable=true",
        &[],
        &[0, 0, 0, 1, b'x'],
    )
    .unwrap();
    assert_eq!((status, code(&body).as_str()), (400, "bad_request"));
    // Without the flag the answer does not say.
    let (_, body) = http(api, "POST", "/v1/transactions?namespace=1", &[], b"other").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v.get("durable").is_none(), "{v}");
}
