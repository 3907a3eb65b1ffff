//! Every metric cdnwatch exports, on one private Prometheus registry, and their text for `GET /metrics`.
//!
//! Probe results are counted as they arrive — local probes from the scheduler's sink, remote agents'
//! from the ingest endpoint — through the prometheus crate's metric vecs, so probing at hundreds of
//! probes a second takes no global lock. What the service already keeps (the published document,
//! the scheduler's and the writer's counters) is read at scrape time by `state`, never kept twice.
//!
//! Where a meaning matches Prometheus blackbox_exporter's, its names and units are used
//! (`probe_success`, `probe_http_duration_seconds{phase}`, `probe_http_status_code`); cdnwatch's own
//! state is under `cdnwatch_`. Label values come from the config and the model's enums. An edge IP is
//! never a label: edges come and go with every DNS answer (unbounded cardinality); per-edge detail
//! is the dashboard's.

mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::model::{EdgeResult, Phase};
pub use state::ServiceState;

/// The exposition format's content type: `text/plain; version=0.0.4`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// How long one rendering of `/metrics` is served again: a public endpoint then costs at most one
/// encoding per interval whatever the request rate (Prometheus scrapes every few seconds at most).
const RENDER_TTL: Duration = Duration::from_secs(1);

/// Upper bounds of the phase-duration buckets, in seconds: from 0.5 ms (a warm edge, loopback) to
/// 10 s (the longest default phase timeout); roughly ×2–2.5 apart, as client_golang's defaults.
const PHASE_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of one probe series.
const SERIES: [&str; 5] = ["host", "path", "region", "resolver", "vendor"];

/// Where results came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This process's scheduler.
    Local,
    /// A regional agent, through `POST /api/v1/agents/{id}/results`.
    Agent,
}

impl Source {
    /// The one spelling, as in the `source` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Agent => "agent",
        }
    }
}

/// Why the metrics could not be set up or encoded (our own fault, never the caller's).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be registered or encoded.
    #[error("metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// The gzip encoding failed.
    #[error("compressing the metrics: {0}")]
    Compress(std::io::Error),
}

/// A cheap, cloneable handle on the registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    /// `cdnwatch_probe_results_total{…series, outcome, class}`: one per edge result.
    results: IntCounterVec,
    /// `cdnwatch_results_received_total{source}`.
    received: IntCounterVec,
    /// `probe_success{…series}`: 1 when every edge of the series' latest probe passed.
    success: IntGaugeVec,
    /// `probe_http_duration_seconds{…series, phase}`.
    duration: HistogramVec,
    /// `probe_http_status_code{…series}`.
    status: IntGaugeVec,
    /// `probe_ssl_earliest_cert_expiry_timestamp_seconds{host, region, resolver, vendor}`.
    cert_expiry: GaugeVec,
    /// `cdnwatch_auth_failures_total{endpoint}`: missing or wrong tokens, and attempts refused
    /// for coming too often.
    auth_failures: IntCounterVec,
    /// `cdnwatch_notifications_total{channel, result}`: messages sent, retried, failed.
    notifications: IntCounterVec,
    /// `cdnwatch_notification_queue_depth{channel}`: notices waiting in the outbox.
    queue_depth: IntGaugeVec,
    rendered: Mutex<Option<(Instant, Rendered)>>,
}

impl Inner {
    /// Registers every vec on the registry (the auth failures are registered where made).
    fn register(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.results.clone()))?;
        r.register(Box::new(self.received.clone()))?;
        r.register(Box::new(self.success.clone()))?;
        r.register(Box::new(self.duration.clone()))?;
        r.register(Box::new(self.status.clone()))?;
        r.register(Box::new(self.cert_expiry.clone()))?;
        r.register(Box::new(self.notifications.clone()))?;
        r.register(Box::new(self.queue_depth.clone()))
    }
}

/// `cdnwatch_notification_queue_depth{channel}`.
fn queue_depth() -> Result<IntGaugeVec, prometheus::Error> {
    IntGaugeVec::new(
        Opts::new(
            "cdnwatch_notification_queue_depth",
            "Notices waiting in the outbox, by channel (due now or backing off).",
        ),
        &["channel"],
    )
}

/// `cdnwatch_notifications_total{channel, result}`.
fn notifications() -> Result<IntCounterVec, prometheus::Error> {
    IntCounterVec::new(
        Opts::new(
            "cdnwatch_notifications_total",
            "Notification messages by channel and result: sent, retried (a timeout, 5xx, 429 or the receiver's throttle answer), failed (refused, or given up after max_attempts).",
        ),
        &["channel", "result"],
    )
}

/// `cdnwatch_auth_failures_total{endpoint}`, every endpoint's series present from the start (a
/// rate over a series that appears only at the first failure misses that failure).
/// Registered on `registry`.
fn auth_failures(registry: &Registry) -> Result<IntCounterVec, prometheus::Error> {
    let counter = IntCounterVec::new(
        Opts::new(
            "cdnwatch_auth_failures_total",
            "Token attempts refused, by endpoint (admin, ingest, sign_in): a missing or wrong token, or an attempt past the per-peer or global limit.",
        ),
        &["endpoint"],
    )?;
    for endpoint in crate::auth::AuthEndpoint::ALL {
        counter.with_label_values(&[endpoint.as_str()]);
    }
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

/// One rendering of every metric, plain and gzip-compressed (Prometheus asks for gzip; the text is
/// mostly repeated label names and compresses about twentyfold).
#[derive(Clone)]
pub struct Rendered {
    /// The text exposition format.
    pub plain: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
}

impl Metrics {
    /// Every metric, registered on a new private registry.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let with = |extra: &[&'static str]| [&SERIES[..], extra].concat();
        let inner = Inner {
            results: IntCounterVec::new(
                Opts::new(
                    "cdnwatch_probe_results_total",
                    "Edge probe results by outcome (success, failure) and failure class (none when it passed); a DNS failure counts once per probe.",
                ),
                &with(&["outcome", "class"]),
            )?,
            received: IntCounterVec::new(
                Opts::new(
                    "cdnwatch_results_received_total",
                    "Edge probe results received, by source: local probes or remote agents.",
                ),
                &["source"],
            )?,
            success: IntGaugeVec::new(
                Opts::new(
                    "probe_success",
                    "Whether the series' latest probe succeeded on every edge (1) or not (0).",
                ),
                &SERIES,
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "probe_http_duration_seconds",
                    "Duration of each probe phase: resolve (once per probe), connect, tls, processing (request to first byte), transfer (body).",
                )
                .buckets(PHASE_BUCKETS.to_vec()),
                &with(&["phase"]),
            )?,
            status: IntGaugeVec::new(
                Opts::new(
                    "probe_http_status_code",
                    "HTTP status of the series' latest probe (a failed edge's when one failed); 0 when no response came.",
                ),
                &SERIES,
            )?,
            cert_expiry: GaugeVec::new(
                Opts::new(
                    "probe_ssl_earliest_cert_expiry_timestamp_seconds",
                    "Unix time at which the earliest-expiring leaf certificate the host's edges presented expires.",
                ),
                &["host", "region", "resolver", "vendor"],
            )?,
            auth_failures: auth_failures(&registry)?,
            notifications: notifications()?,
            queue_depth: queue_depth()?,
            rendered: Mutex::new(None),
            registry,
        };
        inner.register()?;
        Ok(Metrics {
            inner: Arc::new(inner),
        })
    }

    /// Counts one refused token attempt at `endpoint`.
    pub fn auth_failed(&self, endpoint: crate::auth::AuthEndpoint) {
        self.inner
            .auth_failures
            .with_label_values(&[endpoint.as_str()])
            .inc();
    }

    /// Starts `channel`'s notification series at zero, so a rate sees its first message.
    pub fn notify_channel(&self, channel: &str) {
        for result in ["sent", "retried", "failed"] {
            self.inner
                .notifications
                .with_label_values(&[channel, result]);
        }
        self.inner.queue_depth.with_label_values(&[channel]).set(0);
    }

    /// Counts one message of `channel` with its `result` (`sent`, `retried`, `failed`).
    pub fn notification(&self, channel: &str, result: &str) {
        self.inner
            .notifications
            .with_label_values(&[channel, result])
            .inc();
    }

    /// `channel`'s outbox depth.
    pub fn notification_queue(&self, channel: &str, depth: i64) {
        self.inner
            .queue_depth
            .with_label_values(&[channel])
            .set(depth);
    }

    /// Reads the service's state at every scrape from now on. Call once per service.
    pub fn watch(&self, state: ServiceState) -> Result<(), MetricsError> {
        let collector = state::StateCollector::new(state)?;
        self.inner.registry.register(Box::new(collector))?;
        Ok(())
    }

    /// Counts the results of one probe of one series (they share host, path, region, resolver and
    /// start time). `vendor` is the host's, from the config.
    pub fn observe_probe(&self, vendor: &str, source: Source, results: &[EdgeResult]) {
        let refs: Vec<&EdgeResult> = results.iter().collect();
        self.observe_group(vendor, source, &refs);
    }

    /// Counts results that may mix probes and series (a remote agent's batch): grouped by series and
    /// probe start. A host `vendor_of` does not know is skipped (the caller validated them).
    pub fn observe_results<'c, 'r>(
        &self,
        source: Source,
        results: impl IntoIterator<Item = &'r EdgeResult>,
        vendor_of: impl Fn(&str) -> Option<&'c str>,
    ) {
        type Probe<'a> = (&'a str, &'a str, &'a str, &'a str, DateTime<Utc>);
        let mut probes: BTreeMap<Probe<'_>, Vec<&EdgeResult>> = BTreeMap::new();
        for r in results {
            let key = (&*r.host, &*r.path, &*r.region, &*r.resolver, r.at);
            probes.entry(key).or_default().push(r);
        }
        for ((host, ..), group) in probes {
            if let Some(vendor) = vendor_of(host) {
                self.observe_group(vendor, source, &group);
            }
        }
    }

    fn observe_group(&self, vendor: &str, source: Source, results: &[&EdgeResult]) {
        let Some(first) = results.first() else {
            return;
        };
        let m = &self.inner;
        let series = [
            &*first.host,
            &first.path,
            &first.region,
            &first.resolver,
            vendor,
        ];
        m.received
            .with_label_values(&[source.as_str()])
            .inc_by(results.len() as u64);
        // Every edge row repeats the probe's one DNS lookup: observe it once.
        if let Some(ms) = first.dns_ms {
            self.observe_phase(&series, Phase::Resolve, ms);
        }
        for r in results {
            let (outcome, class) = match r.failure_class() {
                None => ("success", "none"),
                Some(c) => ("failure", c.as_str()),
            };
            let [h, p, g, v, vd] = series;
            m.results
                .with_label_values(&[h, p, g, v, vd, outcome, class])
                .inc();
            for (phase, ms) in [
                (Phase::Connect, r.connect_ms),
                (Phase::Tls, r.tls_ms),
                (Phase::Processing, r.first_byte_ms),
                (Phase::Transfer, r.transfer_ms),
            ] {
                if let Some(ms) = ms {
                    self.observe_phase(&series, phase, ms);
                }
            }
        }
        self.set_latest(&series, results);
    }

    fn observe_phase(&self, series: &[&str; 5], phase: Phase, ms: f64) {
        let [h, p, g, v, vd] = *series;
        self.inner
            .duration
            .with_label_values(&[h, p, g, v, vd, phase.as_str()])
            .observe(ms / 1000.0);
    }

    /// The gauges that say what the latest probe of a series saw.
    fn set_latest(&self, series: &[&str; 5], results: &[&EdgeResult]) {
        let m = &self.inner;
        let ok = results.iter().all(|r| r.ok());
        m.success.with_label_values(series).set(i64::from(ok));
        let shown = results.iter().find(|r| !r.ok()).unwrap_or(&results[0]);
        m.status
            .with_label_values(series)
            .set(shown.status.map_or(0, i64::from));
        let earliest = results
            .iter()
            .filter_map(|r| r.cert.as_ref())
            .map(|c| c.not_after)
            .min();
        if let Some(not_after) = earliest {
            let [h, _, g, v, vd] = *series;
            m.cert_expiry
                .with_label_values(&[h, g, v, vd])
                .set(not_after.timestamp() as f64);
        }
    }

    /// Every metric in the text exposition format.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let families = self.inner.registry.gather();
        Ok(TextEncoder::new().encode_to_string(&families)?)
    }

    /// The text for `GET /metrics`: a rendering at most `RENDER_TTL` old. Concurrent requests
    /// wait for the one rendering instead of each encoding (the lock is never held across an await).
    pub fn render(&self) -> Result<Rendered, MetricsError> {
        let mut cached = self.inner.rendered.lock().expect("metrics render cache");
        if let Some((at, body)) = cached.as_ref()
            && at.elapsed() < RENDER_TTL
        {
            return Ok(body.clone());
        }
        let plain = self.encode()?;
        let rendered = Rendered {
            gzip: Bytes::from(gzip(plain.as_bytes())?),
            plain: Bytes::from(plain),
        };
        *cached = Some((Instant::now(), rendered.clone()));
        Ok(rendered)
    }
}

/// Fast compression: a scrape is compressed once per [`RENDER_TTL`] at most, and level 1 already
/// removes most of the repeated label text.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, MetricsError> {
    use std::io::Write as _;
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    out.write_all(bytes).map_err(MetricsError::Compress)?;
    out.finish().map_err(MetricsError::Compress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CertInfo, Failure, FailureClass};

    fn result(edge: &str, failure: Option<FailureClass>) -> EdgeResult {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        EdgeResult {
            at,
            host: "cdn.shop.test".into(),
            path: "/image/probe.jpg".into(),
            region: "cn-east".into(),
            resolver: "isp".into(),
            edge_ip: Some(edge.parse().unwrap()),
            dns_ms: Some(1.5),
            connect_ms: Some(0.3),
            tls_ms: Some(2.0),
            first_byte_ms: Some(40.0),
            transfer_ms: Some(700.0),
            total_ms: Some(744.0),
            status: Some(if failure == Some(FailureClass::HttpStatus) {
                502
            } else {
                200
            }),
            body_bytes: 10,
            cert: Some(CertInfo {
                not_after: at + chrono::Duration::days(30),
                not_before: at,
                issuer: "lab".into(),
                subject: "cdn.shop.test".into(),
                verified: true,
            }),
            failure: failure.map(|c| Failure::new(c, c_phase(c), "test")),
        }
    }

    fn c_phase(c: FailureClass) -> Phase {
        if c.is_dns() {
            Phase::Resolve
        } else {
            Phase::Processing
        }
    }

    /// The value of the sample `name{labels…}` (labels as a subset), if any.
    fn sample(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = m.encode().unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| {
                let (series, _) = l.rsplit_once(' ').unwrap();
                let bare = series.split('{').next().unwrap();
                bare == name
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
    }

    #[test]
    fn every_outcome_lands_in_its_own_outcome_and_class_series() {
        let m = Metrics::new().unwrap();
        for class in FailureClass::ALL {
            m.observe_probe("alpha", Source::Local, &[result("127.21.1.1", Some(class))]);
        }
        m.observe_probe("alpha", Source::Local, &[result("127.21.1.1", None)]);
        m.observe_probe("alpha", Source::Local, &[result("127.21.1.2", None)]);
        let base = [("host", "cdn.shop.test"), ("vendor", "alpha")];
        let count = |outcome, class| {
            let labels = [base[0], base[1], ("outcome", outcome), ("class", class)];
            sample(&m, "cdnwatch_probe_results_total", &labels)
        };
        assert_eq!(count("success", "none"), Some(2.0));
        for class in FailureClass::ALL {
            assert_eq!(count("failure", class.as_str()), Some(1.0), "{class}");
            assert_eq!(count("success", class.as_str()), None, "{class}");
        }
        let received = sample(
            &m,
            "cdnwatch_results_received_total",
            &[("source", "local")],
        );
        assert_eq!(received, Some(FailureClass::ALL.len() as f64 + 2.0));
    }

    #[test]
    fn one_failed_edge_fails_the_probe_and_shows_its_status() {
        let m = Metrics::new().unwrap();
        let probe = [
            result("127.21.1.1", None),
            result("127.21.1.2", Some(FailureClass::HttpStatus)),
        ];
        m.observe_probe("alpha", Source::Local, &probe);
        assert_eq!(sample(&m, "probe_success", &[]), Some(0.0));
        assert_eq!(sample(&m, "probe_http_status_code", &[]), Some(502.0));
        m.observe_probe("alpha", Source::Local, &probe[..1]);
        assert_eq!(sample(&m, "probe_success", &[]), Some(1.0));
        assert_eq!(sample(&m, "probe_http_status_code", &[]), Some(200.0));
    }

    #[test]
    fn phases_are_observed_in_seconds_and_the_lookup_once_per_probe() {
        let m = Metrics::new().unwrap();
        let probe = [result("127.21.1.1", None), result("127.21.1.2", None)];
        m.observe_probe("alpha", Source::Local, &probe);
        let count = |phase| sample(&m, "probe_http_duration_seconds_count", &[("phase", phase)]);
        assert_eq!(count("resolve"), Some(1.0), "one DNS lookup per probe");
        for phase in ["connect", "tls", "processing", "transfer"] {
            assert_eq!(count(phase), Some(2.0), "{phase}: one per edge");
        }
        let sum = sample(
            &m,
            "probe_http_duration_seconds_sum",
            &[("phase", "transfer")],
        );
        assert_eq!(sum, Some(1.4), "2 × 700 ms");
        let le_half = [("phase", "transfer"), ("le", "0.5")];
        let le_one = [("phase", "transfer"), ("le", "1")];
        assert_eq!(
            sample(&m, "probe_http_duration_seconds_bucket", &le_half),
            Some(0.0)
        );
        assert_eq!(
            sample(&m, "probe_http_duration_seconds_bucket", &le_one),
            Some(2.0)
        );
    }

    #[test]
    fn certificate_expiry_is_the_earliest_edge_certificate_as_unix_time() {
        let m = Metrics::new().unwrap();
        let mut soon = result("127.21.1.2", None);
        soon.cert.as_mut().unwrap().not_after = soon.at + chrono::Duration::days(3);
        m.observe_probe(
            "alpha",
            Source::Local,
            &[result("127.21.1.1", None), soon.clone()],
        );
        let got = sample(&m, "probe_ssl_earliest_cert_expiry_timestamp_seconds", &[]);
        assert_eq!(got, Some((soon.at.timestamp() + 3 * 86_400) as f64));
    }

    #[test]
    fn no_edge_ip_appears_in_any_label() {
        let m = Metrics::new().unwrap();
        for (i, class) in FailureClass::ALL.into_iter().enumerate() {
            let edge = format!("127.21.{}.{}", i % 3 + 1, i + 1);
            m.observe_probe("alpha", Source::Agent, &[result(&edge, Some(class))]);
        }
        let text = m.encode().unwrap();
        assert!(text.contains("cdnwatch_probe_results_total"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(!line.contains("127.21."), "an edge IP in a label: {line}");
        }
    }

    #[test]
    fn an_agent_batch_is_grouped_into_probes_by_series_and_start() {
        let m = Metrics::new().unwrap();
        let mut later = result("127.21.1.1", Some(FailureClass::TcpRefused));
        later.at += chrono::Duration::seconds(30);
        let mut other = result("127.21.1.1", None);
        other.host = "unknown.test".into();
        let batch = [
            result("127.21.1.1", None),
            result("127.21.1.2", None),
            later,
            other,
        ];
        m.observe_results(Source::Agent, &batch, |h| {
            (h == "cdn.shop.test").then_some("alpha")
        });
        let resolves = sample(
            &m,
            "probe_http_duration_seconds_count",
            &[("phase", "resolve")],
        );
        assert_eq!(resolves, Some(2.0), "two probes of the one series");
        let received = sample(
            &m,
            "cdnwatch_results_received_total",
            &[("source", "agent")],
        );
        assert_eq!(received, Some(3.0), "the unknown host is skipped");
        assert_eq!(
            sample(&m, "probe_success", &[]),
            Some(0.0),
            "the later probe wins"
        );
    }
}
