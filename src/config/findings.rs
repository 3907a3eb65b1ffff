//! The problems a parse finds, each with the field it concerns: the list every parser of the
//! config appends to, and how a value parsed outside a file reports its first one. Owns no checks.

use super::locate::FieldPath;

/// Problems found, each with the field it concerns.
pub(super) type Findings = Vec<(FieldPath, String)>;

/// Parses one value outside a file (serde's `try_from`): its first problem is the error.
pub(super) fn standalone<D, T>(
    doc: D,
    parse: impl FnOnce(D, &FieldPath, &mut Findings) -> Option<T>,
) -> Result<T, String> {
    let mut out = Vec::new();
    match (parse(doc, &FieldPath::root(), &mut out), out.first()) {
        (Some(v), None) => Ok(v),
        (_, Some((at, why))) if *at == FieldPath::root() => Err(why.clone()),
        (_, Some((at, why))) => Err(format!("{at}: {why}")),
        (None, None) => Err("invalid value".into()),
    }
}
