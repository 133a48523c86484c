//! The HTTP API (axum). Errors are JSON `{"error": {"code", "message"}}`
//! with a stable `code`; bodies are size-limited before they are read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ordo_mempool::{Admission, Intake, Transaction};
use ordo_network::Network;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::extract::{self, Body, Path, Query};
use crate::output::OutputBlock;
use crate::shared::Shared;
use crate::storage::Storage;

#[derive(Clone)]
pub struct ApiState {
    pub shared: Arc<Shared>,
    pub storage: Arc<Storage>,
    pub intake: Arc<Intake>,
    pub intake_ready: Arc<Notify>,
    pub network: Arc<Network>,
}

/// Largest body of `POST /v1/transactions/batch`.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

pub fn router(state: ApiState) -> Router {
    // Base64 in JSON is 4/3 larger; leave room for the envelope.
    let body_limit = state.intake.config().max_tx_bytes * 4 / 3 + 1024;
    let chunks = Router::new()
        .route("/v1/transactions/batch", post(submit_chunk))
        .layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES))
        .with_state(state.clone());
    Router::new()
        .route("/v1/transactions", post(submit))
        .route("/v1/status", get(status))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/stream", get(crate::stream::stream))
        .route(
            "/v1/ledger/root/{height}",
            get(crate::backends::api::ledger_root),
        )
        .route(
            "/v1/ledger/accounts/{key}",
            get(crate::backends::api::ledger_account),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .merge(chunks)
        .fallback(extract::not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
}

/// An API error: status, stable code, message.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.1, "message": self.2 } });
        (self.0, Json(body)).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message.into())
}

#[derive(Deserialize)]
struct SubmitQuery {
    namespace: Option<u64>,
    /// Answer only once the transaction is stored on this node.
    #[serde(default)]
    durable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitJson {
    namespace: u64,
    /// Base64 (standard alphabet, padded).
    payload: String,
}

/// `POST /v1/transactions`: raw bytes with `?namespace=N` (or header
/// `x-ordo-namespace`), or JSON `{"namespace": N, "payload": "<base64>"}`.
async fn submit(
    State(state): State<ApiState>,
    Query(query): Query<SubmitQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let tx = if is_json {
        let parsed: SubmitJson =
            serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid JSON: {e}")))?;
        let payload = BASE64
            .decode(parsed.payload.as_bytes())
            .map_err(|e| bad_request(format!("payload is not base64: {e}")))?;
        Transaction::new(parsed.namespace, payload)
    } else {
        let namespace = match query.namespace {
            Some(n) => n,
            None => headers
                .get("x-ordo-namespace")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    bad_request("missing namespace: use ?namespace=N or x-ordo-namespace")
                })?,
        };
        Transaction::new(namespace, body)
    };
    if tx.payload.is_empty() {
        return Err(bad_request("empty transaction"));
    }
    refuse_if_unable(&state)?;
    // Registered before the intake sees it, so the store cannot be missed.
    let digest = tx.digest();
    let waiter = query.durable.then(|| state.shared.durable.register(digest));
    let admission = state.intake.submit(tx);
    if let Ok(Admission::Accepted(_)) = admission {
        state.intake_ready.notify_one();
    }
    let waiter = match (&admission, waiter) {
        // A duplicate still queued is stored with its first copy; one
        // drained earlier may be stored already, which is not tracked.
        (Ok(Admission::Duplicate(_)), Some(_)) if !state.intake.is_queued(&digest) => {
            state.shared.durable.forget(&digest);
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "digest": digest.to_hex(), "duplicate": true, "durable": false })),
            )
                .into_response());
        }
        (Ok(_), waiter) => waiter,
        (Err(_), Some(_)) => {
            state.shared.durable.forget(&digest);
            None
        }
        (Err(_), None) => None,
    };
    if let Some(waiter) = waiter {
        let stored = tokio::time::timeout(DURABLE_WAIT, waiter).await;
        if !matches!(stored, Ok(Ok(()))) {
            state.shared.durable.forget(&digest);
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_durable",
                format!(
                    "accepted, but not stored within {} s; it may still be committed, and \
                     submitting it again is safe (it is committed once)",
                    DURABLE_WAIT.as_secs()
                ),
            ));
        }
    }
    let durable = query.durable.then_some(true);
    match admission {
        Ok(Admission::Accepted(digest)) => Ok((
            StatusCode::ACCEPTED,
            Json(with_durable(json!({ "digest": digest.to_hex() }), durable)),
        )
            .into_response()),
        Ok(Admission::Duplicate(digest)) => Ok((
            StatusCode::ACCEPTED,
            Json(with_durable(
                json!({ "digest": digest.to_hex(), "duplicate": true }),
                durable,
            )),
        )
            .into_response()),
        Err(ordo_mempool::Error::Busy) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the intake is full; retry later".into(),
        )),
        Err(ordo_mempool::Error::TxTooLarge { size, max }) => Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("transaction of {size} bytes exceeds {max}"),
        )),
        Err(e) => Err(bad_request(e.to_string())),
    }
}

/// How long `?durable=true` waits for the transaction's batch to be stored.
const DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn with_durable(mut body: serde_json::Value, durable: Option<bool>) -> serde_json::Value {
    if let (Some(durable), Some(map)) = (durable, body.as_object_mut()) {
        map.insert("durable".into(), durable.into());
    }
    body
}

/// 503 when this node cannot make new transactions durable soon: its data
/// dir is not writable, or its own batches have not been certified for a
/// while (peers unreachable, or it is catching up), so they would wait in
/// memory.
fn refuse_if_unable(state: &ApiState) -> Result<(), ApiError> {
    if state.shared.storage_failed() {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_failed",
            "this node cannot write to its data dir".into(),
        ));
    }
    if state.shared.intake_stalled() {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "stalled",
            "this node's batches are not being certified (peers unreachable or it is \
             catching up); retry later or submit to another node"
                .into(),
        ));
    }
    Ok(())
}

/// `POST /v1/transactions/batch?namespace=N`: the high-rate path for
/// gateways. The body is transactions, each a 4-byte big-endian length then
/// its bytes. They are admitted in order until the intake is full; the
/// answer acknowledges the chunk: how many were accepted (or were
/// duplicates), and the index of the first refused one, from which the
/// sender retries later. A malformed chunk is refused whole (400).
async fn submit_chunk(
    State(state): State<ApiState>,
    Query(query): Query<SubmitQuery>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let namespace = query
        .namespace
        .ok_or_else(|| bad_request("missing namespace: use ?namespace=N"))?;
    if query.durable {
        return Err(bad_request(
            "durable=true is for single transactions (POST /v1/transactions)",
        ));
    }
    let txs = split_chunk(&body).map_err(bad_request)?;
    refuse_if_unable(&state)?;
    let max = state.intake.config().max_tx_bytes;
    if let Some(size) = txs.iter().map(Bytes::len).find(|len| *len > max) {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a transaction of {size} bytes exceeds {max}"),
        ));
    }
    let total = txs.len();
    // Accepted payloads normally slice the request body. When the intake
    // may take only part of the chunk, they are copied instead: else a few
    // accepted transactions would each keep a whole refused body alive.
    let copy = !state
        .intake
        .has_room_for(total, txs.iter().map(Bytes::len).sum());
    let txs: Vec<Transaction> = txs
        .into_iter()
        .map(|payload| Transaction::new(namespace, payload))
        .collect();
    Transaction::compute_digests(&txs);
    let (mut accepted, mut duplicates) = (0usize, 0usize);
    let mut first_refused = None;
    for (i, mut tx) in txs.into_iter().enumerate() {
        if copy {
            // Same bytes, so the computed digest stays right.
            tx.payload = Bytes::copy_from_slice(&tx.payload);
        }
        match state.intake.submit(tx) {
            Ok(Admission::Accepted(_)) => accepted += 1,
            Ok(Admission::Duplicate(_)) => duplicates += 1,
            Err(_) => {
                first_refused = Some(i);
                break;
            }
        }
    }
    if accepted > 0 {
        state.intake_ready.notify_one();
    }
    let status = if first_refused.is_some() && accepted + duplicates == 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "refused": total - accepted - duplicates,
        "first_refused": first_refused,
    });
    Ok((status, Json(body)).into_response())
}

/// Splits a chunk body into transactions (4-byte big-endian length, bytes).
pub fn split_chunk(body: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let header = body
            .get(at..at + 4)
            .ok_or_else(|| format!("truncated length prefix at byte {at}"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        at += 4;
        if len == 0 {
            return Err(format!("empty transaction at byte {at}"));
        }
        if at + len > body.len() {
            return Err(format!(
                "transaction at byte {at} claims {len} bytes, {} remain",
                body.len() - at
            ));
        }
        out.push(body.slice(at..at + len));
        at += len;
    }
    if out.is_empty() {
        return Err("empty chunk".into());
    }
    Ok(out)
}

/// `GET /v1/status`.
async fn status(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let s = &state.shared;
    let peers = s
        .committee
        .indices()
        .filter(|i| *i != s.me && state.network.is_connected(*i))
        .count();
    Json(json!({
        "node": s.me,
        "committee_size": s.committee.size(),
        "view": s.view(),
        "committed_height": s.committed(),
        "delivered_height": s.delivered(),
        "lag": s.lag(),
        "peers_connected": peers,
        "timeouts": s.timeouts.load(std::sync::atomic::Ordering::Relaxed),
        "misbehaviour_reports": s.misbehaviour.load(std::sync::atomic::Ordering::Relaxed),
        "storage_ok": !s.storage_failed(),
        "intake_transactions": state.intake.len(),
        "backends": crate::backends::api::status_json(s),
        "ledger": crate::backends::api::ledger_json(s),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /v1/blocks/{height}`: the delivered block with its transactions and
/// commit certificate; JSON, or bincode with `Accept: application/octet-stream`.
async fn block(
    State(state): State<ApiState>,
    Path(height): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let height: u64 = height
        .parse()
        .map_err(|_| bad_request(format!("height '{height}' is not a number")))?;
    let tip = state.shared.delivered();
    if height == 0 || height > tip {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no block at height {height}; delivered height is {tip}"),
        ));
    }
    let storage = state.storage.clone();
    let block = tokio::task::spawn_blocking(move || storage.output(height))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?
        .ok_or_else(|| {
            ApiError(
                StatusCode::GONE,
                "pruned",
                format!("height {height} was pruned"),
            )
        })?;
    let wants_binary = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if wants_binary {
        let bytes = ordo_types::codec::encode_local(&block)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
    }
    Ok(Json(block_json(&block)).into_response())
}

/// The JSON form of a block: readable fields, plus the commit certificate in
/// bincode (base64) for clients that verify it.
pub fn block_json(block: &OutputBlock) -> serde_json::Value {
    let txs: Vec<serde_json::Value> = block
        .transactions()
        .map(|tx| {
            json!({
                "namespace": tx.namespace,
                "payload": BASE64.encode(&tx.payload),
                "digest": tx.digest().to_hex(),
            })
        })
        .collect();
    let cert = ordo_types::codec::encode(&block.cert).unwrap_or_default();
    json!({
        "height": block.header.height,
        "view": block.header.view,
        "digest": block.header.digest().to_hex(),
        "parent": block.header.parent.to_hex(),
        "author": block.header.author,
        "batches": block.batches.len(),
        "transactions": txs,
        "commit_cert": {
            "qc_view": block.cert.qc.view,
            "signers": block.cert.qc.votes.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            "chain_length": block.cert.chain.len(),
            "bincode_base64": BASE64.encode(cert),
        },
    })
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&state),
    )
        .into_response()
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.shared.storage_failed() {
        (StatusCode::SERVICE_UNAVAILABLE, "storage failed\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(txs: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for tx in txs {
            out.extend_from_slice(&(tx.len() as u32).to_be_bytes());
            out.extend_from_slice(tx);
        }
        Bytes::from(out)
    }

    #[test]
    fn chunks_split_and_malformed_ones_are_refused() {
        assert_eq!(
            split_chunk(&chunk(&[b"a", b"bc"])).unwrap(),
            vec![Bytes::from("a"), Bytes::from("bc")]
        );
        assert!(split_chunk(&Bytes::new()).is_err());
        assert!(split_chunk(&Bytes::from(vec![0, 0, 0])).is_err());
        assert!(split_chunk(&Bytes::from(vec![0, 0, 0, 9, 1])).is_err());
        assert!(split_chunk(&Bytes::from(vec![0, 0, 0, 0])).is_err());
        assert!(split_chunk(&Bytes::from(vec![255, 255, 255, 255, 1])).is_err());
    }
}
