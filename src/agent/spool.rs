//! The agent's durable spool: every sealed batch is written to its own file — to a temporary
//! name, fsynced, renamed, the directory fsynced — before it is sent, and deleted only once the
//! service has acknowledged it. A killed agent therefore loses nothing it had spooled, and never
//! finds half a batch. Bounded by bytes and by age: beyond either, the oldest batches are
//! dropped and counted.
//!
//! A file's name says all the sender needs without opening it:
//! `{sealed ms:013}-{boot}-{seq:010}-{results}.batch`; names sort in the order batches were sealed.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default bound of the spool's bytes: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default bound of a batch's age in the spool: 24 h.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// One spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// Its file.
    pub path: PathBuf,
    /// When it was sealed, Unix ms (agent clock).
    pub sealed_ms: i64,
    /// Its boot id and sequence number: its idempotency key with the agent's id.
    pub boot: String,
    /// See `boot`.
    pub seq: u64,
    /// Results in it.
    pub results: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {what}: {source}")]
pub struct SpoolError {
    path: PathBuf,
    what: &'static str,
    source: std::io::Error,
}

/// The spool directory and what is in it, oldest first.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_age_ms: i64,
    batches: VecDeque<Spooled>,
    bytes: u64,
    /// Batches dropped beyond the bounds since the spool was opened.
    pub dropped: u64,
}

impl Spool {
    /// Opens (creating) `dir`: what an earlier run left is kept, in order; temporary files of a
    /// write that never finished are removed.
    pub fn open(dir: &Path, max_bytes: u64, max_age: Duration) -> Result<Spool, SpoolError> {
        let err = |what, source| SpoolError {
            path: dir.to_owned(),
            what,
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| err("creating it", e))?;
        let mut batches = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| err("listing it", e))? {
            let entry = entry.map_err(|e| err("listing it", e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if let Some(b) = parse_name(&name, path.clone(), bytes) {
                batches.push(b);
            }
        }
        batches.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes = batches.iter().map(|b| b.bytes).sum();
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
            batches: batches.into(),
            bytes,
            dropped: 0,
        })
    }

    /// Writes a sealed batch (`body`, the exact bytes to upload) durably, then applies the
    /// bounds at `now_ms`.
    pub fn append(
        &mut self,
        (boot, seq, results): (&str, u64, u64),
        body: &[u8],
        now_ms: i64,
    ) -> Result<Spooled, SpoolError> {
        let name = format!("{now_ms:013}-{boot}-{seq:010}-{results}.batch");
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let err = |what, source| SpoolError {
            path: tmp.clone(),
            what,
            source,
        };
        let mut file = std::fs::File::create(&tmp).map_err(|e| err("creating", e))?;
        file.write_all(body).map_err(|e| err("writing", e))?;
        file.sync_all().map_err(|e| err("syncing", e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| err("renaming", e))?;
        sync_dir(&self.dir).map_err(|e| err("syncing its directory", e))?;
        let spooled = Spooled {
            path,
            sealed_ms: now_ms,
            boot: boot.to_string(),
            seq,
            results,
            bytes: body.len() as u64,
        };
        self.bytes += spooled.bytes;
        self.batches.push_back(spooled.clone());
        self.enforce(now_ms);
        Ok(spooled)
    }

    /// Drops the oldest batches beyond the byte bound or the age bound.
    fn enforce(&mut self, now_ms: i64) {
        while let Some(oldest) = self.batches.front() {
            let too_old = now_ms - oldest.sealed_ms > self.max_age_ms;
            // Past the byte bound the newest batch itself is kept: it is what is sent next.
            let too_big = self.bytes > self.max_bytes && self.batches.len() > 1;
            if !too_old && !too_big {
                break;
            }
            let oldest = self.batches.pop_front().expect("front");
            tracing::warn!(
                seq = oldest.seq,
                results = oldest.results,
                "spool over its bounds: dropping its oldest batch"
            );
            self.remove_file(&oldest);
            self.dropped += 1;
        }
    }

    /// Forgets an acknowledged batch (or one the service refused for good).
    pub fn remove(&mut self, path: &Path) {
        if let Some(i) = self.batches.iter().position(|b| b.path == path) {
            let b = self.batches.remove(i).expect("found");
            self.remove_file(&b);
        }
    }

    fn remove_file(&mut self, b: &Spooled) {
        self.bytes = self.bytes.saturating_sub(b.bytes);
        if let Err(e) = std::fs::remove_file(&b.path) {
            tracing::warn!(error = %e, path = %b.path.display(), "cannot remove a spooled batch");
        }
    }

    /// The batches waiting, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Spooled> {
        self.batches.iter()
    }

    /// The newest batch waiting.
    pub fn newest(&self) -> Option<&Spooled> {
        self.batches.back()
    }

    /// Results waiting.
    pub fn backlog_results(&self) -> u64 {
        self.batches.iter().map(|b| b.results).sum()
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

fn parse_name(name: &str, path: PathBuf, bytes: u64) -> Option<Spooled> {
    let stem = name.strip_suffix(".batch")?;
    let mut parts = stem.splitn(2, '-');
    let sealed_ms = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let (rest, results) = rest.rsplit_once('-')?;
    let (boot, seq) = rest.rsplit_once('-')?;
    Some(Spooled {
        path,
        sealed_ms,
        boot: boot.to_string(),
        seq: seq.parse().ok()?,
        results: results.parse().ok()?,
        bytes,
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_a_reopen_in_order_and_half_writes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), DEFAULT_MAX_BYTES, DEFAULT_MAX_AGE).unwrap();
        s.append(("b00t", 0, 3), b"first", 1_000).unwrap();
        s.append(("b00t", 1, 4), b"second", 2_000).unwrap();
        std::fs::write(
            dir.path().join("0000000003000-b00t-0000000002-1.batch.tmp"),
            b"half",
        )
        .unwrap();
        let s = Spool::open(dir.path(), DEFAULT_MAX_BYTES, DEFAULT_MAX_AGE).unwrap();
        let seqs: Vec<u64> = s.pending().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![0, 1]);
        assert_eq!(s.backlog_results(), 7);
        assert_eq!(std::fs::read(&s.newest().unwrap().path).unwrap(), b"second");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the .tmp is gone"
        );
    }

    #[test]
    fn the_oldest_batches_go_beyond_the_bounds_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 10, Duration::from_secs(60)).unwrap();
        s.append(("b", 0, 1), b"12345", 0).unwrap();
        s.append(("b", 1, 1), b"12345", 1).unwrap();
        assert_eq!((s.len(), s.dropped), (2, 0));
        s.append(("b", 2, 1), b"12345", 2).unwrap();
        assert_eq!(
            (s.len(), s.dropped),
            (2, 1),
            "over 10 bytes: the oldest went"
        );
        s.append(("b", 3, 1), b"1", 61_002).unwrap();
        let seqs: Vec<u64> = s.pending().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![3], "older than 60 s: gone");
        assert_eq!(s.dropped, 3);
        s.remove(&s.newest().unwrap().path.clone());
        assert!(s.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
