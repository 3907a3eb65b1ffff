//! The schema's migrations, embedded in the binary and applied at open.
//!
//! Listed by hand rather than with `sqlx::migrate!`: that macro is the only thing here that needs
//! sqlx's proc-macro crate, and that crate compiles a second copy of SQLite for the host (about a
//! minute of a release build on two cores). The test below keeps this list and `migrations/` equal.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Every file of `migrations/`: version, description (the file name's, as sqlx spells it), SQL.
const MIGRATIONS: [(i64, &str, &str); 8] = [
    (1, "store", include_str!("../../migrations/0001_store.sql")),
    (
        2,
        "publish",
        include_str!("../../migrations/0002_publish.sql"),
    ),
    (
        3,
        "failed results",
        include_str!("../../migrations/0003_failed_results.sql"),
    ),
    (
        4,
        "engine state",
        include_str!("../../migrations/0004_engine_state.sql"),
    ),
    (
        5,
        "incidents",
        include_str!("../../migrations/0005_incidents.sql"),
    ),
    (
        6,
        "notifications",
        include_str!("../../migrations/0006_notifications.sql"),
    ),
    (
        7,
        "silences",
        include_str!("../../migrations/0007_silences.sql"),
    ),
    (
        8,
        "agent batches",
        include_str!("../../migrations/0008_agent_batches.sql"),
    ),
];

/// The migrator for [`MIGRATIONS`]; checksums are sqlx's own (SHA-384 of the SQL), so a database
/// made by an earlier build that used `sqlx::migrate!` opens unchanged.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                let no_tx = sql.starts_with("-- no-transaction");
                let kind = MigrationType::Simple;
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    kind,
                    sql.into_sql_str(),
                    no_tx,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order_with_sqlxs_description() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, description, sql)) in files.iter().zip(MIGRATIONS) {
            let (v, rest) = file.split_once('_').unwrap();
            assert_eq!(v.parse::<i64>().unwrap(), version, "{file}");
            assert_eq!(rest.trim_end_matches(".sql").replace('_', " "), description);
            assert_eq!(
                std::fs::read_to_string(dir.join(file)).unwrap(),
                sql,
                "{file}"
            );
        }
    }
}
