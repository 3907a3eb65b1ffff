//! The agents' API (README: "Running agents in regions"): an agent pulls its assignment (a long
//! poll with an ETag), sends heartbeats, and uploads gzip-compressed batches of results, each
//! with its own token, checked from the headers before any body is read. A batch is answered
//! only once it is durable in the store; a batch that comes again (its acknowledgement was lost)
//! is recognised by its key and stored nothing twice. `GET /api/v1/agents` lists every agent.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::guards::Refusal;
use crate::agent::wire::{ASSIGNMENT_WAIT, Batch, BatchAnswer, Heartbeat, Refusal as Refused};
use crate::auth::AuthEndpoint;
use crate::fleet::{AgentView, Member, Wait};
use crate::store::{BatchKey, BatchStored};
use crate::web::AppState;

/// Largest compressed batch accepted, in bytes.
pub(super) const BATCH_LIMIT: usize = 8 * 1024 * 1024;
/// Largest batch once decompressed, in bytes (a gzip bomb stops here).
const INFLATED_LIMIT: u64 = 64 * 1024 * 1024;
/// Largest heartbeat, in bytes.
const HEARTBEAT_LIMIT: usize = 64 * 1024;
/// Most results in one batch.
pub(super) const MAX_RESULTS: usize = 50_000;
/// How long a batch may wait for the store before the agent is told to send it again.
const DURABLE_WITHIN: Duration = Duration::from_secs(30);

/// The agent `id` of the path, once its token is right.
fn authorized(
    state: &AppState,
    id: &str,
    parts: &axum::http::request::Parts,
) -> Result<Arc<Member>, Refusal> {
    let member = state.fleet.member(id);
    let tokens = member.as_ref().map_or(&[][..], |m| m.tokens());
    let guards = &state.guards;
    guards.bearer_any(&state.metrics, AuthEndpoint::Ingest, tokens, parts)?;
    member.ok_or_else(|| ApiError::NotFound(format!("agent `{id}`")).into())
}

/// `GET /api/v1/agents/{id}/assignment`: the assignment; with `If-None-Match` naming the one in
/// force, waits up to 25 s for a change and answers 304 if none came.
pub(super) async fn assignment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let (parts, _) = req.into_parts();
    authorized(&state, &id, &parts)?;
    let known = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_string());
    let mut watch = state.fleet.assignments();
    let deadline = tokio::time::Instant::now() + ASSIGNMENT_WAIT;
    loop {
        let served = watch.borrow_and_update().get(&id).cloned();
        let Some(served) = served else {
            return Err(ApiError::NotFound(format!("agent `{id}` has no assignment")).into());
        };
        if known.as_deref() != Some(served.version.as_str()) {
            let etag = format!("\"{}\"", served.version);
            let headers = [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::ETAG, etag),
            ];
            return Ok((headers, served.body.clone()).into_response());
        }
        match tokio::time::timeout_at(deadline, watch.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(StatusCode::NOT_MODIFIED.into_response()),
        }
    }
}

/// `POST /api/v1/agents/{id}/heartbeat`.
pub(super) async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let received_ms = state.clock.now().timestamp_millis();
    let (parts, body) = req.into_parts();
    let member = authorized(&state, &id, &parts)?;
    let body = state
        .guards
        .read_body(&parts.headers, body, HEARTBEAT_LIMIT)
        .await?;
    let hb: Heartbeat = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the heartbeat is not valid JSON: {e}")))?;
    let mut answer = state.fleet.heartbeat(&member, &hb, received_ms);
    answer.answered_ms = state.clock.now().timestamp_millis();
    Ok(Json(answer).into_response())
}

/// `POST /api/v1/agents/{id}/results`: one gzip-compressed batch.
pub(super) async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    let member = authorized(&state, &id, &parts)?;
    let body = (state.guards)
        .read_body(&parts.headers, body, BATCH_LIMIT)
        .await?;
    let batch = decode(&parts.headers, &body)?;
    drop(body);
    let admitted = state
        .fleet
        .admit(&member, batch.results.len())
        .map_err(later)?;
    let key = BatchKey {
        agent: member.id.clone(),
        boot: batch.boot.clone(),
        seq: batch.seq,
    };
    let now = state.clock.now();
    let checked = state.fleet.check(&member, batch, now);
    if checked.foreign {
        return Err(ApiError::Rejected(
            StatusCode::FORBIDDEN,
            format!(
                "agent `{}` sent results of a region it does not speak for (its regions: {})",
                member.id,
                member.regions.join(", ")
            ),
        )
        .into());
    }
    let prober: Arc<str> = Arc::from(member.id.as_str());
    let n = checked.results.len();
    let stored = tokio::time::timeout(
        DURABLE_WITHIN,
        state
            .results
            .accept_agent_batch(key, &prober, checked.results),
    )
    .await
    .map_err(|_| store_busy())?
    .map_err(|_| store_busy())?;
    drop(admitted);
    let duplicate = stored == BatchStored::Duplicate;
    if !duplicate {
        for c in &checked.controls {
            state.results.accept_control(&c.region, c.at, c.ok);
        }
        state.fleet.stored(&member, n, now.timestamp_millis());
    }
    Ok(Json(answer(&checked.refused, duplicate, n)).into_response())
}

/// The answer to a batch of which `n` results stood (stored now unless `duplicate`).
fn answer(refused: &BTreeMap<Refused, usize>, duplicate: bool, n: usize) -> BatchAnswer {
    BatchAnswer {
        stored: if duplicate { 0 } else { n },
        duplicate,
        refused: (refused.iter())
            .map(|(why, n)| (why.as_str().to_string(), *n))
            .collect(),
    }
}

/// `GET /api/v1/agents`: every agent as the `/agents` page shows it.
pub(super) async fn list(State(state): State<AppState>) -> Json<Vec<AgentView>> {
    Json(state.fleet.views())
}

fn store_busy() -> Refusal {
    Refusal::Later {
        status: StatusCode::SERVICE_UNAVAILABLE,
        why: "the store is busy; keep the batch and send it again after Retry-After seconds",
        wait: Duration::from_secs(2),
    }
}

fn later(wait: Wait) -> Refusal {
    match wait {
        Wait::Rate(wait) => Refusal::Later {
            status: StatusCode::TOO_MANY_REQUESTS,
            why: "past this agent's rate of results; send it again after Retry-After seconds",
            wait,
        },
        Wait::Queue => Refusal::Later {
            status: StatusCode::SERVICE_UNAVAILABLE,
            why: "this agent's share of the store queue is full; send it again after Retry-After seconds",
            wait: Duration::from_secs(1),
        },
        Wait::Clock => Refusal::Later {
            status: StatusCode::PRECONDITION_REQUIRED,
            why: "no heartbeat from this agent since the service started: send one first",
            wait: Duration::from_secs(1),
        },
    }
}

/// The batch in a body: gzip (`Content-Encoding: gzip`) or plain JSON, at most 64 MiB inflated
/// and 50 000 results.
fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Batch, ApiError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let json = if gzip {
        let mut out = Vec::new();
        let mut inflate = flate2::read::GzDecoder::new(&body[..]).take(INFLATED_LIMIT + 1);
        inflate
            .read_to_end(&mut out)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid gzip: {e}")))?;
        if out.len() as u64 > INFLATED_LIMIT {
            return Err(ApiError::Rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the batch inflates past {INFLATED_LIMIT} bytes"),
            ));
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(&body[..])
    };
    let batch: Batch = serde_json::from_slice(&json)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a batch: {e}")))?;
    if batch.results.len() > MAX_RESULTS {
        return Err(ApiError::BadRequest(format!(
            "{} results in one batch; at most {MAX_RESULTS}",
            batch.results.len()
        )));
    }
    if batch.boot.len() > 64 || batch.assignment_version.len() > 64 {
        return Err(ApiError::BadRequest(
            "boot and assignmentVersion are at most 64 bytes".into(),
        ));
    }
    Ok(batch)
}
