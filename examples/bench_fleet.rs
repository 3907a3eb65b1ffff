//! Fleet benchmark (printed figures, not a timed test): `cdnwatch serve` in a process of its own,
//! on the lab's config widened to `--series` series in the lab's three regions (probed by the
//! service itself), plus `--agents` regions `agent-0…`, each a copy of cn-east's resolvers with
//! one `[[agents]]` entry (a token file). Three parts, each one plain line of figures and targets,
//! each with the service's CPU seconds and peak RSS over it:
//! 1. ingest: one uploader process per agent (this example, `upload`) speaking the agents' API
//!    back to back; results/s into the store, and the service's own scheduler start lag.
//! 2. replay: `--backlog-minutes` of spooled backlog per agent in the agent's spool format, then
//!    real `cdnwatch agent` processes on those spools; the time until every backlog is sent, the
//!    start lag and `GET /api/v1/hostlist`'s p99 meanwhile.
//! 3. propagation: `--reloads` config reloads (a probe timeout edited, SIGHUP) with the agents
//!    running; the time until each agent runs the new assignment.
//!
//! Refused results and unexpected answers are printed in the part's line, never hidden.
//! Usage (scripts/bench-fleet.sh drives it):
//!   bench_fleet --bin CDNWATCH --lab-config LAB.toml [--agents 10] [--series 1000]
//!     [--agent-series 500] [--interval-ms 10000] [--results 2000000] [--batch 5000]
//!     [--backlog-minutes 60] [--seal-ms 1000] [--hostlist-every-ms 10] [--drain-timeout-s 1800]
//!     [--reloads 20]

#[path = "support/bench_io.rs"]
mod bench_io;
#[path = "support/fleet_api.rs"]
mod fleet_api;
#[path = "support/fleet_parts.rs"]
mod fleet_parts;
#[path = "support/fleet_procs.rs"]
mod fleet_procs;
#[path = "support/fleet_synthetic.rs"]
mod fleet_synthetic;
#[path = "support/fleet_upload.rs"]
mod fleet_upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bench_io::arg;
use cdnwatch::config::{AgentSettings, Config};
use cdnwatch::scheduler::series_of;
use cdnwatch::series::SeriesKey;
use fleet_api::{Api, thousands};
use fleet_procs::{Proc, start_until};

/// The benchmark's sizes; every default is the real run's.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// The `cdnwatch` binary.
    pub(crate) bin: PathBuf,
    /// The config `cdnwatch lab --write-config` wrote.
    pub(crate) lab_config: PathBuf,
    /// Agents (and agent regions, and uploaders).
    pub(crate) agents: usize,
    /// Series the service probes itself, in the lab's regions (about).
    pub(crate) series: usize,
    /// Series of each agent region (about).
    pub(crate) agent_series: usize,
    /// The probe interval.
    pub(crate) interval_ms: u64,
    /// Results the uploaders send in all.
    pub(crate) results: u64,
    /// Results in an uploader's batch.
    pub(crate) batch: usize,
    /// Backlog per agent.
    pub(crate) backlog_minutes: u64,
    /// How often the backlog's batches were sealed (the agent seals every second).
    pub(crate) seal_ms: u64,
    /// The host-list client's pace.
    pub(crate) hostlist_every_ms: u64,
    /// How long the replay may take before it is called not drained.
    pub(crate) drain_timeout_s: u64,
    /// Config reloads.
    pub(crate) reloads: usize,
}

fn num<T: std::str::FromStr>(name: &str, default: &str) -> T {
    arg(name, default)
        .parse()
        .unwrap_or_else(|_| panic!("{name} must be a number"))
}

impl Opts {
    fn from_args() -> Opts {
        let o = Opts {
            bin: arg("--bin", "target/release/cdnwatch").into(),
            lab_config: arg("--lab-config", "").into(),
            agents: num("--agents", "10"),
            series: num("--series", "1000"),
            agent_series: num("--agent-series", "500"),
            interval_ms: num("--interval-ms", "10000"),
            results: num("--results", "2000000"),
            batch: num("--batch", "5000"),
            backlog_minutes: num("--backlog-minutes", "60"),
            seal_ms: num("--seal-ms", "1000"),
            hostlist_every_ms: num("--hostlist-every-ms", "10"),
            drain_timeout_s: num("--drain-timeout-s", "1800"),
            reloads: num("--reloads", "20"),
        };
        assert!(
            o.lab_config.is_file(),
            "--lab-config: the lab's config file"
        );
        assert!(o.bin.is_file(), "--bin: the cdnwatch binary");
        assert!(o.agents > 0 && o.batch > 0 && o.seal_ms > 0 && o.interval_ms > 0);
        o
    }
}

/// The running service and what the parts need of its config.
pub(crate) struct Bench {
    pub(crate) o: Opts,
    pub(crate) dir: tempfile::TempDir,
    /// The config as written (edited and written again by the reloads).
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    /// Each agent region's series, by agent id (= its region's name).
    pub(crate) series: BTreeMap<String, Vec<SeriesKey>>,
    /// Series the service probes itself.
    pub(crate) own_series: usize,
    pub(crate) serve: Proc,
    pub(crate) api: Api,
}

impl Bench {
    /// The token file of agent `id`.
    pub(crate) fn token_file(&self, id: &str) -> PathBuf {
        self.dir.path().join("tokens").join(format!("{id}.token"))
    }

    /// Panics (killing every child) with the end of its log when a process is gone.
    pub(crate) fn insist_alive(&self, what: &str, p: &Proc, log: &Path) {
        if !p.alive() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{what} (pid {}) is gone; the end of its log:\n{}",
                p.pid,
                tail.join("\n")
            );
        }
    }

    /// [`Bench::insist_alive`] of the service.
    pub(crate) fn insist_serving(&self) {
        self.insist_alive(
            "cdnwatch serve",
            &self.serve,
            &self.dir.path().join("serve.log"),
        );
    }

    /// Writes the config where the service reads it (whole, by a rename).
    pub(crate) fn write_config(&self) {
        let tmp = self.config_path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.config.to_toml()).expect("writing the config");
        std::fs::rename(&tmp, &self.config_path).expect("renaming the config");
    }

    async fn start(o: Opts) -> Bench {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = derive_config(&o, dir.path());
        let config_path = dir.path().join("cdnwatch.toml");
        std::fs::write(&config_path, config.to_toml()).expect("writing the config");
        let loaded = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let mut series: BTreeMap<String, Vec<SeriesKey>> = BTreeMap::new();
        let mut own_series = 0;
        for s in series_of(&loaded) {
            if loaded
                .agents
                .iter()
                .any(|a| a.regions.contains(&s.key.region))
            {
                series.entry(s.key.region.clone()).or_default().push(s.key);
            } else {
                own_series += 1;
            }
        }
        let mut cmd = tokio::process::Command::new(&o.bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--prober-id", "bench"])
            .arg("--config")
            .arg(&config_path)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn");
        let log = dir.path().join("serve.log");
        let (serve, base) = start_until(cmd, &log, "cdnwatch listening on ").await;
        let api = Api::new(&base);
        wait_for_hostlist(&api).await;
        Bench {
            o,
            dir,
            config,
            config_path,
            series,
            own_series,
            serve,
            api,
        }
    }

    fn header(&self) {
        let per_agent: Vec<usize> = self.series.values().map(Vec::len).collect();
        let own: Vec<&str> = (self.config.regions.iter())
            .map(|r| r.name.as_str())
            .filter(|r| !self.series.contains_key(*r))
            .collect();
        let o = &self.o;
        println!(
            "fleet: {} cores; the service probes {} series itself ({}); {} agent regions agent-0..{} with {} series each; probe interval {} ms; binary {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            thousands(self.own_series as u64),
            own.join(", "),
            o.agents,
            o.agents - 1,
            per_agent.first().copied().unwrap_or(0),
            o.interval_ms,
            o.bin.display(),
        );
        println!(
            "fleet: sizes --results {} --batch {} --backlog-minutes {} --seal-ms {} --hostlist-every-ms {} --reloads {}",
            o.results, o.batch, o.backlog_minutes, o.seal_ms, o.hostlist_every_ms, o.reloads
        );
    }
}

async fn wait_for_hostlist(api: &Api) {
    for _ in 0..600 {
        if api.get("/api/v1/hostlist").await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service's host list never answered 200");
}

/// The lab's config, widened, with the agent regions, their agents and their token files.
fn derive_config(o: &Opts, dir: &Path) -> Config {
    let mut c = Config::load(&o.lab_config).unwrap_or_else(|e| panic!("{e}"));
    // ca_file paths are relative to the lab's config directory: make them absolute.
    let base = c.base_dir.canonicalize().expect("the lab's directory");
    for v in &mut c.vendors {
        v.ca_file = v.ca_file.take().map(|p| base.join(p));
    }
    c.probe.interval_ms = o.interval_ms;
    let per_resolver = widen(&mut c, o.series);
    let east = (c.regions.iter())
        .find(|r| r.name == "cn-east")
        .expect("the lab's cn-east")
        .clone();
    let copies = ((o.agent_series as f64 / per_resolver as f64).round() as usize).max(1);
    std::fs::create_dir_all(dir.join("tokens")).expect("the tokens' directory");
    for i in 0..o.agents {
        let id = format!("agent-{i}");
        let mut region = east.clone();
        region.name.clone_from(&id);
        let n = east.resolvers.len();
        region.resolvers = (0..copies)
            .map(|k| {
                let mut r = east.resolvers[k % n].clone();
                if k >= n {
                    r.name = format!("{}-{}", r.name, k / n + 1);
                }
                r
            })
            .collect();
        c.regions.push(region);
        let token = format!("tokens/{id}.token");
        std::fs::write(
            dir.join(&token),
            hex::encode(cdnwatch::auth::random_bytes::<32>()),
        )
        .expect("a token file");
        c.agents.push(AgentSettings {
            id: id.clone(),
            regions: vec![id],
            token_sha256: Vec::new(),
            token_files: vec![token.into()],
        });
    }
    c
}

/// Gives every host the fewest paths (the query string makes each a distinct series; the lab
/// serves the object of the path) for `series` series in the config's regions; returns the
/// series per resolver.
fn widen(config: &mut Config, series: usize) -> usize {
    let resolvers: usize = config.regions.iter().map(|r| r.resolvers.len()).sum();
    let bases: Vec<_> = config.hosts.iter().map(|h| h.paths.clone()).collect();
    let mut per_host = 1;
    loop {
        for (host, base) in config.hosts.iter_mut().zip(&bases) {
            host.paths = bench_io::series_paths(base, per_host);
        }
        let n = series_of(config).len();
        if n >= series || per_host > 100_000 {
            return n / resolvers.max(1);
        }
        per_host += 1;
    }
}

/// The three parts, one after the other.
async fn run(o: Opts) {
    let mut bench = Bench::start(o).await;
    bench.header();
    // Warm-up: one interval, so the scheduler's first round is not in any part's figures.
    tokio::time::sleep(Duration::from_millis(bench.o.interval_ms)).await;
    println!("{}", fleet_parts::ingest(&bench).await);
    let (agents, line) = fleet_parts::replay(&bench).await;
    println!("{line}");
    println!("{}", fleet_parts::propagation(&mut bench, &agents).await);
    drop(agents);
    println!("{}", fleet_parts::logs(&bench));
}

/// SIGTERM or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("upload") {
        fleet_upload::main().await;
        return;
    }
    let o = Opts::from_args();
    // On a signal the run is dropped, and with it every child process (killed on drop).
    tokio::select! {
        () = run(o) => {}
        () = stopped() => eprintln!("fleet: stopped by a signal; every child process killed"),
    }
}
