//! The real `cdnwatch` binary as separate processes: a standalone lab (`cdnwatch lab`), `serve`
//! and `demo` (agents: `agents.rs`), each on port 0, each killed and reaped when dropped, even when a test panics.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::machine::{Share, shared_blocking};

/// The binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_cdnwatch");

/// Runs `cdnwatch args…` to the end; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A child process, killed and reaped on drop.
pub struct Process {
    pub child: Child,
}

impl Process {
    /// Spawns `cmd` with its stdout piped and reads lines until `stop` holds for one (each line
    /// is shown to `stop`); returns the process and the rest of its stdout.
    pub(super) fn spawn_until(
        mut cmd: Command,
        mut stop: impl FnMut(&str) -> bool,
    ) -> (Process, Lines<BufReader<ChildStdout>>) {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if stop(&line.unwrap()) {
                break;
            }
        }
        (Process { child }, lines)
    }

    /// Sends `sig` (`-TERM`, `-HUP`, `-KILL` …) with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the process to exit; `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cdnwatch lab` in a process of its own, with the config it wrote and its fault API's address.
pub struct LabProcess {
    pub process: Process,
    _share: Share,
    /// `127.0.0.1:PORT` of the fault API.
    pub api: String,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl LabProcess {
    pub fn start() -> LabProcess {
        let share = shared_blocking();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cdnwatch.toml");
        let mut cmd = Command::new(BIN);
        cmd.args(["lab", "--listen", "127.0.0.1:0", "--write-config"])
            .arg(&config)
            .stderr(Stdio::null());
        let mut api = None;
        let (process, _) = Process::spawn_until(cmd, |line| {
            if let Some(rest) = line.trim().strip_prefix("fault API:") {
                api = Some(
                    rest.trim()
                        .trim_start_matches("http://")
                        .trim_end_matches("/faults")
                        .to_string(),
                );
            }
            line.trim().starts_with("config:")
        });
        assert!(config.exists(), "the lab wrote its config");
        LabProcess {
            process,
            _share: share,
            api: api.expect("the lab printed its API address"),
            config,
            _dir: dir,
        }
    }

    /// `cdnwatch probe --config <the lab's> --json extra…`: exit code and one JSON row per line.
    pub fn probe(&self, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let config = self.config.to_str().unwrap();
        let mut args = vec!["probe", "--config", config, "--json"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run(&args);
        let rows = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(code == 0 || code == 1, "probe exit {code}: {stderr}");
        (code, rows)
    }

    /// `cdnwatch lab fault <args[0]> --api <this lab> args[1..]…`.
    pub fn fault(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["lab", "fault"];
        all.push(args[0]);
        all.extend_from_slice(&["--api", &self.api]);
        all.extend_from_slice(&args[1..]);
        run(&all)
    }
}

/// `cdnwatch serve` in a process of its own, its stderr kept in a log file beside `data`.
pub struct ServeProcess {
    pub process: Process,
    /// `http://127.0.0.1:PORT`, as the process printed it.
    pub base: String,
    log: PathBuf,
}

impl ServeProcess {
    pub fn start(config: &Path, data: &Path) -> ServeProcess {
        Self::start_on(config, data, "127.0.0.1:0")
    }

    /// As [`ServeProcess::start`], listening on `listen` (a restart on the port agents know).
    pub fn start_on(config: &Path, data: &Path, listen: &str) -> ServeProcess {
        let log = data.with_extension(format!("{}.log", fastrand::u64(..) % 1_000_000));
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--listen",
            listen,
            "--prober-id",
            "test",
            "--config",
        ])
        .arg(config)
        .arg("--data")
        .arg(data)
        .stderr(std::fs::File::create(&log).unwrap());
        let mut base = None;
        let (process, _) = Process::spawn_until(cmd, |line| {
            base = line
                .strip_prefix("cdnwatch listening on ")
                .map(|url| url.trim().to_string());
            base.is_some()
        });
        let base = base.unwrap_or_else(|| {
            panic!(
                "serve did not start: {}",
                std::fs::read_to_string(&log).unwrap()
            )
        });
        ServeProcess { process, base, log }
    }

    /// What the process has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits for the process to exit; panics with its log after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait_exit(limit).unwrap_or_else(|| {
            panic!("serve did not exit; log:\n{}", self.log());
        })
    }
}

/// A `cdnwatch demo` process (the README's main command) with no tokens in its environment,
/// probing every second.
pub struct DemoProcess {
    pub process: Process,
    /// Where its dashboard (and `/metrics`) listens.
    pub addr: std::net::SocketAddr,
    /// Its agent processes' ids, as it printed them.
    pub agents: Vec<u32>,
    _dir: tempfile::TempDir,
}

impl DemoProcess {
    pub fn start() -> DemoProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--lab-api",
            "127.0.0.1:0",
            "--interval-ms",
            "1000",
        ])
        .arg("--data")
        .arg(dir.path())
        .env_remove("CDNWATCH_ADMIN_TOKEN")
        .env_remove("CDNWATCH_AGENT_TOKEN")
        .stderr(Stdio::null());
        let (mut addr, mut agents) = (None, Vec::new());
        // The banner, then a line per agent (`… (pid N, log …)`), then how to stop one.
        let (process, lines) = Process::spawn_until(cmd, |line| {
            let line = line.trim();
            if let Some(url) = line.strip_prefix("dashboard:") {
                let url = url.trim().trim_start_matches("http://");
                addr = Some(url.trim_end_matches('/').parse().unwrap());
            }
            if let Some(pid) = line.split("(pid ").nth(1).and_then(|r| r.split(',').next()) {
                agents.push(pid.parse().unwrap());
            }
            line.starts_with("stop one:")
        });
        // The demo prints a matrix every interval: keep reading, or it dies on a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        DemoProcess {
            process,
            addr: addr.expect("the demo printed its dashboard address"),
            agents,
            _dir: dir,
        }
    }
}
