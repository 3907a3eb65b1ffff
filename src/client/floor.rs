//! Where the reference client keeps the highest `configVersion` it verified, so a restarted app
//! still refuses every older signed version (old versions stay valid signatures forever). A small
//! trait: an app plugs in its own preferences store; [`VersionFile`] is a file, [`InMemory`] keeps
//! nothing across a restart (tests, or an app that ships a fresh `min_version` with each build).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Keeps the highest verified version across restarts.
pub trait VersionStore: Send {
    /// The highest version saved, if any.
    fn load(&self) -> Option<i64>;
    /// Saves `version` as the highest verified one.
    fn save(&mut self, version: i64) -> std::io::Result<()>;
}

/// Keeps the version in memory only.
#[derive(Debug, Default)]
pub struct InMemory(Option<i64>);

impl VersionStore for InMemory {
    fn load(&self) -> Option<i64> {
        self.0
    }

    fn save(&mut self, version: i64) -> std::io::Result<()> {
        self.0 = Some(version);
        Ok(())
    }
}

/// Keeps the version as decimal text in a file, replaced atomically (written beside it, synced,
/// renamed), so a crash leaves the old number or the new one, never half of one.
#[derive(Debug, Clone)]
pub struct VersionFile {
    path: PathBuf,
}

impl VersionFile {
    /// The file at `path` (it need not exist yet: then nothing was saved).
    pub fn new(path: impl Into<PathBuf>) -> VersionFile {
        VersionFile { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl VersionStore for VersionFile {
    fn load(&self) -> Option<i64> {
        std::fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn save(&mut self, version: i64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{version}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}
