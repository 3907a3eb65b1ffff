//! The name of a probe series: (host, path, region, resolver). Shared by the scheduler, the
//! decider, the metrics and the store; data only, no I/O.

use crate::model::EdgeResult;

/// The four names that identify a probe series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SeriesKey {
    /// The host's domain.
    pub host: String,
    /// The probe path.
    pub path: String,
    /// The region probed from.
    pub region: String,
    /// The resolver probed through.
    pub resolver: String,
}

impl SeriesKey {
    /// The series a result belongs to.
    pub fn of(r: &EdgeResult) -> SeriesKey {
        SeriesKey {
            host: r.host.clone(),
            path: r.path.clone(),
            region: r.region.clone(),
            resolver: r.resolver.clone(),
        }
    }
}
/// Whether one probe of a series failed: any of its edge results is a CDN failure (an HTTP 4xx is
/// not one). A failed probe is what the scheduler confirms and the results count in a row.
pub fn probe_failed(results: &[EdgeResult]) -> bool {
    results
        .iter()
        .any(|r| r.outcome().is_some_and(|o| o.is_cdn_failure()))
}
