//! One listener's limits as the server applies them: the open-connection count with its cap and
//! the reserve kept for host-list clients, the request-head caps (414, 431 with the README's JSON
//! error, checked here rather than by hyper, which answers them with an empty body), and the
//! cheap refusal when the reserve is all that is left.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::activity::Timeouts;
use crate::config::HttpSettings;
use crate::web::ApiError;

/// hyper's read buffer is this many times our head caps: a head between the caps and it is
/// answered here with JSON; past it, hyper cuts it off itself (an empty 431).
const HYPER_BUFFER_FACTOR: usize = 4;

/// The limits of one listener, typed from `[http]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) timeouts: Timeouts,
    max_uri_bytes: usize,
    max_header_bytes: usize,
    max_connections: usize,
    /// Above this many open connections only host-list requests are answered.
    soft_connections: usize,
}

impl Limits {
    pub(super) fn new(http: &HttpSettings) -> Limits {
        Limits {
            timeouts: Timeouts {
                header: http.header_read_timeout(),
                idle: http.idle_timeout(),
            },
            max_uri_bytes: http.max_uri_bytes,
            max_header_bytes: http.max_header_bytes,
            max_connections: http.max_connections,
            soft_connections: http.max_connections
                - http.reserve_connections.min(http.max_connections),
        }
    }

    /// hyper's read buffer (at least the 8 KiB it insists on).
    pub(super) fn hyper_buffer(&self) -> usize {
        ((self.max_uri_bytes + self.max_header_bytes) * HYPER_BUFFER_FACTOR).max(8 * 1024)
    }

    /// What one header counts against `max_header_bytes`: its name, its value, `": "` and CRLF.
    pub(super) fn header_bytes(name: &str, value: &[u8]) -> usize {
        name.len() + value.len() + 4
    }

    /// Whether a head with a target of `target` bytes and headers of `header_bytes` (as
    /// [`Limits::header_bytes`] counts them) is within the caps.
    pub(super) fn within_caps(&self, target: usize, header_bytes: usize) -> bool {
        target <= self.max_uri_bytes && header_bytes <= self.max_header_bytes
    }

    /// 414 or 431 (with `Connection: close`) when the request's head passes a cap.
    pub(super) fn screen<B>(&self, request: &Request<B>) -> Option<Response> {
        let target = request
            .uri()
            .path_and_query()
            .map_or(0, |p| p.as_str().len());
        if target > self.max_uri_bytes {
            let why = format!(
                "the request target is longer than {} bytes",
                self.max_uri_bytes
            );
            return Some(closing(ApiError::Rejected(StatusCode::URI_TOO_LONG, why)));
        }
        let headers: usize = request
            .headers()
            .iter()
            .map(|(name, value)| Limits::header_bytes(name.as_str(), value.as_bytes()))
            .sum();
        if headers > self.max_header_bytes {
            let why = format!("the request headers pass {} bytes", self.max_header_bytes);
            let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            return Some(closing(ApiError::Rejected(status, why)));
        }
        None
    }
}

/// Whether a request is one the reserve is kept for: the host list, polled by every app.
pub(super) fn is_host_list<B>(request: &Request<B>) -> bool {
    let path = request.uri().path();
    (request.method() == Method::GET && path == "/api/v1/hostlist")
        || (request.method() == Method::POST && path == "/app/config-center/module-config")
}

/// 503 for what the reserve is not kept for, with `Connection: close` so the slot is given back.
pub(super) fn at_capacity() -> Response {
    let mut r = closing(ApiError::Unavailable(
        "the server is near its connection limit: only the host list is answered".into(),
    ));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn closing(error: ApiError) -> Response {
    let mut r = error.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// How many connections a listener has open, against its cap.
pub(super) struct Occupancy {
    open: AtomicUsize,
    limits: Limits,
}

impl Occupancy {
    pub(super) fn new(limits: Limits) -> Occupancy {
        Occupancy {
            open: AtomicUsize::new(0),
            limits,
        }
    }

    /// Counts a new connection in, unless the cap is reached (then it is to be closed at once).
    pub(super) fn enter(&self) -> bool {
        if self.open.fetch_add(1, Ordering::Relaxed) < self.limits.max_connections {
            return true;
        }
        self.leave();
        false
    }

    /// Counts a connection out.
    pub(super) fn leave(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Only the reserve is left: answer nothing but the host list.
    pub(super) fn near_cap(&self) -> bool {
        self.open.load(Ordering::Relaxed) > self.limits.soft_connections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::new(&HttpSettings {
            max_connections: 3,
            reserve_connections: 1,
            ..HttpSettings::default()
        })
    }

    #[test]
    fn the_cap_admits_its_count_and_the_reserve_begins_below_it() {
        let o = Occupancy::new(limits());
        assert!(o.enter() && o.enter() && !o.near_cap());
        assert!(o.enter() && o.near_cap());
        assert!(!o.enter(), "a fourth is refused");
        o.leave();
        assert!(o.enter());
    }

    #[test]
    fn a_head_past_a_cap_is_refused_with_its_status() {
        let l = limits();
        let long = format!("/{}", "a".repeat(9000));
        let r = Request::get(long.as_str()).body(()).unwrap();
        assert_eq!(l.screen(&r).unwrap().status(), 414);
        let r = Request::get("/")
            .header("x-big", "b".repeat(17_000))
            .body(())
            .unwrap();
        assert_eq!(l.screen(&r).unwrap().status(), 431);
        assert!(l.screen(&Request::get("/").body(()).unwrap()).is_none());
    }
}
