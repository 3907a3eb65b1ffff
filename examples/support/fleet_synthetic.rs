//! Synthetic but valid agent results for the fleet benchmark: passing results of configured
//! series (so nothing is refused as unknown), batches gzip-compressed as an agent sends them, and
//! a spool of backlog written in the agent's own format (`Spool::append`, one batch per seal).

use std::io::Write as _;
use std::path::Path;

use cdnwatch::agent::spool::{DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, Spool};
use cdnwatch::agent::wire::{Batch, ControlCheck, Probed};
use cdnwatch::model::EdgeResult;
use cdnwatch::series::SeriesKey;
use chrono::{DateTime, Utc};

/// Most results in one batch: the agent's own bound (`MAX_BATCH_RESULTS` in src/agent.rs).
pub(crate) const MAX_BATCH_RESULTS: usize = 5_000;

/// A passing probe of `key` that started (and was planned) at `at`.
pub(crate) fn probed(key: &SeriesKey, at: DateTime<Utc>) -> Probed {
    Probed {
        slot: at,
        result: EdgeResult {
            at,
            host: key.host.clone(),
            path: key.path.clone(),
            region: key.region.clone(),
            resolver: key.resolver.clone(),
            edge_ip: Some([127, 10, 0, 1].into()),
            dns_ms: Some(0.8),
            connect_ms: Some(0.2),
            tls_ms: Some(1.6),
            first_byte_ms: Some(0.7),
            transfer_ms: Some(0.1),
            total_ms: Some(3.4),
            status: Some(200),
            body_bytes: 1024,
            cert: None,
            failure: None,
        },
    }
}

/// `batch` as JSON, gzip-compressed as the agent compresses it.
pub(crate) fn gzip(batch: &Batch) -> Vec<u8> {
    let json = serde_json::to_vec(batch).expect("a batch serializes");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// The shape of an agent's backlog: `minutes` of probes ending at `end_ms`, each series once
/// every `interval_ms` (spread over the interval, as the scheduler spreads them), sealed every
/// `seal_ms` or at [`MAX_BATCH_RESULTS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// How long the agent was cut off.
    pub(crate) minutes: u64,
    /// The probe interval.
    pub(crate) interval_ms: u64,
    /// How often the agent seals a batch (its `SEAL_EVERY`, 1 s).
    pub(crate) seal_ms: u64,
    /// When the backlog ends (Unix ms).
    pub(crate) end_ms: i64,
}

/// What was spooled: the boot the batches carry, their results and their count.
#[derive(Debug, Clone)]
pub(crate) struct Backlog {
    /// The boot id in every batch's name.
    pub(crate) boot: String,
    /// Results in all.
    pub(crate) results: u64,
    /// Batches (files).
    pub(crate) batches: u64,
}

/// The batches being sealed.
struct Sealer {
    spool: Spool,
    boot: String,
    version: String,
    pending: Batch,
    out: Backlog,
}

impl Sealer {
    fn seal(&mut self, sealed_ms: i64) {
        if self.pending.results.is_empty() && self.pending.controls.is_empty() {
            return;
        }
        let next = Batch {
            boot: self.boot.clone(),
            seq: self.pending.seq + 1,
            assignment_version: self.version.clone(),
            results: Vec::new(),
            controls: Vec::new(),
        };
        let batch = std::mem::replace(&mut self.pending, next);
        let n = batch.results.len() as u64;
        let body = gzip(&batch);
        (self.spool)
            .append((&batch.boot, batch.seq, n), &body, sealed_ms)
            .unwrap_or_else(|e| panic!("{e}"));
        self.out.results += n;
        self.out.batches += 1;
    }
}

/// Writes the backlog of an agent probing `series` of `region` under assignment `version` into
/// the spool at `dir`, in the agent's own file format.
pub(crate) fn write_backlog(
    dir: &Path,
    region: &str,
    series: &[SeriesKey],
    version: &str,
    shape: Shape,
) -> Backlog {
    let boot = format!("backlog{:08x}", fastrand::u32(..));
    let spool =
        Spool::open(dir, DEFAULT_MAX_BYTES, DEFAULT_MAX_AGE).unwrap_or_else(|e| panic!("{e}"));
    let pending = Batch {
        boot: boot.clone(),
        seq: 0,
        assignment_version: version.to_string(),
        results: Vec::new(),
        controls: Vec::new(),
    };
    let out = Backlog {
        boot: boot.clone(),
        results: 0,
        batches: 0,
    };
    let mut s = Sealer {
        spool,
        boot,
        version: version.to_string(),
        pending,
        out,
    };
    let (interval, seal) = (shape.interval_ms as i64, shape.seal_ms as i64);
    let start = shape.end_ms - shape.minutes as i64 * 60_000;
    let mut seal_at = start + seal;
    let n = series.len().max(1) as i64;
    for slot in (start..shape.end_ms).step_by(shape.interval_ms as usize) {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).expect("a time");
        (s.pending.controls).push(ControlCheck {
            region: region.to_string(),
            at: at(slot),
            ok: true,
        });
        for (j, key) in series.iter().enumerate() {
            let t = slot + j as i64 * interval / n;
            while t >= seal_at {
                s.seal(seal_at);
                seal_at += seal;
            }
            s.pending.results.push(probed(key, at(t)));
            if s.pending.results.len() >= MAX_BATCH_RESULTS {
                s.seal(t);
            }
        }
    }
    s.seal(shape.end_ms);
    s.out
}
