//! `POST /api/v1/ingest`: the HTTP side of the one way in for results, for remote regional agents.
//!
//! An agent sends a JSON array of results (the records `cdnwatch probe --json` prints) with its
//! identity in `X-Prober-Id` and the agent token as a bearer token. Results go through
//! [`Results::accept`](crate::results::Results::accept) exactly as local probes do — counted,
//! stored, and voting in the engine when their series is configured; a full queue drops and counts,
//! and the answer says how many.
//!
//! The token is checked from the headers before any of the body is read (web::guards): a wrong or
//! missing token, or a peer past its attempt limit, never makes the service buffer a body.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use super::ApiError;
use super::guards::Refusal;
use crate::auth::AuthEndpoint;
use crate::metrics::Source;
use crate::model::EdgeResult;
use crate::web::AppState;

/// Largest ingest body accepted, in bytes.
pub(super) const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Most results in one request.
pub(super) const MAX_RESULTS: usize = 10_000;

#[derive(Debug, Serialize)]
pub(super) struct Accepted {
    pub accepted: usize,
    pub dropped: usize,
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<Accepted>), Refusal> {
    let (parts, body) = req.into_parts();
    let expected = state.tokens.agent.as_ref();
    (state.guards).bearer(&state.metrics, AuthEndpoint::Ingest, expected, &parts)?;
    let prober = prober_id(&parts.headers)?;
    let body = state
        .guards
        .read_body(&parts.headers, body, BODY_LIMIT)
        .await?;
    let results: Vec<EdgeResult> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not a JSON array of results: {e}")))?;
    drop(body);
    check_results(&state, &results)?;
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

/// The agent's identity from `X-Prober-Id`.
fn prober_id(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
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
        })
}

/// Every result names a configured host and region, and there are not too many.
fn check_results(state: &AppState, results: &[EdgeResult]) -> Result<(), ApiError> {
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
    Ok(())
}
