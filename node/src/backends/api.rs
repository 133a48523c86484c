//! The backends in the HTTP API and metrics: status fields,
//! `GET /v1/ledger/root/{height}`, `GET /v1/ledger/accounts/{key}`, and the
//! `ordo_backend_*` gauges.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ordo_types::PublicKey;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

use crate::api::{ApiError, ApiState};
use crate::extract::Path;
use crate::shared::Shared;

/// `backends` of `/v1/status`: `{name: {kind, height, lag, errors, halted,
/// last_error}}`.
pub fn status_json(shared: &Shared) -> Value {
    let delivered = shared.delivered();
    let map: serde_json::Map<String, Value> = shared
        .backends
        .statuses()
        .iter()
        .map(|s| (s.name.to_string(), s.json(delivered)))
        .collect();
    Value::Object(map)
}

/// `ledger` of `/v1/status`: `{height, root, applied, rejected}`, or null.
pub fn ledger_json(shared: &Shared) -> Value {
    let Some(db) = shared.backends.ledger() else {
        return Value::Null;
    };
    let read = || -> crate::Result<Value> {
        let height = db.cursor(super::db::LEDGER_CURSOR)?;
        let totals = db.ledger_totals()?;
        let root = db.ledger_root(height)?.map(|r| r.root.to_hex());
        Ok(json!({
            "height": height,
            "root": root,
            "applied": totals.applied,
            "rejected": totals.rejected,
        }))
    };
    read().unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn no_ledger() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no_ledger",
        "this node does not run the ledger backend".into(),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
}

/// `GET /v1/ledger/root/{height}`: `{height, root, applied, rejected}` of a
/// height the ledger applied.
pub async fn ledger_root(
    State(state): State<ApiState>,
    Path(height): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("height '{height}' is not a number"),
        )
    })?;
    let db = state.shared.backends.ledger().ok_or_else(no_ledger)?;
    let record = tokio::task::spawn_blocking(move || db.ledger_root(height))
        .await
        .map_err(internal)?
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("the ledger has not applied height {height}"),
            )
        })?;
    Ok(Json(json!({
        "height": height,
        "root": record.root.to_hex(),
        "applied": record.applied,
        "rejected": record.rejected,
    })))
}

/// `GET /v1/ledger/accounts/{key}` (hex public key): `{key, balance, nonce,
/// height}` as of the ledger's height; an unknown account has 0 and 0.
pub async fn ledger_account(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let public = PublicKey::from_hex(&key).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("'{key}' is not a public key: {e}"),
        )
    })?;
    let db = state.shared.backends.ledger().ok_or_else(no_ledger)?;
    let (account, height) = tokio::task::spawn_blocking(move || -> crate::Result<_> {
        // One read transaction would be tidier; two reads may straddle a
        // block, so the height is read after the account (never newer).
        let account = db.ledger_account(&public)?.unwrap_or_default();
        let height = db.cursor(super::db::LEDGER_CURSOR)?;
        Ok((account, height))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(Json(json!({
        "key": key,
        "balance": account.balance,
        "nonce": account.nonce,
        "height": height,
    })))
}

type Labels = Vec<(String, String)>;

/// `ordo_backend_height`, `ordo_backend_lag`, `ordo_backend_errors`, by
/// `backend` (`da`, `execution`).
pub fn register_metrics(registry: &mut Registry, shared: &Shared) {
    let delivered = shared.delivered();
    let height: Family<Labels, Gauge> = Family::default();
    let lag: Family<Labels, Gauge> = Family::default();
    let errors: Family<Labels, Gauge> = Family::default();
    for s in shared.backends.statuses() {
        let labels = vec![("backend".to_string(), s.name.to_string())];
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        height.get_or_create(&labels).set(clamp(s.height()));
        lag.get_or_create(&labels)
            .set(clamp(delivered.saturating_sub(s.height())));
        errors.get_or_create(&labels).set(clamp(s.errors()));
    }
    registry.register(
        "backend_height",
        "Last height the backend finished (published or applied)",
        height,
    );
    registry.register(
        "backend_lag",
        "Delivered blocks the backend has not finished yet",
        lag,
    );
    registry.register(
        "backend_errors",
        "Backend failures since start (each failed retry counts)",
        errors,
    );
}
