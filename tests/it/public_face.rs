//! The HTTP server's edge, as hostile or careless clients meet it (README: "Listeners and
//! limits"): a slow head is cut off and an idle kept-alive connection closed on time, while a
//! parked long poll is not; the connection cap keeps a reserve for host-list clients; the watcher
//! cap answers 503; over-long heads get the JSON error; the public listener serves only what app
//! clients need; the internal routes check `Host`; `/metrics` can require a token. Raw sockets
//! where the bytes on the wire are the point, short configured timeouts so each test takes a
//! second or two.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cdnwatch::startup::{self, ServeOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{self, TestApp, TestLab};

/// An answer read off the wire: status, head (lower-cased), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// The JSON error in the body.
    fn error(&self) -> String {
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {:?}", self.head, self.body));
        v["error"].as_str().expect("an `error` string").to_string()
    }
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

/// `request` on a new connection, read until the server closes it (or 5 s).
async fn exchange(addr: SocketAddr, request: &str) -> Option<Answer> {
    let mut tcp = TcpStream::connect(addr).await.expect("connects");
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut raw)).await;
    parse(&raw)
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

const MODULE_CONFIG: &str = "POST /app/config-center/module-config HTTP/1.1\r\nHost: a\r\n\
    Connection: close\r\nContent-Length: 0\r\n\r\n";

/// How long until the server closes `tcp` (EOF or reset), and whether it sent anything first.
pub(crate) async fn closed_after(tcp: &mut TcpStream, since: Instant) -> (Duration, usize) {
    let mut got = 0;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (since.elapsed(), got),
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("still open {:?} after it began", since.elapsed()),
        }
    }
}

fn addr(app: &TestApp) -> SocketAddr {
    app.running().addr
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let app = TestApp::stepped_alone_with(|c| {
        c.http.header_read_timeout_ms = 500;
        c.http.idle_timeout_ms = 5_000;
    })
    .await;
    let start = Instant::now();
    let (mut slow, mut silent) = (
        TcpStream::connect(addr(&app)).await.unwrap(),
        TcpStream::connect(addr(&app)).await.unwrap(),
    );
    let (mut read, mut write) = slow.split();
    let head =
        b"GET /api/v1/hostlist HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let drip = async {
        for b in head {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let reader = async {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_secs(5), read.read(&mut buf)).await {
            Ok(Ok(n)) => (start.elapsed(), n),
            Ok(Err(_)) => (start.elapsed(), 0),
            Err(_) => panic!("a slow head was still open after 5 s"),
        }
    };
    let ((slow_closed, answered), ()) = tokio::select! {
        r = reader => (r, ()),
        () = drip => panic!("the whole slow head was taken"),
    };
    let (silent_closed, _) = closed_after(&mut silent, start).await;
    for (what, at) in [("slow", slow_closed), ("silent", silent_closed)] {
        assert!(
            (Duration::from_millis(450)..Duration::from_millis(1_200)).contains(&at),
            "the {what} head was cut off after {at:?}, not at the 500 ms header timeout"
        );
    }
    assert_eq!(answered, 0, "a head that never ended got an answer");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout_and_a_parked_watcher_is_not()
 {
    let app = TestApp::stepped_alone_with(|c| {
        c.http.header_read_timeout_ms = 300;
        c.http.idle_timeout_ms = 600;
    })
    .await;
    let idle = async {
        let mut tcp = TcpStream::connect(addr(&app)).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        while !raw.ends_with(b"ok\n") {
            let mut buf = [0u8; 1024];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering");
            raw.extend_from_slice(&buf[..n]);
        }
        closed_after(&mut tcp, Instant::now()).await
    };
    let watcher = async {
        let start = Instant::now();
        let path = "/api/v1/hostlist/watch?version=1000000&timeout=1";
        (exchange(addr(&app), &get(path, "a")).await, start.elapsed())
    };
    let ((idle_closed, sent), (answer, waited)) = tokio::join!(idle, watcher);
    assert_eq!(sent, 0, "the idle connection got bytes it did not ask for");
    assert!(
        (Duration::from_millis(550)..Duration::from_millis(1_300)).contains(&idle_closed),
        "the idle connection was closed {idle_closed:?} after its answer, not at the 600 ms idle timeout"
    );
    let answer = answer.expect("the parked watcher got an answer");
    assert_eq!(answer.status, 304, "after {waited:?}: {}", answer.head);
    assert!(waited >= Duration::from_millis(850), "{waited:?}");
    app.stop().await;
}

#[tokio::test]
async fn near_the_connection_cap_only_host_list_clients_are_answered_and_past_it_new_connections_are_closed()
 {
    let app = TestApp::stepped_with(|c| {
        c.http.max_connections = 6;
        c.http.reserve_connections = 2;
    })
    .await;
    let a = addr(&app);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(a).await.unwrap());
    }
    // Four idle sockets hold the share of everyone but host-list clients.
    let refused =
        harness::eventually(
            Duration::from_secs(3),
            "a 503 near the cap",
            async || match exchange(a, &get("/healthz", "a")).await {
                Some(r) if r.status == 503 => Ok(r),
                other => Err(format!("{:?}", other.map(|r| r.status))),
            },
        )
        .await;
    assert!(
        refused.head.contains("connection: close"),
        "{}",
        refused.head
    );
    assert!(
        refused.error().contains("connection limit"),
        "{}",
        refused.body
    );
    let list = exchange(a, &get("/api/v1/hostlist", "a")).await.unwrap();
    assert_eq!(
        list.status, 200,
        "the host list is answered from the reserve"
    );
    let fallback = exchange(a, MODULE_CONFIG).await.unwrap();
    assert_eq!(fallback.status, 200, "so is the fallback API");
    // Six open: a seventh connection is closed at once, unanswered.
    for _ in 0..2 {
        idle.push(TcpStream::connect(a).await.unwrap());
    }
    harness::eventually(
        Duration::from_secs(3),
        "a connection past the cap closed",
        async || match exchange(a, &get("/api/v1/hostlist", "a")).await {
            None => Ok(()),
            Some(r) => Err(format!("answered {}", r.status)),
        },
    )
    .await;
    // A place given back is taken again.
    drop(idle.pop());
    harness::eventually(
        Duration::from_secs(3),
        "the host list answered again",
        async || match exchange(a, &get("/api/v1/hostlist", "a")).await {
            Some(r) if r.status == 200 => Ok(()),
            other => Err(format!("{:?}", other.map(|r| r.status))),
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn past_the_watcher_cap_a_long_poll_gets_503_with_retry_after_and_a_json_error() {
    let app = TestApp::stepped_with(|c| c.http.max_watchers = 2).await;
    let a = addr(&app);
    let park = get("/api/v1/hostlist/watch?version=1000000&timeout=1", "a");
    let parked = async { tokio::join!(exchange(a, &park), exchange(a, &park)) };
    let third = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        exchange(a, &park).await
    };
    let ((first, second), third) = tokio::join!(parked, third);
    let third = third.expect("an answer");
    assert_eq!(third.status, 503, "{}", third.head);
    assert!(third.head.contains("retry-after: 5"), "{}", third.head);
    assert!(
        third.error().contains("watchers are parked"),
        "{}",
        third.body
    );
    for parked in [first, second] {
        assert_eq!(
            parked.expect("an answer").status,
            304,
            "the parked ones wait"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn heads_past_their_caps_get_414_and_431_with_a_json_error() {
    let app = TestApp::stepped().await;
    let a = addr(&app);
    let long = format!("/api/v1/hostlist?pad={}", "a".repeat(9_000));
    let big = format!(
        "GET /api/v1/hostlist HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    let big_routed = big.replace("/api/v1/hostlist", "/api/v1/status");
    for (request, status) in [
        (get(&long, "a"), 414),
        (get(&long.replace("hostlist", "status"), "a"), 414),
        (big, 431),
        (big_routed, 431),
    ] {
        let r = exchange(a, &request).await.expect("an answer");
        assert_eq!(r.status, status, "{}", r.head);
        assert!(r.head.contains("application/json"), "{}", r.head);
        assert!(r.error().contains("bytes"), "{}", r.body);
    }
    app.stop().await;
}

/// The service on a fresh lab with a public listener beside the internal one.
async fn two_listeners() -> (TestLab, startup::Running) {
    let lab = TestLab::spawn_with(|_| {}).await;
    let running = startup::start(ServeOptions {
        config_path: lab.config_path.clone(),
        data_dir: lab.data_dir(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_listen: Some("127.0.0.1:0".parse().unwrap()),
        prober_id: "e2e".into(),
        tokens: harness::test_tokens(),
        bump_version: None,
        init_key: false,
        clock: cdnwatch::clock::Clock::stepped(chrono::Utc::now()),
    })
    .await
    .expect("the service starts");
    (lab, running)
}

#[tokio::test]
async fn the_public_listener_serves_exactly_the_app_clients_routes() {
    let (lab, running) = two_listeners().await;
    let (public, internal) = (
        running.public_addr.expect("a public listener"),
        running.addr,
    );
    let clients = [
        get("/healthz", "a"),
        get("/api/v1/hostlist", "a"),
        get("/api/v1/hostlist/1", "a"),
        get("/api/v1/hostlist/watch?version=0", "a"),
        get("/api/v1/keys", "a"),
        MODULE_CONFIG.to_string(),
    ];
    for request in &clients {
        let r = exchange(public, request).await.expect("an answer");
        assert_eq!(r.status, 200, "public: {request}");
    }
    let ingest = "POST /api/v1/agents/agent-1/results HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\
        Content-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";
    let mut others: Vec<String> = [
        "/",
        "/paths",
        "/events",
        "/events/incident",
        "/hosts/cdn.shop.test",
        "/config",
        "/readyz",
        "/metrics",
        "/api/v1/status",
        "/api/v1/events",
        "/api/v1/overrides",
        "/api/v1/hostlist/versions",
        "/static/cdnwatch.css",
    ]
    .iter()
    .map(|p| get(p, "a"))
    .collect();
    others.push(ingest.to_string());
    for request in &others {
        let on_public = exchange(public, request).await.expect("an answer");
        assert_eq!(on_public.status, 404, "public: {request}");
        let on_internal = exchange(internal, request).await.expect("an answer");
        assert_ne!(on_internal.status, 404, "internal: {request}");
    }
    running.shutdown().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_request_naming_a_host_not_allowed_is_refused_on_the_internal_routes() {
    let app =
        TestApp::stepped_with(|c| c.http.allowed_hosts = vec!["cdnwatch.internal".into()]).await;
    let a = addr(&app);
    let refused = exchange(a, &get("/api/v1/status", "rebound.example:8080"))
        .await
        .unwrap();
    assert_eq!(refused.status, 421, "{}", refused.head);
    assert!(refused.error().contains("host"), "{}", refused.body);
    let page = exchange(a, &get("/", "evil.test")).await.unwrap();
    assert_eq!(page.status, 421, "pages too");
    for host in ["cdnwatch.internal:8080", "CDNWATCH.internal"] {
        let r = exchange(a, &get("/api/v1/status", host)).await.unwrap();
        assert_eq!(r.status, 200, "{host}");
    }
    let list = exchange(a, &get("/api/v1/hostlist", "cdn-config.shop.example"))
        .await
        .unwrap();
    assert_eq!(list.status, 200, "the app clients' routes answer any host");
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_set() {
    let token = "a-metrics-token-of-at-least-32-characters";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let app = TestApp::stepped_with(|c| c.http.metrics_token_file = Some(file)).await;
    let a = addr(&app);
    let bearer = |t: &str| {
        format!(
            "GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
        )
    };
    for request in [
        get("/metrics", "a"),
        bearer("a-metrics-token-of-at-least-32-characterz"),
    ] {
        let r = exchange(a, &request).await.unwrap();
        assert_eq!(r.status, 401, "{}", r.head);
        assert!(r.head.contains("www-authenticate: bearer"), "{}", r.head);
        assert!(r.error().contains("Bearer"), "{}", r.body);
    }
    let ok = exchange(a, &bearer(token)).await.unwrap();
    assert_eq!(ok.status, 200, "{}", ok.head);
    assert!(ok.body.contains("cdnwatch_"), "the metrics themselves");
    // The two refusals are counted as the other tokens' are (and limited with them).
    assert!(
        ok.body
            .contains(r#"cdnwatch_auth_failures_total{endpoint="metrics"} 2"#),
        "{}",
        ok.body
    );
    let status = exchange(a, &get("/api/v1/status", "a")).await.unwrap();
    assert_eq!(status.status, 200, "nothing else needs it");
    app.stop().await;
}
