//! Signed-in browser sessions for the config page: an unguessable id in an HttpOnly,
//! SameSite=Strict cookie, and a CSRF token bound to it (the synchronizer-token pattern).
//!
//! The admin token itself is never stored, echoed or put in a cookie: signing in checks it against
//! its digest once and starts a session. Only digests of session ids are kept, in memory, so a
//! restart signs everyone out and nothing of a session lands on disk. Sessions end at sign-out or
//! after [`LIFETIME`], whichever comes first. When the service is reached over https (the config's
//! `dashboard.external_url`), the cookie is `Secure` and named with the `__Host-` prefix, so the
//! browser sends it over https only and no other host of the domain can set or shadow it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::HeaderValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The session cookie's name over plain http.
pub(super) const COOKIE: &str = "cdnwatch_session";
/// … and over https: `__Host-` makes the browser insist on `Secure`, `Path=/` and no `Domain`.
pub(super) const SECURE_COOKIE: &str = "__Host-cdnwatch_session";

/// How the session cookie is named and flagged, by the scheme the browser reaches the service on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CookieKind {
    /// Plain http (the default: the service itself speaks http).
    Http,
    /// https, as the config's `dashboard.external_url` says (behind a TLS proxy).
    Https,
}

impl CookieKind {
    /// The kind the config in force asks for.
    pub(super) fn of(config: &crate::config::Config) -> CookieKind {
        if config.dashboard.is_https() {
            CookieKind::Https
        } else {
            CookieKind::Http
        }
    }

    fn name(self) -> &'static str {
        match self {
            CookieKind::Http => COOKIE,
            CookieKind::Https => SECURE_COOKIE,
        }
    }

    fn flags(self) -> &'static str {
        match self {
            CookieKind::Http => "",
            CookieKind::Https => "; Secure",
        }
    }
}
/// How long a sign-in lasts: one on-call shift, 8 h.
pub(super) const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; signing in past it ends the one closest to expiry.
const MAX_SESSIONS: usize = 256;

/// What a request's valid session allows: posting forms that carry this CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SignedIn {
    pub csrf: String,
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The sessions of this process, keyed by the SHA-256 of their id. Cheap to share.
#[derive(Default)]
pub(super) struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(..)")
    }
}

impl Sessions {
    /// Starts a session; returns its id, which only the cookie holds.
    pub(super) fn start(&self, now: Instant) -> String {
        let id = random_token();
        let mut map = self.by_digest.lock().expect("sessions lock");
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(&id),
            Session {
                csrf: random_token(),
                expires: now + LIFETIME,
            },
        );
        id
    }

    /// The live session named by the request's cookie, if any.
    pub(super) fn get(
        &self,
        kind: CookieKind,
        headers: &HeaderMap,
        now: Instant,
    ) -> Option<SignedIn> {
        let id = cookie(kind, headers)?;
        let map = self.by_digest.lock().expect("sessions lock");
        map.get(&digest(id))
            .filter(|s| s.expires > now)
            .map(|s| SignedIn {
                csrf: s.csrf.clone(),
            })
    }

    /// Ends the request's session, if it has one.
    pub(super) fn end(&self, kind: CookieKind, headers: &HeaderMap) {
        if let Some(id) = cookie(kind, headers) {
            self.by_digest
                .lock()
                .expect("sessions lock")
                .remove(&digest(id));
        }
    }
}

impl SignedIn {
    /// Whether a form's token is this session's. Digests are compared, so the comparison's timing
    /// says nothing useful about the token.
    pub(super) fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| digest(g) == digest(&self.csrf))
    }
}

/// 32 random bytes from the thread's CSPRNG, URL-safe base64.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(crate::auth::random_bytes::<32>())
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The session id in the request's `Cookie` header(s).
fn cookie(kind: CookieKind, headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == kind.name())
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: not readable by scripts, never sent on cross-site requests.
pub(super) fn set_cookie(kind: CookieKind, id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        kind.name(),
        LIFETIME.as_secs(),
        kind.flags()
    ))
    .expect("a base64 id is a valid header value")
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub(super) fn clear_cookie(kind: CookieKind) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        kind.name(),
        kind.flags()
    ))
    .expect("a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: CookieKind = CookieKind::Http;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_ends_or_expires() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.start(now);
        let headers = with_cookie(&format!("theme=dark; {COOKIE}={id}"));
        let s = sessions.get(HTTP, &headers, now).expect("a live session");
        assert!(s.csrf_matches(Some(&s.csrf)));
        assert!(!s.csrf_matches(Some("forged")));
        assert!(!s.csrf_matches(None));
        assert_eq!(sessions.get(HTTP, &headers, now + LIFETIME), None);
        assert_eq!(
            sessions.get(CookieKind::Https, &headers, now),
            None,
            "over https only the __Host- cookie counts"
        );
        sessions.end(HTTP, &headers);
        assert_eq!(sessions.get(HTTP, &headers, now), None);
    }

    #[test]
    fn an_unknown_or_missing_cookie_is_no_session() {
        let sessions = Sessions::default();
        sessions.start(Instant::now());
        assert_eq!(
            sessions.get(
                HTTP,
                &with_cookie(&format!("{COOKIE}=guess")),
                Instant::now()
            ),
            None
        );
        assert_eq!(sessions.get(HTTP, &HeaderMap::new(), Instant::now()), None);
    }

    #[test]
    fn each_session_has_its_own_csrf_token_and_ids_are_unguessable() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let (a, b) = (sessions.start(now), sessions.start(now));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in URL-safe base64");
        let sa = sessions
            .get(HTTP, &with_cookie(&format!("{COOKIE}={a}")), now)
            .unwrap();
        let sb = sessions
            .get(HTTP, &with_cookie(&format!("{COOKIE}={b}")), now)
            .unwrap();
        assert!(!sa.csrf_matches(Some(&sb.csrf)));
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::default();
        let now = Instant::now();
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.start(now);
        }
        assert_eq!(sessions.by_digest.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_site_wide() {
        let c = set_cookie(HTTP, "abc");
        let c = c.to_str().unwrap();
        assert!(!c.contains("Secure"), "{c}");
        for part in [
            "cdnwatch_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie(HTTP).to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn over_https_the_cookie_is_secure_and_host_prefixed() {
        let c = set_cookie(CookieKind::Https, "abc");
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-cdnwatch_session=abc;"), "{c}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Domain"), "{c}");
        let cleared = clear_cookie(CookieKind::Https);
        let cleared = cleared.to_str().unwrap();
        assert!(cleared.starts_with("__Host-cdnwatch_session=;") && cleared.contains("Secure"));
        let sessions = Sessions::default();
        let id = sessions.start(Instant::now());
        let h = with_cookie(&format!("{SECURE_COOKIE}={id}"));
        assert!(
            sessions
                .get(CookieKind::Https, &h, Instant::now())
                .is_some()
        );
        assert!(sessions.get(HTTP, &h, Instant::now()).is_none());
    }
}
