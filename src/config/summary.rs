//! What a valid config amounts to: the series arithmetic `check-config` prints. Owns no checks.

use std::fmt;

use super::Config;

/// What a valid config amounts to: the numbers `check-config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Hosts probed.
    pub hosts: usize,
    /// Probe paths over all hosts.
    pub host_paths: usize,
    /// Regions probed from.
    pub regions: usize,
    /// Resolvers over all regions.
    pub resolvers: usize,
    /// Probe series: each host path from each region through each of its resolvers.
    pub series: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hosts with {} paths in all × {} regions with {} resolvers in all = {} probe series",
            self.hosts, self.host_paths, self.regions, self.resolvers, self.series
        )
    }
}

impl Config {
    /// The counts of hosts, paths, regions, resolvers and the series they make.
    pub fn summary(&self) -> Summary {
        let host_paths: usize = self.hosts.iter().map(|h| h.paths.len()).sum();
        let resolvers: usize = self.regions.iter().map(|r| r.resolvers.len()).sum();
        Summary {
            hosts: self.hosts.len(),
            host_paths,
            regions: self.regions.len(),
            resolvers,
            series: host_paths * resolvers,
        }
    }
}
