//! `GET /v1/stream?from=H&namespace=N`: committed blocks over WebSocket.
//!
//! Blocks are sent in height order as binary bincode `OutputBlock` frames,
//! so a subscriber is never skipped: a follower at the tip takes each block
//! from the live broadcast as it is delivered; a slow one is paced by the
//! socket's back-pressure, and one that falls behind the broadcast (or
//! starts in the past) reads on from storage. A height already pruned ends the
//! stream with a text frame `{"error":{"code":"pruned","resume_from":H}}`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::State;
use axum::response::Response;
use ordo_client::OutputBlock;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::api::ApiState;
use crate::extract::{Query, WebSocketUpgrade};
use crate::shared::Delivered;
use crate::storage::Storage;

#[derive(Deserialize)]
pub struct StreamQuery {
    from: Option<u64>,
    namespace: Option<u64>,
}

pub async fn stream(
    Query(query): Query<StreamQuery>,
    State(state): State<ApiState>,
    WebSocketUpgrade(ws): WebSocketUpgrade,
) -> Response {
    let from = query.from.unwrap_or(1).max(1);
    ws.on_upgrade(move |socket| follow(socket, state, from, query.namespace))
}

async fn follow(mut socket: WebSocket, state: ApiState, from: u64, namespace: Option<u64>) {
    let mut wake = state.shared.subscribe();
    let mut next = from;
    let send = |block: &OutputBlock| match namespace {
        Some(ns) => ordo_types::codec::encode_local(&filter(block.clone(), ns)).ok(),
        None => ordo_types::codec::encode_local(block).ok(),
    };
    loop {
        while next <= state.shared.delivered() {
            if let Some(block) = state.shared.latest(next) {
                if !push(&mut socket, send(&block)).await {
                    return;
                }
                next += 1;
                continue;
            }
            let storage: Arc<Storage> = state.storage.clone();
            let read = tokio::task::spawn_blocking(move || storage.output(next)).await;
            let block = match read {
                Ok(Ok(Some(block))) => block,
                Ok(Ok(None)) => {
                    let resume_from = state.storage.pruned_below().unwrap_or(next);
                    let error = json!({"error": {"code": "pruned", "message": format!("height {next} was pruned"), "resume_from": resume_from}});
                    let _ = socket.send(Message::Text(error.to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                _ => {
                    let error =
                        json!({"error": {"code": "storage", "message": "cannot read the block"}});
                    let _ = socket.send(Message::Text(error.to_string().into())).await;
                    return;
                }
            };
            if !push(&mut socket, send(&block)).await {
                return;
            }
            next += 1;
        }
        tokio::select! {
            woke = wake.recv() => match woke {
                // The next block, live: no storage read. A large one comes
                // as its height only and is taken above (the last delivered
                // block, or storage).
                Ok(Delivered {
                    height,
                    block: Some(block),
                }) if height == next => {
                    if !push(&mut socket, send(&block)).await {
                        return;
                    }
                    next += 1;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends one encoded block; false if it did not encode or the client left.
async fn push(socket: &mut WebSocket, encoded: Option<Vec<u8>>) -> bool {
    match encoded {
        Some(bytes) => socket.send(Message::Binary(bytes.into())).await.is_ok(),
        None => false,
    }
}

/// Keeps only the batches holding a transaction of `namespace`, remapping the
/// skipped positions. Certificates stay, so the header still verifies.
pub fn filter(mut block: OutputBlock, namespace: u64) -> OutputBlock {
    let keep: Vec<bool> = block
        .batches
        .iter()
        .map(|b| b.txs.iter().any(|tx| tx.namespace == namespace))
        .collect();
    let mut new_index = Vec::with_capacity(keep.len());
    let mut count = 0u32;
    for k in &keep {
        new_index.push(count);
        if *k {
            count += 1;
        }
    }
    block.skipped = block
        .skipped
        .iter()
        .filter(|(b, _)| keep.get(*b as usize).copied().unwrap_or(false))
        .map(|(b, t)| (new_index[*b as usize], *t))
        .collect();
    let mut flags = keep.into_iter();
    block.batches.retain(|_| flags.next().unwrap_or(false));
    block
}
