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

use crate::auth::{AuthEndpoint, TokenDigest};
use crate::config::HttpSettings;
use crate::web::guards::{self, Refusal};
use crate::web::hostlist::Watchers;
use crate::web::{ApiError, AppState};

/// One listener's gates, as `web::router` applies them.
#[derive(Clone)]
pub struct Gates {
    /// The cap on parked long polls.
    pub watchers: Watchers,
    /// The `Host` names the internal routes answer (lower case); `None`: any.
    allowed_hosts: Option<Arc<[String]>>,
    metrics_token: Option<TokenDigest>,
}

impl Gates {
    /// The gates `http` asks for, with the `/metrics` token read from its file.
    pub fn new(http: &HttpSettings, metrics_token: Option<TokenDigest>) -> Gates {
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

    /// `/metrics` behind its bearer token, if there is one; its attempts are limited and counted
    /// with the other tokens' (`AuthEndpoint::Metrics`).
    pub(crate) fn metrics(
        &self,
        state: &AppState,
        route: MethodRouter<AppState>,
    ) -> MethodRouter<AppState> {
        match &self.metrics_token {
            None => route,
            Some(token) => route.layer(middleware::from_fn_with_state(
                (state.clone(), token.clone()),
                check_token,
            )),
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

/// 401 unless the request carries `Authorization: Bearer <the /metrics token>`; 429 while its
/// peer (or everyone) has failed too often. Neither the given nor the expected token is logged.
async fn check_token(
    State((state, token)): State<(AppState, TokenDigest)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = guards::peer(request.extensions());
    let (guards, metrics) = (&state.guards, &state.metrics);
    if let Err(limited) = guards.admit(metrics, AuthEndpoint::Metrics, peer) {
        return Refusal::Limited(limited).into_response();
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let outcome = crate::auth::check(Some(&token), authorization);
    if guards
        .judge(metrics, AuthEndpoint::Metrics, peer, outcome)
        .is_ok()
    {
        return next.run(request).await;
    }
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
}
