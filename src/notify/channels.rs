//! What each receiver gets and how its answer reads: the request a [`Batch`] of notices makes for
//! a [`Target`] (DingTalk and WeCom markdown, a Feishu post, Slack blocks, Alertmanager's webhook
//! payload version 4), signed where the robot signs, fitted to its size limit; the [`Answer`] a
//! status and body mean (delivered, retry later, refused for good); and each robot's published
//! [`rate`]. Pure: no I/O, no clock reads (`now` is given) — the dispatcher sends. Nothing of a
//! URL or secret is in a `Debug` or an answer's reason.
//!
//! Layout: `text` the words, in English and Chinese; `fit` the size limits; `sign` the
//! signatures; one file per receiver kind.

mod dingtalk;
mod feishu;
mod fit;
mod sign;
mod slack;
mod text;
mod webhook;
mod wecom;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{ChannelKind, Language};

use super::Notice;

pub use sign::hmac_sha256;
pub use webhook::{annotations, fingerprint, labels};

/// Where one channel's messages go.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is.
    pub kind: ChannelKind,
    /// Its URL (a credential: DingTalk's `access_token`, WeCom's `key`, Slack's path).
    pub url: String,
    /// Its signing secret (DingTalk, Feishu), if signed.
    pub secret: Option<String>,
}

/// Shows the kind only: the URL and the secret are credentials.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("url", &"<redacted>")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The notices of one message.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The notices listed, in order.
    pub notices: &'a [Notice],
    /// Notices beyond these, not listed (a storm's overflow): the message ends "… (+N more)".
    pub folded: usize,
}

/// One HTTP POST to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where (the target's URL, with DingTalk's `timestamp` and `sign` added when signed). A
    /// credential: never log it.
    pub url: String,
    /// The body's `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// What a receiver's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It took the message.
    Delivered,
    /// Try again (429, 5xx, the robot's throttle code), not before `after` when it says.
    Retry {
        /// How long the receiver asked to wait, if it said.
        after: Option<Duration>,
        /// What it answered.
        why: String,
    },
    /// It will never take this message (bad signature, bad token, bad request): give it up.
    Refused {
        /// What it answered.
        why: String,
    },
}

impl Answer {
    /// A retry with the wait of an HTTP `Retry-After` header (seconds), when the answer gave
    /// one; anything else unchanged.
    pub fn with_retry_after(self, header: Option<&str>) -> Answer {
        let secs = header.and_then(|h| h.trim().parse::<u64>().ok());
        match (self, secs) {
            (Answer::Retry { why, .. }, Some(s)) => Answer::Retry {
                after: Some(Duration::from_secs(s)),
                why,
            },
            (other, _) => other,
        }
    }
}

/// A receiver's published rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Messages in any sliding minute.
    pub per_minute: u32,
    /// Messages in any second, when it limits that too.
    pub per_second: Option<u32>,
}

/// The limit each kind publishes: DingTalk 20/min (then throttled for 10 minutes), WeCom 20/min,
/// Feishu 100/min and 5/s, Slack about 1/s; a webhook and Alertmanager are ours to size.
pub fn rate(kind: ChannelKind) -> Rate {
    let (per_minute, per_second) = match kind {
        ChannelKind::Dingtalk | ChannelKind::Wecom => (20, None),
        ChannelKind::Feishu => (100, Some(5)),
        ChannelKind::Slack => (60, Some(1)),
        ChannelKind::Webhook | ChannelKind::Alertmanager => (600, None),
    };
    Rate {
        per_minute,
        per_second,
    }
}

/// The request `batch` makes for `target`, in `language`, signed at `now`. For
/// [`ChannelKind::Alertmanager`] it is the webhook form (the v2 push is the dispatcher's own).
pub fn request(
    target: &Target,
    batch: &Batch<'_>,
    language: Language,
    now: DateTime<Utc>,
) -> Outgoing {
    let secret = target.secret.as_deref();
    let (url, body) = match target.kind {
        ChannelKind::Dingtalk => dingtalk::request(&target.url, secret, batch, language, now),
        ChannelKind::Feishu => feishu::request(&target.url, secret, batch, language, now),
        ChannelKind::Wecom => (target.url.clone(), wecom::body(batch, language)),
        ChannelKind::Slack => (target.url.clone(), slack::body(batch, language)),
        ChannelKind::Webhook | ChannelKind::Alertmanager => {
            (target.url.clone(), webhook::body(batch, language))
        }
    };
    Outgoing {
        url,
        content_type: "application/json; charset=utf-8",
        body: body.to_string().into_bytes(),
    }
}

/// What `status` and `body` from a `kind` receiver mean.
pub fn answer(kind: ChannelKind, status: u16, body: &[u8]) -> Answer {
    if status == 429 || status == 408 || status >= 500 {
        return Answer::Retry {
            after: None,
            why: format!("HTTP {status}: {}", excerpt(body)),
        };
    }
    match kind {
        ChannelKind::Dingtalk => dingtalk::answer(status, body),
        ChannelKind::Feishu => feishu::answer(status, body),
        ChannelKind::Wecom => wecom::answer(status, body),
        ChannelKind::Slack => slack::answer(status, body),
        ChannelKind::Webhook | ChannelKind::Alertmanager => webhook::answer(status, body),
    }
}

/// The start of a receiver's answer, for a reason (it never holds our credentials).
fn excerpt(body: &[u8]) -> String {
    fit::cut(String::from_utf8_lossy(body).trim(), 200)
}

/// The robots' JSON answer `{"<code_key>": n, "<msg_key>": "…"}`: delivered on 0, retried on a
/// throttle code (waiting `throttle_wait`), refused otherwise.
fn coded_answer(
    status: u16,
    body: &[u8],
    codes: &[&str],
    throttles: &[i64],
    throttle_wait: Duration,
) -> Answer {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = codes.iter().find_map(|k| json.get(*k)?.as_i64());
    let why = format!("HTTP {status}: {}", excerpt(body));
    match code {
        Some(0) if (200..300).contains(&status) => Answer::Delivered,
        Some(c) if throttles.contains(&c) => Answer::Retry {
            after: Some(throttle_wait),
            why,
        },
        _ => Answer::Refused { why },
    }
}

/// Each notice's lines in `language`, as a receiver renders a line.
fn blocks(
    batch: &Batch<'_>,
    language: Language,
    render: impl Fn(&text::Line) -> String,
) -> Vec<Vec<String>> {
    batch
        .notices
        .iter()
        .map(|n| text::lines(n, language).iter().map(&render).collect())
        .collect()
}

/// A message's title: the one notice's first line, or how many for several.
fn title(batch: &Batch<'_>, language: Language) -> String {
    match batch.notices {
        [one] if batch.folded == 0 => text::headline(one, language),
        notices => text::batch_title(notices, batch.folded, language),
    }
}

#[cfg(test)]
mod tests;
