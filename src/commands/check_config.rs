//! `cdnwatch check-config FILE`: every problem with its place, or a summary of what would run.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_USAGE;
use crate::config::{Config, ConfigError};

/// `cdnwatch check-config FILE`: every problem with its place, or a summary of what would run.
pub(super) fn run(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            println!("{}: ok: {}", file.display(), config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Loads a config or prints its problems; the caller exits with [`EXIT_USAGE`] on `None`.
pub(super) fn load_or_report(file: &Path) -> Option<Config> {
    match Config::load(file) {
        Ok(c) => Some(c),
        Err(e @ (ConfigError::Invalid { .. } | ConfigError::Read { .. })) => {
            eprintln!("{e}");
            None
        }
    }
}
