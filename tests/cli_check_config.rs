//! `cdnwatch check-config` as an operator meets it: the real binary on real files.

use std::process::Command;

fn check(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cdnwatch.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cdnwatch"))
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

const VALID: &str = r#"
[[vendors]]
name = "alpha"

[[vendors]]
name = "beta"

[[hosts]]
domain = "cdn.shop.test"
vendor = "alpha"
role = "primary"
paths = [{ path = "/image/a.jpg" }, { path = "/product/b.json" }]

[[hosts]]
domain = "cdn-bak.shop.test"
vendor = "beta"
role = "other_vendor_backup"
paths = [{ path = "/image/a.jpg" }]

[[regions]]
name = "east"
resolvers = [{ name = "isp", udp = "127.0.0.1:53" }, { name = "public", tcp = "127.0.0.1:53" }]

[[regions]]
name = "west"
resolvers = [{ name = "isp", udp = "127.0.0.2:53" }]
"#;

#[test]
fn a_valid_file_prints_the_series_arithmetic_and_exits_zero() {
    let (code, out, err) = check(VALID);
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
    let bad = VALID
        .replace("role = \"primary\"", "role = \"primary\"\nrate = 2")
        .replace("vendor = \"beta\"", "vendor = \"betta\"")
        .replace(
            "name = \"west\"",
            "name = \"west\"\nclient_subnet = \"10.0.0.0/40\"",
        );
    let (code, out, err) = check(&bad);
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
    let out = Command::new(env!("CARGO_BIN_EXE_cdnwatch"))
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
