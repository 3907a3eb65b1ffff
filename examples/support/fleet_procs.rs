//! The fleet benchmark's child processes and what it reads of them: each child is killed when its
//! handle drops (the benchmark leaves nothing running, whatever stops it), started and awaited
//! until its first line says it is ready; the service's CPU seconds and peak RSS come from /proc.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A child process, killed (SIGKILL) when dropped.
pub(crate) struct Proc {
    /// Its process id.
    pub(crate) pid: u32,
    _child: Child,
}

impl Proc {
    /// Whether it still runs (not gone, not a zombie).
    pub(crate) fn alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        !matches!(state, None | Some("Z" | "X"))
    }

    /// Sends `signal` (`-HUP`, `-TERM`) to it.
    pub(crate) fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {} failed", self.pid);
    }
}

/// Starts `cmd` (its stderr into `log`) and waits until a line of its stdout starts with
/// `marker`; returns it and the rest of that line. The rest of its stdout is read and dropped.
pub(crate) async fn start_until(mut cmd: Command, log: &Path, marker: &str) -> (Proc, String) {
    cmd.kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("a log file"));
    let mut child = cmd.spawn().expect("spawning a child process");
    let pid = child.id().expect("a running child");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(marker) {
                return Some(rest.trim().to_string());
            }
        }
        None
    })
    .await;
    let Ok(Some(rest)) = found else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{cmd:?} did not say `{marker}`; its log:\n{text}");
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Proc { pid, _child: child }, rest)
}

/// utime + stime of process `pid`, in seconds (100 ticks a second, as on Linux).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// The service's CPU and resident memory over one part: RSS sampled every 100 ms.
pub(crate) struct Meter {
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    cpu0: f64,
    sampler: tokio::task::JoinHandle<()>,
}

impl Meter {
    /// Starts measuring process `pid`.
    pub(crate) fn begin(pid: u32) -> Meter {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = peak_kib.clone();
        let sampler = tokio::spawn(async move {
            loop {
                if let Some(kib) = crate::bench_io::rss_kib(&pid.to_string()) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Meter {
            pid,
            peak_kib,
            cpu0: cpu_seconds(pid),
            sampler,
        }
    }

    /// `service CPU 12.3 s, peak RSS 81 MB` since [`Meter::begin`].
    pub(crate) fn end(self) -> String {
        self.sampler.abort();
        let cpu = cpu_seconds(self.pid) - self.cpu0;
        let peak = self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0;
        format!("service CPU {cpu:.1} s, peak RSS {peak:.0} MB")
    }
}
