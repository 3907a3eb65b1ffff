//! `GET /static/{file}`: the files of static/, embedded in the binary at compile time (so a
//! deployed binary needs nothing beside it), served with their content type, an ETag and a cache
//! header. Adding a file to static/ means adding its line to [`ASSETS`].

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::web::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "cdnwatch.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/cdnwatch.css"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/console.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
];

/// Browsers may keep a file an hour, then revalidate it by its ETag: a new binary may bring a new
/// stylesheet under the same name.
const CACHE_CONTROL: &str = "public, max-age=3600";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/{file}", get(serve))
        // Browsers ask for /favicon.ico on documents that name no icon (the plain-text incident
        // report): the same icon, so that no page costs a 404.
        .route(
            "/favicon.ico",
            get(|headers: HeaderMap| serve(Path("favicon.svg".to_string()), headers)),
        )
}

/// Each asset's ETag: a quoted prefix of the SHA-256 of its bytes, computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    &TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..12])))
            .collect()
    })[index]
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == file) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no static file is named `{file}`\n"),
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::ETAG, HeaderValue::from_static(tag)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn app() -> Router {
        Router::new().route("/static/{file}", get(serve))
    }

    async fn get_with(uri: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        app()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_stylesheet_is_served_as_css_with_a_cache_header_and_an_etag() {
        let resp = get_with("/static/cdnwatch.css", None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], CACHE_CONTROL);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains(".cell.failing")
        );
        let again = get_with("/static/cdnwatch.css", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag.as_str());
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404_naming_it() {
        let resp = get_with("/static/secret.txt", None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"no static file is named `secret.txt`\n");
        let resp = get_with("/static/..%2Fsrc%2Fmain.rs", None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
