//! The query parameters of the pages: unknown ones refused, times read in the forms people type.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::PageError;

/// Refuses a parameter not in `known`, naming it and the ones that are.
pub(super) fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), PageError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(PageError::bad(
            k,
            format!("unknown parameter (expected {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A non-empty parameter (a form sends empty fields for what was left blank).
pub(super) fn given<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

const TIME_FORMS: &str = "use 2026-11-24T03:00:00Z, 2026-11-24 03:00 (UTC), 2026-11-24, or 90m / 3h / 2d for that long ago";

/// A time as people type it, in Unix ms: RFC 3339 (`2026-11-24T03:00:00Z`), a UTC date and time
/// (`2026-11-24 03:00`, `2026-11-24T03:00`, with or without seconds, as a datetime-local field
/// sends it), a UTC date (midnight), or a span back from `now` (`90m`, `3h`, `2d`, `45s`).
pub(super) fn parse_time(name: &str, value: &str, now: DateTime<Utc>) -> Result<i64, PageError> {
    let v = value.trim();
    let bad = || PageError::bad(name, format!("`{v}` is not a time ({TIME_FORMS})"));
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp_millis());
    }
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms)
        .filter(|ago| *ago <= 400 * 86_400_000)
        .map(|ago| now.timestamp_millis() - ago)
        .ok_or_else(|| PageError::bad(name, format!("`{v}` is more than 400 days ago")))
}

/// A window `[since, until)` from the `since` and `until` parameters, `default_span_ms` before
/// `until` when `since` is not given, `until` now when not given.
pub(super) fn window(
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
    default_span_ms: i64,
) -> Result<(i64, i64), PageError> {
    let until = match given(params, "until") {
        Some(v) => parse_time("until", v, now)?,
        None => now.timestamp_millis(),
    };
    let since = match given(params, "since") {
        Some(v) => parse_time("since", v, now)?,
        None => until - default_span_ms,
    };
    if since >= until {
        return Err(PageError::bad(
            "until",
            "must be later than `since` (the window would be empty)",
        ));
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000).unwrap() // 2027-01-15 08:00 UTC
    }

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn times_are_read_in_every_form_a_person_or_a_form_sends() {
        let cases = [
            ("2027-01-15T03:12:00Z", at("2027-01-15T03:12:00Z")),
            ("2027-01-15T04:12:00+01:00", at("2027-01-15T03:12:00Z")),
            ("2027-01-15 03:12", at("2027-01-15T03:12:00Z")),
            ("2027-01-15T03:12", at("2027-01-15T03:12:00Z")),
            ("2027-01-15 03:12:30", at("2027-01-15T03:12:30Z")),
            ("2027-01-15", at("2027-01-15T00:00:00Z")),
            ("3h", at("2027-01-15T05:00:00Z")),
            ("90m", at("2027-01-15T06:30:00Z")),
            (" 2d ", at("2027-01-13T08:00:00Z")),
        ];
        for (text, want) in cases {
            assert_eq!(parse_time("since", text, now()).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn a_bad_time_is_refused_naming_the_parameter_and_the_forms() {
        for text in ["yesterday", "3x", "h", "2027-13-01", "99999999999d"] {
            let e = parse_time("until", text, now()).unwrap_err().to_string();
            assert!(e.starts_with("parameter `until`: "), "{e}");
        }
        let e = parse_time("since", "soon", now()).unwrap_err().to_string();
        assert!(e.contains("2026-11-24 03:00 (UTC)"), "{e}");
    }

    #[test]
    fn a_window_defaults_to_a_span_before_now_and_refuses_to_run_backwards() {
        let p = HashMap::new();
        let (s, u) = window(&p, now(), 3_600_000).unwrap();
        assert_eq!((s, u), (1_800_000_000_000 - 3_600_000, 1_800_000_000_000));
        let p: HashMap<String, String> = [("since", "1h"), ("until", "2h")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let e = window(&p, now(), 1).unwrap_err().to_string();
        assert!(e.starts_with("parameter `until`"), "{e}");
        let p: HashMap<String, String> = [("since", ""), ("until", " ")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert!(
            window(&p, now(), 5).is_ok(),
            "blank fields count as not given"
        );
    }

    #[test]
    fn an_unknown_parameter_is_named() {
        let p: HashMap<String, String> = [("hots", "x")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let e = only(&p, &["host", "since"]).unwrap_err().to_string();
        assert_eq!(
            e,
            "parameter `hots`: unknown parameter (expected host, since)"
        );
    }
}
