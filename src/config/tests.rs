use super::*;

const GOOD: &str = r#"
[probe]
interval_ms = 10000
max_edges = 2

[client]
public_ip_list = ["223.5.5.5"]

[[vendors]]
name = "alpha"

[[hosts]]
domain = "cdn.shop.test"
vendor = "alpha"
role = "primary"
port = 8443

[[hosts.paths]]
path = "/image/probe.png"
expect_size = 1024

[[hosts.paths]]
path = "/product/probe.json"
method = "HEAD"

[[merged_hosts]]
host = "image.shop.test"
path_prefix = "/image"
rate = 0.5

[[regions]]
name = "east"
client_subnet = "198.51.100.0/24"
control_targets = ["127.0.0.1:9"]

[[regions.resolvers]]
name = "isp"
udp = "127.0.0.1:5300"

[[regions.resolvers]]
name = "public"
tcp = "127.0.0.1:5301"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", Path::new("."))
}

fn problems(text: &str) -> Vec<Problem> {
    parse(text)
        .expect_err("must be refused")
        .problems()
        .to_vec()
}

#[test]
fn a_valid_file_loads_with_defaults_filled_in() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.probe.interval_ms, 10_000);
    assert_eq!(c.probe.timeouts.dns_ms, DEFAULT_DNS_TIMEOUT_MS);
    assert_eq!(c.hosts[0].paths[1].method, Method::Head);
    assert_eq!(c.hosts[0].paths[0].accept_status, vec![200]);
    assert_eq!(
        c.regions[0].client_subnet,
        Some(ClientSubnet {
            ip: "198.51.100.0".parse().unwrap(),
            prefix: 24
        })
    );
    assert_eq!(
        c.regions[0].resolvers[1].transport,
        Transport::Tcp("127.0.0.1:5301".parse().unwrap())
    );
    let s = c.summary();
    assert_eq!(
        (s.hosts, s.host_paths, s.regions, s.resolvers, s.series),
        (1, 2, 1, 2, 4)
    );
}

#[test]
fn a_config_survives_a_round_trip_through_toml() {
    let c = parse(GOOD).unwrap();
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn a_misspelt_key_is_an_error_at_its_line_and_column_with_its_path() {
    let bad = GOOD.replace("method = \"HEAD\"", "metod = \"HEAD\"");
    let p = problems(&bad);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].field, "hosts[0].paths[1].metod");
    assert!(
        p[0].message.contains("unknown field `metod`"),
        "{}",
        p[0].message
    );
    let line = bad.lines().position(|l| l.starts_with("metod")).unwrap() + 1;
    assert_eq!((p[0].line, p[0].column), (line, 1));
}

#[test]
fn every_bad_entry_is_reported_not_just_the_first() {
    let bad = GOOD
        .replace("role = \"primary\"", "role = \"main\"")
        .replace("name = \"public\"", "name = \"public\"\nport = 53");
    let p = problems(&bad);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].field, "hosts[0].role");
    assert!(p[0].message.contains("main"), "{}", p[0].message);
    assert_eq!(p[1].field, "regions[0].resolvers[1].port");
    assert!(p[1].message.contains("unknown field `port`"));
}

#[test]
fn semantic_errors_name_the_field_and_its_place() {
    let bad = GOOD
        .replace("vendor = \"alpha\"", "vendor = \"gamma\"")
        .replace("udp = \"127.0.0.1:5300\"", "udp = \"localhost\"")
        .replace("rate = 0.5", "rate = 1.5");
    let p = problems(&bad);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "hosts[0].vendor",
            "merged_hosts[0].rate",
            "regions[0].resolvers[0].udp"
        ],
        "{p:?}"
    );
    assert!(
        p[0].message
            .contains("no vendor is named `gamma` (known: alpha)")
    );
    let vendor_line = bad.lines().position(|l| l.contains("\"gamma\"")).unwrap() + 1;
    assert_eq!(p[0].line, vendor_line);
    assert_eq!(p[0].column, "vendor = ".len() + 1);
}

#[test]
fn a_syntax_error_is_located() {
    let bad = GOOD.replace("max_edges = 2", "max_edges = = 2");
    let p = problems(&bad);
    assert!(!p.is_empty());
    assert_eq!(p[0].line, 4, "{p:?}");
}

#[test]
fn an_unknown_section_is_an_error() {
    let p = problems(&format!("{GOOD}\n[sotre]\npath = \"x\"\n"));
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("unknown section `sotre`"));
}

#[test]
fn a_resolver_with_two_transports_and_a_doh_resolver_named_by_host_are_refused() {
    let bad = GOOD.replace(
        "tcp = \"127.0.0.1:5301\"",
        "tcp = \"127.0.0.1:5301\"\nudp = \"127.0.0.1:5301\"",
    );
    let p = problems(&bad);
    assert_eq!(p[0].field, "regions[0].resolvers[1]");
    assert!(p[0].message.contains("exactly one of udp, tcp or doh"));
    // DoH carries the region's client subnet like udp and tcp; its server is an IP address.
    let doh = GOOD.replace(
        "tcp = \"127.0.0.1:5301\"",
        "doh = \"https://127.0.0.1:5301/dns-query\"",
    );
    let c = parse(&doh).expect("a DoH resolver in a region with a client subnet");
    assert!(matches!(
        c.regions[0].resolvers[1].transport,
        Transport::Doh(_)
    ));
    for (url, says) in [
        ("https://dns.example/dns-query", "must be an IP address"),
        ("http://127.0.0.1/dns-query", "is not an https:// URL"),
        ("https://127.0.0.1:x/q", "`x` is not a port"),
        ("https://[::1/q", "has no closing `]`"),
    ] {
        let bad = GOOD.replace("tcp = \"127.0.0.1:5301\"", &format!("doh = \"{url}\""));
        let p = problems(&bad);
        assert_eq!(p[0].field, "regions[0].resolvers[1].doh", "{url}");
        assert!(p[0].message.contains(says), "{url}: {p:?}");
    }
}

#[test]
fn doh_urls_are_split_into_ip_port_and_path() {
    assert_eq!(
        split_doh_url("https://127.0.0.1:8443/dns-query").unwrap(),
        ("127.0.0.1".parse().unwrap(), 8443, "/dns-query".into())
    );
    assert_eq!(
        split_doh_url("https://[::1]/q").unwrap(),
        ("::1".parse().unwrap(), 443, "/q".into())
    );
    assert_eq!(split_doh_url("https://127.0.0.2").unwrap().2, "/dns-query");
}

#[test]
fn a_missing_ca_file_is_reported_on_its_vendor() {
    let bad = GOOD.replace(
        "name = \"alpha\"",
        "name = \"alpha\"\nca_file = \"/nonexistent/ca.pem\"",
    );
    let p = problems(&bad);
    assert_eq!(p[0].field, "vendors[0].ca_file");
    assert!(
        p[0].message
            .contains("cannot read CA file /nonexistent/ca.pem")
    );
}

#[test]
fn an_empty_file_says_what_is_missing() {
    let p = problems("");
    assert_eq!(p.len(), 2);
    assert!(p[0].message.contains("no [[hosts]]"));
    assert!(p[1].message.contains("no [[regions]]"));
}

#[test]
fn the_dashboard_warns_about_certificates_two_weeks_ahead_unless_told_otherwise() {
    assert_eq!(parse(GOOD).unwrap().dashboard.cert_warn_days, 14);
    let c = parse(&format!("{GOOD}\n[dashboard]\ncert_warn_days = 30\n")).unwrap();
    assert_eq!(c.dashboard.cert_warn_days, 30);
}

#[test]
fn a_dashboard_warning_limit_of_zero_days_is_refused_at_its_line() {
    let text = format!("{GOOD}\n[dashboard]\ncert_warn_days = 0\n");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].field, "dashboard.cert_warn_days");
    assert!(p[0].message.contains("from 1 to 365"), "{}", p[0].message);
    assert_eq!(p[0].line, text.lines().count());
    let p = problems(&format!("{GOOD}\n[dashboard]\ncert_warn_day = 3\n"));
    assert!(
        p[0].message.contains("unknown field `cert_warn_day`"),
        "{p:?}"
    );
}

#[test]
fn typed_values_deserialize_through_serde_with_the_same_sentences() {
    let c: Config = toml::from_str(GOOD).unwrap();
    assert_eq!(c.hosts[0].paths[0].check, Some(ContentCheck::Size(1024)));
    assert_eq!(
        c.regions[0].control_targets,
        ["127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap()]
    );
    let bad = GOOD.replace("198.51.100.0/24", "198.51.100.0/33");
    let e = toml::from_str::<Config>(&bad).unwrap_err().to_string();
    assert!(
        e.contains("client_subnet: prefix /33 is longer than 32 bits"),
        "{e}"
    );
}

/// GOOD with numbers past their bounds in every section.
fn out_of_range_text() -> String {
    let huge = u64::MAX;
    let text = GOOD
        .replace(
            "interval_ms = 10000\nmax_edges = 2",
            &format!(
                "interval_ms = {huge}\nconfirm_interval_ms = 5\nconcurrency = {huge}\n\n[probe.timeouts]\ndns_ms = {huge}"
            ),
        )
        .replace("[client]\n", "[client]\nrevive_probe_interval_ms = 0\n");
    format!(
        "{text}\n[store]\nraw_retention_hours = {huge}\nhour_rollup_days = 9999999\n\n[engine]\nhold_base_ms = {huge}\nhold_cap_ms = {huge}\nfall_rounds = {huge}\n"
    )
}

#[test]
fn numbers_past_their_upper_bound_are_refused_each_at_its_line_with_the_range() {
    let text = out_of_range_text();
    let p = problems(&text);
    for (field, range) in [
        ("probe.interval_ms", "allowed from 100 to 86400000 ms"),
        ("probe.confirm_interval_ms", "allowed from 10 to 600000 ms"),
        ("probe.concurrency", "allowed from 1 to 65536 probes"),
        ("probe.timeouts.dns_ms", "allowed from 1 to 600000 ms"),
        ("client.revive_probe_interval_ms", "allowed from 1000"),
        ("store.raw_retention_hours", "to 87600 hours"),
        ("store.hour_rollup_days", "to 36500 days"),
        ("engine.fall_rounds", "allowed from 1 to 10000"),
        ("engine.hold_base_ms", "to 2592000000 ms"),
        ("engine.hold_cap_ms", "to 2592000000 ms"),
    ] {
        let key = field.rsplit('.').next().unwrap();
        let line = 1
            + (text.lines())
                .position(|l| l.starts_with(&format!("{key} =")))
                .unwrap();
        let found = p.iter().find(|x| x.field == field);
        let found = found.unwrap_or_else(|| panic!("no problem for {field}: {p:#?}"));
        assert_eq!(
            (found.line, found.column),
            (line, key.len() + 4),
            "{found:?}"
        );
        assert!(found.message.contains(range), "{found:?}");
        assert!(found.message.contains("is out of range"), "{found:?}");
    }
}

#[test]
fn an_out_of_range_number_is_rendered_with_file_line_column_field_and_range() {
    let rendered = parse(&out_of_range_text()).unwrap_err().to_string();
    let said = format!(
        "test.toml:3:15: probe.interval_ms: {} is out of range: allowed from 100 to 86400000 ms",
        u64::MAX
    );
    assert!(rendered.contains(&said), "{rendered}");
}

#[test]
fn an_expected_size_past_a_gibibyte_and_a_bad_external_url_are_refused() {
    let text = GOOD.replace("expect_size = 1024", "expect_size = 2000000000");
    let p = problems(&text);
    assert_eq!(p[0].field, "hosts[0].paths[0].expect_size", "{p:?}");
    let p = problems(&format!(
        "{GOOD}\n[dashboard]\nexternal_url = \"ftp://x\"\n"
    ));
    assert_eq!(p[0].field, "dashboard.external_url", "{p:?}");
    let c = parse(&format!(
        "{GOOD}\n[dashboard]\nexternal_url = \"HTTPS://watch.example.com/cdn\"\n"
    ))
    .unwrap();
    assert!(c.dashboard.is_https());
    assert!(!parse(GOOD).unwrap().dashboard.is_https());
}

#[test]
fn notify_channels_and_routes_are_checked_each_at_its_line() {
    let text = format!(
        "{GOOD}
[notify]
language = \"zh-CN\"

[[notify.channels]]
name = \"chat\"
kind = \"wecom\"
url_env = \"CDNWATCH_TEST_NO_SUCH_VARIABLE\"

[[notify.channels]]
name = \"pager\"
kind = \"slack\"
url_file = \"no-such-url-file\"

[[notify.routes]]
channels = [\"chat\", \"sms\"]
scopes = [\"vendor\", \"planet\"]
"
    );
    let p = problems(&text);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "notify.channels[0].url_env",
            "notify.channels[1].url_file",
            "notify.routes[0].channels[1]",
            "notify.routes[0].scopes[1]",
        ],
        "{p:?}"
    );
    assert!(
        p[0].message
            .contains("CDNWATCH_TEST_NO_SUCH_VARIABLE is not set")
    );
    assert!(
        p[2].message
            .contains("no channel is named `sms` (channels: chat, pager)")
    );
    let sms = text.lines().position(|l| l.contains("\"sms\"")).unwrap() + 1;
    assert_eq!(p[2].line, sms);
    let bad_kind = text.replace("kind = \"slack\"", "kind = \"pigeon\"");
    let p = problems(&bad_kind);
    assert_eq!(p[0].field, "notify.channels[1].kind", "{p:?}");
    assert!(p[0].message.contains("pigeon"), "{p:?}");
}
