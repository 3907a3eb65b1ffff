//! Prober benchmark: full probes (DNS + TCP + TLS + GET) as fast as `--concurrency` loops can, for
//! `--seconds`, then prints probes per second and this process's CPU seconds per 1000 probes.
//!
//! Targets: `--config FILE` (every series of that config, round robin — used against the lab), or
//! `--from-env` (the `BENCH_*` variables that `shared/bench/peer-blackbox.sh targets` exports: the very
//! nginx + unbound that blackbox_exporter is measured on). Driven by `scripts/bench-probe.sh`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use cdnwatch::probe::Prober;

struct Args {
    config: Option<PathBuf>,
    seconds: u64,
    concurrency: usize,
    label: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        config: None,
        seconds: 10,
        concurrency: 16,
        label: "cdnwatch".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--config" => a.config = Some(PathBuf::from(v())),
            "--from-env" => a.config = None,
            "--seconds" => a.seconds = v().parse().expect("--seconds N"),
            "--concurrency" => a.concurrency = v().parse().expect("--concurrency N"),
            "--label" => a.label = v(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A config for the peer-blackbox targets, built from the variables that script exports.
fn config_from_env() -> Config {
    let var = |k: &str| {
        std::env::var(k)
            .unwrap_or_else(|_| panic!("{k} is not set: run under peer-blackbox.sh targets"))
    };
    let url = var("BENCH_HTTPS_URL");
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|| "/".into());
    let text = format!(
        r#"
[probe]
max_edges = 1
[[vendors]]
name = "bench"
ca_file = "{ca}"
system_roots = false
[[hosts]]
domain = "{host}"
vendor = "bench"
role = "primary"
port = {port}
paths = [{{ path = "{path}" }}]
[[regions]]
name = "bench"
resolvers = [{{ name = "unbound", udp = "{dns}" }}]
"#,
        ca = var("BENCH_CA_FILE"),
        host = var("BENCH_HTTP_HOST"),
        port = var("BENCH_HTTPS_PORT"),
        dns = var("BENCH_DNS_SERVER"),
    );
    Config::parse(&text, "bench-env", Path::new("/")).unwrap_or_else(|e| panic!("{e}"))
}

/// utime + stime of this process, from /proc/self/stat (Linux), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Prints the figures: `n` probes of which `okn` succeeded, in `secs` seconds and `cpu` CPU seconds.
fn report(args: &Args, n: u64, okn: u64, secs: f64, cpu: f64) {
    println!(
        "BENCHPROBE label={} probes={} ok_pct={:.2} seconds={:.2} probes_per_s={:.1} cpu_s={:.3} cpu_s_per_1000={:.3} concurrency={}",
        args.label,
        n,
        if n > 0 {
            100.0 * okn as f64 / n as f64
        } else {
            0.0
        },
        secs,
        n as f64 / secs,
        cpu,
        if n > 0 {
            cpu / (n as f64 / 1000.0)
        } else {
            f64::NAN
        },
        args.concurrency
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let config = match &args.config {
        Some(p) => Config::load(p).unwrap_or_else(|e| panic!("{e}")),
        None => config_from_env(),
    };
    let prober = Arc::new(Prober::new(&config).expect("prober"));
    let series: Arc<Vec<_>> = Arc::new(
        config
            .series()
            .map(|s| {
                (
                    s.host.clone(),
                    s.path.clone(),
                    s.region.clone(),
                    s.resolver.clone(),
                )
            })
            .collect(),
    );
    // Warm-up: one round, and a check that the targets answer at all.
    let (h, p, r, s) = &series[0];
    let first = prober.probe(h, p, r, s).await;
    if let Some(f) = first.results.iter().find_map(|r| r.failure.clone()) {
        panic!("the first probe failed: {f:?}");
    }
    let (probes, ok) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let (prober, series, probes, ok) =
            (prober.clone(), series.clone(), probes.clone(), ok.clone());
        tasks.spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let (h, p, r, s) = &series[i % series.len()];
                let report = prober.probe(h, p, r, s).await;
                for row in &report.results {
                    probes.fetch_add(1, Ordering::Relaxed);
                    if row.ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += args.concurrency;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let (cpu, secs) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    report(
        &args,
        probes.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        secs,
        cpu,
    );
}
