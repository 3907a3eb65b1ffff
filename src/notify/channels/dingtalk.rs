//! A DingTalk group robot: a `markdown` message (`title`, `text` ≤ 20,000 bytes), signed when the
//! robot has a secret (`timestamp` in ms and `sign` as query parameters); it answers HTTP 200
//! with `errcode` 0, 130101 when sent too fast (20 a minute, then throttled for 10 minutes),
//! 310000 on a bad signature or keyword.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::text::{self, Line};
use super::{Answer, Batch, blocks, coded_answer, fit, sign, title};
use crate::config::Language;

/// The `text` limit, in bytes.
pub(super) const TEXT_LIMIT: usize = 20_000;
/// DingTalk's throttle code.
pub(super) const THROTTLED: i64 = 130_101;
/// How long DingTalk throttles a robot that sent too fast.
const THROTTLE_WAIT: Duration = Duration::from_secs(600);

/// The URL (signed when `secret` is given) and the body.
pub(super) fn request(
    url: &str,
    secret: Option<&str>,
    batch: &Batch<'_>,
    language: Language,
    now: DateTime<Utc>,
) -> (String, Value) {
    let url = match secret {
        Some(secret) => {
            let ts = now.timestamp_millis();
            let sign = sign::query_escape(&sign::dingtalk(ts, secret));
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}timestamp={ts}&sign={sign}")
        }
        None => url.to_string(),
    };
    let lines = blocks(batch, language, render);
    let more = |n| text::more(n, language);
    let kept = fit::fit(lines, batch.folded, TEXT_LIMIT, 2, more);
    let text: Vec<String> = kept.into_iter().flatten().collect();
    let body = json!({
        "msgtype": "markdown",
        "markdown": { "title": fit::cut(&title(batch, language), 200), "text": text.join("\n\n") },
    });
    (url, body)
}

fn render(line: &Line) -> String {
    match line {
        Line::Head(h) => format!("#### {h}"),
        Line::Field(label, value) => format!("**{label}**: {value}"),
        Line::Link(label, url) => format!("[{label}]({url})"),
    }
}

/// What DingTalk's answer means.
pub(super) fn answer(status: u16, body: &[u8]) -> Answer {
    coded_answer(status, body, &["errcode"], &[THROTTLED], THROTTLE_WAIT)
}
