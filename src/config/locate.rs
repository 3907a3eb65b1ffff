//! Field paths (`hosts[1].paths[0].method`) and finding where one stands in the TOML text.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to a field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The path of the document itself.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path, then the key `k`.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Key(k.to_owned()));
        FieldPath(v)
    }

    /// This path, then the array index `i`.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Segment::Index(i));
        FieldPath(v)
    }

    /// This path, then `other`.
    pub fn join(&self, other: &FieldPath) -> Self {
        let mut v = self.0.clone();
        v.extend(other.0.iter().cloned());
        FieldPath(v)
    }

    /// Converts serde_path_to_error's path, dropping the steps that name no field.
    pub fn from_serde(p: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        FieldPath(
            p.iter()
                .filter_map(|s| match s {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The byte span of the deepest part of `path` that exists in the document.
pub(super) fn span_of(root: &DeTable<'_>, path: &FieldPath) -> Option<Range<usize>> {
    let mut segs = path.0.iter();
    let first = match segs.next()? {
        Segment::Key(k) => k,
        Segment::Index(_) => return None,
    };
    let (_, mut cur) = root
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == first.as_str())?;
    for seg in segs {
        let next = match (seg, cur.get_ref()) {
            (Segment::Key(k), DeValue::Table(t)) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(_, v)| v),
            (Segment::Index(i), DeValue::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => break,
        }
    }
    Some(cur.span())
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, text[line_start..offset].chars().count() + 1)
}
