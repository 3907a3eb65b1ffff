//! What the benchmarks that drive a running process share: their `--name value` arguments, a lab
//! config widened to N series, a process's resident memory, and one raw HTTP/1.1 response read
//! off a socket (raw, so the load generator's own client adds as little as possible to what is
//! measured).
#![allow(dead_code)]

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The value after `name` on the command line, else `default`.
pub(crate) fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].clone())
        .unwrap_or_else(|| default.to_string())
}

/// utime + stime of this process in seconds, and its peak RSS in MiB.
pub(crate) fn cpu_and_peak_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let cpu = (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: f64 = hwm.split_whitespace().nth(1).unwrap().parse().unwrap();
    (cpu, kb / 1024.0)
}

/// The scheduler's start-lag histogram in a `/metrics` text: (upper bound in seconds,
/// cumulative count).
pub(crate) fn lag_buckets_in(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter(|l| l.starts_with("cdnwatch_scheduler_lag_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = l.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
            Some((le, count))
        })
        .collect()
}

/// The p99 of the lags observed between two snapshots of that histogram, as the upper bound of
/// its bucket in ms, and how many lags there were; `None` when there were none.
pub(crate) fn lag_p99_ms(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<(f64, u64)> {
    let diff: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before.iter().find(|(b, _)| b == le).map_or(0, |(_, n)| *n);
            (*le, n.saturating_sub(was))
        })
        .collect();
    let total = diff.last()?.1;
    let want = (total as f64 * 0.99).ceil() as u64;
    diff.iter()
        .find(|(_, n)| *n >= want && total > 0)
        .map(|(le, _)| (le * 1000.0, total))
}

/// `VmRSS` of process `pid` ("self" for this one) in KiB; `None` once it is gone.
pub(crate) fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads one response (Content-Length bodies only) into `buf`, keeping what follows it there; its
/// status and body, or `None` when the server closed the connection first.
pub(crate) async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(u16, String)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head.get(9..12)?.parse().ok()?;
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            buf.drain(..end + 4 + len);
            return Some((status, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Widens the lab's config to `series` series: more paths per host (the query string makes each
/// a distinct series; the lab serves the object of the path).
pub(crate) fn widen(config: &mut cdnwatch::config::Config, series: usize) {
    let per_path: usize = config
        .regions
        .iter()
        .map(|r| r.resolvers.len())
        .sum::<usize>()
        * config.hosts.len();
    let paths_per_host = series.div_ceil(per_path);
    for host in &mut config.hosts {
        host.paths = series_paths(&host.paths, paths_per_host);
    }
}

/// `n` probe paths made of `base`'s in turn, each its own series by its query string.
pub(crate) fn series_paths(
    base: &[cdnwatch::config::ProbePath],
    n: usize,
) -> Vec<cdnwatch::config::ProbePath> {
    (0..n)
        .map(|i| {
            let mut p = base[i % base.len()].clone();
            p.path = format!("{}?series={i}", p.path);
            p
        })
        .collect()
}
