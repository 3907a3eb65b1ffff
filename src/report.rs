//! Renders probe results for a terminal: the table an on-call engineer reads at a glance, and JSON lines.
//!
//! Pure formatting: rows in, text out. It never probes and never reads the clock itself.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::model::{EdgeResult, Phase, PhaseTime};

const HEADER: [&str; 12] = [
    "REGION", "RESOLVER", "EDGE", "DNS ms", "CONN ms", "TLS ms", "TTFB ms", "XFER ms", "TOTAL ms",
    "STATUS", "CERT d", "RESULT",
];
/// Columns 3..=10 hold numbers and are right-aligned.
const NUMERIC: std::ops::RangeInclusive<usize> = 3..=10;

/// One table per (host, path), one row per (region, resolver, edge IP). `now` dates the certificate
/// expiry column (days left).
pub fn table(rows: &[EdgeResult], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut start = 0;
    while start < rows.len() {
        let (host, path) = (&rows[start].host, &rows[start].path);
        let end = rows[start..]
            .iter()
            .position(|r| &r.host != host || &r.path != path)
            .map_or(rows.len(), |n| start + n);
        let group = &rows[start..end];
        let failed = group.iter().filter(|r| !r.ok()).count();
        let verdict = if failed == 0 {
            "all ok".to_string()
        } else {
            format!("{failed} of {} FAILED", group.len())
        };
        let _ = writeln!(out, "{host}{path}  ({verdict})");
        let cells: Vec<[String; 12]> = group.iter().map(|r| cells(r, now)).collect();
        write_aligned(&mut out, &cells);
        out.push('\n');
        start = end;
    }
    out
}

/// A figure as the table shows it: `-` when not reached, `≥400.2 (timeout)` when a timeout ended it
/// (it would have taken at least that long).
fn ms(t: Option<PhaseTime>) -> String {
    match t {
        None => "-".to_string(),
        Some(PhaseTime::Measured { ms }) => format!("{ms:.1}"),
        Some(PhaseTime::TimedOut { ms }) => format!("≥{ms:.1} (timeout)"),
    }
}

fn cells(r: &EdgeResult, now: DateTime<Utc>) -> [String; 12] {
    let result = r
        .outcome()
        .map_or_else(|| "ok".to_string(), |o| o.to_string());
    [
        r.region.clone(),
        r.resolver.clone(),
        r.edge_ip
            .map_or_else(|| "-".to_string(), |ip| ip.to_string()),
        ms(r.phase_time(Phase::Resolve)),
        ms(r.phase_time(Phase::Connect)),
        ms(r.phase_time(Phase::Tls)),
        ms(r.phase_time(Phase::Processing)),
        ms(r.phase_time(Phase::Transfer)),
        ms(r.total_time()),
        r.status.map_or_else(|| "-".to_string(), |s| s.to_string()),
        r.cert
            .as_ref()
            .map_or_else(|| "-".to_string(), |c| c.days_left(now).to_string()),
        result,
    ]
}

fn write_aligned(out: &mut String, rows: &[[String; 12]]) {
    let mut width: [usize; 12] = HEADER.map(str::len);
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, row: &[&str]| {
        out.push_str("  ");
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.chars().count());
            if NUMERIC.contains(&i) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(out, &HEADER);
    for row in rows {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &refs);
    }
}

/// One JSON object per line, in the order given.
pub fn json_lines(rows: &[EdgeResult]) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&serde_json::to_string(r).expect("results serialize"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CertInfo, Failure, FailureClass};

    fn row(region: &str, failure: Option<Failure>, status: Option<u16>) -> EdgeResult {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        EdgeResult {
            at: now,
            host: "cdn.shop.test".into(),
            path: "/image/probe.jpg".into(),
            region: region.into(),
            resolver: "isp".into(),
            edge_ip: Some("127.21.1.1".parse().unwrap()),
            dns_ms: Some(0.42),
            connect_ms: Some(0.2),
            tls_ms: Some(1.04),
            first_byte_ms: Some(0.6),
            transfer_ms: Some(0.1),
            total_ms: Some(2.36),
            status,
            body_bytes: 4096,
            cert: Some(CertInfo {
                not_after: "2026-01-31T00:00:00Z".parse().unwrap(),
                not_before: "2025-01-01T00:00:00Z".parse().unwrap(),
                issuer: "CN=lab".into(),
                subject: "CN=cdn.shop.test".into(),
                verified: true,
            }),
            failure,
        }
    }

    #[test]
    fn the_table_shows_phases_cert_days_and_the_failure_class_with_its_code() {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let bad = Failure::new(
            FailureClass::HttpStatus,
            Phase::Processing,
            "502 not accepted",
        );
        let rows = [
            row("cn-east", None, Some(200)),
            row("cn-north", Some(bad), Some(502)),
        ];
        let t = table(&rows, now);
        assert!(
            t.starts_with("cdn.shop.test/image/probe.jpg  (1 of 2 FAILED)\n"),
            "{t}"
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].contains("REGION") && lines[1].contains("CERT d"));
        assert!(
            lines[2].contains("cn-east") && lines[2].contains("  30  ok"),
            "{}",
            lines[2]
        );
        assert!(lines[3].ends_with("http_status 502"), "{}", lines[3]);
        assert!(
            lines[2].contains("1.0"),
            "tls ms rounded to 0.1: {}",
            lines[2]
        );
    }

    #[test]
    fn a_timed_out_phase_shows_the_time_it_waited_marked_as_a_timeout() {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let slow = Failure::new(
            FailureClass::HttpTimeout,
            Phase::Processing,
            "no response head within 400 ms",
        );
        let mut r = row("cn-east", Some(slow), None);
        (r.first_byte_ms, r.transfer_ms, r.total_ms) = (Some(400.3), None, Some(402.0));
        let refused = Failure::new(FailureClass::TcpRefused, Phase::Connect, "refused");
        let mut fast = row("cn-north", Some(refused), None);
        (fast.connect_ms, fast.tls_ms, fast.first_byte_ms) = (None, None, None);
        (fast.transfer_ms, fast.total_ms) = (None, Some(0.4));
        let t = table(&[r, fast], now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].contains(" ≥400.3 (timeout) "), "{}", lines[2]);
        assert!(lines[2].contains(" ≥402.0 "), "the total too: {}", lines[2]);
        assert!(lines[2].contains(" 1.0 "), "tls was measured: {}", lines[2]);
        assert!(!lines[3].contains("timeout"), "{}", lines[3]);
        assert!(lines[3].contains(" 0.4 "), "{}", lines[3]);
    }

    #[test]
    fn json_lines_are_one_object_per_result() {
        let rows = [
            row("cn-east", None, Some(200)),
            row("cn-south", None, Some(200)),
        ];
        let out = json_lines(&rows);
        let parsed: Vec<EdgeResult> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed, rows);
    }
}
