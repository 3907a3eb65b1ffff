//! Admin actions over JSON: manual overrides. Every action needs the admin token, checked from
//! the headers before any body is read (web::guards); none can disable every host (the engine's
//! fail-open guard keeps one).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::ApiError;
use super::guards::Refusal;
use crate::auth::AuthEndpoint;
use crate::engine::{Override, OverrideKind};
use crate::store::publish::OverrideRow;
use crate::web::AppState;

/// Default lifetime of an override.
pub(super) const DEFAULT_EXPIRY_S: i64 = 24 * 3600;
/// Longest allowed lifetime: a week.
pub(super) const MAX_EXPIRY_S: i64 = 7 * 24 * 3600;
/// Most characters of a reason or an actor.
pub(super) const MAX_TEXT_CHARS: usize = 500;
/// Largest admin body accepted (an override, a silence), in bytes: a reason and an actor of 500
/// four-byte characters fit many times.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOverride {
    pub host: String,
    pub kind: OverrideKind,
    pub reason: String,
    pub actor: String,
    /// Seconds until it expires; default 24 h, at most a week.
    pub expires_in_s: Option<i64>,
}

/// The admin bearer check of a request, from its headers.
pub(super) fn admin(state: &AppState, parts: &axum::http::request::Parts) -> Result<(), Refusal> {
    let expected = state.tokens.admin.as_ref();
    (state.guards).bearer(&state.metrics, AuthEndpoint::Admin, expected, parts)
}

/// An admin request's JSON body, as `what`: the token checked from the headers first, then the
/// body read within its limit (web::guards), then parsed.
pub(super) async fn admin_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request,
    what: &str,
) -> Result<T, Refusal> {
    let (parts, body) = req.into_parts();
    admin(state, &parts)?;
    let body = (state.guards)
        .read_body(&parts.headers, body, BODY_LIMIT)
        .await?;
    Ok(serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("bad {what}: {e}")))?)
}

/// Validates and stores an override; shared by the JSON API and the config page's form.
pub(super) async fn add(state: &AppState, o: NewOverride) -> Result<i64, ApiError> {
    let config = state.config.get();
    if config.host(&o.host).is_none() {
        return Err(ApiError::BadRequest(format!(
            "no host `{}` in the config",
            o.host
        )));
    }
    for (field, v) in [("reason", &o.reason), ("actor", &o.actor)] {
        // Characters, not bytes: a reason in Chinese is as long as one in English.
        if v.trim().is_empty() || v.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::BadRequest(format!(
                "`{field}` must be 1 to {MAX_TEXT_CHARS} characters"
            )));
        }
    }
    let secs = o.expires_in_s.unwrap_or(DEFAULT_EXPIRY_S);
    if !(60..=MAX_EXPIRY_S).contains(&secs) {
        return Err(ApiError::BadRequest(format!(
            "`expires_in_s` must be from 60 to {MAX_EXPIRY_S}"
        )));
    }
    let now = state.clock.now();
    let rule = Override {
        host: o.host,
        kind: o.kind,
        reason: o.reason.trim().to_string(),
        actor: o.actor.trim().to_string(),
        expires_at: now + chrono::Duration::seconds(secs),
    };
    tracing::info!(host = %rule.host, kind = ?rule.kind, actor = %rule.actor, "override added");
    Ok(state
        .store
        .add_override(&rule, now.timestamp_millis())
        .await?)
}

/// `POST /api/v1/overrides`.
pub(super) async fn create(
    State(state): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), Refusal> {
    let o: NewOverride = admin_body(&state, req, "override").await?;
    let id = add(&state, o).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// `GET /api/v1/overrides`: the active overrides (readable without the token).
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<OverrideRow>>, ApiError> {
    Ok(Json(
        state
            .store
            .active_overrides(state.clock.now().timestamp_millis())
            .await?,
    ))
}

/// `DELETE /api/v1/overrides/{id}`.
pub(super) async fn clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode, Refusal> {
    let (parts, _body) = req.into_parts();
    admin(&state, &parts)?;
    remove(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears the active override `id` (as given in a path); shared by the JSON API and the config
/// page's form.
pub(super) async fn remove(state: &AppState, id: &str) -> Result<i64, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{id}` is not an override id")))?;
    if state
        .store
        .clear_override(id, state.clock.now().timestamp_millis())
        .await?
    {
        tracing::info!(id, "override cleared");
        Ok(id)
    } else {
        Err(ApiError::NotFound(format!("active override {id}")))
    }
}
