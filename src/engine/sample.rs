//! One failed result of a round as the engine keeps it: a [`Sample`], whose text is its one
//! spelling (stored, served and shown as that text) and which reads back from it. Decides nothing.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::FailureClass;

/// One failed result of a round. Shown (and stored, and served) as its text,
/// `host region/resolver edge path class[ status]`, e.g.
/// `cdn east/isp 127.21.1.1 /image/p.jpg http_status 502`; `-` stands for an unknown edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The host's domain.
    pub host: String,
    /// The region probed from.
    pub region: String,
    /// The resolver probed through.
    pub resolver: String,
    /// The edge IP; `None` (`-`) when unknown.
    pub edge: Option<IpAddr>,
    /// The probe path.
    pub path: String,
    /// How it failed.
    pub class: FailureClass,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{} ", self.host, self.region, self.resolver)?;
        match self.edge {
            Some(edge) => write!(f, "{edge}")?,
            None => f.write_str("-")?,
        }
        write!(f, " {} {}", self.path, self.class)?;
        match self.status {
            Some(status) => write!(f, " {status}"),
            None => Ok(()),
        }
    }
}

/// A text that is not a sample's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sample (`host region/resolver edge path class[ status]`): `{0}`")]
pub struct SampleParseError(String);

impl FromStr for Sample {
    type Err = SampleParseError;

    /// Reads a sample's text back; the path is what lies between the edge and the class.
    fn from_str(s: &str) -> Result<Sample, SampleParseError> {
        parse_sample(s).ok_or_else(|| SampleParseError(s.to_string()))
    }
}

fn parse_sample(s: &str) -> Option<Sample> {
    let (host, rest) = s.split_once(' ')?;
    let (place, rest) = rest.split_once(' ')?;
    let (region, resolver) = place.split_once('/')?;
    let (edge, rest) = rest.split_once(' ')?;
    let edge = match edge {
        "-" => None,
        ip => Some(ip.parse().ok()?),
    };
    let (head, last) = rest.rsplit_once(' ')?;
    let (path, class, status) = match last.parse::<u16>() {
        Ok(status) => {
            let (path, class) = head.rsplit_once(' ')?;
            (path, class, Some(status))
        }
        Err(_) => (head, last, None),
    };
    Some(Sample {
        host: host.to_string(),
        region: region.to_string(),
        resolver: resolver.to_string(),
        edge,
        path: path.to_string(),
        class: FailureClass::parse(class)?,
        status,
    })
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sample, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
