//! What the token-taking endpoints keep between requests so that a body is read only for those
//! allowed to send it: the token attempts per peer ([`Attempts`]), a cap on bodies read at once,
//! and the refusals they answer with (429 and 503 with `Retry-After`, 413, all with the JSON error).
//!
//! The order is always: peer not held back, token right (from the headers), a body-read permit,
//! then the body, up to its limit. Tokens are never logged; the peer's address is.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;
use super::status::StatusCache;
use crate::auth::{Attempts, AuthEndpoint, AuthError, Refused, TokenDigest};
use crate::metrics::Metrics;

/// Most request bodies read at once by the token-taking endpoints (an ingest body may be 8 MiB).
pub const MAX_BODY_READS: usize = 8;

/// The endpoints' defences and brief caches, one set per service.
#[derive(Debug)]
pub struct Guards {
    attempts: Attempts,
    bodies: Semaphore,
    /// The last `/api/v1/status` answer.
    pub(super) status: StatusCache,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            attempts: Attempts::default(),
            bodies: Semaphore::new(MAX_BODY_READS),
            status: StatusCache::default(),
        }
    }
}

/// Why a request to a token-taking endpoint was refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Bad input, a bad token, a too-large body …: the API's own error.
    Api(ApiError),
    /// Too many token attempts (429).
    Limited(Refused),
    /// Every body-read permit is taken (503).
    Busy,
    /// Not now: try again after `wait` (an agent past its rate or its share of the store queue).
    Later {
        /// 429 or 503.
        status: StatusCode,
        /// Why, for the JSON error.
        why: &'static str,
        /// The `Retry-After`.
        wait: Duration,
    },
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::Api(e)
    }
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Refusal {
        Refusal::Api(e.into())
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        Refusal::Api(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, why, wait) = match self {
            Refusal::Api(e) => return e.into_response(),
            Refusal::Limited(r) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many token attempts; try again after Retry-After seconds",
                r.retry_after,
            ),
            Refusal::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many request bodies are being read; try again after Retry-After seconds",
                Duration::from_secs(1),
            ),
            Refusal::Later { status, why, wait } => (status, why, wait),
        };
        let secs = retry_after_secs(wait).to_string();
        let body = Json(serde_json::json!({ "error": why }));
        (status, [(header::RETRY_AFTER, secs)], body).into_response()
    }
}

/// Whole seconds for `Retry-After`, rounded up, at least one.
pub(super) fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

/// The peer's IP address, as the server put it in the request's extensions.
pub(super) fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

impl Guards {
    /// Refuses `peer` when it (or everyone) has failed too often lately; counted and logged.
    pub(super) fn admit(
        &self,
        metrics: &Metrics,
        endpoint: AuthEndpoint,
        peer: Option<IpAddr>,
    ) -> Result<(), Refused> {
        self.attempts.check(peer, Instant::now()).inspect_err(|r| {
            metrics.auth_failed(endpoint);
            let peer = peer.map(|p| p.to_string()).unwrap_or_default();
            let wait_s = r.retry_after.as_secs();
            tracing::debug!(endpoint = endpoint.as_str(), %peer, wait_s, "token attempt refused: too many");
        })
    }

    /// Records the outcome of a token check: a failure is counted and logged with the peer (never
    /// the token), a success forgives the peer. A disabled action is no attempt.
    pub(super) fn judge(
        &self,
        metrics: &Metrics,
        endpoint: AuthEndpoint,
        peer: Option<IpAddr>,
        outcome: Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        match outcome {
            Ok(()) => self.attempts.succeeded(peer),
            Err(AuthError::Disabled) => {}
            Err(why) => {
                metrics.auth_failed(endpoint);
                let failures = self.attempts.failed(peer, Instant::now());
                let peer = peer.map(|p| p.to_string()).unwrap_or_default();
                tracing::warn!(endpoint = endpoint.as_str(), %peer, failures, %why, "token refused");
            }
        }
        outcome
    }

    /// The bearer check of a request against any of `expected` (an agent's current and next
    /// token), from its headers alone. No token expected counts as a wrong one: an unknown agent
    /// id is answered like a wrong token, so ids cannot be probed.
    pub(super) fn bearer_any(
        &self,
        metrics: &Metrics,
        endpoint: AuthEndpoint,
        expected: &[TokenDigest],
        parts: &axum::http::request::Parts,
    ) -> Result<(), Refusal> {
        let peer = peer(&parts.extensions);
        self.admit(metrics, endpoint, peer)
            .map_err(Refusal::Limited)?;
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let outcome = match auth.and_then(|h| h.strip_prefix("Bearer ")) {
            None => Err(AuthError::Missing),
            Some(given) => {
                let given = TokenDigest::of(given);
                // Every digest compared, so the time taken says nothing of which one matched.
                let hits = expected.iter().filter(|d| **d == given).count();
                if hits > 0 {
                    Ok(())
                } else {
                    Err(AuthError::Wrong)
                }
            }
        };
        Ok(self.judge(metrics, endpoint, peer, outcome)?)
    }

    /// The whole bearer check of a request, from its headers alone.
    pub(super) fn bearer(
        &self,
        metrics: &Metrics,
        endpoint: AuthEndpoint,
        expected: Option<&TokenDigest>,
        parts: &axum::http::request::Parts,
    ) -> Result<(), Refusal> {
        if expected.is_none() {
            return Err(AuthError::Disabled.into());
        }
        let peer = peer(&parts.extensions);
        self.admit(metrics, endpoint, peer)
            .map_err(Refusal::Limited)?;
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let outcome = crate::auth::check(expected, auth);
        Ok(self.judge(metrics, endpoint, peer, outcome)?)
    }

    /// Reads a body of at most `limit` bytes while holding a body-read permit: a declared length
    /// over the limit is refused before any of it is read, and so is a body past it.
    pub(super) async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<Bytes, Refusal> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit).into());
        }
        let _permit = self.bodies.try_acquire().map_err(|_| Refusal::Busy)?;
        axum::body::to_bytes(body, limit).await.map_err(|e| {
            if is_length_limit(&e) {
                too_large(limit).into()
            } else {
                ApiError::BadRequest(format!("the body could not be read: {e}")).into()
            }
        })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::Rejected(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {limit} bytes"),
    )
}

/// Whether reading a body failed on its length limit (http-body-util's error, somewhere in the
/// chain).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(300)), 300);
    }

    #[tokio::test]
    async fn a_body_past_its_limit_is_refused_as_too_large_and_permits_are_capped() {
        let g = Guards::default();
        let big = Body::from(vec![0u8; 100]);
        let err = g.read_body(&HeaderMap::new(), big, 10).await.unwrap_err();
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let held: Vec<_> = (0..MAX_BODY_READS)
            .map(|_| g.bodies.try_acquire().unwrap())
            .collect();
        let busy = g.read_body(&HeaderMap::new(), Body::empty(), 10).await;
        assert!(matches!(busy, Err(Refusal::Busy)));
        drop(held);
        let ok = g.read_body(&HeaderMap::new(), Body::from("hi"), 10).await;
        assert_eq!(ok.unwrap(), Bytes::from("hi"));
    }
}
