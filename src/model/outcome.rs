//! A failed probe's outcome: its class, with the status code for `http_status`; the rule that an
//! HTTP 4xx is not a CDN failure; its stored key and its shown text. Data only.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FailureClass;

/// What a failed probe came to: its class and, for [`FailureClass::HttpStatus`] only, the status
/// code (a 403 and a 502 mean different things to on-call). Kept typed from the probe to the page;
/// spelled only where it is stored ([`Outcome::key`]) or shown (`Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// The failure class.
    pub class: FailureClass,
    /// The status code; `None` for every class but `http_status` (and for an `http_status` whose
    /// code was not kept).
    pub status: Option<u16>,
}

impl Outcome {
    /// The outcome of a failure of `class` with the response's `status`, which is kept only for
    /// `http_status`.
    pub fn new(class: FailureClass, status: Option<u16>) -> Self {
        let status = status.filter(|_| class == FailureClass::HttpStatus);
        Outcome { class, status }
    }

    /// Like [`Outcome::new`] from a stored row's columns; `None` for a class not in the set.
    pub fn from_columns(class: &str, status: Option<i64>) -> Option<Self> {
        let status = status.and_then(|s| u16::try_from(s).ok());
        FailureClass::parse(class).map(|c| Outcome::new(c, status))
    }

    /// The one stored spelling, used in the rollups' `by_class` and on the charts:
    /// `http_status:502`, or the class alone.
    pub fn key(&self) -> String {
        match self.status {
            Some(code) => format!("{}:{code}", self.class.as_str()),
            None => self.class.as_str().to_string(),
        }
    }

    /// Reads [`Outcome::key`] back.
    pub fn parse_key(key: &str) -> Option<Self> {
        match key.split_once(':') {
            Some((class, code)) => Some(Outcome::new(
                FailureClass::parse(class)?,
                Some(code.parse().ok()?),
            )),
            None => FailureClass::parse(key).map(|c| Outcome::new(c, None)),
        }
    }

    /// A failure of the CDN. HTTP 4xx is recorded and shown but is not one: a 403 is usually the
    /// customer's own referer rule, a 404 a missing object.
    pub fn is_cdn_failure(&self) -> bool {
        !(self.class == FailureClass::HttpStatus
            && self.status.is_some_and(|s| (400..500).contains(&s)))
    }
}

/// As people read it: `http_status 502`, or the class alone.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class.as_str())?;
        match self.status {
            Some(code) => write!(f, " {code}"),
            None => Ok(()),
        }
    }
}

/// In the order of [`Outcome::key`]'s text, so maps keyed by outcomes list (and store) them as
/// they were listed when keyed by that text.
impl Ord for Outcome {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.class.as_str(), self.status).cmp(&(other.class.as_str(), other.status))
    }
}

impl PartialOrd for Outcome {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Outcome::parse_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome `{key}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_keeps_its_status_only_for_http_status_and_round_trips_its_key() {
        let o = Outcome::new(FailureClass::HttpStatus, Some(502));
        assert_eq!(
            (o.key(), o.to_string()),
            ("http_status:502".into(), "http_status 502".into())
        );
        assert_eq!(Outcome::parse_key("http_status:502"), Some(o));
        let c = Outcome::new(FailureClass::ContentMismatch, Some(200));
        assert_eq!((c.status, c.key()), (None, "content_mismatch".into()));
        assert_eq!(Outcome::parse_key("content_mismatch"), Some(c));
        assert_eq!(Outcome::parse_key("nonsense"), None);
        let map: std::collections::BTreeMap<Outcome, u64> = [(o, 2), (c, 1)].into();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"content_mismatch":1,"http_status:502":2}"#);
        assert_eq!(
            serde_json::from_str::<std::collections::BTreeMap<Outcome, u64>>(&json).unwrap(),
            map
        );
    }

    #[test]
    fn http_4xx_is_not_a_cdn_failure() {
        assert!(!Outcome::new(FailureClass::HttpStatus, Some(403)).is_cdn_failure());
        assert!(Outcome::new(FailureClass::HttpStatus, Some(502)).is_cdn_failure());
        assert!(Outcome::new(FailureClass::HttpStatus, None).is_cdn_failure());
        assert!(Outcome::new(FailureClass::TcpRefused, Some(404)).is_cdn_failure());
    }
}
