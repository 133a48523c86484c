//! A small S3-compatible object server for tests (not used by the node):
//! path-style `PUT`, `GET`, `HEAD` and `DELETE` of objects, each request's
//! AWS Signature V4 checked against one access key, and a switch that makes
//! every request fail with 503 as a store that is down would.
//!
//! It runs on a thread of its own, so sync and async tests can both use it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use ring::{digest, hmac};

pub const ACCESS_KEY: &str = "ordo-test-key";
pub const SECRET_KEY: &str = "ordo-test-secret";
pub const REGION: &str = "us-east-1";

#[derive(Default)]
struct Inner {
    /// `/bucket/key` → bytes.
    objects: Mutex<BTreeMap<String, Bytes>>,
    /// `/bucket/key` → how many PUTs it got.
    puts: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<Vec<String>>,
    down: AtomicBool,
}

pub struct S3TestServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3TestServer {
    /// Listens on a port of 127.0.0.1 chosen by the OS.
    pub fn start() -> std::io::Result<S3TestServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::default());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("s3-test-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = axum::Router::new().fallback(handle).with_state(state);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(S3TestServer {
            addr,
            inner,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `[backends]` settings (and URL) that point a node at `bucket/prefix` here.
    pub fn options(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("endpoint".into(), self.endpoint()),
            ("allow_http".into(), "true".into()),
            ("region".into(), REGION.into()),
            ("access_key_id".into(), ACCESS_KEY.into()),
            ("secret_access_key".into(), SECRET_KEY.into()),
        ])
    }

    /// While `down`, every request gets 503 Service Unavailable.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Stored object paths (`/bucket/key`) and their bytes.
    pub fn objects(&self) -> BTreeMap<String, Bytes> {
        self.inner.objects.lock().clone()
    }

    /// PUTs per object path.
    pub fn puts(&self) -> BTreeMap<String, u64> {
        self.inner.puts.lock().clone()
    }

    /// Why requests were refused (bad or missing signature).
    pub fn rejected(&self) -> Vec<String> {
        self.inner.rejected.lock().clone()
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if inner.down.load(Ordering::SeqCst) {
        return s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "down for the test",
        );
    }
    if let Err(why) = verify_signature(&method, &uri, &headers, &body) {
        inner.rejected.lock().push(why.clone());
        return s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &why);
    }
    let path = uri.path().to_string();
    match method {
        Method::PUT => {
            let etag = etag(&body);
            inner.objects.lock().insert(path.clone(), body);
            *inner.puts.lock().entry(path).or_default() += 1;
            (StatusCode::OK, [("etag", etag)]).into_response()
        }
        Method::GET | Method::HEAD => {
            let Some(bytes) = inner.objects.lock().get(&path).cloned() else {
                return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "no such key");
            };
            let meta = [
                ("etag", etag(&bytes)),
                ("last-modified", "Sat, 21 Nov 2026 00:00:00 GMT".to_string()),
                ("content-length", bytes.len().to_string()),
            ];
            if method == Method::HEAD {
                (StatusCode::OK, meta).into_response()
            } else {
                (StatusCode::OK, meta, bytes).into_response()
            }
        }
        Method::DELETE => {
            inner.objects.lock().remove(&path);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => s3_error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "not in the test server",
        ),
    }
}

fn etag(bytes: &[u8]) -> String {
    format!(
        "\"{}\"",
        hex(digest::digest(&digest::SHA256, bytes).as_ref())
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("missing header {name}"))
}

/// AWS Signature Version 4 for a request signed in headers.
fn verify_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let authorization = header(headers, "authorization")?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("authorization is not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err("authorization lacks Credential, SignedHeaders or Signature".into()),
    };
    let (key, scope) = credential.split_once('/').ok_or("bad credential")?;
    if key != ACCESS_KEY {
        return Err(format!("unknown access key {key}"));
    }
    let date = scope.split('/').next().unwrap_or_default();
    let amz_date = header(headers, "x-amz-date")?;
    let payload_hash = header(headers, "x-amz-content-sha256")?;
    if payload_hash != "UNSIGNED-PAYLOAD"
        && payload_hash != hex(digest::digest(&digest::SHA256, body).as_ref())
    {
        return Err("x-amz-content-sha256 does not match the body".into());
    }
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    query.sort_unstable();
    let query: Vec<String> = query
        .iter()
        .map(|p| match p.split_once('=') {
            Some(_) => p.to_string(),
            None => format!("{p}="),
        })
        .collect();
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let value = header(headers, name)?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        uri.path(),
        query.join("&")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut signing_key = format!("AWS4{SECRET_KEY}").into_bytes();
    for part in [date, REGION, "s3", "aws4_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &signing_key);
        signing_key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    let k = hmac::Key::new(hmac::HMAC_SHA256, &signing_key);
    let expected = hex(hmac::sign(&k, string_to_sign.as_bytes()).as_ref());
    if expected != signature {
        return Err(format!("signature mismatch for {method} {}", uri.path()));
    }
    Ok(())
}
