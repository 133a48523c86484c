//! One HTTP request over a fresh connection: enough to submit.

use std::net::SocketAddr;

use ordo_types::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Largest response read.
const MAX_RESPONSE: u64 = 1024 * 1024;

/// Submits one transaction; returns its digest once the node accepted it
/// (HTTP 202).
pub async fn submit(node: SocketAddr, namespace: u64, payload: &[u8]) -> Result<Digest> {
    let connection = |message: String| Error::Connection {
        addr: node.to_string(),
        message,
    };
    let mut stream = TcpStream::connect(node)
        .await
        .map_err(|e| connection(e.to_string()))?;
    let head = format!(
        "POST /v1/transactions?namespace={namespace} HTTP/1.1\r\nHost: {node}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
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
    let hex = body
        .split("\"digest\":\"")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .ok_or_else(|| connection(format!("no digest in '{body}'")))?;
    Digest::from_hex(hex).map_err(|e| connection(e.to_string()))
}
