//! A DNS response code, typed, spelled as the probe always wrote it. Data only.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A DNS response code (RFC 1035 and the IANA registry). Spelled as hickory's `Debug` spells its
/// `ResponseCode` (`NoError`, `ServFail`, `NXDomain`, `Unknown(3841)` …), the text the probe
/// always wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rcode {
    /// No error.
    #[default]
    NoError,
    /// Format error: the server could not read the query.
    FormErr,
    /// Server failure.
    ServFail,
    /// The name does not exist.
    NXDomain,
    /// The server does not implement the query.
    NotImp,
    /// The server refused to answer.
    Refused,
    /// Any other code, by its number.
    Other(u16),
}

/// The registered names of the codes past `Refused`.
const RCODE_NAMES: [(u16, &str); 13] = [
    (6, "YXDomain"),
    (7, "YXRRSet"),
    (8, "NXRRSet"),
    (9, "NotAuth"),
    (10, "NotZone"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

impl Rcode {
    const NAMED: [Rcode; 6] = [
        Rcode::NoError,
        Rcode::FormErr,
        Rcode::ServFail,
        Rcode::NXDomain,
        Rcode::NotImp,
        Rcode::Refused,
    ];

    /// The code's number.
    pub fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NXDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(n) => n,
        }
    }

    /// The one spelling.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        match self {
            Rcode::NoError => "NoError".into(),
            Rcode::FormErr => "FormErr".into(),
            Rcode::ServFail => "ServFail".into(),
            Rcode::NXDomain => "NXDomain".into(),
            Rcode::NotImp => "NotImp".into(),
            Rcode::Refused => "Refused".into(),
            Rcode::Other(n) => match RCODE_NAMES.iter().find(|(c, _)| *c == n) {
                Some((_, name)) => (*name).into(),
                None => format!("Unknown({n})").into(),
            },
        }
    }

    /// Reads [`Rcode::as_str`] back.
    pub fn parse(s: &str) -> Option<Rcode> {
        if let Some(named) = Rcode::NAMED.into_iter().find(|r| r.as_str() == s) {
            return Some(named);
        }
        if let Some((n, _)) = RCODE_NAMES.iter().find(|(_, name)| *name == s) {
            return Some(Rcode::Other(*n));
        }
        let n: u16 = s
            .strip_prefix("Unknown(")?
            .strip_suffix(')')?
            .parse()
            .ok()?;
        Some(Rcode::from(n))
    }
}

impl From<u16> for Rcode {
    fn from(n: u16) -> Rcode {
        Rcode::NAMED
            .into_iter()
            .find(|r| r.code() == n)
            .unwrap_or(Rcode::Other(n))
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for Rcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Rcode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Rcode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rcode `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rcode_is_spelled_as_hickory_debug_prints_it_and_read_back() {
        for (code, text) in [
            (0, "NoError"),
            (2, "ServFail"),
            (3, "NXDomain"),
            (5, "Refused"),
            (4, "NotImp"),
            (9, "NotAuth"),
            (23, "BADCOOKIE"),
            (3841, "Unknown(3841)"),
        ] {
            let r = Rcode::from(code);
            assert_eq!((r.code(), r.to_string().as_str()), (code, text));
            assert_eq!(Rcode::parse(text), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(Rcode::from(3), Rcode::NXDomain);
    }
}
