//! A Feishu/Lark custom bot: a `post` message (title and paragraphs in `zh_cn` or `en_us`; the
//! request ≤ 20 KB), signed when the bot has a secret (`timestamp` in seconds and `sign` in the
//! body, Feishu's own construction); it answers HTTP 200 with `code` 0 (older: `StatusCode` 0),
//! 9499 or 11232 when throttled (100 a minute, 5 a second), 19021 on a bad signature.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::text::{self, Line};
use super::{Answer, Batch, blocks, coded_answer, fit, sign, title};
use crate::config::Language;

/// The request's limit, in bytes.
pub(super) const BODY_LIMIT: usize = 20 * 1024;
/// What the paragraphs may take of it (the rest is the envelope, title and signature).
const CONTENT_LIMIT: usize = BODY_LIMIT - 1_500;
/// Feishu's throttle codes.
pub(super) const THROTTLED: [i64; 2] = [9_499, 11_232];
/// A short wait: the limits are per second and per minute.
const THROTTLE_WAIT: Duration = Duration::from_secs(10);

/// The URL and the body (signed in the body when `secret` is given).
pub(super) fn request(
    url: &str,
    secret: Option<&str>,
    batch: &Batch<'_>,
    language: Language,
    now: DateTime<Utc>,
) -> (String, Value) {
    // Each paragraph is measured as the JSON it becomes; a comma joins them.
    let paragraphs = blocks(batch, language, |l| render(l).to_string());
    let more = |n| json!([{ "tag": "text", "text": text::more(n, language) }]).to_string();
    let kept = fit::fit(paragraphs, batch.folded, CONTENT_LIMIT, 1, more);
    let content: Vec<Value> = kept
        .into_iter()
        .flatten()
        .map(|p| serde_json::from_str(&p).unwrap_or_else(|_| json!([{"tag": "text", "text": "…"}])))
        .collect();
    let lang = match language {
        Language::En => "en_us",
        Language::ZhCn => "zh_cn",
    };
    let title = fit::cut(&title(batch, language), 200);
    let mut body = json!({
        "msg_type": "post",
        "content": { "post": { lang: { "title": title, "content": content } } },
    });
    if let Some(secret) = secret {
        let ts = now.timestamp();
        body["timestamp"] = Value::String(ts.to_string());
        body["sign"] = Value::String(sign::feishu(ts, secret));
    }
    (url.to_string(), body)
}

/// A line as a paragraph: a list of elements.
fn render(line: &Line) -> Value {
    match line {
        Line::Head(h) => json!([{ "tag": "text", "text": h }]),
        Line::Field(label, value) => {
            json!([{ "tag": "text", "text": format!("{label}: {value}") }])
        }
        Line::Link(label, url) => json!([{ "tag": "a", "text": label, "href": url }]),
    }
}

/// What Feishu's answer means.
pub(super) fn answer(status: u16, body: &[u8]) -> Answer {
    coded_answer(
        status,
        body,
        &["code", "StatusCode"],
        &THROTTLED,
        THROTTLE_WAIT,
    )
}
