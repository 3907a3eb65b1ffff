//! The systemd units in `deploy/`: `systemd-analyze verify` has nothing to say about them, and
//! every flag they pass to `cdnwatch` is one its `--help` lists (and every flag it requires is
//! passed), so the units cannot drift from the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::process::{BIN, run};

/// The units, as `deploy/` holds them.
const UNITS: [&str; 2] = ["cdnwatch-serve.service", "cdnwatch-agent.service"];
/// Where the units expect the binary (deploy/README.md).
const INSTALLED: &str = "/usr/local/bin/cdnwatch";
/// The tool, where Debian puts it.
const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `Exec…=` line of `unit` that runs the installed cdnwatch, split into words
/// (continuation lines joined, systemd's `-@+!:` prefixes dropped).
fn cdnwatch_commands(unit: &str) -> Vec<Vec<String>> {
    let joined = unit.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Exec"))
        .filter_map(|l| l.split_once('=').map(|(_, v)| v))
        .map(|v| v.trim_start_matches(['-', '@', '+', '!', ':']))
        .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|words| words.first().map(String::as_str) == Some(INSTALLED))
        .collect()
}

/// Whether `help` lists `flag` as a whole word (`--spool` is not `--spool-max-mib`).
fn lists(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let next = help[i + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The flags `help`'s usage line requires: `--server <SERVER> --id <ID>` after `[OPTIONS]`.
fn required(help: &str) -> Vec<String> {
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line in:\n{help}"));
    usage
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(String::from)
        .collect()
}

#[test]
fn the_units_pass_systemd_analyze_verify_without_a_warning() {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        eprintln!("skipped: {SYSTEMD_ANALYZE} is not installed (Debian package `systemd`)");
        return;
    }
    // verify refuses a unit whose binary does not exist: the copies run the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = UNITS
        .iter()
        .map(|name| {
            let text = unit_text(name);
            assert!(
                text.contains(&format!("ExecStart={INSTALLED} ")),
                "{name} runs {INSTALLED}"
            );
            let path = dir.path().join(name);
            std::fs::write(&path, text.replace(INSTALLED, BIN)).unwrap();
            path
        })
        .collect();
    let out = Command::new(SYSTEMD_ANALYZE)
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Only what it says about these units counts (a host's own broken units are not ours); an
    // unknown key or a bad value is a warning with exit status 0, so the words are what fail.
    let about_ours: Vec<&str> = said
        .lines()
        .filter(|l| UNITS.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        out.status
    );
}

#[test]
fn every_flag_the_units_pass_is_one_the_command_lists_and_none_it_requires_is_missing() {
    for name in UNITS {
        let commands = cdnwatch_commands(&unit_text(name));
        assert!(
            commands.iter().any(|c| c.len() > 1),
            "{name} runs a cdnwatch command"
        );
        for words in commands {
            let command = &words[1];
            let (code, help, stderr) = run(&[command, "--help"]);
            assert_eq!(code, 0, "{name}: `cdnwatch {command} --help`: {stderr}");
            let passed: Vec<&str> = words[2..]
                .iter()
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split_once('=').map_or(w.as_str(), |(f, _)| f))
                .collect();
            for flag in &passed {
                assert!(
                    lists(&help, flag),
                    "{name}: `cdnwatch {command}` has no {flag}; its help:\n{help}"
                );
            }
            for flag in required(&help) {
                assert!(
                    passed.contains(&flag.as_str()),
                    "{name}: `cdnwatch {command}` requires {flag}"
                );
            }
        }
    }
}
