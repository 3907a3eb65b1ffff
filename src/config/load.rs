//! Turning TOML text into a [`Config`], every problem located. Three stages, each only when the
//! one before found nothing: syntax; the sections deserialized one entry at a time (unknown keys,
//! wrong types), so one bad entry does not hide the others; then `validate.rs`, whose problems
//! are placed at the field they name (`locate.rs`). Owns no checks of its own.

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::locate::{FieldPath, line_col, span_of};
use super::validate::{self, Document};
use super::{Config, ConfigError, Problem};

/// Parses and validates TOML text; `file` names it in errors, `base_dir` anchors relative paths.
pub(super) fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut problems: Vec<Problem> = syntax
        .iter()
        .map(|e| toml_problem(text, &FieldPath::root(), e))
        .collect();
    let mut doc = Document {
        config: Config {
            base_dir: base_dir.to_owned(),
            ..Config::default()
        },
        hosts: Vec::new(),
        regions: Vec::new(),
    };
    if problems.is_empty() {
        deserialize_sections(text, root.get_ref(), &mut doc, &mut problems);
    }
    if !problems.is_empty() {
        return Err(invalid(file, problems));
    }
    let (config, findings) = validate::validate(doc);
    for (path, message) in findings {
        let (line, column) = span_of(root.get_ref(), &path)
            .map(|s| line_col(text, s.start))
            .unwrap_or((0, 0));
        problems.push(Problem {
            line,
            column,
            field: path.to_string(),
            message,
        });
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(invalid(file, problems))
    }
}

fn invalid(file: &str, problems: Vec<Problem>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_owned(),
        problems,
    }
}

/// The sections the file may have, each deserialized on its own so one bad entry does not hide
/// the others' problems.
fn deserialize_sections(
    text: &str,
    root: &DeTable<'_>,
    doc: &mut Document,
    problems: &mut Vec<Problem>,
) {
    let config = &mut doc.config;
    for (key, value) in root.iter() {
        let at = FieldPath::root().key(key.get_ref());
        match key.get_ref().as_ref() {
            "probe" => take(text, &at, value, problems, |v| config.probe = v),
            "client" => take(text, &at, value, problems, |v| config.client = v),
            "vendors" => take_each(text, &at, value, problems, |v| config.vendors.push(v)),
            "hosts" => take_each(text, &at, value, problems, |v| doc.hosts.push(v)),
            "merged_hosts" => {
                take_each(text, &at, value, problems, |v| config.merged_hosts.push(v))
            }
            "regions" => take_each(text, &at, value, problems, |v| doc.regions.push(v)),
            "store" => take(text, &at, value, problems, |v| config.store = v),
            "engine" => take(text, &at, value, problems, |v| config.engine = v),
            "dashboard" => take(text, &at, value, problems, |v| config.dashboard = v),
            "http" => take(text, &at, value, problems, |v| config.http = v),
            "notify" => take(text, &at, value, problems, |v| config.notify = v),
            "agents" => take_each(text, &at, value, problems, |v| config.agents.push(v)),
            other => {
                let (line, column) = line_col(text, key.span().start);
                problems.push(Problem {
                    line,
                    column,
                    field: at.to_string(),
                    message: format!(
                        "unknown section `{other}` (expected one of probe, client, vendors, hosts, merged_hosts, regions, store, engine, dashboard, http, notify, agents)"
                    ),
                });
            }
        }
    }
}

fn take<T: for<'de> Deserialize<'de>>(
    text: &str,
    at: &FieldPath,
    value: &toml::Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(T),
) {
    let de = ValueDeserializer::from(value.clone());
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => put(v),
        Err(e) => {
            let inner = FieldPath::from_serde(e.path());
            let path = at.join(&inner);
            let mut p = toml_problem(text, &path, e.inner());
            if p.line == 0 {
                let (line, column) = line_col(text, value.span().start);
                p.line = line;
                p.column = column;
            }
            problems.push(p);
        }
    }
}

fn take_each<T: for<'de> Deserialize<'de>>(
    text: &str,
    at: &FieldPath,
    value: &toml::Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(T),
) {
    match value.get_ref() {
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                take(text, &at.index(i), item, problems, &mut put);
            }
        }
        other => {
            let (line, column) = line_col(text, value.span().start);
            problems.push(Problem {
                line,
                column,
                field: at.to_string(),
                message: format!(
                    "expected an array of tables (`[[{at}]]`), found a {}",
                    other.type_str()
                ),
            });
        }
    }
}

fn toml_problem(text: &str, path: &FieldPath, e: &toml::de::Error) -> Problem {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
    Problem {
        line,
        column,
        field: path.to_string(),
        message: e.message().trim().to_string(),
    }
}
