//! What the fleet benchmark reads of the running service over HTTP: `GET /api/v1/agents`, the
//! scheduler's start-lag histogram on `/metrics`, and a paced client of `GET /api/v1/hostlist`
//! timing each request. Reads only; every non-200 answer is counted, never hidden.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cdnwatch::hist::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// One agent as `GET /api/v1/agents` shows it (the fields the benchmark reads).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Seen {
    /// Its id.
    pub(crate) id: String,
    /// Results stored from it since the service started.
    pub(crate) received: u64,
    /// Results it says it has spooled and not had acknowledged.
    pub(crate) backlog_records: u64,
    /// The assignment it says it runs.
    pub(crate) assignment_version: Option<String>,
    /// Whether that is the one in force.
    pub(crate) assignment_current: bool,
    /// Results refused, by reason.
    pub(crate) refused: BTreeMap<String, u64>,
}

/// The service's base URL and a client for it.
#[derive(Clone)]
pub(crate) struct Api {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of the service at `base`.
    pub(crate) fn new(base: &str) -> Api {
        cdnwatch::probe::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Api {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// `GET path`: its status and body (status 0 when the service could not be reached).
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        self.get_with(path, None).await
    }

    /// [`Api::get`] with a bearer token.
    pub(crate) async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// `GET /api/v1/agents`, or the status it answered instead.
    pub(crate) async fn agents(&self) -> Result<Vec<Seen>, u16> {
        let (status, body) = self.get("/api/v1/agents").await;
        if status != 200 {
            return Err(status);
        }
        serde_json::from_str(&body).map_err(|_| status)
    }

    /// `GET /api/v1/agents`, insisting on a 200.
    pub(crate) async fn agents_ok(&self) -> Vec<Seen> {
        self.agents()
            .await
            .unwrap_or_else(|s| panic!("GET /api/v1/agents answered {s}"))
    }

    /// The scheduler's start-lag histogram: (upper bound in seconds, cumulative count).
    pub(crate) async fn lag_buckets(&self) -> Vec<(f64, u64)> {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200, "GET /metrics");
        crate::bench_io::lag_buckets_in(&text)
    }
}

/// `start lag p99 <= 3.1 ms over 12,000 probes` between two snapshots of the histogram: the p99
/// is the upper bound of the bucket it falls in.
pub(crate) fn lag_p99(before: &[(f64, u64)], after: &[(f64, u64)]) -> String {
    match crate::bench_io::lag_p99_ms(before, after) {
        Some((ms, total)) => format!(
            "start lag p99 <= {ms:.1} ms over {} probes",
            thousands(total)
        ),
        None => "start lag: NO probes of its own started".to_string(),
    }
}

/// `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the host-list client saw.
#[derive(Default)]
pub(crate) struct HostlistLoop {
    stop: AtomicBool,
    /// Each 200's time, request written → response read.
    pub(crate) times: std::sync::Mutex<Histogram>,
    /// Answers other than 200, and broken connections.
    pub(crate) not_ok: AtomicU64,
}

impl HostlistLoop {
    /// Starts one keep-alive client asking `GET /api/v1/hostlist` every `every`.
    pub(crate) fn start(base: &str, every: Duration) -> Arc<HostlistLoop> {
        let seen = Arc::new(HostlistLoop::default());
        let addr = base.trim_start_matches("http://").to_string();
        tokio::spawn(hostlist_client(addr, every, seen.clone()));
        seen
    }

    /// Stops the client; `p99 1.2 ms (p50 0.4, max 9.0) over 18,000 requests, non-200: 0`.
    pub(crate) fn finish(&self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.times.lock().expect("times");
        let q = |q: f64| h.quantile_ms(q).unwrap_or(f64::NAN);
        let not_ok = self.not_ok.load(Ordering::Relaxed);
        format!(
            "p99 {:.2} ms (p50 {:.2}, max {:.2}) over {} requests, non-200: {}",
            q(0.99),
            q(0.5),
            q(1.0),
            thousands(h.count()),
            if not_ok == 0 {
                "none".to_string()
            } else {
                format!("{not_ok} (NOT OK)")
            }
        )
    }
}

async fn hostlist_client(addr: String, every: Duration, seen: Arc<HostlistLoop>) {
    let request = format!("GET /api/v1/hostlist HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !seen.stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            seen.not_ok.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut buf = Vec::with_capacity(8192);
        while !seen.stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let t = Instant::now();
            if s.write_all(request.as_bytes()).await.is_err() {
                seen.not_ok.fetch_add(1, Ordering::Relaxed);
                break;
            }
            match crate::bench_io::read_response(&mut s, &mut buf).await {
                Some((200, _)) => {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    seen.times.lock().expect("times").record_ms(ms);
                }
                Some(_) => {
                    seen.not_ok.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    seen.not_ok.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}
