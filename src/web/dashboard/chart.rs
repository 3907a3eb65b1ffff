//! Charts as SVG written on the server: lines (p50/p95 of a phase over time) and stacked bars
//! (failures by class over time), with axes labelled in UTC times and in ms or counts.
//!
//! Hand-written because it is small: a chart is a few polylines or rectangles in a viewBox, styled
//! by classes from cdnwatch.css (no inline style, which the pages' CSP forbids). Every text that
//! goes into the SVG is escaped; numbers are formatted, never passed through.

use std::fmt::{self, Write as _};

use askama::filters::{Html, escape};
use chrono::{DateTime, Utc};

/// A finished chart; only this module makes one, so a page can embed it unescaped.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Svg(String);

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 22.0;
/// Bar colours: classes `c0` … `c7` in cdnwatch.css.
pub(super) const PALETTE: usize = 8;

/// Escapes text for SVG (XML) content and attribute values.
fn esc(text: &str) -> String {
    let Ok(safe) = escape(text, Html);
    safe.0.to_string()
}

/// One line of a line chart: its name in the legend, its CSS class, and its points (a `None`
/// value breaks the line: nothing was measured then).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub name: String,
    pub class: &'static str,
    pub points: Vec<(i64, Option<f64>)>,
}

/// One bar of a stacked bar chart: its start and its stacks as (class index, count).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub start_ms: i64,
    pub stacks: Vec<(usize, u64)>,
}

/// The frame shared by both kinds: time on x from `from_ms` to `to_ms`, values on y from 0 to `max`.
struct Frame {
    from_ms: i64,
    to_ms: i64,
    max: f64,
}

impl Frame {
    fn x(&self, ms: i64) -> f64 {
        let span = (self.to_ms - self.from_ms).max(1) as f64;
        LEFT + (ms - self.from_ms) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - v / self.max * (HEIGHT - TOP - BOTTOM)
    }

    /// The title, the axes, their ticks and labels.
    fn axes(&self, out: &mut String, title: &str, unit: &str) {
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><text class="title" x="{LEFT}" y="14">{t}</text>"#,
            t = esc(title)
        );
        let (x0, x1, y0) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/><line class="axis" x1="{x0}" y1="{TOP}" x2="{x0}" y2="{y0}"/>"#
        );
        for v in y_ticks(self.max) {
            let y = self.y(v);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}"/><text class="ylabel" x="{:.1}" y="{:.1}">{}</text>"#,
                x0 - 4.0,
                y + 4.0,
                esc(format!("{} {unit}", number(v)).trim_end())
            );
        }
        let (step, fmt) = time_step(self.to_ms - self.from_ms);
        let mut t = self.from_ms.div_euclid(step) * step + step;
        while t < self.to_ms {
            let x = self.x(t);
            let label = DateTime::<Utc>::from_timestamp_millis(t)
                .map(|d| d.format(fmt).to_string())
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<line class="tick" x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{:.1}"/><text class="xlabel" x="{x:.1}" y="{:.1}">{}</text>"#,
                y0 + 4.0,
                HEIGHT - 6.0,
                esc(&label)
            );
            t += step;
        }
    }
}

/// A value for an axis label: `0`, `0.25`, `2.5`, `12`, `1.5k`.
fn number(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (an axis maximum that reads well).
pub(super) fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|c| *c >= v * 0.999_999)
        .unwrap_or(10.0 * base)
}

/// Gridlines at a quarter, half, three quarters and the top.
fn y_ticks(max: f64) -> [f64; 4] {
    [0.25, 0.5, 0.75, 1.0].map(|f| f * max)
}

/// The step between time ticks (at most about six on the axis) and the label format for it.
pub(super) fn time_step(span_ms: i64) -> (i64, &'static str) {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    let steps = [
        MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
    ];
    let step = steps
        .into_iter()
        .find(|s| span_ms / s <= 6)
        .unwrap_or(30 * DAY);
    (step, if step >= DAY { "%m-%d" } else { "%H:%M" })
}

/// A line chart of `lines` over `[from_ms, to_ms)`, values in `unit`.
pub(super) fn lines(title: &str, unit: &str, from_ms: i64, to_ms: i64, lines: &[Line]) -> Svg {
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max);
    // A little headroom, so the highest line does not run along the top edge.
    let frame = Frame {
        from_ms,
        to_ms,
        max: nice_ceiling(top * 1.05),
    };
    let mut out = String::with_capacity(4096);
    frame.axes(&mut out, title, unit);
    for (i, line) in lines.iter().enumerate() {
        draw(&mut out, &frame, line);
        // Legends at the right end of the title line, clear of the title.
        let x = WIDTH - RIGHT - 56.0 * (lines.len() - i) as f64;
        let _ = write!(
            out,
            r#"<line class="line {c}" x1="{x}" y1="10" x2="{:.0}" y2="10"/><text class="legend" x="{:.0}" y="14">{}</text>"#,
            x + 14.0,
            x + 18.0,
            esc(&line.name),
            c = esc(line.class)
        );
    }
    if top == 0.0 {
        empty_note(&mut out);
    }
    out.push_str("</svg>");
    Svg(out)
}

/// A line's runs between gaps: polylines, or dots for lone points (nothing to join them to).
fn draw(out: &mut String, frame: &Frame, line: &Line) {
    for run in line
        .points
        .split(|p| p.1.is_none())
        .filter(|r| !r.is_empty())
    {
        let pts: Vec<(f64, f64)> = run
            .iter()
            .filter_map(|(t, v)| v.map(|v| (frame.x(*t), frame.y(v))))
            .collect();
        if let [(x, y)] = pts.as_slice() {
            let _ = write!(
                out,
                r#"<circle class="dot {}" cx="{x:.1}" cy="{y:.1}" r="2"/>"#,
                esc(line.class)
            );
            continue;
        }
        let text: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            out,
            r#"<polyline class="line {}" points="{}"/>"#,
            esc(line.class),
            text.join(" ")
        );
    }
}

fn empty_note(out: &mut String) {
    let _ = write!(
        out,
        r#"<text class="empty" x="{:.0}" y="{:.0}">nothing in this window</text>"#,
        (LEFT + WIDTH) / 2.0,
        HEIGHT / 2.0
    );
}

/// A stacked bar chart of failures: one bar per `bucket_ms` starting at each bar's start, a
/// stack per class (its index into `classes`, which the legend lists).
pub(super) fn stacked_bars(
    title: &str,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
    bars: &[Bar],
    classes: &[String],
) -> Svg {
    let top = bars
        .iter()
        .map(|b| b.stacks.iter().map(|s| s.1).sum::<u64>())
        .max()
        .unwrap_or(0);
    let frame = Frame {
        from_ms,
        to_ms,
        max: nice_ceiling(top as f64),
    };
    let mut out = String::with_capacity(4096);
    frame.axes(&mut out, title, "");
    for bar in bars {
        let x = frame.x(bar.start_ms);
        let w = (frame.x(bar.start_ms + bucket_ms) - x - 0.5).max(0.5);
        let mut base = 0u64;
        for &(class, n) in bar.stacks.iter().filter(|s| s.1 > 0) {
            let (y_top, y_bottom) = (frame.y((base + n) as f64), frame.y(base as f64));
            let name = classes.get(class).map_or("?", String::as_str);
            let when = DateTime::<Utc>::from_timestamp_millis(bar.start_ms)
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<rect class="bar c{}" x="{x:.1}" y="{y_top:.1}" width="{w:.1}" height="{:.1}"><title>{} UTC: {} ×{n}</title></rect>"#,
                class % PALETTE,
                y_bottom - y_top,
                esc(&when),
                esc(name)
            );
            base += n;
        }
    }
    // The legend follows the title, each entry as wide as its name.
    let mut x = LEFT + 130.0;
    for (i, name) in classes.iter().enumerate() {
        let _ = write!(
            out,
            r#"<rect class="bar c{}" x="{x:.0}" y="5" width="10" height="10"/><text class="legend" x="{:.0}" y="14">{}</text>"#,
            i % PALETTE,
            x + 14.0,
            esc(name)
        );
        x += 24.0 + 6.2 * name.chars().count() as f64;
    }
    if top == 0 {
        empty_note(&mut out);
    }
    out.push_str("</svg>");
    Svg(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000; // 2027-01-15 08:00 UTC
    const MIN: i64 = 60_000;

    fn p95() -> Line {
        Line {
            name: "p95".into(),
            class: "p95",
            points: vec![
                (T0, Some(2.0)),
                (T0 + MIN, Some(4.0)),
                (T0 + 2 * MIN, None),
                (T0 + 3 * MIN, Some(3.0)),
                (T0 + 4 * MIN, Some(3.5)),
            ],
        }
    }

    #[test]
    fn a_gap_in_the_data_breaks_the_line_in_two() {
        let s = lines("first byte", "ms", T0, T0 + 5 * MIN, &[p95()]).0;
        assert_eq!(s.matches(r#"<polyline class="line p95""#).count(), 2, "{s}");
        let lone = Line {
            points: vec![(T0, Some(1.0)), (T0 + MIN, None), (T0 + 2 * MIN, Some(2.0))],
            ..p95()
        };
        let s = lines("dns", "ms", T0, T0 + 3 * MIN, &[lone]).0;
        assert_eq!(
            s.matches(r#"<circle class="dot p95""#).count(),
            2,
            "lone points are dots: {s}"
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }

    #[test]
    fn the_axes_read_in_ms_up_to_a_round_maximum_and_in_utc_times() {
        let s = lines("first byte", "ms", T0, T0 + 5 * MIN, &[p95()]).0;
        assert!(
            s.contains(">5 ms</text>"),
            "4 ms rounds up to a 5 ms top: {s}"
        );
        assert!(
            s.contains(">08:01</text>") && s.contains(">08:04</text>"),
            "{s}"
        );
        // The highest point sits at 4/5 of the plot height.
        let y = HEIGHT - BOTTOM - 0.8 * (HEIGHT - TOP - BOTTOM);
        assert!(s.contains(&format!(",{y:.1}")), "{s}");
    }

    #[test]
    fn text_in_a_chart_is_escaped() {
        let evil = Line {
            name: "<script>alert(1)</script>".into(),
            class: "p50",
            points: vec![(T0, Some(1.0))],
        };
        let s = lines("a & b \"quoted\"", "ms", T0, T0 + MIN, &[evil]).0;
        assert!(!s.contains("<script>"), "{s}");
        assert!(
            s.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{s}"
        );
        assert!(s.contains("a &#38; b &#34;quoted&#34;"), "{s}");
    }

    #[test]
    fn stacked_bars_pile_classes_up_and_the_legend_names_them() {
        let classes = vec!["http_status:502".to_string(), "tcp_refused".to_string()];
        let bars = [
            Bar {
                start_ms: T0,
                stacks: vec![(0, 6), (1, 2)],
            },
            Bar {
                start_ms: T0 + 10 * MIN,
                stacks: vec![(1, 1)],
            },
        ];
        let s = stacked_bars("failures", T0, T0 + 60 * MIN, 10 * MIN, &bars, &classes).0;
        assert_eq!(
            s.matches(r#"<rect class="bar c0" x="58.0""#).count(),
            1,
            "{s}"
        );
        assert_eq!(
            s.matches(r#"<rect class="bar c0""#).count(),
            2,
            "a stack and the legend"
        );
        assert_eq!(
            s.matches("<rect class=\"bar c1\"").count(),
            3,
            "two stacks and the legend"
        );
        assert!(
            s.contains(">2027-01-15 08:00 UTC: http_status:502 ×6</title>"),
            "{s}"
        );
        assert!(s.contains(">tcp_refused</text>"));
        assert!(
            s.contains(">10</text>"),
            "8 failures round up to a top of 10: {s}"
        );
    }

    #[test]
    fn an_empty_window_says_so() {
        let s = stacked_bars("failures", T0, T0 + MIN, MIN, &[], &[]).0;
        assert!(s.contains("nothing in this window"));
    }

    #[test]
    fn axis_maxima_and_time_steps_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(20.0), "20");
        assert_eq!(number(1500.0), "1.5k");
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(time_step(60 * MIN), (10 * MIN, "%H:%M"));
        assert_eq!(time_step(6 * 60 * MIN), (60 * MIN, "%H:%M"));
        assert_eq!(time_step(30 * 24 * 60 * MIN).1, "%m-%d");
    }
}
