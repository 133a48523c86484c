//! One HTTP request over a fresh connection: enough to submit.

use std::net::SocketAddr;

use ordo_types::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Largest response read.
const MAX_RESPONSE: u64 = 1024 * 1024;

/// Submits one transaction; returns its digest once the node accepted it
/// into its intake (HTTP 202). It is durable once the node stores its
/// batch, normally within tens of milliseconds; see [`submit_durable`].
pub async fn submit(node: SocketAddr, namespace: u64, payload: &[u8]) -> Result<Digest> {
    let body = post(node, &format!("namespace={namespace}"), payload).await?;
    digest_in(node, &body)
}

/// Submits one transaction and returns its digest only once the node has
/// stored it (`?durable=true`): from then on a crash of that node does not
/// lose it. A duplicate whose first copy is already out of the node's
/// intake cannot be vouched for and is an [`Error::Status`] too; submitting
/// it again is safe (it is committed once).
pub async fn submit_durable(node: SocketAddr, namespace: u64, payload: &[u8]) -> Result<Digest> {
    let body = post(
        node,
        &format!("namespace={namespace}&durable=true"),
        payload,
    )
    .await?;
    if !body.contains("\"durable\":true") {
        return Err(Error::Status { status: 202, body });
    }
    digest_in(node, &body)
}

/// `POST /v1/transactions?{query}`; the body of a 202, else an error.
async fn post(node: SocketAddr, query: &str, payload: &[u8]) -> Result<String> {
    let connection = |message: String| Error::Connection {
        addr: node.to_string(),
        message,
    };
    let mut stream = TcpStream::connect(node)
        .await
        .map_err(|e| connection(e.to_string()))?;
    let head = format!(
        "POST /v1/transactions?{query} HTTP/1.1\r\nHost: {node}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| connection(e.to_string()))?;
    stream
        .write_all(payload)
        .await
        .map_err(|e| connection(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .await
        .map_err(|e| connection(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| connection("malformed response".into()))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    if status != 202 {
        return Err(Error::Status { status, body });
    }
    Ok(body)
}

fn digest_in(node: SocketAddr, body: &str) -> Result<Digest> {
    let connection = |message: String| Error::Connection {
        addr: node.to_string(),
        message,
    };
    let hex = body
        .split("\"digest\":\"")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .ok_or_else(|| connection(format!("no digest in '{body}'")))?;
    Digest::from_hex(hex).map_err(|e| connection(e.to_string()))
}
