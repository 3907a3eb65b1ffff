//! The HTTP server's router and its error type; handlers live in `web/`.
//!
//! Every handler answers bad input with a 4xx and a plain JSON error, never a 500 and never a stack
//! trace; a database failure is logged with its cause and answered with a 503.

mod admin;
mod agents;
mod assets;
mod console;
pub mod dashboard;
mod guards;
pub mod hostlist;
mod metrics;
pub mod server;
mod silences;
mod state;
mod status;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use guards::{Guards, MAX_BODY_READS};
pub use state::AppState;

/// Which routes a listener serves (README: "Listeners and limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Every route: one listener for everything (no `--public-listen`).
    All,
    /// What app clients need: the host list (current, by version, the long poll), the article's
    /// fallback API, the keys and `/healthz`. Nothing else is there (404).
    Public,
    /// Everything but the app clients' long poll and fallback API: pages, config page,
    /// overrides, status, events, metrics, the agents' API, readiness, and the host-list reads the pages
    /// link to.
    Internal,
}

impl Face {
    /// Serves the app clients' long poll and fallback API.
    fn serves_clients(self) -> bool {
        matches!(self, Face::All | Face::Public)
    }

    /// Serves the pages, the admin and the internal API.
    pub fn serves_internal(self) -> bool {
        matches!(self, Face::All | Face::Internal)
    }
}

/// The routes of `face`, on `state`; `gates` are its listener's watcher cap, `Host` allowlist
/// and `/metrics` token.
pub fn router(state: AppState, face: Face, gates: &server::Gates) -> Router {
    let mut app = client_reads();
    if face.serves_clients() {
        app = app.merge(client_calls(gates.watchers.clone()));
    }
    if face.serves_internal() {
        app = app.merge(internal(&state, gates));
    } else {
        // `{version}` would take it and answer 400: on the public face it is simply not there.
        app = app.route(
            "/api/v1/hostlist/versions",
            get(|| async { StatusCode::NOT_FOUND }),
        );
    }
    app.with_state(state)
}

/// What every face serves: liveness, the current host list, a version's bytes, the keys.
fn client_reads() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/hostlist", get(hostlist::current_list))
        .route("/api/v1/hostlist/{version}", get(hostlist::by_version))
        .route("/api/v1/keys", get(hostlist::keys))
}

/// The app clients' and relays' calls: the long poll (capped by `watchers`) and the article's
/// fallback API.
fn client_calls(watchers: hostlist::Watchers) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/hostlist/watch",
            get(hostlist::watch).layer(axum::Extension(watchers)),
        )
        .route(
            "/app/config-center/module-config",
            axum::routing::post(hostlist::module_config)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024)),
        )
}

/// Everything for operators and agents, behind the `Host` allowlist (and `/metrics` behind its
/// token) of `gates`.
fn internal(state: &AppState, gates: &server::Gates) -> Router<AppState> {
    let routes = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", gates.metrics(state, get(metrics::metrics)))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/hostlist/versions", get(hostlist::versions))
        .route("/api/v1/events", get(hostlist::events))
        .route("/api/v1/overrides", get(admin::list).post(admin::create))
        .route(
            "/api/v1/overrides/{id}",
            axum::routing::delete(admin::clear),
        )
        .route(
            "/api/v1/silences",
            get(silences::list).post(silences::create),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(silences::clear),
        )
        // The agents' routes read their bodies only after the token, with their own limits.
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agents/{id}/assignment", get(agents::assignment))
        .route(
            "/api/v1/agents/{id}/heartbeat",
            axum::routing::post(agents::heartbeat),
        )
        .route(
            "/api/v1/agents/{id}/results",
            axum::routing::post(agents::results),
        )
        .merge(assets::routes())
        .merge(console::routes())
        .merge(dashboard::routes());
    gates.hosts(routes)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers a query.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    // A constant-cost query: readiness must not depend on how many results are stored.
    state.store.ping().await?;
    Ok("ready\n")
}

/// An error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing is there (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The token is missing (401) or wrong (403), or the action is disabled (401).
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
    /// Not available yet or right now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A request the framework refused before the handler (a body over its limit …).
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// The store failed (503; the cause is logged, not answered).
    #[error("the database is unavailable")]
    Store(#[from] crate::store::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Auth(crate::auth::AuthError::Wrong) => StatusCode::FORBIDDEN,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Rejected(status, _) => *status,
            ApiError::Store(cause) => {
                tracing::error!(error = %cause, "request failed on the store");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut resp = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so this connection cannot carry another
            // request: say so, or a client may reuse it and see its next request fail.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}
