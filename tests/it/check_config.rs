//! `cdnwatch check-config` as an operator meets it: the real binary on real files.

use std::process::Command;

use crate::harness::fixture;
use crate::harness::process::BIN;

/// Runs `cdnwatch check-config` on a fixture: exit code, stdout, stderr with the path as `FILE`.
fn check(name: &str) -> (i32, String, String) {
    let file = fixture(name);
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&file.display().to_string(), "FILE");
    (out.status.code().unwrap(), stdout, stderr)
}

#[test]
fn a_valid_file_prints_the_series_arithmetic_and_exits_zero() {
    let (code, out, err) = check("check-config-valid.toml");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "2 hosts with 3 paths in all × 2 regions with 3 resolvers in all = 9 probe series"
        ),
        "{out}"
    );
}

#[test]
fn every_problem_is_printed_with_line_column_and_field_and_the_exit_status_is_two() {
    let (code, out, err) = check("check-config-three-problems.toml");
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("FILE:12:8: hosts[0].rate: rate 2 is outside 0..1"),
        "{err}"
    );
    assert!(
        err.contains(
            "FILE:17:10: hosts[1].vendor: no vendor is named `betta` (known: alpha, beta)"
        ),
        "{err}"
    );
    assert!(
        err.contains("FILE:27:17: regions[1].client_subnet: prefix /40 is longer than 32 bits"),
        "{err}"
    );
}

#[test]
fn a_file_that_does_not_exist_is_named_in_the_error() {
    let out = Command::new(BIN)
        .args(["check-config", "/nonexistent/cdnwatch.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot read config file /nonexistent/cdnwatch.toml"),
        "{err}"
    );
}

#[test]
fn a_bad_path_fault_is_refused_with_its_position_and_the_choices() {
    let (code, _, err) = check("check-config-bad-path-fault.toml");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("FILE:29:14: engine.path_fault: unknown variant `rollback`, expected one of `least_traffic`, `rollback_merge`, `disable_vendor`, `raise`"),
        "{err}"
    );
}
