//! `GET /metrics`: every metric in Prometheus's text format, gzip-compressed when the client accepts
//! it (Prometheus does). Public and cheap: a rendering is served again for up to a second, so a
//! flood of requests costs one encoding per second.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::web::AppState;

pub(super) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Encoding thousands of series takes a while (README, Metrics): off the HTTP thread, which
    // also answers the host list.
    let metrics = state.metrics.clone();
    let rendered = match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(Ok(rendered)) => rendered,
        Ok(Err(e)) => return Err(unavailable(&e)),
        Err(e) => return Err(unavailable(&e)),
    };
    let common = [
        (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
        (header::CACHE_CONTROL, "no-store"),
        (header::VARY, "accept-encoding"),
    ];
    Ok(if accepts_gzip(&headers) {
        let encoding = [(header::CONTENT_ENCODING, "gzip")];
        (common, encoding, rendered.gzip).into_response()
    } else {
        (common, rendered.plain).into_response()
    })
}

/// Our own fault (never the caller's): logged with its cause, answered 503.
fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "encoding the metrics failed");
    ApiError::Unavailable("the metrics cannot be encoded right now".into())
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                let weight = p
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok());
                weight == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted_with_a_weight_above_zero() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("identity, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("gzip; q=0.000")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
