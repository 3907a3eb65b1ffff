//! A Slack incoming webhook: `text` (≤ 40,000 characters, what notifications show) and `blocks`
//! (a section per notice, ≤ 3,000 characters each, at most 50 blocks) in mrkdwn, with `&`, `<`
//! and `>` escaped; it answers `ok` with 200, 429 with `Retry-After` past about one a second,
//! 4xx with a reason (`invalid_payload`, `no_service` …) that retrying will not change.

use serde_json::{Value, json};

use super::text::{self, Line};
use super::{Answer, Batch, blocks, excerpt, fit};
use crate::config::Language;

/// The `text` limit (characters; met in bytes).
pub(super) const TEXT_LIMIT: usize = 40_000;
/// A section's text limit.
const SECTION_LIMIT: usize = 3_000;
/// Sections before the closing one (Slack takes 50 blocks).
const SECTIONS: usize = 48;

/// The body.
pub(super) fn body(batch: &Batch<'_>, language: Language) -> Value {
    let lines = blocks(batch, language, render);
    let more = |n| text::more(n, language);
    let text: Vec<String> = fit::fit(lines.clone(), batch.folded, TEXT_LIMIT, 1, more)
        .into_iter()
        .flatten()
        .collect();
    let shown = lines.len().min(SECTIONS);
    let left_out = lines.len() - shown + batch.folded;
    let mut sections: Vec<Value> = lines
        .into_iter()
        .take(shown)
        .map(|block| {
            let kept: Vec<String> = fit::fit(vec![block], 0, SECTION_LIMIT, 1, more)
                .into_iter()
                .flatten()
                .collect();
            json!({ "type": "section", "text": { "type": "mrkdwn", "text": kept.join("\n") } })
        })
        .collect();
    if left_out > 0 {
        let closing = json!({ "type": "mrkdwn", "text": more(left_out) });
        sections.push(json!({ "type": "context", "elements": [closing] }));
    }
    json!({ "text": text.join("\n"), "blocks": sections })
}

/// Slack's three control characters in text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn render(line: &Line) -> String {
    match line {
        Line::Head(h) => format!("*{}*", escape(h)),
        Line::Field(label, value) => format!("*{label}:* {}", escape(value)),
        Line::Link(label, url) => format!("<{}|{label}>", escape(url)),
    }
}

/// What Slack's answer means (429 and 5xx are retried before this).
pub(super) fn answer(status: u16, body: &[u8]) -> Answer {
    if (200..300).contains(&status) {
        Answer::Delivered
    } else {
        Answer::Refused {
            why: format!("HTTP {status}: {}", excerpt(body)),
        }
    }
}
