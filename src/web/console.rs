//! The config page `/config`: published versions and what changed between them, active overrides
//! and silences, and forms to add or clear an override or a silence, usable without JavaScript.
//!
//! Admin forms need a signed-in session (the admin token, pasted once; session.rs) and are guarded
//! three ways against cross-site requests: the session cookie is SameSite=Strict, every form
//! carries the session's CSRF token, and a post must come from this origin (guard.rs). Overrides
//! and silences go through the same functions as the JSON API (`web::admin`, `web::silences`), so the rules are written once.
//! Every answer forbids framing and caching and sets a Content-Security-Policy of `'self'`.

mod diff;
mod guard;
mod page;
mod session;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use self::page::{ConfigPage, ConsoleError, OverrideForm, SilenceForm};
use self::session::{CookieKind, Sessions, SignedIn};
use super::ApiError;
use super::admin::{self, NewOverride};
use super::silences::{self, NewSilence};
use crate::auth::{AuthEndpoint, AuthError};
use crate::engine::OverrideKind;
use crate::notify::silence::{RecurrenceWire, WeeklyWire};
use crate::web::AppState;

/// Largest form body accepted, in bytes (a reason and an actor of 500 characters fit many times).
const FORM_BODY_LIMIT: usize = 16 * 1024;

/// The config page's routes; its sessions live as long as the router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/config", get(show))
        .route("/config/sign-in", post(sign_in))
        .route("/config/sign-out", post(sign_out))
        .route("/config/overrides", post(add))
        .route("/config/overrides/{id}/clear", post(clear))
        .route("/config/silences", post(add_silence))
        .route("/config/silences/{id}/clear", post(clear_silence))
        .layer(Extension(Arc::new(Sessions::default())))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(axum::middleware::map_response(protect))
}

/// Headers on every config-page answer: no caching (pages carry the CSRF token), no framing
/// (clickjacking the forms), scripts and styles from this origin only, forms posted here only.
async fn protect(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// What the flash message after a redirect reports (POST-redirect-GET).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Done {
    SignedIn,
    SignedOut,
    Added,
    Cleared,
    Silenced,
    Unsilenced,
}

#[derive(Debug, Deserialize)]
struct Flash {
    done: Option<Done>,
    id: Option<i64>,
}

impl Flash {
    /// A fixed sentence per outcome: nothing from the query string is shown but a number.
    fn message(&self) -> Option<String> {
        let id = self.id.map_or(String::new(), |id| format!(" {id}"));
        Some(match self.done.as_ref()? {
            Done::SignedIn => "Signed in: admin actions are enabled in this browser for 8 hours or until you sign out.".into(),
            Done::SignedOut => "Signed out.".into(),
            Done::Added => format!("Override{id} added. The engine applies it at its next round; a new version appears below when the document changes."),
            Done::Cleared => format!("Override{id} cleared. The host goes back to the engine's rules."),
            Done::Silenced => format!("Silence{id} added. Matching messages are muted from the next round; the engine decides as ever, and a fail-open is always told."),
            Done::Unsilenced => format!("Silence{id} cleared. Matching messages are sent again."),
        })
    }
}

/// `GET /config`.
async fn show(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    flash: Result<Query<Flash>, QueryRejection>,
) -> Result<ConfigPage, ConsoleError> {
    let kind = CookieKind::of(&state.config.get());
    let csrf = sessions.get(kind, &headers, Instant::now()).map(|s| s.csrf);
    let flash = flash.ok().and_then(|Query(f)| f.message());
    Ok(ConfigPage::load(&state, csrf, flash, None, OverrideForm::default()).await?)
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    token: String,
}

/// `POST /config/sign-in`: checks the pasted token against the admin digest and starts a session.
/// A peer past its attempt limit is refused before its form is read.
async fn sign_in(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Result<Response, ConsoleError> {
    guard::same_origin(req.headers())?;
    if state.tokens.admin.is_none() {
        return Err(ConsoleError::Disabled);
    }
    let peer = super::guards::peer(req.extensions());
    (state.guards)
        .admit(&state.metrics, AuthEndpoint::SignIn, peer)
        .map_err(|r| ConsoleError::TooMany(r.retry_after))?;
    // A body that does not parse is not echoed anywhere: it may hold the token.
    let token = match Form::<SignInForm>::from_request(req, &state).await {
        Ok(Form(f)) => Some(f.token),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ConsoleError::Rejected(
                r.status(),
                "the form is too large".into(),
            ));
        }
        Err(_) => None,
    };
    let outcome = crate::auth::check_token(state.tokens.admin.as_ref(), token.as_deref());
    (state.guards)
        .judge(&state.metrics, AuthEndpoint::SignIn, peer, outcome)
        .map_err(|e| match e {
            AuthError::Disabled => ConsoleError::Disabled,
            AuthError::Missing => ConsoleError::MissingToken,
            AuthError::Wrong => ConsoleError::WrongToken,
        })?;
    let id = sessions.start(Instant::now());
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    tracing::info!(%peer, "a browser signed in to the config page");
    let kind = CookieKind::of(&state.config.get());
    Ok((
        [(header::SET_COOKIE, session::set_cookie(kind, &id))],
        Redirect::to("/config?done=signed_in"),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /config/sign-out`: ends the session and drops the cookie.
async fn sign_out(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Result<Response, ConsoleError> {
    let headers = req.headers().clone();
    match admin_post::<CsrfForm>(&state, &sessions, req).await {
        Ok(_) | Err(ConsoleError::NoSession) => {}
        Err(e) => return Err(e),
    }
    let kind = CookieKind::of(&state.config.get());
    sessions.end(kind, &headers);
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(kind))],
        Redirect::to("/config?done=signed_out"),
    )
        .into_response())
}

/// `POST /config/overrides`: adds an override through the JSON API's own validation.
async fn add(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Result<Response, ConsoleError> {
    let (session, form) = admin_post::<OverrideForm>(&state, &sessions, req).await?;
    let added = match new_override(&form) {
        Ok(o) => admin::add(&state, o).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(id) => Ok(Redirect::to(&format!("/config?done=added&id={id}")).into_response()),
        // Said above the form, with what was typed kept.
        Err(ApiError::BadRequest(why)) => {
            let page = ConfigPage::load(&state, Some(session.csrf), None, Some(why), form).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn new_override(form: &OverrideForm) -> Result<NewOverride, ApiError> {
    let kind = OverrideKind::parse(&form.kind).ok_or_else(|| {
        ApiError::BadRequest("choose a kind: force_disable, force_enable or observe_only".into())
    })?;
    let expires_in_s = form.expires_in_s.trim().parse::<i64>().map_err(|_| {
        ApiError::BadRequest("`expires_in_s` must be a whole number of seconds".into())
    })?;
    Ok(NewOverride {
        host: form.host.clone(),
        kind,
        reason: form.reason.clone(),
        actor: form.actor.clone(),
        expires_in_s: Some(expires_in_s),
    })
}

/// `POST /config/overrides/{id}/clear`.
async fn clear(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ConsoleError> {
    admin_post::<CsrfForm>(&state, &sessions, req).await?;
    let id = admin::remove(&state, &id).await?;
    Ok(Redirect::to(&format!("/config?done=cleared&id={id}")).into_response())
}

/// `POST /config/silences`: adds a silence through the JSON API's own validation.
async fn add_silence(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    req: Request,
) -> Result<Response, ConsoleError> {
    let (session, form) = admin_post::<SilenceForm>(&state, &sessions, req).await?;
    let added = match new_silence(&form) {
        Ok(s) => silences::add(&state, s).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(id) => Ok(Redirect::to(&format!("/config?done=silenced&id={id}")).into_response()),
        Err(ApiError::BadRequest(why)) => {
            let mut page = ConfigPage::load(
                &state,
                Some(session.csrf),
                None,
                None,
                OverrideForm::default(),
            )
            .await?;
            page.silence_error = Some(why);
            page.silence_form = form;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn new_silence(form: &SilenceForm) -> Result<NewSilence, ApiError> {
    let whole = |field: &str, v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest(format!("`{field}`: must be a whole number")))
    };
    let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let every = match given(&form.day) {
        None => None,
        Some(day) => Some(RecurrenceWire {
            weekly: WeeklyWire {
                day,
                start: form.start.trim().to_string(),
                minutes: whole("every.weekly.minutes", &form.minutes)?,
            },
        }),
    };
    let expires_in_s = match given(&form.expires_in_s) {
        None => None,
        Some(v) => Some(whole("expires_in_s", &v)?),
    };
    Ok(NewSilence {
        host: given(&form.host),
        vendor: given(&form.vendor),
        region: given(&form.region),
        scope: given(&form.scope),
        reason: form.reason.clone(),
        actor: form.actor.clone(),
        expires_in_s,
        expires_at: None,
        every,
    })
}

/// `POST /config/silences/{id}/clear`.
async fn clear_silence(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ConsoleError> {
    admin_post::<CsrfForm>(&state, &sessions, req).await?;
    let id = silences::remove(&state, &id).await?;
    Ok(Redirect::to(&format!("/config?done=unsilenced&id={id}")).into_response())
}

/// A posted admin form: it carries the session's CSRF token.
trait AdminForm {
    fn csrf(&self) -> &str;
}

impl AdminForm for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl AdminForm for SilenceForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl AdminForm for OverrideForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The checks every admin form post passes, in this order: same origin (403), admin actions
/// enabled (403), a live session (401) — all from the headers, before the body is read — then a
/// readable form (4xx) and the session's CSRF token (403).
async fn admin_post<F: AdminForm + DeserializeOwned>(
    state: &AppState,
    sessions: &Sessions,
    req: Request,
) -> Result<(SignedIn, F), ConsoleError> {
    guard::same_origin(req.headers())?;
    if state.tokens.admin.is_none() {
        return Err(ConsoleError::Disabled);
    }
    let kind = CookieKind::of(&state.config.get());
    let session = sessions
        .get(kind, req.headers(), Instant::now())
        .ok_or(ConsoleError::NoSession)?;
    let Form(form) = Form::<F>::from_request(req, state)
        .await
        .map_err(|r| ConsoleError::Rejected(r.status(), r.body_text()))?;
    if !session.csrf_matches(Some(form.csrf())) {
        return Err(ConsoleError::Csrf);
    }
    Ok((session, form))
}
