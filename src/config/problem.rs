//! How a bad configuration is reported: one located [`Problem`] per mistake, and the
//! [`ConfigError`] that carries them all. Owns no checks and no parsing.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a configuration file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// The field path, such as `hosts[1].paths[0].method`; empty for the file as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file was read but has problems; every one is listed.
    #[error("{file}: {} problem(s):\n{}", problems.len(), render_problems(file, problems))]
    Invalid {
        /// The file, as named in the problems.
        file: String,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            let sep = if p.line > 0 { ":" } else { ": " };
            format!("  {file}{sep}{p}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every problem found; none for a file that could not be read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}
