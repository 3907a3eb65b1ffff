//! The router's gates of one listener: its cap on parked watchers, the `Host` allowlist in front
//! of the internal routes (against DNS rebinding), and the bearer token in front of `/metrics`.
//! Owns no routes: `web::router` puts the gates where they belong.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sha2::{Digest, Sha256};

use crate::config::HttpSettings;
use crate::web::hostlist::Watchers;
use crate::web::{ApiError, AppState};

/// The `/metrics` bearer token's digest; Debug prints nothing of it.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// The digest of `token`.
    pub fn of(token: &str) -> MetricsToken {
        MetricsToken(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Whether `given` is the token: digests compared in constant time.
    fn admits(&self, given: &str) -> bool {
        let given = MetricsToken::of(given);
        self.0
            .iter()
            .zip(given.0)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }
}

/// One listener's gates, as `web::router` applies them.
#[derive(Clone)]
pub struct Gates {
    /// The cap on parked long polls.
    pub watchers: Watchers,
    /// The `Host` names the internal routes answer (lower case); `None`: any.
    allowed_hosts: Option<Arc<[String]>>,
    metrics_token: Option<MetricsToken>,
}

impl Gates {
    /// The gates `http` asks for, with the `/metrics` token read from its file.
    pub fn new(http: &HttpSettings, metrics_token: Option<MetricsToken>) -> Gates {
        let allowed: Vec<String> = http
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Gates {
            watchers: Watchers::new(http.max_watchers),
            allowed_hosts: (!allowed.is_empty()).then(|| allowed.into()),
            metrics_token,
        }
    }

    /// `routes` behind the `Host` allowlist, if there is one.
    pub(crate) fn hosts(&self, routes: Router<AppState>) -> Router<AppState> {
        match &self.allowed_hosts {
            None => routes,
            Some(allowed) => {
                routes.layer(middleware::from_fn_with_state(allowed.clone(), check_host))
            }
        }
    }

    /// `/metrics` behind its bearer token, if there is one.
    pub(crate) fn metrics(&self, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        match &self.metrics_token {
            None => route,
            Some(token) => route.layer(middleware::from_fn_with_state(token.clone(), check_token)),
        }
    }
}

/// The host a request names, without its port (`[::1]` stays in brackets).
fn host_name(request: &Request) -> Option<&str> {
    let host = match request.headers().get(header::HOST) {
        Some(v) => v.to_str().ok()?,
        None => request.uri().host()?,
    };
    Some(match host.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(host, |end| &host[..end + 2]),
        None => host.split(':').next().unwrap_or(host),
    })
}

/// 421 for a request naming a host not on the list. A request naming none (no `Host` header, as
/// the page warmer's) is not a browser's, so DNS rebinding cannot make it: it passes.
async fn check_host(
    State(allowed): State<Arc<[String]>>,
    request: Request,
    next: Next,
) -> Response {
    if request.headers().get(header::HOST).is_none() && request.uri().host().is_none() {
        return next.run(request).await;
    }
    match host_name(&request) {
        Some(h) if allowed.iter().any(|a| a.eq_ignore_ascii_case(h)) => next.run(request).await,
        _ => ApiError::Rejected(
            StatusCode::MISDIRECTED_REQUEST,
            "this listener does not answer for the host the request names".into(),
        )
        .into_response(),
    }
}

/// 401 unless the request carries `Authorization: Bearer <the /metrics token>`. Neither the
/// given nor the expected token is logged.
async fn check_token(State(token): State<MetricsToken>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token.admits(g)) {
        return next.run(request).await;
    }
    tracing::info!("a /metrics request without the right bearer token was refused");
    let mut r = ApiError::Rejected(
        StatusCode::UNAUTHORIZED,
        "`/metrics` needs `Authorization: Bearer <the metrics token>`".into(),
    )
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(host: &str) -> Option<String> {
        let r = Request::get("/")
            .header("host", host)
            .body(axum::body::Body::empty());
        host_name(&r.unwrap()).map(str::to_string)
    }

    #[test]
    fn a_host_is_compared_without_its_port() {
        assert_eq!(
            named("cdnwatch.corp:8080").as_deref(),
            Some("cdnwatch.corp")
        );
        assert_eq!(named("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(named("10.0.0.1").as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn only_the_metrics_token_itself_is_admitted() {
        let t = MetricsToken::of("a-metrics-token-of-thirty-two-chars!");
        assert!(t.admits("a-metrics-token-of-thirty-two-chars!"));
        assert!(!t.admits("a-metrics-token-of-thirty-two-chars?"));
        assert_eq!(format!("{t:?}"), "MetricsToken(..)");
    }
}
