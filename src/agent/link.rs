//! The agent's calls to the service: its assignment (a long poll), its heartbeats and its
//! batches, each one request through [`crate::outbound`] with the agent's bearer token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderName};

use super::wire::{ASSIGNMENT_HEADER, ASSIGNMENT_WAIT, Assignment, Heartbeat, HeartbeatAnswer};
use crate::outbound::{self, Outbound, PostError, Posted};

/// The largest assignment read (a config of thousands of series is a few MiB at most).
const ASSIGNMENT_CAP: usize = 32 * 1024 * 1024;
/// The largest answer to a heartbeat or a batch read.
const ANSWER_CAP: usize = 64 * 1024;
/// How long a heartbeat or a batch upload may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    /// No answer: the service is unreachable, slow, or the exchange broke.
    #[error(transparent)]
    Unreachable(#[from] PostError),
    /// The service answered with a status the call cannot use.
    #[error("the service answered {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// Its `Retry-After`, when given.
        retry_after: Option<Duration>,
        /// The start of its body.
        body: String,
    },
    /// The answer is not what the call expects.
    #[error("the service's answer is not valid: {0}")]
    Answer(String),
}

/// The service as one agent reaches it.
#[derive(Clone)]
pub(super) struct Link {
    base: String,
    id: String,
    token: Arc<str>,
    tls: Arc<rustls::ClientConfig>,
}

impl Link {
    /// The service at `base` (`http(s)://host:port`), for agent `id` with `token`; https is
    /// verified against `roots`.
    pub(super) fn new(
        base: &str,
        id: &str,
        token: &str,
        roots: Arc<rustls::RootCertStore>,
    ) -> Link {
        Link {
            base: base.trim_end_matches('/').to_string(),
            id: id.to_string(),
            token: Arc::from(token),
            tls: outbound::tls(roots),
        }
    }

    fn url(&self, what: &str) -> String {
        format!("{}/api/v1/agents/{}/{what}", self.base, self.id)
    }

    fn auth(&self) -> (HeaderName, String) {
        (header::AUTHORIZATION, format!("Bearer {}", self.token))
    }

    /// The assignment, or `None` when `known` (its version) is still in force after the long poll.
    pub(super) async fn assignment(
        &self,
        known: Option<&str>,
    ) -> Result<Option<Assignment>, LinkError> {
        let mut headers = vec![self.auth()];
        if let Some(v) = known {
            headers.push((header::IF_NONE_MATCH, format!("\"{v}\"")));
        }
        let url = self.url("assignment");
        let request = Outbound {
            method: hyper::Method::GET,
            url: &url,
            headers,
            body: Bytes::new(),
            answer_cap: ASSIGNMENT_CAP,
        };
        let answer = outbound::send(request, &self.tls, ASSIGNMENT_WAIT + CALL_TIMEOUT).await?;
        match answer.status {
            304 => Ok(None),
            200 => serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|e| LinkError::Answer(e.to_string())),
            _ => Err(status(answer)),
        }
    }

    /// Sends a heartbeat.
    pub(super) async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAnswer, LinkError> {
        let body = serde_json::to_vec(hb).expect("a heartbeat serializes");
        let answer = self
            .post(
                "heartbeat",
                body.into(),
                None,
                hb.assignment_version.as_deref(),
            )
            .await?;
        if answer.status != 200 {
            return Err(status(answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| LinkError::Answer(e.to_string()))
    }

    /// Sends a spooled batch (`body`: gzip JSON) made under `assignment`; the answer as given.
    pub(super) async fn batch(
        &self,
        body: Bytes,
        assignment: Option<&str>,
    ) -> Result<Posted, LinkError> {
        Ok(self.post("results", body, Some("gzip"), assignment).await?)
    }

    async fn post(
        &self,
        what: &str,
        body: Bytes,
        encoding: Option<&str>,
        assignment: Option<&str>,
    ) -> Result<Posted, PostError> {
        let mut headers = vec![
            self.auth(),
            (header::CONTENT_TYPE, "application/json".to_string()),
        ];
        if let Some(e) = encoding {
            headers.push((header::CONTENT_ENCODING, e.to_string()));
        }
        if let Some(v) = assignment {
            headers.push((HeaderName::from_static(ASSIGNMENT_HEADER), v.to_string()));
        }
        let url = self.url(what);
        let request = Outbound {
            method: hyper::Method::POST,
            url: &url,
            headers,
            body,
            answer_cap: ANSWER_CAP,
        };
        outbound::send(request, &self.tls, CALL_TIMEOUT).await
    }
}

/// A status the call cannot use, as an error.
pub(super) fn status(answer: Posted) -> LinkError {
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned();
    LinkError::Status {
        status: answer.status,
        retry_after: answer.retry_after,
        body,
    }
}
