//! Refuses cross-site form posts: a post must say, through headers only a browser sets, that it
//! comes from a page of this same origin.
//!
//! `Sec-Fetch-Site` is the browser's own verdict and wins when present; otherwise `Origin` (or,
//! failing that, `Referer`) must name this server's `Host`. A post with none of them is refused:
//! the forms are only ever posted by a browser from the config page, and scripts use the JSON API
//! with a bearer token instead. This is a second lock: the SameSite=Strict cookie and the CSRF
//! token each stop a forged post on their own.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN, REFERER};

/// Why a post was taken for a cross-site one; said on the 403 page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CrossSite {
    #[error("the browser says this form was posted from {0} (Sec-Fetch-Site)")]
    FetchSite(&'static str),
    #[error("the form was posted from another origin (Origin does not name this server)")]
    Origin,
    #[error("the form was posted from another page (Referer does not name this server)")]
    Referer,
    #[error(
        "the request has no Sec-Fetch-Site, Origin or Referer header, so where it came from is unknown"
    )]
    Unknown,
}

/// Ok when the request comes from a page of this server's own origin.
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), CrossSite> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return match site {
            "same-origin" => Ok(()),
            "same-site" => Err(CrossSite::FetchSite("another site of the same domain")),
            "cross-site" => Err(CrossSite::FetchSite("another site")),
            "none" => Err(CrossSite::FetchSite("outside any page")),
            _ => Err(CrossSite::FetchSite("an unknown place")),
        };
    }
    let host = header(HOST.as_str()).unwrap_or_default();
    if let Some(origin) = header(ORIGIN.as_str()) {
        return names_host(origin, host)
            .then_some(())
            .ok_or(CrossSite::Origin);
    }
    if let Some(referer) = header(REFERER.as_str()) {
        let origin = referer_origin(referer);
        return names_host(origin, host)
            .then_some(())
            .ok_or(CrossSite::Referer);
    }
    Err(CrossSite::Unknown)
}

/// Whether `origin` (`scheme://host[:port]`) is this server's, reached as `host`.
fn names_host(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// `scheme://authority` of a URL: everything before the path.
fn referer_origin(url: &str) -> &str {
    let path_start = url
        .find("://")
        .and_then(|i| url[i + 3..].find(['/', '?', '#']).map(|j| i + 3 + j));
    path_start.map_or(url, |end| &url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8080".parse().unwrap());
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_same_origin_post_passes_by_any_of_the_three_headers() {
        assert_eq!(
            same_origin(&headers(&[("sec-fetch-site", "same-origin")])),
            Ok(())
        );
        assert_eq!(
            same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])),
            Ok(())
        );
        assert_eq!(
            same_origin(&headers(&[("referer", "http://127.0.0.1:8080/config?x=1")])),
            Ok(())
        );
    }

    #[test]
    fn sec_fetch_site_wins_over_a_matching_origin() {
        let h = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(same_origin(&h), Err(CrossSite::FetchSite("another site")));
        let h = headers(&[("sec-fetch-site", "same-site")]);
        assert!(same_origin(&h).is_err());
    }

    #[test]
    fn another_origin_a_null_origin_or_no_header_at_all_is_refused() {
        for origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8080.evil.example",
        ] {
            assert_eq!(
                same_origin(&headers(&[("origin", origin)])),
                Err(CrossSite::Origin),
                "{origin}"
            );
        }
        assert_eq!(
            same_origin(&headers(&[(
                "referer",
                "http://evil.example/http://127.0.0.1:8080/"
            )])),
            Err(CrossSite::Referer)
        );
        assert_eq!(same_origin(&headers(&[])), Err(CrossSite::Unknown));
    }

    #[test]
    fn a_referer_is_cut_to_its_origin() {
        assert_eq!(referer_origin("http://a.test:1/x/y"), "http://a.test:1");
        assert_eq!(referer_origin("http://a.test?q"), "http://a.test");
        assert_eq!(referer_origin("http://a.test"), "http://a.test");
    }
}
