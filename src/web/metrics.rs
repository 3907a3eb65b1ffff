//! `GET /metrics`: every metric in Prometheus's text format. Public and cheap: a rendering is served
//! again for up to a second, so a flood of requests costs one encoding per second.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;
use crate::service::AppState;

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| {
        tracing::error!(error = %e, "encoding the metrics failed");
        ApiError::Unavailable("the metrics cannot be encoded right now".into())
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    ))
}
