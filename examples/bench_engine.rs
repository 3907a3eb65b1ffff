//! Decision-engine benchmark on simulated time (printed figures, not a timed test): the pure engine
//! fed rounds at a 10 s interval with the default policy, counting published version changes. A
//! failed series is confirmed as the service does it (probed again at once, then every 2 s, until
//! it passes or has `fall_rounds` failed confirmations), and the confirmations' extra probes are
//! counted.
//!
//! 1. a month of noise: every result fails at random with probability 0.1 (and 0.2, 0.3 to show
//!    the margin) — target: zero flips at 0.1;
//! 2. the primary host failing 60 s, working 60 s, for 30 minutes in every region — target: at
//!    most 5 version changes for that host; and one edge of it flapping the same way (no flip).
//!
//! Usage: cargo run --release --example bench_engine

use std::collections::HashMap;
use std::net::IpAddr;

use cdnwatch::engine::{Engine, HostInfo, Observation, Policy, RegionRound, Round};
use cdnwatch::model::FailureClass;
use chrono::{DateTime, Duration, Utc};

const HOSTS: [(&str, &str); 3] = [
    ("cdn.shop.test", "alpha"),
    ("cdn-ss.shop.test", "alpha"),
    ("cdn-bak.shop.test", "beta"),
];
const PATHS: [&str; 3] = [
    "/image/probe.jpg",
    "/product/probe.json",
    "/community/probe.css",
];
const REGIONS: [&str; 3] = ["cn-east", "cn-north", "cn-south"];
const INTERVAL_S: i64 = 10;
/// The default `confirm_interval_ms`, in seconds.
const CONFIRM_S: i64 = 2;

/// One series' confirmation state, as the scheduler and the results keep it.
#[derive(Default, Clone, Copy)]
struct SeriesState {
    /// Failed probes in a row (the results' count; confirmations are those after the first).
    failed_in_a_row: u32,
    /// Its confirmations reached the fall: no more until it passes (the scheduler's state).
    done: bool,
}

/// One series probed at `at` and, when it fails, confirmed as the scheduler does (at once, then
/// every `CONFIRM_S`, until it passes or has `fall` failed confirmations). Returns the newest
/// probe's edge outcomes, whether its confirmations just reached the fall, and the extra probes.
fn probe_series(
    st: &mut SeriesState,
    at: i64,
    fall: u32,
    mut probe: impl FnMut(i64, u8) -> bool,
) -> ([bool; 2], bool, u32) {
    let mut once = |t: i64, st: &mut SeriesState| {
        let edges = [probe(t, 1), probe(t, 2)];
        if edges.iter().any(|f| *f) {
            st.failed_in_a_row += 1;
        } else {
            *st = SeriesState::default();
        }
        edges
    };
    let mut edges = once(at, st);
    let (mut fell, mut extra) = (false, 0);
    if st.failed_in_a_row > 0 && !st.done {
        for k in 0..fall {
            extra += 1;
            edges = once(at + 1 + CONFIRM_S * i64::from(k), st);
            if st.failed_in_a_row == 0 {
                break;
            }
        }
        fell = st.failed_in_a_row > fall;
        st.done = fell;
    }
    (edges, fell, extra)
}

/// The simulated service: every series' state, the confirmations it cost, the engine.
struct Sim {
    series: HashMap<(usize, usize, usize, usize), SeriesState>,
    extra_probes: u64,
}

impl Sim {
    /// One round at `at`; `fails(t, host, region, edge)` says whether a result fails. Also
    /// returns whether some series' confirmations reached the fall in it.
    fn round(
        &mut self,
        at: i64,
        mut fails: impl FnMut(i64, &str, usize, u8) -> bool,
    ) -> (Round, bool) {
        let fall = Policy::default().fall_rounds as u32;
        let mut any_fell = false;
        let regions = REGIONS
            .iter()
            .enumerate()
            .map(|(ri, region)| {
                let mut observations = Vec::new();
                for (hi, (host, vendor)) in HOSTS.iter().enumerate() {
                    let v = if *vendor == "alpha" { 21 } else { 22 };
                    for (pi, path) in PATHS.iter().enumerate() {
                        for (si, resolver) in ["isp", "public"].iter().enumerate() {
                            let st = self.series.entry((hi, pi, si, ri)).or_default();
                            let (edges, fell, extra) =
                                probe_series(st, at, fall, |t, edge| fails(t, host, ri, edge));
                            any_fell |= fell;
                            self.extra_probes += u64::from(extra);
                            let confirmations = st.failed_in_a_row.saturating_sub(1);
                            for (edge, failed) in (1..=2u8).zip(edges) {
                                observations.push(Observation {
                                    host: host.to_string(),
                                    path: path.to_string(),
                                    resolver: resolver.to_string(),
                                    edge: Some(
                                        format!("127.{v}.{}.{edge}", ri + 1)
                                            .parse::<IpAddr>()
                                            .unwrap(),
                                    ),
                                    class: failed.then_some(FailureClass::HttpTimeout),
                                    status: if failed { None } else { Some(200) },
                                    phase: failed.then_some(cdnwatch::model::Phase::Processing),
                                    confirmations,
                                });
                            }
                        }
                    }
                }
                RegionRound {
                    region: region.to_string(),
                    control_ok: true,
                    observations,
                }
            })
            .collect();
        (Round { regions }, any_fell)
    }
}

fn engine(start: DateTime<Utc>) -> Engine {
    let hosts = HOSTS
        .iter()
        .map(|(h, v)| HostInfo {
            host: h.to_string(),
            vendor: v.to_string(),
        })
        .collect();
    Engine::new(Policy::default(), hosts, start)
}

/// What a run counted.
struct Counts {
    versions: u32,
    host_changes: u32,
    extra_probes: u64,
}

/// Runs `rounds` rounds; a round whose confirmations reached a fall is evaluated as the service
/// does (the confirmations between two rounds, then the round at the interval).
fn run(rounds: i64, host: &str, mut fails: impl FnMut(i64, &str, usize, u8) -> bool) -> Counts {
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut e = engine(start);
    let mut sim = Sim {
        series: HashMap::new(),
        extra_probes: 0,
    };
    let (mut versions, mut host_changes) = (0, 0);
    let mut enabled = true;
    for i in 0..rounds {
        let at = i * INTERVAL_S;
        let now = start + Duration::seconds(at);
        let (r, fell) = sim.round(at, &mut fails);
        let mut evals = Vec::new();
        if fell {
            let mid = now - Duration::seconds(INTERVAL_S / 2);
            evals.push(e.evaluate_confirmations(&r, &[], mid));
        }
        evals.push(e.evaluate(&r, &[], now));
        for ev in evals {
            if ev.changed && ev.publishable {
                versions += 1;
            }
            let now_enabled = ev.hosts.get(host).is_none_or(|d| d.enabled);
            if now_enabled != enabled {
                host_changes += 1;
                enabled = now_enabled;
            }
        }
    }
    Counts {
        versions,
        host_changes,
        extra_probes: sim.extra_probes,
    }
}

fn main() {
    let month = 30 * 24 * 3600 / INTERVAL_S;
    let probes_per_round = (HOSTS.len() * PATHS.len() * REGIONS.len() * 2) as f64;
    for p in [0.1, 0.2, 0.3] {
        let mut rng = fastrand::Rng::new();
        let t = std::time::Instant::now();
        let c = run(month, "cdn.shop.test", |_, _, _, _| rng.f64() < p);
        println!(
            "BENCHENGINE noise p={p} rounds={month} (30 days at {INTERVAL_S} s) version_changes={} evaluate_us_per_round={:.1} confirmation_probes={:.0}%{}",
            c.versions,
            t.elapsed().as_secs_f64() * 1e6 / month as f64,
            100.0 * c.extra_probes as f64 / (probes_per_round * month as f64),
            if p == 0.1 { " (target: 0)" } else { "" }
        );
    }
    let half_hour = 30 * 60 / INTERVAL_S;
    let down = |t: i64| (t / 60) % 2 == 0;
    let c = run(half_hour, "cdn.shop.test", |t, h, _, _| {
        h == "cdn.shop.test" && down(t)
    });
    println!(
        "BENCHENGINE flapping host=cdn.shop.test 60s down/60s up for 30 min: host_flag_changes={} (target <= 5)",
        c.host_changes
    );
    let c = run(half_hour, "cdn.shop.test", |t, h, region, edge| {
        h == "cdn.shop.test" && region == 0 && edge == 1 && down(t)
    });
    println!(
        "BENCHENGINE flapping one edge of cdn.shop.test (cn-east) 60s down/60s up for 30 min: version_changes={} (expected 0: degraded) confirmation_probes={}",
        c.versions, c.extra_probes
    );
}
