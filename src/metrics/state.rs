//! The metrics read at scrape time from state the service keeps anyway: the published document,
//! the scheduler's and the store writer's counters, the open incidents, the regional agents (as
//! the fleet's views, labelled by agent id only). Nothing here is stored twice or updated on the
//! hot path; a scrape reads atomics, one small mutex-held histogram each, and the current document.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};

use super::MetricsError;
use crate::agent::wire::Refusal;
use crate::config::LiveConfig;
use crate::fleet::Fleet;
use crate::hist::Histogram;
use crate::incident::Board;
use crate::publish::Publisher;
use crate::scheduler::SchedulerStats;
use crate::store::writer::Ingest;

/// What the scrape reads: the handles `AppState` holds.
#[derive(Clone)]
pub struct ServiceState {
    /// The published host list.
    pub publisher: Arc<Publisher>,
    /// The config in force.
    pub config: LiveConfig,
    /// The scheduler's counters.
    pub scheduler: Arc<SchedulerStats>,
    /// The store writer's queue and counters.
    pub ingest: Ingest,
    /// The open incidents.
    pub incidents: Arc<Board>,
    /// The regional agents.
    pub fleet: Arc<Fleet>,
}

/// One family this collector exports.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const fn family(
    name: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        help,
        kind,
        labels,
    }
}

use MetricType::{COUNTER, GAUGE, HISTOGRAM};

const CONFIG_VERSION: Family = family(
    "cdnwatch_config_version",
    GAUGE,
    &[],
    "configVersion of the host-list document being served.",
);
const PUBLISHED: Family = family(
    "cdnwatch_config_published_timestamp_seconds",
    GAUGE,
    &[],
    "Unix time the served document was issued (published or re-signed, at least every 6 hours).",
);
const HOST_DISABLED: Family = family(
    "cdnwatch_host_disabled",
    GAUGE,
    &["host", "vendor"],
    "Whether the served document disables the host (isDisabled): 1 disabled, 0 enabled.",
);
const SERIES: Family = family(
    "cdnwatch_scheduler_series",
    GAUGE,
    &[],
    "Probe series in the schedule (hosts x paths x regions x resolvers).",
);
const IN_FLIGHT: Family = family(
    "cdnwatch_scheduler_probes_in_flight",
    GAUGE,
    &[],
    "Probes running now.",
);
const STARTED: Family = family(
    "cdnwatch_scheduler_probes_started_total",
    COUNTER,
    &[],
    "Probes the scheduler started.",
);
const SKIPPED: Family = family(
    "cdnwatch_scheduler_probes_skipped_total",
    COUNTER,
    &[],
    "Probe runs skipped because the series' previous run was still going.",
);
const LAG: Family = family(
    "cdnwatch_scheduler_lag_seconds",
    HISTOGRAM,
    &[],
    "Start lag of each probe: planned start to actual start (after waiting for a concurrency permit).",
);
const QUEUE_DEPTH: Family = family(
    "cdnwatch_store_queue_depth",
    GAUGE,
    &[],
    "Results waiting in the store's ingest queue.",
);
const QUEUE_CAPACITY: Family = family(
    "cdnwatch_store_queue_capacity",
    GAUGE,
    &[],
    "Results the store's ingest queue holds before it drops.",
);
const WRITTEN: Family = family(
    "cdnwatch_store_records_written_total",
    COUNTER,
    &[],
    "Results written to the database.",
);
const DROPPED: Family = family(
    "cdnwatch_store_records_dropped_total",
    COUNTER,
    &[],
    "Results dropped: the ingest queue was full, or a batch failed at shutdown.",
);
const WRITE_ERRORS: Family = family(
    "cdnwatch_store_write_errors_total",
    COUNTER,
    &[],
    "Failed batch writes (each is retried).",
);
const WRITE_DURATION: Family = family(
    "cdnwatch_store_batch_write_duration_seconds",
    HISTOGRAM,
    &[],
    "Duration of each successful batch write (one transaction).",
);

const INCIDENTS_OPEN: Family = family(
    "cdnwatch_incidents_open",
    GAUGE,
    &["scope"],
    "Open incidents, by the kind of their scope (edge, resolver, region_vendor, vendor, prefix_vendor, origin, probe_network).",
);

const AGENT_UP: Family = family(
    "cdnwatch_agent_up",
    GAUGE,
    &["agent"],
    "Whether the regional agent is up (a heartbeat within its last three): 1 up, 0 down or not heard yet.",
);
const AGENT_LAST_SEEN: Family = family(
    "cdnwatch_agent_last_seen_timestamp_seconds",
    GAUGE,
    &["agent"],
    "Unix time (service clock) of the agent's last heartbeat; absent for an agent not heard since start.",
);
const AGENT_SKEW: Family = family(
    "cdnwatch_agent_clock_skew_seconds",
    GAUGE,
    &["agent"],
    "The agent's clock minus the service's, estimated from its heartbeats; absent until one came.",
);
const AGENT_BACKLOG: Family = family(
    "cdnwatch_agent_backlog_records",
    GAUGE,
    &["agent"],
    "Results the agent has spooled and not yet had acknowledged, as its last heartbeat said.",
);
const AGENT_RECEIVED: Family = family(
    "cdnwatch_agent_results_received_total",
    COUNTER,
    &["agent"],
    "Results of the agent stored since the service started.",
);
const AGENT_REFUSED: Family = family(
    "cdnwatch_agent_records_refused_total",
    COUNTER,
    &["agent", "reason"],
    "Results (and control checks) of the agent refused since the service started, by reason.",
);

const FAMILIES: [&Family; 21] = [
    &CONFIG_VERSION,
    &PUBLISHED,
    &HOST_DISABLED,
    &SERIES,
    &IN_FLIGHT,
    &STARTED,
    &SKIPPED,
    &LAG,
    &QUEUE_DEPTH,
    &QUEUE_CAPACITY,
    &WRITTEN,
    &DROPPED,
    &WRITE_ERRORS,
    &WRITE_DURATION,
    &INCIDENTS_OPEN,
    &AGENT_UP,
    &AGENT_LAST_SEEN,
    &AGENT_SKEW,
    &AGENT_BACKLOG,
    &AGENT_RECEIVED,
    &AGENT_REFUSED,
];

/// Latency histograms are read from the store's log-scale histograms at their exact doubling
/// bounds: 10 µs × 2^3 = 80 µs up to 10 µs × 2^20 ≈ 10.5 s.
const FIRST_DOUBLING: u32 = 3;
const LAST_DOUBLING: u32 = 20;

pub(super) struct StateCollector {
    state: ServiceState,
    descs: Vec<Desc>,
}

impl StateCollector {
    pub(super) fn new(state: ServiceState) -> Result<StateCollector, MetricsError> {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                let labels = f.labels.iter().map(|l| l.to_string()).collect();
                Desc::new(f.name.into(), f.help.into(), labels, Default::default())
            })
            .collect::<Result<_, _>>()?;
        Ok(StateCollector { state, descs })
    }

    fn document(&self) -> Vec<MetricFamily> {
        let Some(current) = self.state.publisher.current() else {
            return Vec::new(); // cold start: nothing published yet
        };
        let config = self.state.config.get();
        let hosts = current.hosts();
        let disabled = hosts.iter().map(|h| {
            let vendor = config.host(&h.host).map_or("", |c| c.vendor.as_str());
            let labels = [("host", h.host.as_str()), ("vendor", vendor)];
            gauge(&labels, if h.is_disabled { 1.0 } else { 0.0 })
        });
        vec![
            collect(&CONFIG_VERSION, vec![gauge(&[], current.version as f64)]),
            collect(
                &PUBLISHED,
                vec![gauge(
                    &[],
                    current.issued_at.timestamp_millis() as f64 / 1e3,
                )],
            ),
            collect(&HOST_DISABLED, disabled.collect()),
        ]
    }

    fn scheduler(&self) -> Vec<MetricFamily> {
        let s = &self.state.scheduler;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        vec![
            collect(&SERIES, vec![gauge(&[], load(&s.series) as f64)]),
            collect(&IN_FLIGHT, vec![gauge(&[], load(&s.in_flight) as f64)]),
            collect(&STARTED, vec![counter(&[], load(&s.started))]),
            collect(&SKIPPED, vec![counter(&[], load(&s.skipped_overlap))]),
            collect(&LAG, vec![prometheus::core::Metric::metric(&s.lag_seconds)]),
        ]
    }

    fn store(&self) -> Vec<MetricFamily> {
        let ingest = &self.state.ingest;
        let s = ingest.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let latency = s.write_latency.lock().expect("write histogram").clone();
        vec![
            collect(&QUEUE_DEPTH, vec![gauge(&[], ingest.depth() as f64)]),
            collect(&QUEUE_CAPACITY, vec![gauge(&[], ingest.capacity() as f64)]),
            collect(&WRITTEN, vec![counter(&[], load(&s.written))]),
            collect(&DROPPED, vec![counter(&[], load(&s.dropped))]),
            collect(&WRITE_ERRORS, vec![counter(&[], load(&s.write_errors))]),
            collect(
                &WRITE_DURATION,
                vec![histogram(&latency, load(&s.write_sum_us))],
            ),
        ]
    }

    /// Per agent: up, last heard, skew, backlog, received and refused (every reason, zeros too).
    fn agents(&self) -> Vec<MetricFamily> {
        let mut out: [Vec<Metric>; 6] = Default::default();
        let [up, seen, skew, backlog, received, refused] = &mut out;
        for v in self.state.fleet.views() {
            let agent = [("agent", v.id.as_str())];
            up.push(gauge(&agent, if v.up { 1.0 } else { 0.0 }));
            if let Some(ms) = v.last_seen_ms {
                seen.push(gauge(&agent, ms as f64 / 1e3));
            }
            if let Some(ms) = v.skew_ms {
                skew.push(gauge(&agent, ms / 1e3));
            }
            backlog.push(gauge(&agent, v.backlog_records as f64));
            received.push(counter(&agent, v.received));
            for why in Refusal::ALL {
                let n = v.refused.get(why.as_str()).copied().unwrap_or(0);
                refused.push(counter(&[agent[0], ("reason", why.as_str())], n));
            }
        }
        let families = [
            &AGENT_UP,
            &AGENT_LAST_SEEN,
            &AGENT_SKEW,
            &AGENT_BACKLOG,
            &AGENT_RECEIVED,
            &AGENT_REFUSED,
        ];
        families
            .into_iter()
            .zip(out)
            .map(|(f, metrics)| collect(f, metrics))
            .collect()
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = self.document();
        out.extend(self.scheduler());
        out.extend(self.store());
        let open = self.state.incidents.open_by_kind();
        let open = open
            .iter()
            .map(|(kind, n)| gauge(&[("scope", kind)], *n as f64));
        out.push(collect(&INCIDENTS_OPEN, open.collect()));
        out.extend(self.agents());
        out
    }
}

fn collect(f: &Family, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.into());
    mf.set_help(f.help.into());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}

fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut g = proto::Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_gauge(g);
    m.set_label(label_pairs(labels));
    m
}

fn counter(labels: &[(&str, &str)], value: u64) -> Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::default();
    m.set_counter(c);
    m.set_label(label_pairs(labels));
    m
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|(k, v)| {
            let mut pair = LabelPair::default();
            pair.set_name(k.to_string());
            pair.set_value(v.to_string());
            pair
        })
        .collect()
}

fn histogram(h: &Histogram, sum_us: u64) -> Metric {
    let mut out = proto::Histogram::default();
    out.set_sample_count(h.count());
    out.set_sample_sum(sum_us as f64 / 1e6);
    out.set_bucket(
        h.cumulative_at_doublings(FIRST_DOUBLING, LAST_DOUBLING)
            .into_iter()
            .map(|(upper, below)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(upper);
                b.set_cumulative_count(below);
                b
            })
            .collect(),
    );
    let mut m = Metric::default();
    m.set_histogram(out);
    m
}
