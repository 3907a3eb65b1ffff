//! The config center: the current host list (and any past version) as exact signed bytes, a long
//! poll for relays (capped per listener), the article's fallback API, the public keys and the version history.
//!
//! The current document is served from memory, so it is still served while the database is
//! unavailable, and a poll costs a pointer copy.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::ApiError;
use crate::publish::{Published, Publisher};
use crate::web::AppState;

/// For the current document: caches may keep it briefly, and serve it stale when we fail.
const CACHE_CURRENT: &str = "public, max-age=10, stale-if-error=86400, no-transform";
/// A numbered version never changes.
const CACHE_VERSION: &str = "public, max-age=31536000, immutable, no-transform";
/// How long `GET /api/v1/hostlist/watch` waits for a newer version by default, in seconds.
pub const WATCH_DEFAULT_S: u64 = 30;
/// The longest wait `timeout` may ask for, in seconds.
pub const WATCH_MAX_S: u64 = 55;

fn current(publisher: &Publisher) -> Result<Arc<Published>, ApiError> {
    publisher.current().ok_or_else(unpublished)
}

fn unpublished() -> ApiError {
    ApiError::Unavailable("no host list has been published yet".into())
}

fn with_headers(p: &Published, status: StatusCode, cache: &'static str, body: bool) -> Response {
    // Every value is static or precomputed with the version: a request allocates nothing here
    // beyond the response itself (this is the endpoint millions of clients poll).
    let mut r = Response::new(if body {
        Body::from(p.body.clone())
    } else {
        Body::empty()
    });
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, p.etag_value.clone());
    if body {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("x-config-signature", p.signature_value.clone());
    }
    r
}

fn not_modified(headers: &HeaderMap, p: &Published) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| etag_matches(value.as_bytes(), p))
}

/// Whether an `If-None-Match` value names `p`'s ETag (weak or strong, alone or in a list).
pub(crate) fn etag_matches(value: &[u8], p: &Published) -> bool {
    // What a polling client sends: exactly the ETag it was given.
    if value == p.etag.as_bytes() {
        return true;
    }
    std::str::from_utf8(value).is_ok_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == p.etag)
    })
}

/// The answer for the current document `p`: 304 when the client has it, else the document. The
/// HTTP threads serialize it once per version for the connection-level fast path.
pub(crate) fn current_answer(p: &Published, not_modified: bool) -> Response {
    if not_modified {
        return with_headers(p, StatusCode::NOT_MODIFIED, CACHE_CURRENT, false);
    }
    with_headers(p, StatusCode::OK, CACHE_CURRENT, true)
}

/// The current document, or 304 when `headers` carry its ETag. The HTTP threads call this
/// directly for `GET /api/v1/hostlist`, before the router (`web::server`).
pub fn current_response(publisher: &Publisher, headers: &HeaderMap) -> Response {
    let serving = publisher.serving();
    let Some(p) = serving.as_deref() else {
        return unpublished().into_response();
    };
    current_answer(p, not_modified(headers, p))
}

/// `GET /api/v1/hostlist` through the router (the HTTP threads answer it before).
pub async fn current_list(
    State(publisher): State<Arc<Publisher>>,
    request: axum::extract::Request,
) -> Response {
    current_response(&publisher, request.headers())
}

/// `POST /app/config-center/module-config`: the article's fallback API; the same bytes and headers.
pub async fn module_config(
    State(publisher): State<Arc<Publisher>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    // The article's clients send a small form; the body is read (within its limit) and not used.
    if let Err(rejection) = body {
        return Err(ApiError::Rejected(
            rejection.status(),
            rejection.body_text(),
        ));
    }
    let p = current(&publisher)?;
    if not_modified(&headers, &p) {
        return Ok(with_headers(
            &p,
            StatusCode::NOT_MODIFIED,
            CACHE_CURRENT,
            false,
        ));
    }
    Ok(with_headers(&p, StatusCode::OK, CACHE_CURRENT, true))
}

/// `GET /api/v1/hostlist/{version}`: that version's exact bytes.
pub async fn by_version(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    let n: i64 = version
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("`{version}` is not a version number")))?;
    if let Some(p) = state.publisher.current().filter(|p| p.version == n) {
        return Ok(with_headers(&p, StatusCode::OK, CACHE_VERSION, true));
    }
    let row = state
        .store
        .version(n)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("version {n}")))?;
    Ok(with_headers(
        &Published::from_row(row)?,
        StatusCode::OK,
        CACHE_VERSION,
        true,
    ))
}

/// The parameters of a watch, checked: unknown ones and over-long waits are refused.
fn watch_params(q: &HashMap<String, String>) -> Result<(i64, Duration), ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["version", "timeout"].contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "unknown parameter `{k}` (expected version, timeout)"
        )));
    }
    let version = q
        .get("version")
        .ok_or_else(|| ApiError::BadRequest("missing parameter `version`".into()))?
        .parse::<i64>()
        .map_err(|_| ApiError::BadRequest("`version` must be a whole number".into()))?;
    let timeout = match q.get("timeout") {
        None => WATCH_DEFAULT_S,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=WATCH_MAX_S).contains(t))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`timeout` must be a whole number of seconds from 1 to {WATCH_MAX_S}"
                ))
            })?,
    };
    // Jitter (up to -10 %) so a fleet of relays does not come back in one wave.
    let jitter = 1.0 - fastrand::f64() * 0.1;
    Ok((version, Duration::from_secs(timeout).mul_f64(jitter)))
}

/// How long a watcher refused at the cap is asked to wait before it tries again, in seconds.
pub const WATCH_RETRY_AFTER_S: u64 = 5;

/// The parked long polls of one listener and their cap (`http.max_watchers`).
#[derive(Clone)]
pub struct Watchers {
    parked: Arc<AtomicUsize>,
    max: usize,
}

/// One parked watcher's place; given back when dropped (answered, timed out or disconnected).
struct Parked(Arc<AtomicUsize>);

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watchers {
    /// No watcher parked yet; at most `max` at once.
    pub fn new(max: usize) -> Watchers {
        Watchers {
            parked: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place to park, unless `max` are parked already.
    fn park(&self) -> Option<Parked> {
        let before = self.parked.fetch_add(1, Ordering::Relaxed);
        let place = Parked(self.parked.clone());
        (before < self.max).then_some(place)
    }
}

/// 503 with `Retry-After`: the listener has as many watchers parked as it may.
fn too_many_watchers(max: usize) -> Response {
    let mut r = ApiError::Unavailable(format!(
        "{max} watchers are parked already; retry after {WATCH_RETRY_AFTER_S} s"
    ))
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(WATCH_RETRY_AFTER_S));
    r
}

/// `GET /api/v1/hostlist/watch?version=N&timeout=S`: answers as soon as a version above N exists,
/// else 304 when the timeout runs out; 503 when the listener's watchers are at their cap.
pub async fn watch(
    State(state): State<AppState>,
    axum::Extension(watchers): axum::Extension<Watchers>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (after, timeout) = watch_params(&q)?;
    // Subscribe before comparing, so a version published in between is not missed.
    let mut rx = state.publisher.subscribe();
    let newer = |v: &Option<Arc<Published>>| v.as_ref().filter(|p| p.version > after).cloned();
    if let Some(p) = newer(&rx.borrow_and_update()) {
        return Ok(with_headers(&p, StatusCode::OK, CACHE_CURRENT, true));
    }
    let Some(_parked) = watchers.park() else {
        return Ok(too_many_watchers(watchers.max));
    };
    let waited = tokio::time::timeout(timeout, async {
        loop {
            if rx.changed().await.is_err() {
                return None;
            }
            if let Some(p) = newer(&rx.borrow_and_update()) {
                return Some(p);
            }
        }
    })
    .await;
    match waited {
        Ok(Some(p)) => Ok(with_headers(&p, StatusCode::OK, CACHE_CURRENT, true)),
        _ => {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
    }
}

/// One signing key, as `GET /api/v1/keys` lists it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The key's id, as in `keyId`.
    pub key_id: String,
    /// The signature algorithm: `Ed25519`.
    pub alg: &'static str,
    /// The raw 32-byte Ed25519 public key, base64.
    pub public_key: String,
}

/// `GET /api/v1/keys`: the signing key first, then any key trusted beside it during a rotation.
pub async fn keys(State(state): State<AppState>) -> Json<Vec<KeyInfo>> {
    let keys = state.publisher.signer().public_keys();
    Json(
        keys.into_iter()
            .map(|(key_id, key)| KeyInfo {
                key_id,
                alg: "Ed25519",
                public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
            })
            .collect(),
    )
}

/// One version, as `GET /api/v1/hostlist/versions` lists it.
#[derive(serde::Serialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: i64,
    /// When it was issued.
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Why it was published.
    pub reason: String,
    /// What it says (its content).
    pub content: serde_json::Value,
}

/// `GET /api/v1/hostlist/versions`: the newest 100 versions with their reasons.
pub async fn versions(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "limit") {
        return Err(ApiError::BadRequest(format!(
            "unknown parameter `{k}` (expected limit)"
        )));
    }
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest("`limit` must be a whole number from 1 to 1000".into())
            })?,
    };
    let rows = state.store.version_history(limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| VersionInfo {
                version: r.version,
                issued_at: chrono::DateTime::from_timestamp_millis(r.issued_at_ms)
                    .unwrap_or_default(),
                reason: r.reason,
                content: serde_json::from_str(&r.content).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    ))
}

/// One decision or refusal, with the version it produced.
#[derive(Debug, serde::Serialize)]
pub struct EventInfo {
    /// The event.
    #[serde(flatten)]
    pub event: crate::engine::Event,
    /// The version it produced; `None` for a refusal or a notice.
    pub version: Option<i64>,
}

/// `GET /api/v1/events?host=H&limit=N`: the newest decisions and refusals (freeze, guards,
/// origin faults, degraded scopes), newest first.
pub async fn events(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<EventInfo>>, ApiError> {
    if let Some(k) = q.keys().find(|k| !["host", "limit"].contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown parameter `{k}` (expected host, limit)"
        )));
    }
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest("`limit` must be a whole number from 1 to 1000".into())
            })?,
    };
    let rows = state
        .store
        .events(q.get("host").map(String::as_str), 0, i64::MAX, limit)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(event, version)| EventInfo { event, version })
            .collect(),
    ))
}
