//! Guards that hold before anything starts: a short token refuses start naming its variable or its
//! agent, and `check-config` bounds every number with its position.

use std::process::Command;

use crate::harness::process::BIN;
use crate::harness::*;

#[test]
fn a_short_token_refuses_start_naming_its_variable_or_its_agent() {
    let _share = crate::harness::machine::shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    let serve = |config: &std::path::Path, env: Option<(&str, &str)>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env_remove("CDNWATCH_ADMIN_TOKEN");
        if let Some((var, value)) = env {
            cmd.env(var, value);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        assert!(
            !dir.path().join("data").exists(),
            "refused before anything started"
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let config = dir.path().join("cdnwatch.toml");
    let err = serve(&config, Some(("CDNWATCH_ADMIN_TOKEN", "secret-admin")));
    assert!(err.contains("CDNWATCH_ADMIN_TOKEN: the token has"), "{err}");
    assert!(err.contains("at least 32 are required"), "{err}");
    // An agent's token file too short: the config names the agent and the file.
    std::fs::write(dir.path().join("east.token"), "short-agent-token\n").unwrap();
    let valid = std::fs::read_to_string(fixture("check-config-valid.toml")).unwrap();
    let text = format!(
        "{valid}\n[[agents]]\nid = \"agent-east\"\nregions = [\"{}\"]\ntoken_files = [\"east.token\"]\n",
        first_region(&valid)
    );
    std::fs::write(&config, text).unwrap();
    let err = serve(&config, None);
    assert!(err.contains("agents[0].token_files[0]"), "{err}");
    assert!(
        err.contains("has 17 characters; at least 32 are required"),
        "{err}"
    );
}

/// The name of the first `[[regions]]` entry of a config's text.
fn first_region(text: &str) -> String {
    let at = text.find("[[regions]]").expect("a region");
    text[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"').to_string())
        .expect("its name")
}

#[test]
fn check_config_refuses_out_of_range_numbers_with_their_positions() {
    let _share = crate::harness::machine::shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    let valid = std::fs::read_to_string(fixture("check-config-valid.toml")).unwrap();
    let text = format!(
        "[probe]\ninterval_ms = 18446744073709551615\n\n{valid}\n[store]\nraw_retention_hours = 18446744073709551615\n\n[engine]\nhold_decay_ms = 99999999999999\n"
    );
    let file = dir.path().join("cdnwatch.toml");
    std::fs::write(&file, &text).unwrap();
    let file = file.display().to_string();
    let line = |key: &str| 1 + text.lines().position(|l| l.starts_with(key)).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    for (key, field, range) in [
        (
            "interval_ms",
            "probe.interval_ms",
            "allowed from 100 to 86400000 ms",
        ),
        (
            "raw_retention_hours",
            "store.raw_retention_hours",
            "allowed from 1 to 87600 hours",
        ),
        (
            "hold_decay_ms",
            "engine.hold_decay_ms",
            "allowed from 1 to 31536000000 ms",
        ),
    ] {
        let at = format!("{file}:{}:", line(key));
        let said = err.lines().find(|l| l.contains(&at) && l.contains(field));
        let said = said.unwrap_or_else(|| panic!("no {field} at {at}: {err}"));
        assert!(
            said.contains("is out of range") && said.contains(range),
            "{said}"
        );
    }
}
