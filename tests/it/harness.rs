//! The one way these tests start things: a lab on loopback with its config in a temporary
//! directory ([`TestLab`]), the service on it on port 0 ([`TestApp`]), cdnwatch processes, a real
//! Prometheus, fake chat robots ([`robots`]), a headless Chromium, and the fixtures under `tests/fixtures/`. It asserts nothing
//! of the product itself: what must hold is said in the capability modules.

pub mod agents;
pub mod alertmanager;
pub mod app;
pub mod chromium;
pub mod document;
pub mod lab;
pub mod machine;
pub mod process;
pub mod prometheus;
pub mod robots;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use agents::{TestAgent, with_agent, with_an_agent_per_region};
pub use app::{ADMIN_TOKEN, AGENT_TOKEN, TestApp, test_tokens, with_product_path};
pub use document::{OTHER_VENDOR, PRIMARY, SAME_VENDOR, all_enabled, disabled, version};
pub use lab::{TestLab, classes};
pub use machine::alone;

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The SQLite file at `db`, opened read-only beside the process that writes it.
pub async fn read_only_db(db: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap_or_else(|e| panic!("{} does not open read-only: {e}", db.display()))
}

/// Polls `check` every 250 ms until it answers `Ok`; after `limit`, panics with `what` and the last
/// `Err` (which should say what was seen instead).
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let pause = async || tokio::time::sleep(Duration::from_millis(250)).await;
    eventually_between(limit, what, check, pause).await
}

/// As [`eventually`], running `between` between two looks instead of sleeping.
pub async fn eventually_between<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
    mut between: impl AsyncFnMut(),
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {last}"
            ),
        }
        between().await;
    }
}
