//! Static files (stylesheets) embedded at compile time and served at `GET /static/{file}`.
//!
//! Provisional copy on the admin branch: the dashboard branch owns this module; at merge its
//! version is kept and only needs `console.css` in its table.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::service::AppState;

/// Every file served: name, content type, bytes.
const FILES: [(&str, &str, &str); 3] = [
    (
        "cdnwatch.css",
        "text/css; charset=utf-8",
        include_str!("../../static/cdnwatch.css"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../static/console.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/static/{file}", get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no static file `{name}`\n")).into_response(),
    }
}
