//! What the scheduler measures about itself: runs started, skipped and confirming, the start lag
//! of every run (fine-grained for the status page, at round bounds for `/metrics`), and the probes
//! in flight.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::hist::Histogram;

/// The bounds of the exported start-lag histogram, in seconds: round numbers around what a healthy
/// scheduler shows (well under 5 ms) and what the shipped alert watches (1 s), so a p99 target
/// such as "<= 5 ms" is read off a bucket bound exactly.
pub const LAG_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// What the scheduler measures about itself.
#[derive(Debug)]
pub struct SchedulerStats {
    /// Runs started (confirmations included).
    pub started: AtomicU64,
    /// Confirmation runs started: extra runs of failed series before their next interval.
    pub confirmations: AtomicU64,
    /// Runs skipped because the series' previous run was still going.
    pub skipped_overlap: AtomicU64,
    /// Start lag (planned → actual start) of every run, fine-grained (for the status page's
    /// quantiles), and the last one in µs.
    pub lag: Mutex<Histogram>,
    /// See `lag`.
    pub last_lag_us: AtomicU64,
    /// The same lags at [`LAG_BUCKETS_S`], as `/metrics` exports them (lock-free to record).
    pub lag_seconds: prometheus::Histogram,
    /// Probes running now (holding a concurrency permit), and the most ever at once.
    pub in_flight: AtomicU64,
    /// See `in_flight`.
    pub peak_in_flight: AtomicU64,
    /// Series in the schedule.
    pub series: AtomicU64,
}

impl Default for SchedulerStats {
    fn default() -> Self {
        // Only its buckets are exported: the family's name and help are `metrics::state`'s.
        let opts = prometheus::HistogramOpts::new("scheduler_lag_seconds", "start lag")
            .buckets(LAG_BUCKETS_S.to_vec());
        SchedulerStats {
            started: AtomicU64::new(0),
            confirmations: AtomicU64::new(0),
            skipped_overlap: AtomicU64::new(0),
            lag: Mutex::default(),
            last_lag_us: AtomicU64::new(0),
            lag_seconds: prometheus::Histogram::with_opts(opts)
                .expect("the lag histogram's bounds are increasing"),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            series: AtomicU64::new(0),
        }
    }
}
