//! `cdnwatch demo`: the simulated CDN and the prober in one process, with no setup.
//!
//! It starts the lab on loopback, writes the lab's config and CA to the data directory, and probes
//! every series each interval, printing a host × region matrix and how to inject a fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::app::{self, Selection};
use crate::lab::{Lab, LabOptions};
use crate::model::EdgeResult;
use crate::probe::Prober;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address of the lab's fault-injection API.
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub listen: SocketAddr,
    /// Where the generated config and CA are written.
    #[arg(long, default_value = "data/demo")]
    pub data: PathBuf,
    /// Stop after this many probe rounds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub rounds: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let lab = Lab::start(LabOptions {
        api_listen: args.listen,
        ..LabOptions::default()
    })
    .await
    .context("starting the lab")?;
    let config_path = lab
        .write_config(&args.data)
        .context("writing the lab config")?;
    let config = crate::config::Config::load(&config_path)?;
    let prober = Arc::new(Prober::new(&config)?);
    println!("cdnwatch demo: a simulated two-vendor CDN on loopback");
    println!("  config:     {}", config_path.display());
    println!("  fault API:  http://{}/faults", lab.api_addr());
    println!(
        "  inject:     cargo run --release -- lab fault add --api {} --kind http_status --status 502 --vendor alpha",
        lab.api_addr()
    );
    println!(
        "  probe once: cargo run --release -- probe --config {}",
        config_path.display()
    );
    println!(
        "  clear:      cargo run --release -- lab fault clear --api {}",
        lab.api_addr()
    );
    let mut round = 0u64;
    let mut ticker = tokio::time::interval(config.probe.interval());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        round += 1;
        let rows = app::probe_once(&config, prober.clone(), &Selection::default()).await;
        println!(
            "\nround {round} at {}",
            chrono::Utc::now().format("%H:%M:%S")
        );
        print!("{}", matrix(&rows));
        if args.rounds != 0 && round >= args.rounds {
            break;
        }
    }
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Host rows × region columns: `ok n/m`, or the most frequent failure class with its count.
fn matrix(rows: &[EdgeResult]) -> String {
    let mut cells: BTreeMap<(&str, &str), (usize, usize, BTreeMap<&str, usize>)> = BTreeMap::new();
    let mut regions: Vec<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    for r in rows {
        let cell = cells
            .entry((r.host.as_str(), r.region.as_str()))
            .or_default();
        cell.1 += 1;
        match r.failure_class() {
            None => cell.0 += 1,
            Some(c) => *cell.2.entry(c.as_str()).or_default() += 1,
        }
    }
    let mut hosts: Vec<&str> = cells.keys().map(|(h, _)| *h).collect();
    hosts.dedup();
    let mut out = format!("  {:<22}", "HOST");
    for region in &regions {
        out.push_str(&format!("{region:<26}"));
    }
    out.push('\n');
    for host in hosts {
        out.push_str(&format!("  {host:<22}"));
        for region in &regions {
            let text = match cells.get(&(host, *region)) {
                None => "-".to_string(),
                Some((ok, n, _)) if ok == n => format!("ok {ok}/{n}"),
                Some((ok, n, fails)) => {
                    let (class, count) = fails.iter().max_by_key(|(_, c)| **c).expect("a failure");
                    format!("{class} {count}/{n} (ok {ok})")
                }
            };
            out.push_str(&format!("{text:<26}"));
        }
        out.push('\n');
    }
    out
}
