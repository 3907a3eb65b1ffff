//! `cdnwatch probe`: probes the selected series once and prints a table (or JSON lines).
//!
//! Owns no logic of its own beyond selection and exit codes; what is probed and how lives in
//! `probe`, what the output looks like in `report`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Semaphore;

use super::check_config::load_or_report;
use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{Config, Series};
use crate::model::EdgeResult;
use crate::probe::Prober;
use crate::report;

/// Which series a one-shot probe covers; `None` matches all.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Only this host (domain).
    pub host: Option<String>,
    /// Only this probe path.
    pub path: Option<String>,
    /// Only this region.
    pub region: Option<String>,
    /// Only resolvers with this name.
    pub resolver: Option<String>,
}

impl Selection {
    fn matches(&self, s: &Series<'_>) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.host, &s.host.domain)
            && is(&self.path, &s.path.path)
            && is(&self.region, &s.region.name)
            && is(&self.resolver, &s.resolver.name)
    }

    /// A filter value that names nothing in the config is a mistake, not an empty result.
    fn check(&self, config: &Config) -> Result<(), String> {
        let known = |want: &Option<String>, what: &str, names: Vec<&str>| match want {
            Some(w) if !names.contains(&w.as_str()) => Err(format!(
                "no {what} `{w}` in the config (known: {})",
                names.join(", ")
            )),
            _ => Ok(()),
        };
        known(
            &self.host,
            "host",
            config.hosts.iter().map(|h| h.domain.as_str()).collect(),
        )?;
        let paths = config
            .hosts
            .iter()
            .flat_map(|h| h.paths.iter().map(|p| p.path.as_str()));
        let mut paths: Vec<&str> = paths.collect();
        paths.dedup();
        known(&self.path, "path", paths)?;
        known(
            &self.region,
            "region",
            config.regions.iter().map(|r| r.name.as_str()).collect(),
        )?;
        let resolvers = config
            .regions
            .iter()
            .flat_map(|r| r.resolvers.iter().map(|x| x.name.as_str()));
        let mut resolvers: Vec<&str> = resolvers.collect();
        resolvers.sort_unstable();
        resolvers.dedup();
        known(&self.resolver, "resolver", resolvers)
    }
}

/// Probes every selected series once, concurrently (bounded by `probe.concurrency`), and returns the
/// rows sorted by host, path, region, resolver and edge.
pub async fn probe_once(
    config: &Config,
    prober: Arc<Prober>,
    selection: &Selection,
) -> Vec<EdgeResult> {
    let permits = Arc::new(Semaphore::new(config.probe.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for s in config.series().filter(|s| selection.matches(s)) {
        let (host, path, region, resolver) = (
            s.host.clone(),
            s.path.clone(),
            s.region.clone(),
            s.resolver.clone(),
        );
        let (prober, permits) = (prober.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closes");
            prober.probe(&host, &path, &region, &resolver).await.results
        });
    }
    let mut rows = Vec::new();
    while let Some(done) = tasks.join_next().await {
        rows.extend(done.expect("a probe task panicked"));
    }
    rows.sort_by(|a, b| {
        (&a.host, &a.path, &a.region, &a.resolver, a.edge_ip).cmp(&(
            &b.host,
            &b.path,
            &b.region,
            &b.resolver,
            b.edge_ip,
        ))
    });
    rows
}

/// One run, a table (or JSON lines), exit 0 only when every probe passed.
pub(super) async fn run(
    file: &Path,
    selection: &Selection,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let Some(config) = load_or_report(file) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    if let Err(why) = selection.check(&config) {
        eprintln!("{}: {why}", file.display());
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let prober = Arc::new(Prober::new(&config).context("setting up the prober")?);
    let rows = probe_once(&config, prober, selection).await;
    if json {
        print!("{}", report::json_lines(&rows));
    } else {
        print!("{}", report::table(&rows, chrono::Utc::now()));
    }
    let failed = rows.iter().filter(|r| !r.ok()).count();
    if !json {
        println!("{} results, {} failed", rows.len(), failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
