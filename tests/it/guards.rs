//! The token-taking endpoints hold against hostile clients, and the public reads stay cheap: a
//! body is read only for those allowed to send it, and only so many at once; token attempts are
//! limited per peer and counted; short tokens refuse start; the session cookie follows the external
//! URL's scheme; `/readyz` and `/api/v1/status` do not depend on the results table's size; config
//! numbers have upper bounds; an override's reason is counted in characters. Raw sockets on
//! loopback say exactly what was sent (a declared length with no body behind it). What holds before
//! anything starts (short tokens, config bounds) is in `start`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

mod start;

/// A response read off a raw socket.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The JSON error, after checking the content type.
    fn json_error(&self) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{}", self.head);
        let v: Value = serde_json::from_str(&self.body).expect("a JSON body");
        v["error"].as_str().expect("an error field").to_string()
    }
}

/// Opens a connection and sends `head` (the request line and headers, without the blank line).
async fn send_head(base: &str, head: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{head}\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tcp
}

/// Reads one response (its head and a `Content-Length` body) within `limit`.
async fn read_response(tcp: &mut TcpStream, limit: Duration) -> Raw {
    let mut buf = Vec::new();
    let done = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(raw) = parse(&buf) {
                return raw;
            }
            let n = tcp.read(&mut chunk).await.unwrap_or(0);
            assert!(
                n > 0,
                "closed before a whole response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    done.unwrap_or_else(|_| panic!("no response within {limit:?}"))
}

fn parse(buf: &[u8]) -> Option<Raw> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let raw = Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    };
    let len: usize = raw
        .header("content-length")
        .map_or(0, |l| l.parse().unwrap());
    (raw.body.len() >= len).then_some(raw)
}

const WRONG: &str = "wrong-token-wrong-token-wrong-token-0000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_with_a_huge_declared_body_is_refused_at_once_without_reading_it()
{
    let e = TestApp::stepped_with(|c| with_agent(c, "agent-1", &["cn-south"])).await;
    for (target, auth, status) in [
        ("POST /api/v1/agents/agent-1/results", Some(WRONG), 403),
        ("POST /api/v1/agents/agent-1/results", None, 401),
        (
            "POST /api/v1/agents/no-such-agent/results",
            Some(AGENT_TOKEN),
            403,
        ),
        ("POST /api/v1/overrides", Some(WRONG), 403),
        ("POST /api/v1/overrides", None, 401),
    ] {
        let auth = auth.map_or(String::new(), |t| format!("\r\nAuthorization: Bearer {t}"));
        let head = format!(
            "{target} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 8000000{auth}"
        );
        // Only the head is sent: an answer can only come if the body is not waited for.
        let mut tcp = send_head(&e.base, &head).await;
        let r = read_response(&mut tcp, Duration::from_secs(5)).await;
        assert_eq!(r.status, status, "{target}: {}", r.head);
        assert!(r.json_error().contains("token"), "{}", r.body);
    }
    e.stop().await;
}

/// The process's resident memory, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_wrong_token_uploads_of_eight_mebibytes_do_not_raise_the_memory() {
    let e = TestApp::stepped_alone().await;
    const BODY: usize = 8 * 1024 * 1024 - 1024;
    // One body for every client, made before measuring: only the service's memory counts.
    let body = std::sync::Arc::new(vec![b' '; BODY]);
    let before = rss_bytes();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let uploads: Vec<_> = (0..40)
        .map(|_| {
            let (base, body) = (e.base.clone(), body.clone());
            tokio::spawn(async move {
                let head = format!(
                    "POST /api/v1/agents/agent-1/results HTTP/1.1\r\nAuthorization: Bearer {WRONG}\r\nContent-Type: application/json\r\nContent-Length: {BODY}"
                );
                let mut tcp = send_head(&base, &head).await;
                // The whole body, as a hostile client sends it; the server may close on it.
                let _ = tcp.write_all(&body).await;
                read_response(&mut tcp, Duration::from_secs(20)).await.status
            })
        })
        .collect();
    for u in uploads {
        let status = u.await.unwrap();
        assert!(status == 403 || status == 429, "{status}");
    }
    sampling.abort();
    let grown = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    assert!(
        grown < 64 * 1024 * 1024,
        "RSS grew by {} MiB for bodies that were refused",
        grown / (1024 * 1024)
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_body_read_cap_an_upload_gets_503_with_retry_after_and_a_json_error() {
    let e = TestApp::stepped_with(|c| with_agent(c, "agent-1", &["cn-south"])).await;
    let head = format!(
        "POST /api/v1/agents/agent-1/results HTTP/1.1\r\nAuthorization: Bearer {AGENT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000"
    );
    // Each holder sends the head and a few bytes, then nothing: its body read holds a permit.
    let mut holders = Vec::new();
    for _ in 0..cdnwatch::web::MAX_BODY_READS {
        let mut tcp = send_head(&e.base, &head).await;
        tcp.write_all(b"[  ").await.unwrap();
        holders.push(tcp);
    }
    let busy = eventually(Duration::from_secs(10), "a 503 past the cap", async || {
        let mut tcp = send_head(&e.base, &head).await;
        tcp.write_all(&[b' '; 1000]).await.unwrap();
        let r = read_response(&mut tcp, Duration::from_secs(5)).await;
        if r.status == 503 {
            Ok(r)
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
    .await;
    assert!(
        busy.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    assert!(
        busy.json_error().contains("request bodies"),
        "{}",
        busy.body
    );
    drop(holders);
    eventually(
        Duration::from_secs(10),
        "a read once the holders left",
        async || {
            let mut tcp = send_head(&e.base, &head.replace("1000", "2")).await;
            tcp.write_all(b"[]").await.unwrap();
            let r = read_response(&mut tcp, Duration::from_secs(5)).await;
            // Read, and found not to be a batch: the body read got a permit again.
            (r.status == 400 && r.json_error().contains("not a batch"))
                .then_some(())
                .ok_or(format!("{} {}", r.status, r.body))
        },
    )
    .await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_body_declared_or_streamed_gets_413_with_a_json_error() {
    let e = TestApp::stepped().await;
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let head = format!(
        "POST /api/v1/overrides HTTP/1.1\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: 9000000"
    );
    let mut tcp = send_head(&e.base, &head).await;
    let r = read_response(&mut tcp, Duration::from_secs(5)).await;
    assert_eq!(r.status, 413, "{}", r.head);
    assert!(r.json_error().contains("larger than"), "{}", r.body);
    // No length declared: the body is cut off at the limit as it streams in.
    let head = format!(
        "POST /api/v1/overrides HTTP/1.1\r\n{auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
    );
    let mut tcp = send_head(&e.base, &head).await;
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    for _ in 0..8 {
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let r = read_response(&mut tcp, Duration::from_secs(5)).await;
    assert_eq!(r.status, 413, "{}", r.head);
    assert!(r.json_error().contains("larger than"), "{}", r.body);
    e.stop().await;
}

/// `cdnwatch_auth_failures_total{endpoint=…}` as `/metrics` says it.
async fn auth_failures(e: &TestApp, endpoint: &str) -> u64 {
    let text = e.get("/metrics").await.text().await.unwrap();
    let series = format!("cdnwatch_auth_failures_total{{endpoint=\"{endpoint}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_attempts_past_the_limit_get_429_with_retry_after_even_with_the_right_token_and_are_counted()
 {
    let e = TestApp::stepped().await;
    let sign_in = |token: &str| {
        e.http
            .post(format!("{}/config/sign-in", e.base))
            .header("origin", &e.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let delete = |token: &str| {
        e.http
            .delete(format!("{}/api/v1/overrides/1", e.base))
            .bearer_auth(token)
            .send()
    };
    let free = cdnwatch::auth::FREE_FAILURES;
    for _ in 0..free - 1 {
        assert_eq!(sign_in(WRONG).await.unwrap().status(), 403);
    }
    assert_eq!(delete(WRONG).await.unwrap().status(), 403);
    // The peer has used its free failures: the right token is not even looked at now.
    let limited = delete(ADMIN_TOKEN).await.unwrap();
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let v: Value = limited.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("too many"), "{v}");
    let limited = sign_in(ADMIN_TOKEN).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().get("set-cookie").is_none());
    assert_eq!(auth_failures(&e, "sign_in").await, u64::from(free));
    assert_eq!(auth_failures(&e, "admin").await, 2);
    assert_eq!(auth_failures(&e, "ingest").await, 0);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_https_external_url_the_session_cookie_is_secure_and_host_prefixed() {
    let e = TestApp::stepped_with(|c| {
        c.dashboard.external_url = Some("https://watch.example.com".into());
    })
    .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/config/sign-in", e.base))
        .header("origin", &e.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("__Host-cdnwatch_session="), "{set}");
    for part in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let cookie = set.split(';').next().unwrap();
    let page = http
        .get(format!("{}/config", e.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"id="add-override""#),
        "signed in with the __Host- cookie"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_status_never_read_the_whole_results_table_and_status_refuses_parameters() {
    let e = TestApp::stepped().await;
    e.rounds(2).await;
    let status = e.get("/api/v1/status?host=x").await;
    assert_eq!(status.status(), 400);
    let v: Value = status.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown parameter `host`"),
        "{v}"
    );
    // Served again within its second on the same clock; a new round is a new answer.
    let a: Value = e.get("/api/v1/status").await.json().await.unwrap();
    let b: Value = e.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(a["generated_at"], b["generated_at"]);
    assert!(!a["hosts"].as_object().unwrap().is_empty(), "{a}");
    e.round().await;
    let c: Value = e.get("/api/v1/status").await.json().await.unwrap();
    assert_ne!(a["generated_at"], c["generated_at"]);
    // Readiness asks the database a constant question: with the results table out of the way
    // (as if it were too big to count), the service is still ready.
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", e.db_path().display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE results RENAME TO results_aside")
        .execute(&db)
        .await
        .unwrap();
    let ready = e.get("/readyz").await;
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    sqlx::query("ALTER TABLE results_aside RENAME TO results")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_reason_is_counted_in_characters_not_bytes() {
    let e = TestApp::stepped().await;
    let post = |reason: String| {
        e.http
            .post(format!("{}/api/v1/overrides", e.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({
                "host": PRIMARY, "kind": "observe_only", "reason": reason, "actor": "值班-张三",
            }))
            .send()
    };
    // 500 characters, 1,500 bytes: accepted.
    let resp = post("节".repeat(500)).await.unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = post("节".repeat(501)).await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("1 to 500 characters"),
        "{v}"
    );
    e.stop().await;
}
