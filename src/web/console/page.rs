//! What the config page shows, read from the store and the config: published versions with their
//! changes, active overrides and silences, and the admin forms; plus the plain page a refused or bad request gets.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::diff;
use super::guard::CrossSite;
use crate::config::SCOPE_KINDS;
use crate::engine::OverrideKind;
use crate::notify::silence::Day;
use crate::store::StoreError;
use crate::store::publish::OverrideRow;
use crate::web::ApiError;
use crate::web::AppState;
use crate::web::admin::DEFAULT_EXPIRY_S;
use crate::web::silences::SilenceLine;

/// Versions listed, newest first.
const VERSIONS_SHOWN: usize = 50;

/// The expiry choices of the form, in seconds (the JSON API takes any value from 60 s to a week).
const EXPIRIES: [(i64, &str); 6] = [
    (900, "15 minutes"),
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (DEFAULT_EXPIRY_S, "24 hours"),
    (3 * 86_400, "3 days"),
    (7 * 86_400, "7 days"),
];

/// The override form as posted; every field is text so that a bad value is said on the page with
/// the rest of the form kept, rather than refused by the parser.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct OverrideForm {
    pub csrf: String,
    pub host: String,
    pub kind: String,
    pub reason: String,
    pub actor: String,
    pub expires_in_s: String,
}

/// The silence form as posted, all text (like [`OverrideForm`]); a blank matcher is not given,
/// a blank day makes a one-off silence.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct SilenceForm {
    pub csrf: String,
    pub host: String,
    pub vendor: String,
    pub region: String,
    pub scope: String,
    pub reason: String,
    pub actor: String,
    pub expires_in_s: String,
    pub day: String,
    pub start: String,
    pub minutes: String,
}

/// One published version as listed.
pub(super) struct VersionView {
    pub version: i64,
    pub issued: String,
    pub reason: String,
    pub changes: Vec<String>,
}

/// One active override as listed.
pub(super) struct OverrideView {
    pub id: i64,
    pub host: String,
    pub kind: &'static str,
    pub reason: String,
    pub actor: String,
    pub created: String,
    pub expires: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "config.html")]
pub(super) struct ConfigPage {
    /// An admin token is configured on this server.
    pub admin_enabled: bool,
    /// The session's CSRF token when this browser is signed in.
    pub csrf: Option<String>,
    pub flash: Option<String>,
    pub error: Option<String>,
    pub hosts: Vec<String>,
    pub form: OverrideForm,
    pub overrides: Vec<OverrideView>,
    pub versions: Vec<VersionView>,
    /// The live silences.
    pub silences: Vec<SilenceLine>,
    pub silence_form: SilenceForm,
    /// What is wrong with the silence form as posted.
    pub silence_error: Option<String>,
    pub vendors: Vec<String>,
    pub regions: Vec<String>,
}

impl ConfigPage {
    /// The page as it is now, with a flash message or an error for the form above it.
    pub(super) async fn load(
        state: &AppState,
        csrf: Option<String>,
        flash: Option<String>,
        error: Option<String>,
        form: OverrideForm,
    ) -> Result<ConfigPage, StoreError> {
        let now = state.clock.now();
        let config = state.config.get();
        let rows = state.store.active_overrides(now.timestamp_millis()).await?;
        let silences = crate::web::silences::live(state).await?;
        Ok(ConfigPage {
            silences: silences.iter().map(|s| SilenceLine::of(s, now)).collect(),
            silence_form: SilenceForm::default(),
            silence_error: None,
            vendors: config.vendors.iter().map(|v| v.name.clone()).collect(),
            regions: config.regions.iter().map(|r| r.name.clone()).collect(),
            admin_enabled: state.tokens.admin.is_some(),
            csrf,
            flash,
            error,
            hosts: config.hosts.iter().map(|h| h.domain.clone()).collect(),
            form,
            overrides: rows.iter().map(|r| override_view(r, now)).collect(),
            versions: versions(state).await?,
        })
    }

    /// Seconds between the page's own reloads: none while the override form is shown, so a
    /// half-typed form is never lost; a minute otherwise, so a read-only view stays current.
    pub(super) fn refresh(&self) -> &'static str {
        if self.csrf.is_some() { "" } else { "60" }
    }

    pub(super) fn kinds(&self) -> [(&'static str, &'static str); 3] {
        OverrideKind::ALL.map(|k| (k.as_str(), kind_label(k)))
    }

    pub(super) fn expiries(&self) -> &'static [(i64, &'static str)] {
        &EXPIRIES
    }

    pub(super) fn scopes(&self) -> &'static [&'static str] {
        &SCOPE_KINDS
    }

    pub(super) fn days(&self) -> [&'static str; 7] {
        Day::ALL.map(Day::as_str)
    }

    pub(super) fn host_chosen(&self, host: &str) -> bool {
        self.form.host == host
    }

    pub(super) fn kind_chosen(&self, kind: &str) -> bool {
        self.form.kind == kind || (self.form.kind.is_empty() && kind == "force_disable")
    }

    pub(super) fn expiry_chosen(&self, secs: &i64) -> bool {
        match self.form.expires_in_s.parse::<i64>() {
            Ok(chosen) => chosen == *secs,
            Err(_) => *secs == DEFAULT_EXPIRY_S,
        }
    }
}

fn kind_label(k: OverrideKind) -> &'static str {
    match k {
        OverrideKind::ForceDisable => "force_disable: take the host out of the list",
        OverrideKind::ForceEnable => "force_enable: keep the host in, whatever the probes say",
        OverrideKind::ObserveOnly => {
            "observe_only: record what the engine would do, change nothing"
        }
    }
}

/// The newest versions, each with what changed since the one before it.
async fn versions(state: &AppState) -> Result<Vec<VersionView>, StoreError> {
    // One more than shown, so that the oldest shown still has its predecessor to compare with.
    let rows = state
        .store
        .version_history(VERSIONS_SHOWN as i64 + 1)
        .await?;
    Ok(rows
        .iter()
        .enumerate()
        .take(VERSIONS_SHOWN)
        .map(|(i, row)| VersionView {
            version: row.version,
            issued: time(row.issued_at_ms),
            reason: row.reason.clone(),
            changes: diff::describe(rows.get(i + 1).map(|o| o.content.as_str()), &row.content),
        })
        .collect())
}

fn override_view(r: &OverrideRow, now: DateTime<Utc>) -> OverrideView {
    let left = (r.rule.expires_at - now).num_minutes().max(0);
    OverrideView {
        id: r.id,
        host: r.rule.host.clone(),
        kind: r.rule.kind.as_str(),
        reason: r.rule.reason.clone(),
        actor: r.rule.actor.clone(),
        created: time(r.created_at_ms),
        expires: format!(
            "{} (in {} h {:02} min)",
            time(r.rule.expires_at.timestamp_millis()),
            left / 60,
            left % 60
        ),
    }
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Why a config-page request was refused or failed; answered with a plain page naming it.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConsoleError {
    #[error(
        "admin actions are disabled: this server was started without an admin token (CDNWATCH_ADMIN_TOKEN)"
    )]
    Disabled,
    #[error("sign in with the admin token first (your session may have ended)")]
    NoSession,
    #[error("paste the admin token to sign in")]
    MissingToken,
    #[error("the admin token is not valid")]
    WrongToken,
    #[error("too many sign-in attempts; try again in {} s", super::super::guards::retry_after_secs(*.0))]
    TooMany(std::time::Duration),
    #[error("refused a cross-site request: {0}")]
    CrossSite(#[from] CrossSite),
    #[error(
        "the form's CSRF token is missing or not this session's; reload the config page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadInput(String),
    /// A body the form parser refused (too large, not a form …), with its status.
    #[error("{1}")]
    Rejected(StatusCode, String),
    #[error("{0}")]
    NotFound(String),
    #[error("the database is unavailable; try again in a moment")]
    Unavailable,
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> ConsoleError {
        match e {
            ApiError::BadRequest(m) => ConsoleError::BadInput(m),
            ApiError::Rejected(status, m) => ConsoleError::Rejected(status, m),
            ApiError::NotFound(m) => ConsoleError::NotFound(m),
            ApiError::Auth(_) => ConsoleError::NoSession,
            ApiError::Unavailable(_) => ConsoleError::Unavailable,
            ApiError::Store(cause) => cause.into(),
        }
    }
}

impl From<StoreError> for ConsoleError {
    fn from(cause: StoreError) -> ConsoleError {
        tracing::error!(error = %cause, "the config page failed on the store");
        ConsoleError::Unavailable
    }
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::NoSession | ConsoleError::MissingToken => StatusCode::UNAUTHORIZED,
            ConsoleError::Disabled
            | ConsoleError::WrongToken
            | ConsoleError::CrossSite(_)
            | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadInput(_) => StatusCode::BAD_REQUEST,
            ConsoleError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Rejected(status, _) => *status,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The page a refused or failed request gets.
#[derive(Template, WebTemplate)]
#[template(path = "console_message.html")]
pub(super) struct MessagePage {
    pub heading: String,
    pub message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ConsoleError::TooMany(wait) => Some(super::super::guards::retry_after_secs(*wait)),
            _ => None,
        };
        if status.is_client_error() && retry_after.is_none() {
            // Never the token: the messages name what was wrong, not what was sent.
            tracing::info!(status = status.as_u16(), refused = %self, "config page request refused");
        }
        let page = MessagePage {
            heading: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            message: self.to_string(),
        };
        let mut resp = (status, page).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
