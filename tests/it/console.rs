//! The config page's admin protection over plain HTTP: sign-in with the admin token, the session
//! cookie, CSRF tokens, cross-site posts, sign-out, a server without an admin token, and the JSON
//! admin API beside it. Headers such as `Origin: http://evil.example` are only headers: every
//! request goes to the service on loopback.

use std::time::Duration;

use crate::harness::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

mod actions;

/// A service on the lab and a client that does not follow redirects, so 303s and cookies show.
struct Console {
    e: TestApp,
    http: reqwest::Client,
}

/// How a form post presents itself.
#[derive(Clone, Copy)]
enum Posted<'a> {
    /// `Origin` naming the service, as a browser posting from the config page sends.
    SameOrigin,
    /// One header with this value.
    Header(&'static str, &'a str),
    /// No Origin, Referer or Sec-Fetch-Site at all.
    Nowhere,
}

impl Console {
    /// A console on a stepped app: its overrides take effect when a round runs.
    async fn start() -> Console {
        Self::with(TestApp::stepped().await)
    }

    fn with(e: TestApp) -> Console {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Console { e, http }
    }

    /// `post` from the console's own origin, signed in with `cookie`: what the page's forms send.
    async fn post_signed_in(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        cookie: &str,
    ) -> reqwest::Response {
        self.post(path, fields, Some(cookie), Posted::SameOrigin)
            .await
    }

    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
        from: Posted<'_>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.e.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req = match from {
            Posted::SameOrigin => req.header("origin", &self.e.base),
            Posted::Header(name, value) => req.header(name, value),
            Posted::Nowhere => req,
        };
        req.send().await.unwrap()
    }

    /// A page that must answer 200, with its headers.
    async fn get(&self, path: &str, cookie: Option<&str>) -> (reqwest::header::HeaderMap, String) {
        let mut req = self.http.get(format!("{}{path}", self.e.base));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        (resp.headers().clone(), resp.text().await.unwrap())
    }

    async fn page(&self, cookie: Option<&str>) -> (reqwest::header::HeaderMap, String) {
        self.get("/config", cookie).await
    }

    async fn sign_in_with(&self, token: &str, from: Posted<'_>) -> reqwest::Response {
        self.post("/config/sign-in", &[("token", token)], None, from)
            .await
    }

    /// Signs in; returns the `Cookie` header value and the page's CSRF token.
    async fn sign_in(&self) -> (String, String) {
        let resp = self.sign_in_with(ADMIN_TOKEN, Posted::SameOrigin).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()[LOCATION], "/config?done=signed_in");
        let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let (_, page) = self.page(Some(&cookie)).await;
        (cookie, csrf_in(&page))
    }

    async fn add_form(
        &self,
        cookie: &str,
        csrf: &str,
        host: &str,
        from: Posted<'_>,
    ) -> reqwest::Response {
        let fields = [
            ("csrf", csrf),
            ("host", host),
            ("kind", "force_disable"),
            ("reason", "vendor maintenance <script>alert(1)</script>"),
            ("actor", "oncall@shop"),
            ("expires_in_s", "3600"),
        ];
        self.post("/config/overrides", &fields, Some(cookie), from)
            .await
    }

    async fn overrides(&self) -> Vec<Value> {
        self.e.list("/api/v1/overrides").await
    }
}

/// The value of the first `name="csrf"` hidden field.
fn csrf_in(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn refused(resp: reqwest::Response, status: u16, says: &str) -> String {
    assert_eq!(resp.status().as_u16(), status);
    assert!(
        resp.headers().get(SET_COOKIE).is_none(),
        "a refusal sets no cookie"
    );
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let body = resp.text().await.unwrap();
    assert!(body.contains(says), "expected `{says}` in {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_forms_posted_without_a_session_are_refused_with_401() {
    let c = Console::start().await;
    let fields = [
        ("host", PRIMARY),
        ("kind", "force_disable"),
        ("reason", "r"),
        ("actor", "a"),
    ];
    let resp = c
        .post("/config/overrides", &fields, None, Posted::SameOrigin)
        .await;
    refused(resp, 401, "sign in with the admin token first").await;
    let forged = format!("cdnwatch_session={}", "A".repeat(43));
    let resp = c
        .post_signed_in("/config/overrides", &fields, &forged)
        .await;
    refused(resp, 401, "sign in").await;
    let resp = c
        .post("/config/overrides/1/clear", &[], None, Posted::SameOrigin)
        .await;
    refused(resp, 401, "sign in").await;
    assert!(c.overrides().await.is_empty());
    // Signed out, the page offers the sign-in form and no admin form.
    let (_, page) = c.page(None).await;
    assert!(page.contains(r#"id="sign-in""#) && !page.contains(r#"id="add-override""#));
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_at_sign_in_is_refused_and_sets_no_cookie() {
    let c = Console::start().await;
    let typed = "not-the-admin-token-4242";
    let resp = c.sign_in_with(typed, Posted::SameOrigin).await;
    let body = refused(resp, 403, "the admin token is not valid").await;
    assert!(!body.contains(typed), "what was typed is never echoed");
    let resp = c.sign_in_with(" ", Posted::SameOrigin).await;
    refused(resp, 401, "paste the admin token").await;
    let resp = c
        .post("/config/sign-in", &[], None, Posted::SameOrigin)
        .await;
    refused(resp, 401, "paste the admin token").await;
    // The right token from another site is refused too (no login CSRF).
    let resp = c
        .sign_in_with(ADMIN_TOKEN, Posted::Header("origin", "http://evil.example"))
        .await;
    refused(resp, 403, "cross-site").await;
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_strict_http_only_session_cookie_that_holds_nothing_of_the_token() {
    let c = Console::start().await;
    let resp = c.sign_in_with(ADMIN_TOKEN, Posted::SameOrigin).await;
    assert_eq!(resp.status(), 303);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for part in [
        "cdnwatch_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set.contains(part), "{part} in {set}");
    }
    assert!(!set.contains(ADMIN_TOKEN));
    let cookie = set.split(';').next().unwrap();
    let (headers, page) = c.page(Some(cookie)).await;
    assert!(page.contains("Signed in.") && page.contains(r#"id="add-override""#));
    assert!(
        !page.contains(ADMIN_TOKEN),
        "the token is never put in a page"
    );
    // Not cached, not framed, nothing but this origin's scripts and styles.
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    // While the form is shown the page does not reload itself; signed out it does, every minute.
    assert!(page.contains(r#"<meta http-equiv="refresh" content="">"#));
    let (_, page) = c.page(None).await;
    assert!(page.contains(r#"<meta http-equiv="refresh" content="60">"#));
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_post_without_its_sessions_csrf_token_is_refused_with_403_and_an_oversized_one_with_413()
 {
    let c = Console::start().await;
    let (cookie, csrf) = c.sign_in().await;
    let (_, other_csrf) = c.sign_in().await;
    assert_ne!(csrf, other_csrf);
    for wrong in ["", "forged-token", other_csrf.as_str()] {
        let resp = c
            .add_form(&cookie, wrong, PRIMARY, Posted::SameOrigin)
            .await;
        refused(resp, 403, "CSRF token").await;
    }
    let fields = [
        ("host", PRIMARY),
        ("kind", "force_disable"),
        ("reason", "r"),
        ("actor", "a"),
    ];
    let resp = c
        .post_signed_in("/config/overrides", &fields, &cookie)
        .await;
    refused(resp, 403, "CSRF token").await;
    let resp = c
        .post_signed_in("/config/overrides/1/clear", &[], &cookie)
        .await;
    refused(resp, 403, "CSRF token").await;
    // A body past the form limit is said as such, with a session or without.
    let huge = "x".repeat(32 * 1024);
    let fields = [("csrf", csrf.as_str()), ("reason", huge.as_str())];
    let resp = c
        .post_signed_in("/config/overrides", &fields, &cookie)
        .await;
    refused(resp, 413, "").await;
    let resp = c.sign_in_with(&huge, Posted::SameOrigin).await;
    refused(resp, 413, "the form is too large").await;
    assert!(c.overrides().await.is_empty());
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_is_refused_with_403_even_with_a_valid_session_and_csrf_token() {
    let c = Console::start().await;
    let (cookie, csrf) = c.sign_in().await;
    for from in [
        Posted::Header("origin", "http://evil.example"),
        Posted::Header("origin", "null"),
        Posted::Header("sec-fetch-site", "cross-site"),
        Posted::Header("sec-fetch-site", "same-site"),
        Posted::Header("referer", "http://evil.example/config"),
        Posted::Nowhere,
    ] {
        let resp = c.add_form(&cookie, &csrf, PRIMARY, from).await;
        refused(resp, 403, "refused a cross-site request").await;
    }
    assert!(c.overrides().await.is_empty());
    // The same post from the page itself goes through: the refusals were the origin's doing.
    let resp = c
        .add_form(
            &cookie,
            &csrf,
            PRIMARY,
            Posted::Header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(c.overrides().await.len(), 1);
    c.e.stop().await;
}
