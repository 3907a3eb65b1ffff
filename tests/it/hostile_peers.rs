//! Hostile peers on loopback: each probe ends within its timeout or cap, with the right class.
//! DNS: a reply with a wrong id, a truncated reply, garbage, a stalled TCP reply. TCP: a full
//! accept queue. HTTP: 10 MB of headers, an endless body, a one-byte-a-second trickle. A test that
//! asserts how long a probe took, or how much memory it held, has the machine to itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdnwatch::config::{ContentCheck, Method, Transport};
use cdnwatch::model::{FailureClass as C, Phase};
use cdnwatch::probe::{dns, http, tcp};
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::harness::alone;

const DNS_TIMEOUT: Duration = Duration::from_millis(400);

/// A reply to `query` with one A record, 127.0.0.7.
fn answer(query: &[u8]) -> Message {
    let q = Message::from_vec(query).unwrap();
    let mut reply = Message::query();
    reply.metadata.id = q.metadata.id;
    reply.metadata.message_type = MessageType::Response;
    reply.add_query(q.queries[0].clone());
    let name = q.queries[0].name().clone();
    reply.add_answer(Record::from_rdata(name, 60, RData::A(A::new(127, 0, 0, 7))));
    reply
}

/// A UDP "resolver" that answers each query through `reply` (None: stay silent).
async fn udp_fixture(reply: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            for datagram in reply(&buf[..n]) {
                let _ = socket.send_to(&datagram, from).await;
            }
        }
    });
    addr
}

fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test]
async fn a_reply_with_a_wrong_id_is_ignored_until_the_timeout() {
    let _alone = alone().await;
    let addr = udp_fixture(|q| {
        let mut spoofed = answer(q);
        spoofed.metadata.id = spoofed.metadata.id.wrapping_add(1);
        vec![spoofed.to_vec().unwrap()]
    })
    .await;
    let t = Instant::now();
    let out = dns::resolve(&Transport::Udp(addr), "cdn.shop.test", None, DNS_TIMEOUT).await;
    let f = out.failure.expect("a failure");
    assert_eq!((f.class, f.phase), (C::DnsTimeout, Phase::Resolve), "{f:?}");
    let ms = elapsed_ms(t);
    assert!((400.0..600.0).contains(&ms), "ended after {ms:.0} ms");
}

#[tokio::test]
async fn the_right_reply_after_a_spoofed_one_is_taken() {
    let addr = udp_fixture(|q| {
        let real = answer(q);
        let mut spoofed = real.clone();
        spoofed.metadata.id = spoofed.metadata.id.wrapping_add(1);
        vec![
            b"garbage".to_vec(),
            spoofed.to_vec().unwrap(),
            real.to_vec().unwrap(),
        ]
    })
    .await;
    let out = dns::resolve(&Transport::Udp(addr), "cdn.shop.test", None, DNS_TIMEOUT).await;
    assert!(out.failure.is_none(), "{:?}", out.failure);
    assert_eq!(
        out.answer.unwrap().ips,
        ["127.0.0.7".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[tokio::test]
async fn a_truncated_reply_is_asked_again_over_tcp() {
    // UDP and TCP on the same port, as a resolver has them.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let mut tc = answer(&buf[..n]);
            tc.answers.clear();
            tc.metadata.truncation = true;
            let _ = udp.send_to(&tc.to_vec().unwrap(), from).await;
        }
    });
    let tcp_queries = Arc::new(AtomicUsize::new(0));
    let counter = tcp_queries.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let len = s.read_u16().await.unwrap();
                let mut q = vec![0u8; usize::from(len)];
                s.read_exact(&mut q).await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let reply = answer(&q).to_vec().unwrap();
                s.write_u16(reply.len() as u16).await.unwrap();
                s.write_all(&reply).await.unwrap();
            });
        }
    });
    let out = dns::resolve(&Transport::Udp(addr), "cdn.shop.test", None, DNS_TIMEOUT).await;
    assert!(out.failure.is_none(), "{:?}", out.failure);
    assert_eq!(out.answer.unwrap().ips.len(), 1);
    assert_eq!(tcp_queries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn garbage_over_tcp_is_a_protocol_error_and_a_stalled_reply_times_out() {
    let _alone = alone().await;
    let garbage = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = garbage.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(&[0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
                    .await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    let out = dns::resolve(&Transport::Tcp(g), "cdn.shop.test", None, DNS_TIMEOUT).await;
    assert_eq!(out.failure.map(|f| f.class), Some(C::DnsProtocol));

    // Announces 65535 bytes, sends 10, then nothing.
    let stall = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let st = stall.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = stall.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(&[0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
                    .await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    let t = Instant::now();
    let out = dns::resolve(&Transport::Tcp(st), "cdn.shop.test", None, DNS_TIMEOUT).await;
    assert_eq!(out.failure.map(|f| f.class), Some(C::DnsTimeout));
    assert!(elapsed_ms(t) < 600.0);
}

#[tokio::test]
async fn a_full_accept_queue_is_a_connect_timeout() {
    // A listener that never accepts, with the smallest queue; fill it, then one more SYN is
    // dropped by the kernel and the connect times out, as behind a black-holing firewall.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..8 {
        match tcp::connect(addr, Duration::from_millis(300)).await {
            Ok((s, _)) => held.push(s),
            Err(f) => {
                timed_out = Some(f);
                break;
            }
        }
    }
    let f = timed_out.expect("the queue fills up");
    assert_eq!(
        (f.failure.class, f.failure.phase),
        (C::TcpTimeout, Phase::Connect),
        "{f:?}"
    );
    // The connect's figure is the time it waited, about its timeout.
    let waited = f.waited_ms.expect("a timed-out connect records its wait");
    assert!((300.0..500.0).contains(&waited), "waited {waited:.1} ms");
    drop(socket);
}

fn spec(check: Option<ContentCheck>) -> http::RequestSpec<'static> {
    http::RequestSpec {
        host_header: "hostile.test",
        method: Method::Get,
        path: "/image/probe.jpg",
        accept_status: &[200],
        check,
        first_byte_timeout: Duration::from_millis(800),
        transfer_timeout: Duration::from_millis(1500),
        max_header_bytes: 64 * 1024,
        max_body_bytes: 1024 * 1024,
    }
}

/// A plain-HTTP server that reads the request, then runs `answer` on the socket.
async fn http_fixture<F, Fut>(answer: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream, Arc<AtomicUsize>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            tokio::spawn(answer(s, counter.clone()));
        }
    });
    (addr, sent)
}

/// Writes `head` then `chunk` over and over (up to `limit` bytes, pausing `pause` between),
/// counting what the peer took.
async fn pour(
    mut s: tokio::net::TcpStream,
    sent: Arc<AtomicUsize>,
    head: &'static [u8],
    chunk: &'static [u8],
    limit: usize,
    pause: Duration,
) {
    if s.write_all(head).await.is_err() {
        return;
    }
    let mut total = 0;
    while total < limit {
        if s.write_all(chunk).await.is_err() {
            return;
        }
        total += chunk.len();
        sent.store(total, Ordering::SeqCst);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

static HEADER_LINE: [u8; 1024] = {
    let mut line = [b'a'; 1024];
    line[0] = b'X';
    line[1] = b':';
    line[2] = b' ';
    line[1022] = b'\r';
    line[1023] = b'\n';
    line
};
static BODY_CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    tcp::connect(addr, Duration::from_secs(1)).await.unwrap().0
}

#[tokio::test]
async fn ten_megabytes_of_headers_stop_at_the_header_cap() {
    let _alone = alone().await;
    let (addr, sent) = http_fixture(|s, sent| {
        pour(
            s,
            sent,
            b"HTTP/1.1 200 OK\r\n",
            &HEADER_LINE,
            10 * 1024 * 1024,
            Duration::ZERO,
        )
    })
    .await;
    let t = Instant::now();
    let out = http::request(connect(addr).await, &spec(None)).await;
    let f = out.failure.expect("a failure");
    assert_eq!(f.class, C::HeadersTooLarge, "{f:?}");
    assert!(
        elapsed_ms(t) < 800.0,
        "gave up after {:.0} ms",
        elapsed_ms(t)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let taken = sent.load(Ordering::SeqCst);
    assert!(
        taken < 4 * 1024 * 1024,
        "the prober read {taken} bytes of headers before giving up"
    );
}

#[tokio::test]
async fn an_endless_body_stops_at_the_body_cap() {
    let _alone = alone().await;
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n";
    let (addr, _) =
        http_fixture(move |s, sent| pour(s, sent, head, &BODY_CHUNK, usize::MAX, Duration::ZERO))
            .await;
    let t = Instant::now();
    let out = http::request(connect(addr).await, &spec(Some(ContentCheck::MinSize(1)))).await;
    let f = out.failure.expect("a failure");
    assert_eq!(
        (f.class, f.phase),
        (C::BodyTooLarge, Phase::Transfer),
        "{f:?}"
    );
    assert!(
        out.body_bytes <= 1024 * 1024 + BODY_CHUNK.len() as u64,
        "read {} bytes",
        out.body_bytes
    );
    assert!(elapsed_ms(t) < 1500.0);
}

#[tokio::test]
async fn a_one_byte_a_second_trickle_ends_at_the_timeout_of_its_phase() {
    let _alone = alone().await;
    // The body trickles: the head came, so it is the transfer that times out.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    let (addr, _) =
        http_fixture(move |s, sent| pour(s, sent, head, b"x", 100, Duration::from_secs(1))).await;
    let t = Instant::now();
    let out = http::request(connect(addr).await, &spec(None)).await;
    let f = out.failure.expect("a failure");
    assert_eq!(
        (f.class, f.phase),
        (C::HttpTimeout, Phase::Transfer),
        "{f:?}"
    );
    let transfer = out.transfer_ms.unwrap();
    assert!(
        (1500.0..1700.0).contains(&transfer),
        "transfer {transfer:.0} ms"
    );
    assert!(elapsed_ms(t) < 2000.0);

    // The head itself trickles: the response head never completes within the first-byte timeout.
    let (addr, _) =
        http_fixture(move |s, sent| pour(s, sent, b"H", b"T", 100, Duration::from_secs(1))).await;
    let t = Instant::now();
    let out = http::request(connect(addr).await, &spec(None)).await;
    let f = out.failure.expect("a failure");
    assert_eq!(
        (f.class, f.phase),
        (C::HttpTimeout, Phase::Processing),
        "{f:?}"
    );
    let ms = elapsed_ms(t);
    assert!((800.0..1000.0).contains(&ms), "ended after {ms:.0} ms");
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn memory_stays_bounded_against_huge_headers_and_endless_bodies() {
    let _alone = alone().await;
    let (headers, _) = http_fixture(|s, sent| {
        pour(
            s,
            sent,
            b"HTTP/1.1 200 OK\r\n",
            &HEADER_LINE,
            10 * 1024 * 1024,
            Duration::ZERO,
        )
    })
    .await;
    let head = b"HTTP/1.1 200 OK\r\n\r\n";
    let (endless, _) =
        http_fixture(move |s, sent| pour(s, sent, head, &BODY_CHUNK, usize::MAX, Duration::ZERO))
            .await;
    let mut big_body = spec(Some(ContentCheck::Sha256("00".repeat(32))));
    big_body.max_body_bytes = 8 * 1024 * 1024;
    let run = || async {
        let a = http::request(connect(headers).await, &spec(None)).await;
        let b = http::request(connect(endless).await, &big_body).await;
        assert_eq!(a.failure.map(|f| f.class), Some(C::HeadersTooLarge));
        assert_eq!(b.failure.map(|f| f.class), Some(C::BodyTooLarge));
    };
    run().await;
    // Reset the peak (Linux: 5 > clear_refs), then watch it over more runs.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS:");
    for _ in 0..3 {
        run().await;
    }
    let grew = status_kib("VmHWM:").saturating_sub(before);
    eprintln!("peak memory grew by {grew} KiB over 3 runs");
    // 10 MiB of headers and 8 MiB of body went by; neither is held.
    assert!(grew < 6 * 1024, "peak memory grew by {grew} KiB");
}
