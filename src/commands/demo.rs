//! `cdnwatch demo`: the simulated CDN and the whole service with its real topology, no setup.
//!
//! It starts the lab on loopback, writes the lab's config and CA to the data directory, gives each
//! region an agent (a token file each, `[[agents]]` in the config), starts `serve` on that config
//! — which then probes nothing itself — and one `cdnwatch agent` process per region, and prints a
//! host × region matrix of the latest results each interval, with what to open, how to inject a
//! fault and how to stop an agent. `demo --local` keeps everything in one process, the service
//! probing every region itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

mod agents;

use super::Signals;
use crate::lab::{Lab, LabOptions};
use crate::startup::{self, Running, ServeOptions};
use crate::store::SeriesLatest;

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Address of cdnwatch's HTTP server (status API, /metrics, the dashboard).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also serve the app clients' routes alone on this address, as `serve --public-listen`.
    #[arg(long)]
    pub public_listen: Option<SocketAddr>,
    /// Address of the lab's fault-injection API.
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub lab_api: SocketAddr,
    /// Where the generated config, the CA and the database go.
    #[arg(long, default_value = "data/demo")]
    pub data: PathBuf,
    /// Stop after this many probe intervals (0: run until Ctrl-C or SIGTERM).
    #[arg(long, default_value_t = 0)]
    pub rounds: u64,
    /// Probe every this many milliseconds instead of the lab config's five seconds (a quicker
    /// demo; the integration tests use it).
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// One process: the service probes every region itself, no agents.
    #[arg(long)]
    pub local: bool,
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install().context("listening for signals")?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let lab = Lab::start(LabOptions {
        api_listen: args.lab_api,
        ..LabOptions::default()
    })
    .await
    .context("starting the lab")?;
    let config_path = args.data.join("cdnwatch.toml");
    lab.write_config(&config_path)
        .context("writing the lab config")?;
    let mut config = crate::config::Config::load(&config_path)?;
    if let Some(ms) = args.interval_ms {
        config.probe.interval_ms = ms;
    }
    let agents = if args.local {
        Vec::new()
    } else {
        agents::configure(&mut config, &args.data)?
    };
    std::fs::write(&config_path, config.to_toml())
        .with_context(|| format!("writing {}", config_path.display()))?;
    let running = startup::start(ServeOptions {
        config_path: config_path.clone(),
        data_dir: args.data.clone(),
        listen: args.listen,
        public_listen: args.public_listen,
        prober_id: "demo".into(),
        tokens: crate::auth::Tokens::from_env().map_err(anyhow::Error::msg)?,
        bump_version: None,
        init_key: false,
        clock: crate::clock::Clock::system(),
    })
    .await?;
    print_banner(&running, &config_path, lab.api_addr());
    let server = format!("http://{}", running.addr);
    let children = agents::spawn(&agents, &server)?;
    agents::print(&children);
    show_rounds(&running, &mut signals, args.rounds).await;
    agents::stop(children).await;
    running.shutdown().await;
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// What to open and how to inject a fault.
fn print_banner(running: &Running, config_path: &Path, api: SocketAddr) {
    println!("cdnwatch demo: a simulated two-vendor CDN on loopback, probed continuously");
    println!("  dashboard:  http://{}/", running.addr);
    println!(
        "  overrides:  http://{}/config ({})",
        running.addr,
        if running.state.tokens.admin.is_some() {
            "sign in with $CDNWATCH_ADMIN_TOKEN"
        } else {
            "start the demo with CDNWATCH_ADMIN_TOKEN set to use its forms"
        }
    );
    println!("  status:     http://{}/api/v1/status", running.addr);
    println!("  metrics:    http://{}/metrics", running.addr);
    if let Some(public) = running.public_addr {
        println!("  public:     http://{public}/api/v1/hostlist (app clients' routes only)");
    }
    println!("  config:     {}", config_path.display());
    println!("  fault API:  http://{api}/faults");
    println!(
        "  inject:     cargo run --release -- lab fault add --api {api} --kind http_status --status 502 --vendor alpha"
    );
    println!(
        "  probe once: cargo run --release -- probe --config {}",
        config_path.display()
    );
    println!("  clear:      cargo run --release -- lab fault clear --api {api}");
}

/// Prints the matrix each interval until a signal, a closed output, or `rounds` rounds (0: none).
async fn show_rounds(running: &Running, signals: &mut Signals, rounds: u64) {
    let interval = running.state.config.get().probe.interval();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let stop = signals.wait(running);
    tokio::pin!(stop);
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        round += 1;
        match running.state.store.latest().await {
            Ok(latest) => {
                use std::io::Write as _;
                let shown = write!(
                    std::io::stdout(),
                    "\n{}\n{}",
                    chrono::Utc::now().format("%H:%M:%S"),
                    matrix(&latest)
                );
                // Whoever read our output is gone (`demo | head`): stop cleanly, as on SIGTERM.
                if let Err(e) = shown {
                    eprintln!("stopping: the output is closed ({e})");
                    return;
                }
            }
            Err(e) => eprintln!("reading the latest results failed: {e}"),
        }
        if rounds != 0 && round >= rounds {
            return;
        }
    }
}

/// Host rows × region columns: `ok n/m`, or the most frequent failure class with its count. Each
/// column is as wide as its widest cell, so a long class never runs into the next cell.
fn matrix(rows: &[SeriesLatest]) -> String {
    let cells = cells(rows);
    let mut regions: Vec<&str> = rows.iter().map(|r| r.series.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let mut hosts: Vec<&str> = cells.keys().map(|(h, _)| *h).collect();
    hosts.dedup();
    let text = |host: &str, region: &str| cells.get(&(host, region)).map_or("-".into(), cell_text);
    let mut table: Vec<Vec<String>> = vec![
        std::iter::once("HOST".to_string())
            .chain(regions.iter().map(|r| r.to_string()))
            .collect(),
    ];
    for host in hosts {
        let row = regions.iter().map(|region| text(host, region));
        table.push(std::iter::once(host.to_string()).chain(row).collect());
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(&format!("  {}\n", line.join("  ").trim_end()));
    }
    out
}

/// Per (host, region): probes that passed, probes in all, and the failures by class.
type Cell<'a> = (usize, usize, BTreeMap<&'a str, usize>);

fn cells(rows: &[SeriesLatest]) -> BTreeMap<(&str, &str), Cell<'_>> {
    let mut cells: BTreeMap<(&str, &str), Cell<'_>> = BTreeMap::new();
    for r in rows {
        let cell = cells
            .entry((r.series.host.as_str(), r.series.region.as_str()))
            .or_default();
        cell.1 += 1;
        match &r.failure {
            None => cell.0 += 1,
            Some(c) => *cell.2.entry(c.as_str()).or_default() += 1,
        }
    }
    cells
}

fn cell_text((ok, n, fails): &Cell<'_>) -> String {
    match fails.iter().max_by_key(|(_, c)| **c) {
        None => format!("ok {ok}/{n}"),
        Some((class, count)) => format!("{class} {count}/{n} (ok {ok})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesKey;

    fn row(host: &str, region: &str, failure: Option<&str>) -> SeriesLatest {
        SeriesLatest {
            series: SeriesKey {
                host: host.into(),
                path: "/p".into(),
                region: region.into(),
                resolver: "isp".into(),
            },
            at_ms: 0,
            edge: None,
            failure: failure.map(String::from),
            status: None,
            total_ms: None,
        }
    }

    #[test]
    fn a_long_failure_class_widens_its_column_instead_of_running_into_the_next() {
        let rows = vec![
            row("cdn.shop.test", "cn-east", Some("content_mismatch")),
            row("cdn.shop.test", "cn-north", Some("content_mismatch")),
            row("cdn-bak.shop.test", "cn-east", None),
            row("cdn-bak.shop.test", "cn-north", None),
        ];
        let text = matrix(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let failing = lines.iter().find(|l| l.contains("cdn.shop.test")).unwrap();
        assert!(
            failing.contains("content_mismatch 1/1 (ok 0)  content_mismatch 1/1 (ok 0)"),
            "{text}"
        );
        // Every column starts at the same offset on every line.
        let north = lines[0].find("cn-north").unwrap();
        let healthy = lines.iter().find(|l| l.contains("cdn-bak")).unwrap();
        assert_eq!(&healthy[north..north + 6], "ok 1/1", "{text}");
        assert_eq!(&failing[north..north + 16], "content_mismatch", "{text}");
    }
}
