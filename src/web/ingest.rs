//! `POST /api/v1/ingest`: the HTTP side of the one way in for results, for remote regional agents.
//!
//! An agent sends a JSON array of results (the records `cdnwatch probe --json` prints) with its
//! identity in `X-Prober-Id` and the agent token as a bearer token. Results go through
//! [`Results::accept`](crate::results::Results::accept) exactly as local probes do — counted,
//! stored, and voting in the engine when their series is configured; a full queue drops and counts,
//! and the answer says how many.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use super::ApiError;
use crate::metrics::Source;
use crate::model::EdgeResult;
use crate::web::AppState;

/// Most results in one request.
pub(super) const MAX_RESULTS: usize = 10_000;

#[derive(Debug, Serialize)]
pub(super) struct Accepted {
    pub accepted: usize,
    pub dropped: usize,
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    crate::auth::check(state.tokens.agent.as_ref(), auth)?;
    let prober = headers
        .get("x-prober-id")
        .and_then(|v| v.to_str().ok())
        .filter(|p| {
            !p.is_empty()
                && p.len() <= 64
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .ok_or_else(|| {
            ApiError::BadRequest(
                "missing or malformed X-Prober-Id header (1-64 of A-Z a-z 0-9 - _ .)".into(),
            )
        })?;
    let results: Vec<EdgeResult> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a JSON array of results: {e}")))?;
    if results.len() > MAX_RESULTS {
        return Err(ApiError::BadRequest(format!(
            "{} results in one request; at most {MAX_RESULTS}",
            results.len()
        )));
    }
    let config = state.config.get();
    for (i, r) in results.iter().enumerate() {
        if config.host(&r.host).is_none() || !config.regions.iter().any(|g| g.name == r.region) {
            return Err(ApiError::BadRequest(format!(
                "result [{i}]: host `{}` or region `{}` is not in the config",
                r.host, r.region
            )));
        }
    }
    let prober: Arc<str> = Arc::from(prober);
    let done = state.results.accept(Source::Agent, &prober, results);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: done.queued,
            dropped: done.dropped,
        }),
    ))
}
