//! A WeCom (企业微信) group robot: a `markdown` message (`content` ≤ 4,096 bytes; the URL's `key`
//! is the credential); it answers HTTP 200 with `errcode` 0, 45009 past 20 messages a minute.

use std::time::Duration;

use serde_json::{Value, json};

use super::text::{self, Line};
use super::{Answer, Batch, blocks, coded_answer, fit};
use crate::config::Language;

/// The markdown `content` limit, in bytes.
pub(super) const CONTENT_LIMIT: usize = 4_096;
/// WeCom's throttle code ("api freq out of limit").
pub(super) const THROTTLED: i64 = 45_009;
/// WeCom counts a sliding minute.
const THROTTLE_WAIT: Duration = Duration::from_secs(60);

/// The body.
pub(super) fn body(batch: &Batch<'_>, language: Language) -> Value {
    let lines = blocks(batch, language, render);
    let more = |n| text::more(n, language);
    let kept = fit::fit(lines, batch.folded, CONTENT_LIMIT, 1, more);
    let content: Vec<String> = kept.into_iter().flatten().collect();
    json!({ "msgtype": "markdown", "markdown": { "content": content.join("\n") } })
}

fn render(line: &Line) -> String {
    match line {
        Line::Head(h) => format!("**{h}**"),
        Line::Field(label, value) => format!("> {label}: {value}"),
        Line::Link(label, url) => format!("[{label}]({url})"),
    }
}

/// What WeCom's answer means.
pub(super) fn answer(status: u16, body: &[u8]) -> Answer {
    coded_answer(status, body, &["errcode"], &[THROTTLED], THROTTLE_WAIT)
}
