use super::*;
use crate::config::HttpSettings;

fn limits() -> Limits {
    Limits::new(&HttpSettings::default())
}

fn kind(raw: &str) -> Head<'_> {
    head(raw.as_bytes(), &limits())
}

#[test]
fn a_plain_poll_is_taken_with_its_etag_and_its_length() {
    let raw = "GET /api/v1/hostlist HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v7\"\r\n\r\n";
    assert_eq!(
        kind(raw),
        Head::HostList {
            len: raw.len(),
            if_none_match: Some(b"\"v7\"".as_slice()),
            close: false
        }
    );
    let pipelined = format!("{raw}GET /healthz HTTP/1.1\r\n\r\n");
    assert!(matches!(kind(&pipelined), Head::HostList { len, .. } if len == raw.len()));
}

#[test]
fn connection_close_is_kept_and_other_connection_options_go_to_hyper() {
    let with = |c: &str| format!("GET /api/v1/hostlist HTTP/1.1\r\nConnection: {c}\r\n\r\n");
    assert!(matches!(
        kind(&with("close")),
        Head::HostList { close: true, .. }
    ));
    assert!(matches!(
        kind(&with("Keep-Alive")),
        Head::HostList { close: false, .. }
    ));
    assert!(matches!(
        kind(&with("keep-alive, CLOSE")),
        Head::HostList { close: true, .. }
    ));
    assert_eq!(kind(&with("upgrade")), Head::Other);
    assert_eq!(kind(&with("close, te")), Head::Other);
}

#[test]
fn anything_hyper_must_judge_goes_to_hyper() {
    for raw in [
        "HEAD /api/v1/hostlist HTTP/1.1\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.0\r\n\r\n",
        "GET /api/v1/hostlist?v=1 HTTP/1.1\r\n\r\n",
        "GET /api/v1/hostlist/7 HTTP/1.1\r\n\r\n",
        "GET http://a/api/v1/hostlist HTTP/1.1\r\n\r\n",
        "POST /api/v1/hostlist HTTP/1.1\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "GET /api/v1/hostlist HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.1\r\nIf-None-Match: \"v1\"\r\nIf-None-Match: \"v2\"\r\n\r\n",
        "GET /api/v1/hostlist HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "\u{0}\u{1} garbage\r\n\r\n",
    ] {
        assert_eq!(kind(raw), Head::Other, "{raw:?}");
    }
}

#[test]
fn an_unfinished_head_is_partial_and_heads_past_the_caps_go_to_hyper() {
    assert_eq!(
        kind("GET /api/v1/hostlist HTTP/1.1\r\nHost: a"),
        Head::Partial
    );
    assert_eq!(kind(""), Head::Partial);
    let many: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("x-{i}: y\r\n"))
        .collect();
    assert_eq!(
        kind(&format!("GET /api/v1/hostlist HTTP/1.1\r\n{many}\r\n")),
        Head::Other
    );
    let small = Limits::new(&HttpSettings {
        max_header_bytes: 64,
        ..HttpSettings::default()
    });
    let big = format!(
        "GET /api/v1/hostlist HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "b".repeat(60)
    );
    assert_eq!(head(big.as_bytes(), &small), Head::Other, "431 is hyper's");
}

#[test]
fn the_date_line_is_hypers_format_and_follows_the_second() {
    let mut wire = Wire::new();
    wire.refresh_date();
    let line = String::from_utf8(wire.date.clone()).unwrap();
    let date = line
        .strip_prefix("date: ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("{line:?}"));
    let parsed = httpdate::parse_http_date(date).expect("an IMF-fixdate");
    let off = SystemTime::now()
        .duration_since(parsed)
        .unwrap_or_else(|e| e.duration());
    assert!(off.as_secs() <= 2, "{date} is {off:?} off");
    wire.second = 0;
    wire.refresh_date();
    assert_ne!(wire.second, 0, "a new second makes the line again");
}

#[tokio::test]
async fn replayed_bytes_are_read_before_the_socket_and_writes_pass_through() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b" world").await.unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).await.unwrap();
        back
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let mut io = Watched::new(tcp, Activity::new()).replay(BytesMut::from(&b"hello"[..]));
    let mut got = vec![0u8; 11];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(got, b"hello world");
    io.write_all(b"back").await.unwrap();
    assert_eq!(&client.await.unwrap(), b"back");
}
