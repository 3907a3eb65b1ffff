//! The host-list fast path on the wire (`web/server/fast.rs`): it answers byte for byte what
//! hyper answers for the same request (the `date` aside), pipelined requests are answered in
//! order across the hand-over to hyper (a body included), and a connection it served is closed
//! at the idle timeout, or at the header timeout when a next head has begun.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestApp;
use crate::public_face::closed_after;

/// Everything the server sends on a connection given `request`, until it closes it (or 5 s); read
/// while it is written, so a long pipeline cannot stall on full socket buffers.
async fn exchange(addr: SocketAddr, request: &str) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let (mut from, mut to) = tcp.into_split();
    let request = request.as_bytes().to_vec();
    let writer = tokio::spawn(async move {
        to.write_all(&request).await.expect("sends");
        to
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), from.read_to_end(&mut raw)).await;
    assert!(
        read.is_ok(),
        "still open after 5 s: {}",
        String::from_utf8_lossy(&raw)
    );
    drop(writer.await);
    raw
}

/// The answers in `raw`, one after the other: each head without its `date` line, and its body.
fn answers(mut raw: &[u8]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    while !raw.is_empty() {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8(raw[..end].to_vec()).expect("an ASCII head");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.parse().expect("a length"));
        let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).into_owned();
        raw = &raw[end + 4 + length..];
        assert_eq!(
            head.lines().filter(|l| l.starts_with("date: ")).count(),
            1,
            "one date line: {head}"
        );
        let head: Vec<&str> = head.lines().filter(|l| !l.starts_with("date: ")).collect();
        all.push((head.join("\n"), body));
    }
    all
}

fn status(answer: &(String, String)) -> &str {
    answer.0.split(' ').nth(1).unwrap_or("")
}

fn poll(target: &str, etag: Option<&str>, close: bool) -> String {
    let inm = etag
        .map(|e| format!("If-None-Match: {e}\r\n"))
        .unwrap_or_default();
    let close = if close { "Connection: close\r\n" } else { "" };
    format!("GET {target} HTTP/1.1\r\nHost: a\r\nUser-Agent: app/1.0\r\n{inm}{close}\r\n")
}

#[tokio::test]
async fn the_fast_path_answers_byte_for_byte_as_hyper_does() {
    let app = TestApp::stepped().await;
    let addr = app.running().addr;
    let first = answers(&exchange(addr, &poll("/api/v1/hostlist", None, true)).await);
    assert_eq!(status(&first[0]), "200", "{}", first[0].0);
    let etag = first[0]
        .0
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an etag")
        .to_string();
    // A target with an empty query is the same resource, but the fast path leaves it to hyper
    // (web::server::answer_now answers it there).
    for (etag, close) in [
        (None, true),
        (Some(etag.as_str()), true),
        (Some("\"v0\""), true),
    ] {
        let fast = answers(&exchange(addr, &poll("/api/v1/hostlist", etag, close)).await);
        let hyper = answers(&exchange(addr, &poll("/api/v1/hostlist?", etag, close)).await);
        assert_eq!(fast.len(), 1);
        assert_eq!(fast, hyper, "If-None-Match {etag:?}");
    }
    let kept = format!(
        "{}{}",
        poll("/api/v1/hostlist", Some(&etag), false),
        poll("/api/v1/hostlist", Some(&etag), true)
    );
    let kept = answers(&exchange(addr, &kept).await);
    assert_eq!(kept.len(), 2);
    assert!(!kept[0].0.contains("connection:"), "{}", kept[0].0);
    assert_eq!(kept[0].0.replace("304 Not Modified", ""), {
        let closing = kept[1].0.replace("304 Not Modified", "");
        closing.replace("\nconnection: close", "")
    });
    app.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_across_the_hand_over_to_hyper() {
    let app = TestApp::stepped().await;
    let addr = app.running().addr;
    let first = answers(&exchange(addr, &poll("/api/v1/hostlist", None, true)).await);
    let etag = first[0]
        .0
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an etag")
        .to_string();
    let pipelined = [
        poll("/api/v1/hostlist", None, false),
        poll("/api/v1/hostlist", Some(&etag), false),
        "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n".to_string(),
        // A body on a GET: hyper reads it, and the next request after it is still seen.
        "GET /api/v1/hostlist HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd".to_string(),
        poll("/api/v1/hostlist", Some(&etag), true),
    ]
    .concat();
    let got = answers(&exchange(addr, &pipelined).await);
    let statuses: Vec<&str> = got.iter().map(status).collect();
    assert_eq!(statuses, ["200", "304", "200", "200", "304"], "{got:?}");
    assert_eq!(got[0].1, first[0].1, "the same document");
    assert_eq!(got[2].1, "ok\n");
    assert_eq!(got[3].1, first[0].1);
    assert!(got[4].0.contains("connection: close"), "{}", got[4].0);
    app.stop().await;
}

#[tokio::test]
async fn thousands_of_pipelined_polls_are_all_answered_in_batches() {
    let app = TestApp::stepped().await;
    let addr = app.running().addr;
    // More answers than one batch of writes holds, sent before a byte is read.
    let polls = poll("/api/v1/hostlist", Some("\"v0\""), false).repeat(2_000);
    let last = poll("/api/v1/hostlist", Some("\"v0\""), true);
    let got = answers(&exchange(addr, &format!("{polls}{last}")).await);
    assert_eq!(got.len(), 2_001);
    assert!(got.iter().all(|a| status(a) == "200" && a.1 == got[0].1));
    app.stop().await;
}

#[tokio::test]
async fn a_connection_the_fast_path_served_is_closed_at_the_idle_timeout_or_at_the_header_timeout_of_a_begun_head()
 {
    let app = TestApp::stepped_alone_with(|c| {
        c.http.header_read_timeout_ms = 300;
        c.http.idle_timeout_ms = 1_500;
    })
    .await;
    let addr = app.running().addr;
    let served = |then: &'static str| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("{}{then}", poll("/api/v1/hostlist", Some("\"v0\""), false));
        let start = Instant::now();
        tcp.write_all(request.as_bytes()).await.unwrap();
        closed_after(&mut tcp, start).await
    };
    let ((idle, idle_sent), (begun, begun_sent)) =
        tokio::join!(served(""), served("GET /api/v1/host"));
    assert!(idle_sent > 0 && begun_sent > 0, "both polls were answered");
    assert!(
        (Duration::from_millis(1_400)..Duration::from_millis(2_300)).contains(&idle),
        "an idle served connection was closed after {idle:?}, not at the 1.5 s idle timeout"
    );
    assert!(
        (Duration::from_millis(250)..Duration::from_millis(900)).contains(&begun),
        "a begun next head was cut off after {begun:?}, not at the 300 ms header timeout"
    );
    app.stop().await;
}
